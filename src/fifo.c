/*-------------------------------------------------------------------------
 *
 * fifo.c
 *	  FIFO queues: order within a message group, deduplication, and the
 *	  blocking of a group while any of its messages is in flight.
 *
 * Order.  A send to a FIFO queue takes a transaction-level lock on its
 * message group (an advisory lock tag of msgq's own: database, queue id,
 * hash of the group id, 3) before it takes its sequence number from
 * msgq.message_seq.  The lock is held until the sender commits or aborts,
 * so the sends of one group are serialized: a later send of the group
 * waits for the earlier one's end, and its number is larger.  Numbers
 * therefore increase within a group in commit order, and a receive that
 * reads the queue in msg_seq order meets a group's messages in the order
 * they were sent.  A receive never sees a later message of a group while
 * an earlier one is still uncommitted.  The message's SequenceNumber is its
 * msg_seq.
 *
 * Deduplication.  msgq.fifo_dedup has one row per deduplication id (per
 * queue, or per group with DeduplicationScope messageGroup) seen in the last
 * five minutes, with the message it enqueued.  The send inserts it with
 * ON CONFLICT: a concurrent duplicate waits for the first sender's end and
 * is then a duplicate (or, if the first aborted, the first); a row older than
 * five minutes is taken over.  Deleting the message does not remove the row;
 * purge_queue and delete_queue do; the maintenance cycle removes expired
 * rows.
 *
 * Receive order.  A receive walks msgq.message's partial index on
 * (queue_id, message_group_id, msg_seq) (queue.c): the groups in name order
 * from a shared per-queue cursor (the group the last receive took from),
 * wrapping around, each group's messages in order.  A blocked group costs one
 * probe of the index whatever its backlog.  A delete wakes the queue's
 * waiters, since it may unblock a group; a waiter that found groups blocked
 * also wakes when their leases end.
 *
 * Group blocking.  A shared hash keyed by (database, queue id, hash of the
 * group id, and msgq.queue's oid, which a new CREATE EXTENSION changes
 * while queue ids and msg_seq start again) lists the messages of the group
 * that the latest receive of it
 * took (at most ten: a group is blocked after a receive, so a second receive
 * of it waits until the first one's messages are all deleted or visible
 * again).  A group is blocked while any listed message still has a live
 * lease of that receive (lease.c); deletes, expiries, visibility changes and
 * rolled-back receives end leases, so nothing here needs undoing.  When the
 * table is full, groups that are not in it yet are not received (AWS's FIFO
 * in-flight limit returns no messages either).
 *
 * IDENTIFICATION
 *	  src/fifo.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "msgq.h"

#define FIFO_LOCK_FIELD4	3	/* advisory tags of pg_advisory_lock use 1 and 2 */
#define FIFO_DEDUP_WINDOW	(5 * 60 * USECS_PER_SEC)

typedef struct FifoGroupKey
{
	Oid			dboid;
	Oid			incarnation;	/* msgq.queue's oid: queue ids and msg_seq
								 * start again after DROP EXTENSION */
	int32		queue_id;
	uint64		group_hash;
} FifoGroupKey;

typedef struct FifoGroupEntry
{
	FifoGroupKey key;
	int			n;
	int64		seqs[MSGQ_MAX_RECEIVE_MESSAGES];
	int64		nonces[MSGQ_MAX_RECEIVE_MESSAGES];
} FifoGroupEntry;

/* A FIFO receive named by its ReceiveRequestAttemptId */
typedef struct FifoAttemptKey
{
	Oid			dboid;
	Oid			incarnation;
	int32		queue_id;
	uint64		attempt_hash;
} FifoAttemptKey;

typedef struct FifoAttemptEntry
{
	FifoAttemptKey key;
	char		attempt_id[MSGQ_MAX_ID_LEN + 1];
	TimestampTz received_at;
	int			n;
	MsgqFifoTaken taken[MSGQ_MAX_RECEIVE_MESSAGES];
} FifoAttemptEntry;

#define FIFO_MAX_ATTEMPTS	4096

/* Where the last receive of a FIFO queue stopped: the group it took from */
typedef struct FifoCursorKey
{
	Oid			dboid;
	Oid			incarnation;
	int32		queue_id;
} FifoCursorKey;

typedef struct FifoCursorEntry
{
	FifoCursorKey key;
	char		group_id[MSGQ_MAX_ID_LEN + 1];
} FifoCursorEntry;

#define FIFO_MAX_CURSORS	1024

static HTAB *fifo_groups = NULL;
static HTAB *fifo_attempts = NULL;
static HTAB *fifo_cursors = NULL;
static LWLock *fifo_lock = NULL;
static SPIPlanPtr fifo_plan_dedup = NULL;
static SPIPlanPtr fifo_plan_dedup_get = NULL;
static SPIPlanPtr fifo_plan_dedup_clear = NULL;
static SPIPlanPtr fifo_plan_dedup_expire = NULL;

static long
fifo_max_groups(void)
{
	return Max(1024, msgq_max_leases / 4);
}

void
msgq_fifo_shmem_size(Size *size)
{
	*size = add_size(*size, hash_estimate_size(fifo_max_groups(), sizeof(FifoGroupEntry)));
	*size = add_size(*size, hash_estimate_size(FIFO_MAX_ATTEMPTS, sizeof(FifoAttemptEntry)));
	*size = add_size(*size, hash_estimate_size(FIFO_MAX_CURSORS, sizeof(FifoCursorEntry)));
}

void
msgq_fifo_shmem_init(void)
{
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(FifoGroupKey);
	info.entrysize = sizeof(FifoGroupEntry);
	fifo_groups = ShmemInitHash("msgq fifo groups", fifo_max_groups(), fifo_max_groups(),
								&info, HASH_ELEM | HASH_BLOBS);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(FifoAttemptKey);
	info.entrysize = sizeof(FifoAttemptEntry);
	fifo_attempts = ShmemInitHash("msgq fifo receive attempts", FIFO_MAX_ATTEMPTS,
								  FIFO_MAX_ATTEMPTS, &info, HASH_ELEM | HASH_BLOBS);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(FifoCursorKey);
	info.entrysize = sizeof(FifoCursorEntry);
	fifo_cursors = ShmemInitHash("msgq fifo cursors", FIFO_MAX_CURSORS, FIFO_MAX_CURSORS,
								 &info, HASH_ELEM | HASH_BLOBS);
	fifo_lock = &(GetNamedLWLockTranche("msgq_fifo"))[0].lock;
}

static uint64
fifo_group_hash(const char *group_id)
{
	return hash_bytes_extended((const unsigned char *) group_id,
							   strlen(group_id), 0);
}

static void
fifo_group_key(FifoGroupKey *key, int32 queue_id, const char *group_id)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	key->incarnation = msgq_queue_table_relid();
	key->queue_id = queue_id;
	key->group_hash = fifo_group_hash(group_id);
}

/*
 * Lock a message group of a FIFO queue until the end of the transaction:
 * sends to one group are serialized, so their sequence numbers follow
 * their commits.  A deadlock between two transactions that send to two
 * groups in opposite orders is detected and one of them fails.
 */
void
msgq_fifo_lock_group(int32 queue_id, const char *group_id)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) queue_id,
						 (uint32) fifo_group_hash(group_id), FIFO_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Lock a message group if nobody holds it, without waiting (the maintenance
 * cycle's move tasks: they skip a group a sender holds, and so never
 * deadlock with a transaction that sends to several groups).
 */
bool
msgq_fifo_try_lock_group(int32 queue_id, const char *group_id)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) queue_id,
						 (uint32) fifo_group_hash(group_id), FIFO_LOCK_FIELD4);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/* The content-based deduplication id: hex SHA-256 of the body. */
char *
msgq_fifo_content_dedup_id(text *body)
{
	bytea	   *digest = DatumGetByteaPP(DirectFunctionCall1(sha256_bytea,
															PointerGetDatum(body)));
	char	   *hex = palloc(2 * VARSIZE_ANY_EXHDR(digest) + 1);

	hex[hex_encode(VARDATA_ANY(digest), VARSIZE_ANY_EXHDR(digest), hex)] = '\0';
	return hex;
}

/*
 * Record a send's deduplication id.  Returns true when the send enqueues
 * (the id is new, or its row expired); false for a duplicate, with the
 * message id and sequence number of the send that the id names.  Must run
 * after the group's lock is taken.  Caller is in a msgq call (SPI).
 */
bool
msgq_fifo_dedup(MsgqQueue *queue, const char *group_id, const char *dedup_id,
				Datum message_id, int64 seq, TimestampTz now,
				Datum *orig_message_id, int64 *orig_seq)
{
	Oid			argtypes[7] = {INT4OID, TEXTOID, TEXTOID, UUIDOID, INT8OID,
	TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[7];
	bool		isnull;

	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = CStringGetTextDatum(queue->dedup_per_group ? group_id : "");
	values[2] = CStringGetTextDatum(dedup_id);
	values[3] = message_id;
	values[4] = Int64GetDatum(seq);
	values[5] = TimestampTzGetDatum(now);
	values[6] = TimestampTzGetDatum(now - FIFO_DEDUP_WINDOW);
	if (SPI_execute_plan(msgq_plan(&fifo_plan_dedup,
								   "INSERT INTO msgq.fifo_dedup AS d"
								   " (queue_id, scope, dedup_id, message_id, sequence_number, sent_at)"
								   " VALUES ($1, $2, $3, $4, $5, $6)"
								   " ON CONFLICT (queue_id, scope, dedup_id) DO UPDATE"
								   "   SET message_id = EXCLUDED.message_id,"
								   "       sequence_number = EXCLUDED.sequence_number,"
								   "       sent_at = EXCLUDED.sent_at"
								   "   WHERE d.sent_at OPERATOR(pg_catalog.<=) $7",
								   7, argtypes),
						 values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record a deduplication id");
	if (SPI_processed == 1)
		return true;

	if (SPI_execute_plan(msgq_plan(&fifo_plan_dedup_get,
								   "SELECT message_id, sequence_number FROM msgq.fifo_dedup"
								   " WHERE queue_id OPERATOR(pg_catalog.=) $1"
								   "   AND scope OPERATOR(pg_catalog.=) $2"
								   "   AND dedup_id OPERATOR(pg_catalog.=) $3",
								   3, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read a deduplication id");
	*orig_message_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*orig_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return false;
}

/* AWS's error for a FIFO receipt handle whose visibility timeout passed */
void
msgq_fifo_handle_expired(const char *handle)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
			 errmsg("the receipt handle has expired"),
			 errdetail_internal("AWS error code: InvalidParameterValue. Value %s for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.",
								handle)));
}

/* Forget a queue's deduplication ids (purge_queue, delete_queue). */
void
msgq_fifo_dedup_clear(int32 queue_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(queue_id);
	if (SPI_execute_plan(msgq_plan(&fifo_plan_dedup_clear,
								   "DELETE FROM msgq.fifo_dedup"
								   " WHERE queue_id OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
						 values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear deduplication ids");
}

/* Remove expired deduplication ids (the maintenance cycle). */
void
msgq_fifo_dedup_expire(void)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	values[0] = TimestampTzGetDatum(msgq_now() - FIFO_DEDUP_WINDOW);
	if (msgq_execute_keyed(msgq_plan(&fifo_plan_dedup_expire,
									 "DELETE FROM msgq.fifo_dedup"
									 " WHERE sent_at OPERATOR(pg_catalog.<=) $1",
									 1, argtypes),
						   values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not remove expired deduplication ids");
}

/* Is a listed message still in flight for the receive that took it? */
static bool
fifo_in_flight(int32 queue_id, int64 seq, int64 nonce, TimestampTz now,
			   TimestampTz *deadline)
{
	TimestampTz received_at;

	return msgq_lease_check(queue_id, seq, nonce, deadline, &received_at) ==
		MSGQ_LEASE_MATCH && *deadline > now;
}

/*
 * Is a group blocked: does a message the group's latest receive took still
 * have that receive's lease?  *until is then when the last of those leases
 * ends, as now known.
 */
bool
msgq_fifo_group_blocked(int32 queue_id, const char *group_id, TimestampTz now,
						TimestampTz *until)
{
	FifoGroupKey key;
	FifoGroupEntry *e;
	int64		seqs[MSGQ_MAX_RECEIVE_MESSAGES];
	int64		nonces[MSGQ_MAX_RECEIVE_MESSAGES];
	int			n = 0;
	int			i;

	fifo_group_key(&key, queue_id, group_id);
	LWLockAcquire(fifo_lock, LW_SHARED);
	e = hash_search(fifo_groups, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		n = e->n;
		memcpy(seqs, e->seqs, sizeof(int64) * n);
		memcpy(nonces, e->nonces, sizeof(int64) * n);
	}
	LWLockRelease(fifo_lock);

	/* lease partitions are taken after the group lock is released */
	*until = 0;
	for (i = 0; i < n; i++)
	{
		TimestampTz deadline;

		if (fifo_in_flight(queue_id, seqs[i], nonces[i], now, &deadline))
			*until = Max(*until, deadline);
	}
	return *until != 0;
}

/*
 * Add a message just claimed (seq, with the receive's nonce) to its group's
 * list.  first: it is the first message of the group this receive takes,
 * which replaces the list (the group was found not blocked).  Returns false
 * when the table has no room for a new group.
 */
bool
msgq_fifo_group_add(int32 queue_id, const char *group_id, int64 seq,
					int64 nonce, bool first)
{
	FifoGroupKey key;
	FifoGroupEntry *e;
	bool		found;

	fifo_group_key(&key, queue_id, group_id);
	LWLockAcquire(fifo_lock, LW_EXCLUSIVE);
	e = hash_search(fifo_groups, &key, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		LWLockRelease(fifo_lock);
		return false;
	}
	if (!found || first)
		e->n = 0;
	if (e->n < MSGQ_MAX_RECEIVE_MESSAGES)
	{
		e->seqs[e->n] = seq;
		e->nonces[e->n] = nonce;
		e->n++;
	}
	LWLockRelease(fifo_lock);
	return true;
}

/*
 * Forget the groups of this database whose messages are all out of flight
 * (the maintenance cycle), so that the table holds only blocked groups.
 */
void
msgq_fifo_groups_prune(void)
{
	HASH_SEQ_STATUS status;
	FifoGroupEntry *e;
	FifoGroupKey *keys;
	FifoGroupEntry *copies;
	int			n = 0,
				max = 4096,
				i,
				j;
	TimestampTz now = Min(msgq_now(), GetCurrentTimestamp());

	keys = palloc(sizeof(FifoGroupKey) * max);
	copies = palloc(sizeof(FifoGroupEntry) * max);
	LWLockAcquire(fifo_lock, LW_SHARED);
	hash_seq_init(&status, fifo_groups);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->key.dboid != MyDatabaseId)
			continue;
		if (n == max)
		{
			hash_seq_term(&status);
			break;
		}
		copies[n] = *e;
		keys[n++] = e->key;
	}
	LWLockRelease(fifo_lock);

	for (i = 0; i < n; i++)
	{
		bool		live = false;

		for (j = 0; j < copies[i].n && !live; j++)
		{
			TimestampTz deadline;

			live = fifo_in_flight(keys[i].queue_id, copies[i].seqs[j],
								  copies[i].nonces[j], now, &deadline);
		}
		if (live)
			continue;
		LWLockAcquire(fifo_lock, LW_EXCLUSIVE);
		e = hash_search(fifo_groups, &keys[i], HASH_FIND, NULL);
		/* unchanged since: a receive that took the group since replaced the list */
		if (e != NULL && e->n == copies[i].n &&
			memcmp(e->nonces, copies[i].nonces, sizeof(int64) * e->n) == 0)
			hash_search(fifo_groups, &keys[i], HASH_REMOVE, NULL);
		LWLockRelease(fifo_lock);
	}
}

/*
 * ReceiveRequestAttemptId.  A FIFO receive that names an attempt id is
 * remembered for five minutes in a shared table (FIFO_MAX_ATTEMPTS
 * entries; when it is full a receive is not remembered): the messages it
 * returned, with their receive's nonce, deadline and count.  A receive
 * with the same id finds them again while every one still has that
 * receive's lease with the same deadline (none was deleted, none had its
 * visibility changed, none was received again, its transaction did not roll
 * back), and then returns them again with the same handles, their
 * visibility timeout reset.
 */
static void
fifo_attempt_key(FifoAttemptKey *key, int32 queue_id, const char *attempt_id)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	key->incarnation = msgq_queue_table_relid();
	key->queue_id = queue_id;
	key->attempt_hash = fifo_group_hash(attempt_id);
}

/*
 * The messages of an earlier receive with this attempt id, if it may be
 * repeated: fills taken and returns how many (0: receive anew).
 */
int
msgq_fifo_attempt_find(int32 queue_id, const char *attempt_id, TimestampTz now,
					   MsgqFifoTaken *taken)
{
	FifoAttemptKey key;
	FifoAttemptEntry *e;
	int			n = 0;
	int			i;

	fifo_attempt_key(&key, queue_id, attempt_id);
	LWLockAcquire(fifo_lock, LW_SHARED);
	e = hash_search(fifo_attempts, &key, HASH_FIND, NULL);
	if (e != NULL && strcmp(e->attempt_id, attempt_id) == 0 &&
		e->received_at > now - FIFO_DEDUP_WINDOW)
	{
		n = e->n;
		memcpy(taken, e->taken, sizeof(MsgqFifoTaken) * n);
	}
	LWLockRelease(fifo_lock);

	for (i = 0; i < n; i++)
	{
		TimestampTz deadline;
		TimestampTz received_at;

		if (msgq_lease_check(queue_id, taken[i].msg_seq, taken[i].nonce, &deadline,
							 &received_at) != MSGQ_LEASE_MATCH ||
			deadline != taken[i].deadline || deadline <= now)
			return 0;
	}
	return n;
}

/* Remember a receive under its attempt id (replacing an earlier one). */
void
msgq_fifo_attempt_remember(int32 queue_id, const char *attempt_id, TimestampTz now,
						   const MsgqFifoTaken *taken, int n)
{
	FifoAttemptKey key;
	FifoAttemptEntry *e;
	bool		found;

	fifo_attempt_key(&key, queue_id, attempt_id);
	LWLockAcquire(fifo_lock, LW_EXCLUSIVE);
	e = hash_search(fifo_attempts, &key, HASH_ENTER_NULL, &found);
	if (e != NULL)
	{
		strlcpy(e->attempt_id, attempt_id, sizeof(e->attempt_id));
		e->received_at = now;
		e->n = Min(n, MSGQ_MAX_RECEIVE_MESSAGES);
		memcpy(e->taken, taken, sizeof(MsgqFifoTaken) * e->n);
	}
	LWLockRelease(fifo_lock);
}

/* Forget this database's attempts older than five minutes (maintenance). */
void
msgq_fifo_attempts_prune(void)
{
	HASH_SEQ_STATUS status;
	FifoAttemptEntry *e;
	TimestampTz cutoff = Min(msgq_now(), GetCurrentTimestamp()) - FIFO_DEDUP_WINDOW;

	LWLockAcquire(fifo_lock, LW_EXCLUSIVE);
	hash_seq_init(&status, fifo_attempts);
	while ((e = hash_seq_search(&status)) != NULL)
		if (e->key.dboid == MyDatabaseId && e->received_at <= cutoff)
			hash_search(fifo_attempts, &e->key, HASH_REMOVE, NULL);
	LWLockRelease(fifo_lock);
}

/*
 * The receive cursor of a FIFO queue: the group its last receive took
 * messages from ("" when none is known, or the table is full).  Receives
 * start after it, so they go round the groups; it is a hint only.
 */
static void
fifo_cursor_key(FifoCursorKey *key, int32 queue_id)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	key->incarnation = msgq_queue_table_relid();
	key->queue_id = queue_id;
}

void
msgq_fifo_cursor_get(int32 queue_id, char *group_id)
{
	FifoCursorKey key;
	FifoCursorEntry *e;

	fifo_cursor_key(&key, queue_id);
	group_id[0] = '\0';
	LWLockAcquire(fifo_lock, LW_SHARED);
	e = hash_search(fifo_cursors, &key, HASH_FIND, NULL);
	if (e != NULL)
		strlcpy(group_id, e->group_id, MSGQ_MAX_ID_LEN + 1);
	LWLockRelease(fifo_lock);
}

void
msgq_fifo_cursor_set(int32 queue_id, const char *group_id)
{
	FifoCursorKey key;
	FifoCursorEntry *e;
	bool		found;

	fifo_cursor_key(&key, queue_id);
	LWLockAcquire(fifo_lock, LW_EXCLUSIVE);
	e = hash_search(fifo_cursors, &key, HASH_ENTER_NULL, &found);
	if (e != NULL)
		strlcpy(e->group_id, group_id, sizeof(e->group_id));
	LWLockRelease(fifo_lock);
}

/* Forget a deleted queue's cursor. */
void
msgq_fifo_cursor_forget(int32 queue_id)
{
	FifoCursorKey key;

	fifo_cursor_key(&key, queue_id);
	LWLockAcquire(fifo_lock, LW_EXCLUSIVE);
	hash_search(fifo_cursors, &key, HASH_REMOVE, NULL);
	LWLockRelease(fifo_lock);
}
