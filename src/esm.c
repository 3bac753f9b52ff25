/*-------------------------------------------------------------------------
 *
 * esm.c
 *	  Event source mappings, as Lambda has them: the msgq worker reads
 *	  batches from a queue and calls a SQL function with each batch, in
 *	  Lambda's event shape, as the mapping's owner.
 *
 * A mapping is a row of msgq.event_source_mapping.  Each worker pass (and
 * msgq.run_maintenance()) reads the enabled mappings and, for each, up to
 * ESM_BATCHES_PER_PASS batches, in the pass's transaction:
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
 * A stream mapping reads each shard in order, one batch in flight per
 * shard, from its consumer group "esm:<uuid>"'s checkpoint, which the
 * batch's subtransaction moves with the function's writes.  A child shard
 * starts once its parents are checkpointed at their end (SHARD_END).  A
 * failing batch is retried after 1 s doubling to 60 s; with
 * BisectBatchOnFunctionError it is split in two first, down to one
 * record; after MaximumRetryAttempts, or once its first record is older
 * than MaximumRecordAgeInSeconds, its metadata goes to the on-failure
 * destination (a queue or a topic) and the mapping moves past it.
 * With a ParallelizationFactor P > 1 a shard is read as P lanes (its
 * records by the hash of their partition key), each with its own position
 * and retries; the group's checkpoint is the least of the lanes'.
 *
 * With msgq.esm_max_concurrency above 1 the passes run in that many runner
 * processes (worker.c) instead of the worker, each pass one transaction
 * with at most one batch; a stream shard is taken under an advisory lock
 * tried without waiting, and its checkpoint read again after the lock
 * (doc/design.md "Event source mappings", Concurrency).
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
#include "storage/lock.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/snapmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
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
#define ESM_LOCK_FIELD4			5	/* advisory tags: a stream mapping's shard */

int			msgq_esm_max_concurrency = 1;

/*
 * Runner mode (msgq.esm_max_concurrency > 1, doc/design.md "Event source
 * mappings"): this process is runner esm_runner of the database's runners;
 * a pass runs at most esm_budget batches (-1: no limit, the worker's own
 * passes), starting at a rotating offset among the mappings and shards, and
 * takes a stream shard only under its advisory lock, so that one batch per
 * shard is ever in flight.
 */
static int	esm_runner = -1;
static int	esm_budget = -1;
static uint32 esm_rotation = 0;

/* the lane of a stream shard being processed, of esm_nlanes (ParallelizationFactor) */
static int	esm_lane = 0;
static int	esm_nlanes = 1;

/* what the worker remembers of a mapping between passes */
typedef struct EsmSeen
{
	pg_uuid_t	uuid;
	TimestampTz pending_since;	/* the queue was first seen non-empty */
} EsmSeen;

static EsmSeen *esm_seen = NULL;
static int	esm_nseen = 0;

static char *esm_group(const pg_uuid_t *uuid);

typedef struct EsmAttrs
{
	int32		batch_size;
	int32		window;			/* seconds */
	bool		enabled;
	bool		report_failures;
	bool		has[4];			/* which were given */
	/* stream sources */
	bool		stream;
	char	   *starting_position;	/* TRIM_HORIZON, LATEST, AT_TIMESTAMP */
	TimestampTz starting_ts;	/* AT_TIMESTAMP */
	bool		has_starting_ts;
	int32		max_retry;		/* -1: until the records expire */
	int32		max_age;		/* -1: none */
	bool		bisect;
	int32		parallelization;
	char	   *on_failure;		/* a queue or topic, or NULL */
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
		else if (!out->stream &&
				 (strcmp(key, "StartingPosition") == 0 ||
				  strcmp(key, "StartingPositionTimestamp") == 0 ||
				  strcmp(key, "MaximumRetryAttempts") == 0 ||
				  strcmp(key, "MaximumRecordAgeInSeconds") == 0 ||
				  strcmp(key, "BisectBatchOnFunctionError") == 0 ||
				  strcmp(key, "ParallelizationFactor") == 0 ||
				  strcmp(key, "DestinationConfig") == 0 ||
				  strcmp(key, "TumblingWindowInSeconds") == 0))
			esm_invalid(psprintf("%s is for stream sources, not for a queue", key));
		else if (strcmp(key, "StartingPosition") == 0)
		{
			if (v.type != jbvString)
				esm_invalid("StartingPosition must be TRIM_HORIZON, LATEST or AT_TIMESTAMP");
			out->starting_position = pnstrdup(v.val.string.val, v.val.string.len);
			if (strcmp(out->starting_position, "TRIM_HORIZON") != 0 &&
				strcmp(out->starting_position, "LATEST") != 0 &&
				strcmp(out->starting_position, "AT_TIMESTAMP") != 0)
				esm_invalid("StartingPosition must be TRIM_HORIZON, LATEST or AT_TIMESTAMP");
		}
		else if (strcmp(key, "StartingPositionTimestamp") == 0)
		{
			if (v.type != jbvNumeric)
				esm_invalid("StartingPositionTimestamp must be a number of seconds since 1970");
			out->starting_ts = SetEpochTimestamp() +
				(TimestampTz) (DatumGetFloat8(DirectFunctionCall1(numeric_float8,
																  NumericGetDatum(v.val.numeric))) * USECS_PER_SEC);
			out->has_starting_ts = true;
		}
		else if (strcmp(key, "MaximumRetryAttempts") == 0)
			out->max_retry = esm_int(&v, key);
		else if (strcmp(key, "MaximumRecordAgeInSeconds") == 0)
			out->max_age = esm_int(&v, key);
		else if (strcmp(key, "BisectBatchOnFunctionError") == 0)
		{
			if (v.type != jbvBool)
				esm_invalid("BisectBatchOnFunctionError must be true or false");
			out->bisect = v.val.boolean;
		}
		else if (strcmp(key, "ParallelizationFactor") == 0)
			out->parallelization = esm_int(&v, key);
		else if (strcmp(key, "DestinationConfig") == 0)
		{
			Jsonb	   *dc;
			JsonbValue *of,
					   *dest;

			if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
				esm_invalid("DestinationConfig must be an object {\"OnFailure\": {\"Destination\": ...}}");
			dc = JsonbValueToJsonb(&v);
			of = getKeyJsonValueFromContainer(&dc->root, "OnFailure", 9, NULL);
			if (of == NULL)
			{
				out->on_failure = NULL;
				continue;
			}
			if (of->type != jbvBinary || !JsonContainerIsObject(of->val.binary.data))
				esm_invalid("DestinationConfig.OnFailure must be an object");
			dest = getKeyJsonValueFromContainer(of->val.binary.data, "Destination", 11, NULL);
			if (dest == NULL || dest->type == jbvNull)
				out->on_failure = NULL;
			else if (dest->type != jbvString)
				esm_invalid("DestinationConfig.OnFailure.Destination must be a string");
			else
				out->on_failure = pnstrdup(dest->val.string.val, dest->val.string.len);
		}
		else if (strcmp(key, "TumblingWindowInSeconds") == 0)
			esm_invalid("TumblingWindowInSeconds is not supported");
		else
			esm_invalid(psprintf("unknown attribute \"%s\"", key));
	}
}

/* Is there a topic of that name (or ARN)?  Inside an SPI connection. */
static bool
esm_topic_exists(const char *name)
{
	const char *p = strrchr(name, ':');

	if (SPI_execute_with_args("SELECT 1 FROM msgq.topic WHERE topic_name OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID},
							  (Datum[]) {CStringGetTextDatum(strncmp(name, "arn:", 4) == 0 && p ? p + 1 : name)},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up topic");
	return SPI_processed > 0;
}

/* Lambda's limits for a Kinesis source */
static void
esm_check_stream_attrs(const EsmAttrs *a)
{
	if (a->batch_size < 1 || a->batch_size > ESM_MAX_BATCH)
		esm_invalid(psprintf("BatchSize must be between 1 and %d, not %d", ESM_MAX_BATCH, a->batch_size));
	if (a->window < 0 || a->window > ESM_MAX_WINDOW)
		esm_invalid(psprintf("MaximumBatchingWindowInSeconds must be between 0 and %d, not %d",
							 ESM_MAX_WINDOW, a->window));
	if (a->max_retry < -1 || a->max_retry > 10000)
		esm_invalid(psprintf("MaximumRetryAttempts must be -1 or between 0 and 10000, not %d", a->max_retry));
	if (a->max_age != -1 && (a->max_age < 60 || a->max_age > 604800))
		esm_invalid(psprintf("MaximumRecordAgeInSeconds must be -1 or between 60 and 604800, not %d", a->max_age));
	if (a->parallelization < 1 || a->parallelization > 10)
		esm_invalid(psprintf("ParallelizationFactor must be between 1 and 10, not %d", a->parallelization));
	if (a->on_failure != NULL)
	{
		MsgqQueue	q;

		if (!msgq_queue_lookup(a->on_failure, &q) && !esm_topic_exists(a->on_failure))
			esm_invalid(psprintf("the on-failure destination \"%s\" is neither a queue nor a topic",
								 a->on_failure));
	}
}

/* Lambda's limits for an SQS source (standard queues; FIFO: batch <= 10, no window) */
static void
esm_check_attrs(const EsmAttrs *a, bool fifo)
{
	int32		max = fifo ? 10 : (a->window > 0 ? ESM_MAX_BATCH : 10);

	if (a->stream)
	{
		esm_check_stream_attrs(a);
		return;
	}

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
	"  OPERATOR(pg_catalog.||) CASE WHEN m.source_kind OPERATOR(pg_catalog.=) 'stream' THEN" \
	"    pg_catalog.jsonb_build_object('StartingPosition', m.starting_position," \
	"      'MaximumRetryAttempts', m.max_retry_attempts," \
	"      'MaximumRecordAgeInSeconds', m.max_record_age," \
	"      'BisectBatchOnFunctionError', m.bisect," \
	"      'ParallelizationFactor', m.parallelization," \
	"      'DestinationConfig', pg_catalog.jsonb_build_object('OnFailure'," \
	"         pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('Destination', m.on_failure))))" \
	"    ELSE '{}'::pg_catalog.jsonb END" \
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

/*
 * The mapping's owner, after checking that the caller has its privileges
 * (or is a superuser); lock: the row FOR UPDATE, for a change
 */
static Oid
esm_check_owner(const pg_uuid_t *uuid, Oid caller, bool lock)
{
	static SPIPlanPtr plans[2];
	bool		isnull;
	Oid			owner;

	if (SPI_execute_plan(msgq_plan(&plans[lock],
								   lock ?
								   "SELECT owner::pg_catalog.oid FROM msgq.event_source_mapping"
								   " WHERE uuid OPERATOR(pg_catalog.=) $1 FOR UPDATE" :
								   "SELECT owner::pg_catalog.oid FROM msgq.event_source_mapping"
								   " WHERE uuid OPERATOR(pg_catalog.=) $1",
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

/* the owner check of a change */
static Oid
esm_lock_own(const pg_uuid_t *uuid, Oid caller)
{
	return esm_check_owner(uuid, caller, true);
}

/* create_event_source_mapping for a stream source; returns the UUID */
static Datum
esm_create_stream(const char *source, Oid fn, Jsonb *attrs, MsgqCall *call)
{
	EsmAttrs	a = {100, 0, true, false};
	int32		stream_id;
	char	   *stream_name;
	pg_uuid_t  *uuid;
	int64		start_seq = 0;
	bool		isnull;

	a.stream = true;
	a.max_retry = -1;
	a.max_age = -1;
	a.parallelization = 1;
	if (!msgq_stream_resolve(source, call->caller, &stream_id, &stream_name))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
				 errmsg("stream \"%s\" not found", source),
				 errdetail_internal("AWS error code: ResourceNotFoundException")));
	esm_check_function(fn, call->caller);
	esm_parse_attrs(attrs, &a);
	if (a.starting_position == NULL)
		esm_invalid("a stream source needs a StartingPosition");
	if (strcmp(a.starting_position, "AT_TIMESTAMP") == 0 && !a.has_starting_ts)
		esm_invalid("StartingPosition AT_TIMESTAMP needs a StartingPositionTimestamp");
	if (strcmp(a.starting_position, "AT_TIMESTAMP") != 0 && a.has_starting_ts)
		esm_invalid("StartingPositionTimestamp is only for StartingPosition AT_TIMESTAMP");
	esm_check_stream_attrs(&a);

	/* LATEST: the records numbered after this one */
	if (strcmp(a.starting_position, "LATEST") == 0)
	{
		if (SPI_execute("SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END"
						"  FROM msgq.stream_seq", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the stream sequence");
		start_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}

	uuid = DatumGetUUIDP(DirectFunctionCall1(gen_random_uuid, (Datum) 0));
	if (SPI_execute_with_args("INSERT INTO msgq.event_source_mapping"
							  "  (uuid, source_kind, source_id, source_arn, function, owner,"
							  "   enabled, batch_size, batching_window, report_batch_item_failures,"
							  "   created_at, last_modified, starting_position, start_seq, start_time,"
							  "   max_retry_attempts, max_record_age, bisect, parallelization, on_failure)"
							  " VALUES ($1, 'stream', $2, $3, $4, $5, $6, $7, $8, $9, $10, $10,"
							  "         $11, $12, $13, $14, $15, $16, $17, $18)",
							  18, (Oid[]) {UUIDOID, INT4OID, TEXTOID, OIDOID, OIDOID, BOOLOID,
							  INT4OID, INT4OID, BOOLOID, TIMESTAMPTZOID, TEXTOID, INT8OID,
							  TIMESTAMPTZOID, INT4OID, INT4OID, BOOLOID, INT4OID, TEXTOID},
							  (Datum[]) {UUIDPGetDatum(uuid), Int32GetDatum(stream_id),
							  CStringGetTextDatum(msgq_stream_arn(stream_name)),
							  ObjectIdGetDatum(fn), ObjectIdGetDatum(call->caller),
							  BoolGetDatum(a.enabled), Int32GetDatum(a.batch_size),
							  Int32GetDatum(a.window), BoolGetDatum(a.report_failures),
							  TimestampTzGetDatum(msgq_now()),
							  CStringGetTextDatum(a.starting_position), Int64GetDatum(start_seq),
							  TimestampTzGetDatum(a.starting_ts), Int32GetDatum(a.max_retry),
							  Int32GetDatum(a.max_age), BoolGetDatum(a.bisect),
							  Int32GetDatum(a.parallelization),
							  a.on_failure ? CStringGetTextDatum(a.on_failure) : (Datum) 0},
							  (char[]) {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
							  a.has_starting_ts ? ' ' : 'n', ' ', ' ', ' ', ' ',
							  a.on_failure ? ' ' : 'n'},
							  false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not create the event source mapping");
	return UUIDPGetDatum(uuid);
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
	{
		result = esm_create_stream(source, fn, attrs, &call);
		msgq_delivery_wake_worker_at_commit();
		msgq_call_leave(&call);
		PG_RETURN_DATUM(result);
	}
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
							  "       m.report_batch_item_failures, COALESCE(q.fifo, false),"
							  "       m.source_kind OPERATOR(pg_catalog.=) 'stream', m.max_retry_attempts,"
							  "       m.max_record_age, m.bisect, m.parallelization, m.on_failure"
							  "  FROM msgq.event_source_mapping m LEFT JOIN msgq.queue q"
							  "    ON m.source_kind OPERATOR(pg_catalog.=) 'queue'"
							  "   AND q.queue_id OPERATOR(pg_catalog.=) m.source_id"
							  " WHERE m.uuid OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {UUIDOID}, (Datum[]) {UUIDPGetDatum(uuid)},
							  NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the event source mapping");
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		Datum		v;

		a.batch_size = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
		a.window = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull));
		a.enabled = DatumGetBool(SPI_getbinval(t, d, 3, &isnull));
		a.report_failures = DatumGetBool(SPI_getbinval(t, d, 4, &isnull));
		fifo = DatumGetBool(SPI_getbinval(t, d, 5, &isnull));
		a.stream = DatumGetBool(SPI_getbinval(t, d, 6, &isnull));
		a.max_retry = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
		a.max_age = DatumGetInt32(SPI_getbinval(t, d, 8, &isnull));
		a.bisect = DatumGetBool(SPI_getbinval(t, d, 9, &isnull));
		a.parallelization = DatumGetInt32(SPI_getbinval(t, d, 10, &isnull));
		v = SPI_getbinval(t, d, 11, &isnull);
		a.on_failure = isnull ? NULL : TextDatumGetCString(v);
	}
	esm_parse_attrs(attrs, &a);
	if (a.starting_position != NULL || a.has_starting_ts)
		esm_invalid("the StartingPosition of a mapping cannot be changed");
	esm_check_attrs(&a, fifo);
	if (SPI_execute_with_args("UPDATE msgq.event_source_mapping SET batch_size = $2,"
							  "       batching_window = $3, enabled = $4,"
							  "       report_batch_item_failures = $5, last_modified = $6,"
							  "       max_retry_attempts = $7, max_record_age = $8, bisect = $9,"
							  "       parallelization = $10, on_failure = $11"
							  " WHERE uuid OPERATOR(pg_catalog.=) $1",
							  11, (Oid[]) {UUIDOID, INT4OID, INT4OID, BOOLOID, BOOLOID, TIMESTAMPTZOID,
							  INT4OID, INT4OID, BOOLOID, INT4OID, TEXTOID},
							  (Datum[]) {UUIDPGetDatum(uuid), Int32GetDatum(a.batch_size),
							  Int32GetDatum(a.window), BoolGetDatum(a.enabled),
							  BoolGetDatum(a.report_failures), TimestampTzGetDatum(msgq_now()),
							  Int32GetDatum(a.max_retry), Int32GetDatum(a.max_age),
							  BoolGetDatum(a.bisect), Int32GetDatum(a.parallelization),
							  a.on_failure ? CStringGetTextDatum(a.on_failure) : (Datum) 0},
							  (char[]) {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
							  a.on_failure ? ' ' : 'n'},
							  false, 0) != SPI_OK_UPDATE)
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
	/* a stream mapping's position goes with it (the shard states cascade) */
	if (SPI_execute_with_args("DELETE FROM msgq.stream_checkpoint WHERE consumer_group OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(esm_group(uuid))},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the event source mapping's checkpoints");
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
	(void) esm_check_owner(uuid, call.caller, false);
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
	bool		stream;
	int32		source_id;		/* stream_id for a stream */
	char	   *source_arn;
	int64		start_seq;
	TimestampTz start_time;
	int32		max_retry;
	int32		max_age;
	bool		bisect;
	char	   *on_failure;
	int32		queue_id;
	char	   *queue_name;
	Oid			function;
	Oid			owner;
	int32		batch_size;
	int32		window;
	bool		report_failures;
	int32		parallelization;
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

/*
 * The invocations of a pass, per mapping, written to the mappings' rows
 * once at the end of the pass (esm_flush_stats), in uuid order: a row
 * update per batch would leave a dead tuple per batch, and runners that
 * updated rows as they went could lock two mappings' rows in opposite
 * orders and deadlock.
 */
typedef struct EsmStats
{
	pg_uuid_t	uuid;
	int32		invocations;
	int32		failed;
	char	   *result;
	char	   *error;			/* the last one, or NULL */
	TimestampTz at;
} EsmStats;

static EsmStats *esm_stats = NULL;
static int	esm_nstats = 0;
static int	esm_maxstats = 0;

static void
esm_record(const pg_uuid_t *uuid, const char *result, const char *error, int failed)
{
	EsmStats   *st = NULL;
	int			i;

	for (i = 0; i < esm_nstats; i++)
		if (memcmp(&esm_stats[i].uuid, uuid, sizeof(pg_uuid_t)) == 0)
			st = &esm_stats[i];
	if (st == NULL)
	{
		if (esm_nstats == esm_maxstats)
		{
			esm_maxstats = Max(8, esm_maxstats * 2);
			esm_stats = esm_stats == NULL ? palloc(sizeof(EsmStats) * esm_maxstats) :
				repalloc(esm_stats, sizeof(EsmStats) * esm_maxstats);
		}
		st = &esm_stats[esm_nstats++];
		memset(st, 0, sizeof(*st));
		st->uuid = *uuid;
	}
	st->invocations++;
	st->failed += failed;
	st->result = pstrdup(result);
	if (error != NULL)
		st->error = pstrdup(error);
	st->at = msgq_now();
}

static int
esm_stats_cmp(const void *a, const void *b)
{
	return memcmp(&((const EsmStats *) a)->uuid, &((const EsmStats *) b)->uuid, sizeof(pg_uuid_t));
}

static void
esm_flush_stats(void)
{
	static SPIPlanPtr plan = NULL;
	int			i;

	if (esm_nstats > 1)
		qsort(esm_stats, esm_nstats, sizeof(EsmStats), esm_stats_cmp);
	for (i = 0; i < esm_nstats; i++)
	{
		EsmStats   *st = &esm_stats[i];
		Datum		values[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

		values[0] = UUIDPGetDatum(&st->uuid);
		values[1] = CStringGetTextDatum(st->result);
		if (st->error != NULL)
			values[2] = CStringGetTextDatum(st->error);
		else
			nulls[2] = 'n';
		values[3] = Int32GetDatum(st->failed);
		values[4] = TimestampTzGetDatum(st->at);
		values[5] = Int32GetDatum(st->invocations);
		if (SPI_execute_plan(msgq_plan(&plan, "UPDATE msgq.event_source_mapping"
									   "   SET last_processing_result = $2,"
									   "       last_error = COALESCE($3, last_error),"
									   "       invocations = invocations OPERATOR(pg_catalog.+) $6,"
									   "       failed_invocations = failed_invocations OPERATOR(pg_catalog.+) $4,"
									   "       last_invoked_at = $5"
									   " WHERE uuid OPERATOR(pg_catalog.=) $1",
									   6, (Oid[]) {UUIDOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, INT4OID}),
							 values, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record the invocations");
	}
	esm_stats = NULL;
	esm_nstats = esm_maxstats = 0;
}

/*
 * What runs in the function's subtransaction after it returned: for a
 * queue, the deletes; for a stream, the checkpoint.  It runs as the
 * extension owner; response is the function's jsonb result, or NULL.
 */
typedef void (*EsmAfter) (EsmRow *m, Jsonb *response, void *arg);

typedef struct EsmCall
{
	EsmRow	   *m;
	Datum		event;
	EsmAfter	after;
	void	   *arg;
} EsmCall;

static void
esm_call(void *arg)
{
	EsmCall    *c = (EsmCall *) arg;
	FmgrInfo	flinfo;
	Datum		response;
	bool		response_null;
	Oid			save_userid;
	int			save_sec_context;
	int			nest;

	LOCAL_FCINFO(call, 1);

	msgq_check_execute(c->m->function, c->m->owner);
	fmgr_info(c->m->function, &flinfo);
	InitFunctionCallInfoData(*call, &flinfo, 1, InvalidOid, NULL, NULL);
	call->args[0].value = c->event;
	call->args[0].isnull = false;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(c->m->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest = msgq_caller_search_path();
	response = FunctionCallInvoke(call);
	AtEOXact_GUC(true, nest);
	response_null = call->isnull || get_func_rettype(c->m->function) != JSONBOID;
	SetUserIdAndSecContext(save_userid, save_sec_context);
	c->after(c->m, response_null ? NULL : DatumGetJsonbP(response), c->arg);
}

/*
 * Call the mapping's function with event in a subtransaction, as the owner
 * under SECURITY_RESTRICTED_OPERATION (and msgq.function_timeout in the
 * worker), then after() in the same subtransaction.  Returns NULL, or the
 * error that rolled the subtransaction back.
 */
static ErrorData *
esm_invoke(EsmRow *m, Datum event, bool in_worker, EsmAfter after, void *arg)
{
	EsmCall		c = {m, event, after, arg};

	return msgq_run_subxact(esm_call, &c, in_worker);
}

typedef struct EsmQueueAfter
{
	Datum		ids;
	Datum		handles;
	int			n;
	int			failed;
} EsmQueueAfter;

/* a queue batch: delete what succeeded, as the owner */
static void
esm_queue_after(EsmRow *m, Jsonb *response, void *arg)
{
	static SPIPlanPtr plan_delete = NULL;
	EsmQueueAfter *qa = (EsmQueueAfter *) arg;
	Oid			save_userid;
	int			save_sec_context;
	bool		isnull;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(m->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_execute_plan(msgq_plan(&plan_delete,
								   "SELECT pg_catalog.count(*)::pg_catalog.int4 FROM"
								   "  (SELECT msgq.delete_message($1, h.h)"
								   "     FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[])) h(id, h)"
								   "    WHERE NOT $4 OR $5::pg_catalog.jsonb IS NULL"
								   "       OR NOT pg_catalog.jsonb_path_exists($5, '$.batchItemFailures[*] ? (@.itemIdentifier == $id)',"
								   "                                          pg_catalog.jsonb_build_object('id', h.id))) d",
								   5, (Oid[]) {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, BOOLOID, JSONBOID}),
						 (Datum[]) {CStringGetTextDatum(m->queue_name), qa->ids, qa->handles,
						 BoolGetDatum(m->report_failures), JsonbPGetDatum(response)},
						 (char[]) {' ', ' ', ' ', ' ', response == NULL ? 'n' : ' '},
						 false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not delete the batch");
	qa->failed = qa->n - DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SetUserIdAndSecContext(save_userid, save_sec_context);
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
	EsmSeen    *seen = esm_seen_get(&m->uuid);
	TimestampTz now = msgq_now();
	Oid			save_userid;
	int			save_sec_context;
	int			n;
	bool		isnull;
	Datum		event;
	Datum		ids;
	Datum		handles;
	ErrorData  *edata;
	int			failed_items;
	EsmQueueAfter queue_after;

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

	queue_after.ids = ids;
	queue_after.handles = handles;
	queue_after.n = n;
	edata = esm_invoke(m, event, in_worker, esm_queue_after, &queue_after);
	failed_items = queue_after.failed;

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

/* ------------------------------------------------------------------------
 * Stream sources
 * ------------------------------------------------------------------------
 */

typedef struct EsmShard
{
	int32		shard;
	int32		parent;			/* -1: none */
	int32		adjacent;
	int64		starting_seq;
	bool		closed;
	int64		ending_seq;
	bool		has_checkpoint;
	int64		checkpoint;
	int32		attempts;
	int32		batch_limit;	/* 0: BatchSize */
	TimestampTz next_attempt_at;
	bool		finished;
} EsmShard;

static char *
esm_group(const pg_uuid_t *uuid)
{
	return psprintf("esm:%s", DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(uuid))));
}

/*
 * Checkpoint the group of the mapping at seq (in the caller's
 * (sub)transaction); with lanes, the lane's position, and the group's
 * checkpoint becomes the least position of the shard's lanes once each has
 * one.
 */
static void
esm_checkpoint(EsmRow *m, int32 shard, int64 seq)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_lane = NULL;
	static SPIPlanPtr plan_min = NULL;

	if (esm_nlanes > 1)
	{
		if (SPI_execute_plan(msgq_plan(&plan_lane,
									   "INSERT INTO msgq.event_source_shard AS s"
									   "   (uuid, shard_index, lane, lanes, seq, attempts, batch_limit)"
									   " VALUES ($1, $2, $3, $4, $5, 0, 0)"
									   " ON CONFLICT (uuid, shard_index, lane) DO UPDATE SET"
									   "   seq = CASE WHEN s.lanes OPERATOR(pg_catalog.=) EXCLUDED.lanes"
									   "               AND s.seq OPERATOR(pg_catalog.>) EXCLUDED.seq"
									   "              THEN s.seq ELSE EXCLUDED.seq END,"
									   "   attempts = CASE WHEN s.lanes OPERATOR(pg_catalog.=) EXCLUDED.lanes THEN s.attempts ELSE 0 END,"
									   "   batch_limit = CASE WHEN s.lanes OPERATOR(pg_catalog.=) EXCLUDED.lanes THEN s.batch_limit ELSE 0 END,"
									   "   next_attempt_at = CASE WHEN s.lanes OPERATOR(pg_catalog.=) EXCLUDED.lanes THEN s.next_attempt_at END,"
									   "   lanes = EXCLUDED.lanes",
									   5, (Oid[]) {UUIDOID, INT4OID, INT4OID, INT4OID, INT8OID}),
							 (Datum[]) {UUIDPGetDatum(&m->uuid), Int32GetDatum(shard), Int32GetDatum(esm_lane),
							 Int32GetDatum(esm_nlanes), Int64GetDatum(seq)},
							 NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the mapping's lane position");
		if (SPI_execute_plan(msgq_plan(&plan_min,
									   "INSERT INTO msgq.stream_checkpoint AS c"
									   "   (stream_id, consumer_group, shard_index, seq, updated_at)"
									   " SELECT $1, $2, $3, pg_catalog.min(s.seq), $5"
									   "   FROM msgq.event_source_shard s"
									   "  WHERE s.uuid OPERATOR(pg_catalog.=) $4 AND s.shard_index OPERATOR(pg_catalog.=) $3"
									   "    AND s.lanes OPERATOR(pg_catalog.=) $6 AND s.lane OPERATOR(pg_catalog.<) $6"
									   " HAVING pg_catalog.count(s.seq) OPERATOR(pg_catalog.=) $6"
									   " ON CONFLICT (stream_id, consumer_group, shard_index)"
									   " DO UPDATE SET seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at"
									   "  WHERE c.seq OPERATOR(pg_catalog.<=) EXCLUDED.seq",
									   6, (Oid[]) {INT4OID, TEXTOID, INT4OID, UUIDOID, TIMESTAMPTZOID, INT4OID}),
							 (Datum[]) {Int32GetDatum(m->source_id), CStringGetTextDatum(esm_group(&m->uuid)),
							 Int32GetDatum(shard), UUIDPGetDatum(&m->uuid), TimestampTzGetDatum(msgq_now()),
							 Int32GetDatum(esm_nlanes)},
							 NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the mapping's checkpoint");
		return;
	}
	if (SPI_execute_plan(msgq_plan(&plan,
								   "INSERT INTO msgq.stream_checkpoint AS c"
								   "   (stream_id, consumer_group, shard_index, seq, updated_at)"
								   " VALUES ($1, $2, $3, $4, $5)"
								   " ON CONFLICT (stream_id, consumer_group, shard_index)"
								   " DO UPDATE SET seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at"
								   "  WHERE c.seq OPERATOR(pg_catalog.<=) EXCLUDED.seq",
								   5, (Oid[]) {INT4OID, TEXTOID, INT4OID, INT8OID, TIMESTAMPTZOID}),
						 (Datum[]) {Int32GetDatum(m->source_id), CStringGetTextDatum(esm_group(&m->uuid)),
						 Int32GetDatum(shard), Int64GetDatum(seq), TimestampTzGetDatum(msgq_now())},
						 NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the mapping's checkpoint");
}

/* the retry state of the shard (of its lane, esm_lane of esm_nlanes) */
static void
esm_shard_state(EsmRow *m, int32 shard, int32 attempts, int32 batch_limit, TimestampTz next_at)
{
	static SPIPlanPtr plan = NULL;

	if (SPI_execute_plan(msgq_plan(&plan,
								   "INSERT INTO msgq.event_source_shard AS s"
								   "   (uuid, shard_index, lane, lanes, attempts, batch_limit, next_attempt_at)"
								   " VALUES ($1, $2, $6, $7, $3, $4, $5)"
								   " ON CONFLICT (uuid, shard_index, lane) DO UPDATE SET attempts = $3,"
								   "   batch_limit = $4, next_attempt_at = $5, lanes = $7,"
								   "   seq = CASE WHEN s.lanes OPERATOR(pg_catalog.=) $7 THEN s.seq END",
								   7, (Oid[]) {UUIDOID, INT4OID, INT4OID, INT4OID, TIMESTAMPTZOID, INT4OID, INT4OID}),
						 (Datum[]) {UUIDPGetDatum(&m->uuid), Int32GetDatum(shard), Int32GetDatum(attempts),
						 Int32GetDatum(batch_limit), TimestampTzGetDatum(next_at), Int32GetDatum(esm_lane),
						 Int32GetDatum(esm_nlanes)},
						 (char[]) {' ', ' ', ' ', ' ', next_at == 0 ? 'n' : ' ', ' ', ' '}, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the mapping's shard state");
}

/*
 * A batch that is given up (its retries or its age ran out): its metadata
 * goes to the on-failure destination, a queue or a topic, as the owner,
 * in Lambda's shape; then the mapping moves past it.
 */
static void
esm_on_failure(EsmRow *m, int32 shard, const MsgqStreamBatch *b, int32 attempts,
			   const char *condition, const char *error)
{
	static SPIPlanPtr plan_queue = NULL;
	static SPIPlanPtr plan_topic = NULL;
	MsgqQueue	q;
	Oid			save_userid;
	int			save_sec_context;
	char	   *doc;
	StringInfoData buf;
	bool		is_queue;

	if (m->on_failure == NULL)
		return;
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"requestContext\": {\"requestId\": \"%s\", \"functionArn\": ",
					 DatumGetCString(DirectFunctionCall1(uuid_out, DirectFunctionCall1(gen_random_uuid, (Datum) 0))));
	escape_json(&buf, format_procedure(m->function));
	appendStringInfo(&buf, ", \"condition\": \"%s\", \"approximateInvokeCount\": %d},"
					 " \"responseContext\": {\"functionError\": ", condition, attempts);
	escape_json(&buf, error ? error : "");
	appendStringInfo(&buf, "}, \"version\": \"1.0\", \"timestamp\": ");
	escape_json(&buf, DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(msgq_now()))));
	appendStringInfo(&buf, ", \"KinesisBatchInfo\": {\"shardId\": \"%s\","
					 " \"startSequenceNumber\": \"" INT64_FORMAT "\","
					 " \"endSequenceNumber\": \"" INT64_FORMAT "\","
					 " \"approximateArrivalOfFirstRecord\": ",
					 msgq_shard_id_text(shard), b->first_seq, b->last_seq);
	escape_json(&buf, DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(b->first_arrival))));
	appendStringInfoString(&buf, ", \"approximateArrivalOfLastRecord\": ");
	escape_json(&buf, DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(b->last_arrival))));
	appendStringInfo(&buf, ", \"batchSize\": %d, \"streamArn\": ", b->n);
	escape_json(&buf, m->source_arn);
	appendStringInfoString(&buf, "}}");
	doc = buf.data;

	/* looked up as the extension owner; sent as the mapping's owner */
	is_queue = msgq_queue_lookup(m->on_failure, &q);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(m->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (is_queue)
	{
		if (SPI_execute_plan(msgq_plan(&plan_queue, "SELECT count(*) FROM msgq.send_message($1, $2)",
									   2, (Oid[]) {TEXTOID, TEXTOID}),
							 (Datum[]) {CStringGetTextDatum(m->on_failure), CStringGetTextDatum(doc)},
							 NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not send to the on-failure destination");
	}
	else if (SPI_execute_plan(msgq_plan(&plan_topic, "SELECT count(*) FROM msgq.publish($1, $2)",
										2, (Oid[]) {TEXTOID, TEXTOID}),
							  (Datum[]) {CStringGetTextDatum(m->on_failure), CStringGetTextDatum(doc)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not publish to the on-failure destination");
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

typedef struct EsmStreamAfter
{
	int32		shard;
	const MsgqStreamBatch *b;
	int64		checkpointed;	/* what was checkpointed */
	bool		partial;		/* batchItemFailures named a record */
} EsmStreamAfter;

/*
 * A stream batch succeeded: checkpoint its last record, or with
 * ReportBatchItemFailures the record before the first one named, so that
 * the next batch starts at it.
 */
static void
esm_stream_after(EsmRow *m, Jsonb *response, void *arg)
{
	EsmStreamAfter *sa = (EsmStreamAfter *) arg;
	int64		upto = sa->b->last_seq;

	if (m->report_failures && response != NULL)
	{
		static SPIPlanPtr plan = NULL;
		bool		isnull;
		Datum		d;

		if (SPI_execute_plan(msgq_plan(&plan,
									   "SELECT pg_catalog.min((f->>'itemIdentifier')::pg_catalog.numeric)::pg_catalog.int8"
									   "  FROM pg_catalog.jsonb_array_elements(COALESCE($1->'batchItemFailures', '[]')) f",
									   1, (Oid[]) {JSONBOID}),
							 (Datum[]) {JsonbPGetDatum(response)}, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read batchItemFailures");
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull && DatumGetInt64(d) >= sa->b->first_seq && DatumGetInt64(d) <= sa->b->last_seq)
		{
			sa->partial = true;
			upto = DatumGetInt64(d) - 1;
		}
	}
	if (upto >= sa->b->first_seq || !sa->partial)
		esm_checkpoint(m, sa->shard, upto);
	sa->checkpointed = upto;
}

/* the retry delay of a stream batch: 1 s doubling to 60 s, on msgq's clock */
static TimestampTz
esm_retry_at(int32 attempts)
{
	int64		ms = 1000;
	int			i;

	for (i = 1; i < attempts && ms < 60000; i++)
		ms *= 2;
	return msgq_now() + Min(ms, 60000) * 1000;
}

/* Is `at` still to come?  Then the pass should look again by then. */
static bool
esm_not_yet(TimestampTz at, TimestampTz now, long *wait_ms)
{
	long		w;

	if (at <= now)
		return false;
	w = (long) ((at - now + 999) / 1000);
	if (*wait_ms < 0 || w < *wait_ms)
		*wait_ms = w;
	return true;
}

/* a stream mapping's shards, with its checkpoints and retry state ($1-$3) */
#define ESM_SHARDS_SQL \
	"SELECT h.shard_index, h.parent_index, h.adjacent_parent_index," \
	"       h.starting_seq, h.ending_seq, c.seq, s.attempts, s.batch_limit," \
	"       s.next_attempt_at" \
	"  FROM msgq.shard h" \
	"  LEFT JOIN msgq.stream_checkpoint c ON c.stream_id OPERATOR(pg_catalog.=) h.stream_id" \
	"   AND c.consumer_group OPERATOR(pg_catalog.=) $2" \
	"   AND c.shard_index OPERATOR(pg_catalog.=) h.shard_index" \
	"  LEFT JOIN msgq.event_source_shard s ON s.uuid OPERATOR(pg_catalog.=) $3" \
	"   AND s.shard_index OPERATOR(pg_catalog.=) h.shard_index" \
	"   AND s.lane OPERATOR(pg_catalog.=) 0 AND s.lanes OPERATOR(pg_catalog.=) 1" \
	" WHERE h.stream_id OPERATOR(pg_catalog.=) $1"

static void
esm_shard_from_tuple(EsmShard *sh, HeapTuple t, TupleDesc d)
{
	bool		isnull;
	Datum		v;

	sh->shard = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
	v = SPI_getbinval(t, d, 2, &isnull);
	sh->parent = isnull ? -1 : DatumGetInt32(v);
	v = SPI_getbinval(t, d, 3, &isnull);
	sh->adjacent = isnull ? -1 : DatumGetInt32(v);
	sh->starting_seq = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
	v = SPI_getbinval(t, d, 5, &isnull);
	sh->closed = !isnull;
	sh->ending_seq = isnull ? 0 : DatumGetInt64(v);
	v = SPI_getbinval(t, d, 6, &isnull);
	sh->has_checkpoint = !isnull;
	sh->checkpoint = isnull ? 0 : DatumGetInt64(v);
	v = SPI_getbinval(t, d, 7, &isnull);
	sh->attempts = isnull ? 0 : DatumGetInt32(v);
	v = SPI_getbinval(t, d, 8, &isnull);
	sh->batch_limit = isnull ? 0 : DatumGetInt32(v);
	v = SPI_getbinval(t, d, 9, &isnull);
	sh->next_attempt_at = isnull ? 0 : DatumGetTimestampTz(v);
	sh->finished = sh->closed && sh->has_checkpoint && sh->checkpoint >= sh->ending_seq;
}

/*
 * With lanes (esm_nlanes > 1): the lane's position and retry state in
 * place of the shard's; a lane without a row of this ParallelizationFactor
 * starts at the group's checkpoint.
 */
static void
esm_load_lane(EsmRow *m, EsmShard *sh)
{
	static SPIPlanPtr plan = NULL;

	if (esm_nlanes <= 1)
		return;
	if (SPI_execute_plan(msgq_plan(&plan,
								   "SELECT seq, attempts, batch_limit, next_attempt_at"
								   "  FROM msgq.event_source_shard"
								   " WHERE uuid OPERATOR(pg_catalog.=) $1 AND shard_index OPERATOR(pg_catalog.=) $2"
								   "   AND lane OPERATOR(pg_catalog.=) $3 AND lanes OPERATOR(pg_catalog.=) $4",
								   4, (Oid[]) {UUIDOID, INT4OID, INT4OID, INT4OID}),
						 (Datum[]) {UUIDPGetDatum(&m->uuid), Int32GetDatum(sh->shard),
						 Int32GetDatum(esm_lane), Int32GetDatum(esm_nlanes)},
						 NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the lane's position");
	sh->attempts = 0;
	sh->batch_limit = 0;
	sh->next_attempt_at = 0;
	if (SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		v;

		v = SPI_getbinval(t, d, 1, &isnull);
		if (!isnull)
		{
			sh->has_checkpoint = true;
			sh->checkpoint = DatumGetInt64(v);
		}
		sh->attempts = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull));
		sh->batch_limit = DatumGetInt32(SPI_getbinval(t, d, 3, &isnull));
		v = SPI_getbinval(t, d, 4, &isnull);
		sh->next_attempt_at = isnull ? 0 : DatumGetTimestampTz(v);
	}
	sh->finished = sh->closed && sh->has_checkpoint && sh->checkpoint >= sh->ending_seq;
}

/*
 * Runner mode: take the shard's lock until the end of the transaction, or
 * false if another runner has it; then read its checkpoint and retry state
 * again, in a snapshot taken after the lock (the other runner may have
 * committed a batch since the pass read them).
 */
static bool
esm_lock_shard(EsmRow *m, EsmShard *sh, const char *group)
{
	static SPIPlanPtr plan = NULL;
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
						 hash_combine((uint32) hash_bytes((const unsigned char *) &m->uuid, sizeof(pg_uuid_t)),
									  (uint32) esm_lane),
						 (uint32) sh->shard, ESM_LOCK_FIELD4);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	if (SPI_execute_plan(msgq_plan(&plan,
								   ESM_SHARDS_SQL
								   "   AND h.shard_index OPERATOR(pg_catalog.=) $4",
								   4, (Oid[]) {INT4OID, TEXTOID, UUIDOID, INT4OID}),
						 (Datum[]) {Int32GetDatum(m->source_id), CStringGetTextDatum(group),
						 UUIDPGetDatum(&m->uuid), Int32GetDatum(sh->shard)},
						 NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the shard's checkpoint");
	if (SPI_processed == 1)
	{
		esm_shard_from_tuple(sh, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		esm_load_lane(m, sh);
	}
	else
		sh->finished = true;	/* the shard went away */
	return true;
}

/*
 * One batch per shard of a stream mapping, in shard order; a child shard
 * only once its parents are finished (checkpointed at their end).  Returns
 * when to look again (ms, -1: at the next wake-up).
 */
static long
esm_stream_pass(EsmRow *m, bool in_worker)
{
	static SPIPlanPtr plan_shards = NULL;
	char	   *group = esm_group(&m->uuid);
	char	   *invoker = psprintf("msgq:%s", GetUserNameFromId(m->owner, false));
	EsmShard   *shards;
	uint64		n,
				i,
				j,
				k,
				nlanes;
	long		wait_ms = -1;
	TimestampTz now = msgq_now();

	if (SPI_execute_plan(msgq_plan(&plan_shards,
								   ESM_SHARDS_SQL
								   " ORDER BY h.shard_index",
								   3, (Oid[]) {INT4OID, TEXTOID, UUIDOID}),
						 (Datum[]) {Int32GetDatum(m->source_id), CStringGetTextDatum(group),
						 UUIDPGetDatum(&m->uuid)},
						 NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the stream's shards");
	n = SPI_processed;
	shards = palloc0(sizeof(EsmShard) * Max(n, 1));
	for (i = 0; i < n; i++)
		esm_shard_from_tuple(&shards[i], SPI_tuptable->vals[i], SPI_tuptable->tupdesc);

	/*
	 * One unit per shard, or per lane of a shard with a ParallelizationFactor
	 * P > 1: the records whose partition key hashes to the lane modulo P,
	 * each lane in order with one batch in flight.
	 */
	nlanes = Max(m->parallelization, 1);
	for (k = 0; k < n * nlanes; k++)
	{
		uint64		u = esm_runner >= 0 ? (k + esm_rotation) % (n * nlanes) : k;
		EsmShard   *base = &shards[u / nlanes];
		EsmShard	unit = *base;
		EsmShard   *sh = &unit;
		bool		parents_done = true;
		int64		start;
		int32		limit;
		MsgqStreamBatch b;
		Jsonb	   *event;
		ErrorData  *edata;
		EsmStreamAfter sa;

		if (esm_budget == 0)
		{
			wait_ms = 0;		/* the next pass goes on */
			break;
		}
		if (base->finished)
			continue;
		for (j = 0; j < n; j++)
			if ((shards[j].shard == sh->parent || shards[j].shard == sh->adjacent) &&
				!shards[j].finished)
				parents_done = false;
		if (!parents_done)
			continue;
		esm_lane = (int) (u % nlanes);
		esm_nlanes = nlanes;
		esm_load_lane(m, sh);
		if (sh->finished || esm_not_yet(sh->next_attempt_at, now, &wait_ms))
			continue;
		if (esm_runner >= 0)
		{
			if (!esm_lock_shard(m, sh, group))
				continue;		/* its runner wakes the others when it is done */
			if (sh->finished || esm_not_yet(sh->next_attempt_at, now, &wait_ms))
				continue;
		}
		start = sh->has_checkpoint ? sh->checkpoint + 1 : Max(sh->starting_seq, m->start_seq + 1);
		limit = sh->batch_limit > 0 ? Min(sh->batch_limit, m->batch_size) : m->batch_size;
		event = msgq_stream_batch(m->source_id, sh->shard, start, limit, m->start_time,
								  m->max_age > 0 ? now - (TimestampTz) m->max_age * USECS_PER_SEC : 0,
								  invoker, esm_lane, esm_nlanes, &b);
		CHECK_FOR_INTERRUPTS();

		if (event == NULL)
		{
			/* records read but all before StartingPositionTimestamp: move past them */
			if (b.read > 0)
			{
				esm_checkpoint(m, sh->shard, b.last_seq);
				wait_ms = 0;
			}
			/* a closed shard read to its end: SHARD_END, its children can start */
			else if (sh->closed && b.next > sh->ending_seq)
			{
				esm_checkpoint(m, sh->shard, sh->ending_seq);
				wait_ms = 0;
			}
			continue;
		}

		/* the batching window: a small batch waits for more, from its first record */
		if (b.n < m->batch_size && m->window > 0 &&
			b.first_arrival + (TimestampTz) m->window * USECS_PER_SEC > now)
		{
			long		w = (long) ((b.first_arrival + (TimestampTz) m->window * USECS_PER_SEC - now + 999) / 1000);

			if (wait_ms < 0 || w < wait_ms)
				wait_ms = w;
			continue;
		}

		/* MaximumRecordAgeInSeconds: the expired records are given up */
		if (b.n_old > 0)
		{
			MsgqStreamBatch old = b;

			old.n = b.n_old;
			old.last_seq = b.last_old_seq;
			old.last_arrival = b.last_old_arrival;
			esm_on_failure(m, sh->shard, &old, sh->attempts, "RecordAgeExceeded", NULL);
			esm_checkpoint(m, sh->shard, old.last_seq);
			esm_shard_state(m, sh->shard, 0, 0, 0);
			esm_record(&m->uuid, "PROBLEM: Records expired (MaximumRecordAgeInSeconds)", NULL, 0);
			wait_ms = 0;
			continue;
		}

		if (esm_budget > 0)
			esm_budget--;
		memset(&sa, 0, sizeof(sa));
		sa.shard = sh->shard;
		sa.b = &b;
		edata = esm_invoke(m, JsonbPGetDatum(event), in_worker, esm_stream_after, &sa);
		if (edata == NULL && !sa.partial)
		{
			if (sh->attempts > 0 || sh->batch_limit > 0)
				esm_shard_state(m, sh->shard, 0, 0, 0);
			esm_record(&m->uuid, "OK", NULL, 0);
			/* more may be waiting, or a closed shard's end */
			if (b.n == limit || b.more || sh->closed)
				wait_ms = 0;
			continue;
		}

		/* a failure, or a partial batch: retry, bisect, or give up */
		{
			const char *msg = edata ? edata->message : "the function reported batch item failures";
			int32		attempts = sh->attempts + 1;
			char	   *uuid_text = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&m->uuid)));

			ereport(LOG,
					(errmsg("msgq: event source mapping %s: function %s failed on a batch of %d records of shard %s (sequence numbers " INT64_FORMAT " to " INT64_FORMAT "): %s",
							uuid_text, format_procedure(m->function), b.n,
							msgq_shard_id_text(sh->shard), b.first_seq, b.last_seq, msg)));
			if (m->bisect && b.n > 1)
			{
				/* the first half next, at once */
				esm_shard_state(m, sh->shard, attempts, (b.n + 1) / 2, 0);
				wait_ms = 0;
			}
			else if (m->max_retry >= 0 && attempts > m->max_retry)
			{
				esm_on_failure(m, sh->shard, &b, attempts, "RetryAttemptsExhausted", msg);
				esm_checkpoint(m, sh->shard, b.last_seq);
				esm_shard_state(m, sh->shard, 0, 0, 0);
				wait_ms = 0;
			}
			else
			{
				TimestampTz at = esm_retry_at(attempts);
				long		w = (long) ((at - now + 999) / 1000);

				esm_shard_state(m, sh->shard, attempts, sh->batch_limit, at);
				if (wait_ms < 0 || w < wait_ms)
					wait_ms = w;
			}
			esm_record(&m->uuid, edata ? "PROBLEM: Function call failed" : "OK: partial batch failure",
					   edata ? msg : NULL, edata ? 1 : 0);
			if (edata)
				FreeErrorData(edata);
		}
	}
	esm_lane = 0;
	esm_nlanes = 1;
	return wait_ms;
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
				i,
				k;
	long		wait_ms = -1;

	if (SPI_execute_plan(msgq_plan(&plan_list,
								   "SELECT m.uuid, q.queue_name, m.function::pg_catalog.oid,"
								   "       m.owner::pg_catalog.oid, m.batch_size, m.batching_window,"
								   "       m.report_batch_item_failures, q.queue_id,"
								   "       m.source_kind OPERATOR(pg_catalog.=) 'stream', m.source_id,"
								   "       m.source_arn, m.start_seq, m.start_time, m.max_retry_attempts,"
								   "       m.max_record_age, m.bisect, m.on_failure, m.parallelization"
								   "  FROM msgq.event_source_mapping m LEFT JOIN msgq.queue q"
								   "    ON m.source_kind OPERATOR(pg_catalog.=) 'queue'"
								   "   AND q.queue_id OPERATOR(pg_catalog.=) m.source_id"
								   " WHERE m.enabled"
								   "   AND (q.queue_id IS NOT NULL OR m.source_kind OPERATOR(pg_catalog.=) 'stream')"
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

		Datum		v;

		rows[i].uuid = *DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull));
		v = SPI_getbinval(t, d, 2, &isnull);
		rows[i].queue_name = isnull ? NULL : TextDatumGetCString(v);
		rows[i].stream = DatumGetBool(SPI_getbinval(t, d, 9, &isnull));
		rows[i].source_id = DatumGetInt32(SPI_getbinval(t, d, 10, &isnull));
		rows[i].source_arn = TextDatumGetCString(SPI_getbinval(t, d, 11, &isnull));
		v = SPI_getbinval(t, d, 12, &isnull);
		rows[i].start_seq = isnull ? 0 : DatumGetInt64(v);
		v = SPI_getbinval(t, d, 13, &isnull);
		rows[i].start_time = isnull ? 0 : DatumGetTimestampTz(v);
		rows[i].max_retry = DatumGetInt32(SPI_getbinval(t, d, 14, &isnull));
		rows[i].max_age = DatumGetInt32(SPI_getbinval(t, d, 15, &isnull));
		rows[i].bisect = DatumGetBool(SPI_getbinval(t, d, 16, &isnull));
		v = SPI_getbinval(t, d, 17, &isnull);
		rows[i].on_failure = isnull ? NULL : TextDatumGetCString(v);
		rows[i].parallelization = DatumGetInt32(SPI_getbinval(t, d, 18, &isnull));
		rows[i].function = DatumGetObjectId(SPI_getbinval(t, d, 3, &isnull));
		rows[i].owner = DatumGetObjectId(SPI_getbinval(t, d, 4, &isnull));
		rows[i].batch_size = DatumGetInt32(SPI_getbinval(t, d, 5, &isnull));
		rows[i].window = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
		rows[i].report_failures = DatumGetBool(SPI_getbinval(t, d, 7, &isnull));
		v = SPI_getbinval(t, d, 8, &isnull);
		/* a stream's wake-up key is its negated id, as wait.c has it */
		rows[i].queue_id = rows[i].stream ? -rows[i].source_id : DatumGetInt32(v);
	}
	/* the worker's pass, or the first runner's, tells commits whom to wake */
	if (in_worker && esm_runner <= 0)
		esm_publish_sources(rows, (int) n);
	esm_stats = NULL;
	esm_nstats = esm_maxstats = 0;
	for (k = 0; k < n; k++)
	{
		EsmRow	   *m = &rows[esm_runner >= 0 ? (k + esm_rotation) % n : k];
		int			b;

		if (esm_budget == 0)
		{
			wait_ms = 0;		/* the next pass goes on */
			break;
		}
		/* an owner that was dropped leaves the mapping alone */
		if (GetUserNameFromId(m->owner, true) == NULL)
			continue;
		if (m->stream)
		{
			long		w = esm_stream_pass(m, in_worker);

			if (w >= 0 && (wait_ms < 0 || w < wait_ms))
				wait_ms = w;
			continue;
		}
		for (b = 0; b < ESM_BATCHES_PER_PASS; b++)
		{
			long		w;
			int			got;

			if (esm_budget == 0)
			{
				wait_ms = 0;
				break;
			}
			got = esm_queue_batch(m, in_worker, &w);
			CHECK_FOR_INTERRUPTS();
			if (got == 0)
			{
				if (w >= 0 && (wait_ms < 0 || w < wait_ms))
					wait_ms = w;
				break;
			}
			if (esm_budget > 0)
				esm_budget--;
			if (b == ESM_BATCHES_PER_PASS - 1)
				wait_ms = 0;	/* more may be waiting: come back at once */
		}
	}
	esm_flush_stats();
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

	if (esm_slots == NULL || queue_id == 0)
		return;
	slot = esm_slot(MyDatabaseId, queue_id);
	if (slot->dboid != MyDatabaseId || slot->queue_id != queue_id)
		return;
	if (pg_atomic_exchange_u32(&slot->requested, 1) == 0)
		msgq_bgw_wake_esm(MyDatabaseId);
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
	esm_budget = esm_runner >= 0 ? 1 : -1;
	esm_rotation++;
	/* errors outside the functions' subtransactions end the worker (doc/workers.md) */
	return msgq_worker_pass("msgq event source mappings", "event_source_mapping", msgq_esm_run);
}

/*
 * This process is runner `runner` (0-based) of its database's event source
 * mapping runners (worker.c): its passes run one batch each.
 */
void
msgq_esm_set_runner(int runner)
{
	esm_runner = runner;
	esm_rotation = (uint32) runner;
}
