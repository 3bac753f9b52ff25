# Shared by scripts/test.sh and scripts/demo.sh (sourced, not run):
# paths, privilege helpers, and the build + install step.

MSGQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=15
# The server's binaries: those of PG_CONFIG when it is given (a relocated or
# self-built server), else Debian's.
if [ -n "${PG_CONFIG:-}" ] && [ -x "$PG_CONFIG" ]; then
	PGBIN=$("$PG_CONFIG" --bindir)
else
	PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
fi
export PATH="$PGBIN:$PATH"

# The pg_config of the server we build against; PG_CONFIG may override it.
if [ -z "${PG_CONFIG:-}" ]; then
	if [ -x "$PGBIN/pg_config" ]; then
		PG_CONFIG=$PGBIN/pg_config
	else
		PG_CONFIG=pg_config
	fi
fi
export PG_CONFIG

# initdb and pg_ctl refuse to run as root: root runs clusters as this user.
# shellcheck disable=SC2034
TEST_USER=msgqtest

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
	if is_root; then
		"$@"
	else
		sudo -- "$@"
	fi
}

# as_user USER CMD...: run CMD as USER, keeping PATH, PG_CONFIG and the locale.
as_user() {
	local user=$1
	shift
	local envs=(PATH="$PATH" PG_CONFIG="$PG_CONFIG" LANG="${LANG:-C.UTF-8}")
	if [ "$(id -un)" = "$user" ]; then
		env "${envs[@]}" "$@"
	elif is_root; then
		runuser -u "$user" -- env "${envs[@]}" "$@"
	else
		sudo -u "$user" -- env "${envs[@]}" "$@"
	fi
}

# Build as the invoking user, install as root. PG_CFLAGS (e.g. -Werror in CI)
# reaches make through the environment. No LLVM bitcode (clang is no dependency).
build_and_install() {
	local jobs
	jobs=$(nproc 2>/dev/null || echo 2)
	echo "=== build ($PG_CONFIG${PG_CFLAGS:+, PG_CFLAGS=$PG_CFLAGS})"
	make -C "$MSGQ_ROOT" --no-print-directory -j"$jobs" \
		PG_CONFIG="$PG_CONFIG" with_llvm=no || return 1
	echo "=== install"
	as_root make -C "$MSGQ_ROOT" --no-print-directory \
		PG_CONFIG="$PG_CONFIG" with_llvm=no install || return 1
}
