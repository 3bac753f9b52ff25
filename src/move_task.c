/*-------------------------------------------------------------------------
 *
 * move_task.c
 *	  Dead-letter redrive: StartMessageMoveTask, CancelMessageMoveTask,
 *	  ListMessageMoveTasks, and the work the maintenance cycle does for
 *	  running tasks.
 *
 * A task moves the messages of a dead-letter queue back to the queue each
 * came from (recorded when it was moved to the dead-letter queue), or to a
 * given destination, at most max_number_of_messages_per_second.  Tasks live
 * in msgq.message_move_task, a WAL-logged table, so a task survives a
 * restart or a crash and the worker resumes it.  Moved messages are new
 * messages (new message id, sent time, retention, receive count), as AWS
 * does.
 *
 * Each maintenance cycle, for every RUNNING task, locks the task row, moves
 * the budget earned since its last run (rate x elapsed time, at most one
 * second's worth; 10000 per cycle without a rate) with one statement that
 * deletes from the dead-letter queue and inserts into the destinations, and
 * records its progress, all in the cycle's transaction: a message is never
 * lost or duplicated, and a cancel waits for the batch in progress.
 * Messages in flight are skipped until they are visible again; messages
 * with no queue to return to stay in the dead-letter queue and fail the
 * task at its end.  Task states: RUNNING, COMPLETED, CANCELLED, FAILED (a
 * cancel takes effect at once, so CANCELLING is never observed).
 *
 * IDENTIFICATION
 *	  src/move_task.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "msgq.h"

PG_FUNCTION_INFO_V1(msgq_start_message_move_task);
PG_FUNCTION_INFO_V1(msgq_cancel_message_move_task);
PG_FUNCTION_INFO_V1(msgq_list_message_move_tasks);

#define MOVE_MAX_RATE			500
#define MOVE_UNLIMITED_BATCH	10000
#define MOVE_MAX_DURATION_SECS	(36 * 3600)

static SPIPlanPtr move_plan_is_dlq = NULL;
static SPIPlanPtr move_plan_active = NULL;
static SPIPlanPtr move_plan_count = NULL;
static SPIPlanPtr move_plan_insert = NULL;
static SPIPlanPtr move_plan_cancel = NULL;
static SPIPlanPtr move_plan_list = NULL;

static void
move_not_found(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
			 errmsg("%s does not exist", what),
			 errdetail_internal("AWS error code: ResourceNotFoundException")));
}

/*
 * msgq.start_message_move_task(source_arn text, destination_arn text
 *		DEFAULT NULL, max_number_of_messages_per_second int DEFAULT NULL)
 * returns text
 *
 * Start moving the messages of a dead-letter queue back to their source
 * queues (or to destination_arn); returns the task handle.
 */
Datum
msgq_start_message_move_task(PG_FUNCTION_ARGS)
{
	char	   *source_ref = msgq_text_arg(fcinfo, 0);
	char	   *dest_ref = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	MsgqQueue	source;
	MsgqQueue	dest;
	bool		has_rate = !PG_ARGISNULL(2);
	int32		rate = has_rate ? PG_GETARG_INT32(2) : 0;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	Datum		handle;
	Datum		result;
	int64		to_move;
	bool		isnull;

	msgq_call_enter(&call);
	if (source_ref == NULL)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter SourceArn");
	if (!msgq_queue_lookup(source_ref, &source))
		move_not_found(psprintf("source queue \"%s\"", source_ref));
	msgq_check_queue_action(&source, call.caller, MSGQ_ACT_RECEIVE, "ReceiveMessage");
	msgq_check_queue_action(&source, call.caller, MSGQ_ACT_DELETE, "DeleteMessage");
	if (dest_ref != NULL)
	{
		if (!msgq_queue_lookup(dest_ref, &dest))
			move_not_found(psprintf("destination queue \"%s\"", dest_ref));
		msgq_check_queue_action(&dest, call.caller, MSGQ_ACT_SEND, "SendMessage");
	}
	if (dest_ref != NULL && dest.queue_id == source.queue_id)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("the destination of a move task must not be its source queue"),
				 errdetail_internal("AWS error code: InvalidParameterValue")));
	if (has_rate && (rate < 1 || rate > MOVE_MAX_RATE))
		msgq_invalid_value("MaxNumberOfMessagesPerSecond", rate,
						   "Must be between 1 and 500, if provided.");

	/* the source must be the dead-letter queue of some queue */
	values[0] = CStringGetTextDatum(source.queue_name);
	if (SPI_execute_plan(msgq_plan(&move_plan_is_dlq,
								   "SELECT 1 FROM msgq.queue"
								   " WHERE dead_letter_queue OPERATOR(pg_catalog.=) $1 LIMIT 1",
								   1, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not check the source queue");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("source queue must be configured as a dead-letter queue"),
				 errdetail_internal("AWS error code: InvalidParameterValue")));

	/*
	 * One active task per source.  Lock the source's queue row so that two
	 * starts cannot both see none.
	 */
	{
		Oid			at[1] = {INT4OID};
		Datum		av[1] = {Int32GetDatum(source.queue_id)};

		if (SPI_execute_plan(msgq_plan(&move_plan_active,
									   "SELECT (SELECT 1 FROM msgq.queue q"
									   "         WHERE q.queue_id OPERATOR(pg_catalog.=) $1 FOR UPDATE),"
									   "       EXISTS (SELECT 1 FROM msgq.message_move_task t"
									   "                WHERE t.source_queue_id OPERATOR(pg_catalog.=) $1"
									   "                  AND t.status OPERATOR(pg_catalog.=) 'RUNNING')",
									   1, at),
							 av, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look for running tasks");
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
					 errmsg("there is already a task running; only one active task is allowed for a source queue at a given time"),
					 errdetail_internal("AWS error code: InvalidParameterValue")));

		if (SPI_execute_plan(msgq_plan(&move_plan_count,
									   "SELECT pg_catalog.count(*) FROM msgq.message"
									   " WHERE queue_id OPERATOR(pg_catalog.=) $1",
									   1, at),
							 av, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not count messages to move");
		to_move = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}

	handle = msgq_new_uuid();
	{
		Oid			at[8] = {UUIDOID, INT4OID, TEXTOID, INT4OID, TEXTOID, INT4OID,
		TIMESTAMPTZOID, INT8OID};
		Datum		av[8];
		char		an[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		av[0] = handle;
		av[1] = Int32GetDatum(source.queue_id);
		av[2] = CStringGetTextDatum(source.queue_name);
		av[3] = dest_ref ? Int32GetDatum(dest.queue_id) : (Datum) 0;
		an[3] = dest_ref ? ' ' : 'n';
		av[4] = dest_ref ? CStringGetTextDatum(dest.queue_name) : (Datum) 0;
		an[4] = dest_ref ? ' ' : 'n';
		av[5] = Int32GetDatum(rate);
		an[5] = has_rate ? ' ' : 'n';
		av[6] = TimestampTzGetDatum(msgq_now());
		av[7] = Int64GetDatum(to_move);
		if (SPI_execute_plan(msgq_plan(&move_plan_insert,
									   "INSERT INTO msgq.message_move_task (task_handle, source_queue_id,"
									   " source_queue_name, destination_queue_id, destination_queue_name,"
									   " max_number_of_messages_per_second, status, started_at, last_run_at,"
									   " approximate_number_of_messages_to_move)"
									   " VALUES ($1, $2, $3, $4, $5, $6, 'RUNNING', $7, $7, $8)",
									   8, at),
							 av, an, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not start the move task");
	}

	msgq_call_leave(&call);
	result = DirectFunctionCall1(uuid_out, handle);
	PG_RETURN_TEXT_P(cstring_to_text(DatumGetCString(result)));
}

/*
 * msgq.cancel_message_move_task(task_handle text) returns bigint
 *
 * Cancel a running task; returns the number of messages it had moved,
 * which stay where they were moved.
 */
Datum
msgq_cancel_message_move_task(PG_FUNCTION_ARGS)
{
	char	   *handle = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	Oid			argtypes[2] = {UUIDOID, TIMESTAMPTZOID};
	Datum		values[2];
	bool		isnull;
	int64		moved;
	char	   *status;
	MsgqQueue	source;
	Datum		id;

	msgq_call_enter(&call);
	if (handle == NULL)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter TaskHandle");
	{
		/* a handle that is not a uuid names no task */
		MemoryContext cxt = CurrentMemoryContext;
		bool		ok = true;

		PG_TRY();
		{
			id = DirectFunctionCall1(uuid_in, CStringGetDatum(handle));
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			ok = false;
			id = (Datum) 0;
		}
		PG_END_TRY();
		if (!ok)
			move_not_found(psprintf("task \"%s\"", handle));
	}

	values[0] = id;
	values[1] = TimestampTzGetDatum(msgq_now());
	if (SPI_execute_plan(msgq_plan(&move_plan_cancel,
								   "SELECT t.status, t.approximate_number_of_messages_moved,"
								   "       t.source_queue_name"
								   "  FROM msgq.message_move_task t"
								   " WHERE t.task_handle OPERATOR(pg_catalog.=) $1 FOR UPDATE",
								   1, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the move task");
	if (SPI_processed == 0)
		move_not_found(psprintf("task \"%s\"", handle));
	status = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	moved = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (msgq_queue_lookup(TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 3, &isnull)),
						  &source))
		msgq_check_queue_action(&source, call.caller, MSGQ_ACT_RECEIVE, "ReceiveMessage");
	else if (!superuser_arg(call.caller))
		move_not_found(psprintf("task \"%s\"", handle));
	if (strcmp(status, "RUNNING") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("only a running task can be cancelled; task \"%s\" is %s", handle, status),
				 errdetail_internal("AWS error code: InvalidParameterValue")));
	if (SPI_execute_with_args("UPDATE msgq.message_move_task SET status = 'CANCELLED', finished_at = $2"
							  " WHERE task_handle OPERATOR(pg_catalog.=) $1",
							  2, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not cancel the move task");

	msgq_call_leave(&call);
	PG_RETURN_INT64(moved);
}

/*
 * msgq.list_message_move_tasks(source_arn text, max_results int DEFAULT 1)
 * returns table (task_handle text, status text, source_arn text,
 *		destination_arn text, max_number_of_messages_per_second int,
 *		approximate_number_of_messages_moved bigint,
 *		approximate_number_of_messages_to_move bigint, failure_reason text,
 *		started_timestamp bigint)
 *
 * The most recent tasks of a source queue (1 to 10), newest first.  The
 * task handle is returned for running tasks only, as in AWS.
 */
Datum
msgq_list_message_move_tasks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *source_ref = msgq_text_arg(fcinfo, 0);
	int32		max_results = PG_ARGISNULL(1) ? 1 : PG_GETARG_INT32(1);
	MsgqCall	call;
	MsgqQueue	source;
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		values[2];
	uint64		i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	msgq_call_enter(&call);
	if (source_ref == NULL)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter SourceArn");
	if (!msgq_queue_lookup(source_ref, &source))
		move_not_found(psprintf("source queue \"%s\"", source_ref));
	msgq_check_queue_action(&source, call.caller, MSGQ_ACT_GET_ATTRS, "GetQueueAttributes");
	if (max_results < 1 || max_results > 10)
		msgq_invalid_value("MaxResults", max_results, "Must be between 1 and 10, if provided.");

	values[0] = Int32GetDatum(source.queue_id);
	values[1] = Int32GetDatum(max_results);
	if (SPI_execute_plan(msgq_plan(&move_plan_list,
								   "SELECT CASE WHEN status OPERATOR(pg_catalog.=) 'RUNNING'"
								   "            THEN task_handle::pg_catalog.text END,"
								   "       status, source_queue_name, destination_queue_name,"
								   "       max_number_of_messages_per_second,"
								   "       approximate_number_of_messages_moved,"
								   "       approximate_number_of_messages_to_move, failure_reason,"
								   "       (EXTRACT(epoch FROM started_at)"
								   "        OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8"
								   "  FROM msgq.message_move_task"
								   " WHERE source_queue_id OPERATOR(pg_catalog.=) $1"
								   " ORDER BY started_at DESC, task_handle LIMIT $2",
								   2, argtypes),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list move tasks");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		out[9];
		bool		outnull[9];
		int			c;

		for (c = 0; c < 9; c++)
			out[c] = SPI_getbinval(tup, desc, c + 1, &outnull[c]);
		/* ARNs, as AWS returns them */
		out[2] = CStringGetTextDatum(msgq_queue_arn(TextDatumGetCString(out[2])));
		if (!outnull[3])
			out[3] = CStringGetTextDatum(msgq_queue_arn(TextDatumGetCString(out[3])));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/*
 * Before a move: lock the message groups (of FIFO destinations, and of
 * standard ones: harmless) of the messages it may take, as a FIFO send
 * does, so that a moved message is not numbered before a send of its group
 * that is still open.  A group a sender holds is skipped (no waiting, so no
 * deadlock with a sender of several groups) and tried again next cycle.
 * Sets the move's parameters $5 and $6 to the (queue, group) pairs locked:
 * the move takes only messages of those groups or of none.  $1-$4 are the
 * move's.
 */
static void
move_lock_groups(Datum *values, char *nulls, Oid *types)
{
	Datum	   *qs;
	Datum	   *gs;
	uint64		i;
	int			n = 0;

	if (SPI_execute_with_args("SELECT DISTINCT COALESCE($2, m.source_queue_id), m.message_group_id"
							  "  FROM (SELECT m.source_queue_id, m.message_group_id FROM msgq.message m"
							  "         WHERE m.queue_id OPERATOR(pg_catalog.=) $1"
							  "           AND GREATEST(m.visible_at, msgq.lease_until(m.queue_id, m.msg_seq, m.message_id)) OPERATOR(pg_catalog.<=) $3"
							  "           AND COALESCE($2, m.source_queue_id) IN (SELECT queue_id FROM msgq.queue)"
							  "         ORDER BY m.queue_id, m.msg_seq LIMIT $4) m"
							  " WHERE m.message_group_id IS NOT NULL"
							  " ORDER BY 1, 2",
							  4, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the groups of messages to move");
	qs = palloc(sizeof(Datum) * Max(SPI_processed, 1));
	gs = palloc(sizeof(Datum) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		qs[n] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		gs[n] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		if (msgq_fifo_try_lock_group(DatumGetInt32(qs[n]), TextDatumGetCString(gs[n])))
			n++;
	}
	values[4] = PointerGetDatum(construct_array(qs, n, INT4OID, 4, true, TYPALIGN_INT));
	values[5] = PointerGetDatum(construct_array(gs, n, TEXTOID, -1, false, TYPALIGN_INT));
	nulls[4] = nulls[5] = ' ';
}

/*
 * The maintenance cycle's part: advance every running task.  Caller is
 * connected to SPI as the extension owner, in a transaction.
 */
void
msgq_move_tasks_run(void)
{
	TimestampTz now = msgq_now();
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	SPITupleTable *tasks;
	uint64		ntasks,
				t;

	values[0] = TimestampTzGetDatum(now);
	if (SPI_execute_with_args("SELECT task_handle, source_queue_id, destination_queue_id,"
							  "       max_number_of_messages_per_second, last_run_at, started_at,"
							  "       move_budget"
							  "  FROM msgq.message_move_task"
							  " WHERE status OPERATOR(pg_catalog.=) 'RUNNING'"
							  " ORDER BY started_at FOR UPDATE SKIP LOCKED",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read move tasks");
	tasks = SPI_tuptable;
	ntasks = SPI_processed;

	for (t = 0; t < ntasks; t++)
	{
		HeapTuple	tup = tasks->vals[t];
		TupleDesc	desc = tasks->tupdesc;
		bool		isnull,
					dest_null,
					rate_null;
		Datum		handle = SPI_getbinval(tup, desc, 1, &isnull);
		int32		source_id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		Datum		dest_id = SPI_getbinval(tup, desc, 3, &dest_null);
		int32		rate = DatumGetInt32(SPI_getbinval(tup, desc, 4, &rate_null));
		TimestampTz last_run = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));
		TimestampTz started = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
		double		budget = DatumGetFloat8(SPI_getbinval(tup, desc, 7, &isnull));
		int64		limit;
		int64		moved;
		int64		unmovable;
		Oid			mtypes[6] = {INT4OID, INT4OID, TIMESTAMPTZOID, INT8OID,
		INT4ARRAYOID, TEXTARRAYOID};
		Datum		mvalues[6];
		char		mnulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		Oid			utypes[6] = {UUIDOID, TIMESTAMPTZOID, INT8OID, FLOAT8OID, TEXTOID, TEXTOID};
		Datum		uvalues[6];
		char		unulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		const char *status = "RUNNING";
		const char *reason = NULL;

		if (now - started > (TimestampTz) MOVE_MAX_DURATION_SECS * USECS_PER_SEC)
		{
			status = "FAILED";
			reason = "The task ran longer than 36 hours.";
			limit = 0;
		}
		else if (rate_null)
			limit = MOVE_UNLIMITED_BATCH;
		else
		{
			/* earn rate x elapsed seconds, at most one second's worth */
			budget += (double) rate * (double) (now - last_run) / USECS_PER_SEC;
			if (budget > rate)
				budget = rate;
			limit = (int64) budget;
			budget -= limit;
		}

		moved = 0;
		if (limit > 0)
		{
			mvalues[0] = Int32GetDatum(source_id);
			mvalues[1] = dest_null ? (Datum) 0 : dest_id;
			mnulls[1] = dest_null ? 'n' : ' ';
			mvalues[2] = TimestampTzGetDatum(now);
			mvalues[3] = Int64GetDatum(limit);
			move_lock_groups(mvalues, mnulls, mtypes);
			/* a transaction id before the new msg_seqs (head.c) */
			(void) GetCurrentTransactionId();
			if (SPI_execute_with_args("WITH c AS ("
									  "  SELECT m.msg_seq, m.seg FROM msgq.message m"
									  "   WHERE m.queue_id OPERATOR(pg_catalog.=) $1"
									  "     AND GREATEST(m.visible_at, msgq.lease_until(m.queue_id, m.msg_seq, m.message_id)) OPERATOR(pg_catalog.<=) $3"
									  "     AND COALESCE($2, m.source_queue_id) IN (SELECT queue_id FROM msgq.queue)"
									  "     AND (m.message_group_id IS NULL"
									  "          OR (COALESCE($2, m.source_queue_id), m.message_group_id) IN"
									  "             (SELECT * FROM ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6))))"
									  "   ORDER BY m.queue_id, m.msg_seq LIMIT $4"
									  "   FOR UPDATE SKIP LOCKED),"
									  " d AS ("
									  "  DELETE FROM msgq.message m USING c"
									  "   WHERE m.queue_id OPERATOR(pg_catalog.=) $1"
									  "     AND m.msg_seq OPERATOR(pg_catalog.=) c.msg_seq"
									  "     AND m.seg OPERATOR(pg_catalog.=) c.seg"
									  "  RETURNING m.*)"
									  " INSERT INTO msgq.message (queue_id, msg_seq, message_id, body,"
									  "   message_attributes, md5_of_body, md5_of_message_attributes,"
									  "   sender, message_group_id, message_deduplication_id, sent_at, visible_at)"
									  " SELECT q.queue_id, pg_catalog.nextval('msgq.message_seq'),"
									  "   u.id, d.body, d.message_attributes,"
									  "   d.md5_of_body, d.md5_of_message_attributes, d.sender,"
									  "   d.message_group_id, CASE WHEN q.fifo THEN u.id::pg_catalog.text END, $3, $3"
									  "   FROM d JOIN msgq.queue q"
									  "          ON q.queue_id OPERATOR(pg_catalog.=) COALESCE($2, d.source_queue_id)"
									  "        CROSS JOIN LATERAL (SELECT pg_catalog.gen_random_uuid() AS id) u"
									  "  ORDER BY d.msg_seq"
									  " RETURNING queue_id",
									  6, mtypes, mvalues, mnulls, false, 0) != SPI_OK_INSERT_RETURNING)
				elog(ERROR, "could not move messages");
			moved = SPI_processed;
			{
				uint64		r;

				/* wake the destinations' long polls at commit */
				for (r = 0; r < SPI_processed; r++)
				{
					int32		dest = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r],
																   SPI_tuptable->tupdesc,
																   1, &isnull));

					msgq_wakeup_at_commit(dest, false);
					msgq_metrics_stored(dest, 1);
				}
				msgq_metrics_stored(source_id, -(int64) SPI_processed);
				if (SPI_processed > 0)
					msgq_wakeup_at_abort(source_id);
			}

			if (moved < limit)
			{
				/*
				 * Nothing more to move now: done, unless messages are in
				 * flight.  Not read-only, so the count sees the move above.
				 */
				if (SPI_execute_with_args("SELECT pg_catalog.count(*) FILTER (WHERE GREATEST(m.visible_at, msgq.lease_until(m.queue_id, m.msg_seq, m.message_id)) OPERATOR(pg_catalog.>) $3),"
										  "       pg_catalog.count(*) FILTER (WHERE GREATEST(m.visible_at, msgq.lease_until(m.queue_id, m.msg_seq, m.message_id)) OPERATOR(pg_catalog.<=) $3"
										  "           AND COALESCE($2, m.source_queue_id) IN (SELECT queue_id FROM msgq.queue)),"
										  "       pg_catalog.count(*) FILTER (WHERE GREATEST(m.visible_at, msgq.lease_until(m.queue_id, m.msg_seq, m.message_id)) OPERATOR(pg_catalog.<=) $3"
										  "           AND COALESCE($2, m.source_queue_id) NOT IN (SELECT queue_id FROM msgq.queue)"
										  "            OR m.source_queue_id IS NULL AND $2 IS NULL),"
										  "       EXISTS (SELECT 1 FROM msgq.queue q WHERE q.queue_id OPERATOR(pg_catalog.=) $1),"
										  "       $2 IS NULL OR EXISTS (SELECT 1 FROM msgq.queue q WHERE q.queue_id OPERATOR(pg_catalog.=) $2)"
										  "  FROM msgq.message m"
										  " WHERE m.queue_id OPERATOR(pg_catalog.=) $1",
										  4, mtypes, mvalues, mnulls, false, 0) != SPI_OK_SELECT)
					elog(ERROR, "could not count remaining messages");
				{
					HeapTuple	ct = SPI_tuptable->vals[0];
					TupleDesc	cd = SPI_tuptable->tupdesc;
					int64		in_flight = DatumGetInt64(SPI_getbinval(ct, cd, 1, &isnull));
					int64		locked = DatumGetInt64(SPI_getbinval(ct, cd, 2, &isnull));
					bool		source_exists = DatumGetBool(SPI_getbinval(ct, cd, 4, &isnull));
					bool		dest_exists = DatumGetBool(SPI_getbinval(ct, cd, 5, &isnull));

					unmovable = DatumGetInt64(SPI_getbinval(ct, cd, 3, &isnull));

					/*
					 * Done when nothing is in flight and every visible message
					 * left has nowhere to go; a message with somewhere to go
					 * that the move skipped is held by a receiver: try again.
					 */
					if (!source_exists)
					{
						status = "FAILED";
						reason = "The source queue was deleted.";
					}
					else if (!dest_exists)
					{
						status = "FAILED";
						reason = "The destination queue was deleted.";
					}
					else if (in_flight == 0 && locked == 0)
					{
						if (unmovable > 0)
						{
							status = "FAILED";
							reason = psprintf("Messages with no source queue to return to: %lld.",
											  (long long) unmovable);
						}
						else
							status = "COMPLETED";
					}
				}
			}
		}

		uvalues[0] = handle;
		uvalues[1] = TimestampTzGetDatum(now);
		uvalues[2] = Int64GetDatum(moved);
		uvalues[3] = Float8GetDatum(budget);
		uvalues[4] = CStringGetTextDatum(status);
		uvalues[5] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
		unulls[5] = reason ? ' ' : 'n';
		if (SPI_execute_with_args("UPDATE msgq.message_move_task"
								  "   SET last_run_at = $2, move_budget = $4,"
								  "       approximate_number_of_messages_moved ="
								  "         approximate_number_of_messages_moved OPERATOR(pg_catalog.+) $3,"
								  "       status = $5, failure_reason = $6,"
								  "       finished_at = CASE WHEN $5 OPERATOR(pg_catalog.=) 'RUNNING'"
								  "                     THEN NULL ELSE $2 END"
								  " WHERE task_handle OPERATOR(pg_catalog.=) $1",
								  6, utypes, uvalues, unulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record move task progress");
	}
}
