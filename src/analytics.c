/*-------------------------------------------------------------------------
 *
 * analytics.c
 *	  Stream queries, as Kinesis Data Analytics has them: the msgq worker
 *	  runs the owner's SELECT over each window of a stream's records,
 *	  tumbling or sliding, by arrival time or by an event time read from
 *	  the records, and writes the rows to a table or a stream, each window
 *	  exactly once.
 *
 * A query is a row of msgq.stream_query.  Each worker pass (and
 * msgq.run_maintenance()), in the pass's transaction, for each query:
 *
 *	- copies its stream's new records, shard by shard from the positions in
 *	  msgq.stream_query_shard, into msgq.stream_query_record with their
 *	  window time t (the arrival, or the event time); a record whose t is
 *	  before next_window_start belongs only to windows already emitted: it
 *	  is late, dropped and counted; an event time that cannot be read skips
 *	  the record (counted);
 *	- emits every window [start, start + size) whose end has passed the
 *	  watermark: msgq.now() less AllowedLatenessInSeconds for arrival time,
 *	  the greatest event time read less AllowedLatenessInSeconds for event
 *	  time.  Windows start at multiples of the slide (the size for tumbling
 *	  windows) since the Unix epoch; an empty window emits nothing.  The
 *	  window's rows are the user's SELECT over "records"
 *	  (msgq._window_records), run as the owner in a subtransaction, and
 *	  written by the same statement into the table, or put to the stream;
 *	- moves next_window_start past the emitted windows and deletes the
 *	  records no window after it holds.
 *
 * Positions, records, results and next_window_start commit together: a
 * window is emitted once, across crashes and restarts.  A query that fails
 * keeps its window (last_error says why) and is tried again at the next
 * pass.
 *
 * IDENTIFICATION
 *	  src/analytics.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "msgq.h"

#define SQ_MAX_NAME				128
#define SQ_MAX_QUERY			65536
#define SQ_MAX_WINDOW			86400	/* seconds */
#define SQ_MAX_LATENESS			3600
#define SQ_INGEST_MAX			10000	/* records copied per shard and pass */
#define SQ_WINDOWS_PER_PASS		1000
#define SQ_LOCK_FIELD4			7		/* advisory tags: a stream query */

#define SQ_INVALID(...) \
	MSGQ_ERROR("InvalidArgumentException", ERRCODE_MSGQ_INVALID_ARGUMENT, __VA_ARGS__)

/* ------------------------------------------------------------------------
 * Creating, describing, deleting
 * ------------------------------------------------------------------------
 */

static void
sq_check_name(const char *name)
{
	size_t		len = name ? strlen(name) : 0;
	size_t		i;

	if (len < 1 || len > SQ_MAX_NAME)
		SQ_INVALID("stream query names have 1 to %d characters", SQ_MAX_NAME);
	for (i = 0; i < len; i++)
		if (!msgq_is_name_char(name[i]) && name[i] != '.')
			SQ_INVALID("stream query name \"%s\" may contain only letters, digits, \"_\", \"-\" and \".\"",
					   name);
}

/* The query must be exactly one SELECT (it is wrapped into our statement) */
static void
sq_check_query(const char *query)
{
	List	   *stmts;

	if (query == NULL || query[0] == '\0')
		SQ_INVALID("a stream query needs its SELECT");
	if (strlen(query) > SQ_MAX_QUERY)
		SQ_INVALID("a stream query's text has at most %d characters", SQ_MAX_QUERY);
	stmts = raw_parser(query, RAW_PARSE_DEFAULT);
	if (list_length(stmts) != 1 ||
		!IsA(((RawStmt *) linitial(stmts))->stmt, SelectStmt))
		SQ_INVALID("a stream query is one SELECT statement over \"records\"");
}

/* The statement that emits one window ($1 query id, $2 start, $3 end) */
static char *
sq_statement(const char *query, Oid dest_table)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, "WITH records AS (SELECT * FROM msgq._window_records($1, $2, $3)) ");
	if (OidIsValid(dest_table))
		appendStringInfo(&s, "INSERT INTO %s SELECT * FROM (%s\n) q",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(dest_table)),
													get_rel_name(dest_table)), query);
	else
		appendStringInfo(&s, "SELECT pg_catalog.to_jsonb(q)::pg_catalog.text FROM (%s\n) q", query);
	return s.data;
}

typedef struct SqConfig
{
	bool		sliding;
	int32		size;
	int32		slide;
	bool		event_time;
	char	   *field;
	int32		lateness;
	bool		trim_horizon;
	Oid			dest_table;
	char	   *dest_stream;
} SqConfig;

static void
sq_parse(Jsonb *attrs, SqConfig *c, Oid owner)
{
	static const char *const keys[] = {"Window", "TimeSource", "EventTimeField",
		"AllowedLatenessInSeconds", "StartingPosition", "Destination", NULL};
	static const char *const wkeys[] = {"Type", "SizeInSeconds", "SlideInSeconds", NULL};
	JsonbContainer *root;
	JsonbContainer *w;
	JsonbContainer *d;
	JsonbValue *v;
	char	   *s;

	memset(c, 0, sizeof(*c));
	if (attrs == NULL || !JB_ROOT_IS_OBJECT(attrs) || JB_ROOT_IS_SCALAR(attrs))
		SQ_INVALID("attributes must be a JSON object");
	root = &attrs->root;
	msgq_attr_check_keys(root, keys, "the attributes");

	w = msgq_attr_obj(msgq_jsonb_member(root, "Window"), "Window");
	if (w == NULL)
		SQ_INVALID("a stream query needs a Window {Type, SizeInSeconds}");
	msgq_attr_check_keys(w, wkeys, "Window");
	s = msgq_attr_str(msgq_jsonb_member(w, "Type"), "Window.Type");
	if (s == NULL || (strcmp(s, "Tumbling") != 0 && strcmp(s, "Sliding") != 0))
		SQ_INVALID("Window.Type must be Tumbling or Sliding");
	c->sliding = strcmp(s, "Sliding") == 0;
	if ((v = msgq_jsonb_member(w, "SizeInSeconds")) == NULL)
		SQ_INVALID("Window needs a SizeInSeconds");
	c->size = msgq_attr_int(v, "SizeInSeconds", 1, SQ_MAX_WINDOW);
	v = msgq_jsonb_member(w, "SlideInSeconds");
	if (c->sliding)
	{
		if (v == NULL)
			SQ_INVALID("a Sliding window needs a SlideInSeconds");
		c->slide = msgq_attr_int(v, "SlideInSeconds", 1, c->size);
		if (c->size % c->slide != 0)
			SQ_INVALID("SizeInSeconds (%d) must be a multiple of SlideInSeconds (%d)", c->size, c->slide);
	}
	else
	{
		if (v != NULL)
			SQ_INVALID("SlideInSeconds is only for Sliding windows");
		c->slide = c->size;
	}

	s = msgq_attr_str(msgq_jsonb_member(root, "TimeSource"), "TimeSource");
	if (s != NULL && strcmp(s, "ArrivalTime") != 0 && strcmp(s, "EventTime") != 0)
		SQ_INVALID("TimeSource must be ArrivalTime or EventTime");
	c->event_time = s != NULL && strcmp(s, "EventTime") == 0;
	c->field = msgq_attr_str(msgq_jsonb_member(root, "EventTimeField"), "EventTimeField");
	if (c->event_time && (c->field == NULL || c->field[0] == '\0'))
		SQ_INVALID("TimeSource EventTime needs an EventTimeField");
	if (!c->event_time && c->field != NULL)
		SQ_INVALID("EventTimeField is only for TimeSource EventTime");
	if ((v = msgq_jsonb_member(root, "AllowedLatenessInSeconds")) != NULL)
		c->lateness = msgq_attr_int(v, "AllowedLatenessInSeconds", 0, SQ_MAX_LATENESS);
	s = msgq_attr_str(msgq_jsonb_member(root, "StartingPosition"), "StartingPosition");
	if (s != NULL && strcmp(s, "LATEST") != 0 && strcmp(s, "TRIM_HORIZON") != 0)
		SQ_INVALID("StartingPosition must be LATEST or TRIM_HORIZON");
	c->trim_horizon = s != NULL && strcmp(s, "TRIM_HORIZON") == 0;

	d = msgq_attr_obj(msgq_jsonb_member(root, "Destination"), "Destination");
	if (d == NULL)
		SQ_INVALID("a stream query needs a Destination {Type: Table | Stream}");
	s = msgq_attr_str(msgq_jsonb_member(d, "Type"), "Destination.Type");
	if (s != NULL && strcmp(s, "Table") == 0)
	{
		static const char *const tkeys[] = {"Type", "TableName", NULL};
		char	   *table;
		int			nest;

		msgq_attr_check_keys(d, tkeys, "a Table destination");
		table = msgq_attr_str(msgq_jsonb_member(d, "TableName"), "TableName");
		if (table == NULL)
			SQ_INVALID("a Table destination needs a TableName");
		nest = msgq_caller_search_path();
		c->dest_table = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(table)),
										 NoLock, true);
		AtEOXact_GUC(true, nest);
		if (!OidIsValid(c->dest_table) ||
			(get_rel_relkind(c->dest_table) != RELKIND_RELATION &&
			 get_rel_relkind(c->dest_table) != RELKIND_PARTITIONED_TABLE))
			MSGQ_ERROR("ResourceNotFoundException", ERRCODE_MSGQ_RESOURCE_NOT_FOUND,
					   "table \"%s\" does not exist", table);
		if (pg_class_aclcheck(c->dest_table, owner, ACL_INSERT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
					 errmsg("permission denied for table %s", get_rel_name(c->dest_table)),
					 errdetail_internal("AWS error code: AccessDeniedException")));
	}
	else if (s != NULL && strcmp(s, "Stream") == 0)
	{
		static const char *const skeys[] = {"Type", "StreamName", NULL};
		int32		stream_id;
		char	   *stream_name;

		msgq_attr_check_keys(d, skeys, "a Stream destination");
		c->dest_stream = msgq_attr_str(msgq_jsonb_member(d, "StreamName"), "StreamName");
		if (c->dest_stream == NULL)
			SQ_INVALID("a Stream destination needs a StreamName");
		msgq_stream_check_endpoint(c->dest_stream, owner);
		if (!msgq_stream_resolve(c->dest_stream, owner, &stream_id, &stream_name))
			MSGQ_ERROR("ResourceNotFoundException", ERRCODE_MSGQ_RESOURCE_NOT_FOUND,
					   "stream \"%s\" not found", c->dest_stream);
		c->dest_stream = stream_name;
	}
	else
		SQ_INVALID("Destination Type must be Table or Stream");
}

/* A query by name: its id and owner; false when there is none */
static bool
sq_lookup(const char *name, int32 *id, Oid *owner, bool for_update)
{
	bool		isnull;

	if (SPI_execute_with_args(for_update ?
							  "SELECT query_id, owner::pg_catalog.oid FROM msgq.stream_query"
							  " WHERE query_name OPERATOR(pg_catalog.=) $1 FOR UPDATE" :
							  "SELECT query_id, owner::pg_catalog.oid FROM msgq.stream_query"
							  " WHERE query_name OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(name ? name : "")},
							  NULL, !for_update, 1) < 0)
		elog(ERROR, "could not look up the stream query");
	if (SPI_processed == 0)
		return false;
	*id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return true;
}

static void
sq_not_found(const char *name)
{
	MSGQ_ERROR("ResourceNotFoundException", ERRCODE_MSGQ_RESOURCE_NOT_FOUND,
			   "stream query \"%s\" not found", name ? name : "");
}

static void
sq_check_owner(const char *name, Oid owner, Oid caller)
{
	if (!superuser_arg(caller) && !has_privs_of_role(caller, owner))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for stream query %s", name),
				 errdetail_internal("AWS error code: AccessDeniedException")));
}

/* msgq.create_stream_query(query_name, source_stream, query, attributes) */
PG_FUNCTION_INFO_V1(msgq_create_stream_query);
Datum
msgq_create_stream_query(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	char	   *source = msgq_text_arg(fcinfo, 1);
	char	   *query = msgq_text_arg(fcinfo, 2);
	Jsonb	   *attrs = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	MsgqCall	call;
	SqConfig	c;
	int32		id;
	Oid			owner;
	int32		stream_id;
	char	   *stream_name;
	bool		isnull;

	msgq_check_preloaded();
	sq_check_name(name);
	sq_check_query(query);
	msgq_call_enter(&call);
	if (sq_lookup(name, &id, &owner, false))
		MSGQ_ERROR("ResourceInUseException", ERRCODE_MSGQ_RESOURCE_IN_USE,
				   "stream query \"%s\" already exists", name);
	owner = call.caller;
	if (source == NULL || !msgq_stream_resolve(source, owner, &stream_id, &stream_name))
		MSGQ_ERROR("ResourceNotFoundException", ERRCODE_MSGQ_RESOURCE_NOT_FOUND,
				   "stream \"%s\" not found", source ? source : "");
	sq_parse(attrs, &c, owner);

	/* the statement must plan, as the owner: columns, types, privileges */
	{
		Oid			save_userid;
		int			save_sec_context;
		int			nest;

		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		nest = msgq_caller_search_path();
		if (SPI_prepare(sq_statement(query, c.dest_table), 3,
						(Oid[]) {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID}) == NULL)
			elog(ERROR, "could not prepare the stream query: %s", SPI_result_code_string(SPI_result));
		AtEOXact_GUC(true, nest);
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}

	if (SPI_execute("SELECT pg_catalog.nextval('msgq.stream_query_id_seq'::pg_catalog.regclass)::integer",
					false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not number the stream query");
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (SPI_execute_with_args("INSERT INTO msgq.stream_query (query_id, query_name, owner, stream_id, query,"
							  "   window_type, window_size, window_slide, time_source, event_time_field,"
							  "   lateness, dest_kind, dest_table, dest_stream, created_at)"
							  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
							  15, (Oid[]) {INT4OID, TEXTOID, OIDOID, INT4OID, TEXTOID, TEXTOID, INT4OID,
							  INT4OID, TEXTOID, TEXTOID, INT4OID, TEXTOID, OIDOID, TEXTOID, TIMESTAMPTZOID},
							  (Datum[]) {Int32GetDatum(id), CStringGetTextDatum(name), ObjectIdGetDatum(owner),
							  Int32GetDatum(stream_id), CStringGetTextDatum(query),
							  CStringGetTextDatum(c.sliding ? "Sliding" : "Tumbling"),
							  Int32GetDatum(c.size), Int32GetDatum(c.slide),
							  CStringGetTextDatum(c.event_time ? "EventTime" : "ArrivalTime"),
							  c.field ? CStringGetTextDatum(c.field) : (Datum) 0,
							  Int32GetDatum(c.lateness),
							  CStringGetTextDatum(OidIsValid(c.dest_table) ? "Table" : "Stream"),
							  ObjectIdGetDatum(c.dest_table),
							  c.dest_stream ? CStringGetTextDatum(c.dest_stream) : (Datum) 0,
							  TimestampTzGetDatum(msgq_now())},
							  (char[]) {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', c.field ? ' ' : 'n',
							  ' ', ' ', OidIsValid(c.dest_table) ? ' ' : 'n', c.dest_stream ? ' ' : 'n', ' '},
							  false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not create the stream query");
	if (SPI_execute_with_args("INSERT INTO msgq.stream_query_shard (query_id, shard_index, seq)"
							  " SELECT $1, shard_index, CASE WHEN $3 THEN 0 ELSE"
							  "        (SELECT CASE WHEN is_called THEN last_value OPERATOR(pg_catalog.+) 1"
							  "                     ELSE last_value END FROM msgq.stream_seq) END"
							  "   FROM msgq.shard WHERE stream_id OPERATOR(pg_catalog.=) $2",
							  3, (Oid[]) {INT4OID, INT4OID, BOOLOID},
							  (Datum[]) {Int32GetDatum(id), Int32GetDatum(stream_id), BoolGetDatum(c.trim_horizon)},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not position the stream query");
	msgq_delivery_wake_worker_at_commit();
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* msgq.delete_stream_query(query_name) */
PG_FUNCTION_INFO_V1(msgq_delete_stream_query);
Datum
msgq_delete_stream_query(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	int32		id;
	Oid			owner;

	msgq_check_preloaded();
	msgq_call_enter(&call);
	if (!sq_lookup(name, &id, &owner, true))
		sq_not_found(name);
	sq_check_owner(name, owner, call.caller);
	if (SPI_execute_with_args("DELETE FROM msgq.stream_query WHERE query_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(id)},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the stream query");
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* msgq.describe_stream_query(query_name) */
PG_FUNCTION_INFO_V1(msgq_describe_stream_query);
Datum
msgq_describe_stream_query(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	int32		id;
	Oid			owner;
	bool		isnull;
	Datum		j;

	msgq_check_preloaded();
	msgq_call_enter(&call);
	if (!sq_lookup(name, &id, &owner, false))
		sq_not_found(name);
	sq_check_owner(name, owner, call.caller);
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
							  "  'QueryName', q.query_name, 'SourceStream', s.stream_name, 'Query', q.query,"
							  "  'Window', pg_catalog.jsonb_build_object('Type', q.window_type,"
							  "     'SizeInSeconds', q.window_size,"
							  "     'SlideInSeconds', CASE WHEN q.window_type OPERATOR(pg_catalog.=) 'Sliding'"
							  "                       THEN q.window_slide END),"
							  "  'TimeSource', q.time_source, 'EventTimeField', q.event_time_field,"
							  "  'AllowedLatenessInSeconds', q.lateness,"
							  "  'Destination', CASE WHEN q.dest_kind OPERATOR(pg_catalog.=) 'Table'"
							  "     THEN pg_catalog.jsonb_build_object('Type', 'Table', 'TableName', q.dest_table::pg_catalog.text)"
							  "     ELSE pg_catalog.jsonb_build_object('Type', 'Stream', 'StreamName', q.dest_stream) END,"
							  "  'CreateTimestamp', q.created_at, 'NextWindowStart', q.next_window_start,"
							  "  'WindowsEmitted', q.windows_emitted, 'LastError', q.last_error))"
							  "  FROM msgq.stream_query q JOIN msgq.stream s USING (stream_id)"
							  " WHERE q.query_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(id)},
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not describe the stream query");
	j = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	{
		MemoryContext old = MemoryContextSwitchTo(call.cxt);

		j = PointerGetDatum(DatumGetJsonbPCopy(j));
		MemoryContextSwitchTo(old);
	}
	msgq_call_leave(&call);
	PG_RETURN_DATUM(j);
}

/* msgq.list_stream_queries(): the caller's (every one for a superuser) */
PG_FUNCTION_INFO_V1(msgq_list_stream_queries);
Datum
msgq_list_stream_queries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MsgqCall	call;
	uint64		i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);
	if (SPI_execute_with_args("SELECT query_name FROM msgq.stream_query"
							  " WHERE $1 OR pg_catalog.pg_has_role($2, owner, 'USAGE') ORDER BY query_name",
							  2, (Oid[]) {BOOLOID, OIDOID},
							  (Datum[]) {BoolGetDatum(superuser_arg(call.caller)), ObjectIdGetDatum(call.caller)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list stream queries");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		v = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* msgq._window_records(query_id, window_start, window_end) */
PG_FUNCTION_INFO_V1(msgq_window_records);
Datum
msgq_window_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MsgqCall	call;
	bool		isnull;
	Oid			owner;
	uint64		i;
	MemoryContext per_row;

	msgq_check_preloaded();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		SQ_INVALID("a window needs its query and bounds");
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);
	if (SPI_execute_with_args("SELECT owner::pg_catalog.oid FROM msgq.stream_query"
							  " WHERE query_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {PG_GETARG_DATUM(0)},
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		sq_not_found(psprintf("%d", PG_GETARG_INT32(0)));
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	sq_check_owner(psprintf("%d", PG_GETARG_INT32(0)), owner, call.caller);
	if (SPI_execute_with_args("SELECT seq, partition_key, arrival, t, data FROM msgq.stream_query_record"
							  " WHERE query_id OPERATOR(pg_catalog.=) $1 AND t OPERATOR(pg_catalog.>=) $2"
							  "   AND t OPERATOR(pg_catalog.<) $3 ORDER BY seq",
							  3, (Oid[]) {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID},
							  (Datum[]) {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the window");
	per_row = AllocSetContextCreate(CurrentMemoryContext, "msgq window row", ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		Datum		v[8];
		bool		n[8] = {0};
		bytea	   *data;
		MemoryContext old = MemoryContextSwitchTo(per_row);

		v[0] = DirectFunctionCall1(int8_numeric, SPI_getbinval(t, d, 1, &isnull));
		v[1] = SPI_getbinval(t, d, 2, &isnull);
		v[2] = SPI_getbinval(t, d, 3, &isnull);
		v[3] = SPI_getbinval(t, d, 4, &isnull);
		data = DatumGetByteaPP(SPI_getbinval(t, d, 5, &isnull));
		if (msgq_json_text_ok(data, false))
			v[4] = DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(VARDATA_ANY(data),
																		  VARSIZE_ANY_EXHDR(data))));
		else
			n[4] = true;
		v[5] = PointerGetDatum(data);
		v[6] = PG_GETARG_DATUM(1);
		v[7] = PG_GETARG_DATUM(2);
		MemoryContextSwitchTo(old);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
		MemoryContextReset(per_row);
	}
	MemoryContextDelete(per_row);
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * The worker's pass
 * ------------------------------------------------------------------------
 */

/* the pass's statements, planned once per process */
static SPIPlanPtr sq_plans[8];

typedef struct SqRow
{
	int32		id;
	char	   *name;
	Oid			owner;
	int32		stream_id;
	char	   *query;
	int64		size;			/* microseconds */
	int64		slide;
	bool		event_time;
	char	   *field;
	int64		lateness;
	Oid			dest_table;
	char	   *dest_stream;
	bool		has_next;
	TimestampTz next;
	bool		has_max;
	TimestampTz max_event;
	/* what this pass did */
	int64		read;
	int64		late;
	int64		skipped;
	int64		windows;
	int64		rows;
	TimestampTz last_end;
	char	   *error;
} SqRow;

/* t rounded down to a multiple of step since the Unix epoch */
static TimestampTz
sq_align(TimestampTz t, int64 step)
{
	int64		since = t - SetEpochTimestamp();
	int64		r = since % step;

	if (r < 0)
		r += step;
	return t - r;
}

/* the start of the first window that holds time t */
static TimestampTz
sq_first_window(SqRow *q, TimestampTz t)
{
	return sq_align(t, q->slide) - q->size + q->slide;
}

/*
 * The event time of a record: its JSON object's field, an ISO 8601 text
 * (UTC unless it says otherwise) or a number of seconds since the Unix
 * epoch; false when it has none.  Never raises an error.
 */
static bool
sq_event_time(bytea *data, const char *field, TimestampTz *t)
{
	Jsonb	   *j;
	JsonbValue *v;

	if (!msgq_json_text_ok(data, true))
		return false;
	j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(VARDATA_ANY(data),
																			  VARSIZE_ANY_EXHDR(data)))));
	v = msgq_jsonb_member(&j->root, field);
	if (v == NULL)
		return false;
	if (v->type == jbvNumeric)
	{
		double		secs = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
															 NumericGetDatum(v->val.numeric)));

		if (isnan(secs) || secs < -1e11 || secs > 1e11)
			return false;
		*t = SetEpochTimestamp() + (TimestampTz) (secs * USECS_PER_SEC);
		return true;
	}
	if (v->type == jbvString && v->val.string.len < MAXDATELEN)
	{
		char	   *str = pnstrdup(v->val.string.val, v->val.string.len);
		char		workbuf[MAXDATELEN + MAXDATEFIELDS];
		char	   *fields[MAXDATEFIELDS];
		int			ftypes[MAXDATEFIELDS];
		int			nf;
		int			dtype;
		struct pg_tm tm;
		fsec_t		fsec;
		int			tz = 0;

		memset(&tm, 0, sizeof(tm));
		if (ParseDateTime(str, workbuf, sizeof(workbuf), fields, ftypes, MAXDATEFIELDS, &nf) != 0 ||
			DecodeDateTime(fields, ftypes, nf, &dtype, &tm, &fsec, &tz) != 0 ||
			dtype != DTK_DATE)
			return false;
		return tm2timestamp(&tm, fsec, &tz, t) == 0;
	}
	return false;
}

typedef struct SqIngest
{
	SqRow	   *q;
	int			n;
	Datum	   *seqs;
	Datum	   *ts;
	Datum	   *arrivals;
	Datum	   *keys;
	Datum	   *datas;
} SqIngest;

static void
sq_ingest_record(void *arg, int64 seq, TimestampTz arrival, struct varlena *key,
				 struct varlena *data)
{
	SqIngest   *in = (SqIngest *) arg;
	SqRow	   *q = in->q;
	TimestampTz t = arrival;

	q->read++;
	if (q->event_time && !sq_event_time((bytea *) data, q->field, &t))
	{
		q->skipped++;
		return;
	}
	if (q->has_next && t < q->next)
	{
		q->late++;				/* its windows are emitted */
		return;
	}
	if (q->event_time && (!q->has_max || t > q->max_event))
	{
		q->max_event = t;
		q->has_max = true;
	}
	in->seqs[in->n] = Int64GetDatum(seq);
	in->ts[in->n] = TimestampTzGetDatum(t);
	in->arrivals[in->n] = TimestampTzGetDatum(arrival);
	in->keys[in->n] = PointerGetDatum(DatumGetTextPCopy(PointerGetDatum(key)));
	in->datas[in->n] = PointerGetDatum(DatumGetByteaPCopy(PointerGetDatum(data)));
	in->n++;
}

/* Copy the stream's new records into the query's window records */
static void
sq_ingest(SqRow *q)
{
	uint64		nshards,
				s;
	int32	   *shards;
	int64	   *starts;
	bool		isnull;

	if (SPI_execute_plan(msgq_plan(&sq_plans[0], "SELECT h.shard_index, p.seq FROM msgq.shard h"
							  "  LEFT JOIN msgq.stream_query_shard p ON p.query_id OPERATOR(pg_catalog.=) $1"
							  "   AND p.shard_index OPERATOR(pg_catalog.=) h.shard_index"
							  " WHERE h.stream_id OPERATOR(pg_catalog.=) $2"
							  "   AND (p.seq IS NULL OR h.ending_seq IS NULL OR p.seq OPERATOR(pg_catalog.<=) h.ending_seq)"
							  " ORDER BY h.shard_index",
							  2, (Oid[]) {INT4OID, INT4OID}),
							  (Datum[]) {Int32GetDatum(q->id), Int32GetDatum(q->stream_id)},
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the stream's shards");
	nshards = SPI_processed;
	shards = palloc(sizeof(int32) * Max(nshards, 1));
	starts = palloc(sizeof(int64) * Max(nshards, 1));
	for (s = 0; s < nshards; s++)
	{
		Datum		v;

		shards[s] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[s], SPI_tuptable->tupdesc, 1, &isnull));
		v = SPI_getbinval(SPI_tuptable->vals[s], SPI_tuptable->tupdesc, 2, &isnull);
		starts[s] = isnull ? 0 : DatumGetInt64(v);
	}
	for (s = 0; s < nshards; s++)
	{
		SqIngest	in;
		bool		more;
		int64		next;

		in.q = q;
		in.n = 0;
		in.seqs = palloc(sizeof(Datum) * SQ_INGEST_MAX);
		in.ts = palloc(sizeof(Datum) * SQ_INGEST_MAX);
		in.arrivals = palloc(sizeof(Datum) * SQ_INGEST_MAX);
		in.keys = palloc(sizeof(Datum) * SQ_INGEST_MAX);
		in.datas = palloc(sizeof(Datum) * SQ_INGEST_MAX);
		next = msgq_stream_read_records(q->stream_id, shards[s], starts[s], SQ_INGEST_MAX,
										sq_ingest_record, &in, &more);
		if (next < 0)
			return;
		if (in.n > 0 &&
			SPI_execute_plan(msgq_plan(&sq_plans[1], "INSERT INTO msgq.stream_query_record (query_id, seq, t, arrival, partition_key, data)"
								  " SELECT $1, s, t, a, k, d FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int8[]),"
								  "   pg_catalog.unnest($3::pg_catalog.timestamptz[]),"
								  "   pg_catalog.unnest($4::pg_catalog.timestamptz[]),"
								  "   pg_catalog.unnest($5::pg_catalog.text[]),"
								  "   pg_catalog.unnest($6::pg_catalog.bytea[])) r(s, t, a, k, d)",
								  6, (Oid[]) {INT4OID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
								  TEXTARRAYOID, BYTEAARRAYOID}),
								  (Datum[]) {Int32GetDatum(q->id),
								  PointerGetDatum(construct_array(in.seqs, in.n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
								  PointerGetDatum(construct_array(in.ts, in.n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
								  PointerGetDatum(construct_array(in.arrivals, in.n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
								  PointerGetDatum(construct_array(in.keys, in.n, TEXTOID, -1, false, TYPALIGN_INT)),
								  PointerGetDatum(construct_array(in.datas, in.n, BYTEAOID, -1, false, TYPALIGN_INT))},
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not keep the window records");
		if (next != starts[s] &&
			SPI_execute_plan(msgq_plan(&sq_plans[2], "INSERT INTO msgq.stream_query_shard (query_id, shard_index, seq)"
								  " VALUES ($1, $2, $3) ON CONFLICT (query_id, shard_index)"
								  " DO UPDATE SET seq = EXCLUDED.seq",
								  3, (Oid[]) {INT4OID, INT4OID, INT8OID}),
								  (Datum[]) {Int32GetDatum(q->id), Int32GetDatum(shards[s]), Int64GetDatum(next)},
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not move the stream query's position");
	}
}

typedef struct SqEmit
{
	SqRow	   *q;
	TimestampTz start;
	TimestampTz end;
	uint64		rows;
} SqEmit;

/* One window's statement, as the owner (in a subtransaction) */
static void
sq_emit(void *arg)
{
	SqEmit	   *e = (SqEmit *) arg;
	SqRow	   *q = e->q;
	Oid			save_userid;
	int			save_sec_context;
	int			rc;
	int			nest;
	Datum		args[3] = {Int32GetDatum(q->id), TimestampTzGetDatum(e->start), TimestampTzGetDatum(e->end)};

	if (OidIsValid(q->dest_table) && get_rel_name(q->dest_table) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the destination table of stream query \"%s\" does not exist", q->name)));
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(q->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest = msgq_caller_search_path();
	rc = SPI_execute_with_args(sq_statement(q->query, q->dest_table), 3,
							   (Oid[]) {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID}, args, NULL, false, 0);
	AtEOXact_GUC(true, nest);
	if (rc != SPI_OK_INSERT && rc != SPI_OK_SELECT)
		elog(ERROR, "the stream query's statement failed: %s", SPI_result_code_string(rc));
	e->rows = SPI_processed;
	if (!OidIsValid(q->dest_table) && SPI_processed > 0)
	{
		/* each row as JSON, put to the stream with the window's start as key */
		uint64		n = SPI_processed,
					i;
		Datum	   *keys = palloc(sizeof(Datum) * n);
		Datum	   *datas = palloc(sizeof(Datum) * n);
		char	   *key = DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(e->start)));
		bool		isnull;

		for (i = 0; i < n; i++)
		{
			Datum		v = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			text	   *t = isnull ? cstring_to_text("null") : DatumGetTextPP(v);
			bytea	   *b = palloc(VARHDRSZ + VARSIZE_ANY_EXHDR(t));

			memcpy(VARDATA(b), VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			SET_VARSIZE(b, VARHDRSZ + VARSIZE_ANY_EXHDR(t));
			keys[i] = CStringGetTextDatum(key);
			datas[i] = PointerGetDatum(b);
		}
		for (i = 0; i < n; i += 500)
		{
			int			k = (int) Min(n - i, 500);

			if (SPI_execute_plan(msgq_plan(&sq_plans[3], "SELECT pg_catalog.count(*) FILTER (WHERE error_code IS NOT NULL)"
									  "  FROM msgq.put_records($1, $2::pg_catalog.text[], $3::pg_catalog.bytea[])",
									  3, (Oid[]) {TEXTOID, TEXTARRAYOID, BYTEAARRAYOID}),
									  (Datum[]) {CStringGetTextDatum(q->dest_stream),
									  PointerGetDatum(construct_array(keys + i, k, TEXTOID, -1, false, TYPALIGN_INT)),
									  PointerGetDatum(construct_array(datas + i, k, BYTEAOID, -1, false, TYPALIGN_INT))},
									  NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not put to stream %s", q->dest_stream);
			if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) > 0)
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_THROUGHPUT_EXCEEDED),
						 errmsg("stream %s refused records of the window", q->dest_stream)));
		}
	}
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

static bool
sq_min_t(SqRow *q, TimestampTz from, bool bounded, TimestampTz *t)
{
	bool		isnull;
	Datum		v;

	if (SPI_execute_plan(msgq_plan(&sq_plans[4], "SELECT pg_catalog.min(t) FROM msgq.stream_query_record"
							  " WHERE query_id OPERATOR(pg_catalog.=) $1 AND ($3 OR t OPERATOR(pg_catalog.>=) $2)",
							  3, (Oid[]) {INT4OID, TIMESTAMPTZOID, BOOLOID}),
							  (Datum[]) {Int32GetDatum(q->id), TimestampTzGetDatum(from), BoolGetDatum(!bounded)},
							  NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the window records");
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return false;
	*t = DatumGetTimestampTz(v);
	return true;
}

/*
 * Emit the query's windows that are due.  Returns when the next one is
 * due in milliseconds (-1: not before new records).
 */
static long
sq_windows(SqRow *q, bool in_worker)
{
	TimestampTz watermark;
	int			k;
	bool		isnull;

	if (q->event_time)
	{
		if (!q->has_max)
			return -1;
		watermark = q->max_event - q->lateness;
	}
	else
		watermark = msgq_now() - q->lateness;
	if (!q->has_next)
	{
		TimestampTz t;

		if (!sq_min_t(q, 0, false, &t))
			return -1;
		q->next = sq_first_window(q, t);
		q->has_next = true;
	}
	for (k = 0; k < SQ_WINDOWS_PER_PASS; k++)
	{
		TimestampTz end = q->next + q->size;
		int64		n;

		if (end > watermark)
			break;
		if (SPI_execute_plan(msgq_plan(&sq_plans[5], "SELECT pg_catalog.count(*) FROM msgq.stream_query_record"
								  " WHERE query_id OPERATOR(pg_catalog.=) $1 AND t OPERATOR(pg_catalog.>=) $2"
								  "   AND t OPERATOR(pg_catalog.<) $3",
								  3, (Oid[]) {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID}),
								  (Datum[]) {Int32GetDatum(q->id), TimestampTzGetDatum(q->next),
								  TimestampTzGetDatum(end)},
								  NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not count the window's records");
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (n > 0)
		{
			SqEmit		e = {q, q->next, end, 0};
			ErrorData  *err = msgq_run_subxact(sq_emit, &e, in_worker);

			if (err != NULL)
			{
				ereport(LOG,
						(errmsg("msgq stream query \"%s\": the window from %s failed: %s", q->name,
								timestamptz_to_str(q->next), err->message)));
				q->error = pstrdup(err->message);
				return 1000;	/* tried again at the next passes */
			}
			q->windows++;
			q->rows += (int64) e.rows;
			q->last_end = end;
			q->error = NULL;
			q->next += q->slide;
		}
		else
		{
			TimestampTz t;

			/* empty: on to the first window that holds a record, or past the watermark */
			q->next += q->slide;
			if (sq_min_t(q, q->next, true, &t))
				q->next = Max(q->next, sq_first_window(q, t));
			else
				q->next = Max(q->next, sq_align(watermark - q->size, q->slide) + q->slide);
		}
	}
	if (k == SQ_WINDOWS_PER_PASS)
		return 0;
	if (q->event_time)
		return -1;
	return (long) Max((q->next + q->size - watermark + 999) / 1000, 1);
}

static void
sq_update(SqRow *q)
{
	if (SPI_execute_plan(msgq_plan(&sq_plans[6], "DELETE FROM msgq.stream_query_record WHERE query_id OPERATOR(pg_catalog.=) $1"
							  "   AND t OPERATOR(pg_catalog.<) $2",
							  2, (Oid[]) {INT4OID, TIMESTAMPTZOID}),
							  (Datum[]) {Int32GetDatum(q->id), TimestampTzGetDatum(q->next)},
							  (char[]) {' ', q->has_next ? ' ' : 'n'}, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not drop the emitted windows' records");
	if (SPI_execute_plan(msgq_plan(&sq_plans[7], "UPDATE msgq.stream_query SET next_window_start = $2, max_event_time = $3,"
							  "  records_read = records_read OPERATOR(pg_catalog.+) $4,"
							  "  late_records = late_records OPERATOR(pg_catalog.+) $5,"
							  "  skipped_records = skipped_records OPERATOR(pg_catalog.+) $6,"
							  "  windows_emitted = windows_emitted OPERATOR(pg_catalog.+) $7,"
							  "  rows_emitted = rows_emitted OPERATOR(pg_catalog.+) $8,"
							  "  last_window_end = COALESCE($9, last_window_end),"
							  "  last_emitted_at = CASE WHEN $7 OPERATOR(pg_catalog.>) 0 THEN $10 ELSE last_emitted_at END,"
							  "  last_error = $11"
							  " WHERE query_id OPERATOR(pg_catalog.=) $1",
							  11, (Oid[]) {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID,
							  INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID}),
							  (Datum[]) {Int32GetDatum(q->id), TimestampTzGetDatum(q->next),
							  TimestampTzGetDatum(q->max_event), Int64GetDatum(q->read),
							  Int64GetDatum(q->late), Int64GetDatum(q->skipped), Int64GetDatum(q->windows),
							  Int64GetDatum(q->rows), TimestampTzGetDatum(q->last_end),
							  TimestampTzGetDatum(msgq_now()),
							  q->error ? CStringGetTextDatum(q->error) : (Datum) 0},
							  (char[]) {' ', q->has_next ? ' ' : 'n', q->has_max ? ' ' : 'n', ' ', ' ', ' ',
							  ' ', ' ', q->last_end ? ' ' : 'n', ' ', q->error ? ' ' : 'n'},
							  false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the stream query");
}

/*
 * One pass over the database's stream queries, in the caller's transaction
 * and SPI connection (as the extension owner).  Returns when to look again
 * in milliseconds (0: at once, -1: at the next wake-up).
 */
long
msgq_stream_queries_run(bool in_worker)
{
	SqRow	   *rows;
	uint64		n,
				i;
	long		wait_ms = -1;

	if (SPI_execute("SELECT query_id, query_name, owner::pg_catalog.oid, stream_id, query, window_size,"
					"       window_slide, time_source OPERATOR(pg_catalog.=) 'EventTime', event_time_field,"
					"       lateness, dest_table::pg_catalog.oid, dest_stream, next_window_start,"
					"       max_event_time"
					"  FROM msgq.stream_query ORDER BY query_id", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read stream queries");
	n = SPI_processed;
	rows = palloc0(sizeof(SqRow) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		SqRow	   *q = &rows[i];
		bool		isnull;
		Datum		v;

		q->id = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
		q->name = TextDatumGetCString(SPI_getbinval(t, d, 2, &isnull));
		q->owner = DatumGetObjectId(SPI_getbinval(t, d, 3, &isnull));
		q->stream_id = DatumGetInt32(SPI_getbinval(t, d, 4, &isnull));
		q->query = TextDatumGetCString(SPI_getbinval(t, d, 5, &isnull));
		q->size = (int64) DatumGetInt32(SPI_getbinval(t, d, 6, &isnull)) * USECS_PER_SEC;
		q->slide = (int64) DatumGetInt32(SPI_getbinval(t, d, 7, &isnull)) * USECS_PER_SEC;
		q->event_time = DatumGetBool(SPI_getbinval(t, d, 8, &isnull));
		v = SPI_getbinval(t, d, 9, &isnull);
		q->field = isnull ? NULL : TextDatumGetCString(v);
		q->lateness = (int64) DatumGetInt32(SPI_getbinval(t, d, 10, &isnull)) * USECS_PER_SEC;
		v = SPI_getbinval(t, d, 11, &isnull);
		q->dest_table = isnull ? InvalidOid : DatumGetObjectId(v);
		v = SPI_getbinval(t, d, 12, &isnull);
		q->dest_stream = isnull ? NULL : TextDatumGetCString(v);
		v = SPI_getbinval(t, d, 13, &isnull);
		q->has_next = !isnull;
		q->next = isnull ? 0 : DatumGetTimestampTz(v);
		v = SPI_getbinval(t, d, 14, &isnull);
		q->has_max = !isnull;
		q->max_event = isnull ? 0 : DatumGetTimestampTz(v);
	}
	for (i = 0; i < n; i++)
	{
		SqRow	   *q = &rows[i];
		LOCKTAG		tag;
		long		w;
		MemoryContext cxt;
		MemoryContext old;

		if (GetUserNameFromId(q->owner, true) == NULL)
			continue;
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) q->id, 0, SQ_LOCK_FIELD4);
		if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
			continue;
		cxt = AllocSetContextCreate(CurrentMemoryContext, "msgq stream query", ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(cxt);
		sq_ingest(q);
		msgq_firehose_publish_source(q->stream_id);
		w = sq_windows(q, in_worker);
		sq_update(q);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		CHECK_FOR_INTERRUPTS();
		if (w >= 0 && (wait_ms < 0 || w < wait_ms))
			wait_ms = w;
	}
	return wait_ms;
}

/* The worker's pass over the stream queries, in a transaction of its own */
long
msgq_stream_queries_worker_pass(void)
{
	return msgq_worker_pass("msgq stream queries", "stream_query", msgq_stream_queries_run);
}
