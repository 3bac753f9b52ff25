#!/usr/bin/env bash
# Long runs of the filter-policy fuzzer (src/filter_fuzz.c) by hand, on a
# throwaway cluster.  `make test` runs one fixed seed
# (sql/filter_fuzz.sql; 100,000 inputs); this runs as many as asked, from a new seed each
# time unless given, in rounds of FUZZ_ROUND inputs (one SQL call each: about
# 4 us per input on the CI machine),
# and stops at the first round with a finding.
#
# Environment:
#   FUZZ_ITERATIONS  inputs in all (1000000)
#   FUZZ_ROUND       inputs per call (50000)
#   FUZZ_SEED        first seed (random); round i uses FUZZ_SEED + i
#   FUZZ_MAX_MS      an input slower than this is a finding (100)
#   FUZZ_PORT        port of the cluster (54338, private socket only)
#   BENCH_SKIP_BUILD 1: use the installed msgq as it is
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/common.sh
source "$ROOT/scripts/common.sh"

TOTAL=${FUZZ_ITERATIONS:-1000000}
ROUND=${FUZZ_ROUND:-50000}
SEED=${FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}
MAX_MS=${FUZZ_MAX_MS:-100}
PORT=${FUZZ_PORT:-54338}

[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || build_and_install >/dev/null
bench_cluster fuzz "msgq.worker_enabled = off"
psqlx -c "CREATE EXTENSION msgq" \
	-c "CREATE FUNCTION filter_fuzz(bigint, int, int) RETURNS jsonb AS 'msgq', 'msgq_filter_fuzz' LANGUAGE C STRICT"

echo "filter fuzz: $TOTAL inputs from seed $SEED, rounds of $ROUND, inputs slower than $MAX_MS ms are findings"
done_inputs=0
round=0
while [ "$done_inputs" -lt "$TOTAL" ]; do
	n=$(( TOTAL - done_inputs < ROUND ? TOTAL - done_inputs : ROUND ))
	r=$(psqlx -At -c "SELECT filter_fuzz($SEED + $round, $n, $MAX_MS) - 'error_shapes'")
	echo "seed $((SEED + round)): $r"
	if ! psqlx -At -c "SELECT ('$r'::jsonb->>'unexpected')::int + ('$r'::jsonb->>'disagreements')::int
			+ ('$r'::jsonb->>'slow')::int = 0 AND ('$r'::jsonb->>'leaked_bytes')::bigint < 262144" | grep -q t; then
		echo "FINDING with seed $((SEED + round)) ($n inputs): rerun with FUZZ_SEED=$((SEED + round)) FUZZ_ITERATIONS=$n"
		exit 1
	fi
	done_inputs=$((done_inputs + n))
	round=$((round + 1))
done
echo "no finding in $done_inputs inputs"
