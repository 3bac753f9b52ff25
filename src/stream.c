/*-------------------------------------------------------------------------
 *
 * stream.c
 *	  Kinesis-style streams: shards over the 128-bit hash space, records
 *	  with sequence numbers, shard iterators, get_records.
 *
 * Never skipping a record.  Sequence numbers come from one PostgreSQL
 * sequence (msgq.stream_seq), so they increase in allocation order, but
 * writers commit in any order: a reader that returned record 11 while the
 * writer of record 10 was still open would never see 10.  So a reader
 * never goes past a shard's safe horizon:
 *
 *	- before allocating its first sequence number, a writing transaction
 *	  publishes in its shared-memory slot a bound, the sequence's last
 *	  value + 1 (no lower than any number it will get), and before each put
 *	  the (stream, shard) it writes to; the slot is cleared at commit or
 *	  abort, after the outcome is visible;
 *	- a reader first reads the sequence's last value + 1 (T: every number
 *	  below was allocated before this point), then the slots: the horizon
 *	  is the lowest bound of a slot writing to the shard, or T;
 *	- it then reads, with a fresh snapshot, the records below the horizon.
 *
 * Every number below the horizon belongs to a transaction that has ended
 * (its slot was seen cleared, or it published after T was read and so got a
 * number >= T), so the snapshot sees it committed or never will.  An open
 * writer holds its shard's horizon where it stands until it ends: readers
 * wait for it (doc/streams.md).
 *
 * Iterators are msgq's authenticated tokens (handle.c) carrying the
 * stream id (negated, so that no receipt handle is an iterator), the shard
 * index with the issue time, and the first sequence number to read.  They
 * expire after 5 minutes.
 *
 * IDENTIFICATION
 *	  src/stream.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tupmacs.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/base64.h"
#include "common/hashfn.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "commands/dbcommands.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "msgq.h"

#define STREAM_MAX_NAME			128
#define STREAM_MAX_SHARDS		500
#define STREAM_ON_DEMAND_SHARDS 4
#define STREAM_MAX_KEY_CHARS	256
#define STREAM_MAX_RECORD		1048576
#define STREAM_MAX_RESPONSE		(10 * 1048576)
#define STREAM_MAX_LIMIT		10000
#define ITERATOR_TTL_SECS		300
#define SLOT_SHARDS				8
#define STREAM_MAX_CONSUMERS	20
#define SUBSCRIPTION_SECS		300
#define STREAM_MAX_WAIT_SECS	20
/* long polls of streams use negative keys: queue ids are positive */
#define STREAM_WAIT_KEY(stream_id)	(-(stream_id))

/* ------------------------------------------------------------------------
 * Writer slots in shared memory
 * ------------------------------------------------------------------------
 */

typedef struct WriterSlot
{
	slock_t		mutex;
	Oid			dboid;			/* InvalidOid: no open writer */
	int			nshards;		/* -1: every shard of every stream */
	int64		bound;
	int32		stream_ids[SLOT_SHARDS];
	int32		shard_idx[SLOT_SHARDS];
} WriterSlot;

static WriterSlot *writer_slots = NULL;
static int	writer_nslots = 0;
static bool writer_active = false;
static bool stream_callbacks_registered = false;

static int
stream_nslots(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

void
msgq_stream_shmem_size(Size *size)
{
	*size = add_size(*size, mul_size(stream_nslots(), sizeof(WriterSlot)));
}

/* Called from the startup hook with AddinShmemInitLock held. */
void
msgq_stream_shmem_init(void)
{
	bool		found;
	int			i;

	writer_nslots = stream_nslots();
	writer_slots = ShmemInitStruct("msgq stream writers",
								   mul_size(writer_nslots, sizeof(WriterSlot)),
								   &found);
	if (!found)
		for (i = 0; i < writer_nslots; i++)
		{
			SpinLockInit(&writer_slots[i].mutex);
			writer_slots[i].dboid = InvalidOid;
		}
}

static WriterSlot *
my_slot(void)
{
	int			i = MSGQ_MY_BACKEND_ID - 1;

	if (writer_slots == NULL || i < 0 || i >= writer_nslots)
		elog(ERROR, "msgq stream writer slot not available");
	return &writer_slots[i];
}

static void
writer_clear(void)
{
	WriterSlot *s;

	if (!writer_active)
		return;
	s = my_slot();
	SpinLockAcquire(&s->mutex);
	s->dboid = InvalidOid;
	s->nshards = 0;
	SpinLockRelease(&s->mutex);
	writer_active = false;
}

static void
stream_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (writer_active)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has put stream records")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* after the outcome is visible: readers may pass this writer */
			writer_clear();
			break;
		default:
			break;
	}
}

/* The sequence's last value + 1: no number below it is still to come. */
int64
msgq_stream_seq_floor(void)
{
	Oid			seqid = msgq_stream_seq_relid();
	Datum		d;
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seqid);
	fcinfo->args[0].isnull = false;
	d = pg_sequence_last_value(fcinfo);
	return fcinfo->isnull ? 1 : DatumGetInt64(d) + 1;
}

/*
 * Publish, before allocating a sequence number, that this transaction
 * writes to (stream, shard), with a bound no higher than that number.
 */
static void
writer_publish(int32 stream_id, int32 shard)
{
	WriterSlot *s = my_slot();
	int			i;
	bool		known = false;

	if (!stream_callbacks_registered)
	{
		/*
		 * Callbacks run newest first: registering wait.c's before this one
		 * makes the slot clear before the put's wake-up is sent, so a
		 * subscriber woken by the commit never finds the shard still held.
		 */
		msgq_xact_callbacks_register();
		RegisterXactCallback(stream_xact_callback, NULL);
		stream_callbacks_registered = true;
	}
	if (!writer_active)
	{
		int64		bound = msgq_stream_seq_floor();

		SpinLockAcquire(&s->mutex);
		s->dboid = MyDatabaseId;
		s->bound = bound;
		s->nshards = 0;
		SpinLockRelease(&s->mutex);
		writer_active = true;
	}
	SpinLockAcquire(&s->mutex);
	if (s->nshards >= 0)
	{
		for (i = 0; i < s->nshards; i++)
			if (s->stream_ids[i] == stream_id && s->shard_idx[i] == shard)
				known = true;
		if (!known)
		{
			if (s->nshards == SLOT_SHARDS)
				s->nshards = -1;	/* holds back every shard: rare */
			else
			{
				s->stream_ids[s->nshards] = stream_id;
				s->shard_idx[s->nshards] = shard;
				s->nshards++;
			}
		}
	}
	SpinLockRelease(&s->mutex);
	/* the spinlock release orders these stores before the allocation */
}

/*
 * The shard's safe horizon: every record below it is committed or never
 * will be.  This backend's own slot does not count: its own records are
 * visible to it.
 */
static int64
stream_horizon(int32 stream_id, int32 shard)
{
	int64		h = msgq_stream_seq_floor();
	int			me = MSGQ_MY_BACKEND_ID - 1;
	int			i,
				j;

	pg_memory_barrier();
	for (i = 0; i < writer_nslots; i++)
	{
		WriterSlot *s = &writer_slots[i];

		if (i == me)
			continue;
		SpinLockAcquire(&s->mutex);
		if (s->dboid == MyDatabaseId && s->bound < h)
		{
			bool		match = (s->nshards < 0);

			for (j = 0; j < s->nshards && !match; j++)
				match = (s->stream_ids[j] == stream_id && s->shard_idx[j] == shard);
			if (match)
				h = s->bound;
		}
		SpinLockRelease(&s->mutex);
	}
	return h;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------
 */

typedef struct MsgqStream
{
	int32		stream_id;
	char	   *stream_name;
	Oid			owner;
	char	   *mode;
	int32		retention_hours;
	TimestampTz trimmed_before; /* 0: none */
	bool		enforce_limits; /* per-shard limits (stream_metrics.c) */
} MsgqStream;

/* room for an int64 as numeric: header and five base-10000 digits */
typedef union SeqNumeric
{
	char		bytes[VARHDRSZ + sizeof(uint16) + 5 * sizeof(int16)];
	int32		align;
} SeqNumeric;

static SPIPlanPtr stream_plan_lookup = NULL;
static SPIPlanPtr stream_plan_lookup_id = NULL;
static SPIPlanPtr stream_plan_shard = NULL;


static void stream_lock_for_reshard(int32 stream_id);
static TimestampTz stream_cutoff(MsgqStream *st);

static void
stream_not_found(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
			 errmsg("stream \"%s\" not found", name),
			 errdetail_internal("AWS error code: ResourceNotFoundException")));
}

#define INVALID_ARGUMENT(...) \
	MSGQ_ERROR("InvalidArgumentException", ERRCODE_MSGQ_INVALID_ARGUMENT, __VA_ARGS__)

#define THROUGHPUT_MESSAGE "rate exceeded for shard %s in stream \"%s\""

static void
throughput_exceeded(MsgqStream *st, const char *shard_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_THROUGHPUT_EXCEEDED),
			 errmsg(THROUGHPUT_MESSAGE, shard_id, st->stream_name),
			 errdetail_internal("AWS error code: ProvisionedThroughputExceededException")));
}

static bool
stream_from_tuple(MsgqStream *st)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	st->stream_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	st->stream_name = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
	st->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
	st->mode = TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull));
	st->retention_hours = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	st->trimmed_before = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
	if (isnull)
		st->trimmed_before = 0;
	st->enforce_limits = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	return true;
}

/* the stream with this id, into *st; false if there is none */
static bool
stream_lookup_id(int32 stream_id, bool read_only, MsgqStream *st)
{
	if (SPI_execute_plan(msgq_plan(&stream_plan_lookup_id,
								   "SELECT stream_id, stream_name, owner::oid, stream_mode, retention_hours,"
								   "       trimmed_before, enforce_shard_limits"
								   "  FROM msgq.stream WHERE stream_id OPERATOR(pg_catalog.=) $1",
								   1, (Oid[]) {INT4OID}),
						 (Datum[]) {Int32GetDatum(stream_id)}, NULL, read_only, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up stream");
	return stream_from_tuple(st);
}

/*
 * A stream named by its ARN (arn:aws:kinesis:<region>:<account>:stream/<name>,
 * as msgq_stream_arn() makes it), wherever a stream is named: the name in
 * it.  Anything else, a consumer's ARN among them, is taken as a name.
 */
static const char *
stream_ref_name(const char *ref)
{
	const char *p;

	if (ref == NULL || strncmp(ref, "arn:", 4) != 0 || (p = strstr(ref, ":stream/")) == NULL)
		return ref;
	p += strlen(":stream/");
	if (*p == '\0' || strchr(p, '/') != NULL)
		return ref;
	return p;
}

static void
stream_get(const char *ref, MsgqStream *st)
{
	const char *name = stream_ref_name(ref);
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];

	if (name == NULL)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "the stream name must not be NULL");
	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_plan(msgq_plan(&stream_plan_lookup,
								   "SELECT stream_id, stream_name, owner::oid, stream_mode, retention_hours,"
								   "       trimmed_before, enforce_shard_limits"
								   "  FROM msgq.stream WHERE stream_name OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
						 values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up stream");
	if (!stream_from_tuple(st))
		stream_not_found(name);
}

static void
stream_check_access(MsgqStream *st, Oid roleid)
{
	if (!superuser_arg(roleid) && !has_privs_of_role(roleid, st->owner))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for stream \"%s\"", st->stream_name),
				 errdetail_internal("AWS error code: AccessDeniedException")));
}

/* Start a call on a stream: connect, find the stream, check the caller. */
static void
stream_call_enter(MsgqCall *call, const char *name, MsgqStream *st)
{
	msgq_call_enter(call);
	stream_get(name, st);
	stream_check_access(st, call->caller);
}

/* Is there a stream of that name (or ARN)?  Inside an SPI connection. */
bool
msgq_stream_exists(const char *ref)
{
	const char *name = stream_ref_name(ref);

	if (name == NULL)
		return false;
	if (SPI_execute_with_args("SELECT 1 FROM msgq.stream WHERE stream_name OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID},
							  (Datum[]) {CStringGetTextDatum(name)},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up stream");
	return SPI_processed > 0;
}

/* for consumer.c: a call on a stream, and shard ids */
void
msgq_stream_enter(MsgqCall *call, const char *name, int32 *stream_id,
				  int32 *retention_hours)
{
	MsgqStream	st;

	stream_call_enter(call, name, &st);
	*stream_id = st.stream_id;
	*retention_hours = st.retention_hours;
}

/* A stream or consumer name: 1-128 letters, digits, "_", "-" and "." */
static void
stream_check_name_kind(const char *name, const char *kind)
{
	size_t		len = name ? strlen(name) : 0;
	size_t		i;

	if (len < 1 || len > STREAM_MAX_NAME)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "%s names have 1 to %d characters", kind, STREAM_MAX_NAME);
	for (i = 0; i < len; i++)
		if (!msgq_is_name_char(name[i]) && name[i] != '.')
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "%s name \"%s\" may contain only letters, digits, \"_\", \"-\" and \".\"",
					   kind, name);
}

static void
stream_check_name(const char *name)
{
	stream_check_name_kind(name, "stream");
}

static Datum
int64_numeric(int64 v)
{
	return DirectFunctionCall1(int8_numeric, Int64GetDatum(v));
}

/*
 * Sequence numbers as numeric, built without numeric.c's arithmetic and
 * allocations, for the rows of reads and puts.  A non-negative integer is
 * numeric's short form: a 16-bit header (NUMERIC_SHORT, scale 0, the
 * weight: base-10000 digits before the point, less one) and its base-10000
 * digits, most significant first and without trailing zero digits.  That
 * is numeric's on-disk format, which cannot change; still, the first use
 * compares the encoding with int64_to_numeric()'s for a set of values, and
 * if any differs every number goes through numeric.c instead.
 */
#define SEQ_NUMERIC_SHORT		0x8000
#define SEQ_NUMERIC_WEIGHT_MASK 0x003F

static Size
seq_numeric_encode(int64 v, SeqNumeric *out)
{
	uint64		u = (uint64) v;
	int16		digits[5];		/* least significant first */
	int			n = 0;
	int			low = 0;
	int			i;
	uint16		header;
	Size		len;

	Assert(v >= 0);
	while (u > 0)
	{
		digits[n++] = (int16) (u % 10000);
		u /= 10000;
	}
	while (low < n && digits[low] == 0)
		low++;
	header = SEQ_NUMERIC_SHORT | (uint16) ((n > 0 ? n - 1 : 0) & SEQ_NUMERIC_WEIGHT_MASK);
	len = VARHDRSZ + sizeof(uint16) + (n - low) * sizeof(int16);
	SET_VARSIZE(out->bytes, len);
	memcpy(out->bytes + VARHDRSZ, &header, sizeof(uint16));
	for (i = n - 1; i >= low; i--)
		memcpy(out->bytes + VARHDRSZ + sizeof(uint16) + (n - 1 - i) * sizeof(int16),
			   &digits[i], sizeof(int16));
	return len;
}

static Datum
seq_numeric(int64 v, SeqNumeric *buf)
{
	static int	fast = -1;		/* unknown yet */

	if (fast < 0)
	{
		static const int64 probes[] = {0, 1, 9, 10, 9999, 10000, 10001, 99990000,
			100000000, 123456789012, 1000000000000000000, PG_INT64_MAX};
		int			i;

		fast = 1;
		for (i = 0; i < lengthof(probes) && fast; i++)
		{
			Numeric		ref = int64_to_numeric(probes[i]);
			Size		len = seq_numeric_encode(probes[i], buf);

			if (VARSIZE(ref) != len || memcmp(ref, buf->bytes, len) != 0)
				fast = 0;
			pfree(ref);
		}
		if (!fast)
			elog(LOG, "msgq: sequence numbers are converted to numeric by numeric.c");
	}
	if (!fast || v < 0)
		return int64_numeric(v);
	(void) seq_numeric_encode(v, buf);
	return PointerGetDatum(buf->bytes);
}

/* A sequence number argument as int64; InvalidArgumentException if it is not one. */
static int64
numeric_seq(Datum n, const char *param)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, n));
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		INVALID_ARGUMENT("%s \"%s\" is not a valid sequence number", param, s);
	return (int64) v;
}

static char *
shard_id_text(int32 idx)
{
	return psprintf("shardId-%012d", idx);
}

char *
msgq_shard_id_text(int32 idx)
{
	return shard_id_text(idx);
}

/* "shardId-000000000003" (or "3") to 3; -1 if it is not a shard id */
static int32
shard_id_parse(const char *s)
{
	const char *p = s;
	long		v;
	char	   *end;

	if (s == NULL)
		return -1;
	if (strncmp(p, "shardId-", 8) == 0)
		p += 8;
	if (*p == '\0' || strlen(p) > 12)
		return -1;
	errno = 0;
	v = strtol(p, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > PG_INT32_MAX)
		return -1;
	return (int32) v;
}

/* unsigned 128-bit integers as decimal text */
static char *
u128_text(uint128 v)
{
	char		buf[48];
	int			i = sizeof(buf) - 1;

	buf[i] = '\0';
	do
	{
		buf[--i] = '0' + (int) (v % 10);
		v /= 10;
	} while (v != 0);
	return pstrdup(&buf[i]);
}

static Datum
u128_numeric(uint128 v)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum(u128_text(v)),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* ------------------------------------------------------------------------
 * create_stream, delete_stream, list_streams, list_shards
 * ------------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(msgq_create_stream);
Datum
msgq_create_stream(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *mode = PG_ARGISNULL(2) ? pstrdup("PROVISIONED") : msgq_text_arg(fcinfo, 2);
	int32		count;
	MsgqCall	call;
	uint128		max = ~(uint128) 0;
	uint128		step;
	int64		start_seq;
	int32		stream_id;
	int			i;
	bool		isnull;

	msgq_call_enter(&call);
	stream_check_name(name);
	if (strcmp(mode, "PROVISIONED") == 0)
	{
		if (PG_ARGISNULL(1))
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "a PROVISIONED stream needs a shard count");
		count = PG_GETARG_INT32(1);
	}
	else if (strcmp(mode, "ON_DEMAND") == 0)
	{
		if (!PG_ARGISNULL(1))
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "an ON_DEMAND stream takes no shard count");
		count = STREAM_ON_DEMAND_SHARDS;
	}
	else
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "stream mode must be PROVISIONED or ON_DEMAND, not \"%s\"", mode);
	if (count < 1 || count > STREAM_MAX_SHARDS)
		INVALID_ARGUMENT("shard count must be between 1 and %d, not %d",
						 STREAM_MAX_SHARDS, count);

	if (SPI_execute_with_args("INSERT INTO msgq.stream (stream_name, owner, stream_mode,"
							  "   next_shard_index, created_at)"
							  " VALUES ($1, $2, $3, $4, $5)"
							  " ON CONFLICT (stream_name) DO NOTHING RETURNING stream_id",
							  5, (Oid[]) {TEXTOID, OIDOID, TEXTOID, INT4OID, TIMESTAMPTZOID},
							  (Datum[]) {CStringGetTextDatum(name), ObjectIdGetDatum(call.caller),
							  CStringGetTextDatum(mode), Int32GetDatum(count),
							  TimestampTzGetDatum(msgq_now())},
							  NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not create stream");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_IN_USE),
				 errmsg("stream \"%s\" already exists", name),
				 errdetail_internal("AWS error code: ResourceInUseException")));
	stream_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));

	/* split the hash space evenly: step = floor(2^128 / count) */
	step = max / (uint128) count + ((max % (uint128) count) == (uint128) (count - 1) ? 1 : 0);
	start_seq = msgq_stream_seq_floor();
	for (i = 0; i < count; i++)
	{
		uint128		lo = step * (uint128) i;
		uint128		hi = (i == count - 1) ? max : step * (uint128) (i + 1) - 1;

		if (SPI_execute_with_args("INSERT INTO msgq.shard (stream_id, shard_index, starting_hash,"
								  "   ending_hash, starting_seq)"
								  " VALUES ($1, $2, $3, $4, $5)",
								  5, (Oid[]) {INT4OID, INT4OID, NUMERICOID, NUMERICOID, INT8OID},
								  (Datum[]) {Int32GetDatum(stream_id), Int32GetDatum(i),
								  u128_numeric(lo), u128_numeric(hi), Int64GetDatum(start_seq)},
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not create shard");
	}
	/* the first time slice, where the first records will go */
	(void) msgq_slice_create(stream_id, start_seq);
	msgq_stream_cache_invalidate();
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(msgq_delete_stream);
Datum
msgq_delete_stream(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqStream	st;

	stream_call_enter(&call, name, &st);
	/* like a reshard: wait for the open writers and hold new ones off */
	stream_lock_for_reshard(st.stream_id);
	msgq_slices_drop_stream(st.stream_id);
	msgq_stream_metrics_drop(st.stream_id);
	/* the event source mappings that read it (esm.c) */
	if (SPI_execute_with_args("DELETE FROM msgq.event_source_mapping"
							  " WHERE source_kind OPERATOR(pg_catalog.=) 'stream'"
							  "   AND source_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(st.stream_id)},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete event source mappings");
	if (SPI_execute_with_args("DELETE FROM msgq.stream WHERE stream_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(st.stream_id)},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete stream");
	msgq_stream_cache_invalidate();
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(msgq_list_streams);
Datum
msgq_list_streams(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MsgqCall	call;
	uint64		i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);
	if (SPI_execute("SELECT stream_name, owner::oid FROM msgq.stream ORDER BY stream_name",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list streams");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		v[1];
		bool		n[1] = {false};
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 2, &isnull));

		/* a role sees the streams it may use */
		if (!superuser_arg(call.caller) && !has_privs_of_role(call.caller, owner))
			continue;
		v[0] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(msgq_list_shards);

/*
 * msgq.list_shards(stream_name, exclusive_start_shard_id, max_results,
 *		shard_filter_type, shard_filter_shard_id, shard_filter_timestamp)
 *
 * Shards in index order, after exclusive_start_shard_id, at most
 * max_results (1-10000).  Filters, as ListShards' ShardFilter:
 * AFTER_SHARD_ID (shards after that one), AT_LATEST (open shards),
 * AT_TRIM_HORIZON and FROM_TRIM_HORIZON (every shard not expired),
 * AT_TIMESTAMP (shards open at that time) and FROM_TIMESTAMP (shards open
 * at or after it).  A closed shard expires, and is never listed, once its
 * closing time is past the retention cutoff: every record it holds arrived
 * before it closed, so all of them have expired.
 */
Datum
msgq_list_shards(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *after_text = msgq_text_arg(fcinfo, 1);
	int32		max = PG_ARGISNULL(2) ? 10000 : PG_GETARG_INT32(2);
	char	   *filter = msgq_text_arg(fcinfo, 3);
	char	   *filter_shard = msgq_text_arg(fcinfo, 4);
	MsgqCall	call;
	MsgqStream	st;
	uint64		i;
	int32		after = -1;
	int			mode = 0;		/* 0 all, 1 open, 2 at time, 3 from time */
	Datum		ts = (Datum) 0;
	char		tsnull = 'n';

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	stream_call_enter(&call, name, &st);
	if (max < 1 || max > 10000)
		INVALID_ARGUMENT("max results must be between 1 and 10000, not %d", max);
	if (after_text != NULL && (after = shard_id_parse(after_text)) < 0)
		INVALID_ARGUMENT("\"%s\" is not a shard id", after_text);
	if (filter != NULL)
	{
		if (strcmp(filter, "AFTER_SHARD_ID") == 0)
		{
			int32		f = shard_id_parse(filter_shard);

			if (f < 0)
				INVALID_ARGUMENT("AFTER_SHARD_ID needs a shard id");
			after = Max(after, f);
		}
		else if (strcmp(filter, "AT_LATEST") == 0)
			mode = 1;
		else if (strcmp(filter, "AT_TRIM_HORIZON") == 0 || strcmp(filter, "FROM_TRIM_HORIZON") == 0)
			mode = 0;
		else if (strcmp(filter, "AT_TIMESTAMP") == 0 || strcmp(filter, "FROM_TIMESTAMP") == 0)
		{
			if (PG_ARGISNULL(5))
				INVALID_ARGUMENT("%s needs a timestamp", filter);
			mode = filter[0] == 'A' ? 2 : 3;
			ts = PG_GETARG_DATUM(5);
			tsnull = ' ';
		}
		else
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "shard filter type must be AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP or FROM_TIMESTAMP, not \"%s\"",
					   filter);
	}
	if (SPI_execute_with_args("SELECT shard_index, parent_index, adjacent_parent_index,"
							  "       starting_hash, ending_hash, starting_seq, ending_seq"
							  "  FROM msgq.shard WHERE stream_id OPERATOR(pg_catalog.=) $1"
							  "   AND shard_index OPERATOR(pg_catalog.>) $2"
							  "   AND ($3 OPERATOR(pg_catalog.<>) 1 OR ending_seq IS NULL)"
							  "   AND ($3 OPERATOR(pg_catalog.<>) 2 OR (created_at OPERATOR(pg_catalog.<=) $4"
							  "        AND (closed_at IS NULL OR closed_at OPERATOR(pg_catalog.>) $4)))"
							  "   AND ($3 OPERATOR(pg_catalog.<>) 3 OR closed_at IS NULL"
							  "        OR closed_at OPERATOR(pg_catalog.>) $4)"
							  "   AND (closed_at IS NULL OR closed_at OPERATOR(pg_catalog.>) $6)"
							  " ORDER BY shard_index LIMIT $5",
							  6, (Oid[]) {INT4OID, INT4OID, INT4OID, TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID},
							  (Datum[]) {Int32GetDatum(st.stream_id), Int32GetDatum(after),
							  Int32GetDatum(mode), ts, Int32GetDatum(max),
							  TimestampTzGetDatum(stream_cutoff(&st))},
							  (char[]) {' ', ' ', ' ', tsnull, ' ', ' '}, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list shards");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		v[7];
		bool		n[7] = {false, false, false, false, false, false, false};
		bool		isnull;
		Datum		d;

		v[0] = CStringGetTextDatum(shard_id_text(DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull))));
		d = SPI_getbinval(tup, desc, 2, &n[1]);
		v[1] = n[1] ? (Datum) 0 : CStringGetTextDatum(shard_id_text(DatumGetInt32(d)));
		d = SPI_getbinval(tup, desc, 3, &n[2]);
		v[2] = n[2] ? (Datum) 0 : CStringGetTextDatum(shard_id_text(DatumGetInt32(d)));
		v[3] = SPI_getbinval(tup, desc, 4, &isnull);
		v[4] = SPI_getbinval(tup, desc, 5, &isnull);
		v[5] = int64_numeric(DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull)));
		d = SPI_getbinval(tup, desc, 7, &n[6]);
		v[6] = n[6] ? (Datum) 0 : int64_numeric(DatumGetInt64(d));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * put_record
 * ------------------------------------------------------------------------
 */


typedef struct OpenShard
{
	int32		idx;
	uint128		lo;
	uint128		hi;
} OpenShard;

static OpenShard *stream_open_shards(int32 stream_id, int *n);

/* ------------------------------------------------------------------------
 * A per-backend cache of streams and their open shards, for puts
 *
 * put_record and put_records look a stream and its shard ranges up in it
 * instead of running two queries per call.  Anything that changes a
 * stream or its shards invalidates msgq.stream's relcache entry, which
 * resets every backend's cache (and this backend's own at abort).
 * ------------------------------------------------------------------------
 */

typedef struct StreamCacheEntry
{
	char		name[STREAM_MAX_NAME + 1];
	MsgqStream	st;
	int64		slice_id;		/* the current time slice: puts go there */
	int			nshards;
	OpenShard  *shards;
} StreamCacheEntry;

static HTAB *stream_cache = NULL;
static MemoryContext stream_cache_cxt = NULL;
static Oid	stream_table_relid = InvalidOid;
static Oid	stream_seq_oid = InvalidOid;
static bool stream_cache_registered = false;

static void
stream_cache_reset(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != stream_table_relid)
		return;
	if (stream_cache_cxt != NULL)
		MemoryContextReset(stream_cache_cxt);
	stream_cache = NULL;
	stream_table_relid = InvalidOid;
	stream_seq_oid = InvalidOid;
	/* a slice may have been dropped */
	msgq_slice_plans_stale();
}

Oid
msgq_stream_relid(void)
{
	/* whoever caches the relid must hear when it goes */
	if (!stream_cache_registered)
	{
		CacheRegisterRelcacheCallback(stream_cache_reset, (Datum) 0);
		stream_cache_registered = true;
	}
	if (!OidIsValid(stream_table_relid))
		stream_table_relid = get_relname_relid("stream",
											   get_namespace_oid(MSGQ_SCHEMA_NAME, false));
	return stream_table_relid;
}

/* msgq.stream_seq, looked up once (reset with the cache) */
Oid
msgq_stream_seq_relid(void)
{
	(void) msgq_stream_relid();		/* registers the reset */
	if (!OidIsValid(stream_seq_oid))
	{
		stream_seq_oid = get_relname_relid("stream_seq",
										   get_namespace_oid(MSGQ_SCHEMA_NAME, false));
		if (!OidIsValid(stream_seq_oid))
			elog(ERROR, "msgq.stream_seq does not exist");
	}
	return stream_seq_oid;
}

/* every backend forgets what it knows of streams, at this commit */
void
msgq_stream_cache_invalidate(void)
{
	CacheInvalidateRelcacheByRelid(msgq_stream_relid());
}

/* The stream's current time slice (slice.c). */
static int64
stream_current_slice(int32 stream_id)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;

	if (SPI_execute_plan(msgq_plan(&plan,
								   "SELECT slice_id FROM msgq.stream_slice"
								   " WHERE stream_id OPERATOR(pg_catalog.=) $1 AND end_seq IS NULL",
								   1, (Oid[]) {INT4OID}),
						 (Datum[]) {Int32GetDatum(stream_id)}, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the current slice of a stream");
	if (SPI_processed == 0)
		elog(ERROR, "stream %d has no current slice", stream_id);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* The cache entry of a stream name (not an ARN), or NULL; runs no SQL. */
static StreamCacheEntry *
stream_cache_find(const char *name)
{
	(void) msgq_stream_relid();
	if (stream_cache == NULL || name == NULL || strlen(name) > STREAM_MAX_NAME)
		return NULL;
	return hash_search(stream_cache, name, HASH_FIND, NULL);
}

/* The stream and its open shards, from the cache or loaded into it. */
static StreamCacheEntry *
stream_cached(const char *ref)
{
	const char *name = stream_ref_name(ref);
	StreamCacheEntry *e;
	bool		found;
	MemoryContext old;
	MsgqStream	st;
	OpenShard  *shards;
	int			n;
	int64		slice_id;

	if (name == NULL || strlen(name) > STREAM_MAX_NAME)
	{
		stream_get(name, &st);	/* raises the error */
		return NULL;
	}
	(void) msgq_stream_relid();
	if (stream_cache_cxt == NULL)
		stream_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "msgq stream cache",
												 ALLOCSET_SMALL_SIZES);
	if (stream_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = STREAM_MAX_NAME + 1;
		ctl.entrysize = sizeof(StreamCacheEntry);
		ctl.hcxt = stream_cache_cxt;
		stream_cache = hash_create("msgq stream cache", 16, &ctl,
								   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	e = stream_cache_find(name);
	if (e != NULL)
		return e;

	stream_get(name, &st);
	shards = stream_open_shards(st.stream_id, &n);
	slice_id = stream_current_slice(st.stream_id);
	/* the queries above may have reset the cache: look again */
	if (stream_cache == NULL)
		return stream_cached(name);
	e = hash_search(stream_cache, name, HASH_ENTER, &found);
	old = MemoryContextSwitchTo(stream_cache_cxt);
	e->st = st;
	e->slice_id = slice_id;
	e->st.stream_name = pstrdup(st.stream_name);
	e->st.mode = pstrdup(st.mode);
	e->nshards = n;
	e->shards = palloc(sizeof(OpenShard) * Max(n, 1));
	memcpy(e->shards, shards, sizeof(OpenShard) * n);
	MemoryContextSwitchTo(old);
	return e;
}


/*
 * The stream's cache entry for a light call (msgq_call_enter_light):
 * SQL, and so SPI and the pinned search_path, only when the cache misses.
 */
static StreamCacheEntry *
stream_cached_light(MsgqCall *call, const char *ref)
{
	StreamCacheEntry *e = stream_cache_find(stream_ref_name(ref));

	if (e == NULL)
	{
		msgq_call_need_sql(call);
		e = stream_cached(ref);
	}
	return e;
}

/*
 * Resharding and puts: every put takes a shared lock on the stream (an
 * object lock, held to the end of its transaction) before it routes; a
 * split or merge takes it exclusively, so it waits for the open writers
 * and no record is routed to a shard while it closes.  Returns true when
 * the lock was newly taken, after which the caller looks the stream up
 * again (a reshard that just committed has reset the cache).
 */
static bool
stream_lock_for_put(int32 stream_id)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, msgq_stream_relid(), (uint32) stream_id, 0);
	if (LockHeldByMe(&tag, AccessShareLock))
		return false;
	LockDatabaseObject(msgq_stream_relid(), (Oid) stream_id, 0, AccessShareLock);
	AcceptInvalidationMessages();
	return true;
}

/* The open shard whose hash range holds h. */
static int32
stream_route(StreamCacheEntry *e, uint128 h)
{
	int			j;

	for (j = 0; j < e->nshards; j++)
		if (e->shards[j].lo <= h && h <= e->shards[j].hi)
			return e->shards[j].idx;
	elog(ERROR, "no open shard of stream \"%s\" holds the hash key", e->st.stream_name);
	return -1;					/* keep the compiler quiet */
}

/* The 128-bit hash key of a record. */
static uint128
stream_hash_u128(const char *partition_key, const char *explicit_key)
{
	if (explicit_key != NULL)
	{
		const char *p = explicit_key;
		uint128		v = 0;
		uint128		max = ~(uint128) 0;

		if (*p == '\0')
			INVALID_ARGUMENT("explicit hash key \"%s\" is not a decimal number", explicit_key);
		for (; *p; p++)
		{
			int			d = *p - '0';

			if (d < 0 || d > 9)
				INVALID_ARGUMENT("explicit hash key \"%s\" is not a decimal number", explicit_key);
			if (v > (max - d) / 10)
				INVALID_ARGUMENT("explicit hash key \"%s\" is outside 0 to 2^128-1", explicit_key);
			v = v * 10 + d;
		}
		return v;
	}
	else
	{
		uint8		digest[MD5_DIGEST_LENGTH];
		uint128		v = 0;
		int			i;

		/* msgq's own MD5 (attributes.c): OpenSSL 3's costs a context fetch per call */
		msgq_md5(partition_key, strlen(partition_key), digest);
		/* big-endian, unsigned */
		for (i = 0; i < MD5_DIGEST_LENGTH; i++)
			v = (v << 8) | digest[i];
		return v;
	}
}


/* A partition key and data, checked as put_record checks them. */
static void
stream_check_record(const char *pkey, bytea *data, const char *where)
{
	int			nchars;

	if (pkey == NULL)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "%sa record needs a partition key", where);
	nchars = pg_mbstrlen(pkey);
	if (nchars < 1 || nchars > STREAM_MAX_KEY_CHARS)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "%spartition keys have 1 to %d characters, not %d",
				   where, STREAM_MAX_KEY_CHARS, nchars);
	if (data == NULL)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "%sa record needs data (it may be empty)", where);
	if ((int64) VARSIZE_ANY_EXHDR(data) + (int64) strlen(pkey) > STREAM_MAX_RECORD)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "%sa record (data and partition key) must not exceed %d bytes, this one has %lld",
				   where, STREAM_MAX_RECORD,
				   (long long) VARSIZE_ANY_EXHDR(data) + (long long) strlen(pkey));
}

static TupleDesc put_record_desc = NULL;

PG_FUNCTION_INFO_V1(msgq_put_record);
Datum
msgq_put_record(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *pkey = msgq_text_arg(fcinfo, 1);
	bytea	   *data = PG_ARGISNULL(2) ? NULL : PG_GETARG_BYTEA_PP(2);
	char	   *explicit_key = msgq_text_arg(fcinfo, 3);
	MsgqCall	call;
	MsgqStream	st;
	StreamCacheEntry *ce;
	TupleDesc	tupdesc;
	int32		shard;
	int64		seq;
	Datum		result[2];
	bool		rnulls[2] = {false, false};
	HeapTuple	tuple;
	Datum		key;
	int64		slice_id;

	tupdesc = msgq_result_desc(fcinfo, &put_record_desc);
	/* with the stream cached, a put runs no SQL */
	msgq_call_enter_light(&call);
	ce = stream_cached_light(&call, name);

	/*
	 * The caller's privilege first: a role without it must not queue for
	 * the stream's lock behind a split or merge.  Checked again on the
	 * entry looked up after the lock.
	 */
	stream_check_access(&ce->st, call.caller);
	if (stream_lock_for_put(ce->st.stream_id))
	{
		ce = stream_cached_light(&call, name);
		stream_check_access(&ce->st, call.caller);
	}
	st = ce->st;
	slice_id = ce->slice_id;

	stream_check_record(pkey, data, "");
	if (!PG_ARGISNULL(4))
		(void) numeric_seq(PG_GETARG_DATUM(4), "SequenceNumberForOrdering");

	/* route: the open shard whose hash range holds the key */
	shard = stream_route(ce, stream_hash_u128(pkey, explicit_key));
	if (!msgq_stream_metrics_put(st.stream_id, shard, 1,
								 (int64) VARSIZE_ANY_EXHDR(data) + (int64) strlen(pkey),
								 st.enforce_limits))
		throughput_exceeded(&st, shard_id_text(shard));

	/* publish before the number is allocated (msgq_slice_put draws it) */
	writer_publish(st.stream_id, shard);
	key = CStringGetTextDatum(pkey);
	msgq_slice_put(slice_id, msgq_now(), 1, &shard, &key, (Datum[]) {PointerGetDatum(data)}, &seq);
	/* subscribers sleep on the stream's wake-up key */
	msgq_wakeup_at_commit(STREAM_WAIT_KEY(st.stream_id), false);

	MemoryContextSwitchTo(call.cxt);
	result[0] = CStringGetTextDatum(shard_id_text(shard));
	result[1] = int64_numeric(seq);
	tuple = heap_form_tuple(tupdesc, result, rnulls);
	msgq_call_leave(&call);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

/*
 * A topic's delivery to a stream (src/topic.c): put one record in the
 * publisher's transaction.  Returns false, writing nothing, when the stream
 * does not exist, when role may not write to it, or when its enforced shard
 * limit refuses the record; the caller counts that delivery as failed.
 */
bool
msgq_stream_deliver(const char *stream_ref, Oid role, const char *pkey, bytea *data)
{
	const char *name = stream_ref_name(stream_ref);
	StreamCacheEntry *ce;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	MsgqStream	st;
	int32		shard;
	int64		seq;
	Datum		key;

	if (strlen(name) > STREAM_MAX_NAME)
		return false;
	/* only existing streams reach the cache, which would raise otherwise */
	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_plan(msgq_plan(&stream_plan_lookup,
								   "SELECT stream_id, stream_name, owner::oid, stream_mode, retention_hours,"
								   "       trimmed_before, enforce_shard_limits"
								   "  FROM msgq.stream WHERE stream_name OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
						 values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up stream");
	if (!stream_from_tuple(&st))
		return false;
	if (!superuser_arg(role) && !has_privs_of_role(role, st.owner))
		return false;

	ce = stream_cached(name);
	if (stream_lock_for_put(ce->st.stream_id))
		ce = stream_cached(name);
	shard = stream_route(ce, stream_hash_u128(pkey, NULL));
	if (!msgq_stream_metrics_put(ce->st.stream_id, shard, 1,
								 (int64) VARSIZE_ANY_EXHDR(data) + (int64) strlen(pkey),
								 ce->st.enforce_limits))
		return false;
	writer_publish(ce->st.stream_id, shard);
	key = CStringGetTextDatum(pkey);
	msgq_slice_put(ce->slice_id, msgq_now(), 1, &shard, &key,
				   (Datum[]) {PointerGetDatum(data)}, &seq);
	msgq_wakeup_at_commit(STREAM_WAIT_KEY(ce->st.stream_id), false);
	return true;
}

/*
 * Can role subscribe a topic to the stream? (subscribe's check of a
 * kinesis endpoint; raises the stream's own errors.)
 */
void
msgq_stream_check_endpoint(const char *stream_ref, Oid role)
{
	MsgqStream	st;

	stream_get(stream_ref, &st);
	stream_check_access(&st, role);
}

/* ------------------------------------------------------------------------
 * Iterators
 * ------------------------------------------------------------------------
 */

/* nonce part of an iterator: shard index and issue time in seconds */
static char *
iterator_encode(int32 stream_id, int32 shard, int64 start)
{
	int64		secs = msgq_now() / USECS_PER_SEC;

	return msgq_token_encode(-stream_id, start,
							 ((int64) (uint32) shard << 32) | (int64) (uint32) secs);
}

static void
iterator_decode(const char *it, int32 *stream_id, int32 *shard, int64 *start)
{
	int32		id;
	int64		b;
	int64		issued,
				now;

	if (it == NULL || !msgq_token_decode(it, &id, start, &b) || id >= 0)
		INVALID_ARGUMENT("Invalid ShardIterator.");
	*stream_id = -id;
	*shard = (int32) ((uint64) b >> 32);
	issued = (int64) (uint32) (b & 0xffffffff);
	now = msgq_now() / USECS_PER_SEC;
	if ((now & 0xffffffff) - issued > ITERATOR_TTL_SECS ||
		(now & 0xffffffff) < issued)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_EXPIRED_ITERATOR),
				 errmsg("iterator expired: it was issued more than %d seconds ago",
						ITERATOR_TTL_SECS),
				 errdetail_internal("AWS error code: ExpiredIteratorException")));
}

typedef struct ShardInfo
{
	int64		starting_seq;
	bool		closed;
	int64		ending_seq;
} ShardInfo;

static bool
shard_get(int32 stream_id, int32 shard, ShardInfo *si)
{
	bool		isnull;

	if (SPI_execute_plan(msgq_plan(&stream_plan_shard,
								   "SELECT starting_seq, ending_seq FROM msgq.shard"
								   " WHERE stream_id OPERATOR(pg_catalog.=) $1"
								   "   AND shard_index OPERATOR(pg_catalog.=) $2",
								   2, (Oid[]) {INT4OID, INT4OID}),
						 (Datum[]) {Int32GetDatum(stream_id), Int32GetDatum(shard)},
						 NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up shard");
	if (SPI_processed == 0)
		return false;
	si->starting_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
	si->ending_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 2, &si->closed));
	si->closed = !si->closed;
	return true;
}

/* Records that arrived at or before this are past retention: never returned. */
static TimestampTz
stream_cutoff(MsgqStream *st)
{
	TimestampTz c = msgq_now() - (TimestampTz) st->retention_hours * 3600 * USECS_PER_SEC;

	return Max(c, st->trimmed_before);
}


/* The shard a call names, or ResourceNotFoundException. */
static int32
shard_require(MsgqStream *st, const char *shard_text, ShardInfo *si)
{
	int32		shard = shard_id_parse(shard_text);

	if (shard < 0 || !shard_get(st->stream_id, shard, si))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
				 errmsg("shard \"%s\" of stream \"%s\" does not exist",
						shard_text ? shard_text : "", st->stream_name),
				 errdetail_internal("AWS error code: ResourceNotFoundException")));
	return shard;
}

/*
 * The first sequence number to read for a starting position (TRIM_HORIZON,
 * LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP), from
 * the caller's arguments seq_arg and ts_arg; false for another type.
 */
static bool
stream_start(MsgqStream *st, int32 shard, ShardInfo *si, const char *type,
			 FunctionCallInfo fcinfo, int seq_arg, int ts_arg, int64 *start)
{
	if (strcmp(type, "TRIM_HORIZON") == 0)
		*start = si->starting_seq;
	else if (strcmp(type, "LATEST") == 0)
		*start = stream_horizon(st->stream_id, shard);
	else if (strcmp(type, "AT_SEQUENCE_NUMBER") == 0 ||
			 strcmp(type, "AFTER_SEQUENCE_NUMBER") == 0)
	{
		if (PG_ARGISNULL(seq_arg))
			INVALID_ARGUMENT("%s needs a starting sequence number", type);
		*start = numeric_seq(PG_GETARG_DATUM(seq_arg), "StartingSequenceNumber");
		if (*start < si->starting_seq || (si->closed && *start > si->ending_seq))
			INVALID_ARGUMENT("sequence number %lld does not belong to shard %s",
							 (long long) *start, shard_id_text(shard));
		if (type[1] == 'F')
			(*start)++;
	}
	else if (strcmp(type, "AT_TIMESTAMP") == 0)
	{
		int64		h = stream_horizon(st->stream_id, shard);
		TimestampTz at;
		MsgqSlice  *sl;
		int			nsl,
					k;
		bool		isnull;

		if (PG_ARGISNULL(ts_arg))
			INVALID_ARGUMENT("AT_TIMESTAMP needs a timestamp");
		at = PG_GETARG_TIMESTAMPTZ(ts_arg);
		*start = h;
		/* the first slice, in order, with a record at or after the time */
		sl = msgq_slices_list(st->stream_id, si->starting_seq, h,
							  Max(stream_cutoff(st), at - 1), false, &nsl);
		for (k = 0; k < nsl; k++)
		{
			Datum		d;

			if (!msgq_slice_lock(sl[k].slice_id))
				continue;
			if (SPI_execute_plan(msgq_slice_plan(sl[k].slice_id, SLICE_AT_TIME),
								 (Datum[]) {Int32GetDatum(shard), Int64GetDatum(si->starting_seq),
								 Int64GetDatum(h), TimestampTzGetDatum(at)},
								 NULL, false, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not find records by time");
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
			{
				*start = DatumGetInt64(d);
				break;
			}
		}
	}
	else
		return false;
	return true;
}

/*
 * The result store of get_records and subscribe_to_shard.
 *
 * InitMaterializedSRF() would put up to 10,000 rows into fresh memory of
 * the query on every call: that memory comes from malloc and goes back at
 * the end of the query, so each call pays a page fault per page of its
 * rows, the largest cost of a read.  These stores live instead in one
 * context of the backend's, where the rows freed by tuplestore_end() are
 * reused by the next call.
 *
 * A store belongs to its query: a reset callback on the query's memory
 * counts the stores still in use.  A query that failed never ended its
 * store, so when none is in use and the context holds more than twice
 * work_mem (about the most a store keeps in memory), it is emptied.
 */
static MemoryContext rows_cxt = NULL;
static int	rows_in_use = 0;

static void
rows_store_done(void *arg)
{
	rows_in_use--;
}

static void
stream_rows_begin(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext per_query;
	MemoryContext old;
	MemoryContextCallback *done;
	TupleDesc	tupdesc;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));

	if (rows_cxt == NULL)
		rows_cxt = AllocSetContextCreate(TopMemoryContext, "msgq stream rows",
										 ALLOCSET_DEFAULT_SIZES);
	else if (rows_in_use == 0 &&
			 MemoryContextMemAllocated(rows_cxt, false) > (Size) work_mem * 1024 * 2)
		MemoryContextReset(rows_cxt);

	per_query = rsinfo->econtext->ecxt_per_query_memory;
	old = MemoryContextSwitchTo(per_query);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	done = palloc(sizeof(MemoryContextCallback));
	done->func = rows_store_done;
	done->arg = NULL;
	MemoryContextRegisterResetCallback(per_query, done);
	rows_in_use++;

	MemoryContextSwitchTo(rows_cxt);
	store = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
								  false, work_mem);
	MemoryContextSwitchTo(old);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;
}

/*
 * A read of a shard's records, in one pass over the slices: the records
 * returned are copied (their key and data, detoasted) into a buffer of the
 * backend's, and only then, once the next position that every returned
 * row carries is known, written into the caller's tuplestore.
 *
 * The buffer and its record array are kept from one read to the next, so
 * that a read reuses memory already mapped; one that grew past twice
 * work_mem is freed after its read.  Reads do not nest, so one buffer
 * serves them all.
 */
typedef struct ReadRecord
{
	int64		seq;
	TimestampTz arrival;
	Size		key;			/* offsets in read_buf */
	Size		data;
} ReadRecord;

static MemoryContext read_cxt = NULL;
static char *read_buf = NULL;
static Size read_buf_size = 0;
static Size read_buf_used = 0;
static ReadRecord *read_recs = NULL;
static int	read_recs_size = 0;

/*
 * A record returned by a read that does not copy (StreamRows.refs): where
 * its row is, to be fetched from its page when its turn comes.
 */
typedef struct ReadRef
{
	int64		seq;
	TimestampTz arrival;
	ItemPointerData tid;
	uint16		slice;			/* in StreamRows.slice_ids */
} ReadRef;

typedef struct StreamRows
{
	/* the read */
	int32		shard;
	int64		start;
	int64		horizon;
	int32		limit;
	int64		max_bytes;		/* of data and keys, but always one record */
	TimestampTz cutoff;
	/* what it found */
	uint64		n;				/* records returned, in read_recs */
	int64		bytes;			/* their data and keys */
	int64		last_seq;
	TimestampTz first_arrival;
	TimestampTz last_arrival;
	int64		next;			/* where the next read starts */
	bool		full;
	/* a read that keeps where the records are instead of copying them */
	ReadRef    *refs;			/* limit entries, or NULL to copy */
	int64	   *slice_ids;		/* the slices scanned, in order */
	int			nslices;
} StreamRows;

/* data and key bytes of a record, as stored before compression */
static int64
record_size(Datum key, Datum data)
{
	return (int64) toast_raw_datum_size(key) + (int64) toast_raw_datum_size(data) - 2 * VARHDRSZ;
}

/* Copy a key or data value, detoasted, into read_buf; its offset. */
static Size
read_copy(Datum d)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);
	struct varlena *flat = pg_detoast_datum_packed(v);
	Size		len = VARSIZE_ANY(flat);
	Size		off = VARATT_IS_SHORT(flat) ? read_buf_used : INTALIGN(read_buf_used);

	if (off + len > read_buf_size)
	{
		Size		size = Max(read_buf_size, 64 * 1024);

		while (off + len > size)
			size *= 2;
		read_buf = read_buf == NULL ? MemoryContextAlloc(read_cxt, size) :
			repalloc(read_buf, size);
		read_buf_size = size;
	}
	memcpy(read_buf + off, flat, len);
	read_buf_used = off + len;
	if (flat != v)
		pfree(flat);
	return off;
}

static bool
read_record(void *arg, int64 seq, TimestampTz arrival, Datum key, Datum data,
			ItemPointer tid)
{
	StreamRows *r = (StreamRows *) arg;
	int64		size = record_size(key, data);
	ReadRecord *rec;

	/* at most 10 MiB (or the caller's cap), but always at least one record */
	if (r->n > 0 && r->bytes + size > r->max_bytes)
	{
		r->full = true;
		return false;
	}
	if (r->n == 0)
		r->first_arrival = arrival;
	if (r->refs != NULL)
	{
		ReadRef    *ref = &r->refs[r->n];

		ref->seq = seq;
		ref->arrival = arrival;
		ref->tid = *tid;
		ref->slice = (uint16) (r->nslices - 1);
	}
	else
	{
		Assert(r->n < (uint64) read_recs_size);
		rec = &read_recs[r->n];
		rec->seq = seq;
		rec->arrival = arrival;
		rec->key = read_copy(key);
		rec->data = read_copy(data);
	}
	r->n++;
	r->bytes += size;
	r->last_seq = seq;
	r->last_arrival = arrival;
	if (r->n >= (uint64) r->limit)
	{
		r->full = true;
		return false;
	}
	return true;
}

/*
 * Which of the shard's records from start, below the horizon and after
 * the retention cutoff, are returned: at most limit records and 10 MiB,
 * always at least one.  The slices that may hold them are scanned in
 * order until the limit is reached, and the records kept in read_recs
 * (their key and data copied), or, given refs (limit entries), only where
 * their rows are, in refs and r->slice_ids (made in refs_cxt).
 * r->next is where the following read starts: after the last record
 * returned, or at the horizon when everything below it was read (nothing
 * more can appear there, whatever shard the numbers in between went to).
 *
 * The snapshot is taken here, after the caller computed the horizon, as
 * the safe horizon's proof needs; it sees this transaction's own earlier
 * writes.
 */
static void
stream_read_into(MsgqStream *st, int32 shard, int64 start, int64 horizon, int32 limit,
				 int64 max_bytes, ReadRef *refs, MemoryContext refs_cxt, StreamRows *r)
{
	MsgqSlice  *sl;
	int			nsl;
	int			k;
	Snapshot	snap;

	memset(r, 0, sizeof(*r));
	r->refs = refs;
	r->shard = shard;
	r->start = start;
	r->horizon = horizon;
	r->limit = limit;
	r->max_bytes = Min(max_bytes, STREAM_MAX_RESPONSE);
	r->cutoff = stream_cutoff(st);
	sl = msgq_slices_list(st->stream_id, start, horizon, r->cutoff, false, &nsl);
	if (refs != NULL)
	{
		if (nsl > PG_UINT16_MAX)
			elog(ERROR, "a read of %d slices is not supported", nsl);
		r->slice_ids = MemoryContextAlloc(refs_cxt, sizeof(int64) * Max(nsl, 1));
	}

	if (read_cxt == NULL)
		read_cxt = AllocSetContextCreate(TopMemoryContext, "msgq stream read",
										 ALLOCSET_DEFAULT_SIZES);
	if (refs == NULL && read_recs_size < limit)
	{
		if (read_recs != NULL)
			pfree(read_recs);
		read_recs = MemoryContextAlloc(read_cxt, sizeof(ReadRecord) * limit);
		read_recs_size = limit;
	}
	read_buf_used = 0;

	/* as SPI does for a query: a private copy with the current command id */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	snap = RegisterSnapshot(GetActiveSnapshot());
	PopActiveSnapshot();

	for (k = 0; k < nsl && !r->full; k++)
	{
		if (!msgq_slice_lock(sl[k].slice_id))
			continue;
		if (refs != NULL)
			r->slice_ids[r->nslices++] = sl[k].slice_id;
		(void) msgq_slice_scan(sl[k].slice_id, shard, start, horizon, r->cutoff,
							   snap, read_record, r);
	}
	UnregisterSnapshot(snap);
	r->next = r->full ? r->last_seq + 1 : Max(horizon, start);
}

static void
stream_read_capped(MsgqStream *st, int32 shard, int64 start, int64 horizon, int32 limit,
				   int64 max_bytes, StreamRows *r)
{
	stream_read_into(st, shard, start, horizon, limit, max_bytes, NULL, NULL, r);
}

static void
stream_read(MsgqStream *st, int32 shard, int64 start, int64 horizon, int32 limit,
			StreamRows *r)
{
	stream_read_capped(st, shard, start, horizon, limit, STREAM_MAX_RESPONSE, r);
}

/*
 * Rows as minimal tuples, built straight into a buffer of the backend's and
 * copied once into the tuplestore, instead of heap_form_minimal_tuple()'s
 * size pass, zeroed allocation and fill pass for every row.  The layout is
 * heap_fill_tuple()'s: a null bitmap when a column is null, each varlena
 * as is when short, given a short header when it fits one (and its column
 * may be packed), else aligned with its 4-byte header; fixed-width columns
 * by value, aligned.  Each shape of row (which columns are null, short,
 * made short or long) is compared once per backend with
 * heap_form_minimal_tuple()'s tuple; if one ever differs, every row goes
 * through tuplestore_putvalues() instead.
 */
#define ROW_MAX_ATTS	8
#define ROW_MAX_SHAPES	64

static char *row_buf = NULL;
static Size row_buf_size = 0;
static int	row_fast = 1;
static uint32 row_shapes[ROW_MAX_SHAPES];
static int	row_nshapes = 0;

/* can rows of this descriptor be built here? */
static bool
row_desc_ok(TupleDesc desc)
{
	int			i;

	if (desc->natts > ROW_MAX_ATTS)
		return false;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped ||
			!(att->attlen == -1 || (att->attbyval && att->attlen > 0)))
			return false;
	}
	return true;
}

/*
 * How attribute att stores value p (a varlena pointer or a by-value
 * Datum): 0 null, 1 a short varlena as is, 2 a varlena given a short
 * header, 3 a varlena with its 4-byte header, aligned, 4 by value,
 * aligned; -1 when it cannot be stored here (external).  *off moves past
 * it.
 */
static inline int
row_att_kind(Form_pg_attribute att, Datum value, bool isnull, Size *off)
{
	Pointer		p = DatumGetPointer(value);

	if (isnull)
		return 0;
	if (att->attlen != -1)
	{
		*off = att_align_nominal(*off, att->attalign) + att->attlen;
		return 4;
	}
	if (VARATT_IS_EXTERNAL(p))
		return -1;
	if (VARATT_IS_SHORT(p))
	{
		*off += VARSIZE_SHORT(p);
		return 1;
	}
	if (att->attstorage != TYPSTORAGE_PLAIN && VARATT_CAN_MAKE_SHORT(p))
	{
		*off += VARATT_CONVERTED_SHORT_SIZE(p);
		return 2;
	}
	*off = att_align_nominal(*off, att->attalign) + VARSIZE(p);
	return 3;
}

/* Write a value of kind (row_att_kind) at data + off; the offset after it. */
static inline Size
row_att_write(Form_pg_attribute att, int kind, Datum value, char *data, Size off)
{
	Pointer		p = DatumGetPointer(value);
	Size		at;

	switch (kind)
	{
		case 0:
			return off;
		case 1:
			memcpy(data + off, p, VARSIZE_SHORT(p));
			return off + VARSIZE_SHORT(p);
		case 2:
			{
				Size		sz = VARATT_CONVERTED_SHORT_SIZE(p);

				SET_VARSIZE_SHORT(data + off, sz);
				memcpy(data + off + 1, VARDATA(p), sz - 1);
				return off + sz;
			}
		case 3:
			at = att_align_nominal(off, att->attalign);
			memset(data + off, 0, at - off);
			memcpy(data + at, p, VARSIZE(p));
			return at + VARSIZE(p);
		default:
			at = att_align_nominal(off, att->attalign);
			memset(data + off, 0, at - off);
			store_att_byval(data + at, value, att->attlen);
			return at + att->attlen;
	}
}

/*
 * The header of a row of desc, at tup, whose data (ROW_HOFF bytes on)
 * is len bytes long: as heap_form_minimal_tuple() makes it.  Its first
 * ROW_HOFF bytes must be zero.  Every descriptor rows are built for has at
 * most ROW_MAX_ATTS columns, so the header with a null bitmap takes
 * ROW_HOFF bytes as without.
 */
#define ROW_HOFF	MAXALIGN(SizeofMinimalTupleHeader + BITMAPLEN(ROW_MAX_ATTS))
StaticAssertDecl(MAXALIGN(SizeofMinimalTupleHeader) == ROW_HOFF,
				 "a row's header takes as much room with a null bitmap as without");

/* The infomask and null bitmap of a row of desc whose columns have shape */
static inline void
row_header_flags(TupleDesc desc, uint32 shape, uint16 *infomask, bits8 *bits)
{
	int			i;

	StaticAssertStmt(ROW_MAX_ATTS <= 8, "a row's null bitmap is one byte");
	*infomask = 0;
	*bits = 0;
	for (i = 0; i < desc->natts; i++)
	{
		if (((shape >> (3 * i)) & 7) == 0)
			*infomask |= HEAP_HASNULL;
		else
		{
			*bits |= (bits8) (1 << i);
			if (TupleDescAttr(desc, i)->attlen == -1)
				*infomask |= HEAP_HASVARWIDTH;
		}
	}
}

static inline void
row_header(MinimalTuple tup, int natts, Size len, uint16 infomask, bits8 bits)
{
	tup->t_len = ROW_HOFF + len;
	HeapTupleHeaderSetNatts(tup, natts);
	tup->t_hoff = ROW_HOFF + MINIMAL_TUPLE_OFFSET;
	tup->t_infomask = infomask;
	if (infomask & HEAP_HASNULL)
		tup->t_bits[0] = bits;
}

/* Make row_buf at least len bytes long; what it held is lost. */
static void
row_room(Size len)
{
	Size		size = Max(len, 1024);

	if (len <= row_buf_size)
		return;
	if (read_cxt == NULL)
		read_cxt = AllocSetContextCreate(TopMemoryContext, "msgq stream read",
										 ALLOCSET_DEFAULT_SIZES);
	if (row_buf != NULL)
		pfree(row_buf);
	row_buf = MemoryContextAlloc(read_cxt, size);
	row_buf_size = size;
}

/* The row as a minimal tuple in row_buf; NULL when it cannot be built here. */
static MinimalTuple
row_build(TupleDesc desc, Datum *values, bool *nulls, uint32 *shape)
{
	int			natts = desc->natts;
	Size		data_len = 0;
	Size		len;
	Size		off;
	MinimalTuple tup;
	uint16		infomask;
	bits8		bits;
	int			i;

	*shape = 0;
	for (i = 0; i < natts; i++)
	{
		int			kind = row_att_kind(TupleDescAttr(desc, i), values[i], nulls[i], &data_len);

		if (kind < 0)
			return NULL;
		*shape |= (uint32) kind << (3 * i);
	}

	len = ROW_HOFF + data_len;
	row_room(len);
	tup = (MinimalTuple) row_buf;
	memset(row_buf, 0, ROW_HOFF);
	off = 0;
	for (i = 0; i < natts; i++)
		off = row_att_write(TupleDescAttr(desc, i), (*shape >> (3 * i)) & 7, values[i],
							row_buf + ROW_HOFF, off);
	Assert(off == data_len);
	row_header_flags(desc, *shape, &infomask, &bits);
	row_header(tup, natts, data_len, infomask, bits);
	return tup;
}

/* Has a row of this shape been compared already?  Always no with asserts. */
static bool
row_shape_known(uint32 shape)
{
#ifndef USE_ASSERT_CHECKING
	int			k;

	for (k = 0; k < row_nshapes; k++)
		if (row_shapes[k] == shape)
			return true;
#endif
	return false;
}

static void
row_shape_remember(uint32 shape)
{
	int			k;

	for (k = 0; k < row_nshapes; k++)
		if (row_shapes[k] == shape)
			return;
	if (row_nshapes < ROW_MAX_SHAPES)
		row_shapes[row_nshapes++] = shape;
}

/*
 * Is tup, of this shape, the row heap_form_minimal_tuple() makes of
 * values?  Compared once per shape; if it ever is not, rows are no longer
 * built here.
 */
static bool
row_verify(TupleDesc desc, MinimalTuple tup, uint32 shape, Datum *values, bool *nulls)
{
	MinimalTuple ref = heap_form_minimal_tuple(desc, values, nulls);
	bool		same = ref->t_len == tup->t_len && memcmp(ref, tup, tup->t_len) == 0;

	pfree(ref);
	if (same)
		row_shape_remember(shape);
	else
	{
		elog(LOG, "msgq: stream rows are formed by heap_form_minimal_tuple()");
		row_fast = 0;
	}
	return same;
}

/* Add a minimal tuple to the store, through slot. */
static inline void
row_store(ReturnSetInfo *rsinfo, TupleTableSlot *slot, MinimalTuple tup)
{
	ExecStoreMinimalTuple(tup, slot, false);
	tuplestore_puttupleslot(rsinfo->setResult, slot);
	ExecClearTuple(slot);
}

/* Add a row to the store: built here once its shape is known to be right. */
static void
row_put(ReturnSetInfo *rsinfo, TupleTableSlot *slot, Datum *values, bool *nulls)
{
	MinimalTuple tup = NULL;
	uint32		shape;

	if (row_fast)
		tup = row_build(rsinfo->setDesc, values, nulls, &shape);
	if (tup != NULL && !row_shape_known(shape) &&
		!row_verify(rsinfo->setDesc, tup, shape, values, nulls))
		tup = NULL;
	if (tup == NULL)
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	else
		row_store(rsinfo, slot, tup);
}

/*
 * stream_read_emit() for the common case: the columns every row shares
 * (after the record's four) are written once per alignment their start
 * can have and copied into each row, instead of laid out again for every
 * row as row_build() does.  Rows are compared with
 * heap_form_minimal_tuple() once per shape, as row_put() does.  Returns
 * how many of the read's rows were stored: none when the shared columns
 * are too long for the copy, fewer than all when a shape compared
 * unequal.
 */
#define ROW_TAIL_MAX	128

static uint64
stream_read_emit_records(StreamRows *r, ReturnSetInfo *rsinfo, Datum *v, bool *nl,
						 TupleTableSlot *slot)
{
	TupleDesc	desc = rsinfo->setDesc;
	Form_pg_attribute att[4];
	char		tail[MAXIMUM_ALIGNOF][ROW_TAIL_MAX];
	int			tail_len[MAXIMUM_ALIGNOF];
	uint32		tail_shape = 0;
	uint16		infomask;
	bits8		bits;
	uint64		i;
	int			j;

	for (j = 4; j < desc->natts; j++)
	{
		Size		end = 0;
		int			kind = row_att_kind(TupleDescAttr(desc, j), v[j], nl[j], &end);

		if (kind < 0 || end > ROW_TAIL_MAX - MAXIMUM_ALIGNOF)
			return 0;
		tail_shape |= (uint32) kind << (3 * j);
	}
	/* the same for every row: the record's four columns are never null (kind 1, in octal, for each) */
	row_header_flags(desc, tail_shape | 01111, &infomask, &bits);
	for (j = 0; j < MAXIMUM_ALIGNOF; j++)
	{
		union
		{
			char		c[MAXIMUM_ALIGNOF + ROW_TAIL_MAX];
			double		align;
		}			buf;
		Size		end = j;
		int			k;

		for (k = 4; k < desc->natts; k++)
			end = row_att_write(TupleDescAttr(desc, k), (tail_shape >> (3 * k)) & 7,
								v[k], buf.c, end);
		tail_len[j] = (int) (end - j);
		memcpy(tail[j], buf.c + j, tail_len[j]);
	}
	for (j = 0; j < 4; j++)
		att[j] = TupleDescAttr(desc, j);

	for (i = 0; i < r->n && row_fast; i++)
	{
		ReadRecord *rec = &read_recs[i];
		SeqNumeric	num;
		int			kind[4];
		Size		len = 0;
		Size		off = 0;
		uint32		shape = tail_shape;
		MinimalTuple tup;
		int			a;

		v[0] = seq_numeric(rec->seq, &num);
		v[1] = TimestampTzGetDatum(rec->arrival);
		v[2] = PointerGetDatum(read_buf + rec->key);
		v[3] = PointerGetDatum(read_buf + rec->data);
		for (j = 0; j < 4; j++)
		{
			/* detoasted into read_buf, so never external */
			kind[j] = row_att_kind(att[j], v[j], false, &len);
			Assert(kind[j] > 0);
			shape |= (uint32) kind[j] << (3 * j);
		}
		row_room(ROW_HOFF + len + ROW_TAIL_MAX);
		tup = (MinimalTuple) row_buf;
		memset(row_buf, 0, ROW_HOFF);
		for (j = 0; j < 4; j++)
			off = row_att_write(att[j], kind[j], v[j], row_buf + ROW_HOFF, off);
		a = off % MAXIMUM_ALIGNOF;
		memcpy(row_buf + ROW_HOFF + off, tail[a], tail_len[a]);
		off += tail_len[a];

		row_header(tup, desc->natts, off, infomask, bits);

		if (!row_shape_known(shape) && !row_verify(desc, tup, shape, v, nl))
			break;
		row_store(rsinfo, slot, tup);
	}
	return i;
}

/*
 * Put the records of the read into rsinfo's tuplestore, each as
 * (sequence_number, arrival, key, data) followed by the nextra columns.
 */
static void
stream_read_emit(StreamRows *r, ReturnSetInfo *rsinfo, Datum *extra, bool *extra_null,
				 int nextra)
{
	Datum		v[ROW_MAX_ATTS];
	bool		nl[ROW_MAX_ATTS] = {0};
	SeqNumeric	num;
	TupleTableSlot *slot;
	uint64		i;
	int			j;

	Assert(4 + nextra <= ROW_MAX_ATTS && rsinfo->setDesc->natts == 4 + nextra);
	if (row_fast && !row_desc_ok(rsinfo->setDesc))
		row_fast = 0;
	slot = MakeSingleTupleTableSlot(rsinfo->setDesc, &TTSOpsMinimalTuple);
	for (j = 0; j < nextra; j++)
	{
		v[4 + j] = extra[j];
		nl[4 + j] = extra_null[j];
	}
	/* the rows the common case did not store, one by one */
	for (i = row_fast ? stream_read_emit_records(r, rsinfo, v, nl, slot) : 0; i < r->n; i++)
	{
		ReadRecord *rec = &read_recs[i];

		v[0] = seq_numeric(rec->seq, &num);
		v[1] = TimestampTzGetDatum(rec->arrival);
		v[2] = PointerGetDatum(read_buf + rec->key);
		v[3] = PointerGetDatum(read_buf + rec->data);
		row_put(rsinfo, slot, v, nl);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/* The read's records are no longer needed: give back a large buffer. */
static void
stream_read_end(StreamRows *r)
{
	Size		keep = (Size) work_mem * 1024 * 2;

	if (read_buf != NULL && read_buf_size > keep)
	{
		pfree(read_buf);
		read_buf = NULL;
		read_buf_size = 0;
	}
	if (read_recs != NULL && read_recs_size * sizeof(ReadRecord) > keep)
	{
		pfree(read_recs);
		read_recs = NULL;
		read_recs_size = 0;
	}
	read_buf_used = 0;
}

/*
 * The arrival time of the shard's newest record below the horizon (false
 * when there is none): the tip that MillisBehindLatest is measured to.
 */
static bool
stream_tip(MsgqStream *st, int32 shard, int64 horizon, TimestampTz *arrival)
{
	MsgqSlice  *sl;
	int			nsl,
				k;
	bool		isnull;

	sl = msgq_slices_list(st->stream_id, 0, horizon, stream_cutoff(st), true, &nsl);
	for (k = 0; k < nsl; k++)
	{
		if (!msgq_slice_lock(sl[k].slice_id))
			continue;
		if (SPI_execute_plan(msgq_slice_plan(sl[k].slice_id, SLICE_TIP),
							 (Datum[]) {Int32GetDatum(shard), Int64GetDatum(horizon)},
							 NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not find the newest record of a shard");
		if (SPI_processed == 1)
		{
			*arrival = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 2, &isnull));
			return true;
		}
	}
	return false;
}

/* MillisBehindLatest after a read (0 when caught up) */
static int64
stream_behind(MsgqStream *st, StreamRows *r)
{
	TimestampTz tip;

	if (r->n == 0 || r->next >= r->horizon)
		return 0;
	if (!stream_tip(st, r->shard, r->horizon, &tip))
		return 0;
	return Max(0, (tip - r->last_arrival) / 1000);
}

PG_FUNCTION_INFO_V1(msgq_get_shard_iterator);
Datum
msgq_get_shard_iterator(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *shard_text = msgq_text_arg(fcinfo, 1);
	char	   *type = msgq_text_arg(fcinfo, 2);
	MsgqCall	call;
	MsgqStream	st;
	ShardInfo	si;
	int32		shard;
	int64		start;
	char	   *it;
	text	   *result;

	stream_call_enter(&call, name, &st);
	shard = shard_require(&st, shard_text, &si);
	if (!msgq_stream_metrics_iterator(st.stream_id, shard, st.enforce_limits))
		throughput_exceeded(&st, shard_id_text(shard));
	if (type == NULL)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "a shard iterator type is required");

	if (strcmp(type, "AFTER_CHECKPOINT") == 0)
	{
		char	   *group = msgq_text_arg(fcinfo, 5);
		bool		isnull;

		if (group == NULL)
			INVALID_ARGUMENT("AFTER_CHECKPOINT needs a consumer group");
		if (SPI_execute_with_args("SELECT seq FROM msgq.stream_checkpoint"
								  " WHERE stream_id OPERATOR(pg_catalog.=) $1"
								  "   AND consumer_group OPERATOR(pg_catalog.=) $2"
								  "   AND shard_index OPERATOR(pg_catalog.=) $3",
								  3, (Oid[]) {INT4OID, TEXTOID, INT4OID},
								  (Datum[]) {Int32GetDatum(st.stream_id), CStringGetTextDatum(group),
								  Int32GetDatum(shard)},
								  NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read checkpoint");
		start = si.starting_seq;
		if (SPI_processed == 1)
			start = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull)) + 1;
	}
	else if (!stream_start(&st, shard, &si, type, fcinfo, 3, 4, &start))
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "shard iterator type must be AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP or AFTER_CHECKPOINT, not \"%s\"",
				   type);

	it = iterator_encode(st.stream_id, shard, start);
	MemoryContextSwitchTo(call.cxt);
	result = cstring_to_text(it);
	msgq_call_leave(&call);
	PG_RETURN_TEXT_P(result);
}

/* ------------------------------------------------------------------------
 * get_records
 * ------------------------------------------------------------------------
 */

/*
 * The read of get_records(it, limit): its checks, the read (into rows,
 * copied or, given refs, by reference) and the three columns that every
 * row carries (next_shard_iterator, millis_behind_latest, child_shards),
 * made in out_cxt, which is current on return.
 */
static void
get_records_read(const char *it, int32 limit, ReadRef *refs, MemoryContext out_cxt,
				 StreamRows *rows, Datum *extra, bool *extra_null)
{
	MsgqCall	call;
	MsgqStream	st;
	ShardInfo	si;
	int32		stream_id,
				shard;
	int64		start,
				horizon,
				next;
	bool		next_null = false;
	Datum		children = (Datum) 0;
	bool		children_null = true;
	int64		behind = 0;

	msgq_call_enter(&call);
	if (limit < 1 || limit > STREAM_MAX_LIMIT)
		INVALID_ARGUMENT("record limit must be between 1 and %d, not %d", STREAM_MAX_LIMIT, limit);
	iterator_decode(it, &stream_id, &shard, &start);

	if (!stream_lookup_id(stream_id, false, &st) || !shard_get(stream_id, shard, &si))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
				 errmsg("the stream or shard of this iterator no longer exists"),
				 errdetail_internal("AWS error code: ResourceNotFoundException")));
	stream_check_access(&st, call.caller);
	if (!msgq_stream_metrics_read_begin(stream_id, shard, st.enforce_limits))
		throughput_exceeded(&st, shard_id_text(shard));

	/* the horizon first, then a fresh snapshot (read_only = false) */
	horizon = stream_horizon(stream_id, shard);
	stream_read_into(&st, shard, start, horizon, limit, STREAM_MAX_RESPONSE, refs, out_cxt, rows);
	next = rows->next;
	msgq_stream_metrics_read_end(stream_id, shard, (int64) rows->n, rows->bytes, true);
	behind = stream_behind(&st, rows);

	/* a closed shard read to its end has no next iterator, but children */
	if (si.closed && next > si.ending_seq)
	{
		next_null = true;
		if (SPI_execute_with_args("SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
								  "    'ShardId', 'shardId-' OPERATOR(pg_catalog.||) pg_catalog.lpad(c.shard_index::pg_catalog.text, 12, '0'),"
								  "    'ParentShards', pg_catalog.jsonb_build_array("
								  "        'shardId-' OPERATOR(pg_catalog.||) pg_catalog.lpad(c.parent_index::pg_catalog.text, 12, '0'))"
								  "      OPERATOR(pg_catalog.||) CASE WHEN c.adjacent_parent_index IS NULL"
								  "        THEN '[]'::pg_catalog.jsonb ELSE pg_catalog.jsonb_build_array("
								  "        'shardId-' OPERATOR(pg_catalog.||) pg_catalog.lpad(c.adjacent_parent_index::pg_catalog.text, 12, '0')) END,"
								  "    'HashKeyRange', pg_catalog.jsonb_build_object("
								  "        'StartingHashKey', c.starting_hash::pg_catalog.text,"
								  "        'EndingHashKey', c.ending_hash::pg_catalog.text))"
								  "  ORDER BY c.shard_index)"
								  "  FROM msgq.shard c"
								  " WHERE c.stream_id OPERATOR(pg_catalog.=) $1"
								  "   AND (c.parent_index OPERATOR(pg_catalog.=) $2"
								  "        OR c.adjacent_parent_index OPERATOR(pg_catalog.=) $2)",
								  2, (Oid[]) {INT4OID, INT4OID},
								  (Datum[]) {Int32GetDatum(stream_id), Int32GetDatum(shard)},
								  NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not list child shards");
		children = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &children_null);
	}

	MemoryContextSwitchTo(out_cxt);
	extra[0] = next_null ? (Datum) 0 :
		CStringGetTextDatum(iterator_encode(stream_id, shard, next));
	extra_null[0] = next_null;
	extra[1] = Int64GetDatum(behind);
	extra_null[1] = false;
	extra[2] = children_null ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(children));
	extra_null[2] = children_null;
	msgq_call_leave(&call);
	MemoryContextSwitchTo(out_cxt);
}

PG_FUNCTION_INFO_V1(msgq_get_records);
Datum
msgq_get_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *it = msgq_text_arg(fcinfo, 0);
	int32		limit = PG_ARGISNULL(1) ? STREAM_MAX_LIMIT : PG_GETARG_INT32(1);
	MemoryContext cxt = CurrentMemoryContext;
	StreamRows	rows;
	Datum		extra[3];
	bool		extra_null[3];

	msgq_check_preloaded();
	stream_rows_begin(fcinfo);
	get_records_read(it, limit, NULL, cxt, &rows, extra, extra_null);
	if (rows.n == 0)
	{
		Datum		v[7] = {0, 0, 0, 0, extra[0], extra[1], extra[2]};
		bool		nl[7] = {true, true, true, true, extra_null[0], extra_null[1], extra_null[2]};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
	else
		stream_read_emit(&rows, rsinfo, extra, extra_null, 3);
	stream_read_end(&rows);
	return (Datum) 0;
}

/*
 * get_records as a scan (records_scan.c): the same read, by reference,
 * then its rows one at a time, each fetched from its page as it is
 * returned, so that the first row goes out before the last is touched
 * and nothing is copied.  A scan can be read again from its start
 * (msgq_records_scan_rewind) without reading the stream again.
 */
struct MsgqRecordsScan
{
	MemoryContext cxt;
	MemoryContext read_cxt;		/* what one read made, emptied by the next */
	StreamRows	rows;
	ReadRef    *refs;
	int32		refs_size;
	uint64		pos;			/* the next row */
	int			cur;			/* the slice whose table is open, or -1 */
	Relation	heap;
	Buffer		buf;
	Datum		extra[3];
	bool		extra_null[3];
	SeqNumeric	num;
};

MsgqRecordsScan *
msgq_records_scan_create(MemoryContext cxt)
{
	MsgqRecordsScan *s = MemoryContextAllocZero(cxt, sizeof(MsgqRecordsScan));

	s->cxt = cxt;
	s->read_cxt = AllocSetContextCreate(cxt, "msgq get_records scan", ALLOCSET_SMALL_SIZES);
	s->cur = -1;
	s->buf = InvalidBuffer;
	return s;
}

static void
records_scan_close(MsgqRecordsScan *s)
{
	if (BufferIsValid(s->buf))
		ReleaseBuffer(s->buf);
	s->buf = InvalidBuffer;
	if (s->heap != NULL)
		table_close(s->heap, NoLock);
	s->heap = NULL;
	s->cur = -1;
}

/* Read the stream: it and limit as get_records takes them (NULL: absent). */
void
msgq_records_scan_begin(MsgqRecordsScan *s, const char *it, const int32 *limit)
{
	int32		lim = limit == NULL ? STREAM_MAX_LIMIT : *limit;
	MemoryContext old = CurrentMemoryContext;

	msgq_check_preloaded();
	records_scan_close(s);
	if (lim >= 1 && lim <= STREAM_MAX_LIMIT && s->refs_size < lim)
	{
		if (s->refs != NULL)
			pfree(s->refs);
		s->refs = MemoryContextAlloc(s->cxt, sizeof(ReadRef) * lim);
		s->refs_size = lim;
	}
	MemoryContextReset(s->read_cxt);
	get_records_read(it, lim, s->refs, s->read_cxt, &s->rows, s->extra, s->extra_null);
	MemoryContextSwitchTo(old);
	s->pos = 0;
}

/* The next row's seven columns; false after the last. */
bool
msgq_records_scan_next(MsgqRecordsScan *s, Datum *values, bool *nulls)
{
	ReadRef    *ref;
	int			j;

	for (j = 0; j < 3; j++)
	{
		values[4 + j] = s->extra[j];
		nulls[4 + j] = s->extra_null[j];
	}
	/* no records: one row with the next iterator alone, as get_records */
	if (s->rows.n == 0)
	{
		if (s->pos++ > 0)
			return false;
		for (j = 0; j < 4; j++)
		{
			values[j] = (Datum) 0;
			nulls[j] = true;
		}
		return true;
	}
	if (s->pos >= s->rows.n)
	{
		records_scan_close(s);
		return false;
	}
	ref = &s->refs[s->pos++];
	if (ref->slice != s->cur)
	{
		records_scan_close(s);
		s->heap = msgq_slice_open(s->rows.slice_ids[ref->slice]);
		s->cur = ref->slice;
	}
	values[0] = seq_numeric(ref->seq, &s->num);
	values[1] = TimestampTzGetDatum(ref->arrival);
	msgq_slice_fetch(s->heap, &s->buf, &ref->tid, &values[2], &values[3]);
	for (j = 0; j < 4; j++)
		nulls[j] = false;
	return true;
}

/* From the first row again, the same rows. */
void
msgq_records_scan_rewind(MsgqRecordsScan *s)
{
	records_scan_close(s);
	s->pos = 0;
}

void
msgq_records_scan_end(MsgqRecordsScan *s)
{
	records_scan_close(s);
}

/* ------------------------------------------------------------------------
 * put_records
 * ------------------------------------------------------------------------
 */

#define PUT_RECORDS_MAX			500
#define PUT_RECORDS_MAX_BYTES	(10 * 1048576)

static uint128
u128_parse(const char *s)
{
	uint128		v = 0;

	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (*s - '0');
	return v;
}

/* The open shards of a stream with their hash ranges (a handful of rows). */
static OpenShard *
stream_open_shards(int32 stream_id, int *n)
{
	OpenShard  *out;
	uint64		i;
	bool		isnull;

	if (SPI_execute_with_args("SELECT shard_index, starting_hash::pg_catalog.text, ending_hash::pg_catalog.text"
							  "  FROM msgq.shard WHERE stream_id OPERATOR(pg_catalog.=) $1"
							  "   AND ending_seq IS NULL",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(stream_id)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the open shards");
	out = palloc(sizeof(OpenShard) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];

		out[i].idx = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		out[i].lo = u128_parse(SPI_getvalue(tup, SPI_tuptable->tupdesc, 2));
		out[i].hi = u128_parse(SPI_getvalue(tup, SPI_tuptable->tupdesc, 3));
	}
	*n = (int) SPI_processed;
	return out;
}

/*
 * Put n checked records into the current slice, all or none, numbered in
 * entry order, and return one row per entry.  key_texts, when not NULL,
 * has the keys as text already.
 */
static void
stream_put_many(MsgqStream *st, char **keys, Datum *key_texts, char **explicit_keys,
				bytea **datas, int n, ReturnSetInfo *rsinfo, MemoryContext cxt)
{
	StreamCacheEntry *ce = stream_cached(st->stream_name);
	int32	   *put_shards;
	Datum	   *key_d;
	Datum	   *data_d;
	int32	   *route;
	int			i,
				j;
	int64	   *seqs;
	int64		slice_id;
	bool		enforce;
	SeqNumeric	num;
	bool	   *ok;
	int			m = 0;
	int32	   *dshard;			/* the shards written to, once each */
	int		   *dindex;			/* each entry's shard in dshard */
	Datum	   *dtext;			/* their shard ids */
	int64	   *drecords;
	int64	   *dbytes;
	int			nd = 0;

	if (stream_lock_for_put(st->stream_id))
		ce = stream_cached(st->stream_name);
	slice_id = ce->slice_id;
	enforce = ce->st.enforce_limits;
	put_shards = palloc(sizeof(int32) * n);
	key_d = palloc(sizeof(Datum) * n);
	data_d = palloc(sizeof(Datum) * n);
	route = palloc(sizeof(int32) * n);
	ok = palloc(sizeof(bool) * n);

	dshard = palloc(sizeof(int32) * n);
	dindex = palloc(sizeof(int) * n);
	drecords = palloc0(sizeof(int64) * n);
	dbytes = palloc0(sizeof(int64) * n);

	/*
	 * Route, and count each entry against its shard's limits: entry by
	 * entry when they are enforced (each entry is let through or refused),
	 * else once per shard with the sums.  Each shard is kept once in
	 * dshard, with what it was sent.
	 */
	for (i = 0; i < n; i++)
	{
		int64		size = (int64) VARSIZE_ANY_EXHDR(datas[i]) + (int64) strlen(keys[i]);

		route[i] = stream_route(ce, stream_hash_u128(keys[i],
													 explicit_keys ? explicit_keys[i] : NULL));
		ok[i] = !enforce || msgq_stream_metrics_put(st->stream_id, route[i], 1, size, true);
		if (!ok[i])
			continue;
		for (j = 0; j < nd && dshard[j] != route[i]; j++)
			;
		if (j == nd)
			dshard[nd++] = route[i];
		dindex[i] = j;
		drecords[j]++;
		dbytes[j] += size;
		put_shards[m] = route[i];
		key_d[m] = key_texts ? key_texts[i] : CStringGetTextDatum(keys[i]);
		data_d[m] = PointerGetDatum(datas[i]);
		m++;
	}
	if (!enforce)
		for (j = 0; j < nd; j++)
			(void) msgq_stream_metrics_put(st->stream_id, dshard[j], drecords[j], dbytes[j], false);
	seqs = palloc(sizeof(int64) * Max(m, 1));
	if (m > 0)
	{
		/* publish every shard before the numbers are allocated */
		for (j = 0; j < nd; j++)
			writer_publish(st->stream_id, dshard[j]);

		msgq_slice_put(slice_id, msgq_now(), m, put_shards, key_d, data_d, seqs);
		msgq_wakeup_at_commit(STREAM_WAIT_KEY(st->stream_id), false);
	}

	MemoryContextSwitchTo(cxt);
	dtext = palloc(sizeof(Datum) * Max(nd, 1));
	for (j = 0; j < nd; j++)
		dtext[j] = CStringGetTextDatum(shard_id_text(dshard[j]));
	for (i = 0, j = 0; i < n; i++)
	{
		Datum		v[4];
		bool		nl[4] = {false, false, true, true};

		if (ok[i])
		{
			v[0] = dtext[dindex[i]];
			v[1] = seq_numeric(seqs[j++], &num);
			v[2] = v[3] = (Datum) 0;
		}
		else
		{
			/* as Kinesis: a throttled entry has an error and no shard */
			nl[0] = nl[1] = true;
			nl[2] = nl[3] = false;
			v[0] = v[1] = (Datum) 0;
			v[2] = CStringGetTextDatum("ProvisionedThroughputExceededException");
			v[3] = CStringGetTextDatum(psprintf(THROUGHPUT_MESSAGE, shard_id_text(route[i]),
												st->stream_name));
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
}

static void
put_records_check_count(int n)
{
	if (n < 1 || n > PUT_RECORDS_MAX)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "put_records takes 1 to %d records, not %d", PUT_RECORDS_MAX, n);
}

static void
put_records_check_total(int64 total)
{
	if (total > PUT_RECORDS_MAX_BYTES)
		INVALID_ARGUMENT("the records of one put_records call must not exceed %d bytes, these have %lld",
						 PUT_RECORDS_MAX_BYTES, (long long) total);
}

/*
 * msgq.put_records(stream_name text, records jsonb): AWS entries
 * {"Data": base64, "PartitionKey": text, "ExplicitHashKey": text}.
 */
PG_FUNCTION_INFO_V1(msgq_put_records);
Datum
msgq_put_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	Jsonb	   *records = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	MsgqStream	st;
	int			n,
				i = 0;
	char	  **keys;
	char	  **explicit_keys;
	bytea	  **datas;
	int64		total = 0;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	stream_call_enter(&call, name, &st);

	if (records == NULL || !JB_ROOT_IS_ARRAY(records) || JB_ROOT_IS_SCALAR(records))
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "records must be a JSON array of records");
	n = JB_ROOT_COUNT(records);
	put_records_check_count(n);
	keys = palloc0(sizeof(char *) * n);
	explicit_keys = palloc0(sizeof(char *) * n);
	datas = palloc0(sizeof(bytea *) * n);

	/* check every entry first: a bad one fails the request, as in Kinesis */
	it = JsonbIteratorInit(&records->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue *f;
		JsonbValue	k;
		char	   *where;

		if (tok != WJB_ELEM)
			continue;
		where = psprintf("record %d: ", i + 1);
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "%sa record must be a JSON object", where);
		k.type = jbvString;
		k.val.string.val = "PartitionKey";
		k.val.string.len = strlen("PartitionKey");
		f = findJsonbValueFromContainer(v.val.binary.data, JB_FOBJECT, &k);
		if (f != NULL && f->type == jbvString)
			keys[i] = pnstrdup(f->val.string.val, f->val.string.len);
		else if (f != NULL && f->type != jbvNull)
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "%sPartitionKey must be a string", where);
		k.val.string.val = "ExplicitHashKey";
		k.val.string.len = strlen("ExplicitHashKey");
		f = findJsonbValueFromContainer(v.val.binary.data, JB_FOBJECT, &k);
		if (f != NULL && f->type == jbvString)
			explicit_keys[i] = pnstrdup(f->val.string.val, f->val.string.len);
		else if (f != NULL && f->type != jbvNull)
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "%sExplicitHashKey must be a string", where);
		k.val.string.val = "Data";
		k.val.string.len = strlen("Data");
		f = findJsonbValueFromContainer(v.val.binary.data, JB_FOBJECT, &k);
		if (f != NULL && f->type == jbvString)
		{
			int			len = f->val.string.len;
			bytea	   *b = palloc(VARHDRSZ + pg_b64_dec_len(len) + 1);
			int			dlen = pg_b64_decode(f->val.string.val, len, VARDATA(b), pg_b64_dec_len(len));

			if (dlen < 0)
				MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
						   "%sData must be base64", where);
			SET_VARSIZE(b, VARHDRSZ + dlen);
			datas[i] = b;
		}
		else if (f != NULL && f->type != jbvNull)
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "%sData must be a base64 string", where);
		stream_check_record(keys[i], datas[i], where);
		if (explicit_keys[i] != NULL)
			(void) stream_hash_u128(keys[i], explicit_keys[i]);
		total += VARSIZE_ANY_EXHDR(datas[i]) + strlen(keys[i]);
		i++;
	}
	put_records_check_total(total);
	stream_put_many(&st, keys, NULL, explicit_keys, datas, n, rsinfo, call.cxt);
	msgq_call_leave(&call);
	return (Datum) 0;
}

/*
 * msgq.put_records(stream_name text, partition_keys text[], data bytea[]):
 * the same for SQL callers, the two arrays of one length, in entry order.
 */
PG_FUNCTION_INFO_V1(msgq_put_records_array);
Datum
msgq_put_records_array(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqStream	st;
	Datum	   *kd,
			   *dd;
	bool	   *kn,
			   *dn;
	int			nk,
				nd,
				i;
	char	  **keys;
	bytea	  **datas;
	int64		total = 0;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	stream_call_enter(&call, name, &st);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "partition_keys and data must not be NULL");
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT, &kd, &kn, &nk);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), BYTEAOID, -1, false, TYPALIGN_INT, &dd, &dn, &nd);
	if (nk != nd)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "partition_keys has %d elements and data %d: they must match", nk, nd);
	put_records_check_count(nk);
	keys = palloc(sizeof(char *) * nk);
	datas = palloc(sizeof(bytea *) * nk);
	for (i = 0; i < nk; i++)
	{
		keys[i] = kn[i] ? NULL : TextDatumGetCString(kd[i]);
		datas[i] = dn[i] ? NULL : DatumGetByteaPP(dd[i]);
		stream_check_record(keys[i], datas[i], psprintf("record %d: ", i + 1));
		total += VARSIZE_ANY_EXHDR(datas[i]) + strlen(keys[i]);
	}
	put_records_check_total(total);
	stream_put_many(&st, keys, kd, NULL, datas, nk, rsinfo, call.cxt);
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * describe_stream_summary, checkpoint
 * ------------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(msgq_describe_stream_summary);
Datum
msgq_describe_stream_summary(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqStream	st;
	Datum		d;
	bool		isnull;

	stream_call_enter(&call, name, &st);
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_build_object("
							  "  'StreamName', s.stream_name,"
							  "  'StreamARN', 'arn:aws:kinesis:msgq:' OPERATOR(pg_catalog.||)"
							  "               pg_catalog.current_database() OPERATOR(pg_catalog.||)"
							  "               ':stream/' OPERATOR(pg_catalog.||) s.stream_name,"
							  "  'StreamStatus', 'ACTIVE',"
							  "  'StreamModeDetails', pg_catalog.jsonb_build_object('StreamMode', s.stream_mode),"
							  "  'RetentionPeriodHours', s.retention_hours,"
							  "  'StreamCreationTimestamp', s.created_at,"
							  "  'EncryptionType', 'NONE',"
							  "  'EnhancedMonitoring', pg_catalog.jsonb_build_array("
							  "      pg_catalog.jsonb_build_object('ShardLevelMetrics', pg_catalog.jsonb_build_array())),"
							  "  'OpenShardCount', (SELECT pg_catalog.count(*) FROM msgq.shard h"
							  "                      WHERE h.stream_id OPERATOR(pg_catalog.=) s.stream_id"
							  "                        AND h.ending_seq IS NULL),"
							  "  'ConsumerCount', (SELECT pg_catalog.count(*) FROM msgq.stream_consumer c"
							  "                     WHERE c.stream_id OPERATOR(pg_catalog.=) s.stream_id),"
							  "  'EnforceShardLimits', s.enforce_shard_limits)"
							  "  FROM msgq.stream s WHERE s.stream_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(st.stream_id)},
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not describe stream");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	MemoryContextSwitchTo(call.cxt);
	d = PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
	msgq_call_leave(&call);
	PG_RETURN_DATUM(d);
}

/* Where record seq of a shard stands (stream_record_lookup). */
typedef enum RecordLookup
{
	RECORD_FOUND,				/* stored; *arrival is set */
	RECORD_ABSENT,				/* its slice is there, the record is not */
	RECORD_NO_SLICE,			/* no slice holds the number */
	RECORD_DROPPED				/* its slice was dropped while we looked */
} RecordLookup;

static RecordLookup
stream_record_lookup(MsgqStream *st, int32 shard, int64 seq, TimestampTz *arrival)
{
	MsgqSlice  *sl;
	int			nsl;
	bool		isnull;

	/* slices do not overlap: at most one holds the number */
	sl = msgq_slices_list(st->stream_id, seq, seq + 1, 0, false, &nsl);
	if (nsl == 0)
		return RECORD_NO_SLICE;
	if (!msgq_slice_lock(sl[0].slice_id))
		return RECORD_DROPPED;
	if (SPI_execute_plan(msgq_slice_plan(sl[0].slice_id, SLICE_EXISTS),
						 (Datum[]) {Int32GetDatum(shard), Int64GetDatum(seq)},
						 NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up record");
	if (SPI_processed == 0)
		return RECORD_ABSENT;
	*arrival = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
	return RECORD_FOUND;
}

/*
 * Is seq a record of the shard?  A number below every slice of the stream
 * belonged to a slice dropped at the end of its retention: it is taken if
 * it is in the shard's range, so a consumer that falls behind retention
 * can still checkpoint what it read.
 */
static bool
stream_record_exists(MsgqStream *st, int32 shard, ShardInfo *si, int64 seq)
{
	MsgqSlice  *sl;
	int			nsl;
	TimestampTz arrival;

	if (seq < si->starting_seq || (si->closed && seq > si->ending_seq))
		return false;
	switch (stream_record_lookup(st, shard, seq, &arrival))
	{
		case RECORD_FOUND:
		case RECORD_DROPPED:	/* dropped meanwhile: expired */
			return true;
		case RECORD_ABSENT:
			return false;
		case RECORD_NO_SLICE:
			break;
	}
	/* no slice holds the number: below the oldest one, or not yet written */
	sl = msgq_slices_list(st->stream_id, 0, PG_INT64_MAX, 0, false, &nsl);
	return nsl > 0 && seq < sl[0].start_seq;
}

/*
 * msgq.checkpoint(stream_name, consumer_group, shard_id, sequence_number):
 * record, in the caller's transaction, that the group has processed the
 * shard up to that record.  Written with the consumer's own work, it makes
 * the consumption exactly once: both commit or neither.  The number must
 * be a record of the shard; a checkpoint never moves backwards.
 */
PG_FUNCTION_INFO_V1(msgq_checkpoint);
Datum
msgq_checkpoint(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *group = msgq_text_arg(fcinfo, 1);
	char	   *shard_text = msgq_text_arg(fcinfo, 2);
	MsgqCall	call;
	MsgqStream	st;
	ShardInfo	si;
	int32		shard;
	int64		seq;
	int			glen;

	stream_call_enter(&call, name, &st);
	glen = group ? pg_mbstrlen(group) : 0;
	if (glen < 1 || glen > STREAM_MAX_NAME)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "consumer group names have 1 to %d characters", STREAM_MAX_NAME);
	shard = shard_require(&st, shard_text, &si);
	if (PG_ARGISNULL(3))
		INVALID_ARGUMENT("a checkpoint needs a sequence number");
	seq = numeric_seq(PG_GETARG_DATUM(3), "SequenceNumber");

	/* the five-argument form: only by the worker that holds the lease */
	if (PG_NARGS() > 4)
	{
		if (PG_ARGISNULL(4))
			INVALID_ARGUMENT("a checkpoint by a worker needs its worker id");
		msgq_group_lease_check(st.stream_id, group, shard,
							   TextDatumGetCString(PG_GETARG_DATUM(4)));
	}

	/* a closed shard's ending sequence number is its SHARD_END */
	if (!(si.closed && seq == si.ending_seq) &&
		!stream_record_exists(&st, shard, &si, seq))
		INVALID_ARGUMENT("sequence number %lld is not a record of shard %s",
						 (long long) seq, shard_id_text(shard));

	/* one statement: the row lock serializes two checkpoints of one group */
	if (SPI_execute_with_args("INSERT INTO msgq.stream_checkpoint AS c"
							  "   (stream_id, consumer_group, shard_index, seq, updated_at)"
							  " VALUES ($1, $2, $3, $4, $5)"
							  " ON CONFLICT (stream_id, consumer_group, shard_index)"
							  " DO UPDATE SET seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at"
							  "  WHERE c.seq OPERATOR(pg_catalog.<=) EXCLUDED.seq",
							  5, (Oid[]) {INT4OID, TEXTOID, INT4OID, INT8OID, TIMESTAMPTZOID},
							  (Datum[]) {Int32GetDatum(st.stream_id), CStringGetTextDatum(group),
							  Int32GetDatum(shard), Int64GetDatum(seq), TimestampTzGetDatum(msgq_now())},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write checkpoint");
	if (SPI_processed == 0)
		INVALID_ARGUMENT("the checkpoint of group \"%s\" on shard %s is already past %lld",
						 group, shard_id_text(shard), (long long) seq);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Retention period
 * ------------------------------------------------------------------------
 */

#define STREAM_MIN_RETENTION	24
#define STREAM_MAX_RETENTION	8760

static void
stream_set_retention(FunctionCallInfo fcinfo, bool increase)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqStream	st;
	int32		hours;
	TimestampTz now;

	stream_call_enter(&call, name, &st);
	if (PG_ARGISNULL(1))
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "a retention period is required");
	hours = PG_GETARG_INT32(1);
	if (hours < STREAM_MIN_RETENTION || hours > STREAM_MAX_RETENTION)
		INVALID_ARGUMENT("the retention period must be between %d and %d hours, not %d",
						 STREAM_MIN_RETENTION, STREAM_MAX_RETENTION, hours);
	if (increase && hours <= st.retention_hours)
		INVALID_ARGUMENT("the requested retention period (%d hours) must be greater than the current one (%d hours)",
						 hours, st.retention_hours);
	if (!increase && hours >= st.retention_hours)
		INVALID_ARGUMENT("the requested retention period (%d hours) must be less than the current one (%d hours)",
						 hours, st.retention_hours);

	/*
	 * What the old period had already hidden stays hidden: the watermark
	 * only moves forward, to the cutoff of the period that ends.
	 */
	now = msgq_now();
	if (SPI_execute_with_args("UPDATE msgq.stream SET retention_hours = $2,"
							  "       trimmed_before = GREATEST(trimmed_before, $3)"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1",
							  3, (Oid[]) {INT4OID, INT4OID, TIMESTAMPTZOID},
							  (Datum[]) {Int32GetDatum(st.stream_id), Int32GetDatum(hours),
							  TimestampTzGetDatum(now - (TimestampTz) st.retention_hours * 3600 * USECS_PER_SEC)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not change the retention period");
	msgq_stream_cache_invalidate();
	msgq_call_leave(&call);
}

PG_FUNCTION_INFO_V1(msgq_increase_stream_retention_period);
Datum
msgq_increase_stream_retention_period(PG_FUNCTION_ARGS)
{
	stream_set_retention(fcinfo, true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(msgq_decrease_stream_retention_period);
Datum
msgq_decrease_stream_retention_period(PG_FUNCTION_ARGS)
{
	stream_set_retention(fcinfo, false);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * For event source mappings (esm.c)
 * ------------------------------------------------------------------------
 */

/* A stream by name or ARN, checked for the role; false if there is none. */
bool
msgq_stream_resolve(const char *ref, Oid roleid, int32 *stream_id, char **stream_name)
{
	MsgqStream	st;
	const char *name = stream_ref_name(ref);

	if (name == NULL)
		return false;
	if (SPI_execute_plan(msgq_plan(&stream_plan_lookup,
								   "SELECT stream_id, stream_name, owner::oid, stream_mode, retention_hours,"
								   "       trimmed_before, enforce_shard_limits"
								   "  FROM msgq.stream WHERE stream_name OPERATOR(pg_catalog.=) $1",
								   1, (Oid[]) {TEXTOID}),
						 (Datum[]) {CStringGetTextDatum(name)}, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up stream");
	if (!stream_from_tuple(&st))
		return false;
	stream_check_access(&st, roleid);
	*stream_id = st.stream_id;
	*stream_name = st.stream_name;
	return true;
}

char *
msgq_stream_arn(const char *stream_name)
{
	return psprintf("arn:aws:kinesis:msgq:%s:stream/%s", get_database_name(MyDatabaseId),
					stream_name);
}

/* a key of the object being built */
static void
jb_push_key(JsonbParseState **state, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
}

/* a key and its string value (len -1: NUL-terminated) */
static void
jb_push_str(JsonbParseState **state, const char *key, const char *val, int len)
{
	JsonbValue	v;

	jb_push_key(state, key);
	v.type = jbvString;
	v.val.string.val = (char *) val;
	v.val.string.len = len < 0 ? strlen(val) : len;
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * Up to limit records of a shard from start, below its safe horizon, as a
 * Lambda Kinesis event {"Records": [...]} (NULL when there are none; the
 * records that arrived before min_arrival are left out).  *b says what
 * was read: how many, the first and last numbers and arrivals, and where
 * the next read starts.
 */
Jsonb *
msgq_stream_batch(int32 stream_id, int32 shard, int64 start, int32 limit,
				  TimestampTz min_arrival, TimestampTz older_than, const char *invoker,
				  int lane, int nlanes, MsgqStreamBatch *b)
{
	MsgqStream	st;
	StreamRows	rows;
	JsonbParseState *state = NULL;
	JsonbValue *res;
	Jsonb	   *event;
	int32		scan;
	char	   *arn;
	char	   *shard_id = shard_id_text(shard);
	uint64		i;

	memset(b, 0, sizeof(*b));
	if (!stream_lookup_id(stream_id, true, &st))
		return NULL;
	arn = msgq_stream_arn(st.stream_name);
	/*
	 * With lanes, up to nlanes times the limit is read (at most 10,000), and
	 * the lane's records kept, up to the limit: b->last_seq is then where
	 * every record of the lane is covered, the last one kept if the limit
	 * was reached, else the last one read.
	 */
	scan = nlanes > 1 ? (int32) Min((int64) limit * nlanes, STREAM_MAX_LIMIT) : limit;
	stream_read(&st, shard, start, stream_horizon(st.stream_id, shard), scan, &rows);
	b->next = rows.next;
	b->more = rows.n == (uint64) scan;

	/*
	 * The event is built as a JsonbValue tree, each object's keys pushed in
	 * jsonb's own order (shorter first, then bytewise), so that converting
	 * it sorts nothing and no JSON text is parsed.
	 */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jb_push_key(&state, "Records");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; i < rows.n; i++)
	{
		ReadRecord *rec = &read_recs[i];
		struct varlena *key = (struct varlena *) (read_buf + rec->key);
		struct varlena *data = (struct varlena *) (read_buf + rec->data);
		int			dlen = VARSIZE_ANY_EXHDR(data);
		char	   *b64;
		int			blen;

		if (nlanes > 1)
		{
			if (b->n == limit)
			{
				b->more = true;
				break;			/* the lane's limit: covered up to its last record */
			}
			if ((int) (hash_bytes((const unsigned char *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) %
					   (uint32) nlanes) != lane)
			{
				b->last_seq = rec->seq;
				b->last_arrival = rec->arrival;
				continue;
			}
		}
		b->last_seq = rec->seq;
		b->last_arrival = rec->arrival;
		if (rec->arrival < min_arrival)
			continue;
		if (b->n == 0)
		{
			b->first_seq = rec->seq;
			b->first_arrival = rec->arrival;
		}
		/* the leading records that arrived before older_than */
		if (rec->arrival < older_than && b->n_old == b->n)
		{
			b->n_old++;
			b->last_old_seq = rec->seq;
			b->last_old_arrival = rec->arrival;
		}
		b->n++;
		b64 = palloc(pg_b64_enc_len(dlen) + 1);
		blen = pg_b64_encode(VARDATA_ANY(data), dlen, b64, pg_b64_enc_len(dlen));
		b64[Max(blen, 0)] = '\0';

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		jb_push_str(&state, "eventID", psprintf("%s:" INT64_FORMAT, shard_id, rec->seq), -1);
		jb_push_key(&state, "kinesis");
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		jb_push_str(&state, "data", b64, Max(blen, 0));
		jb_push_str(&state, "partitionKey", VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
		jb_push_str(&state, "sequenceNumber", psprintf(INT64_FORMAT, rec->seq), -1);
		jb_push_str(&state, "kinesisSchemaVersion", "1.0", 3);
		/* seconds since the epoch with milliseconds, as a number */
		jb_push_key(&state, "approximateArrivalTimestamp");
		{
			JsonbValue	v;

			v.type = jbvNumeric;
			v.val.numeric = int64_div_fast_to_numeric((rec->arrival - SetEpochTimestamp()) / 1000, 3);
			pushJsonbValue(&state, WJB_VALUE, &v);
		}
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		jb_push_str(&state, "awsRegion", "msgq", 4);
		jb_push_str(&state, "eventName", "aws:kinesis:record", -1);
		jb_push_str(&state, "eventSource", "aws:kinesis", -1);
		jb_push_str(&state, "eventVersion", "1.0", 3);
		jb_push_str(&state, "eventSourceARN", arn, -1);
		jb_push_str(&state, "invokeIdentityArn", invoker, -1);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	b->read = (int) rows.n;
	/* the tree points into the read buffer: convert it before it goes */
	event = b->n == 0 ? NULL : JsonbValueToJsonb(res);
	stream_read_end(&rows);
	return event;
}

/*
 * The records of a shard from start on (at most limit), each given to fn
 * with its data and partition key detoasted, for the delivery streams that
 * read a stream (firehose.c).  Returns where the next read starts, or -1
 * when the stream is gone; *more says the read stopped at its limit.
 */
int64
msgq_stream_read_records(int32 stream_id, int32 shard, int64 start, int32 limit,
						 MsgqStreamRecordFn fn, void *arg, bool *more)
{
	MsgqStream	st;
	StreamRows	rows;
	uint64		i;
	int64		next;

	*more = false;
	if (!stream_lookup_id(stream_id, true, &st))
		return -1;
	stream_read(&st, shard, start, stream_horizon(st.stream_id, shard), limit, &rows);
	for (i = 0; i < rows.n; i++)
	{
		ReadRecord *rec = &read_recs[i];

		fn(arg, rec->seq, rec->arrival, (struct varlena *) (read_buf + rec->key),
		   (struct varlena *) (read_buf + rec->data));
	}
	*more = rows.n == (uint64) limit;
	next = rows.next;
	stream_read_end(&rows);
	return next;
}

/* ------------------------------------------------------------------------
 * Consumers and subscribe_to_shard
 * ------------------------------------------------------------------------
 */

static char *
consumer_arn(MsgqStream *st, const char *consumer)
{
	return psprintf("arn:aws:kinesis:msgq:%s:stream/%s/consumer/%s",
					get_database_name(MyDatabaseId), st->stream_name, consumer);
}

static void
consumer_check_name(const char *name)
{
	stream_check_name_kind(name, "consumer");
}

PG_FUNCTION_INFO_V1(msgq_register_stream_consumer);
Datum
msgq_register_stream_consumer(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *consumer = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	MsgqStream	st;
	bool		isnull;
	text	   *result;

	stream_call_enter(&call, name, &st);
	consumer_check_name(consumer);
	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM msgq.stream_consumer"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(st.stream_id)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count consumers");
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) >=
		STREAM_MAX_CONSUMERS)
		MSGQ_ERROR("LimitExceededException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "stream \"%s\" already has %d consumers", st.stream_name, STREAM_MAX_CONSUMERS);
	if (SPI_execute_with_args("INSERT INTO msgq.stream_consumer (stream_id, consumer_name, created_at)"
							  " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
							  3, (Oid[]) {INT4OID, TEXTOID, TIMESTAMPTZOID},
							  (Datum[]) {Int32GetDatum(st.stream_id), CStringGetTextDatum(consumer),
							  TimestampTzGetDatum(msgq_now())},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not register consumer");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_IN_USE),
				 errmsg("consumer \"%s\" of stream \"%s\" already exists", consumer, st.stream_name),
				 errdetail_internal("AWS error code: ResourceInUseException")));
	MemoryContextSwitchTo(call.cxt);
	result = cstring_to_text(consumer_arn(&st, consumer));
	msgq_call_leave(&call);
	PG_RETURN_TEXT_P(result);
}

static void
consumer_not_found(MsgqStream *st, const char *consumer)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_RESOURCE_NOT_FOUND),
			 errmsg("consumer \"%s\" of stream \"%s\" not found",
					consumer ? consumer : "", st->stream_name),
			 errdetail_internal("AWS error code: ResourceNotFoundException")));
}

PG_FUNCTION_INFO_V1(msgq_deregister_stream_consumer);
Datum
msgq_deregister_stream_consumer(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *consumer = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	MsgqStream	st;

	stream_call_enter(&call, name, &st);
	if (SPI_execute_with_args("DELETE FROM msgq.stream_consumer"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1"
							  "   AND consumer_name OPERATOR(pg_catalog.=) $2",
							  2, (Oid[]) {INT4OID, TEXTOID},
							  (Datum[]) {Int32GetDatum(st.stream_id),
							  CStringGetTextDatum(consumer ? consumer : "")},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not deregister consumer");
	if (SPI_processed == 0)
		consumer_not_found(&st, consumer);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(msgq_list_stream_consumers);
Datum
msgq_list_stream_consumers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqStream	st;
	uint64		i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	stream_call_enter(&call, name, &st);
	if (SPI_execute_with_args("SELECT consumer_name, created_at FROM msgq.stream_consumer"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1 ORDER BY consumer_name",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(st.stream_id)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list consumers");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		v[4];
		bool		nl[4] = {false, false, false, false};
		char	   *c = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &isnull));

		v[0] = CStringGetTextDatum(c);
		v[1] = CStringGetTextDatum(consumer_arn(&st, c));
		v[2] = CStringGetTextDatum("ACTIVE");
		v[3] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/*
 * Enhanced fan-out's budget: a subscription of a stream that enforces
 * limits reads at most 2 MiB per second, of its own, whatever other
 * consumers and get_records read.  read_bytes is what it read counting
 * from second read_second; a call that reads past the budget borrows from
 * the following seconds.  What it still owes at second `second`:
 */
static int64
subscribe_used(int64 read_second, int64 read_bytes, int64 second)
{
	if (second <= read_second)
		return read_bytes;
	return Max(0, read_bytes - (second - read_second) * (int64) MSGQ_SUBSCRIBE_READ_BYTES);
}

/*
 * msgq.subscribe_to_shard(stream_name, consumer_name, shard_id,
 *		starting_position, starting_sequence_number, at_timestamp,
 *		wait_time_seconds, record_limit)
 *
 * Kinesis pushes a subscription's records for five minutes; msgq keeps the
 * subscription as a row (consumer, shard, next position, start time) and
 * each call returns the records from that position, waiting up to
 * wait_time_seconds (at most 20: a statement never pins the xmin horizon
 * for long) for the commit of a put when there are none.  The position
 * advances in the caller's transaction: a call that rolls back is
 * delivered again.  A subscription older than five minutes, or a first
 * call, starts from starting_position (LATEST, TRIM_HORIZON,
 * AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP); while a
 * subscription runs, the starting arguments are ignored.
 */
PG_FUNCTION_INFO_V1(msgq_subscribe_to_shard);
Datum
msgq_subscribe_to_shard(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *consumer = msgq_text_arg(fcinfo, 1);
	char	   *shard_text = msgq_text_arg(fcinfo, 2);
	char	   *type = PG_ARGISNULL(3) ? pstrdup("LATEST") : msgq_text_arg(fcinfo, 3);
	int32		wait = PG_ARGISNULL(6) ? STREAM_MAX_WAIT_SECS : PG_GETARG_INT32(6);
	int32		limit = PG_ARGISNULL(7) ? STREAM_MAX_LIMIT : PG_GETARG_INT32(7);
	MsgqCall	call;
	MsgqStream	st;
	ShardInfo	si;
	int32		shard;
	int64		position;
	TimestampTz now = msgq_now();
	TimestampTz deadline;
	bool		isnull;
	StreamRows	rows;
	uint64		n = 0;
	int64		horizon;
	int64		next;
	int64		behind = 0;
	int64		second;
	int64		read_second;
	int64		read_bytes;
	bool		throttled = false;

	msgq_check_preloaded();
	stream_rows_begin(fcinfo);
	stream_call_enter(&call, name, &st);
	if (wait < 0 || wait > STREAM_MAX_WAIT_SECS)
		INVALID_ARGUMENT("wait time must be between 0 and %d seconds, not %d",
						 STREAM_MAX_WAIT_SECS, wait);
	if (limit < 1 || limit > STREAM_MAX_LIMIT)
		INVALID_ARGUMENT("record limit must be between 1 and %d, not %d", STREAM_MAX_LIMIT, limit);
	msgq_check_clock_runs(wait);
	if (wait > 0 && XactIsoLevel != XACT_READ_COMMITTED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("waiting for records requires the READ COMMITTED isolation level"),
				 errhint("Call subscribe_to_shard with wait_time_seconds => 0, or use READ COMMITTED.")));
	shard = shard_require(&st, shard_text, &si);

	/* the consumer's subscription of this shard, locked for this call */
	if (SPI_execute_with_args("SELECT c.consumer_name, s.position, s.started_at,"
							  "       s.read_second, s.read_bytes"
							  "  FROM msgq.stream_consumer c"
							  "  LEFT JOIN msgq.stream_subscription s"
							  "    ON s.stream_id OPERATOR(pg_catalog.=) c.stream_id"
							  "   AND s.consumer_name OPERATOR(pg_catalog.=) c.consumer_name"
							  "   AND s.shard_index OPERATOR(pg_catalog.=) $3"
							  " WHERE c.stream_id OPERATOR(pg_catalog.=) $1"
							  "   AND c.consumer_name OPERATOR(pg_catalog.=) $2"
							  "   FOR UPDATE OF c",
							  3, (Oid[]) {INT4OID, TEXTOID, INT4OID},
							  (Datum[]) {Int32GetDatum(st.stream_id),
							  CStringGetTextDatum(consumer ? consumer : ""), Int32GetDatum(shard)},
							  NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read subscription");
	if (SPI_processed == 0)
		consumer_not_found(&st, consumer);
	read_second = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	if (isnull)
		read_second = 0;
	read_bytes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	if (isnull)
		read_bytes = 0;
	position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull ||
		now - DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)) >
		(TimestampTz) SUBSCRIPTION_SECS * USECS_PER_SEC)
	{
		/* a new subscription: where to start */
		if (!stream_start(&st, shard, &si, type, fcinfo, 4, 5, &position))
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "starting position must be AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST or AT_TIMESTAMP, not \"%s\"",
					   type);
		if (SPI_execute_with_args("INSERT INTO msgq.stream_subscription AS s"
								  "   (stream_id, consumer_name, shard_index, position, started_at)"
								  " VALUES ($1, $2, $3, $4, $5)"
								  " ON CONFLICT (stream_id, consumer_name, shard_index)"
								  " DO UPDATE SET position = EXCLUDED.position, started_at = EXCLUDED.started_at",
								  5, (Oid[]) {INT4OID, TEXTOID, INT4OID, INT8OID, TIMESTAMPTZOID},
								  (Datum[]) {Int32GetDatum(st.stream_id), CStringGetTextDatum(consumer),
								  Int32GetDatum(shard), Int64GetDatum(position), TimestampTzGetDatum(now)},
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not start subscription");
	}

	/*
	 * Read, waiting for a put's commit when there is nothing, or, when the
	 * stream enforces limits and this consumer's budget for the shard is
	 * spent, for the second in which it has some again.
	 */
	deadline = now + (TimestampTz) wait * USECS_PER_SEC;
	second = msgq_stream_window_second();
	for (;;)
	{
		uint64		seen = msgq_wait_counter(STREAM_WAIT_KEY(st.stream_id));
		TimestampTz t;
		TimestampTz wake;
		int64		avail = STREAM_MAX_RESPONSE;

		if (st.enforce_limits)
			avail = MSGQ_SUBSCRIBE_READ_BYTES - subscribe_used(read_second, read_bytes, second);
		horizon = stream_horizon(st.stream_id, shard);
		/* out of budget: only look whether a record waits */
		throttled = avail <= 0;
		stream_read_capped(&st, shard, position, horizon, throttled ? 1 : limit, avail, &rows);
		next = rows.next;
		n = rows.n;
		t = msgq_now();
		if ((n > 0 && !throttled) || t >= deadline)
			break;
		stream_read_end(&rows);
		wake = Min(deadline, t + (TimestampTz) msgq_wait_recheck_interval_ms * 1000);
		if (throttled)
			wake = Min(wake, (second + 1) * USECS_PER_SEC);
		msgq_wait_sleep(STREAM_WAIT_KEY(st.stream_id), seen,
						(long) Max(1, (wake - t + 999) / 1000));
		CHECK_FOR_INTERRUPTS();
		/* after a wait, the budget is the clock's second's */
		second = Max(second, msgq_now() / USECS_PER_SEC);
	}

	if (throttled)
	{
		/* nothing returned: the subscription stays where it is */
		behind = n > 0 ? Max(1, (msgq_now() - rows.first_arrival) / 1000) : 0;
		next = position;
		n = 0;
	}
	else
	{
		behind = stream_behind(&st, &rows);
		/* cut short by the budget: the records left make it behind */
		if (st.enforce_limits && rows.full && rows.next < horizon)
			behind = Max(1, behind);
	}
	if (st.enforce_limits)
	{
		read_bytes = subscribe_used(read_second, read_bytes, second) + (throttled ? 0 : rows.bytes);
		read_second = second;
	}
	if (!throttled)
		msgq_stream_metrics_read_end(st.stream_id, shard, (int64) rows.n, rows.bytes, false);

	/* output first: the update below replaces SPI's tuple table */
	MemoryContextSwitchTo(call.cxt);
	if (n == 0)
	{
		Datum		v[6] = {0, 0, 0, 0, int64_numeric(next), Int64GetDatum(behind)};
		bool		nl[6] = {true, true, true, true, false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
	else
	{
		Datum		extra[2] = {int64_numeric(next), Int64GetDatum(behind)};
		bool		extra_null[2] = {false, false};

		stream_read_emit(&rows, rsinfo, extra, extra_null, 2);
	}
	stream_read_end(&rows);

	/* advance the subscription in the caller's transaction */
	if (SPI_execute_with_args("UPDATE msgq.stream_subscription"
							  "   SET position = $4, read_second = $5, read_bytes = $6"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1"
							  "   AND consumer_name OPERATOR(pg_catalog.=) $2"
							  "   AND shard_index OPERATOR(pg_catalog.=) $3",
							  6, (Oid[]) {INT4OID, TEXTOID, INT4OID, INT8OID, INT8OID, INT8OID},
							  (Datum[]) {Int32GetDatum(st.stream_id), CStringGetTextDatum(consumer),
							  Int32GetDatum(shard), Int64GetDatum(next),
							  Int64GetDatum(read_second), Int64GetDatum(read_bytes)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not advance subscription");
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * Resharding: split_shard, merge_shards
 * ------------------------------------------------------------------------
 */

/* An open shard's hash range, for resharding. */
typedef struct ShardRow
{
	int32		idx;
	uint128		lo;
	uint128		hi;
} ShardRow;

/* Take the stream exclusively: wait for every open writer, hold new ones. */
static void
stream_lock_for_reshard(int32 stream_id)
{
	LockDatabaseObject(msgq_stream_relid(), (Oid) stream_id, 0, AccessExclusiveLock);
}

/* Close shards and add children, numbered after everything allocated so far. */
static void
reshard(MsgqStream *st, int32 *closing, int nclosing, uint128 *lo, uint128 *hi,
		int32 *parent, int32 *adjacent, int nchildren)
{
	int64		boundary = msgq_stream_seq_floor();
	int32		next_index;
	bool		isnull;
	int			i;

	for (i = 0; i < nclosing; i++)
		if (SPI_execute_with_args("UPDATE msgq.shard SET ending_seq = $3, closed_at = msgq.now()"
								  " WHERE stream_id OPERATOR(pg_catalog.=) $1"
								  "   AND shard_index OPERATOR(pg_catalog.=) $2",
								  3, (Oid[]) {INT4OID, INT4OID, INT8OID},
								  (Datum[]) {Int32GetDatum(st->stream_id), Int32GetDatum(closing[i]),
								  Int64GetDatum(boundary - 1)},
								  NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not close shard");
	if (SPI_execute_with_args("UPDATE msgq.stream SET next_shard_index = next_shard_index OPERATOR(pg_catalog.+) $2"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1 RETURNING next_shard_index",
							  2, (Oid[]) {INT4OID, INT4OID},
							  (Datum[]) {Int32GetDatum(st->stream_id), Int32GetDatum(nchildren)},
							  NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not number new shards");
	next_index = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) - nchildren;
	for (i = 0; i < nchildren; i++)
	{
		Datum		v[7];
		char		nl[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

		v[0] = Int32GetDatum(st->stream_id);
		v[1] = Int32GetDatum(next_index + i);
		v[2] = Int32GetDatum(parent[i]);
		v[3] = Int32GetDatum(adjacent[i]);
		nl[3] = adjacent[i] < 0 ? 'n' : ' ';
		v[4] = u128_numeric(lo[i]);
		v[5] = u128_numeric(hi[i]);
		v[6] = Int64GetDatum(boundary);
		if (SPI_execute_with_args("INSERT INTO msgq.shard (stream_id, shard_index, parent_index,"
								  "   adjacent_parent_index, starting_hash, ending_hash, starting_seq)"
								  " VALUES ($1, $2, $3, $4, $5, $6, $7)",
								  7, (Oid[]) {INT4OID, INT4OID, INT4OID, INT4OID, NUMERICOID, NUMERICOID, INT8OID},
								  v, nl, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not create shard");
	}
	msgq_stream_cache_invalidate();
	/* readers waiting on a closed shard learn of its end (and children) at once */
	msgq_wakeup_at_commit(STREAM_WAIT_KEY(st->stream_id), false);
}

static int32
reshard_shard_arg(MsgqStream *st, const char *text, ShardRow *r)
{
	ShardInfo	si;
	int32		idx = shard_require(st, text, &si);

	if (si.closed)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_IN_USE),
				 errmsg("shard %s of stream \"%s\" is closed", shard_id_text(idx), st->stream_name),
				 errdetail_internal("AWS error code: ResourceInUseException")));
	if (SPI_execute_with_args("SELECT starting_hash::pg_catalog.text, ending_hash::pg_catalog.text"
							  "  FROM msgq.shard WHERE stream_id OPERATOR(pg_catalog.=) $1"
							  "   AND shard_index OPERATOR(pg_catalog.=) $2",
							  2, (Oid[]) {INT4OID, INT4OID},
							  (Datum[]) {Int32GetDatum(st->stream_id), Int32GetDatum(idx)},
							  NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read shard");
	r->idx = idx;
	r->lo = u128_parse(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	r->hi = u128_parse(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	return idx;
}

/*
 * msgq.split_shard(stream_name, shard_to_split, new_starting_hash_key):
 * close the shard; two children cover [start, key - 1] and [key, end].
 */
PG_FUNCTION_INFO_V1(msgq_split_shard);
Datum
msgq_split_shard(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *shard_text = msgq_text_arg(fcinfo, 1);
	char	   *key = msgq_text_arg(fcinfo, 2);
	MsgqCall	call;
	MsgqStream	st;
	ShardRow	r;
	int32		idx;
	uint128		lo[2],
				hi[2];
	int32		parent[2],
				adjacent[2] = {-1, -1};
	uint128		k;

	stream_call_enter(&call, name, &st);
	if (strcmp(st.mode, "ON_DEMAND") == 0)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "an ON_DEMAND stream is resharded by msgq, not by split_shard");
	stream_lock_for_reshard(st.stream_id);
	idx = reshard_shard_arg(&st, shard_text, &r);
	if (key == NULL)
		INVALID_ARGUMENT("a new starting hash key is required");
	k = stream_hash_u128("", key);	/* validates the number */
	if (k <= r.lo || k > r.hi)
		INVALID_ARGUMENT("the new starting hash key %s is not inside shard %s's range after its start",
						 u128_text(k), shard_id_text(idx));
	lo[0] = r.lo;
	hi[0] = k - 1;
	lo[1] = k;
	hi[1] = r.hi;
	parent[0] = parent[1] = idx;
	reshard(&st, &idx, 1, lo, hi, parent, adjacent, 2);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.merge_shards(stream_name, shard_to_merge, adjacent_shard_to_merge):
 * close both; one child covers both ranges (parent: the first,
 * adjacent parent: the second).
 */
PG_FUNCTION_INFO_V1(msgq_merge_shards);
Datum
msgq_merge_shards(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *a_text = msgq_text_arg(fcinfo, 1);
	char	   *b_text = msgq_text_arg(fcinfo, 2);
	MsgqCall	call;
	MsgqStream	st;
	ShardRow	a,
				b;
	int32		closing[2];
	uint128		lo[1],
				hi[1];
	int32		parent[1],
				adjacent[1];

	stream_call_enter(&call, name, &st);
	if (strcmp(st.mode, "ON_DEMAND") == 0)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "an ON_DEMAND stream is resharded by msgq, not by merge_shards");
	stream_lock_for_reshard(st.stream_id);
	closing[0] = reshard_shard_arg(&st, a_text, &a);
	closing[1] = reshard_shard_arg(&st, b_text, &b);
	if (closing[0] == closing[1])
		INVALID_ARGUMENT("a shard cannot be merged with itself");
	/* adjacent: one range ends right before the other starts */
	if (a.hi != ~(uint128) 0 && a.hi + 1 == b.lo)
	{
		lo[0] = a.lo;
		hi[0] = b.hi;
	}
	else if (b.hi != ~(uint128) 0 && b.hi + 1 == a.lo)
	{
		lo[0] = b.lo;
		hi[0] = a.hi;
	}
	else
		INVALID_ARGUMENT("shards %s and %s are not adjacent", shard_id_text(closing[0]),
						 shard_id_text(closing[1]));
	parent[0] = closing[0];
	adjacent[0] = closing[1];
	reshard(&st, closing, 2, lo, hi, parent, adjacent, 1);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.update_shard_count(stream_name, target_shard_count, scaling_type):
 * close every open shard and cover the hash space with target shards of
 * equal width (UNIFORM_SCALING), at most double and at least half the
 * current count, as in Kinesis.  Each new shard's parent is the old shard
 * holding its start; its adjacent parent is the old shard holding its end
 * when that is another one.  A new range over more than two old shards
 * (after uneven splits) is refused: split or merge first.
 */
PG_FUNCTION_INFO_V1(msgq_update_shard_count);
Datum
msgq_update_shard_count(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *scaling = PG_ARGISNULL(2) ? pstrdup("UNIFORM_SCALING") : msgq_text_arg(fcinfo, 2);
	int32		target;
	MsgqCall	call;
	MsgqStream	st;
	OpenShard  *old;
	int			n,
				i,
				j;
	uint128		max = ~(uint128) 0;
	uint128		step;
	int32	   *closing,
			   *parent,
			   *adjacent;
	uint128    *lo,
			   *hi;
	Datum		result;

	stream_call_enter(&call, name, &st);
	if (strcmp(st.mode, "ON_DEMAND") == 0)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "an ON_DEMAND stream is resharded by msgq, not by update_shard_count");
	if (strcmp(scaling, "UNIFORM_SCALING") != 0)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "scaling type must be UNIFORM_SCALING, not \"%s\"", scaling);
	if (PG_ARGISNULL(1))
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "a target shard count is required");
	target = PG_GETARG_INT32(1);
	stream_lock_for_reshard(st.stream_id);
	old = stream_open_shards(st.stream_id, &n);
	if (target < 1 || target > STREAM_MAX_SHARDS)
		INVALID_ARGUMENT("shard count must be between 1 and %d, not %d", STREAM_MAX_SHARDS, target);
	if (target == n)
		INVALID_ARGUMENT("stream \"%s\" already has %d open shards", st.stream_name, n);
	if (target > 2 * n || 2 * target < n)
		INVALID_ARGUMENT("the target shard count must be between half and double the current %d, not %d",
						 n, target);
	/* old shards in hash order */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && old[j - 1].lo > old[j].lo; j--)
		{
			OpenShard	t = old[j];

			old[j] = old[j - 1];
			old[j - 1] = t;
		}

	step = max / (uint128) target + ((max % (uint128) target) == (uint128) (target - 1) ? 1 : 0);
	closing = palloc(sizeof(int32) * n);
	for (i = 0; i < n; i++)
		closing[i] = old[i].idx;
	parent = palloc(sizeof(int32) * target);
	adjacent = palloc(sizeof(int32) * target);
	lo = palloc(sizeof(uint128) * target);
	hi = palloc(sizeof(uint128) * target);
	for (i = 0; i < target; i++)
	{
		uint128		l = step * (uint128) i;
		uint128		h = (i == target - 1) ? max : step * (uint128) (i + 1) - 1;
		int			first = -1;

		for (j = 0; j < n; j++)
			if (old[j].lo <= l && l <= old[j].hi)
				first = j;
		parent[i] = old[first].idx;
		adjacent[i] = -1;
		if (h > old[first].hi)
		{
			if (first + 1 >= n || h > old[first + 1].hi)
				INVALID_ARGUMENT("the open shards of stream \"%s\" are too uneven for uniform scaling in one step: split or merge them first",
								 st.stream_name);
			adjacent[i] = old[first + 1].idx;
		}
		lo[i] = l;
		hi[i] = h;
	}
	reshard(&st, closing, n, lo, hi, parent, adjacent, target);

	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_build_object('StreamName', $1::pg_catalog.text,"
							  " 'CurrentShardCount', $2::pg_catalog.int4, 'TargetShardCount', $3::pg_catalog.int4)",
							  3, (Oid[]) {TEXTOID, INT4OID, INT4OID},
							  (Datum[]) {CStringGetTextDatum(st.stream_name), Int32GetDatum(n),
							  Int32GetDatum(target)},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not build the result");
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &(bool) {false});
	MemoryContextSwitchTo(call.cxt);
	result = PointerGetDatum(PG_DETOAST_DATUM_COPY(result));
	msgq_call_leave(&call);
	PG_RETURN_DATUM(result);
}

/*
 * msgq.update_stream_mode(stream_name, stream_mode): PROVISIONED or
 * ON_DEMAND; the shards stay as they are.  As in Kinesis, at most twice in
 * 24 hours (msgq's clock).
 */
PG_FUNCTION_INFO_V1(msgq_update_stream_mode);
Datum
msgq_update_stream_mode(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *mode = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	MsgqStream	st;
	TimestampTz now = msgq_now();

	stream_call_enter(&call, name, &st);
	if (mode == NULL || (strcmp(mode, "PROVISIONED") != 0 && strcmp(mode, "ON_DEMAND") != 0))
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "stream mode must be PROVISIONED or ON_DEMAND, not \"%s\"", mode ? mode : "");
	if (strcmp(mode, st.mode) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_RESOURCE_IN_USE),
				 errmsg("stream \"%s\" is already %s", st.stream_name, mode),
				 errdetail_internal("AWS error code: ResourceInUseException")));
	/* two switches in 24 hours: keep the last two times */
	if (SPI_execute_with_args("UPDATE msgq.stream"
							  "   SET stream_mode = $2,"
							  "       mode_changes = (pg_catalog.array_append(mode_changes, $3))[GREATEST(pg_catalog.cardinality(mode_changes), 1):]"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1"
							  "   AND (pg_catalog.cardinality(mode_changes) OPERATOR(pg_catalog.<) 2"
							  "        OR mode_changes[1] OPERATOR(pg_catalog.<=) ($3 OPERATOR(pg_catalog.-) interval '24 hours'))",
							  3, (Oid[]) {INT4OID, TEXTOID, TIMESTAMPTZOID},
							  (Datum[]) {Int32GetDatum(st.stream_id), CStringGetTextDatum(mode),
							  TimestampTzGetDatum(now)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not change the stream mode");
	if (SPI_processed == 0)
		MSGQ_ERROR("LimitExceededException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "the mode of stream \"%s\" can change at most twice in 24 hours", st.stream_name);
	msgq_stream_cache_invalidate();
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.enforce_shard_limits(stream_name, enabled): hold the stream's shards
 * to Kinesis's per-shard limits (stream_metrics.c), or stop.
 */
PG_FUNCTION_INFO_V1(msgq_enforce_shard_limits);
Datum
msgq_enforce_shard_limits(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqStream	st;

	stream_call_enter(&call, name, &st);
	if (PG_ARGISNULL(1))
		INVALID_ARGUMENT("enabled must not be NULL");
	if (SPI_execute_with_args("UPDATE msgq.stream SET enforce_shard_limits = $2"
							  " WHERE stream_id OPERATOR(pg_catalog.=) $1",
							  2, (Oid[]) {INT4OID, BOOLOID},
							  (Datum[]) {Int32GetDatum(st.stream_id), PG_GETARG_DATUM(1)},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update stream");
	msgq_stream_cache_invalidate();
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq._consumer_group_lag(): every consumer group's checkpoint per shard,
 * with how far it is behind the shard's newest record (below the safe
 * horizon): the newest record's arrival minus the arrival of the oldest
 * record after the checkpoint, or 0 when there is none.
 */
PG_FUNCTION_INFO_V1(msgq_consumer_group_lag);
Datum
msgq_consumer_group_lag(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MsgqCall	call;
	SPITupleTable *groups;
	uint64		ngroups,
				i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	msgq_call_enter(&call);
	if (SPI_execute("SELECT s.stream_name, c.consumer_group, c.shard_index, c.seq, c.updated_at"
					"  FROM msgq.stream_checkpoint c JOIN msgq.stream s USING (stream_id)"
					" ORDER BY s.stream_name, c.consumer_group, c.shard_index",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list checkpoints");
	groups = SPI_tuptable;
	ngroups = SPI_processed;
	for (i = 0; i < ngroups; i++)
	{
		HeapTuple	t = groups->vals[i];
		TupleDesc	d = groups->tupdesc;
		bool		isnull;
		char	   *name = TextDatumGetCString(SPI_getbinval(t, d, 1, &isnull));
		int32		shard = DatumGetInt32(SPI_getbinval(t, d, 3, &isnull));
		int64		seq = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
		MsgqStream	st;
		StreamRows	rows;
		int64		horizon,
					behind = 0;
		TimestampTz tip;
		Datum		v[6];
		bool		nl[6] = {0};

		stream_get(name, &st);
		horizon = stream_horizon(st.stream_id, shard);
		stream_read(&st, shard, seq + 1, horizon, 1, &rows);
		stream_read_end(&rows);
		if (rows.n > 0 && stream_tip(&st, shard, horizon, &tip))
		{
			TimestampTz last;

			/* as MillisBehindLatest after reading up to the checkpoint */
			if (stream_record_lookup(&st, shard, seq, &last) != RECORD_FOUND)
				last = rows.first_arrival;
			behind = Max(0, (tip - last) / 1000);
		}

		v[0] = SPI_getbinval(t, d, 1, &isnull);
		v[1] = SPI_getbinval(t, d, 2, &isnull);
		v[2] = CStringGetTextDatum(shard_id_text(shard));
		v[3] = int64_numeric(seq);
		v[4] = SPI_getbinval(t, d, 5, &isnull);
		v[5] = Int64GetDatum(behind);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}
