#!/usr/bin/env bash
# make bench: build and install msgq, start a throwaway cluster with a fixed,
# printed configuration, and measure msgq against PostgreSQL baselines in the
# same run (see /work/shared/BENCH.md and bench/README.md):
#
#   send     msgq.send_message, 1 per transaction   vs  INSERT of one row
#   cycle    receive 1 + delete_message             vs  hand-written SKIP LOCKED queue
#   send10   send_message_batch of 10 (opt-in)      vs  10-row INSERT
#   cycle10  receive 10 + delete_message_batch      vs  SKIP LOCKED queue, LIMIT 10 +
#            (opt-in)                                   DELETE ... = ANY
#   wal      WAL bytes per message, send + receive + delete, vs the same
#            messages through the SKIP LOCKED queue
#   latency  long-poll wake-up, commit -> return    vs  LISTEN/NOTIFY
#
# Throughput workloads run pgbench (-M prepared -j 2) at each client count,
# msgq and baseline alternating, BENCH_RUNS times each, and report medians,
# min-max and the ratio msgq / baseline. A full run appends a dated section to
# bench/RESULTS.md.
#
# Usage: ./scripts/bench.sh [quick]
# Environment:
#   BENCH_SECONDS      seconds per pgbench run (10; quick: 3)
#   BENCH_CLIENTS      client counts ("1 4 16"; quick: "1 4")
#   BENCH_RUNS         runs per side and client count (3; quick: 1)
#   BENCH_WORKLOADS    any of "send cycle send10 cycle10 wal latency"
#                      (default "send cycle wal latency", about 10 minutes;
#                      send10 and cycle10 add about 3 minutes each)
#   BENCH_WAL_MESSAGES messages per side for the wal workload (5000; quick: 1000)
#   BENCH_LAT_EVENTS   wake-ups measured per latency mode (1000; quick: 200)
#   BENCH_PREFILL      messages pre-filled before each cycle run
#                      (30000 per second of run time; cycle10: twice that)
#   BENCH_SHARED_BUFFERS  shared_buffers of the cluster (1GB)
#   BENCH_JIT          jit of the cluster (on, PostgreSQL's default)
#   BENCH_HUGE_PAGES   huge_pages of the cluster (on): on reserves the 2 MB pages
#                      the cluster needs when run as root (vm.nr_hugepages, put
#                      back at exit) and falls back to off, with a warning, when
#                      it cannot; off and try are PostgreSQL's own values
#   BENCH_PORT         port of the cluster (54331; it listens on a private socket only)
#   BENCH_RECORD       1: append to bench/RESULTS.md (default 1, quick: 0)
#   BENCH_SKIP_BUILD   1: use the installed msgq as is
#   BENCH_KEEP         1: keep the scratch directory (cluster, pgbench logs)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -f "$ROOT/scripts/common.sh" ]; then
	# shellcheck source=common.sh
	source "$ROOT/scripts/common.sh"
else
	PG_CONFIG=${PG_CONFIG:-pg_config}
	PATH="$("$PG_CONFIG" --bindir):$PATH"
	export PATH PG_CONFIG
	TEST_USER=msgqtest
	is_root() { [ "$(id -u)" -eq 0 ]; }
	as_user() {
		local user=$1
		shift
		if [ "$(id -un)" = "$user" ]; then
			env PATH="$PATH" "$@"
		elif is_root; then
			runuser -u "$user" -- env PATH="$PATH" "$@"
		else
			sudo -u "$user" -- env PATH="$PATH" "$@"
		fi
	}
	build_and_install() {
		make -C "$ROOT" with_llvm=no && make -C "$ROOT" install with_llvm=no
	}
fi

unset LC_ALL LC_CTYPE LC_COLLATE LC_MESSAGES LANGUAGE
export LANG=C.UTF-8

QUICK=0
case "${1:-}" in
	quick | --quick) QUICK=1 ;;
	"") ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "usage: $0 [quick]" >&2
		exit 2
		;;
esac
[ "${BENCH_QUICK:-0}" = 1 ] && QUICK=1

if [ "$QUICK" = 1 ]; then
	SECONDS_PER_RUN=${BENCH_SECONDS:-3}
	CLIENTS=${BENCH_CLIENTS:-"1 4"}
	RUNS=${BENCH_RUNS:-1}
	LAT_EVENTS=${BENCH_LAT_EVENTS:-200}
	RECORD=${BENCH_RECORD:-0}
else
	SECONDS_PER_RUN=${BENCH_SECONDS:-10}
	CLIENTS=${BENCH_CLIENTS:-"1 4 16"}
	RUNS=${BENCH_RUNS:-3}
	LAT_EVENTS=${BENCH_LAT_EVENTS:-1000}
	RECORD=${BENCH_RECORD:-1}
fi
WORKLOADS=${BENCH_WORKLOADS:-"send cycle wal latency"}
for w in $WORKLOADS; do
	case $w in
		send | cycle | send10 | cycle10 | wal | latency) ;;
		*)
			echo "bench: unknown workload $w (send cycle send10 cycle10 wal latency)" >&2
			exit 2
			;;
	esac
done
if [ "$QUICK" = 1 ]; then WAL_MESSAGES=${BENCH_WAL_MESSAGES:-1000}; else WAL_MESSAGES=${BENCH_WAL_MESSAGES:-5000}; fi
PREFILL=${BENCH_PREFILL:-$((30000 * SECONDS_PER_RUN))}
SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-1GB}
JIT=${BENCH_JIT:-on}
HUGE_PAGES=${BENCH_HUGE_PAGES:-on}
case $HUGE_PAGES in
	on | off | try) ;;
	*)
		echo "bench: BENCH_HUGE_PAGES must be on, off or try" >&2
		exit 2
		;;
esac
PORT=${BENCH_PORT:-54331}
DB=bench

# The same message for msgq and the baselines: 198 bytes of JSON.
PAYLOAD='{"order_id": 123456789, "customer": "c-000123", "status": "paid", "items": [{"sku": "A-1001", "qty": 2, "price": 12.5}, {"sku": "B-2002", "qty": 1, "price": 17.5}], "total": 42.5, "currency": "EUR"}'

if is_root; then
	if id -u "$TEST_USER" >/dev/null 2>&1; then RUNNER=$TEST_USER; else RUNNER=postgres; fi
else
	RUNNER=$(id -un)
fi

command -v pgbench >/dev/null || { echo "bench: pgbench not found" >&2; exit 1; }

started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit="$commit (with uncommitted changes)"
fi
command_line="BENCH_SECONDS=$SECONDS_PER_RUN BENCH_CLIENTS=\"$CLIENTS\" BENCH_RUNS=$RUNS ./scripts/bench.sh${1:+ $1}"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
	build_and_install
fi

WORK=$(mktemp -d /tmp/msgq-bench.XXXXXX)
chmod 755 "$WORK"
is_root && chown "$RUNNER:" "$WORK"
DATA=$WORK/data
LOGS=$WORK/logs
mkdir -p "$LOGS"
running=0
hugepages_before=""

cleanup() {
	if [ "$running" = 1 ]; then
		as_user "$RUNNER" pg_ctl -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
		running=0
	fi
	if [ -n "$hugepages_before" ]; then
		echo "$hugepages_before" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
		hugepages_before=""
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the cluster --------------------------------------------------------------
CONF=$(
	cat <<-EOF
		shared_buffers = $SHARED_BUFFERS
		synchronous_commit = on
		fsync = on
		max_connections = 100
		shared_preload_libraries = 'msgq'
		max_worker_processes = 16
		max_wal_size = 8GB
		checkpoint_timeout = 30min
		autovacuum = on
		jit = $JIT
	EOF
)
echo "=== cluster (user $RUNNER, $WORK)"
as_user "$RUNNER" initdb --auth=trust --encoding=UTF8 --locale=C.UTF-8 -D "$DATA" >"$LOGS/initdb.log" 2>&1 ||
	{ cat "$LOGS/initdb.log"; exit 1; }
{
	echo "$CONF"
	echo "port = $PORT"
	echo "listen_addresses = ''"
	echo "unix_socket_directories = '$WORK'"
} | as_user "$RUNNER" tee -a "$DATA/postgresql.conf" >/dev/null

# Huge pages: PostgreSQL's advice for a shared_buffers of this size, and what
# a new backend's first touch of shared memory costs on a VM depends on it
# (doc/design.md, "The first sleep of a backend").  The cluster says how many
# 2 MB pages its main segment needs; root reserves what is missing.
if [ "$HUGE_PAGES" = on ]; then
	need=$(as_user "$RUNNER" postgres -D "$DATA" -C shared_memory_size_in_huge_pages 2>/dev/null || echo -1)
	hp_free() { awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo; }
	if [ "$need" -gt 0 ] && [ "$(hp_free)" -lt "$need" ] && is_root &&
		[ -w /proc/sys/vm/nr_hugepages ]; then
		hugepages_before=$(cat /proc/sys/vm/nr_hugepages)
		echo $((hugepages_before + need - $(hp_free))) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
	if [ "$need" -le 0 ] || [ "$(hp_free)" -lt "$need" ]; then
		warnings_early="huge pages: could not have $need free 2 MB pages (HugePages_Free $(hp_free)); ran with huge_pages = off"
		HUGE_PAGES=off
	fi
fi
echo "huge_pages = $HUGE_PAGES" | as_user "$RUNNER" tee -a "$DATA/postgresql.conf" >/dev/null
as_user "$RUNNER" pg_ctl -D "$DATA" -l "$WORK/postmaster.log" -w -t 60 start >/dev/null ||
	{ cat "$WORK/postmaster.log"; exit 1; }
running=1

export PGHOST=$WORK PGPORT=$PORT PGUSER=$RUNNER
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
createdb "$DB"
psql_q -v payload="$PAYLOAD" <<-'EOF'
	CREATE EXTENSION msgq;
	SELECT msgq.create_queue('bench') \g /dev/null
	SELECT msgq.create_queue('bench2') \g /dev/null
	SELECT msgq.create_queue('lat') \g /dev/null
	CREATE TABLE t (id bigserial PRIMARY KEY, payload jsonb);
	CREATE TABLE q (id bigserial PRIMARY KEY, vt timestamptz NOT NULL DEFAULT now(),
	                read_ct int NOT NULL DEFAULT 0, payload jsonb);
	CREATE INDEX ON q (vt);
	CREATE TABLE wal_floor (payload text);
EOF

# The same payload as ten send_message_batch entries.
ENTRIES=$(psql_q -At -v payload="$PAYLOAD" <<-'EOF'
	SELECT jsonb_agg(jsonb_build_object('Id', i::text, 'MessageBody', :'payload') ORDER BY i)
	  FROM generate_series(0, 9) i;
EOF
)

server_version=$(psql_q -Atc 'SHOW server_version')
settings=$(psql_q -Atc "SELECT name || ' = ' || current_setting(name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync',
	  'max_connections', 'shared_preload_libraries', 'max_wal_size', 'checkpoint_timeout',
	  'wal_level', 'autovacuum', 'jit', 'huge_pages', 'msgq.wait_recheck_interval', 'msgq.worker_naptime')
	ORDER BY name")
machine="$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"

echo "PostgreSQL $server_version; $machine"
echo "Server settings:"
sed 's/^/  /' <<<"$settings"
echo "pgbench: -n -M prepared -j 2 -T $SECONDS_PER_RUN; clients: $CLIENTS; runs: $RUNS per side"
echo "Payload (${#PAYLOAD} bytes): $PAYLOAD"
echo "Commit: $commit"

# --- helpers --------------------------------------------------------------------
RESULTS_TSV=$LOGS/results.tsv # workload clients side run tps aborted
: >"$RESULTS_TSV"
warnings=()
[ -n "${warnings_early:-}" ] && warnings+=("$warnings_early")

# reset_send: empty both tables, so every run starts from the same state.
reset_send() {
	psql_q -c 'TRUNCATE t RESTART IDENTITY' -c 'TRUNCATE msgq.message' -c 'CHECKPOINT'
}

# prefill SIDE N: put N messages (rounded up to tens) in the queue of SIDE
# (msgq / baseline). msgq's are sent through its API, ten per
# send_message_batch call, which is quicker than N calls of send_message.
# (The queue name refers to g so that the call is made once per row: an
# uncorrelated function in the FROM list would run once and be rescanned.)
prefill() {
	if [ "$1" = msgq ]; then
		psql_q -v entries="$ENTRIES" -v n="$((($2 + 9) / 10))" <<-'EOF'
			TRUNCATE msgq.message;
			SELECT count(*) FROM generate_series(1, :n) g,
			       LATERAL msgq.send_message_batch(CASE WHEN g > 0 THEN 'bench2' END, :'entries') b \g /dev/null
			VACUUM ANALYZE msgq.message;
			CHECKPOINT;
		EOF
		local have
		have=$(psql_q -Atc 'SELECT count(*) FROM msgq.message')
		[ "$have" -ge "$2" ] || { echo "bench: pre-fill sent $have messages, not $2" >&2; exit 1; }
	else
		psql_q -v payload="$PAYLOAD" -v n="$((($2 + 9) / 10 * 10))" <<-'EOF'
			TRUNCATE q RESTART IDENTITY;
			INSERT INTO q (vt, read_ct, payload)
			SELECT now(), 0, :'payload' FROM generate_series(1, :n);
			VACUUM ANALYZE q;
			CHECKPOINT;
		EOF
	fi
}

# pgbench_run WORKLOAD SIDE CLIENTS RUN SCRIPT MESSAGES_PER_TRANSACTION
pgbench_run() {
	local workload=$1 side=$2 clients=$3 run=$4 script=$5 per=$6
	local log=$LOGS/$workload-$side-c$clients-r$run.log rc=0 tps aborted=0
	pgbench -n -M prepared -j 2 -c "$clients" -T "$SECONDS_PER_RUN" \
		-D payload="$PAYLOAD" -D entries="$ENTRIES" -f "$ROOT/bench/$script" "$DB" >"$log" 2>&1 || rc=$?
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$log")
	[ -n "$tps" ] && tps=$(awk -v t="$tps" -v m="$per" 'BEGIN { printf "%.1f", t * m }')
	if [ "$rc" -ne 0 ] || grep -q -i 'aborted' "$log"; then
		aborted=1
		warnings+=("$workload $side, $clients clients, run $run: pgbench exited with $rc or clients aborted (see below)")
		echo "--- $log" >&2
		tail -n 5 "$log" >&2
	fi
	[ -n "$tps" ] || tps=0
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$clients" "$side" "$run" "$tps" "$aborted" >>"$RESULTS_TSV"
	printf '  %-7s %-8s clients %-3s run %s: %10.1f msg/s%s\n' "$workload" "$side" "$clients" "$run" "$tps" \
		"$([ "$aborted" = 1 ] && echo '  (ABORTED)')"
}

# One workload: for each client count, RUNS rounds of msgq and baseline,
# alternating which goes first so that a drift during the run hits both.
throughput_workload() {
	local workload=$1 per=$2 c r side sides
	for c in $CLIENTS; do
		for r in $(seq 1 "$RUNS"); do
			if [ $((r % 2)) -eq 1 ]; then sides="msgq baseline"; else sides="baseline msgq"; fi
			for side in $sides; do
				case $workload in
					send | send10) reset_send ;;
					cycle) prefill "$side" "$PREFILL" ;;
					cycle10) prefill "$side" $((2 * PREFILL)) ;;
				esac
				pgbench_run "$workload" "$side" "$c" "$r" "${workload}_$side.sql" "$per"
			done
		done
	done
}

# --- throughput -----------------------------------------------------------------
for w in $WORKLOADS; do
	case $w in
		send)
			echo "=== send: msgq.send_message vs INSERT, 1 per transaction"
			throughput_workload send 1
			;;
		cycle)
			echo "=== cycle: receive 1 + delete vs SKIP LOCKED queue (pre-fill $PREFILL messages per run)"
			throughput_workload cycle 1
			;;
		send10)
			echo "=== send10: msgq.send_message_batch of 10 vs 10-row INSERT"
			throughput_workload send10 10
			;;
		cycle10)
			echo "=== cycle10: receive 10 + delete_message_batch vs SKIP LOCKED queue LIMIT 10 (pre-fill $((2 * PREFILL)) per run)"
			throughput_workload cycle10 10
			;;
	esac
done

# Summary: median, min, max per workload, clients and side; ratio of medians.
summary=$(
	awk -F'\t' '
		{ key = $1 SUBSEP $2 SUBSEP $3; n[key]++; v[key, n[key]] = $5; if ($6 == 1) ab[key] = 1
		  if (!($1 SUBSEP $2 in seen)) { seen[$1 SUBSEP $2] = 1; order[++norder] = $1 SUBSEP $2 } }
		function stats(key,    i, j, t, m, a) {
			m = n[key]
			for (i = 1; i <= m; i++) a[i] = v[key, i]
			for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
			med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
			lo = a[1]; hi = a[m]
		}
		END {
			label["send"] = "send, 1 per transaction"
			label["cycle"] = "receive 1 + delete"
			label["send10"] = "send, 10 per transaction"
			label["cycle10"] = "receive 10 + delete 10"
			print "| workload | clients | msgq msg/s, median (min-max) | baseline msg/s, median (min-max) | ratio msgq/baseline |"
			print "|---|---:|---:|---:|---:|"
			for (k = 1; k <= norder; k++) {
				split(order[k], p, SUBSEP)
				stats(p[1] SUBSEP p[2] SUBSEP "msgq"); mm = med; ml = lo; mh = hi
				stats(p[1] SUBSEP p[2] SUBSEP "baseline"); bm = med; bl = lo; bh = hi
				flag = ((p[1] SUBSEP p[2] SUBSEP "msgq") in ab || (p[1] SUBSEP p[2] SUBSEP "baseline") in ab) ? " (aborted runs!)" : ""
				printf "| %s | %s | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %s%s |\n", label[p[1]], p[2], mm, ml, mh, bm, bl, bh,
					(bm > 0 ? sprintf("%.2f", mm / bm) : "n/a"), flag
			}
		}' "$RESULTS_TSV"
)

# --- WAL per message ----------------------------------------------------------------
# One client sends WAL_MESSAGES messages, then consumes them with the cycle
# script (receive + delete); WAL is measured between the three points with
# pg_current_wal_lsn() and pg_stat_wal. Each side starts from an empty table
# right after a checkpoint, so pages are new and full-page images rare;
# autovacuum is off on the tables meanwhile, so that its WAL does not land
# on one side by chance. A third side, "floor", writes only the payload into a
# one-column table without index and deletes it, a transaction each: the WAL
# below which no heap-stored queue committing each call can go.
wal_table=""
if [[ " $WORKLOADS " == *" wal "* ]]; then
	echo "=== wal: WAL bytes per message, send + receive + delete, $WAL_MESSAGES messages, 1 client"
	psql_q -c 'ALTER TABLE q SET (autovacuum_enabled = off)' -c 'ALTER TABLE wal_floor SET (autovacuum_enabled = off)'
	for p in 0 1 2 3; do psql_q -c "ALTER TABLE msgq.message_$p SET (autovacuum_enabled = off)"; done
	wal_rows=()
	for side in msgq baseline floor; do
		if [ "$side" = msgq ]; then
			psql_q -c 'TRUNCATE msgq.message' -c 'CHECKPOINT'
		elif [ "$side" = floor ]; then
			psql_q -c 'TRUNCATE wal_floor' -c 'CHECKPOINT'
		else
			psql_q -c 'TRUNCATE q RESTART IDENTITY' -c 'CHECKPOINT'
		fi
		psql_q -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
		l0=$(psql_q -Atc 'SELECT pg_current_wal_lsn()')
		ok=1
		pgbench -n -M prepared -c 1 -t "$WAL_MESSAGES" -D payload="$PAYLOAD" \
			-f "$ROOT/bench/enqueue_$side.sql" "$DB" >"$LOGS/wal-$side-send.log" 2>&1 || ok=0
		l1=$(psql_q -Atc 'SELECT pg_current_wal_lsn()')
		pgbench -n -M prepared -c 1 -t "$WAL_MESSAGES" -D payload="$PAYLOAD" \
			-f "$ROOT/bench/cycle_$side.sql" "$DB" >"$LOGS/wal-$side-cycle.log" 2>&1 || ok=0
		grep -q -i aborted "$LOGS/wal-$side-send.log" "$LOGS/wal-$side-cycle.log" && ok=0
		row=$(psql_q -Atc "SELECT round(pg_wal_lsn_diff('$l1', '$l0') / $WAL_MESSAGES.0),
			round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$l1') / $WAL_MESSAGES.0),
			round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$l0') / $WAL_MESSAGES.0),
			round(wal_records / $WAL_MESSAGES.0, 2), wal_fpi FROM pg_stat_wal" | tr '|' ' ')
		if [ "$ok" = 0 ]; then
			warnings+=("wal $side: a pgbench run failed (see $LOGS/wal-$side-*.log)")
			row="$row (failed)"
		fi
		echo "  $side: send, receive + delete, total WAL bytes/message, records/message, FPIs: $row"
		wal_rows+=("$side $row")
	done
	psql_q -c 'ALTER TABLE q RESET (autovacuum_enabled)' -c 'ALTER TABLE wal_floor RESET (autovacuum_enabled)'
	for p in 0 1 2 3; do psql_q -c "ALTER TABLE msgq.message_$p RESET (autovacuum_enabled)"; done
	wal_table=$(
		echo "| WAL per message ($WAL_MESSAGES messages, 1 client) | send B | receive + delete B | total B | WAL records | full-page images (all) |"
		echo "|---|---:|---:|---:|---:|---:|"
		for r in "${wal_rows[@]}"; do
			set -- $r
			case $1 in
			msgq) name="msgq send_message, receive_message, delete_message" ;;
			baseline) name="SKIP LOCKED queue (baseline)" ;;
			floor) name="floor: the payload alone, INSERT into a one-column table without index, DELETE" ;;
			esac
			shift
			echo "| $name | $1 | $2 | $3 | $4 | $5${6:+ $6} |"
		done
		set -- ${wal_rows[0]}
		m=$4
		set -- ${wal_rows[1]}
		b=$4
		set -- ${wal_rows[2]}
		f=$4
		awk -v m="$m" -v b="$b" -v f="$f" 'BEGIN {
			if (b > 0) printf "| ratio msgq / baseline | | | %.2f | | |\n", m / b
			if (f > 0) printf "| ratio msgq / floor | | | %.2f | | |\n", m / f }'
	)
fi

# --- latency --------------------------------------------------------------------
latency_lines=()
if [[ " $WORKLOADS " == *" latency "* ]]; then
	echo "=== latency: long-poll wake-up, $LAT_EVENTS events per mode"
	if cc -O2 -o "$WORK/latency" "$ROOT/bench/latency.c" -I"$("$PG_CONFIG" --includedir)" \
		-L"$("$PG_CONFIG" --libdir)" -lpq 2>"$LOGS/latency-build.log"; then
		conninfo="host=$WORK port=$PORT dbname=$DB user=$RUNNER"
		for mode in msgq msgq-cold msgq-async notify notify-cold; do
			if out=$("$WORK/latency" "$conninfo" "$mode" "$LAT_EVENTS" lat 2>&1); then
				echo "  $(head -n 1 <<<"$out")"
				latency_lines+=("$(grep '^RESULT' <<<"$out")")
			else
				echo "  $mode: FAILED: $out"
				warnings+=("latency $mode failed: $out")
			fi
		done
	else
		echo "  could not build bench/latency.c (libpq-dev missing?):"
		sed 's/^/    /' "$LOGS/latency-build.log"
		warnings+=("latency: bench/latency.c did not build")
	fi
fi

latency_table=""
if [ ${#latency_lines[@]} -gt 0 ]; then
	latency_table=$(
		echo "| wake-up of a waiting call | events | p50 ms | p90 ms | p99 ms | max ms | p50 / p99 ms from COMMIT sent |"
		echo "|---|---:|---:|---:|---:|---:|---:|"
		for l in "${latency_lines[@]}"; do
			awk '{
				for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
				name = (f["mode"] == "msgq") ? "msgq receive_message(wait_time_seconds => 20)" : \
					(f["mode"] == "msgq-cold") ? "msgq, first call of a new connection" : \
					(f["mode"] == "msgq-async") ? "msgq, waiter with synchronous_commit = off" : \
					(f["mode"] == "notify-cold") ? "LISTEN/NOTIFY, first wake-up of a new connection" : "LISTEN/NOTIFY (baseline)"
				printf "| %s | %s | %s | %s | %s | %s | %s / %s |\n", name, f["events"], f["p50_ms"], f["p90_ms"],
					f["p99_ms"], f["max_ms"], f["sent_p50_ms"], f["sent_p99_ms"]
			}' <<<"$l"
		done
	)
fi

# --- pgmq ------------------------------------------------------------------------
# Issue 9 asks for pgmq's send and read + delete where pgmq is installed. Debian
# 12 packages no pgmq and this machine has no other network, so the rows are
# skipped, with a note, when the server has no pgmq extension.
pgmq_note=""
if [ "$(psql_q -Atc "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgmq'")" = 0 ]; then
	pgmq_note="pgmq: not installed on this server (no Debian 12 package); its rows are skipped."
else
	pgmq_note="pgmq: installed, but this script has no pgmq workload yet; its rows are skipped."
fi

# --- report ---------------------------------------------------------------------
echo
echo "=== results ($started_at, commit $commit)"
if [ -s "$RESULTS_TSV" ]; then
	echo "$summary"
	echo
fi
if [ -n "$wal_table" ]; then
	echo "$wal_table"
	echo
fi
[ -n "$latency_table" ] && echo "$latency_table"
echo
echo "$pgmq_note"
if [ ${#warnings[@]} -gt 0 ]; then
	echo
	echo "Warnings:"
	printf '  %s\n' "${warnings[@]}"
fi

if [ "$RECORD" = 1 ]; then
	results_md=$ROOT/bench/RESULTS.md
	if [ ! -f "$results_md" ]; then
		cat >"$results_md" <<-'EOF'
			# msgq benchmark results

			One section per run of `make bench` (`./scripts/bench.sh`), newest last. Absolute
			figures depend on the machine and its neighbours; compare the ratios, which are
			measured against PostgreSQL baselines in the same run (see bench/README.md and
			BENCH.md).
		EOF
	fi
	raw=$(awk -F'\t' '{ printf "%s %s c=%s run %s: %.1f%s\n", $1, $3, $2, $4, $5, ($6 == 1 ? " (aborted)" : "") }' "$RESULTS_TSV")
	{
		echo
		echo "## $started_at, commit $commit"
		echo
		echo "Command: \`$command_line\`"
		echo
		echo "PostgreSQL $server_version; $machine. pgbench \`-n -M prepared -j 2 -T $SECONDS_PER_RUN\`," \
			"$RUNS alternating runs per side; cycle runs start from $PREFILL pre-filled messages (cycle10: $((2 * PREFILL)));" \
			"payload ${#PAYLOAD} bytes of JSON."
		echo
		echo "Server settings:"
		echo
		echo '```'
		echo "$settings"
		echo '```'
		if [ -s "$RESULTS_TSV" ]; then
			echo
			echo "$summary"
		fi
		if [ -n "$wal_table" ]; then
			echo
			echo "$wal_table"
		fi
		if [ -n "$latency_table" ]; then
			echo
			echo "$latency_table"
		fi
		echo
		echo "$pgmq_note"
		if [ ${#warnings[@]} -gt 0 ]; then
			echo
			echo "Warnings:"
			echo
			printf -- '- %s\n' "${warnings[@]}"
		fi
		if [ -n "$raw" ]; then
			echo
			echo "<details><summary>every run (msg/s)</summary>"
			echo
			echo '```'
			echo "$raw"
			echo '```'
			echo
			echo "</details>"
		fi
	} >>"$results_md"
	echo
	echo "Appended to bench/RESULTS.md"
fi
