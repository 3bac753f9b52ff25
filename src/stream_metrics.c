/*-------------------------------------------------------------------------
 *
 * stream_metrics.c
 *	  Per-shard counters of streams, and the opt-in per-shard limits.
 *
 * One shared hash entry per (database, stream, shard), created by the
 * first call that touches the shard, holds:
 *
 *	- counters since the server started: records and bytes put, puts
 *	  refused by a limit, get_records calls, records and bytes returned,
 *	  reads refused by a limit (msgq.stream_metrics);
 *	- the current one-second window of msgq's clock: records and bytes put,
 *	  get_records calls and bytes returned in it.
 *
 * When a stream enforces shard limits (msgq.enforce_shard_limits), a put
 * that would take a shard past 1,000 records or 1 MiB of data and keys in
 * the current second is refused (ProvisionedThroughputExceededException:
 * put_record raises it, put_records reports it per entry), and so is a
 * get_records call past 5 calls or 2 MiB returned in the second (a read
 * beyond that borrows from the following seconds, whose reads are then
 * refused), and a get_shard_iterator call past 5 in the second.  Kinesis
 * counts requests when they are made, and so does msgq: a put counts even
 * if its transaction later rolls back.
 *
 * Entries are found under the fourth LWLock of the "msgq" tranche (shared
 * to look up, exclusive to add); each entry's counters are protected by
 * its spinlock.  msgq.max_stream_shard_metrics bounds the entries: a shard
 * beyond it is neither counted nor limited (a warning says so once per
 * backend).
 *
 * IDENTIFICATION
 *	  src/stream_metrics.c
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
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "msgq.h"

int			msgq_max_stream_shard_metrics = 4096;

typedef struct ShardStatsKey
{
	Oid			dboid;
	int32		stream_id;
	int32		shard;
} ShardStatsKey;

typedef struct ShardStats
{
	ShardStatsKey key;
	slock_t		mutex;
	/* since the server started */
	int64		incoming_records;
	int64		incoming_bytes;
	int64		write_throttled;
	int64		get_records_calls;
	int64		outgoing_records;
	int64		outgoing_bytes;
	int64		read_throttled;
	/* the current second of msgq's clock */
	int64		window;
	int64		win_records;
	int64		win_bytes;
	int64		win_reads;
	int64		win_bytes_out;
	int64		win_iterators;
	/* reads are refused up to this second: bytes read beyond 2 MiB/s */
	int64		read_blocked_until;
} ShardStats;

static HTAB *shard_stats = NULL;
static bool full_warned = false;

static LWLock *
stats_lock(void)
{
	return &(GetNamedLWLockTranche("msgq")[3].lock);
}

void
msgq_stream_metrics_shmem_size(Size *size)
{
	*size = add_size(*size, hash_estimate_size(msgq_max_stream_shard_metrics,
											   sizeof(ShardStats)));
}

void
msgq_stream_metrics_shmem_init(void)
{
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ShardStatsKey);
	info.entrysize = sizeof(ShardStats);
	shard_stats = ShmemInitHash("msgq stream shard metrics",
								msgq_max_stream_shard_metrics,
								msgq_max_stream_shard_metrics,
								&info, HASH_ELEM | HASH_BLOBS);
}

/* The shard's entry, added if need be; NULL when the table is full. */
static ShardStats *
stats_entry(int32 stream_id, int32 shard)
{
	ShardStatsKey key;
	ShardStats *e;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.stream_id = stream_id;
	key.shard = shard;

	LWLockAcquire(stats_lock(), LW_SHARED);
	e = hash_search(shard_stats, &key, HASH_FIND, NULL);
	LWLockRelease(stats_lock());
	if (e != NULL)
		return e;

	LWLockAcquire(stats_lock(), LW_EXCLUSIVE);
	e = hash_search(shard_stats, &key, HASH_FIND, &found);
	if (e == NULL && hash_get_num_entries(shard_stats) < msgq_max_stream_shard_metrics)
		e = hash_search(shard_stats, &key, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
	{
		memset((char *) e + sizeof(ShardStatsKey), 0, sizeof(ShardStats) - sizeof(ShardStatsKey));
		SpinLockInit(&e->mutex);
	}
	LWLockRelease(stats_lock());
	if (e == NULL && !full_warned)
	{
		full_warned = true;
		ereport(WARNING,
				(errmsg("msgq.max_stream_shard_metrics (%d) is reached: some shards are neither counted nor limited",
						msgq_max_stream_shard_metrics),
				 errhint("Raise msgq.max_stream_shard_metrics and restart the server.")));
	}
	return e;
}

/* move the entry's window to the current second (mutex held) */
static void
stats_window(ShardStats *e, int64 sec)
{
	if (e->window != sec)
	{
		e->window = sec;
		e->win_records = 0;
		e->win_bytes = 0;
		e->win_reads = 0;
		e->win_bytes_out = 0;
		e->win_iterators = 0;
	}
}

/*
 * The window's second: msgq's clock at the start of the client's
 * statement, so that every put and read of one statement (a put_records
 * call, or a loop in a DO block) falls in the same window.
 */
static int64
now_second(void)
{
	return (GetCurrentStatementStartTimestamp() +
			(TimestampTz) msgq_clock_offset_ms * 1000) / USECS_PER_SEC;
}

/*
 * A put of `records` records and `bytes` bytes to a shard: counted, or,
 * if the stream enforces limits and it would take the shard past them in
 * this second, refused (false) and counted as throttled.
 */
bool
msgq_stream_metrics_put(int32 stream_id, int32 shard, int64 records, int64 bytes,
						bool enforce)
{
	ShardStats *e = stats_entry(stream_id, shard);
	int64		sec = now_second();
	bool		ok = true;

	if (e == NULL)
		return true;
	SpinLockAcquire(&e->mutex);
	stats_window(e, sec);
	if (enforce &&
		(e->win_records + records > MSGQ_SHARD_WRITE_RECORDS ||
		 e->win_bytes + bytes > MSGQ_SHARD_WRITE_BYTES))
	{
		e->write_throttled++;
		ok = false;
	}
	else
	{
		e->win_records += records;
		e->win_bytes += bytes;
		e->incoming_records += records;
		e->incoming_bytes += bytes;
	}
	SpinLockRelease(&e->mutex);
	return ok;
}

/*
 * A get_records call on a shard, before it reads: false (counted as
 * throttled) if the stream enforces limits and the shard has had 5 calls
 * or returned 2 MiB in this second.
 */
bool
msgq_stream_metrics_read_begin(int32 stream_id, int32 shard, bool enforce)
{
	ShardStats *e = stats_entry(stream_id, shard);
	int64		sec = now_second();
	bool		ok = true;

	if (e == NULL)
		return true;
	SpinLockAcquire(&e->mutex);
	stats_window(e, sec);
	if (enforce &&
		(e->win_reads >= MSGQ_SHARD_READ_CALLS ||
		 e->win_bytes_out >= MSGQ_SHARD_READ_BYTES ||
		 sec <= e->read_blocked_until))
	{
		e->read_throttled++;
		ok = false;
	}
	else
	{
		e->win_reads++;
		e->get_records_calls++;
	}
	SpinLockRelease(&e->mutex);
	return ok;
}

/* The second of msgq's clock that a call's limits count in */
int64
msgq_stream_window_second(void)
{
	return now_second();
}

/*
 * What a read returned.  A get_records read (shared_budget) uses the
 * shard's 2 MiB per second; a subscribe_to_shard read has a budget of its
 * own per consumer (stream.c) and is only counted.
 */
void
msgq_stream_metrics_read_end(int32 stream_id, int32 shard, int64 records, int64 bytes,
							 bool shared_budget)
{
	ShardStats *e = stats_entry(stream_id, shard);
	int64		sec = now_second();

	if (e == NULL)
		return;
	SpinLockAcquire(&e->mutex);
	stats_window(e, sec);
	e->outgoing_records += records;
	e->outgoing_bytes += bytes;
	if (shared_budget)
	{
		e->win_bytes_out += bytes;

		/*
		 * A read beyond 2 MiB in its second borrows from the next seconds:
		 * the shard's reads are refused until they are paid for (10 MiB at
		 * once: this second and the next 4, as Kinesis throttles for 5 s).
		 */
		if (e->win_bytes_out > MSGQ_SHARD_READ_BYTES)
			e->read_blocked_until = Max(e->read_blocked_until,
										sec + (e->win_bytes_out + MSGQ_SHARD_READ_BYTES - 1) /
										MSGQ_SHARD_READ_BYTES - 1);
	}
	SpinLockRelease(&e->mutex);
}

/*
 * A get_shard_iterator call on a shard: false (counted as a refused read)
 * if the stream enforces limits and the shard has had 5 in this second.
 */
bool
msgq_stream_metrics_iterator(int32 stream_id, int32 shard, bool enforce)
{
	ShardStats *e;
	int64		sec = now_second();
	bool		ok = true;

	if (!enforce)
		return true;
	e = stats_entry(stream_id, shard);
	if (e == NULL)
		return true;
	SpinLockAcquire(&e->mutex);
	stats_window(e, sec);
	if (e->win_iterators >= MSGQ_SHARD_ITERATOR_CALLS)
	{
		e->read_throttled++;
		ok = false;
	}
	else
		e->win_iterators++;
	SpinLockRelease(&e->mutex);
	return ok;
}

/*
 * delete_stream: its shards' entries go; stream_id -1 (CREATE EXTENSION,
 * msgq._metrics_reset()): every stream's of this database, so that a new
 * installation's stream does not inherit an earlier one's counters.
 */
void
msgq_stream_metrics_drop(int32 stream_id)
{
	HASH_SEQ_STATUS scan;
	ShardStats *e;

	LWLockAcquire(stats_lock(), LW_EXCLUSIVE);
	hash_seq_init(&scan, shard_stats);
	while ((e = hash_seq_search(&scan)) != NULL)
		if (e->key.dboid == MyDatabaseId &&
			(stream_id == -1 || e->key.stream_id == stream_id))
			(void) hash_search(shard_stats, &e->key, HASH_REMOVE, NULL);
	LWLockRelease(stats_lock());
}

/*
 * msgq._stream_shard_metrics(): this database's counters, one row per
 * shard that has been used since the server started.
 */
PG_FUNCTION_INFO_V1(msgq_stream_shard_metrics);
Datum
msgq_stream_shard_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS scan;
	ShardStats *e;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(stats_lock(), LW_SHARED);
	hash_seq_init(&scan, shard_stats);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		Datum		v[9];
		bool		nl[9] = {0};

		if (e->key.dboid != MyDatabaseId)
			continue;
		v[0] = Int32GetDatum(e->key.stream_id);
		v[1] = Int32GetDatum(e->key.shard);
		SpinLockAcquire(&e->mutex);
		v[2] = Int64GetDatum(e->incoming_records);
		v[3] = Int64GetDatum(e->incoming_bytes);
		v[4] = Int64GetDatum(e->write_throttled);
		v[5] = Int64GetDatum(e->get_records_calls);
		v[6] = Int64GetDatum(e->outgoing_records);
		v[7] = Int64GetDatum(e->outgoing_bytes);
		v[8] = Int64GetDatum(e->read_throttled);
		SpinLockRelease(&e->mutex);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
	LWLockRelease(stats_lock());
	return (Datum) 0;
}
