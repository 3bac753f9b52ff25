#!/usr/bin/env bash
# AWS endpoint benchmark (make bench-endpoint): the same operations through
# the AWS SDK for JavaScript (signed HTTP requests to msgq's endpoint) and in
# SQL (pgbench, one session, prepared statements), one client each, on the
# same throwaway cluster:
#
#   send            SendMessage vs SELECT msgq.send_message(...)
#   receive+delete  ReceiveMessage then DeleteMessage vs the same two calls
#   send, HTTP/2    SendMessage with the SDK's HTTP/2 handler vs send_message
#   put_record      Kinesis PutRecord (the client's default, HTTP/2) vs
#                   SELECT msgq.put_record(...)
#   send, C at once SendMessage with EP_CONCURRENCY requests in flight vs
#                   pgbench with as many clients; the endpoint runs
#                   EP_WORKERS workers (msgq.endpoint_workers)
#
# Rates in operations per second; the SDK's latency percentiles are each
# request's time as the client sees it, pgbench's its average per operation.
#
# Environment:
#   EP_N       operations per run (5000)
#   EP_CONCURRENCY  requests in flight in the last row (8)
#   EP_WORKERS      msgq.endpoint_workers (2)
#   EP_PORT    the cluster's port (54336, private socket only)
#   EP_RECORD  1: append the table to bench/RESULTS.md (default 1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

N=${EP_N:-5000}
C=${EP_CONCURRENCY:-8}
WORKERS=${EP_WORKERS:-2}
PORT=${EP_PORT:-54336}
RECORD=${EP_RECORD:-1}

build_and_install >/dev/null
if [ ! -d "$ROOT/test/node/node_modules/@aws-sdk/client-sqs" ]; then
	(cd "$ROOT/test/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
EPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bench_cluster endpoint "msgq.endpoint_port = $EPORT" "msgq.endpoint_workers = $WORKERS"

psqlx <<'EOF2'
CREATE EXTENSION msgq;
CREATE ROLE bench_app;
GRANT USAGE ON SCHEMA msgq TO bench_app;
SELECT msgq.create_queue('bench');
SELECT msgq.create_queue('bench_sql');
SELECT msgq.create_stream('bench', 4);
SELECT msgq.create_stream('bench_sql', 4);
EOF2
psqlx -c "GRANT $RUNNER TO bench_app" >/dev/null    # the queues' owner's privileges
read -r akid secret < <(psqlx -tA -F ' ' -c "SELECT * FROM msgq.create_access_key('bench_app')")
for i in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$EPORT/" && break
	sleep 0.1
done

sdk=$(node --no-warnings "$ROOT/bench/endpoint.mjs" \
	"http://127.0.0.1:$EPORT" "$akid" "$secret" "$N" "$C")
echo "  SDK: $sdk" >&2

cat >"$WORK/send.sql" <<'EOF2'
SELECT msgq.send_message('bench_sql', 'message');
EOF2
cat >"$WORK/recv.sql" <<'EOF2'
SELECT receipt_handle AS h FROM msgq.receive_message('bench_sql') \gset
SELECT msgq.delete_message('bench_sql', :h);
EOF2
cat >"$WORK/put.sql" <<'EOF2'
\set k random(0, 63)
SELECT msgq.put_record('bench_sql', 'k' || :k, 'record'::bytea);
EOF2
chmod 644 "$WORK"/*.sql
# pgbench FILE [CLIENTS]: "tps latency_ms"
pgb() {
	local out
	out=$(as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" pgbench -n -M prepared -c "${2:-1}" -j "${2:-1}" \
		-t "$((N / ${2:-1}))" -f "$1" postgres 2>&1)
	echo "$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out") $(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")"
}
read -r s_tps s_lat < <(pgb "$WORK/send.sql")
read -r r_tps r_lat < <(pgb "$WORK/recv.sql")
read -r p_tps p_lat < <(pgb "$WORK/put.sql")
read -r c_tps c_lat < <(pgb "$WORK/send.sql" "$C")
echo "  SQL: send $s_tps/s, receive+delete $r_tps/s, put_record $p_tps/s, send x$C $c_tps/s" >&2
# the endpoint's own time per request (from reading the request to queuing
# its answer), from msgq.endpoint_metrics
server=$(psqlx -tA -c "SELECT string_agg(format('| %s %s | %s | %s |', service, action, requests,
	round(avg_latency_ms::numeric, 3)), E'\n' ORDER BY service, action)
	FROM msgq.endpoint_metrics WHERE requests > 0")

table=$(python3 - "$sdk" "$C" "$s_tps" "$s_lat" "$r_tps" "$r_lat" "$p_tps" "$p_lat" "$c_tps" "$c_lat" <<'EOF2'
import json, sys
sdk = json.loads(sys.argv[1]); c = sys.argv[2]
v = list(map(float, sys.argv[3:]))
print("| operation | SDK via the endpoint /s | SQL (pgbench) /s | ratio SDK/SQL | SDK p50 / p99 ms | SQL average ms |")
print("|---|---:|---:|---:|---:|---:|")
rows = (("send, 1 client (HTTP/1.1)", "send", v[0], v[1]),
        ("receive + delete, 1 client (HTTP/1.1)", "receive_delete", v[2], v[3]),
        ("send, 1 client (HTTP/2)", "send_h2", v[0], v[1]),
        ("Kinesis PutRecord, 1 client (HTTP/2, the default)", "put_record", v[4], v[5]),
        (f"send, {c} at once (HTTP/1.1; pgbench -c {c})", "send_concurrent", v[6], v[7]))
for name, key, tps, lat in rows:
    d = sdk[key]
    print(f"| {name} | {d['per_s']} | {tps:.0f} | {d['per_s'] / tps:.2f} | {d['p50_ms']:.2f} / {d['p99_ms']:.2f} | {lat:.3f} |")
EOF2
)
echo "$table"
echo "$server"
if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): the AWS endpoint"
		echo
		printf 'Command: `EP_N=%s EP_CONCURRENCY=%s EP_WORKERS=%s bench/endpoint.sh`. The AWS SDK for JavaScript v3 (SigV4-signed requests to msgq.endpoint_port, %s endpoint workers) vs pgbench -M prepared running the same msgq functions; %s operations per side and row.\n\n' "$N" "$C" "$WORKERS" "$WORKERS" "$N"
		echo "$table"
		echo
		echo "| the endpoint's time per request (msgq.endpoint_metrics) | requests | average ms |"
		echo "|---|---:|---:|"
		echo "$server"
	} >>"$ROOT/bench/RESULTS.md"
	echo "Appended to bench/RESULTS.md"
fi
