#!/usr/bin/env bash
# SNS filter policy benchmark (bench/filter.sh), on a throwaway cluster.
#
#   single   msgq.filter_policy_matches calls per second (each call parses
#            and validates the policy, prepares the message and matches)
#            for a simple and two complex policies, against a hand-written
#            jsonb_path_exists query of the same policy on the same message
#            (the reference parses the body text into jsonb per call; its
#            jsonpath is parsed once), in plpgsql loops timed with
#            clock_timestamp(); and the compiled policy alone (what publish
#            pays with the policy cached): microseconds per message
#   set      one topic's subscriptions: 10, 1,000 and 10,000 policies, each
#            different, of which the message matches exactly one; the
#            MsgqFilterSet index against matching the compiled policies one
#            by one: microseconds per message (message preparation
#            included), and the time to compile and index them
#
# The set is measured through msgq_filter_set_bench (a benchmark entry point
# of the msgq library, created here in the scratch cluster) and its answers
# checked through msgq_filter_set_check.  Medians of FILTER_RUNS runs.
#
# Environment:
#   FILTER_CALLS     calls per single-policy run (20000)
#   FILTER_MESSAGES  messages per set run (20000; one-by-one runs scale it
#                    down with the number of policies)
#   FILTER_RUNS      runs per measurement (3); the median is reported
#   FILTER_PORT      port of the cluster (54336, private socket only)
#   BENCH_SKIP_BUILD 1: use the installed msgq as it is
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

CALLS=${FILTER_CALLS:-20000}
MESSAGES=${FILTER_MESSAGES:-20000}
RUNS=${FILTER_RUNS:-3}
PORT=${FILTER_PORT:-54336}

[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || build_and_install >/dev/null
bench_cluster filter

psqlx -f "$ROOT/bench/filter_setup.sql" >/dev/null

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
q() { psqlx -At -c "$1"; }

# single NAME ID: the policy of bench.single row ID
single_rows=()
single() {
	local name=$1 id=$2 i a b c
	local as=() bs=() cs=()
	for i in $(seq 1 "$RUNS"); do
		a=$(q "SELECT bench.rate_fpm($id, $CALLS)")
		b=$(q "SELECT bench.rate_path($id, $CALLS)")
		c=$(q "SELECT bench.compiled_us($id, $CALLS)")
		as+=("$a")
		bs+=("$b")
		cs+=("$c")
		echo "  $name run $i: filter_policy_matches $a/s, jsonb_path_exists $b/s, compiled $c us" >&2
	done
	a=$(printf '%s\n' "${as[@]}" | median)
	b=$(printf '%s\n' "${bs[@]}" | median)
	c=$(printf '%s\n' "${cs[@]}" | median)
	single_rows+=("$(awk -v n="$name" -v a="$a" -v b="$b" -v c="$c" \
		'BEGIN { printf "| %s | %.0f | %.0f | %.2f | %.2f |", n, a, b, a / b, c }')")
}

# setrun KIND N: N policies of KIND (bench/filter_setup.sql), one matching
set_rows=()
setrun() {
	local kind=$1 n=$2 i r s l bm matched
	local ss=() ls=() bms=()
	local lm=$((MESSAGES * 10 / n))
	[ "$lm" -lt 200 ] && lm=200
	[ "$lm" -gt "$MESSAGES" ] && lm=$MESSAGES
	q "SELECT bench.check_set('$kind', $n)" >/dev/null
	for i in $(seq 1 "$RUNS"); do
		r=$(q "SELECT array_to_string(bench.set_run('$kind', $n, $MESSAGES, true), ' ')")
		bm=$(cut -d' ' -f1 <<<"$r")
		s=$(cut -d' ' -f2 <<<"$r")
		matched=$(cut -d' ' -f3 <<<"$r")
		l=$(q "SELECT (bench.set_run('$kind', $n, $lm, false))[2]")
		ss+=("$s")
		ls+=("$l")
		bms+=("$bm")
		echo "  $kind n=$n run $i: set $s us, one by one $l us, build $bm ms, matched $matched" >&2
	done
	s=$(printf '%s\n' "${ss[@]}" | median)
	l=$(printf '%s\n' "${ls[@]}" | median)
	bm=$(printf '%s\n' "${bms[@]}" | median)
	set_rows+=("$(awk -v k="$kind" -v n="$n" -v s="$s" -v l="$l" -v b="$bm" -v m="$matched" \
		'BEGIN { printf "| %s | %d | %.2f | %.2f | %.1f | %.1f | %d |", k, n, s, l, l / s, b, m }')")
}

echo "filter: $CALLS calls per single-policy run, $MESSAGES messages per set run, $RUNS runs"
single "simple, MessageAttributes" 1
single "complex, MessageAttributes" 2
single "complex, MessageBody" 3
for kind in exact mixed body; do
	for n in 10 1000 10000; do setrun "$kind" "$n"; done
done

echo "| policy | filter_policy_matches calls/s | jsonb_path_exists calls/s | ratio | compiled policy, us per message |"
echo "|---|---:|---:|---:|---:|"
printf '%s\n' "${single_rows[@]}"
echo
echo "| policies | n | set, us per message | one by one, us per message | speed-up | compile + index, ms | matched |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${set_rows[@]}"
