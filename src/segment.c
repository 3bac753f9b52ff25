/*-------------------------------------------------------------------------
 *
 * segment.c
 *	  The rotating storage segments of msgq.message.
 *
 * msgq.message is list-partitioned on "seg" into MSGQ_SEGMENTS partitions
 * (msgq.message_0 .. _3) used as a ring; msgq.segment records each one's
 * state:
 *
 *	active	sends write here (the column default msgq.active_segment());
 *	sealed	no longer written; its messages are received and deleted as
 *			usual, from wherever they are;
 *	free	empty (truncated), ready to become the active one.
 *
 * Each maintenance cycle (msgq_segments_maintain):
 *
 *	1. rotates: when the active segment is older than
 *	   msgq.segment_rotation_interval and not empty, and a free segment
 *	   exists, the active one becomes sealed and the free one active;
 *	2. drains every sealed segment that has been sealed for at least
 *	   SEG_DRAIN_AFTER and is worth draining: at most SEG_MOVE_ALWAYS live
 *	   messages, or at most SEG_MOVE_LIMIT and no more than one per page (a
 *	   segment that is mostly dead), unless receives are emptying it (it
 *	   had more messages at this process's last look; for at most
 *	   SEG_PATIENCE_INTERVALS rotation intervals, and only while a free
 *	   segment is left).  Under
 *	   an ACCESS EXCLUSIVE lock on that partition (waited for at most
 *	   msgq.segment_lock_timeout, else tried again next cycle) it moves the live
 *	   messages to the active segment, keeping every column (so msg_seq,
 *	   receipt handles and receive counts are unchanged), TRUNCATEs the
 *	   partition and marks it free.  A sealed segment holds the oldest
 *	   messages, which receives take first, so a backlog drains from it
 *	   before the drain has to move it.
 *
 * TRUNCATE is what makes the storage survive churn: the dead tuples that
 * receives and deletes leave behind are given back with the whole file, at
 * once, whatever snapshot another session holds (vacuum cannot remove a
 * tuple an open snapshot may still see; TRUNCATE does not ask).  It also
 * bounds how many dead index entries a receive walks past at the head of a
 * queue to what one rotation interval leaves.
 *
 * Backends cache the active segment; a rotation invalidates msgq.queue's
 * relcache entry, which resets every backend's queue cache and this value.
 * A backend that inserts with a stale value writes into a sealed segment,
 * which is harmless: its transaction holds a lock on that partition, so the
 * drain waits for it and then moves the message like any other.
 *
 * IDENTIFICATION
 *	  src/segment.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "msgq.h"

#define SEG_MOVE_ALWAYS			1000
#define SEG_MOVE_LIMIT			10000
#define SEG_DRAIN_AFTER			(USECS_PER_SEC)
/* a fresh active segment is announced once it has this many pages */
#define SEG_ANNOUNCE_PAGES		16
/* a draining backlog postpones the move for at most this many intervals */
#define SEG_PATIENCE_INTERVALS	3

typedef enum SegState
{
	SEG_ACTIVE,
	SEG_SEALED,
	SEG_FREE
} SegState;

typedef struct SegInfo
{
	SegState	state;
	TimestampTz since;
} SegInfo;

int			msgq_segment_rotation_interval_ms = 10000;
int			msgq_segment_lock_timeout_ms = 50;

static int	active_seg = -1;

/*
 * Process-local: the live messages each sealed segment had at this
 * process's last look (since identifies the sealing), so that a segment
 * whose messages are being received and deleted is left to empty itself.
 */
static struct
{
	TimestampTz since;
	int64		live;
}			seg_last_look[MSGQ_SEGMENTS];

/* worker-local: the active segment whose growth was last announced */
static int	announced_seg = -1;
static TimestampTz announced_since = 0;

void
msgq_segment_cache_reset(void)
{
	active_seg = -1;
}

/*
 * The active segment, as this backend last read it.  Sends insert into its
 * partition directly (no tuple routing); a stale value is harmless.
 */
int
msgq_segment_active(void)
{
	if (active_seg < 0)
		(void) DirectFunctionCall1(msgq_active_segment, (Datum) 0);
	return active_seg;
}

/*
 * msgq.active_segment(): the default of msgq.message.seg.
 */
PG_FUNCTION_INFO_V1(msgq_active_segment);
Datum
msgq_active_segment(PG_FUNCTION_ARGS)
{
	if (active_seg < 0)
	{
		bool		isnull;
		int			seg;

		/* make sure a rotation resets the cached value */
		msgq_queue_cache_prime();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT seg FROM msgq.segment WHERE state OPERATOR(pg_catalog.=) 'active'",
						true, 0) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "msgq has no active storage segment");
		seg = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		active_seg = seg;
	}
	PG_RETURN_INT16((int16) active_seg);
}

/* the partition of a segment */
Oid
msgq_segment_relid(int seg)
{
	char		name[NAMEDATALEN];

	snprintf(name, sizeof(name), "message_%d", seg);
	return get_relname_relid(name, get_namespace_oid(MSGQ_SCHEMA_NAME, false));
}

static BlockNumber
seg_blocks(int seg)
{
	Relation	rel = relation_open(msgq_segment_relid(seg), AccessShareLock);
	BlockNumber n = RelationGetNumberOfBlocks(rel);

	relation_close(rel, AccessShareLock);
	return n;
}

/*
 * Take a lock, waiting at most msgq.segment_lock_timeout (0: not at all);
 * false if it was not granted.  The wait runs in a subtransaction so that
 * a lock timeout is caught instead of failing the maintenance cycle.
 * While it waits, new lockers queue behind it, so the timeout is kept
 * short.  Invalidations are processed once the lock is held, as
 * LockRelationOid() and LockDatabaseObject() do.
 */
bool
msgq_lock_tag_timed(const LOCKTAG *tag, LOCKMODE mode)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;
	char		timeout[32];

	if (LockAcquire(tag, mode, false, true) != LOCKACQUIRE_NOT_AVAIL)
	{
		AcceptInvalidationMessages();
		return true;
	}
	if (msgq_segment_lock_timeout_ms <= 0)
		return false;
	snprintf(timeout, sizeof(timeout), "%d", msgq_segment_lock_timeout_ms);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		int			nest = NewGUCNestLevel();

		(void) set_config_option("lock_timeout", timeout,
								 PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) LockAcquire(tag, mode, false, false);
		AtEOXact_GUC(true, nest);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ok = false;
	}
	PG_END_TRY();
	if (ok)
		AcceptInvalidationMessages();
	return ok;
}

/* msgq_lock_tag_timed() for a relation of this database */
bool
msgq_lock_relation_timed(Oid relid, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	return msgq_lock_tag_timed(&tag, mode);
}

/* msgq.message, the partitioned parent */
Oid
msgq_message_relid(void)
{
	Oid			relid = get_relname_relid("message",
										  get_namespace_oid(MSGQ_SCHEMA_NAME, false));

	if (!OidIsValid(relid))
		elog(ERROR, "msgq.message does not exist");
	return relid;
}

static void
seg_set_state(int seg, const char *state, TimestampTz now)
{
	Oid			argtypes[3] = {INT2OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];

	values[0] = Int16GetDatum((int16) seg);
	values[1] = CStringGetTextDatum(state);
	values[2] = TimestampTzGetDatum(now);
	if (SPI_execute_with_args("UPDATE msgq.segment SET state = $2, since = $3"
							  " WHERE seg OPERATOR(pg_catalog.=) $1",
							  3, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "could not update storage segment %d", seg);
}

/*
 * Move the live messages of a sealed segment (sealed at since) to the
 * active one and truncate it.  Returns false, changing nothing, when the
 * segment still holds too many messages, when consumers are emptying it
 * (it had more messages at the last look: what they take need not be
 * copied, a backlog would otherwise be moved at every rotation), or when
 * its lock is not available.  A segment being emptied waits at most
 * SEG_PATIENCE_INTERVALS rotation intervals, and not at all when no free
 * segment is left for the next rotation.
 */
static bool
seg_drain(int seg, TimestampTz since, int active, bool ring_full, TimestampTz now)
{
	char		sql[1024];
	int64		live;
	int64		before;
	bool		isnull;

	/* cheap first look, without the lock: at most SEG_MOVE_LIMIT + 1 rows */
	snprintf(sql, sizeof(sql),
			 "SELECT pg_catalog.count(*) FROM"
			 " (SELECT 1 FROM msgq.message_%d LIMIT %d) s", seg, SEG_MOVE_LIMIT + 1);
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count the messages of storage segment %d", seg);
	live = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	before = seg_last_look[seg].since == since ? seg_last_look[seg].live : -1;
	seg_last_look[seg].since = since;
	seg_last_look[seg].live = live;
	if (live > SEG_MOVE_ALWAYS &&
		(live > SEG_MOVE_LIMIT || live > (int64) seg_blocks(seg)))
		return false;
	if (live > 0 && before > live && !ring_full &&
		now - since < (TimestampTz) SEG_PATIENCE_INTERVALS *
		msgq_segment_rotation_interval_ms * 1000)
		return false;

	if (!msgq_lock_relation_timed(msgq_segment_relid(seg), AccessExclusiveLock))
		return false;

	/*
	 * Under the lock no transaction that wrote to the partition is still
	 * running, and this statement's snapshot is taken after the lock, so it
	 * sees every committed message.
	 */
	snprintf(sql, sizeof(sql),
			 "INSERT INTO msgq.message (queue_id, msg_seq, message_id, body,"
			 " message_attributes, md5_of_body, md5_of_message_attributes, sender,"
			 " message_group_id, message_deduplication_id, sent_at, visible_at,"
			 " receive_count, first_received_at, received_at, receipt_nonce,"
			 " source_queue_id, seg)"
			 " SELECT queue_id, msg_seq, message_id, body,"
			 " message_attributes, md5_of_body, md5_of_message_attributes, sender,"
			 " message_group_id, message_deduplication_id, sent_at, visible_at,"
			 " receive_count, first_received_at, received_at, receipt_nonce,"
			 " source_queue_id, %d::pg_catalog.int2 FROM msgq.message_%d",
			 active, seg);
	if (SPI_execute(sql, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not move the messages of storage segment %d", seg);
	if (SPI_processed > 0)
		elog(DEBUG1, "msgq: moved " UINT64_FORMAT " messages from storage segment %d to %d",
			 SPI_processed, seg, active);

	snprintf(sql, sizeof(sql), "TRUNCATE msgq.message_%d", seg);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not truncate storage segment %d", seg);
	seg_set_state(seg, "free", now);
	return true;
}

/*
 * One step of the maintenance cycle: rotate, then drain sealed segments.
 * Runs last in the cycle, so that the partition lock it may take is held
 * only until the cycle commits, moments later.
 */
void
msgq_segments_maintain(void)
{
	SegInfo		segs[MSGQ_SEGMENTS];
	int			active = -1;
	int			i;
	bool		changed = false;
	TimestampTz now = msgq_now();
	uint64		n;

	if (SPI_execute("SELECT seg, state, since FROM msgq.segment", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the storage segments");
	for (i = 0; i < MSGQ_SEGMENTS; i++)
		segs[i].state = SEG_FREE, segs[i].since = 0;
	for (n = 0; n < SPI_processed; n++)
	{
		HeapTuple	tup = SPI_tuptable->vals[n];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			seg = DatumGetInt16(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *state = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));

		if (seg < 0 || seg >= MSGQ_SEGMENTS)
			continue;
		segs[seg].since = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		if (strcmp(state, "active") == 0)
		{
			segs[seg].state = SEG_ACTIVE;
			active = seg;
		}
		else if (strcmp(state, "sealed") == 0)
			segs[seg].state = SEG_SEALED;
	}
	if (active < 0)
		elog(ERROR, "msgq has no active storage segment");

	/* 1. rotate */
	if (now - segs[active].since >= (TimestampTz) msgq_segment_rotation_interval_ms * 1000 &&
		seg_blocks(active) > 0)
	{
		for (i = 1; i < MSGQ_SEGMENTS; i++)
		{
			int			next = (active + i) % MSGQ_SEGMENTS;

			if (segs[next].state == SEG_FREE)
			{
				seg_set_state(active, "sealed", now);
				seg_set_state(next, "active", now);
				segs[active].state = SEG_SEALED;
				segs[active].since = now;
				segs[next].state = SEG_ACTIVE;
				segs[next].since = now;
				active = next;
				changed = true;
				break;
			}
		}
	}

	/* 2. drain sealed segments, oldest first, into the (new) active one */
	for (;;)
	{
		int			oldest = -1;
		bool		ring_full = true;

		for (i = 0; i < MSGQ_SEGMENTS; i++)
		{
			if (segs[i].state == SEG_FREE)
				ring_full = false;
			if (segs[i].state == SEG_SEALED && now - segs[i].since >= SEG_DRAIN_AFTER &&
				(oldest < 0 || segs[i].since < segs[oldest].since))
				oldest = i;
		}
		if (oldest < 0)
			break;
		if (seg_drain(oldest, segs[oldest].since, active, ring_full, now))
		{
			segs[oldest].state = SEG_FREE;
			changed = true;
		}
		else
			segs[oldest].since = PG_INT64_MAX;	/* again next cycle */
	}

	if (changed)
	{
		/* every backend reloads the active segment */
		msgq_queue_cache_invalidate();
		announced_seg = -1;
	}
	else if (announced_seg != active || announced_since != segs[active].since)
	{
		/*
		 * Plans made while the active segment was nearly empty may prefer
		 * sequential scans of it; once it has grown, make every backend
		 * plan again with its real size.
		 */
		if (seg_blocks(active) >= SEG_ANNOUNCE_PAGES)
		{
			CacheInvalidateRelcacheByRelid(msgq_segment_relid(active));
			announced_seg = active;
			announced_since = segs[active].since;
		}
	}
}
