/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database msgq worker: runs msgq's timed maintenance
 *	  (msgq_maintenance_cycle(), maintenance.c) every msgq.worker_naptime.
 *
 * The launcher (launcher.c) registers one worker per database, passing the
 * slot number as the main argument and (database, token) in bgw_extra.
 * Before it touches the database, the worker claims its slot under the
 * slot lock: the slot must still be STARTING with the same database and
 * token, and the database must not be paused by a running database
 * command.  Otherwise the registration is stale (the launcher that made it
 * died, or abandoned it) or unwelcome, and the worker exits without
 * connecting.  This claim is what makes a second worker for one database
 * impossible.
 *
 * Once connected, each turn of the loop runs one cycle in its own
 * transaction: it checks that msgq is still installed (a worker started in
 * a database without msgq, or whose extension was dropped, records "not
 * installed" in its slot and exits cleanly, and the launcher does not
 * restart it until a CREATE EXTENSION msgq commits there) and calls the
 * maintenance cycle.  With msgq.worker_enabled off the worker only checks
 * that msgq is still installed.
 *
 * An error in a cycle is not caught: the worker logs it and exits with
 * code 1, and the launcher restarts it after a backoff (1 s, doubling up
 * to 60 s; a worker that ran a minute before failing starts a new series).
 * A fresh process is the simplest way to be sure that nothing a failed
 * cycle left behind (SPI state, memory, locks) leaks into the next one,
 * and a backoff keeps a persistent error from turning into a fork loop.
 *
 * SIGTERM (shutdown, pg_terminate_backend, the launcher stopping a worker
 * whose database went away, or a database command pausing the database)
 * ends the worker through die(); an on_shmem_exit callback clears the
 * slot, wakes the launcher and broadcasts the slot condition variable that
 * database commands wait on.
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/xact.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "msgq.h"
#include "delivery.h"
#include "bgw.h"

PGDLLEXPORT void msgq_worker_main(Datum main_arg);
PGDLLEXPORT void msgq_esm_runner_main(Datum main_arg);

/* This worker's slot, once claimed */
static MsgqWorkerSlot *worker_slot = NULL;
static uint64 worker_token = 0;

static bool worker_claim_slot(int slotno, const MsgqWorkerArgs *args);
static void worker_shmem_exit(int code, Datum arg);
static bool worker_run_cycle(void);
static bool worker_check_installed(void);
static void worker_set_enabled(bool enabled);
static void worker_exit_not_installed(void) pg_attribute_noreturn();
static int	worker_manage_runners(bool installed);
static void worker_stop_runners(int code, Datum arg);

/* The event source mapping runners this worker registered */
static BackgroundWorkerHandle *runner_handles[MSGQ_MAX_ESM_RUNNERS];
static TimestampTz runners_checked_at = 0;

/*
 * msgq_worker_main
 *
 * Entry point of a per-database worker.
 */
void
msgq_worker_main(Datum main_arg)
{
	int			slotno = DatumGetInt32(main_arg);
	MsgqWorkerArgs args;
	uint32		wait_event;
	TimestampTz next_cycle = 0;
	bool		latch_woke = true;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (msgq_bgw_shared == NULL ||
		slotno < 0 || slotno >= msgq_bgw_shared->nslots ||
		!worker_claim_slot(slotno, &args))
		proc_exit(0);

	/*
	 * Registered before InitPostgres, so it runs after the process has left
	 * the proc array: a database command that waits for our slot to empty
	 * then finds nobody connected to the database.
	 */
	on_shmem_exit(worker_shmem_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	msgq_pin_process_search_path();
	/* runs before worker_shmem_exit: the runners go with the worker */
	on_shmem_exit(worker_stop_runners, (Datum) 0);

	/*
	 * The cycle's statements are short and run every naptime: compiling
	 * them with JIT would cost more than running them.
	 */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * A pass builds and frees megabytes (an event source mapping's batches
	 * and their JSON): with glibc's defaults the large blocks are mmap'ed
	 * and the heap's top trimmed after every pass, so that each pass pays
	 * page faults on fresh memory again (a fifth of the worker's time with
	 * 500-record batches).  Keep up to 64 MB of freed memory instead; it is
	 * only what an earlier pass had in use.
	 */
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif

	wait_event = MSGQ_WAIT_EVENT("MsgqWorkerMain");

	ereport(DEBUG1,
			(errmsg_internal("msgq worker started for database %u",
							 MyDatabaseId)));

	for (;;)
	{
		bool		delivery_only;
		long		timeout;
		long		delivery_ms;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		worker_set_enabled(msgq_worker_enabled);

		/* a wake-up only for deliveries runs no maintenance cycle */
		LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
		delivery_only = worker_slot->delivery_requested;
		worker_slot->delivery_requested = false;
		LWLockRelease(msgq_bgw_lock());

		now = GetCurrentTimestamp();
		if (!msgq_worker_enabled)
		{
			(void) worker_manage_runners(false);
			if (!worker_check_installed())
				worker_exit_not_installed();
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 msgq_worker_naptime,
							 wait_event);
			ResetLatch(MyLatch);
			continue;
		}

		/*
		 * A cycle every naptime, and at once when the latch was set for
		 * anything but deliveries (a DROP EXTENSION, a stop request).
		 */
		if (now >= next_cycle || (latch_woke && !delivery_only))
		{
			if (!worker_run_cycle())
				worker_exit_not_installed();
			next_cycle = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 msgq_worker_naptime);
		}

		/* deliveries after commit (delivery.c): due ones, finished transfers */
		delivery_ms = msgq_delivery_worker_pass();
		/* event source mappings' batches (esm.c), here or in the runners */
		if (worker_manage_runners(true) == 0)
		{
			long		esm_ms = msgq_esm_worker_pass();

			if (esm_ms >= 0 && (delivery_ms < 0 || esm_ms < delivery_ms))
				delivery_ms = esm_ms;
		}
		/* delivery streams' flushes (firehose.c), stream queries' windows (analytics.c) */
		{
			long		fh_ms = msgq_firehose_worker_pass();
			long		sq_ms = msgq_stream_queries_worker_pass();

			if (fh_ms >= 0 && (delivery_ms < 0 || fh_ms < delivery_ms))
				delivery_ms = fh_ms;
			if (sq_ms >= 0 && (delivery_ms < 0 || sq_ms < delivery_ms))
				delivery_ms = sq_ms;
		}

		now = GetCurrentTimestamp();
		timeout = next_cycle > now ? (long) ((next_cycle - now + 999) / 1000) : 0;
		if (delivery_ms >= 0 && delivery_ms < timeout)
			timeout = delivery_ms;
		latch_woke = false;
		if (timeout > 0)
		{
			int			rc = msgq_delivery_wait(timeout, wait_event);

			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				latch_woke = true;
			}
		}
	}
}

/*
 * Claim our slot, or refuse to run.  A refusal because the database is
 * paused is recorded in the slot (it is still ours), so that the launcher
 * starts us again when the pause ends; a stale registration leaves the
 * slot alone.
 */
static bool
worker_claim_slot(int slotno, const MsgqWorkerArgs *args)
{
	MsgqWorkerSlot *slot = &msgq_bgw_shared->slots[slotno];
	bool		claimed = false;

	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	if (slot->state == MSGQ_SLOT_STARTING &&
		slot->token == args->token &&
		slot->dboid == args->dboid)
	{
		if (msgq_bgw_database_paused(args->dboid))
		{
			slot->state = MSGQ_SLOT_EXITED;
			slot->exit_reason = MSGQ_EXIT_PAUSED;
			msgq_bgw_wake_launcher();
		}
		else
		{
			slot->state = MSGQ_SLOT_RUNNING;
			slot->pid = MyProcPid;
			slot->latch = MyLatch;
			slot->started_at = GetCurrentTimestamp();
			slot->enabled = msgq_worker_enabled;
			claimed = true;
		}
	}
	LWLockRelease(msgq_bgw_lock());

	if (claimed)
	{
		worker_slot = slot;
		worker_token = args->token;
	}
	else
		ereport(DEBUG1,
				(errmsg_internal("msgq worker for database %u exits: registration is stale or the database is paused",
								 args->dboid)));
	return claimed;
}

/*
 * Leave the slot.  Runs on every exit but a crash (which resets shared
 * memory anyway), after the transaction has been aborted and the process
 * removed from the proc array, but while it still has its PGPROC (so it
 * can take the lock).
 */
static void
worker_shmem_exit(int code, Datum arg)
{
	if (worker_slot == NULL)
		return;

	LWLockReleaseAll();
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	if (worker_slot->token == worker_token &&
		worker_slot->state == MSGQ_SLOT_RUNNING)
	{
		worker_slot->state = MSGQ_SLOT_EXITED;
		worker_slot->pid = 0;
		worker_slot->latch = NULL;
		if (worker_slot->exit_reason == MSGQ_EXIT_NONE)
		{
			if (worker_slot->stop_requested || code == 0)
				worker_slot->exit_reason = MSGQ_EXIT_STOPPED;
			else
				worker_slot->exit_reason = MSGQ_EXIT_FAILED;
		}
	}
	msgq_bgw_wake_launcher();
	LWLockRelease(msgq_bgw_lock());

	ConditionVariableBroadcast(&msgq_bgw_shared->exit_cv);
	worker_slot = NULL;
}

/*
 * The streams' part of a cycle, in a transaction of its own.  It gives way
 * to DDL: every lock it waits for is bounded by WORKER_STREAMS_LOCK_TIMEOUT,
 * well under deadlock_timeout, so a DROP EXTENSION that locks msgq's
 * tables in another order never deadlocks with it (the worker's wait times
 * out first and its transaction is rolled back; a later cycle does the
 * work).  Any other error ends the worker, as in the rest of the cycle.
 */
#define WORKER_STREAMS_LOCK_TIMEOUT "100ms"

static void
worker_run_streams(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		/* DROP EXTENSION may have committed since the queues' part */
		if (msgq_extension_lock_shared())
		{
			(void) set_config_option("lock_timeout", WORKER_STREAMS_LOCK_TIMEOUT,
									 PGC_SUSET, PGC_S_SESSION,
									 GUC_ACTION_LOCAL, true, 0, false);
			msgq_maintenance_streams();
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(oldcxt);
		elog(DEBUG1, "msgq: streams maintenance gave way to a lock: %s", edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * One maintenance cycle, in the transaction bracket of a background
 * worker.  Returns false, having run nothing, if msgq is not installed.
 */
static bool
worker_run_cycle(void)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "msgq maintenance");

	installed = msgq_extension_lock_shared();
	if (installed)
		msgq_maintenance_cycle();

	PopActiveSnapshot();
	CommitTransactionCommand();

	/* streams in a transaction of their own: sealing holds writers off */
	if (installed)
		worker_run_streams();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (installed)
	{
		LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
		worker_slot->installed = true;
		worker_slot->last_cycle_at = GetCurrentTimestamp();
		worker_slot->cycles++;
		LWLockRelease(msgq_bgw_lock());
	}
	return installed;
}

/*
 * Is msgq still installed?  The check of a disabled worker.
 */
static bool
worker_check_installed(void)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid(MSGQ_EXTENSION_NAME, true));
	CommitTransactionCommand();

	if (installed && !worker_slot->installed)
	{
		LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
		worker_slot->installed = true;
		LWLockRelease(msgq_bgw_lock());
	}
	return installed;
}

static void
worker_set_enabled(bool enabled)
{
	if (worker_slot->enabled == enabled)
		return;
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	worker_slot->enabled = enabled;
	LWLockRelease(msgq_bgw_lock());
}

/*
 * msgq is not installed here (any more): tell the launcher, which then
 * leaves the database alone until CREATE EXTENSION msgq commits in it.
 */
static void
worker_exit_not_installed(void)
{
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	worker_slot->exit_reason = MSGQ_EXIT_NOT_INSTALLED;
	LWLockRelease(msgq_bgw_lock());

	ereport(DEBUG1,
			(errmsg_internal("msgq is not installed in database %u, msgq worker exiting",
							 MyDatabaseId)));
	proc_exit(0);
}

/* ------------------------------------------------------------------------
 * Event source mapping runners
 * ------------------------------------------------------------------------
 *
 * With msgq.esm_max_concurrency N > 1, the worker runs no mapping batch
 * itself: it keeps N runner processes (dynamic background workers, never
 * restarted by the postmaster) registered for its database, and restarts a
 * runner that exited at its next check (at most once a naptime).  A runner
 * publishes its latch in the worker's slot, so that a commit to a mapped
 * source wakes the runners (msgq_bgw_wake_esm), and exits when its worker
 * is gone (its slot no longer running with the same token), when the worker
 * stops it (N went down, msgq.worker_enabled off, the worker exiting), or
 * on an error in a pass.  Each runner's pass is one transaction that runs
 * at most one batch (esm.c "runner mode"); after a pass that left work, it
 * wakes the other runners, which may have skipped a shard it held.
 */

/*
 * Start or stop runners as msgq.esm_max_concurrency and
 * msgq.worker_enabled ask.  Returns how many runners the worker keeps (0:
 * it runs the batches itself).
 */
static int
worker_manage_runners(bool enabled)
{
	int			wanted = (enabled && msgq_esm_max_concurrency > 1) ? msgq_esm_max_concurrency : 0;
	TimestampTz now = GetCurrentTimestamp();
	bool		check = now >= TimestampTzPlusMilliseconds(runners_checked_at, msgq_worker_naptime);
	int			r;

	for (r = 0; r < MSGQ_MAX_ESM_RUNNERS; r++)
	{
		pid_t		pid;

		if (r >= wanted)
		{
			if (runner_handles[r] != NULL)
			{
				TerminateBackgroundWorker(runner_handles[r]);
				pfree(runner_handles[r]);
				runner_handles[r] = NULL;
			}
			continue;
		}
		if (!check)
			continue;
		if (runner_handles[r] != NULL &&
			GetBackgroundWorkerPid(runner_handles[r], &pid) != BGWH_STOPPED)
			continue;
		if (runner_handles[r] != NULL)
		{
			pfree(runner_handles[r]);
			runner_handles[r] = NULL;
		}
		{
			BackgroundWorker bgw;
			MsgqWorkerArgs args;
			MemoryContext oldcxt;

			memset(&bgw, 0, sizeof(bgw));
			bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
			bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
			bgw.bgw_restart_time = BGW_NEVER_RESTART;
			strlcpy(bgw.bgw_library_name, "msgq", BGW_MAXLEN);
			strlcpy(bgw.bgw_function_name, "msgq_esm_runner_main", BGW_MAXLEN);
			snprintf(bgw.bgw_name, BGW_MAXLEN, "msgq event source mapping runner %d for database %u",
					 r + 1, MyDatabaseId);
			strlcpy(bgw.bgw_type, "msgq esm runner", BGW_MAXLEN);
			bgw.bgw_main_arg = Int32GetDatum((int) (worker_slot - msgq_bgw_shared->slots));
			args.dboid = MyDatabaseId;
			args.token = worker_token;
			args.runner = r;
			memcpy(bgw.bgw_extra, &args, sizeof(args));
			bgw.bgw_notify_pid = 0;
			oldcxt = MemoryContextSwitchTo(TopMemoryContext);
			if (!RegisterDynamicBackgroundWorker(&bgw, &runner_handles[r]))
			{
				runner_handles[r] = NULL;
				ereport(WARNING,
						(errmsg("msgq: could not start event source mapping runner %d of %d", r + 1, wanted),
						 errhint("Raise max_worker_processes, or lower msgq.esm_max_concurrency.")));
			}
			MemoryContextSwitchTo(oldcxt);
		}
	}
	if (check)
		runners_checked_at = now;
	return wanted;
}

static void
worker_stop_runners(int code, Datum arg)
{
	int			r;

	for (r = 0; r < MSGQ_MAX_ESM_RUNNERS; r++)
		if (runner_handles[r] != NULL)
		{
			TerminateBackgroundWorker(runner_handles[r]);
			runner_handles[r] = NULL;
		}
}

/* Is the runner's worker still the one that started it, and running? */
static bool
runner_worker_alive(int slotno, const MsgqWorkerArgs *args, bool publish)
{
	MsgqWorkerSlot *slot = &msgq_bgw_shared->slots[slotno];
	bool		alive;

	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	alive = slot->state == MSGQ_SLOT_RUNNING && slot->token == args->token &&
		slot->dboid == args->dboid && !msgq_bgw_database_paused(args->dboid);
	if (alive && publish)
		slot->runner_latches[args->runner] = MyLatch;
	LWLockRelease(msgq_bgw_lock());
	return alive;
}

static MsgqWorkerSlot *runner_slot = NULL;
static MsgqWorkerArgs runner_args;

static void
runner_shmem_exit(int code, Datum arg)
{
	LWLockReleaseAll();
	LWLockAcquire(msgq_bgw_lock(), LW_EXCLUSIVE);
	if (runner_slot->token == runner_args.token &&
		runner_slot->runner_latches[runner_args.runner] == MyLatch)
		runner_slot->runner_latches[runner_args.runner] = NULL;
	LWLockRelease(msgq_bgw_lock());
}

/* wake every runner of the database (this one included) */
static void
runner_wake_all(void)
{
	int			r;

	LWLockAcquire(msgq_bgw_lock(), LW_SHARED);
	if (runner_slot->token == runner_args.token)
		for (r = 0; r < MSGQ_MAX_ESM_RUNNERS; r++)
			if (runner_slot->runner_latches[r] != NULL && runner_slot->runner_latches[r] != MyLatch)
				SetLatch(runner_slot->runner_latches[r]);
	LWLockRelease(msgq_bgw_lock());
}

void
msgq_esm_runner_main(Datum main_arg)
{
	int			slotno = DatumGetInt32(main_arg);
	uint32		wait_event;

	memcpy(&runner_args, MyBgworkerEntry->bgw_extra, sizeof(runner_args));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (msgq_bgw_shared == NULL || slotno < 0 || slotno >= msgq_bgw_shared->nslots ||
		runner_args.runner < 0 || runner_args.runner >= MSGQ_MAX_ESM_RUNNERS ||
		!runner_worker_alive(slotno, &runner_args, false))
		proc_exit(0);
	runner_slot = &msgq_bgw_shared->slots[slotno];
	on_shmem_exit(runner_shmem_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(runner_args.dboid, InvalidOid, 0);
	msgq_pin_process_search_path();
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
	msgq_esm_set_runner(runner_args.runner);
	wait_event = MSGQ_WAIT_EVENT("MsgqEsmRunnerMain");

	for (;;)
	{
		long		ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!msgq_worker_enabled || runner_args.runner >= msgq_esm_max_concurrency ||
			!runner_worker_alive(slotno, &runner_args, true))
			proc_exit(0);

		ms = msgq_esm_worker_pass();
		if (ms == 0)
		{
			runner_wake_all();
			continue;
		}
		if (ms < 0 || ms > msgq_worker_naptime)
			ms = msgq_worker_naptime;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, wait_event);
		ResetLatch(MyLatch);
	}
}
