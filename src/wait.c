/*-------------------------------------------------------------------------
 *
 * wait.c
 *	  Long-poll wake-ups and the bookkeeping of rolled-back receives.
 *
 * Wake-ups.  Shared memory holds msgq.wait_buckets buckets, each a
 * condition variable with two counters: "wakeups", bumped whenever
 * something may have made a message of one of the bucket's queues
 * receivable, and "ends", bumped when a queue is purged or deleted, which
 * ends its waits.  A queue maps to bucket hash(database, queue) modulo the
 * bucket count; queues sharing a bucket only cost each other a spurious
 * re-check.
 *
 * Wakers never wake before the change is visible: a send, a
 * change_message_visibility(..., 0), a purge or a queue deletion records
 * the queue in a backend-local list, and the transaction callback bumps
 * and broadcasts at XACT_EVENT_COMMIT, which runs after the commit is
 * visible in the proc array.  A rolled-back receive (transaction or
 * savepoint) broadcasts from the abort callbacks, after the abort is
 * recorded, so a woken waiter finds the row unlocked and visible again.
 * So does a rolled-back delete, dead-letter move, durable change of
 * visibility, purge or redrive (msgq_wakeup_at_abort): a waiter that found
 * one of its rows locked skipped it, and only the rollback makes the row
 * receivable again.  A commit that removes the row needs no wake-up.
 *
 * Waiters (queue.c) avoid lost wake-ups this way: read the bucket's
 * counter, then check for messages with a fresh snapshot, then prepare to
 * sleep on the condition variable and re-read the counter; only if it is
 * unchanged do they sleep.  A commit that the check's snapshot missed
 * either bumped the counter before the re-read (so the waiter checks
 * again) or broadcasts after the waiter joined the wait list (so the
 * sleep ends).  Nothing is run between preparing to sleep and sleeping, so
 * no other condition variable can take the waiter off the list.
 *
 * Rolled-back receives.  A receive updates the message row (count, lease,
 * handle) in the receiver's transaction.  If that transaction or savepoint
 * rolls back, the row reverts, which makes the message visible again at
 * once, but the receive must still count toward maxReceiveCount, or a
 * message that always crashes its consumer would never reach a dead-letter
 * queue.  The abort callbacks therefore add one per rolled-back receive to
 * a shared hash keyed by (database, message id), and the next receive
 * of that message takes the entry and adds it to the row in its own
 * transaction (returning it to the hash if that one rolls back too).  The
 * hash holds msgq.max_aborted_receives entries; when it is full the extra
 * count is dropped with a warning.  It lives in memory only: a crash loses
 * these counts, which at-least-once delivery permits; the maintenance
 * cycle prunes entries whose message is gone.
 *
 * Locking: the first LWLock of the "msgq" tranche protects the hash.  The
 * counters are atomics; waiter slots have a single writer each (the
 * backend owning it) and are read without a lock for the msgq.waiters view.
 *
 * PREPARE TRANSACTION is refused after any msgq send, receive or other
 * state change, as it is after NOTIFY: the wake-up or the receive count
 * could not follow the prepared transaction.
 *
 * IDENTIFICATION
 *	  src/wait.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "msgq.h"

typedef struct WaitBucket
{
	ConditionVariable cv;
	pg_atomic_uint64 wakeups;
	pg_atomic_uint64 ends;
} WaitBucket;

typedef struct WaiterSlot
{
	int			pid;			/* 0 when not waiting */
	Oid			dboid;
	int32		queue_id;
	TimestampTz started;
	TimestampTz deadline;
} WaiterSlot;

typedef struct WaitShared
{
	pg_atomic_uint32 aborted_entries;
	int			nbuckets;
	int			nslots;
	WaitBucket	buckets[FLEXIBLE_ARRAY_MEMBER];
} WaitShared;

/*
 * Keyed by message id: unlike (queue_id, msg_seq), a message id is never
 * reused, not even after DROP EXTENSION and CREATE EXTENSION restart the
 * sequences, and it follows a message into its dead-letter queue.
 */
typedef struct AbortedKey
{
	Oid			dboid;
	pg_uuid_t	message_id;
} AbortedKey;

typedef struct AbortedEntry
{
	AbortedKey	key;
	int32		queue_id;		/* where the message was, for pruning */
	int64		msg_seq;
	int32		count;
} AbortedEntry;

typedef struct PendingWake
{
	int32		queue_id;
	bool		end_waits;
} PendingWake;

typedef struct AbortWake
{
	int32		queue_id;
	SubTransactionId subid;
} AbortWake;

typedef struct ReceivedMsg
{
	int32		queue_id;
	int64		msg_seq;
	pg_uuid_t	message_id;
	int32		extra;			/* counts taken from the aborted hash */
	SubTransactionId subid;
} ReceivedMsg;

static WaitShared *wait_shared = NULL;
static WaiterSlot *wait_slots = NULL;
static HTAB *wait_aborted = NULL;

static PendingWake *wait_pending = NULL;
static int	wait_npending = 0;
static int	wait_maxpending = 0;
static AbortWake *wait_abort = NULL;
static int	wait_nabort = 0;
static int	wait_maxabort = 0;
static ReceivedMsg *wait_received = NULL;
static int	wait_nreceived = 0;
static int	wait_maxreceived = 0;
static bool wait_callbacks_registered = false;

/*
 * Sends of the current transaction, for the commit-time fix-up of the
 * outbox case (queue.c, msgq_outbox_fixup): at most WAIT_MAX_SENDS are
 * remembered; a transaction that sends more keeps its send times, and so
 * does one that became read-only before committing.
 */
#define WAIT_MAX_SENDS	100000

static int32 *wait_send_queues = NULL;
static int64 *wait_send_seqs = NULL;
static int	wait_nsends = 0;
static int	wait_maxsends = 0;
static bool wait_sends_overflow = false;
static TimestampTz wait_first_send = 0;

static LWLock *
wait_lock(void)
{
	return &(GetNamedLWLockTranche("msgq")[0].lock);
}

static int
wait_nslots(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

void
msgq_wait_shmem_size(Size *size)
{
	Size		s;

	s = add_size(offsetof(WaitShared, buckets),
				 mul_size(msgq_wait_buckets, sizeof(WaitBucket)));
	s = add_size(s, mul_size(wait_nslots(), sizeof(WaiterSlot)));
	s = add_size(s, hash_estimate_size(msgq_max_aborted_receives,
									   sizeof(AbortedEntry)));
	*size = add_size(*size, s);
}

/* Called from the startup hook with AddinShmemInitLock held. */
void
msgq_wait_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	wait_shared = ShmemInitStruct("msgq wait buckets",
								  add_size(offsetof(WaitShared, buckets),
										   mul_size(msgq_wait_buckets, sizeof(WaitBucket))),
								  &found);
	if (!found)
	{
		int			i;

		pg_atomic_init_u32(&wait_shared->aborted_entries, 0);
		wait_shared->nbuckets = msgq_wait_buckets;
		wait_shared->nslots = wait_nslots();
		for (i = 0; i < msgq_wait_buckets; i++)
		{
			ConditionVariableInit(&wait_shared->buckets[i].cv);
			pg_atomic_init_u64(&wait_shared->buckets[i].wakeups, 0);
			pg_atomic_init_u64(&wait_shared->buckets[i].ends, 0);
		}
	}

	wait_slots = ShmemInitStruct("msgq waiters",
								 mul_size(wait_nslots(), sizeof(WaiterSlot)),
								 &found);
	if (!found)
		memset(wait_slots, 0, mul_size(wait_nslots(), sizeof(WaiterSlot)));

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(AbortedKey);
	info.entrysize = sizeof(AbortedEntry);
	wait_aborted = ShmemInitHash("msgq aborted receives",
								 msgq_max_aborted_receives,
								 msgq_max_aborted_receives,
								 &info, HASH_ELEM | HASH_BLOBS);
}

static WaitBucket *
wait_bucket(int32 queue_id)
{
	uint32		h;

	h = hash_combine(murmurhash32((uint32) MyDatabaseId),
					 murmurhash32((uint32) queue_id));
	return &wait_shared->buckets[h % wait_shared->nbuckets];
}

uint64
msgq_wait_counter(int32 queue_id)
{
	return pg_atomic_read_u64(&wait_bucket(queue_id)->wakeups);
}

uint64
msgq_wait_end_counter(int32 queue_id)
{
	return pg_atomic_read_u64(&wait_bucket(queue_id)->ends);
}

void
msgq_wakeup_now(int32 queue_id, bool end_waits)
{
	WaitBucket *b = wait_bucket(queue_id);

	if (end_waits)
		pg_atomic_fetch_add_u64(&b->ends, 1);
	pg_atomic_fetch_add_u64(&b->wakeups, 1);
	ConditionVariableBroadcast(&b->cv);
	/* a queue an event source mapping reads: its worker too (esm.c) */
	msgq_esm_source_committed(queue_id);
	/* a stream a delivery stream reads (firehose.c) */
	msgq_firehose_source_committed(queue_id);
	/* the AWS endpoint's parked long polls (endpoint.c) */
	msgq_endpoint_wakeup();
}

/*
 * Sleep on queue_id's bucket for at most timeout_ms, unless the bucket's
 * wake-up counter has moved past "seen".  Returns after a wake-up, a
 * timeout or a spurious wake; the caller re-checks in every case.
 */
void
msgq_wait_sleep(int32 queue_id, uint64 seen, long timeout_ms)
{
	WaitBucket *b = wait_bucket(queue_id);

	ConditionVariablePrepareToSleep(&b->cv);
	if (pg_atomic_read_u64(&b->wakeups) == seen && timeout_ms > 0)
		(void) ConditionVariableTimedSleep(&b->cv, timeout_ms, PG_WAIT_EXTENSION);
	ConditionVariableCancelSleep();
}

void
msgq_waiter_begin(int32 queue_id, TimestampTz deadline)
{
	WaiterSlot *slot = &wait_slots[MyProc->pgprocno];

	/* the abort callbacks clear the slot when the wait is cancelled */
	msgq_xact_callbacks_register();
	slot->dboid = MyDatabaseId;
	slot->queue_id = queue_id;
	slot->started = msgq_now();
	slot->deadline = deadline;
	pg_write_barrier();
	slot->pid = MyProcPid;
}

void
msgq_waiter_end(void)
{
	if (wait_slots != NULL && MyProc != NULL)
		wait_slots[MyProc->pgprocno].pid = 0;
}

/*
 * Backend-local lists, kept in TopMemoryContext and emptied at the end of
 * every transaction.
 */
void
msgq_wakeup_at_commit(int32 queue_id, bool end_waits)
{
	int			i;

	msgq_xact_callbacks_register();
	for (i = 0; i < wait_npending; i++)
	{
		if (wait_pending[i].queue_id == queue_id)
		{
			wait_pending[i].end_waits |= end_waits;
			return;
		}
	}
	if (wait_npending == wait_maxpending)
	{
		wait_maxpending = Max(16, wait_maxpending * 2);
		if (wait_pending == NULL)
			wait_pending = MemoryContextAlloc(TopMemoryContext,
											  wait_maxpending * sizeof(PendingWake));
		else
			wait_pending = repalloc(wait_pending,
									wait_maxpending * sizeof(PendingWake));
	}
	wait_pending[wait_npending].queue_id = queue_id;
	wait_pending[wait_npending].end_waits = end_waits;
	wait_npending++;
}

/*
 * Wake the queue's long polls if the current (sub)transaction rolls back:
 * for anything that deletes, updates or locks a row of the queue's
 * messages.
 */
void
msgq_wakeup_at_abort(int32 queue_id)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	int			i;

	msgq_xact_callbacks_register();
	for (i = 0; i < wait_nabort; i++)
	{
		if (wait_abort[i].queue_id == queue_id && wait_abort[i].subid == subid)
			return;
	}
	if (wait_nabort == wait_maxabort)
	{
		wait_maxabort = Max(16, wait_maxabort * 2);
		if (wait_abort == NULL)
			wait_abort = MemoryContextAlloc(TopMemoryContext,
											wait_maxabort * sizeof(AbortWake));
		else
			wait_abort = repalloc(wait_abort, wait_maxabort * sizeof(AbortWake));
	}
	wait_abort[wait_nabort].queue_id = queue_id;
	wait_abort[wait_nabort].subid = subid;
	wait_nabort++;
}

void
msgq_remember_receive(int32 queue_id, int64 msg_seq, const pg_uuid_t *message_id,
					  int32 extra_count)
{
	msgq_xact_callbacks_register();
	if (wait_nreceived == wait_maxreceived)
	{
		wait_maxreceived = Max(64, wait_maxreceived * 2);
		if (wait_received == NULL)
			wait_received = MemoryContextAlloc(TopMemoryContext,
											   wait_maxreceived * sizeof(ReceivedMsg));
		else
			wait_received = repalloc(wait_received,
									 wait_maxreceived * sizeof(ReceivedMsg));
	}
	wait_received[wait_nreceived].queue_id = queue_id;
	wait_received[wait_nreceived].msg_seq = msg_seq;
	wait_received[wait_nreceived].message_id = *message_id;
	wait_received[wait_nreceived].extra = extra_count;
	wait_received[wait_nreceived].subid = GetCurrentSubTransactionId();
	wait_nreceived++;
}

void
msgq_remember_send(int32 queue_id, int64 msg_seq, TimestampTz sent_at)
{
	msgq_xact_callbacks_register();
	if (wait_nsends == 0 && !wait_sends_overflow)
		wait_first_send = sent_at;
	if (wait_nsends == WAIT_MAX_SENDS)
	{
		wait_sends_overflow = true;
		return;
	}
	if (wait_nsends == wait_maxsends)
	{
		wait_maxsends = Max(64, wait_maxsends * 2);
		if (wait_send_queues == NULL)
		{
			wait_send_queues = MemoryContextAlloc(TopMemoryContext, wait_maxsends * sizeof(int32));
			wait_send_seqs = MemoryContextAlloc(TopMemoryContext, wait_maxsends * sizeof(int64));
		}
		else
		{
			wait_send_queues = repalloc(wait_send_queues, wait_maxsends * sizeof(int32));
			wait_send_seqs = repalloc(wait_send_seqs, wait_maxsends * sizeof(int64));
		}
	}
	wait_send_queues[wait_nsends] = queue_id;
	wait_send_seqs[wait_nsends] = msg_seq;
	wait_nsends++;
}

static void
wait_sends_reset(void)
{
	wait_nsends = 0;
	wait_sends_overflow = false;
	wait_first_send = 0;
}

bool
msgq_aborted_receives_pending(void)
{
	return pg_atomic_read_u32(&wait_shared->aborted_entries) > 0;
}

/*
 * Remove and return the count of rolled-back receives of one message.
 */
int32
msgq_take_aborted_receives(const pg_uuid_t *message_id)
{
	AbortedKey	key;
	AbortedEntry *e;
	int32		count = 0;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.message_id = *message_id;

	LWLockAcquire(wait_lock(), LW_EXCLUSIVE);
	e = hash_search(wait_aborted, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		count = e->count;
		hash_search(wait_aborted, &key, HASH_REMOVE, NULL);
		pg_atomic_fetch_sub_u32(&wait_shared->aborted_entries, 1);
	}
	LWLockRelease(wait_lock());
	return count;
}

/*
 * Record rolled-back receives: called from the abort callbacks, so it
 * must not allocate or throw.
 */
static void
wait_add_aborted(ReceivedMsg *r, int32 count)
{
	AbortedKey	key;
	AbortedEntry *e;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.message_id = r->message_id;

	LWLockAcquire(wait_lock(), LW_EXCLUSIVE);
	e = hash_search(wait_aborted, &key, HASH_ENTER_NULL, &found);
	if (e != NULL)
	{
		if (!found)
		{
			e->count = 0;
			pg_atomic_fetch_add_u32(&wait_shared->aborted_entries, 1);
		}
		e->queue_id = r->queue_id;
		e->msg_seq = r->msg_seq;
		e->count += count;
	}
	LWLockRelease(wait_lock());

	if (e == NULL)
		ereport(WARNING,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not keep the receive count of a rolled-back receive"),
				 errhint("Increase \"msgq.max_aborted_receives\".")));
}

/*
 * Copy up to max pending entries of the current database, for the
 * maintenance cycle's pruning.
 */
int
msgq_aborted_receives_list(int32 *queue_ids, int64 *msg_seqs, pg_uuid_t *ids, int max)
{
	HASH_SEQ_STATUS status;
	AbortedEntry *e;
	int			n = 0;

	if (!msgq_aborted_receives_pending())
		return 0;
	LWLockAcquire(wait_lock(), LW_SHARED);
	hash_seq_init(&status, wait_aborted);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->key.dboid != MyDatabaseId)
			continue;
		if (n == max)
		{
			hash_seq_term(&status);
			break;
		}
		queue_ids[n] = e->queue_id;
		msg_seqs[n] = e->msg_seq;
		ids[n] = e->key.message_id;
		n++;
	}
	LWLockRelease(wait_lock());
	return n;
}

static void
wait_received_aborted(int from)
{
	int			i;

	for (i = from; i < wait_nreceived; i++)
	{
		wait_add_aborted(&wait_received[i], wait_received[i].extra + 1);
		msgq_wakeup_now(wait_received[i].queue_id, false);
	}
}

static void
wait_xact_callback(XactEvent event, void *arg)
{
	int			i;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:

			/*
			 * The outbox case: a message counts its delay and retention from
			 * when it can first be seen, its commit.  A transaction that
			 * stayed open longer than msgq.outbox_fixup_after since its first
			 * send moves its messages' times to now, before committing.
			 */
			if (wait_nsends > 0 && !wait_sends_overflow && !XactReadOnly &&
				msgq_now() - wait_first_send >
				(TimestampTz) msgq_outbox_fixup_after_ms * 1000)
				msgq_outbox_fixup(wait_send_queues, wait_send_seqs, wait_nsends);
			wait_sends_reset();
			break;
		case XACT_EVENT_PRE_PREPARE:
			wait_sends_reset();
			if (wait_npending > 0 || wait_nreceived > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has sent or received msgq messages")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			for (i = 0; i < wait_npending; i++)
				msgq_wakeup_now(wait_pending[i].queue_id,
								wait_pending[i].end_waits);
			wait_npending = 0;
			wait_nreceived = 0;
			wait_nabort = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wait_sends_reset();
			msgq_waiter_end();
			wait_received_aborted(0);
			for (i = 0; i < wait_nabort; i++)
				msgq_wakeup_now(wait_abort[i].queue_id, false);
			wait_npending = 0;
			wait_nreceived = 0;
			wait_nabort = 0;
			break;
		case XACT_EVENT_PREPARE:
			wait_npending = 0;
			wait_nreceived = 0;
			wait_nabort = 0;
			break;
		default:
			break;
	}
}

static void
wait_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	int			i,
				keep;

	switch (event)
	{
		case SUBXACT_EVENT_COMMIT_SUB:
			for (i = 0; i < wait_nreceived; i++)
				if (wait_received[i].subid == mySubid)
					wait_received[i].subid = parentSubid;
			/* duplicates left by this are harmless: one more broadcast */
			for (i = 0; i < wait_nabort; i++)
				if (wait_abort[i].subid == mySubid)
					wait_abort[i].subid = parentSubid;
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			msgq_waiter_end();
			/* move this subtransaction's receives to the end, then count them */
			keep = 0;
			for (i = 0; i < wait_nreceived; i++)
			{
				if (wait_received[i].subid != mySubid)
				{
					ReceivedMsg tmp = wait_received[keep];

					wait_received[keep] = wait_received[i];
					wait_received[i] = tmp;
					keep++;
				}
			}
			wait_received_aborted(keep);
			wait_nreceived = keep;
			keep = 0;
			for (i = 0; i < wait_nabort; i++)
			{
				if (wait_abort[i].subid == mySubid)
					msgq_wakeup_now(wait_abort[i].queue_id, false);
				else
					wait_abort[keep++] = wait_abort[i];
			}
			wait_nabort = keep;
			break;
		default:
			break;
	}
}

void
msgq_xact_callbacks_register(void)
{
	if (wait_callbacks_registered)
		return;
	RegisterXactCallback(wait_xact_callback, NULL);
	RegisterSubXactCallback(wait_subxact_callback, NULL);
	wait_callbacks_registered = true;
}

PG_FUNCTION_INFO_V1(msgq_waiters);

/*
 * msgq.waiters() returns setof (pid, queue_id, wait_started, wait_deadline)
 *
 * The long-polling receives of the current database.
 */
Datum
msgq_waiters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	for (i = 0; i < wait_shared->nslots; i++)
	{
		WaiterSlot	copy;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		copy = wait_slots[i];
		pg_read_barrier();
		if (copy.pid == 0 || copy.dboid != MyDatabaseId)
			continue;
		values[0] = Int32GetDatum(copy.pid);
		values[1] = Int32GetDatum(copy.queue_id);
		values[2] = TimestampTzGetDatum(copy.started);
		values[3] = TimestampTzGetDatum(copy.deadline);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
