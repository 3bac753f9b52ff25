#!/usr/bin/env bash
# SNS topic publish benchmark (bench/topics.sh), on a throwaway cluster.
#
# A topic with N sqs subscriptions (N = 1, 10, 100), each to its own queue,
# raw delivery.  msgq's side: one msgq.publish per transaction.  The
# baseline, in the same run: the same message sent with msgq.send_message
# directly to every queue the publish reaches, in one transaction (what an
# application does without topics).  Two cases:
#
#   all   every subscription matches (no filter policy)
#   10%   each subscription has a different filter policy on a message
#         attribute; one in ten matches (at least one); the baseline sends
#         to the matching queues only
#
# Throughput is messages published per second (pgbench transactions per
# second) and queue messages written per second; queues are purged between
# runs.  Medians of TOPICS_RUNS alternating runs per side.
#
# Environment:
#   TOPICS_SECONDS   seconds per pgbench run (8)
#   TOPICS_RUNS      runs per side (3)
#   TOPICS_CLIENTS   pgbench clients (4)
#   TOPICS_CASES     which parts to run: sqs (the comparison above), function
#                    (publish to N = 1, 10, 100 function subscriptions, the
#                    worker off: what the publisher itself pays for deliveries
#                    after commit, one outbox row per message), default both
#   TOPICS_PORT      port of the cluster (54337, private socket only)
#   TOPICS_RECORD    1: append the table to bench/RESULTS.md (default 1)
#   BENCH_SKIP_BUILD 1: use the installed msgq as it is
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$ROOT/scripts/common.sh"

SECS=${TOPICS_SECONDS:-8}
RUNS=${TOPICS_RUNS:-3}
CLIENTS=${TOPICS_CLIENTS:-4}
PORT=${TOPICS_PORT:-54337}
RECORD=${TOPICS_RECORD:-1}
CASES=" ${TOPICS_CASES:-sqs function} "

[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || build_and_install >/dev/null
bench_cluster topics "msgq.worker_naptime = 1s"

q() { psqlx -At -c "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

q "CREATE EXTENSION msgq"

# setup N CASE: topic bt_CASE_N and its N queues bt_CASE_N_i; prints the
# matching queues, one per line
setup() {
	local n=$1 kind=$2 topic="bt_${2}_$1"
	psqlx -At <<-SQL >/dev/null
		SELECT msgq.create_topic('$topic');
		SELECT msgq.create_queue('${topic}_' || i) FROM generate_series(1, $n) i;
		SELECT msgq.subscribe('$topic', 'sqs', '${topic}_' || i,
			CASE WHEN '$kind' = 'all' THEN '{"RawMessageDelivery": "true"}'::jsonb
				 ELSE jsonb_build_object('RawMessageDelivery', 'true', 'FilterPolicy',
					  CASE WHEN i % 10 = 1 THEN '{"k": ["hit"]}'
						   ELSE format('{"k": ["miss%s"]}', i) END) END)
		  FROM generate_series(1, $n) i;
	SQL
	if [ "$kind" = all ]; then
		seq 1 "$n" | sed "s/^/${topic}_/"
	else
		seq 1 "$n" | awk -v t="$topic" '$1 % 10 == 1 { print t "_" $1 }'
	fi
}

# purge TOPIC: empty its queues (one PurgeQueue per queue per 60 s on
# msgq's clock: each purge runs two minutes further ahead)
purges=0
purge() {
	purges=$((purges + 1))
	psqlx -At -c "SET msgq.clock_offset = '$((purges * 2)) min'" \
		-c "SELECT msgq.purge_queue(queue_name) FROM msgq.queue WHERE queue_name LIKE '$1\\_%'" >/dev/null
}

# tps FILE: one pgbench run of a script, transactions per second
tps() {
	as_user "$RUNNER" env PGHOST="$WORK" PGPORT="$PORT" pgbench -n -M prepared -c "$CLIENTS" -j 2 \
		-T "$SECS" -f "$1" postgres 2>&1 | awk '/^tps/ { printf "%.1f\n", $3 }'
}

ATTRS='{"k": {"DataType": "String", "StringValue": "hit"}}'
BODY='an order placed: {"id": 12345, "amount": 99.5, "currency": "EUR"}'

rows=()
kinds="all 10pct"
[[ $CASES == *" sqs "* ]] || kinds=""
for kind in $kinds; do
	for n in 1 10 100; do
		topic="bt_${kind}_$n"
		mapfile -t targets < <(setup "$n" "$kind")
		m_sql="$WORK/pub_${kind}_$n.sql"
		b_sql="$WORK/send_${kind}_$n.sql"
		echo "SELECT msgq.publish('$topic', '$BODY', message_attributes => '$ATTRS');" >"$m_sql"
		{
			echo "BEGIN;"
			for t in "${targets[@]}"; do
				echo "SELECT msgq.send_message('$t', '$BODY', message_attributes => '$ATTRS');"
			done
			echo "COMMIT;"
		} >"$b_sql"
		chown "$RUNNER" "$m_sql" "$b_sql" 2>/dev/null || true
		ms=()
		bs=()
		for i in $(seq 1 "$RUNS"); do
			m=$(tps "$m_sql")
			purge "$topic"
			b=$(tps "$b_sql")
			purge "$topic"
			ms+=("$m")
			bs+=("$b")
			echo "  $kind n=$n run $i: publish $m tps, direct sends $b tps (${#targets[@]} queues)" >&2
		done
		m=$(printf '%s\n' "${ms[@]}" | median)
		b=$(printf '%s\n' "${bs[@]}" | median)
		label=$([ "$kind" = all ] && echo "all match" || echo "10% match")
		rows+=("$(awk -v l="$label" -v n="$n" -v k="${#targets[@]}" -v m="$m" -v b="$b" \
			'BEGIN { printf "| %s | %d | %d | %.0f | %.0f | %.0f | %.2f |", l, n, k, m, m * k, b, (b > 0 ? m / b : 0) }')")
	done
done

# Function subscriptions: the publisher writes one outbox row per message
# whatever their number; the worker is off, so nothing is expanded or
# called while the publishes are timed.
frows=()
if [[ $CASES == *" function "* ]]; then
	psqlx -c "ALTER SYSTEM SET msgq.worker_enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
	base=0
	for n in 1 10 100; do
		topic="bt_fn_$n"
		psqlx -At <<-SQL >/dev/null
			SELECT msgq.create_topic('$topic');
			DO \$\$ BEGIN
				FOR i IN 1..$n LOOP
					EXECUTE format('CREATE FUNCTION bench_fn_%s_%s(e jsonb) RETURNS void LANGUAGE sql AS %L',
								   $n, i, 'SELECT');
					PERFORM msgq.subscribe('$topic', 'function', format('bench_fn_%s_%s(jsonb)', $n, i));
				END LOOP;
			END \$\$;
		SQL
		f_sql="$WORK/pub_fn_$n.sql"
		echo "SELECT msgq.publish('$topic', '$BODY', message_attributes => '$ATTRS');" >"$f_sql"
		chown "$RUNNER" "$f_sql" 2>/dev/null || true
		fs=()
		for i in $(seq 1 "$RUNS"); do
			f=$(tps "$f_sql")
			q "TRUNCATE msgq.topic_outbox" >/dev/null
			fs+=("$f")
			echo "  function n=$n run $i: publish $f tps" >&2
		done
		f=$(printf '%s\n' "${fs[@]}" | median)
		[ "$n" = 1 ] && base=$f
		frows+=("$(awk -v n="$n" -v f="$f" -v b="$base" \
			'BEGIN { printf "| %d | %.0f | %.0f | %.2f |", n, f, f * n, (b > 0 ? f / b : 0) }')")
	done
	psqlx -c "ALTER SYSTEM RESET msgq.worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null
fi

table=$(
	if [ ${#rows[@]} -gt 0 ]; then
		echo "| subscriptions match | subscriptions | queues reached | publish tps | queue messages/s | direct sends tps | ratio |"
		echo "|---|---:|---:|---:|---:|---:|---:|"
		printf '%s\n' "${rows[@]}"
	fi
	if [ ${#frows[@]} -gt 0 ]; then
		[ ${#rows[@]} -gt 0 ] && echo
		echo "| function subscriptions (delivered after commit) | publish tps | deliveries queued/s | publish tps / with 1 subscription |"
		echo "|---:|---:|---:|---:|"
		printf '%s\n' "${frows[@]}"
	fi
)
echo "$table"

if [ "$RECORD" = 1 ]; then
	{
		echo
		echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown): topics"
		echo
		printf 'Command: `TOPICS_SECONDS=%s TOPICS_RUNS=%s TOPICS_CLIENTS=%s bench/topics.sh`; shared_buffers 1GB.' \
			"$SECS" "$RUNS" "$CLIENTS"
		printf ' pgbench `-M prepared -j 2`, medians of %s alternating runs per side. msgq: one `publish` per' "$RUNS"
		printf ' transaction to a topic of sqs subscriptions (raw delivery); baseline: `send_message` to each queue'
		printf ' the publish reaches, in one transaction. Ratio: publish tps / direct-send tps (>1: the topic is faster).'
		printf ' Function subscriptions (TOPICS_CASES="%s"): publish tps with the worker off (the outbox row only), against the same with one subscription.' "$(echo $CASES)"
		echo
		echo
		echo "$table"
	} >>"$ROOT/bench/RESULTS.md"
	echo "Appended to bench/RESULTS.md"
fi
