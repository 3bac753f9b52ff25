/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  One cycle of a database's timed work.
 *
 * The per-database worker runs a cycle every msgq.worker_naptime, and
 * msgq.run_maintenance() runs one in the calling backend, so that tests
 * drive time rules with msgq.clock_offset instead of waiting.  Waiting
 * receives time their own wake-ups (wait.c), so for standard queues a
 * cycle only has housekeeping to do (a waiter sleeps until the earliest
 * visibility time of its queue, bounded by msgq.wait_recheck_interval):
 *
 *	- delete messages older than their queue's MessageRetentionPeriod
 *	  (receive never returns them even before);
 *	- remove messages that a send racing with delete_queue committed for
 *	  the deleted queue;
 *	- forget the receive counts of rolled-back receives whose message is
 *	  gone (wait.c);
 *	- advance the running dead-letter redrive tasks (move_task.c);
 *	- turn the storage ring: seal the active segment, drain and truncate
 *	  sealed ones (segment.c);
 *	- after a restart, count each queue's messages once for the metrics
 *	  (metrics.c).
 *
 * Streams have their own part, msgq_maintenance_streams(): it seals
 * current time slices and drops expired ones (slice.c).  The worker runs
 * it in a transaction of its own, since sealing holds a stream's writers
 * off until it commits; msgq.run_maintenance() runs both.
 *
 * IDENTIFICATION
 *	  src/maintenance.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "msgq.h"
#include "delivery.h"

#define MAINT_PRUNE_BATCH	1024

static void
maint_prune_aborted(void)
{
	int32		queue_ids[MAINT_PRUNE_BATCH];
	int64		msg_seqs[MAINT_PRUNE_BATCH];
	pg_uuid_t	ids[MAINT_PRUNE_BATCH];
	Datum		qd[MAINT_PRUNE_BATCH];
	Datum		sd[MAINT_PRUNE_BATCH];
	Datum		id[MAINT_PRUNE_BATCH];
	int			n,
				i;
	Oid			argtypes[3] = {INT4ARRAYOID, INT8ARRAYOID, UUIDARRAYOID};
	Datum		values[3];
	uint64		r;

	n = msgq_aborted_receives_list(queue_ids, msg_seqs, ids, MAINT_PRUNE_BATCH);
	if (n == 0)
		return;
	for (i = 0; i < n; i++)
	{
		qd[i] = Int32GetDatum(queue_ids[i]);
		sd[i] = Int64GetDatum(msg_seqs[i]);
		id[i] = UUIDPGetDatum(&ids[i]);
	}
	values[0] = PointerGetDatum(construct_array(qd, n, INT4OID, 4, true, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(sd, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(id, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	if (SPI_execute_with_args("SELECT k.id FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
							  "                           pg_catalog.unnest($3)) AS k(q, s, id)"
							  " WHERE NOT EXISTS (SELECT 1 FROM msgq.message m"
							  "   WHERE m.queue_id OPERATOR(pg_catalog.=) k.q"
							  "     AND m.msg_seq OPERATOR(pg_catalog.=) k.s"
							  "     AND m.message_id OPERATOR(pg_catalog.=) k.id)",
							  3, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not prune rolled-back receive counts");
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;

		(void) msgq_take_aborted_receives(DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[r],
																	  SPI_tuptable->tupdesc,
																	  1, &isnull)));
	}
}


/*
 * Enforce MessageRetentionPeriod: delete messages older than their queue's
 * retention.  Receive already never returns them; this reclaims the space.
 * Messages are in send order by msg_seq and sent_at follows it, so only
 * queues whose oldest message has expired are visited, from the head, at
 * most 10000 messages per queue and cycle.  Rows locked by a receive in
 * progress are skipped and taken on a later cycle.
 */
static void
maint_enforce_retention(void)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	SPITupleTable *due;
	uint64		ndue,
				i;
	TimestampTz now;

	/* queues whose oldest message has expired: one index probe per queue */
	now = msgq_now();
	values[0] = TimestampTzGetDatum(now);
	if (SPI_execute_with_args("SELECT q.queue_id,"
							  "       $1 OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => q.message_retention_period)"
							  "  FROM msgq.queue q"
							  " WHERE (SELECT m.sent_at FROM msgq.message m"
							  "         WHERE m.queue_id OPERATOR(pg_catalog.=) q.queue_id"
							  "         ORDER BY m.queue_id, m.msg_seq LIMIT 1)"
							  "       OPERATOR(pg_catalog.<=)"
							  "       ($1 OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => q.message_retention_period))",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not find queues with expired messages");
	due = SPI_tuptable;
	ndue = SPI_processed;

	/* then each due queue from its head, through the primary key */
	for (i = 0; i < ndue; i++)
	{
		bool		isnull;
		Oid			dtypes[3] = {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		dvalues[3];

		dvalues[0] = SPI_getbinval(due->vals[i], due->tupdesc, 1, &isnull);
		dvalues[1] = TimestampTzGetDatum(now);
		dvalues[2] = SPI_getbinval(due->vals[i], due->tupdesc, 2, &isnull);
		if (SPI_execute_with_args("WITH c AS ("
								  "  SELECT x.msg_seq, x.seg FROM msgq.message x"
								  "   WHERE x.queue_id OPERATOR(pg_catalog.=) $1"
								  "     AND x.sent_at OPERATOR(pg_catalog.<=) $3"
								  "   ORDER BY x.queue_id, x.msg_seq LIMIT 10000"
								  "   FOR UPDATE SKIP LOCKED),"
								  " d AS ("
								  "  DELETE FROM msgq.message m USING c"
								  "   WHERE m.queue_id OPERATOR(pg_catalog.=) $1"
								  "     AND m.msg_seq OPERATOR(pg_catalog.=) c.msg_seq"
								  "     AND m.seg OPERATOR(pg_catalog.=) c.seg"
								  "  RETURNING GREATEST(m.visible_at, msgq.lease_until(m.queue_id, m.msg_seq, m.message_id)) AS visible_at,"
								  "            m.receive_count OPERATOR(pg_catalog.+)"
								  "            (msgq.lease_until(m.queue_id, m.msg_seq, m.message_id) IS NOT NULL)::int AS receive_count)"
								  MSGQ_REMOVED_SQL,
								  3, dtypes, dvalues, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not enforce message retention");
		msgq_metrics_removed(DatumGetInt32(dvalues[0]), SPI_tuptable, SPI_processed, now);
	}
}

/*
 * Remove messages that a send racing with delete_queue committed for a
 * deleted queue (one primary-key range per deleted queue, usually empty),
 * and forget deleted queues after an hour.
 */
static void
maint_remove_strays(void)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	SPITupleTable *gone;
	uint64		ngone,
				i;

	if (SPI_execute("SELECT queue_id FROM msgq.deleted_queue", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list deleted queues");
	gone = SPI_tuptable;
	ngone = SPI_processed;
	for (i = 0; i < ngone; i++)
	{
		bool		isnull;
		Oid			qtypes[1] = {INT4OID};
		Datum		qvalues[1];

		qvalues[0] = SPI_getbinval(gone->vals[i], gone->tupdesc, 1, &isnull);
		if (SPI_execute_with_args("DELETE FROM msgq.message"
								  " WHERE queue_id OPERATOR(pg_catalog.=) $1",
								  1, qtypes, qvalues, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not remove messages of deleted queues");
		/* a racing send may have given the deleted queue a metrics entry */
		msgq_metrics_drop_queue(DatumGetInt32(qvalues[0]));
	}

	values[0] = TimestampTzGetDatum(msgq_now() - USECS_PER_SEC * 3600);
	if (SPI_execute_with_args("DELETE FROM msgq.deleted_queue"
							  " WHERE deleted_at OPERATOR(pg_catalog.<) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not forget deleted queues");
}

void
msgq_maintenance_cycle(void)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nest;

	msgq_switch_to_owner(&save_userid, &save_sec_context, &save_nest);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	maint_enforce_retention();
	msgq_move_tasks_run();
	maint_remove_strays();
	maint_prune_aborted();
	(void) msgq_lease_persist();
	msgq_fifo_dedup_expire();
	msgq_topic_dedup_expire();
	msgq_fifo_groups_prune();
	msgq_fifo_attempts_prune();
	/* last: it may lock a storage segment until the cycle commits */
	msgq_segments_maintain();
	/* after a restart: may hold a SHARE lock on msgq.message until commit */
	msgq_metrics_maintain();

	SPI_finish();
	msgq_restore_user(save_userid, save_sec_context, save_nest);
}

/*
 * The function deliveries that are due, in the calling backend
 * (msgq.run_maintenance(); the worker runs them between its waits).
 */
void
msgq_maintenance_deliveries(void)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nest;

	msgq_switch_to_owner(&save_userid, &save_sec_context, &save_nest);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	while (msgq_delivery_run_functions(100, false) == 100)
		;
	/* the event source mappings' batches (esm.c), until none is left */
	{
		int			i;

		for (i = 0; i < 1000 && msgq_esm_run(false) == 0; i++)
			CHECK_FOR_INTERRUPTS();
		/* the delivery streams' due batches (firehose.c) */
		for (i = 0; i < 1000 && msgq_firehose_run(false) == 0; i++)
			CHECK_FOR_INTERRUPTS();
		/* the stream queries' due windows (analytics.c) */
		for (i = 0; i < 1000 && msgq_stream_queries_run(false) == 0; i++)
			CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	msgq_restore_user(save_userid, save_sec_context, save_nest);
}

/* The streams' part of a cycle (slice.c). */
void
msgq_maintenance_streams(void)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nest;

	msgq_switch_to_owner(&save_userid, &save_sec_context, &save_nest);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	msgq_streams_maintain();
	SPI_finish();
	msgq_restore_user(save_userid, save_sec_context, save_nest);
}
