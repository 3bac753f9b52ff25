#!/usr/bin/env bash
# FIFO queue benchmark (make bench-fifo): msgq's FIFO queues against its
# standard queues, on the same throwaway cluster, alternating sides.
#
#   send     send_message, 1 per transaction, to a FIFO queue whose messages
#            are spread over G groups (random group per send, explicit
#            random deduplication id), vs send_message to a standard queue
#   dedup    the same send with ContentBasedDeduplication (SHA-256 of the
#            body) instead of an explicit id, G = 1000, vs the standard send
#   cycle    receive 10 + delete_message_batch on a FIFO queue pre-filled
#            with FIFO_PREFILL messages over G groups, vs the same on a
#            standard queue
#   scale    the receive 10 + delete cycle at 1 and 4 clients on a queue of
#            FIFO_SCALE_MESSAGES messages over 100,000 groups vs over 10
#            groups: average latency per cycle (it should not depend on the
#            number of groups)
#
# Reported in messages per second (send, cycle) and ms per cycle (scale).
#
# Environment:
#   FIFO_SECONDS         seconds per pgbench run (5)
#   FIFO_CLIENTS         client counts ("1 4 16")
#   FIFO_GROUPS          group counts for send and cycle ("1 10 1000")
#   FIFO_RUNS            runs per side (2); the median is reported
#   FIFO_PREFILL         messages per queue for cycle runs (200000: more
#                        than a run consumes)
#   FIFO_SCALE_MESSAGES  messages per queue for the scale runs (1000000)
#   FIFO_WORKLOADS       any of "send dedup cycle scale" (all)
#   FIFO_PORT            port of the cluster (54334, private socket only)
#   FIFO_RECORD          1: append the tables to bench/RESULTS.md (default 1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

SECS=${FIFO_SECONDS:-5}
CLIENTS=${FIFO_CLIENTS:-"1 4 16"}
GROUPS_LIST=${FIFO_GROUPS:-"1 10 1000"}
RUNS=${FIFO_RUNS:-2}
PREFILL=${FIFO_PREFILL:-200000}
SCALE=${FIFO_SCALE_MESSAGES:-1000000}
PORT=${FIFO_PORT:-54334}
RECORD=${FIFO_RECORD:-1}
WORKLOADS=" ${FIFO_WORKLOADS:-send dedup cycle scale} "

[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || build_and_install >/dev/null
bench_cluster fifo 'max_locks_per_transaction = 1024'

psqlx -c "CREATE EXTENSION msgq" -c "SELECT msgq.create_queue('std')" \
	-c "SELECT msgq.create_queue('f.fifo', '{\"FifoQueue\": \"true\"}')" \
	-c "SELECT msgq.create_queue('fcb.fifo', '{\"FifoQueue\": \"true\", \"ContentBasedDeduplication\": \"true\"}')" >/dev/null

PAYLOAD='{"order_id": 123456789, "customer": "c-000123", "status": "paid", "items": [{"sku": "A-1001", "qty": 2, "price": 12.5}, {"sku": "B-2002", "qty": 1, "price": 17.5}], "total": 42.5, "currency": "EUR"}'

cat >"$WORK/send_fifo.sql" <<'EOF'
\set g random(1, :groups)
\set d random(1, 9000000000000000000)
SELECT msgq.send_message('f.fifo', :payload, message_group_id => 'g' || :g, message_deduplication_id => 'd' || :d);
EOF
cat >"$WORK/send_std.sql" <<'EOF'
SELECT msgq.send_message('std', :payload);
EOF
# content-based: the body varies, so that sends are not duplicates
cat >"$WORK/dedup_fifo.sql" <<'EOF'
\set g random(1, 1000)
\set d random(1, 9000000000000000000)
SELECT msgq.send_message('fcb.fifo', :payload || :d, message_group_id => 'g' || :g);
EOF
cat >"$WORK/dedup_std.sql" <<'EOF'
\set d random(1, 9000000000000000000)
SELECT msgq.send_message('std', :payload || :d);
EOF
for q in f.fifo std; do
	side=fifo
	[ "$q" = std ] && side=std
	cat >"$WORK/cycle_$side.sql" <<EOF
SELECT coalesce(jsonb_agg(jsonb_build_object('Id', n::text, 'ReceiptHandle', h)), '[]') AS hs FROM (SELECT row_number() OVER () AS n, receipt_handle AS h FROM msgq.receive_message('$q', max_number_of_messages => 10)) r \gset
SELECT count(*) FROM msgq.delete_message_batch('$q', :hs) WHERE jsonb_array_length(:hs) > 0;
EOF
done
chown "$RUNNER" "$WORK"/*.sql 2>/dev/null || true

# fill QUEUE MESSAGES GROUPS: send in transactions of 1000 (10 batches of 10)
fill() {
	local q=$1 n=$2 g=$3 t
	psqlx -c "TRUNCATE msgq.message" -c "TRUNCATE msgq.fifo_dedup" >/dev/null
	for t in $(seq 0 $(((n + 999) / 1000 - 1))); do
		if [ "$q" = std ]; then
			echo "SELECT count(*) FROM generate_series(0, 99) b, LATERAL msgq.send_message_batch('$q',
				(SELECT json_agg(json_build_object('Id', i::text, 'MessageBody', 'm' || ($t * 1000 + b * 10 + i)))
				   FROM generate_series(0, 9) i)) s;"
		else
			echo "SELECT count(*) FROM generate_series(0, 99) b, LATERAL msgq.send_message_batch('$q',
				(SELECT json_agg(json_build_object('Id', i::text, 'MessageBody', 'm' || ($t * 1000 + b * 10 + i),
					'MessageGroupId', 'g' || (($t * 1000 + b * 10 + i) % $g),
					'MessageDeduplicationId', 'p' || ($t * 1000 + b * 10 + i))) FROM generate_series(0, 9) i)) s;"
		fi
	done | psqlx >/dev/null
	psqlx -c "VACUUM ANALYZE msgq.message" -c "CHECKPOINT" >/dev/null
}

# run SCRIPT CLIENTS [GROUPS]: one pgbench run; prints the messages per second
# it sent or consumed (the change in stored messages: a FIFO receive may get
# fewer than 10, or none) and the average latency of its transactions (ms)
stored() { psqlx -Atc "SELECT count(*) FROM msgq.message"; }
run() {
	local before after lat
	before=$(stored)
	lat=$(as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" pgbench -n -M prepared -c "$2" -j 2 -T "$SECS" \
		-D payload="$PAYLOAD" -D groups="${3:-1}" -f "$WORK/$1.sql" postgres 2>&1 |
		awk '/^latency average/ { l = $4 } END { printf "%.3f", l }')
	after=$(stored)
	awk -v b="$before" -v a="$after" -v s="$SECS" -v l="$lat" \
		'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.1f %s\n", d / s, l }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

rows=()
# measure LABEL FIFO_SCRIPT STD_SCRIPT CLIENTS GROUPS [PREFILL]
measure() {
	local label=$1 fs=$2 ss=$3 c=$4 g=$5 pre=${6:-0} i m b
	local ms=() bs=()
	for i in $(seq 1 "$RUNS"); do
		[ "$pre" -gt 0 ] && fill f.fifo "$pre" "$g"
		m=$(run "$fs" "$c" "$g" | cut -d' ' -f1)
		[ "$pre" -gt 0 ] && fill std "$pre" 1
		b=$(run "$ss" "$c" "$g" | cut -d' ' -f1)
		ms+=("$m")
		bs+=("$b")
		echo "  $label groups=$g c=$c run $i: fifo $m msg/s, standard $b msg/s" >&2
	done
	m=$(printf '%s\n' "${ms[@]}" | median)
	b=$(printf '%s\n' "${bs[@]}" | median)
	rows+=("$(awk -v l="$label" -v c="$c" -v g="$g" -v m="$m" -v b="$b" \
		'BEGIN { printf "| %s | %d | %d | %.0f | %.0f | %.2f |", l, g, c, m, b, (b > 0 ? m / b : 0) }')")
}

echo "fifo: ${SECS}s per run, $RUNS runs per side, workloads:$WORKLOADS"
if [[ $WORKLOADS == *" send "* ]]; then
	for g in $GROUPS_LIST; do
		for c in $CLIENTS; do measure "send_message" send_fifo send_std "$c" "$g"; done
	done
fi
if [[ $WORKLOADS == *" dedup "* ]]; then
	for c in $CLIENTS; do measure "send_message, content-based deduplication" dedup_fifo dedup_std "$c" 1000; done
fi
if [[ $WORKLOADS == *" cycle "* ]]; then
	for g in $GROUPS_LIST; do
		for c in $CLIENTS; do measure "receive 10 + delete_message_batch" cycle_fifo cycle_std "$c" "$g" "$PREFILL"; done
	done
fi
scale_rows=()
if [[ $WORKLOADS == *" scale "* ]]; then
	for g in 100000 10; do
		for c in 1 4; do
			fill f.fifo "$SCALE" "$g"
			out=$(run cycle_fifo "$c")
			echo "  scale $SCALE messages over $g groups, $c clients: $out (msg/s, ms per cycle)" >&2
			scale_rows+=("| $SCALE messages over $g groups | $c | $(cut -d' ' -f2 <<<"$out") | $(cut -d' ' -f1 <<<"$out") |")
		done
	done
fi

table=""
if [ ${#rows[@]} -gt 0 ]; then
	table=$(
		echo "| workload | groups | clients | FIFO msg/s | standard msg/s | ratio FIFO/standard |"
		echo "|---|---:|---:|---:|---:|---:|"
		printf '%s\n' "${rows[@]}"
	)
fi
if [ ${#scale_rows[@]} -gt 0 ]; then
	[ -n "$table" ] && table+=$'\n\n'
	table+=$(
		echo "| FIFO receive 10 + delete, queue of | clients | ms per cycle | messages/s |"
		echo "|---|---:|---:|---:|"
		printf '%s\n' "${scale_rows[@]}"
	)
fi
echo "$table"

if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): FIFO queues"
		echo
		printf 'Command: `FIFO_SECONDS=%s FIFO_RUNS=%s FIFO_CLIENTS="%s" FIFO_GROUPS="%s" FIFO_PREFILL=%s FIFO_SCALE_MESSAGES=%s FIFO_WORKLOADS="%s" bench/fifo.sh`;' \
			"$SECS" "$RUNS" "$CLIENTS" "$GROUPS_LIST" "$PREFILL" "$SCALE" "$(echo $WORKLOADS)"
		printf ' shared_buffers 1GB; pgbench `-M prepared -j 2`, medians of %s alternating runs per side;' "$RUNS"
		printf ' baseline: the same calls on a standard queue; payload %s bytes of JSON.' "${#PAYLOAD}"
		echo
		echo
		echo "$table"
	} >>"$ROOT/bench/RESULTS.md"
	echo "Appended to bench/RESULTS.md"
fi
