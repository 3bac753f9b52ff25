#!/usr/bin/env bash
# Event source mapping benchmark (make bench-esm): records per second through
# a mapping over a stream, against the loop a user writes by hand, on the
# same throwaway cluster, alternating sides; and the latency from a put's
# commit to the mapping's function starting.
#
#   throughput  a 4-shard stream prefilled with ESM_RECORDS records of 100 B;
#               msgq: a mapping (StartingPosition TRIM_HORIZON, BatchSize B)
#               whose SQL function inserts each batch's records into a table
#               (sequence number, key, data decoded from the event's base64);
#               baseline: one session runs the README's consumer loop in a
#               procedure: for each shard, get_records(get_shard_iterator(...,
#               'AFTER_CHECKPOINT', consumer_group), B), INSERT ... SELECT of
#               the rows into the same kind of table, checkpoint the last
#               sequence number, COMMIT; until a round reads nothing.  Both
#               take one batch per shard per transaction and commit with the
#               checkpoint, so both are exactly once.  The rate is the records
#               over the time from the first batch's insert to the last one's
#               (the table's clock_timestamp() default), on both sides, so the
#               worker's time to notice a new mapping is not counted.
#   latency     a 1-shard stream with a mapping (BatchSize 1); a procedure
#               puts one record per transaction, 20 ms apart, and keeps
#               clock_timestamp() after each COMMIT; the function keeps
#               clock_timestamp() at its start: the difference, p50/p99/max.
#               Reference from the same run: LISTEN/NOTIFY, a listener woken
#               by a NOTIFY's commit (bench/latency.c, mode notify).
#
# Environment:
#   ESM_RECORDS    records per throughput run (100000)
#   ESM_BATCHES    batch sizes ("100 500")
#   ESM_RUNS       runs per side (3); the median is reported
#   ESM_LAT_EVENTS latency events (500)
#   ESM_PORT       port of the cluster (54334, private socket only)
#   ESM_RECORD     1: append the tables to bench/RESULTS.md (default 1)
#   ESM_CONCURRENCY msgq.esm_max_concurrency of the cluster (1); above 1,
#                  the hand loop runs in as many sessions, each on its own
#                  shards (shard i in session i mod N)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

RECORDS=${ESM_RECORDS:-100000}
BATCHES=${ESM_BATCHES:-"100 500"}
RUNS=${ESM_RUNS:-3}
LAT_EVENTS=${ESM_LAT_EVENTS:-500}
PORT=${ESM_PORT:-54334}
RECORD=${ESM_RECORD:-1}
CONC=${ESM_CONCURRENCY:-1}
SHARDS=4

build_and_install >/dev/null
bench_cluster esm "msgq.esm_max_concurrency = $CONC" "max_worker_processes = 40"

psqlx <<'EOF'
CREATE EXTENSION msgq;
CREATE TABLE sink (seq numeric NOT NULL, pkey text NOT NULL, data bytea NOT NULL,
				   at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION esm_sink(event jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO sink (seq, pkey, data)
  SELECT (r #>> '{kinesis,sequenceNumber}')::numeric, r #>> '{kinesis,partitionKey}',
		 decode(r #>> '{kinesis,data}', 'base64')
	FROM jsonb_array_elements(event -> 'Records') r $$;
CREATE PROCEDURE hand_loop(stream text, grp text, batch int, part int, parts int) LANGUAGE plpgsql AS $$
DECLARE
  sh text;
  last numeric;
  n bigint;
  round_n bigint;
BEGIN
  LOOP
	round_n := 0;
	FOR sh IN SELECT x.shard_id FROM (SELECT l.shard_id, row_number() OVER (ORDER BY l.shard_id) - 1 AS i
										FROM msgq.list_shards(stream) l) x
			   WHERE x.i % parts = part ORDER BY x.shard_id LOOP
	  WITH r AS (SELECT sequence_number, partition_key, data
				   FROM msgq.get_records(msgq.get_shard_iterator(stream, sh, 'AFTER_CHECKPOINT',
																 consumer_group => grp), batch)
				  WHERE sequence_number IS NOT NULL),
		   ins AS (INSERT INTO sink (seq, pkey, data) SELECT * FROM r)
	  SELECT max(sequence_number), count(*) INTO last, n FROM r;
	  IF n > 0 THEN
		PERFORM msgq.checkpoint(stream, grp, sh, last);
	  END IF;
	  COMMIT;
	  round_n := round_n + n;
	END LOOP;
	EXIT WHEN round_n = 0;
  END LOOP;
END $$;
CREATE TABLE lat_put (i int PRIMARY KEY, committed timestamptz NOT NULL);
CREATE TABLE lat_seen (i int PRIMARY KEY, started timestamptz NOT NULL);
CREATE FUNCTION esm_lat(event jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  t timestamptz := clock_timestamp();
BEGIN
  INSERT INTO lat_seen
  SELECT convert_from(decode(r #>> '{kinesis,data}', 'base64'), 'UTF8')::int, t
	FROM jsonb_array_elements(event -> 'Records') r;
END $$;
CREATE PROCEDURE lat_writer(n int) LANGUAGE plpgsql AS $$
DECLARE
  ts timestamptz[] := '{}';
BEGIN
  FOR i IN 1..n LOOP
	PERFORM msgq.put_record('lat', 'k', convert_to(i::text, 'UTF8'));
	COMMIT;
	ts := ts || clock_timestamp();
	PERFORM pg_sleep(0.02);
  END LOOP;
  INSERT INTO lat_put SELECT i, ts[i] FROM generate_subscripts(ts, 1) i;
END $$;
EOF

# prefill: a fresh 4-shard stream "src" of RECORDS records, 500 per call
prefill() {
	psqlx -c "SELECT msgq.delete_stream(s) FROM msgq.list_streams() s WHERE s = 'src'" \
		-c "SELECT msgq.create_stream('src', $SHARDS)" >/dev/null
	psqlx -c "SELECT count(*) FROM generate_series(0, ($RECORDS - 1) / 500) b,
			LATERAL msgq.put_records('src',
				ARRAY(SELECT 'k' || (b * 500 + g) FROM generate_series(1, least(500, $RECORDS - b * 500)) g),
				ARRAY(SELECT convert_to(repeat('x', 100), 'UTF8') FROM generate_series(1, least(500, $RECORDS - b * 500)) g))" >/dev/null
	psqlx -c "TRUNCATE sink" -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
}

# The result of one run, after the sink holds every record exactly once:
# records per second from the first insert to the last one.
rate() {
	local got
	got=$(psqlx -tA -c "SELECT count(*) || ' ' || count(DISTINCT seq) FROM sink")
	if [ "$got" != "$RECORDS $RECORDS" ]; then
		echo "esm.sh: the sink has $got records (count, distinct), not $RECORDS" >&2
		exit 1
	fi
	psqlx -tA -c "SELECT round($RECORDS / extract(epoch FROM max(at) - min(at))) FROM sink"
}

run_msgq() {
	local batch=$1 i
	prefill
	psqlx -c "SELECT msgq.create_event_source_mapping('src', 'esm_sink(jsonb)',
			'{\"StartingPosition\": \"TRIM_HORIZON\", \"BatchSize\": $batch}')" >/dev/null
	for i in $(seq 1 6000); do
		[ "$(psqlx -tA -c "SELECT count(*) FROM sink")" -ge "$RECORDS" ] && break
		sleep 0.1
	done
	psqlx -c "SELECT msgq.delete_event_source_mapping(uuid) FROM msgq.event_source_mapping" >/dev/null
	rate
}
run_base() {
	local batch=$1
	prefill
	local p pids=()
	for p in $(seq 0 $((CONC - 1))); do
		psqlx -c "CALL hand_loop('src', 'hand', $batch, $p, $CONC)" >/dev/null &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	rate
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "esm: $RECORDS records over $SHARDS shards per run, $RUNS runs per side, batch sizes $BATCHES, concurrency $CONC"
rows=()
for batch in $BATCHES; do
	ms=()
	bs=()
	for i in $(seq 1 "$RUNS"); do
		if [ $((i % 2)) -eq 1 ]; then
			m=$(run_msgq "$batch")
			b=$(run_base "$batch")
		else
			b=$(run_base "$batch")
			m=$(run_msgq "$batch")
		fi
		ms+=("$m")
		bs+=("$b")
		echo "  BatchSize $batch run $i: mapping $m records/s, hand loop $b records/s" >&2
	done
	m=$(printf '%s\n' "${ms[@]}" | median)
	b=$(printf '%s\n' "${bs[@]}" | median)
	rows+=("$(awk -v bs="$batch" -v m="$m" -v b="$b" -v all_m="${ms[*]}" -v all_b="${bs[*]}" \
		'BEGIN { printf "| %d | %.0f (%s) | %.0f (%s) | %.2f |", bs, m, all_m, b, all_b, (b > 0 ? m / b : 0) }')")
done

# latency: the mapping's function start after a put's commit
psqlx -c "SELECT msgq.create_stream('lat', 1)" \
	-c "SELECT msgq.create_event_source_mapping('lat', 'esm_lat(jsonb)',
			'{\"StartingPosition\": \"LATEST\", \"BatchSize\": 1}')" >/dev/null
sleep 2    # the worker's next pass maps the new stream for wake-ups
psqlx -c "CALL lat_writer($LAT_EVENTS)"
for i in $(seq 1 100); do
	[ "$(psqlx -tA -c "SELECT count(*) FROM lat_seen")" -ge "$LAT_EVENTS" ] && break
	sleep 0.1
done
lat=$(psqlx -tA -F ' ' -c "
	SELECT count(*),
		   round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 3),
		   round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 3),
		   round(max(ms)::numeric, 3)
	  FROM (SELECT extract(epoch FROM s.started - p.committed) * 1000 AS ms
			  FROM lat_put p JOIN lat_seen s USING (i)) d")
read -r lat_n lat_p50 lat_p99 lat_max <<<"$lat"
if [ "$lat_n" -ne "$LAT_EVENTS" ]; then
	echo "esm.sh: $lat_n of $LAT_EVENTS latency events reached the function" >&2
	exit 1
fi
echo "  latency: $lat_n events, p50 $lat_p50 ms, p99 $lat_p99 ms, max $lat_max ms" >&2

cc -O2 -o "$WORK/latency" "$ROOT/bench/latency.c" -I"$("$PG_CONFIG" --includedir)" \
	-L"$("$PG_CONFIG" --libdir)" -lpq
conninfo="host=$WORK port=$PORT dbname=postgres user=$RUNNER"
out=$(as_user "$RUNNER" "$WORK/latency" "$conninfo" notify "$LAT_EVENTS" lat 2>&1)
echo "  $(head -n 1 <<<"$out")" >&2
notify=$(grep '^RESULT' <<<"$out")
n_p50=$(sed -n 's/.* p50_ms=\([^ ]*\).*/\1/p' <<<"$notify")
n_p99=$(sed -n 's/.* p99_ms=\([^ ]*\).*/\1/p' <<<"$notify")
n_max=$(sed -n 's/.* max_ms=\([^ ]*\).*/\1/p' <<<"$notify")

table=$(
	echo "| BatchSize | mapping records/s, median (runs) | hand loop records/s, median (runs) | ratio mapping/hand loop |"
	echo "|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "| put commit to function start, $lat_n events | mapping ms | LISTEN/NOTIFY wake-up ms (reference) |"
	echo "|---|---:|---:|"
	echo "| p50 | $lat_p50 | $n_p50 |"
	echo "| p99 | $lat_p99 | $n_p99 |"
	echo "| max | $lat_max | $n_max |"
)
echo "$table"

if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): event source mappings"
		echo
		printf 'Command: `ESM_RECORDS=%s ESM_BATCHES="%s" ESM_RUNS=%s ESM_LAT_EVENTS=%s ESM_CONCURRENCY=%s bench/esm.sh`; shared_buffers 1GB.' \
			"$RECORDS" "$BATCHES" "$RUNS" "$LAT_EVENTS" "$CONC"
		printf ' Throughput: %s records of 100 B over %s shards, a mapping (TRIM_HORIZON) whose SQL function' "$RECORDS" "$SHARDS"
		printf ' inserts the batch into a table (msgq.esm_max_concurrency %s), vs %s session(s) running the get_records(AFTER_CHECKPOINT) + INSERT + checkpoint + COMMIT' "$CONC" "$CONC"
		printf ' loop in a procedure; rate from the first insert to the last; medians of %s alternating runs.' "$RUNS"
		printf ' Latency: put_record + COMMIT 20 ms apart, from clock_timestamp() after COMMIT to the function'"'"'s first statement;'
		printf ' NOTIFY: bench/latency.c mode notify, from the COMMIT returning to the listener returning.'
		echo
		echo
		echo "$table"
	} >>"$ROOT/bench/RESULTS.md"
	echo "Appended to bench/RESULTS.md"
fi
