/*-------------------------------------------------------------------------
 *
 * msgstore.c
 *	  The send path's storage: messages inserted straight into the active
 *	  segment's partition, without SPI or the executor.
 *
 * msgq_store_insert() does what the prepared
 *
 *	INSERT INTO msgq.message_<seg> (...) VALUES (..., nextval('msgq.message_seq'), ...)
 *
 * did, for one message or a batch, at the cost of a heap insert and one
 * index insert per index: it locks the partition the backend believes
 * active in RowExclusiveLock (the lock the drain of a sealed segment waits
 * for, doc/design.md "Correctness of the drain"), checks the INSERT
 * privilege of the current user (the extension owner) on it, takes each
 * msg_seq from the sequence by nextval_internal() (with its privilege
 * check), forms the heap tuple from the partition's own descriptor, inserts
 * one message with heap_insert() and a batch with heap_multi_insert(), as
 * COPY does (both TOAST a large body as an INSERT does; a batch fills each
 * page under one buffer lock and one WAL record), and inserts each message's
 * entries into every index that is ready for inserts, checking
 * uniqueness (UNIQUE_CHECK_YES, as ExecInsertIndexTuples() does for an
 * immediate unique index).  The command counter is then advanced, as SPI
 * does after a statement, so later commands of the transaction see the
 * messages.
 *
 * What an INSERT would also do and this does not is refused rather than
 * skipped: a partition with triggers, CHECK constraints, row level
 * security, indexes on expressions, partial, exclusion or deferrable
 * indexes, columns msgq does not know, defaults or generated values on
 * columns it leaves NULL, or a partition bound other than its segment
 * raises an error (msgq's own script creates none of these).  NOT NULL
 * columns are checked for every message.  The partition's column numbers
 * are looked up by name once per backend and forgotten at any relcache
 * invalidation of the partition (an ALTER TABLE, CREATE INDEX or TRUNCATE
 * of it sends one); everything else is read from the relcache on every
 * call.
 *
 * IDENTIFICATION
 *	  src/msgstore.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "msgq.h"

/* the columns of msgq.message, in the order of StoreColumnNames */
typedef enum StoreColumn
{
	SC_QUEUE_ID,
	SC_MSG_SEQ,
	SC_MESSAGE_ID,
	SC_BODY,
	SC_MESSAGE_ATTRIBUTES,
	SC_MD5_OF_BODY,
	SC_MD5_OF_MESSAGE_ATTRIBUTES,
	SC_SENDER,
	SC_MESSAGE_GROUP_ID,
	SC_MESSAGE_DEDUPLICATION_ID,
	SC_SENT_AT,
	SC_VISIBLE_AT,
	SC_RECEIVE_COUNT,
	SC_FIRST_RECEIVED_AT,
	SC_RECEIVED_AT,
	SC_RECEIPT_NONCE,
	SC_SOURCE_QUEUE_ID,
	SC_SEG,
	SC_NCOLUMNS
} StoreColumn;

typedef struct StoreColumnDef
{
	const char *name;
	Oid			type;
	bool		set;			/* given a value by a send */
} StoreColumnDef;

static const StoreColumnDef store_columns[SC_NCOLUMNS] = {
	{"queue_id", INT4OID, true},
	{"msg_seq", INT8OID, true},
	{"message_id", UUIDOID, true},
	{"body", TEXTOID, true},
	{"message_attributes", JSONBOID, true},
	{"md5_of_body", TEXTOID, true},
	{"md5_of_message_attributes", TEXTOID, true},
	{"sender", TEXTOID, true},
	{"message_group_id", TEXTOID, true},
	{"message_deduplication_id", TEXTOID, true},
	{"sent_at", TIMESTAMPTZOID, true},
	{"visible_at", TIMESTAMPTZOID, true},
	{"receive_count", INT4OID, true},
	{"first_received_at", TIMESTAMPTZOID, false},
	{"received_at", TIMESTAMPTZOID, false},
	{"receipt_nonce", INT8OID, false},
	{"source_queue_id", INT4OID, false},
	{"seg", INT2OID, true},
};

/* per segment: its partition and where each column is in it */
typedef struct StoreSegment
{
	Oid			relid;			/* InvalidOid: look it up by name */
	bool		valid;			/* attnum[] describes relid */
	AttrNumber	attnum[SC_NCOLUMNS];
} StoreSegment;

static StoreSegment store_segs[MSGQ_SEGMENTS];
static Oid	store_seq_relid = InvalidOid;
static bool store_callback_registered = false;

/*
 * Relcache invalidation: forget what describes the relation.  Only flags
 * are changed here (this runs inside any lock acquisition).
 */
static void
store_relcache_cb(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < MSGQ_SEGMENTS; i++)
	{
		if (relid == InvalidOid)
			store_segs[i].relid = InvalidOid;
		if (relid == InvalidOid || relid == store_segs[i].relid)
			store_segs[i].valid = false;
	}
	if (relid == InvalidOid || relid == store_seq_relid)
		store_seq_relid = InvalidOid;
}

static void
store_register_callback(void)
{
	if (!store_callback_registered)
	{
		CacheRegisterRelcacheCallback(store_relcache_cb, (Datum) 0);
		store_callback_registered = true;
	}
}

static void
store_unsupported(Relation rel, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot send messages into \"%s.%s\": it has %s",
					MSGQ_SCHEMA_NAME, RelationGetRelationName(rel), what),
			 errhint("msgq inserts messages directly; remove what was added to its storage tables.")));
}

/*
 * Check that the partition holds exactly the values seg = "seg" (what the
 * executor's partition check on a direct INSERT would enforce).  Called when
 * the partition's description is (re)built.
 */
static void
store_check_bound(Relation rel, int seg)
{
	Oid			relid = RelationGetRelid(rel);
	Relation	parent;
	PartitionDesc pd;
	PartitionBoundInfo bi;
	int			part = -1;
	int			nvalues = 0;
	bool		ok = false;
	int			i;

	if (!rel->rd_rel->relispartition ||
		get_partition_parent(relid, false) != msgq_message_relid())
		store_unsupported(rel, "been detached from msgq.message");

	/* held to the end of the transaction, as the executor would */
	parent = table_open(msgq_message_relid(), AccessShareLock);
	pd = RelationGetPartitionDesc(parent, false);
	for (i = 0; i < pd->nparts; i++)
		if (pd->oids[i] == relid)
			part = i;
	bi = pd->boundinfo;
	if (part >= 0 && bi != NULL && bi->strategy == PARTITION_STRATEGY_LIST &&
		bi->default_index != part && bi->null_index != part)
	{
		for (i = 0; i < bi->ndatums; i++)
		{
			if (bi->indexes[i] != part)
				continue;
			nvalues++;
			ok = (DatumGetInt16(bi->datums[i][0]) == seg);
		}
	}
	table_close(parent, NoLock);
	if (!ok || nvalues != 1)
		store_unsupported(rel, "a partition bound other than its segment's");
}

/* Map msgq's columns to the partition's attributes and check its shape. */
static void
store_describe(Relation rel, int seg, StoreSegment *s)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i,
				c;

	for (c = 0; c < SC_NCOLUMNS; c++)
		s->attnum[c] = InvalidAttrNumber;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		for (c = 0; c < SC_NCOLUMNS; c++)
			if (strcmp(NameStr(att->attname), store_columns[c].name) == 0)
				break;
		if (c == SC_NCOLUMNS)
			store_unsupported(rel, psprintf("an unknown column \"%s\"",
											NameStr(att->attname)));
		if (att->atttypid != store_columns[c].type)
			store_unsupported(rel, psprintf("column \"%s\" of an unexpected type",
											NameStr(att->attname)));
		if (att->attgenerated || att->attidentity ||
			(!store_columns[c].set && att->atthasdef))
			store_unsupported(rel, psprintf("a default or generated value on column \"%s\"",
											NameStr(att->attname)));
		s->attnum[c] = att->attnum;
	}
	for (c = 0; c < SC_NCOLUMNS; c++)
		if (s->attnum[c] == InvalidAttrNumber)
			store_unsupported(rel, psprintf("no column \"%s\"", store_columns[c].name));

	store_check_bound(rel, seg);
	s->valid = true;
}

/*
 * Open and lock the partition of a segment, (re)describing it if needed.
 * Locking processes invalidations, so validity is checked after it.
 */
static Relation
store_open(int seg)
{
	StoreSegment *s = &store_segs[seg];
	Relation	rel = NULL;

	store_register_callback();
	if (OidIsValid(s->relid))
		rel = try_table_open(s->relid, RowExclusiveLock);
	if (rel == NULL)
	{
		/* first use, or the partition was dropped (DROP/CREATE EXTENSION) */
		s->valid = false;
		s->relid = msgq_segment_relid(seg);
		if (!OidIsValid(s->relid))
			elog(ERROR, "msgq.message_%d does not exist", seg);
		rel = table_open(s->relid, RowExclusiveLock);
	}
	if (!s->valid)
		store_describe(rel, seg, s);

	if (rel->rd_rel->relkind != RELKIND_RELATION)
		store_unsupported(rel, "partitions of its own");
	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID)
		store_unsupported(rel, "a table access method other than heap");
	if (rel->trigdesc != NULL)
		store_unsupported(rel, "triggers");
	if (rel->rd_att->constr != NULL && rel->rd_att->constr->num_check > 0)
		store_unsupported(rel, "CHECK constraints");
	if (rel->rd_rel->relrowsecurity)
		store_unsupported(rel, "row level security");
	return rel;
}

static Oid
store_seq(void)
{
	store_register_callback();
	if (!OidIsValid(store_seq_relid))
	{
		Oid			nsp = get_namespace_oid(MSGQ_SCHEMA_NAME, false);

		store_seq_relid = get_relname_relid("message_seq", nsp);
		if (!OidIsValid(store_seq_relid))
			elog(ERROR, "msgq.message_seq does not exist");
	}
	return store_seq_relid;
}

/*
 * A number from msgq.message_seq, for a send that takes it early (FIFO).
 * The transaction id comes first: head.c relies on every msg_seq being
 * taken by a transaction that has one already.
 */
int64
msgq_store_next_seq(void)
{
	(void) GetCurrentTransactionId();
	return nextval_internal(store_seq(), true);
}

Oid
msgq_store_seq_relid(void)
{
	return store_seq();
}

/*
 * The one kind of partial index a send supports: "WHERE column IS NOT
 * NULL" (the message group index).  Returns the column's number, or 0.
 */
static AttrNumber
store_not_null_predicate(IndexInfo *info)
{
	NullTest   *nt;

	if (list_length(info->ii_Predicate) != 1 ||
		!IsA(linitial(info->ii_Predicate), NullTest))
		return 0;
	nt = (NullTest *) linitial(info->ii_Predicate);
	if (nt->nulltesttype != IS_NOT_NULL || nt->argisrow || !IsA(nt->arg, Var) ||
		((Var *) nt->arg)->varattno <= 0)
		return 0;
	return ((Var *) nt->arg)->varattno;
}

/*
 * The indexes of the partition that take inserts, opened and locked as
 * ExecOpenIndices() would, and for each the column a partial index needs
 * not NULL (0: not partial).  Returns how many.
 */
static int
store_open_indexes(Relation rel, Relation **indexes, IndexInfo ***infos,
				   AttrNumber **notnull)
{
	List	   *oids = RelationGetIndexList(rel);
	ListCell   *lc;
	int			n = 0;

	*indexes = palloc(sizeof(Relation) * Max(list_length(oids), 1));
	*infos = palloc(sizeof(IndexInfo *) * Max(list_length(oids), 1));
	*notnull = palloc(sizeof(AttrNumber) * Max(list_length(oids), 1));
	foreach(lc, oids)
	{
		Relation	index = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *info = BuildIndexInfo(index);
		AttrNumber	col = 0;

		if (!info->ii_ReadyForInserts)
		{
			index_close(index, RowExclusiveLock);
			continue;
		}
		if (info->ii_Predicate != NIL)
			col = store_not_null_predicate(info);
		if (info->ii_Expressions != NIL || (info->ii_Predicate != NIL && col == 0))
			store_unsupported(rel, "an index on expressions or a partial index");
		if (info->ii_ExclusionOps != NULL)
			store_unsupported(rel, "an exclusion constraint");
		if (info->ii_Unique && !index->rd_index->indimmediate)
			store_unsupported(rel, "a deferrable unique constraint");
		(*indexes)[n] = index;
		(*infos)[n] = info;
		(*notnull)[n] = col;
		n++;
	}
	list_free(oids);
	return n;
}

/* set column col of the message being formed (value is not evaluated if isnull) */
#define SET_COLUMN(col, isnull, value) \
	do { \
		nulls[s->attnum[col] - 1] = (isnull); \
		values[s->attnum[col] - 1] = (isnull) ? (Datum) 0 : (value); \
	} while (0)

/*
 * Insert n messages, in order, into the active segment's partition and
 * set msg_seqs[i] to each one's msg_seq.  The caller runs as the extension
 * owner and has checked the calling role's right to send to the queue.
 */
void
msgq_store_insert(const MsgqStoreMessage *msgs, int n, int64 *msg_seqs)
{
	int			seg;
	StoreSegment *s;
	Relation	rel;
	TupleDesc	desc;
	Relation   *indexes;
	IndexInfo **infos;
	AttrNumber *notnull;
	int			nindexes;
	Oid			seqid;
	Datum	   *values_all;
	bool	   *nulls_all;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple  *tuples;
	ItemPointerData *tids;
	AclResult	aclresult;
	int			i,
				j,
				k;

	Assert(n > 0);

	/* what the executor checks before any INSERT */
	PreventCommandIfReadOnly("INSERT");
	PreventCommandIfParallelMode("INSERT");

	/* straight into the active segment's partition: no tuple routing */
	seg = msgq_segment_active();
	s = &store_segs[seg];
	rel = store_open(seg);
	aclresult = pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, RelationGetRelationName(rel));
	seqid = store_seq();
	nindexes = store_open_indexes(rel, &indexes, &infos, &notnull);

	/* a transaction id before any msg_seq (head.c) */
	(void) GetCurrentTransactionId();

	desc = RelationGetDescr(rel);
	values_all = palloc(sizeof(Datum) * desc->natts * n);
	nulls_all = palloc(sizeof(bool) * desc->natts * n);
	tuples = palloc(sizeof(HeapTuple) * n);

	/* form every message's tuple */
	for (i = 0; i < n; i++)
	{
		const MsgqStoreMessage *m = &msgs[i];
		int64		msg_seq;

		values = values_all + (Size) i * desc->natts;
		nulls = nulls_all + (Size) i * desc->natts;

		/* columns a send leaves NULL, and dropped ones */
		for (j = 0; j < desc->natts; j++)
		{
			values[j] = (Datum) 0;
			nulls[j] = true;
		}

		/* a FIFO send took its number under its group's lock (fifo.c) */
		msg_seq = m->msg_seq != 0 ? m->msg_seq : nextval_internal(seqid, true);

		SET_COLUMN(SC_QUEUE_ID, false, Int32GetDatum(m->queue_id));
		SET_COLUMN(SC_MSG_SEQ, false, Int64GetDatum(msg_seq));
		SET_COLUMN(SC_MESSAGE_ID, false, m->message_id);
		SET_COLUMN(SC_BODY, m->body == NULL, PointerGetDatum(m->body));
		SET_COLUMN(SC_MESSAGE_ATTRIBUTES, m->attributes == NULL,
				   JsonbPGetDatum(m->attributes));
		SET_COLUMN(SC_MD5_OF_BODY, m->md5_body == NULL,
				   CStringGetTextDatum(m->md5_body));
		SET_COLUMN(SC_MD5_OF_MESSAGE_ATTRIBUTES, m->md5_attrs == NULL,
				   CStringGetTextDatum(m->md5_attrs));
		SET_COLUMN(SC_SENDER, false, CStringGetTextDatum(m->sender));
		SET_COLUMN(SC_MESSAGE_GROUP_ID, m->group_id == NULL,
				   CStringGetTextDatum(m->group_id));
		SET_COLUMN(SC_MESSAGE_DEDUPLICATION_ID, m->dedup_id == NULL,
				   CStringGetTextDatum(m->dedup_id));
		SET_COLUMN(SC_SENT_AT, false, TimestampTzGetDatum(m->sent_at));
		SET_COLUMN(SC_VISIBLE_AT, false, TimestampTzGetDatum(m->visible_at));
		SET_COLUMN(SC_RECEIVE_COUNT, false, Int32GetDatum(0));
		SET_COLUMN(SC_SEG, false, Int16GetDatum((int16) seg));

		/* NOT NULL constraints, as ExecConstraints() checks them */
		for (j = 0; j < desc->natts; j++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, j);

			if (att->attnotnull && nulls[j])
				ereport(ERROR,
						(errcode(ERRCODE_NOT_NULL_VIOLATION),
						 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
								NameStr(att->attname), RelationGetRelationName(rel)),
						 errtablecol(rel, att->attnum)));
		}

		tuples[i] = heap_form_tuple(desc, values, nulls);
		msg_seqs[i] = msg_seq;
	}

	/*
	 * Insert them: one message with heap_insert(), a batch with
	 * heap_multi_insert() as COPY does, which fills a page with one WAL
	 * record and one buffer lock instead of one per message.
	 */
	tids = palloc(sizeof(ItemPointerData) * n);
	if (n == 1)
	{
		simple_heap_insert(rel, tuples[0]);
		tids[0] = tuples[0]->t_self;
		heap_freetuple(tuples[0]);
	}
	else
	{
		TupleTableSlot **slots = palloc(sizeof(TupleTableSlot *) * n);

		for (i = 0; i < n; i++)
		{
			slots[i] = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
			/* the slot owns the tuple, so that no copy is made */
			ExecStoreHeapTuple(tuples[i], slots[i], true);
		}
		heap_multi_insert(rel, slots, n, GetCurrentCommandId(true), 0, NULL);
		for (i = 0; i < n; i++)
		{
			tids[i] = slots[i]->tts_tid;
			ExecDropSingleTupleTableSlot(slots[i]);
		}
		pfree(slots);
	}

	/* and their index entries, in the same order */
	for (i = 0; i < n; i++)
	{
		values = values_all + (Size) i * desc->natts;
		nulls = nulls_all + (Size) i * desc->natts;
		for (k = 0; k < nindexes; k++)
		{
			IndexInfo  *info = infos[k];
			Datum		ivalues[INDEX_MAX_KEYS];
			bool		inulls[INDEX_MAX_KEYS];

			/* a partial index: only rows whose column is not NULL */
			if (notnull[k] != 0 && nulls[notnull[k] - 1])
				continue;

			for (j = 0; j < info->ii_NumIndexAttrs; j++)
			{
				AttrNumber	attno = info->ii_IndexAttrNumbers[j];

				Assert(attno > 0 && attno <= desc->natts);
				ivalues[j] = values[attno - 1];
				inulls[j] = nulls[attno - 1];
			}
			(void) index_insert(indexes[k], ivalues, inulls, &tids[i], rel,
								info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
								false, info);
		}
	}

	for (k = 0; k < nindexes; k++)
		index_close(indexes[k], NoLock);
	table_close(rel, NoLock);

	/* as SPI does after a statement: later commands see the messages */
	CommandCounterIncrement();
}
