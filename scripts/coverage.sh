#!/usr/bin/env bash
# make coverage: run the whole test suite (scripts/test.sh) on a build of
# msgq instrumented with gcov, then print the lines of each source file that
# the tests ran, and write the annotated sources (*.c.gcov) to
# test-results/coverage/.
#
# The build happens in a scratch copy of the tree that the test user may
# write to, since each server process adds its counts to src/*.gcda when it
# exits. Processes that end without exit() (killed with -9 by the crash
# tests, or stopped by a server crash) add nothing. The instrumented
# msgq.so stays installed afterwards: run make install (or make test) to
# put back an ordinary build.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$MSGQ_ROOT"

COPY=$(mktemp -d /tmp/msgq-coverage.XXXXXX)
chmod 755 "$COPY"
copy_tree "$COPY"
if is_root; then chown -R "$TEST_USER:" "$COPY"; fi
chmod -R a+rwX "$COPY/src"

rc=0
(cd "$COPY" && PG_CFLAGS="${PG_CFLAGS:-} --coverage" PG_LDFLAGS="--coverage" ./scripts/test.sh) || rc=$?

out=$MSGQ_ROOT/test-results/coverage
rm -rf "$out"
mkdir -p "$out"
cp -R "$COPY/test-results/." "$MSGQ_ROOT/test-results/" 2>/dev/null || true
(cd "$COPY" && gcov -o src src/*.c >"$out/gcov.txt" 2>&1) || true
mv "$COPY"/*.c.gcov "$out/" 2>/dev/null || true

# gcov.txt has, per file: File 'src/x.c' / Lines executed:NN.NN% of M
awk '
	/^File .src\// { f = $2; gsub(/\047/, "", f); next }
	/^Lines executed:/ && f != "" {
		split($2, p, ":"); pct = p[2]; sub(/%/, "", pct)
		n = $4; run = int(pct * n / 100 + 0.5)
		printf "%-24s %6d of %6d lines  %5.1f%%\n", f, run, n, pct | "sort -k6 -n"
		total += n; ran += run; f = ""
	}
	END {
		close("sort -k6 -n")
		printf "%-24s %6d of %6d lines  %5.1f%%\n", "all", ran, total, (total ? 100 * ran / total : 0)
	}
' "$out/gcov.txt" | tee "$out/summary.txt"
echo "annotated sources: $out/*.c.gcov (lines marked ##### never ran)"
rm -rf "$COPY"
exit "$rc"
