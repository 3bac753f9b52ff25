/*-------------------------------------------------------------------------
 *
 * esm.c
 *	  Event source mappings, as Lambda has them: the msgq worker reads
 *	  batches from a queue and calls a SQL function with each batch, in
 *	  Lambda's event shape, as the mapping's owner.
 *
 * A mapping is a row of msgq.event_source_mapping.  Each worker pass (and
 * msgq.run_maintenance()) reads the enabled mappings and, for each, up to
 * ESM_BATCHES_PER_PASS batches, one transaction per batch:
 *
 *	- receive up to BatchSize messages as the owner (receive_message, ten
 *	  at a time); with MaximumBatchingWindowInSeconds, a batch smaller than
 *	  BatchSize waits until the window since the worker first saw the queue
 *	  non-empty has passed (msgq.queue_metrics tells how many are visible);
 *	- call the function with {"Records": [...]}, as the owner, under
 *	  SECURITY_RESTRICTED_OPERATION and msgq.function_timeout, in a
 *	  subtransaction;
 *	- delete what succeeded in that same subtransaction: every message, or
 *	  with FunctionResponseTypes ["ReportBatchItemFailures"] all but the
 *	  batchItemFailures the function returned.  The function's own writes
 *	  and the deletes commit together, so a message whose effects are in
 *	  the database is processed exactly once.
 *
 * A function that fails rolls its subtransaction back: the batch's
 * messages stay received until their visibility timeout ends, and are
 * received again, counted toward maxReceiveCount, as Lambda leaves them.
 * The failure is logged with the mapping and the batch, and counted in the
 * mapping's row; other mappings go on.
 *
 * Stream sources are not built yet: create_event_source_mapping refuses
 * them with a clear error.
 *
 * IDENTIFICATION
 *	  src/esm.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/snapmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "msgq.h"

#define ESM_BATCHES_PER_PASS	4
#define ESM_MAX_BATCH			10000
#define ESM_MAX_WINDOW			300

/* what the worker remembers of a mapping between passes */
typedef struct EsmSeen
{
	pg_uuid_t	uuid;
	TimestampTz pending_since;	/* the queue was first seen non-empty */
} EsmSeen;

static EsmSeen *esm_seen = NULL;
static int	esm_nseen = 0;

typedef struct EsmAttrs
{
	int32		batch_size;
	int32		window;			/* seconds */
	bool		enabled;
	bool		report_failures;
	bool		has[4];			/* which were given */
} EsmAttrs;

enum
{
	EA_BATCH, EA_WINDOW, EA_ENABLED, EA_RESPONSE
};

static void
esm_invalid(const char *fmt_detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
			 errmsg("invalid event source mapping: %s", fmt_detail),
			 errdetail_internal("AWS error code: InvalidParameterValueException")));
}

static int32
esm_int(JsonbValue *v, const char *key)
{
	Datum		d;

	if (v->type != jbvNumeric)
		esm_invalid(psprintf("%s must be a number", key));
	d = DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric));
	if (DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric))) !=
		DatumGetInt32(d) ||
		!DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(v->val.numeric),
										  DirectFunctionCall1(int4_numeric, d))))
		esm_invalid(psprintf("%s must be an integer", key));
	return DatumGetInt32(d);
}

/*
 * Read the attributes Lambda takes for an SQS source; anything else (the
 * stream-only ones included) is refused by name.
 */
static void
esm_parse_attrs(Jsonb *attrs, EsmAttrs *out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (attrs == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(attrs))
		esm_invalid("the attributes must be a JSON object");
	it = JsonbIteratorInit(&attrs->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "BatchSize") == 0)
		{
			out->batch_size = esm_int(&v, key);
			out->has[EA_BATCH] = true;
		}
		else if (strcmp(key, "MaximumBatchingWindowInSeconds") == 0)
		{
			out->window = esm_int(&v, key);
			out->has[EA_WINDOW] = true;
		}
		else if (strcmp(key, "Enabled") == 0)
		{
			if (v.type != jbvBool)
				esm_invalid("Enabled must be true or false");
			out->enabled = v.val.boolean;
			out->has[EA_ENABLED] = true;
		}
		else if (strcmp(key, "FunctionResponseTypes") == 0)
		{
			/* an array: read its elements */
			bool		report = false;
			JsonbIterator *eit;
			JsonbValue	e;
			JsonbIteratorToken etok;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				esm_invalid("FunctionResponseTypes must be an array");
			eit = JsonbIteratorInit(v.val.binary.data);
			while ((etok = JsonbIteratorNext(&eit, &e, true)) != WJB_DONE)
			{
				if (etok != WJB_ELEM)
					continue;
				if (e.type != jbvString ||
					e.val.string.len != strlen("ReportBatchItemFailures") ||
					strncmp(e.val.string.val, "ReportBatchItemFailures", e.val.string.len) != 0)
					esm_invalid("FunctionResponseTypes may only contain \"ReportBatchItemFailures\"");
				report = true;
			}
			out->report_failures = report;
			out->has[EA_RESPONSE] = true;
		}
		else if (strcmp(key, "StartingPosition") == 0 ||
				 strcmp(key, "StartingPositionTimestamp") == 0 ||
				 strcmp(key, "MaximumRetryAttempts") == 0 ||
				 strcmp(key, "MaximumRecordAgeInSeconds") == 0 ||
				 strcmp(key, "BisectBatchOnFunctionError") == 0 ||
				 strcmp(key, "ParallelizationFactor") == 0 ||
				 strcmp(key, "DestinationConfig") == 0 ||
				 strcmp(key, "TumblingWindowInSeconds") == 0)
			esm_invalid(psprintf("%s is for stream sources, not for a queue", key));
		else
			esm_invalid(psprintf("unknown attribute \"%s\"", key));
	}
}

/* Lambda's limits for an SQS source (standard queues; FIFO: batch <= 10, no window) */
static void
esm_check_attrs(const EsmAttrs *a, bool fifo)
{
	int32		max = fifo ? 10 : (a->window > 0 ? ESM_MAX_BATCH : 10);

	if (a->window < 0 || a->window > ESM_MAX_WINDOW)
		esm_invalid(psprintf("MaximumBatchingWindowInSeconds must be between 0 and %d, not %d",
							 ESM_MAX_WINDOW, a->window));
	if (fifo && a->window > 0)
		esm_invalid("a FIFO queue takes no MaximumBatchingWindowInSeconds");
	if (a->batch_size < 1 || a->batch_size > max)
		esm_invalid(psprintf("BatchSize must be between 1 and %d%s, not %d", max,
							 (!fifo && a->window == 0) ?
							 " (up to 10000 with a MaximumBatchingWindowInSeconds)" : "",
							 a->batch_size));
}

/* The function: it exists, takes one jsonb, and the caller may execute it. */
static void
esm_check_function(Oid fn, Oid roleid)
{
	Oid		   *argtypes;
	int			nargs;

	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(fn)))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
				 errmsg("function %u does not exist", fn),
				 errdetail_internal("AWS error code: ResourceNotFoundException")));
	(void) get_func_signature(fn, &argtypes, &nargs);
	if (nargs != 1 || argtypes[0] != JSONBOID)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("function %s must take one argument of type jsonb",
						format_procedure(fn)),
				 errdetail_internal("AWS error code: InvalidParameterValueException")));
	if (pg_proc_aclcheck(fn, roleid, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for function %s", format_procedure(fn)),
				 errdetail_internal("AWS error code: AccessDeniedException")));
}


#define ESM_CONFIG_SQL \
	"SELECT pg_catalog.jsonb_build_object(" \
	"  'UUID', m.uuid, 'EventSourceArn', m.source_arn," \
	"  'FunctionArn', m.function::pg_catalog.text, 'BatchSize', m.batch_size," \
	"  'MaximumBatchingWindowInSeconds', m.batching_window," \
	"  'FunctionResponseTypes', CASE WHEN m.report_batch_item_failures" \
	"      THEN '[\"ReportBatchItemFailures\"]'::pg_catalog.jsonb ELSE '[]' END," \
	"  'State', CASE WHEN m.enabled THEN 'Enabled' ELSE 'Disabled' END," \
	"  'StateTransitionReason', 'USER_INITIATED'," \
	"  'LastModified', m.last_modified," \
	"  'LastProcessingResult', m.last_processing_result)" \
	"  FROM msgq.event_source_mapping m"

/* The mapping's configuration, copied into cxt */
static Jsonb *
esm_config(const pg_uuid_t *uuid, bool deleting, MemoryContext cxt)
{
	MemoryContext old;
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	Jsonb	   *j;

	if (SPI_execute_plan(msgq_plan(&plan, ESM_CONFIG_SQL " WHERE m.uuid OPERATOR(pg_catalog.=) $1",
								   1, (Oid[]) {UUIDOID}),
						 (Datum[]) {UUIDPGetDatum(uuid)}, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the event source mapping");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
				 errmsg("event source mapping %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(uuid)))),
				 errdetail_internal("AWS error code: ResourceNotFoundException")));
	j = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (deleting)
		j = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(j),
											   DirectFunctionCall1(jsonb_in,
																   CStringGetDatum("{\"State\": \"Deleting\"}"))));
	old = MemoryContextSwitchTo(cxt);
	j = DatumGetJsonbPCopy(JsonbPGetDatum(j));
	MemoryContextSwitchTo(old);
	return j;
}

/* The mapping's owner, checked against the caller (or a superuser) */
static Oid
esm_lock_own(const pg_uuid_t *uuid, Oid caller)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	Oid			owner;

	if (SPI_execute_plan(msgq_plan(&plan, "SELECT owner::pg_catalog.oid FROM msgq.event_source_mapping"
								   " WHERE uuid OPERATOR(pg_catalog.=) $1 FOR UPDATE",
								   1, (Oid[]) {UUIDOID}),
						 (Datum[]) {UUIDPGetDatum(uuid)}, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the event source mapping");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
				 errmsg("event source mapping %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(uuid)))),
				 errdetail_internal("AWS error code: ResourceNotFoundException")));
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!superuser_arg(caller) && !has_privs_of_role(caller, owner))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("must be owner of event source mapping %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(uuid)))),
				 errdetail_internal("AWS error code: AccessDeniedException")));
	return owner;
}

/*
 * msgq.create_event_source_mapping(source text, function regprocedure,
 *									 attributes jsonb DEFAULT '{}')
 */
PG_FUNCTION_INFO_V1(msgq_create_event_source_mapping);
Datum
msgq_create_event_source_mapping(PG_FUNCTION_ARGS)
{
	char	   *source = msgq_text_arg(fcinfo, 0);
	Oid			fn = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);
	Jsonb	   *attrs = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	MsgqCall	call;
	MsgqQueue	queue;
	EsmAttrs	a = {10, 0, true, false};
	pg_uuid_t  *uuid;
	Datum		result;

	msgq_check_preloaded();
	if (source == NULL)
		esm_invalid("an event source is required");
	if (!OidIsValid(fn))
		esm_invalid("a function is required");
	msgq_call_enter(&call);
	if (strncmp(source, "arn:aws:kinesis:", 16) == 0 ||
		(!msgq_queue_lookup(source, &queue) && msgq_stream_exists(source)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("event source mappings over streams are not built yet"),
				 errdetail_internal("AWS error code: InvalidParameterValueException"),
				 errhint("Read a stream with msgq.acquire_leases(), msgq.get_records() and msgq.checkpoint().")));
	if (!msgq_queue_lookup(source, &queue))
		msgq_queue_does_not_exist(source);
	msgq_check_queue_action(&queue, call.caller, MSGQ_ACT_RECEIVE, "ReceiveMessage");
	msgq_check_queue_action(&queue, call.caller, MSGQ_ACT_DELETE, "DeleteMessage");
	esm_check_function(fn, call.caller);
	esm_parse_attrs(attrs, &a);
	esm_check_attrs(&a, queue.fifo);

	uuid = DatumGetUUIDP(DirectFunctionCall1(gen_random_uuid, (Datum) 0));
	if (SPI_execute_with_args("INSERT INTO msgq.event_source_mapping"
							  "  (uuid, source_kind, source_id, source_arn, function, owner,"
							  "   enabled, batch_size, batching_window, report_batch_item_failures,"
							  "   created_at, last_modified)"
							  " VALUES ($1, 'queue', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
							  10, (Oid[]) {UUIDOID, INT4OID, TEXTOID, OIDOID, OIDOID, BOOLOID,
							  INT4OID, INT4OID, BOOLOID, TIMESTAMPTZOID},
							  (Datum[]) {UUIDPGetDatum(uuid), Int32GetDatum(queue.queue_id),
							  CStringGetTextDatum(msgq_queue_arn(queue.queue_name)),
							  ObjectIdGetDatum(fn), ObjectIdGetDatum(call.caller),
							  BoolGetDatum(a.enabled), Int32GetDatum(a.batch_size),
							  Int32GetDatum(a.window), BoolGetDatum(a.report_failures),
							  TimestampTzGetDatum(msgq_now())},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not create the event source mapping");
	msgq_delivery_wake_worker_at_commit();
	msgq_call_leave(&call);
	result = UUIDPGetDatum(uuid);
	PG_RETURN_DATUM(result);
}

/* msgq.update_event_source_mapping(uuid, attributes jsonb): the new configuration */
PG_FUNCTION_INFO_V1(msgq_update_event_source_mapping);
Datum
msgq_update_event_source_mapping(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = PG_ARGISNULL(0) ? NULL : PG_GETARG_UUID_P(0);
	Jsonb	   *attrs = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	EsmAttrs	a = {0};
	bool		isnull;
	bool		fifo;
	Jsonb	   *config;
	MemoryContext cxt = CurrentMemoryContext;

	msgq_check_preloaded();
	if (uuid == NULL)
		esm_invalid("a UUID is required");
	msgq_call_enter(&call);
	(void) esm_lock_own(uuid, call.caller);
	if (SPI_execute_with_args("SELECT m.batch_size, m.batching_window, m.enabled,"
							  "       m.report_batch_item_failures, q.fifo"
							  "  FROM msgq.event_source_mapping m JOIN msgq.queue q"
							  "    ON q.queue_id OPERATOR(pg_catalog.=) m.source_id"
							  " WHERE m.uuid OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {UUIDOID}, (Datum[]) {UUIDPGetDatum(uuid)},
							  NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the event source mapping");
	a.batch_size = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	a.window = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	a.enabled = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	a.report_failures = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	fifo = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	esm_parse_attrs(attrs, &a);
	esm_check_attrs(&a, fifo);
	if (SPI_execute_with_args("UPDATE msgq.event_source_mapping SET batch_size = $2,"
							  "       batching_window = $3, enabled = $4,"
							  "       report_batch_item_failures = $5, last_modified = $6"
							  " WHERE uuid OPERATOR(pg_catalog.=) $1",
							  6, (Oid[]) {UUIDOID, INT4OID, INT4OID, BOOLOID, BOOLOID, TIMESTAMPTZOID},
							  (Datum[]) {UUIDPGetDatum(uuid), Int32GetDatum(a.batch_size),
							  Int32GetDatum(a.window), BoolGetDatum(a.enabled),
							  BoolGetDatum(a.report_failures), TimestampTzGetDatum(msgq_now())},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the event source mapping");
	config = esm_config(uuid, false, cxt);
	msgq_delivery_wake_worker_at_commit();
	msgq_call_leave(&call);
	PG_RETURN_JSONB_P(config);
}

/* msgq.delete_event_source_mapping(uuid): its last configuration, State "Deleting" */
PG_FUNCTION_INFO_V1(msgq_delete_event_source_mapping);
Datum
msgq_delete_event_source_mapping(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = PG_ARGISNULL(0) ? NULL : PG_GETARG_UUID_P(0);
	MsgqCall	call;
	Jsonb	   *config;
	MemoryContext cxt = CurrentMemoryContext;

	msgq_check_preloaded();
	if (uuid == NULL)
		esm_invalid("a UUID is required");
	msgq_call_enter(&call);
	(void) esm_lock_own(uuid, call.caller);
	config = esm_config(uuid, true, cxt);
	if (SPI_execute_with_args("DELETE FROM msgq.event_source_mapping WHERE uuid OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {UUIDOID}, (Datum[]) {UUIDPGetDatum(uuid)},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the event source mapping");
	msgq_call_leave(&call);
	PG_RETURN_JSONB_P(config);
}

/* msgq.get_event_source_mapping(uuid) */
PG_FUNCTION_INFO_V1(msgq_get_event_source_mapping);
Datum
msgq_get_event_source_mapping(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = PG_ARGISNULL(0) ? NULL : PG_GETARG_UUID_P(0);
	MsgqCall	call;
	Jsonb	   *config;
	MemoryContext cxt = CurrentMemoryContext;

	msgq_check_preloaded();
	if (uuid == NULL)
		esm_invalid("a UUID is required");
	msgq_call_enter(&call);
	config = esm_config(uuid, false, cxt);
	msgq_call_leave(&call);
	PG_RETURN_JSONB_P(config);
}

/*
 * msgq.list_event_source_mappings(source text DEFAULT NULL): the
 * configurations of the caller's mappings (a superuser's: all), of one
 * queue when source is given.
 */
PG_FUNCTION_INFO_V1(msgq_list_event_source_mappings);
Datum
msgq_list_event_source_mappings(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *source = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqQueue	queue;
	int32		source_id = 0;
	uint64		i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);
	if (source != NULL)
	{
		if (!msgq_queue_lookup(source, &queue))
			msgq_queue_does_not_exist(source);
		source_id = queue.queue_id;
	}
	if (SPI_execute_with_args(ESM_CONFIG_SQL
							  " WHERE ($1 OPERATOR(pg_catalog.=) 0 OR m.source_id OPERATOR(pg_catalog.=) $1)"
							  "   AND ($2 OR pg_catalog.pg_has_role($3, m.owner, 'USAGE'))"
							  " ORDER BY m.created_at, m.uuid",
							  3, (Oid[]) {INT4OID, BOOLOID, OIDOID},
							  (Datum[]) {Int32GetDatum(source_id), BoolGetDatum(superuser_arg(call.caller)),
							  ObjectIdGetDatum(call.caller)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list event source mappings");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		v = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * The worker's pass
 * ------------------------------------------------------------------------
 */

typedef struct EsmRow
{
	pg_uuid_t	uuid;
	int32		queue_id;
	char	   *queue_name;
	Oid			function;
	Oid			owner;
	int32		batch_size;
	int32		window;
	bool		report_failures;
} EsmRow;

static void esm_publish_sources(const EsmRow *rows, int n);

static EsmSeen *
esm_seen_get(const pg_uuid_t *uuid)
{
	int			i;

	for (i = 0; i < esm_nseen; i++)
		if (memcmp(&esm_seen[i].uuid, uuid, sizeof(pg_uuid_t)) == 0)
			return &esm_seen[i];
	if (esm_seen == NULL)
		esm_seen = MemoryContextAllocZero(TopMemoryContext, sizeof(EsmSeen) * 64);
	else if (esm_nseen % 64 == 0)
		esm_seen = repalloc(esm_seen, sizeof(EsmSeen) * (esm_nseen + 64));
	memset(&esm_seen[esm_nseen], 0, sizeof(EsmSeen));
	esm_seen[esm_nseen].uuid = *uuid;
	return &esm_seen[esm_nseen++];
}

/* how many messages the queue has visible (msgq.queue_metrics) */
static int64
esm_visible(const char *queue_name)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	Datum		d;

	if (SPI_execute_plan(msgq_plan(&plan, "SELECT \"ApproximateNumberOfMessagesVisible\""
								   "  FROM msgq.queue_metrics"
								   " WHERE queue_name OPERATOR(pg_catalog.=) $1",
								   1, (Oid[]) {TEXTOID}),
						 (Datum[]) {CStringGetTextDatum(queue_name)}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the queue's metrics");
	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

static void
esm_record(const pg_uuid_t *uuid, const char *result, const char *error, int failed)
{
	static SPIPlanPtr plan = NULL;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = UUIDPGetDatum(uuid);
	values[1] = CStringGetTextDatum(result);
	if (error != NULL)
		values[2] = CStringGetTextDatum(error);
	else
		nulls[2] = 'n';
	values[3] = Int32GetDatum(failed);
	values[4] = TimestampTzGetDatum(msgq_now());
	if (SPI_execute_plan(msgq_plan(&plan, "UPDATE msgq.event_source_mapping"
								   "   SET last_processing_result = $2,"
								   "       last_error = COALESCE($3, last_error),"
								   "       invocations = invocations OPERATOR(pg_catalog.+) 1,"
								   "       failed_invocations = failed_invocations OPERATOR(pg_catalog.+) $4,"
								   "       last_invoked_at = $5"
								   " WHERE uuid OPERATOR(pg_catalog.=) $1",
								   5, (Oid[]) {UUIDOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID}),
						 values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the invocation");
}

/*
 * One batch of a queue mapping, in the caller's transaction.  Returns how
 * many messages were received (0: the queue had none, or the window is
 * still open; *wait_ms then says when to look again, -1: not before a
 * wake-up).
 */
static int
esm_queue_batch(EsmRow *m, bool in_worker, long *wait_ms)
{
	static SPIPlanPtr plan_receive = NULL;
	static SPIPlanPtr plan_delete = NULL;
	EsmSeen    *seen = esm_seen_get(&m->uuid);
	TimestampTz now = msgq_now();
	Oid			save_userid;
	int			save_sec_context;
	int			n;
	bool		isnull;
	Datum		event;
	Datum		ids;
	Datum		handles;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *edata = NULL;
	Datum		response = (Datum) 0;
	bool		response_null = true;
	int			failed_items = 0;

	*wait_ms = -1;
	if (m->window > 0)
	{
		int64		visible = esm_visible(m->queue_name);

		if (visible == 0)
		{
			seen->pending_since = 0;
			return 0;
		}
		if (seen->pending_since == 0)
			seen->pending_since = now;
		if (visible < m->batch_size &&
			now < seen->pending_since + (TimestampTz) m->window * USECS_PER_SEC)
		{
			*wait_ms = (seen->pending_since + (TimestampTz) m->window * USECS_PER_SEC - now + 999) / 1000;
			return 0;
		}
	}

	/* receive as the owner, ten at a time, up to BatchSize */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(m->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_plan(msgq_plan(&plan_receive,
								   "SELECT pg_catalog.count(*)::pg_catalog.int4,"
								   "  pg_catalog.jsonb_build_object('Records', COALESCE(pg_catalog.jsonb_agg("
								   "    pg_catalog.jsonb_build_object("
								   "      'messageId', r.message_id, 'receiptHandle', r.receipt_handle,"
								   "      'body', r.body, 'attributes', r.attributes,"
								   "      'messageAttributes', COALESCE(r.message_attributes, '{}'),"
								   "      'md5OfBody', r.md5_of_body, 'eventSource', 'aws:sqs',"
								   "      'eventSourceARN', $3, 'awsRegion', 'msgq') ORDER BY g.g, r.ord),"
								   "    '[]')),"
								   "  pg_catalog.array_agg(r.message_id::pg_catalog.text ORDER BY g.g, r.ord),"
								   "  pg_catalog.array_agg(r.receipt_handle ORDER BY g.g, r.ord)"
								   "  FROM pg_catalog.generate_series(1, ($2 OPERATOR(pg_catalog.+) 9) OPERATOR(pg_catalog./) 10) g(g),"
								   "       LATERAL (SELECT x.*, pg_catalog.row_number() OVER () AS ord"
								   "                  FROM msgq.receive_message(CASE WHEN g.g OPERATOR(pg_catalog.>) 0 THEN $1 END,"
								   "                       LEAST(10, $2 OPERATOR(pg_catalog.-) ((g.g OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog.*) 10))) x) r",
								   3, (Oid[]) {TEXTOID, INT4OID, TEXTOID}),
						 (Datum[]) {CStringGetTextDatum(m->queue_name), Int32GetDatum(m->batch_size),
						 CStringGetTextDatum(msgq_queue_arn(m->queue_name))},
						 NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not receive a batch");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (n == 0)
	{
		seen->pending_since = 0;
		return 0;
	}
	event = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	handles = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	seen->pending_since = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		FmgrInfo	flinfo;

		LOCAL_FCINFO(call, 1);

		fmgr_info(m->function, &flinfo);
		InitFunctionCallInfoData(*call, &flinfo, 1, InvalidOid, NULL, NULL);
		call->args[0].value = event;
		call->args[0].isnull = false;
		SetUserIdAndSecContext(m->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		if (in_worker)
			enable_timeout_after(STATEMENT_TIMEOUT, msgq_function_timeout_ms);
		response = FunctionCallInvoke(call);
		response_null = call->isnull || get_func_rettype(m->function) != JSONBOID;
		if (in_worker)
			disable_timeout(STATEMENT_TIMEOUT, false);
		SetUserIdAndSecContext(save_userid, save_sec_context);

		/* delete what succeeded, as the owner, in the function's subtransaction */
		SetUserIdAndSecContext(m->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		if (SPI_execute_plan(msgq_plan(&plan_delete,
									   "SELECT pg_catalog.count(*)::pg_catalog.int4 FROM"
									   "  (SELECT msgq.delete_message($1, h.h)"
									   "     FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[])) h(id, h)"
									   "    WHERE NOT $4 OR $5::pg_catalog.jsonb IS NULL"
									   "       OR NOT pg_catalog.jsonb_path_exists($5, '$.batchItemFailures[*] ? (@.itemIdentifier == $id)',"
									   "                                          pg_catalog.jsonb_build_object('id', h.id))) d",
									   5, (Oid[]) {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, BOOLOID, JSONBOID}),
							 (Datum[]) {CStringGetTextDatum(m->queue_name), ids, handles,
							 BoolGetDatum(m->report_failures), response},
							 (char[]) {' ', ' ', ' ', ' ', response_null ? 'n' : ' '},
							 false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not delete the batch");
		failed_items = n - DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SetUserIdAndSecContext(save_userid, save_sec_context);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		if (in_worker)
			disable_timeout(STATEMENT_TIMEOUT, false);
		SetUserIdAndSecContext(save_userid, save_sec_context);
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		/* a cancel or a shutdown is not the function's failure */
		if (edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
			(edata->sqlerrcode == ERRCODE_QUERY_CANCELED && !in_worker))
			ReThrowError(edata);
	}
	PG_END_TRY();

	if (edata != NULL)
	{
		char	   *uuid_text = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&m->uuid)));

		ereport(LOG,
				(errmsg("msgq: event source mapping %s: function %s failed on a batch of %d messages of queue \"%s\": %s",
						uuid_text, format_procedure(m->function), n, m->queue_name, edata->message),
				 errdetail("The messages stay received until their visibility timeout ends, and are received again.")));
		esm_record(&m->uuid, "PROBLEM: Function call failed", edata->message, 1);
		FreeErrorData(edata);
	}
	else
		esm_record(&m->uuid, failed_items > 0 ? "OK: partial batch failure" : "OK", NULL, 0);
	return n;
}

/*
 * One pass over the database's enabled mappings, in the caller's
 * transaction and SPI connection (as the extension owner).  Returns when
 * to look again in milliseconds (0: at once, -1: at the next wake-up).
 */
long
msgq_esm_run(bool in_worker)
{
	static SPIPlanPtr plan_list = NULL;
	EsmRow	   *rows;
	uint64		n,
				i;
	long		wait_ms = -1;

	if (SPI_execute_plan(msgq_plan(&plan_list,
								   "SELECT m.uuid, q.queue_name, m.function::pg_catalog.oid,"
								   "       m.owner::pg_catalog.oid, m.batch_size, m.batching_window,"
								   "       m.report_batch_item_failures, q.queue_id"
								   "  FROM msgq.event_source_mapping m JOIN msgq.queue q"
								   "    ON q.queue_id OPERATOR(pg_catalog.=) m.source_id"
								   " WHERE m.enabled AND m.source_kind OPERATOR(pg_catalog.=) 'queue'"
								   " ORDER BY m.created_at, m.uuid",
								   0, NULL),
						 NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read event source mappings");
	n = SPI_processed;
	rows = palloc(sizeof(EsmRow) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;

		rows[i].uuid = *DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
		rows[i].queue_name = TextDatumGetCString(SPI_getbinval(t, d, 2, &isnull));
		rows[i].function = DatumGetObjectId(SPI_getbinval(t, d, 3, &isnull));
		rows[i].owner = DatumGetObjectId(SPI_getbinval(t, d, 4, &isnull));
		rows[i].batch_size = DatumGetInt32(SPI_getbinval(t, d, 5, &isnull));
		rows[i].window = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
		rows[i].report_failures = DatumGetBool(SPI_getbinval(t, d, 7, &isnull));
		rows[i].queue_id = DatumGetInt32(SPI_getbinval(t, d, 8, &isnull));
	}
	if (in_worker)
		esm_publish_sources(rows, (int) n);
	for (i = 0; i < n; i++)
	{
		int			b;

		/* an owner that was dropped leaves the mapping alone */
		if (GetUserNameFromId(rows[i].owner, true) == NULL)
			continue;
		for (b = 0; b < ESM_BATCHES_PER_PASS; b++)
		{
			long		w;
			int			got = esm_queue_batch(&rows[i], in_worker, &w);

			CHECK_FOR_INTERRUPTS();
			if (got == 0)
			{
				if (w >= 0 && (wait_ms < 0 || w < wait_ms))
					wait_ms = w;
				break;
			}
			if (b == ESM_BATCHES_PER_PASS - 1)
				wait_ms = 0;	/* more may be waiting: come back at once */
		}
	}
	return wait_ms;
}

/* ------------------------------------------------------------------------
 * Wake-ups: a send's commit to a mapped queue wakes the database's worker
 * ------------------------------------------------------------------------
 *
 * The worker writes its database's mapped queues into a direct-mapped
 * shared table at every pass; the commit of a send (wait.c, through
 * msgq_wakeup_now) looks its queue up and wakes the worker once until the
 * worker's next pass clears the slot's request.  A slot another queue took
 * only costs wake-ups of that queue until the next pass; the worker also
 * passes every msgq.worker_naptime, so nothing waits longer than that.
 */
#define ESM_SLOTS 1024

typedef struct EsmSourceSlot
{
	Oid			dboid;			/* InvalidOid: free */
	int32		queue_id;
	pg_atomic_uint32 requested;
} EsmSourceSlot;

static EsmSourceSlot *esm_slots = NULL;

void
msgq_esm_shmem_size(Size *size)
{
	*size = add_size(*size, mul_size(ESM_SLOTS, sizeof(EsmSourceSlot)));
}

void
msgq_esm_shmem_init(void)
{
	bool		found;
	int			i;

	esm_slots = ShmemInitStruct("msgq event source mappings",
								mul_size(ESM_SLOTS, sizeof(EsmSourceSlot)), &found);
	if (!found)
		for (i = 0; i < ESM_SLOTS; i++)
		{
			esm_slots[i].dboid = InvalidOid;
			esm_slots[i].queue_id = 0;
			pg_atomic_init_u32(&esm_slots[i].requested, 0);
		}
}

static EsmSourceSlot *
esm_slot(Oid dboid, int32 queue_id)
{
	return &esm_slots[hash_combine(murmurhash32((uint32) dboid),
								   murmurhash32((uint32) queue_id)) % ESM_SLOTS];
}

/* at a commit that sent to queue_id (wait.c) */
void
msgq_esm_source_committed(int32 queue_id)
{
	EsmSourceSlot *slot;

	if (esm_slots == NULL || queue_id <= 0)
		return;
	slot = esm_slot(MyDatabaseId, queue_id);
	if (slot->dboid != MyDatabaseId || slot->queue_id != queue_id)
		return;
	if (pg_atomic_exchange_u32(&slot->requested, 1) == 0)
		msgq_bgw_wake_worker(MyDatabaseId);
}

/* the worker's pass: these are the database's mapped queues now */
static void
esm_publish_sources(const EsmRow *rows, int n)
{
	static int32 *published = NULL;
	static int	npublished = 0;
	int			i,
				j;

	for (i = 0; i < npublished; i++)
	{
		EsmSourceSlot *slot = esm_slot(MyDatabaseId, published[i]);

		for (j = 0; j < n; j++)
			if (rows[j].queue_id == published[i])
				break;
		if (j == n && slot->dboid == MyDatabaseId && slot->queue_id == published[i])
			slot->dboid = InvalidOid;
	}
	if (published != NULL)
		pfree(published);
	published = MemoryContextAlloc(TopMemoryContext, sizeof(int32) * Max(n, 1));
	npublished = n;
	for (i = 0; i < n; i++)
	{
		EsmSourceSlot *slot = esm_slot(MyDatabaseId, rows[i].queue_id);

		published[i] = rows[i].queue_id;
		slot->queue_id = rows[i].queue_id;
		pg_write_barrier();
		slot->dboid = MyDatabaseId;
		pg_atomic_write_u32(&slot->requested, 0);
	}
}

/*
 * The worker's pass over the mappings, in a transaction of its own.
 * Returns when to pass again in milliseconds (-1: at the next wake-up).
 */
long
msgq_esm_worker_pass(void)
{
	Oid			save_userid;
	int			save_sec_context;
	long		wait_ms = -1;

	/* errors outside the functions' subtransactions end the worker (doc/workers.md) */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "msgq event source mappings");
	if (msgq_extension_lock_shared())
	{
		msgq_switch_to_owner(&save_userid, &save_sec_context);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		wait_ms = msgq_esm_run(true);
		SPI_finish();
		msgq_restore_user(save_userid, save_sec_context);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return wait_ms;
}
