#!/usr/bin/env bash
# make valgrind: run test suites with every server process under Valgrind's
# memcheck, then list each error report in msgq's code.
#
#   VALGRIND_REGRESS   pg_regress tests (default: every one but outbox_large,
#                      whose 100,001 sends take hours under Valgrind)
#   VALGRIND_TAP       TAP files (default: the AWS endpoint's, which parse
#                      what the network sends: 023 and 026)
#   VALGRIND_ISOLATION isolation specs (default: none)
#
# An empty variable skips that suite. The tests run ten to fifty times
# slower than usual, so a test that waits on real time may fail here and
# pass in make test: their results are printed for information only. The
# exit status says whether Valgrind found an error in msgq's code, after
# the suppressions of test/valgrind.supp (reports about PostgreSQL's own
# code, not msgq's). One run takes about an hour on two cores; it is not
# part of make test. Logs stay in the printed scratch directory.
#
# What it can see: Debian's server is not built with USE_VALGRIND, so
# memcheck knows nothing of palloc's chunks inside a memory context's
# blocks. It reports uninitialised values from the stack and from malloc
# (palloc's large chunks, libcurl's and nghttp2's buffers) reaching a
# branch or a system call, and reads or writes outside malloc's blocks;
# it misses an overrun into the next palloc chunk and a use after pfree.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$MSGQ_ROOT"
unset LC_ALL LC_CTYPE LC_COLLATE LC_MESSAGES LC_MONETARY LC_NUMERIC LC_TIME LANGUAGE
export LANG=C.UTF-8

./scripts/deps.sh
if ! command -v valgrind >/dev/null; then
	echo "=== installing valgrind"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends valgrind
fi
build_and_install

if is_root; then RUNNER=$TEST_USER; else RUNNER=$(id -un); fi

lists=$(make --no-print-directory -s list-tests)
all_regress=$(sed -n 's/^regress //p' <<<"$lists")
REGRESS_SET=${VALGRIND_REGRESS-$(tr ' ' '\n' <<<"$all_regress" | grep -vx outbox_large | tr '\n' ' ')}
TAP_SET=${VALGRIND_TAP-test/t/023_aws_endpoint.pl test/t/026_endpoint_stress.pl}
ISOLATION_SET=${VALGRIND_ISOLATION-}

WORK=$(mktemp -d /tmp/msgq-valgrind.XXXXXX)
chmod 755 "$WORK"
TREE=$WORK/tree
VGBIN=$WORK/bin
VGLOG=$WORK/vg
mkdir "$TREE" "$VGBIN" "$VGLOG" "$WORK/tmp"
copy_tree "$TREE"

# A bin directory where postgres is Valgrind running the real server, and
# pg_ctl is a copy of the real one, so that it starts the postgres next to
# it. Everything else (initdb included: it runs at full speed) links to
# the real binaries.
for f in "$PGBIN"/*; do ln -s "$f" "$VGBIN/${f##*/}"; done
rm "$VGBIN/postgres" "$VGBIN/pg_ctl"
cp "$PGBIN/pg_ctl" "$VGBIN/pg_ctl"
cat >"$VGBIN/postgres" <<EOF
#!/bin/sh
# "postgres -V" is how pg_ctl and pg_regress check the server's version
case "\$1" in -V|--version) exec "$PGBIN/postgres" "\$@" ;; esac
exec valgrind --quiet --tool=memcheck --leak-check=no --track-origins=yes \\
	--num-callers=30 --error-limit=no --fullpath-after= \\
	--suppressions="$TREE/test/valgrind.supp" \\
	--log-file="$VGLOG/%p.log" "$PGBIN/postgres" "\$@"
EOF
chmod 755 "$VGBIN/postgres"
if is_root; then chown -R "$TEST_USER:" "$WORK"; fi

run() { (cd "$TREE" && as_user "$RUNNER" env TMPDIR="$WORK/tmp" "$@"); }

echo "=== scratch directory: $WORK"
if [ -n "$REGRESS_SET" ]; then
	echo "=== regress under valgrind: $REGRESS_SET"
	run make -s --no-print-directory installcheck-regress REGRESS="$REGRESS_SET" \
		EXTRA_REGRESS_OPTS="--bindir=$VGBIN" 2>&1 | grep -E '^(test |     | *[a-z_]+ +\.\.\.)' || true
fi
if [ -n "$ISOLATION_SET" ]; then
	echo "=== isolation under valgrind: $ISOLATION_SET"
	run make -s --no-print-directory installcheck-isolation ISOLATION="$ISOLATION_SET" \
		EXTRA_REGRESS_OPTS="--bindir=$VGBIN" 2>&1 | grep -E '\.\.\. ' || true
fi
if [ -n "$TAP_SET" ]; then
	echo "=== TAP under valgrind: $TAP_SET"
	run make -s --no-print-directory installcheck-tap bindir="$VGBIN" \
		PROVE_TESTS="$TAP_SET" 2>&1 | grep -E '^(test/|Files=|Result:)' || true
fi

# Every error report left after the suppressions, grouped by its first
# frames.
echo "=== valgrind reports"
python3 - "$VGLOG" "$MSGQ_ROOT/src/" <<'EOF'
import collections, glob, re, sys

# A report is msgq's when one of the first four frames of its stack, or of
# the stack that made the value or the block it names, is in msgq's sources.
def ours(stacks):
    return any(sys.argv[2] in frame for st in stacks for frame in st[:4])

reports = collections.Counter()
example = {}
mine = set()
processes = 0
for path in glob.glob(sys.argv[1] + "/*.log"):
    processes += 1
    lines = [re.sub(r"^==\d+== ?", "", l.rstrip("\n")) for l in open(path, errors="replace")]
    i = 0
    while i < len(lines):
        head = lines[i]
        if not head or head.startswith(" ") or i + 1 >= len(lines) or \
                not re.match(r"\s+at 0x", lines[i + 1]):
            i += 1
            continue
        j = i + 1
        stacks = [[]]
        while j < len(lines) and lines[j]:
            if re.match(r"\s+(at|by) 0x", lines[j]):
                stacks[-1].append(lines[j].strip())
            else:
                stacks.append([])
            j += 1
        key = head + "\n  " + "\n  ".join(stacks[0][:8])
        reports[key] += 1
        example.setdefault(key, "\n".join(lines[i:j]))
        if ours(stacks):
            mine.add(key)
        i = j

print(f"{processes} server processes logged, {sum(reports.values())} reports, "
      f"{len(reports)} distinct, {len(mine)} in msgq's code")
for k in mine:
    print(f"--- {reports[k]} time(s)\n{example[k]}")
for k in reports:
    if k not in mine:
        print(f"--- not msgq's ({reports[k]} time(s)):\n{k}")
sys.exit(1 if mine else 0)
EOF
