/*-------------------------------------------------------------------------
 *
 * firehose.c
 *	  Delivery streams, as Firehose has them: records put by producers (or
 *	  read from a msgq stream) are buffered, optionally transformed by a SQL
 *	  function, and delivered by the msgq worker in batches by size and
 *	  interval to a table, to files in a directory, to a queue or to a
 *	  stream.
 *
 * A delivery stream is a row of msgq.delivery_stream.  put_delivery_record
 * and put_record_batch insert into msgq.delivery_record in the producer's
 * transaction: a rolled-back put delivers nothing, a committed one is
 * durable.  A stream source is copied into the same buffer by the worker,
 * shard by shard from the positions in msgq.delivery_source_shard, moved
 * in the copy's transaction.
 *
 * Each worker pass (and msgq.run_maintenance()) looks at the head of each
 * delivery stream's buffer and flushes a batch when the records in it
 * reach BufferingHints SizeInMBs, or the oldest of them is
 * IntervalInSeconds old (on msgq's clock), or 10,000 records wait.  A
 * flush, in the pass's transaction:
 *
 *	- transforms the batch with the processing function, if any, in
 *	  invocations of up to BufferSizeInMBs, as the owner in a
 *	  subtransaction, each retried NumberOfRetries times; records the
 *	  function reports ProcessingFailed, or all of an invocation that kept
 *	  failing or answered with missing, unknown or duplicated recordIds, go
 *	  to the error output (msgq.delivery_error, output type
 *	  processing-failed); Dropped records count as delivered;
 *	- writes the rest to the destination as the owner in a subtransaction:
 *	  Table (one INSERT of the batch), Queue (send_message per record),
 *	  Stream (one put_records per 500), File (a new file, written to a
 *	  temporary name, synced, then renamed);
 *	- deletes the batch's records from the buffer, and counts them.
 *
 * Table, Queue and Stream destinations are written in the transaction that
 * deletes the records: each record is delivered exactly once.  A file is
 * renamed into place before that transaction commits; a crash between the
 * two delivers the batch again, to the same file name when the batch starts
 * with the same record (the name ends with the first record's number).
 *
 * A destination that fails rolls its subtransaction back: the batch stays
 * in the buffer and is retried after 1 s doubling to 60 s, until
 * RetryOptions DurationInSeconds has passed since its first failure; then
 * its records go to the error output (delivery-failed) and the stream
 * moves on.
 *
 * Wake-ups: a put's commit adds its bytes to the delivery stream's slot in
 * shared memory and wakes the worker when they reach the size hint (or at
 * every commit with IntervalInSeconds 0); a commit to a source stream wakes
 * it too.  Otherwise the worker comes back when the oldest record's
 * interval ends.
 *
 * IDENTIFICATION
 *	  src/firehose.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <zlib.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "catalog/pg_class.h"
#include "common/file_perm.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/hashfn.h"
#include "common/jsonapi.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "http.h"
#include "msgq.h"

#define FH_MAX_NAME				64
#define FH_MAX_BATCH_RECORDS	500
#define FH_MAX_RECORD			(1000 * 1024)
#define FH_MAX_BATCH_BYTES		(4 * 1024 * 1024)
#define FH_FLUSH_MAX_RECORDS	10000	/* a batch flushed at most */
#define FH_INGEST_MAX			10000	/* stream records copied per shard and pass */
#define FH_LOCK_FIELD4			6		/* advisory tags: a delivery stream */
#define FH_MAX_PREFIX			512
#define FH_MAX_URL				1000
#define FH_MAX_ACCESS_KEY		4096

extern int	msgq_http_timeout_ms;

char	   *msgq_delivery_directory = NULL;

static bytea *fh_b64_decode(const char *b64, int len);

/* ------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------
 */

void
msgq_firehose_define_gucs(void)
{
	DefineCustomStringVariable("msgq.delivery_directory",
							   "Directory under which File destinations of delivery streams write.",
							   "Empty: File destinations are refused.  Only a superuser sets it; "
							   "a File destination's prefix is a path below it.",
							   &msgq_delivery_directory,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * Errors and attributes
 * ------------------------------------------------------------------------
 */

#define FH_INVALID(...) \
	MSGQ_ERROR("InvalidArgumentException", ERRCODE_MSGQ_INVALID_ARGUMENT, __VA_ARGS__)

static void
fh_not_found(const char *name)
{
	MSGQ_ERROR("ResourceNotFoundException", ERRCODE_MSGQ_RESOURCE_NOT_FOUND,
			   "delivery stream \"%s\" not found", name ? name : "");
}

static void
fh_check_name(const char *name)
{
	size_t		len = name ? strlen(name) : 0;
	size_t		i;

	if (len < 1 || len > FH_MAX_NAME)
		FH_INVALID("delivery stream names have 1 to %d characters", FH_MAX_NAME);
	for (i = 0; i < len; i++)
		if (!msgq_is_name_char(name[i]) && name[i] != '.')
			FH_INVALID("delivery stream name \"%s\" may contain only letters, digits, \"_\", \"-\" and \".\"",
					   name);
}

/* a name or an ARN (anything after the last "/") */
static const char *
fh_ref_name(const char *ref)
{
	const char *p;

	if (ref != NULL && strncmp(ref, "arn:", 4) == 0 && (p = strrchr(ref, '/')) != NULL)
		return p + 1;
	return ref;
}

static char *
fh_arn(const char *name)
{
	return psprintf("arn:aws:firehose:msgq:%s:deliverystream/%s",
					get_database_name(MyDatabaseId), name);
}

/* Every key of obj is one of allowed (NULL-terminated) */
void
msgq_attr_check_keys(JsonbContainer *obj, const char *const *allowed, const char *what)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			depth++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			depth--;
		else if (tok == WJB_KEY && depth == 1)
		{
			const char *const *a;
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			for (a = allowed; *a != NULL; a++)
				if (strcmp(*a, key) == 0)
					break;
			if (*a == NULL)
				FH_INVALID("unknown parameter \"%s\" in %s", key, what);
		}
	}
}

JsonbContainer *
msgq_attr_obj(JsonbValue *v, const char *what)
{
	if (v == NULL)
		return NULL;
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		FH_INVALID("%s must be a JSON object", what);
	return v->val.binary.data;
}

char *
msgq_attr_str(JsonbValue *v, const char *what)
{
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		FH_INVALID("%s must be a string", what);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* a string member, or NULL when absent or not a string (never an error) */
char *
msgq_attr_str_or_null(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = msgq_jsonb_member(obj, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* an integer given as a number or a string, within [min, max] */
int32
msgq_attr_int(JsonbValue *v, const char *what, int32 min, int32 max)
{
	int64		n;
	char	   *s;
	char	   *end;

	if (v->type == jbvNumeric)
		s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString)
		s = pnstrdup(v->val.string.val, v->val.string.len);
	else
		FH_INVALID("%s must be an integer", what);
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		FH_INVALID("%s must be an integer", what);
	if (n < min || n > max)
		FH_INVALID("%s must be between %d and %d", what, min, max);
	return (int32) n;
}

static bool
fh_bool(JsonbValue *v, const char *what)
{
	if (v->type == jbvBool)
		return v->val.boolean;
	if (v->type == jbvString && v->val.string.len == 4 &&
		strncmp(v->val.string.val, "true", 4) == 0)
		return true;
	if (v->type == jbvString && v->val.string.len == 5 &&
		strncmp(v->val.string.val, "false", 5) == 0)
		return false;
	FH_INVALID("%s must be true or false", what);
	return false;				/* keep the compiler quiet */
}

/* a File destination's prefix: a relative path with expressions */
static void
fh_check_prefix(const char *prefix)
{
	const char *p;

	if (strlen(prefix) > FH_MAX_PREFIX)
		FH_INVALID("Prefix has at most %d characters", FH_MAX_PREFIX);
	if (prefix[0] == '/')
		FH_INVALID("Prefix must be a relative path");
	for (p = prefix; *p; p++)
	{
		if (!(isalnum((unsigned char) *p) || strchr("!-_.*'()/{}:=", *p) != NULL))
			FH_INVALID("Prefix may not contain \"%c\"", *p);
		if (p[0] == '.' && p[1] == '.' && (p == prefix || p[-1] == '/'))
			FH_INVALID("Prefix may not contain \"..\"");
	}
	for (p = strstr(prefix, "!{"); p != NULL; p = strstr(p + 2, "!{"))
	{
		const char *end = strchr(p, '}');

		if (end == NULL)
			FH_INVALID("Prefix has an unterminated expression");
		if (strncmp(p, "!{timestamp:", 12) != 0 &&
			strncmp(p, "!{firehose:random-string}", 25) != 0)
			FH_INVALID("Prefix expression \"%.*s\" is not supported: use !{timestamp:yyyy/MM/dd/HH} or !{firehose:random-string}",
					   (int) (end - p + 1), p);
	}
}

/* What create_delivery_stream was given, checked */
typedef struct FhConfig
{
	char	   *type;			/* DirectPut, KinesisStreamAsSource */
	int32		source_stream_id;
	char	   *source_stream_name;
	Oid			processor;
	int32		retries;
	int32		processor_buffer;
	int32		size_mb;
	int32		interval;
	int32		retry_duration;
	char	   *dest_kind;		/* Table, File, Queue, Stream */
	Oid			dest_table;
	char	   *mapping;		/* Columns, JsonbColumn, RawColumn */
	char	   *column;
	char	   *dest_name;		/* Queue, Stream; HttpEndpoint: the URL */
	char	   *access_key;		/* HttpEndpoint */
	/* File */
	char	   *prefix;
	char	   *format;			/* Raw, JSONLines, CSV */
	char	   *compression;	/* UNCOMPRESSED, GZIP */
	Jsonb	   *csv_columns;
} FhConfig;

static void
fh_parse_processing(JsonbContainer *pc, FhConfig *c, Oid owner)
{
	static const char *const keys[] = {"Enabled", "Function", "NumberOfRetries",
	"BufferSizeInMBs", NULL};
	JsonbValue *v;
	bool		enabled = true;
	char	   *fn;
	Oid		   *argtypes;
	int			nargs;

	msgq_attr_check_keys(pc, keys, "ProcessingConfiguration");
	if ((v = msgq_jsonb_member(pc, "Enabled")) != NULL)
		enabled = fh_bool(v, "ProcessingConfiguration.Enabled");
	if ((v = msgq_jsonb_member(pc, "NumberOfRetries")) != NULL)
		c->retries = msgq_attr_int(v, "NumberOfRetries", 0, 300);
	if ((v = msgq_jsonb_member(pc, "BufferSizeInMBs")) != NULL)
		c->processor_buffer = msgq_attr_int(v, "ProcessingConfiguration.BufferSizeInMBs", 1, 3) * 1024 * 1024;
	fn = msgq_attr_str(msgq_jsonb_member(pc, "Function"), "ProcessingConfiguration.Function");
	if (!enabled)
		return;
	if (fn == NULL)
		FH_INVALID("ProcessingConfiguration needs a Function (a function taking and returning jsonb)");
	{
		LOCAL_FCINFO(lookup, 1);
		Datum		r;
		int			nest;

		InitFunctionCallInfoData(*lookup, NULL, 1, InvalidOid, NULL, NULL);
		lookup->args[0].value = CStringGetTextDatum(fn);
		lookup->args[0].isnull = false;
		nest = msgq_caller_search_path();
		r = to_regprocedure(lookup);
		AtEOXact_GUC(true, nest);
		c->processor = lookup->isnull ? InvalidOid : DatumGetObjectId(r);
	}
	if (!OidIsValid(c->processor))
		MSGQ_ERROR("ResourceNotFoundException", ERRCODE_MSGQ_RESOURCE_NOT_FOUND,
				   "function %s does not exist", fn);
	(void) get_func_signature(c->processor, &argtypes, &nargs);
	if (nargs != 1 || argtypes[0] != JSONBOID || get_func_rettype(c->processor) != JSONBOID)
		FH_INVALID("function %s must take one argument of type jsonb and return jsonb",
				   format_procedure(c->processor));
	if (pg_proc_aclcheck(c->processor, owner, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for function %s", format_procedure(c->processor)),
				 errdetail_internal("AWS error code: AccessDeniedException")));
}

static void
fh_parse_table(JsonbContainer *d, FhConfig *c, Oid owner)
{
	static const char *const keys[] = {"Type", "TableName", "ColumnMapping", "DataColumn", NULL};
	char	   *table;
	List	   *names;
	AttrNumber	att;
	Oid			atttype;
	int			nest;

	msgq_attr_check_keys(d, keys, "a Table destination");
	table = msgq_attr_str(msgq_jsonb_member(d, "TableName"), "TableName");
	if (table == NULL)
		FH_INVALID("a Table destination needs a TableName");
	names = stringToQualifiedNameList(table);
	nest = msgq_caller_search_path();
	c->dest_table = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
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
	c->mapping = msgq_attr_str(msgq_jsonb_member(d, "ColumnMapping"), "ColumnMapping");
	if (c->mapping == NULL)
		c->mapping = "Columns";
	if (strcmp(c->mapping, "Columns") != 0 && strcmp(c->mapping, "JsonbColumn") != 0 &&
		strcmp(c->mapping, "RawColumn") != 0)
		FH_INVALID("ColumnMapping must be Columns, JsonbColumn or RawColumn");
	c->column = msgq_attr_str(msgq_jsonb_member(d, "DataColumn"), "DataColumn");
	if (strcmp(c->mapping, "Columns") == 0)
	{
		if (c->column != NULL)
			FH_INVALID("DataColumn is only for ColumnMapping JsonbColumn or RawColumn");
		return;
	}
	if (c->column == NULL)
		FH_INVALID("ColumnMapping %s needs a DataColumn", c->mapping);
	att = get_attnum(c->dest_table, c->column);
	if (att == InvalidAttrNumber || att < 0)
		FH_INVALID("table \"%s\" has no column \"%s\"", get_rel_name(c->dest_table), c->column);
	atttype = get_atttype(c->dest_table, att);
	if (strcmp(c->mapping, "JsonbColumn") == 0 && atttype != JSONBOID)
		FH_INVALID("DataColumn \"%s\" must be of type jsonb", c->column);
	if (strcmp(c->mapping, "RawColumn") == 0 && atttype != BYTEAOID && atttype != TEXTOID)
		FH_INVALID("DataColumn \"%s\" must be of type bytea or text", c->column);
}

static void
fh_parse_file(JsonbContainer *d, FhConfig *c, Oid owner)
{
	static const char *const keys[] = {"Type", "Prefix", "Format", "CsvColumns",
	"CompressionFormat", NULL};
	JsonbValue *v;

	msgq_attr_check_keys(d, keys, "a File destination");
	if (msgq_delivery_directory == NULL || msgq_delivery_directory[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_ARGUMENT),
				 errmsg("File destinations are disabled"),
				 errdetail_internal("AWS error code: InvalidArgumentException"),
				 errhint("A superuser sets msgq.delivery_directory to the directory they write under.")));
	if (!superuser_arg(owner) && !has_privs_of_role(owner, ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied to deliver to files"),
				 errdetail_internal("AWS error code: AccessDeniedException"),
				 errhint("Only roles with the privileges of pg_write_server_files may create File destinations.")));
	c->prefix = msgq_attr_str(msgq_jsonb_member(d, "Prefix"), "Prefix");
	if (c->prefix == NULL)
		c->prefix = "";
	fh_check_prefix(c->prefix);
	c->format = msgq_attr_str(msgq_jsonb_member(d, "Format"), "Format");
	if (c->format == NULL)
		c->format = "Raw";
	if (strcmp(c->format, "Raw") != 0 && strcmp(c->format, "JSONLines") != 0 &&
		strcmp(c->format, "CSV") != 0)
		FH_INVALID("Format must be Raw, JSONLines or CSV");
	c->compression = msgq_attr_str(msgq_jsonb_member(d, "CompressionFormat"), "CompressionFormat");
	if (c->compression == NULL)
		c->compression = "UNCOMPRESSED";
	if (strcmp(c->compression, "UNCOMPRESSED") != 0 && strcmp(c->compression, "GZIP") != 0)
		FH_INVALID("CompressionFormat must be UNCOMPRESSED or GZIP");
	v = msgq_jsonb_member(d, "CsvColumns");
	if (strcmp(c->format, "CSV") == 0)
	{
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;
		int			n = 0;

		if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			FH_INVALID("Format CSV needs CsvColumns, an array of key names");
		it = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
			if (tok == WJB_ELEM)
			{
				if (e.type != jbvString || e.val.string.len == 0)
					FH_INVALID("CsvColumns must be an array of key names");
				n++;
			}
		if (n == 0)
			FH_INVALID("Format CSV needs CsvColumns, an array of key names");
		c->csv_columns = JsonbValueToJsonb(v);
	}
	else if (v != NULL)
		FH_INVALID("CsvColumns is only for Format CSV");
}

/* The destination, checked against the owner's privileges */
static void
fh_parse_destination(JsonbContainer *d, FhConfig *c, Oid owner)
{
	c->dest_kind = msgq_attr_str(msgq_jsonb_member(d, "Type"), "Destination.Type");
	if (c->dest_kind == NULL)
		FH_INVALID("Destination needs a Type: Table, File, Queue, Stream or HttpEndpoint");
	if (strcmp(c->dest_kind, "Table") == 0)
		fh_parse_table(d, c, owner);
	else if (strcmp(c->dest_kind, "File") == 0)
		fh_parse_file(d, c, owner);
	else if (strcmp(c->dest_kind, "Queue") == 0)
	{
		static const char *const keys[] = {"Type", "QueueName", NULL};
		MsgqQueue	queue;

		msgq_attr_check_keys(d, keys, "a Queue destination");
		c->dest_name = msgq_attr_str(msgq_jsonb_member(d, "QueueName"), "QueueName");
		if (c->dest_name == NULL)
			FH_INVALID("a Queue destination needs a QueueName");
		if (!msgq_queue_lookup(c->dest_name, &queue))
			msgq_queue_does_not_exist(c->dest_name);
		if (queue.fifo)
			FH_INVALID("a Queue destination must be a standard queue");
		msgq_check_queue_action(&queue, owner, MSGQ_ACT_SEND, "SendMessage");
		c->dest_name = pstrdup(queue.queue_name);
	}
	else if (strcmp(c->dest_kind, "Stream") == 0)
	{
		static const char *const keys[] = {"Type", "StreamName", NULL};
		int32		stream_id;
		char	   *stream_name;

		msgq_attr_check_keys(d, keys, "a Stream destination");
		c->dest_name = msgq_attr_str(msgq_jsonb_member(d, "StreamName"), "StreamName");
		if (c->dest_name == NULL)
			FH_INVALID("a Stream destination needs a StreamName");
		msgq_stream_check_endpoint(c->dest_name, owner);
		if (!msgq_stream_resolve(c->dest_name, owner, &stream_id, &stream_name))
			MSGQ_ERROR("ResourceNotFoundException", ERRCODE_MSGQ_RESOURCE_NOT_FOUND,
					   "stream \"%s\" not found", c->dest_name);
		c->dest_name = stream_name;
	}
	else if (strcmp(c->dest_kind, "HttpEndpoint") == 0)
	{
		static const char *const keys[] = {"Type", "Url", "AccessKey", "Name", NULL};

		msgq_attr_check_keys(d, keys, "an HttpEndpoint destination");
		c->dest_name = msgq_attr_str(msgq_jsonb_member(d, "Url"), "Url");
		if (c->dest_name == NULL)
			FH_INVALID("an HttpEndpoint destination needs a Url");
		if ((strncmp(c->dest_name, "http://", 7) != 0 && strncmp(c->dest_name, "https://", 8) != 0) ||
			strlen(c->dest_name) > FH_MAX_URL)
			FH_INVALID("Url must be an http:// or https:// URL of at most %d characters", FH_MAX_URL);
		c->access_key = msgq_attr_str(msgq_jsonb_member(d, "AccessKey"), "AccessKey");
		if (c->access_key != NULL &&
			(strlen(c->access_key) > FH_MAX_ACCESS_KEY || strpbrk(c->access_key, "\r\n") != NULL))
			FH_INVALID("AccessKey has at most %d characters, on one line", FH_MAX_ACCESS_KEY);
		(void) msgq_attr_str(msgq_jsonb_member(d, "Name"), "Name");
	}
	else
		FH_INVALID("Destination Type must be Table, File, Queue, Stream or HttpEndpoint");
}

static void
fh_parse(Jsonb *attrs, FhConfig *c, Oid owner)
{
	static const char *const keys[] = {"DeliveryStreamType", "KinesisStreamSourceConfiguration",
		"BufferingHints", "ProcessingConfiguration", "RetryOptions", "Destination",
	NULL};
	JsonbContainer *root;
	JsonbContainer *o;
	JsonbValue *v;

	memset(c, 0, sizeof(*c));
	c->type = "DirectPut";
	c->retries = 3;
	c->processor_buffer = 1024 * 1024;
	c->size_mb = 5;
	c->interval = 300;
	c->retry_duration = 300;
	if (attrs == NULL || !JB_ROOT_IS_OBJECT(attrs) || JB_ROOT_IS_SCALAR(attrs))
		FH_INVALID("attributes must be a JSON object");
	root = &attrs->root;
	msgq_attr_check_keys(root, keys, "the attributes");

	if ((v = msgq_jsonb_member(root, "DeliveryStreamType")) != NULL)
		c->type = msgq_attr_str(v, "DeliveryStreamType");
	if (strcmp(c->type, "DirectPut") != 0 && strcmp(c->type, "KinesisStreamAsSource") != 0)
		FH_INVALID("DeliveryStreamType must be DirectPut or KinesisStreamAsSource");
	o = msgq_attr_obj(msgq_jsonb_member(root, "KinesisStreamSourceConfiguration"),
			   "KinesisStreamSourceConfiguration");
	if (strcmp(c->type, "KinesisStreamAsSource") == 0)
	{
		static const char *const skeys[] = {"KinesisStreamARN", NULL};
		char	   *stream;

		if (o == NULL)
			FH_INVALID("DeliveryStreamType KinesisStreamAsSource needs a KinesisStreamSourceConfiguration");
		msgq_attr_check_keys(o, skeys, "KinesisStreamSourceConfiguration");
		stream = msgq_attr_str(msgq_jsonb_member(o, "KinesisStreamARN"), "KinesisStreamARN");
		if (stream == NULL)
			FH_INVALID("KinesisStreamSourceConfiguration needs a KinesisStreamARN");
		if (!msgq_stream_resolve(stream, owner, &c->source_stream_id, &c->source_stream_name))
			MSGQ_ERROR("ResourceNotFoundException", ERRCODE_MSGQ_RESOURCE_NOT_FOUND,
					   "stream \"%s\" not found", stream);
	}
	else if (o != NULL)
		FH_INVALID("KinesisStreamSourceConfiguration is only for DeliveryStreamType KinesisStreamAsSource");

	if ((o = msgq_attr_obj(msgq_jsonb_member(root, "BufferingHints"), "BufferingHints")) != NULL)
	{
		static const char *const bkeys[] = {"SizeInMBs", "IntervalInSeconds", NULL};
		JsonbValue *s = msgq_jsonb_member(o, "SizeInMBs");
		JsonbValue *i = msgq_jsonb_member(o, "IntervalInSeconds");

		msgq_attr_check_keys(o, bkeys, "BufferingHints");
		if ((s == NULL) != (i == NULL))
			FH_INVALID("BufferingHints needs both SizeInMBs and IntervalInSeconds, or neither");
		if (s != NULL)
		{
			c->size_mb = msgq_attr_int(s, "SizeInMBs", 1, 128);
			c->interval = msgq_attr_int(i, "IntervalInSeconds", 0, 900);
		}
	}
	if ((o = msgq_attr_obj(msgq_jsonb_member(root, "RetryOptions"), "RetryOptions")) != NULL)
	{
		static const char *const rkeys[] = {"DurationInSeconds", NULL};

		msgq_attr_check_keys(o, rkeys, "RetryOptions");
		if ((v = msgq_jsonb_member(o, "DurationInSeconds")) != NULL)
			c->retry_duration = msgq_attr_int(v, "DurationInSeconds", 0, 7200);
	}
	if ((o = msgq_attr_obj(msgq_jsonb_member(root, "ProcessingConfiguration"),
					"ProcessingConfiguration")) != NULL)
		fh_parse_processing(o, c, owner);
	o = msgq_attr_obj(msgq_jsonb_member(root, "Destination"), "Destination");
	if (o == NULL)
		FH_INVALID("a delivery stream needs a Destination");
	fh_parse_destination(o, c, owner);
}

/* The destination as describe_delivery_stream shows it */
static Jsonb *
fh_destination_json(const FhConfig *c)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"Type\": ");
	escape_json(&s, c->dest_kind);
	if (strcmp(c->dest_kind, "Table") == 0)
	{
		appendStringInfoString(&s, ", \"TableName\": ");
		escape_json(&s, quote_qualified_identifier(get_namespace_name(get_rel_namespace(c->dest_table)),
												   get_rel_name(c->dest_table)));
		appendStringInfoString(&s, ", \"ColumnMapping\": ");
		escape_json(&s, c->mapping);
		if (c->column)
		{
			appendStringInfoString(&s, ", \"DataColumn\": ");
			escape_json(&s, c->column);
		}
	}
	else if (strcmp(c->dest_kind, "File") == 0)
	{
		appendStringInfoString(&s, ", \"Prefix\": ");
		escape_json(&s, c->prefix);
		appendStringInfoString(&s, ", \"Format\": ");
		escape_json(&s, c->format);
		appendStringInfoString(&s, ", \"CompressionFormat\": ");
		escape_json(&s, c->compression);
		if (c->csv_columns)
			appendStringInfo(&s, ", \"CsvColumns\": %s",
							 JsonbToCString(NULL, &c->csv_columns->root, VARSIZE(c->csv_columns)));
	}
	else if (strcmp(c->dest_kind, "HttpEndpoint") == 0)
	{
		/* the access key is not shown, as Firehose does not */
		appendStringInfoString(&s, ", \"Url\": ");
		escape_json(&s, c->dest_name);
	}
	else
	{
		appendStringInfo(&s, ", \"%s\": ", strcmp(c->dest_kind, "Queue") == 0 ? "QueueName" : "StreamName");
		escape_json(&s, c->dest_name);
	}
	appendStringInfoChar(&s, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

/* ------------------------------------------------------------------------
 * Wake-ups
 * ------------------------------------------------------------------------
 *
 * A direct-mapped table in shared memory: the worker publishes each
 * delivery stream (its id, the bytes that make a batch, 0 with
 * IntervalInSeconds 0, and the bytes it saw buffered) and, negated, each
 * source stream; a put's commit adds its bytes to its delivery stream's
 * slot and wakes the worker when they reach the threshold, or when the
 * buffer was empty (the first record starts the interval the worker then
 * waits for), once until the worker's next look.  A put whose delivery
 * stream the worker has not published yet wakes it.
 */
#define FH_SLOTS 256

typedef struct FhSlot
{
	Oid			dboid;			/* InvalidOid: free */
	int32		id;				/* ds_id, or a source stream's -stream_id */
	int64		threshold;
	pg_atomic_uint64 pending;
	pg_atomic_uint32 requested;
} FhSlot;

static FhSlot *fh_slots = NULL;

void
msgq_firehose_shmem_size(Size *size)
{
	*size = add_size(*size, mul_size(FH_SLOTS, sizeof(FhSlot)));
}

void
msgq_firehose_shmem_init(void)
{
	bool		found;
	int			i;

	fh_slots = ShmemInitStruct("msgq delivery streams", mul_size(FH_SLOTS, sizeof(FhSlot)), &found);
	if (!found)
		for (i = 0; i < FH_SLOTS; i++)
		{
			fh_slots[i].dboid = InvalidOid;
			fh_slots[i].id = 0;
			fh_slots[i].threshold = 0;
			pg_atomic_init_u64(&fh_slots[i].pending, 0);
			pg_atomic_init_u32(&fh_slots[i].requested, 0);
		}
}

static FhSlot *
fh_slot(int32 id)
{
	if (fh_slots == NULL)
		return NULL;
	return &fh_slots[hash_combine(murmurhash32((uint32) MyDatabaseId),
								  murmurhash32((uint32) id)) % FH_SLOTS];
}

/* the worker: id needs a look once bytes more are pending */
static void
fh_publish(int32 id, int64 threshold, int64 pending)
{
	FhSlot	   *slot = fh_slot(id);

	if (slot == NULL)
		return;
	slot->id = id;
	slot->threshold = threshold;
	pg_write_barrier();
	slot->dboid = MyDatabaseId;
	pg_atomic_write_u64(&slot->pending, (uint64) Max(pending, 0));
	pg_atomic_write_u32(&slot->requested, 0);
}

static void
fh_committed(int32 id, int64 bytes)
{
	FhSlot	   *slot = fh_slot(id);
	uint64		before;

	if (slot == NULL)
		return;
	if (slot->dboid != MyDatabaseId || slot->id != id)
	{
		/* not published (yet): the worker looks, and publishes it */
		if (id > 0)
			msgq_bgw_wake_worker(MyDatabaseId);
		return;
	}
	/*
	 * Wake the worker when the batch is due by size, at once with
	 * IntervalInSeconds 0, or when the buffer was empty at its last look
	 * (the interval starts with this first record).
	 */
	before = pg_atomic_fetch_add_u64(&slot->pending, (uint64) bytes);
	if ((slot->threshold == 0 || before == 0 ||
		 before + (uint64) bytes >= (uint64) slot->threshold) &&
		pg_atomic_exchange_u32(&slot->requested, 1) == 0)
		msgq_bgw_wake_worker(MyDatabaseId);
}

/* the worker reads stream_id (a delivery stream's or a stream query's source) */
void
msgq_firehose_publish_source(int32 stream_id)
{
	fh_publish(-stream_id, 0, 0);
}

/* at a commit that wrote to a stream (wait.c): a delivery stream's source? */
void
msgq_firehose_source_committed(int32 queue_id)
{
	if (queue_id < 0)
		fh_committed(queue_id, 1);
}

/* the puts of this transaction, by delivery stream */
typedef struct FhPending
{
	int32		ds_id;
	int64		bytes;
} FhPending;

static FhPending fh_pending[8];
static int	fh_npending = 0;
static bool fh_callback_registered = false;

static void
fh_xact_callback(XactEvent event, void *arg)
{
	int			i;

	if (fh_npending == 0)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		for (i = 0; i < fh_npending; i++)
			fh_committed(fh_pending[i].ds_id, fh_pending[i].bytes);
		fh_npending = 0;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
		fh_npending = 0;
}

static void
fh_remember_put(int32 ds_id, int64 bytes)
{
	int			i;

	if (!fh_callback_registered)
	{
		RegisterXactCallback(fh_xact_callback, NULL);
		fh_callback_registered = true;
	}
	for (i = 0; i < fh_npending; i++)
		if (fh_pending[i].ds_id == ds_id)
		{
			fh_pending[i].bytes += bytes;
			return;
		}
	if (fh_npending == lengthof(fh_pending))
	{
		/* many delivery streams in one transaction: wake the worker */
		msgq_delivery_wake_worker_at_commit();
		return;
	}
	fh_pending[fh_npending].ds_id = ds_id;
	fh_pending[fh_npending].bytes = bytes;
	fh_npending++;
}

/* ------------------------------------------------------------------------
 * The SQL functions
 * ------------------------------------------------------------------------
 */

/* A delivery stream by name: its id, owner; false when there is none */
static bool
fh_lookup(const char *name, int32 *ds_id, Oid *owner, bool for_update, bool *direct_put)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_lock = NULL;
	bool		isnull;

	if (SPI_execute_plan(for_update ?
						 msgq_plan(&plan_lock, "SELECT ds_id, owner::pg_catalog.oid,"
								   "       source_kind OPERATOR(pg_catalog.=) 'DirectPut' FROM msgq.delivery_stream"
								   " WHERE ds_name OPERATOR(pg_catalog.=) $1 FOR UPDATE", 1, (Oid[]) {TEXTOID}) :
						 msgq_plan(&plan, "SELECT ds_id, owner::pg_catalog.oid,"
								   "       source_kind OPERATOR(pg_catalog.=) 'DirectPut' FROM msgq.delivery_stream"
								   " WHERE ds_name OPERATOR(pg_catalog.=) $1", 1, (Oid[]) {TEXTOID}),
						 (Datum[]) {CStringGetTextDatum(name)}, NULL, !for_update, 1) < 0)
		elog(ERROR, "could not look up the delivery stream");
	if (SPI_processed == 0)
		return false;
	*ds_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (direct_put)
		*direct_put = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	return true;
}

/* The caller acts on a delivery stream: its owner, a member, or a superuser */
static void
fh_check_owner(const char *name, Oid owner, Oid caller)
{
	if (!superuser_arg(caller) && !has_privs_of_role(caller, owner))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for delivery stream %s", name),
				 errdetail_internal("AWS error code: AccessDeniedException"),
				 errhint("Grant the delivery stream's owner role to the roles that use it.")));
}

/* msgq.create_delivery_stream(delivery_stream_name text, attributes jsonb) */
PG_FUNCTION_INFO_V1(msgq_create_delivery_stream);
Datum
msgq_create_delivery_stream(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	Jsonb	   *attrs = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	FhConfig	c;
	int32		ds_id;
	Oid			owner;
	bool		isnull;
	TimestampTz now;
	text	   *result;

	msgq_check_preloaded();
	fh_check_name(name);
	if (attrs == NULL)
		FH_INVALID("a delivery stream needs a Destination");
	msgq_call_enter(&call);
	owner = call.caller;
	if (fh_lookup(name, &ds_id, &owner, false, NULL))
		MSGQ_ERROR("ResourceInUseException", ERRCODE_MSGQ_RESOURCE_IN_USE,
				   "delivery stream \"%s\" already exists", name);
	owner = call.caller;
	fh_parse(attrs, &c, owner);

	now = msgq_now();
	if (SPI_execute("SELECT pg_catalog.nextval('msgq.delivery_stream_id_seq'::pg_catalog.regclass)::integer",
					false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not number the delivery stream");
	ds_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (SPI_execute_with_args("INSERT INTO msgq.delivery_stream"
							  "  (ds_id, ds_name, owner, source_kind, source_stream_id, source_stream_arn,"
							  "   processor, processor_retries, processor_buffer, buffer_bytes, buffer_interval,"
							  "   destination_kind, destination, dest_table, dest_mapping, dest_column,"
							  "   dest_name, retry_duration, created_at, last_modified, dest_access_key)"
							  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
							  "         $16, $17, $18, $19, $19, $20)",
							  20, (Oid[]) {INT4OID, TEXTOID, OIDOID, TEXTOID, INT4OID, TEXTOID,
							  OIDOID, INT4OID, INT4OID, INT4OID, INT4OID, TEXTOID, JSONBOID, OIDOID,
							  TEXTOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID},
							  (Datum[]) {Int32GetDatum(ds_id), CStringGetTextDatum(name),
							  ObjectIdGetDatum(owner), CStringGetTextDatum(c.type),
							  Int32GetDatum(c.source_stream_id),
							  c.source_stream_name ? CStringGetTextDatum(msgq_stream_arn(c.source_stream_name)) : (Datum) 0,
							  ObjectIdGetDatum(c.processor), Int32GetDatum(c.retries),
							  Int32GetDatum(c.processor_buffer), Int32GetDatum(c.size_mb * 1024 * 1024),
							  Int32GetDatum(c.interval), CStringGetTextDatum(c.dest_kind),
							  JsonbPGetDatum(fh_destination_json(&c)), ObjectIdGetDatum(c.dest_table),
							  c.mapping ? CStringGetTextDatum(c.mapping) : (Datum) 0,
							  c.column ? CStringGetTextDatum(c.column) : (Datum) 0,
							  c.dest_name ? CStringGetTextDatum(c.dest_name) : (Datum) 0,
							  Int32GetDatum(c.retry_duration), TimestampTzGetDatum(now),
							  c.access_key ? CStringGetTextDatum(c.access_key) : (Datum) 0},
							  (char[]) {' ', ' ', ' ', ' ', c.source_stream_name ? ' ' : 'n',
							  c.source_stream_name ? ' ' : 'n', OidIsValid(c.processor) ? ' ' : 'n',
							  ' ', ' ', ' ', ' ', ' ', ' ', OidIsValid(c.dest_table) ? ' ' : 'n',
							  c.mapping ? ' ' : 'n', c.column ? ' ' : 'n', c.dest_name ? ' ' : 'n',
							  ' ', ' ', c.access_key ? ' ' : 'n'},
							  false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not create the delivery stream");

	/* a stream source starts at its newest records (Firehose reads from LATEST) */
	if (c.source_stream_name != NULL &&
		SPI_execute_with_args("INSERT INTO msgq.delivery_source_shard (ds_id, shard_index, seq)"
							  " SELECT $1, shard_index,"
							  "        (SELECT CASE WHEN is_called THEN last_value OPERATOR(pg_catalog.+) 1"
							  "                     ELSE last_value END FROM msgq.stream_seq)"
							  "   FROM msgq.shard WHERE stream_id OPERATOR(pg_catalog.=) $2",
							  2, (Oid[]) {INT4OID, INT4OID},
							  (Datum[]) {Int32GetDatum(ds_id), Int32GetDatum(c.source_stream_id)},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not position the delivery stream's source");
	msgq_delivery_wake_worker_at_commit();
	{
		MemoryContext old = MemoryContextSwitchTo(call.cxt);

		result = cstring_to_text(fh_arn(name));
		MemoryContextSwitchTo(old);
	}
	msgq_call_leave(&call);
	PG_RETURN_TEXT_P(result);
}

/* msgq.delete_delivery_stream(delivery_stream_name text) */
PG_FUNCTION_INFO_V1(msgq_delete_delivery_stream);
Datum
msgq_delete_delivery_stream(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	const char *name = fh_ref_name(ref);
	MsgqCall	call;
	int32		ds_id;
	Oid			owner;

	msgq_check_preloaded();
	msgq_call_enter(&call);
	if (name == NULL || !fh_lookup(name, &ds_id, &owner, true, NULL))
		fh_not_found(name);
	fh_check_owner(name, owner, call.caller);
	if (SPI_execute_with_args("DELETE FROM msgq.delivery_stream WHERE ds_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(ds_id)},
							  NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_with_args("DELETE FROM msgq.delivery_record WHERE ds_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(ds_id)},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the delivery stream");
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

#define FH_DESCRIBE_SQL \
	"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(" \
	"  'DeliveryStreamName', d.ds_name, 'DeliveryStreamARN', $2 OPERATOR(pg_catalog.||) d.ds_name," \
	"  'DeliveryStreamStatus', 'ACTIVE', 'DeliveryStreamType', d.source_kind," \
	"  'VersionId', d.version_id::pg_catalog.text, 'CreateTimestamp', d.created_at," \
	"  'LastUpdateTimestamp', d.last_modified, 'HasMoreDestinations', false," \
	"  'Source', CASE WHEN d.source_stream_arn IS NOT NULL THEN" \
	"    pg_catalog.jsonb_build_object('KinesisStreamSourceDescription'," \
	"      pg_catalog.jsonb_build_object('KinesisStreamARN', d.source_stream_arn)) END," \
	"  'Destinations', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(" \
	"    'DestinationId', 'destinationId-000000000001'," \
	"    'Destination', d.destination," \
	"    'BufferingHints', pg_catalog.jsonb_build_object(" \
	"       'SizeInMBs', d.buffer_bytes OPERATOR(pg_catalog./) 1048576, 'IntervalInSeconds', d.buffer_interval)," \
	"    'RetryOptions', pg_catalog.jsonb_build_object('DurationInSeconds', d.retry_duration)," \
	"    'ProcessingConfiguration', pg_catalog.jsonb_build_object('Enabled', d.processor IS NOT NULL)" \
	"       OPERATOR(pg_catalog.||) CASE WHEN d.processor IS NOT NULL THEN pg_catalog.jsonb_build_object(" \
	"         'Function', d.processor::pg_catalog.text, 'NumberOfRetries', d.processor_retries," \
	"         'BufferSizeInMBs', d.processor_buffer OPERATOR(pg_catalog./) 1048576)" \
	"       ELSE '{}'::pg_catalog.jsonb END))))" \
	"  FROM msgq.delivery_stream d WHERE d.ds_id OPERATOR(pg_catalog.=) $1"

/* msgq.describe_delivery_stream(delivery_stream_name text) */
PG_FUNCTION_INFO_V1(msgq_describe_delivery_stream);
Datum
msgq_describe_delivery_stream(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	const char *name = fh_ref_name(ref);
	MsgqCall	call;
	int32		ds_id;
	Oid			owner;
	bool		isnull;
	Datum		j;
	char	   *arn;

	msgq_check_preloaded();
	msgq_call_enter(&call);
	if (name == NULL || !fh_lookup(name, &ds_id, &owner, false, NULL))
		fh_not_found(name);
	fh_check_owner(name, owner, call.caller);
	arn = fh_arn("");
	if (SPI_execute_with_args(FH_DESCRIBE_SQL, 2, (Oid[]) {INT4OID, TEXTOID},
							  (Datum[]) {Int32GetDatum(ds_id), CStringGetTextDatum(arn)},
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not describe the delivery stream");
	j = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	{
		MemoryContext old = MemoryContextSwitchTo(call.cxt);

		j = PointerGetDatum(DatumGetJsonbPCopy(j));
		MemoryContextSwitchTo(old);
	}
	msgq_call_leave(&call);
	PG_RETURN_DATUM(j);
}

/* msgq.list_delivery_streams(delivery_stream_type text DEFAULT NULL) */
PG_FUNCTION_INFO_V1(msgq_list_delivery_streams);
Datum
msgq_list_delivery_streams(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *type = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	uint64		i;

	msgq_check_preloaded();
	if (type != NULL && strcmp(type, "DirectPut") != 0 && strcmp(type, "KinesisStreamAsSource") != 0)
		FH_INVALID("DeliveryStreamType must be DirectPut or KinesisStreamAsSource");
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);
	if (SPI_execute_with_args("SELECT ds_name FROM msgq.delivery_stream"
							  " WHERE ($1::pg_catalog.text IS NULL OR source_kind OPERATOR(pg_catalog.=) $1)"
							  "   AND ($2 OR pg_catalog.pg_has_role($3, owner, 'USAGE'))"
							  " ORDER BY ds_name",
							  3, (Oid[]) {TEXTOID, BOOLOID, OIDOID},
							  (Datum[]) {type ? CStringGetTextDatum(type) : (Datum) 0,
							  BoolGetDatum(superuser_arg(call.caller)), ObjectIdGetDatum(call.caller)},
							  (char[]) {type ? ' ' : 'n', ' ', ' '}, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list delivery streams");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		v = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/*
 * A record's RecordId: its delivery stream and number, in hex.  Opaque to
 * producers; nothing is granted by knowing one (a transform's answer is
 * matched against the ids of its own invocation).
 */
static char *
fh_record_id(int32 ds_id, int64 seq)
{
	return psprintf("%08x%016" INT64_MODIFIER "x", (uint32) ds_id, (uint64) seq);
}

static bool
fh_record_id_decode(const char *id, int32 *ds_id, int64 *seq)
{
	char		part[17];
	char	   *end;
	int			i;

	if (strlen(id) != 24)
		return false;
	for (i = 0; i < 24; i++)
		if (!isxdigit((unsigned char) id[i]))
			return false;
	memcpy(part, id, 8);
	part[8] = '\0';
	*ds_id = (int32) strtoul(part, &end, 16);
	*seq = (int64) strtoull(id + 8, &end, 16);
	return true;
}

/* n numbers of msgq.delivery_record_seq into seqs (int8 Datums) */
static void
fh_number_records(int n, Datum *seqs)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	int			i;

	if (SPI_execute_plan(msgq_plan(&plan,
								   "SELECT pg_catalog.nextval('msgq.delivery_record_seq'::pg_catalog.regclass)"
								   "  FROM pg_catalog.generate_series(1, $1)", 1, (Oid[]) {INT4OID}),
						 (Datum[]) {Int32GetDatum(n)}, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != (uint64) n)
		elog(ERROR, "could not number the records");
	for (i = 0; i < n; i++)
		seqs[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * Buffer n records of a DirectPut delivery stream, as the extension owner;
 * their ids into ids[] (allocated in cxt).
 */
static void
fh_put(const char *name, Oid caller, bytea **datas, int n, char **ids, MemoryContext cxt)
{
	static SPIPlanPtr plan_insert = NULL;
	int32		ds_id;
	Oid			owner;
	bool		direct_put;
	Datum	   *seqs = palloc(sizeof(Datum) * n);
	Datum	   *vals = palloc(sizeof(Datum) * n);
	int64		bytes = 0;
	int			i;

	if (name == NULL || !fh_lookup(name, &ds_id, &owner, false, &direct_put))
		fh_not_found(name);
	fh_check_owner(name, owner, caller);
	if (!direct_put)
		FH_INVALID("delivery stream \"%s\" reads a stream: it takes no puts", name);

	fh_number_records(n, seqs);
	for (i = 0; i < n; i++)
	{
		vals[i] = PointerGetDatum(datas[i]);
		bytes += VARSIZE_ANY_EXHDR(datas[i]);
	}
	/* (minting an id may run a query: SPI_tuptable is done with) */
	for (i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		ids[i] = fh_record_id(ds_id, DatumGetInt64(seqs[i]));
		MemoryContextSwitchTo(old);
	}
	if (SPI_execute_plan(msgq_plan(&plan_insert,
								   "INSERT INTO msgq.delivery_record (ds_id, record_seq, arrival, data)"
								   " SELECT $1, s, $2, d FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.int8[]),"
								   "                                     pg_catalog.unnest($4::pg_catalog.bytea[])) r(s, d)",
								   4, (Oid[]) {INT4OID, TIMESTAMPTZOID, INT8ARRAYOID, BYTEAARRAYOID}),
						 (Datum[]) {Int32GetDatum(ds_id), TimestampTzGetDatum(msgq_now()),
						 PointerGetDatum(construct_array(seqs, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
						 PointerGetDatum(construct_array(vals, n, BYTEAOID, -1, false, TYPALIGN_INT))},
						 NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not buffer the records");
	fh_remember_put(ds_id, bytes);
}

static void
fh_check_record(bytea *data)
{
	if (VARSIZE_ANY_EXHDR(data) > FH_MAX_RECORD)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "a record's data has at most 1,000 KiB, not %zu bytes",
				   (size_t) VARSIZE_ANY_EXHDR(data));
}

/* msgq.put_delivery_record(delivery_stream_name text, data bytea) */
PG_FUNCTION_INFO_V1(msgq_put_delivery_record);
Datum
msgq_put_delivery_record(PG_FUNCTION_ARGS)
{
	const char *name = fh_ref_name(msgq_text_arg(fcinfo, 0));
	bytea	   *data;
	MsgqCall	call;
	char	   *id;

	msgq_check_preloaded();
	if (PG_ARGISNULL(1))
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT, "a record needs its data");
	data = PG_GETARG_BYTEA_PP(1);
	fh_check_record(data);
	msgq_call_enter(&call);
	fh_put(name, call.caller, &data, 1, &id, call.cxt);
	msgq_call_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text(id));
}

/* msgq.put_record_batch(delivery_stream_name text, records jsonb) */
PG_FUNCTION_INFO_V1(msgq_put_record_batch);
Datum
msgq_put_record_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *name = fh_ref_name(msgq_text_arg(fcinfo, 0));
	Jsonb	   *records = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bytea	  **datas;
	char	  **ids;
	int			n = 0,
				i;
	int64		total = 0;

	msgq_check_preloaded();
	if (records == NULL || !JB_ROOT_IS_ARRAY(records) || JB_ROOT_IS_SCALAR(records))
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "records must be a JSON array of {\"Data\": base64}");
	n = JB_ROOT_COUNT(records);
	if (n < 1 || n > FH_MAX_BATCH_RECORDS)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "a batch has 1 to %d records, not %d", FH_MAX_BATCH_RECORDS, n);
	datas = palloc(sizeof(bytea *) * n);
	ids = palloc(sizeof(char *) * n);
	it = JsonbIteratorInit(&records->root);
	i = 0;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue *d;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data) ||
			(d = msgq_jsonb_member(v.val.binary.data, "Data")) == NULL || d->type != jbvString)
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "record %d must be an object with a Data string (base64)", i + 1);
		datas[i] = fh_b64_decode(d->val.string.val, d->val.string.len);
		if (datas[i] == NULL)
			MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
					   "record %d's Data is not valid base64", i + 1);
		fh_check_record(datas[i]);
		total += VARSIZE_ANY_EXHDR(datas[i]);
		i++;
	}
	if (total > FH_MAX_BATCH_BYTES)
		MSGQ_ERROR("ValidationException", ERRCODE_MSGQ_INVALID_ARGUMENT,
				   "a batch has at most 4 MiB of data, not " INT64_FORMAT " bytes", total);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);
	fh_put(name, call.caller, datas, n, ids, call.cxt);
	msgq_call_leave(&call);
	for (i = 0; i < n; i++)
	{
		Datum		vals[3] = {CStringGetTextDatum(ids[i]), (Datum) 0, (Datum) 0};
		bool		nulls[3] = {false, true, true};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, vals, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * The worker's pass
 * ------------------------------------------------------------------------
 */

typedef struct FhRow
{
	int32		ds_id;
	char	   *name;
	Oid			owner;
	bool		stream_source;
	int32		source_stream_id;
	Oid			processor;
	int32		retries;
	int32		processor_buffer;
	int64		buffer_bytes;
	int32		interval;
	char	   *dest_kind;
	Jsonb	   *destination;
	Oid			dest_table;
	char	   *mapping;
	char	   *column;
	char	   *dest_name;
	char	   *access_key;
	int32		retry_duration;
	int32		version;
	int32		attempts;
	TimestampTz first_failure_at;
	TimestampTz next_attempt_at;
} FhRow;

enum
{
	FH_OK, FH_DROPPED, FH_FAILED
};

/* One record of a batch */
typedef struct FhRec
{
	int64		seq;
	TimestampTz arrival;
	bytea	   *raw;			/* as put */
	bytea	   *out;			/* as transformed (raw without a transform) */
	char	   *id;
	ItemPointerData tid;		/* its row in the buffer */
	int			state;
	const char *code;
	char	   *message;
	const char *output_type;
} FhRec;

static void
fh_fail(FhRec *r, const char *output_type, const char *code, const char *message)
{
	r->state = FH_FAILED;
	r->output_type = output_type;
	r->code = code;
	r->message = message ? pstrdup(message) : NULL;
}

static void
fh_as_owner(Oid owner)
{
	Oid			save_userid;
	int			save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	/* the end of the subtransaction (msgq_run_subxact) restores both */
	(void) msgq_caller_search_path();
}

/* base64 text (whitespace allowed, as encode() writes it) to bytea; NULL if invalid */
static bytea *
fh_b64_decode(const char *b64, int len)
{
	char	   *clean = palloc(len + 1);
	int			n = 0,
				i,
				dlen;
	bytea	   *out;

	for (i = 0; i < len; i++)
		if (b64[i] != ' ' && b64[i] != '\n' && b64[i] != '\r' && b64[i] != '\t')
			clean[n++] = b64[i];
	out = palloc(VARHDRSZ + pg_b64_dec_len(n) + 1);
	dlen = n == 0 ? 0 : pg_b64_decode(clean, n, VARDATA(out), pg_b64_dec_len(n));
	pfree(clean);
	if (dlen < 0)
		return NULL;
	SET_VARSIZE(out, VARHDRSZ + dlen);
	return out;
}

static char *
fh_b64(const char *data, int len)
{
	char	   *b64 = palloc(pg_b64_enc_len(len) + 1);
	int			blen = len == 0 ? 0 : pg_b64_encode(data, len, b64, pg_b64_enc_len(len));

	b64[Max(blen, 0)] = '\0';
	return b64;
}

/* ---- the transform ---- */

typedef struct FhTransform
{
	FhRow	   *ds;
	FhRec	   *recs;
	int			first;
	int			n;
	Jsonb	   *response;
} FhTransform;

static void
fh_transform_call(void *arg)
{
	FhTransform *t = (FhTransform *) arg;
	StringInfoData s;
	FmgrInfo	flinfo;
	Datum		event;
	Datum		response;
	int			i;

	LOCAL_FCINFO(call, 1);

	msgq_check_execute(t->ds->processor, t->ds->owner);
	initStringInfo(&s);
	appendStringInfo(&s, "{\"invocationId\": \"%s\", \"deliveryStreamArn\": ",
					 DatumGetCString(DirectFunctionCall1(uuid_out,
														 DirectFunctionCall1(gen_random_uuid, (Datum) 0))));
	escape_json(&s, fh_arn(t->ds->name));
	appendStringInfoString(&s, ", \"region\": \"msgq\", \"records\": [");
	for (i = t->first; i < t->first + t->n; i++)
	{
		FhRec	   *r = &t->recs[i];

		appendStringInfo(&s, "%s{\"recordId\": \"%s\", \"approximateArrivalTimestamp\": " INT64_FORMAT
						 ", \"data\": \"%s\"}", i > t->first ? ", " : "", r->id,
						 (int64) ((r->arrival - SetEpochTimestamp()) / 1000),
						 fh_b64(VARDATA_ANY(r->raw), VARSIZE_ANY_EXHDR(r->raw)));
	}
	appendStringInfoString(&s, "]}");
	event = DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data));

	fmgr_info(t->ds->processor, &flinfo);
	InitFunctionCallInfoData(*call, &flinfo, 1, InvalidOid, NULL, NULL);
	call->args[0].value = event;
	call->args[0].isnull = false;
	fh_as_owner(t->ds->owner);
	response = FunctionCallInvoke(call);
	t->response = call->isnull ? NULL : DatumGetJsonbPCopy(response);
}

static int
fh_find_seq(FhRec *recs, int first, int n, int64 seq)
{
	int			lo = first,
				hi = first + n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (recs[mid].seq == seq)
			return mid;
		if (recs[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * Apply the function's response to records first .. first+n-1; false (with
 * the code and message) when the response breaks the contract.
 */
static bool
fh_transform_apply(FhTransform *t, const char **code, char **message)
{
	JsonbValue *recs;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool	   *seen = palloc0(sizeof(bool) * t->n);
	int			i;

	*code = "Lambda.FunctionError";
	if (t->response == NULL || !JB_ROOT_IS_OBJECT(t->response) ||
		(recs = msgq_jsonb_member(&t->response->root, "records")) == NULL ||
		recs->type != jbvBinary || !JsonContainerIsArray(recs->val.binary.data))
	{
		*message = "the function did not return {\"records\": [...]}";
		return false;
	}
	it = JsonbIteratorInit(recs->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *id,
				   *result;
		int32		dsid;
		int64		seq;
		int			k;
		FhRec	   *r;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		{
			*message = "a record of the response is not an object";
			return false;
		}
		id = msgq_attr_str_or_null(v.val.binary.data, "recordId");
		result = msgq_attr_str_or_null(v.val.binary.data, "result");
		if (id == NULL || !fh_record_id_decode(id, &dsid, &seq) || dsid != t->ds->ds_id ||
			(k = fh_find_seq(t->recs, t->first, t->n, seq)) < 0)
		{
			*code = "Lambda.MissingRecordId";
			*message = psprintf("the response has a recordId that was not in the invocation: %s",
								id ? id : "null");
			return false;
		}
		if (seen[k - t->first])
		{
			*code = "Lambda.DuplicatedRecordId";
			*message = psprintf("the response has recordId %s twice", id);
			return false;
		}
		seen[k - t->first] = true;
		r = &t->recs[k];
		if (result != NULL && strcmp(result, "Ok") == 0)
		{
			char	   *data = msgq_attr_str_or_null(v.val.binary.data, "data");

			if (data == NULL)
			{
				fh_fail(r, "processing-failed", "Lambda.ProcessingFailed",
						"the function returned Ok without data");
				continue;
			}
			r->out = fh_b64_decode(data, strlen(data));
			if (r->out == NULL)
				fh_fail(r, "processing-failed", "Lambda.ProcessingFailed",
						"the function returned data that is not base64");
		}
		else if (result != NULL && strcmp(result, "Dropped") == 0)
			r->state = FH_DROPPED;
		else if (result != NULL && strcmp(result, "ProcessingFailed") == 0)
			fh_fail(r, "processing-failed", "Lambda.ProcessingFailed",
					"the function returned ProcessingFailed");
		else
		{
			*code = "Lambda.InvalidResult";
			*message = psprintf("the response's result for %s is not Ok, Dropped or ProcessingFailed", id);
			return false;
		}
	}
	for (i = 0; i < t->n; i++)
		if (!seen[i])
		{
			*code = "Lambda.MissingRecordId";
			*message = psprintf("the response is missing recordId %s", t->recs[t->first + i].id);
			return false;
		}
	return true;
}

/* Transform the batch, in invocations of up to processor_buffer bytes */
static void
fh_transform(FhRow *ds, FhRec *recs, int n, bool in_worker)
{
	int			first = 0;

	while (first < n)
	{
		FhTransform t;
		int64		bytes = 0;
		int			k = first;
		int			attempt;
		const char *code = NULL;
		char	   *message = NULL;
		bool		ok = false;

		while (k < n && (k == first || bytes + (int64) VARSIZE_ANY_EXHDR(recs[k].raw) <= ds->processor_buffer))
		{
			bytes += VARSIZE_ANY_EXHDR(recs[k].raw);
			k++;
		}
		t.ds = ds;
		t.recs = recs;
		t.first = first;
		t.n = k - first;
		for (attempt = 0; attempt <= ds->retries && !ok; attempt++)
		{
			ErrorData  *e;
			int			i;

			t.response = NULL;
			for (i = first; i < k; i++)
			{
				recs[i].state = FH_OK;
				recs[i].out = NULL;
			}
			e = msgq_run_subxact(fh_transform_call, &t, in_worker);
			if (e != NULL)
			{
				code = "Lambda.FunctionError";
				message = e->message;
				ereport(LOG,
						(errmsg("msgq delivery stream \"%s\": function %s failed on %d records: %s",
								ds->name, format_procedure(ds->processor), t.n, e->message)));
				continue;
			}
			ok = fh_transform_apply(&t, &code, &message);
			if (!ok)
				ereport(LOG,
						(errmsg("msgq delivery stream \"%s\": function %s: %s",
								ds->name, format_procedure(ds->processor), message)));
		}
		if (!ok)
		{
			int			i;

			for (i = first; i < k; i++)
				fh_fail(&recs[i], "processing-failed", code, message);
		}
		first = k;
	}
}

/* ---- destinations ---- */

/* a Table batch with a record that is not JSON: the flush sorts them out */
#define FH_ERRCODE_BAD_RECORDS	ERRCODE_INVALID_TEXT_REPRESENTATION

typedef struct FhDeliver
{
	FhRow	   *ds;
	FhRec	   *recs;
	int			n;
	TimestampTz now;
} FhDeliver;

/* is data, as a JSON text, valid (and an object, if asked)? */
bool
msgq_json_text_ok(bytea *data, bool object)
{
	char	   *p = VARDATA_ANY(data);
	int			len = VARSIZE_ANY_EXHDR(data);
	JsonLexContext *lex;
	int			i;

	if (pg_verifymbstr(p, len, true) == false)
		return false;
	if (object)
	{
		for (i = 0; i < len && isspace((unsigned char) p[i]); i++)
			;
		if (i == len || p[i] != '{')
			return false;
	}
	lex = makeJsonLexContextCstringLen(p, len, GetDatabaseEncoding(), true);
	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

/* a copy of the record's data as a NUL-terminated string */
static char *
fh_cstr(bytea *data)
{
	return pnstrdup(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));
}

static void
fh_deliver_table(void *arg)
{
	FhDeliver  *d = (FhDeliver *) arg;
	FhRow	   *ds = d->ds;
	char	   *rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(ds->dest_table)),
												 get_rel_name(ds->dest_table));
	StringInfoData sql;
	Datum	   *vals = palloc(sizeof(Datum) * d->n);
	int			n = 0,
				i;

	if (get_rel_name(ds->dest_table) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the destination table of delivery stream \"%s\" does not exist", ds->name)));
	initStringInfo(&sql);
	if (strcmp(ds->mapping, "RawColumn") == 0)
	{
		bool		text_col = get_atttype(ds->dest_table, get_attnum(ds->dest_table, ds->column)) == TEXTOID;

		for (i = 0; i < d->n; i++)
			if (d->recs[i].state == FH_OK)
				vals[n++] = PointerGetDatum(d->recs[i].out);
		appendStringInfo(&sql, "INSERT INTO %s (%s) SELECT %s FROM pg_catalog.unnest($1::pg_catalog.bytea[]) r",
						 rel, quote_identifier(ds->column),
						 text_col ? "pg_catalog.convert_from(r, pg_catalog.getdatabaseencoding())" : "r");
		fh_as_owner(ds->owner);
		if (SPI_execute_with_args(sql.data, 1, (Oid[]) {BYTEAARRAYOID},
								  (Datum[]) {PointerGetDatum(construct_array(vals, n, BYTEAOID, -1, false, TYPALIGN_INT))},
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into %s", rel);
		return;
	}
	/*
	 * The batch as one JSON array, parsed once: a record that is not JSON
	 * (or, for Columns, not one object) fails the whole statement with
	 * FH_ERRCODE_BAD_RECORDS, and the flush sorts the records out.
	 */
	{
		StringInfoData arr;
		Jsonb	   *batch;
		bool		columns = strcmp(ds->mapping, "Columns") == 0;

		initStringInfo(&arr);
		appendStringInfoChar(&arr, '[');
		for (i = 0; i < d->n; i++)
			if (d->recs[i].state == FH_OK)
			{
				if (n++ > 0)
					appendStringInfoChar(&arr, ',');
				appendBinaryStringInfo(&arr, VARDATA_ANY(d->recs[i].out), VARSIZE_ANY_EXHDR(d->recs[i].out));
			}
		appendStringInfoChar(&arr, ']');
		batch = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(arr.data)));
		if (JB_ROOT_COUNT(batch) != n)
			ereport(ERROR,
					(errcode(FH_ERRCODE_BAD_RECORDS),
					 errmsg("a record of the batch is not one JSON value")));
		if (columns)
			for (i = 0; i < n; i++)
			{
				JsonbValue *e = getIthJsonbValueFromContainer(&batch->root, i);

				if (e == NULL || e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
					ereport(ERROR,
							(errcode(FH_ERRCODE_BAD_RECORDS),
							 errmsg("a record of the batch is not a JSON object")));
			}
		if (!columns)
			appendStringInfo(&sql, "INSERT INTO %s (%s) SELECT pg_catalog.jsonb_array_elements($1)",
							 rel, quote_identifier(ds->column));
		else
		{
			/*
			 * The columns that some record of the batch names; the others
			 * get their defaults (a record without a key another one has
			 * gets NULL).
			 */
			Relation	r = table_open(ds->dest_table, AccessShareLock);
			TupleDesc	td = RelationGetDescr(r);
			StringInfoData cols;
			int			a;

			initStringInfo(&cols);
			for (a = 0; a < td->natts; a++)
			{
				Form_pg_attribute att = TupleDescAttr(td, a);
				JsonbValue	k;
				int			j;

				if (att->attisdropped || att->attgenerated)
					continue;
				k.type = jbvString;
				k.val.string.val = NameStr(att->attname);
				k.val.string.len = strlen(NameStr(att->attname));
				for (j = 0; j < n; j++)
				{
					JsonbValue *e = getIthJsonbValueFromContainer(&batch->root, j);

					if (findJsonbValueFromContainer(e->val.binary.data, JB_FOBJECT, &k) != NULL)
						break;
				}
				if (j == n)
					continue;
				appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", quote_identifier(NameStr(att->attname)));
			}
			table_close(r, AccessShareLock);
			if (cols.len == 0)
				appendStringInfo(&sql, "INSERT INTO %s SELECT FROM pg_catalog.jsonb_array_elements($1)", rel);
			else
				appendStringInfo(&sql, "INSERT INTO %s (%s) SELECT %s"
								 "  FROM pg_catalog.jsonb_populate_recordset(NULL::%s, $1)",
								 rel, cols.data, cols.data, rel);
		}
		fh_as_owner(ds->owner);
		if (SPI_execute_with_args(sql.data, 1, (Oid[]) {JSONBOID}, (Datum[]) {JsonbPGetDatum(batch)},
								  NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into %s", rel);
	}
}

static void
fh_deliver_queue(void *arg)
{
	static SPIPlanPtr plan = NULL;
	FhDeliver  *d = (FhDeliver *) arg;
	Datum	   *vals = palloc(sizeof(Datum) * d->n);
	int			n = 0,
				i;

	for (i = 0; i < d->n; i++)
		if (d->recs[i].state == FH_OK)
			vals[n++] = PointerGetDatum(cstring_to_text(fh_cstr(d->recs[i].out)));
	fh_as_owner(d->ds->owner);
	if (SPI_execute_plan(msgq_plan(&plan, "SELECT pg_catalog.count(msgq.send_message($1, b))"
								   "  FROM pg_catalog.unnest($2::pg_catalog.text[]) b",
								   2, (Oid[]) {TEXTOID, TEXTARRAYOID}),
						 (Datum[]) {CStringGetTextDatum(d->ds->dest_name),
						 PointerGetDatum(construct_array(vals, n, TEXTOID, -1, false, TYPALIGN_INT))},
						 NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not send to queue %s", d->ds->dest_name);
}

static void
fh_deliver_stream(void *arg)
{
	static SPIPlanPtr plan = NULL;
	FhDeliver  *d = (FhDeliver *) arg;
	Datum	   *keys = palloc(sizeof(Datum) * d->n);
	Datum	   *vals = palloc(sizeof(Datum) * d->n);
	int			i = 0;

	fh_as_owner(d->ds->owner);
	while (i < d->n)
	{
		int			n = 0;
		bool		isnull;
		int64		failed;

		for (; i < d->n && n < 500; i++)
			if (d->recs[i].state == FH_OK)
			{
				keys[n] = CStringGetTextDatum(psprintf(INT64_FORMAT, d->recs[i].seq));
				vals[n++] = PointerGetDatum(d->recs[i].out);
			}
		if (n == 0)
			break;
		if (SPI_execute_plan(msgq_plan(&plan, "SELECT pg_catalog.count(*) FILTER (WHERE error_code IS NOT NULL),"
									   "       pg_catalog.min(error_code)"
									   "  FROM msgq.put_records($1, $2::pg_catalog.text[], $3::pg_catalog.bytea[])",
									   3, (Oid[]) {TEXTOID, TEXTARRAYOID, BYTEAARRAYOID}),
							 (Datum[]) {CStringGetTextDatum(d->ds->dest_name),
							 PointerGetDatum(construct_array(keys, n, TEXTOID, -1, false, TYPALIGN_INT)),
							 PointerGetDatum(construct_array(vals, n, BYTEAOID, -1, false, TYPALIGN_INT))},
							 NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not put to stream %s", d->ds->dest_name);
		failed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		/* all or nothing: the subtransaction takes back the records put */
		if (failed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_THROUGHPUT_EXCEEDED),
					 errmsg("stream %s refused " INT64_FORMAT " of %d records: %s", d->ds->dest_name,
							failed, n, TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
																		 SPI_tuptable->tupdesc, 2, &isnull)))));
	}
}

/* ---- files ---- */

/* a deterministic 11-character string for the batch (!{firehose:random-string}) */
static void
fh_batch_string(int32 ds_id, int64 first_seq, char *out)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint64		h = hash_bytes_uint32_extended((uint32) ds_id, (uint64) first_seq);
	int			i;

	for (i = 0; i < 11; i++)
	{
		out[i] = alphabet[h % 36];
		h = h / 36 ^ ((uint64) (i + 1) * UINT64CONST(0x9E3779B97F4A7C15));
	}
	out[11] = '\0';
}

/* a timestamp in Java's DateTimeFormatter letters yyyy MM dd HH mm ss */
static void
fh_format_time(StringInfo s, const char *fmt, int len, struct pg_tm *tm)
{
	int			i = 0;

	while (i < len)
	{
		if (strncmp(fmt + i, "yyyy", 4) == 0)
			appendStringInfo(s, "%04d", tm->tm_year), i += 4;
		else if (strncmp(fmt + i, "MM", 2) == 0)
			appendStringInfo(s, "%02d", tm->tm_mon), i += 2;
		else if (strncmp(fmt + i, "dd", 2) == 0)
			appendStringInfo(s, "%02d", tm->tm_mday), i += 2;
		else if (strncmp(fmt + i, "HH", 2) == 0)
			appendStringInfo(s, "%02d", tm->tm_hour), i += 2;
		else if (strncmp(fmt + i, "mm", 2) == 0)
			appendStringInfo(s, "%02d", tm->tm_min), i += 2;
		else if (strncmp(fmt + i, "ss", 2) == 0)
			appendStringInfo(s, "%02d", tm->tm_sec), i += 2;
		else
			appendStringInfoChar(s, fmt[i++]);
	}
}

/*
 * The file's path below msgq.delivery_directory: the prefix evaluated at
 * the first record's arrival (UTC), YYYY/MM/dd/HH/ added when the prefix
 * has no timestamp, and the name
 * <stream>-<version>-yyyy-MM-dd-HH-mm-ss-<batch string>.
 */
static char *
fh_file_path(FhRow *ds, const char *prefix, FhRec *first)
{
	StringInfoData s;
	struct pg_tm tm;
	fsec_t		fsec;
	const char *p;
	char		batch[12];
	bool		has_time = false;

	if (timestamp2tm(first->arrival, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "timestamp out of range");
	fh_batch_string(ds->ds_id, first->seq, batch);
	initStringInfo(&s);
	for (p = prefix; *p;)
	{
		if (strncmp(p, "!{timestamp:", 12) == 0)
		{
			const char *end = strchr(p, '}');

			fh_format_time(&s, p + 12, (int) (end - p - 12), &tm);
			has_time = true;
			p = end + 1;
		}
		else if (strncmp(p, "!{firehose:random-string}", 25) == 0)
		{
			appendStringInfoString(&s, batch);
			p += 25;
		}
		else
			appendStringInfoChar(&s, *p++);
	}
	if (!has_time)
		appendStringInfo(&s, "%04d/%02d/%02d/%02d/", tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour);
	appendStringInfo(&s, "%s-%d-%04d-%02d-%02d-%02d-%02d-%02d-%s", ds->name, ds->version,
					 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, batch);
	return s.data;
}

static void
fh_csv_field(StringInfo s, const char *v, int len)
{
	int			i;
	bool		quote = false;

	for (i = 0; i < len; i++)
		if (v[i] == ',' || v[i] == '"' || v[i] == '\n' || v[i] == '\r')
			quote = true;
	if (!quote)
	{
		appendBinaryStringInfo(s, v, len);
		return;
	}
	appendStringInfoChar(s, '"');
	for (i = 0; i < len; i++)
	{
		if (v[i] == '"')
			appendStringInfoChar(s, '"');
		appendStringInfoChar(s, v[i]);
	}
	appendStringInfoChar(s, '"');
}

/* One record as a line of CSV: false when it is not a JSON object */
static bool
fh_csv_line(StringInfo s, bytea *data, Jsonb *columns)
{
	Jsonb	   *j;
	JsonbIterator *it;
	JsonbValue	c;
	JsonbIteratorToken tok;
	bool		first = true;

	if (!msgq_json_text_ok(data, true))
		return false;
	j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(fh_cstr(data))));
	it = JsonbIteratorInit(&columns->root);
	while ((tok = JsonbIteratorNext(&it, &c, true)) != WJB_DONE)
	{
		JsonbValue *v;

		if (tok != WJB_ELEM)
			continue;
		if (!first)
			appendStringInfoChar(s, ',');
		first = false;
		v = findJsonbValueFromContainer(&j->root, JB_FOBJECT, &c);
		if (v == NULL || v->type == jbvNull)
			continue;
		if (v->type == jbvString)
			fh_csv_field(s, v->val.string.val, v->val.string.len);
		else
		{
			char	   *t;

			if (v->type == jbvBinary)
				t = JsonbToCString(NULL, v->val.binary.data, -1);
			else
			{
				Jsonb	   *sc = JsonbValueToJsonb(v);

				t = JsonbToCString(NULL, &sc->root, VARSIZE(sc));
			}
			fh_csv_field(s, t, strlen(t));
		}
	}
	appendStringInfoChar(s, '\n');
	return true;
}

typedef struct FhFile
{
	FhDeliver  *d;
	StringInfoData body;
} FhFile;

/* write path (complete) from body: to a temporary name, synced, renamed */
static void
fh_write_file(FhRow *ds, const char *path, const char *body, size_t len, bool gzip)
{
	char	   *tmp = psprintf("%s.tmp", path);
	char	   *dir = pstrdup(path);
	char	   *slash = strrchr(dir, '/');

	if (slash != NULL)
	{
		*slash = '\0';
		if (pg_mkdir_p(dir, pg_dir_create_mode) != 0 && errno != EEXIST)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", dir)));
	}
	if (gzip)
	{
		gzFile		gz = gzopen(tmp, "wb");

		if (gz == NULL)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create file \"%s\": %m", tmp)));
		if (len > 0 && gzwrite(gz, body, (unsigned) len) != (int) len)
		{
			gzclose(gz);
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("could not write file \"%s\"", tmp)));
		}
		if (gzclose(gz) != Z_OK)
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("could not write file \"%s\"", tmp)));
	}
	else
	{
		int			fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);

		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create file \"%s\": %m", tmp)));
		if (len > 0 && write(fd, body, len) != (ssize_t) len)
		{
			int			save_errno = errno;

			CloseTransientFile(fd);
			errno = save_errno ? save_errno : ENOSPC;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\": %m", tmp)));
		}
		if (CloseTransientFile(fd) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not close file \"%s\": %m", tmp)));
	}
	/* syncs the file, renames it, syncs the directory */
	(void) durable_rename(tmp, path, ERROR);
}

static void
fh_deliver_file(void *arg)
{
	FhDeliver  *d = (FhDeliver *) arg;
	FhRow	   *ds = d->ds;
	JsonbContainer *dest = &ds->destination->root;
	char	   *prefix = msgq_attr_str(msgq_jsonb_member(dest, "Prefix"), "Prefix");
	char	   *format = msgq_attr_str(msgq_jsonb_member(dest, "Format"), "Format");
	char	   *compression = msgq_attr_str(msgq_jsonb_member(dest, "CompressionFormat"), "CompressionFormat");
	JsonbValue *cols = msgq_jsonb_member(dest, "CsvColumns");
	Jsonb	   *columns = cols ? JsonbValueToJsonb(cols) : NULL;
	bool		gzip = compression != NULL && strcmp(compression, "GZIP") == 0;
	StringInfoData body;
	FhRec	   *first = NULL;
	char	   *path;
	int			i;

	if (msgq_delivery_directory == NULL || msgq_delivery_directory[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_ARGUMENT),
				 errmsg("File destinations are disabled (msgq.delivery_directory is empty)")));
	initStringInfo(&body);
	for (i = 0; i < d->n; i++)
	{
		FhRec	   *r = &d->recs[i];

		if (r->state != FH_OK)
			continue;
		if (first == NULL)
			first = r;
		if (strcmp(format, "CSV") == 0)
			(void) fh_csv_line(&body, r->out, columns);
		else
		{
			int			len = VARSIZE_ANY_EXHDR(r->out);

			appendBinaryStringInfo(&body, VARDATA_ANY(r->out), len);
			if (strcmp(format, "JSONLines") == 0 && (len == 0 || VARDATA_ANY(r->out)[len - 1] != '\n'))
				appendStringInfoChar(&body, '\n');
		}
	}
	if (first == NULL)
		return;
	path = psprintf("%s/%s%s", msgq_delivery_directory, fh_file_path(ds, prefix ? prefix : "", first),
					gzip ? ".gz" : "");
	fh_write_file(ds, path, body.data, body.len, gzip);
}

/* ---- HTTP endpoints ---- */

static MsgqHttp *fh_http = NULL;
static uint64 fh_http_tag = 0;

/*
 * POST the batch as Firehose's HTTP endpoint delivery request; an error
 * unless a 2xx answer came back naming the request's requestId.
 */
static void
fh_deliver_http(void *arg)
{
	FhDeliver  *d = (FhDeliver *) arg;
	FhRow	   *ds = d->ds;
	char	   *request_id = DatumGetCString(DirectFunctionCall1(uuid_out,
																 DirectFunctionCall1(gen_random_uuid, (Datum) 0)));
	StringInfoData body;
	const char *headers[5];
	int			nheaders = 0;
	MsgqHttpResult res;
	bool		latch_seen = false;
	uint64		tag;
	int			i;
	bool		first = true;

	initStringInfo(&body);
	appendStringInfo(&body, "{\"requestId\": \"%s\", \"timestamp\": " INT64_FORMAT ", \"records\": [",
					 request_id, (int64) ((GetCurrentTimestamp() - SetEpochTimestamp()) / 1000));
	for (i = 0; i < d->n; i++)
	{
		FhRec	   *r = &d->recs[i];

		if (r->state != FH_OK)
			continue;
		appendStringInfo(&body, "%s{\"data\": \"%s\"}", first ? "" : ", ",
						 fh_b64(VARDATA_ANY(r->out), VARSIZE_ANY_EXHDR(r->out)));
		first = false;
	}
	appendStringInfoString(&body, "]}");
	headers[nheaders++] = "Content-Type: application/json";
	headers[nheaders++] = "X-Amz-Firehose-Protocol-Version: 1.0";
	headers[nheaders++] = psprintf("X-Amz-Firehose-Request-Id: %s", request_id);
	headers[nheaders++] = psprintf("X-Amz-Firehose-Source-Arn: %s", fh_arn(ds->name));
	if (ds->access_key != NULL)
		headers[nheaders++] = psprintf("X-Amz-Firehose-Access-Key: %s", ds->access_key);

	if (fh_http == NULL)
		fh_http = msgq_http_create();
	tag = ++fh_http_tag;
	msgq_http_post(fh_http, tag, ds->dest_name, headers, nheaders, body.data, body.len,
				   msgq_http_timeout_ms);
	for (;;)
	{
		int			rc = msgq_http_wait(fh_http, (long) msgq_http_timeout_ms + 1000,
										MSGQ_WAIT_EVENT("MsgqDeliveryStreamHttp"));

		if (rc == WL_LATCH_SET)
		{
			/* the worker's own wake-ups: kept for its next wait */
			ResetLatch(MyLatch);
			latch_seen = true;
			continue;
		}
		if (rc == WL_TIMEOUT)
		{
			if (latch_seen)
				SetLatch(MyLatch);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("no answer from %s within msgq.http_timeout", ds->dest_name)));
		}
		if (msgq_http_result(fh_http, &res) && res.tag == tag)
			break;				/* (an earlier transfer that timed out is dropped) */
	}
	if (latch_seen)
		SetLatch(MyLatch);
	if (res.status == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s: %s", ds->dest_name, res.error)));
	if (res.status < 200 || res.status > 299)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s answered HTTP status %ld", ds->dest_name, res.status)));
	{
		Jsonb	   *j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(res.body)));
		char	   *got = JB_ROOT_IS_OBJECT(j) ? msgq_attr_str_or_null(&j->root, "requestId") : NULL;

		if (got == NULL || strcmp(got, request_id) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("%s answered requestId %s, not %s", ds->dest_name,
							got ? got : "(none)", request_id)));
	}
}

/* Records the destination cannot take go to the error output before the batch */
static void
fh_precheck(FhRow *ds, FhRec *recs, int n)
{
	int			i;
	bool		is_table = strcmp(ds->dest_kind, "Table") == 0;
	bool		json = is_table && strcmp(ds->mapping, "RawColumn") != 0;
	bool		object = is_table && strcmp(ds->mapping, "Columns") == 0;
	bool		csv = false;
	bool		text = strcmp(ds->dest_kind, "Queue") == 0;

	if (strcmp(ds->dest_kind, "File") == 0)
	{
		char	   *format = msgq_attr_str(msgq_jsonb_member(&ds->destination->root, "Format"), "Format");

		csv = format != NULL && strcmp(format, "CSV") == 0;
	}
	if (is_table && strcmp(ds->mapping, "RawColumn") == 0 &&
		get_atttype(ds->dest_table, get_attnum(ds->dest_table, ds->column)) == TEXTOID)
		text = true;
	for (i = 0; i < n; i++)
	{
		FhRec	   *r = &recs[i];

		if (r->state != FH_OK)
			continue;
		if ((json || csv) && !msgq_json_text_ok(r->out, object || csv))
			fh_fail(r, "delivery-failed", object || csv ? "InvalidRecord.NotAJsonObject" : "InvalidRecord.NotJson",
					object || csv ? "the record is not a JSON object" : "the record is not JSON");
		else if (text && (memchr(VARDATA_ANY(r->out), '\0', VARSIZE_ANY_EXHDR(r->out)) != NULL ||
						  !pg_verifymbstr(VARDATA_ANY(r->out), VARSIZE_ANY_EXHDR(r->out), true)))
			fh_fail(r, "delivery-failed", "InvalidRecord.NotText",
					"the record is not text in the database's encoding");
	}
}

/* ---- a flush ---- */

/* a record of the batch from a row (record_seq, arrival, data, ctid) */
static void
fh_rec_from_tuple(FhRec *r, HeapTuple t, TupleDesc td)
{
	bool		isnull;

	r->seq = DatumGetInt64(SPI_getbinval(t, td, 1, &isnull));
	r->arrival = DatumGetTimestampTz(SPI_getbinval(t, td, 2, &isnull));
	r->raw = DatumGetByteaPCopy(SPI_getbinval(t, td, 3, &isnull));
	r->out = r->raw;
	r->state = FH_OK;
	r->tid = *(ItemPointer) DatumGetPointer(SPI_getbinval(t, td, 4, &isnull));
}

static void
fh_errors_insert(FhRow *ds, FhRec *recs, int n, int attempts, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *types = palloc(sizeof(Datum) * n);
	Datum	   *arrivals = palloc(sizeof(Datum) * n);
	Datum	   *codes = palloc(sizeof(Datum) * n);
	Datum	   *messages = palloc(sizeof(Datum) * n);
	bool	   *mnulls = palloc(sizeof(bool) * n);
	Datum	   *raws = palloc(sizeof(Datum) * n);
	int			k = 0,
				i;
	int			dims[1];
	int			lbs[1] = {1};

	for (i = 0; i < n; i++)
	{
		FhRec	   *r = &recs[i];

		if (r->state != FH_FAILED)
			continue;
		ids[k] = CStringGetTextDatum(r->id);
		types[k] = CStringGetTextDatum(r->output_type);
		arrivals[k] = TimestampTzGetDatum(r->arrival);
		codes[k] = CStringGetTextDatum(r->code);
		mnulls[k] = r->message == NULL;
		messages[k] = r->message ? CStringGetTextDatum(r->message) : (Datum) 0;
		raws[k] = PointerGetDatum(r->raw);
		k++;
	}
	if (k == 0)
		return;
	dims[0] = k;
	if (SPI_execute_plan(msgq_plan(&plan,
								   "INSERT INTO msgq.delivery_error (ds_id, ds_name, owner, record_id, output_type,"
								   "   attempts_made, arrival, error_code, error_message, attempt_ending, raw_data,"
								   "   processor)"
								   " SELECT $1, $2, $3, i, t, $4, a, c, m, $5, r, $6"
								   "   FROM ROWS FROM (pg_catalog.unnest($7::pg_catalog.text[]),"
								   "     pg_catalog.unnest($8::pg_catalog.text[]),"
								   "     pg_catalog.unnest($9::pg_catalog.timestamptz[]),"
								   "     pg_catalog.unnest($10::pg_catalog.text[]),"
								   "     pg_catalog.unnest($11::pg_catalog.text[]),"
								   "     pg_catalog.unnest($12::pg_catalog.bytea[])) x(i, t, a, c, m, r)",
								   12, (Oid[]) {INT4OID, TEXTOID, OIDOID, INT4OID, TIMESTAMPTZOID, OIDOID,
								   TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID,
								   TEXTARRAYOID, BYTEAARRAYOID}),
						 (Datum[]) {Int32GetDatum(ds->ds_id), CStringGetTextDatum(ds->name),
						 ObjectIdGetDatum(ds->owner), Int32GetDatum(attempts), TimestampTzGetDatum(now),
						 ObjectIdGetDatum(ds->processor),
						 PointerGetDatum(construct_array(ids, k, TEXTOID, -1, false, TYPALIGN_INT)),
						 PointerGetDatum(construct_array(types, k, TEXTOID, -1, false, TYPALIGN_INT)),
						 PointerGetDatum(construct_array(arrivals, k, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
						 PointerGetDatum(construct_array(codes, k, TEXTOID, -1, false, TYPALIGN_INT)),
						 PointerGetDatum(construct_md_array(messages, mnulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT)),
						 PointerGetDatum(construct_array(raws, k, BYTEAOID, -1, false, TYPALIGN_INT))},
						 (char[]) {' ', ' ', ' ', ' ', ' ', OidIsValid(ds->processor) ? ' ' : 'n',
						 ' ', ' ', ' ', ' ', ' ', ' '},
						 false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write the error output");
}

/* the retry state and the counters of a delivery stream after a batch */
static void
fh_update(FhRow *ds, int32 attempts, TimestampTz first_failure, TimestampTz next_at,
		  const char *error, int64 delivered, int64 bytes, int64 dropped, int64 failed,
		  int64 failed_attempts, int64 batches, TimestampTz delivered_at, int64 latency_ms,
		  int64 latency_sum)
{
	static SPIPlanPtr plan = NULL;

	if (SPI_execute_plan(msgq_plan(&plan,
								   "UPDATE msgq.delivery_stream SET attempts = $2, first_failure_at = $3,"
								   "  next_attempt_at = $4, last_error = COALESCE($5, last_error),"
								   "  delivered_records = delivered_records OPERATOR(pg_catalog.+) $6,"
								   "  delivered_bytes = delivered_bytes OPERATOR(pg_catalog.+) $7,"
								   "  dropped_records = dropped_records OPERATOR(pg_catalog.+) $8,"
								   "  failed_records = failed_records OPERATOR(pg_catalog.+) $9,"
								   "  failed_attempts = failed_attempts OPERATOR(pg_catalog.+) $10,"
								   "  batches = batches OPERATOR(pg_catalog.+) $11,"
								   "  last_delivery_at = COALESCE($12, last_delivery_at),"
								   "  last_latency_ms = COALESCE($13, last_latency_ms),"
								   "  max_latency_ms = GREATEST(max_latency_ms, $13),"
								   "  latency_sum_ms = latency_sum_ms OPERATOR(pg_catalog.+) $14"
								   " WHERE ds_id OPERATOR(pg_catalog.=) $1",
								   14, (Oid[]) {INT4OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID,
								   INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID,
								   INT8OID, INT8OID}),
						 (Datum[]) {Int32GetDatum(ds->ds_id), Int32GetDatum(attempts),
						 TimestampTzGetDatum(first_failure), TimestampTzGetDatum(next_at),
						 error ? CStringGetTextDatum(error) : (Datum) 0, Int64GetDatum(delivered),
						 Int64GetDatum(bytes), Int64GetDatum(dropped), Int64GetDatum(failed),
						 Int64GetDatum(failed_attempts), Int64GetDatum(batches),
						 TimestampTzGetDatum(delivered_at), Int64GetDatum(latency_ms),
						 Int64GetDatum(latency_sum)},
						 (char[]) {' ', ' ', first_failure ? ' ' : 'n', next_at ? ' ' : 'n',
						 error ? ' ' : 'n', ' ', ' ', ' ', ' ', ' ', ' ', delivered_at ? ' ' : 'n',
						 delivered_at ? ' ' : 'n', ' '},
						 false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the delivery stream");
}

/* the delay before retry attempts + 1: 1 s doubling to 60 s */
static int64
fh_backoff_ms(int32 attempts)
{
	int64		ms = 1000;

	while (attempts-- > 1 && ms < 60000)
		ms *= 2;
	return Min(ms, 60000);
}

/*
 * One flush of a delivery stream, if one is due.  Returns when to look
 * again in milliseconds (0: at once, -1: at the next wake-up).
 */
static long
fh_flush_batch(FhRow *ds, bool in_worker)
{
	static SPIPlanPtr plan_head = NULL;
	static SPIPlanPtr plan_all = NULL;
	static SPIPlanPtr plan_read = NULL;
	static SPIPlanPtr plan_delete = NULL;
	Datum	   *tids;
	bool		optimistic;
	TimestampTz now = msgq_now();
	uint64		nhead,
				i;
	int			n = 0;
	int64		bytes = 0,
				total = 0;
	TimestampTz oldest;
	FhRec	   *recs;
	Datum	   *seqs;
	bool		isnull;
	bool		due;
	FhDeliver	d;
	ErrorData  *e = NULL;
	int64		delivered = 0,
				delivered_bytes = 0,
				dropped = 0,
				failed = 0,
				latency_sum = 0;
	bool		more;

	if (ds->next_attempt_at != 0 && ds->next_attempt_at > now)
		return (long) ((ds->next_attempt_at - now + 999) / 1000);
	if (ds->interval == 0)
	{
		/* always due: the batch in one read */
		if (SPI_execute_plan(msgq_plan(&plan_all,
									   "SELECT record_seq, arrival, data, ctid FROM msgq.delivery_record"
									   " WHERE ds_id OPERATOR(pg_catalog.=) $1 ORDER BY record_seq LIMIT $2",
									   2, (Oid[]) {INT4OID, INT4OID}),
							 (Datum[]) {Int32GetDatum(ds->ds_id), Int32GetDatum(FH_FLUSH_MAX_RECORDS)},
							 NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the delivery buffer");
		if (SPI_processed == 0)
		{
			fh_publish(ds->ds_id, 0, 0);
			return -1;
		}
		more = SPI_processed == FH_FLUSH_MAX_RECORDS;
		recs = palloc0(sizeof(FhRec) * SPI_processed);
		for (i = 0; i < SPI_processed && bytes < ds->buffer_bytes; i++)
		{
			fh_rec_from_tuple(&recs[n++], SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
			bytes += VARSIZE_ANY_EXHDR(recs[n - 1].raw);
		}
		if (i < SPI_processed)
			more = true;
		total = bytes;
		goto batch;
	}
	if (SPI_execute_plan(msgq_plan(&plan_head,
								   "SELECT record_seq, arrival, pg_catalog.octet_length(data)"
								   "  FROM msgq.delivery_record WHERE ds_id OPERATOR(pg_catalog.=) $1"
								   " ORDER BY record_seq LIMIT $2",
								   2, (Oid[]) {INT4OID, INT4OID}),
						 (Datum[]) {Int32GetDatum(ds->ds_id), Int32GetDatum(FH_FLUSH_MAX_RECORDS + 1)},
						 NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the delivery buffer");
	nhead = SPI_processed;
	if (nhead == 0)
	{
		fh_publish(ds->ds_id, ds->interval == 0 ? 0 : ds->buffer_bytes, 0);
		return -1;
	}
	oldest = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	seqs = palloc(sizeof(Datum) * nhead);
	for (i = 0; i < nhead; i++)
	{
		int64		len = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));

		total += len;
		if (n < FH_FLUSH_MAX_RECORDS && bytes < ds->buffer_bytes)
		{
			seqs[n++] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			bytes += len;
		}
	}
	due = bytes >= ds->buffer_bytes || n == FH_FLUSH_MAX_RECORDS ||
		oldest + (int64) ds->interval * USECS_PER_SEC <= now;
	if (!due)
	{
		/* the size hint wakes us (the bytes seen count), or the interval's end */
		fh_publish(ds->ds_id, ds->interval == 0 ? 0 : ds->buffer_bytes, total);
		return (long) ((oldest + (int64) ds->interval * USECS_PER_SEC - now + 999) / 1000);
	}
	more = nhead > (uint64) n;

	/* the batch */
	if (SPI_execute_plan(msgq_plan(&plan_read,
								   "SELECT record_seq, arrival, data, ctid FROM msgq.delivery_record"
								   " WHERE ds_id OPERATOR(pg_catalog.=) $1"
								   "   AND record_seq OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.int8[])"
								   " ORDER BY record_seq",
								   2, (Oid[]) {INT4OID, INT8ARRAYOID}),
						 (Datum[]) {Int32GetDatum(ds->ds_id),
						 PointerGetDatum(construct_array(seqs, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE))},
						 NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the delivery buffer");
	n = (int) SPI_processed;
	recs = palloc0(sizeof(FhRec) * Max(n, 1));
	for (i = 0; i < (uint64) n; i++)
		fh_rec_from_tuple(&recs[i], SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	if (n == 0)
		return 0;

batch:
	tids = palloc(sizeof(Datum) * n);
	for (i = 0; i < (uint64) n; i++)
	{
		recs[i].id = fh_record_id(ds->ds_id, recs[i].seq);
		tids[i] = PointerGetDatum(&recs[i].tid);
	}

	if (OidIsValid(ds->processor))
		fh_transform(ds, recs, n, in_worker);
	/* a JSON Table batch checks its records in its one parse (fh_deliver_table) */
	optimistic = strcmp(ds->dest_kind, "Table") == 0 && strcmp(ds->mapping, "RawColumn") != 0;
	if (!optimistic)
		fh_precheck(ds, recs, n);

	d.ds = ds;
	d.recs = recs;
	d.n = n;
	d.now = now;
	for (i = 0; i < (uint64) n; i++)
		if (recs[i].state == FH_OK)
			break;
	if (i < (uint64) n)
	{
		if (strcmp(ds->dest_kind, "Table") == 0)
			e = msgq_run_subxact(fh_deliver_table, &d, in_worker);
		else if (strcmp(ds->dest_kind, "Queue") == 0)
			e = msgq_run_subxact(fh_deliver_queue, &d, in_worker);
		else if (strcmp(ds->dest_kind, "Stream") == 0)
			e = msgq_run_subxact(fh_deliver_stream, &d, in_worker);
		else if (strcmp(ds->dest_kind, "HttpEndpoint") == 0)
			e = msgq_run_subxact(fh_deliver_http, &d, in_worker);
		else
			e = msgq_run_subxact(fh_deliver_file, &d, in_worker);
	}
	if (e != NULL && optimistic && e->sqlerrcode == FH_ERRCODE_BAD_RECORDS)
	{
		/* a record is not JSON: those to the error output, the rest again */
		fh_precheck(ds, recs, n);
		for (i = 0; i < (uint64) n; i++)
			if (recs[i].state == FH_OK)
				break;
		e = i < (uint64) n ? msgq_run_subxact(fh_deliver_table, &d, in_worker) : NULL;
	}
	if (e != NULL)
	{
		TimestampTz first_failure = ds->first_failure_at ? ds->first_failure_at : now;
		int32		attempts = ds->attempts + 1;

		ereport(LOG,
				(errmsg("msgq delivery stream \"%s\": delivery of %d records to %s failed (attempt %d): %s",
						ds->name, n, ds->dest_kind, attempts, e->message)));
		if (now - first_failure < (int64) ds->retry_duration * USECS_PER_SEC)
		{
			TimestampTz next_at = now + fh_backoff_ms(attempts) * 1000;

			fh_update(ds, attempts, first_failure, next_at, e->message, 0, 0, 0, 0, 1, 0, 0, 0, 0);
			return (long) fh_backoff_ms(attempts);
		}
		/* the retry duration has passed: the batch goes to the error output */
		for (i = 0; i < (uint64) n; i++)
			if (recs[i].state == FH_OK)
				fh_fail(&recs[i], "delivery-failed", psprintf("%s.DeliveryFailed", ds->dest_kind), e->message);
		ds->attempts = attempts;
	}
	for (i = 0; i < (uint64) n; i++)
	{
		if (recs[i].state == FH_OK)
		{
			delivered++;
			delivered_bytes += VARSIZE_ANY_EXHDR(recs[i].out);
			latency_sum += (now - recs[i].arrival) / 1000;
		}
		else if (recs[i].state == FH_DROPPED)
			dropped++;
		else
			failed++;
	}
	fh_errors_insert(ds, recs, n, Max(ds->attempts, 1), now);
	/* the rows read (by their tids: nobody else changes the buffer's rows) */
	if (SPI_execute_plan(msgq_plan(&plan_delete,
								   "DELETE FROM msgq.delivery_record WHERE ctid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.tid[])",
								   1, (Oid[]) {TIDARRAYOID}),
						 (Datum[]) {PointerGetDatum(construct_array(tids, n, TIDOID, sizeof(ItemPointerData),
																	false, TYPALIGN_SHORT))},
						 NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not empty the delivery buffer");
	fh_update(ds, 0, 0, 0, e ? e->message : NULL, delivered, delivered_bytes, dropped, failed,
			  e ? 1 : 0, 1, now, (now - recs[0].arrival) / 1000, latency_sum);
	ds->attempts = 0;
	ds->first_failure_at = 0;
	ds->next_attempt_at = 0;
	if (more)
		return 0;
	fh_publish(ds->ds_id, ds->interval == 0 ? 0 : ds->buffer_bytes, total - bytes);
	return total - bytes > 0 ? 0 : -1;
}

/*
 * fh_flush_batch in a memory context of its own, freed after the batch:
 * a pass of many batches does not grow (and page-fault in) fresh memory.
 */
static long
fh_flush(FhRow *ds, bool in_worker)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "msgq delivery batch",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	long		w = fh_flush_batch(ds, in_worker);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return w;
}

/* ---- a stream source ---- */

typedef struct FhIngest
{
	int			n;
	int			max;
	Datum	   *seqs;
	Datum	   *arrivals;
	Datum	   *datas;
} FhIngest;

static void
fh_ingest_record(void *arg, int64 seq, TimestampTz arrival, struct varlena *key,
				 struct varlena *data)
{
	FhIngest   *in = (FhIngest *) arg;

	in->arrivals[in->n] = TimestampTzGetDatum(arrival);
	in->datas[in->n] = PointerGetDatum(DatumGetByteaPCopy(PointerGetDatum(data)));
	in->n++;
}

/* Copy the source stream's new records into the buffer; true if any */
static bool
fh_ingest(FhRow *ds)
{
	static SPIPlanPtr plan_shards = NULL;
	static SPIPlanPtr plan_insert = NULL;
	static SPIPlanPtr plan_pos = NULL;
	uint64		nshards,
				s;
	int32	   *shards;
	int64	   *starts;
	bool		any = false;
	bool		isnull;

	if (SPI_execute_plan(msgq_plan(&plan_shards,
								   "SELECT h.shard_index, p.seq FROM msgq.shard h"
								   "  LEFT JOIN msgq.delivery_source_shard p ON p.ds_id OPERATOR(pg_catalog.=) $1"
								   "   AND p.shard_index OPERATOR(pg_catalog.=) h.shard_index"
								   " WHERE h.stream_id OPERATOR(pg_catalog.=) $2"
								   "   AND (p.seq IS NULL OR h.ending_seq IS NULL OR p.seq OPERATOR(pg_catalog.<=) h.ending_seq)"
								   " ORDER BY h.shard_index",
								   2, (Oid[]) {INT4OID, INT4OID}),
						 (Datum[]) {Int32GetDatum(ds->ds_id), Int32GetDatum(ds->source_stream_id)},
						 NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the source's shards");
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
		FhIngest	in;
		bool		more;
		int64		next;
		Datum	   *seqs;

		in.n = 0;
		in.max = FH_INGEST_MAX;
		in.arrivals = palloc(sizeof(Datum) * in.max);
		in.datas = palloc(sizeof(Datum) * in.max);
		next = msgq_stream_read_records(ds->source_stream_id, shards[s], starts[s], in.max,
										fh_ingest_record, &in, &more);
		if (next < 0)
			return any;			/* the stream is gone */
		if (in.n > 0)
		{
			seqs = palloc(sizeof(Datum) * in.n);
			fh_number_records(in.n, seqs);
			if (SPI_execute_plan(msgq_plan(&plan_insert,
										   "INSERT INTO msgq.delivery_record (ds_id, record_seq, arrival, data)"
										   " SELECT $1, s, a, d FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int8[]),"
										   "   pg_catalog.unnest($3::pg_catalog.timestamptz[]),"
										   "   pg_catalog.unnest($4::pg_catalog.bytea[])) r(s, a, d)",
										   4, (Oid[]) {INT4OID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, BYTEAARRAYOID}),
								 (Datum[]) {Int32GetDatum(ds->ds_id),
								 PointerGetDatum(construct_array(seqs, in.n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
								 PointerGetDatum(construct_array(in.arrivals, in.n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
								 PointerGetDatum(construct_array(in.datas, in.n, BYTEAOID, -1, false, TYPALIGN_INT))},
								 NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not buffer the stream's records");
			any = true;
		}
		if (next != starts[s] &&
			SPI_execute_plan(msgq_plan(&plan_pos,
									   "INSERT INTO msgq.delivery_source_shard (ds_id, shard_index, seq)"
									   " VALUES ($1, $2, $3) ON CONFLICT (ds_id, shard_index)"
									   " DO UPDATE SET seq = EXCLUDED.seq",
									   3, (Oid[]) {INT4OID, INT4OID, INT8OID}),
							 (Datum[]) {Int32GetDatum(ds->ds_id), Int32GetDatum(shards[s]),
							 Int64GetDatum(next)},
							 NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not move the source's position");
	}
	return any;
}

/*
 * One pass over the database's delivery streams, in the caller's
 * transaction and SPI connection (as the extension owner).  Returns when
 * to look again in milliseconds (0: at once, -1: at the next wake-up).
 */
long
msgq_firehose_run(bool in_worker)
{
	static SPIPlanPtr plan_list = NULL;
	FhRow	   *rows;
	uint64		n,
				i;
	long		wait_ms = -1;

	if (SPI_execute_plan(msgq_plan(&plan_list,
								   "SELECT ds_id, ds_name, owner::pg_catalog.oid,"
								   "       source_kind OPERATOR(pg_catalog.=) 'KinesisStreamAsSource',"
								   "       source_stream_id, processor::pg_catalog.oid, processor_retries,"
								   "       processor_buffer, buffer_bytes, buffer_interval, destination_kind,"
								   "       destination, dest_table::pg_catalog.oid, dest_mapping, dest_column,"
								   "       dest_name, retry_duration, version_id, attempts, first_failure_at,"
								   "       next_attempt_at, dest_access_key"
								   "  FROM msgq.delivery_stream ORDER BY ds_id",
								   0, NULL),
						 NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read delivery streams");
	n = SPI_processed;
	rows = palloc0(sizeof(FhRow) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		FhRow	   *r = &rows[i];
		bool		isnull;
		Datum		v;

		r->ds_id = DatumGetInt32(SPI_getbinval(t, d, 1, &isnull));
		r->name = TextDatumGetCString(SPI_getbinval(t, d, 2, &isnull));
		r->owner = DatumGetObjectId(SPI_getbinval(t, d, 3, &isnull));
		r->stream_source = DatumGetBool(SPI_getbinval(t, d, 4, &isnull));
		v = SPI_getbinval(t, d, 5, &isnull);
		r->source_stream_id = isnull ? 0 : DatumGetInt32(v);
		v = SPI_getbinval(t, d, 6, &isnull);
		r->processor = isnull ? InvalidOid : DatumGetObjectId(v);
		r->retries = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
		r->processor_buffer = DatumGetInt32(SPI_getbinval(t, d, 8, &isnull));
		r->buffer_bytes = DatumGetInt32(SPI_getbinval(t, d, 9, &isnull));
		r->interval = DatumGetInt32(SPI_getbinval(t, d, 10, &isnull));
		r->dest_kind = TextDatumGetCString(SPI_getbinval(t, d, 11, &isnull));
		r->destination = DatumGetJsonbPCopy(SPI_getbinval(t, d, 12, &isnull));
		v = SPI_getbinval(t, d, 13, &isnull);
		r->dest_table = isnull ? InvalidOid : DatumGetObjectId(v);
		v = SPI_getbinval(t, d, 14, &isnull);
		r->mapping = isnull ? NULL : TextDatumGetCString(v);
		v = SPI_getbinval(t, d, 15, &isnull);
		r->column = isnull ? NULL : TextDatumGetCString(v);
		v = SPI_getbinval(t, d, 16, &isnull);
		r->dest_name = isnull ? NULL : TextDatumGetCString(v);
		r->retry_duration = DatumGetInt32(SPI_getbinval(t, d, 17, &isnull));
		r->version = DatumGetInt32(SPI_getbinval(t, d, 18, &isnull));
		r->attempts = DatumGetInt32(SPI_getbinval(t, d, 19, &isnull));
		v = SPI_getbinval(t, d, 20, &isnull);
		r->first_failure_at = isnull ? 0 : DatumGetTimestampTz(v);
		v = SPI_getbinval(t, d, 21, &isnull);
		r->next_attempt_at = isnull ? 0 : DatumGetTimestampTz(v);
		v = SPI_getbinval(t, d, 22, &isnull);
		r->access_key = isnull ? NULL : TextDatumGetCString(v);
	}
	for (i = 0; i < n; i++)
	{
		FhRow	   *r = &rows[i];
		LOCKTAG		tag;
		long		w;

		/* an owner that was dropped leaves the delivery stream alone */
		if (GetUserNameFromId(r->owner, true) == NULL)
			continue;
		/* one flusher per delivery stream: the worker, or a run_maintenance */
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) r->ds_id, 0, FH_LOCK_FIELD4);
		if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
			continue;
		if (r->stream_source)
		{
			MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "msgq delivery source",
													  ALLOCSET_DEFAULT_SIZES);
			MemoryContext old = MemoryContextSwitchTo(cxt);

			if (fh_ingest(r))
				CommandCounterIncrement();
			MemoryContextSwitchTo(old);
			MemoryContextDelete(cxt);
			fh_publish(-r->source_stream_id, 0, 0);
		}
		w = fh_flush(r, in_worker);
		CHECK_FOR_INTERRUPTS();
		if (w >= 0 && (wait_ms < 0 || w < wait_ms))
			wait_ms = w;
	}
	return wait_ms;
}

/*
 * The worker's pass over the delivery streams, in a transaction of its
 * own.  Returns when to pass again in milliseconds (-1: at the next
 * wake-up).
 */
long
msgq_firehose_worker_pass(void)
{
	return msgq_worker_pass("msgq delivery streams", "delivery_stream", msgq_firehose_run);
}
