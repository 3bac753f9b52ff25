#!/usr/bin/env bash
# make demo: build and install msgq, start (or reuse) a local demo cluster owned
# by the unprivileged user msgqtest, and walk through queues with
# scripts/demo.sql. The cluster keeps running afterwards for you to try things.
#
#   scripts/demo.sh [start]   build, install, start the cluster, run the demo
#   scripts/demo.sh stop      stop the cluster (make demo-stop)
#   scripts/demo.sh reset     stop it and delete its directory
# MSGQ_DEMO_PORT picks another port than 5499 if that one is taken.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$MSGQ_ROOT"

DEMO_DIR=/var/tmp/msgq-demo    # socket, log and state; the cluster is in data/
DATA=$DEMO_DIR/data
PORT=${MSGQ_DEMO_PORT:-5499}
# the AWS endpoint's port (MSGQ_DEMO_ENDPOINT_PORT)
ENDPOINT_PORT=${MSGQ_DEMO_ENDPOINT_PORT:-9324}
DB=msgq_demo

# Run a command as the cluster's owner, with libpq pointed at the demo database.
as_owner() {
	as_user "$TEST_USER" env PGHOST="$DEMO_DIR" PGPORT="$PORT" PGDATABASE="$DB" "$@"
}
running() {
	id -u "$TEST_USER" >/dev/null 2>&1 &&
		as_owner pg_ctl -D "$DATA" status >/dev/null 2>&1
}
stop() {
	if running; then
		as_owner pg_ctl -D "$DATA" -m fast -w stop
	else
		echo "The demo cluster is not running."
	fi
}

case "${1:-start}" in
	start) ;;
	stop) stop; exit 0 ;;
	reset)
		stop
		as_root rm -rf "$DEMO_DIR"
		echo "Removed $DEMO_DIR."
		exit 0
		;;
	*)
		echo "usage: $0 [start|stop|reset]" >&2
		exit 2
		;;
esac

./scripts/deps.sh
build_and_install

# A fresh cluster: trust authentication on the socket and on localhost only.
as_root install -d -o "$TEST_USER" -g "$TEST_USER" -m 755 "$DEMO_DIR"
if ! as_owner test -f "$DATA/PG_VERSION"; then
	echo "=== creating the demo cluster in $DATA"
	as_owner initdb --auth=trust --encoding=UTF8 --locale=C.UTF-8 -D "$DATA" >/dev/null
	as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<-EOF

		# msgq demo (scripts/demo.sh; it passes the port to pg_ctl)
		listen_addresses = 'localhost'
		unix_socket_directories = '$DEMO_DIR'
		shared_preload_libraries = 'msgq'
		max_worker_processes = 16
	EOF
fi
# The AWS endpoint (added to clusters of earlier demos too; it needs a restart)
endpoint_added=
if ! as_owner grep -q '^msgq.endpoint_port' "$DATA/postgresql.conf"; then
	as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<-EOF
		msgq.endpoint_port = $ENDPOINT_PORT
		msgq.endpoint_database = '$DB'
	EOF
	endpoint_added=1
fi

# A fingerprint of the installed msgq: when it changes, the running server
# must load the new library and the demo database gets the new SQL objects.
stamp=$(cat "$("$PG_CONFIG" --pkglibdir)/msgq.so" \
	"$("$PG_CONFIG" --sharedir)"/extension/msgq.control \
	"$("$PG_CONFIG" --sharedir)"/extension/msgq--*.sql | sha256sum | cut -d' ' -f1)
old_stamp=$(cat "$DEMO_DIR/installed.sha256" 2>/dev/null || true)

pg_ctl_opts=(-o "-p $PORT" -l "$DEMO_DIR/postgresql.log" -w -t 60)
if ! running; then
	# pg_isready answers 0 or 1 when some other server already has the port.
	if pg_isready -q -h localhost -p "$PORT" || [ $? -eq 1 ]; then
		echo "demo.sh: another server already listens on port $PORT;" \
			"run again with MSGQ_DEMO_PORT=<free port>" >&2
		exit 1
	fi
	echo "=== starting the demo cluster (port $PORT)"
	as_owner pg_ctl -D "$DATA" "${pg_ctl_opts[@]}" start >/dev/null || {
		as_owner tail -n 20 "$DEMO_DIR/postgresql.log" >&2
		exit 1
	}
elif [ "$stamp" != "$old_stamp" ] || [ -n "$endpoint_added" ]; then
	echo "=== msgq was reinstalled (or the endpoint added): restarting the demo cluster"
	as_owner pg_ctl -D "$DATA" "${pg_ctl_opts[@]}" -m fast restart >/dev/null
else
	echo "=== reusing the running demo cluster"
fi
# The port the server really uses (line 4 of postmaster.pid), in case it was
# started with another MSGQ_DEMO_PORT.
PORT=$(as_owner sed -n 4p "$DATA/postmaster.pid")

exists=$(as_owner psql -X -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")
[ -n "$exists" ] || as_owner createdb "$DB"
if [ "$stamp" != "$old_stamp" ]; then
	# New objects may come under the same version number while msgq is being
	# developed: recreate the extension (this drops the demo's queues).
	as_owner psql -X -q -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' \
		-c 'DROP EXTENSION IF EXISTS msgq CASCADE'
fi
as_owner psql -X -q -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' \
	-c 'CREATE EXTENSION IF NOT EXISTS msgq'
echo "$stamp" | as_owner tee "$DEMO_DIR/installed.sha256" >/dev/null

echo "=== running scripts/demo.sql"
as_owner env MSGQ_DEMO_TMP="$DEMO_DIR" psql -X -e -v ON_ERROR_STOP=1 -f - <scripts/demo.sql

echo
echo "=== 23. The AWS endpoint: SQS's JSON protocol on 127.0.0.1:$ENDPOINT_PORT, each request signed"
echo "(SigV4) with an access key of a PostgreSQL role and run as that role; here curl signs them"
read -r akid secret < <(as_owner psql -X -tA -F ' ' -c "SELECT * FROM msgq.create_access_key('demo_app')")
endpoint=http://127.0.0.1:$ENDPOINT_PORT/
sqs() {
	curl -sS --aws-sigv4 "aws:amz:us-east-1:sqs" --user "$akid:$secret" \
		-H "X-Amz-Target: AmazonSQS.$1" -H 'Content-Type: application/x-amz-json-1.0' \
		--data "$2" "$endpoint"
	echo
}
for i in $(seq 1 50); do
	curl -s -o /dev/null "$endpoint" && break
	sleep 0.1
done
echo "+ CreateQueue {\"QueueName\": \"sdk-orders\"}"
sqs CreateQueue '{"QueueName": "sdk-orders"}'
url="http://127.0.0.1:$ENDPOINT_PORT/$DB/sdk-orders"
echo "+ SendMessage"
sqs SendMessage "{\"QueueUrl\": \"$url\", \"MessageBody\": \"sent through the AWS protocol\"}"
echo "+ ReceiveMessage (a long poll of up to 5 s: the message is there)"
sqs ReceiveMessage "{\"QueueUrl\": \"$url\", \"WaitTimeSeconds\": 5}"
echo "+ the same queue in SQL, owned by the key's role:"
as_owner psql -X -c "SELECT queue_name, owner FROM msgq.queue WHERE queue_name = 'sdk-orders'"
echo "+ the AWS SDK for JavaScript (test/node's pinned clients): the same queue, then a Kinesis stream over HTTP/2"
if [ ! -d test/node/node_modules/@aws-sdk/client-sqs ]; then
	(cd test/node && npm ci --no-audit --no-fund --loglevel=error) >/dev/null 2>&1 || true
fi
if [ -d test/node/node_modules/@aws-sdk/client-sqs ]; then
	node --no-warnings scripts/sdk-demo.mjs \
		"http://127.0.0.1:$ENDPOINT_PORT" "$akid" "$secret" "$url"
else
	echo "  (skipped: npm ci in test/node could not install the SDK)"
fi
echo "+ a wrong secret:"
curl -sS --aws-sigv4 "aws:amz:us-east-1:sqs" --user "$akid:wrong" -H "X-Amz-Target: AmazonSQS.ListQueues" \
	-H 'Content-Type: application/x-amz-json-1.0' --data '{}' "$endpoint"
echo

if is_root; then run_as="runuser -u $TEST_USER --"; else run_as="sudo -u $TEST_USER"; fi
cat <<EOF

The demo cluster keeps running (data $DATA, log $DEMO_DIR/postgresql.log).
Connect through the socket, as its owner:
    $run_as psql -h $DEMO_DIR -p $PORT $DB
or over TCP from any local account (trust authentication on localhost):
    psql -h localhost -p $PORT -U $TEST_USER $DB
Stop it with: make demo-stop    (scripts/demo.sh reset also deletes it)
EOF
