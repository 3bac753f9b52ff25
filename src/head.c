/*-------------------------------------------------------------------------
 *
 * head.c
 *	  Where a standard queue's live messages begin: a lower bound on the
 *	  msg_seq of its first row that is not deleted for good, kept in shared
 *	  memory, so that a receive does not walk the index entries of
 *	  messages deleted since the last VACUUM.
 *
 * A queue is read in msg_seq order from its first row.  Deleted rows stay
 * in the primary key until VACUUM removes them (and never while a snapshot
 * that could see them is held), so without a bound every receive of a
 * busy queue steps over all the messages deleted since: at 17,000 deletes
 * a second, hundreds of index pages per receive after a few seconds.
 *
 * The bound, "head", promises that every row of the queue with a smaller
 * msg_seq is gone for good.  Rows can appear below the first row a
 * receive sees: a send whose transaction is still open took its msg_seq
 * earlier.  So the head moves in two steps:
 *
 *	1. arm: read the sequence's last value S, then the next transaction id
 *	   N.  Every transaction that holds a msg_seq assigned its transaction
 *	   id before taking it (msgq_store_insert, msgq_store_next_seq and the
 *	   dead-letter and move-task inserts call GetCurrentTransactionId()
 *	   first), so a msg_seq <= S belongs to a transaction id < N, and one
 *	   taken later is > S.
 *	2. advance: a receive whose snapshot's xmin is >= N (every transaction
 *	   below N has ended, and its commit is seen) and that read the queue
 *	   from the head and found its first row of any visibility at F (or
 *	   none: F = infinity) sets head = min(F, S + 1).  A row below that is
 *	   either invisible because it was deleted by a committed transaction
 *	   (for good) or belongs to a transaction the snapshot sees as running
 *	   or future, whose id is >= xmin >= N and whose msg_seq is so > S.
 *	   The receive then arms again.
 *
 * A receive whose own transaction has a transaction id does not advance:
 * a delete of its own that rolls back would bring a row back below the
 * head.  Other deletes that have not committed leave their rows visible.
 * Messages are moved between segments (segment.c) under their msg_seq, by
 * a delete and an insert in one transaction, so every snapshot sees one of
 * the two versions.
 *
 * The slots are a direct-mapped cache of HEAD_SLOTS entries tagged with the
 * database, the msgq.message_seq of the extension's install (a new install
 * starts its sequence again) and the queue id.  A queue whose slot another
 * queue took starts again at head 0, which is always right; so is a server
 * start, a crash and a promotion (shared memory starts empty).  Each slot
 * has a spinlock, held for a few instructions.
 *
 * IDENTIFICATION
 *	  src/head.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/transam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "msgq.h"

#define HEAD_SLOTS 4096

/* an armed pending advance not met after this long is armed again */
#define HEAD_REARM_US	(60 * USECS_PER_SEC)

typedef struct HeadSlot
{
	slock_t		mutex;
	Oid			dboid;			/* InvalidOid: unused */
	Oid			seqid;			/* msgq.message_seq of the install */
	int32		queue_id;
	int64		head;			/* rows below are gone for good */
	int64		armed_seq;		/* S: msg_seqs <= S have xids < armed_xid */
	TransactionId armed_xid;	/* N; InvalidTransactionId: not armed */
	TimestampTz armed_at;
} HeadSlot;

static HeadSlot *head_slots = NULL;

void
msgq_head_shmem_size(Size *size)
{
	*size = add_size(*size, mul_size(HEAD_SLOTS, sizeof(HeadSlot)));
}

void
msgq_head_shmem_init(void)
{
	bool		found;

	head_slots = ShmemInitStruct("msgq queue heads",
								 mul_size(HEAD_SLOTS, sizeof(HeadSlot)), &found);
	if (!found)
	{
		int			i;

		memset(head_slots, 0, mul_size(HEAD_SLOTS, sizeof(HeadSlot)));
		for (i = 0; i < HEAD_SLOTS; i++)
			SpinLockInit(&head_slots[i].mutex);
	}
}

static HeadSlot *
head_slot(int32 queue_id)
{
	uint32		h = hash_combine(murmurhash32((uint32) MyDatabaseId),
								 murmurhash32((uint32) queue_id));

	return &head_slots[h % HEAD_SLOTS];
}

static inline bool
head_slot_is(HeadSlot *slot, Oid seqid, int32 queue_id)
{
	return slot->dboid == MyDatabaseId && slot->seqid == seqid &&
		slot->queue_id == queue_id;
}

/*
 * The last value msgq.message_seq handed out (0: none), read from its
 * page as nextval leaves it (the sequence has no per-backend cache).
 */
static int64
head_seq_last(Oid seqid)
{
	Relation	rel = relation_open(seqid, AccessShareLock);
	Buffer		buf;
	Page		page;
	ItemId		lp;
	HeapTupleData tuple;
	Form_pg_sequence_data seq;
	int64		last;

	buf = ReadBuffer(rel, 0);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	lp = PageGetItemId(page, FirstOffsetNumber);
	Assert(ItemIdIsNormal(lp));
	tuple.t_data = (HeapTupleHeader) PageGetItem(page, lp);
	seq = (Form_pg_sequence_data) GETSTRUCT(&tuple);
	/* not called: the next nextval returns last_value itself */
	last = seq->is_called ? seq->last_value : seq->last_value - 1;
	UnlockReleaseBuffer(buf);
	relation_close(rel, AccessShareLock);
	return last;
}

/* The head of a queue alone: its rows below it are gone for good. */
int64
msgq_head_peek(int32 queue_id)
{
	HeadSlot   *slot = head_slot(queue_id);
	Oid			seqid = msgq_store_seq_relid();
	int64		head = 1;

	SpinLockAcquire(&slot->mutex);
	if (head_slot_is(slot, seqid, queue_id))
		head = Max(slot->head, 1);
	SpinLockRelease(&slot->mutex);
	return head;
}

/*
 * The head of a queue: receives read its rows from msg_seq >= the value
 * returned (1 when nothing is known).  *state receives what
 * msgq_head_advance needs.
 */
int64
msgq_head_get(int32 queue_id, MsgqHeadState *state)
{
	HeadSlot   *slot = head_slot(queue_id);
	Oid			seqid = msgq_store_seq_relid();

	state->head = 1;
	state->armed_seq = 0;
	state->armed_xid = InvalidTransactionId;
	SpinLockAcquire(&slot->mutex);
	if (head_slot_is(slot, seqid, queue_id))
	{
		state->head = Max(slot->head, 1);
		state->armed_seq = slot->armed_seq;
		state->armed_xid = slot->armed_xid;
	}
	SpinLockRelease(&slot->mutex);

	/* the snapshot the receive's scan sees at least as much as */
	state->xmin = InvalidTransactionId;
	if (IsolationUsesXactSnapshot())
		state->xmin = GetTransactionSnapshot()->xmin;
	else if (ActiveSnapshotSet())
		state->xmin = GetActiveSnapshot()->xmin;
	return state->head;
}

/*
 * After a receive read the queue from state->head: its first row of any
 * visibility was first_seq (PG_INT64_MAX: no row).  Moves the head when
 * the armed advance is met, and arms the next one.
 */
void
msgq_head_advance(int32 queue_id, const MsgqHeadState *state, int64 first_seq)
{
	HeadSlot   *slot = head_slot(queue_id);
	Oid			seqid = msgq_store_seq_relid();
	TimestampTz now = GetCurrentStatementStartTimestamp();
	bool		met;
	bool		arm = false;
	int64		seq;
	TransactionId xid;

	/* a delete of this transaction could still roll back */
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;

	met = TransactionIdIsNormal(state->armed_xid) &&
		TransactionIdIsNormal(state->xmin) &&
		TransactionIdPrecedesOrEquals(state->armed_xid, state->xmin);

	SpinLockAcquire(&slot->mutex);
	if (!head_slot_is(slot, seqid, queue_id))
	{
		/* a free slot, or another queue's: this queue starts again */
		slot->dboid = MyDatabaseId;
		slot->seqid = seqid;
		slot->queue_id = queue_id;
		slot->head = 0;
		slot->armed_xid = InvalidTransactionId;
		met = false;
	}
	else if (met)
	{
		/*
		 * Rows below state->head were gone when it was read, the ones from
		 * there to first_seq are gone or above the armed sequence value:
		 * any arming that was met gives a bound, whichever receive armed it.
		 */
		slot->head = Max(slot->head, Min(first_seq, state->armed_seq + 1));
		if (slot->armed_xid == state->armed_xid && slot->armed_seq == state->armed_seq)
			slot->armed_xid = InvalidTransactionId;
	}
	if (!TransactionIdIsValid(slot->armed_xid) ||
		now - slot->armed_at > HEAD_REARM_US || now < slot->armed_at)
	{
		/* claim the arming, so that concurrent receives do not all read */
		slot->armed_xid = FrozenTransactionId;
		slot->armed_at = now;
		arm = true;
	}
	SpinLockRelease(&slot->mutex);

	if (!arm)
		return;

	/* the sequence first, the transaction id second (see the header) */
	seq = head_seq_last(seqid);
	pg_memory_barrier();
	xid = XidFromFullTransactionId(ReadNextFullTransactionId());

	SpinLockAcquire(&slot->mutex);
	if (head_slot_is(slot, seqid, queue_id) && slot->armed_xid == FrozenTransactionId)
	{
		slot->armed_seq = seq;
		slot->armed_xid = xid;
	}
	SpinLockRelease(&slot->mutex);
}

/*
 * msgq.queue_head(queue_name): the queue's head and whether an advance is
 * armed, for tests and diagnostics.
 */
PG_FUNCTION_INFO_V1(msgq_queue_head);

Datum
msgq_queue_head(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	int32		queue_id;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	HeadSlot   *slot;
	Oid			seqid;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	msgq_call_enter(&call);
	queue_id = msgq_queue_get(name)->queue_id;
	seqid = msgq_store_seq_relid();
	msgq_call_leave(&call);
	slot = head_slot(queue_id);
	values[0] = Int64GetDatum(1);
	values[1] = BoolGetDatum(false);
	SpinLockAcquire(&slot->mutex);
	if (head_slot_is(slot, seqid, queue_id))
	{
		values[0] = Int64GetDatum(Max(slot->head, 1));
		values[1] = BoolGetDatum(TransactionIdIsValid(slot->armed_xid));
	}
	SpinLockRelease(&slot->mutex);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
