#!/usr/bin/env bash
# make test: install the dependencies, build and install msgq, then run every
# test suite (pg_regress, isolation, TAP, pgTAP) in a scratch copy of the tree,
# as the unprivileged user msgqtest when started by root (initdb refuses root).
# Each test file counts once. Diffs and logs land in ./test-results/, the list
# of failures in test-results/failed.txt, and the last line printed is
# "N passed, N failed". Exits non-zero if anything failed.
#
# MSGQ_KEEP_TMP=1 keeps the scratch copy in /tmp for inspection.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$MSGQ_ROOT"

# One locale everywhere, so output does not depend on the caller's: UTF8
# databases with C.UTF-8 collation.
unset LC_ALL LC_CTYPE LC_COLLATE LC_MESSAGES LC_MONETARY LC_NUMERIC LC_TIME LANGUAGE
export LANG=C.UTF-8

RESULTS=$MSGQ_ROOT/test-results
# The pgTAP cluster listens only on a socket in its own scratch directory,
# so this fixed port cannot collide with another server.
PGTAP_PORT=54329

if is_root; then RUNNER=$TEST_USER; else RUNNER=$(id -un); fi

passed=0
failed=0
failures=()
WORK=          # scratch directory: WORK/tree is the copy, WORK/pgtap the cluster
TREE=
pgtap_data=    # set while the pgTAP cluster may be running

pass() { passed=$((passed + 1)); }
fail() {
	failed=$((failed + 1))
	failures+=("$1")
}

# Run a command as the test user inside the scratch copy. TMPDIR points into
# the scratch directory, so what tests leave there (the TAP framework keeps its
# socket directories after a failure) goes away with it.
run() { (cd "$TREE" && as_user "$RUNNER" env TMPDIR="$WORK/tmp" "$@"); }

# Copy files or directories (paths relative to the copy) to test-results/.
copy_back() {
	local p
	for p in "$@"; do
		if [ -e "$TREE/$p" ]; then
			mkdir -p "$RESULTS/$(dirname "$p")"
			cp -R "$TREE/$p" "$RESULTS/$(dirname "$p")/"
		fi
	done
}

# Stop the pgTAP cluster and remove the scratch copy; safe to call twice.
cleanup() {
	if [ -n "$pgtap_data" ]; then
		run pg_ctl -D "$pgtap_data" -m fast -w stop >/dev/null 2>&1 || true
		pgtap_data=
	fi
	if [ -n "$WORK" ] && [ -z "${MSGQ_KEEP_TMP:-}" ]; then
		rm -rf "$WORK"
	fi
	WORK=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Print the failures and the summary line, then exit.
finish() {
	cleanup
	if [ "$failed" -gt 0 ]; then
		printf '%s\n' "${failures[@]}" >"$RESULTS/failed.txt"
		echo
		echo "Failed:"
		printf '  %s\n' "${failures[@]}"
	fi
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}

# The status word pg_regress printed for test $1 in log $2 ("ok", "FAILED",
# ...), or nothing if the test never reported. Lines look like
# "test queue                     ... ok           21 ms".
result_of() {
	awk -v name="$1" '
		/ \.\.\. / {
			split($0, part, / \.\.\. /)
			head = part[1]
			sub(/^ *(test )? */, "", head)
			sub(/ +$/, "", head)
			if (head == name) { split(part[2], word, " "); status = word[1] }
		}
		END { print status }' "$2"
}

# pg_regress_suite LABEL MAKE_TARGET INPUT_PATTERN NAME...
# Runs one pg_regress or pg_isolation_regress suite and counts each test. A
# test with no result line (e.g. the temporary instance failed to start)
# counts as failed. Skipped when none of the input files exists yet.
pg_regress_suite() {
	local label=$1 target=$2 pattern=$3
	shift 3
	local n found=0 rc=0 before=$failed log=$RESULTS/$label.log
	for n in "$@"; do
		[ -e "$TREE/${pattern/\%/$n}" ] && found=1
	done
	if [ "$found" -eq 0 ]; then
		echo "=== $label: no test files yet, skipped"
		return 0
	fi
	echo "=== $label"
	run make -s --no-print-directory "$target" 2>&1 | tee "$log" || rc=$?
	for n in "$@"; do
		case "$(result_of "$n" "$log")" in
			ok) pass ;;
			"") fail "$label: $n (no result)" ;;
			*) fail "$label: $n" ;;
		esac
	done
	if [ "$rc" -ne 0 ] && [ "$failed" -eq "$before" ]; then
		fail "$label: make $target exited with status $rc"
	fi
}

# TAP: prove runs one file at a time, so each file's exit status is its result;
# its logs (tmp_check/log, wiped by the next run) are copied back after each.
tap_suite() {
	local f rc files=()
	local IFS=' '
	shopt -s nullglob
	# PROVE_TESTS from the Makefile, a glob expanded inside the copy.
	# shellcheck disable=SC2086
	for f in $(cd "$TREE" && echo $TAP_GLOB); do
		files+=("$f")
	done
	shopt -u nullglob
	if [ ${#files[@]} -eq 0 ]; then
		echo "=== TAP: no test files yet, skipped"
		return 0
	fi
	echo "=== TAP"
	for f in "${files[@]}"; do
		rc=0
		run make -s --no-print-directory installcheck-tap PROVE_TESTS="$f" 2>&1 |
			tee -a "$RESULTS/tap.log" || rc=$?
		copy_back tmp_check/log
		if [ "$rc" -eq 0 ]; then pass; else fail "TAP: $f"; fi
	done
}

# pgTAP: a throwaway cluster with msgq ($EXT) preloaded, one database with the
# pgtap and msgq extensions, then pg_prove once per file.
pgtap_suite() {
	local f rc files=() dir=$WORK/pgtap out=$RESULTS/pgtap
	shopt -s nullglob
	files=("$TREE"/test/pgtap/*.sql)
	shopt -u nullglob
	if [ ${#files[@]} -eq 0 ]; then
		echo "=== pgTAP: no test files yet, skipped"
		return 0
	fi
	echo "=== pgTAP"
	mkdir -p "$out"
	local pgenv=(env PGHOST="$dir" PGPORT="$PGTAP_PORT" PGDATABASE=msgq_pgtap)
	run mkdir "$dir"
	if ! run initdb --no-sync --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
		-D "$dir/data" >"$out/initdb.log" 2>&1; then
		fail "pgTAP: initdb failed (test-results/pgtap/initdb.log)"
		return 0
	fi
	run tee -a "$dir/data/postgresql.conf" >/dev/null <<-EOF
		port = $PGTAP_PORT
		listen_addresses = ''
		unix_socket_directories = '$dir'
		shared_preload_libraries = '$EXT'
		max_worker_processes = 16
		fsync = off
		include_if_exists = '$TREE/msgq.conf'
	EOF
	pgtap_data=$dir/data
	if ! run pg_ctl -D "$dir/data" -l "$dir/postmaster.log" -w -t 60 start >/dev/null; then
		cp "$dir/postmaster.log" "$out/" 2>/dev/null || true
		fail "pgTAP: the cluster did not start (test-results/pgtap/postmaster.log)"
		return 0
	fi
	if ! run "${pgenv[@]}" createdb msgq_pgtap ||
		! run "${pgenv[@]}" psql -X -q -v ON_ERROR_STOP=1 \
			-c 'CREATE EXTENSION pgtap' -c "CREATE EXTENSION $EXT"; then
		fail "pgTAP: could not set up the test database"
	else
		for f in "${files[@]}"; do
			f=test/pgtap/${f##*/}
			rc=0
			run "${pgenv[@]}" make --no-print-directory -s pgtap PGTAP_TESTS="$f" 2>&1 |
				tee "$out/$(basename "$f" .sql).out" || rc=$?
			if [ "$rc" -eq 0 ]; then pass; else fail "pgTAP: $f"; fi
		done
	fi
	run pg_ctl -D "$dir/data" -m fast -w stop >/dev/null || true
	pgtap_data=
	cp "$dir/postmaster.log" "$out/"
}

rm -rf "$RESULTS"
mkdir -p "$RESULTS"

echo "=== deps"
./scripts/deps.sh || { fail "setup: scripts/deps.sh"; finish; }
build_and_install || { fail "setup: build or install"; finish; }

# The scratch copy, without .git and build or test products, readable by the
# test user whatever the permissions of the checkout.
WORK=$(mktemp -d /tmp/msgq-test.XXXXXX)
chmod 755 "$WORK"
TREE=$WORK/tree
mkdir "$TREE" "$WORK/tmp"
copy_tree "$TREE"
if is_root; then chown -R "$TEST_USER:" "$WORK"; fi

# The AWS SDK for the endpoint's TAP test (test/t/024_aws_sdk.pl), as the
# committed package-lock.json pins it; that test fails if this did.
echo "=== npm ci (test/node)"
run env npm_config_cache="$WORK/tmp/npm-cache" npm ci --prefix test/node \
	--no-audit --no-fund --loglevel=error 2>&1 | tail -n 5 || true

# The extension and test names, as the Makefile lists them.
lists=$(run make --no-print-directory -s list-tests) ||
	{ fail "setup: make list-tests"; finish; }
read -r -a REGRESS_TESTS <<<"$(sed -n 's/^regress //p' <<<"$lists")"
read -r -a ISOLATION_TESTS <<<"$(sed -n 's/^isolation //p' <<<"$lists")"
TAP_GLOB=$(sed -n 's/^tap //p' <<<"$lists")
EXT=$(sed -n 's/^extension //p' <<<"$lists")

pg_regress_suite regress installcheck-regress 'sql/%.sql' "${REGRESS_TESTS[@]}"
copy_back regression.diffs regression.out results log

pg_regress_suite isolation installcheck-isolation 'test/specs/%.spec' "${ISOLATION_TESTS[@]}"
copy_back output_iso

tap_suite
pgtap_suite

finish
