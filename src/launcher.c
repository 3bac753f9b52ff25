/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The msgq launcher: one background worker per cluster that starts,
 *	  watches and restarts one maintenance worker (worker.c) per database
 *	  where msgq is installed.
 *
 * The launcher is registered from _PG_init and restarted by the postmaster
 * if it dies.  It connects to no database, so it can read only the shared
 * catalogs: every msgq.launcher_naptime, and whenever a committed
 * transaction asks for it, it scans pg_database and keeps a private hash
 * with one entry per database that may run a worker (not a template, and
 * accepting connections).  It cannot see pg_extension of other databases,
 * so it learns whether msgq is installed by starting a worker: a worker
 * that does not find the extension says so in its slot and exits, and the
 * launcher then leaves that database alone until a committed CREATE
 * EXTENSION msgq asks for a new probe (or, as a safety net for paths no
 * hook sees, such as COMMIT PREPARED, every five minutes).
 *
 * Per database, in the launcher's hash:
 *
 *		WANTED -- start --> ACTIVE -- worker exits --> WANTED (backoff)
 *		                              \--- not installed --> NOT_INSTALLED
 *		NOT_INSTALLED -- probe request or recheck --> WANTED
 *		any -- dropped or no longer eligible --> GONE -- slot reaped --> (removed)
 *
 * Worker slots live in shared memory (bgw.h), msgq.max_workers of them;
 * they are the only record that survives a launcher restart.  No database
 * ever gets two workers, because
 *	 - only the launcher allocates a slot, never for a database that already
 *	   has one in a non-FREE state, all under the slot lock;
 *	 - each registration carries a fresh token in bgw_extra, and a worker
 *	   must claim its slot (STARTING, same database, same token, database
 *	   not paused) under the lock before it connects to the database, else
 *	   it exits at once;
 *	 - a restarted launcher adopts RUNNING slots as they are and frees
 *	   STARTING ones, which invalidates any registration of its
 *	   predecessor that the postmaster has not started yet;
 *	 - a worker clears its slot from an on_shmem_exit callback, so a
 *	   RUNNING slot always means a live process (a crash that skips the
 *	   callback is a postmaster crash-restart, which resets shared memory).
 *
 * This file also holds the hooks run by ordinary backends.  PostgreSQL 15
 * refuses DROP DATABASE, CREATE DATABASE ... TEMPLATE, ALTER DATABASE SET
 * TABLESPACE and ALTER DATABASE RENAME while another session is connected
 * to the database, and a maintenance worker is such a session.  So before
 * those commands the ProcessUtility hook pauses the database (an entry in a
 * per-backend shared array, which neither the launcher nor a claiming
 * worker passes), stops its worker and waits for it to exit.  The pause is
 * released when the transaction ends (commit, abort or prepare) or the
 * backend exits, and the launcher is woken then.  A transaction callback
 * turns a committed CREATE EXTENSION msgq into a probe request and a
 * committed DROP EXTENSION msgq into a wake-up of the database's worker,
 * which then finds the extension gone and exits.  Requests are posted at
 * XACT_EVENT_COMMIT, after the commit is visible, so a worker started for
 * them always sees the new state.
 *
 * Locking: the second LWLock of the "msgq" tranche protects all of
 * MsgqBgwShared.  It is never held across anything that can sleep or
 * error except the launcher's hash insertions (an out-of-memory error
 * there restarts the launcher, which releases the lock).  Signals and
 * SetLatch calls aimed at a worker or the launcher are made while holding
 * it, because the target clears its pid and latch under the same lock
 * before it exits.
 *
 * IDENTIFICATION
 *	  src/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "msgq.h"
#include "bgw.h"

PGDLLEXPORT void msgq_launcher_main(Datum main_arg);

/* Restart delays of a failed worker: doubling from the minimum */
#define MSGQ_BGW_BACKOFF_MIN_MS			1000
#define MSGQ_BGW_BACKOFF_MAX_MS			60000
/* A worker that ran this long before failing starts a new backoff series */
#define MSGQ_BGW_HEALTHY_RUN_MS			60000
/* Re-probe databases where msgq was not installed, in case a hook missed it */
#define MSGQ_BGW_RECHECK_MS				300000
/* The postmaster restarts a dead launcher after this many seconds */
#define MSGQ_BGW_LAUNCHER_RESTART_S		5
/* Longest wait of a database command for the database's worker to exit */
#define MSGQ_BGW_PAUSE_WAIT_MS			10000

/* Settings */
bool		msgq_worker_enabled = true;
int			msgq_worker_naptime = 1000;
int			msgq_launcher_naptime = 10000;
int			msgq_max_workers = 8;

/* Shared state, attached by msgq_bgw_shmem_init() */
MsgqBgwShared *msgq_bgw_shared = NULL;

/* The launcher's view of one database */
typedef enum LauncherDbState
{
	LAUNCHER_DB_WANTED,			/* should have a worker; none started yet */
	LAUNCHER_DB_ACTIVE,			/* holds a STARTING or RUNNING slot */
	LAUNCHER_DB_NOT_INSTALLED,	/* a worker found no msgq; wait for a probe */
	LAUNCHER_DB_GONE			/* dropped or not eligible; slot still held */
} LauncherDbState;

typedef struct LauncherDb
{
	Oid			dboid;			/* hash key */
	LauncherDbState state;
	char		name[NAMEDATALEN];
	int			slotno;			/* slot held (ACTIVE or GONE), else -1 */
	uint64		token;			/* token of that slot's registration */
	BackgroundWorkerHandle *handle; /* NULL for an adopted worker */
	int			failures;		/* consecutive failed starts */
	TimestampTz retry_at;		/* earliest next start (or re-probe) */
	bool		probe_pending;	/* a probe was requested while ACTIVE */
	bool		seen;			/* found by the current rescan */
} LauncherDb;

/* One database as read from pg_database */
typedef struct LauncherDbInfo
{
	Oid			dboid;
	char		name[NAMEDATALEN];
} LauncherDbInfo;

/* A slot reaped from shared memory */
typedef struct LauncherReaped
{
	int			slotno;
	Oid			dboid;
	uint64		token;
	MsgqExitReason reason;
	TimestampTz started_at;
} LauncherReaped;

/* Launcher process state */
static HTAB *launcher_dbs = NULL;
static MemoryContext launcher_loop_cxt = NULL;
static uint32 launcher_wait_event = 0;
static bool launcher_register_warned = false;
static bool launcher_slots_warned = false;

/* Backend-side state of the hooks */
static ProcessUtility_hook_type launcher_prev_utility_hook = NULL;
static bool launcher_xact_rescan = false;
static bool launcher_xact_created = false;
static bool launcher_xact_dropped = false;
static int	launcher_pause_index = -1;
static bool launcher_exit_callback_set = false;

static void launcher_shmem_exit(int code, Datum arg);
static List *launcher_read_databases(void);
static void launcher_rescan(void);
static void launcher_forget(LauncherDb *db);
static void launcher_adopt_slots(void);
static void launcher_take_requests(bool *rescan, bool *probe_all,
								   Oid *probes, int *nprobes);
static void launcher_apply_probes(bool probe_all, Oid *probes, int nprobes);
static void launcher_reap_slots(void);
static void launcher_worker_exited(LauncherDb *db, MsgqExitReason reason,
								   TimestampTz started_at);
static void launcher_start_workers(void);
static bool launcher_start_worker(LauncherDb *db, TimestampTz now,
								  bool *no_slot);
static long launcher_next_timeout(TimestampTz next_rescan);
static int	launcher_backoff_ms(int failures);
static void launcher_release_db(LauncherDb *db);

static void launcher_utility_hook(PlannedStmt *pstmt, const char *queryString,
								  bool readOnlyTree,
								  ProcessUtilityContext context,
								  ParamListInfo params,
								  QueryEnvironment *queryEnv,
								  DestReceiver *dest, QueryCompletion *qc);
static void launcher_pause_database(const char *dbname);
static void launcher_xact_callback(XactEvent event, void *arg);
static void launcher_backend_exit(int code, Datum arg);
static const char *launcher_slot_state_name(const MsgqWorkerSlot *slot);


/*
 * Settings
 */

/*
 * msgq_bgw_define_gucs
 *
 * Called from _PG_init before the "msgq" prefix is reserved.  The slot
 * count sizes shared memory, so it exists only when preloading.
 */
void
msgq_bgw_define_gucs(void)
{
	DefineCustomBoolVariable("msgq.worker_enabled",
							 "Runs msgq's timed maintenance in the per-database workers.",
							 "When off, the workers stay connected but idle and run "
							 "no maintenance cycle; msgq.run_maintenance() still works.",
							 &msgq_worker_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("msgq.worker_naptime",
							"Time between two maintenance cycles of a per-database worker.",
							NULL,
							&msgq_worker_naptime,
							1000, 10, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("msgq.launcher_naptime",
							"Time between two scans of pg_database by the msgq launcher.",
							"Database commands and CREATE EXTENSION msgq also wake "
							"the launcher when they commit.",
							&msgq_launcher_naptime,
							10000, 100, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("msgq.max_workers",
								"Maximum number of per-database msgq workers.",
								"Each uses a background worker process: "
								"\"max_worker_processes\" must leave room for them, "
								"the launcher and every other background worker.",
								&msgq_max_workers,
								8, 0, MAX_BACKENDS,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
}


/*
 * Shared memory
 */

static Size
launcher_slots_size(void)
{
	return add_size(offsetof(MsgqBgwShared, slots),
					mul_size(msgq_max_workers, sizeof(MsgqWorkerSlot)));
}

static Size
launcher_paused_size(void)
{
	return mul_size(MaxBackends, sizeof(Oid));
}

/*
 * msgq_bgw_shmem_size
 *
 * Called from the shmem_request_hook, when MaxBackends is known.
 */
Size
msgq_bgw_shmem_size(void)
{
	return add_size(launcher_slots_size(), launcher_paused_size());
}

/*
 * msgq_bgw_shmem_init
 *
 * Called from the shmem_startup_hook; the caller holds AddinShmemInitLock.
 */
void
msgq_bgw_shmem_init(void)
{
	bool		found;
	bool		found_paused;
	Oid		   *paused;

	msgq_bgw_shared = ShmemInitStruct("msgq workers",
									  launcher_slots_size(), &found);
	paused = ShmemInitStruct("msgq paused databases",
							 launcher_paused_size(), &found_paused);

	if (!found)
	{
		memset(msgq_bgw_shared, 0, launcher_slots_size());
		memset(paused, 0, launcher_paused_size());
		msgq_bgw_shared->next_token = 1;
		ConditionVariableInit(&msgq_bgw_shared->exit_cv);
		msgq_bgw_shared->npaused = MaxBackends;
		msgq_bgw_shared->paused = paused;
		msgq_bgw_shared->nslots = msgq_max_workers;
	}
}

LWLock *
msgq_bgw_lock(void)
{
	return &(GetNamedLWLockTranche("msgq")[1].lock);
}

/*
 * msgq_bgw_database_paused
 *
 * Is a database command running against this database?  Caller must hold
 * msgq_bgw_lock().
 */
bool
msgq_bgw_database_paused(Oid dboid)
{
	int			i;

	for (i = 0; i < msgq_bgw_shared->npaused; i++)
	{
		if (msgq_bgw_shared->paused[i] == dboid)
			return true;
	}
	return false;
}

/*
 * msgq_bgw_wake_launcher
 *
 * Set the launcher's latch, if it runs.  Caller must hold msgq_bgw_lock().
 */
void
msgq_bgw_wake_launcher(void)
{
	if (msgq_bgw_shared->launcher_latch != NULL)
		SetLatch(msgq_bgw_shared->launcher_latch);
}


/*
 * msgq_bgw_wake_worker
 *
 * Wake the worker of a database for its deliveries (delivery.c), from a
 * transaction that has just committed some.  The flag tells the worker
 * that the wake-up needs no maintenance cycle.
 */
void
msgq_bgw_wake_worker(Oid dboid)
{
	int			i;

	if (msgq_bgw_shared == NULL)
		return;
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	for (i = 0; i < msgq_bgw_shared->nslots; i++)
	{
		MsgqWorkerSlot *slot = &msgq_bgw_shared->slots[i];

		if (slot->state == MSGQ_SLOT_RUNNING && slot->dboid == dboid)
		{
			slot->delivery_requested = true;
			if (slot->latch != NULL)
				SetLatch(slot->latch);
			break;
		}
	}
	LWLockRelease(msgq_bgw_lock());
}

/*
 * msgq_bgw_wake_esm
 *
 * A commit wrote to a source of the database's event source mappings:
 * wake its runners, or the worker when it has none.
 */
void
msgq_bgw_wake_esm(Oid dboid)
{
	int			i,
				r;

	if (msgq_bgw_shared == NULL)
		return;
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	for (i = 0; i < msgq_bgw_shared->nslots; i++)
	{
		MsgqWorkerSlot *slot = &msgq_bgw_shared->slots[i];
		bool		any = false;

		if (slot->state != MSGQ_SLOT_RUNNING || slot->dboid != dboid)
			continue;
		for (r = 0; r < MSGQ_MAX_ESM_RUNNERS; r++)
			if (slot->runner_latches[r] != NULL)
			{
				SetLatch(slot->runner_latches[r]);
				any = true;
			}
		if (!any)
		{
			slot->delivery_requested = true;
			if (slot->latch != NULL)
				SetLatch(slot->latch);
		}
		break;
	}
	LWLockRelease(msgq_bgw_lock());
}

/*
 * The launcher process
 */

/*
 * msgq_bgw_register_launcher
 *
 * Register the launcher from _PG_init.  It starts once recovery has
 * finished (the workers write), and the postmaster restarts it a few
 * seconds after it dies for any reason other than a clean exit.
 */
void
msgq_bgw_register_launcher(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = MSGQ_BGW_LAUNCHER_RESTART_S;
	strlcpy(bgw.bgw_library_name, "msgq", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "msgq_launcher_main", BGW_MAXLEN);
	strlcpy(bgw.bgw_name, "msgq launcher", BGW_MAXLEN);
	strlcpy(bgw.bgw_type, "msgq launcher", BGW_MAXLEN);
	bgw.bgw_main_arg = (Datum) 0;
	bgw.bgw_notify_pid = 0;

	RegisterBackgroundWorker(&bgw);
}

/*
 * msgq_launcher_main
 *
 * Entry point of the launcher.  Each turn of the loop takes the requests
 * posted by committed transactions, rescans pg_database when due, reaps
 * exited workers, starts the workers that are due, and sleeps until the
 * next deadline or until its latch is set (by a request, by the postmaster
 * when a worker it registered starts or stops, or by an exiting worker).
 */
void
msgq_launcher_main(Datum main_arg)
{
	HASHCTL		ctl;
	TimestampTz next_rescan;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* No database: only the shared catalogs, pg_database among them. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	launcher_wait_event = MSGQ_WAIT_EVENT("MsgqLauncherMain");

	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	msgq_bgw_shared->launcher_pid = MyProcPid;
	msgq_bgw_shared->launcher_latch = MyLatch;
	msgq_bgw_shared->launcher_started_at = GetCurrentTimestamp();
	msgq_bgw_shared->rescans = 0;
	msgq_bgw_shared->last_rescan_at = 0;
	LWLockRelease(msgq_bgw_lock());
	before_shmem_exit(launcher_shmem_exit, (Datum) 0);

	launcher_loop_cxt = AllocSetContextCreate(TopMemoryContext,
											  "msgq launcher loop",
											  ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(LauncherDb);
	launcher_dbs = hash_create("msgq launcher databases", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS);

	ereport(DEBUG1,
			(errmsg_internal("msgq launcher started with %d worker slots",
							 msgq_bgw_shared->nslots)));

	/* Know the databases first, then take over what a predecessor left. */
	launcher_rescan();
	launcher_adopt_slots();
	next_rescan = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  msgq_launcher_naptime);

	for (;;)
	{
		bool		rescan;
		bool		probe_all;
		Oid			probes[MSGQ_BGW_MAX_PROBES];
		int			nprobes;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a shorter naptime takes effect at once */
			next_rescan = Min(next_rescan,
							  TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  msgq_launcher_naptime));
		}

		MemoryContextReset(launcher_loop_cxt);

		launcher_take_requests(&rescan, &probe_all, probes, &nprobes);

		now = GetCurrentTimestamp();
		if (rescan || now >= next_rescan)
		{
			launcher_rescan();
			next_rescan = TimestampTzPlusMilliseconds(now, msgq_launcher_naptime);
		}
		launcher_apply_probes(probe_all, probes, nprobes);
		launcher_reap_slots();
		launcher_start_workers();

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 launcher_next_timeout(next_rescan),
						 launcher_wait_event);
		ResetLatch(MyLatch);
	}
}

/*
 * Unpublish the launcher.  Its workers keep running; the next launcher
 * adopts them.
 */
static void
launcher_shmem_exit(int code, Datum arg)
{
	LWLockReleaseAll();
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	msgq_bgw_shared->launcher_pid = 0;
	msgq_bgw_shared->launcher_latch = NULL;
	LWLockRelease(msgq_bgw_lock());
}

/*
 * The databases that may run a worker: not templates, accepting
 * connections, not left invalid by an interrupted DROP DATABASE.  Read
 * the way autovacuum reads pg_database, in a transaction of our own; the
 * result lives in the loop context.
 */
static List *
launcher_read_databases(void)
{
	List	   *result = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext oldcxt;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);

	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database pgdb = (Form_pg_database) GETSTRUCT(tup);
		LauncherDbInfo *info;

		if (pgdb->datistemplate || !pgdb->datallowconn ||
			database_is_invalid_form(pgdb))
			continue;

		oldcxt = MemoryContextSwitchTo(launcher_loop_cxt);
		info = palloc(sizeof(LauncherDbInfo));
		info->dboid = pgdb->oid;
		strlcpy(info->name, NameStr(pgdb->datname), NAMEDATALEN);
		result = lappend(result, info);
		MemoryContextSwitchTo(oldcxt);
	}

	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	return result;
}

/*
 * Bring the hash in line with pg_database: new databases become WANTED
 * (their first worker is the probe for msgq), vanished or no longer
 * eligible ones are forgotten, their workers stopped.
 */
static void
launcher_rescan(void)
{
	List	   *dbs = launcher_read_databases();
	ListCell   *lc;
	HASH_SEQ_STATUS status;
	LauncherDb *db;

	hash_seq_init(&status, launcher_dbs);
	while ((db = hash_seq_search(&status)) != NULL)
		db->seen = false;

	foreach(lc, dbs)
	{
		LauncherDbInfo *info = lfirst(lc);
		bool		found;

		db = hash_search(launcher_dbs, &info->dboid, HASH_ENTER, &found);
		if (!found)
		{
			db->state = LAUNCHER_DB_WANTED;
			db->slotno = -1;
			db->token = 0;
			db->handle = NULL;
			db->failures = 0;
			db->retry_at = 0;
			db->probe_pending = false;
		}
		strlcpy(db->name, info->name, NAMEDATALEN);
		db->seen = true;
	}

	hash_seq_init(&status, launcher_dbs);
	while ((db = hash_seq_search(&status)) != NULL)
	{
		if (!db->seen)
			launcher_forget(db);
	}

	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	msgq_bgw_shared->rescans++;
	msgq_bgw_shared->last_rescan_at = GetCurrentTimestamp();
	LWLockRelease(msgq_bgw_lock());
}

/*
 * A database is gone or no longer eligible.  Cancel a registration not yet
 * claimed, stop a running worker, and drop the entry once no slot is held.
 * Removing the entry just returned by hash_seq_search is allowed.
 */
static void
launcher_forget(LauncherDb *db)
{
	bool		slot_freed = false;

	if (db->slotno >= 0)
	{
		MsgqWorkerSlot *slot = &msgq_bgw_shared->slots[db->slotno];

		LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
		if (slot->token == db->token)
		{
			if (slot->state == MSGQ_SLOT_STARTING)
			{
				/* its worker will fail to claim the slot */
				slot->state = MSGQ_SLOT_FREE;
				slot->dboid = InvalidOid;
				slot_freed = true;
			}
			else if (slot->state == MSGQ_SLOT_RUNNING && slot->pid != 0)
			{
				slot->stop_requested = true;
				kill(slot->pid, SIGTERM);
			}
			LWLockRelease(msgq_bgw_lock());

			/* and the postmaster need not start it at all */
			if (slot_freed && db->handle != NULL)
				TerminateBackgroundWorker(db->handle);
		}
		else
		{
			/* cannot happen: the slot is not ours, do not hold on to it */
			LWLockRelease(msgq_bgw_lock());
			slot_freed = true;
		}
	}

	if (db->slotno < 0 || slot_freed)
	{
		launcher_release_db(db);
		hash_search(launcher_dbs, &db->dboid, HASH_REMOVE, NULL);
	}
	else
		db->state = LAUNCHER_DB_GONE;
}

/*
 * Forget the slot and handle of an entry.
 */
static void
launcher_release_db(LauncherDb *db)
{
	if (db->handle != NULL)
		pfree(db->handle);
	db->handle = NULL;
	db->slotno = -1;
	db->token = 0;
}

/*
 * At launcher start: take over the slots of a previous launcher.  RUNNING
 * workers are adopted (without a handle; they wake us when they exit);
 * STARTING slots are freed, so a registration the old launcher made but
 * the postmaster has not started yet fails its claim; EXITED slots are
 * reaped by the main loop.
 */
static void
launcher_adopt_slots(void)
{
	int			i;

	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	for (i = 0; i < msgq_bgw_shared->nslots; i++)
	{
		MsgqWorkerSlot *slot = &msgq_bgw_shared->slots[i];
		LauncherDb *db;
		bool		found;

		if (slot->state == MSGQ_SLOT_STARTING)
		{
			slot->state = MSGQ_SLOT_FREE;
			slot->dboid = InvalidOid;
		}
		else if (slot->state == MSGQ_SLOT_RUNNING)
		{
			db = hash_search(launcher_dbs, &slot->dboid, HASH_ENTER, &found);
			if (found && db->state == LAUNCHER_DB_WANTED && db->slotno < 0)
			{
				db->state = LAUNCHER_DB_ACTIVE;
				db->slotno = i;
				db->token = slot->token;
				db->handle = NULL;
				continue;
			}

			/* not a database we serve (any more): stop it */
			if (!found)
			{
				db->name[0] = '\0';
				db->failures = 0;
				db->retry_at = 0;
				db->probe_pending = false;
				db->seen = false;
				db->handle = NULL;
				db->state = LAUNCHER_DB_GONE;
				db->slotno = i;
				db->token = slot->token;
			}
			slot->stop_requested = true;
			if (slot->pid != 0)
				kill(slot->pid, SIGTERM);
		}
	}
	LWLockRelease(msgq_bgw_lock());
}

/*
 * Take the requests posted by committed transactions.
 */
static void
launcher_take_requests(bool *rescan, bool *probe_all, Oid *probes,
					   int *nprobes)
{
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	*rescan = msgq_bgw_shared->rescan_requested;
	*probe_all = msgq_bgw_shared->probe_all_requested;
	*nprobes = msgq_bgw_shared->nprobes;
	memcpy(probes, msgq_bgw_shared->probes, sizeof(Oid) * *nprobes);
	msgq_bgw_shared->rescan_requested = false;
	msgq_bgw_shared->probe_all_requested = false;
	msgq_bgw_shared->nprobes = 0;
	LWLockRelease(msgq_bgw_lock());

	/* a probe may be for a database created since the last scan */
	if (*probe_all || *nprobes > 0)
		*rescan = true;
}

/*
 * Turn probe requests into (re)starts.  A database whose worker is active
 * right now gets probe_pending: if that worker reports "not installed" (it
 * may have looked before the CREATE EXTENSION committed) it is probed
 * again at once.
 */
static void
launcher_apply_probes(bool probe_all, Oid *probes, int nprobes)
{
	HASH_SEQ_STATUS status;
	LauncherDb *db;
	int			i;

	for (i = 0; i < nprobes; i++)
	{
		db = hash_search(launcher_dbs, &probes[i], HASH_FIND, NULL);
		if (db == NULL)
			continue;			/* a template, or not accepting connections */
		if (db->state == LAUNCHER_DB_NOT_INSTALLED ||
			db->state == LAUNCHER_DB_WANTED)
		{
			db->state = LAUNCHER_DB_WANTED;
			db->failures = 0;
			db->retry_at = 0;
		}
		else if (db->state == LAUNCHER_DB_ACTIVE)
			db->probe_pending = true;
	}

	if (!probe_all)
		return;

	hash_seq_init(&status, launcher_dbs);
	while ((db = hash_seq_search(&status)) != NULL)
	{
		if (db->state == LAUNCHER_DB_NOT_INSTALLED)
		{
			db->state = LAUNCHER_DB_WANTED;
			db->retry_at = 0;
		}
		else if (db->state == LAUNCHER_DB_ACTIVE)
			db->probe_pending = true;
	}
}

/*
 * Collect the workers that have exited, and the registrations the
 * postmaster gave up on, and decide what each database does next.
 */
static void
launcher_reap_slots(void)
{
	HASH_SEQ_STATUS status;
	LauncherDb *db;
	LauncherReaped *reaped;
	int			nreaped = 0;
	int			i;

	/*
	 * A registration that stopped without claiming its slot never ran:
	 * typically the postmaster could not fork.  The handle says STOPPED
	 * only after the process is gone, so the slot cannot change after.
	 */
	hash_seq_init(&status, launcher_dbs);
	while ((db = hash_seq_search(&status)) != NULL)
	{
		pid_t		pid;

		if (db->slotno < 0 || db->handle == NULL)
			continue;
		if (GetBackgroundWorkerPid(db->handle, &pid) == BGWH_STOPPED)
		{
			MsgqWorkerSlot *slot = &msgq_bgw_shared->slots[db->slotno];

			LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
			if (slot->token == db->token && slot->state == MSGQ_SLOT_STARTING)
			{
				slot->state = MSGQ_SLOT_EXITED;
				slot->exit_reason = MSGQ_EXIT_NOT_STARTED;
			}
			LWLockRelease(msgq_bgw_lock());
		}
	}

	reaped = MemoryContextAlloc(launcher_loop_cxt,
								sizeof(LauncherReaped) *
								Max(msgq_bgw_shared->nslots, 1));

	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	for (i = 0; i < msgq_bgw_shared->nslots; i++)
	{
		MsgqWorkerSlot *slot = &msgq_bgw_shared->slots[i];

		if (slot->state != MSGQ_SLOT_EXITED)
			continue;
		reaped[nreaped].slotno = i;
		reaped[nreaped].dboid = slot->dboid;
		reaped[nreaped].token = slot->token;
		reaped[nreaped].reason = slot->exit_reason;
		reaped[nreaped].started_at = slot->started_at;
		nreaped++;
		slot->state = MSGQ_SLOT_FREE;
		slot->dboid = InvalidOid;
	}
	LWLockRelease(msgq_bgw_lock());

	for (i = 0; i < nreaped; i++)
	{
		LauncherReaped *r = &reaped[i];

		db = hash_search(launcher_dbs, &r->dboid, HASH_FIND, NULL);
		if (db == NULL)
			continue;
		/* the entry's own slot, or an unowned slot left by a predecessor */
		if (db->slotno == r->slotno && db->token == r->token)
			launcher_worker_exited(db, r->reason, r->started_at);
		else if (db->slotno < 0 && db->state != LAUNCHER_DB_GONE)
			launcher_worker_exited(db, r->reason, r->started_at);
	}
}

/*
 * The worker of a database has exited for this reason: choose the
 * database's next state.
 */
static void
launcher_worker_exited(LauncherDb *db, MsgqExitReason reason,
					   TimestampTz started_at)
{
	TimestampTz now = GetCurrentTimestamp();

	launcher_release_db(db);

	if (db->state == LAUNCHER_DB_GONE)
	{
		hash_search(launcher_dbs, &db->dboid, HASH_REMOVE, NULL);
		return;
	}

	switch (reason)
	{
		case MSGQ_EXIT_NOT_INSTALLED:
			db->failures = 0;
			if (db->probe_pending)
			{
				db->state = LAUNCHER_DB_WANTED;
				db->retry_at = 0;
			}
			else
			{
				db->state = LAUNCHER_DB_NOT_INSTALLED;
				db->retry_at = TimestampTzPlusMilliseconds(now,
														   MSGQ_BGW_RECHECK_MS);
			}
			break;

		case MSGQ_EXIT_STOPPED:
		case MSGQ_EXIT_PAUSED:
			/* stopped on purpose: start again as soon as allowed */
			db->state = LAUNCHER_DB_WANTED;
			db->retry_at = 0;
			break;

		case MSGQ_EXIT_NONE:
		case MSGQ_EXIT_FAILED:
		case MSGQ_EXIT_NOT_STARTED:
			if (started_at != 0 &&
				TimestampDifferenceExceeds(started_at, now,
										   MSGQ_BGW_HEALTHY_RUN_MS))
				db->failures = 0;
			db->failures++;
			db->state = LAUNCHER_DB_WANTED;
			db->retry_at = TimestampTzPlusMilliseconds(now,
													   launcher_backoff_ms(db->failures));
			ereport(DEBUG1,
					(errmsg_internal("msgq worker for database \"%s\" failed, restarting in %d ms",
									 db->name, launcher_backoff_ms(db->failures))));
			break;
	}
	db->probe_pending = false;
}

static int
launcher_backoff_ms(int failures)
{
	int			ms = MSGQ_BGW_BACKOFF_MIN_MS;

	while (--failures > 0 && ms < MSGQ_BGW_BACKOFF_MAX_MS)
		ms *= 2;
	return Min(ms, MSGQ_BGW_BACKOFF_MAX_MS);
}

/*
 * Start the workers that are due.  Databases found without msgq are
 * re-probed when their recheck time comes.
 */
static void
launcher_start_workers(void)
{
	HASH_SEQ_STATUS status;
	LauncherDb *db;
	TimestampTz now = GetCurrentTimestamp();
	bool		short_of_slots = false;

	/* msgq.max_workers = 0: the workers are disabled */
	if (msgq_bgw_shared->nslots == 0)
		return;

	hash_seq_init(&status, launcher_dbs);
	while ((db = hash_seq_search(&status)) != NULL)
	{
		bool		no_slot = false;

		if (db->state == LAUNCHER_DB_NOT_INSTALLED && db->retry_at <= now)
		{
			db->state = LAUNCHER_DB_WANTED;
			db->retry_at = 0;
		}
		if (db->state != LAUNCHER_DB_WANTED || db->retry_at > now)
			continue;

		if (!launcher_start_worker(db, now, &no_slot))
		{
			short_of_slots = no_slot;
			hash_seq_term(&status);
			break;
		}
	}

	if (!short_of_slots)
		launcher_slots_warned = false;
}

/*
 * Start the worker of one database.  Returns false when starting any
 * other worker now is pointless (no free slot, no free background worker,
 * or a rescan is pending); *no_slot tells the first case.
 */
static bool
launcher_start_worker(LauncherDb *db, TimestampTz now, bool *no_slot)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	MsgqWorkerArgs args;
	MsgqWorkerSlot *slot = NULL;
	MemoryContext oldcxt;
	bool		registered;
	int			slotno = -1;
	int			i;

	*no_slot = false;

	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);

	/*
	 * A committed database command may have just dropped this database and
	 * released its pause: rescan first.  Our latch is set, so the main
	 * loop comes back at once.
	 */
	if (msgq_bgw_shared->rescan_requested)
	{
		LWLockRelease(msgq_bgw_lock());
		return false;
	}

	/* A database command runs against it: its end wakes us. */
	if (msgq_bgw_database_paused(db->dboid))
	{
		LWLockRelease(msgq_bgw_lock());
		return true;
	}

	for (i = 0; i < msgq_bgw_shared->nslots; i++)
	{
		MsgqWorkerSlot *s = &msgq_bgw_shared->slots[i];

		if (s->state != MSGQ_SLOT_FREE && s->dboid == db->dboid)
		{
			/* not reaped yet; never start a second worker */
			LWLockRelease(msgq_bgw_lock());
			return true;
		}
		if (s->state == MSGQ_SLOT_FREE && slotno < 0)
			slotno = i;
	}

	if (slotno < 0)
	{
		bool		all_serving = true;

		/*
		 * Slots held by probes (workers that have not found msgq yet) free
		 * up in moments; only slots all held by workers serving msgq mean
		 * that msgq.max_workers is too small.
		 */
		for (i = 0; i < msgq_bgw_shared->nslots; i++)
		{
			if (!msgq_bgw_shared->slots[i].installed)
				all_serving = false;
		}
		LWLockRelease(msgq_bgw_lock());
		*no_slot = true;
		if (all_serving && !launcher_slots_warned)
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("no free msgq worker slot for database \"%s\"",
							db->name),
					 errdetail("All %d slots are in use; the worker will start when one is free.",
							   msgq_bgw_shared->nslots),
					 errhint("You may need to increase \"msgq.max_workers\".")));
		if (all_serving)
			launcher_slots_warned = true;
		return false;
	}

	slot = &msgq_bgw_shared->slots[slotno];
	slot->state = MSGQ_SLOT_STARTING;
	slot->dboid = db->dboid;
	slot->token = msgq_bgw_shared->next_token++;
	slot->pid = 0;
	slot->latch = NULL;
	slot->stop_requested = false;
	slot->enabled = msgq_worker_enabled;
	slot->installed = false;
	slot->delivery_requested = false;
	slot->exit_reason = MSGQ_EXIT_NONE;
	slot->registered_at = now;
	slot->started_at = 0;
	slot->last_cycle_at = 0;
	slot->cycles = 0;
	memset(slot->runner_latches, 0, sizeof(slot->runner_latches));
	args.dboid = db->dboid;
	args.token = slot->token;
	LWLockRelease(msgq_bgw_lock());

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(bgw.bgw_library_name, "msgq", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "msgq_worker_main", BGW_MAXLEN);
	snprintf(bgw.bgw_name, BGW_MAXLEN, "msgq worker for database \"%s\"",
			 db->name);
	strlcpy(bgw.bgw_type, "msgq worker", BGW_MAXLEN);
	bgw.bgw_main_arg = Int32GetDatum(slotno);
	StaticAssertStmt(sizeof(MsgqWorkerArgs) <= BGW_EXTRALEN,
					 "MsgqWorkerArgs does not fit in bgw_extra");
	memcpy(bgw.bgw_extra, &args, sizeof(args));
	bgw.bgw_notify_pid = MyProcPid;

	/* the handle outlives the loop context */
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	registered = RegisterDynamicBackgroundWorker(&bgw, &handle);
	MemoryContextSwitchTo(oldcxt);

	if (!registered)
	{
		LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
		if (slot->token == args.token && slot->state == MSGQ_SLOT_STARTING)
		{
			slot->state = MSGQ_SLOT_FREE;
			slot->dboid = InvalidOid;
		}
		LWLockRelease(msgq_bgw_lock());

		db->failures++;
		db->retry_at = TimestampTzPlusMilliseconds(now,
												   launcher_backoff_ms(db->failures));
		if (!launcher_register_warned)
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("could not register background process"),
					 errdetail("The msgq worker for database \"%s\" will be started later.",
							   db->name),
					 errhint("You may need to increase \"max_worker_processes\".")));
		launcher_register_warned = true;
		return false;
	}

	launcher_register_warned = false;
	db->state = LAUNCHER_DB_ACTIVE;
	db->slotno = slotno;
	db->token = args.token;
	db->handle = handle;
	db->probe_pending = false;
	return true;
}

/*
 * How long the launcher may sleep: until the next rescan or the next
 * timed (re)start.  Starts blocked by a pause or by a lack of slots wait
 * for the latch, which the end of the pause or an exiting worker sets.
 */
static long
launcher_next_timeout(TimestampTz next_rescan)
{
	HASH_SEQ_STATUS status;
	LauncherDb *db;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = next_rescan;

	hash_seq_init(&status, launcher_dbs);
	while ((db = hash_seq_search(&status)) != NULL)
	{
		if ((db->state == LAUNCHER_DB_WANTED ||
			 db->state == LAUNCHER_DB_NOT_INSTALLED) &&
			db->retry_at > now && db->retry_at < wake)
			wake = db->retry_at;
	}

	return TimestampDifferenceMilliseconds(now, wake);
}


/*
 * Hooks run by ordinary backends
 */

/*
 * msgq_bgw_install_hooks
 *
 * Called from _PG_init when preloading: the utility hook and the
 * transaction callback are inherited by every backend.
 */
void
msgq_bgw_install_hooks(void)
{
	launcher_prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = launcher_utility_hook;
	RegisterXactCallback(launcher_xact_callback, NULL);
}

/*
 * Pause the database a command is about to need exclusively, note what
 * the launcher must learn at commit, and run the command.
 */
static void
launcher_utility_hook(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (msgq_bgw_shared != NULL)
	{
		switch (nodeTag(parsetree))
		{
			case T_DropdbStmt:
				launcher_xact_rescan = true;
				launcher_pause_database(((DropdbStmt *) parsetree)->dbname);
				break;

			case T_CreatedbStmt:
				{
					CreatedbStmt *stmt = (CreatedbStmt *) parsetree;
					const char *source_db = "template1";
					ListCell   *lc;

					foreach(lc, stmt->options)
					{
						DefElem    *defel = lfirst(lc);

						if (strcmp(defel->defname, "template") == 0 &&
							defel->arg != NULL)
							source_db = defGetString(defel);
					}
					launcher_xact_rescan = true;
					launcher_pause_database(source_db);
				}
				break;

			case T_AlterDatabaseStmt:
				{
					AlterDatabaseStmt *stmt = (AlterDatabaseStmt *) parsetree;
					ListCell   *lc;

					/* ALLOW_CONNECTIONS and IS_TEMPLATE change eligibility */
					launcher_xact_rescan = true;
					foreach(lc, stmt->options)
					{
						DefElem    *defel = lfirst(lc);

						if (strcmp(defel->defname, "tablespace") == 0)
							launcher_pause_database(stmt->dbname);
					}
				}
				break;

			case T_RenameStmt:
				if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				{
					launcher_xact_rescan = true;
					launcher_pause_database(((RenameStmt *) parsetree)->subname);
				}
				break;

			default:
				break;
		}
	}

	if (launcher_prev_utility_hook)
		launcher_prev_utility_hook(pstmt, queryString, readOnlyTree, context,
								   params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (msgq_bgw_shared == NULL)
		return;

	if (IsA(parsetree, CreateExtensionStmt))
	{
		if (strcmp(((CreateExtensionStmt *) parsetree)->extname,
				   MSGQ_EXTENSION_NAME) == 0)
			launcher_xact_created = true;
	}
	else if (IsA(parsetree, DropStmt) &&
			 ((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION)
	{
		ListCell   *lc;

		foreach(lc, ((DropStmt *) parsetree)->objects)
		{
			if (strcmp(strVal(lfirst(lc)), MSGQ_EXTENSION_NAME) == 0)
				launcher_xact_dropped = true;
		}
	}
}

/*
 * Pause a database for the rest of the current transaction: no worker may
 * start in it, and its running worker is stopped.  Wait (at most
 * MSGQ_BGW_PAUSE_WAIT_MS) until the worker has exited.
 *
 * Only the database's owner (or a superuser) pauses it: every command
 * handled here requires that, so nobody else can stop a worker by issuing
 * a command that will fail anyway.  A backend holds one pause at a time; a
 * second database command in the same transaction (only RENAME can be in
 * a transaction block) moves the pause to its database.
 */
static void
launcher_pause_database(const char *dbname)
{
	MsgqBgwShared *shared = msgq_bgw_shared;
	Oid			dboid;
	TimestampTz deadline;
	int			i;

	if (dbname == NULL || MSGQ_MY_BACKEND_ID < 1 || MSGQ_MY_BACKEND_ID > shared->npaused)
		return;

	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid) || dboid == MyDatabaseId)
		return;
	if (!msgq_database_ownercheck(dboid, GetUserId()))
		return;

	if (!launcher_exit_callback_set)
	{
		before_shmem_exit(launcher_backend_exit, (Datum) 0);
		launcher_exit_callback_set = true;
	}

	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	launcher_pause_index = MSGQ_MY_BACKEND_ID - 1;
	shared->paused[launcher_pause_index] = dboid;
	for (i = 0; i < shared->nslots; i++)
	{
		MsgqWorkerSlot *slot = &shared->slots[i];

		if (slot->state == MSGQ_SLOT_RUNNING && slot->dboid == dboid &&
			slot->pid != 0)
		{
			slot->stop_requested = true;
			kill(slot->pid, SIGTERM);
		}
	}
	LWLockRelease(msgq_bgw_lock());

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   MSGQ_BGW_PAUSE_WAIT_MS);
	ConditionVariablePrepareToSleep(&shared->exit_cv);
	for (;;)
	{
		bool		running = false;
		long		remaining;

		LWLockAcquire(msgq_bgw_lock(), LW_SHARED);
		for (i = 0; i < shared->nslots; i++)
		{
			if (shared->slots[i].state == MSGQ_SLOT_RUNNING &&
				shared->slots[i].dboid == dboid)
				running = true;
		}
		LWLockRelease(msgq_bgw_lock());

		if (!running)
			break;

		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
													deadline);
		if (remaining <= 0)
		{
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("msgq worker of database \"%s\" did not exit within %d ms",
							dbname, MSGQ_BGW_PAUSE_WAIT_MS)));
			break;
		}
		(void) ConditionVariableTimedSleep(&shared->exit_cv, remaining,
										   MSGQ_WAIT_EVENT("MsgqWorkerExit"));
	}
	ConditionVariableCancelSleep();
}

/*
 * End of transaction: release the pause, and post what a commit taught us
 * (a rescan, a probe, a wake-up) to the launcher or the worker.
 */
static void
launcher_xact_callback(XactEvent event, void *arg)
{
	MsgqBgwShared *shared = msgq_bgw_shared;
	bool		commit;
	bool		wake = false;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
			commit = true;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			commit = false;
			break;
		default:
			return;
	}

	if (launcher_pause_index < 0 && !launcher_xact_rescan &&
		!launcher_xact_created && !launcher_xact_dropped)
		return;

	if (shared != NULL)
	{
		LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);

		if (launcher_pause_index >= 0)
		{
			shared->paused[launcher_pause_index] = InvalidOid;
			shared->rescan_requested = true;
			wake = true;
		}

		if (commit && launcher_xact_rescan)
		{
			shared->rescan_requested = true;
			wake = true;
		}

		if (commit && launcher_xact_created)
		{
			int			i;
			bool		queued = false;

			for (i = 0; i < shared->nprobes; i++)
			{
				if (shared->probes[i] == MyDatabaseId)
					queued = true;
			}
			if (!queued && shared->nprobes < MSGQ_BGW_MAX_PROBES)
				shared->probes[shared->nprobes++] = MyDatabaseId;
			else if (!queued)
				shared->probe_all_requested = true;
			wake = true;
		}

		if (commit && launcher_xact_dropped)
		{
			int			i;

			for (i = 0; i < shared->nslots; i++)
			{
				MsgqWorkerSlot *slot = &shared->slots[i];

				if (slot->state == MSGQ_SLOT_RUNNING &&
					slot->dboid == MyDatabaseId && slot->latch != NULL)
					SetLatch(slot->latch);
			}
		}

		if (wake)
			msgq_bgw_wake_launcher();
		LWLockRelease(msgq_bgw_lock());
	}

	launcher_pause_index = -1;
	launcher_xact_rescan = false;
	launcher_xact_created = false;
	launcher_xact_dropped = false;
}

/*
 * Backend exit with a pause held.  A FATAL error during a database command
 * normally reaches the abort callback through ShutdownPostgres; this is
 * the backstop for any path that does not, so a pause never outlives its
 * backend.
 */
static void
launcher_backend_exit(int code, Datum arg)
{
	if (launcher_pause_index < 0 || msgq_bgw_shared == NULL)
		return;

	LWLockReleaseAll();
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	msgq_bgw_shared->paused[launcher_pause_index] = InvalidOid;
	msgq_bgw_shared->rescan_requested = true;
	msgq_bgw_wake_launcher();
	LWLockRelease(msgq_bgw_lock());
	launcher_pause_index = -1;
}


/*
 * Status
 */

static const char *
launcher_slot_state_name(const MsgqWorkerSlot *slot)
{
	switch (slot->state)
	{
		case MSGQ_SLOT_FREE:
			return "free";
		case MSGQ_SLOT_STARTING:
			return "starting";
		case MSGQ_SLOT_RUNNING:
			if (slot->stop_requested)
				return "stopping";
			return slot->enabled ? "running" : "disabled";
		case MSGQ_SLOT_EXITED:
			switch (slot->exit_reason)
			{
				case MSGQ_EXIT_NOT_INSTALLED:
					return "not installed";
				case MSGQ_EXIT_STOPPED:
				case MSGQ_EXIT_PAUSED:
					return "stopped";
				case MSGQ_EXIT_NOT_STARTED:
					return "not started";
				case MSGQ_EXIT_NONE:
				case MSGQ_EXIT_FAILED:
					return "failed";
			}
	}
	return "unknown";
}

PG_FUNCTION_INFO_V1(msgq_worker_status);

/*
 * msgq.worker_status(OUT pid integer, OUT database name, OUT state text,
 *					  OUT started_at timestamptz, OUT last_cycle_at timestamptz,
 *					  OUT cycles bigint) returns setof record
 *
 * The launcher and the per-database workers of the whole cluster.  The
 * launcher's row has no database; its state is "launcher" (or "launcher
 * stopped" between a crash and its restart), and last_cycle_at and cycles
 * report its scans of pg_database.  Then one row per slot in use, with the
 * worker's state: starting, running, disabled (msgq.worker_enabled is
 * off), stopping, or, briefly, how it exited (not installed, stopped,
 * failed, not started) until the launcher reaps the slot.
 */
Datum
msgq_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MsgqBgwShared *shared = msgq_bgw_shared;
	MsgqWorkerSlot *slots;
	int			nslots;
	pid_t		launcher_pid;
	TimestampTz launcher_started_at;
	TimestampTz last_rescan_at;
	int64		rescans;
	Datum		values[6];
	bool		nulls[6];
	int			i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	if (shared == NULL)
		return (Datum) 0;

	nslots = shared->nslots;
	slots = palloc(sizeof(MsgqWorkerSlot) * Max(nslots, 1));

	LWLockAcquire(msgq_bgw_lock(), LW_SHARED);
	launcher_pid = shared->launcher_pid;
	launcher_started_at = shared->launcher_started_at;
	last_rescan_at = shared->last_rescan_at;
	rescans = shared->rescans;
	memcpy(slots, shared->slots, sizeof(MsgqWorkerSlot) * nslots);
	LWLockRelease(msgq_bgw_lock());

	memset(nulls, false, sizeof(nulls));
	values[0] = Int32GetDatum((int32) launcher_pid);
	nulls[0] = (launcher_pid == 0);
	nulls[1] = true;
	values[2] = CStringGetTextDatum(launcher_pid != 0 ? "launcher" :
									"launcher stopped");
	values[3] = TimestampTzGetDatum(launcher_started_at);
	nulls[3] = (launcher_pid == 0 || launcher_started_at == 0);
	values[4] = TimestampTzGetDatum(last_rescan_at);
	nulls[4] = (launcher_pid == 0 || last_rescan_at == 0);
	values[5] = Int64GetDatum(rescans);
	nulls[5] = (launcher_pid == 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	for (i = 0; i < nslots; i++)
	{
		MsgqWorkerSlot *slot = &slots[i];
		char	   *dbname;

		if (slot->state == MSGQ_SLOT_FREE)
			continue;

		memset(nulls, false, sizeof(nulls));
		values[0] = Int32GetDatum((int32) slot->pid);
		nulls[0] = (slot->pid == 0);
		dbname = get_database_name(slot->dboid);
		if (dbname != NULL)
		{
			Name		name = (Name) palloc0(NAMEDATALEN);

			namestrcpy(name, dbname);
			values[1] = NameGetDatum(name);
		}
		else
			nulls[1] = true;
		values[2] = CStringGetTextDatum(launcher_slot_state_name(slot));
		values[3] = TimestampTzGetDatum(slot->started_at);
		nulls[3] = (slot->started_at == 0);
		values[4] = TimestampTzGetDatum(slot->last_cycle_at);
		nulls[4] = (slot->last_cycle_at == 0);
		values[5] = Int64GetDatum(slot->cycles);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
