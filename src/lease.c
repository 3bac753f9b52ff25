/*-------------------------------------------------------------------------
 *
 * lease.c
 *	  Receive leases in shared memory: a receive claims a message here and
 *	  writes nothing durable; a delete is the one durable write.
 *
 * A lease is keyed by (database, queue_id, msg_seq) and holds the
 * visibility deadline, the receipt nonce of the latest receive, the time of
 * that receive and the message's receive count.
 * The table is a partitioned shared hash with msgq.max_leases entries; each
 * partition has its own LWLock, held for a few instructions.
 *
 * Two receivers never hold one message: the claim is made under the
 * partition lock, and after claiming, the receiver checks the row's heap
 * tuple under its buffer lock (msgq_lease_row_free): a row that another
 * transaction is deleting, updating or has locked (the durable receive
 * path, a dead-letter move) is given back.  A durable claimer locks the row
 * first and looks at the lease table second, so one of the two always sees
 * the other.
 *
 * What a transaction does to leases is undone if it rolls back: each claim,
 * visibility change and delete is remembered in a backend-local list tagged
 * with the subtransaction, and the abort callbacks restore the previous
 * lease (a rolled-back receive keeps its count, as SQS counts it).  The
 * commit callback removes the leases of deleted messages.
 *
 * Receive counts reach the rows lazily.  A lease holds the message's whole
 * receive count ("total": the larger of the row's count and its own, plus
 * one per receive), never a difference, so a row version read through any
 * snapshot can only make it larger.  Every maintenance cycle writes
 * GREATEST(receive_count, total) into the rows in one statement
 * (msgq_lease_persist); a lease with nothing left to write is forgotten
 * once it has ended and every snapshot sees the write.  Messages sent before the
 * table was initialized (server start, crash, promotion) are "inherited":
 * their receives add to receive_count durably in the receiver's
 * transaction, so a message that crashes its consumer's backend every time
 * still reaches its dead-letter queue.  doc/design.md states the bounds.
 *
 * IDENTIFICATION
 *	  src/lease.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/transam.h"
#include "access/xlogrecovery.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/bufmgr.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "msgq.h"

#define LEASE_PARTITIONS	16
#define LEASE_DATABASES		64
#define LEASE_PERSIST_BATCH	4096
#define LEASE_PERSIST_RING	32

typedef struct LeaseKey
{
	Oid			dboid;
	int32		queue_id;
	int64		msg_seq;
} LeaseKey;

typedef struct LeaseEntry
{
	LeaseKey	key;
	pg_uuid_t	message_id;		/* a reused (queue_id, msg_seq) is not ours */
	TimestampTz deadline;		/* visible again from then on */
	TimestampTz received_at;	/* of the latest receive */
	TimestampTz first_received_at;	/* when the row has none yet */
	int64		nonce;			/* of the latest receive's handle */
	int32		total;			/* the message's receive count */
	int32		persisted;		/* the count its row holds for certain */
	TransactionId persist_xid;	/* the transaction that wrote it, or invalid */
	int			pending_proc;	/* a backend shortening the lease, or -1 */
	TimestampTz pending_deadline;	/* its deadline, for that backend only */
} LeaseEntry;

typedef struct LeaseDatabase
{
	Oid			dboid;
	TransactionId persist_xid;	/* writing receive counts, or invalid */
} LeaseDatabase;

typedef struct LeaseShared
{
	pg_atomic_uint32 entries;
	pg_atomic_uint64 full_claims;	/* claims that found the table full */
	TimestampTz started;		/* when the table was initialized */
	TransactionId persist_ring[LEASE_PERSIST_RING];	/* recent count writers */
	int			persist_ring_next;
	slock_t		mutex;			/* protects databases */
	LeaseDatabase databases[LEASE_DATABASES];
} LeaseShared;

/* What a transaction did to one lease, to undo at abort or finish at commit */
typedef enum LeaseActionKind
{
	LEASE_ACT_CLAIM,
	LEASE_ACT_VISIBILITY,		/* a longer lease, applied at once */
	LEASE_ACT_SHORTEN,			/* a shorter lease, applied at commit */
	LEASE_ACT_FORGET
} LeaseActionKind;

typedef struct LeaseAction
{
	LeaseActionKind kind;
	LeaseKey	key;
	int64		nonce;			/* ours: undo only while it is still ours */
	bool		was_new;		/* the claim created the entry */
	TransactionId written_xid;	/* wrote total into the row (inherited) */
	int32		total;			/* the claim's receive count */
	LeaseEntry	prev;			/* the entry before the action */
	TimestampTz target;			/* LEASE_ACT_SHORTEN: the new deadline */
	SubTransactionId subid;
} LeaseAction;

/* A count written into a row, recorded in its lease when the cycle commits */
typedef struct LeasePersisted
{
	LeaseKey	key;
	pg_uuid_t	message_id;		/* the entry may have been reused since */
	int32		total;
} LeasePersisted;

int			msgq_max_leases = 65536;

static LeaseShared *lease_shared = NULL;
static HTAB *lease_hash = NULL;
static LWLockPadded *lease_locks = NULL;

static LeaseAction *lease_actions = NULL;
static int	lease_nactions = 0;
static int	lease_maxactions = 0;
static LeasePersisted *lease_persisted = NULL;
static int	lease_npersisted = 0;
static bool lease_persisting = false;	/* this transaction holds the slot */
static TransactionId lease_write_xid = InvalidTransactionId;
static SubTransactionId lease_write_subid = InvalidSubTransactionId;
static bool lease_callbacks_registered = false;

static void lease_register_callbacks(void);

void
msgq_lease_shmem_size(Size *size)
{
	*size = add_size(*size, MAXALIGN(sizeof(LeaseShared)));
	*size = add_size(*size, hash_estimate_size(msgq_max_leases, sizeof(LeaseEntry)));
}

void
msgq_lease_shmem_init(void)
{
	HASHCTL		info;
	bool		found;

	lease_shared = ShmemInitStruct("msgq leases", sizeof(LeaseShared), &found);
	if (!found)
	{
		pg_atomic_init_u32(&lease_shared->entries, 0);
		pg_atomic_init_u64(&lease_shared->full_claims, 0);
		SpinLockInit(&lease_shared->mutex);
		memset(lease_shared->persist_ring, 0, sizeof(lease_shared->persist_ring));
		lease_shared->persist_ring_next = 0;
		lease_shared->started = GetCurrentTimestamp();
		memset(lease_shared->databases, 0, sizeof(lease_shared->databases));
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(LeaseKey);
	info.entrysize = sizeof(LeaseEntry);
	info.num_partitions = LEASE_PARTITIONS;
	lease_hash = ShmemInitHash("msgq lease table", msgq_max_leases, msgq_max_leases,
							   &info, HASH_ELEM | HASH_BLOBS | HASH_PARTITION);
	lease_locks = GetNamedLWLockTranche("msgq_lease");
}

static void
lease_key(LeaseKey *key, int32 queue_id, int64 msg_seq)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	key->queue_id = queue_id;
	key->msg_seq = msg_seq;
}

static LWLock *
lease_lock(uint32 hashcode)
{
	return &lease_locks[hashcode % LEASE_PARTITIONS].lock;
}

/*
 * Find a lease with its partition's lock taken in mode; the caller
 * releases *lock.  *hashcode (if wanted) is the key's, for HASH_ENTER or
 * HASH_REMOVE under the same lock.
 */
static LeaseEntry *
lease_find(const LeaseKey *key, LWLockMode mode, LWLock **lock, uint32 *hashcode)
{
	uint32		h = get_hash_value(lease_hash, key);

	*lock = lease_lock(h);
	LWLockAcquire(*lock, mode);
	if (hashcode)
		*hashcode = h;
	return hash_search_with_hash_value(lease_hash, key, h, HASH_FIND, NULL);
}

/* Shared-memory nonces have the top bit set, durable ones have it clear. */
int64
msgq_lease_nonce(void)
{
	return (int64) ((uint64) msgq_random_nonce() | UINT64CONST(0x8000000000000000));
}

int64
msgq_durable_nonce(void)
{
	return (int64) ((uint64) msgq_random_nonce() & ~UINT64CONST(0x8000000000000000));
}

bool
msgq_nonce_is_lease(int64 nonce)
{
	return ((uint64) nonce & UINT64CONST(0x8000000000000000)) != 0;
}

/*
 * Messages sent before this time are "inherited": their receives also add
 * to the row's receive_count in the receiver's transaction, because a
 * crash or a failover may have taken their leases' counts with it.  It is
 * when the lease table was initialized (server start, or the
 * reinitialization after a crash), or, after a promotion, the commit time
 * of the last transaction the standby replayed.  Receives only run once
 * recovery has ended, when neither changes any more.
 */
TimestampTz
msgq_lease_epoch(void)
{
	static TimestampTz epoch = 0;

	if (epoch == 0)
		epoch = Max(lease_shared->started, GetLatestXTime());
	return epoch;
}

/* This database's slot (made on first use), or NULL when all are taken. */
static LeaseDatabase *
lease_database(void)
{
	LeaseDatabase *d = NULL;
	int			i;

	for (i = 0; i < LEASE_DATABASES; i++)
		if (lease_shared->databases[i].dboid == MyDatabaseId)
			return &lease_shared->databases[i];
	for (i = 0; i < LEASE_DATABASES; i++)
		if (lease_shared->databases[i].dboid == InvalidOid)
		{
			d = &lease_shared->databases[i];
			d->dboid = MyDatabaseId;
			d->persist_xid = InvalidTransactionId;
			break;
		}
	return d;
}

/*
 * The transaction writing this database's receive counts (msgq_lease_persist).
 * Its row versions are as good as the ones it replaces: it changes only
 * receive_count and first_received_at, under a row lock that keeps every
 * other writer away until it ends.
 */
static bool
lease_is_persist_xid(TransactionId xid)
{
	bool		found = false;
	int			i;

	if (!TransactionIdIsValid(xid))
		return false;
	SpinLockAcquire(&lease_shared->mutex);
	for (i = 0; i < LEASE_PERSIST_RING; i++)
		if (TransactionIdEquals(lease_shared->persist_ring[i], xid))
		{
			found = true;
			break;
		}
	SpinLockRelease(&lease_shared->mutex);
	return found;
}

/* Claim (xid valid) or release (invalid) the persister slot; false if taken. */
static bool
lease_set_persist_xid(TransactionId xid)
{
	bool		ok = false;
	LeaseDatabase *d;

	SpinLockAcquire(&lease_shared->mutex);
	d = lease_database();
	if (d != NULL &&
		(!TransactionIdIsValid(xid) || !TransactionIdIsValid(d->persist_xid)))
	{
		d->persist_xid = xid;
		if (TransactionIdIsValid(xid))
		{
			lease_shared->persist_ring[lease_shared->persist_ring_next] = xid;
			lease_shared->persist_ring_next =
				(lease_shared->persist_ring_next + 1) % LEASE_PERSIST_RING;
		}
		ok = true;
	}
	SpinLockRelease(&lease_shared->mutex);
	return ok;
}

/*
 * Make now what this backend's first claim would otherwise make (the
 * transaction callbacks, the undo list, the epoch), for a receive about to
 * sleep: its first wake-up is then as fast as later ones.
 */
void
msgq_lease_prepare(void)
{
	lease_register_callbacks();
	if (lease_actions == NULL)
	{
		lease_maxactions = 64;
		lease_actions = MemoryContextAlloc(TopMemoryContext,
										   lease_maxactions * sizeof(LeaseAction));
	}
	(void) msgq_lease_epoch();
}

static LeaseAction *
lease_action_add(LeaseActionKind kind, const LeaseKey *key, int64 nonce)
{
	LeaseAction *a;

	lease_register_callbacks();
	if (lease_nactions == lease_maxactions)
	{
		int			newmax = Max(64, lease_maxactions * 2);

		if (lease_actions == NULL)
			lease_actions = MemoryContextAlloc(TopMemoryContext,
											   newmax * sizeof(LeaseAction));
		else
			lease_actions = repalloc(lease_actions, newmax * sizeof(LeaseAction));
		lease_maxactions = newmax;
	}
	a = &lease_actions[lease_nactions++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->key = *key;
	a->nonce = nonce;
	a->subid = GetCurrentSubTransactionId();
	return a;
}

/* A new or reused entry for message_id, whose row holds row_count. */
static void
lease_entry_reset(LeaseEntry *e, const pg_uuid_t *message_id, int32 row_count)
{
	e->message_id = *message_id;
	e->deadline = 0;
	e->received_at = 0;
	e->first_received_at = 0;
	e->nonce = 0;
	e->total = row_count;
	e->persisted = row_count;
	e->persist_xid = InvalidTransactionId;
	e->pending_proc = -1;
}

/*
 * Claim a message for a receive until deadline.  row_count and row_first
 * are the row's receive_count and whether its first_received_at is NULL,
 * as the receive's snapshot sees them; max_count is the queue's
 * maxReceiveCount (0: none).  Sets *total to the receive count including
 * this receive (or, for MSGQ_CLAIM_LIMIT, the count so far), *first to the
 * first receive time and *held_until to the deadline of a lease held by
 * another receive.
 *
 * The count is the larger of the row's and the lease's: a snapshot older
 * than the count writer's commit sees a smaller row count, never a larger
 * one, and the lease outlives every such snapshot (msgq_lease_persist).
 *
 * Room for the undo record is made before the table is touched, so that
 * nothing can fail between the claim and its record.
 */
MsgqClaim
msgq_lease_claim(int32 queue_id, int64 msg_seq, const pg_uuid_t *message_id,
				 TimestampTz now, TimestampTz deadline, int64 nonce,
				 int32 row_count, bool row_first_null, int32 max_count,
				 int32 *total, TimestampTz *first, TimestampTz *held_until)
{
	LeaseKey	key;
	uint32		hashcode;
	LWLock	   *lock;
	LeaseEntry *e;
	LeaseEntry	prev;
	bool		found;
	LeaseAction *a;

	lease_key(&key, queue_id, msg_seq);
	a = lease_action_add(LEASE_ACT_CLAIM, &key, nonce);
	lease_nactions--;			/* kept only if the claim succeeds */

	e = lease_find(&key, LW_EXCLUSIVE, &lock, &hashcode);
	if (e != NULL && memcmp(&e->message_id, message_id, sizeof(pg_uuid_t)) != 0)
		lease_entry_reset(e, message_id, row_count);	/* left over: start anew */
	if (e != NULL &&
		(e->pending_proc == MyProc->pgprocno ? e->pending_deadline : e->deadline) > now)
	{
		*held_until = e->deadline;
		LWLockRelease(lock);
		return MSGQ_CLAIM_HELD;
	}
	if (e != NULL)
		row_count = Max(row_count, e->total);
	if (max_count > 0 && row_count >= max_count)
	{
		*total = row_count;
		*first = e != NULL ? e->first_received_at : 0;
		LWLockRelease(lock);
		return MSGQ_CLAIM_LIMIT;
	}
	if (e == NULL)
	{
		if (pg_atomic_read_u32(&lease_shared->entries) >= (uint32) msgq_max_leases)
			e = NULL;
		else
			e = hash_search_with_hash_value(lease_hash, &key, hashcode,
											HASH_ENTER_NULL, &found);
		if (e == NULL)
		{
			LWLockRelease(lock);
			pg_atomic_fetch_add_u64(&lease_shared->full_claims, 1);
			return MSGQ_CLAIM_FULL;
		}
		pg_atomic_fetch_add_u32(&lease_shared->entries, 1);
		lease_entry_reset(e, message_id, row_count);
		a->was_new = true;
	}
	prev = *e;
	e->pending_proc = -1;
	e->deadline = deadline;
	e->received_at = now;
	e->nonce = nonce;
	e->total = row_count + 1;
	if (row_first_null && e->first_received_at == 0)
		e->first_received_at = now;
	*total = e->total;
	*first = row_first_null ? e->first_received_at : 0;
	LWLockRelease(lock);

	lease_nactions++;
	a->prev = prev;
	a->total = *total;
	return MSGQ_CLAIM_OK;
}

/*
 * The claim just made wrote its count into the row in this transaction
 * (an inherited message): its lease need not be written again once this
 * commits.
 */
void
msgq_lease_claim_written(void)
{
	Assert(lease_nactions > 0 &&
		   lease_actions[lease_nactions - 1].kind == LEASE_ACT_CLAIM);
	lease_actions[lease_nactions - 1].written_xid = GetCurrentTransactionId();
}

/* Record that the row of a lease holds total, written by xid. */
static void
lease_set_persisted(const LeaseKey *key, const pg_uuid_t *message_id,
					int32 total, TransactionId xid)
{
	LWLock	   *lock;
	LeaseEntry *e = lease_find(key, LW_EXCLUSIVE, &lock, NULL);

	if (e != NULL &&
		(message_id == NULL ||
		 memcmp(&e->message_id, message_id, sizeof(pg_uuid_t)) == 0) &&
		total >= e->persisted)
	{
		e->persisted = total;
		e->persist_xid = xid;
	}
	LWLockRelease(lock);
}

/*
 * Restore one lease after an action that is undone.  keep_count: the
 * action was a receive that rolled back, which still counts.
 */
static void
lease_restore(LeaseAction *a, bool keep_count)
{
	uint32		hashcode;
	LWLock	   *lock;
	LeaseEntry *e = lease_find(&a->key, LW_EXCLUSIVE, &lock, &hashcode);

	if (e != NULL && e->nonce == a->nonce)
	{
		if (a->kind == LEASE_ACT_VISIBILITY)
			e->deadline = a->prev.deadline;
		else if (!keep_count && a->was_new)
		{
			hash_search_with_hash_value(lease_hash, &a->key, hashcode,
										HASH_REMOVE, NULL);
			pg_atomic_fetch_sub_u32(&lease_shared->entries, 1);
		}
		else
		{
			e->deadline = a->prev.deadline;
			e->nonce = a->prev.nonce;
			e->received_at = a->prev.received_at;
			if (!keep_count)
			{
				e->total = Max(a->prev.total, e->persisted);
				e->first_received_at = a->prev.first_received_at;
			}
		}
	}
	LWLockRelease(lock);
}

/* Give back the claim just made: the row turned out to be taken. */
void
msgq_lease_unclaim(void)
{
	Assert(lease_nactions > 0 &&
		   lease_actions[lease_nactions - 1].kind == LEASE_ACT_CLAIM);
	lease_restore(&lease_actions[lease_nactions - 1], false);
	lease_nactions--;
}

/*
 * Is the row version at (relid, tid) free to deliver?  Not when another
 * transaction is deleting, updating or locking it, or did so and committed
 * after our snapshot.  The caller's scan holds a lock on the relation.
 */
bool
msgq_lease_row_free(Oid relid, ItemPointer tid)
{
	Relation	rel = relation_open(relid, NoLock);
	ItemPointerData cur = *tid;
	TransactionId prev_xmax = InvalidTransactionId;
	bool		free_ = false;
	int			hop;

	/*
	 * A version replaced by the count writer is followed to its successor
	 * (a few hops at most): the writer changed only the receive count, so
	 * the successor decides.
	 */
	for (hop = 0; hop < 4; hop++)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber off = ItemPointerGetOffsetNumber(&cur);
		bool		follow = false;

		buf = ReadBuffer(rel, ItemPointerGetBlockNumber(&cur));
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		free_ = false;
		if (off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page))
		{
			ItemId		lp = PageGetItemId(page, off);

			if (ItemIdIsRedirected(lp) && hop > 0)
			{
				/* a pruned HOT chain: its live member is further on */
				ItemPointerSetOffsetNumber(&cur, ItemIdGetRedirect(lp));
				UnlockReleaseBuffer(buf);
				continue;
			}
			if (ItemIdIsNormal(lp))
			{
				HeapTupleHeader htup = (HeapTupleHeader) PageGetItem(page, lp);
				uint16		infomask = htup->t_infomask;
				TransactionId xmax = HeapTupleHeaderGetRawXmax(htup);

				if (hop > 0 &&
					!TransactionIdEquals(HeapTupleHeaderGetXmin(htup), prev_xmax))
					free_ = false;	/* not the successor: the slot was reused */
				else if (infomask & HEAP_XMAX_INVALID)
					free_ = true;
				else if (infomask & HEAP_XMAX_IS_MULTI)
				{
					if (HEAP_XMAX_IS_LOCKED_ONLY(infomask))
						free_ = !MultiXactIdIsRunning(xmax, true);
					else
					{
						TransactionId upd = HeapTupleGetUpdateXid(htup);

						free_ = !TransactionIdIsCurrentTransactionId(upd) &&
							!TransactionIdIsInProgress(upd) &&
							!TransactionIdDidCommit(upd);
					}
				}
				else if (TransactionIdIsCurrentTransactionId(xmax))
				{
					/*
					 * This transaction wrote the counts itself (a receive
					 * after msgq.run_maintenance() in one transaction): the
					 * writer's lock carried over to the version it made.
					 */
					free_ = HEAP_XMAX_IS_LOCKED_ONLY(infomask) && lease_is_persist_xid(xmax);
				}
				else if (HEAP_XMAX_IS_LOCKED_ONLY(infomask))
				{
					/* the count writer's own lock carries over to its new version */
					free_ = !TransactionIdIsInProgress(xmax) ||
						lease_is_persist_xid(xmax);
				}
				else if (lease_is_persist_xid(xmax))
				{
					if (TransactionIdIsInProgress(xmax) || !TransactionIdDidCommit(xmax))
						free_ = true;	/* as good as its successor-to-be */
					else
					{
						follow = true;
						prev_xmax = xmax;
						cur = htup->t_ctid;
					}
				}
				else if (TransactionIdIsInProgress(xmax))
					free_ = false;
				else
					free_ = !TransactionIdDidCommit(xmax);
			}
		}
		UnlockReleaseBuffer(buf);
		if (!follow)
			break;
	}
	relation_close(rel, NoLock);
	return free_;
}

/*
 * The lease of a message as a handle with the given nonce sees it: NONE
 * when there is no lease, MATCH when the handle is the latest receive's,
 * STALE when the message was received again since.  With MATCH or STALE,
 * *deadline and *received_at are the lease's.
 */
MsgqLeaseState
msgq_lease_check(int32 queue_id, int64 msg_seq, int64 nonce,
				 TimestampTz *deadline, TimestampTz *received_at)
{
	LeaseKey	key;
	LWLock	   *lock;
	LeaseEntry *e;
	MsgqLeaseState st = MSGQ_LEASE_NONE;

	lease_key(&key, queue_id, msg_seq);
	e = lease_find(&key, LW_SHARED, &lock, NULL);
	if (e != NULL && e->nonce != 0)
	{
		st = (e->nonce == nonce) ? MSGQ_LEASE_MATCH : MSGQ_LEASE_STALE;
		*deadline = e->deadline;
		*received_at = e->received_at;
	}
	LWLockRelease(lock);
	return st;
}

/*
 * Move the deadline of the lease that nonce names.  Returns false when
 * the lease is no longer that receive's.  A longer lease applies at once
 * and is undone at abort; a shorter one applies when the transaction
 * commits, so that no other receive takes the message before.
 */
bool
msgq_lease_set_deadline(int32 queue_id, int64 msg_seq, int64 nonce,
						TimestampTz deadline, TimestampTz *old_deadline)
{
	LeaseKey	key;
	LWLock	   *lock;
	LeaseEntry *e;
	LeaseAction *a;
	bool		ok = false;

	lease_key(&key, queue_id, msg_seq);
	a = lease_action_add(LEASE_ACT_VISIBILITY, &key, nonce);
	e = lease_find(&key, LW_EXCLUSIVE, &lock, NULL);
	if (e != NULL && e->nonce == nonce)
	{
		a->prev = *e;
		*old_deadline = e->deadline;
		if (deadline >= e->deadline)
			e->deadline = deadline;
		else
		{
			/*
			 * Others may take the message only once this commits; this
			 * backend's own receives see the change at once.
			 */
			a->kind = LEASE_ACT_SHORTEN;
			a->target = deadline;
			e->pending_proc = MyProc->pgprocno;
			e->pending_deadline = deadline;
		}
		ok = true;
	}
	LWLockRelease(lock);
	if (!ok)
		lease_nactions--;
	return ok;
}

/* Apply (commit) or drop (abort) a shortened lease, if still that receive's. */
static void
lease_shorten(LeaseAction *a, bool apply)
{
	LWLock	   *lock;
	LeaseEntry *e = lease_find(&a->key, LW_EXCLUSIVE, &lock, NULL);

	if (e != NULL && e->nonce == a->nonce)
	{
		if (apply)
			e->deadline = a->target;
		if (e->pending_proc == MyProc->pgprocno)
			e->pending_proc = -1;
	}
	LWLockRelease(lock);
}

/* Remove a message's lease when this transaction commits (its delete). */
void
msgq_lease_forget_at_commit(int32 queue_id, int64 msg_seq)
{
	LeaseKey	key;

	lease_key(&key, queue_id, msg_seq);
	(void) lease_action_add(LEASE_ACT_FORGET, &key, 0);
}

/*
 * Remove a lease; with message_id, only if it is still that message's and
 * ended by ended_by (a lease on a row that a still open transaction
 * inserted is not seen by others, and must not be taken for a gone one).
 */
static void
lease_forget(const LeaseKey *key, const pg_uuid_t *message_id, TimestampTz ended_by)
{
	uint32		hashcode;
	LWLock	   *lock;
	LeaseEntry *e = lease_find(key, LW_EXCLUSIVE, &lock, &hashcode);

	if (e != NULL &&
		(message_id == NULL ||
		 (memcmp(&e->message_id, message_id, sizeof(pg_uuid_t)) == 0 &&
		  e->deadline <= ended_by)))
	{
		hash_search_with_hash_value(lease_hash, key, hashcode, HASH_REMOVE, NULL);
		pg_atomic_fetch_sub_u32(&lease_shared->entries, 1);
	}
	LWLockRelease(lock);
}

/* Undo the actions of a (sub)transaction from index from on, newest first. */
static void
lease_undo(int from)
{
	int			i;

	for (i = lease_nactions - 1; i >= from; i--)
	{
		LeaseAction *a = &lease_actions[i];

		if (a->kind == LEASE_ACT_FORGET)
			continue;
		if (a->kind == LEASE_ACT_SHORTEN)
		{
			lease_shorten(a, false);
			continue;
		}
		lease_restore(a, a->kind == LEASE_ACT_CLAIM);
		if (a->kind == LEASE_ACT_CLAIM)
			msgq_wakeup_now(a->key.queue_id, false);
	}
}

/*
 * The end of a transaction that wrote receive counts: at commit, record in
 * each lease the count its row now holds and the writer's xid, so that the
 * lease is kept until every snapshot sees that write.
 */
static void
lease_persist_end(bool commit)
{
	int			i;

	if (commit)
		for (i = 0; i < lease_npersisted; i++)
			lease_set_persisted(&lease_persisted[i].key,
								&lease_persisted[i].message_id,
								lease_persisted[i].total, lease_write_xid);
	lease_npersisted = 0;
	if (lease_persisting)
		(void) lease_set_persist_xid(InvalidTransactionId);
	lease_persisting = false;
}

static void
lease_xact_callback(XactEvent event, void *arg)
{
	int			i;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:

			/*
			 * Shortened leases end before the commit's wake-ups run (wait.c
			 * wakes at XACT_EVENT_COMMIT), so a woken waiter finds them.
			 * Nothing durable depends on them.
			 */
			for (i = 0; i < lease_nactions; i++)
				if (lease_actions[i].kind == LEASE_ACT_SHORTEN)
					lease_shorten(&lease_actions[i], true);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			for (i = 0; i < lease_nactions; i++)
			{
				LeaseAction *a = &lease_actions[i];

				if (a->kind == LEASE_ACT_FORGET)
					lease_forget(&a->key, NULL, 0);
				else if (a->kind == LEASE_ACT_CLAIM &&
						 TransactionIdIsValid(a->written_xid))
					lease_set_persisted(&a->key, NULL, a->total, a->written_xid);
			}
			lease_nactions = 0;
			lease_persist_end(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			lease_undo(0);
			lease_nactions = 0;
			lease_persist_end(false);
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (lease_nactions > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has sent or received msgq messages")));
			break;
		default:
			break;
	}
}

static void
lease_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			i,
				from;

	switch (event)
	{
		case SUBXACT_EVENT_COMMIT_SUB:
			for (i = 0; i < lease_nactions; i++)
				if (lease_actions[i].subid == mySubid)
					lease_actions[i].subid = parentSubid;
			if (lease_write_subid == mySubid)
				lease_write_subid = parentSubid;
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			/* counts written in the aborted subtransaction were not written */
			if (lease_npersisted > 0 && lease_write_subid >= mySubid)
				lease_npersisted = 0;

			/*
			 * A subtransaction's actions are the newest ones: its committed
			 * children's were given its id, aborted ones are gone.
			 */
			from = lease_nactions;
			while (from > 0 && lease_actions[from - 1].subid >= mySubid)
				from--;
			lease_undo(from);
			lease_nactions = from;
			break;
		default:
			break;
	}
}

static void
lease_register_callbacks(void)
{
	if (lease_callbacks_registered)
		return;
	RegisterXactCallback(lease_xact_callback, NULL);
	RegisterSubXactCallback(lease_subxact_callback, NULL);
	lease_callbacks_registered = true;
}

/*
 * One maintenance step: write the receive counts of this database's leases
 * into their rows, in one statement per batch, and forget leases that ended
 * with nothing left to write (once no snapshot can read a row version older
 * than the write) or whose message is gone.  Rows locked by a transaction
 * are skipped and tried again next cycle.  Returns the number of rows
 * written.
 */
int
msgq_lease_persist(void)
{
	HASH_SEQ_STATUS status;
	LeaseEntry *e;
	/* a test clock ahead of real time must not end leases early */
	TimestampTz now = Min(msgq_now(), GetCurrentTimestamp());
	Datum	   *qd,
			   *sd,
			   *cd,
			   *fd;
	Datum	   *idd;
	bool	   *fnull;
	LeaseKey   *keys;
	int			n = 0,
				i,
				written = 0;
	int			lo;
	TransactionId horizon = GetOldestNonRemovableTransactionId(NULL);

	if (pg_atomic_read_u32(&lease_shared->entries) == 0 || lease_npersisted > 0)
		return 0;

	qd = palloc(sizeof(Datum) * LEASE_PERSIST_BATCH);
	sd = palloc(sizeof(Datum) * LEASE_PERSIST_BATCH);
	cd = palloc(sizeof(Datum) * LEASE_PERSIST_BATCH);
	fd = palloc(sizeof(Datum) * LEASE_PERSIST_BATCH);
	idd = palloc(sizeof(Datum) * LEASE_PERSIST_BATCH);
	fnull = palloc(sizeof(bool) * LEASE_PERSIST_BATCH);
	keys = palloc(sizeof(LeaseKey) * LEASE_PERSIST_BATCH);

	/*
	 * Collect under each partition's lock in turn (hash_seq_search over a
	 * partitioned table needs every partition locked).
	 */
	for (lo = 0; lo < LEASE_PARTITIONS; lo++)
		LWLockAcquire(&lease_locks[lo].lock, LW_EXCLUSIVE);
	hash_seq_init(&status, lease_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->key.dboid != MyDatabaseId)
			continue;
		if (e->total <= e->persisted)
		{
			if (e->deadline <= now &&
				(!TransactionIdIsValid(e->persist_xid) ||
				 TransactionIdPrecedes(e->persist_xid, horizon)))
			{
				LeaseKey	k = e->key;

				hash_search(lease_hash, &k, HASH_REMOVE, NULL);
				pg_atomic_fetch_sub_u32(&lease_shared->entries, 1);
			}
			continue;
		}
		if (n == LEASE_PERSIST_BATCH)
			continue;
		keys[n] = e->key;
		qd[n] = Int32GetDatum(e->key.queue_id);
		sd[n] = Int64GetDatum(e->key.msg_seq);
		idd[n] = UUIDPGetDatum(palloc_object(pg_uuid_t));
		memcpy(DatumGetUUIDP(idd[n]), &e->message_id, sizeof(pg_uuid_t));
		cd[n] = Int32GetDatum(e->total);
		fd[n] = TimestampTzGetDatum(e->first_received_at);
		fnull[n] = e->first_received_at == 0;
		n++;
	}
	for (lo = LEASE_PARTITIONS - 1; lo >= 0; lo--)
		LWLockRelease(&lease_locks[lo].lock);

	/*
	 * One writer per database: the slot names this transaction, so that
	 * receivers do not take its row locks for another receive's.
	 */
	if (n > 0)
	{
		lease_register_callbacks();
		if (!lease_set_persist_xid(GetCurrentTransactionId()))
			n = 0;
		else
			lease_persisting = true;
	}
	if (n > 0)
	{
		Oid			argtypes[5] = {INT4ARRAYOID, INT8ARRAYOID, UUIDARRAYOID,
		INT4ARRAYOID, TIMESTAMPTZARRAYOID};
		Datum		values[5];
		SPIPlanPtr	plan;
		int			dims[1] = {n};
		int			lbs[1] = {1};
		uint64		r;

		values[0] = PointerGetDatum(construct_array(qd, n, INT4OID, 4, true, TYPALIGN_INT));
		values[1] = PointerGetDatum(construct_array(sd, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[2] = PointerGetDatum(construct_array(idd, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		values[3] = PointerGetDatum(construct_array(cd, n, INT4OID, 4, true, TYPALIGN_INT));
		values[4] = PointerGetDatum(construct_md_array(fd, fnull, 1, dims, lbs,
													   TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL,
													   TYPALIGN_DOUBLE));
		plan = SPI_prepare("WITH k AS ("
								  "  SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
								  "    pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5))"
								  "    AS k(q, s, id, c, f)),"
								  " l AS ("
								  "  SELECT m.queue_id, m.msg_seq, m.seg, k.c, k.f"
								  "    FROM msgq.message m JOIN k"
								  "      ON m.queue_id OPERATOR(pg_catalog.=) k.q"
								  "     AND m.msg_seq OPERATOR(pg_catalog.=) k.s"
								  "     AND m.message_id OPERATOR(pg_catalog.=) k.id"
								  "   FOR UPDATE OF m SKIP LOCKED),"
								  " u AS ("
								  "  UPDATE msgq.message m"
								  "     SET receive_count = GREATEST(m.receive_count, l.c),"
								  "         first_received_at = COALESCE(m.first_received_at, l.f)"
								  "    FROM l"
								  "   WHERE m.queue_id OPERATOR(pg_catalog.=) l.queue_id"
								  "     AND m.msg_seq OPERATOR(pg_catalog.=) l.msg_seq"
								  "     AND m.seg OPERATOR(pg_catalog.=) l.seg"
								  "  RETURNING m.queue_id, m.msg_seq)"
								  " SELECT k.q, k.s,"
								  "        EXISTS (SELECT 1 FROM u WHERE u.queue_id OPERATOR(pg_catalog.=) k.q"
								  "                  AND u.msg_seq OPERATOR(pg_catalog.=) k.s),"
								  "        EXISTS (SELECT 1 FROM msgq.message m"
								  "                 WHERE m.queue_id OPERATOR(pg_catalog.=) k.q"
								  "                   AND m.msg_seq OPERATOR(pg_catalog.=) k.s"
								  "                   AND m.message_id OPERATOR(pg_catalog.=) k.id)"
								  "   FROM k",
								  5, argtypes);
		if (plan == NULL ||
			msgq_execute_keyed(plan, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not write receive counts");
		SPI_freeplan(plan);

		for (r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int32		q = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
			int64		s = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			bool		done = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
			bool		exists = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));

			for (i = 0; i < n; i++)
				if (keys[i].queue_id == q && keys[i].msg_seq == s)
					break;
			if (i == n)
				continue;
			if (done)
			{
				if (lease_persisted == NULL)
					lease_persisted = MemoryContextAlloc(TopMemoryContext,
														 LEASE_PERSIST_BATCH * sizeof(LeasePersisted));
				lease_register_callbacks();
				lease_persisted[lease_npersisted].key = keys[i];
				lease_persisted[lease_npersisted].message_id = *DatumGetUUIDP(idd[i]);
				lease_persisted[lease_npersisted].total = DatumGetInt32(cd[i]);
				lease_npersisted++;
				written++;
			}
			else if (!exists)
				lease_forget(&keys[i], DatumGetUUIDP(idd[i]), now);
		}
		lease_write_xid = GetCurrentTransactionIdIfAny();
		lease_write_subid = GetCurrentSubTransactionId();
	}
	return written;
}

PG_FUNCTION_INFO_V1(msgq_lease_until);

/*
 * msgq.lease_until(queue_id int, msg_seq bigint, message_id uuid)
 * returns timestamptz
 *
 * The deadline of a message's lease in shared memory, or NULL: counts and
 * removals use GREATEST(visible_at, lease_until(...)) as when a message is
 * visible again.
 */
Datum
msgq_lease_until(PG_FUNCTION_ARGS)
{
	LeaseKey	key;
	LWLock	   *lock;
	LeaseEntry *e;
	TimestampTz deadline = 0;
	bool		found = false;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) ||
		pg_atomic_read_u32(&lease_shared->entries) == 0)
		PG_RETURN_NULL();
	lease_key(&key, PG_GETARG_INT32(0), PG_GETARG_INT64(1));
	e = lease_find(&key, LW_SHARED, &lock, NULL);
	if (e != NULL && e->nonce != 0 &&
		memcmp(&e->message_id, PG_GETARG_UUID_P(2), sizeof(pg_uuid_t)) == 0)
	{
		deadline = e->deadline;
		found = true;
	}
	LWLockRelease(lock);
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(deadline);
}

PG_FUNCTION_INFO_V1(msgq_lease_table);

/*
 * msgq.lease_table(OUT leases bigint, OUT max_leases bigint,
 *		OUT full_claims bigint)
 *
 * The lease table's use: entries, its size (msgq.max_leases) and the
 * receives since start that found it full and took the durable path.
 */
Datum
msgq_lease_table(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(pg_atomic_read_u32(&lease_shared->entries));
	values[1] = Int64GetDatum(msgq_max_leases);
	values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&lease_shared->full_claims));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
