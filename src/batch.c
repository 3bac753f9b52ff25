/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch.
 *
 * A batch takes a jsonb array of AWS-shaped entries and returns one row per
 * entry, in entry order, with either a result or an error (code, message,
 * sender fault): partial failure, as in AWS.  Problems with the request as
 * a whole (empty, more than 10 entries, bad or repeated ids, too long) fail
 * the call.
 *
 * Entries are decided before anything is written: each entry is validated
 * on its own, and the good ones are then written by one statement.  No
 * entry gets a subtransaction (a transaction with more than 64 of them
 * slows every snapshot in the cluster).  The validation of one entry runs
 * under PG_TRY: it only computes over memory (no locks, buffers or catalog
 * writes), so catching its error and flushing the error state is safe; the
 * entry's error code comes from the AWS name the error carries in its
 * detail.
 *
 * IDENTIFICATION
 *	  src/batch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "msgq.h"

PG_FUNCTION_INFO_V1(msgq_send_message_batch);
PG_FUNCTION_INFO_V1(msgq_delete_message_batch);
PG_FUNCTION_INFO_V1(msgq_change_message_visibility_batch);

#define BATCH_MAX_ENTRIES	10
#define BATCH_MAX_BYTES		1048576

static SPIPlanPtr batch_plan_delete = NULL;
static SPIPlanPtr batch_plan_leases = NULL;
static SPIPlanPtr batch_plan_set_visible = NULL;

typedef struct BatchEntry
{
	char	   *id;
	JsonbContainer *obj;
	/* outcome */
	bool		failed;
	char	   *error_code;
	char	   *error_message;
	/* per-function data */
	MsgqPreparedMessage msg;
	text	   *body;
	Jsonb	   *attrs;
	char	   *group_id;
	int64		msg_seq;
	int64		nonce;
	int32		visibility;
	bool		leased;			/* changed in the lease table */
	bool		duplicate;		/* FIFO: a send the deduplication id repeats */
} BatchEntry;


static char *
batch_get_string(BatchEntry *e, const char *key)
{
	JsonbValue *v = msgq_jsonb_member(e->obj, key);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
				   "batch entry field %s must be a string", key);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static bool
batch_get_int(BatchEntry *e, const char *key, int32 *out)
{
	JsonbValue *v = msgq_jsonb_member(e->obj, key);
	char	   *s;
	char	   *end;
	long		val;

	if (v == NULL || v->type == jbvNull)
		return false;
	if (v->type == jbvNumeric)
		s = DatumGetCString(DirectFunctionCall1(numeric_out,
												NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString)
		s = pnstrdup(v->val.string.val, v->val.string.len);
	else
		s = "";
	errno = 0;
	val = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || val < PG_INT32_MIN || val > PG_INT32_MAX)
		MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
				   "batch entry field %s must be an integer", key);
	*out = (int32) val;
	return true;
}

/* Length of a string field of a JSON object, 0 when absent or not a string. */
static int64
batch_string_len(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = msgq_jsonb_member(obj, key);

	return (v != NULL && v->type == jbvString) ? v->val.string.len : 0;
}

/*
 * The bytes an entry counts toward BatchRequestTooLong: its body and, for
 * each message attribute, its name, data type and value (base64 decoded
 * for BinaryValue).  Computed before validation and never raises.
 */
static int64
batch_raw_size(BatchEntry *e)
{
	int64		size = batch_string_len(e->obj, "MessageBody");
	JsonbValue *attrs = msgq_jsonb_member(e->obj, "MessageAttributes");

	if (attrs != NULL && attrs->type == jbvBinary &&
		JsonContainerIsObject(attrs->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(attrs->val.binary.data);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				size += v.val.string.len;
			else if (tok == WJB_VALUE && v.type == jbvBinary &&
					 JsonContainerIsObject(v.val.binary.data))
			{
				size += batch_string_len(v.val.binary.data, "DataType");
				size += batch_string_len(v.val.binary.data, "StringValue");
				size += batch_string_len(v.val.binary.data, "BinaryValue") * 3 / 4;
			}
		}
	}
	return size;
}

/*
 * Parse and check the request as a whole; returns the entries with their
 * ids.  Whole-request problems raise their AWS error.
 */
static BatchEntry *
batch_parse(Jsonb *entries, int *nentries)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	BatchEntry *result;
	int			n = 0;
	int			count;
	int			i,
				j;

	if (entries == NULL || !JB_ROOT_IS_ARRAY(entries) || JB_ROOT_IS_SCALAR(entries) ||
		JB_ROOT_COUNT(entries) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_EMPTY_BATCH_REQUEST),
				 errmsg("there should be at least one entry in the request"),
				 errdetail_internal("AWS error code: EmptyBatchRequest")));
	count = JB_ROOT_COUNT(entries);
	if (count > BATCH_MAX_ENTRIES)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_TOO_MANY_ENTRIES_IN_BATCH),
				 errmsg("maximum number of entries per request are %d, you have sent %d",
						BATCH_MAX_ENTRIES, count),
				 errdetail_internal("AWS error code: TooManyEntriesInBatchRequest")));

	result = palloc0(sizeof(BatchEntry) * count);
	it = JsonbIteratorInit(&entries->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		BatchEntry *e;
		JsonbValue *idv;
		const char *p;

		if (tok != WJB_ELEM)
			continue;
		e = &result[n++];
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_BATCH_ENTRY_ID),
					 errmsg("batch entry %d is not a JSON object", n),
					 errdetail_internal("AWS error code: InvalidBatchEntryId")));
		e->obj = v.val.binary.data;
		idv = msgq_jsonb_member(e->obj, "Id");
		if (idv == NULL || idv->type != jbvString || idv->val.string.len == 0 ||
			idv->val.string.len > 80)
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_BATCH_ENTRY_ID),
					 errmsg("batch entry %d has no valid Id", n),
					 errdetail_internal("AWS error code: InvalidBatchEntryId"),
					 errhint("An Id has 1 to 80 characters: letters, digits, hyphens and underscores.")));
		e->id = pnstrdup(idv->val.string.val, idv->val.string.len);
		for (p = e->id; *p; p++)
			if (!msgq_is_name_char(*p))
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_INVALID_BATCH_ENTRY_ID),
						 errmsg("a batch entry id can only contain alphanumeric characters, hyphens and underscores: \"%s\"",
								e->id),
						 errdetail_internal("AWS error code: InvalidBatchEntryId")));
	}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (strcmp(result[i].id, result[j].id) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_BATCH_ENTRY_IDS_NOT_DISTINCT),
						 errmsg("two or more batch entries in the request have the same Id \"%s\"",
								result[i].id),
						 errdetail_internal("AWS error code: BatchEntryIdsNotDistinct")));
	*nentries = n;
	return result;
}

/*
 * Take the error being handled as a batch entry's outcome: its AWS error
 * name and message.  Called in a PG_CATCH block; the caller's memory
 * context is restored first.  Errors that are not AWS errors are rethrown.
 */
void
msgq_batch_error(MemoryContext cxt, char **code, char **message)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();

	if (edata->detail == NULL || strncmp(edata->detail, "AWS error code: ", 16) != 0)
	{
		/*
		 * Not a validation error (out of memory, cancel, a bug): the entry
		 * cannot be judged, so the whole call fails.
		 */
		ReThrowError(edata);
	}
	*code = pnstrdup(edata->detail + 16, strcspn(edata->detail + 16, ". "));
	*message = pstrdup(edata->message);
	FreeErrorData(edata);
}

static void
batch_entry_failed(BatchEntry *e, MemoryContext cxt)
{
	e->failed = true;
	msgq_batch_error(cxt, &e->error_code, &e->error_message);
}

/*
 * A batch request's entries and their ids, the request as a whole checked
 * as SendMessageBatch checks it (publish_batch, src/topic.c).
 */
int
msgq_batch_entries(Jsonb *entries, char ***ids, JsonbContainer ***objs)
{
	int			n;
	int			i;
	BatchEntry *e = batch_parse(entries, &n);

	*ids = palloc(sizeof(char *) * n);
	*objs = palloc(sizeof(JsonbContainer *) * n);
	for (i = 0; i < n; i++)
	{
		(*ids)[i] = e[i].id;
		(*objs)[i] = e[i].obj;
	}
	return n;
}

static void
batch_emit(ReturnSetInfo *rsinfo, BatchEntry *e, Datum *values, bool *nulls, int ncols)
{
	/* the last three columns are error_code, error_message, sender_fault */
	int			i;

	values[0] = CStringGetTextDatum(e->id);
	nulls[0] = false;
	if (e->failed)
	{
		for (i = 1; i < ncols - 3; i++)
			nulls[i] = true;
		values[ncols - 3] = CStringGetTextDatum(e->error_code);
		values[ncols - 2] = CStringGetTextDatum(e->error_message);
		values[ncols - 1] = BoolGetDatum(true);
		nulls[ncols - 3] = nulls[ncols - 2] = nulls[ncols - 1] = false;
	}
	else
		nulls[ncols - 3] = nulls[ncols - 2] = nulls[ncols - 1] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * msgq.send_message_batch(queue_name text, entries json)
 * returns table (id text, message_id uuid, md5_of_message_body text,
 *		md5_of_message_attributes text, sequence_number numeric,
 *		error_code text, error_message text, sender_fault boolean)
 *
 * Entries: {"Id", "MessageBody", "DelaySeconds", "MessageAttributes",
 * "MessageGroupId", "MessageDeduplicationId"}.  The good entries are
 * inserted by one statement, in entry order.
 */
Datum
msgq_send_message_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	text	   *entries_json = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	Jsonb	   *entries = NULL;
	char	   *dups[BATCH_MAX_ENTRIES];
	MsgqCall	call;
	MsgqQueue  *queue;
	BatchEntry *e;
	int			n,
				i,
				ngood = 0;
	int64		total = 0;
	MemoryContext cxt = CurrentMemoryContext;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	/* as send_message: no SQL for a cached standard queue */
	msgq_call_enter_light(&call);
	queue = msgq_queue_get_light(&call, name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_SEND, "SendMessage");
	if (queue->fifo)
		msgq_call_need_sql(&call);

	/*
	 * json, not jsonb: an entry with two message attributes of the same
	 * name (or any repeated key) fails instead of silently losing one.
	 */
	memset(dups, 0, sizeof(dups));
	if (entries_json != NULL)
	{
		/* one lexing pass finds repeated keys and builds the jsonb */
		entries = msgq_json_to_jsonb_dups(entries_json, dups, BATCH_MAX_ENTRIES);
	}
	e = batch_parse(entries, &n);

	/* the request's size counts every entry, good or bad, as AWS does */
	for (i = 0; i < n; i++)
		total += batch_raw_size(&e[i]);
	if (total > Max(BATCH_MAX_BYTES, msgq_queue_size_limit(queue)))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_BATCH_REQUEST_TOO_LONG),
				 errmsg("batch requests cannot be longer than %d bytes, you have sent %lld bytes",
						Max(BATCH_MAX_BYTES, msgq_queue_size_limit(queue)), (long long) total),
				 errdetail_internal("AWS error code: BatchRequestTooLong")));

	/* decide every entry's fate first */
	for (i = 0; i < n; i++)
	{
		PG_TRY();
		{
			char	   *body = batch_get_string(&e[i], "MessageBody");
			JsonbValue *attrs = msgq_jsonb_member(e[i].obj, "MessageAttributes");
			int32		delay = 0;
			bool		has_delay = batch_get_int(&e[i], "DelaySeconds", &delay);

			if (dups[i] != NULL)
				MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
						   "%s", dups[i]);

			e[i].body = body ? cstring_to_text(body) : NULL;
			e[i].attrs = NULL;
			if (attrs != NULL && attrs->type != jbvNull)
			{
				if (attrs->type != jbvBinary)
					MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
							   "message attributes must be a JSON object");
				e[i].attrs = JsonbValueToJsonb(attrs);
			}
			e[i].group_id = batch_get_string(&e[i], "MessageGroupId");
			msgq_message_prepare(queue, e[i].body, has_delay, delay, e[i].attrs,
								 e[i].group_id,
								 batch_get_string(&e[i], "MessageDeduplicationId"),
								 &e[i].msg);
		}
		PG_CATCH();
		{
			batch_entry_failed(&e[i], cxt);
		}
		PG_END_TRY();
	}
	/* then write the good ones together */
	for (i = 0; i < n; i++)
		if (!e[i].failed)
			ngood++;
	if (ngood > 0)
	{
		MsgqStoreMessage *msgs = palloc0(sizeof(MsgqStoreMessage) * ngood);
		int64	   *seqs = palloc(sizeof(int64) * ngood);
		char	   *sender = GetUserNameFromId(call.caller, false);
		TimestampTz now = msgq_now();
		int			k = 0;

		if (queue->fifo)
		{
			/*
			 * Lock the entries' groups in name order (two batches never
			 * wait for each other in a cycle), then number and deduplicate
			 * the entries in entry order (fifo.c).
			 */
			char	  **groups = palloc(sizeof(char *) * ngood);
			int			ng = 0;

			for (i = 0; i < n; i++)
				if (!e[i].failed)
					groups[ng++] = e[i].group_id;
			qsort(groups, ng, sizeof(char *), pg_qsort_strcmp);
			for (i = 0; i < ng; i++)
				if (i == 0 || strcmp(groups[i], groups[i - 1]) != 0)
					msgq_fifo_lock_group(queue->queue_id, groups[i]);
			for (i = 0; i < n; i++)
			{
				int64		seq;

				if (e[i].failed)
					continue;
				seq = msgq_store_next_seq();
				e[i].duplicate = !msgq_fifo_dedup(queue, e[i].group_id, e[i].msg.dedup_id,
												  e[i].msg.message_id, seq, now,
												  &e[i].msg.message_id, &e[i].msg_seq);
				if (!e[i].duplicate)
					e[i].msg_seq = seq;
			}
		}

		for (i = 0; i < n; i++)
		{
			if (e[i].failed || e[i].duplicate)
				continue;
			msgs[k].queue_id = queue->queue_id;
			msgs[k].message_id = e[i].msg.message_id;
			msgs[k].body = e[i].body;
			msgs[k].attributes = e[i].msg.md5_attrs ? e[i].attrs : NULL;
			msgs[k].md5_body = e[i].msg.md5_body;
			msgs[k].md5_attrs = e[i].msg.md5_attrs;
			msgs[k].sender = sender;
			msgs[k].group_id = e[i].group_id;
			msgs[k].dedup_id = e[i].msg.dedup_id;
			msgs[k].msg_seq = queue->fifo ? e[i].msg_seq : 0;
			msgs[k].sent_at = now;
			msgs[k].visible_at = now + (TimestampTz) e[i].msg.delay * USECS_PER_SEC;
			k++;
		}
		if (k > 0)
		{
			msgq_store_insert(msgs, k, seqs);
			for (i = 0; i < k; i++)
				msgq_remember_send(queue->queue_id, seqs[i], now);
			for (i = 0; i < n; i++)
				if (!e[i].failed && !e[i].duplicate)
					msgq_metrics_sent(queue->queue_id, 1, now,
									  now + (TimestampTz) e[i].msg.delay * USECS_PER_SEC);
			msgq_wakeup_at_commit(queue->queue_id, false);
		}
	}

	/* the tuplestore copies the rows; SPI's memory goes at msgq_call_leave */
	for (i = 0; i < n; i++)
	{
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, true, false, false, false};

		if (!e[i].failed)
		{
			values[1] = e[i].msg.message_id;
			values[2] = CStringGetTextDatum(e[i].msg.md5_body);
			nulls[3] = (e[i].msg.md5_attrs == NULL);
			values[3] = nulls[3] ? (Datum) 0 : CStringGetTextDatum(e[i].msg.md5_attrs);
			if (queue->fifo)
			{
				values[4] = DirectFunctionCall1(int8_numeric, Int64GetDatum(e[i].msg_seq));
				nulls[4] = false;
			}
		}
		batch_emit(rsinfo, &e[i], values, nulls, 8);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* A FIFO entry whose handle expired fails with AWS's error. */
static void
batch_entry_expired(BatchEntry *e, MemoryContext cxt)
{
	PG_TRY();
	{
		msgq_fifo_handle_expired(batch_get_string(e, "ReceiptHandle"));
	}
	PG_CATCH();
	{
		batch_entry_failed(e, cxt);
	}
	PG_END_TRY();
}

/* Decode an entry's receipt handle; raises the handle's AWS error. */
static void
batch_entry_handle(BatchEntry *e, MsgqQueue *queue)
{
	char	   *handle = batch_get_string(e, "ReceiptHandle");

	if (handle == NULL || handle[0] == '\0')
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter ReceiptHandle");
	msgq_handle_decode(handle, queue->queue_id, &e->msg_seq, &e->nonce);
}

/*
 * msgq.delete_message_batch(queue_name text, entries jsonb)
 * returns table (id text, error_code text, error_message text,
 *		sender_fault boolean)
 *
 * Entries: {"Id", "ReceiptHandle"}.  Deletes as delete_message does
 * (idempotent; a superseded handle deletes nothing), in one statement.
 */
Datum
msgq_delete_message_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	Jsonb	   *entries = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	MsgqQueue  *queue;
	BatchEntry *e;
	int			n,
				i,
				ngood = 0;
	MemoryContext cxt = CurrentMemoryContext;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_DELETE, "DeleteMessage");
	e = batch_parse(entries, &n);
	msgq_handle_prepare();

	for (i = 0; i < n; i++)
	{
		PG_TRY();
		{
			batch_entry_handle(&e[i], queue);
			ngood++;
		}
		PG_CATCH();
		{
			batch_entry_failed(&e[i], cxt);
		}
		PG_END_TRY();
	}

	if (ngood > 0)
	{
		Datum	   *seqs = palloc(sizeof(Datum) * ngood);
		Datum	   *nonces = palloc(sizeof(Datum) * ngood);
		Datum	   *modes = palloc(sizeof(Datum) * ngood);
		int64	   *leased = palloc(sizeof(int64) * ngood);
		TimestampTz *lease_deadlines = palloc(sizeof(TimestampTz) * ngood);
		int			nleased = 0;
		int			k = 0;
		Oid			argtypes[5] = {INT4OID, INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID,
		TIMESTAMPTZOID};
		Datum		values[5];
		TimestampTz now = msgq_now();

		/*
		 * As delete_message: mode 2 deletes (the latest receive's lease),
		 * 1 deletes a message no durable receive holds (a lease handle
		 * without a lease), 0 needs the row's nonce.  A superseded lease
		 * handle deletes nothing and is left out.
		 */
		for (i = 0; i < n; i++)
		{
			TimestampTz deadline;
			TimestampTz received_at;
			MsgqLeaseState state;

			if (e[i].failed)
				continue;
			state = msgq_lease_check(queue->queue_id, e[i].msg_seq, e[i].nonce,
									 &deadline, &received_at);
			if (queue->fifo &&
				(state == MSGQ_LEASE_STALE ||
				 (state == MSGQ_LEASE_MATCH && deadline <= now)))
			{
				batch_entry_expired(&e[i], cxt);
				continue;
			}
			if (state == MSGQ_LEASE_STALE)
				continue;
			seqs[k] = Int64GetDatum(e[i].msg_seq);
			nonces[k] = Int64GetDatum(e[i].nonce);
			if (state == MSGQ_LEASE_MATCH)
			{
				modes[k] = Int32GetDatum(2);
				leased[nleased] = e[i].msg_seq;
				lease_deadlines[nleased++] = deadline;
			}
			else
				modes[k] = Int32GetDatum(msgq_nonce_is_lease(e[i].nonce) ? 1 : 0);
			k++;
		}
		if (k > 0)
		{
			uint64		r;
			bool		isnull;

			values[0] = Int32GetDatum(queue->queue_id);
			values[1] = PointerGetDatum(construct_array(seqs, k, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			values[2] = PointerGetDatum(construct_array(nonces, k, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			values[3] = PointerGetDatum(construct_array(modes, k, INT4OID, 4, true, TYPALIGN_INT));
			values[4] = TimestampTzGetDatum(now);
			if (msgq_execute_keyed(msgq_plan(&batch_plan_delete,
										   "DELETE FROM msgq.message m"
										   " USING ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
										   "                  pg_catalog.unnest($4)) AS u(seq, nonce, mode)"
										   " WHERE m.queue_id OPERATOR(pg_catalog.=) $1"
										   "   AND m.msg_seq OPERATOR(pg_catalog.=) u.seq"
										   "   AND (u.mode OPERATOR(pg_catalog.=) 2"
										   "        OR m.receipt_nonce OPERATOR(pg_catalog.=) u.nonce"
										   "        OR (u.mode OPERATOR(pg_catalog.=) 1"
										   "            AND m.visible_at OPERATOR(pg_catalog.<=) $5))"
										   " RETURNING m.msg_seq, m.visible_at",
										   5, argtypes),
								 values, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
				elog(ERROR, "could not delete messages");
			if (SPI_processed > 0)
				msgq_wakeup_at_abort(queue->queue_id);

			for (r = 0; r < SPI_processed; r++)
			{
				int64		seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
															  SPI_tuptable->tupdesc,
															  1, &isnull));
				TimestampTz visible_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[r],
																		   SPI_tuptable->tupdesc,
																		   2, &isnull));
				int			j;

				for (j = 0; j < nleased; j++)
					if (leased[j] == seq)
					{
						msgq_lease_forget_at_commit(queue->queue_id, seq);
						visible_at = Max(visible_at, lease_deadlines[j]);
						break;
					}
				msgq_metrics_deleted(queue->queue_id, 1, now, visible_at, true);
				/* FIFO: the delete may unblock its group for a waiting receive */
				if (queue->fifo)
					msgq_wakeup_at_commit(queue->queue_id, false);
			}
		}
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4];

		batch_emit(rsinfo, &e[i], values, nulls, 4);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* An entry whose handle is not the latest receive's, as msgq_lease_stale_error. */
static void
batch_stale_entry(BatchEntry *e, bool visible)
{
	if (visible)
	{
		e->error_code = "MessageNotInflight";
		e->error_message = "message is not in flight";
	}
	else
	{
		e->error_code = "InvalidParameterValue";
		e->error_message = "message does not exist or is not available for visibility timeout change";
	}
}

/*
 * msgq.change_message_visibility_batch(queue_name text, entries jsonb)
 * returns table (id text, error_code text, error_message text,
 *		sender_fault boolean)
 *
 * Entries: {"Id", "ReceiptHandle", "VisibilityTimeout"}, with
 * change_message_visibility's rules per entry.  The leases are read and
 * locked by one statement and changed by another.
 */
Datum
msgq_change_message_visibility_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	Jsonb	   *entries = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	MsgqQueue  *queue;
	BatchEntry *e;
	int			n,
				i,
				ngood = 0;
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz now;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_CHANGE_VIS,
							"ChangeMessageVisibility");
	e = batch_parse(entries, &n);
	msgq_handle_prepare();

	for (i = 0; i < n; i++)
	{
		PG_TRY();
		{
			if (!batch_get_int(&e[i], "VisibilityTimeout", &e[i].visibility))
				MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
						   "the request must contain the parameter VisibilityTimeout");
			if (e[i].visibility < 0 || e[i].visibility > MSGQ_MAX_VISIBILITY_TIMEOUT)
				msgq_invalid_value("VisibilityTimeout", e[i].visibility,
								   "Must be >= 0 and <= 43200.");
			batch_entry_handle(&e[i], queue);
			ngood++;
		}
		PG_CATCH();
		{
			batch_entry_failed(&e[i], cxt);
		}
		PG_END_TRY();
	}

	now = msgq_now();

	/*
	 * Entries whose message has a lease in shared memory are judged and
	 * changed there; the others against their rows, as before.
	 */
	for (i = 0; i < n; i++)
	{
		TimestampTz deadline;
		TimestampTz received_at;
		TimestampTz until;

		if (e[i].failed)
			continue;
		switch (msgq_lease_check(queue->queue_id, e[i].msg_seq, e[i].nonce,
								 &deadline, &received_at))
		{
			case MSGQ_LEASE_NONE:
				continue;
			case MSGQ_LEASE_MATCH:
				until = now + (TimestampTz) e[i].visibility * USECS_PER_SEC;
				if (!msgq_message_exists(queue->queue_id, e[i].msg_seq))
				{
					e[i].error_code = "InvalidParameterValue";
					e[i].error_message = "message does not exist or is not available for visibility timeout change";
				}
				else if ((now - received_at) / USECS_PER_SEC + e[i].visibility > MSGQ_MAX_VISIBILITY_TIMEOUT)
				{
					e[i].error_code = "InvalidParameterValue";
					e[i].error_message = psprintf("value %d for parameter VisibilityTimeout is invalid: total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
												  e[i].visibility);
				}
				else if (msgq_lease_set_deadline(queue->queue_id, e[i].msg_seq,
												 e[i].nonce, until, &deadline))
				{
					msgq_metrics_visibility(queue->queue_id, now, deadline, until);
					msgq_wakeup_at_commit(queue->queue_id, false);
					e[i].leased = true;
					ngood--;
					continue;
				}
				else
					batch_stale_entry(&e[i], deadline <= now);
				break;
			case MSGQ_LEASE_STALE:
				batch_stale_entry(&e[i], deadline <= now);
				break;
		}
		e[i].failed = true;
		ngood--;
	}

	if (ngood > 0)
	{
		Datum	   *seqs = palloc(sizeof(Datum) * ngood);
		Datum	   *until = palloc(sizeof(Datum) * ngood);
		int			k = 0;
		Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
		Datum		values[2];
		uint64		r;

		for (i = 0; i < n; i++)
			if (!e[i].failed && !e[i].leased)
				seqs[k++] = Int64GetDatum(e[i].msg_seq);
		values[0] = Int32GetDatum(queue->queue_id);
		values[1] = PointerGetDatum(construct_array(seqs, ngood, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (msgq_execute_keyed(msgq_plan(&batch_plan_leases,
									   "SELECT msg_seq, receipt_nonce, received_at, visible_at"
									   "  FROM msgq.message"
									   " WHERE queue_id OPERATOR(pg_catalog.=) $1"
									   "   AND msg_seq OPERATOR(pg_catalog.=) ANY ($2)"
									   " ORDER BY msg_seq FOR UPDATE",
									   2, argtypes),
							 values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read message leases");
		if (SPI_processed > 0)
			msgq_wakeup_at_abort(queue->queue_id);

		/* judge each entry against its row, as change_message_visibility does */
		for (i = 0; i < n; i++)
		{
			bool		found = false;

			if (e[i].failed || e[i].leased)
				continue;
			for (r = 0; r < SPI_processed; r++)
			{
				HeapTuple	tup = SPI_tuptable->vals[r];
				TupleDesc	desc = SPI_tuptable->tupdesc;
				bool		isnull;

				if (DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)) != e[i].msg_seq)
					continue;
				found = true;
				if (DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull)) != e[i].nonce)
				{
					e[i].failed = true;
					if (DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull)) <= now)
					{
						e[i].error_code = "MessageNotInflight";
						e[i].error_message = "message is not in flight";
					}
					else
					{
						e[i].error_code = "InvalidParameterValue";
						e[i].error_message = "message does not exist or is not available for visibility timeout change";
					}
				}
				else if ((now - DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull))) / USECS_PER_SEC +
						 e[i].visibility > MSGQ_MAX_VISIBILITY_TIMEOUT)
				{
					e[i].failed = true;
					e[i].error_code = "InvalidParameterValue";
					e[i].error_message = psprintf("value %d for parameter VisibilityTimeout is invalid: total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
												  e[i].visibility);
				}
				else
					msgq_metrics_visibility(queue->queue_id, now,
											DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull)),
											now + (TimestampTz) e[i].visibility * USECS_PER_SEC);
				break;
			}
			if (!found)
			{
				e[i].failed = true;
				e[i].error_code = "InvalidParameterValue";
				e[i].error_message = "message does not exist or is not available for visibility timeout change";
			}
		}

		k = 0;
		for (i = 0; i < n; i++)
		{
			if (e[i].failed || e[i].leased)
				continue;
			seqs[k] = Int64GetDatum(e[i].msg_seq);
			until[k] = TimestampTzGetDatum(now + (TimestampTz) e[i].visibility * USECS_PER_SEC);
			k++;
		}
		if (k > 0)
		{
			Oid			utypes[3] = {INT4OID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};
			Datum		uvalues[3];

			uvalues[0] = Int32GetDatum(queue->queue_id);
			uvalues[1] = PointerGetDatum(construct_array(seqs, k, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			uvalues[2] = PointerGetDatum(construct_array(until, k, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			if (msgq_execute_keyed(msgq_plan(&batch_plan_set_visible,
										   "UPDATE msgq.message m SET visible_at = u.until"
										   "  FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS u(seq, until)"
										   " WHERE m.queue_id OPERATOR(pg_catalog.=) $1"
										   "   AND m.msg_seq OPERATOR(pg_catalog.=) u.seq",
										   3, utypes),
								 uvalues, NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not change message visibility");
			msgq_wakeup_at_commit(queue->queue_id, false);
		}
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4];

		batch_emit(rsinfo, &e[i], values, nulls, 4);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}
