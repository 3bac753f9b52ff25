/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  SQS-style queues: the SQL-callable functions and the storage
 *	  interface behind them.
 *
 * Every function follows the same path: check that msgq is preloaded,
 * remember the calling role, switch to the extension owner, connect to
 * SPI, look the queue up, check the caller's right on it (acl.c), then do
 * the work with cached, fully schema-qualified plans that were prepared
 * under a fixed search_path (so a caller's search_path can never redirect
 * them).  Queue names are only ever bound as parameters.
 *
 * Storage (first design; doc/storage.md has the reasons and the plan):
 * one table msgq.message holds the messages of every queue, keyed by
 * (queue_id, msg_seq) where msg_seq comes from one sequence, so the key
 * order is the delivery order.  A receive claims the first visible rows
 * in key order and leases them in shared memory (lease.c), writing nothing;
 * only when the lease table is full does it lock the rows FOR UPDATE SKIP
 * LOCKED and write the lease columns (visible_at, receive_count,
 * received_at, receipt_nonce) into them.
 * A delete is a DELETE.  All of this lives behind the queue_* helpers
 * below, so the layout can change without touching the SQL API.
 *
 * Message lifecycle:
 *
 *	send --(commit)--> delayed --(visible_at reached)--> visible
 *	visible --receive--> in flight (visible_at = now + visibility timeout)
 *	in flight --(timeout, change_message_visibility(0), rollback)--> visible
 *	in flight --delete_message with the latest handle--> gone
 *
 * Long polling: see wait.c for the wake-up protocol.
 *
 * IDENTIFICATION
 *	  src/queue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "catalog/namespace.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
#include "utils/snapmgr.h"

#include "msgq.h"

PG_FUNCTION_INFO_V1(msgq_create_queue);
PG_FUNCTION_INFO_V1(msgq_delete_queue);
PG_FUNCTION_INFO_V1(msgq_list_queues);
PG_FUNCTION_INFO_V1(msgq_get_queue_url);
PG_FUNCTION_INFO_V1(msgq_send_message);
PG_FUNCTION_INFO_V1(msgq_receive_message);
PG_FUNCTION_INFO_V1(msgq_delete_message);
PG_FUNCTION_INFO_V1(msgq_change_message_visibility);
PG_FUNCTION_INFO_V1(msgq_add_permission);
PG_FUNCTION_INFO_V1(msgq_remove_permission);
PG_FUNCTION_INFO_V1(msgq_run_maintenance);

/*
 * Cached plans.  Prepared once per backend; PostgreSQL re-plans them on
 * its own when msgq's tables change (or are dropped and made anew by a
 * DROP/CREATE EXTENSION), always under the search_path they were made
 * with.
 */
typedef enum QueuePlan
{
	QP_LOOKUP,
	QP_INSERT_QUEUE,
	QP_QUEUE_ATTRS,
	QP_DELETE_MESSAGES,
	QP_DELETE_QUEUE,
	QP_RECORD_DELETED,
	QP_DELETED_RECENTLY,
	QP_MOVE_ONE_DLQ,
	QP_OUTBOX_FIXUP,
	QP_LIST,
	QP_ADD_COUNT,
	QP_DURABLE_LOCK,
	QP_EXISTS,
	QP_DURABLE_CLAIM,
	QP_NEXT_VISIBLE,
	QP_DELETE_MESSAGE,
	QP_LEASE,
	QP_SET_VISIBLE,
	QP_PERM_INSERT,
	QP_PERM_DELETE,
	QP_ACL_RECOMPUTE,
	QP_FIFO_REPEAT,
	QP_COUNT
} QueuePlan;

static SPIPlanPtr queue_plans[QP_COUNT];
static SPIPlanPtr queue_scan_plans[3];

/*
 * A page of a queue's rows after msg_seq $2, for receive_message: the
 * visible ones ($3: now, $4: the retention cutoff), or for the first page
 * rows of every visibility, whose first tells where the queue's live rows
 * begin (head.c); the receive skips the delayed and expired ones itself.
 */
#define QUEUE_SCAN_SQL(limit, filter) \
	"SELECT msg_seq, message_id, body, md5_of_body," \
	"       message_attributes, sender, sent_at," \
	"       receive_count, first_received_at," \
	"       message_group_id, tableoid, ctid," \
	"       pg_catalog.octet_length(body), visible_at" \
	"  FROM msgq.message" \
	" WHERE queue_id OPERATOR(pg_catalog.=) $1" \
	"   AND msg_seq OPERATOR(pg_catalog.>) $2" filter \
	" ORDER BY queue_id, msg_seq LIMIT " limit
#define QUEUE_SCAN_VISIBLE \
	"   AND visible_at OPERATOR(pg_catalog.<=) $3" \
	"   AND sent_at OPERATOR(pg_catalog.>) $4"

/*
 * A FIFO queue's messages in group order after ($2, $6) (group, msg_seq):
 * the groups after group $2, or with $4 only up to group $5, through
 * message_group_idx.  Rows of any visibility: a row that is not visible
 * blocks its group.
 */
#define QUEUE_FIFO_SCAN_SQL \
	"SELECT msg_seq, message_id, body, md5_of_body," \
	"       message_attributes, sender, sent_at," \
	"       receive_count, first_received_at," \
	"       message_group_id, tableoid, ctid," \
	"       pg_catalog.octet_length(body), visible_at, message_deduplication_id" \
	"  FROM msgq.message" \
	" WHERE queue_id OPERATOR(pg_catalog.=) $1" \
	"   AND message_group_id OPERATOR(pg_catalog.>=) $2" \
	"   AND (message_group_id, msg_seq) OPERATOR(pg_catalog.>) ($2, $6)" \
	"   AND (NOT $4 OR message_group_id OPERATOR(pg_catalog.<=) $5)" \
	"   AND sent_at OPERATOR(pg_catalog.>) $3" \
	" ORDER BY queue_id, message_group_id, msg_seq LIMIT 10"

static SPIPlanPtr queue_fifo_scan_plan;

static bool queue_lookup_uncached(const char *name, MsgqQueue *queue);

/*
 * Prepare a statement once per backend into *slot.  Plans are made under
 * search_path = pg_catalog, pg_temp, so a caller's search_path can never
 * redirect them; PostgreSQL re-plans them under that same path when msgq's
 * tables change (or are dropped and made anew by DROP/CREATE EXTENSION).
 */
SPIPlanPtr
msgq_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	return msgq_plan_opts(slot, sql, nargs, argtypes, 0);
}

/* msgq_plan with planner options (CURSOR_OPT_*, e.g. a generic plan) */
SPIPlanPtr
msgq_plan_opts(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes,
				 int cursor_options)
{
	SPIPlanPtr	plan;
	int			nest;

	if (*slot != NULL)
		return *slot;

	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	AtEOXact_GUC(true, nest);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	*slot = plan;
	return plan;
}

/*
 * Execute a plan that finds messages by key (or in key order), planned,
 * when the plan cache plans it, with sequential scans and sorts ruled out.
 * A free segment is an empty partition: planned as a sequential scan, it
 * would stay one in the cached plan while it fills as the active segment
 * (until an ANALYZE invalidates the plan), and every lookup would read it
 * whole; even empty, a rescanned sequential scan asks the kernel for the
 * file's size every time.  An index scan of an empty index costs nothing.
 */
int
msgq_execute_keyed(SPIPlanPtr plan, Datum *values, const char *nulls,
				   bool read_only, long tcount)
{
	int			nest = NewGUCNestLevel();
	int			rc;

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	rc = SPI_execute_plan(plan, values, nulls, read_only, tcount);
	AtEOXact_GUC(true, nest);
	return rc;
}

#define queue_plan(which, sql, nargs, ...) \
	msgq_plan(&queue_plans[which], sql, nargs, __VA_ARGS__)

/*
 * Start an SQL-callable call: check preloading, remember the caller and
 * its memory context, switch to the extension owner and connect to SPI.
 *
 * While connected, CurrentMemoryContext is SPI's procedure context (every
 * SPI execution switches back to it), which msgq_call_leave() frees: a
 * result that must outlive the call is built in call->cxt, or after
 * msgq_call_leave(), or put into a tuplestore before it.
 */
void
msgq_call_enter(MsgqCall *call)
{
	msgq_call_enter_light(call);
	msgq_call_need_sql(call);
}

/*
 * Start a call on a hot path that runs SQL only on a cache miss (a send,
 * a put): as msgq_call_enter, but search_path is pinned and SPI connected
 * only by msgq_call_need_sql(), which the call makes before anything that
 * may run SQL.  Pinning search_path costs a GUC save and restore and two
 * recomputations of the namespace path (msgq's, then the caller's again)
 * per call; a call that reads its caches and writes heap tuples needs
 * neither.  Until then CurrentMemoryContext is the caller's.
 */
void
msgq_call_enter_light(MsgqCall *call)
{
	call->cxt = CurrentMemoryContext;
	msgq_check_preloaded();
	call->caller = GetUserId();
	call->connected = false;
	msgq_become_owner(&call->save_userid, &call->save_sec_context);
}

/* Pin search_path and connect to SPI, once per call. */
void
msgq_call_need_sql(MsgqCall *call)
{
	if (call->connected)
		return;
	call->save_nest = msgq_pin_search_path();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	call->connected = true;
}

void
msgq_call_leave(MsgqCall *call)
{
	if (call->connected)
	{
		SPI_finish();
		AtEOXact_GUC(true, call->save_nest);
		call->connected = false;
	}
	SetUserIdAndSecContext(call->save_userid, call->save_sec_context);
}

/*
 * A function's result row type (its OUT parameters), blessed once per
 * backend in *cache: get_call_result_type() would read them from pg_proc
 * on every call.  For the frozen signatures of hot functions only.
 */
TupleDesc
msgq_result_desc(FunctionCallInfo fcinfo, TupleDesc *cache)
{
	if (*cache == NULL)
	{
		TupleDesc	d;
		MemoryContext old;

		if (get_call_result_type(fcinfo, NULL, &d) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		old = MemoryContextSwitchTo(TopMemoryContext);
		d = CreateTupleDescCopy(d);
		MemoryContextSwitchTo(old);
		*cache = BlessTupleDesc(d);
	}
	return *cache;
}

char *
msgq_text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * Accept a plain name, a queue URL (anything up to the last "/") or an
 * ARN (anything up to the last ":") wherever a queue is named.
 */
static const char *
queue_ref_name(const char *ref)
{
	const char *p;

	if (ref == NULL)
		return NULL;
	if ((p = strrchr(ref, '/')) != NULL)
		return p + 1;
	if (strncmp(ref, "arn:", 4) == 0 && (p = strrchr(ref, ':')) != NULL)
		return p + 1;
	return ref;
}

void
msgq_queue_does_not_exist(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_QUEUE_DOES_NOT_EXIST),
			 errmsg("queue \"%s\" does not exist", name),
			 errdetail_internal("AWS error code: QueueDoesNotExist")));
}

static int32
queue_get_int(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/*
 * Per-backend cache of queue lookups, by name.  Functions that change a
 * queue row call msgq_queue_cache_invalidate(), which queues a relcache
 * invalidation of msgq.queue; every backend drops its whole cache when that
 * invalidation arrives (at its next transaction or lock), as pg_cron does
 * for its job table.  Only queues that exist are cached.
 */
typedef struct QueueCacheEntry
{
	char		name[MSGQ_MAX_NAME_LEN + 1];
	MsgqQueue	queue;
} QueueCacheEntry;

static HTAB *queue_cache = NULL;
static MemoryContext queue_cache_cxt = NULL;
static Oid	queue_cache_relid = InvalidOid;
static bool queue_callback_registered = false;

static void
queue_cache_reset(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != queue_cache_relid)
		return;
	if (queue_cache_cxt != NULL)
		MemoryContextReset(queue_cache_cxt);
	queue_cache = NULL;
	queue_cache_relid = InvalidOid;
	msgq_utils_cache_reset();
	msgq_handle_cache_reset();
	msgq_segment_cache_reset();
}

static Oid queue_table_relid(void);

/* msgq.queue's oid: new with every CREATE EXTENSION (fifo.c keys use it) */
Oid
msgq_queue_table_relid(void)
{
	return queue_table_relid();
}

static Oid
queue_table_relid(void)
{
	if (!OidIsValid(queue_cache_relid))
	{
		Oid			nsp = get_namespace_oid(MSGQ_SCHEMA_NAME, false);

		queue_cache_relid = get_relname_relid("queue", nsp);
		if (!OidIsValid(queue_cache_relid))
			elog(ERROR, "msgq.queue does not exist");
	}
	return queue_cache_relid;
}

void
msgq_queue_cache_invalidate(void)
{
	CacheInvalidateRelcacheByRelid(queue_table_relid());
}

void
msgq_queue_cache_register(void)
{
	if (!queue_callback_registered)
	{
		CacheRegisterRelcacheCallback(queue_cache_reset, (Datum) 0);
		queue_callback_registered = true;
	}
}

/* Make sure the relcache callback resets msgq's caches from now on. */
void
msgq_queue_cache_prime(void)
{
	msgq_queue_cache_register();
	(void) queue_table_relid();
}

static HTAB *
queue_cache_get(void)
{
	HASHCTL		ctl;

	msgq_queue_cache_register();
	if (queue_cache != NULL)
		return queue_cache;
	if (queue_cache_cxt == NULL)
		queue_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
												"msgq queue cache",
												ALLOCSET_SMALL_SIZES);
	(void) queue_table_relid();
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = MSGQ_MAX_NAME_LEN + 1;
	ctl.entrysize = sizeof(QueueCacheEntry);
	ctl.hcxt = queue_cache_cxt;
	queue_cache = hash_create("msgq queue cache", 64, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	return queue_cache;
}

/* Deep-copy a queue into cxt. */
static void
queue_copy(MsgqQueue *dst, const MsgqQueue *src, MemoryContext cxt)
{
	int			i;

	*dst = *src;
	dst->queue_name = MemoryContextStrdup(cxt, src->queue_name);
	if (src->acl != NULL)
	{
		dst->acl = MemoryContextAlloc(cxt, VARSIZE(src->acl));
		memcpy(dst->acl, src->acl, VARSIZE(src->acl));
	}
	if (src->dlq_name != NULL)
		dst->dlq_name = MemoryContextStrdup(cxt, src->dlq_name);
	if (src->redrive_permission != NULL)
		dst->redrive_permission = MemoryContextStrdup(cxt, src->redrive_permission);
	for (i = 0; i < src->nsources; i++)
		dst->sources[i] = MemoryContextStrdup(cxt, src->sources[i]);
}

/* The cache entry of a queue name, or NULL; runs no SQL. */
static QueueCacheEntry *
queue_cache_find(const char *name)
{
	if (name == NULL || name[0] == '\0' || strlen(name) > MSGQ_MAX_NAME_LEN)
		return NULL;
	return hash_search(queue_cache_get(), name, HASH_FIND, NULL);
}

bool
msgq_queue_lookup(const char *queue_ref, MsgqQueue *queue)
{
	const char *name = queue_ref_name(queue_ref);
	QueueCacheEntry *entry;
	HTAB	   *cache;
	bool		found;

	if (name == NULL || name[0] == '\0')
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter QueueUrl");
	if (strlen(name) > MSGQ_MAX_NAME_LEN)
		return false;

	entry = queue_cache_find(name);
	if (entry == NULL)
	{
		MsgqQueue	fresh;

		if (!queue_lookup_uncached(name, &fresh))
			return false;
		/* the lookup may have processed invalidations: fetch the cache again */
		cache = queue_cache_get();
		entry = hash_search(cache, name, HASH_ENTER, &found);
		queue_copy(&entry->queue, &fresh, queue_cache_cxt);
	}
	queue_copy(queue, &entry->queue, CurrentMemoryContext);
	return true;
}

/*
 * The queue from this backend's cache, for a light call: SQL, and so SPI
 * and the pinned search_path, only when the cache misses.
 */
MsgqQueue *
msgq_queue_get_light(MsgqCall *call, const char *queue_ref)
{
	QueueCacheEntry *entry = queue_cache_find(queue_ref_name(queue_ref));
	MsgqQueue  *queue;

	if (entry == NULL)
	{
		msgq_call_need_sql(call);
		return msgq_queue_get(queue_ref);
	}
	queue = palloc0(sizeof(MsgqQueue));
	queue_copy(queue, &entry->queue, CurrentMemoryContext);
	return queue;
}

static bool
queue_lookup_uncached(const char *name, MsgqQueue *queue)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_plan(queue_plan(QP_LOOKUP,
									"SELECT queue_id, owner::pg_catalog.oid, fifo, visibility_timeout,"
									" message_retention_period, delay_seconds,"
									" receive_wait_time_seconds, maximum_message_size, acl,"
									" dead_letter_queue, max_receive_count, redrive_permission,"
									" redrive_sources, extended_maximum_message_size,"
									" attributes OPERATOR(pg_catalog.->>) 'ContentBasedDeduplication',"
									" attributes OPERATOR(pg_catalog.->>) 'DeduplicationScope',"
									" attributes OPERATOR(pg_catalog.->>) 'FifoThroughputLimit'"
									" FROM msgq.queue WHERE queue_name OPERATOR(pg_catalog.=) $1",
									1, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "queue lookup failed");
	if (SPI_processed == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(queue, 0, sizeof(*queue));
	queue->queue_id = queue_get_int(tup, desc, 1);
	queue->queue_name = pstrdup(name);
	queue->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
	queue->fifo = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
	queue->visibility_timeout = queue_get_int(tup, desc, 4);
	queue->retention_period = queue_get_int(tup, desc, 5);
	queue->delay_seconds = queue_get_int(tup, desc, 6);
	queue->wait_time_seconds = queue_get_int(tup, desc, 7);
	queue->maximum_message_size = queue_get_int(tup, desc, 8);
	d = SPI_getbinval(tup, desc, 9, &isnull);
	queue->acl = isnull ? NULL : DatumGetAclPCopy(d);
	d = SPI_getbinval(tup, desc, 10, &isnull);
	queue->dlq_name = isnull ? NULL : TextDatumGetCString(d);
	queue->max_receive_count = queue_get_int(tup, desc, 11);
	d = SPI_getbinval(tup, desc, 12, &isnull);
	queue->redrive_permission = isnull ? NULL : TextDatumGetCString(d);
	queue->nsources = 0;
	d = SPI_getbinval(tup, desc, 13, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		int			n,
					i;

		msgq_text_array(DatumGetArrayTypeP(d), &elems, &n);
		for (i = 0; i < n && i < MSGQ_MAX_REDRIVE_SOURCES; i++)
			queue->sources[queue->nsources++] = TextDatumGetCString(elems[i]);
	}
	queue->extended_maximum_message_size = queue_get_int(tup, desc, 14);
	if (queue->fifo)
	{
		d = SPI_getbinval(tup, desc, 15, &isnull);
		queue->content_dedup = !isnull && strcmp(TextDatumGetCString(d), "true") == 0;
		d = SPI_getbinval(tup, desc, 16, &isnull);
		queue->dedup_per_group = !isnull && strcmp(TextDatumGetCString(d), "messageGroup") == 0;
		d = SPI_getbinval(tup, desc, 17, &isnull);
		queue->throughput_per_group = !isnull && strcmp(TextDatumGetCString(d), "perMessageGroupId") == 0;
	}
	return true;
}

MsgqQueue *
msgq_queue_get(const char *queue_ref)
{
	MsgqQueue  *queue = palloc0(sizeof(MsgqQueue));

	if (!msgq_queue_lookup(queue_ref, queue))
		msgq_queue_does_not_exist(queue_ref_name(queue_ref));
	return queue;
}

void
msgq_invalid_value(const char *param, long long value, const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
			 errmsg("value %lld for parameter %s is invalid", value, param),
			 errdetail_internal("AWS error code: InvalidParameterValue. Reason: %s", reason)));
}

/* ------------------------------------------------------------------------
 * Queue attributes
 * ------------------------------------------------------------------------
 */

typedef struct QueueIntAttr
{
	const char *name;
	int32		min;
	int32		max;
	int32		dflt;
} QueueIntAttr;

/* Order matters: the indexes are used below. */
static const QueueIntAttr queue_int_attrs[] = {
	{"VisibilityTimeout", 0, MSGQ_MAX_VISIBILITY_TIMEOUT, 30},
	{"MessageRetentionPeriod", 60, 1209600, 345600},
	{"DelaySeconds", 0, MSGQ_MAX_DELAY_SECONDS, 0},
	{"ReceiveMessageWaitTimeSeconds", 0, MSGQ_MAX_WAIT_TIME_SECONDS, 0},
	{"MaximumMessageSize", 1024, 1048576, 1048576},
	{"KmsDataKeyReusePeriodSeconds", 60, 86400, 300},
	/* msgq's own: large bodies beyond SQS's 1 MiB, up to 256 MiB; 0 = off */
	{"ExtendedMaximumMessageSize", 0, MSGQ_MAX_EXTENDED_MESSAGE_SIZE, 0},
};
#define QUEUE_N_INT_ATTRS	lengthof(queue_int_attrs)

static const char *const queue_fifo_only_attrs[] = {
	"ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit", NULL
};

static void
queue_attr_invalid(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for the parameter %s", name),
			 errdetail_internal("AWS error code: InvalidAttributeValue")));
}

/* Parse an integer attribute given as a JSON number or a numeric string. */
static int32
queue_attr_int(JsonbValue *v, const QueueIntAttr *a)
{
	char	   *s;
	char	   *end;
	long		val;

	if (v->type == jbvNumeric)
		s = DatumGetCString(DirectFunctionCall1(numeric_out,
												NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString)
		s = pnstrdup(v->val.string.val, v->val.string.len);
	else
	{
		queue_attr_invalid(a->name);
		return 0;
	}
	errno = 0;
	val = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' ||
		!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) ||
		val < a->min || val > a->max)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for the parameter %s", a->name),
				 errdetail_internal("AWS error code: InvalidAttributeValue"),
				 errhint("%s must be an integer from %d to %d.", a->name, a->min, a->max)));
	return (int32) val;
}

static char *
queue_attr_bool(JsonbValue *v, const char *name)
{
	if (v->type == jbvBool)
		return v->val.boolean ? "true" : "false";
	if (v->type == jbvString)
	{
		if (v->val.string.len == 4 && pg_strncasecmp(v->val.string.val, "true", 4) == 0)
			return "true";
		if (v->val.string.len == 5 && pg_strncasecmp(v->val.string.val, "false", 5) == 0)
			return "false";
	}
	queue_attr_invalid(name);
	return NULL;
}

static char *queue_attr_string(JsonbValue *v, const char *name);

/* An attribute with two values: true for yes, false for no, else an error. */
static bool
queue_attr_choice(JsonbValue *v, const char *name, const char *yes, const char *no)
{
	char	   *val = queue_attr_string(v, name);

	if (strcmp(val, yes) != 0 && strcmp(val, no) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for the parameter %s", name),
				 errdetail_internal("AWS error code: InvalidAttributeValue"),
				 errhint("%s is %s or %s.", name, yes, no)));
	return strcmp(val, yes) == 0;
}

static char *
queue_attr_string(JsonbValue *v, const char *name)
{
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	queue_attr_invalid(name);
	return NULL;
}

static void
queue_policy_invalid(const char *param, const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for parameter %s", param),
			 errdetail_internal("AWS error code: InvalidParameterValue. Reason: %s", reason)));
}

/*
 * Parse a JSON-valued attribute (RedrivePolicy, RedriveAllowPolicy): a JSON
 * object, or a string holding one (AWS's wire form).  Returns NULL for ""
 * (which removes the attribute).
 */
static JsonbContainer *
queue_attr_object(JsonbValue *v, const char *name)
{
	Jsonb	   *j;

	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		return v->val.binary.data;
	if (v->type != jbvString)
		queue_policy_invalid(name, "The value is not a valid JSON map.");
	if (v->val.string.len == 0)
		return NULL;
	/* jsonb_in only computes over memory: catching its error is safe */
	PG_TRY();
	{
		j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											   CStringGetDatum(pnstrdup(v->val.string.val,
																		v->val.string.len))));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
		j = NULL;
	}
	PG_END_TRY();
	if (!ok || !JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
		queue_policy_invalid(name, "The value is not a valid JSON map.");
	return &j->root;
}


char *
msgq_queue_arn(const char *name)
{
	return psprintf("arn:aws:sqs:msgq:%s:%s", get_database_name(MyDatabaseId), name);
}

static void
queue_parse_redrive_policy(JsonbValue *v, MsgqQueueAttrs *out)
{
	JsonbContainer *obj = queue_attr_object(v, "RedrivePolicy");
	JsonbValue *target;
	JsonbValue *count;
	QueueIntAttr mrc = {"maxReceiveCount", 1, 1000, 0};
	bool		fifo;

	out->dlq_name = NULL;
	out->max_receive_count = 0;
	if (obj == NULL)
		return;
	target = msgq_jsonb_member(obj, "deadLetterTargetArn");
	count = msgq_jsonb_member(obj, "maxReceiveCount");
	if (target == NULL || count == NULL)
		queue_policy_invalid("RedrivePolicy",
							 "Redrive policy must contain both deadLetterTargetArn and maxReceiveCount.");
	if (target->type != jbvString || target->val.string.len == 0)
		queue_policy_invalid("RedrivePolicy", "deadLetterTargetArn must be a queue ARN or name.");
	out->dlq_name = pstrdup(queue_ref_name(pnstrdup(target->val.string.val,
													target->val.string.len)));
	msgq_check_queue_name(out->dlq_name, &fifo);
	if (!((count->type == jbvNumeric || count->type == jbvString)))
		queue_policy_invalid("RedrivePolicy", "maxReceiveCount must be an integer from 1 to 1000.");
	PG_TRY();
	{
		out->max_receive_count = queue_attr_int(count, &mrc);
	}
	PG_CATCH();
	{
		FlushErrorState();
		queue_policy_invalid("RedrivePolicy", "maxReceiveCount must be an integer from 1 to 1000.");
	}
	PG_END_TRY();
}

static void
queue_parse_redrive_allow_policy(JsonbValue *v, MsgqQueueAttrs *out)
{
	JsonbContainer *obj = queue_attr_object(v, "RedriveAllowPolicy");
	JsonbValue *perm;
	JsonbValue *sources;
	char	   *p;

	out->redrive_permission = NULL;
	out->nsources = 0;
	if (obj == NULL)
		return;
	perm = msgq_jsonb_member(obj, "redrivePermission");
	sources = msgq_jsonb_member(obj, "sourceQueueArns");
	if (perm == NULL || perm->type != jbvString)
		queue_policy_invalid("RedriveAllowPolicy",
							 "redrivePermission must be allowAll, denyAll or byQueue.");
	p = pnstrdup(perm->val.string.val, perm->val.string.len);
	if (strcmp(p, "allowAll") != 0 && strcmp(p, "denyAll") != 0 &&
		strcmp(p, "byQueue") != 0)
		queue_policy_invalid("RedriveAllowPolicy",
							 "redrivePermission must be allowAll, denyAll or byQueue.");
	out->redrive_permission = p;

	if (strcmp(p, "byQueue") == 0)
	{
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;

		if (sources == NULL || sources->type != jbvBinary ||
			!JsonContainerIsArray(sources->val.binary.data) ||
			JsonContainerSize(sources->val.binary.data) == 0)
			queue_policy_invalid("RedriveAllowPolicy",
								 "sourceQueueArns must list 1 to 10 queues when redrivePermission is byQueue.");
		if (JsonContainerSize(sources->val.binary.data) > 10)
			queue_policy_invalid("RedriveAllowPolicy",
								 "sourceQueueArns may list at most 10 queues.");
		it = JsonbIteratorInit(sources->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			bool		fifo;
			char	   *name;

			if (tok != WJB_ELEM)
				continue;
			if (e.type != jbvString || e.val.string.len == 0)
				queue_policy_invalid("RedriveAllowPolicy",
									 "sourceQueueArns must be queue ARNs or names.");
			name = pstrdup(queue_ref_name(pnstrdup(e.val.string.val, e.val.string.len)));
			msgq_check_queue_name(name, &fifo);
			out->sources[out->nsources++] = name;
		}
	}
	else if (sources != NULL)
		queue_policy_invalid("RedriveAllowPolicy",
							 "sourceQueueArns is allowed only when redrivePermission is byQueue.");
}

/*
 * Validate queue attributes and build the queue's full attribute set:
 * every settable attribute with its effective value, as AWS's wire strings.
 * create_queue passes the given attributes; set_queue_attributes passes the
 * queue's current set with the given ones laid over it (for_set).  A value
 * of "" removes Policy, KmsMasterKeyId, RedrivePolicy and
 * RedriveAllowPolicy.
 */
void
msgq_queue_build_attributes(Jsonb *given, bool is_fifo_name, bool for_set,
							MsgqQueueAttrs *out)
{
	char	   *policy = NULL;
	char	   *kms_key = NULL;
	char	   *sse = NULL;
	char	   *fifo_given = NULL;
	bool		have_kms_reuse = false;
	StringInfoData buf;
	int			i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < QUEUE_N_INT_ATTRS; i++)
		out->ints[i] = queue_int_attrs[i].dflt;

	if (given != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;

		if (!JB_ROOT_IS_OBJECT(given) || JB_ROOT_IS_SCALAR(given))
			MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
					   "queue attributes must be a JSON object");

		it = JsonbIteratorInit(&given->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *key;
			int			j;
			bool		known = false;

			if (tok != WJB_KEY)
				continue;
			key = pnstrdup(v.val.string.val, v.val.string.len);
			tok = JsonbIteratorNext(&it, &v, true);

			for (j = 0; j < QUEUE_N_INT_ATTRS; j++)
			{
				if (strcmp(key, queue_int_attrs[j].name) == 0)
				{
					out->ints[j] = queue_attr_int(&v, &queue_int_attrs[j]);
					if (j == 5)
						have_kms_reuse = true;
					known = true;
				}
			}
			if (known)
				continue;

			if (strcmp(key, "Policy") == 0)
				policy = queue_attr_string(&v, key);
			else if (strcmp(key, "KmsMasterKeyId") == 0)
				kms_key = queue_attr_string(&v, key);
			else if (strcmp(key, "SqsManagedSseEnabled") == 0)
				sse = queue_attr_bool(&v, key);
			else if (strcmp(key, "RedrivePolicy") == 0)
				queue_parse_redrive_policy(&v, out);
			else if (strcmp(key, "RedriveAllowPolicy") == 0)
				queue_parse_redrive_allow_policy(&v, out);
			else if (strcmp(key, "FifoQueue") == 0)
				fifo_given = queue_attr_bool(&v, key);
			else if (is_fifo_name && strcmp(key, "ContentBasedDeduplication") == 0)
				out->content_dedup = strcmp(queue_attr_bool(&v, key), "true") == 0;
			else if (is_fifo_name && strcmp(key, "DeduplicationScope") == 0)
				out->dedup_per_group = queue_attr_choice(&v, key, "messageGroup", "queue");
			else if (is_fifo_name && strcmp(key, "FifoThroughputLimit") == 0)
				out->throughput_per_group = queue_attr_choice(&v, key, "perMessageGroupId",
															   "perQueue");
			else
			{
				for (j = 0; queue_fifo_only_attrs[j]; j++)
					if (strcmp(key, queue_fifo_only_attrs[j]) == 0)
						ereport(ERROR,
								(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_NAME),
								 errmsg("attribute %s is only valid for FIFO queues", key),
								 errdetail_internal("AWS error code: InvalidAttributeName"),
								 strcmp(key, "DeduplicationScope") == 0 ?
								 errhint("You can specify the DeduplicationScope only when FifoQueue is set to true.") : 0));
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_NAME),
						 errmsg("unrecognized queue attribute: \"%s\"", key),
						 errdetail_internal("AWS error code: InvalidAttributeName")));
			}
		}
	}

	/* only FIFO names are FIFO queues, and a FIFO name must say so */
	if (fifo_given != NULL && strcmp(fifo_given, "true") == 0 && !is_fifo_name)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("a FIFO queue's name must end with \".fifo\""),
				 errdetail_internal("AWS error code: InvalidParameterValue"),
				 errhint("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")));
	if (is_fifo_name && (fifo_given == NULL || strcmp(fifo_given, "true") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("a queue whose name ends with \".fifo\" must be created with FifoQueue set to true"),
				 errdetail_internal("AWS error code: InvalidParameterValue"),
				 errhint("Only FIFO queues may have names ending in \".fifo\".")));
	out->fifo = is_fifo_name;
	if (out->throughput_per_group && !out->dedup_per_group)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_VALUE),
				 errmsg("FifoThroughputLimit perMessageGroupId requires DeduplicationScope messageGroup"),
				 errdetail_internal("AWS error code: InvalidAttributeValue")));

	if (kms_key != NULL && kms_key[0] == '\0')
		kms_key = NULL;
	if (policy != NULL && policy[0] == '\0')
		policy = NULL;
	if (kms_key != NULL && sse != NULL && strcmp(sse, "true") == 0)
	{
		/* setting a KMS key on a queue that used SSE-SQS switches to KMS */
		if (for_set)
			sse = NULL;
		else
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_VALUE),
					 errmsg("SqsManagedSseEnabled and KmsMasterKeyId cannot both be set"),
					 errdetail_internal("AWS error code: InvalidAttributeValue")));
	}

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < 5; i++)
		appendStringInfo(&buf, "%s\"%s\": \"%d\"", i > 0 ? ", " : "",
						 queue_int_attrs[i].name, out->ints[i]);
	if (kms_key != NULL)
	{
		appendStringInfoString(&buf, ", \"KmsMasterKeyId\": ");
		escape_json(&buf, kms_key);
		appendStringInfo(&buf, ", \"KmsDataKeyReusePeriodSeconds\": \"%d\"", out->ints[5]);
	}
	else if (have_kms_reuse)
		appendStringInfo(&buf, ", \"KmsDataKeyReusePeriodSeconds\": \"%d\"", out->ints[5]);
	appendStringInfo(&buf, ", \"SqsManagedSseEnabled\": \"%s\"",
					 sse ? sse : (kms_key ? "false" : "true"));
	if (out->ints[6] != 0)
		appendStringInfo(&buf, ", \"ExtendedMaximumMessageSize\": \"%d\"", out->ints[6]);
	if (out->fifo)
		appendStringInfo(&buf, ", \"FifoQueue\": \"true\", \"ContentBasedDeduplication\": \"%s\","
						 " \"DeduplicationScope\": \"%s\", \"FifoThroughputLimit\": \"%s\"",
						 out->content_dedup ? "true" : "false",
						 out->dedup_per_group ? "messageGroup" : "queue",
						 out->throughput_per_group ? "perMessageGroupId" : "perQueue");
	if (policy != NULL)
	{
		appendStringInfoString(&buf, ", \"Policy\": ");
		escape_json(&buf, policy);
	}
	if (out->dlq_name != NULL)
	{
		StringInfoData rp;

		initStringInfo(&rp);
		appendStringInfoString(&rp, "{\"deadLetterTargetArn\":");
		escape_json(&rp, msgq_queue_arn(out->dlq_name));
		appendStringInfo(&rp, ",\"maxReceiveCount\":%d}", out->max_receive_count);
		appendStringInfoString(&buf, ", \"RedrivePolicy\": ");
		escape_json(&buf, rp.data);
	}
	if (out->redrive_permission != NULL)
	{
		StringInfoData rp;

		initStringInfo(&rp);
		appendStringInfo(&rp, "{\"redrivePermission\":\"%s\"", out->redrive_permission);
		if (out->nsources > 0)
		{
			appendStringInfoString(&rp, ",\"sourceQueueArns\":[");
			for (i = 0; i < out->nsources; i++)
			{
				if (i > 0)
					appendStringInfoChar(&rp, ',');
				escape_json(&rp, msgq_queue_arn(out->sources[i]));
			}
			appendStringInfoChar(&rp, ']');
		}
		appendStringInfoChar(&rp, '}');
		appendStringInfoString(&buf, ", \"RedriveAllowPolicy\": ");
		escape_json(&buf, rp.data);
	}
	appendStringInfoChar(&buf, '}');

	out->normalized = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*
 * Check a RedrivePolicy against its target: the dead-letter queue must
 * exist, be another queue of the same type, let the caller send to it, and
 * allow this queue as a source by its RedriveAllowPolicy.  Caller is in a
 * msgq call (SPI, extension owner).
 */
void
msgq_queue_check_dead_letter_target(const char *self, MsgqQueueAttrs *a, Oid caller)
{
	MsgqQueue	dlq;
	int			i;
	bool		allowed;

	if (a->dlq_name == NULL)
		return;
	if (strcmp(a->dlq_name, self) == 0)
		queue_policy_invalid("RedrivePolicy", "A queue cannot be its own dead-letter queue.");
	if (!msgq_queue_lookup(a->dlq_name, &dlq))
		queue_policy_invalid("RedrivePolicy", "Dead letter target does not exist.");
	if (dlq.fifo != a->fifo)
		queue_policy_invalid("RedrivePolicy",
							 a->fifo ?
							 "The dead-letter queue of a FIFO queue must also be a FIFO queue." :
							 "The dead-letter queue of a standard queue must also be a standard queue.");
	msgq_check_queue_action(&dlq, caller, MSGQ_ACT_SEND, "SendMessage");

	allowed = (dlq.redrive_permission == NULL ||
			   strcmp(dlq.redrive_permission, "allowAll") == 0);
	if (dlq.redrive_permission != NULL &&
		strcmp(dlq.redrive_permission, "byQueue") == 0)
	{
		for (i = 0; i < dlq.nsources; i++)
			if (strcmp(dlq.sources[i], self) == 0)
				allowed = true;
	}
	if (!allowed)
		queue_policy_invalid("RedrivePolicy",
							 psprintf("Queue %s does not allow this queue as a dead-letter source (RedriveAllowPolicy).",
									  dlq.queue_name));
}

/* The first attribute whose value differs between two attribute sets. */
static char *
queue_first_difference(Jsonb *a, Jsonb *b)
{
	Jsonb	   *sides[2] = {a, b};
	int			s;

	for (s = 0; s < 2; s++)
	{
		JsonbIterator *it = JsonbIteratorInit(&sides[s]->root);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			JsonbValue	key;
			JsonbValue *other;
			JsonbValue	val;

			if (tok != WJB_KEY)
				continue;
			key = v;
			tok = JsonbIteratorNext(&it, &val, true);
			other = findJsonbValueFromContainer(&sides[1 - s]->root, JB_FOBJECT, &key);
			if (other == NULL || other->type != jbvString || val.type != jbvString ||
				other->val.string.len != val.val.string.len ||
				memcmp(other->val.string.val, val.val.string.val, val.val.string.len) != 0)
				return pnstrdup(key.val.string.val, key.val.string.len);
		}
	}
	return NULL;
}

char *
msgq_queue_url(const char *name)
{
	return psprintf("msgq://%s/%s", get_database_name(MyDatabaseId), name);
}

/*
 * msgq.create_queue(queue_name text, attributes jsonb DEFAULT '{}')
 * returns text
 *
 * Create a standard queue and return its URL.  Creating a queue that
 * exists with the same attributes returns its URL; with a different value
 * for any attribute it fails with QueueNameExists.
 */
Datum
msgq_create_queue(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	Jsonb	   *given = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	bool		is_fifo;
	MsgqQueueAttrs attrs;
	MsgqCall	call;
	MsgqQueue	existing;
	bool		inserted = false;
	char	   *url;

	msgq_check_preloaded();
	msgq_check_queue_name(name, &is_fifo);
	msgq_queue_build_attributes(given, is_fifo, false, &attrs);

	msgq_call_enter(&call);

	/*
	 * Insert unless the name exists.  ON CONFLICT waits for a concurrent
	 * creator of the same name to finish, so exactly one of two racing
	 * creators inserts and the other compares against its attributes.
	 */
	if (!msgq_queue_lookup(name, &existing))
	{
		Oid			argtypes[15] = {TEXTOID, OIDOID, INT4OID, INT4OID, INT4OID,
			INT4OID, INT4OID, JSONBOID, TIMESTAMPTZOID, TEXTOID, INT4OID, TEXTOID,
		TEXTARRAYOID, INT4OID, BOOLOID};
		Datum		values[15];
		char		nulls[15];
		Oid			rtypes[2] = {TEXTOID, TIMESTAMPTZOID};
		Datum		rvalues[2];
		TimestampTz now = msgq_now();

		/* AWS keeps a deleted queue's name for 60 seconds */
		rvalues[0] = CStringGetTextDatum(name);
		rvalues[1] = TimestampTzGetDatum(now - 60 * USECS_PER_SEC);
		if (SPI_execute_plan(queue_plan(QP_DELETED_RECENTLY,
										"SELECT 1 FROM msgq.deleted_queue"
										" WHERE queue_name OPERATOR(pg_catalog.=) $1"
										"   AND deleted_at OPERATOR(pg_catalog.>) $2",
										2, rtypes),
							 rvalues, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look for recently deleted queues");
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_QUEUE_DELETED_RECENTLY),
					 errmsg("queue \"%s\" was deleted less than 60 seconds ago", name),
					 errdetail_internal("AWS error code: QueueDeletedRecently"),
					 errhint("Wait 60 seconds after deleting a queue before creating another queue with the same name.")));

		msgq_queue_check_dead_letter_target(name, &attrs, call.caller);

		memset(nulls, ' ', sizeof(nulls));
		values[0] = CStringGetTextDatum(name);
		values[1] = ObjectIdGetDatum(call.caller);
		values[2] = Int32GetDatum(attrs.ints[0]);
		values[3] = Int32GetDatum(attrs.ints[1]);
		values[4] = Int32GetDatum(attrs.ints[2]);
		values[5] = Int32GetDatum(attrs.ints[3]);
		values[6] = Int32GetDatum(attrs.ints[4]);
		values[7] = JsonbPGetDatum(attrs.normalized);
		values[8] = TimestampTzGetDatum(now);
		msgq_queue_redrive_datums(&attrs, values + 9, nulls + 9);
		values[13] = Int32GetDatum(attrs.ints[6]);
		values[14] = BoolGetDatum(attrs.fifo);
		if (SPI_execute_plan(queue_plan(QP_INSERT_QUEUE,
										"INSERT INTO msgq.queue (queue_id, queue_name, owner,"
										" visibility_timeout, message_retention_period, delay_seconds,"
										" receive_wait_time_seconds, maximum_message_size, attributes,"
										" created_at, last_modified_at, dead_letter_queue,"
										" max_receive_count, redrive_permission, redrive_sources,"
										" extended_maximum_message_size, fifo)"
										" VALUES (pg_catalog.nextval('msgq.queue_id_seq'), $1,"
										" $2::pg_catalog.regrole, $3, $4, $5, $6, $7, $8, $9, $9,"
										" $10, $11, $12, $13, $14, $15)"
										" ON CONFLICT (queue_name) DO NOTHING",
										15, argtypes),
							 values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert queue");
		inserted = (SPI_processed == 1);
		if (inserted)
			msgq_queue_cache_invalidate();
		if (!inserted && !msgq_queue_lookup(name, &existing))
			elog(ERROR, "queue \"%s\" vanished during creation", name);
	}

	if (!inserted)
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(existing.queue_id)};
		bool		isnull;
		Jsonb	   *old;
		char	   *diff;

		if (SPI_execute_plan(queue_plan(QP_QUEUE_ATTRS,
										"SELECT attributes FROM msgq.queue"
										" WHERE queue_id OPERATOR(pg_catalog.=) $1",
										1, argtypes),
							 values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "queue attributes lookup failed");
		old = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
		/* do not tell a role with no right on the queue anything about it */
		msgq_check_queue_action(&existing, call.caller, MSGQ_ACT_GET_ATTRS,
								"GetQueueUrl");
		diff = queue_first_difference(attrs.normalized, old);
		if (diff != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_QUEUE_NAME_EXISTS),
					 errmsg("queue \"%s\" already exists with a different value for attribute %s",
							name, diff),
					 errdetail_internal("AWS error code: QueueNameExists")));
	}

	msgq_call_leave(&call);
	url = msgq_queue_url(name);
	PG_RETURN_TEXT_P(cstring_to_text(url));
}

/*
 * The redrive columns of msgq.queue for attrs: dead_letter_queue,
 * max_receive_count, redrive_permission, redrive_sources.
 */
void
msgq_queue_redrive_datums(MsgqQueueAttrs *attrs, Datum *values, char *nulls)
{
	nulls[0] = nulls[1] = nulls[2] = nulls[3] = 'n';
	if (attrs->dlq_name != NULL)
	{
		values[0] = CStringGetTextDatum(attrs->dlq_name);
		values[1] = Int32GetDatum(attrs->max_receive_count);
		nulls[0] = nulls[1] = ' ';
	}
	if (attrs->redrive_permission != NULL)
	{
		values[2] = CStringGetTextDatum(attrs->redrive_permission);
		nulls[2] = ' ';
		if (attrs->nsources > 0)
		{
			Datum		elems[MSGQ_MAX_REDRIVE_SOURCES];
			int			i;

			for (i = 0; i < attrs->nsources; i++)
				elems[i] = CStringGetTextDatum(attrs->sources[i]);
			values[3] = PointerGetDatum(construct_array(elems, attrs->nsources,
														TEXTOID, -1, false, TYPALIGN_INT));
			nulls[3] = ' ';
		}
	}
}

/*
 * msgq.delete_queue(queue_name text)
 *
 * Delete a queue and every message in it.  Long polls on it end.
 */
Datum
msgq_delete_queue(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqQueue  *queue;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_DELETE_QUEUE, "DeleteQueue");

	values[0] = Int32GetDatum(queue->queue_id);
	if (SPI_execute_plan(queue_plan(QP_DELETE_MESSAGES,
									"DELETE FROM msgq.message WHERE queue_id OPERATOR(pg_catalog.=) $1",
									1, argtypes),
						 values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete messages");
	/* and the event source mappings that read it (esm.c) */
	if (SPI_execute_with_args("DELETE FROM msgq.event_source_mapping"
							  " WHERE source_kind OPERATOR(pg_catalog.=) 'queue'"
							  "   AND source_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete event source mappings");
	if (queue->fifo)
	{
		msgq_fifo_dedup_clear(queue->queue_id);
		msgq_fifo_cursor_forget(queue->queue_id);
	}
	if (SPI_execute_plan(queue_plan(QP_DELETE_QUEUE,
									"DELETE FROM msgq.queue WHERE queue_id OPERATOR(pg_catalog.=) $1",
									1, argtypes),
						 values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete queue");

	/*
	 * A send that looked the queue up before this commits may still insert
	 * a message for it; the maintenance cycle removes such strays while the
	 * queue is listed here.  Queue ids are never reused.
	 */
	if (SPI_execute_plan(queue_plan(QP_RECORD_DELETED,
									"INSERT INTO msgq.deleted_queue (queue_id, queue_name, deleted_at)"
									" VALUES ($1, $2, $3)",
									3, (Oid[]) {INT4OID, TEXTOID, TIMESTAMPTZOID}),
						 (Datum[]) {values[0], CStringGetTextDatum(queue->queue_name),
						 TimestampTzGetDatum(msgq_now())},
						 NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record deleted queue");
	msgq_queue_cache_invalidate();
	msgq_metrics_drop_queue(queue->queue_id);

	msgq_wakeup_at_commit(queue->queue_id, true);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.list_queues(queue_name_prefix text DEFAULT NULL) returns setof text
 *
 * The names of the queues the caller has any right on, in name order, at
 * most 1000 as in AWS.
 *
 * msgq.list_queues(queue_name_prefix text, exclusive_start_queue_name text)
 * is the same for paging: the names after exclusive_start_queue_name (in
 * byte order, as listed), all of them.
 */
Datum
msgq_list_queues(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *prefix = msgq_text_arg(fcinfo, 0);
	char	   *after = PG_NARGS() > 1 ? msgq_text_arg(fcinfo, 1) : NULL;
	int			limit = PG_NARGS() > 1 ? PG_INT32_MAX : 1000;
	MsgqCall	call;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	uint64		i;
	int			returned = 0;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);

	values[0] = prefix ? CStringGetTextDatum(prefix) : (Datum) 0;
	nulls[0] = prefix ? ' ' : 'n';
	values[1] = after ? CStringGetTextDatum(after) : (Datum) 0;
	nulls[1] = after ? ' ' : 'n';
	if (SPI_execute_plan(queue_plan(QP_LIST,
									"SELECT queue_name, owner::pg_catalog.oid, acl FROM msgq.queue"
									" WHERE ($1 IS NULL OR pg_catalog.starts_with(queue_name, $1))"
									"   AND ($2 IS NULL OR queue_name COLLATE \"C\" OPERATOR(pg_catalog.>) $2)"
									" ORDER BY queue_name COLLATE \"C\"",
									2, argtypes),
						 values, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list queues");

	for (i = 0; i < SPI_processed && returned < limit; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		acl_d;
		Oid			owner;
		Datum		out[1];
		bool		outnull[1] = {false};

		owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		acl_d = SPI_getbinval(tup, desc, 3, &isnull);
		if (!msgq_queue_action_allowed(call.caller, owner,
									   isnull ? NULL : DatumGetAclP(acl_d),
									   MSGQ_ACT_ALL))
			continue;
		out[0] = SPI_getbinval(tup, desc, 1, &isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
		returned++;
	}

	msgq_call_leave(&call);
	return (Datum) 0;
}

/*
 * msgq.get_msgq_queue_url(queue_name text) returns text
 */
Datum
msgq_get_queue_url(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqQueue  *queue;
	char	   *url;

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_GET_ATTRS, "GetQueueUrl");
	name = MemoryContextStrdup(call.cxt, queue->queue_name);
	msgq_call_leave(&call);
	url = msgq_queue_url(name);
	PG_RETURN_TEXT_P(cstring_to_text(url));
}

/* ------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------
 */

void
msgq_check_id_chars(const char *param, const char *value)
{
	const char *p;
	size_t		len = strlen(value);

	if (len < 1 || len > 128)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("value for parameter %s must have 1 to 128 characters", param),
				 errdetail_internal("AWS error code: InvalidParameterValue")));
	for (p = value; *p; p++)
	{
		if (!(*p >= 0x21 && *p <= 0x7e))
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
					 errmsg("value \"%s\" for parameter %s is invalid", value, param),
					 errdetail_internal("AWS error code: InvalidParameterValue"),
					 errhint("%s may contain letters, digits and punctuation.", param)));
	}
}

Datum
msgq_new_uuid(void)
{
	pg_uuid_t  *uuid = palloc(UUID_LEN);

	msgq_random_bytes(uuid, UUID_LEN);
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40;	/* version 4 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return UUIDPGetDatum(uuid);
}

/*
 * The largest message (body and attributes) a queue takes: its
 * MaximumMessageSize, or ExtendedMaximumMessageSize when that is larger.
 */
int32
msgq_queue_size_limit(MsgqQueue *queue)
{
	return Max(queue->maximum_message_size, queue->extended_maximum_message_size);
}

/*
 * Validate one message for queue: body, delay (the queue's when !has_delay),
 * group and deduplication ids, attributes and size.  Raises the AWS error
 * of the first problem.  Touches nothing but memory, so batch functions may
 * run it per entry under PG_TRY without a subtransaction.
 */
void
msgq_message_prepare(MsgqQueue *queue, text *body, bool has_delay, int32 delay,
					 Jsonb *attrs, const char *group_id, const char *dedup_id,
					 MsgqPreparedMessage *out)
{
	if (body == NULL || VARSIZE_ANY_EXHDR(body) == 0)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter MessageBody");

	if (queue->fifo && has_delay && delay != 0)
		msgq_invalid_value("DelaySeconds", delay,
							"The request include parameter that is not valid for this queue type.");
	if (!has_delay || queue->fifo)
		delay = queue->delay_seconds;
	else if (delay < 0 || delay > MSGQ_MAX_DELAY_SECONDS)
		msgq_invalid_value("DelaySeconds", delay, "Must be >= 0 and <= 900.");

	if (group_id != NULL)
		msgq_check_id_chars("MessageGroupId", group_id);
	else if (queue->fifo)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter MessageGroupId");
	out->dedup_id = NULL;
	if (dedup_id != NULL && !queue->fifo)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("parameter MessageDeduplicationId is valid only for FIFO queues"),
				 errdetail_internal("AWS error code: InvalidParameterValue")));
	if (dedup_id != NULL)
	{
		msgq_check_id_chars("MessageDeduplicationId", dedup_id);
		out->dedup_id = pstrdup(dedup_id);
	}
	else if (queue->fifo && !queue->content_dedup)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("the queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly"),
				 errdetail_internal("AWS error code: InvalidParameterValue")));

	msgq_check_body(VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
	out->size = VARSIZE_ANY_EXHDR(body) +
		msgq_check_message_attributes(attrs, &out->md5_attrs);
	if (out->size > msgq_queue_size_limit(queue))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("message must be shorter than %d bytes", msgq_queue_size_limit(queue)),
				 errdetail_internal("AWS error code: InvalidParameterValue. The message and its attributes take %d bytes.", out->size)));
	out->delay = delay;
	out->md5_body = msgq_md5_hex(VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
	out->message_id = msgq_new_uuid();
	if (queue->fifo && out->dedup_id == NULL)
		out->dedup_id = msgq_fifo_content_dedup_id(body);
}

/*
 * The outbox case: called before commit by a transaction that stayed open
 * longer than msgq.outbox_fixup_after since its first send.  Its messages
 * count their delay and retention from now, the commit, as messages that
 * become visible then should: sent_at moves to now and visible_at keeps its
 * delay.  A message already received in the same transaction keeps the
 * lease of that receive.  Runs SPI as the extension owner inside the committing
 * transaction.
 */
void
msgq_outbox_fixup(int32 *queue_ids, int64 *msg_seqs, int n)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nest;
	Datum	   *qd = palloc(sizeof(Datum) * n);
	Datum	   *sd = palloc(sizeof(Datum) * n);
	Oid			argtypes[3] = {INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			i;
	TimestampTz now;

	/* DROP EXTENSION in the same transaction took the messages with it */
	if (!OidIsValid(get_extension_oid(MSGQ_EXTENSION_NAME, true)))
		return;

	for (i = 0; i < n; i++)
	{
		qd[i] = Int32GetDatum(queue_ids[i]);
		sd[i] = Int64GetDatum(msg_seqs[i]);
	}
	values[0] = PointerGetDatum(construct_array(qd, n, INT4OID, 4, true, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(sd, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	now = msgq_now();
	values[2] = TimestampTzGetDatum(now);
	/* the delays of these sends count from now in the metrics too */
	msgq_metrics_sends_moved(now);

	msgq_switch_to_owner(&save_userid, &save_sec_context, &save_nest);
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(queue_plan(QP_OUTBOX_FIXUP,
									"UPDATE msgq.message m"
									"   SET visible_at = CASE WHEN m.first_received_at IS NULL"
									"                    THEN $3 OPERATOR(pg_catalog.+)"
									"                         (m.visible_at OPERATOR(pg_catalog.-) m.sent_at)"
									"                    ELSE m.visible_at END,"
									"       sent_at = $3"
									"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u(q, s)"
									" WHERE m.queue_id OPERATOR(pg_catalog.=) u.q"
									"   AND m.msg_seq OPERATOR(pg_catalog.=) u.s"
									"   AND m.sent_at OPERATOR(pg_catalog.<) $3",
									3, argtypes),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not move send times to the commit");
	SPI_finish();
	PopActiveSnapshot();
	msgq_restore_user(save_userid, save_sec_context, save_nest);
}

static TupleDesc send_message_desc = NULL;

/*
 * msgq.send_message(queue_name text, message_body text,
 *		delay_seconds int DEFAULT NULL, message_attributes jsonb DEFAULT NULL,
 *		message_group_id text DEFAULT NULL,
 *		message_deduplication_id text DEFAULT NULL,
 *		OUT message_id uuid, OUT md5_of_message_body text,
 *		OUT md5_of_message_attributes text, OUT sequence_number numeric)
 *
 * Send one message.  It exists if and only if the calling transaction
 * commits; long polls on the queue wake at that commit.
 */
Datum
msgq_send_message(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	text	   *body_t = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	text	   *mattrs_json = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	Jsonb	   *mattrs = NULL;
	char	   *group_id = msgq_text_arg(fcinfo, 4);
	char	   *dedup_id = msgq_text_arg(fcinfo, 5);
	MsgqCall	call;
	MsgqQueue  *queue;
	MsgqPreparedMessage prep;
	HeapTuple	tuple;
	int32		delay;
	char	   *md5_body;
	char	   *md5_attrs;
	TimestampTz now;
	TupleDesc	tupdesc;
	Datum		result[4];
	bool		rnulls[4] = {false, false, false, true};
	Datum		message_id;
	MsgqStoreMessage msg;
	int64		msg_seq = 0;
	bool		enqueue = true;

	tupdesc = msgq_result_desc(fcinfo, &send_message_desc);

	/*
	 * A send to a cached standard queue runs no SQL: it checks, heap-inserts
	 * (msgstore.c) and registers its wake-up.  FIFO sends and cache misses
	 * connect.
	 */
	msgq_call_enter_light(&call);
	queue = msgq_queue_get_light(&call, name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_SEND, "SendMessage");
	if (queue->fifo)
		msgq_call_need_sql(&call);

	/* json, not jsonb: two attributes of the same name must not become one */
	if (mattrs_json != NULL)
		mattrs = msgq_json_to_jsonb_unique(mattrs_json);
	msgq_message_prepare(queue, body_t, !PG_ARGISNULL(2),
						 PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2),
						 mattrs, group_id, dedup_id, &prep);
	delay = prep.delay;
	md5_attrs = prep.md5_attrs;

	md5_body = prep.md5_body;
	message_id = prep.message_id;
	now = msgq_now();

	msg.queue_id = queue->queue_id;
	msg.message_id = message_id;
	msg.body = body_t;
	msg.attributes = md5_attrs ? mattrs : NULL;
	msg.md5_body = md5_body;
	msg.md5_attrs = md5_attrs;
	msg.sender = GetUserNameFromId(call.caller, false);
	msg.group_id = group_id;
	msg.dedup_id = prep.dedup_id;
	msg.msg_seq = 0;
	msg.sent_at = now;
	msg.visible_at = now + (TimestampTz) delay * USECS_PER_SEC;
	if (queue->fifo)
	{
		/* the group's lock first: numbers then follow commits (fifo.c) */
		msgq_fifo_lock_group(queue->queue_id, group_id);
		msg.msg_seq = msgq_store_next_seq();
		enqueue = msgq_fifo_dedup(queue, group_id, prep.dedup_id, message_id,
								  msg.msg_seq, now, &message_id, &msg_seq);
		/* a duplicate returns the id and number of the send it repeats */
		if (enqueue)
			msg_seq = msg.msg_seq;
	}
	if (enqueue)
	{
		msgq_store_insert(&msg, 1, &msg_seq);
		msgq_remember_send(queue->queue_id, msg_seq, now);
		msgq_metrics_sent(queue->queue_id, 1, now, now + (TimestampTz) delay * USECS_PER_SEC);
		msgq_wakeup_at_commit(queue->queue_id, false);
	}

	/* build the result in the caller's context before SPI's is freed */
	MemoryContextSwitchTo(call.cxt);
	result[0] = message_id;
	result[1] = CStringGetTextDatum(md5_body);
	result[2] = md5_attrs ? CStringGetTextDatum(md5_attrs) : (Datum) 0;
	rnulls[2] = (md5_attrs == NULL);
	result[3] = queue->fifo ? DirectFunctionCall1(int8_numeric, Int64GetDatum(msg_seq)) : (Datum) 0;
	rnulls[3] = !queue->fifo;
	tupdesc = BlessTupleDesc(tupdesc);
	tuple = heap_form_tuple(tupdesc, result, rnulls);
	msgq_call_leave(&call);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

/*
 * Enqueue one message validated by its caller (a topic's delivery, in the
 * publisher's transaction).  msg->visible_at and the rest are set; a FIFO
 * queue locks the message's group, numbers it and checks its deduplication
 * id.  Returns false, enqueueing nothing, for a duplicate.
 */
bool
msgq_queue_deliver(MsgqQueue *queue, MsgqStoreMessage *msg)
{
	int64		seq = 0;
	Datum		orig_id;
	int64		orig_seq;

	msg->queue_id = queue->queue_id;
	msg->msg_seq = 0;
	if (queue->fifo)
	{
		msgq_fifo_lock_group(queue->queue_id, msg->group_id);
		msg->msg_seq = msgq_store_next_seq();
		if (!msgq_fifo_dedup(queue, msg->group_id, msg->dedup_id, msg->message_id,
							 msg->msg_seq, msg->sent_at, &orig_id, &orig_seq))
			return false;
	}
	msgq_store_insert(msg, 1, &seq);
	msgq_remember_send(queue->queue_id, seq, msg->sent_at);
	msgq_metrics_sent(queue->queue_id, 1, msg->sent_at, msg->visible_at);
	msgq_wakeup_at_commit(queue->queue_id, false);
	return true;
}

/* Add one string member to a jsonb object being built. */
static void
queue_jsonb_member(JsonbParseState **state, const char *key, char *val, int len)
{
	JsonbValue	k;
	JsonbValue	v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v.type = jbvString;
	v.val.string.val = val;
	v.val.string.len = len;
	pushJsonbValue(state, WJB_KEY, &k);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* Milliseconds since the Unix epoch, as AWS writes timestamps. */
static void
queue_jsonb_epoch_ms(JsonbParseState **state, const char *key, TimestampTz t)
{
	char	   *buf = palloc(32);
	int			len;

	len = snprintf(buf, 32, "%lld", (long long)
				   ((t / 1000) +
					((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000LL)));
	queue_jsonb_member(state, key, buf, len);
}

/*
 * Build the "attributes" jsonb of a received message, as JsonbValues (no
 * text round trip: this runs for every message received).
 */
static Datum
queue_system_attributes(HeapTuple tup, TupleDesc desc, int32 receive_count,
						TimestampTz first_received, Datum *sel, int nsel,
						bool fifo)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	bool		isnull;
	Datum		d;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (msgq_name_selected("SenderId", sel, nsel))
	{
		text	   *t = DatumGetTextPP(SPI_getbinval(tup, desc, 6, &isnull));

		queue_jsonb_member(&state, "SenderId", VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	if (msgq_name_selected("SentTimestamp", sel, nsel))
		queue_jsonb_epoch_ms(&state, "SentTimestamp",
							 DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &isnull)));
	if (msgq_name_selected("ApproximateReceiveCount", sel, nsel))
	{
		char	   *buf = palloc(16);
		int			len = snprintf(buf, 16, "%d", receive_count);

		queue_jsonb_member(&state, "ApproximateReceiveCount", buf, len);
	}
	if (msgq_name_selected("ApproximateFirstReceiveTimestamp", sel, nsel))
		queue_jsonb_epoch_ms(&state, "ApproximateFirstReceiveTimestamp", first_received);
	d = SPI_getbinval(tup, desc, 10, &isnull);
	if (!isnull && msgq_name_selected("MessageGroupId", sel, nsel))
	{
		text	   *t = DatumGetTextPP(d);

		queue_jsonb_member(&state, "MessageGroupId", VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	if (fifo)
	{
		/* FIFO scans have the deduplication id as column 15 */
		d = SPI_getbinval(tup, desc, 15, &isnull);
		if (!isnull && msgq_name_selected("MessageDeduplicationId", sel, nsel))
		{
			text	   *t = DatumGetTextPP(d);

			queue_jsonb_member(&state, "MessageDeduplicationId", VARDATA_ANY(t),
							   VARSIZE_ANY_EXHDR(t));
		}
		if (msgq_name_selected("SequenceNumber", sel, nsel))
		{
			char	   *buf = psprintf(INT64_FORMAT,
									   DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)));

			queue_jsonb_member(&state, "SequenceNumber", buf, strlen(buf));
		}
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/* Select the requested message attributes; NULL when none is left. */
static Datum
queue_select_message_attributes(Jsonb *stored, Datum *sel, int nsel, bool *isnull)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			kept = 0;

	*isnull = true;
	if (stored == NULL || nsel == 0)
		return (Datum) 0;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&stored->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		JsonbValue	key;

		if (tok != WJB_KEY)
			continue;
		key = v;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (!msgq_name_selected(name, sel, nsel))
			continue;
		pushJsonbValue(&state, WJB_KEY, &key);
		pushJsonbValue(&state, WJB_VALUE, &v);
		kept++;
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	if (kept == 0)
		return (Datum) 0;
	*isnull = false;
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/*
 * Move one message whose receive count reached maxReceiveCount to the
 * dead-letter queue, with receive_count as its count, in the receiver's
 * transaction.  Returns 0 when another transaction moved or deleted it.
 */
static uint64
queue_move_one_to_dead_letter(MsgqQueue *queue, int32 dlq_id, int64 msg_seq,
							  TimestampTz now, int32 receive_count,
							  TimestampTz first_received)
{
	Oid			argtypes[7] = {INT4OID, INT8OID, INT4OID, TIMESTAMPTZOID, INT4OID,
	TIMESTAMPTZOID, BOOLOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = Int64GetDatum(msg_seq);
	values[2] = Int32GetDatum(dlq_id);
	values[3] = TimestampTzGetDatum(now);
	values[4] = Int32GetDatum(receive_count);
	values[5] = TimestampTzGetDatum(first_received);
	nulls[5] = first_received == 0 ? 'n' : ' ';
	values[6] = BoolGetDatum(queue->fifo);
	/* a transaction id before the new msg_seq (head.c) */
	(void) GetCurrentTransactionId();
	if (msgq_execute_keyed(queue_plan(QP_MOVE_ONE_DLQ,
									"WITH c AS ("
									"  SELECT seg FROM msgq.message"
									"   WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"     AND msg_seq OPERATOR(pg_catalog.=) $2"
									"   FOR UPDATE SKIP LOCKED),"
									" d AS ("
									"  DELETE FROM msgq.message m USING c"
									"   WHERE m.queue_id OPERATOR(pg_catalog.=) $1"
									"     AND m.msg_seq OPERATOR(pg_catalog.=) $2"
									"     AND m.seg OPERATOR(pg_catalog.=) c.seg"
									"  RETURNING m.*)"
									" INSERT INTO msgq.message (queue_id, msg_seq, message_id, body,"
									"   message_attributes, md5_of_body, md5_of_message_attributes,"
									"   sender, message_group_id, message_deduplication_id, sent_at,"
									"   visible_at, receive_count, first_received_at, received_at,"
									"   source_queue_id)"
									" SELECT $3, pg_catalog.nextval('msgq.message_seq'), message_id, body,"
									"   message_attributes, md5_of_body, md5_of_message_attributes,"
									"   sender, message_group_id,"
									"   CASE WHEN $7 THEN message_id::pg_catalog.text"
									"        ELSE message_deduplication_id END,"
									"   CASE WHEN $7 THEN $4 ELSE sent_at END,"
									"   $4, $5, COALESCE(first_received_at, $6), received_at, $1"
									"   FROM d",
									7, argtypes),
						 values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not move a message to the dead-letter queue");
	if (SPI_processed > 0)
	{
		msgq_wakeup_at_commit(dlq_id, false);
		msgq_wakeup_at_abort(queue->queue_id);
	}
	return SPI_processed;
}

/*
 * The durable path of a receive, for a message that found the lease table
 * full: lock the row, make sure no lease appeared meanwhile, and write the
 * lease into the row (visible_at, receipt_nonce, receive_count), as the
 * first design did.  Returns false when the message is taken.
 */
static bool
queue_claim_durable(MsgqQueue *queue, int64 msg_seq, const pg_uuid_t *message_id,
					TimestampTz now, TimestampTz deadline, int64 nonce,
					int32 *count, TimestampTz *first)
{
	Oid			argtypes[6] = {INT4OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	INT8OID, INT4OID};
	Datum		values[6];
	TimestampTz lease_deadline;
	TimestampTz lease_received;
	int32		extra = 0;
	bool		isnull;

	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = Int64GetDatum(msg_seq);
	values[2] = TimestampTzGetDatum(now);
	if (msgq_execute_keyed(queue_plan(QP_DURABLE_LOCK,
									"SELECT 1 FROM msgq.message"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"   AND msg_seq OPERATOR(pg_catalog.=) $2"
									"   AND visible_at OPERATOR(pg_catalog.<=) $3"
									" FOR UPDATE SKIP LOCKED",
									3, argtypes),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock a message");
	if (SPI_processed == 0)
		return false;
	/* locked first, leases second: a claimer checks the row after its claim */
	if (msgq_lease_check(queue->queue_id, msg_seq, 0, &lease_deadline,
						 &lease_received) != MSGQ_LEASE_NONE &&
		lease_deadline > now)
		return false;

	if (msgq_aborted_receives_pending())
		extra = msgq_take_aborted_receives(message_id);
	/* remembered first, so that a failure below still gives the count back */
	msgq_remember_receive(queue->queue_id, msg_seq, message_id, extra);

	values[3] = TimestampTzGetDatum(deadline);
	values[4] = Int64GetDatum(nonce);
	values[5] = Int32GetDatum(1 + extra);
	if (msgq_execute_keyed(queue_plan(QP_DURABLE_CLAIM,
									"UPDATE msgq.message"
									"   SET visible_at = $4,"
									"       receive_count = receive_count OPERATOR(pg_catalog.+) $6,"
									"       first_received_at = COALESCE(first_received_at, $3),"
									"       received_at = $3,"
									"       receipt_nonce = $5"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"   AND msg_seq OPERATOR(pg_catalog.=) $2"
									" RETURNING receive_count, first_received_at",
									6, argtypes),
						 values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not receive a message");
	*count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*first = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return true;
}

/*
 * Add n receives to a row's receive_count in this transaction (inherited
 * messages, rolled-back receives of the durable path); the row then holds
 * at least total, the receive's count.
 */
static void
queue_add_count(int32 queue_id, int64 msg_seq, int32 n, int32 total,
				TimestampTz now)
{
	Oid			at[5] = {INT4OID, INT8OID, INT4OID, TIMESTAMPTZOID, INT4OID};
	Datum		av[5];

	av[0] = Int32GetDatum(queue_id);
	av[1] = Int64GetDatum(msg_seq);
	av[2] = Int32GetDatum(n);
	av[3] = TimestampTzGetDatum(now);
	av[4] = Int32GetDatum(total);
	if (msgq_execute_keyed(queue_plan(QP_ADD_COUNT,
									"UPDATE msgq.message"
									"   SET receive_count = GREATEST(receive_count OPERATOR(pg_catalog.+) $3, $5),"
									"       first_received_at = COALESCE(first_received_at, $4)"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"   AND msg_seq OPERATOR(pg_catalog.=) $2",
									5, at),
						 av, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update receive count");
}

/*
 * Dead-letter queue: a message whose receive count has reached
 * maxReceiveCount moves to the dead-letter queue (of the queue's own type)
 * on the receive that would exceed it, instead of being returned.
 */
static void
queue_dead_letter_target(MsgqQueue *queue, int32 *dlq_id, int32 *max_count)
{
	MsgqQueue	dlq;

	*dlq_id = 0;
	*max_count = 0;
	if (queue->dlq_name != NULL && msgq_queue_lookup(queue->dlq_name, &dlq) &&
		dlq.fifo == queue->fifo)
	{
		*dlq_id = dlq.queue_id;
		*max_count = queue->max_receive_count;
	}
}

/*
 * After a claim: an inherited message (sent before the lease table began)
 * and receives of the durable path that rolled back add to the row's
 * receive_count in this transaction.  Returns the receive's count.
 */
static int32
queue_count_durably(MsgqQueue *queue, int64 msg_seq, const pg_uuid_t *message_id,
					bool inherited, int32 count, TimestampTz now, bool *wrote)
{
	int32		extra = 0;

	if (msgq_aborted_receives_pending())
		extra = msgq_take_aborted_receives(message_id);
	if (inherited || extra > 0)
	{
		count += extra;
		queue_add_count(queue->queue_id, msg_seq, (inherited ? 1 : 0) + extra,
						count, now);
		msgq_lease_claim_written();
		*wrote = true;
	}
	return count;
}

/* Put one received message into the result. */
static void
queue_emit(MsgqQueue *queue, HeapTuple tup, TupleDesc desc, int64 msg_seq,
		   int64 nonce, int32 count, TimestampTz first,
		   Datum *attr_sel, int nattr_sel, Datum *sys_sel, int nsys_sel,
		   ReturnSetInfo *rsinfo)
{
	Datum		out[6];
	bool		outnull[6] = {false, false, false, false, false, false};
	bool		isnull;
	Datum		d;

	out[0] = SPI_getbinval(tup, desc, 2, &isnull);
	out[1] = CStringGetTextDatum(msgq_handle_encode(queue->queue_id, msg_seq, nonce));
	out[2] = SPI_getbinval(tup, desc, 3, &isnull);
	out[3] = SPI_getbinval(tup, desc, 4, &isnull);
	out[4] = queue_system_attributes(tup, desc, count, first, sys_sel, nsys_sel,
									 queue->fifo);
	d = SPI_getbinval(tup, desc, 5, &isnull);
	out[5] = queue_select_message_attributes(isnull ? NULL : DatumGetJsonbP(d),
											 attr_sel, nattr_sel, &outnull[5]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
}

/*
 * Claim up to max visible messages of a queue and put one output row per
 * message into the tuplestore, in delivery order.  Returns the number
 * returned.
 *
 * A cursor reads the queue's visible rows in order; each is claimed in the
 * lease table (lease.c), which writes nothing durable.  A message held by
 * another receive is skipped (its deadline goes to *held_next, for a
 * waiter's next wake-up), one at maxReceiveCount moves to the dead-letter
 * queue, and one that finds the table full takes the durable path.
 */
static int
queue_receive_once(MsgqQueue *queue, int max, int32 visibility,
				   Datum *attr_sel, int nattr_sel,
				   Datum *sys_sel, int nsys_sel,
				   ReturnSetInfo *rsinfo, bool *wrote, TimestampTz *held_next)
{
	Oid			argtypes[4] = {INT4OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[4];
	int64		last_seq;
	int64		first_seq = PG_INT64_MAX;
	MsgqHeadState head;
	bool		last_null;
	int			page = 0;
	int64		nonce = msgq_lease_nonce();
	int64		durable_nonce = 0;
	TimestampTz now = msgq_now();
	TimestampTz deadline = now + (TimestampTz) visibility * USECS_PER_SEC;
	TimestampTz cutoff = now - (TimestampTz) queue->retention_period * USECS_PER_SEC;
	TimestampTz epoch = msgq_lease_epoch();
	int32		dlq_id = 0;
	int32		max_count = 0;
	int			emitted = 0;
	int64		bytes = 0;
	int64		room;
	bool		done = false;

	queue_dead_letter_target(queue, &dlq_id, &max_count);

	room = msgq_metrics_inflight_room(queue->queue_id);
	if (room < max)
		max = (int) Max(room, 0);
	if (max == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_OVER_LIMIT),
				 errmsg("queue \"%s\" has too many messages in flight", queue->queue_name),
				 errdetail_internal("AWS error code: OverLimit"),
				 errhint("Delete received messages or let their visibility timeout pass; the limit is msgq.max_inflight_messages (%d).",
						 msgq_max_inflight_messages)));

	values[0] = Int32GetDatum(queue->queue_id);
	values[2] = TimestampTzGetDatum(now);
	values[3] = TimestampTzGetDatum(cutoff);
	last_seq = msgq_head_get(queue->queue_id, &head) - 1;

	/*
	 * The visible rows are read in pages, in delivery order, each page
	 * after the last row of the one before: a first page of 16 rows (room
	 * for 10 and a few in flight), then one of 64 (other receivers' messages
	 * in flight: with 4 receivers of 10, the second page almost always ends
	 * the receive, where one of 256 read three times the rows it needed),
	 * then pages of 256.  The pages' LIMITs are
	 * constants, so the planner knows how few rows it needs.  The plans are
	 * generic (planned once per backend, by its first check, so that no
	 * wake-up plans) and made with enable_sort off: the only plan left is a
	 * merge of the partitions' primary keys in delivery order.  A generic
	 * plan cannot see the queue id, and with a partition's statistics out
	 * of date it otherwise chose to sort all of a 200,000-message queue per
	 * receive.
	 */
	while (!done)
	{
		SPITupleTable *tuptable;
		uint64		n,
					i;
		int			page_rows = (page == 0) ? 16 : (page == 1) ? 64 : 256;
		int			rc;

		values[1] = Int64GetDatum(last_seq);
		rc = msgq_execute_keyed(page == 0 ?
							  msgq_plan_opts(&queue_scan_plans[0], QUEUE_SCAN_SQL("16", ""),
											   4, argtypes, CURSOR_OPT_GENERIC_PLAN) :
							  page == 1 ?
							  msgq_plan_opts(&queue_scan_plans[1],
											   QUEUE_SCAN_SQL("64", QUEUE_SCAN_VISIBLE),
											   4, argtypes, CURSOR_OPT_GENERIC_PLAN) :
							  msgq_plan_opts(&queue_scan_plans[2],
											   QUEUE_SCAN_SQL("256", QUEUE_SCAN_VISIBLE),
											   4, argtypes, CURSOR_OPT_GENERIC_PLAN),
							  values, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not read messages");
		n = SPI_processed;
		tuptable = SPI_tuptable;
		if (page == 0 && n > 0)
			first_seq = DatumGetInt64(SPI_getbinval(tuptable->vals[0], tuptable->tupdesc,
													1, &last_null));
		page++;
		if (n == 0)
			break;
		for (i = 0; i < n && !done; i++)
		{
			HeapTuple	tup = tuptable->vals[i];
			TupleDesc	desc = tuptable->tupdesc;
			bool		isnull;
			bool		first_null;
			int64		msg_seq = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			pg_uuid_t  *message_id = DatumGetUUIDP(SPI_getbinval(tup, desc, 2, &isnull));
			int32		row_count = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
			Datum		row_first = SPI_getbinval(tup, desc, 9, &first_null);
			Oid			relid = DatumGetObjectId(SPI_getbinval(tup, desc, 11, &isnull));
			ItemPointer tid = (ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 12, &isnull));
			int32		len = DatumGetInt32(SPI_getbinval(tup, desc, 13, &isnull));
			bool		inherited = DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &isnull)) < epoch;
			int32		count;
			TimestampTz first = 0;
			TimestampTz held_until = 0;
			int64		used_nonce = nonce;

			/* delayed, hidden in the row (the durable path) or expired */
			if (DatumGetTimestampTz(SPI_getbinval(tup, desc, 14, &isnull)) > now ||
				DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &isnull)) <= cutoff)
				continue;

			/* msgq.max_receive_bytes caps a receive, which gets at least one */
			if (emitted > 0 && bytes + len > msgq_max_receive_bytes)
			{
				done = true;
				break;
			}

			switch (msgq_lease_claim(queue->queue_id, msg_seq, message_id, now,
									 deadline, nonce, row_count, first_null,
									 max_count, &count, &first, &held_until))
			{
				case MSGQ_CLAIM_HELD:
					if (*held_next == 0 || held_until < *held_next)
						*held_next = held_until;
					continue;
				case MSGQ_CLAIM_LIMIT:
					/* another transaction is moving or deleting it */
					if (!msgq_lease_row_free(relid, tid))
						continue;
					if (queue_move_one_to_dead_letter(queue, dlq_id, msg_seq, now,
													  count,
													  first_null ? first :
													  DatumGetTimestampTz(row_first)) > 0)
					{
						*wrote = true;
						msgq_lease_forget_at_commit(queue->queue_id, msg_seq);
						msgq_metrics_stored(queue->queue_id, -1);
						msgq_metrics_stored(dlq_id, 1);
					}
					continue;
				case MSGQ_CLAIM_FULL:
					if (durable_nonce == 0)
						durable_nonce = msgq_durable_nonce();
					if (!queue_claim_durable(queue, msg_seq, message_id, now,
											 deadline, durable_nonce, &count,
											 &first))
						continue;
					*wrote = true;
					used_nonce = durable_nonce;
					break;
				case MSGQ_CLAIM_OK:
					if (!msgq_lease_row_free(relid, tid))
					{
						msgq_lease_unclaim();
						continue;
					}
					if (!first_null)
						first = DatumGetTimestampTz(row_first);
					count = queue_count_durably(queue, msg_seq, message_id, inherited,
												count, now, wrote);
					break;
			}

			queue_emit(queue, tup, desc, msg_seq, used_nonce, count, first,
					   attr_sel, nattr_sel, sys_sel, nsys_sel, rsinfo);
			bytes += len;
			emitted++;
			if (emitted == max)
				done = true;
		}
		last_seq = DatumGetInt64(SPI_getbinval(tuptable->vals[n - 1], tuptable->tupdesc, 1, &last_null));
		if (n < (uint64) page_rows)
			done = true;
		SPI_freetuptable(tuptable);
	}

	/* first_seq is from the first page, read from the head */
	msgq_head_advance(queue->queue_id, &head, first_seq);
	if (emitted > 0)
		msgq_metrics_received(queue->queue_id, emitted, now, deadline);
	return emitted;
}

/*
 * A FIFO queue's receive (fifo.c has the rules).  The groups are visited in
 * name order through message_group_idx, starting after the group that the
 * queue's last receive took from and wrapping around (so receives go round
 * the groups), each group's messages in msg_seq order: all that can be taken
 * of one group first, then the next group's.  A group stops at the first of
 * its messages that cannot be taken (not visible, held by another receive,
 * being deleted or moved), so a receive never returns a message while an
 * earlier one of its group is still waiting.  A group with a message in
 * flight (msgq_fifo_group_blocked) is skipped after one probe of the index,
 * whatever its backlog: a receive's cost grows with the number of blocked
 * groups, never with the number of messages.
 */
static int
queue_receive_fifo_once(MsgqQueue *queue, int max, int32 visibility,
						Datum *attr_sel, int nattr_sel,
						Datum *sys_sel, int nsys_sel,
						ReturnSetInfo *rsinfo, bool *wrote, TimestampTz *held_next,
						MsgqFifoTaken *taken)
{
	Oid			argtypes[6] = {INT4OID, TEXTOID, TIMESTAMPTZOID, BOOLOID, TEXTOID, INT8OID};
	Datum		values[6];
	int64		nonce = msgq_lease_nonce();
	TimestampTz now = msgq_now();
	TimestampTz deadline = now + (TimestampTz) visibility * USECS_PER_SEC;
	TimestampTz cutoff = now - (TimestampTz) queue->retention_period * USECS_PER_SEC;
	TimestampTz epoch = msgq_lease_epoch();
	int32		dlq_id = 0;
	int32		max_count = 0;
	int			emitted = 0;
	int64		bytes = 0;
	int64		room;
	bool		done = false;
	char		start[MSGQ_MAX_ID_LEN + 1];
	char		after_group[MSGQ_MAX_ID_LEN + 1];
	char		last_taken[MSGQ_MAX_ID_LEN + 1] = "";
	int64		after_seq = PG_INT64_MAX;
	bool		wrapped;
	/* the group being read: a page may end inside it */
	char		group[MSGQ_MAX_ID_LEN + 1] = "";
	bool		blocked = false;
	bool		taking = false;

	queue_dead_letter_target(queue, &dlq_id, &max_count);

	/* AWS's FIFO in-flight limit returns no messages, and no error */
	room = msgq_metrics_inflight_room(queue->queue_id);
	if (room < max)
		max = (int) Max(room, 0);
	if (max == 0)
		return 0;

	msgq_fifo_cursor_get(queue->queue_id, start);
	strlcpy(after_group, start, sizeof(after_group));
	/* without a cursor, one pass over every group */
	wrapped = (start[0] == '\0');

	values[0] = Int32GetDatum(queue->queue_id);
	values[2] = TimestampTzGetDatum(cutoff);
	values[4] = CStringGetTextDatum(start);

	while (!done)
	{
		SPITupleTable *tuptable;
		TupleDesc	desc;
		uint64		n,
					i;
		int64		last_seq = 0;
		bool		isnull;

		values[1] = CStringGetTextDatum(after_group);
		values[3] = BoolGetDatum(wrapped && start[0] != '\0');
		values[5] = Int64GetDatum(after_seq);
		if (msgq_execute_keyed(msgq_plan_opts(&queue_fifo_scan_plan, QUEUE_FIFO_SCAN_SQL,
											  6, argtypes, CURSOR_OPT_GENERIC_PLAN),
							   values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read messages");
		n = SPI_processed;
		tuptable = SPI_tuptable;
		desc = tuptable->tupdesc;
		if (n == 0)
		{
			if (wrapped)
				break;
			/* past the last group: go round to the first ones, up to the start */
			wrapped = true;
			after_group[0] = '\0';
			after_seq = PG_INT64_MAX;
			group[0] = '\0';
			SPI_freetuptable(tuptable);
			continue;
		}

		for (i = 0; i < n && !done; i++)
		{
			HeapTuple	tup = tuptable->vals[i];
			char	   *g = TextDatumGetCString(SPI_getbinval(tup, desc, 10, &isnull));
			int64		msg_seq = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			pg_uuid_t  *message_id;
			int32		row_count;
			bool		first_null;
			Datum		row_first;
			Oid			relid;
			ItemPointer tid;
			int32		len;
			TimestampTz visible_at;
			int32		count;
			TimestampTz first = 0;
			TimestampTz held_until = 0;

			if (strcmp(g, group) != 0)
			{
				/* the next group */
				strlcpy(group, g, sizeof(group));
				taking = false;
				blocked = msgq_fifo_group_blocked(queue->queue_id, group, now, &held_until);
				/* a waiter checks again when the group's leases end */
				if (blocked && (*held_next == 0 || held_until < *held_next))
					*held_next = held_until;
			}
			last_seq = msg_seq;
			if (blocked)
				continue;

			message_id = DatumGetUUIDP(SPI_getbinval(tup, desc, 2, &isnull));
			row_count = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
			row_first = SPI_getbinval(tup, desc, 9, &first_null);
			relid = DatumGetObjectId(SPI_getbinval(tup, desc, 11, &isnull));
			tid = (ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 12, &isnull));
			len = DatumGetInt32(SPI_getbinval(tup, desc, 13, &isnull));
			visible_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 14, &isnull));

			if (emitted > 0 && bytes + len > msgq_max_receive_bytes)
			{
				done = true;
				break;
			}
			if (visible_at > now)
			{
				/* delayed, or held by the durable path: the group waits */
				blocked = true;
				if (*held_next == 0 || visible_at < *held_next)
					*held_next = visible_at;
				continue;
			}
			switch (msgq_lease_claim(queue->queue_id, msg_seq, message_id, now,
									 deadline, nonce, row_count, first_null,
									 max_count, &count, &first, &held_until))
			{
				case MSGQ_CLAIM_HELD:
					if (*held_next == 0 || held_until < *held_next)
						*held_next = held_until;
					blocked = true;
					continue;
				case MSGQ_CLAIM_FULL:
					/* no durable path for FIFO: the group waits for room */
					blocked = true;
					continue;
				case MSGQ_CLAIM_LIMIT:
					/*
					 * The dead-letter queue's group is locked as a send to it
					 * would lock it, without waiting: a group a sender holds
					 * waits for a later receive.
					 */
					if (!msgq_lease_row_free(relid, tid) ||
						!msgq_fifo_try_lock_group(dlq_id, group) ||
						queue_move_one_to_dead_letter(queue, dlq_id, msg_seq, now, count,
													  first_null ? first :
													  DatumGetTimestampTz(row_first)) == 0)
					{
						blocked = true;
						continue;
					}
					*wrote = true;
					msgq_lease_forget_at_commit(queue->queue_id, msg_seq);
					msgq_metrics_stored(queue->queue_id, -1);
					msgq_metrics_stored(dlq_id, 1);
					/* the group goes on with its next message */
					continue;
				case MSGQ_CLAIM_OK:
					if (!msgq_lease_row_free(relid, tid) ||
						!msgq_fifo_group_add(queue->queue_id, group, msg_seq, nonce,
											 !taking))
					{
						msgq_lease_unclaim();
						blocked = true;
						continue;
					}
					break;
			}
			taking = true;
			if (!first_null)
				first = DatumGetTimestampTz(row_first);
			count = queue_count_durably(queue, msg_seq, message_id,
										DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &isnull)) < epoch,
										count, now, wrote);
			queue_emit(queue, tup, desc, msg_seq, nonce, count, first,
					   attr_sel, nattr_sel, sys_sel, nsys_sel, rsinfo);
			taken[emitted].msg_seq = msg_seq;
			taken[emitted].nonce = nonce;
			taken[emitted].deadline = deadline;
			taken[emitted].count = count;
			taken[emitted].first = first;
			strlcpy(last_taken, group, sizeof(last_taken));
			bytes += len;
			emitted++;
			if (emitted == max)
				done = true;
		}
		/*
		 * The next page: the rest of the page's last group while this
		 * receive is taking it, else the groups after it.
		 */
		strlcpy(after_group, group, sizeof(after_group));
		after_seq = (taking && !blocked) ? last_seq : PG_INT64_MAX;
		SPI_freetuptable(tuptable);
	}

	if (last_taken[0] != '\0')
		msgq_fifo_cursor_set(queue->queue_id, last_taken);
	if (emitted > 0)
		msgq_metrics_received(queue->queue_id, emitted, now, deadline);
	return emitted;
}

/*
 * Return again the messages of an earlier FIFO receive with the same
 * ReceiveRequestAttemptId (msgq_fifo_attempt_find checked that they are
 * still that receive's), with the same receipt handles; their visibility
 * timeout starts again.  Returns how many were returned.
 */
static int
queue_receive_fifo_repeat(MsgqQueue *queue, MsgqFifoTaken *taken, int n,
						  int32 visibility, Datum *attr_sel, int nattr_sel,
						  Datum *sys_sel, int nsys_sel, ReturnSetInfo *rsinfo)
{
	Oid			argtypes[2] = {INT4OID, INT8ARRAYOID};
	Datum		values[2];
	Datum	   *seqs = palloc(sizeof(Datum) * n);
	TimestampTz now = msgq_now();
	TimestampTz deadline = now + (TimestampTz) visibility * USECS_PER_SEC;
	int			emitted = 0;
	int			i;
	uint64		r;

	for (i = 0; i < n; i++)
	{
		TimestampTz old;

		if (!msgq_lease_set_deadline(queue->queue_id, taken[i].msg_seq,
									 taken[i].nonce, deadline, &old))
			return 0;
		taken[i].deadline = deadline;
		seqs[i] = Int64GetDatum(taken[i].msg_seq);
	}
	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = PointerGetDatum(construct_array(seqs, n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	if (msgq_execute_keyed(queue_plan(QP_FIFO_REPEAT,
									  "SELECT msg_seq, message_id, body, md5_of_body,"
									  "       message_attributes, sender, sent_at,"
									  "       receive_count, first_received_at,"
									  "       message_group_id, tableoid, ctid,"
									  "       pg_catalog.octet_length(body), visible_at,"
									  "       message_deduplication_id"
									  "  FROM msgq.message"
									  " WHERE queue_id OPERATOR(pg_catalog.=) $1"
									  "   AND msg_seq OPERATOR(pg_catalog.=) ANY ($2)",
									  2, argtypes),
						   values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read messages");
	/* in the order of the first receive */
	for (i = 0; i < n; i++)
		for (r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			bool		isnull;

			if (DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull)) !=
				taken[i].msg_seq)
				continue;
			queue_emit(queue, tup, SPI_tuptable->tupdesc, taken[i].msg_seq,
					   taken[i].nonce, taken[i].count, taken[i].first,
					   attr_sel, nattr_sel, sys_sel, nsys_sel, rsinfo);
			emitted++;
			break;
		}
	return emitted;
}

/*
 * The earliest time after now at which a message of the queue becomes
 * visible.  read_only is false so that the query takes a fresh snapshot and
 * sees delays and leases committed since the wait began.
 */
static bool
queue_next_visible(MsgqQueue *queue, TimestampTz now, TimestampTz *next)
{
	Oid			argtypes[3] = {INT4OID, TIMESTAMPTZOID, INT8OID};
	Datum		values[3];
	bool		isnull;
	Datum		d;

	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = TimestampTzGetDatum(now);
	/* from the queue's head: the rows below it are gone (head.c) */
	values[2] = Int64GetDatum(queue->fifo ? 0 : msgq_head_peek(queue->queue_id) - 1);
	if (SPI_execute_plan(queue_plan(QP_NEXT_VISIBLE,
									"SELECT pg_catalog.min(visible_at) FROM msgq.message"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"   AND msg_seq OPERATOR(pg_catalog.>) $3"
									"   AND visible_at OPERATOR(pg_catalog.>) $2",
									3, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the next visibility time");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return false;
	*next = DatumGetTimestampTz(d);
	return true;
}

void
msgq_text_array(ArrayType *arr, Datum **elems, int *n)
{
	bool	   *nulls;
	int			i,
				j = 0;

	if (arr == NULL)
	{
		*elems = NULL;
		*n = 0;
		return;
	}
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, elems, &nulls, n);
	for (i = 0; i < *n; i++)
		if (!nulls[i])
			(*elems)[j++] = (*elems)[i];
	*n = j;
}

/*
 * msgq.receive_message(queue_name text, max_number_of_messages int DEFAULT 1,
 *		visibility_timeout int DEFAULT NULL, wait_time_seconds int DEFAULT NULL,
 *		message_attribute_names text[] DEFAULT '{All}',
 *		message_system_attribute_names text[] DEFAULT '{All}',
 *		receive_request_attempt_id text DEFAULT NULL)
 * returns table (message_id uuid, receipt_handle text, body text,
 *		md5_of_body text, attributes jsonb, message_attributes jsonb)
 *
 * Receive up to max_number_of_messages visible messages, hiding each for
 * the visibility timeout and minting a new receipt handle per receive.
 * With a wait time (the call's, or the queue's ReceiveMessageWaitTimeSeconds)
 * and nothing to receive, sleep on the queue's condition variable until a
 * message may have become receivable, the wait ends, or the statement
 * would time out.
 */
Datum
msgq_receive_message(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	int32		max;
	int32		visibility;
	int32		wait;
	Datum	   *attr_sel;
	int			nattr_sel;
	Datum	   *sys_sel;
	int			nsys_sel;
	char	   *attempt_id = msgq_text_arg(fcinfo, 6);
	MsgqCall	call;
	MsgqQueue  *queue;
	TimestampTz deadline;
	uint64		ends_seen;
	bool		waiting = false;
	int			got = 0;
	MsgqFifoTaken taken[MSGQ_MAX_RECEIVE_MESSAGES];

	msgq_check_preloaded();
	/* a receive writes leases: never on a standby, never read-only */
	PreventCommandIfReadOnly("receive_message");
	PreventCommandDuringRecovery("receive_message");
	InitMaterializedSRF(fcinfo, 0);

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_RECEIVE, "ReceiveMessage");

	max = PG_ARGISNULL(1) ? 1 : PG_GETARG_INT32(1);
	if (max < 1 || max > MSGQ_MAX_RECEIVE_MESSAGES)
		msgq_invalid_value("MaxNumberOfMessages", max,
							"Must be between 1 and 10, if provided.");
	visibility = PG_ARGISNULL(2) ? queue->visibility_timeout : PG_GETARG_INT32(2);
	if (visibility < 0 || visibility > MSGQ_MAX_VISIBILITY_TIMEOUT)
		msgq_invalid_value("VisibilityTimeout", visibility,
							"Must be >= 0 and <= 43200, if provided.");
	wait = PG_ARGISNULL(3) ? queue->wait_time_seconds : PG_GETARG_INT32(3);
	if (wait < 0 || wait > MSGQ_MAX_WAIT_TIME_SECONDS)
		msgq_invalid_value("WaitTimeSeconds", wait,
							"Must be >= 0 and <= 20, if provided.");
	if (attempt_id != NULL)
		msgq_check_id_chars("ReceiveRequestAttemptId", attempt_id);
	msgq_text_array(PG_ARGISNULL(4) ? NULL : PG_GETARG_ARRAYTYPE_P(4),
					 &attr_sel, &nattr_sel);
	msgq_text_array(PG_ARGISNULL(5) ? NULL : PG_GETARG_ARRAYTYPE_P(5),
					 &sys_sel, &nsys_sel);

	if (wait > 0 && XactIsoLevel != XACT_READ_COMMITTED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("long polling requires the READ COMMITTED isolation level"),
				 errdetail("A wait takes a fresh snapshot for every check."),
				 errhint("Call receive_message with wait_time_seconds => 0, or use READ COMMITTED.")));

	msgq_check_clock_runs(wait);
	deadline = msgq_now() + (TimestampTz) wait * USECS_PER_SEC;
	if (wait > 0 && StatementTimeout > 0)
	{
		/* return, empty, before a shorter statement_timeout would fire */
		long		margin = Min(StatementTimeout / 4, 50);
		TimestampTz stmt_end;

		stmt_end = GetCurrentStatementStartTimestamp() +
			(TimestampTz) (StatementTimeout - margin) * 1000 +
			(TimestampTz) msgq_clock_offset_ms * 1000;
		if (stmt_end < deadline)
			deadline = stmt_end;
	}
	ends_seen = msgq_wait_end_counter(queue->queue_id);

	/* FIFO: a retry of a receive with the same attempt id gets its messages */
	if (queue->fifo && attempt_id != NULL)
	{
		int			n = msgq_fifo_attempt_find(queue->queue_id, attempt_id,
											   msgq_now(), taken);

		if (n > 0)
		{
			got = queue_receive_fifo_repeat(queue, taken, n, visibility, attr_sel,
											nattr_sel, sys_sel, nsys_sel, rsinfo);
			if (got == n)
			{
				msgq_fifo_attempt_remember(queue->queue_id, attempt_id, msgq_now(),
										   taken, n);
				msgq_call_leave(&call);
				return (Datum) 0;
			}
			/* a message went meanwhile: receive anew */
			tuplestore_clear(rsinfo->setResult);
			got = 0;
		}
	}

	for (;;)
	{
		uint64		seen = msgq_wait_counter(queue->queue_id);
		TimestampTz now;
		TimestampTz wake;
		TimestampTz next;
		bool		wrote = false;
		bool		has_next;
		TimestampTz held_next = 0;
		MemoryContext oldcxt = CurrentMemoryContext;
		ResourceOwner oldowner = CurrentResourceOwner;

		/*
		 * A waiting receive checks in a subtransaction, rolled back when it
		 * found and wrote nothing: that releases the locks the check took
		 * on msgq.message's partitions, so that a waiter never holds up the
		 * truncation of a storage segment (segment.c) while it sleeps.  No
		 * transaction id is assigned to a check that writes nothing.
		 */
		if (wait > 0)
		{
			BeginInternalSubTransaction(NULL);
			MemoryContextSwitchTo(oldcxt);
		}
		if (queue->fifo)
		{
			got = queue_receive_fifo_once(queue, max, visibility, attr_sel, nattr_sel,
										  sys_sel, nsys_sel, rsinfo, &wrote, &held_next,
										  taken);
			if (got > 0 && attempt_id != NULL)
				msgq_fifo_attempt_remember(queue->queue_id, attempt_id, msgq_now(),
										   taken, got);
		}
		else
			got = queue_receive_once(queue, max, visibility, attr_sel, nattr_sel,
									 sys_sel, nsys_sel, rsinfo, &wrote, &held_next);
		if (got > 0)
		{
			if (wait > 0)
			{
				ReleaseCurrentSubTransaction();
				MemoryContextSwitchTo(oldcxt);
				CurrentResourceOwner = oldowner;
			}
			break;
		}

		now = msgq_now();
		has_next = queue_next_visible(queue, now, &next);
		if (wait > 0)
		{
			if (wrote)
				ReleaseCurrentSubTransaction();
			else
				RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		if (now >= deadline ||
			msgq_wait_end_counter(queue->queue_id) != ends_seen)
			break;

		wake = deadline;
		if (has_next && next < wake)
			wake = next;
		/* a lease held by another receive ends */
		if (held_next != 0 && held_next < wake)
			wake = held_next;
		if (wake > now + (TimestampTz) msgq_wait_recheck_interval_ms * 1000)
			wake = now + (TimestampTz) msgq_wait_recheck_interval_ms * 1000;

		if (!waiting)
		{
			/*
			 * Warm what the receive after a wake-up needs and this backend
			 * may not have yet (the receipt-handle key, the lease undo
			 * list), so that the first wake-up of a new connection is as
			 * fast as later ones.  The scan's plan was made by the check
			 * above.
			 */
			msgq_handle_prepare();
			msgq_lease_prepare();
			msgq_waiter_begin(queue->queue_id, deadline);
			waiting = true;
		}
		/* round up, so that we never wake just before the event */
		msgq_wait_sleep(queue->queue_id, seen,
						(long) ((wake - now + 999) / 1000));
		CHECK_FOR_INTERRUPTS();
	}
	if (waiting)
		msgq_waiter_end();
	if (got == 0)
		msgq_metrics_empty_receive(queue->queue_id);

	msgq_call_leave(&call);
	return (Datum) 0;
}

/*
 * msgq.delete_message(queue_name text, receipt_handle text)
 *
 * Delete the message of a receipt handle.  Deleting with a handle of a
 * message already deleted succeeds; a handle superseded by a later receive
 * succeeds without deleting, so it never removes a message another
 * consumer now holds.
 */
Datum
msgq_delete_message(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *handle = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	MsgqQueue  *queue;
	int64		msg_seq,
				nonce;
	Oid			argtypes[6] = {INT4OID, INT8OID, INT8OID, BOOLOID, BOOLOID,
	TIMESTAMPTZOID};
	Datum		values[6];
	MsgqLeaseState state;
	TimestampTz lease_deadline;
	TimestampTz lease_received;
	TimestampTz now;

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_DELETE, "DeleteMessage");
	if (handle == NULL || handle[0] == '\0')
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter ReceiptHandle");
	msgq_handle_decode(handle, queue->queue_id, &msg_seq, &nonce);

	/*
	 * The latest receive's handle deletes.  A handle superseded by a later
	 * receive deletes nothing.  Without a lease in shared memory (after a
	 * restart, or one that ended and was forgotten), a lease handle deletes
	 * a message no durable receive holds, and a durable handle needs the
	 * row's nonce.
	 */
	now = msgq_now();
	state = msgq_lease_check(queue->queue_id, msg_seq, nonce, &lease_deadline,
							 &lease_received);
	/* FIFO: a handle whose visibility timeout passed deletes nothing */
	if (queue->fifo &&
		(state == MSGQ_LEASE_STALE ||
		 (state == MSGQ_LEASE_MATCH && lease_deadline <= now)))
		msgq_fifo_handle_expired(handle);
	if (state != MSGQ_LEASE_STALE)
	{
		values[0] = Int32GetDatum(queue->queue_id);
		values[1] = Int64GetDatum(msg_seq);
		values[2] = Int64GetDatum(nonce);
		values[3] = BoolGetDatum(state == MSGQ_LEASE_MATCH);
		values[4] = BoolGetDatum(msgq_nonce_is_lease(nonce));
		values[5] = TimestampTzGetDatum(now);
		if (msgq_execute_keyed(queue_plan(QP_DELETE_MESSAGE,
										"DELETE FROM msgq.message"
										" WHERE queue_id OPERATOR(pg_catalog.=) $1"
										"   AND msg_seq OPERATOR(pg_catalog.=) $2"
										"   AND ($4 OR receipt_nonce OPERATOR(pg_catalog.=) $3"
										"        OR ($5 AND visible_at OPERATOR(pg_catalog.<=) $6))"
										" RETURNING visible_at",
										6, argtypes),
							 values, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
			elog(ERROR, "could not delete message");
		if (SPI_processed == 1)
		{
			bool		isnull;
			TimestampTz visible_at;

			msgq_wakeup_at_abort(queue->queue_id);

			visible_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc,
														   1, &isnull));
			if (state == MSGQ_LEASE_MATCH)
			{
				msgq_lease_forget_at_commit(queue->queue_id, msg_seq);
				visible_at = Max(visible_at, lease_deadline);
			}
			msgq_metrics_deleted(queue->queue_id, 1, now, visible_at, true);
			/* FIFO: the delete may unblock its group for a waiting receive */
			if (queue->fifo)
				msgq_wakeup_at_commit(queue->queue_id, false);
		}
	}

	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* Does the message still exist (not deleted, purged or expired)? */
bool
msgq_message_exists(int32 queue_id, int64 msg_seq)
{
	Oid			argtypes[2] = {INT4OID, INT8OID};
	Datum		values[2];

	values[0] = Int32GetDatum(queue_id);
	values[1] = Int64GetDatum(msg_seq);
	if (msgq_execute_keyed(queue_plan(QP_EXISTS,
									"SELECT 1 FROM msgq.message"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"   AND msg_seq OPERATOR(pg_catalog.=) $2",
									2, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up a message");
	return SPI_processed > 0;
}

/*
 * A visibility change with a handle that is not the latest receive's:
 * MessageNotInflight when the message is visible, else InvalidParameterValue.
 */
void
msgq_lease_stale_error(bool visible)
{
	if (visible)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_MESSAGE_NOT_INFLIGHT),
				 errmsg("message is not in flight"),
				 errdetail_internal("AWS error code: MessageNotInflight")));
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
			 errmsg("message does not exist or is not available for visibility timeout change"),
			 errdetail_internal("AWS error code: InvalidParameterValue"),
			 errhint("The message was received again; use the latest receipt handle.")));
}

/* A lease lasts at most 12 hours from its receive, in whole seconds as AWS counts. */
void
msgq_check_visibility_total(TimestampTz now, TimestampTz received_at, int32 vt)
{
	if ((now - received_at) / USECS_PER_SEC + vt > MSGQ_MAX_VISIBILITY_TIMEOUT)
		msgq_invalid_value("VisibilityTimeout", vt,
							"Total VisibilityTimeout for the message is beyond the limit [43200 seconds].");
}

/*
 * msgq.change_message_visibility(queue_name text, receipt_handle text,
 *		visibility_timeout int)
 *
 * Make an in-flight message visible again after visibility_timeout seconds
 * counted from now (0: at once).  The total stays within 12 hours of the
 * receive.
 */
Datum
msgq_change_message_visibility(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *handle = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	MsgqQueue  *queue;
	int32		vt;
	int64		msg_seq,
				nonce;
	Oid			argtypes[3] = {INT4OID, INT8OID, TIMESTAMPTZOID};
	Datum		values[3];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int64		row_nonce;
	bool		nonce_null;
	TimestampTz received_at;
	TimestampTz visible_at;
	TimestampTz now;

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_CHANGE_VIS,
							"ChangeMessageVisibility");
	if (handle == NULL || handle[0] == '\0')
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter ReceiptHandle");
	if (PG_ARGISNULL(2))
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter VisibilityTimeout");
	vt = PG_GETARG_INT32(2);
	if (vt < 0 || vt > MSGQ_MAX_VISIBILITY_TIMEOUT)
		msgq_invalid_value("VisibilityTimeout", vt,
							"Must be >= 0 and <= 43200.");
	msgq_handle_decode(handle, queue->queue_id, &msg_seq, &nonce);

	/* a lease in shared memory: change it there, no write at all */
	now = msgq_now();
	switch (msgq_lease_check(queue->queue_id, msg_seq, nonce, &visible_at,
							 &received_at))
	{
		case MSGQ_LEASE_MATCH:
			if (!msgq_message_exists(queue->queue_id, msg_seq))
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
						 errmsg("message does not exist or is not available for visibility timeout change"),
						 errdetail_internal("AWS error code: InvalidParameterValue")));
			msgq_check_visibility_total(now, received_at, vt);
			if (msgq_lease_set_deadline(queue->queue_id, msg_seq, nonce,
										now + (TimestampTz) vt * USECS_PER_SEC,
										&visible_at))
			{
				msgq_metrics_visibility(queue->queue_id, now, visible_at,
										now + (TimestampTz) vt * USECS_PER_SEC);
				msgq_wakeup_at_commit(queue->queue_id, false);
				msgq_call_leave(&call);
				PG_RETURN_VOID();
			}
			/* received again just now */
			msgq_lease_stale_error(visible_at <= now);
			break;
		case MSGQ_LEASE_STALE:
			msgq_lease_stale_error(visible_at <= now);
			break;
		case MSGQ_LEASE_NONE:
			break;
	}

	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = Int64GetDatum(msg_seq);
	if (msgq_execute_keyed(queue_plan(QP_LEASE,
									"SELECT receipt_nonce, received_at, visible_at FROM msgq.message"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"   AND msg_seq OPERATOR(pg_catalog.=) $2"
									" FOR UPDATE",
									2, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read message lease");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("message does not exist or is not available for visibility timeout change"),
				 errdetail_internal("AWS error code: InvalidParameterValue")));
	msgq_wakeup_at_abort(queue->queue_id);

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	row_nonce = DatumGetInt64(SPI_getbinval(tup, desc, 1, &nonce_null));
	received_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
	visible_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));

	if (nonce_null || row_nonce != nonce)
		msgq_lease_stale_error(visible_at <= now);
	msgq_check_visibility_total(now, received_at, vt);

	values[2] = TimestampTzGetDatum(now + (TimestampTz) vt * USECS_PER_SEC);
	if (msgq_execute_keyed(queue_plan(QP_SET_VISIBLE,
									"UPDATE msgq.message SET visible_at = $3"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"   AND msg_seq OPERATOR(pg_catalog.=) $2",
									3, argtypes),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not change message visibility");

	msgq_metrics_visibility(queue->queue_id, now, visible_at,
							now + (TimestampTz) vt * USECS_PER_SEC);
	/* the new time may be earlier than a waiter's planned wake-up */
	msgq_wakeup_at_commit(queue->queue_id, false);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Permissions
 * ------------------------------------------------------------------------
 */

static void
queue_check_label(const char *label)
{
	const char *p;

	if (label == NULL || label[0] == '\0')
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter Label");
	if (strlen(label) > MSGQ_MAX_NAME_LEN)
		MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
				   "label \"%s\" is too long", label);
	for (p = label; *p; p++)
		if (!msgq_is_name_char(*p))
			MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
					   "invalid label \"%s\"", label);
}

void
msgq_check_label(const char *label)
{
	queue_check_label(label);
}

static void
queue_recompute_acl(int32 queue_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(queue_id)};

	if (SPI_execute_plan(queue_plan(QP_ACL_RECOMPUTE,
									"UPDATE msgq.queue SET acl ="
									" (SELECT pg_catalog.array_agg(a ORDER BY p.label, a.ord)"
									"    FROM msgq.queue_permission p,"
									"         pg_catalog.unnest(p.acl) WITH ORDINALITY a(a, ord)"
									"   WHERE p.queue_id OPERATOR(pg_catalog.=) $1)"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1",
									1, argtypes),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update queue privileges");
	msgq_queue_cache_invalidate();
}

/*
 * msgq.add_permission(queue_name text, label text, roles text[],
 *		actions text[])
 *
 * Grant AWS actions on a queue to roles under a label.  Only the queue's
 * owner (or a superuser) may.
 */
Datum
msgq_add_permission(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *label = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	MsgqQueue  *queue;
	AclMode		mode;
	Acl		   *acl;
	Oid			argtypes[3] = {INT4OID, TEXTOID, ACLITEMARRAYOID};
	Datum		values[3];

	/* a topic ARN names a topic (src/topic.c) */
	if (name != NULL && strncmp(name, "arn:aws:sns:", 12) == 0)
		return msgq_topic_add_permission(fcinfo);
	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_owner(queue, call.caller);
	queue_check_label(label);
	if (PG_ARGISNULL(2))
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter AWSAccountIds");
	if (PG_ARGISNULL(3))
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter Actions");
	mode = msgq_parse_actions(PG_GETARG_ARRAYTYPE_P(3));
	acl = msgq_build_acl(PG_GETARG_ARRAYTYPE_P(2), mode, queue->owner);

	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = CStringGetTextDatum(label);
	values[2] = PointerGetDatum(acl);
	if (SPI_execute_plan(queue_plan(QP_PERM_INSERT,
									"INSERT INTO msgq.queue_permission (queue_id, label, acl)"
									" VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
									3, argtypes),
						 values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not add permission");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("label \"%s\" already exists on queue \"%s\"", label, queue->queue_name),
				 errdetail_internal("AWS error code: InvalidParameterValue")));
	queue_recompute_acl(queue->queue_id);

	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.remove_permission(queue_name text, label text)
 */
Datum
msgq_remove_permission(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *label = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	MsgqQueue  *queue;
	Oid			argtypes[2] = {INT4OID, TEXTOID};
	Datum		values[2];

	if (name != NULL && strncmp(name, "arn:aws:sns:", 12) == 0)
		return msgq_topic_remove_permission(fcinfo);
	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_owner(queue, call.caller);
	queue_check_label(label);

	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = CStringGetTextDatum(label);
	if (SPI_execute_plan(queue_plan(QP_PERM_DELETE,
									"DELETE FROM msgq.queue_permission"
									" WHERE queue_id OPERATOR(pg_catalog.=) $1"
									"   AND label OPERATOR(pg_catalog.=) $2",
									2, argtypes),
						 values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not remove permission");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("label \"%s\" does not exist on queue \"%s\"", label, queue->queue_name),
				 errdetail_internal("AWS error code: InvalidParameterValue")));
	queue_recompute_acl(queue->queue_id);

	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.run_maintenance()
 *
 * Run one maintenance cycle of this database's worker in the calling
 * backend, so tests can drive time rules with msgq.clock_offset.
 */
Datum
msgq_run_maintenance(PG_FUNCTION_ARGS)
{
	msgq_check_preloaded();
	msgq_maintenance_cycle();
	msgq_maintenance_streams();
	msgq_maintenance_deliveries();
	PG_RETURN_VOID();
}
