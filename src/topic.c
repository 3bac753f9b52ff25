/*-------------------------------------------------------------------------
 *
 * topic.c
 *	  SNS-style topics: topics, subscriptions and publish, with fan-out in
 *	  the publisher's transaction.
 *
 * A publish delivers to every matching subscription before it returns, as
 * writes of the publisher's own transaction: an sqs subscription gets a
 * message in its queue (msgq_queue_deliver), a kinesis subscription a
 * record in its stream (msgq_stream_deliver), a notify subscription a
 * NOTIFY on its channel.  Commit delivers everything, rollback nothing.
 * A delivery that cannot be made (the queue was deleted, the subscription's
 * owner lost its right to send, the message is too large for the queue)
 * goes to the subscription's RedrivePolicy queue when it has one, and is
 * dropped otherwise, as SNS does; the publish itself succeeds.
 *
 * Each backend caches a topic with its subscriptions and their compiled
 * filter policies (src/filter.c), indexed together in one MsgqFilterSet,
 * so a publish parses no policy and its matching cost follows the message.
 * Every change to a topic, its subscriptions or their attributes queues a
 * relcache invalidation of msgq.topic; at commit every backend drops its
 * cached topics (the queue cache's scheme, src/queue.c).
 *
 * Rights: a topic's owner (the role that created it, and roles with its
 * privileges) and superusers may do everything with it; other roles need
 * the SNS action granted with add_permission() on the topic's ARN (stored
 * as for queues, in msgq.topic_permission and topic.acl, src/acl.c);
 * creating topics needs EXECUTE on msgq.create_topic().  Subscribing a queue needs the
 * right to send to it, a stream the right to write to it; deliveries are
 * made with the subscription owner's rights, checked at each delivery.
 *
 * IDENTIFICATION
 *	  src/topic.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/base64.h"
#include "common/jsonapi.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/acl.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "msgq.h"
#include "filter.h"
#include "delivery.h"

PG_FUNCTION_INFO_V1(msgq_create_topic);
PG_FUNCTION_INFO_V1(msgq_delete_topic);
PG_FUNCTION_INFO_V1(msgq_list_topics);
PG_FUNCTION_INFO_V1(msgq_get_topic_attributes);
PG_FUNCTION_INFO_V1(msgq_tag_topic);
PG_FUNCTION_INFO_V1(msgq_untag_topic);
PG_FUNCTION_INFO_V1(msgq_list_topic_tags);
PG_FUNCTION_INFO_V1(msgq_set_topic_attributes);
PG_FUNCTION_INFO_V1(msgq_subscribe);
PG_FUNCTION_INFO_V1(msgq_unsubscribe);
PG_FUNCTION_INFO_V1(msgq_confirm_subscription);
PG_FUNCTION_INFO_V1(msgq_list_subscriptions);
PG_FUNCTION_INFO_V1(msgq_list_subscriptions_by_topic);
PG_FUNCTION_INFO_V1(msgq_get_subscription_attributes);
PG_FUNCTION_INFO_V1(msgq_set_subscription_attributes);
PG_FUNCTION_INFO_V1(msgq_publish);
PG_FUNCTION_INFO_V1(msgq_publish_batch);
PG_FUNCTION_INFO_V1(msgq_verify_notification);

#define TOPIC_MAX_NAME			256
#define TOPIC_MAX_MESSAGE		262144
#define TOPIC_MAX_SUBJECT		99
#define TOPIC_MAX_POLICIES		200
#define TOPIC_MAX_RAW_ATTRS		10
#define TOPIC_LOCK_FIELD4		4	/* advisory lock tags of topic groups */
#define TOPIC_DEDUP_WINDOW		((TimestampTz) 5 * 60 * USECS_PER_SEC)
#define TOPIC_PENDING_LIFETIME	((TimestampTz) 3 * SECS_PER_DAY * USECS_PER_SEC)
/* NOTIFY's payload limit (commands/async.c) */
#define TOPIC_NOTIFY_MAX		(BLCKSZ - NAMEDATALEN - 128)
#define TOPIC_SIGN_LABEL		"msgq topic notification"

#define INVALID_PARAMETER(...) \
	msgq_aws_error("InvalidParameter", ERRCODE_MSGQ_INVALID_PARAMETER, __VA_ARGS__)
#define VALUE_INVALID(...) \
	msgq_aws_error("ParameterValueInvalid", ERRCODE_MSGQ_PARAMETER_VALUE_INVALID, __VA_ARGS__)

typedef enum TopicProtocol
{
	PROTO_SQS,
	PROTO_NOTIFY,
	PROTO_KINESIS,
	PROTO_FUNCTION,
	PROTO_HTTP,
	PROTO_HTTPS
} TopicProtocol;

static const char *const protocol_names[] = {"sqs", "notify", "kinesis", "function", "http", "https"};

/* Delivered after commit by the worker (delivery.c) */
#define PROTO_IS_ASYNC(p)	((p) == PROTO_FUNCTION || (p) == PROTO_HTTP || (p) == PROTO_HTTPS)
#define PROTO_IS_HTTP(p)	((p) == PROTO_HTTP || (p) == PROTO_HTTPS)

typedef struct TopicSub
{
	pg_uuid_t	id;
	TopicProtocol protocol;
	char	   *endpoint;
	Oid			owner;
	bool		raw;
	char	   *dlq;			/* RedrivePolicy queue, or NULL */
	char	   *pkey_attr;		/* kinesis: PartitionKeyAttribute, or NULL */
	MsgqFilter *filter;			/* NULL: no policy */
} TopicSub;

typedef struct Topic
{
	int32		topic_id;
	char	   *name;
	Oid			owner;
	bool		fifo;
	bool		content_dedup;
	bool		dedup_per_group;
	char	   *signature_version;
	Acl		   *acl;			/* NULL when no permission was added */
	bool		subs_loaded;
	int			nsubs;
	TopicSub   *subs;
	MsgqFilterSet *set;
	MemoryContext cxt;			/* holds the cached copy */
} Topic;

typedef struct TopicCacheEntry
{
	char		name[TOPIC_MAX_NAME + 1];
	Topic	   *topic;
} TopicCacheEntry;

static HTAB *topic_cache = NULL;
static MemoryContext topic_cache_cxt = NULL;
static Oid	topic_relid = InvalidOid;
static bool topic_callback_registered = false;

static SPIPlanPtr plan_lookup = NULL;
static SPIPlanPtr plan_subs = NULL;
static SPIPlanPtr plan_sub_get = NULL;
static SPIPlanPtr plan_dedup = NULL;
static SPIPlanPtr plan_dedup_get = NULL;
static SPIPlanPtr plan_seq = NULL;

static char *iso_timestamp(TimestampTz t);
static char *notification_signature(const char *canonical);
static void json_member(StringInfo b, const char *key, const char *value, bool first);

/* ------------------------------------------------------------------------
 * Names, ARNs and the cache
 * ------------------------------------------------------------------------
 */

static char *
topic_arn(const char *name)
{
	return psprintf("arn:aws:sns:msgq:%s:%s", get_database_name(MyDatabaseId), name);
}

static char *
sub_arn(const char *topic_name, const pg_uuid_t *id)
{
	return psprintf("%s:%s", topic_arn(topic_name),
					DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id))));
}

char *
msgq_topic_arn(const char *topic_name)
{
	return topic_arn(topic_name);
}

char *
msgq_subscription_arn(const char *topic_name, const pg_uuid_t *sub_id)
{
	return sub_arn(topic_name, sub_id);
}

/* A topic named by its name or ARN: the part after the last ":" */
static const char *
topic_ref_name(const char *ref)
{
	const char *p;

	if (ref != NULL && strncmp(ref, "arn:", 4) == 0 && (p = strrchr(ref, ':')) != NULL)
		return p + 1;
	return ref;
}

static void
topic_not_found(void)
{
	msgq_aws_error("NotFound", ERRCODE_MSGQ_NOT_FOUND, "Topic does not exist");
}

/*
 * The relcache callback only marks the cache stale; the next lookup, at the
 * start of a call, empties it.  Invalidations arrive in the middle of a
 * call (at any SPI query), and the call's topic must stay valid until it
 * returns.
 */
static bool topic_cache_stale = false;

static void
topic_cache_reset(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != topic_relid)
		return;
	topic_cache_stale = true;
}

static Oid
topic_table_relid(void)
{
	if (!topic_callback_registered)
	{
		CacheRegisterRelcacheCallback(topic_cache_reset, (Datum) 0);
		topic_callback_registered = true;
	}
	if (!OidIsValid(topic_relid))
	{
		topic_relid = get_relname_relid("topic", get_namespace_oid(MSGQ_SCHEMA_NAME, false));
		if (!OidIsValid(topic_relid))
			elog(ERROR, "msgq.topic does not exist");
	}
	return topic_relid;
}

/* Every backend drops its cached topics when this transaction commits. */
static void
topic_invalidate(void)
{
	CacheInvalidateRelcacheByRelid(topic_table_relid());
}

static bool
topic_check_name(const char *name, bool *fifo)
{
	size_t		len = name ? strlen(name) : 0;
	size_t		base = len;
	size_t		i;

	*fifo = false;
	if (len == 0 || len > TOPIC_MAX_NAME)
		return false;
	if (len > 5 && strcmp(name + len - 5, ".fifo") == 0)
	{
		*fifo = true;
		base = len - 5;
	}
	for (i = 0; i < base; i++)
		if (!msgq_is_name_char(name[i]))
			return false;
	return true;
}

/*
 * Load a topic row (not its subscriptions) into cxt.  (SPI leaves its own
 * context current after a query, so the result is allocated explicitly.)
 */
static Topic *
topic_load(const char *name, MemoryContext cxt)
{
	MemoryContext old;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Topic	   *t;
	Datum		d;

	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_plan(msgq_plan(&plan_lookup,
								   "SELECT topic_id, owner::pg_catalog.oid, fifo, content_dedup,"
								   "       dedup_per_group,"
								   "       attributes OPERATOR(pg_catalog.->>) 'SignatureVersion', acl"
								   "  FROM msgq.topic WHERE topic_name OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up topic");
	if (SPI_processed == 0)
		return NULL;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	old = MemoryContextSwitchTo(cxt);
	t = palloc0(sizeof(Topic));
	t->topic_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	t->name = pstrdup(name);
	t->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
	t->fifo = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
	t->content_dedup = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	t->dedup_per_group = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
	d = SPI_getbinval(tup, desc, 6, &isnull);
	t->signature_version = isnull ? "1" : TextDatumGetCString(d);
	d = SPI_getbinval(tup, desc, 7, &isnull);
	t->acl = isnull ? NULL : DatumGetAclPCopy(d);
	MemoryContextSwitchTo(old);
	return t;
}

/*
 * The topic named by ref, from the cache, or NULL.  The result belongs to
 * the cache: valid until the next invalidation is processed.
 */
static Topic *
topic_lookup(const char *ref)
{
	const char *name = topic_ref_name(ref);
	TopicCacheEntry *e;
	bool		found;
	Topic	   *fresh;
	MemoryContext cxt;

	if (name == NULL || strlen(name) > TOPIC_MAX_NAME)
		return NULL;
	(void) topic_table_relid();
	/* changes committed since this backend's last statement count now */
	AcceptInvalidationMessages();
	if (topic_cache_stale)
	{
		if (topic_cache_cxt != NULL)
			MemoryContextReset(topic_cache_cxt);
		topic_cache = NULL;
		topic_relid = InvalidOid;
		topic_cache_stale = false;
		(void) topic_table_relid();
	}
	if (topic_cache_cxt == NULL)
		topic_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "msgq topic cache",
												ALLOCSET_SMALL_SIZES);
	if (topic_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = TOPIC_MAX_NAME + 1;
		ctl.entrysize = sizeof(TopicCacheEntry);
		ctl.hcxt = topic_cache_cxt;
		topic_cache = hash_create("msgq topic cache", 16, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	e = hash_search(topic_cache, name, HASH_FIND, NULL);
	if (e != NULL)
		return e->topic;

	cxt = AllocSetContextCreate(topic_cache_cxt, "msgq topic", ALLOCSET_SMALL_SIZES);
	fresh = topic_load(name, cxt);
	if (fresh == NULL)
	{
		MemoryContextDelete(cxt);
		return NULL;
	}
	fresh->cxt = cxt;
	e = hash_search(topic_cache, name, HASH_ENTER, &found);
	e->topic = fresh;
	return fresh;
}

static Topic *
topic_get(const char *ref)
{
	Topic	   *t;

	if (ref == NULL || ref[0] == '\0')
		INVALID_PARAMETER("Invalid parameter: TopicArn");
	t = topic_lookup(ref);
	if (t == NULL)
		topic_not_found();
	return t;
}

static void
topic_check_owner(Topic *t, Oid roleid)
{
	if (!superuser_arg(roleid) && !has_privs_of_role(roleid, t->owner))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for topic \"%s\"", t->name),
				 errdetail_internal("AWS error code: AuthorizationError")));
}

/* Raise AuthorizationError unless roleid may perform action on t */
static void
topic_check_action(Topic *t, Oid roleid, AclMode action, const char *action_name)
{
	if (!msgq_queue_action_allowed(roleid, t->owner, t->acl, action))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for topic \"%s\"", t->name),
				 errdetail_internal("AWS error code: AuthorizationError"),
				 errhint("The action %s must be granted with msgq.add_permission() on the topic's ARN.",
						 action_name)));
}

/* Load a cached topic's subscriptions and compile their filter policies. */
static void
topic_load_subs(Topic *t)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];
	MemoryContext old;
	MsgqFilter **filters;
	uint64		i;

	if (t->subs_loaded)
		return;
	values[0] = Int32GetDatum(t->topic_id);
	if (SPI_execute_plan(msgq_plan(&plan_subs,
								   "SELECT subscription_id, protocol, endpoint, owner::pg_catalog.oid,"
								   "       raw_delivery, filter_policy, filter_scope, dead_letter_queue,"
								   "       attributes OPERATOR(pg_catalog.->>) 'PartitionKeyAttribute'"
								   "  FROM msgq.subscription WHERE topic_id OPERATOR(pg_catalog.=) $1"
								   "   AND NOT pending"
								   " ORDER BY created_at, subscription_id",
								   1, argtypes),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not load subscriptions");

	old = MemoryContextSwitchTo(t->cxt);
	t->nsubs = (int) SPI_processed;
	t->subs = palloc0(sizeof(TopicSub) * Max(t->nsubs, 1));
	filters = palloc0(sizeof(MsgqFilter *) * Max(t->nsubs, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TopicSub   *s = &t->subs[i];
		bool		isnull;
		Datum		d;
		char	   *proto;
		int			p;

		memcpy(&s->id, DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull)), sizeof(pg_uuid_t));
		proto = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		for (p = 0; p < lengthof(protocol_names); p++)
			if (strcmp(proto, protocol_names[p]) == 0)
				s->protocol = (TopicProtocol) p;
		s->endpoint = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		s->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
		s->raw = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		d = SPI_getbinval(tup, desc, 6, &isnull);
		if (!isnull)
		{
			char	   *policy = TextDatumGetCString(d);
			char	   *scope = TextDatumGetCString(SPI_getbinval(tup, desc, 7, &isnull));

			s->filter = msgq_filter_compile(policy, strlen(policy),
											strcmp(scope, "MessageBody") == 0 ?
											MSGQ_FILTER_BODY : MSGQ_FILTER_ATTRIBUTES,
											"Invalid parameter: ");
		}
		filters[i] = s->filter;
		d = SPI_getbinval(tup, desc, 8, &isnull);
		s->dlq = isnull ? NULL : TextDatumGetCString(d);
		d = SPI_getbinval(tup, desc, 9, &isnull);
		s->pkey_attr = isnull ? NULL : TextDatumGetCString(d);
	}
	t->set = msgq_filter_set_build(filters, t->nsubs, t->cxt);
	MemoryContextSwitchTo(old);
	t->subs_loaded = true;
}

/* ------------------------------------------------------------------------
 * Attribute values
 * ------------------------------------------------------------------------
 */

/* An attribute's value as AWS's string form: strings as is, JSON otherwise. */
static char *
attr_text(JsonbValue *v)
{
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNull)
		return NULL;
	if (v->type == jbvBool)
		return pstrdup(v->val.boolean ? "true" : "false");
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
}

static bool
is_json_object(const char *s)
{
	JsonLexContext *lex;
	JsonParseErrorType err;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s != '{')
		return false;
	lex = makeJsonLexContextCstringLen((char *) s, strlen(s), PG_UTF8, true);
	err = pg_parse_json(lex, &nullSemAction);
	return err == JSON_SUCCESS;
}

/* The truth of a "true"/"false" attribute; raises with what for anything else */
static bool
attr_bool(const char *value, const char *prefix, const char *name)
{
	if (value != NULL && pg_strcasecmp(value, "true") == 0)
		return true;
	if (value != NULL && pg_strcasecmp(value, "false") == 0)
		return false;
	INVALID_PARAMETER("%s%s: Invalid value [%s]. Must be true or false.", prefix, name,
					  value ? value : "null");
	return false;
}

/*
 * Check one topic attribute; returns its normalized value.  fifo: the
 * topic is (or is being created as) a FIFO topic.
 */
static char *
topic_attr_check(const char *name, const char *value, bool fifo, bool for_set,
				 const char *prefix)
{
	if (value == NULL)
		INVALID_PARAMETER("%s%s: Invalid value [null]", prefix, name);
	if (strcmp(name, "DisplayName") == 0)
	{
		if (pg_mbstrlen(value) > 100)
			INVALID_PARAMETER("%sDisplayName: must be at most 100 characters", prefix);
		return pstrdup(value);
	}
	if (strcmp(name, "Policy") == 0 || strcmp(name, "DeliveryPolicy") == 0 ||
		strcmp(name, "DataProtectionPolicy") == 0 || strcmp(name, "ArchivePolicy") == 0)
	{
		if (value[0] != '\0' && !is_json_object(value))
			INVALID_PARAMETER("%s%s: failed to parse JSON", prefix, name);
		if (strcmp(name, "DeliveryPolicy") == 0)
			msgq_delivery_policy_check(value, true, prefix);
		if (strcmp(name, "ArchivePolicy") == 0 && !fifo)
			INVALID_PARAMETER("%sArchivePolicy: the archive policy can only be set for FIFO topics", prefix);
		return pstrdup(value);
	}
	if (strcmp(name, "KmsMasterKeyId") == 0)
		return pstrdup(value);
	if (strcmp(name, "SignatureVersion") == 0)
	{
		if (strcmp(value, "1") != 0 && strcmp(value, "2") != 0)
			INVALID_PARAMETER("%sSignatureVersion: Invalid value [%s]. Please use either 1 or 2", prefix, value);
		return pstrdup(value);
	}
	if (strcmp(name, "TracingConfig") == 0)
	{
		if (strcmp(value, "PassThrough") != 0 && strcmp(value, "Active") != 0)
			INVALID_PARAMETER("%sTracingConfig: Invalid value [%s]. Please use either PassThrough or Active", prefix, value);
		return pstrdup(value);
	}
	if (strcmp(name, "ContentBasedDeduplication") == 0)
	{
		bool		b = attr_bool(value, prefix, name);

		if (!fifo)
			INVALID_PARAMETER("Invalid parameter: ContentBasedDeduplication Reason: Content based deduplication can only be set for FIFO topics");
		return pstrdup(b ? "true" : "false");
	}
	if (strcmp(name, "FifoThroughputScope") == 0)
	{
		if (strcmp(value, "Topic") != 0 && strcmp(value, "MessageGroup") != 0)
			INVALID_PARAMETER("%sFifoThroughputScope: Invalid value [%s]. Please use either Topic or MessageGroup", prefix, value);
		if (!fifo)
			INVALID_PARAMETER("Invalid parameter: FifoThroughputScope Reason: The FifoThroughputScope attribute can only be set for FIFO topics");
		return pstrdup(value);
	}
	if (strcmp(name, "FifoTopic") == 0 && !for_set)
		return pstrdup(attr_bool(value, prefix, name) ? "true" : "false");
	INVALID_PARAMETER("Invalid parameter: AttributeName");
	return NULL;
}

/* ------------------------------------------------------------------------
 * Topics
 * ------------------------------------------------------------------------
 */

/*
 * msgq.create_topic(name text, attributes jsonb DEFAULT '{}') returns text
 *
 * Create a topic, or return the ARN of the topic of that name when the
 * given attributes match it (CreateTopic is idempotent).
 */
Datum
msgq_create_topic(PG_FUNCTION_ARGS)
{
	char	   *name = msgq_text_arg(fcinfo, 0);
	Jsonb	   *given = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	bool		fifo_name;
	bool		fifo = false;
	JsonbParseState *state = NULL;
	JsonbValue *normalized;
	Topic	   *existing;
	char	   *arn;
	bool		content_dedup = false;
	bool		per_group = false;
	const char *prefix = "Invalid parameter: Attributes Reason: ";
	int			pass;

	if (!topic_check_name(name, &fifo_name))
		INVALID_PARAMETER("Invalid parameter: Topic Name");
	if (given != NULL && (!JB_ROOT_IS_OBJECT(given) || JB_ROOT_IS_SCALAR(given)))
		INVALID_PARAMETER("Invalid parameter: Attributes Reason: attributes must be a JSON object");

	/* FifoTopic first: the other attributes' rules depend on it */
	for (pass = 0; pass < 2; pass++)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *key = NULL;

		if (given == NULL)
			break;
		if (pass == 1)
			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		it = JsonbIteratorInit(&given->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *value;
			JsonbValue	k,
						val;

			if (tok == WJB_KEY)
			{
				key = pnstrdup(v.val.string.val, v.val.string.len);
				continue;
			}
			if (tok != WJB_VALUE)
				continue;
			value = attr_text(&v);
			if (pass == 0)
			{
				if (strcmp(key, "FifoTopic") == 0)
					fifo = attr_bool(value, prefix, key);
				continue;
			}
			value = topic_attr_check(key, value, fifo, false, prefix);
			if (strcmp(key, "ContentBasedDeduplication") == 0)
				content_dedup = strcmp(value, "true") == 0;
			if (strcmp(key, "FifoThroughputScope") == 0)
				per_group = strcmp(value, "MessageGroup") == 0;
			k.type = jbvString;
			k.val.string.val = key;
			k.val.string.len = strlen(key);
			val.type = jbvString;
			val.val.string.val = value;
			val.val.string.len = strlen(value);
			pushJsonbValue(&state, WJB_KEY, &k);
			pushJsonbValue(&state, WJB_VALUE, &val);
		}
		if (pass == 0 && fifo != fifo_name)
		{
			if (fifo)
				INVALID_PARAMETER("Invalid parameter: Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.");
			INVALID_PARAMETER("Invalid parameter: Topic Name");
		}
	}
	if (given == NULL && fifo_name)
		INVALID_PARAMETER("Invalid parameter: Topic Name");
	if (state == NULL)
	{
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	}
	normalized = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	msgq_call_enter(&call);
	/* one creator at a time per name: the second sees the first's row */
	LockDatabaseObject(topic_table_relid(), (Oid) hash_bytes((const unsigned char *) name, strlen(name)),
					   0, ExclusiveLock);
	existing = topic_lookup(name);
	if (existing != NULL)
	{
		Oid			argtypes[2] = {TEXTOID, JSONBOID};
		Datum		values[2];

		/* every given attribute must have the value the topic has */
		values[0] = CStringGetTextDatum(name);
		values[1] = JsonbPGetDatum(JsonbValueToJsonb(normalized));
		if (SPI_execute_with_args("SELECT 1 FROM msgq.topic t"
								  " WHERE t.topic_name OPERATOR(pg_catalog.=) $1"
								  "   AND (t.attributes OPERATOR(pg_catalog.||)"
								  "        pg_catalog.jsonb_build_object('FifoTopic', CASE WHEN t.fifo THEN 'true' ELSE 'false' END,"
								  "            'ContentBasedDeduplication', CASE WHEN t.content_dedup THEN 'true' ELSE 'false' END,"
								  "            'FifoThroughputScope', CASE WHEN t.dedup_per_group THEN 'MessageGroup' ELSE 'Topic' END))"
								  "       OPERATOR(pg_catalog.@>) $2",
								  2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not compare topic attributes");
		if (SPI_processed == 0)
			INVALID_PARAMETER("Invalid parameter: Attributes Reason: Topic already exists with different attributes");
		topic_check_owner(existing, call.caller);
	}
	else
	{
		Oid			argtypes[7] = {TEXTOID, OIDOID, BOOLOID, BOOLOID, BOOLOID, JSONBOID, TIMESTAMPTZOID};
		Datum		values[7];

		values[0] = CStringGetTextDatum(name);
		values[1] = ObjectIdGetDatum(call.caller);
		values[2] = BoolGetDatum(fifo);
		values[3] = BoolGetDatum(content_dedup);
		values[4] = BoolGetDatum(per_group);
		values[5] = JsonbPGetDatum(JsonbValueToJsonb(normalized));
		values[6] = TimestampTzGetDatum(msgq_now());
		if (SPI_execute_with_args("INSERT INTO msgq.topic (topic_id, topic_name, owner, fifo,"
								  "  content_dedup, dedup_per_group, attributes, created_at)"
								  " VALUES (pg_catalog.nextval('msgq.topic_id_seq'), $1, $2::pg_catalog.regrole,"
								  "  $3, $4, $5, $6, $7)",
								  7, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not create topic");
		topic_invalidate();
	}
	arn = topic_arn(name);
	MemoryContextSwitchTo(call.cxt);
	arn = pstrdup(arn);
	msgq_call_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text(arn));
}

/*
 * msgq.delete_topic(topic_name text)
 *
 * Delete a topic and its subscriptions.  Deleting a topic that does not
 * exist succeeds, as in SNS.
 */
Datum
msgq_delete_topic(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	Topic	   *t;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];

	if (ref == NULL || ref[0] == '\0')
		INVALID_PARAMETER("Invalid parameter: TopicArn");
	msgq_call_enter(&call);
	t = topic_lookup(ref);
	if (t != NULL)
	{
		uint64		i;

		topic_check_action(t, call.caller, MSGQ_TOPIC_DELETE, "DeleteTopic");
		values[0] = Int32GetDatum(t->topic_id);
		/* the counters of the topic and its subscriptions go with them */
		if (SPI_execute_with_args("SELECT subscription_id FROM msgq.subscription"
								  " WHERE topic_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not delete topic");
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			msgq_topic_metrics_drop_subscription(DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i],
																			 SPI_tuptable->tupdesc,
																			 1, &isnull)));
		}
		msgq_topic_metrics_drop_topic(t->topic_id);
		if (SPI_execute_with_args("DELETE FROM msgq.topic_dedup WHERE topic_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE ||
			SPI_execute_with_args("DELETE FROM msgq.topic WHERE topic_id OPERATOR(pg_catalog.=) $1",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete topic");
		topic_invalidate();
	}
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* msgq.list_topics() returns setof text: the ARNs of the caller's topics */
Datum
msgq_list_topics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MsgqCall	call;
	uint64		i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	msgq_call_enter(&call);
	if (SPI_execute("SELECT topic_name, owner::pg_catalog.oid, acl FROM msgq.topic"
					" ORDER BY topic_name COLLATE \"C\"", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list topics");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 2, &isnull));
		Datum		acl_d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull);
		Datum		out[1];
		bool		outnull[1] = {false};

		if (!msgq_queue_action_allowed(call.caller, owner, isnull ? NULL : DatumGetAclP(acl_d),
									   MSGQ_TOPIC_ALL))
			continue;
		out[0] = CStringGetTextDatum(topic_arn(TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i],
																				 SPI_tuptable->tupdesc,
																				 1, &isnull))));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* msgq.get_topic_attributes(topic_name text) returns jsonb */
Datum
msgq_get_topic_attributes(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	Topic	   *t;
	Oid			argtypes[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	bool		isnull;
	Jsonb	   *result;

	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_action(t, call.caller, MSGQ_TOPIC_GET_ATTRS, "GetTopicAttributes");
	values[0] = Int32GetDatum(t->topic_id);
	values[1] = CStringGetTextDatum(topic_arn(t->name));
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_build_object("
							  "  'TopicArn', $2, 'Owner', t.owner::pg_catalog.text,"
							  "  'DisplayName', '',"
							  "  'SubscriptionsConfirmed', (SELECT pg_catalog.count(*) FROM msgq.subscription s"
							  "      WHERE s.topic_id OPERATOR(pg_catalog.=) t.topic_id AND NOT s.pending)::pg_catalog.text,"
							  "  'SubscriptionsPending', (SELECT pg_catalog.count(*) FROM msgq.subscription s"
							  "      WHERE s.topic_id OPERATOR(pg_catalog.=) t.topic_id AND s.pending)::pg_catalog.text,"
							  "  'SubscriptionsDeleted', '0',"
							  "  'EffectiveDeliveryPolicy', COALESCE(t.attributes OPERATOR(pg_catalog.->>) 'DeliveryPolicy',"
							  "      '{\"http\":{\"defaultHealthyRetryPolicy\":{\"minDelayTarget\":20,\"maxDelayTarget\":20,"
							  "\"numRetries\":3,\"numMaxDelayRetries\":0,\"numNoDelayRetries\":0,\"numMinDelayRetries\":0,"
							  "\"backoffFunction\":\"linear\"},\"disableSubscriptionOverrides\":false,"
							  "\"defaultRequestPolicy\":{\"headerContentType\":\"text/plain; charset=UTF-8\"}}}'))"
							  " OPERATOR(pg_catalog.||) (t.attributes OPERATOR(pg_catalog.-) 'FifoTopic'"
							  "     OPERATOR(pg_catalog.-) 'ContentBasedDeduplication'"
							  "     OPERATOR(pg_catalog.-) 'FifoThroughputScope')"
							  " OPERATOR(pg_catalog.||) CASE WHEN t.fifo THEN pg_catalog.jsonb_build_object("
							  "     'FifoTopic', 'true',"
							  "     'ContentBasedDeduplication', CASE WHEN t.content_dedup THEN 'true' ELSE 'false' END,"
							  "     'FifoThroughputScope', CASE WHEN t.dedup_per_group THEN 'MessageGroup' ELSE 'Topic' END)"
							  "   ELSE '{}' END"
							  "  FROM msgq.topic t WHERE t.topic_id OPERATOR(pg_catalog.=) $1",
							  2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read topic attributes");
	MemoryContextSwitchTo(call.cxt);
	result = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	msgq_call_leave(&call);
	PG_RETURN_JSONB_P(result);
}

/* msgq.set_topic_attributes(topic_name, attribute_name, attribute_value) */
Datum
msgq_set_topic_attributes(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	char	   *name = msgq_text_arg(fcinfo, 1);
	char	   *value = msgq_text_arg(fcinfo, 2);
	MsgqCall	call;
	Topic	   *t;
	Oid			argtypes[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		values[3];

	if (name == NULL)
		INVALID_PARAMETER("Invalid parameter: AttributeName");
	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_action(t, call.caller, MSGQ_TOPIC_SET_ATTRS, "SetTopicAttributes");
	value = topic_attr_check(name, value, t->fifo, true, "Invalid parameter: ");
	values[0] = Int32GetDatum(t->topic_id);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(value);
	if (SPI_execute_with_args("UPDATE msgq.topic"
							  "   SET attributes = CASE WHEN $3 OPERATOR(pg_catalog.=) '' AND $2 OPERATOR(pg_catalog.<>) 'DisplayName'"
							  "                    THEN attributes OPERATOR(pg_catalog.-) $2"
							  "                    ELSE attributes OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object($2, $3) END,"
							  "       content_dedup = CASE WHEN $2 OPERATOR(pg_catalog.=) 'ContentBasedDeduplication'"
							  "                       THEN $3 OPERATOR(pg_catalog.=) 'true' ELSE content_dedup END,"
							  "       dedup_per_group = CASE WHEN $2 OPERATOR(pg_catalog.=) 'FifoThroughputScope'"
							  "                       THEN $3 OPERATOR(pg_catalog.=) 'MessageGroup' ELSE dedup_per_group END"
							  " WHERE topic_id OPERATOR(pg_catalog.=) $1",
							  3, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not set topic attribute");
	topic_invalidate();
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Tags (SNS's TagResource, UntagResource, ListTagsForResource): the
 * owner's, at most 50 per topic
 * ------------------------------------------------------------------------
 */

/* The topic a tag call names, its owner checked; SNS's ResourceNotFound */
static Topic *
topic_tag_target(const char *ref, Oid caller)
{
	Topic	   *t;

	if (ref == NULL || ref[0] == '\0')
		INVALID_PARAMETER("Invalid parameter: ResourceArn");
	t = topic_lookup(ref);
	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("resource does not exist: topic \"%s\"", ref),
				 errdetail_internal("AWS error code: ResourceNotFound")));
	topic_check_owner(t, caller);
	return t;
}

/* A topic's tags, copied into cxt; locked for update when tagging */
static Jsonb *
topic_read_tags(Topic *t, MemoryContext cxt, bool for_update)
{
	bool		isnull;
	MemoryContext old;
	Jsonb	   *tags;

	if (SPI_execute_with_args(for_update ?
							  "SELECT tags FROM msgq.topic WHERE topic_id OPERATOR(pg_catalog.=) $1 FOR UPDATE" :
							  "SELECT tags FROM msgq.topic WHERE topic_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT4OID}, (Datum[]) {Int32GetDatum(t->topic_id)},
							  NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read topic tags");
	old = MemoryContextSwitchTo(cxt);
	tags = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	MemoryContextSwitchTo(old);
	return tags;
}

static void
topic_write_tags(Topic *t, Datum tags)
{
	if (SPI_execute_with_args("UPDATE msgq.topic SET tags = $2 WHERE topic_id OPERATOR(pg_catalog.=) $1",
							  2, (Oid[]) {INT4OID, JSONBOID}, (Datum[]) {Int32GetDatum(t->topic_id), tags},
							  NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not write topic tags");
}

/*
 * msgq.tag_topic(topic text, tags jsonb): add or replace tags
 * ({"key": "value", ...})
 */
Datum
msgq_tag_topic(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	Jsonb	   *given = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	Topic	   *t;

	msgq_call_enter(&call);
	t = topic_tag_target(ref, call.caller);
	topic_write_tags(t, JsonbPGetDatum(msgq_tags_merge(topic_read_tags(t, CurrentMemoryContext, true), given,
													   psprintf("topic \"%s\"", t->name),
													   "InvalidParameter", "TagLimitExceeded")));
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* msgq.untag_topic(topic text, tag_keys text[]) */
Datum
msgq_untag_topic(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	Topic	   *t;

	msgq_call_enter(&call);
	t = topic_tag_target(ref, call.caller);
	if (PG_ARGISNULL(1))
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter TagKeys");
	topic_write_tags(t, DirectFunctionCall2(jsonb_delete_array,
											JsonbPGetDatum(topic_read_tags(t, CurrentMemoryContext, true)),
											PG_GETARG_DATUM(1)));
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* msgq.list_topic_tags(topic text) returns jsonb */
Datum
msgq_list_topic_tags(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	Topic	   *t;
	Jsonb	   *tags;

	msgq_call_enter(&call);
	t = topic_tag_target(ref, call.caller);
	tags = topic_read_tags(t, call.cxt, false);
	msgq_call_leave(&call);
	PG_RETURN_JSONB_P(tags);
}

/* ------------------------------------------------------------------------
 * Subscriptions
 * ------------------------------------------------------------------------
 */

/* A subscription's row, as the functions on one subscription see it */
typedef struct SubRow
{
	pg_uuid_t	id;
	int32		topic_id;
	char	   *topic_name;
	Oid			topic_owner;
	bool		topic_fifo;
	TopicProtocol protocol;
	char	   *endpoint;
	Oid			owner;
	Jsonb	   *attributes;
	char	   *filter_policy;
	char	   *filter_scope;
} SubRow;

/* The subscription an ARN names; false when it is well-formed but gone. */
static bool
sub_get(const char *arn, SubRow *row)
{
	const char *p = arn ? strrchr(arn, ':') : NULL;
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	int			i;
	char	   *proto;

	if (p == NULL || strncmp(arn, "arn:aws:sns:", 12) != 0 || strlen(p + 1) != 36)
		INVALID_PARAMETER("Invalid parameter: SubscriptionArn");
	for (i = 0; i < 36; i++)
	{
		char		c = p[1 + i];

		if ((i == 8 || i == 13 || i == 18 || i == 23) ? c != '-' : !isxdigit((unsigned char) c))
			INVALID_PARAMETER("Invalid parameter: SubscriptionArn");
	}
	values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(p + 1));
	if (SPI_execute_plan(msgq_plan(&plan_sub_get,
								   "SELECT s.subscription_id, s.topic_id, t.topic_name, t.owner::pg_catalog.oid,"
								   "       t.fifo, s.protocol, s.endpoint, s.owner::pg_catalog.oid, s.attributes,"
								   "       s.filter_policy, s.filter_scope"
								   "  FROM msgq.subscription s JOIN msgq.topic t USING (topic_id)"
								   " WHERE s.subscription_id OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up subscription");
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memcpy(&row->id, DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull)), sizeof(pg_uuid_t));
	row->topic_id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	row->topic_name = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
	row->topic_owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
	row->topic_fifo = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
	proto = TextDatumGetCString(SPI_getbinval(tup, desc, 6, &isnull));
	row->protocol = PROTO_SQS;
	for (i = 0; i < lengthof(protocol_names); i++)
		if (strcmp(proto, protocol_names[i]) == 0)
			row->protocol = (TopicProtocol) i;
	row->endpoint = TextDatumGetCString(SPI_getbinval(tup, desc, 7, &isnull));
	row->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 8, &isnull));
	row->attributes = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 9, &isnull));
	d = SPI_getbinval(tup, desc, 10, &isnull);
	row->filter_policy = isnull ? NULL : TextDatumGetCString(d);
	d = SPI_getbinval(tup, desc, 11, &isnull);
	row->filter_scope = isnull ? NULL : TextDatumGetCString(d);
	return true;
}

static void
sub_check_access(SubRow *row, Oid roleid)
{
	if (!superuser_arg(roleid) && !has_privs_of_role(roleid, row->owner) &&
		!has_privs_of_role(roleid, row->topic_owner))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for subscription of topic \"%s\"", row->topic_name),
				 errdetail_internal("AWS error code: AuthorizationError")));
}

/* A queue named by a subscription (an ARN or a name; never a URL) */
static const char *
sqs_endpoint_name(const char *endpoint, const char *prefix, const char *what)
{
	const char *p;

	if (strstr(endpoint, "://") != NULL)
		INVALID_PARAMETER("Invalid parameter: %s", what);
	if (strncmp(endpoint, "arn:", 4) == 0)
	{
		if (strncmp(endpoint, "arn:aws:sqs:", 12) != 0 || (p = strrchr(endpoint, ':')) == NULL)
			INVALID_PARAMETER("Invalid parameter: %s", what);
		return p + 1;
	}
	return endpoint;
}

/* The subscription's validated attribute set */
typedef struct SubAttrs
{
	bool		raw;
	char	   *filter_policy;	/* NULL: none */
	char	   *filter_scope;	/* NULL: the default */
	char	   *dlq;
	char	   *pkey_attr;
	char	   *redrive;		/* the RedrivePolicy text */
	char	   *delivery_policy;	/* function, http, https: DeliveryPolicy */
} SubAttrs;

/* Check a queue the subscription's owner may send to; raises otherwise */
static void
sub_check_queue(const char *name, Oid owner, bool topic_fifo, bool is_dlq,
				const char *prefix)
{
	MsgqQueue	q;

	if (!msgq_queue_lookup(name, &q))
	{
		if (is_dlq)
			INVALID_PARAMETER("%sRedrivePolicy: deadLetterTargetArn is an invalid arn", prefix);
		INVALID_PARAMETER("Invalid parameter: SQS endpoint ARN");
	}
	if (!msgq_queue_action_allowed(owner, q.owner, q.acl, MSGQ_ACT_SEND))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for queue \"%s\"", q.queue_name),
				 errdetail_internal("AWS error code: AuthorizationError"),
				 errhint("A subscription's owner needs SendMessage on the queue.")));
	if (is_dlq)
	{
		if (topic_fifo && !q.fifo)
			INVALID_PARAMETER("%sRedrivePolicy: must use a FIFO queue as DLQ for a FIFO topic", prefix);
		if (!topic_fifo && q.fifo)
			INVALID_PARAMETER("%sRedrivePolicy: must use a standard queue as DLQ for a standard topic", prefix);
		return;
	}
	if (topic_fifo && !q.fifo)
		INVALID_PARAMETER("Invalid parameter: Endpoint Reason: FIFO SNS topics can only be subscribed by FIFO SQS queues");
	if (!topic_fifo && q.fifo)
		INVALID_PARAMETER("Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics");
}

/*
 * Apply one subscription attribute to a; raises AWS's error for a bad one.
 * The policy is checked by the caller, once the scope is known.
 */
static void
sub_attr_apply(SubAttrs *a, const char *name, const char *value, TopicProtocol proto,
			   Oid owner, bool topic_fifo, const char *prefix, bool for_set)
{
	if (value == NULL)
		INVALID_PARAMETER("%s%s: Invalid value [null]", prefix, name);
	if (strcmp(name, "RawMessageDelivery") == 0)
	{
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
			INVALID_PARAMETER("%sRawMessageDelivery: Invalid value [%s]. Must be true or false.", prefix, value);
		a->raw = strcmp(value, "true") == 0;
		if (a->raw && proto == PROTO_FUNCTION)
			INVALID_PARAMETER("%sDelivery protocol [%s] does not support raw message delivery.",
							  prefix, protocol_names[proto]);
	}
	else if (strcmp(name, "FilterPolicy") == 0)
		a->filter_policy = value[0] == '\0' ? NULL : pstrdup(value);
	else if (strcmp(name, "FilterPolicyScope") == 0)
	{
		if (strcmp(value, "MessageAttributes") != 0 && strcmp(value, "MessageBody") != 0)
			INVALID_PARAMETER("%sFilterPolicyScope: Invalid value [%s]. Please use either MessageBody or MessageAttributes", prefix, value);
		a->filter_scope = pstrdup(value);
	}
	else if (strcmp(name, "RedrivePolicy") == 0)
	{
		Jsonb	   *j;
		JsonbValue	k;
		JsonbValue *target;

		a->dlq = NULL;
		a->redrive = NULL;
		if (value[0] == '\0')
			return;
		if (!is_json_object(value))
			INVALID_PARAMETER("%sRedrivePolicy: failed to parse JSON", prefix);
		j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(value)));
		k.type = jbvString;
		k.val.string.val = "deadLetterTargetArn";
		k.val.string.len = strlen(k.val.string.val);
		target = findJsonbValueFromContainer(&j->root, JB_FOBJECT, &k);
		if (target == NULL || target->type != jbvString || target->val.string.len == 0)
			INVALID_PARAMETER("%sRedrivePolicy: deadLetterTargetArn is missing", prefix);
		a->dlq = pstrdup(sqs_endpoint_name(pnstrdup(target->val.string.val, target->val.string.len),
										   prefix, "RedrivePolicy: deadLetterTargetArn is an invalid arn"));
		sub_check_queue(a->dlq, owner, topic_fifo, true, prefix);
		a->redrive = pstrdup(value);
	}
	else if (strcmp(name, "PartitionKeyAttribute") == 0 && proto == PROTO_KINESIS)
	{
		if (strlen(value) > 256)
			INVALID_PARAMETER("%sPartitionKeyAttribute: must be at most 256 characters", prefix);
		a->pkey_attr = value[0] == '\0' ? NULL : pstrdup(value);
	}
	else if (strcmp(name, "DeliveryPolicy") == 0 && PROTO_IS_ASYNC(proto))
	{
		msgq_delivery_policy_check(value, false, prefix);
		a->delivery_policy = value[0] == '\0' ? NULL : pstrdup(value);
	}
	else if (strcmp(name, "DeliveryPolicy") == 0)
		INVALID_PARAMETER("%sDeliveryPolicy: Delivery protocol [%s] does not support delivery policies.",
						  prefix, protocol_names[proto]);
	else if (for_set)
		INVALID_PARAMETER("Invalid parameter: AttributeName");
	else
		INVALID_PARAMETER("%sUnknown attribute %s", prefix, name);
}

/* Compile the policy in its scope, to check it (raises AWS's errors) */
static void
sub_check_policy(SubAttrs *a, const char *prefix)
{
	if (a->filter_policy != NULL)
		(void) msgq_filter_compile(a->filter_policy, strlen(a->filter_policy),
								   a->filter_scope && strcmp(a->filter_scope, "MessageBody") == 0 ?
								   MSGQ_FILTER_BODY : MSGQ_FILTER_ATTRIBUTES, prefix);
}

static void
put_string(JsonbParseState **state, const char *key, const char *value)
{
	JsonbValue	k;
	JsonbValue	v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	pushJsonbValue(state, WJB_KEY, &k);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* The stored attributes of a subscription: the given ones, as strings */
static Jsonb *
sub_attrs_jsonb(SubAttrs *a)
{
	JsonbParseState *state = NULL;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	put_string(&state, "RawMessageDelivery", a->raw ? "true" : "false");
	if (a->filter_policy)
	{
		put_string(&state, "FilterPolicy", a->filter_policy);
		put_string(&state, "FilterPolicyScope", a->filter_scope ? a->filter_scope : "MessageAttributes");
	}
	if (a->redrive)
		put_string(&state, "RedrivePolicy", a->redrive);
	if (a->pkey_attr)
		put_string(&state, "PartitionKeyAttribute", a->pkey_attr);
	if (a->delivery_policy)
		put_string(&state, "DeliveryPolicy", a->delivery_policy);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

static int64
topic_policy_count(int32 topic_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];
	bool		isnull;

	values[0] = Int32GetDatum(topic_id);
	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM msgq.subscription"
							  " WHERE topic_id OPERATOR(pg_catalog.=) $1 AND filter_policy IS NOT NULL",
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count filter policies");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static void
policy_limit_check(int32 topic_id)
{
	if (topic_policy_count(topic_id) >= TOPIC_MAX_POLICIES)
		msgq_aws_error("FilterPolicyLimitExceeded", ERRCODE_MSGQ_FILTER_POLICY_LIMIT_EXCEEDED,
					   "Filter policy limit exceeded");
}

/* nbytes random bytes in hex: confirmation tokens, the outbox's ARN token */
static char *
random_token(int nbytes)
{
	uint8		raw[32];
	char	   *token = palloc(nbytes * 2 + 1);

	Assert(nbytes <= (int) sizeof(raw));
	msgq_random_bytes(raw, nbytes);
	hex_encode((const char *) raw, nbytes, token);
	token[nbytes * 2] = '\0';
	return token;
}

/*
 * A function subscription's endpoint: a function taking one jsonb, json or
 * text argument that the subscriber may execute.  Returns its canonical,
 * schema-qualified signature, which is what is stored.
 */
static char *
function_endpoint(const char *endpoint, Oid roleid)
{
	Oid			fn;
	Oid		   *argtypes;
	int			nargs;
	MemoryContext cxt = CurrentMemoryContext;
	int			nest = msgq_caller_search_path();

	PG_TRY();
	{
		fn = DatumGetObjectId(DirectFunctionCall1(regprocedurein, CStringGetDatum(endpoint)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		INVALID_PARAMETER("Invalid parameter: Endpoint Reason: %s", edata->message);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
	(void) get_func_signature(fn, &argtypes, &nargs);
	if (nargs != 1 || (argtypes[0] != JSONBOID && argtypes[0] != JSONOID &&
					   argtypes[0] != TEXTOID) || get_func_retset(fn))
		INVALID_PARAMETER("Invalid parameter: Endpoint Reason: a function subscription needs a function of one jsonb, json or text argument that returns no set");
	if (pg_proc_aclcheck(fn, roleid, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for function %s", endpoint),
				 errdetail_internal("AWS error code: AuthorizationError"),
				 errhint("A function subscription's owner needs EXECUTE on the function.")));
	return format_procedure_qualified(fn);
}

/* The canonical text a confirmation's signature is made of (SNS's order) */
static char *
confirmation_canonical(const char *message, const char *id, const char *url,
					   const char *ts, const char *token, const char *arn,
					   const char *type)
{
	return psprintf("Message\n%s\nMessageId\n%s\nSubscribeURL\n%s\nTimestamp\n%s\n"
					"Token\n%s\nTopicArn\n%s\nType\n%s\n",
					message, id, url, ts, token, arn, type);
}

/*
 * The signed SubscriptionConfirmation (unsubscribe false) or
 * UnsubscribeConfirmation an HTTP endpoint receives
 */
static char *
confirmation_document(const char *topic_name, const char *token, Datum message_id,
					  bool unsubscribe)
{
	StringInfoData b;
	char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, message_id));
	char	   *ts = iso_timestamp(msgq_now());
	char	   *arn = topic_arn(topic_name);
	const char *type = unsubscribe ? "UnsubscribeConfirmation" : "SubscriptionConfirmation";
	char	   *message = unsubscribe ?
		psprintf("You have chosen to deactivate subscription %s.\n"
				 "To cancel this operation and restore the subscription, subscribe the endpoint to the topic again.",
				 arn) :
		psprintf("You have chosen to subscribe to the topic %s.\n"
				 "To confirm the subscription, call msgq.confirm_subscription with the Token included in this message.",
				 arn);
	char	   *url = unsubscribe ?
		psprintf("msgq:subscribe?TopicArn=%s", arn) :
		psprintf("msgq:confirm_subscription?TopicArn=%s&Token=%s", arn, token);
	char	   *canon = confirmation_canonical(message, id, url, ts, token, arn, type);

	initStringInfo(&b);
	appendStringInfoChar(&b, '{');
	json_member(&b, "Type", type, true);
	json_member(&b, "MessageId", id, false);
	json_member(&b, "Token", token, false);
	json_member(&b, "TopicArn", arn, false);
	json_member(&b, "Message", message, false);
	json_member(&b, "SubscribeURL", url, false);
	json_member(&b, "Timestamp", ts, false);
	json_member(&b, "SignatureVersion", "2", false);
	json_member(&b, "Signature", notification_signature(canon), false);
	json_member(&b, "SigningCertURL", "msgq:verify_notification", false);
	appendStringInfoChar(&b, '}');
	return b.data;
}

/*
 * msgq.subscribe(topic_name, protocol, endpoint, attributes jsonb) returns
 * the subscription's ARN.  Idempotent for the same topic, protocol,
 * endpoint and attributes.
 */
Datum
msgq_subscribe(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	char	   *protocol = msgq_text_arg(fcinfo, 1);
	char	   *endpoint = msgq_text_arg(fcinfo, 2);
	Jsonb	   *given = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	const char *prefix = "Invalid parameter: Attributes Reason: ";
	MsgqCall	call;
	Topic	   *t;
	TopicProtocol proto = PROTO_SQS;
	SubAttrs	a;
	int			i;
	bool		known = false;
	char	   *stored_endpoint;
	Jsonb	   *attrs;
	Oid			argtypes[4] = {INT4OID, TEXTOID, TEXTOID, JSONBOID};
	Datum		values[4];
	pg_uuid_t	id;
	char	   *arn;
	bool		isnull;
	bool		pending = false;

	if (protocol == NULL || protocol[0] == '\0')
		INVALID_PARAMETER("Invalid parameter: Protocol");
	for (i = 0; i < lengthof(protocol_names); i++)
		if (strcmp(protocol, protocol_names[i]) == 0)
		{
			proto = (TopicProtocol) i;
			known = true;
		}
	if (!known)
		INVALID_PARAMETER("Invalid parameter: Amazon SNS does not support this protocol string: %s", protocol);
	if (endpoint == NULL || endpoint[0] == '\0')
		INVALID_PARAMETER("Invalid parameter: Endpoint");
	if (given != NULL && (!JB_ROOT_IS_OBJECT(given) || JB_ROOT_IS_SCALAR(given)))
		INVALID_PARAMETER("%sattributes must be a JSON object", prefix);

	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_action(t, call.caller, MSGQ_TOPIC_SUBSCRIBE, "Subscribe");

	/* the endpoint, and the subscriber's right to it */
	stored_endpoint = endpoint;
	if (proto == PROTO_SQS)
	{
		stored_endpoint = pstrdup(sqs_endpoint_name(endpoint, prefix, "SQS endpoint ARN"));
		sub_check_queue(stored_endpoint, call.caller, t->fifo, false, prefix);
	}
	else if (proto == PROTO_NOTIFY)
	{
		if (strlen(endpoint) >= NAMEDATALEN)
			INVALID_PARAMETER("Invalid parameter: Endpoint Reason: a channel name has at most %d bytes",
							  NAMEDATALEN - 1);
		if (t->fifo)
			INVALID_PARAMETER("Invalid parameter: Endpoint Reason: FIFO SNS topics can only be subscribed by FIFO SQS queues");
	}
	else
	{
		if (t->fifo)
			INVALID_PARAMETER("Invalid parameter: Endpoint Reason: FIFO SNS topics can only be subscribed by FIFO SQS queues");
		if (proto == PROTO_KINESIS)
			msgq_stream_check_endpoint(endpoint, call.caller);
		else if (proto == PROTO_FUNCTION)
			stored_endpoint = function_endpoint(endpoint, call.caller);
		else if (pg_strncasecmp(endpoint, proto == PROTO_HTTP ? "http://" : "https://",
								proto == PROTO_HTTP ? 7 : 8) != 0 ||
				 strlen(endpoint) > 2048 || strpbrk(endpoint, " \t\r\n") != NULL)
			INVALID_PARAMETER("Invalid parameter: Endpoint must match the specified protocol");
	}

	memset(&a, 0, sizeof(a));
	if (given != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&given->root);
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *key = NULL;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				key = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE)
				sub_attr_apply(&a, key, attr_text(&v), proto, call.caller, t->fifo, prefix, false);
		}
	}
	sub_check_policy(&a, prefix);
	attrs = sub_attrs_jsonb(&a);

	/* one subscriber at a time per topic */
	LockDatabaseObject(topic_table_relid(), (Oid) t->topic_id, 1, ExclusiveLock);
	values[0] = Int32GetDatum(t->topic_id);
	values[1] = CStringGetTextDatum(protocol_names[proto]);
	values[2] = CStringGetTextDatum(stored_endpoint);
	values[3] = JsonbPGetDatum(attrs);
	if (SPI_execute_with_args("SELECT subscription_id, attributes OPERATOR(pg_catalog.=) $4, pending"
							  "  FROM msgq.subscription WHERE topic_id OPERATOR(pg_catalog.=) $1"
							  "   AND protocol OPERATOR(pg_catalog.=) $2 AND endpoint OPERATOR(pg_catalog.=) $3",
							  4, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up subscription");
	if (SPI_processed > 0)
	{
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
			INVALID_PARAMETER("Invalid parameter: Attributes Reason: Subscription already exists with different attributes");
		memcpy(&id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
			   sizeof(id));
		pending = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	}
	else
	{
		Oid			iargtypes[12] = {UUIDOID, INT4OID, TEXTOID, TEXTOID, OIDOID, BOOLOID,
		TEXTOID, TEXTOID, TEXTOID, JSONBOID, BOOLOID, TEXTOID};
		Datum		ivalues[12];
		char		inulls[12] = "            ";
		char	   *token = NULL;

		if (a.filter_policy != NULL)
			policy_limit_check(t->topic_id);
		memcpy(&id, DatumGetUUIDP(msgq_new_uuid()), sizeof(id));
		ivalues[0] = UUIDPGetDatum(&id);
		ivalues[1] = values[0];
		ivalues[2] = values[1];
		ivalues[3] = values[2];
		ivalues[4] = ObjectIdGetDatum(call.caller);
		ivalues[5] = BoolGetDatum(a.raw);
		ivalues[6] = a.filter_policy ? CStringGetTextDatum(a.filter_policy) : (Datum) 0;
		inulls[6] = a.filter_policy ? ' ' : 'n';
		ivalues[7] = CStringGetTextDatum(a.filter_scope ? a.filter_scope : "MessageAttributes");
		inulls[7] = (a.filter_policy || a.filter_scope) ? ' ' : 'n';
		ivalues[8] = a.dlq ? CStringGetTextDatum(a.dlq) : (Datum) 0;
		inulls[8] = a.dlq ? ' ' : 'n';
		ivalues[9] = JsonbPGetDatum(attrs);
		/* HTTP endpoints must confirm; the protocols inside msgq need not */
		pending = PROTO_IS_HTTP(proto);
		ivalues[10] = BoolGetDatum(pending);
		if (pending)
		{
			token = random_token(32);
			ivalues[11] = CStringGetTextDatum(token);
		}
		else
			inulls[11] = 'n';
		if (SPI_execute_with_args("INSERT INTO msgq.subscription (subscription_id, topic_id, protocol,"
								  "  endpoint, owner, raw_delivery, filter_policy, filter_scope,"
								  "  dead_letter_queue, attributes, pending, confirm_token, created_at)"
								  " VALUES ($1, $2, $3, $4, $5::pg_catalog.regrole, $6, $7, $8, $9, $10,"
								  "  $11, $12, pg_catalog.clock_timestamp())",
								  12, iargtypes, ivalues, inulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not subscribe");
		if (pending)
		{
			Datum		mid = msgq_new_uuid();

			msgq_delivery_enqueue(&id, mid, "SubscriptionConfirmation",
								  confirmation_document(t->name, token, mid, false), msgq_now(),
								  NULL, NULL, NULL);
		}
		topic_invalidate();
	}
	/* SNS answers so until the endpoint confirms */
	arn = pending ? "pending confirmation" : sub_arn(t->name, &id);
	MemoryContextSwitchTo(call.cxt);
	arn = pstrdup(arn);
	msgq_call_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text(arn));
}

/* msgq.unsubscribe(subscription text): idempotent, as in SNS */
Datum
msgq_unsubscribe(PG_FUNCTION_ARGS)
{
	char	   *arn = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	SubRow		row;
	Oid			argtypes[1] = {UUIDOID};
	Datum		values[1];

	msgq_call_enter(&call);
	if (sub_get(arn, &row))
	{
		sub_check_access(&row, call.caller);
		values[0] = UUIDPGetDatum(&row.id);
		if (SPI_execute_with_args("DELETE FROM msgq.subscription WHERE subscription_id OPERATOR(pg_catalog.=) $1"
								  " RETURNING pending",
								  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
			elog(ERROR, "could not unsubscribe");

		/*
		 * A confirmed http or https endpoint is told, as SNS does, by an
		 * UnsubscribeConfirmation sent after commit (the delivery row keeps
		 * the endpoint: the subscription row is gone)
		 */
		if (SPI_processed == 1 && PROTO_IS_HTTP(row.protocol))
		{
			bool		isnull;
			bool		pending = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc, 1, &isnull));

			if (!pending)
			{
				Datum		mid = msgq_new_uuid();

				msgq_delivery_enqueue(&row.id, mid, "UnsubscribeConfirmation",
									  confirmation_document(row.topic_name, random_token(32),
															mid, true),
									  msgq_now(), protocol_names[row.protocol],
									  row.endpoint, row.topic_name);
			}
		}
		/* its pending deliveries are dropped by the worker */
		msgq_topic_metrics_drop_subscription(&row.id);
		topic_invalidate();
	}
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*
 * msgq.confirm_subscription(topic_name, token, authenticate_on_unsubscribe)
 *
 * Confirms the pending HTTP subscription the token was sent to and returns
 * its ARN (again for one already confirmed, as SNS does).  The other
 * protocols are confirmed when subscribed.
 */
Datum
msgq_confirm_subscription(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	char	   *token = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	Topic	   *t;
	Oid			argtypes[2];
	Datum		values[2];
	bool		isnull;
	pg_uuid_t	id;
	char	   *arn;

	if (token == NULL || token[0] == '\0')
		INVALID_PARAMETER("Invalid parameter: Token");
	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_action(t, call.caller, MSGQ_TOPIC_SUBSCRIBE, "ConfirmSubscription");
	argtypes[0] = INT4OID;
	argtypes[1] = TEXTOID;
	values[0] = Int32GetDatum(t->topic_id);
	values[1] = CStringGetTextDatum(token);
	if (SPI_execute_with_args("UPDATE msgq.subscription SET pending = false"
							  " WHERE topic_id OPERATOR(pg_catalog.=) $1"
							  "   AND confirm_token OPERATOR(pg_catalog.=) $2"
							  " RETURNING subscription_id",
							  2, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not confirm a subscription");
	if (SPI_processed != 1)
		INVALID_PARAMETER("Invalid parameter: Token");
	memcpy(&id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
		   sizeof(id));
	topic_invalidate();
	arn = sub_arn(t->name, &id);
	MemoryContextSwitchTo(call.cxt);
	arn = pstrdup(arn);
	msgq_call_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text(arn));
}

static void
list_subscriptions(FunctionCallInfo fcinfo, Topic *t, Oid caller)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];
	char		nulls[1];
	uint64		i;

	values[0] = t ? Int32GetDatum(t->topic_id) : (Datum) 0;
	nulls[0] = t ? ' ' : 'n';
	if (SPI_execute_with_args("SELECT s.subscription_id, s.owner::pg_catalog.oid, s.protocol, s.endpoint,"
							  "       t.topic_name, t.owner::pg_catalog.oid, t.acl, s.pending"
							  "  FROM msgq.subscription s JOIN msgq.topic t USING (topic_id)"
							  " WHERE $1 IS NULL OR s.topic_id OPERATOR(pg_catalog.=) $1"
							  " ORDER BY t.topic_name COLLATE \"C\", s.created_at, s.subscription_id",
							  1, argtypes, values, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list subscriptions");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		Oid			towner = DatumGetObjectId(SPI_getbinval(tup, desc, 6, &isnull));
		char	   *tname = TextDatumGetCString(SPI_getbinval(tup, desc, 5, &isnull));
		Datum		out[5];
		bool		outnull[5] = {false, false, false, false, false};

		Datum		acl_d = SPI_getbinval(tup, desc, 7, &isnull);

		if (!has_privs_of_role(caller, owner) &&
			!msgq_queue_action_allowed(caller, towner, isnull ? NULL : DatumGetAclP(acl_d),
									   MSGQ_TOPIC_LIST_SUBSCRIPTIONS))
			continue;
		if (DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull)))
			out[0] = CStringGetTextDatum("PendingConfirmation");
		else
			out[0] = CStringGetTextDatum(sub_arn(tname, DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull))));
		out[1] = CStringGetTextDatum(GetUserNameFromId(owner, true) ? GetUserNameFromId(owner, true) : "");
		out[2] = SPI_getbinval(tup, desc, 3, &isnull);
		out[3] = SPI_getbinval(tup, desc, 4, &isnull);
		out[4] = CStringGetTextDatum(topic_arn(tname));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
	}
}

/* msgq.list_subscriptions(): the subscriptions the caller owns or can see */
Datum
msgq_list_subscriptions(PG_FUNCTION_ARGS)
{
	MsgqCall	call;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	msgq_call_enter(&call);
	list_subscriptions(fcinfo, NULL, call.caller);
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* msgq.list_subscriptions_by_topic(topic_name text) */
Datum
msgq_list_subscriptions_by_topic(PG_FUNCTION_ARGS)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	Topic	   *t;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_action(t, call.caller, MSGQ_TOPIC_LIST_SUBSCRIPTIONS, "ListSubscriptionsByTopic");
	list_subscriptions(fcinfo, t, call.caller);
	msgq_call_leave(&call);
	return (Datum) 0;
}

/* msgq.get_subscription_attributes(subscription text) returns jsonb */
Datum
msgq_get_subscription_attributes(PG_FUNCTION_ARGS)
{
	char	   *arn = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	SubRow		row;
	Oid			argtypes[7] = {JSONBOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID};
	Datum		values[7];
	bool		isnull;
	Jsonb	   *result;
	char	   *owner;

	msgq_call_enter(&call);
	if (!sub_get(arn, &row))
		msgq_aws_error("NotFound", ERRCODE_MSGQ_NOT_FOUND, "Subscription does not exist");
	sub_check_access(&row, call.caller);
	owner = GetUserNameFromId(row.owner, true);
	values[0] = JsonbPGetDatum(row.attributes);
	values[1] = CStringGetTextDatum(sub_arn(row.topic_name, &row.id));
	values[2] = CStringGetTextDatum(topic_arn(row.topic_name));
	values[3] = CStringGetTextDatum(owner ? owner : "");
	values[4] = CStringGetTextDatum(protocol_names[row.protocol]);
	values[5] = CStringGetTextDatum(row.protocol == PROTO_SQS ?
									msgq_queue_arn(row.endpoint) : row.endpoint);
	values[6] = UUIDPGetDatum(&row.id);
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_build_object('SubscriptionArn', $2,"
							  "  'TopicArn', $3, 'Owner', $4, 'Protocol', $5, 'Endpoint', $6,"
							  "  'ConfirmationWasAuthenticated', 'true',"
							  "  'PendingConfirmation', CASE WHEN s.pending THEN 'true' ELSE 'false' END)"
							  " OPERATOR(pg_catalog.||) $1"
							  "  FROM msgq.subscription s WHERE s.subscription_id OPERATOR(pg_catalog.=) $7",
							  7, argtypes, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not build subscription attributes");
	MemoryContextSwitchTo(call.cxt);
	result = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	msgq_call_leave(&call);
	PG_RETURN_JSONB_P(result);
}

/* The stored attribute value, or NULL */
static char *
jsonb_string(Jsonb *j, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&j->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* msgq.set_subscription_attributes(subscription, attribute_name, attribute_value) */
Datum
msgq_set_subscription_attributes(PG_FUNCTION_ARGS)
{
	char	   *arn = msgq_text_arg(fcinfo, 0);
	char	   *name = msgq_text_arg(fcinfo, 1);
	char	   *value = msgq_text_arg(fcinfo, 2);
	const char *prefix = "Invalid parameter: ";
	MsgqCall	call;
	SubRow		row;
	SubAttrs	a;
	char	   *rd;
	Jsonb	   *attrs;
	Oid			argtypes[6] = {UUIDOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID};
	Datum		values[6];
	char		nulls[6] = "      ";

	if (name == NULL)
		INVALID_PARAMETER("Invalid parameter: AttributeName");
	msgq_call_enter(&call);
	if (!sub_get(arn, &row))
		msgq_aws_error("NotFound", ERRCODE_MSGQ_NOT_FOUND, "Subscription does not exist");
	sub_check_access(&row, call.caller);

	memset(&a, 0, sizeof(a));
	rd = jsonb_string(row.attributes, "RawMessageDelivery");
	a.raw = rd != NULL && strcmp(rd, "true") == 0;
	a.filter_policy = row.filter_policy;
	a.filter_scope = row.filter_scope;
	a.redrive = jsonb_string(row.attributes, "RedrivePolicy");
	if (a.redrive != NULL)
	{
		/* re-derive the queue name from the stored policy */
		sub_attr_apply(&a, "RedrivePolicy", a.redrive, row.protocol, row.owner,
					   row.topic_fifo, prefix, true);
	}
	a.pkey_attr = jsonb_string(row.attributes, "PartitionKeyAttribute");
	a.delivery_policy = jsonb_string(row.attributes, "DeliveryPolicy");
	sub_attr_apply(&a, name, value, row.protocol, row.owner, row.topic_fifo, prefix, true);
	sub_check_policy(&a, prefix);
	if (a.filter_policy != NULL && row.filter_policy == NULL)
		policy_limit_check(row.topic_id);
	attrs = sub_attrs_jsonb(&a);

	values[0] = UUIDPGetDatum(&row.id);
	values[1] = BoolGetDatum(a.raw);
	values[2] = a.filter_policy ? CStringGetTextDatum(a.filter_policy) : (Datum) 0;
	nulls[2] = a.filter_policy ? ' ' : 'n';
	values[3] = CStringGetTextDatum(a.filter_scope ? a.filter_scope : "MessageAttributes");
	nulls[3] = (a.filter_policy || a.filter_scope) ? ' ' : 'n';
	values[4] = a.dlq ? CStringGetTextDatum(a.dlq) : (Datum) 0;
	nulls[4] = a.dlq ? ' ' : 'n';
	values[5] = JsonbPGetDatum(attrs);
	if (SPI_execute_with_args("UPDATE msgq.subscription SET raw_delivery = $2, filter_policy = $3,"
							  "  filter_scope = $4, dead_letter_queue = $5, attributes = $6"
							  " WHERE subscription_id OPERATOR(pg_catalog.=) $1",
							  6, argtypes, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not set subscription attribute");
	topic_invalidate();
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Publish
 * ------------------------------------------------------------------------
 */

/* One message being published, validated */
typedef struct PubMessage
{
	text	   *message;
	char	   *subject;
	Jsonb	   *attrs;			/* NULL: none */
	int			nattrs;
	char	   *group_id;
	char	   *dedup_id;
	Jsonb	   *structure;		/* MessageStructure json: the parsed message */
	int64		size;
	/* set when published */
	Datum		message_id;
	int64		seq;
	TimestampTz at;
	char	   *sqs_md5_attrs;	/* MD5OfMessageAttributes, when computed */
	bool		md5_done;
	char	   *signature;
	/* the outbox row of the deliveries after commit (delivery.c) */
	int			outbox_docs[5]; /* document index per OutboxDoc, 0: none yet */
	char	   *outbox_token;	/* stands for the subscription ARN, or NULL */
} PubMessage;

/* The documents a message's outbox row may hold, each at most once */
typedef enum OutboxDoc
{
	OUTBOX_LAMBDA,				/* function: the Lambda-style event */
	OUTBOX_ENVELOPE_HTTP,
	OUTBOX_ENVELOPE_HTTPS,
	OUTBOX_RAW_HTTP,
	OUTBOX_RAW_HTTPS
} OutboxDoc;

static bool
attr_name_ok(const char *name, int len)
{
	int			i;

	if (len == 0 || len > 256 || name[0] == '.' || name[len - 1] == '.')
		return false;
	if (pg_strncasecmp(name, "AWS.", 4) == 0 || pg_strncasecmp(name, "Amazon.", 7) == 0)
		return false;
	for (i = 0; i < len; i++)
	{
		if (!msgq_is_name_char(name[i]) && name[i] != '.')
			return false;
		if (name[i] == '.' && i + 1 < len && name[i + 1] == '.')
			return false;
	}
	return true;
}

/* A Number attribute: -10^9 to 10^9, at most 5 decimals (SPEC-aws.md 2.1) */
static bool
number_ok(const char *s)
{
	char	   *end;
	double		d;
	const char *p;

	errno = 0;
	d = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || isnan(d) || isinf(d))
		return false;
	for (p = s; *p; p++)
		if (!(isdigit((unsigned char) *p) || *p == '.' || *p == '-' || *p == '+' ||
			  *p == 'e' || *p == 'E'))
			return false;
	return d >= -1e9 && d <= 1e9;
}

/*
 * Check publish's message attributes (the send_message shape) with SNS's
 * errors; returns the bytes they count toward the message size.
 */
static int64
pub_check_attributes(Jsonb *attrs, int *nattrs)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;
	int64		size = 0;

	*nattrs = 0;
	if (attrs == NULL)
		return 0;
	if (!JB_ROOT_IS_OBJECT(attrs) || JB_ROOT_IS_SCALAR(attrs))
		VALUE_INVALID("Message attributes must be a JSON object");
	it = JsonbIteratorInit(&attrs->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbContainer *obj;
		char	   *type;
		JsonbValue	k;
		JsonbValue *sv;
		JsonbValue *bv;
		JsonbValue *tv;

		if (tok == WJB_KEY)
		{
			name = pnstrdup(v.val.string.val, v.val.string.len);
			if (!attr_name_ok(name, v.val.string.len))
				VALUE_INVALID("The message attribute name '%s' is invalid.", name);
			size += v.val.string.len;
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		(*nattrs)++;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			VALUE_INVALID("The message attribute '%s' must be a JSON object with DataType and StringValue or BinaryValue.", name);
		obj = v.val.binary.data;
		k.type = jbvString;
		k.val.string.val = "DataType";
		k.val.string.len = 8;
		tv = findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
		k.val.string.val = "StringValue";
		k.val.string.len = 11;
		sv = findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
		k.val.string.val = "BinaryValue";
		bv = findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
		if (sv != NULL && sv->type == jbvNull)
			sv = NULL;
		if (bv != NULL && bv->type == jbvNull)
			bv = NULL;
		if (tv == NULL || tv->type != jbvString || tv->val.string.len == 0)
			VALUE_INVALID("The message attribute '%s' must contain non-empty message attribute type.", name);
		type = pnstrdup(tv->val.string.val, tv->val.string.len);
		size += tv->val.string.len;
		if (strncmp(type, "String", 6) == 0 && (type[6] == '\0' || type[6] == '.'))
		{
			if (sv == NULL || sv->type != jbvString || sv->val.string.len == 0)
			{
				if (bv != NULL)
					VALUE_INVALID("The message attribute '%s' with type 'String' must use field 'String'.", name);
				VALUE_INVALID("The message attribute '%s' must contain non-empty message attribute value for message attribute type 'String'.", name);
			}
			size += sv->val.string.len;
		}
		else if (strncmp(type, "Number", 6) == 0 && (type[6] == '\0' || type[6] == '.'))
		{
			if (sv == NULL || sv->type != jbvString)
			{
				if (bv != NULL)
					VALUE_INVALID("The message attribute '%s' with type 'Number' must use field 'String'.", name);
				VALUE_INVALID("The message attribute '%s' must contain non-empty message attribute value for message attribute type 'Number'.", name);
			}
			if (!number_ok(pnstrdup(sv->val.string.val, sv->val.string.len)))
				VALUE_INVALID("Could not cast message attribute '%s' value to number.", name);
			size += sv->val.string.len;
		}
		else if (strncmp(type, "Binary", 6) == 0 && (type[6] == '\0' || type[6] == '.'))
		{
			if (bv == NULL || bv->type != jbvString || bv->val.string.len == 0)
			{
				if (sv != NULL)
					VALUE_INVALID("The message attribute '%s' with type 'Binary' must use field 'Binary'.", name);
				VALUE_INVALID("The message attribute '%s' must contain non-empty message attribute value for message attribute type 'Binary'.", name);
			}
			size += bv->val.string.len * 3 / 4;
		}
		else
			VALUE_INVALID("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name);
	}
	return size;
}

/* FIFO ids: 1-128 characters, SQS's alphanumeric and punctuation */
static void
pub_check_id(const char *param, const char *value)
{
	size_t		len = strlen(value);
	size_t		i;

	if (len == 0 || len > MSGQ_MAX_ID_LEN)
		INVALID_PARAMETER("Invalid parameter: %s Reason: must be 1 to 128 characters", param);
	for (i = 0; i < len; i++)
		if (value[i] < '!' || value[i] > '~')
			INVALID_PARAMETER("Invalid parameter: %s Reason: contains an invalid character", param);
}

/*
 * Validate a message for a topic.  Computes only over memory (no locks or
 * catalog access), so publish_batch can catch its errors per entry.
 */
static void
pub_validate(Topic *t, PubMessage *m, const char *structure)
{
	int64		size;

	if (m->message == NULL || VARSIZE_ANY_EXHDR(m->message) == 0)
		INVALID_PARAMETER("Invalid parameter: Empty message");
	msgq_check_body(VARDATA_ANY(m->message), VARSIZE_ANY_EXHDR(m->message));
	if (m->subject != NULL)
	{
		const char *p;

		if (m->subject[0] == '\0' || pg_mbstrlen(m->subject) > TOPIC_MAX_SUBJECT)
			INVALID_PARAMETER("Invalid parameter: Subject");
		for (p = m->subject; *p; p++)
			if ((unsigned char) *p < 0x20 || *p == 0x7f)
				INVALID_PARAMETER("Invalid parameter: Subject");
	}
	size = VARSIZE_ANY_EXHDR(m->message) + pub_check_attributes(m->attrs, &m->nattrs);
	if (size > TOPIC_MAX_MESSAGE)
		INVALID_PARAMETER("Invalid parameter: Message too long");
	m->size = size;
	m->structure = NULL;
	if (structure != NULL)
	{
		char	   *msg = text_to_cstring(m->message);
		JsonbValue	k;
		JsonbValue *d;

		if (strcmp(structure, "json") != 0)
			INVALID_PARAMETER("Invalid parameter: MessageStructure");
		if (!is_json_object(msg))
			INVALID_PARAMETER("Invalid parameter: Message Structure - JSON message body failed to parse");
		m->structure = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(msg)));
		k.type = jbvString;
		k.val.string.val = "default";
		k.val.string.len = 7;
		d = findJsonbValueFromContainer(&m->structure->root, JB_FOBJECT, &k);
		if (d == NULL || d->type != jbvString)
			INVALID_PARAMETER("Invalid parameter: Message Structure - No default entry in JSON message body");
	}
	if (t->fifo)
	{
		if (m->group_id == NULL)
			INVALID_PARAMETER("Invalid parameter: The MessageGroupId parameter is required for FIFO topics");
		pub_check_id("MessageGroupId", m->group_id);
		if (m->dedup_id != NULL)
			pub_check_id("MessageDeduplicationId", m->dedup_id);
		else if (!t->content_dedup)
			INVALID_PARAMETER("Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly");
		else
			m->dedup_id = msgq_fifo_content_dedup_id(m->message);
	}
	else
	{
		if (m->dedup_id != NULL)
			INVALID_PARAMETER("Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type");
		if (m->group_id != NULL)
			pub_check_id("MessageGroupId", m->group_id);
	}
}

/* The text a protocol gets under MessageStructure json, else the message */
static text *
pub_text_for(PubMessage *m, const char *protocol)
{
	JsonbValue	k;
	JsonbValue *v;

	if (m->structure == NULL)
		return m->message;
	k.type = jbvString;
	k.val.string.val = (char *) protocol;
	k.val.string.len = strlen(protocol);
	v = findJsonbValueFromContainer(&m->structure->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
	{
		k.val.string.val = "default";
		k.val.string.len = 7;
		v = findJsonbValueFromContainer(&m->structure->root, JB_FOBJECT, &k);
	}
	return cstring_to_text_with_len(v->val.string.val, v->val.string.len);
}

static char *
iso_timestamp(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "timestamp out of range");
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (fsec / 1000));
}

/* The text the Signature signs: SNS's field order, msgq's own key */
static char *
notification_canonical(const char *message, const char *message_id, const char *subject,
					   const char *timestamp, const char *topic_arn_s)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfo(&b, "Message\n%s\nMessageId\n%s\n", message, message_id);
	if (subject != NULL)
		appendStringInfo(&b, "Subject\n%s\n", subject);
	appendStringInfo(&b, "Timestamp\n%s\nTopicArn\n%s\nType\nNotification\n", timestamp, topic_arn_s);
	return b.data;
}

static char *
notification_signature(const char *canonical)
{
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char	   *out = palloc(pg_b64_enc_len(sizeof(mac)) + 1);
	int			len;

	msgq_sign(TOPIC_SIGN_LABEL, canonical, strlen(canonical), mac);
	len = pg_b64_encode((const char *) mac, sizeof(mac), out, pg_b64_enc_len(sizeof(mac)));
	if (len < 0)
		elog(ERROR, "could not encode a signature");
	out[len] = '\0';
	return out;
}

static void
json_member(StringInfo b, const char *key, const char *value, bool first)
{
	if (!first)
		appendStringInfoChar(b, ',');
	escape_json(b, key);
	appendStringInfoChar(b, ':');
	escape_json(b, value);
}

/* The SNS notification document of one delivery (RawMessageDelivery off) */
static char *
pub_envelope(Topic *t, PubMessage *m, const char *protocol, const pg_uuid_t *sub_id)
{
	StringInfoData b;
	char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, m->message_id));
	char	   *ts = iso_timestamp(m->at);
	char	   *arn = topic_arn(t->name);
	char	   *message = text_to_cstring(pub_text_for(m, protocol));

	/* one signature per message, unless MessageStructure varies the text */
	if (m->signature == NULL || m->structure != NULL)
		m->signature = notification_signature(notification_canonical(message, id, m->subject,
																	 ts, arn));
	initStringInfo(&b);
	appendStringInfoChar(&b, '{');
	json_member(&b, "Type", "Notification", true);
	json_member(&b, "MessageId", id, false);
	if (t->fifo)
		json_member(&b, "SequenceNumber", psprintf("%020lld", (long long) m->seq), false);
	json_member(&b, "TopicArn", arn, false);
	if (m->subject != NULL)
		json_member(&b, "Subject", m->subject, false);
	json_member(&b, "Message", message, false);
	json_member(&b, "Timestamp", ts, false);
	json_member(&b, "SignatureVersion", t->signature_version, false);
	json_member(&b, "Signature", m->signature, false);
	json_member(&b, "SigningCertURL", "msgq:verify_notification", false);
	json_member(&b, "UnsubscribeURL",
				psprintf("msgq:unsubscribe?SubscriptionArn=%s",
						 sub_id ? sub_arn(t->name, sub_id) : m->outbox_token), false);
	if (m->attrs != NULL && m->nattrs > 0 && m->structure == NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&m->attrs->root);
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *name = NULL;
		bool		first = true;

		appendStringInfoString(&b, ",\"MessageAttributes\":{");
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *type;
			char	   *val;

			if (tok == WJB_KEY)
			{
				name = pnstrdup(v.val.string.val, v.val.string.len);
				continue;
			}
			if (tok != WJB_VALUE)
				continue;
			{
				Jsonb	   *av = JsonbValueToJsonb(&v);

				type = jsonb_string(av, "DataType");
				val = jsonb_string(av, strncmp(type, "Binary", 6) == 0 ?
								   "BinaryValue" : "StringValue");
			}
			if (!first)
				appendStringInfoChar(&b, ',');
			first = false;
			escape_json(&b, name);
			appendStringInfoString(&b, ":{");
			json_member(&b, "Type", type, true);
			json_member(&b, "Value", val ? val : "", false);
			appendStringInfoChar(&b, '}');
		}
		appendStringInfoChar(&b, '}');
	}
	appendStringInfoChar(&b, '}');
	return b.data;
}

/* Deliver to an SQS queue; false when it cannot be (counted as failed) */
static bool
deliver_sqs(Topic *t, PubMessage *m, const char *queue_name, Oid owner, bool raw,
			const pg_uuid_t *sub_id, Oid publisher)
{
	MsgqQueue	q;
	MsgqStoreMessage msg;
	text	   *body;
	int64		size;
	Jsonb	   *attrs = NULL;

	if (!msgq_queue_lookup(queue_name, &q) ||
		!msgq_queue_action_allowed(owner, q.owner, q.acl, MSGQ_ACT_SEND) ||
		q.fifo != t->fifo)
		return false;
	if (raw)
	{
		body = pub_text_for(m, "sqs");
		if (m->attrs != NULL && m->nattrs > 0 && m->structure == NULL)
		{
			if (m->nattrs > TOPIC_MAX_RAW_ATTRS)
				return false;
			if (!m->md5_done)
			{
				(void) msgq_check_message_attributes(m->attrs, &m->sqs_md5_attrs);
				m->md5_done = true;
			}
			attrs = m->attrs;
		}
		size = m->size;
	}
	else
	{
		body = cstring_to_text(pub_envelope(t, m, "sqs", sub_id));
		size = VARSIZE_ANY_EXHDR(body);
	}
	if (size > msgq_queue_size_limit(&q))
		return false;

	memset(&msg, 0, sizeof(msg));
	msg.message_id = msgq_new_uuid();
	msg.body = body;
	msg.attributes = attrs;
	msg.md5_body = msgq_md5_hex(VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
	msg.md5_attrs = attrs ? m->sqs_md5_attrs : NULL;
	msg.sender = GetUserNameFromId(publisher, false);
	msg.group_id = m->group_id;
	msg.dedup_id = t->fifo ? m->dedup_id : NULL;
	msg.sent_at = m->at;
	msg.visible_at = m->at + (TimestampTz) q.delay_seconds * USECS_PER_SEC;
	(void) msgq_queue_deliver(&q, &msg);
	return true;
}

/*
 * What a function subscription's function gets: the notification inside
 * the event document an SNS-triggered Lambda function receives.
 */
static char *
lambda_event(Topic *t, PubMessage *m, const pg_uuid_t *sub_id)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"Records\":[{");
	json_member(&b, "EventSource", "aws:sns", true);
	json_member(&b, "EventVersion", "1.0", false);
	json_member(&b, "EventSubscriptionArn",
				sub_id ? sub_arn(t->name, sub_id) : m->outbox_token, false);
	appendStringInfoString(&b, ",\"Sns\":");
	appendStringInfoString(&b, pub_envelope(t, m, "lambda", sub_id));
	appendStringInfoString(&b, "}]}");
	return b.data;
}

/*
 * The index of a function, http or https subscription's document in the
 * message's outbox row, made at its first use: subscriptions of one kind
 * share it, their ARN being the token the expansion replaces.
 */
static int
outbox_document(Topic *t, TopicSub *s, PubMessage *m)
{
	OutboxDoc	kind;
	const char *key = protocol_names[s->protocol];
	char	   *doc;

	if (s->protocol == PROTO_FUNCTION)
		kind = OUTBOX_LAMBDA;
	else if (s->raw)
		kind = s->protocol == PROTO_HTTP ? OUTBOX_RAW_HTTP : OUTBOX_RAW_HTTPS;
	else
		kind = s->protocol == PROTO_HTTP ? OUTBOX_ENVELOPE_HTTP : OUTBOX_ENVELOPE_HTTPS;
	if (m->outbox_docs[kind] != 0)
		return m->outbox_docs[kind];

	/* unpredictable, so that no message can contain it */
	if (m->outbox_token == NULL && (kind == OUTBOX_LAMBDA ||
									kind == OUTBOX_ENVELOPE_HTTP ||
									kind == OUTBOX_ENVELOPE_HTTPS))
		m->outbox_token = random_token(16);
	if (kind == OUTBOX_LAMBDA)
		doc = lambda_event(t, m, NULL);
	else if (s->raw)
		doc = text_to_cstring(pub_text_for(m, key));
	else
		doc = pub_envelope(t, m, key, NULL);
	m->outbox_docs[kind] = msgq_delivery_outbox_document(doc);
	return m->outbox_docs[kind];
}

/* The topic's ARN as it appears inside a JSON string, and the ':' after it */
static char *
outbox_arn_prefix(Topic *t)
{
	StringInfoData b;

	initStringInfo(&b);
	escape_json(&b, topic_arn(t->name));
	/* without escape_json's quotes */
	b.data[b.len - 1] = ':';
	return b.data + 1;
}

/* Deliver to one subscription; false when the message was given up */
static bool
deliver_one(Topic *t, TopicSub *s, PubMessage *m, Oid publisher)
{
	bool		ok = false;
	bool		dlq = false;

	switch (s->protocol)
	{
		case PROTO_FUNCTION:
		case PROTO_HTTP:
		case PROTO_HTTPS:
			msgq_delivery_outbox_add(&s->id, outbox_document(t, s, m));
			return true;
		case PROTO_SQS:
			ok = deliver_sqs(t, m, s->endpoint, s->owner, s->raw, &s->id, publisher);
			break;
		case PROTO_NOTIFY:
			{
				char	   *payload = s->raw ? text_to_cstring(pub_text_for(m, "notify")) :
				pub_envelope(t, m, "notify", &s->id);

				if (strlen(payload) < TOPIC_NOTIFY_MAX)
				{
					Async_Notify(s->endpoint, payload);
					ok = true;
				}
				break;
			}
		case PROTO_KINESIS:
			{
				text	   *data = s->raw ? pub_text_for(m, "kinesis") :
				cstring_to_text(pub_envelope(t, m, "kinesis", &s->id));
				char	   *pkey = NULL;
				bytea	   *b;

				if (s->pkey_attr != NULL && m->attrs != NULL)
				{
					JsonbValue	k;
					JsonbValue *a;

					k.type = jbvString;
					k.val.string.val = s->pkey_attr;
					k.val.string.len = strlen(s->pkey_attr);
					a = findJsonbValueFromContainer(&m->attrs->root, JB_FOBJECT, &k);
					if (a != NULL && a->type == jbvBinary)
						pkey = jsonb_string(JsonbValueToJsonb(a), "StringValue");
					if (pkey != NULL && (pkey[0] == '\0' || strlen(pkey) > 256))
						pkey = NULL;
				}
				if (pkey == NULL)
					pkey = DatumGetCString(DirectFunctionCall1(uuid_out, m->message_id));
				b = (bytea *) palloc(VARHDRSZ + VARSIZE_ANY_EXHDR(data));
				SET_VARSIZE(b, VARHDRSZ + VARSIZE_ANY_EXHDR(data));
				memcpy(VARDATA(b), VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data));
				ok = msgq_stream_deliver(s->endpoint, s->owner, pkey, b);
				break;
			}
	}
	/* an undeliverable message goes to the subscription's dead-letter queue */
	if (!ok && s->dlq != NULL)
		dlq = deliver_sqs(t, m, s->dlq, s->owner, false, &s->id, publisher);
	msgq_topic_count(&s->id, ok ? MSGQ_TOPIC_COUNT_DELIVERED :
					 dlq ? MSGQ_TOPIC_COUNT_DLQ : MSGQ_TOPIC_COUNT_FAILED);
	return ok;
}

static void
topic_lock_group(Topic *t, const char *group_id)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) t->topic_id,
						 (uint32) hash_bytes((const unsigned char *) group_id, strlen(group_id)),
						 TOPIC_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Publish one validated message: number it and check its deduplication id
 * (FIFO), then deliver it to every matching subscription.  Returns false
 * for a duplicate, whose first publish's id and number m then holds.
 */
static bool
pub_publish(Topic *t, PubMessage *m, Oid publisher)
{
	bool		isnull;
	MsgqFilterMessage *fm;
	bool	   *matched;
	int			nmatched;
	int			i;

	m->at = msgq_now();
	m->message_id = msgq_new_uuid();
	if (t->fifo)
	{
		Oid			argtypes[7] = {INT4OID, TEXTOID, TEXTOID, UUIDOID, INT8OID,
		TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		values[7];

		topic_lock_group(t, m->group_id);
		if (SPI_execute_plan(msgq_plan(&plan_seq, "SELECT pg_catalog.nextval('msgq.topic_message_seq')",
									   0, NULL), NULL, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not number a message");
		m->seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		values[0] = Int32GetDatum(t->topic_id);
		values[1] = CStringGetTextDatum(t->dedup_per_group ? m->group_id : "");
		values[2] = CStringGetTextDatum(m->dedup_id);
		values[3] = m->message_id;
		values[4] = Int64GetDatum(m->seq);
		values[5] = TimestampTzGetDatum(m->at);
		values[6] = TimestampTzGetDatum(m->at - TOPIC_DEDUP_WINDOW);
		if (SPI_execute_plan(msgq_plan(&plan_dedup,
									   "INSERT INTO msgq.topic_dedup AS d"
									   " (topic_id, scope, dedup_id, message_id, sequence_number, published_at)"
									   " VALUES ($1, $2, $3, $4, $5, $6)"
									   " ON CONFLICT (topic_id, scope, dedup_id) DO UPDATE"
									   "   SET message_id = EXCLUDED.message_id,"
									   "       sequence_number = EXCLUDED.sequence_number,"
									   "       published_at = EXCLUDED.published_at"
									   "   WHERE d.published_at OPERATOR(pg_catalog.<=) $7",
									   7, argtypes),
							 values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record a deduplication id");
		if (SPI_processed == 0)
		{
			if (SPI_execute_plan(msgq_plan(&plan_dedup_get,
										   "SELECT message_id, sequence_number FROM msgq.topic_dedup"
										   " WHERE topic_id OPERATOR(pg_catalog.=) $1"
										   "   AND scope OPERATOR(pg_catalog.=) $2"
										   "   AND dedup_id OPERATOR(pg_catalog.=) $3",
										   3, argtypes),
								 values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "could not read a deduplication id");
			m->message_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			m->message_id = UUIDPGetDatum(DatumGetUUIDP(datumCopy(m->message_id, false, UUID_LEN)));
			m->seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
			return false;
		}
	}

	topic_load_subs(t);
	if (t->nsubs == 0)
	{
		msgq_topic_count_published(t->topic_id, 0, 0);
		return true;
	}
	fm = msgq_filter_message(m->attrs, VARDATA_ANY(m->message), VARSIZE_ANY_EXHDR(m->message));
	matched = palloc0(sizeof(bool) * t->nsubs);
	nmatched = msgq_filter_set_match(t->set, fm, matched);
	msgq_topic_count_published(t->topic_id, t->nsubs, nmatched);
	msgq_delivery_outbox_begin();
	memset(m->outbox_docs, 0, sizeof(m->outbox_docs));
	m->outbox_token = NULL;
	for (i = 0; i < t->nsubs; i++)
		if (matched[i])
		{
			msgq_topic_count(&t->subs[i].id, MSGQ_TOPIC_COUNT_MATCHED);
			(void) deliver_one(t, &t->subs[i], m, publisher);
		}
	/* one outbox row for the subscriptions delivered after commit */
	msgq_delivery_outbox_flush(m->message_id, m->at, m->outbox_token,
							   m->outbox_token ? outbox_arn_prefix(t) : NULL);
	return true;
}

static Datum
seq_text(Topic *t, PubMessage *m, bool *isnull)
{
	*isnull = !t->fifo;
	return t->fifo ? CStringGetTextDatum(psprintf("%020lld", (long long) m->seq)) : (Datum) 0;
}

/*
 * msgq.publish(topic_name, message, subject, message_attributes,
 *		message_group_id, message_deduplication_id, message_structure)
 *		returns table (message_id uuid, sequence_number text)
 */
Datum
msgq_publish(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *ref = msgq_text_arg(fcinfo, 0);
	char	   *structure = msgq_text_arg(fcinfo, 6);
	MsgqCall	call;
	Topic	   *t;
	PubMessage	m;
	Datum		out[2];
	bool		outnull[2] = {false, false};

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	memset(&m, 0, sizeof(m));
	m.message = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	m.subject = msgq_text_arg(fcinfo, 2);
	m.attrs = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	m.group_id = msgq_text_arg(fcinfo, 4);
	m.dedup_id = msgq_text_arg(fcinfo, 5);

	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_action(t, call.caller, MSGQ_TOPIC_PUBLISH, "Publish");
	pub_validate(t, &m, structure);
	(void) pub_publish(t, &m, call.caller);

	MemoryContextSwitchTo(call.cxt);
	out[0] = UUIDPGetDatum(DatumGetUUIDP(datumCopy(m.message_id, false, UUID_LEN)));
	out[1] = seq_text(t, &m, &outnull[1]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
	msgq_call_leave(&call);
	return (Datum) 0;
}

static char *
entry_string(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		INVALID_PARAMETER("Invalid parameter: %s", key);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static int
group_cmp(const void *a, const void *b)
{
	const PubMessage *const *x = a;
	const PubMessage *const *y = b;

	return strcmp((*x)->group_id, (*y)->group_id);
}

/* msgq.publish_batch(topic_name text, entries jsonb) */
Datum
msgq_publish_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *ref = msgq_text_arg(fcinfo, 0);
	Jsonb	   *entries = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MsgqCall	call;
	Topic	   *t;
	char	  **ids;
	JsonbContainer **objs;
	int			n;
	int			i;
	PubMessage *msgs;
	char	  **codes;
	char	  **errors;
	int64		total = 0;
	PubMessage **sorted;
	int			nsorted = 0;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_action(t, call.caller, MSGQ_TOPIC_PUBLISH, "Publish");
	n = msgq_batch_entries(entries, &ids, &objs);
	msgs = palloc0(sizeof(PubMessage) * n);
	codes = palloc0(sizeof(char *) * n);
	errors = palloc0(sizeof(char *) * n);
	sorted = palloc(sizeof(PubMessage *) * n);

	for (i = 0; i < n; i++)
	{
		MemoryContext cxt = CurrentMemoryContext;
		PubMessage *m = &msgs[i];

		PG_TRY();
		{
			char	   *message = entry_string(objs[i], "Message");
			JsonbValue	k;
			JsonbValue *a;

			m->message = message ? cstring_to_text(message) : NULL;
			m->subject = entry_string(objs[i], "Subject");
			m->group_id = entry_string(objs[i], "MessageGroupId");
			m->dedup_id = entry_string(objs[i], "MessageDeduplicationId");
			k.type = jbvString;
			k.val.string.val = "MessageAttributes";
			k.val.string.len = strlen(k.val.string.val);
			a = findJsonbValueFromContainer(objs[i], JB_FOBJECT, &k);
			m->attrs = (a != NULL && a->type != jbvNull) ? JsonbValueToJsonb(a) : NULL;
			pub_validate(t, m, entry_string(objs[i], "MessageStructure"));
			total += m->size;
		}
		PG_CATCH();
		{
			msgq_batch_error(cxt, &codes[i], &errors[i]);
		}
		PG_END_TRY();
	}
	if (total > TOPIC_MAX_MESSAGE)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_BATCH_REQUEST_TOO_LONG),
				 errmsg("the length of all the messages put together is more than the limit"),
				 errdetail_internal("AWS error code: BatchRequestTooLong")));

	/* FIFO: lock the entries' groups in name order, then publish in entry order */
	if (t->fifo)
	{
		for (i = 0; i < n; i++)
			if (codes[i] == NULL)
				sorted[nsorted++] = &msgs[i];
		qsort(sorted, nsorted, sizeof(PubMessage *), group_cmp);
		for (i = 0; i < nsorted; i++)
			topic_lock_group(t, sorted[i]->group_id);
	}
	for (i = 0; i < n; i++)
		if (codes[i] == NULL)
			(void) pub_publish(t, &msgs[i], call.caller);

	MemoryContextSwitchTo(call.cxt);
	for (i = 0; i < n; i++)
	{
		Datum		v[6];
		bool		nl[6] = {false, true, true, true, true, true};

		v[0] = CStringGetTextDatum(ids[i]);
		if (codes[i] == NULL)
		{
			v[1] = UUIDPGetDatum(DatumGetUUIDP(datumCopy(msgs[i].message_id, false, UUID_LEN)));
			nl[1] = false;
			v[2] = seq_text(t, &msgs[i], &nl[2]);
		}
		else
		{
			v[3] = CStringGetTextDatum(codes[i]);
			v[4] = CStringGetTextDatum(errors[i]);
			v[5] = BoolGetDatum(true);
			nl[3] = nl[4] = nl[5] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
	msgq_call_leave(&call);
	return (Datum) 0;
}

/*
 * msgq.verify_notification(notification jsonb) returns boolean
 *
 * Recompute a notification's Signature with this database's key.
 */
Datum
msgq_verify_notification(PG_FUNCTION_ARGS)
{
	Jsonb	   *n = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	MsgqCall	call;
	char	   *type;
	char	   *message;
	char	   *id;
	char	   *ts;
	char	   *arn;
	char	   *sig;
	char	   *expected;
	bool		ok;
	size_t		i;
	int			diff = 0;

	if (n == NULL || !JB_ROOT_IS_OBJECT(n) || JB_ROOT_IS_SCALAR(n))
		PG_RETURN_BOOL(false);
	type = jsonb_string(n, "Type");
	message = jsonb_string(n, "Message");
	id = jsonb_string(n, "MessageId");
	ts = jsonb_string(n, "Timestamp");
	arn = jsonb_string(n, "TopicArn");
	sig = jsonb_string(n, "Signature");
	if (type == NULL || message == NULL || id == NULL ||
		ts == NULL || arn == NULL || sig == NULL)
		PG_RETURN_BOOL(false);
	if (strcmp(type, "Notification") == 0)
	{
		msgq_call_enter(&call);
		expected = notification_signature(notification_canonical(message, id,
																 jsonb_string(n, "Subject"),
																 ts, arn));
	}
	else if (strcmp(type, "SubscriptionConfirmation") == 0 ||
			 strcmp(type, "UnsubscribeConfirmation") == 0)
	{
		char	   *url = jsonb_string(n, "SubscribeURL");
		char	   *token = jsonb_string(n, "Token");

		if (url == NULL || token == NULL)
			PG_RETURN_BOOL(false);
		msgq_call_enter(&call);
		expected = notification_signature(confirmation_canonical(message, id, url, ts,
																 token, arn, type));
	}
	else
		PG_RETURN_BOOL(false);
	ok = strlen(expected) == strlen(sig);
	for (i = 0; ok && i < strlen(sig); i++)
		diff |= expected[i] ^ sig[i];
	msgq_call_leave(&call);
	PG_RETURN_BOOL(ok && diff == 0);
}

/* topic.acl = the concatenation of the topic's labels' grants */
static void
topic_recompute_acl(int32 topic_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(topic_id)};

	if (SPI_execute_with_args("UPDATE msgq.topic SET acl ="
							  " (SELECT pg_catalog.array_agg(a ORDER BY p.label, a.ord)"
							  "    FROM msgq.topic_permission p,"
							  "         pg_catalog.unnest(p.acl) WITH ORDINALITY a(a, ord)"
							  "   WHERE p.topic_id OPERATOR(pg_catalog.=) $1)"
							  " WHERE topic_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update topic privileges");
	topic_invalidate();
}

/*
 * msgq.add_permission(topic ARN, label, roles, actions): SNS's
 * AddPermission, reached through the queue function when its first
 * argument is a topic ARN.  Only the topic's owner (or a superuser) may.
 */
Datum
msgq_topic_add_permission(FunctionCallInfo fcinfo)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	char	   *label = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	Topic	   *t;
	AclMode		mode;
	Acl		   *acl;
	Oid			argtypes[3] = {INT4OID, TEXTOID, ACLITEMARRAYOID};
	Datum		values[3];

	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_owner(t, call.caller);
	msgq_check_label(label);
	if (PG_ARGISNULL(2))
		INVALID_PARAMETER("Invalid parameter: AWSAccountId");
	if (PG_ARGISNULL(3))
		INVALID_PARAMETER("Invalid parameter: ActionName");
	mode = msgq_parse_topic_actions(PG_GETARG_ARRAYTYPE_P(3));
	acl = msgq_build_acl(PG_GETARG_ARRAYTYPE_P(2), mode, t->owner);
	values[0] = Int32GetDatum(t->topic_id);
	values[1] = CStringGetTextDatum(label);
	values[2] = PointerGetDatum(acl);
	if (SPI_execute_with_args("INSERT INTO msgq.topic_permission (topic_id, label, acl)"
							  " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
							  3, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not add permission");
	if (SPI_processed == 0)
		INVALID_PARAMETER("Invalid parameter: Label Reason: Already exists");
	topic_recompute_acl(t->topic_id);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* msgq.remove_permission(topic ARN, label) */
Datum
msgq_topic_remove_permission(FunctionCallInfo fcinfo)
{
	char	   *ref = msgq_text_arg(fcinfo, 0);
	char	   *label = msgq_text_arg(fcinfo, 1);
	MsgqCall	call;
	Topic	   *t;
	Oid			argtypes[2] = {INT4OID, TEXTOID};
	Datum		values[2];

	msgq_call_enter(&call);
	t = topic_get(ref);
	topic_check_owner(t, call.caller);
	msgq_check_label(label);
	values[0] = Int32GetDatum(t->topic_id);
	values[1] = CStringGetTextDatum(label);
	if (SPI_execute_with_args("DELETE FROM msgq.topic_permission"
							  " WHERE topic_id OPERATOR(pg_catalog.=) $1 AND label OPERATOR(pg_catalog.=) $2",
							  2, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not remove permission");
	if (SPI_processed == 0)
		INVALID_PARAMETER("Invalid parameter: Label Reason: does not exist");
	topic_recompute_acl(t->topic_id);
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* The maintenance cycle: forget deduplication ids older than five minutes */
void
msgq_topic_dedup_expire(void)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	values[0] = TimestampTzGetDatum(msgq_now() - TOPIC_DEDUP_WINDOW);
	if (SPI_execute_with_args("DELETE FROM msgq.topic_dedup WHERE published_at OPERATOR(pg_catalog.<) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not expire topic deduplication ids");

	/* HTTP subscriptions never confirmed go after three days, as in SNS */
	values[0] = TimestampTzGetDatum(msgq_now() - TOPIC_PENDING_LIFETIME);
	if (SPI_execute_with_args("DELETE FROM msgq.subscription"
							  " WHERE pending AND created_at OPERATOR(pg_catalog.<) $1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not expire pending subscriptions");
	if (SPI_processed > 0)
		topic_invalidate();
}
