#!/usr/bin/env bash
# Stream benchmark (make bench-streams): msgq's put_record, put_records and
# get_records against plain SQL on an equivalent table, on the same
# throwaway cluster, alternating sides.
#
#   put_record         one record per transaction, vs a one-row INSERT
#   put_records        500 records per call (100-byte and 1 KiB data), vs a
#                      500-row INSERT ... SELECT
#   get_records        10,000 records of one shard per call, vs an indexed
#                      range SELECT of the same rows
#   latency            a waiting subscribe_to_shard(wait_time_seconds => 20)
#                      woken by the commit of a put_record, vs LISTEN/NOTIFY
#                      (bench/latency.c, modes stream and notify)
#
# The baseline table has msgq's layout (stream, shard, bigserial sequence,
# arrival, key, data; primary key on the first three) and computes a shard
# from hashtext() of the key, so both sides route, number and index every
# record.  Reported in records per second; latency in ms from the writer's
# COMMIT returning to the waiting call returning (p50 and p99).
#
# Environment:
#   STREAMS_SECONDS   seconds per pgbench run (10)
#   STREAMS_CLIENTS   client counts for put_record and get_records ("1 4 16")
#   STREAMS_RUNS      runs per side (5); the median is reported
#   STREAMS_PORT      port of the cluster (54333, private socket only)
#   STREAMS_RECORD    1: append the table to bench/RESULTS.md (default 1)
#   STREAMS_WORKLOADS any of "put puts get latency" (all)
#   STREAMS_LAT_EVENTS wake-ups measured per latency mode (1000)
#   STREAMS_CLIENT_TUNABLES  GLIBC_TUNABLES for pgbench, both sides (none).
#                     With several clients per pgbench thread, a result of
#                     10,000 rows that arrives at once (a set-returning
#                     function's, such as get_records) makes pgbench's malloc
#                     grow and trim its heap, page faulting, on every
#                     transaction; "glibc.malloc.trim_threshold=268435456:
#                     glibc.malloc.mmap_threshold=33554432" keeps the client's
#                     memory, so that the run times the server
#   STREAMS_MSGQ_OPTIONS  PGOPTIONS for msgq's side only, for example
#                     "-c msgq.records_scan=off" to time get_records as a
#                     function scan against the same baseline
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

SECS=${STREAMS_SECONDS:-10}
CLIENTS=${STREAMS_CLIENTS:-"1 4 16"}
RUNS=${STREAMS_RUNS:-5}
PORT=${STREAMS_PORT:-54333}
RECORD=${STREAMS_RECORD:-1}
LAT_EVENTS=${STREAMS_LAT_EVENTS:-1000}
CLIENT_TUNABLES=${STREAMS_CLIENT_TUNABLES:-}
MSGQ_OPTIONS=${STREAMS_MSGQ_OPTIONS:-}

build_and_install >/dev/null
bench_cluster streams

psqlx -c "CREATE EXTENSION msgq" \
	-c "SELECT msgq.create_stream('bench', 4)" \
	-c "SELECT msgq.create_stream('bench_read', 1)" \
	-c "CREATE TABLE rec (stream_id int NOT NULL, shard_index int NOT NULL, seq bigserial NOT NULL,
			arrival timestamptz NOT NULL DEFAULT now(), partition_key text NOT NULL, data bytea NOT NULL,
			PRIMARY KEY (stream_id, shard_index, seq))" \
	-c "SELECT count(*) FROM generate_series(0, 19) b,
			LATERAL msgq.put_records('bench_read', ARRAY(SELECT 'k' || (b * 500 + g) FROM generate_series(1, 500) g),
				ARRAY(SELECT convert_to(repeat('x', 100), 'UTF8') FROM generate_series(1, 500) g))" \
	-c "INSERT INTO rec (stream_id, shard_index, partition_key, data)
			SELECT 2, 0, 'k' || g, convert_to(repeat('x', 100), 'UTF8') FROM generate_series(1, 10000) g" \
	-c "VACUUM ANALYZE" >/dev/null

P100=$(printf 'x%.0s' $(seq 1 100))
P1K=$(printf 'x%.0s' $(seq 1 1024))

cat >"$WORK/put_msgq.sql" <<'EOF'
\set k random(1, 100000000)
SELECT sequence_number FROM msgq.put_record('bench', 'key-' || :k, convert_to(:payload, 'UTF8'));
EOF
cat >"$WORK/put_base.sql" <<'EOF'
\set k random(1, 100000000)
INSERT INTO rec (stream_id, shard_index, partition_key, data)
VALUES (1, abs(hashtext('key-' || :k)) % 4, 'key-' || :k, convert_to(:payload, 'UTF8'));
EOF
cat >"$WORK/puts_msgq.sql" <<'EOF'
\set k random(1, 100000000)
SELECT count(*) FROM msgq.put_records('bench',
	ARRAY(SELECT 'key-' || :k || '-' || g FROM generate_series(1, 500) g),
	ARRAY(SELECT convert_to(:payload, 'UTF8') FROM generate_series(1, 500) g));
EOF
cat >"$WORK/puts_base.sql" <<'EOF'
\set k random(1, 100000000)
INSERT INTO rec (stream_id, shard_index, partition_key, data)
SELECT 1, abs(hashtext('key-' || :k || '-' || g)) % 4, 'key-' || :k || '-' || g, convert_to(:payload, 'UTF8')
  FROM generate_series(1, 500) g;
EOF
# both sides return the 10,000 rows to the client, as a consumer reads them
cat >"$WORK/get_msgq.sql" <<'EOF'
SELECT sequence_number, approximate_arrival_timestamp, partition_key, data
  FROM msgq.get_records(msgq.get_shard_iterator('bench_read', 'shardId-000000000000', 'TRIM_HORIZON'), 10000);
EOF
cat >"$WORK/get_base.sql" <<'EOF'
SELECT seq, arrival, partition_key, data FROM rec
 WHERE stream_id = 2 AND shard_index = 0 AND seq >= 0 ORDER BY stream_id, shard_index, seq LIMIT 10000;
EOF
chown "$RUNNER" "$WORK"/*.sql 2>/dev/null || true

# tps NAME SIDE CLIENTS PAYLOAD: one pgbench run, transactions per second
tps() {
	local opts=""
	if [ "$2" = msgq ]; then opts=$MSGQ_OPTIONS; fi
	as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" ${CLIENT_TUNABLES:+GLIBC_TUNABLES="$CLIENT_TUNABLES"} \
		${opts:+PGOPTIONS="$opts"} pgbench -n -M prepared -c "$3" -j 2 -T "$SECS" \
		-D payload="$4" -f "$WORK/$1_$2.sql" postgres 2>&1 | awk '/^tps/ { printf "%.1f\n", $3 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

rows=()
# measure LABEL NAME CLIENTS PAYLOAD RECORDS_PER_TX
measure() {
	local label=$1 name=$2 c=$3 payload=$4 per=$5 i m b
	local ms=() bs=()
	for i in $(seq 1 "$RUNS"); do
		m=$(tps "$name" msgq "$c" "$payload")
		b=$(tps "$name" base "$c" "$payload")
		ms+=("$m")
		bs+=("$b")
		echo "  $label c=$c run $i: msgq $m tps, baseline $b tps" >&2
	done
	m=$(printf '%s\n' "${ms[@]}" | median)
	b=$(printf '%s\n' "${bs[@]}" | median)
	rows+=("$(awk -v l="$label" -v c="$c" -v m="$m" -v b="$b" -v p="$per" \
		'BEGIN { printf "| %s | %d | %.0f | %.0f | %.2f |", l, c, m * p, b * p, (b > 0 ? m / b : 0) }')")
}

WORKLOADS=" ${STREAMS_WORKLOADS:-put puts get latency} "
echo "streams: ${SECS}s per run, $RUNS runs per side, workloads:$WORKLOADS"
if [[ $WORKLOADS == *" put "* ]]; then
	for c in $CLIENTS; do measure "put_record, 100 B, vs one-row INSERT" put "$c" "$P100" 1; done
fi
if [[ $WORKLOADS == *" puts "* ]]; then
	for c in 1 4; do measure "put_records 500 x 100 B, vs 500-row INSERT" puts "$c" "$P100" 500; done
	for c in 1 4; do measure "put_records 500 x 1 KiB, vs 500-row INSERT" puts "$c" "$P1K" 500; done
fi
if [[ $WORKLOADS == *" get "* ]]; then
	for c in $CLIENTS; do
		measure "get_records 10,000 x 100 B, rows returned, vs indexed range SELECT" get "$c" "-" 10000
	done
fi

# latency: bench/latency.c, built as scripts/bench.sh builds it; one stream of
# one shard whose consumer has the stream's name
lat=()
if [[ $WORKLOADS == *" latency "* ]]; then
	psqlx -c "SELECT msgq.create_stream('lat', 1)" -c "SELECT msgq.register_stream_consumer('lat', 'lat')" >/dev/null
	cc -O2 -o "$WORK/latency" "$ROOT/bench/latency.c" -I"$("$PG_CONFIG" --includedir)" \
		-L"$("$PG_CONFIG" --libdir)" -lpq
	conninfo="host=$WORK port=$PORT dbname=postgres user=$RUNNER"
	for mode in stream notify; do
		if ! out=$(as_user "$RUNNER" "$WORK/latency" "$conninfo" "$mode" "$LAT_EVENTS" lat 2>&1); then
			echo "latency $mode failed: $out" >&2
			exit 1
		fi
		echo "  $(head -n 1 <<<"$out")" >&2
		lat+=("$(grep '^RESULT' <<<"$out")")
	done
fi

table=""
if [ ${#rows[@]} -gt 0 ]; then
	table=$(
		echo "| workload | clients | msgq records/s | baseline records/s | ratio msgq/baseline |"
		echo "|---|---:|---:|---:|---:|"
		printf '%s\n' "${rows[@]}"
	)
fi
# one row per percentile: subscribe_to_shard against LISTEN/NOTIFY, from the
# writer's COMMIT returning and (upper bound, the commit included) from its sending
if [ ${#lat[@]} -eq 2 ]; then
	lat_table=$(
		echo "| wake-up of a waiting call, put_record (1 shard) vs NOTIFY | events | msgq subscribe_to_shard ms | LISTEN/NOTIFY ms | ratio msgq/notify | from COMMIT sent: msgq ms | NOTIFY ms | ratio |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		printf '%s\n%s\n' "${lat[0]}" "${lat[1]}" | awk '
			function ratio(m, n) { return n > 0 ? sprintf("%.2f", m / n) : "-" }
			{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[NR, kv[1]] = kv[2] } }
			END {
				split("p50 p99 max", ps, " ")
				for (j = 1; j <= 3; j++) {
					p = ps[j]
					m = f[1, p "_ms"]; n = f[2, p "_ms"]
					sm = f[1, "sent_" p "_ms"]; sn = f[2, "sent_" p "_ms"]
					printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", p, f[1, "events"], m, n, ratio(m, n),
						(sm == "" ? "-" : sm), (sn == "" ? "-" : sn), (sm == "" ? "-" : ratio(sm, sn))
				}
			}'
	)
	if [ -n "$table" ]; then table+=$'\n\n'; fi
	table+=$lat_table
fi
echo "$table"

if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): streams"
		echo
		printf 'Command: `%s%sSTREAMS_SECONDS=%s STREAMS_RUNS=%s STREAMS_LAT_EVENTS=%s STREAMS_WORKLOADS="%s" bench/streams.sh`; shared_buffers 1GB.' \
			"${CLIENT_TUNABLES:+STREAMS_CLIENT_TUNABLES=$CLIENT_TUNABLES }" \
			"${MSGQ_OPTIONS:+STREAMS_MSGQ_OPTIONS=\"$MSGQ_OPTIONS\" }" "$SECS" "$RUNS" "$LAT_EVENTS" "$(echo $WORKLOADS)"
		if [ ${#rows[@]} -gt 0 ]; then
			printf ' Throughput: pgbench `-M prepared -j 2`, medians of %s alternating runs per side; baseline: a table with' "$RUNS"
			printf " msgq's record layout and primary key, shard from hashtext() of the key, bigserial numbers."
		fi
		if [ ${#lat[@]} -gt 0 ]; then
			printf ' Latency: bench/latency.c, %s events per mode after 5 untimed ones; the waiter calls' "$LAT_EVENTS"
			printf " subscribe_to_shard in autocommit (each call commits the subscription's new position, synchronous_commit on)"
			printf '; the writer runs `BEGIN; put_record; COMMIT`.'
		fi
		echo
		echo
		echo "$table"
	} >>"$ROOT/bench/RESULTS.md"
	echo "Appended to bench/RESULTS.md"
fi
