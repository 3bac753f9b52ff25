/*-------------------------------------------------------------------------
 *
 * utils.c
 *	  The clock, name validation and the switch to the extension owner.
 *
 * Time: every msgq time rule reads msgq_now(), which is clock_timestamp()
 * plus the superuser-only msgq.clock_offset setting, so tests move time
 * forward in milliseconds instead of sleeping.  With msgq.clock_frozen on
 * the clock_timestamp() part stays at the time it was turned on, so that
 * a test's margins do not depend on how fast it runs.  transaction timestamps
 * (now()) are never used: a message sent late in a long transaction must
 * carry the time of the send, not of the transaction's start.
 *
 * Internal SQL runs as the owner of the extension (the owner of msgq's
 * tables), switched in with SetUserIdAndSecContext, after the caller's
 * rights on the object have been checked, with search_path pinned to
 * pg_catalog, pg_temp.  A transaction or subtransaction abort restores the
 * caller's identity and search_path on its own.
 *
 * IDENTIFICATION
 *	  src/utils.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/regproc.h"
#include "utils/jsonb.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/timeout.h"
#include "utils/snapmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "catalog/namespace.h"
#include "pgstat.h"
#include "utils/timestamp.h"

#include "msgq.h"

PG_FUNCTION_INFO_V1(msgq_now_sql);
PG_FUNCTION_INFO_V1(msgq_assert_preloaded);

TimestampTz
msgq_now(void)
{
	TimestampTz t = msgq_clock_frozen ? msgq_clock_frozen_at : GetCurrentTimestamp();

	return t + (TimestampTz) msgq_clock_offset_ms * 1000;
}

/*
 * A wait of wait_seconds would never end on a stopped clock: refuse it
 * while msgq.clock_frozen is on.
 */
void
msgq_check_clock_runs(int wait_seconds)
{
	if (wait_seconds > 0 && msgq_clock_frozen)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("long polling needs msgq's clock to run"),
				 errdetail("msgq.clock_frozen is on."),
				 errhint("Wait with wait_time_seconds => 0, or RESET msgq.clock_frozen.")));
}

/*
 * msgq.now() returns timestamptz
 *
 * msgq's clock as SQL sees it: clock_timestamp() (or the time it stopped at,
 * under msgq.clock_frozen) plus msgq.clock_offset.
 */
Datum
msgq_now_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(msgq_now());
}

void
msgq_aws_error(const char *awsname, int sqlerrcode, const char *fmt,...)
{
	StringInfoData buf;
	char	   *lower;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	lower = pstrdup(buf.data);
	if (lower[0] >= 'A' && lower[0] <= 'Z')
		lower[0] += 'a' - 'A';
	ereport(ERROR,
			(errcode(sqlerrcode),
			 errmsg_internal("%s", lower),
			 errdetail_internal("AWS error code: %s. Message: %s", awsname, buf.data)));
	pg_unreachable();
}

/*
 * Random bytes for message ids and receipt nonces, drawn from
 * pg_strong_random() a pool at a time: one call per message costs more than
 * the rest of a send.  The pool is per backend and starts empty in every
 * new process, so no two processes ever share bytes.
 */
#define UTILS_RANDOM_POOL	1024

static uint8 utils_random_pool[UTILS_RANDOM_POOL];
static int	utils_random_used = UTILS_RANDOM_POOL;
static pid_t utils_random_pid = 0;

void
msgq_random_bytes(void *buf, size_t len)
{
	Assert(len <= UTILS_RANDOM_POOL);
	if (utils_random_pid != MyProcPid ||
		utils_random_used + len > UTILS_RANDOM_POOL)
	{
		if (!pg_strong_random(utils_random_pool, UTILS_RANDOM_POOL))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values")));
		utils_random_used = 0;
		utils_random_pid = MyProcPid;
	}
	memcpy(buf, utils_random_pool + utils_random_used, len);
	/* never hand out the same bytes twice */
	memset(utils_random_pool + utils_random_used, 0, len);
	utils_random_used += len;
}

void
msgq_check_preloaded(void)
{
	if (!msgq_loaded_via_preload)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("msgq must be loaded via \"shared_preload_libraries\""),
				 errhint("Add msgq to \"shared_preload_libraries\" and restart the server.")));
}

/*
 * msgq._assert_preloaded(): called by the install script so that CREATE
 * EXTENSION fails clearly on a server that did not preload msgq.
 */
Datum
msgq_assert_preloaded(PG_FUNCTION_ARGS)
{
	msgq_check_preloaded();
	PG_RETURN_VOID();
}

/*
 * Check a queue name against AWS's rules: 1-80 characters of
 * [A-Za-z0-9_-], where a FIFO queue's name ends in ".fifo" (the suffix
 * counts toward the 80).  *is_fifo tells whether the suffix is present.
 */
void
msgq_check_queue_name(const char *name, bool *is_fifo)
{
	size_t		len;
	size_t		base_len;
	size_t		i;

	if (name == NULL || name[0] == '\0')
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter QueueName");

	len = strlen(name);
	*is_fifo = (len > 5 && strcmp(name + len - 5, ".fifo") == 0);
	base_len = *is_fifo ? len - 5 : len;

	if (len > MSGQ_MAX_NAME_LEN)
		MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
				   "queue name \"%s\" is too long", name);

	for (i = 0; i < base_len; i++)
	{
		char		c = name[i];

		if (!msgq_is_name_char(c))
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
					 errmsg("invalid queue name \"%s\"", name),
					 errdetail_internal("AWS error code: InvalidParameterValue"),
					 errhint("Queue names have 1 to 80 characters: letters, digits, hyphens and underscores, and \".fifo\" at the end for FIFO queues.")));
	}
}

/*
 * Per-backend cache of the extension owner and of msgq.queue's oid.  It is
 * reset by the relcache callback of queue.c whenever msgq.queue is
 * invalidated (DROP EXTENSION drops it, so a new extension is seen).
 */
static Oid	utils_owner_cache = InvalidOid;

void
msgq_utils_cache_reset(void)
{
	utils_owner_cache = InvalidOid;
}

/*
 * The owner of the msgq extension in the current database.
 */
Oid
msgq_extension_owner(void)
{
	msgq_queue_cache_register();
	if (!OidIsValid(utils_owner_cache))
		utils_owner_cache = msgq_extension_owner_lookup();
	return utils_owner_cache;
}

/* The value of key in a jsonb object, or NULL */
JsonbValue *
msgq_jsonb_member(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
}

/*
 * For the worker's transactions: is msgq installed?  If so, holds a share
 * lock on the extension until the transaction ends.  DROP EXTENSION locks
 * the extension before any of its tables, so a worker transaction that
 * takes this lock before touching a table can never deadlock with it
 * (the worker would otherwise hold one of msgq's tables while DROP,
 * holding another, waits for it).
 */
bool
msgq_extension_lock_shared(void)
{
	Oid			ext = get_extension_oid(MSGQ_EXTENSION_NAME, true);

	if (!OidIsValid(ext))
		return false;
	LockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
	/* a DROP that committed while we waited: the lock accepted its invalidations */
	return OidIsValid(get_extension_oid(MSGQ_EXTENSION_NAME, true));
}

Oid
msgq_extension_owner_lookup(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			owner = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(MSGQ_EXTENSION_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"msgq\" is not installed in this database")));
	return owner;
}

/*
 * What internal SQL runs with as search_path.  The plan cache parses a
 * statement again whenever search_path differs from its last use, so the
 * path must be pinned where statements run, not only where they are
 * prepared.
 */
#define MSGQ_PINNED_PATH	"pg_catalog, pg_temp"

/* the search_path of the last caller that had not pinned it (TopMemoryContext) */
static char *caller_path = NULL;

static int
msgq_set_search_path(const char *path)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * Become the extension owner, until msgq_restore_user (or the end of a
 * light call): what msgq checks and writes as its owner.  The caller's
 * search_path is kept for msgq_caller_search_path.
 */
void
msgq_become_owner(Oid *save_userid, int *save_sec_context)
{
	Oid			owner = msgq_extension_owner();

	if (namespace_search_path != NULL &&
		strcmp(namespace_search_path, MSGQ_PINNED_PATH) != 0 &&
		(caller_path == NULL || strcmp(caller_path, namespace_search_path) != 0))
	{
		char	   *copy = MemoryContextStrdup(TopMemoryContext, namespace_search_path);

		if (caller_path != NULL)
			pfree(caller_path);
		caller_path = copy;
	}
	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(owner,
						   *save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * Pin search_path for msgq's internal SQL; returns the GUC nest level that
 * AtEOXact_GUC(true, level) pops.
 */
int
msgq_pin_search_path(void)
{
	return msgq_set_search_path(MSGQ_PINNED_PATH);
}

/*
 * Become the extension owner, under a pinned search_path, until
 * msgq_restore_user: nothing a caller put on its search_path (a type, an
 * operator or a function of the same name as one internal SQL uses) is
 * found while msgq works as its owner.
 */
void
msgq_switch_to_owner(Oid *save_userid, int *save_sec_context, int *save_nest)
{
	msgq_become_owner(save_userid, save_sec_context);
	*save_nest = msgq_pin_search_path();
}

void
msgq_restore_user(Oid save_userid, int save_sec_context, int save_nest)
{
	AtEOXact_GUC(true, save_nest);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * For a background process that runs only msgq's SQL outside
 * msgq_switch_to_owner too (the workers, the endpoint): pin its
 * search_path for good, above the database's and the role's settings, and
 * keep the path they gave for the user code it runs.
 */
void
msgq_pin_process_search_path(void)
{
	if (namespace_search_path != NULL)
		caller_path = MemoryContextStrdup(TopMemoryContext, namespace_search_path);
	SetConfigOption("search_path", MSGQ_PINNED_PATH, PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Give user code (a subscriber's, a mapping's or a transform function, a
 * stream query, a name the user wrote) the search_path of the session
 * that called msgq, or the worker's own, instead of the pinned one.  Ends
 * with AtEOXact_GUC(true, the returned nest level), or with the
 * (sub)transaction's abort.
 */
int
msgq_caller_search_path(void)
{
	return msgq_set_search_path(caller_path != NULL ? caller_path : "\"$user\", public");
}

/*
 * Before each call of a user's function that msgq calls through fmgr (a
 * subscriber's, a mapping's, a transform): fmgr checks no privilege, and
 * EXECUTE may have been revoked since the function was configured.
 */
void
msgq_check_execute(Oid fn, Oid owner)
{
	if (pg_proc_aclcheck(fn, owner, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", format_procedure(fn))));
}

/*
 * Run fn(arg) in a subtransaction, under a statement timeout of
 * msgq.function_timeout in the worker (in_worker): what the worker runs on
 * behalf of a user (a mapping's function, a topic's function subscriber, a
 * delivery stream's transform and destination).  The user and security
 * context are restored however it ends.  Returns NULL, or the error that
 * rolled the subtransaction back; a shutdown, or a cancel outside the
 * worker, is nobody's failure and is thrown again.
 */
ErrorData *
msgq_run_subxact(void (*fn) (void *arg), void *arg, bool in_worker)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;
	Oid			save_userid;
	int			save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		if (in_worker)
			enable_timeout_after(STATEMENT_TIMEOUT, msgq_function_timeout_ms);
		fn(arg);
		if (in_worker)
			disable_timeout(STATEMENT_TIMEOUT, false);
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
		if (edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
			(edata->sqlerrcode == ERRCODE_QUERY_CANCELED && !in_worker))
			ReThrowError(edata);
	}
	PG_END_TRY();
	return edata;
}

/*
 * One pass of a worker part in a transaction of its own, as the extension
 * owner, connected to SPI: run(true), once msgq is installed and has the
 * part's table (relname, in schema msgq).  Returns run's answer (when to
 * come back, in milliseconds; -1 when it did not run).
 */
long
msgq_worker_pass(const char *activity, const char *relname, long (*run) (bool in_worker))
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nest;
	long		wait_ms = -1;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	if (msgq_extension_lock_shared() &&
		OidIsValid(get_relname_relid(relname, get_namespace_oid("msgq", true))))
	{
		msgq_switch_to_owner(&save_userid, &save_sec_context, &save_nest);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		wait_ms = run(true);
		SPI_finish();
		msgq_restore_user(save_userid, save_sec_context, save_nest);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return wait_ms;
}

/* The value of a hexadecimal digit, or -1 */
int
msgq_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
