/*-------------------------------------------------------------------------
 *
 * queue_admin.c
 *	  Queue administration: reading and setting attributes, purging,
 *	  tags, and the dead-letter source listing.
 *
 * Every function follows queue.c's bracket (msgq_call_enter: preload check,
 * caller remembered, switch to the extension owner, SPI) and checks the
 * caller's right on the queue before touching it.  Changes to a queue row
 * invalidate every backend's queue cache (msgq_queue_cache_invalidate).
 *
 * IDENTIFICATION
 *	  src/queue_admin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "msgq.h"

PG_FUNCTION_INFO_V1(msgq_get_queue_attributes);
PG_FUNCTION_INFO_V1(msgq_set_queue_attributes);
PG_FUNCTION_INFO_V1(msgq_purge_queue);
PG_FUNCTION_INFO_V1(msgq_tag_queue);
PG_FUNCTION_INFO_V1(msgq_untag_queue);
PG_FUNCTION_INFO_V1(msgq_list_queue_tags);
PG_FUNCTION_INFO_V1(msgq_list_dead_letter_source_queues);

static SPIPlanPtr admin_plan_attrs = NULL;
static SPIPlanPtr admin_plan_attrs_locked = NULL;
static SPIPlanPtr admin_plan_counts = NULL;
static SPIPlanPtr admin_plan_set = NULL;
static SPIPlanPtr admin_plan_purge_mark = NULL;
static SPIPlanPtr admin_plan_purge = NULL;
static SPIPlanPtr admin_plan_tags = NULL;
static SPIPlanPtr admin_plan_set_tags = NULL;
static SPIPlanPtr admin_plan_sources = NULL;

#define MSGQ_MAX_TAGS			50

/* Attribute names GetQueueAttributes knows (AWS's list) */
static const char *const admin_attribute_names[] = {
	"All", "Policy", "VisibilityTimeout", "MaximumMessageSize",
	"MessageRetentionPeriod", "ApproximateNumberOfMessages",
	"ApproximateNumberOfMessagesNotVisible", "CreatedTimestamp",
	"LastModifiedTimestamp", "QueueArn", "ApproximateNumberOfMessagesDelayed",
	"DelaySeconds", "ReceiveMessageWaitTimeSeconds", "RedrivePolicy",
	"FifoQueue", "ContentBasedDeduplication", "KmsMasterKeyId",
	"KmsDataKeyReusePeriodSeconds", "DeduplicationScope",
	"FifoThroughputLimit", "RedriveAllowPolicy", "SqsManagedSseEnabled",
	"ExtendedMaximumMessageSize",
	NULL
};

static long long
admin_epoch_seconds(TimestampTz t)
{
	return (long long) (t / USECS_PER_SEC) +
		(long long) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

/* Read one queue row's attributes jsonb (and optionally its timestamps). */
static Jsonb *
admin_read_attributes(int32 queue_id, TimestampTz *created, TimestampTz *modified,
					  bool for_update)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(queue_id)};
	bool		isnull;
	HeapTuple	tup;
	Jsonb	   *attrs;

	if (SPI_execute_plan(for_update ?
						 msgq_plan(&admin_plan_attrs_locked,
								   "SELECT attributes, created_at, last_modified_at"
								   "  FROM msgq.queue WHERE queue_id OPERATOR(pg_catalog.=) $1"
								   "   FOR UPDATE",
								   1, argtypes) :
						 msgq_plan(&admin_plan_attrs,
								   "SELECT attributes, created_at, last_modified_at"
								   "  FROM msgq.queue WHERE queue_id OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read queue attributes");
	tup = SPI_tuptable->vals[0];
	attrs = DatumGetJsonbPCopy(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
	if (created)
		*created = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
	if (modified)
		*modified = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
	return attrs;
}

static bool
admin_selected(const char *name, Datum *sel, int nsel)
{
	int			i;

	for (i = 0; i < nsel; i++)
	{
		char	   *s = TextDatumGetCString(sel[i]);

		if (strcmp(s, "All") == 0 || strcmp(s, name) == 0)
			return true;
	}
	return false;
}

static void
admin_add(StringInfo buf, bool *first, const char *key, const char *value)
{
	appendStringInfoString(buf, *first ? "" : ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	escape_json(buf, value);
	*first = false;
}

/*
 * msgq.get_queue_attributes(queue_name text,
 *		attribute_names text[] DEFAULT '{All}') returns jsonb
 *
 * The queue's attributes, as AWS's wire strings, restricted to
 * attribute_names ("All" for every one; NULL or an empty array for none),
 * with the approximate message counts, CreatedTimestamp and
 * LastModifiedTimestamp (epoch seconds) and QueueArn.
 */
Datum
msgq_get_queue_attributes(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqQueue  *queue;
	Datum	   *sel;
	int			nsel;
	int			i;
	Jsonb	   *attrs;
	TimestampTz created,
				modified;
	StringInfoData buf;
	bool		first = true;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	Jsonb	   *result;

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_GET_ATTRS, "GetQueueAttributes");

	msgq_text_array(PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1), &sel, &nsel);
	for (i = 0; i < nsel; i++)
	{
		char	   *s = TextDatumGetCString(sel[i]);
		const char *const *k;

		for (k = admin_attribute_names; *k; k++)
			if (strcmp(*k, s) == 0)
				break;
		if (*k == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_NAME),
					 errmsg("unrecognized queue attribute: \"%s\"", s),
					 errdetail_internal("AWS error code: InvalidAttributeName")));
	}

	attrs = admin_read_attributes(queue->queue_id, &created, &modified, false);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	it = JsonbIteratorInit(&attrs->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (v.type == jbvString && admin_selected(key, sel, nsel))
			admin_add(&buf, &first, key, pnstrdup(v.val.string.val, v.val.string.len));
	}

	if (admin_selected("ApproximateNumberOfMessages", sel, nsel) ||
		admin_selected("ApproximateNumberOfMessagesNotVisible", sel, nsel) ||
		admin_selected("ApproximateNumberOfMessagesDelayed", sel, nsel))
	{
		Oid			argtypes[3] = {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		values[3];
		TimestampTz now = msgq_now();
		bool		isnull;
		HeapTuple	tup;
		const char *names[3] = {"ApproximateNumberOfMessages",
			"ApproximateNumberOfMessagesNotVisible",
		"ApproximateNumberOfMessagesDelayed"};

		values[0] = Int32GetDatum(queue->queue_id);
		values[1] = TimestampTzGetDatum(now);
		values[2] = TimestampTzGetDatum(now - (TimestampTz) queue->retention_period * USECS_PER_SEC);
		if (SPI_execute_plan(msgq_plan(&admin_plan_counts,
									   "SELECT pg_catalog.count(*) FILTER (WHERE v OPERATOR(pg_catalog.<=) $2),"
									   "       pg_catalog.count(*) FILTER (WHERE v OPERATOR(pg_catalog.>) $2"
									   "                                     AND received),"
									   "       pg_catalog.count(*) FILTER (WHERE v OPERATOR(pg_catalog.>) $2"
									   "                                     AND NOT received)"
									   "  FROM (SELECT GREATEST(visible_at, l) AS v,"
									   "               first_received_at IS NOT NULL OR l IS NOT NULL AS received"
									   "          FROM msgq.message,"
									   "               LATERAL msgq.lease_until(queue_id, msg_seq, message_id) AS l"
									   "         WHERE queue_id OPERATOR(pg_catalog.=) $1"
									   "           AND sent_at OPERATOR(pg_catalog.>) $3) m",
									   3, argtypes),
							 values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not count messages");
		tup = SPI_tuptable->vals[0];
		for (i = 0; i < 3; i++)
			if (admin_selected(names[i], sel, nsel))
				admin_add(&buf, &first, names[i],
						  psprintf("%lld", (long long)
								   DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc,
															   i + 1, &isnull))));
	}
	if (admin_selected("CreatedTimestamp", sel, nsel))
		admin_add(&buf, &first, "CreatedTimestamp",
				  psprintf("%lld", admin_epoch_seconds(created)));
	if (admin_selected("LastModifiedTimestamp", sel, nsel))
		admin_add(&buf, &first, "LastModifiedTimestamp",
				  psprintf("%lld", admin_epoch_seconds(modified)));
	if (admin_selected("QueueArn", sel, nsel))
		admin_add(&buf, &first, "QueueArn", msgq_queue_arn(queue->queue_name));
	appendStringInfoChar(&buf, '}');

	MemoryContextSwitchTo(call.cxt);
	result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
	msgq_call_leave(&call);
	PG_RETURN_JSONB_P(result);
}

/*
 * msgq.set_queue_attributes(queue_name text, attributes jsonb)
 *
 * Change attributes of a queue, with create_queue's validation.  Changes
 * apply at once (AWS may take up to a minute).  "" removes Policy,
 * KmsMasterKeyId, RedrivePolicy and RedriveAllowPolicy.
 */
Datum
msgq_set_queue_attributes(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	Jsonb	   *given = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	MsgqQueue  *queue;
	Jsonb	   *current;
	Jsonb	   *merged;
	MsgqQueueAttrs attrs;
	Oid			argtypes[13] = {INT4OID, INT4OID, INT4OID, INT4OID, INT4OID,
		INT4OID, JSONBOID, TIMESTAMPTZOID, TEXTOID, INT4OID, TEXTOID,
	TEXTARRAYOID, INT4OID};
	Datum		values[13];
	char		nulls[13];

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_SET_ATTRS, "SetQueueAttributes");
	if (given == NULL)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter Attributes");
	if (!JB_ROOT_IS_OBJECT(given) || JB_ROOT_IS_SCALAR(given))
		MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
				   "queue attributes must be a JSON object");

	/* validate what was given on its own first, for its error messages */
	{
		JsonbValue	k;

		k.type = jbvString;
		k.val.string.val = "FifoQueue";
		k.val.string.len = 9;
		if (findJsonbValueFromContainer(&given->root, JB_FOBJECT, &k) != NULL)
		{
			if (queue->fifo)
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_VALUE),
						 errmsg("attribute FifoQueue can only be set when the queue is created"),
						 errdetail_internal("AWS error code: InvalidAttributeValue. Reason: Modifying queue type is not supported.")));
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_ATTRIBUTE_NAME),
					 errmsg("attribute FifoQueue can only be set when the queue is created"),
					 errdetail_internal("AWS error code: InvalidAttributeName. Unknown Attribute FifoQueue.")));
		}
	}

	/* lock the row: concurrent changes merge one after the other */
	current = admin_read_attributes(queue->queue_id, NULL, NULL, true);
	merged = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
												JsonbPGetDatum(current),
												JsonbPGetDatum(given)));
	msgq_queue_build_attributes(merged, queue->fifo, true, &attrs);
	{
		JsonbValue	k;

		k.type = jbvString;
		k.val.string.val = "RedrivePolicy";
		k.val.string.len = 13;
		if (findJsonbValueFromContainer(&given->root, JB_FOBJECT, &k) != NULL)
			msgq_queue_check_dead_letter_target(queue->queue_name, &attrs, call.caller);
	}

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = Int32GetDatum(attrs.ints[0]);
	values[2] = Int32GetDatum(attrs.ints[1]);
	values[3] = Int32GetDatum(attrs.ints[2]);
	values[4] = Int32GetDatum(attrs.ints[3]);
	values[5] = Int32GetDatum(attrs.ints[4]);
	values[6] = JsonbPGetDatum(attrs.normalized);
	values[7] = TimestampTzGetDatum(msgq_now());
	msgq_queue_redrive_datums(&attrs, values + 8, nulls + 8);
	values[12] = Int32GetDatum(attrs.ints[6]);
	if (SPI_execute_plan(msgq_plan(&admin_plan_set,
								   "UPDATE msgq.queue"
								   "   SET visibility_timeout = $2, message_retention_period = $3,"
								   "       delay_seconds = $4, receive_wait_time_seconds = $5,"
								   "       maximum_message_size = $6, attributes = $7,"
								   "       last_modified_at = $8, dead_letter_queue = $9,"
								   "       max_receive_count = $10, redrive_permission = $11,"
								   "       redrive_sources = $12, extended_maximum_message_size = $13"
								   " WHERE queue_id OPERATOR(pg_catalog.=) $1",
								   13, argtypes),
						 values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not set queue attributes");
	msgq_queue_cache_invalidate();

	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.purge_queue(queue_name text)
 *
 * Delete every message of a queue (visible, in flight and delayed) in the
 * caller's transaction, atomically.  One purge per queue per 60 seconds
 * (PurgeQueueInProgress).  Long polls on the queue end.
 */
Datum
msgq_purge_queue(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqQueue  *queue;
	Oid			argtypes[3] = {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[3];
	TimestampTz now;

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_PURGE, "PurgeQueue");

	/*
	 * Mark the purge on the queue row: the row lock serializes concurrent
	 * purges, and the second one finds the mark and fails.
	 */
	now = msgq_now();
	values[0] = Int32GetDatum(queue->queue_id);
	values[1] = TimestampTzGetDatum(now);
	values[2] = TimestampTzGetDatum(now - 60 * USECS_PER_SEC);
	if (SPI_execute_plan(msgq_plan(&admin_plan_purge_mark,
								   "UPDATE msgq.queue SET purged_at = $2"
								   " WHERE queue_id OPERATOR(pg_catalog.=) $1"
								   "   AND (purged_at IS NULL OR purged_at OPERATOR(pg_catalog.<=) $3)",
								   3, argtypes),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark the purge");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_PURGE_QUEUE_IN_PROGRESS),
				 errmsg("only one PurgeQueue operation on queue \"%s\" is allowed every 60 seconds",
						queue->queue_name),
				 errdetail_internal("AWS error code: PurgeQueueInProgress")));

	if (SPI_execute_plan(msgq_plan(&admin_plan_purge,
								   "WITH d AS ("
								   "  DELETE FROM msgq.message WHERE queue_id OPERATOR(pg_catalog.=) $1"
								   "  RETURNING GREATEST(visible_at, msgq.lease_until(queue_id, msg_seq, message_id)) AS visible_at,"
								   "            receive_count OPERATOR(pg_catalog.+)"
								   "            (msgq.lease_until(queue_id, msg_seq, message_id) IS NOT NULL)::int AS receive_count)"
								   MSGQ_REMOVED_SQL,
								   2, argtypes),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not purge queue");
	msgq_metrics_removed(queue->queue_id, SPI_tuptable, SPI_processed, now);
	msgq_wakeup_at_abort(queue->queue_id);
	/* AWS: a purge clears the FIFO deduplication history */
	if (queue->fifo)
		msgq_fifo_dedup_clear(queue->queue_id);

	msgq_wakeup_at_commit(queue->queue_id, true);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Tags
 * ------------------------------------------------------------------------
 */

static Jsonb *
admin_read_tags(int32 queue_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(queue_id)};
	bool		isnull;

	if (SPI_execute_plan(msgq_plan(&admin_plan_tags,
								   "SELECT tags FROM msgq.queue WHERE queue_id OPERATOR(pg_catalog.=) $1"
								   " FOR UPDATE",
								   1, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read queue tags");
	return DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
}

static void
admin_write_tags(int32 queue_id, Jsonb *tags)
{
	Oid			argtypes[2] = {INT4OID, JSONBOID};
	Datum		values[2] = {Int32GetDatum(queue_id), JsonbPGetDatum(tags)};

	if (SPI_execute_plan(msgq_plan(&admin_plan_set_tags,
								   "UPDATE msgq.queue SET tags = $2"
								   " WHERE queue_id OPERATOR(pg_catalog.=) $1",
								   2, argtypes),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not write queue tags");
}

static void
admin_tag_invalid(const char *code, const char *what, const char *value)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
			 errmsg("invalid tag %s \"%s\"", what, value),
			 errdetail_internal("AWS error code: %s", code),
			 errhint("Tag keys have 1 to 128 characters and values at most 256, of letters, digits, spaces and + - = . _ : / @; keys must not start with \"aws:\".")));
}

/*
 * AWS allows Unicode letters, digits and separators in tags.  PostgreSQL 15
 * has no Unicode category table for extensions, so non-ASCII characters
 * are refused by block: Latin-1 punctuation and symbols, general
 * punctuation, currency, the symbol and arrow blocks, private use,
 * variation selectors, specials and emoji.  Letters of other scripts pass.
 */
static bool
admin_tag_char_ok(pg_wchar c)
{
	if (c == 0xA0 || c == 0xAA || c == 0xB5 || c == 0xBA)
		return true;			/* no-break space, ª, µ, º */
	if (c < 0xC0 || c == 0xD7 || c == 0xF7)
		return false;			/* Latin-1 controls, punctuation, × ÷ */
	if (c >= 0x2000 && c <= 0x200A)
		return true;			/* spaces */
	if ((c >= 0x200B && c <= 0x2BFF) ||	/* punctuation, currency, symbols */
		(c >= 0x2E00 && c <= 0x2E7F) ||	/* supplemental punctuation */
		(c >= 0x3000 && c <= 0x303F && c != 0x3000) ||	/* CJK punctuation */
		(c >= 0xE000 && c <= 0xF8FF) ||	/* private use */
		(c >= 0xFE00 && c <= 0xFE0F) ||	/* variation selectors */
		(c >= 0xFFF0 && c <= 0xFFFF) ||	/* specials */
		(c >= 0x1F000 && c <= 0x1FAFF) ||	/* emoji and pictographs */
		c >= 0xE0000)
		return false;
	return true;
}

static void
admin_check_tag_text(const char *code, const char *what, const char *s, int minlen, int maxlen)
{
	int			len = pg_mbstrlen(s);
	const unsigned char *p;

	if (len < minlen || len > maxlen)
		admin_tag_invalid(code, what, s);
	for (p = (const unsigned char *) s; *p; p += pg_utf_mblen(p))
	{
		if (*p >= 0x80)
		{
			if (!admin_tag_char_ok(utf8_to_unicode(p)))
				admin_tag_invalid(code, what, s);
			continue;
		}
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			  (*p >= '0' && *p <= '9') || strchr(" +-=._:/@", *p) != NULL))
			admin_tag_invalid(code, what, s);
	}
}

/*
 * Check tags given as {"key": "value", ...} by AWS's rules and merge them
 * into current (a key given replaces its value).  A bad tag is the AWS
 * error invalid_code; more than MSGQ_MAX_TAGS in all, limit_code.  what
 * names the resource in messages ("queue \"orders\"").
 */
Jsonb *
msgq_tags_merge(Jsonb *current, Jsonb *given, const char *what,
				const char *invalid_code, const char *limit_code)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	Jsonb	   *merged;

	if (given == NULL || !JB_ROOT_IS_OBJECT(given) || JB_ROOT_IS_SCALAR(given) ||
		JB_ROOT_COUNT(given) == 0)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter Tags as a non-empty JSON object");
	it = JsonbIteratorInit(&given->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		admin_check_tag_text(invalid_code, "key", key, 1, 128);
		if (pg_strncasecmp(key, "aws:", 4) == 0)
			admin_tag_invalid(invalid_code, "key", key);
		tok = JsonbIteratorNext(&it, &v, true);
		if (v.type != jbvString)
			admin_tag_invalid(invalid_code, "value for key", key);
		admin_check_tag_text(invalid_code, "value", pnstrdup(v.val.string.val, v.val.string.len), 0, 256);
	}
	merged = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(current),
												JsonbPGetDatum(given)));
	if (JB_ROOT_COUNT(merged) > MSGQ_MAX_TAGS)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("too many tags for %s: %d, at most %d", what, JB_ROOT_COUNT(merged), MSGQ_MAX_TAGS),
				 errdetail_internal("AWS error code: %s", limit_code)));
	return merged;
}

/*
 * msgq.tag_queue(queue_name text, tags jsonb)
 *
 * Add or replace tags ({"key": "value", ...}); a queue holds at most 50.
 */
Datum
msgq_tag_queue(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	Jsonb	   *given = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	MsgqQueue  *queue;
	Jsonb	   *merged;

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_SET_ATTRS, "TagQueue");
	merged = msgq_tags_merge(admin_read_tags(queue->queue_id), given,
							 psprintf("queue \"%s\"", queue->queue_name),
							 "InvalidParameterValue", "InvalidParameterValue");
	admin_write_tags(queue->queue_id, merged);

	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.untag_queue(queue_name text, tag_keys text[])
 */
Datum
msgq_untag_queue(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqQueue  *queue;
	Datum		tags;

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_SET_ATTRS, "UntagQueue");
	if (PG_ARGISNULL(1))
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter TagKeys");

	tags = JsonbPGetDatum(admin_read_tags(queue->queue_id));
	tags = DirectFunctionCall2(jsonb_delete_array, tags, PG_GETARG_DATUM(1));
	admin_write_tags(queue->queue_id, DatumGetJsonbP(tags));

	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.list_queue_tags(queue_name text) returns jsonb
 */
Datum
msgq_list_queue_tags(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqQueue  *queue;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];
	bool		isnull;
	Jsonb	   *tags;

	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_GET_ATTRS, "ListQueueTags");
	values[0] = Int32GetDatum(queue->queue_id);
	if (SPI_execute_with_args("SELECT tags FROM msgq.queue WHERE queue_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read queue tags");
	MemoryContextSwitchTo(call.cxt);
	tags = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
	msgq_call_leave(&call);
	PG_RETURN_JSONB_P(tags);
}

/*
 * msgq.list_dead_letter_source_queues(queue_name text) returns setof text
 *
 * The queues whose RedrivePolicy names this queue as dead-letter queue, in
 * name order, at most 1000.
 */
Datum
msgq_list_dead_letter_source_queues(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	MsgqQueue  *queue;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	uint64		i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);
	queue = msgq_queue_get(name);
	msgq_check_queue_action(queue, call.caller, MSGQ_ACT_GET_ATTRS,
							"ListDeadLetterSourceQueues");

	values[0] = CStringGetTextDatum(queue->queue_name);
	if (SPI_execute_plan(msgq_plan(&admin_plan_sources,
								   "SELECT queue_name FROM msgq.queue"
								   " WHERE dead_letter_queue OPERATOR(pg_catalog.=) $1"
								   " ORDER BY queue_name COLLATE \"C\" LIMIT 1000",
								   1, argtypes),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list dead-letter source queues");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		out[1];
		bool		outnull[1] = {false};

		out[0] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}
