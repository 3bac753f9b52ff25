#!/usr/bin/env bash
# Install what building and testing msgq needs on Debian 12 (make deps).
# Runs unattended as root, or as an ordinary user with sudo. When every package
# is already installed at the right version it changes nothing and takes well
# under a second.
set -euo pipefail

PG_MAJOR=15
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
TEST_USER=msgqtest
export DEBIAN_FRONTEND=noninteractive
export PATH="$PGBIN:$PATH"

# The server, its client and its headers must be one version: these three are
# pinned together. (Contrib ships inside postgresql-15 on Debian.)
PINNED=("postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR")
# Everything else, at whatever version apt offers:
# pgTAP, pg_prove, IPC::Run for the TAP tests, the compiler and make.
OTHERS=("postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl
	libipc-run-perl make gcc libcurl4-openssl-dev zlib1g-dev libnghttp2-dev
	python3-boto3 python3-pytest)

die() { echo "deps.sh: $*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo -- "$@"
	else
		die "not root and sudo is missing: run this script as root"
	fi
}

# The installed version of a package, or nothing if it is not fully installed.
installed() {
	dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null |
		sed -n 's/^ii *|//p'
}

# Whether apt offers exactly version $2 of package $1.
offered() {
	apt-cache madison "$1" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' |
		grep -qxF -- "$2"
}

# The version apt would install for a package.
candidate() {
	apt-cache policy "$1" | awk '/Candidate:/ { print $2 }'
}

all_present() {
	local server p
	server=$(installed "${PINNED[0]}")
	[ -n "$server" ] || return 1
	for p in "${PINNED[@]}"; do
		[ "$(installed "$p")" = "$server" ] || return 1
	done
	for p in "${OTHERS[@]}"; do
		[ -n "$(installed "$p")" ] || return 1
	done
}

if all_present; then
	echo "deps: all packages present (PostgreSQL $(installed "${PINNED[0]}"))"
else
	echo "deps: installing packages"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	# Keep the installed server version if apt still offers its -dev package;
	# otherwise move server, client and -dev together to apt's candidate.
	target=$(installed "${PINNED[0]}")
	if [ -z "$target" ] || ! offered "postgresql-server-dev-$PG_MAJOR" "$target"; then
		target=$(candidate "${PINNED[0]}")
		if [ -z "$target" ] || [ "$target" = "(none)" ]; then
			die "apt offers no ${PINNED[0]} package"
		fi
	fi
	for p in "${PINNED[@]}"; do
		offered "$p" "$target" || die "apt does not offer $p version $target"
	done
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends -o Dpkg::Options::=--force-confold \
		"${PINNED[@]/%/=$target}" "${OTHERS[@]}"
	all_present || die "packages still missing or at mismatched versions after apt-get install"
fi

# Node.js and npm for the AWS SDK tests of the endpoint (test/node, npm ci).
# The machine's own Node.js is used when there is one.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "deps: installing nodejs and npm (the AWS SDK tests)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
fi

# The server, pg_config and the server headers must agree on the minor version,
# or the module could be built against headers that differ from the server.
PG_CONFIG=${PG_CONFIG:-$PGBIN/pg_config}
minor_of() { grep -oE '[0-9]+\.[0-9]+' | head -n 1; }
server_v=$("$PGBIN/postgres" --version | minor_of)
config_v=$("$PG_CONFIG" --version | minor_of)
header_v=$(sed -n 's/^#define PG_VERSION "\(.*\)"/\1/p' \
	"$("$PG_CONFIG" --includedir-server)/pg_config.h" | minor_of)
if [ "$server_v" != "$config_v" ] || [ "$server_v" != "$header_v" ]; then
	die "version mismatch: server $server_v, pg_config $config_v, server headers $header_v" \
		"(install postgresql-server-dev-$PG_MAJOR at the server's version, or rerun after apt-get update)"
fi

# An unprivileged user for the test and demo clusters (initdb refuses root).
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
	echo "deps: creating system user $TEST_USER"
	as_root useradd --system --user-group --create-home \
		--home-dir /var/lib/$TEST_USER --shell /usr/sbin/nologin "$TEST_USER"
fi
