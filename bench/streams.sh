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
#
# The baseline table has msgq's layout (stream, shard, bigserial sequence,
# arrival, key, data; primary key on the first three) and computes a shard
# from hashtext() of the key, so both sides route, number and index every
# record.  Reported in records per second.
#
# Environment:
#   STREAMS_SECONDS   seconds per pgbench run (10)
#   STREAMS_CLIENTS   client counts for put_record ("1 4 16")
#   STREAMS_RUNS      runs per side (3); the median is reported
#   STREAMS_PORT      port of the cluster (54333, private socket only)
#   STREAMS_RECORD    1: append the table to bench/RESULTS.md (default 1)
#   STREAMS_WORKLOADS any of "put puts get" (all)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

SECS=${STREAMS_SECONDS:-10}
CLIENTS=${STREAMS_CLIENTS:-"1 4 16"}
RUNS=${STREAMS_RUNS:-3}
PORT=${STREAMS_PORT:-54333}
RECORD=${STREAMS_RECORD:-1}

if is_root; then RUNNER=$TEST_USER; else RUNNER=$(id -un); fi
build_and_install >/dev/null

WORK=$(mktemp -d /tmp/msgq-streams.XXXXXX)
chmod 755 "$WORK"
is_root && chown "$RUNNER" "$WORK"
cleanup() {
	as_user "$RUNNER" pg_ctl -D "$WORK/data" stop -m immediate >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

as_user "$RUNNER" initdb -D "$WORK/data" -E UTF8 --locale=C.UTF-8 >/dev/null
cat >>"$WORK/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
shared_preload_libraries = 'msgq'
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
EOF
as_user "$RUNNER" pg_ctl -D "$WORK/data" -l "$WORK/log" -w start >/dev/null
psqlx() { as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

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
	as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" pgbench -n -M prepared -c "$3" -j 2 -T "$SECS" \
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

WORKLOADS=" ${STREAMS_WORKLOADS:-put puts get} "
echo "streams: ${SECS}s per run, $RUNS runs per side, workloads:$WORKLOADS"
if [[ $WORKLOADS == *" put "* ]]; then
	for c in $CLIENTS; do measure "put_record, 100 B, vs one-row INSERT" put "$c" "$P100" 1; done
fi
if [[ $WORKLOADS == *" puts "* ]]; then
	for c in 1 4; do measure "put_records 500 x 100 B, vs 500-row INSERT" puts "$c" "$P100" 500; done
	for c in 1 4; do measure "put_records 500 x 1 KiB, vs 500-row INSERT" puts "$c" "$P1K" 500; done
fi
if [[ $WORKLOADS == *" get "* ]]; then
	measure "get_records 10,000 x 100 B, rows returned, vs indexed range SELECT" get 1 "-" 10000
fi

table=$(
	echo "| workload | clients | msgq records/s | baseline records/s | ratio msgq/baseline |"
	echo "|---|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
)
echo "$table"

if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): streams"
		echo
		echo "Command: \`STREAMS_SECONDS=$SECS STREAMS_RUNS=$RUNS STREAMS_WORKLOADS=\"$(echo $WORKLOADS)\" bench/streams.sh\`; pgbench \`-M prepared -j 2\`," \
			"medians of $RUNS alternating runs per side; baseline: a table with msgq's record layout and primary key," \
			"shard from hashtext() of the key, bigserial numbers; shared_buffers 1GB."
		echo
		echo "$table"
	} >>"$ROOT/bench/RESULTS.md"
	echo "Appended to bench/RESULTS.md"
fi
