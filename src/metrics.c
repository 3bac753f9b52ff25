/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  Per-queue metrics in shared memory, behind msgq.queue_metrics.
 *
 * Each queue of each database has an entry in a shared hash, sized by
 * msgq.max_queue_metrics:
 *
 *	- cumulative counters since the server started: messages sent,
 *	  received and deleted, and receives that returned nothing;
 *	- the number of messages stored (committed, not yet deleted);
 *	- when hidden messages become visible again, as counts per second of
 *	  their visibility time: one ring of MQM_FINE one-second bins for the
 *	  next ~17 minutes (in-flight leases and delays, at most 900 s), one
 *	  ring of MQM_COARSE ten-minute bins for longer leases (up to 12 h).
 *	  A bin is labelled with its second (or ten-minute step), so a bin whose
 *	  time has passed is simply stale and is reset when reused.
 *
 * ApproximateNumberOfMessagesNotVisible and ...Delayed are the sums of the
 * bins still ahead of msgq's clock; ...Visible is what remains of the
 * stored count.  Nothing is scanned: reading the view costs a pass over
 * each queue's bins plus one index probe for the oldest message.
 *
 * Changes are collected per transaction in backend memory and applied at
 * XACT_EVENT_COMMIT, after the commit is visible; an abort (or the abort of
 * the subtransaction that made them) discards them.  So a rolled-back send
 * is never counted and a rolled-back receive leaves its message visible.
 * Senders never update a shared row: an entry is changed under its own
 * spinlock for a few instructions at commit.
 *
 * Shared memory does not survive a restart.  The first row of the hash
 * for a database (queue_id 0) says whether its gauges are known; until
 * the maintenance cycle has recomputed them (one pass over the messages
 * under a SHARE lock on msgq.message and each of its partitions (sends
 * write to a partition directly), which waits for every writing
 * transaction to finish, so every delta already applied is part of what
 * the pass sees, and holds new writers back until it is done), the view
 * shows NULL gauges.  The counters restart from zero, like PostgreSQL's
 * statistics after a crash.
 *
 * Locking: the second LWLock of the "msgq" tranche protects the hash
 * (shared to find an entry, exclusive to add or remove one); an entry's
 * spinlock protects its numbers.
 *
 * IDENTIFICATION
 *	  src/metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "msgq.h"

#define MQM_FINE		1024	/* one-second bins */
#define MQM_COARSE		80		/* ten-minute bins: > 12 h + 17 min */
#define MQM_COARSE_SECS 600

typedef struct MetricsKey
{
	Oid			dboid;
	int32		queue_id;		/* 0: the database's row */
} MetricsKey;

typedef struct FineBin
{
	int32		label;			/* the second this bin counts, +1 */
	int32		inflight;
	int32		delayed;
} FineBin;

typedef struct CoarseBin
{
	int32		label;
	int32		inflight;
} CoarseBin;

typedef struct MetricsEntry
{
	MetricsKey	key;
	slock_t		mutex;
	bool		valid;			/* database row: gauges are known */
	int64		sent;
	int64		received;
	int64		deleted;
	int64		empty_receives;
	int64		stored;
	int64		inflight_bound; /* >= in-flight count; exact after a sum */
	FineBin		fine[MQM_FINE];
	CoarseBin	coarse[MQM_COARSE];
} MetricsEntry;

typedef enum DeltaKind
{
	MD_SENT,					/* n messages sent (and stored) */
	MD_STORED,					/* n messages stored (moves) */
	MD_RECEIVED,				/* n messages received */
	MD_DELETED,					/* n messages deleted */
	MD_HIDE_INFLIGHT,			/* n messages hidden until t */
	MD_HIDE_DELAYED,			/* n messages delayed until t */
	MD_DROP_QUEUE
} DeltaKind;

typedef struct PendingDelta
{
	int32		queue_id;
	DeltaKind	kind;
	SubTransactionId subid;
	int64		n;
	TimestampTz t;
	int64		delay_us;		/* MD_HIDE_DELAYED of a send: its delay */
} PendingDelta;

int			msgq_max_queue_metrics = 1024;
int			msgq_max_inflight_messages = 120000;

static HTAB *metrics_hash = NULL;
static PendingDelta *pending = NULL;
static int	npending = 0;
static int	maxpending = 0;
static bool callbacks_registered = false;

static LWLock *
metrics_lock(void)
{
	return &(GetNamedLWLockTranche("msgq")[2].lock);
}

void
msgq_metrics_shmem_size(Size *size)
{
	/* one more entry per database row; count a few databases */
	*size = add_size(*size, hash_estimate_size(msgq_max_queue_metrics + 16,
											   sizeof(MetricsEntry)));
}

/* Called from the startup hook with AddinShmemInitLock held. */
void
msgq_metrics_shmem_init(void)
{
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(MetricsKey);
	info.entrysize = sizeof(MetricsEntry);
	metrics_hash = ShmemInitHash("msgq queue metrics",
								 msgq_max_queue_metrics + 16,
								 msgq_max_queue_metrics + 16,
								 &info, HASH_ELEM | HASH_BLOBS);
}

static void
entry_init(MetricsEntry *e)
{
	SpinLockInit(&e->mutex);
	e->valid = false;
	e->sent = e->received = e->deleted = e->empty_receives = e->stored = 0;
	e->inflight_bound = 0;
	memset(e->fine, 0, sizeof(e->fine));
	memset(e->coarse, 0, sizeof(e->coarse));
}

/*
 * Find (or with create, add) the entry of a queue of the current database.
 * NULL when the hash is full: the database is then marked unknown, so that
 * its gauges show NULL instead of wrong numbers, until a recompute.
 * Never raises an error: it runs in commit callbacks.
 */
static MetricsEntry *
entry_get(int32 queue_id, bool create)
{
	MetricsKey	key;
	MetricsEntry *e;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.queue_id = queue_id;
	LWLockAcquire(metrics_lock(), LW_SHARED);
	e = hash_search(metrics_hash, &key, HASH_FIND, NULL);
	LWLockRelease(metrics_lock());
	if (e != NULL || !create)
		return e;

	LWLockAcquire(metrics_lock(), LW_EXCLUSIVE);
	e = hash_search(metrics_hash, &key, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
		entry_init(e);
	if (e == NULL)
	{
		MetricsEntry *db;

		key.queue_id = 0;
		db = hash_search(metrics_hash, &key, HASH_FIND, NULL);
		if (db != NULL)
			db->valid = false;
	}
	LWLockRelease(metrics_lock());
	return e;
}

static inline int32
sec_label(TimestampTz t)
{
	/* hidden through the end of this second */
	return (int32) (t / USECS_PER_SEC) + 1;
}

/* Add n hidden messages until t (n < 0 removes them).  Entry locked. */
static void
entry_hide(MetricsEntry *e, TimestampTz t, TimestampTz now, int64 n, bool delayed)
{
	int32		label = sec_label(t);
	int32		clabel = (int32) (t / USECS_PER_SEC / MQM_COARSE_SECS) + 1;
	FineBin    *f = &e->fine[label % MQM_FINE];
	CoarseBin  *c = &e->coarse[clabel % MQM_COARSE];

	if (t <= now)
		return;
	if (!delayed && n > 0)
		e->inflight_bound += n;
	if (n < 0)
	{
		/* remove from wherever it was counted */
		if (f->label == label && (delayed ? f->delayed : f->inflight) > 0)
		{
			if (delayed)
				f->delayed = Max(0, f->delayed + n);
			else
				f->inflight = Max(0, f->inflight + n);
		}
		else if (!delayed && c->label == clabel)
			c->inflight = Max(0, c->inflight + n);
		return;
	}
	if (label - sec_label(now) < MQM_FINE - 1)
	{
		if (f->label != label)
		{
			f->label = label;
			f->inflight = f->delayed = 0;
		}
		if (delayed)
			f->delayed += n;
		else
			f->inflight += n;
	}
	else
	{
		if (c->label != clabel)
		{
			c->label = clabel;
			c->inflight = 0;
		}
		c->inflight += n;
	}
}

/* Sum the bins still ahead of now.  Entry locked. */
static void
entry_hidden(MetricsEntry *e, TimestampTz now, int64 *inflight, int64 *delayed)
{
	int32		nowl = sec_label(now);
	int32		cnow = (int32) (now / USECS_PER_SEC / MQM_COARSE_SECS) + 1;
	int			i;

	*inflight = *delayed = 0;
	for (i = 0; i < MQM_FINE; i++)
		if (e->fine[i].label > nowl)
		{
			*inflight += e->fine[i].inflight;
			*delayed += e->fine[i].delayed;
		}
	for (i = 0; i < MQM_COARSE; i++)
		if (e->coarse[i].label >= cnow)
			*inflight += e->coarse[i].inflight;
	e->inflight_bound = *inflight;
}

/* ------------------------------------------------------------------------
 * Per-transaction deltas
 * ------------------------------------------------------------------------
 */

static void metrics_xact_callback(XactEvent event, void *arg);
static void metrics_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									 SubTransactionId parentSubid, void *arg);

static void
delta_add(int32 queue_id, DeltaKind kind, int64 n, TimestampTz t, int64 delay_us)
{
	PendingDelta *d;

	if (!callbacks_registered)
	{
		RegisterXactCallback(metrics_xact_callback, NULL);
		RegisterSubXactCallback(metrics_subxact_callback, NULL);
		callbacks_registered = true;
	}
	/* merge with the previous delta when they only differ in n */
	if (npending > 0)
	{
		d = &pending[npending - 1];
		if (d->queue_id == queue_id && d->kind == kind && d->t == t &&
			d->delay_us == delay_us && d->subid == GetCurrentSubTransactionId())
		{
			d->n += n;
			return;
		}
	}
	if (npending == maxpending)
	{
		int			newmax = Max(64, maxpending * 2);

		if (pending == NULL)
			pending = MemoryContextAlloc(TopMemoryContext, newmax * sizeof(PendingDelta));
		else
			pending = repalloc(pending, newmax * sizeof(PendingDelta));
		maxpending = newmax;
	}
	d = &pending[npending++];
	d->queue_id = queue_id;
	d->kind = kind;
	d->subid = GetCurrentSubTransactionId();
	d->n = n;
	d->t = t;
	d->delay_us = delay_us;
}

/* n messages sent; visible_at after now means delayed */
void
msgq_metrics_sent(int32 queue_id, int64 n, TimestampTz now, TimestampTz visible_at)
{
	delta_add(queue_id, MD_SENT, n, 0, 0);
	if (visible_at > now)
		delta_add(queue_id, MD_HIDE_DELAYED, n, visible_at, visible_at - now);
}

/* n messages moved in (n > 0) or out (n < 0) without being sent or deleted */
void
msgq_metrics_stored(int32 queue_id, int64 n)
{
	if (n != 0)
		delta_add(queue_id, MD_STORED, n, 0, 0);
}

/* n messages received, hidden until visible_at */
void
msgq_metrics_received(int32 queue_id, int64 n, TimestampTz now, TimestampTz visible_at)
{
	delta_add(queue_id, MD_RECEIVED, n, 0, 0);
	if (visible_at > now)
		delta_add(queue_id, MD_HIDE_INFLIGHT, n, visible_at, 0);
}

/*
 * n messages deleted whose visibility time was visible_at: if that is
 * still ahead, they were in flight (received_before) or delayed.
 */
void
msgq_metrics_deleted(int32 queue_id, int64 n, TimestampTz now,
					 TimestampTz visible_at, bool received_before)
{
	delta_add(queue_id, MD_DELETED, n, 0, 0);
	if (visible_at > now)
		delta_add(queue_id, received_before ? MD_HIDE_INFLIGHT : MD_HIDE_DELAYED,
				  -n, visible_at, 0);
}

/* n hidden messages no longer hidden until t (removed or moved) */
void
msgq_metrics_unhide(int32 queue_id, int64 n, TimestampTz now, TimestampTz t,
					bool received_before)
{
	if (t > now)
		delta_add(queue_id, received_before ? MD_HIDE_INFLIGHT : MD_HIDE_DELAYED,
				  -n, t, 0);
}

/* A visibility change of an in-flight message from old_t to new_t. */
void
msgq_metrics_visibility(int32 queue_id, TimestampTz now, TimestampTz old_t,
						TimestampTz new_t)
{
	if (old_t > now)
		delta_add(queue_id, MD_HIDE_INFLIGHT, -1, old_t, 0);
	if (new_t > now)
		delta_add(queue_id, MD_HIDE_INFLIGHT, 1, new_t, 0);
}

void
msgq_metrics_drop_queue(int32 queue_id)
{
	delta_add(queue_id, MD_DROP_QUEUE, 0, 0, 0);
}

/*
 * The outbox case moved this transaction's sends to now: their delays
 * count from now too (queue.c, msgq_outbox_fixup).
 */
void
msgq_metrics_sends_moved(TimestampTz now)
{
	int			i;

	for (i = 0; i < npending; i++)
		if (pending[i].kind == MD_HIDE_DELAYED && pending[i].delay_us > 0)
			pending[i].t = now + pending[i].delay_us;
}

/*
 * Messages removed without DeleteMessage (purge, retention), from the
 * result of MSGQ_REMOVED_SQL: one row (count, NULL, NULL), then one row
 * (count, latest visible_at, was received) per second of hidden messages.
 */
void
msgq_metrics_removed(int32 queue_id, SPITupleTable *tt, uint64 n, TimestampTz now)
{
	uint64		i;

	for (i = 0; i < n; i++)
	{
		bool		isnull,
					tnull;
		int64		count = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		Datum		t = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &tnull);

		if (tnull)
			msgq_metrics_stored(queue_id, -count);
		else
			msgq_metrics_unhide(queue_id, count, now, DatumGetTimestampTz(t),
								DatumGetBool(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull)));
	}
}

/* A receive that returned nothing; counted at once, it changed nothing. */
void
msgq_metrics_empty_receive(int32 queue_id)
{
	MetricsEntry *e = entry_get(queue_id, true);

	if (e == NULL)
		return;
	SpinLockAcquire(&e->mutex);
	e->empty_receives++;
	SpinLockRelease(&e->mutex);
}

static void
pending_apply(void)
{
	TimestampTz now = msgq_now();
	int			i;

	for (i = 0; i < npending; i++)
	{
		PendingDelta *d = &pending[i];
		MetricsEntry *e;

		if (d->kind == MD_DROP_QUEUE)
		{
			MetricsKey	key;

			memset(&key, 0, sizeof(key));
			key.dboid = MyDatabaseId;
			key.queue_id = d->queue_id;
			LWLockAcquire(metrics_lock(), LW_EXCLUSIVE);
			(void) hash_search(metrics_hash, &key, HASH_REMOVE, NULL);
			LWLockRelease(metrics_lock());
			continue;
		}
		e = entry_get(d->queue_id, true);
		if (e == NULL)
			continue;
		SpinLockAcquire(&e->mutex);
		switch (d->kind)
		{
			case MD_SENT:
				e->sent += d->n;
				e->stored += d->n;
				break;
			case MD_STORED:
				e->stored += d->n;
				break;
			case MD_RECEIVED:
				e->received += d->n;
				break;
			case MD_DELETED:
				e->deleted += d->n;
				e->stored -= d->n;
				break;
			case MD_HIDE_INFLIGHT:
				entry_hide(e, d->t, now, d->n, false);
				break;
			case MD_HIDE_DELAYED:
				entry_hide(e, d->t, now, d->n, true);
				break;
			case MD_DROP_QUEUE:
				break;
		}
		SpinLockRelease(&e->mutex);
	}
}

static void
metrics_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (npending > 0 && metrics_hash != NULL)
				pending_apply();
			npending = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			npending = 0;
			break;
		default:
			break;
	}
}

static void
metrics_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			i,
				keep;

	switch (event)
	{
		case SUBXACT_EVENT_COMMIT_SUB:
			for (i = 0; i < npending; i++)
				if (pending[i].subid == mySubid)
					pending[i].subid = parentSubid;
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			keep = 0;
			for (i = 0; i < npending; i++)
				if (pending[i].subid != mySubid)
					pending[keep++] = pending[i];
			npending = keep;
			break;
		default:
			break;
	}
}

/* ------------------------------------------------------------------------
 * Recompute
 * ------------------------------------------------------------------------
 */

/* Forget every entry of the current database (CREATE EXTENSION). */
static void
metrics_forget_database(bool valid)
{
	HASH_SEQ_STATUS seq;
	MetricsEntry *e;
	MetricsKey	key;
	bool		found;

	LWLockAcquire(metrics_lock(), LW_EXCLUSIVE);
	hash_seq_init(&seq, metrics_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.dboid == MyDatabaseId)
			(void) hash_search(metrics_hash, &e->key, HASH_REMOVE, NULL);
	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	e = hash_search(metrics_hash, &key, HASH_ENTER_NULL, &found);
	if (e != NULL)
	{
		entry_init(e);
		e->valid = valid;
	}
	LWLockRelease(metrics_lock());
}

/*
 * msgq._metrics_reset(): a new installation of msgq in this database has
 * no messages; forget whatever an earlier one left behind.
 */
PG_FUNCTION_INFO_V1(msgq_metrics_reset);
Datum
msgq_metrics_reset(PG_FUNCTION_ARGS)
{
	msgq_check_preloaded();
	metrics_forget_database(true);
	msgq_stream_metrics_drop(-1);
	PG_RETURN_VOID();
}

/* Are the gauges of the current database known? */
static bool
metrics_valid(void)
{
	MetricsEntry *db = entry_get(0, false);
	bool		valid;

	if (db == NULL)
		return false;
	SpinLockAcquire(&db->mutex);
	valid = db->valid;
	SpinLockRelease(&db->mutex);
	return valid;
}

/*
 * Maintenance step: after a restart (or when the hash was full), count the
 * stored and hidden messages of every queue once, under a SHARE lock on
 * msgq.message and each partition: every writer has committed and applied its deltas before
 * the lock is granted, and none can commit until the cycle ends.  Waits
 * for the lock at most msgq.segment_lock_timeout; tried again next cycle.
 */
void
msgq_metrics_maintain(void)
{
	TimestampTz now;
	SPITupleTable *tt;
	uint64		n,
				i;
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	if (metrics_valid())
		return;
	/* sends insert into the partitions directly: lock each, not only the parent */
	if (!msgq_lock_relation_timed(msgq_message_relid(), ShareLock))
		return;
	for (i = 0; i < MSGQ_SEGMENTS; i++)
		if (!msgq_lock_relation_timed(msgq_segment_relid((int) i), ShareLock))
			return;

	now = msgq_now();
	values[0] = TimestampTzGetDatum(now);
	if (SPI_execute_with_args("SELECT queue_id, pg_catalog.count(*), NULL::timestamptz, NULL::bool"
							  "  FROM msgq.message GROUP BY queue_id"
							  " UNION ALL "
							  "SELECT queue_id, pg_catalog.count(*), pg_catalog.max(v),"
							  "       received"
							  "  FROM (SELECT queue_id, GREATEST(visible_at, l) AS v,"
							  "               receive_count OPERATOR(pg_catalog.>) 0 OR l IS NOT NULL AS received"
							  "          FROM msgq.message,"
							  "               LATERAL msgq.lease_until(queue_id, msg_seq, message_id) AS l) m"
							  " WHERE v OPERATOR(pg_catalog.>) $1"
							  " GROUP BY queue_id, pg_catalog.date_trunc('second', v), received",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count the messages of each queue");
	tt = SPI_tuptable;
	n = SPI_processed;

	/* keep the counters, replace the gauges */
	{
		HASH_SEQ_STATUS seq;
		MetricsEntry *e;

		LWLockAcquire(metrics_lock(), LW_SHARED);
		hash_seq_init(&seq, metrics_hash);
		while ((e = hash_seq_search(&seq)) != NULL)
		{
			if (e->key.dboid != MyDatabaseId)
				continue;
			SpinLockAcquire(&e->mutex);
			e->stored = 0;
			e->inflight_bound = 0;
			memset(e->fine, 0, sizeof(e->fine));
			memset(e->coarse, 0, sizeof(e->coarse));
			SpinLockRelease(&e->mutex);
		}
		LWLockRelease(metrics_lock());
	}
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		bool		isnull,
					tnull;
		int32		queue_id = DatumGetInt32(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
		int64		count = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
		Datum		t = SPI_getbinval(tup, tt->tupdesc, 3, &tnull);
		bool		inflight = DatumGetBool(SPI_getbinval(tup, tt->tupdesc, 4, &isnull));
		MetricsEntry *e = entry_get(queue_id, true);

		if (e == NULL)
			return;				/* full: stays unknown */
		SpinLockAcquire(&e->mutex);
		if (tnull)
			e->stored = count;
		else
			entry_hide(e, DatumGetTimestampTz(t), now, count, !inflight);
		SpinLockRelease(&e->mutex);
	}

	{
		MetricsEntry *db = entry_get(0, true);

		if (db != NULL)
		{
			SpinLockAcquire(&db->mutex);
			db->valid = true;
			SpinLockRelease(&db->mutex);
		}
	}
}

/*
 * msgq._queue_metrics() returns setof (queue_id, visible, not_visible,
 * delayed, sent, received, deleted, empty_receives) for the queues of the
 * current database that have an entry; the gauges are NULL while unknown.
 */
PG_FUNCTION_INFO_V1(msgq_queue_metrics_data);
Datum
msgq_queue_metrics_data(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	MetricsEntry *e;
	TimestampTz now;
	bool		valid;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	valid = metrics_valid();
	now = msgq_now();

	LWLockAcquire(metrics_lock(), LW_SHARED);
	hash_seq_init(&seq, metrics_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, false, false, false, false};
		int64		inflight,
					delayed,
					stored;

		if (e->key.dboid != MyDatabaseId || e->key.queue_id == 0)
			continue;
		SpinLockAcquire(&e->mutex);
		entry_hidden(e, now, &inflight, &delayed);
		stored = e->stored;
		values[4] = Int64GetDatum(e->sent);
		values[5] = Int64GetDatum(e->received);
		values[6] = Int64GetDatum(e->deleted);
		values[7] = Int64GetDatum(e->empty_receives);
		SpinLockRelease(&e->mutex);

		values[0] = Int32GetDatum(e->key.queue_id);
		values[1] = Int64GetDatum(Max(0, stored - inflight - delayed));
		values[2] = Int64GetDatum(Min(inflight, Max(0, stored)));
		values[3] = Int64GetDatum(Min(delayed, Max(0, stored - Min(inflight, stored))));
		nulls[1] = nulls[2] = nulls[3] = !valid;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(metrics_lock());
	return (Datum) 0;
}

/*
 * OverLimit: how many more messages of the queue may go in flight under
 * msgq.max_inflight_messages.  Unknown counts (after a restart, before the
 * recompute) never refuse.  The bins are summed only when the running
 * upper bound comes within MSGQ_MAX_RECEIVE_MESSAGES of the limit.
 */
int64
msgq_metrics_inflight_room(int32 queue_id)
{
	MetricsEntry *e;
	int64		inflight,
				delayed;
	int64		room = PG_INT64_MAX;

	e = entry_get(queue_id, false);
	if (e == NULL || !metrics_valid())
		return room;
	SpinLockAcquire(&e->mutex);
	if (e->inflight_bound + MSGQ_MAX_RECEIVE_MESSAGES >= msgq_max_inflight_messages)
	{
		entry_hidden(e, msgq_now(), &inflight, &delayed);
		room = msgq_max_inflight_messages - inflight;
	}
	SpinLockRelease(&e->mutex);
	return room;
}

/* msgq._metrics_known(): are the gauges of this database known? */
PG_FUNCTION_INFO_V1(msgq_metrics_known);
Datum
msgq_metrics_known(PG_FUNCTION_ARGS)
{
	msgq_check_preloaded();
	PG_RETURN_BOOL(metrics_valid());
}
