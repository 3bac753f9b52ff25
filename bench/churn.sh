#!/usr/bin/env bash
# Churn benchmark (make bench-churn): a steady offered load of producers and
# consumers against one queue, for msgq and for the hand-written SKIP LOCKED
# queue of BENCH.md, one after the other on the same throwaway cluster. During
# the middle third of each run another session holds a REPEATABLE READ snapshot
# open, so vacuum cannot remove the dead tuples the churn leaves behind.
# Every CHURN_SAMPLE seconds it records the messages consumed and the on-disk
# size of the queue's table (with its indexes), and prints both runs side by
# side. With CHURN_RECORD=1 it appends the table to bench/RESULTS.md.
#
# Environment:
#   CHURN_SECONDS   length of each run (600)
#   CHURN_SAMPLE    sampling interval in seconds (60)
#   CHURN_RATE      offered load in messages per second, produced and consumed (400)
#   CHURN_CLIENTS   consumer clients (4); producers: 2
#   CHURN_PORT      port of the cluster (54332, private socket only)
#   CHURN_FIFO_GROUPS  N > 0: a third run on a FIFO queue, producers sending
#                   to one of N message groups at random with a random
#                   deduplication id; its size counts msgq.fifo_dedup too (0)
#   CHURN_RECORD    1: append the results to bench/RESULTS.md (default 1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

SECONDS_RUN=${CHURN_SECONDS:-600}
SAMPLE=${CHURN_SAMPLE:-60}
RATE=${CHURN_RATE:-400}
CLIENTS=${CHURN_CLIENTS:-4}
PORT=${CHURN_PORT:-54332}
RECORD=${CHURN_RECORD:-1}
FIFO_GROUPS=${CHURN_FIFO_GROUPS:-0}
PAYLOAD='{"order_id": 123456789, "customer": "c-000123", "status": "paid", "items": [{"sku": "A-1001", "qty": 2, "price": 12.5}, {"sku": "B-2002", "qty": 1, "price": 17.5}], "total": 42.5, "currency": "EUR"}'

[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || build_and_install >/dev/null
bench_cluster churn 'autovacuum_naptime = 10s'
export PGHOST=$WORK PGPORT=$PORT PGDATABASE=postgres

psqlx -c "CREATE EXTENSION msgq" \
	-c "CREATE TABLE q (id bigserial PRIMARY KEY, vt timestamptz NOT NULL DEFAULT now(), read_ct int NOT NULL DEFAULT 0, payload jsonb)" \
	-c "CREATE INDEX ON q (vt)" \
	-c "SELECT msgq.create_queue('churn')" \
	-c "SELECT msgq.create_queue('churn.fifo', '{\"FifoQueue\": \"true\"}')"

# pgbench scripts: every statement returns exactly one row, so \gset never
# fails on an empty queue.
cat >"$WORK/produce_msgq.sql" <<'EOF'
SELECT message_id FROM msgq.send_message('churn', :payload);
EOF
cat >"$WORK/consume_msgq.sql" <<'EOF'
SELECT COALESCE((SELECT receipt_handle FROM msgq.receive_message('churn', wait_time_seconds => 1)), '') AS h \gset
SELECT CASE WHEN :h <> '' THEN msgq.delete_message('churn', :h) END;
EOF
cat >"$WORK/produce_baseline.sql" <<'EOF'
INSERT INTO q (payload) VALUES (:payload);
EOF
cat >"$WORK/produce_fifo.sql" <<'EOF'
\set g random(1, :groups)
\set d random(1, 9000000000000000000)
SELECT message_id FROM msgq.send_message('churn.fifo', :payload, message_group_id => 'g' || :g,
	message_deduplication_id => 'd' || :d);
EOF
cat >"$WORK/consume_fifo.sql" <<'EOF'
SELECT COALESCE((SELECT receipt_handle FROM msgq.receive_message('churn.fifo', wait_time_seconds => 1)), '') AS h \gset
SELECT CASE WHEN :h <> '' THEN msgq.delete_message('churn.fifo', :h) END;
EOF
cat >"$WORK/consume_baseline.sql" <<'EOF'
WITH c AS (SELECT id FROM q WHERE vt <= now() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED),
     u AS (UPDATE q SET vt = now() + interval '30 seconds', read_ct = read_ct + 1 FROM c WHERE q.id = c.id RETURNING q.id)
SELECT COALESCE((SELECT id FROM u), 0) AS qid \gset
DELETE FROM q WHERE id = :qid;
EOF
chown "$RUNNER" "$WORK"/*.sql 2>/dev/null || true

# consumed(kind): messages consumed so far
consumed() {
	if [ "$1" = msgq ] || [ "$1" = fifo ]; then
		psqlx -Atc "SELECT (SELECT last_value FROM msgq.message_seq) - (SELECT count(*) FROM msgq.message)"
	else
		psqlx -Atc "SELECT (SELECT last_value FROM q_id_seq) - (SELECT count(*) FROM q)"
	fi
}
size_of() {
	if [ "$1" = msgq ]; then
		psqlx -Atc "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('msgq.message')"
	elif [ "$1" = fifo ]; then
		psqlx -Atc "SELECT sum(pg_total_relation_size(relid)) + pg_total_relation_size('msgq.fifo_dedup')
		              FROM pg_partition_tree('msgq.message')"
	else
		psqlx -Atc "SELECT pg_total_relation_size('q')"
	fi
}

run() {
	local kind=$1 t=0 prev now
	local out="$WORK/$kind.samples"
	: >"$out"
	as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" pgbench -n -M prepared -c 2 -j 1 \
		-R "$RATE" -T "$SECONDS_RUN" -D payload="$PAYLOAD" -D groups="$FIFO_GROUPS" \
		-f "$WORK/produce_$kind.sql" postgres \
		>"$WORK/$kind.produce.log" 2>&1 &
	local ppid=$!
	as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" pgbench -n -M prepared -c "$CLIENTS" -j 2 \
		-T "$SECONDS_RUN" -f "$WORK/consume_$kind.sql" postgres \
		>"$WORK/$kind.consume.log" 2>&1 &
	local cpid=$!
	# the middle third: a session holds a snapshot
	(
		sleep $((SECONDS_RUN / 3))
		psqlx -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM pg_class" \
			-c "SELECT pg_sleep($((SECONDS_RUN / 3)))" -c "COMMIT" >/dev/null
	) &
	local hpid=$!
	prev=$(consumed "$kind")
	while [ "$t" -lt "$SECONDS_RUN" ]; do
		sleep "$SAMPLE"
		t=$((t + SAMPLE))
		now=$(consumed "$kind")
		echo "$t $(((now - prev) / SAMPLE)) $(size_of "$kind")" >>"$out"
		prev=$now
	done
	wait "$ppid" "$cpid" "$hpid" || true
}

echo "churn: ${SECONDS_RUN}s per run, offered load ${RATE} msg/s, $CLIENTS consumers, snapshot held from $((SECONDS_RUN / 3))s to $((2 * SECONDS_RUN / 3))s"
run msgq
run baseline
if [ "$FIFO_GROUPS" -gt 0 ]; then run fifo; fi

table=$(mktemp)
if [ "$FIFO_GROUPS" -gt 0 ]; then
	{
		echo "| second | msgq consumed msg/s | msgq table+index size | SKIP LOCKED queue consumed msg/s | its table+index size | msgq FIFO ($FIFO_GROUPS groups) consumed msg/s | its size, with msgq.fifo_dedup |"
		echo "|---:|---:|---:|---:|---:|---:|---:|"
		paste -d' ' "$WORK/msgq.samples" "$WORK/baseline.samples" "$WORK/fifo.samples" |
			awk '{ printf "| %d | %d | %.1f MB | %d | %.1f MB | %d | %.1f MB |\n", $1, $2, $3 / 1048576, $5, $6 / 1048576, $8, $9 / 1048576 }'
	} >"$table"
else
	{
		echo "| second | msgq consumed msg/s | msgq table+index size | SKIP LOCKED queue consumed msg/s | its table+index size |"
		echo "|---:|---:|---:|---:|---:|"
		paste -d' ' "$WORK/msgq.samples" "$WORK/baseline.samples" |
			awk '{ printf "| %d | %d | %.1f MB | %d | %.1f MB |\n", $1, $2, $3 / 1048576, $5, $6 / 1048576 }'
	} >"$table"
fi
cat "$table"

if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): churn"
		echo
		echo "Command: \`CHURN_SECONDS=$SECONDS_RUN CHURN_SAMPLE=$SAMPLE CHURN_RATE=$RATE CHURN_CLIENTS=$CLIENTS CHURN_FIFO_GROUPS=$FIFO_GROUPS bench/churn.sh\`;" \
			"2 producers at ${RATE} msg/s in all, $CLIENTS consumers (receive 1 + delete), a REPEATABLE READ" \
			"snapshot held from $((SECONDS_RUN / 3)) s to $((2 * SECONDS_RUN / 3)) s; shared_buffers 1GB, autovacuum_naptime 10s."
		echo
		cat "$table"
	} >>"$ROOT/bench/RESULTS.md"
fi
rm -f "$table"
