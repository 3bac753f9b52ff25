/*
 * latency.c: long-poll wake-up latency of msgq, and of LISTEN/NOTIFY as a
 * reference, measured from the sender's commit to the waiting call's return.
 *
 * One process, two connections, one event loop (so both ends are timed on
 * the same monotonic clock with no thread hand-off):
 *
 *   msgq mode, per event:
 *     waiter:  sends  SELECT ... FROM msgq.receive_message(Q, wait_time_seconds => 20)
 *     sender:  polls msgq.waiters until the waiter's backend is registered
 *              (so that the receive really sleeps), then BEGIN; send_message;
 *              t_commit_sent; COMMIT ... t_commit_done
 *     loop:    select() on both sockets; t_return = when the waiter's result
 *              is complete
 *     waiter:  delete_message with the handle it got (outside the timing)
 *
 *   msgq-async mode: as msgq, but the waiter's session runs with
 *     synchronous_commit = off, so its receive does not wait for its own WAL
 *     flush: this isolates the wake-up and the claim from the disk.
 *
 *   msgq-cold mode: as msgq, but every event's waiting call is the first
 *     call of a new connection (the waiter reconnects before each event, and
 *     there are no untimed warm-up rounds): what a backend prepares lazily
 *     shows here.
 *
 *   stream mode, per event (a stream of one shard, with a registered
 *   consumer; the name given is both the stream's and the consumer's):
 *     waiter:  sends  SELECT ... FROM msgq.subscribe_to_shard(S, S,
 *              'shardId-000000000000', wait_time_seconds => 20) in
 *              autocommit, so that each call commits the subscription's new
 *              position and the next call continues from it
 *     sender:  polls pg_stat_activity until the waiter's backend sleeps on
 *              the wake-up condition variable (wait event "Extension":
 *              stream waits do not show in msgq.waiters), then BEGIN;
 *              put_record; t_commit_sent; COMMIT ... t_commit_done
 *     loop:    as in msgq mode; the call must return exactly the record put
 *     Before the first event, calls with wait_time_seconds => 0 start the
 *     subscription (at LATEST) or drain what an earlier run left.
 *
 *   notify mode, per event: the waiter has run LISTEN once; the sender runs
 *     BEGIN; NOTIFY ch, payload; COMMIT; t_return = when the notification
 *     is read from the waiter's socket.
 *
 *   notify-cold mode: as notify, but the waiter reconnects and runs LISTEN
 *     before each event: what PostgreSQL's own wake-up costs in a backend
 *     that has just started, the reference for msgq-cold.
 *
 * Reported per mode: latency = t_return - t_commit_done (the definition in
 * BENCH.md: from the sender's commit returning to the waiting call
 * returning; it can be slightly negative, since the server wakes the waiter
 * before the COMMIT reply reaches the sender), and t_return - t_commit_sent
 * (an upper bound that includes the commit itself), as p50 / p90 / p99 /
 * max in milliseconds.  The last line is machine-readable:
 *   RESULT mode=<m> events=<n> p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. sent_p50_ms=.. sent_p99_ms=..
 *
 * Usage: latency <conninfo> <msgq|msgq-async|msgq-cold|stream|notify|notify-cold> <events> [queue or stream]
 * Build: cc -O2 -o latency latency.c -I$(pg_config --includedir) -L$(pg_config --libdir) -lpq
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define PAYLOAD "{\"order_id\": 123456789, \"customer\": \"c-0001\", \"status\": \"paid\", " \
	"\"items\": [{\"sku\": \"A-1\", \"qty\": 2}, {\"sku\": \"B-22\", \"qty\": 1}], " \
	"\"total\": 42.5, \"currency\": \"EUR\", \"note\": \"latency benchmark message\"}"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void
die(PGconn *conn, const char *what)
{
	fprintf(stderr, "latency: %s: %s", what, conn ? PQerrorMessage(conn) : "\n");
	exit(1);
}

/* Run a command that must succeed; return its result (caller clears). */
static PGresult *
run(PGconn *conn, const char *sql, ExecStatusType want)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != want)
	{
		fprintf(stderr, "latency: \"%s\" failed: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	return res;
}

static void
run_ok(PGconn *conn, const char *sql)
{
	PQclear(run(conn, sql, PGRES_COMMAND_OK));
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double
pct(const double *v, int n, double p)
{
	int			k = (int) (p / 100.0 * n + 0.999999) - 1;

	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return v[k];
}

/*
 * Wait until the sender's COMMIT result and the waiter's event have both
 * arrived, recording when each did.  is_notify: the waiter's event is a
 * notification rather than a query result.  Returns the waiter's result
 * (msgq and stream modes) or NULL.
 */
static PGresult *
wait_both(PGconn *sender, PGconn *waiter, int is_notify,
		  double *t_commit_done, double *t_return)
{
	int			sender_done = 0;
	int			waiter_done = 0;
	PGresult   *wres = NULL;
	double		deadline = now_ms() + 30000.0;

	while (!sender_done || !waiter_done)
	{
		fd_set		rfds;
		struct timeval tv = {0, 100000};
		int			maxfd = 0;
		int			fd;

		FD_ZERO(&rfds);
		if (!sender_done)
		{
			fd = PQsocket(sender);
			FD_SET(fd, &rfds);
			maxfd = fd > maxfd ? fd : maxfd;
		}
		if (!waiter_done)
		{
			fd = PQsocket(waiter);
			FD_SET(fd, &rfds);
			maxfd = fd > maxfd ? fd : maxfd;
		}
		if (select(maxfd + 1, &rfds, NULL, NULL, &tv) < 0 && errno != EINTR)
			die(NULL, "select failed");

		if (!sender_done && FD_ISSET(PQsocket(sender), &rfds))
		{
			if (!PQconsumeInput(sender))
				die(sender, "reading the COMMIT result");
			while (!PQisBusy(sender))
			{
				PGresult   *r = PQgetResult(sender);

				if (r == NULL)
				{
					sender_done = 1;
					break;
				}
				if (PQresultStatus(r) != PGRES_COMMAND_OK)
					die(sender, "COMMIT");
				*t_commit_done = now_ms();
				PQclear(r);
			}
		}

		if (!waiter_done && FD_ISSET(PQsocket(waiter), &rfds))
		{
			if (!PQconsumeInput(waiter))
				die(waiter, "reading the waiter's socket");
			if (is_notify)
			{
				PGnotify   *n = PQnotifies(waiter);

				if (n != NULL)
				{
					*t_return = now_ms();
					PQfreemem(n);
					waiter_done = 1;
				}
			}
			else
			{
				while (!PQisBusy(waiter))
				{
					PGresult   *r = PQgetResult(waiter);

					if (r == NULL)
					{
						waiter_done = 1;
						break;
					}
					if (PQresultStatus(r) != PGRES_TUPLES_OK)
						die(waiter, "the waiting call");
					*t_return = now_ms();
					if (wres)
						PQclear(wres);
					wres = r;
				}
			}
		}
		if (now_ms() > deadline)
		{
			fprintf(stderr, "latency: no wake-up within 30 s\n");
			exit(1);
		}
	}
	return wres;
}

/*
 * stream mode: start the consumer's subscription of the shard, or read
 * past whatever an earlier run left in it, so that the first timed call
 * has nothing to return until the sender's put commits.
 */
static void
stream_drain(PGconn *waiter, const char *esc_stream)
{
	char		sql[512];
	int			calls;

	snprintf(sql, sizeof(sql),
			 "SELECT count(sequence_number) FROM msgq.subscribe_to_shard(%s, %s, "
			 "'shardId-000000000000', wait_time_seconds => 0)",
			 esc_stream, esc_stream);
	for (calls = 0; calls < 1000; calls++)
	{
		PGresult   *r = run(waiter, sql, PGRES_TUPLES_OK);
		int			got = atoi(PQgetvalue(r, 0, 0));

		PQclear(r);
		if (got == 0)
			return;
	}
	fprintf(stderr, "latency: the subscription still has records after 1000 calls\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	const char *conninfo;
	const char *mode;
	int			events;
	const char *queue;
	PGconn	   *sender;
	PGconn	   *waiter;
	double	   *lat;
	double	   *lat_sent;
	int			i;
	int			is_notify;
	int			is_stream;
	int			is_cold;
	char		sql[1024];
	char		wait_sql[512] = "";
	char		waiter_check[512] = "";
	char	   *esc_payload;
	char	   *esc_queue = NULL;
	int			ok = 0;

	if (argc < 4)
	{
		fprintf(stderr, "usage: latency <conninfo> <msgq|msgq-async|msgq-cold|stream|notify|notify-cold> <events> [queue or stream]\n");
		return 2;
	}
	conninfo = argv[1];
	mode = argv[2];
	events = atoi(argv[3]);
	queue = argc > 4 ? argv[4] : "lat";
	is_notify = strcmp(mode, "notify") == 0 || strcmp(mode, "notify-cold") == 0;
	is_stream = strcmp(mode, "stream") == 0;
	is_cold = strcmp(mode, "msgq-cold") == 0 || strcmp(mode, "notify-cold") == 0;
	if (!is_notify && !is_stream && !is_cold &&
		strcmp(mode, "msgq") != 0 && strcmp(mode, "msgq-async") != 0)
	{
		fprintf(stderr, "latency: mode must be msgq, msgq-async, msgq-cold, stream, notify or notify-cold\n");
		return 2;
	}
	if (events < 1)
		events = 1;

	sender = PQconnectdb(conninfo);
	if (PQstatus(sender) != CONNECTION_OK)
		die(sender, "connecting the sender");
	waiter = PQconnectdb(conninfo);
	if (PQstatus(waiter) != CONNECTION_OK)
		die(waiter, "connecting the waiter");

	lat = calloc(events, sizeof(double));
	lat_sent = calloc(events, sizeof(double));
	esc_payload = PQescapeLiteral(sender, PAYLOAD, strlen(PAYLOAD));

	if (is_notify)
	{
		run_ok(waiter, "LISTEN msgq_latency");
		snprintf(sql, sizeof(sql), "NOTIFY msgq_latency, %s", esc_payload);
	}
	else if (is_stream)
	{
		esc_queue = PQescapeLiteral(sender, queue, strlen(queue));
		snprintf(sql, sizeof(sql),
				 "SELECT sequence_number FROM msgq.put_record(%s, 'latency', convert_to(%s, 'UTF8'))",
				 esc_queue, esc_payload);
		snprintf(wait_sql, sizeof(wait_sql),
				 "SELECT sequence_number FROM msgq.subscribe_to_shard(%s, %s, "
				 "'shardId-000000000000', wait_time_seconds => 20)",
				 esc_queue, esc_queue);

		/*
		 * A stream wait sleeps on the same condition variables as a queue's
		 * but takes no msgq.waiters slot; the sleep is the only "Extension"
		 * wait of subscribe_to_shard.
		 */
		snprintf(waiter_check, sizeof(waiter_check),
				 "SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid = %d"
				 " AND state = 'active' AND wait_event_type = 'Extension'"
				 " AND wait_event = 'Extension'",
				 PQbackendPID(waiter));
		stream_drain(waiter, esc_queue);
	}
	else
	{
		esc_queue = PQescapeLiteral(sender, queue, strlen(queue));
		if (strcmp(mode, "msgq-async") == 0)
			run_ok(waiter, "SET synchronous_commit = off");

		snprintf(sql, sizeof(sql), "SELECT msgq.send_message(%s, %s)", esc_queue, esc_payload);
		snprintf(wait_sql, sizeof(wait_sql),
				 "SELECT receipt_handle FROM msgq.receive_message(%s, wait_time_seconds => 20)",
				 esc_queue);
		snprintf(waiter_check, sizeof(waiter_check),
				 "SELECT 1 FROM msgq.waiters WHERE pid = %d", PQbackendPID(waiter));
	}

	/* a few untimed rounds first, so plans and caches are warm */
	for (i = is_cold ? 0 : -5; i < events; i++)
	{
		double		t_sent,
					t_commit_done = 0,
					t_return = 0;
		PGresult   *wres = NULL;
		PGresult   *put;
		char	   *put_seq = NULL;

		if (is_cold)
		{
			/* a new connection: its first call waits */
			PQfinish(waiter);
			waiter = PQconnectdb(conninfo);
			if (PQstatus(waiter) != CONNECTION_OK)
				die(waiter, "connecting the waiter");
			snprintf(waiter_check, sizeof(waiter_check),
					 "SELECT 1 FROM msgq.waiters WHERE pid = %d", PQbackendPID(waiter));
			if (is_notify)
				run_ok(waiter, "LISTEN msgq_latency");
		}
		if (!is_notify)
		{
			double		give_up = now_ms() + 10000.0;

			if (!PQsendQuery(waiter, wait_sql))
				die(waiter, "sending the waiting call");
			/* wait until the call really sleeps */
			for (;;)
			{
				PGresult   *r = run(sender, waiter_check, PGRES_TUPLES_OK);
				int			n = PQntuples(r);

				PQclear(r);
				if (n > 0)
					break;
				if (now_ms() > give_up)
				{
					fprintf(stderr, "latency: the waiting call was never seen asleep (%s)\n",
							is_stream ? "pg_stat_activity" : "msgq.waiters");
					return 1;
				}
				usleep(200);
			}
		}

		run_ok(sender, "BEGIN");
		put = run(sender, sql, is_notify ? PGRES_COMMAND_OK : PGRES_TUPLES_OK);
		if (is_stream)
			put_seq = strdup(PQgetvalue(put, 0, 0));
		PQclear(put);
		t_sent = now_ms();
		if (!PQsendQuery(sender, "COMMIT"))
			die(sender, "sending COMMIT");
		wres = wait_both(sender, waiter, is_notify, &t_commit_done, &t_return);

		if (is_stream)
		{
			/* exactly the record put, not an empty answer at the deadline */
			if (wres == NULL || PQntuples(wres) != 1 || PQgetisnull(wres, 0, 0) ||
				strcmp(PQgetvalue(wres, 0, 0), put_seq) != 0)
			{
				fprintf(stderr, "latency: the subscription returned %d rows, first %s, for the put of %s\n",
						wres ? PQntuples(wres) : -1,
						wres && PQntuples(wres) > 0 && !PQgetisnull(wres, 0, 0) ?
						PQgetvalue(wres, 0, 0) : "(none)",
						put_seq);
				return 1;
			}
			free(put_seq);
			PQclear(wres);
		}
		else if (!is_notify)
		{
			char		del_sql[512];
			char	   *esc_h;

			if (wres == NULL || PQntuples(wres) != 1)
			{
				fprintf(stderr, "latency: the long poll returned %d rows\n",
						wres ? PQntuples(wres) : -1);
				return 1;
			}
			esc_h = PQescapeLiteral(waiter, PQgetvalue(wres, 0, 0),
									strlen(PQgetvalue(wres, 0, 0)));
			snprintf(del_sql, sizeof(del_sql), "SELECT msgq.delete_message(%s, %s)",
					 esc_queue, esc_h);
			PQclear(run(waiter, del_sql, PGRES_TUPLES_OK));
			PQfreemem(esc_h);
			PQclear(wres);
		}

		if (i >= 0)
		{
			lat[ok] = t_return - t_commit_done;
			lat_sent[ok] = t_return - t_sent;
			ok++;
		}
	}

	qsort(lat, ok, sizeof(double), cmp_double);
	qsort(lat_sent, ok, sizeof(double), cmp_double);
	printf("%s: %d events; from COMMIT returned to wait returned: p50 %.3f ms, p90 %.3f ms, "
		   "p99 %.3f ms, max %.3f ms; from COMMIT sent: p50 %.3f ms, p99 %.3f ms\n",
		   mode, ok, pct(lat, ok, 50), pct(lat, ok, 90), pct(lat, ok, 99), lat[ok - 1],
		   pct(lat_sent, ok, 50), pct(lat_sent, ok, 99));
	printf("RESULT mode=%s events=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
		   "sent_p50_ms=%.3f sent_p99_ms=%.3f\n",
		   mode, ok, pct(lat, ok, 50), pct(lat, ok, 90), pct(lat, ok, 99), lat[ok - 1],
		   pct(lat_sent, ok, 50), pct(lat_sent, ok, 99));

	if (esc_queue)
		PQfreemem(esc_queue);
	PQfreemem(esc_payload);
	PQfinish(sender);
	PQfinish(waiter);
	return 0;
}
