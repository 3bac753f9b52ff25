/*-------------------------------------------------------------------------
 *
 * consumer.c
 *	  Consumer groups of a stream with shard leases, as the Kinesis Client
 *	  Library keeps them: acquire_leases, release_leases, the lease check
 *	  of a worker's checkpoint, and the msgq.stream_leases view.
 *
 * A group's lease table is msgq.stream_lease, one row per shard, made by
 * the group's first acquire_leases: owner (a worker id), counter
 * (incremented by every take and renewal) and expiry on msgq's clock.
 * Each acquire_leases(stream, group, worker, max_leases, failover_time_ms)
 * locks the group's rows (so two calls of one group are serialized), then:
 *
 *	- renews the worker's own leases (counter + 1, expiry = now + failover);
 *	- lets go of leases of finished shards: a closed shard is finished when
 *	  the group checkpointed its ending sequence number (SHARD_END), or
 *	  when it closed longer than the retention period ago;
 *	- counts the shards that may be leased: not finished, and every parent
 *	  finished (parents are processed before children after a split or a
 *	  merge), and the workers: the owners of unexpired leases, and itself;
 *	- takes unowned and expired leases, in shard order, up to its target
 *	  ceil(shards / workers) (at most max_leases);
 *	- if still under target, steals one lease from the most loaded worker
 *	  when that one is over target, or at target while this one is at
 *	  least two under (as KCL's maxLeasesToStealAtOneTime = 1).
 *
 * A checkpoint with a worker id (checkpoint's five-argument form, in
 * stream.c) locks its lease row FOR SHARE and fails with LeaseLost unless
 * the worker holds the lease unexpired: a worker whose lease was taken or
 * stolen cannot move the checkpoint, and a steal waits for the checkpoint
 * of the transaction that still holds the lease to commit.
 *
 * IDENTIFICATION
 *	  src/consumer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "msgq.h"

#define GROUP_MAX_NAME		128
#define WORKER_MAX_ID		256
#define FAILOVER_DEFAULT_MS 10000
#define FAILOVER_MAX_MS		(24 * 3600 * 1000)

typedef struct GroupLease
{
	int32		shard;
	char	   *owner;			/* NULL: unowned */
	int64		counter;
	TimestampTz expires_at;		/* 0 when unowned */
	int64		switches;
	int32		parent;			/* -1: none */
	int32		adjacent;		/* -1: none */
	bool		closed;
	int64		ending_seq;
	TimestampTz closed_at;
	bool		has_checkpoint;
	int64		checkpoint;
	bool		finished;
	bool		eligible;
	bool		changed;
	bool		taken;			/* by this call */
} GroupLease;

static SPIPlanPtr plan_make_rows = NULL;
static SPIPlanPtr plan_lock_rows = NULL;
static SPIPlanPtr plan_write_row = NULL;
static SPIPlanPtr plan_check = NULL;
static SPIPlanPtr plan_release = NULL;

static void
group_check_names(const char *group, const char *worker)
{
	int			len = group ? pg_mbstrlen(group) : 0;

	if (len < 1 || len > GROUP_MAX_NAME)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "consumer group names have 1 to %d characters", GROUP_MAX_NAME);
	len = worker ? pg_mbstrlen(worker) : 0;
	if (len < 1 || len > WORKER_MAX_ID)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "worker ids have 1 to %d characters", WORKER_MAX_ID);
}

static bool
lease_live(const GroupLease *l, TimestampTz now)
{
	return l->owner != NULL && l->expires_at > now;
}

static bool
lease_mine(const GroupLease *l, const char *worker)
{
	return l->owner != NULL && strcmp(l->owner, worker) == 0;
}

static GroupLease *
lease_find(GroupLease *leases, int n, int32 shard)
{
	int			i;

	for (i = 0; i < n; i++)
		if (leases[i].shard == shard)
			return &leases[i];
	return NULL;
}

/* a parent that is not in the table (never made) counts as finished */
static bool
parent_finished(GroupLease *leases, int n, int32 shard)
{
	GroupLease *p;

	if (shard < 0)
		return true;
	p = lease_find(leases, n, shard);
	return p == NULL || p->finished;
}

/*
 * Make the group's rows for every shard of the stream and read them,
 * locked, with their shards and checkpoints.  Returns how many.
 */
static int
group_read(int32 stream_id, const char *group, GroupLease **out)
{
	Datum		values[2];
	uint64		n,
				i;
	GroupLease *leases;

	values[0] = Int32GetDatum(stream_id);
	values[1] = CStringGetTextDatum(group);
	if (SPI_execute_plan(msgq_plan(&plan_make_rows,
								   "INSERT INTO msgq.stream_lease (stream_id, consumer_group, shard_index)"
								   " SELECT $1, $2, shard_index FROM msgq.shard"
								   "  WHERE stream_id OPERATOR(pg_catalog.=) $1"
								   " ON CONFLICT DO NOTHING",
								   2, (Oid[]) {INT4OID, TEXTOID}),
						 values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not make the lease rows");
	if (SPI_execute_plan(msgq_plan(&plan_lock_rows,
								   "SELECT l.shard_index, l.lease_owner, l.lease_counter, l.expires_at,"
								   "       l.owner_switches, h.parent_index, h.adjacent_parent_index,"
								   "       h.ending_seq, h.closed_at, c.seq"
								   "  FROM msgq.stream_lease l"
								   "  JOIN msgq.shard h ON h.stream_id OPERATOR(pg_catalog.=) l.stream_id"
								   "   AND h.shard_index OPERATOR(pg_catalog.=) l.shard_index"
								   "  LEFT JOIN msgq.stream_checkpoint c"
								   "    ON c.stream_id OPERATOR(pg_catalog.=) l.stream_id"
								   "   AND c.consumer_group OPERATOR(pg_catalog.=) l.consumer_group"
								   "   AND c.shard_index OPERATOR(pg_catalog.=) l.shard_index"
								   " WHERE l.stream_id OPERATOR(pg_catalog.=) $1"
								   "   AND l.consumer_group OPERATOR(pg_catalog.=) $2"
								   " ORDER BY l.shard_index FOR UPDATE OF l",
								   2, (Oid[]) {INT4OID, TEXTOID}),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the lease rows");
	n = SPI_processed;
	leases = palloc0(sizeof(GroupLease) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		GroupLease *l = &leases[i];
		bool		isnull;
		Datum		v;

		l->shard = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
		v = SPI_getbinval(t, d, 2, &isnull);
		l->owner = isnull ? NULL : TextDatumGetCString(v);
		l->counter = DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
		v = SPI_getbinval(t, d, 4, &isnull);
		l->expires_at = isnull ? 0 : DatumGetTimestampTz(v);
		l->switches = DatumGetInt64(SPI_getbinval(t, d, 5, &isnull));
		v = SPI_getbinval(t, d, 6, &isnull);
		l->parent = isnull ? -1 : DatumGetInt32(v);
		v = SPI_getbinval(t, d, 7, &isnull);
		l->adjacent = isnull ? -1 : DatumGetInt32(v);
		v = SPI_getbinval(t, d, 8, &isnull);
		l->closed = !isnull;
		l->ending_seq = isnull ? 0 : DatumGetInt64(v);
		v = SPI_getbinval(t, d, 9, &isnull);
		l->closed_at = isnull ? 0 : DatumGetTimestampTz(v);
		v = SPI_getbinval(t, d, 10, &isnull);
		l->has_checkpoint = !isnull;
		l->checkpoint = isnull ? 0 : DatumGetInt64(v);
	}
	*out = leases;
	return (int) n;
}

static void
group_write(int32 stream_id, const char *group, const GroupLease *l)
{
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int32GetDatum(stream_id);
	values[1] = CStringGetTextDatum(group);
	values[2] = Int32GetDatum(l->shard);
	if (l->owner != NULL)
		values[3] = CStringGetTextDatum(l->owner);
	else
		nulls[3] = 'n';
	values[4] = Int64GetDatum(l->counter);
	values[5] = TimestampTzGetDatum(l->expires_at);
	if (l->owner == NULL)
		nulls[5] = 'n';
	values[6] = Int64GetDatum(l->switches);
	if (SPI_execute_plan(msgq_plan(&plan_write_row,
								   "UPDATE msgq.stream_lease SET lease_owner = $4, lease_counter = $5,"
								   "       expires_at = $6, owner_switches = $7"
								   " WHERE stream_id OPERATOR(pg_catalog.=) $1"
								   "   AND consumer_group OPERATOR(pg_catalog.=) $2"
								   "   AND shard_index OPERATOR(pg_catalog.=) $3",
								   7, (Oid[]) {INT4OID, TEXTOID, INT4OID, TEXTOID, INT8OID,
								   TIMESTAMPTZOID, INT8OID}),
						 values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not write a lease");
}

static void
lease_take(GroupLease *l, const char *worker, TimestampTz until)
{
	if (l->owner != NULL && strcmp(l->owner, worker) != 0)
		l->switches++;
	l->owner = pstrdup(worker);
	l->counter++;
	l->expires_at = until;
	l->changed = true;
	l->taken = true;
}

/*
 * msgq.acquire_leases(stream_name, consumer_group, worker_id,
 *					   max_leases DEFAULT NULL, failover_time_ms DEFAULT 10000)
 *
 * Renew, take and steal the group's leases for a worker (see the header)
 * and return the shards the worker holds now.
 */
PG_FUNCTION_INFO_V1(msgq_acquire_leases);
Datum
msgq_acquire_leases(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *group = msgq_text_arg(fcinfo, 1);
	char	   *worker = msgq_text_arg(fcinfo, 2);
	int32		max_leases = PG_ARGISNULL(3) ? PG_INT32_MAX : PG_GETARG_INT32(3);
	int32		failover_ms = PG_ARGISNULL(4) ? FAILOVER_DEFAULT_MS : PG_GETARG_INT32(4);
	MsgqCall	call;
	int32		stream_id,
				retention_hours;
	GroupLease *leases;
	int			n,
				i,
				j;
	TimestampTz now,
				until;
	int			eligible = 0,
				mine = 0,
				nworkers = 0,
				target;
	char	  **workers;
	int		   *counts;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	/* the stream and the caller's privilege on it first, then the arguments */
	msgq_stream_enter(&call, name, &stream_id, &retention_hours);
	if (max_leases < 1)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "max_leases must be at least 1, not %d", max_leases);
	if (failover_ms < 1 || failover_ms > FAILOVER_MAX_MS)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "failover_time_ms must be between 1 and %d, not %d",
				   FAILOVER_MAX_MS, failover_ms);
	group_check_names(group, worker);

	now = msgq_now();
	until = now + (TimestampTz) failover_ms * 1000;
	n = group_read(stream_id, group, &leases);

	/* finished shards first: children depend on them */
	for (i = 0; i < n; i++)
	{
		GroupLease *l = &leases[i];

		l->finished = l->closed &&
			((l->has_checkpoint && l->checkpoint >= l->ending_seq) ||
			 l->closed_at + (TimestampTz) retention_hours * 3600 * USECS_PER_SEC < now);
	}
	for (i = 0; i < n; i++)
	{
		GroupLease *l = &leases[i];

		l->eligible = !l->finished &&
			parent_finished(leases, n, l->parent) &&
			parent_finished(leases, n, l->adjacent);
		if (l->eligible)
			eligible++;
		else if (l->owner != NULL && (l->finished || lease_mine(l, worker)))
		{
			/* nothing to hold: let go (a finished shard, or mine too early) */
			l->owner = NULL;
			l->expires_at = 0;
			l->changed = true;
		}
	}

	/* renew mine; count the workers that hold unexpired leases */
	workers = palloc(sizeof(char *) * (n + 1));
	counts = palloc0(sizeof(int) * (n + 1));
	workers[nworkers++] = worker;
	for (i = 0; i < n; i++)
	{
		GroupLease *l = &leases[i];

		if (!l->eligible || l->owner == NULL)
			continue;
		if (lease_mine(l, worker))
		{
			l->counter++;
			l->expires_at = until;
			l->changed = true;
			counts[0]++;
			continue;
		}
		if (!lease_live(l, now))
			continue;
		for (j = 0; j < nworkers; j++)
			if (strcmp(workers[j], l->owner) == 0)
				break;
		if (j == nworkers)
			workers[nworkers++] = l->owner;
		counts[j]++;
	}
	mine = counts[0];
	target = (eligible + nworkers - 1) / nworkers;
	if (target > max_leases)
		target = max_leases;

	/* over max_leases: give back the highest shards */
	for (i = n - 1; i >= 0 && mine > max_leases; i--)
	{
		GroupLease *l = &leases[i];

		if (l->eligible && lease_mine(l, worker))
		{
			l->owner = NULL;
			l->expires_at = 0;
			l->changed = true;
			mine--;
		}
	}

	/* take unowned and expired leases, in shard order */
	for (i = 0; i < n && mine < target; i++)
	{
		GroupLease *l = &leases[i];

		if (l->eligible && !lease_mine(l, worker) && !lease_live(l, now))
		{
			lease_take(l, worker, until);
			mine++;
		}
	}

	/* steal one from the most loaded worker */
	if (mine < target)
	{
		int			victim = -1;

		for (j = 1; j < nworkers; j++)
			if (victim < 0 || counts[j] > counts[victim] ||
				(counts[j] == counts[victim] && strcmp(workers[j], workers[victim]) < 0))
				victim = j;
		if (victim > 0 &&
			(counts[victim] > target || (counts[victim] == target && mine < target - 1)))
		{
			for (i = n - 1; i >= 0; i--)
			{
				GroupLease *l = &leases[i];

				if (l->eligible && lease_live(l, now) && strcmp(l->owner, workers[victim]) == 0)
				{
					lease_take(l, worker, until);
					mine++;
					break;
				}
			}
		}
	}

	for (i = 0; i < n; i++)
	{
		GroupLease *l = &leases[i];
		Datum		v[4];
		bool		nl[4] = {false, false, false, false};

		if (l->changed)
			group_write(stream_id, group, l);
		if (!l->eligible || !lease_mine(l, worker))
			continue;
		v[0] = CStringGetTextDatum(msgq_shard_id_text(l->shard));
		v[1] = Int64GetDatum(l->counter);
		if (l->has_checkpoint)
			v[2] = NumericGetDatum(int64_to_numeric(l->checkpoint));
		else
			nl[2] = true;
		v[3] = BoolGetDatum(l->taken);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/*
 * msgq.release_leases(stream_name, consumer_group, worker_id): a worker
 * that shuts down gives its leases back at once (others need not wait for
 * them to expire).  Returns how many it held.
 */
PG_FUNCTION_INFO_V1(msgq_release_leases);
Datum
msgq_release_leases(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *group = msgq_text_arg(fcinfo, 1);
	char	   *worker = msgq_text_arg(fcinfo, 2);
	MsgqCall	call;
	int32		stream_id,
				retention_hours;
	int64		released;

	msgq_check_preloaded();
	msgq_stream_enter(&call, name, &stream_id, &retention_hours);
	group_check_names(group, worker);
	if (SPI_execute_plan(msgq_plan(&plan_release,
								   "UPDATE msgq.stream_lease SET lease_owner = NULL, expires_at = NULL"
								   " WHERE stream_id OPERATOR(pg_catalog.=) $1"
								   "   AND consumer_group OPERATOR(pg_catalog.=) $2"
								   "   AND lease_owner OPERATOR(pg_catalog.=) $3",
								   3, (Oid[]) {INT4OID, TEXTOID, TEXTOID}),
						 (Datum[]) {Int32GetDatum(stream_id), CStringGetTextDatum(group),
						 CStringGetTextDatum(worker)},
						 NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not release leases");
	released = (int64) SPI_processed;
	msgq_call_leave(&call);
	PG_RETURN_INT32((int32) released);
}

/*
 * For checkpoint(..., worker_id): the worker must hold the shard's lease,
 * unexpired.  The row stays locked FOR SHARE to the end of the caller's
 * transaction, so a steal waits for this checkpoint to commit.  Runs
 * inside the caller's SPI connection.
 */
void
msgq_group_lease_check(int32 stream_id, const char *group, int32 shard,
					   const char *worker_id)
{
	bool		isnull;
	Datum		v;
	char	   *owner = NULL;
	TimestampTz expires_at = 0;

	if (SPI_execute_plan(msgq_plan(&plan_check,
								   "SELECT lease_owner, expires_at FROM msgq.stream_lease"
								   " WHERE stream_id OPERATOR(pg_catalog.=) $1"
								   "   AND consumer_group OPERATOR(pg_catalog.=) $2"
								   "   AND shard_index OPERATOR(pg_catalog.=) $3"
								   " FOR SHARE",
								   3, (Oid[]) {INT4OID, TEXTOID, INT4OID}),
						 (Datum[]) {Int32GetDatum(stream_id), CStringGetTextDatum(group),
						 Int32GetDatum(shard)},
						 NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the lease");
	if (SPI_processed == 1)
	{
		v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			owner = TextDatumGetCString(v);
		v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
			expires_at = DatumGetTimestampTz(v);
	}
	if (owner == NULL || strcmp(owner, worker_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_LEASE_LOST),
				 errmsg("worker \"%s\" does not hold the lease of shard %s in consumer group \"%s\"",
						worker_id, msgq_shard_id_text(shard), group),
				 owner != NULL ? errdetail("AWS error code: LeaseLostException. The lease is held by worker \"%s\".", owner) :
				 errdetail("AWS error code: LeaseLostException. The lease is not held."),
				 errhint("Call msgq.acquire_leases() and process only the shards it returns.")));
	if (expires_at <= msgq_now())
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_LEASE_LOST),
				 errmsg("the lease of worker \"%s\" on shard %s in consumer group \"%s\" has expired",
						worker_id, msgq_shard_id_text(shard), group),
				 errdetail("AWS error code: LeaseLostException."),
				 errhint("Renew leases with msgq.acquire_leases() more often than the failover time.")));
}
