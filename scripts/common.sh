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

# copy_tree DEST: the tree into the existing directory DEST, without .git and
# build, test or coverage products (scratch copies of test.sh, valgrind.sh and
# coverage.sh).
copy_tree() {
	tar -C "$MSGQ_ROOT" -cf - --exclude=./.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude='*.gcda' --exclude='*.gcno' --exclude=./results \
		--exclude=./output_iso --exclude='./tmp_check*' --exclude='./regression.*' \
		--exclude=./test-results --exclude=./log --exclude=./test/node/node_modules . |
		tar -C "$1" -xf -
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

# bench_cluster NAME [postgresql.conf line ...]: the throwaway cluster of a
# benchmark script (bench/streams.sh, bench/churn.sh, bench/fifo.sh) on port
# $PORT, private socket only: RUNNER owns it (TEST_USER when run as root), it
# lives in WORK (/tmp/msgq-NAME.*, removed at exit), preloads msgq and has the
# settings these benchmarks share, plus the lines given.  psqlx runs psql on it.
bench_cluster() {
	local name=$1 line
	shift
	if is_root; then RUNNER=$TEST_USER; else RUNNER=$(id -un); fi
	WORK=$(mktemp -d "/tmp/msgq-$name.XXXXXX")
	chmod 755 "$WORK"
	is_root && chown "$RUNNER" "$WORK"
	trap bench_cluster_stop EXIT
	as_user "$RUNNER" initdb -D "$WORK/data" -E UTF8 --locale=C.UTF-8 >/dev/null
	{
		cat <<-CONF
			port = $PORT
			listen_addresses = ''
			unix_socket_directories = '$WORK'
			shared_preload_libraries = 'msgq'
			shared_buffers = 1GB
			max_wal_size = 8GB
			checkpoint_timeout = 30min
		CONF
		for line in "$@"; do echo "$line"; done
	} >>"$WORK/data/postgresql.conf"
	as_user "$RUNNER" pg_ctl -D "$WORK/data" -l "$WORK/log" -w start >/dev/null
}
bench_cluster_stop() {
	as_user "$RUNNER" pg_ctl -D "$WORK/data" stop -m immediate >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
psqlx() { as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
