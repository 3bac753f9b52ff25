/*-------------------------------------------------------------------------
 *
 * bgw.h
 *	  Shared memory of msgq's background workers, private to launcher.c
 *	  and worker.c.
 *
 * The launcher owns the slots: only it moves a slot from FREE to STARTING
 * (and back, when a registration fails or a STARTING slot is abandoned).
 * A worker moves its own slot from STARTING to RUNNING when it claims it,
 * and from RUNNING to EXITED when it exits; the launcher reaps EXITED
 * slots back to FREE.  Backends running database-level utility commands
 * only write their own entry of the pause array and set stop_requested
 * on a slot.  Everything here is protected by the second LWLock of the
 * "msgq" tranche (msgq_bgw_lock()); doc/workers.md has the full protocol.
 *
 * IDENTIFICATION
 *	  src/bgw.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MSGQ_BGW_H
#define MSGQ_BGW_H

#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#include "msgq.h"

/* Requests to probe a database, queued by committing CREATE EXTENSIONs */
#define MSGQ_BGW_MAX_PROBES		32

typedef enum MsgqSlotState
{
	MSGQ_SLOT_FREE = 0,			/* unused */
	MSGQ_SLOT_STARTING,			/* registered by the launcher, not claimed */
	MSGQ_SLOT_RUNNING,			/* claimed by its worker (pid is set) */
	MSGQ_SLOT_EXITED			/* worker gone, launcher has not reaped it */
} MsgqSlotState;

typedef enum MsgqExitReason
{
	MSGQ_EXIT_NONE = 0,
	MSGQ_EXIT_FAILED,			/* error, crash-free FATAL, or a stray SIGTERM */
	MSGQ_EXIT_STOPPED,			/* asked to stop (stop_requested), or clean */
	MSGQ_EXIT_NOT_INSTALLED,	/* msgq is not installed in the database */
	MSGQ_EXIT_PAUSED,			/* the database was paused before the claim */
	MSGQ_EXIT_NOT_STARTED		/* the postmaster could not start it */
} MsgqExitReason;

typedef struct MsgqWorkerSlot
{
	MsgqSlotState state;
	Oid			dboid;
	uint64		token;			/* unique per registration, never reused */
	pid_t		pid;			/* 0 unless RUNNING */
	Latch	   *latch;			/* the worker's latch while RUNNING */
	bool		stop_requested; /* a SIGTERM was sent on purpose */
	bool		enabled;		/* the worker's view of msgq.worker_enabled */
	bool		installed;		/* the worker has found msgq installed */
	bool		delivery_requested; /* deliveries committed since the worker looked */
	MsgqExitReason exit_reason;
	TimestampTz registered_at;
	TimestampTz started_at;
	TimestampTz last_cycle_at;
	int64		cycles;
	/* event source mapping runners of the worker (worker.c), while running */
	Latch	   *runner_latches[MSGQ_MAX_ESM_RUNNERS];
} MsgqWorkerSlot;

typedef struct MsgqBgwShared
{
	/* the launcher */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	TimestampTz launcher_started_at;
	TimestampTz last_rescan_at;
	int64		rescans;

	/* requests to the launcher, set by committing transactions */
	bool		rescan_requested;
	bool		probe_all_requested;
	int			nprobes;
	Oid			probes[MSGQ_BGW_MAX_PROBES];

	/* registration tokens; the next one handed out */
	uint64		next_token;

	/* broadcast whenever a worker leaves the RUNNING state */
	ConditionVariable exit_cv;

	/* one entry per backend (indexed by BackendId - 1): a paused database */
	int			npaused;
	Oid		   *paused;

	int			nslots;
	MsgqWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} MsgqBgwShared;

/*
 * What the launcher passes to a worker in bgw_extra; the slot number is
 * the bgw_main_arg.
 */
typedef struct MsgqWorkerArgs
{
	Oid			dboid;
	uint64		token;
	int			runner;			/* an event source mapping runner's number */
} MsgqWorkerArgs;

/* launcher.c */
extern MsgqBgwShared *msgq_bgw_shared;
extern bool msgq_worker_enabled;
extern int	msgq_worker_naptime;
extern int	msgq_launcher_naptime;
extern int	msgq_max_workers;

extern LWLock *msgq_bgw_lock(void);
extern bool msgq_bgw_database_paused(Oid dboid);
extern void msgq_bgw_wake_launcher(void);

#endif							/* MSGQ_BGW_H */
