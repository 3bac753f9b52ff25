/*-------------------------------------------------------------------------
 *
 * slice.c
 *	  Time slices: where a stream's records are stored.
 *
 * Each stream keeps its records in a chain of tables, msgq.stream_slice_N,
 * one per time slice, recorded in msgq.stream_slice.  Exactly one slice of
 * a stream is current (end_seq NULL): every put writes into it.  The
 * others are sealed: they hold the records with sequence numbers in
 * [start_seq, end_seq], and every record in them arrived at or before
 * sealed_at.  The ranges of a stream's slices are contiguous and do not
 * overlap, so a reader walks them in start_seq order.
 *
 * The maintenance cycle (two queries find the work of every stream):
 *
 *	- seals the current slice once it is older than the slice width
 *	  (retention / 24: one hour for the default 24 hours) and holds a
 *	  record.  Under the stream's exclusive lock (the lock of resharding:
 *	  every put holds it shared to the end of its transaction), taken with
 *	  at most msgq.segment_lock_timeout of waiting, the sequence's last
 *	  value L is read: no put of the stream is in progress, so every record
 *	  in the slice is at most L and every later one is above it.  The slice
 *	  gets end_seq = L, and a new current slice starts at L + 1;
 *
 *	- drops each sealed slice whose sealed_at is at or before the
 *	  retention cutoff: every record in it has expired, and readers
 *	  already hide them (the cutoff is applied to arrival times).  The
 *	  DROP takes the slice's ACCESS EXCLUSIVE lock only when it is free
 *	  (ConditionalLockRelationOid): a reader or writer still using the
 *	  slice is never queued behind the worker, and the slice is dropped on
 *	  a later cycle.  No record is ever deleted one by one.
 *
 * It also gives restored slice tables (after pg_dump and pg_restore) their
 * automatic dependency on the extension back.
 *
 * Readers lock each slice ACCESS SHARE before they read it and skip a
 * slice that a drop removed meanwhile (it only held expired records).
 * get_records and subscribe_to_shard scan a slice's primary key directly
 * (msgq_slice_scan), and puts write its table and primary key directly
 * (msgq_slice_put); the other lookups use prepared statements.
 *
 * Each backend keeps its prepared statements per slice; they are dropped
 * when the slice goes (checked whenever msgq.stream's relcache entry is
 * invalidated, which every rotation and drop does).
 *
 * IDENTIFICATION
 *	  src/slice.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "msgq.h"

/* a slice is 1/24 of the retention period: 150 s per hour of retention */
#define SLICE_SECS_PER_RETENTION_HOUR	150

/* rows inserted together by a put of several records */
#define SLICE_PUT_BATCH			64

typedef struct SlicePlans
{
	int64		slice_id;		/* hash key */
	Oid			relid;
	SPIPlanPtr	plans[SLICE_NPLANS];
} SlicePlans;

static HTAB *slice_plans = NULL;
static bool slice_plans_check = false;

static const char *const slice_sql[SLICE_NPLANS] = {
	/* SLICE_AT_TIME: $1 shard, $2 from, $3 below, $4 time */
	"SELECT pg_catalog.min(seq) FROM %s"
	" WHERE shard_index OPERATOR(pg_catalog.=) $1"
	"   AND seq OPERATOR(pg_catalog.>=) $2"
	"   AND seq OPERATOR(pg_catalog.<) $3"
	"   AND arrival OPERATOR(pg_catalog.>=) $4",
	/* SLICE_TIP: $1 shard, $2 below */
	"SELECT seq, arrival FROM %s"
	" WHERE shard_index OPERATOR(pg_catalog.=) $1"
	"   AND seq OPERATOR(pg_catalog.<) $2"
	" ORDER BY shard_index DESC, seq DESC LIMIT 1",
	/* SLICE_EXISTS: $1 shard, $2 seq */
	"SELECT arrival FROM %s"
	" WHERE shard_index OPERATOR(pg_catalog.=) $1"
	"   AND seq OPERATOR(pg_catalog.=) $2",
	/* SLICE_ANY: a record at all? */
	"SELECT 1 FROM %s LIMIT 1",
};

static const int slice_nargs[SLICE_NPLANS] = {4, 2, 2, 0};
static const Oid slice_argtypes[SLICE_NPLANS][4] = {
	{INT4OID, INT8OID, INT8OID, TIMESTAMPTZOID},
	{INT4OID, INT8OID},
	{INT4OID, INT8OID},
	{0},
};

static void
slice_relname(int64 slice_id, char *buf, size_t len)
{
	snprintf(buf, len, "stream_slice_" INT64_FORMAT, slice_id);
}

/* The slice's table, or InvalidOid when it has been dropped. */
static Oid
slice_relid(int64 slice_id)
{
	char		name[NAMEDATALEN];

	slice_relname(slice_id, name, sizeof(name));
	return get_relname_relid(name, get_namespace_oid(MSGQ_SCHEMA_NAME, false));
}

/* msgq.stream's relcache entry was invalidated: slices may be gone */
void
msgq_slice_plans_stale(void)
{
	slice_plans_check = true;
}

static void
slice_plans_forget_dropped(void)
{
	HASH_SEQ_STATUS scan;
	SlicePlans *e;
	int			i;

	slice_plans_check = false;
	hash_seq_init(&scan, slice_plans);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		if (slice_relid(e->slice_id) == e->relid)
			continue;
		for (i = 0; i < SLICE_NPLANS; i++)
			if (e->plans[i] != NULL)
				SPI_freeplan(e->plans[i]);
		(void) hash_search(slice_plans, &e->slice_id, HASH_REMOVE, NULL);
	}
}

/* The backend's entry of a slice: its table and prepared statements. */
static SlicePlans *
slice_entry(int64 slice_id)
{
	SlicePlans *e;
	bool		found;

	if (slice_plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(SlicePlans);
		ctl.hcxt = TopMemoryContext;
		slice_plans = hash_create("msgq slice plans", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		slice_plans_check = false;
	}
	if (slice_plans_check)
		slice_plans_forget_dropped();
	e = hash_search(slice_plans, &slice_id, HASH_ENTER, &found);
	if (!found)
	{
		memset(e->plans, 0, sizeof(e->plans));
		e->relid = slice_relid(slice_id);
	}
	return e;
}

/*
 * The prepared statement `which` on a slice.  Table names are built from
 * the slice number only: no user-supplied name is ever part of SQL text.
 */
SPIPlanPtr
msgq_slice_plan(int64 slice_id, SlicePlan which)
{
	SlicePlans *e = slice_entry(slice_id);

	if (e->plans[which] == NULL)
	{
		char		name[NAMEDATALEN];
		char		qualified[NAMEDATALEN + 16];
		char	   *sql;

		slice_relname(slice_id, name, sizeof(name));
		snprintf(qualified, sizeof(qualified), "%s.%s", MSGQ_SCHEMA_NAME, name);
		sql = psprintf(slice_sql[which], qualified);
		(void) msgq_plan(&e->plans[which], sql, slice_nargs[which],
						 (Oid *) slice_argtypes[which]);
	}
	return e->plans[which];
}

/*
 * Lock a slice ACCESS SHARE for reading; false when a drop removed it
 * (it held only expired records).  The lock is kept to the end of the
 * transaction, so the slice cannot go while its rows are in use.
 */
bool
msgq_slice_lock(int64 slice_id)
{
	Oid			relid = slice_relid(slice_id);

	if (!OidIsValid(relid))
		return false;
	LockRelationOid(relid, AccessShareLock);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
	{
		UnlockRelationOid(relid, AccessShareLock);
		return false;
	}
	return true;
}

/*
 * The slice's primary key (shard_index, seq): its only index, checked to
 * be on those two columns.  The table must have msgq.stream_record's
 * columns, in its order.
 */
static Relation
slice_open_key(Relation heap, int64 slice_id, LOCKMODE mode)
{
	List	   *indexes = RelationGetIndexList(heap);
	Relation	index;
	Form_pg_index key;

	if (list_length(indexes) != 1)
		elog(ERROR, "stream slice " INT64_FORMAT " must have exactly its primary key", slice_id);
	index = index_open(linitial_oid(indexes), mode);
	list_free(indexes);
	key = index->rd_index;
	if (key->indnatts != 2 || key->indkey.values[0] != 1 || key->indkey.values[1] != 2 ||
		!key->indisunique || !key->indimmediate ||
		!heap_attisnull(index->rd_indextuple, Anum_pg_index_indexprs, NULL) ||
		!heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL))
		elog(ERROR, "the index of stream slice " INT64_FORMAT " is not its primary key (shard_index, seq)",
			 slice_id);
	return index;
}

/* the columns of msgq.stream_record: shard_index, seq, arrival, partition_key, data */
#define SLICE_COLUMNS	5

static void
slice_check_columns(Relation heap, int64 slice_id)
{
	static const Oid types[SLICE_COLUMNS] = {INT4OID, INT8OID, TIMESTAMPTZOID, TEXTOID, BYTEAOID};
	TupleDesc	desc = RelationGetDescr(heap);
	int			i;

	if (desc->natts != lengthof(types))
		elog(ERROR, "stream slice " INT64_FORMAT " does not have the columns of msgq.stream_record",
			 slice_id);
	for (i = 0; i < desc->natts; i++)
		if (TupleDescAttr(desc, i)->attisdropped || TupleDescAttr(desc, i)->atttypid != types[i])
			elog(ERROR, "stream slice " INT64_FORMAT " does not have the columns of msgq.stream_record",
				 slice_id);
}

/*
 * The five columns of a slice row, read straight from its tuple: the row's
 * columns are all NOT NULL and fixed in type (slice_check_columns), so the
 * first three are at fixed offsets and the two varlenas follow, with none
 * of heap_deform_tuple()'s work for nulls and dropped or missing columns
 * or its loop over the descriptor.  A row with a null bitmap or another
 * column count (none is ever written so) goes through heap_deform_tuple().
 */
static inline void
slice_row_values(HeapTuple tup, TupleDesc desc, Datum *values)
{
	HeapTupleHeader td = tup->t_data;
	char	   *tp;
	Size		off = 0;
	int			i;

	if (HeapTupleHasNulls(tup) || HeapTupleHeaderGetNatts(td) != SLICE_COLUMNS)
	{
		bool		isnull[SLICE_COLUMNS];

		heap_deform_tuple(tup, desc, values, isnull);
		for (i = 0; i < SLICE_COLUMNS; i++)
			if (isnull[i])
				elog(ERROR, "a stream record has a null column");
		return;
	}
	/* int4, then int8 and timestamptz (aligned as double), text, bytea */
	tp = (char *) td + td->t_hoff;
	values[0] = Int32GetDatum(*(int32 *) tp);
	off = DOUBLEALIGN(sizeof(int32));
	values[1] = Int64GetDatum(*(int64 *) (tp + off));
	off += sizeof(int64);
	values[2] = TimestampTzGetDatum(*(TimestampTz *) (tp + off));
	off += sizeof(TimestampTz);
	/* a varlena is aligned (int) unless its header is short (never a zero byte) */
	for (i = 3; i < SLICE_COLUMNS; i++)
	{
		off = att_align_pointer(off, TYPALIGN_INT, -1, tp + off);
		values[i] = PointerGetDatum(tp + off);
		off += VARSIZE_ANY(tp + off);
	}
}

/*
 * Put n records into a slice, the stream's current one: record i is
 * (shards[i], the next number of msgq.stream_seq, arrival, keys[i] as
 * text, datas[i] as bytea), and seqs[i] gets its number, so the numbers
 * follow the records' order.  The caller has published its writer slot
 * (stream.c) before this draws the numbers.
 *
 * The rows go straight into the table and its primary key, as an INSERT
 * would put them (the table access method, TOAST, WAL, the unique check)
 * but without planning or the executor; several rows are inserted in
 * multi-inserts of up to SLICE_PUT_BATCH rows, as COPY inserts them.  The
 * slice is locked ROW EXCLUSIVE to the end of the transaction, as an
 * INSERT locks it.  The command counter is incremented afterwards, as SPI
 * does after an INSERT, so the rest of the statement sees the records.
 */
void
msgq_slice_put(int64 slice_id, TimestampTz arrival, int n, const int32 *shards,
			   const Datum *keys, const Datum *datas, int64 *seqs)
{
	Relation	heap;
	Relation	index;
	IndexInfo  *info;
	TupleTableSlot **slots;
	Oid			seqid = msgq_stream_seq_relid();
	Oid			relid = slice_entry(slice_id)->relid;
	CommandId	cid = GetCurrentCommandId(true);
	int			nslots;
	int			done;
	int			batch = 0;
	int			i;

	if (!OidIsValid(relid))
		elog(ERROR, "stream slice " INT64_FORMAT " does not exist", slice_id);
	heap = table_open(relid, RowExclusiveLock);
	slice_check_columns(heap, slice_id);
	index = slice_open_key(heap, slice_id, RowExclusiveLock);
	info = BuildIndexInfo(index);

	/*
	 * Several rows go in together, a batch at a time: one WAL record per
	 * page, as COPY does.  The batch's slots are reused, so a put's memory
	 * stays that of one batch however many records it has.
	 */
	nslots = Min(n, SLICE_PUT_BATCH);
	slots = palloc(sizeof(TupleTableSlot *) * nslots);
	for (i = 0; i < nslots; i++)
		slots[i] = table_slot_create(heap, NULL);
	for (done = 0; done < n; done += batch)
	{
		batch = Min(n - done, nslots);
		for (i = 0; i < batch; i++)
		{
			TupleTableSlot *slot = slots[i];
			int			r = done + i;

			ExecClearTuple(slot);
			seqs[r] = nextval_internal(seqid, false);
			slot->tts_values[0] = Int32GetDatum(shards[r]);
			slot->tts_values[1] = Int64GetDatum(seqs[r]);
			slot->tts_values[2] = TimestampTzGetDatum(arrival);
			slot->tts_values[3] = keys[r];
			slot->tts_values[4] = datas[r];
			memset(slot->tts_isnull, 0, sizeof(bool) * 5);
			ExecStoreVirtualTuple(slot);
		}
		if (batch == 1)
			table_tuple_insert(heap, slots[0], cid, 0, NULL);
		else
			table_multi_insert(heap, slots, batch, cid, 0, NULL);

		for (i = 0; i < batch && info->ii_ReadyForInserts; i++)
		{
			Datum		key_values[2];
			bool		key_nulls[2] = {false, false};

			key_values[0] = Int32GetDatum(shards[done + i]);
			key_values[1] = Int64GetDatum(seqs[done + i]);
			(void) index_insert(index, key_values, key_nulls, &slots[i]->tts_tid, heap,
								UNIQUE_CHECK_YES, false, info);
		}
	}
	for (i = 0; i < nslots; i++)
		ExecDropSingleTupleTableSlot(slots[i]);
	pfree(slots);

	index_close(index, NoLock);
	table_close(heap, NoLock);
	CommandCounterIncrement();
}

/*
 * The records of one heap page that an index scan led to, in index order:
 * their visibility is checked under one share lock of the page, not one
 * per record as index_fetch_heap() takes it, and they are handed to fn
 * after the lock is released, with the page still pinned (a pinned page's
 * tuples do not move).  Returns false when fn stopped.
 */
static bool
slice_scan_page(Relation heap, Buffer *buf, BlockNumber blk, ItemPointerData *tids, int ntids,
				Snapshot snap, TimestampTz cutoff, MsgqSliceRowFn fn, void *arg)
{
	HeapTupleData found[MaxHeapTuplesPerPage];
	TupleDesc	desc = RelationGetDescr(heap);
	int			nfound = 0;
	int			i;

	*buf = ReleaseAndReadBuffer(*buf, heap, blk);
	heap_page_prune_opt(heap, *buf);
	LockBuffer(*buf, BUFFER_LOCK_SHARE);
	for (i = 0; i < ntids; i++)
	{
		bool		all_dead;

		if (heap_hot_search_buffer(&tids[i], heap, *buf, snap, &found[nfound], &all_dead, true))
			nfound++;
	}
	LockBuffer(*buf, BUFFER_LOCK_UNLOCK);

	for (i = 0; i < nfound; i++)
	{
		/* columns as in msgq.stream_record: shard, seq, arrival, key, data */
		Datum		values[SLICE_COLUMNS];
		TimestampTz arrival;

		slice_row_values(&found[i], desc, values);
		arrival = DatumGetTimestampTz(values[2]);
		if (arrival > cutoff &&
			!fn(arg, DatumGetInt64(values[1]), arrival, values[3], values[4], &found[i].t_self))
			return false;
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/*
 * Scan a slice, locked by msgq_slice_lock(), for the shard's records with
 * from <= seq < below that arrived after cutoff, in sequence order, as of
 * snap: a direct scan of its primary key, with no executor and no copy,
 * the heap read a page at a time (slice_scan_page).  fn gets each
 * record's values (key and data may still be toasted; they are valid
 * until fn returns) and its tid, and returns false to stop.  Returns false
 * when fn stopped the scan.
 */
bool
msgq_slice_scan(int64 slice_id, int32 shard, int64 from, int64 below, TimestampTz cutoff,
				Snapshot snap, MsgqSliceRowFn fn, void *arg)
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	ScanKeyData keys[3];
	ItemPointerData tids[MaxHeapTuplesPerPage];
	int			ntids = 0;
	BlockNumber blk = InvalidBlockNumber;
	Buffer		buf = InvalidBuffer;
	bool		more = true;

	heap = table_open(slice_relid(slice_id), NoLock);
	slice_check_columns(heap, slice_id);
	index = slice_open_key(heap, slice_id, AccessShareLock);

	/* (shard_index, seq): shard_index = shard AND seq >= from AND seq < below */
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(shard));
	ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
	ScanKeyInit(&keys[2], 2, BTLessStrategyNumber, F_INT8LT, Int64GetDatum(below));
	scan = index_beginscan(heap, index, snap, 3, 0);
	index_rescan(scan, keys, 3, NULL, 0);
	while (more)
	{
		ItemPointer tid = index_getnext_tid(scan, ForwardScanDirection);

		/* the index's entries of one page, then that page */
		if (tid != NULL && ntids < MaxHeapTuplesPerPage &&
			(ntids == 0 || ItemPointerGetBlockNumber(tid) == blk))
		{
			blk = ItemPointerGetBlockNumber(tid);
			tids[ntids++] = *tid;
			continue;
		}
		if (ntids > 0)
			more = slice_scan_page(heap, &buf, blk, tids, ntids, snap, cutoff, fn, arg);
		ntids = 0;
		if (tid == NULL)
			break;
		blk = ItemPointerGetBlockNumber(tid);
		tids[ntids++] = *tid;
	}
	if (BufferIsValid(buf))
		ReleaseBuffer(buf);
	index_endscan(scan);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return more;
}

/*
 * A slice's table, locked by msgq_slice_lock(), opened (without a lock of
 * its own) to fetch the rows msgq_slice_scan() found, with
 * msgq_slice_fetch(); closed with table_close(heap, NoLock).
 */
Relation
msgq_slice_open(int64 slice_id)
{
	Oid			relid = slice_relid(slice_id);
	Relation	heap;

	if (!OidIsValid(relid))
		elog(ERROR, "stream slice " INT64_FORMAT " does not exist", slice_id);
	heap = table_open(relid, NoLock);
	slice_check_columns(heap, slice_id);
	return heap;
}

/*
 * The key and data of the row at tid, one that msgq_slice_scan() found
 * visible in this statement.  Its page stays pinned in *buf until a fetch
 * from another page (or the caller's ReleaseBuffer), so the values stay
 * valid as long: a pinned page's tuples do not move, and a row of a
 * locked slice seen by the statement's snapshot cannot be pruned.  No
 * content lock is taken, as a heap scan reads the tuples of a page it
 * has judged already.
 */
void
msgq_slice_fetch(Relation heap, Buffer *buf, ItemPointer tid, Datum *key, Datum *data)
{
	BlockNumber blk = ItemPointerGetBlockNumber(tid);
	OffsetNumber off = ItemPointerGetOffsetNumber(tid);
	Datum		values[SLICE_COLUMNS];
	HeapTupleData tup;
	Page		page;
	ItemId		lp;

	if (!BufferIsValid(*buf) || BufferGetBlockNumber(*buf) != blk)
		*buf = ReleaseAndReadBuffer(*buf, heap, blk);
	page = BufferGetPage(*buf);
	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page) ||
		!ItemIdIsNormal(lp = PageGetItemId(page, off)))
		elog(ERROR, "stream record (%u,%u) of \"%s\" is no longer there",
			 blk, off, RelationGetRelationName(heap));
	tup.t_data = (HeapTupleHeader) PageGetItem(page, lp);
	tup.t_len = ItemIdGetLength(lp);
	tup.t_tableOid = RelationGetRelid(heap);
	tup.t_self = *tid;
	slice_row_values(&tup, RelationGetDescr(heap), values);
	*key = values[3];
	*data = values[4];
}

/*
 * The stream's slices that may hold records with from <= seq < below
 * arriving after cutoff, in sequence order (descending if asked).
 */
MsgqSlice *
msgq_slices_list(int32 stream_id, int64 from, int64 below, TimestampTz cutoff,
				 bool descending, int *n)
{
	static SPIPlanPtr asc = NULL;
	static SPIPlanPtr desc = NULL;
	MsgqSlice  *r;
	uint64		i;
	bool		isnull;
	Oid			types[4] = {INT4OID, INT8OID, INT8OID, TIMESTAMPTZOID};
	Datum		values[4];

	values[0] = Int32GetDatum(stream_id);
	values[1] = Int64GetDatum(from);
	values[2] = Int64GetDatum(below);
	values[3] = TimestampTzGetDatum(cutoff);
#define SLICES_SQL(order) \
	"SELECT slice_id, start_seq, end_seq, sealed_at FROM msgq.stream_slice" \
	" WHERE stream_id OPERATOR(pg_catalog.=) $1" \
	"   AND start_seq OPERATOR(pg_catalog.<) $3" \
	"   AND (end_seq IS NULL OR end_seq OPERATOR(pg_catalog.>=) $2)" \
	"   AND (sealed_at IS NULL OR sealed_at OPERATOR(pg_catalog.>) $4)" \
	" ORDER BY stream_id, start_seq " order
	if (SPI_execute_plan(descending ?
						 msgq_plan(&desc, SLICES_SQL("DESC"), 4, types) :
						 msgq_plan(&asc, SLICES_SQL("ASC"), 4, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the slices of a stream");
#undef SLICES_SQL
	*n = (int) SPI_processed;
	r = palloc(sizeof(MsgqSlice) * Max(*n, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;

		r[i].slice_id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		r[i].start_seq = DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
		r[i].end_seq = DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
		if (isnull)
			r[i].end_seq = PG_INT64_MAX;
		r[i].sealed_at = DatumGetTimestampTz(SPI_getbinval(t, d, 4, &isnull));
		if (isnull)
			r[i].sealed_at = 0;
	}
	return r;
}

/* the slice table goes with DROP EXTENSION */
static void
slice_depend_on_extension(Oid relid)
{
	ObjectAddress table;
	ObjectAddress ext;

	ObjectAddressSet(table, RelationRelationId, relid);
	ObjectAddressSet(ext, ExtensionRelationId, get_extension_oid(MSGQ_EXTENSION_NAME, false));
	recordDependencyOn(&table, &ext, DEPENDENCY_AUTO);
}

/*
 * Create a stream's new current slice starting at start_seq: its catalog
 * row and its table, made like the template msgq.stream_record.  The
 * table depends on the extension (automatically), so DROP EXTENSION takes
 * it along.  Returns the slice number.
 */
int64
msgq_slice_create(int32 stream_id, int64 start_seq)
{
	int64		slice_id;
	bool		isnull;
	char		name[NAMEDATALEN];
	char		sql[256];
	Oid			relid;

	if (SPI_execute_with_args("INSERT INTO msgq.stream_slice (stream_id, start_seq, opened_at)"
							  " VALUES ($1, $2, $3) RETURNING slice_id",
							  3, (Oid[]) {INT4OID, INT8OID, TIMESTAMPTZOID},
							  (Datum[]) {Int32GetDatum(stream_id), Int64GetDatum(start_seq),
							  TimestampTzGetDatum(msgq_now())},
							  NULL, false, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record a stream slice");
	slice_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	slice_relname(slice_id, name, sizeof(name));
	snprintf(sql, sizeof(sql),
			 "CREATE TABLE %s.%s (LIKE msgq.stream_record INCLUDING ALL)",
			 MSGQ_SCHEMA_NAME, name);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create stream slice %s", name);
	snprintf(sql, sizeof(sql), "REVOKE ALL ON TABLE %s.%s FROM PUBLIC",
			 MSGQ_SCHEMA_NAME, name);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not revoke access to stream slice %s", name);

	relid = slice_relid(slice_id);
	if (!OidIsValid(relid))
		elog(ERROR, "stream slice %s was not created", name);
	slice_depend_on_extension(relid);
	return slice_id;
}

/*
 * After a restore from pg_dump the slice tables are plain tables: give
 * each the automatic dependency on the extension again, so that DROP
 * EXTENSION takes them along.  Cheap when nothing is missing: it compares
 * two counts.
 */
static void
slices_repair_dependencies(void)
{
	static SPIPlanPtr count_plan = NULL;
	static SPIPlanPtr missing_plan = NULL;
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	uint64		i;
	SPITupleTable *tt;
	uint64		n;

	values[0] = ObjectIdGetDatum(get_extension_oid(MSGQ_EXTENSION_NAME, false));
	if (SPI_execute_plan(msgq_plan(&count_plan,
								   "SELECT (SELECT pg_catalog.count(*) FROM msgq.stream_slice)"
								   "     OPERATOR(pg_catalog.=)"
								   "       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_depend d"
								   "         WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass"
								   "           AND d.refobjid OPERATOR(pg_catalog.=) $1"
								   "           AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
								   "           AND d.deptype OPERATOR(pg_catalog.=) 'a')",
								   1, types),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count stream slice dependencies");
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return;

	if (SPI_execute_plan(msgq_plan(&missing_plan,
								   "SELECT c.oid FROM msgq.stream_slice l"
								   "  JOIN pg_catalog.pg_class c"
								   "    ON c.relnamespace OPERATOR(pg_catalog.=) 'msgq'::pg_catalog.regnamespace"
								   "   AND c.relname OPERATOR(pg_catalog.=)"
								   "       ('stream_slice_' OPERATOR(pg_catalog.||) l.slice_id::pg_catalog.text)"
								   " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
								   "         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
								   "           AND d.objid OPERATOR(pg_catalog.=) c.oid"
								   "           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass"
								   "           AND d.refobjid OPERATOR(pg_catalog.=) $1)",
								   1, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not find stream slices without their dependency");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
		slice_depend_on_extension(DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull)));
	if (n > 0)
		elog(LOG, "msgq: " UINT64_FORMAT " stream slice tables depend on the extension again", n);
}

static void
slice_drop(int64 slice_id)
{
	char		name[NAMEDATALEN];
	char		sql[256];

	slice_relname(slice_id, name, sizeof(name));
	if (OidIsValid(slice_relid(slice_id)))
	{
		snprintf(sql, sizeof(sql), "DROP TABLE %s.%s", MSGQ_SCHEMA_NAME, name);
		if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not drop stream slice %s", name);
	}
	if (SPI_execute_with_args("DELETE FROM msgq.stream_slice"
							  " WHERE slice_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(slice_id)},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not forget stream slice %s", name);
}

/* delete_stream: every slice of the stream goes (waiting for their users) */
void
msgq_slices_drop_stream(int32 stream_id)
{
	SPITupleTable *tt;
	uint64		n,
				i;
	bool		isnull;

	if (SPI_execute_with_args("SELECT slice_id FROM msgq.stream_slice"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1 ORDER BY slice_id",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(stream_id)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the slices of a stream");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
		slice_drop(DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull)));
}

/*
 * Seal the stream's current slice and open the next one, if the stream's
 * writers can be held off for at most msgq.segment_lock_timeout.  The
 * exclusive stream lock is kept until the cycle commits.
 */
static bool
slice_rotate(int32 stream_id, int64 current, TimestampTz now)
{
	LOCKTAG		tag;
	int64		last;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, msgq_stream_relid(), (uint32) stream_id, 0);
	if (!msgq_lock_tag_timed(&tag, AccessExclusiveLock))
		return false;

	/* no put of this stream is in progress: all its numbers are <= last */
	last = msgq_stream_seq_floor() - 1;
	if (SPI_execute_with_args("UPDATE msgq.stream_slice SET end_seq = $2, sealed_at = $3"
							  " WHERE slice_id OPERATOR(pg_catalog.=) $1",
							  3, (Oid[]) {INT8OID, INT8OID, TIMESTAMPTZOID},
							  (Datum[]) {Int64GetDatum(current), Int64GetDatum(last),
							  TimestampTzGetDatum(now)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not seal a stream slice");
	(void) msgq_slice_create(stream_id, last + 1);
	return true;
}

/*
 * The streams' part of a maintenance cycle: drop the slices whose records
 * have all expired, and seal the current slices that are due.  Two
 * queries find the work for every stream at once, so an idle cycle costs
 * the same however many streams there are.
 */
void
msgq_streams_maintain(void)
{
	static SPIPlanPtr expired_plan = NULL;
	static SPIPlanPtr due_plan = NULL;
	SPITupleTable *tt;
	uint64		n,
				i;
	TimestampTz now = msgq_now();
	bool		changed = false;
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	values[0] = TimestampTzGetDatum(now);
	slices_repair_dependencies();

	/*
	 * 1. Drop the sealed slices sealed at or before their stream's cutoff
	 * (every record in them has expired), when their lock is free right now.
	 */
	if (SPI_execute_plan(msgq_plan(&expired_plan,
								   "SELECT l.slice_id FROM msgq.stream_slice l"
								   "  JOIN msgq.stream s ON s.stream_id OPERATOR(pg_catalog.=) l.stream_id"
								   " WHERE l.end_seq IS NOT NULL"
								   "   AND l.sealed_at OPERATOR(pg_catalog.<=) GREATEST("
								   "       $1 OPERATOR(pg_catalog.-) pg_catalog.make_interval(hours => s.retention_hours),"
								   "       s.trimmed_before)"
								   " ORDER BY l.stream_id, l.start_seq",
								   1, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not find expired stream slices");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		int64		slice_id = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		Oid			relid = slice_relid(slice_id);

		if (OidIsValid(relid) &&
			!ConditionalLockRelationOid(relid, AccessExclusiveLock))
		{
			elog(DEBUG1, "msgq: stream slice " INT64_FORMAT " is in use, dropped later",
				 slice_id);
			continue;
		}
		slice_drop(slice_id);
		changed = true;
	}

	/*
	 * 2. Seal the current slices older than their width (1/24 of their
	 * stream's retention) that hold a record; an empty one starts its width
	 * again.
	 */
	if (SPI_execute_plan(msgq_plan(&due_plan,
								   "SELECT l.stream_id, l.slice_id FROM msgq.stream_slice l"
								   "  JOIN msgq.stream s ON s.stream_id OPERATOR(pg_catalog.=) l.stream_id"
								   " WHERE l.end_seq IS NULL"
								   "   AND l.opened_at OPERATOR(pg_catalog.<=)"
								   "       ($1 OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs =>"
								   "         s.retention_hours OPERATOR(pg_catalog.*) " CppAsString2(SLICE_SECS_PER_RETENTION_HOUR) "))"
								   " ORDER BY l.stream_id",
								   1, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not find stream slices to seal");
	tt = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		int32		stream_id = DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		int64		current = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));

		if (!msgq_slice_lock(current))
			continue;
		if (SPI_execute_plan(msgq_slice_plan(current, SLICE_ANY), NULL, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look into a stream slice");
		if (SPI_processed == 0)
		{
			/* nothing arrived: the slice starts its width again */
			if (SPI_execute_with_args("UPDATE msgq.stream_slice SET opened_at = $2"
									  " WHERE slice_id OPERATOR(pg_catalog.=) $1",
									  2, (Oid[]) {INT8OID, TIMESTAMPTZOID},
									  (Datum[]) {Int64GetDatum(current), TimestampTzGetDatum(now)},
									  NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not restart an empty stream slice");
			continue;
		}
		if (slice_rotate(stream_id, current, now))
			changed = true;
		else
			elog(DEBUG1, "msgq: stream %d has writers, its slice is sealed later", stream_id);
	}
	/* writers switch to the new slices, readers forget dropped ones */
	if (changed)
		msgq_stream_cache_invalidate();
}
