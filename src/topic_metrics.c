/*-------------------------------------------------------------------------
 *
 * topic_metrics.c
 *	  Per-topic and per-subscription counters in shared memory, behind the
 *	  views msgq.topic_metrics and msgq.subscription_metrics.
 *
 * One shared hash, msgq.max_topic_metrics entries, keyed by database, topic
 * id and subscription id (the nil uuid for a topic's own entry).  A topic's
 * entry counts its publishes and the subscriptions they did not match
 * ("filtered out": per publish, subscriptions minus matches, one addition
 * however many subscriptions the topic has); a subscription's entry counts
 * matches, deliveries, retried attempts, deliveries given up and dropped,
 * and deliveries given up into the dead-letter queue.
 *
 * Counts are collected per transaction in backend memory and applied at
 * XACT_EVENT_COMMIT, after the commit is visible; an abort discards them,
 * and the abort of a subtransaction discards those made inside it.  So a
 * rolled-back publish is never counted, and a function delivery is counted
 * in the transaction that ended it.  When the hash is full, entries that
 * do not exist yet are not created and their counts are lost (the view
 * says nothing about them); nothing ever fails for it.  Dropping a topic or
 * a subscription removes its entry at once (a later count of the same
 * transaction may create it again; ids are never reused, so such an entry
 * only holds a few numbers until the server restarts).
 *
 * Shared memory does not survive a restart: the counters start from zero,
 * like PostgreSQL's statistics after a crash.
 *
 * Locking: the LWLock of the "msgq_topic" tranche protects the hash (shared
 * to find an entry, exclusive to add or remove one); an entry's spinlock
 * protects its numbers.
 *
 * IDENTIFICATION
 *	  src/topic_metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "msgq.h"

PG_FUNCTION_INFO_V1(msgq_topic_metrics_raw);

/* the counters of an entry: the subscription kinds, then a topic's two */
#define TM_PUBLISHED	MSGQ_TOPIC_COUNT_KINDS
#define TM_FILTERED		(MSGQ_TOPIC_COUNT_KINDS + 1)
#define TM_NCOUNTS		(MSGQ_TOPIC_COUNT_KINDS + 2)

typedef struct TopicMetricsKey
{
	Oid			dboid;
	int32		topic_id;		/* 0 for a subscription's entry */
	pg_uuid_t	sub_id;			/* all zero for a topic's entry */
} TopicMetricsKey;

typedef struct TopicMetricsEntry
{
	TopicMetricsKey key;
	slock_t		mutex;
	int64		counts[TM_NCOUNTS];
} TopicMetricsEntry;

/* one pending change of the current transaction */
typedef struct PendingCount
{
	TopicMetricsKey key;
	int			nest_level;
	int			what;
	int64		n;
} PendingCount;

int			msgq_max_topic_metrics = 4096;

static HTAB *tm_hash = NULL;
static PendingCount *pending = NULL;
static int	npending = 0;
static int	maxpending = 0;
static bool tm_callbacks_registered = false;

static LWLock *
tm_lock(void)
{
	return &(GetNamedLWLockTranche("msgq_topic")[0].lock);
}

void
msgq_topic_metrics_shmem_size(Size *size)
{
	*size = add_size(*size, hash_estimate_size(msgq_max_topic_metrics,
											   sizeof(TopicMetricsEntry)));
}

void
msgq_topic_metrics_shmem_init(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(TopicMetricsKey);
	ctl.entrysize = sizeof(TopicMetricsEntry);
	tm_hash = ShmemInitHash("msgq topic metrics", msgq_max_topic_metrics,
							msgq_max_topic_metrics, &ctl, HASH_ELEM | HASH_BLOBS);
}

/* Apply one change; nothing when the hash is full (the entry is not counted) */
static void
tm_apply(const TopicMetricsKey *key, int what, int64 n)
{
	TopicMetricsEntry *e;
	bool		found;

	LWLockAcquire(tm_lock(), LW_SHARED);
	e = hash_search(tm_hash, key, HASH_FIND, &found);
	if (e == NULL)
	{
		LWLockRelease(tm_lock());
		LWLockAcquire(tm_lock(), LW_EXCLUSIVE);
		e = hash_search(tm_hash, key, HASH_ENTER_NULL, &found);
		if (e == NULL)
		{
			LWLockRelease(tm_lock());
			return;
		}
		if (!found)
		{
			SpinLockInit(&e->mutex);
			memset(e->counts, 0, sizeof(e->counts));
		}
	}
	SpinLockAcquire(&e->mutex);
	e->counts[what] += n;
	SpinLockRelease(&e->mutex);
	LWLockRelease(tm_lock());
}

static void
tm_xact_callback(XactEvent event, void *arg)
{
	int			i;

	if (npending == 0)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (tm_hash != NULL)
			for (i = 0; i < npending; i++)
				tm_apply(&pending[i].key, pending[i].what, pending[i].n);
		npending = 0;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
		npending = 0;
}

static void
tm_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;
	int			kept = 0;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* drop what the aborted subtransaction counted */
		for (i = 0; i < npending; i++)
			if (pending[i].nest_level < level)
				pending[kept++] = pending[i];
		npending = kept;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* its counts now belong to the parent */
		for (i = 0; i < npending; i++)
			if (pending[i].nest_level >= level)
				pending[i].nest_level = level - 1;
	}
}

static void
tm_add(const TopicMetricsKey *key, int what, int64 n)
{
	if (n == 0 || tm_hash == NULL)
		return;
	if (!tm_callbacks_registered)
	{
		RegisterXactCallback(tm_xact_callback, NULL);
		RegisterSubXactCallback(tm_subxact_callback, NULL);
		tm_callbacks_registered = true;
	}
	/* merge with the last change of the same entry and level */
	if (npending > 0 && pending[npending - 1].what == what &&
		pending[npending - 1].nest_level == GetCurrentTransactionNestLevel() &&
		memcmp(&pending[npending - 1].key, key, sizeof(*key)) == 0)
	{
		pending[npending - 1].n += n;
		return;
	}
	if (npending == maxpending)
	{
		maxpending = Max(64, maxpending * 2);
		pending = pending == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(PendingCount) * maxpending) :
			repalloc(pending, sizeof(PendingCount) * maxpending);
	}
	pending[npending].key = *key;
	pending[npending].nest_level = GetCurrentTransactionNestLevel();
	pending[npending].what = what;
	pending[npending].n = n;
	npending++;
}

static void
key_topic(TopicMetricsKey *key, int32 topic_id)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	key->topic_id = topic_id;
}

static void
key_sub(TopicMetricsKey *key, const pg_uuid_t *sub_id)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	key->sub_id = *sub_id;
}

void
msgq_topic_count_published(int32 topic_id, int nsubs, int nmatched)
{
	TopicMetricsKey key;

	key_topic(&key, topic_id);
	tm_add(&key, TM_PUBLISHED, 1);
	tm_add(&key, TM_FILTERED, nsubs - nmatched);
}

void
msgq_topic_count(const pg_uuid_t *sub_id, MsgqTopicCount what)
{
	TopicMetricsKey key;

	key_sub(&key, sub_id);
	tm_add(&key, what, 1);
}

static void
tm_remove(const TopicMetricsKey *key)
{
	if (tm_hash == NULL)
		return;
	LWLockAcquire(tm_lock(), LW_EXCLUSIVE);
	(void) hash_search(tm_hash, key, HASH_REMOVE, NULL);
	LWLockRelease(tm_lock());
}

void
msgq_topic_metrics_drop_topic(int32 topic_id)
{
	TopicMetricsKey key;

	key_topic(&key, topic_id);
	tm_remove(&key);
}

void
msgq_topic_metrics_drop_subscription(const pg_uuid_t *sub_id)
{
	TopicMetricsKey key;

	key_sub(&key, sub_id);
	tm_remove(&key);
}

/*
 * msgq.topic_metrics_raw(): the entries of the current database, as
 * (topic_id, subscription_id, counters...); topic_id NULL for a
 * subscription's entry, subscription_id NULL for a topic's.
 */
Datum
msgq_topic_metrics_raw(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	TopicMetricsEntry *e;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(tm_lock(), LW_SHARED);
	hash_seq_init(&seq, tm_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[2 + TM_NCOUNTS];
		bool		nulls[2 + TM_NCOUNTS];
		int64		counts[TM_NCOUNTS];
		int			i;

		if (e->key.dboid != MyDatabaseId)
			continue;
		SpinLockAcquire(&e->mutex);
		memcpy(counts, e->counts, sizeof(counts));
		SpinLockRelease(&e->mutex);
		memset(nulls, 0, sizeof(nulls));
		if (e->key.topic_id != 0)
		{
			values[0] = Int32GetDatum(e->key.topic_id);
			nulls[1] = true;
			values[1] = (Datum) 0;
		}
		else
		{
			nulls[0] = true;
			values[0] = (Datum) 0;
			values[1] = UUIDPGetDatum(&e->key.sub_id);
		}
		for (i = 0; i < TM_NCOUNTS; i++)
			values[2 + i] = Int64GetDatum(counts[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(tm_lock());
	return (Datum) 0;
}
