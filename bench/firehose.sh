#!/usr/bin/env bash
# Delivery stream benchmark (make bench-firehose): records per second through
# a delivery stream into a table against writing the same records by hand, on
# the same throwaway cluster, alternating sides; and the delivery latency at
# IntervalInSeconds 0.
#
#   throughput  FH_RECORDS JSON records of about 100 B ({"k", "n", "pad"}),
#               put in transactions of 500 by one session;
#               msgq: put_record_batch into a DirectPut delivery stream
#               (BufferingHints SizeInMBs 1, IntervalInSeconds 0) whose Table
#               destination (ColumnMapping Columns) is the sink; the worker
#               delivers while the producer puts; the rate is the records over
#               the time from the first put to the last row's insert (the
#               sink's clock_timestamp() default);
#               baseline: in each transaction, put_records of the same 500
#               records into a 1-shard stream plus a hand-written
#               INSERT INTO sink SELECT ... FROM jsonb_to_recordset(...) of
#               them; the rate is the records over the time from the first
#               transaction to the last row's insert.
#   latency     a delivery stream at IntervalInSeconds 0; a procedure puts one
#               record per transaction, 20 ms apart, and keeps
#               clock_timestamp() after each COMMIT; the sink keeps
#               clock_timestamp() at the insert: the difference, p50/p99/max.
#
# Environment:
#   FH_RECORDS     records per throughput run (100000)
#   FH_RUNS        runs per side (3); the median is reported
#   FH_LAT_EVENTS  latency events (500)
#   FH_PORT        port of the cluster (54335, private socket only)
#   FH_RECORD      1: append the tables to bench/RESULTS.md (default 1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

RECORDS=${FH_RECORDS:-100000}
RUNS=${FH_RUNS:-3}
LAT_EVENTS=${FH_LAT_EVENTS:-500}
PORT=${FH_PORT:-54335}
RECORD=${FH_RECORD:-1}

build_and_install >/dev/null
bench_cluster firehose "msgq.worker_naptime = 1s"

psqlx <<'EOF'
CREATE EXTENSION msgq;
CREATE TABLE sink (k text NOT NULL, n int NOT NULL, pad text,
				   at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE started (side text PRIMARY KEY, at timestamptz NOT NULL);
SELECT msgq.create_stream('hand', 1);
-- one batch of 500 records as put_record_batch takes them
CREATE FUNCTION batch(b int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(jsonb_build_object('Data', translate(encode(convert_to(
		   jsonb_build_object('k', 'k' || (b * 500 + g), 'n', b * 500 + g, 'pad', repeat('x', 60))::text,
		   'UTF8'), 'base64'), E'\n', '')))
	FROM generate_series(1, 500) g $$;
CREATE PROCEDURE put_msgq(n int) LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO started VALUES ('msgq', clock_timestamp());
  COMMIT;
  FOR b IN 0 .. n / 500 - 1 LOOP
	PERFORM count(*) FROM msgq.put_record_batch('fh', batch(b));
	COMMIT;
  END LOOP;
END $$;
CREATE PROCEDURE put_hand(n int) LANGUAGE plpgsql AS $$
DECLARE
  recs jsonb;
BEGIN
  INSERT INTO started VALUES ('hand', clock_timestamp());
  COMMIT;
  FOR b IN 0 .. n / 500 - 1 LOOP
	recs := batch(b);
	PERFORM count(*) FROM msgq.put_records('hand', (SELECT jsonb_agg(jsonb_build_object(
		'Data', r->>'Data', 'PartitionKey', 'p')) FROM jsonb_array_elements(recs) r));
	INSERT INTO sink (k, n, pad)
	SELECT x.k, x.n, x.pad
	  FROM jsonb_array_elements(recs) r,
		   jsonb_to_record(convert_from(decode(r->>'Data', 'base64'), 'UTF8')::jsonb) x(k text, n int, pad text);
	COMMIT;
  END LOOP;
END $$;
CREATE TABLE lat_put (i int PRIMARY KEY, committed timestamptz NOT NULL);
CREATE TABLE lat_sink (k text, n int, pad text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE PROCEDURE lat_writer(n int) LANGUAGE plpgsql AS $$
DECLARE
  ts timestamptz[] := '{}';
BEGIN
  FOR i IN 1..n LOOP
	PERFORM msgq.put_delivery_record('lat', convert_to(jsonb_build_object('k', 'l', 'n', i)::text, 'UTF8'));
	COMMIT;
	ts := ts || clock_timestamp();
	PERFORM pg_sleep(0.02);
  END LOOP;
  INSERT INTO lat_put SELECT i, ts[i] FROM generate_subscripts(ts, 1) i;
END $$;
SELECT msgq.create_delivery_stream('lat', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Table", "TableName": "lat_sink"}}');
EOF

reset_side() {
	psqlx -c "TRUNCATE sink, started" \
		-c "SELECT msgq.delete_delivery_stream(s) FROM msgq.list_delivery_streams() s WHERE s = 'fh'" \
		-c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
}

# records per second from the side's first put to the last row's insert,
# once the sink holds every record exactly once
rate() {
	local side=$1 got
	got=$(psqlx -tA -c "SELECT count(*) || ' ' || count(DISTINCT n) FROM sink")
	if [ "$got" != "$RECORDS $RECORDS" ]; then
		echo "firehose.sh: the sink has $got records (count, distinct), not $RECORDS" >&2
		exit 1
	fi
	psqlx -tA -c "SELECT round($RECORDS / extract(epoch FROM (SELECT max(at) FROM sink) -
			(SELECT at FROM started WHERE side = '$side')))"
}

run_msgq() {
	local i
	reset_side
	psqlx -c "SELECT msgq.create_delivery_stream('fh', '{\"BufferingHints\": {\"SizeInMBs\": 1, \"IntervalInSeconds\": 0},
			\"Destination\": {\"Type\": \"Table\", \"TableName\": \"sink\"}}')" >/dev/null
	sleep 1.5    # the worker's next pass publishes the new delivery stream
	psqlx -c "CALL put_msgq($RECORDS)"
	for i in $(seq 1 6000); do
		[ "$(psqlx -tA -c "SELECT count(*) FROM sink")" -ge "$RECORDS" ] && break
		sleep 0.05
	done
	rate msgq
}
run_base() {
	reset_side
	psqlx -c "CALL put_hand($RECORDS)"
	rate hand
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "firehose: $RECORDS records per run, $RUNS runs per side"
ms=()
bs=()
for i in $(seq 1 "$RUNS"); do
	if [ $((i % 2)) -eq 1 ]; then
		m=$(run_msgq)
		b=$(run_base)
	else
		b=$(run_base)
		m=$(run_msgq)
	fi
	ms+=("$m")
	bs+=("$b")
	echo "  run $i: delivery stream $m records/s, put_records + INSERT ... SELECT $b records/s" >&2
done
m=$(printf '%s\n' "${ms[@]}" | median)
b=$(printf '%s\n' "${bs[@]}" | median)
row=$(awk -v m="$m" -v b="$b" -v all_m="${ms[*]}" -v all_b="${bs[*]}" \
	'BEGIN { printf "| %.0f (%s) | %.0f (%s) | %.2f |", m, all_m, b, all_b, (b > 0 ? m / b : 0) }')

# latency at IntervalInSeconds 0: a put's commit to the row's insert
psqlx -c "CALL lat_writer($LAT_EVENTS)"
for i in $(seq 1 100); do
	[ "$(psqlx -tA -c "SELECT count(*) FROM lat_sink")" -ge "$LAT_EVENTS" ] && break
	sleep 0.1
done
lat=$(psqlx -tA -F ' ' -c "
	SELECT count(*),
		   round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 3),
		   round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 3),
		   round(max(ms)::numeric, 3)
	  FROM (SELECT extract(epoch FROM s.at - p.committed) * 1000 AS ms
			  FROM lat_put p JOIN lat_sink s ON s.n = p.i) d")
read -r lat_n lat_p50 lat_p99 lat_max <<<"$lat"
if [ "$lat_n" -ne "$LAT_EVENTS" ]; then
	echo "firehose.sh: $lat_n of $LAT_EVENTS latency records were delivered" >&2
	exit 1
fi
echo "  latency: $lat_n records, p50 $lat_p50 ms, p99 $lat_p99 ms, max $lat_max ms" >&2

table=$(
	echo "| delivery stream records/s, median (runs) | put_records + INSERT ... SELECT records/s, median (runs) | ratio |"
	echo "|---:|---:|---:|"
	echo "$row"
	echo
	echo "| IntervalInSeconds 0, put commit to the row's insert, $lat_n records | ms |"
	echo "|---|---:|"
	echo "| p50 | $lat_p50 |"
	echo "| p99 | $lat_p99 |"
	echo "| max | $lat_max |"
)
echo "$table"

if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): delivery streams"
		echo
		printf 'Command: `FH_RECORDS=%s FH_RUNS=%s FH_LAT_EVENTS=%s bench/firehose.sh`; shared_buffers 1GB.' \
			"$RECORDS" "$RUNS" "$LAT_EVENTS"
		printf ' Throughput: %s JSON records of about 100 B put by one session in transactions of 500;' "$RECORDS"
		printf ' msgq: put_record_batch into a delivery stream (1 MB, 0 s) delivering to a table (Columns), the worker delivering while the producer puts;'
		printf ' baseline: put_records of the same 500 records into a stream plus INSERT ... SELECT of them into the table, per transaction;'
		printf ' rate from the first put to the last row inserted; medians of %s alternating runs.' "$RUNS"
		printf ' Latency: put_delivery_record + COMMIT 20 ms apart, from clock_timestamp() after COMMIT to the row'"'"'s clock_timestamp() default.'
		echo
		echo
		echo "$table"
	} >>"$ROOT/bench/RESULTS.md"
	echo "Appended to bench/RESULTS.md"
fi
