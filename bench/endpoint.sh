#!/usr/bin/env bash
# AWS endpoint benchmark (make bench-endpoint): the same operations through
# the AWS SDK for JavaScript (signed HTTP requests to msgq's endpoint) and in
# SQL (pgbench, one session, prepared statements), one client each, on the
# same throwaway cluster:
#
#   send            SendMessage vs SELECT msgq.send_message(...)
#   receive+delete  ReceiveMessage then DeleteMessage vs the same two calls
#
# Rates in operations per second; the SDK's latency percentiles are each
# request's time as the client sees it, pgbench's its average per operation.
#
# Environment:
#   EP_N       operations per run (5000)
#   EP_PORT    the cluster's port (54336, private socket only)
#   EP_RECORD  1: append the table to bench/RESULTS.md (default 1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

N=${EP_N:-5000}
PORT=${EP_PORT:-54336}
RECORD=${EP_RECORD:-1}

build_and_install >/dev/null
if [ ! -d "$ROOT/test/node/node_modules/@aws-sdk/client-sqs" ]; then
	(cd "$ROOT/test/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
EPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bench_cluster endpoint "msgq.endpoint_port = $EPORT"

psqlx <<'EOF2'
CREATE EXTENSION msgq;
CREATE ROLE bench_app;
GRANT USAGE ON SCHEMA msgq TO bench_app;
SELECT msgq.create_queue('bench');
SELECT msgq.create_queue('bench_sql');
EOF2
psqlx -c "GRANT $RUNNER TO bench_app" >/dev/null    # the queues' owner's privileges
read -r akid secret < <(psqlx -tA -F ' ' -c "SELECT * FROM msgq.create_access_key('bench_app')")
for i in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$EPORT/" && break
	sleep 0.1
done

sdk=$(node --no-warnings "$ROOT/bench/endpoint.mjs" \
	"http://127.0.0.1:$EPORT" "$akid" "$secret" "$N")
echo "  SDK: $sdk" >&2

cat >"$WORK/send.sql" <<'EOF2'
SELECT msgq.send_message('bench_sql', 'message');
EOF2
cat >"$WORK/recv.sql" <<'EOF2'
SELECT receipt_handle AS h FROM msgq.receive_message('bench_sql') \gset
SELECT msgq.delete_message('bench_sql', :h);
EOF2
chmod 644 "$WORK"/*.sql
pgb() { as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" pgbench -n -M prepared -c 1 -t "$N" -f "$1" postgres 2>&1; }
s_out=$(pgb "$WORK/send.sql")
r_out=$(pgb "$WORK/recv.sql")
s_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$s_out")
r_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$r_out")
s_lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$s_out")
r_lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$r_out")
echo "  SQL: send $s_tps/s ($s_lat ms), receive+delete $r_tps/s ($r_lat ms)" >&2

table=$(python3 - "$sdk" "$s_tps" "$r_tps" "$s_lat" "$r_lat" <<'EOF2'
import json, sys
sdk = json.loads(sys.argv[1]); s_tps, r_tps, s_lat, r_lat = map(float, sys.argv[2:])
print("| operation, 1 client | SDK via the endpoint /s | SQL (pgbench) /s | ratio SDK/SQL | SDK p50 / p99 ms | SQL average ms |")
print("|---|---:|---:|---:|---:|---:|")
for name, key, tps, lat in (("send", "send", s_tps, s_lat), ("receive + delete", "receive_delete", r_tps, r_lat)):
    d = sdk[key]
    print(f"| {name} | {d['per_s']} | {tps:.0f} | {d['per_s'] / tps:.2f} | {d['p50_ms']:.2f} / {d['p99_ms']:.2f} | {lat:.3f} |")
EOF2
)
echo "$table"
if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): the AWS endpoint"
		echo
		printf 'Command: `EP_N=%s bench/endpoint.sh`. One client each: the AWS SDK for JavaScript v3 (SigV4-signed HTTP/1.1 keep-alive requests to msgq.endpoint_port) vs pgbench -M prepared running the same msgq functions; %s operations per side.\n\n' "$N" "$N"
		echo "$table"
	} >>"$ROOT/bench/RESULTS.md"
	echo "Appended to bench/RESULTS.md"
fi
