/*-------------------------------------------------------------------------
 *
 * delivery.c
 *	  Deliveries made after commit: topic subscriptions of the function,
 *	  http and https protocols.
 *
 * A publish does not call a function or a URL itself.  For each matching
 * subscription of these protocols it writes one row of msgq.topic_delivery
 * (the exact text to deliver, already built by topic.c: the SNS envelope,
 * the Lambda-style event or the raw message) in the publisher's
 * transaction, and wakes the database's maintenance worker when that
 * transaction commits.  A rollback leaves nothing to deliver.  The rows are
 * logged like every msgq table, so a crash loses no pending delivery.
 *
 * The worker (worker.c calls msgq_delivery_worker_pass between waits):
 *
 *	- collects the HTTP transfers that finished (src/http.c, libcurl's
 *	  multi interface, driven from the worker's wait set: nothing here
 *	  blocks on the network), and records their outcome in one short
 *	  transaction: a 2xx or 3xx answer deletes the row; a 4xx is a client
 *	  error, not retried (dead-letter queue); a 5xx, a timeout or a
 *	  connection failure is retried after the delay of the subscription's
 *	  retry policy (the row's attempts and next_attempt_at are
 *	  updated);
 *	- runs the function deliveries that are due, each in a subtransaction,
 *	  as the subscription's owner; success deletes the row in the same
 *	  transaction as the function's own writes, so a function's effects
 *	  and the end of its delivery commit together;
 *	- starts the HTTP transfers that are due, at most msgq.http_max_inflight
 *	  at once, honouring each subscription's throttle policy;
 *	- says when the next row falls due, and sleeps until then, a transfer
 *	  finishes, or a publisher's commit sets its latch.
 *
 * When a delivery's retries are exhausted, or at once on a client error,
 * the delivered text goes to the subscription's RedrivePolicy queue if it
 * has one and is dropped otherwise (with a LOG line), and the row is
 * deleted.  Transfers in flight are only in the worker's memory: a worker
 * that restarts sends them again (at-least-once, as SNS).  The retry state
 * (attempts, next_attempt_at) is in the row, so a restart neither resets
 * nor skips a retry schedule.
 *
 * Retry policies follow SNS (SPEC-aws.md 2.4): an immediate phase, a
 * pre-backoff phase at minDelayTarget, a backoff phase rising from
 * minDelayTarget to maxDelayTarget, a post-backoff phase at maxDelayTarget.
 * With i the retry's rank in the backoff phase (1..n) and x = i / n, the
 * delay is min + (max - min) * x for linear, min + (max - min) * i(i+1) /
 * n(n+1) for arithmetic, min * (max / min)^x for geometric and min + (max
 * - min) * (2^i - 1) / (2^n - 1) for exponential; jitter takes up to 10%
 * off each non-zero delay; no delay exceeds 3600 s.  HTTP subscriptions
 * default to SNS's 3 retries 20 s apart; function subscriptions to the
 * schedule of AWS-managed endpoints (3 immediate, 2 at 1 s, 10 backing off
 * from 1 to 20 s, 100,000 at 20 s: 100,015 attempts over 23 days).  Either
 * may set its own DeliveryPolicy; the topic's "http" DeliveryPolicy gives
 * the defaults of its HTTP subscriptions and may forbid overrides.
 *
 * IDENTIFICATION
 *	  src/delivery.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "common/pg_prng.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "msgq.h"
#include "delivery.h"
#include "http.h"

#define INVALID_PARAMETER(...) \
	msgq_aws_error("InvalidParameter", ERRCODE_MSGQ_INVALID_PARAMETER, __VA_ARGS__)

#define DELIVERY_MAX_DELAY		3600
#define DELIVERY_FUNCTION_BATCH 100

/* Settings */
int			msgq_http_timeout_ms = 15000;
int			msgq_http_max_inflight = 32;
int			msgq_function_timeout_ms = 60000;

/* the worker's state */
typedef struct InflightEntry
{
	int64		delivery_id;	/* key */
	pg_uuid_t	sub_id;
	int			attempts;		/* before this one */
	bool		confirmation;	/* not a Notification: never dead-lettered */
	bool		unsubscribe;	/* an UnsubscribeConfirmation: no subscription */
	MsgqRetryPolicy retry;
} InflightEntry;

typedef struct ThrottleEntry
{
	pg_uuid_t	sub_id;			/* key */
	TimestampTz next_allowed;
} ThrottleEntry;

static MemoryContext delivery_cxt = NULL;
static MsgqHttp *delivery_http = NULL;
static HTAB *delivery_inflight = NULL;
static HTAB *delivery_throttle = NULL;

/* publisher side */
static bool delivery_wake_at_commit = false;
static bool delivery_callback_registered = false;

static SPIPlanPtr plan_enqueue = NULL;
static SPIPlanPtr plan_outbox = NULL;
static SPIPlanPtr plan_expand = NULL;
static SPIPlanPtr plan_due_functions = NULL;
static SPIPlanPtr plan_due_http = NULL;
static SPIPlanPtr plan_delete = NULL;
static SPIPlanPtr plan_retry = NULL;
static SPIPlanPtr plan_next_due = NULL;
static SPIPlanPtr plan_payload = NULL;

void		msgq_delivery_define_gucs(void);

/*
 * Settings, from _PG_init.
 */
void
msgq_delivery_define_gucs(void)
{
	DefineCustomIntVariable("msgq.http_timeout",
							"Time limit of one HTTP delivery, connecting included.",
							"A delivery that takes longer counts as failed and is retried.",
							&msgq_http_timeout_ms,
							15000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("msgq.http_max_inflight",
							"Most HTTP deliveries in flight at once per database.",
							NULL,
							&msgq_http_max_inflight,
							32, 1, 1024,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("msgq.function_timeout",
							"Time limit of one call of a function subscription.",
							"A call that takes longer is cancelled and counts as failed.",
							&msgq_function_timeout_ms,
							60000, 100, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("msgq.esm_max_concurrency",
							"Most event source mapping batches running at once per database.",
							"At 1 the database's msgq worker runs them one after another; above 1 "
							"it starts this many runner processes (background workers).",
							&msgq_esm_max_concurrency,
							1, 1, MSGQ_MAX_ESM_RUNNERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * Retry policies
 * ------------------------------------------------------------------------
 */

static const MsgqRetryPolicy http_default = {3, 0, 0, 0, 20, 20, MSGQ_BACKOFF_LINEAR};
static const MsgqRetryPolicy managed_default = {100014, 3, 2, 100000, 1, 20,
MSGQ_BACKOFF_EXPONENTIAL};

/* The object under key, or NULL; raises for a key that is not an object */
static JsonbContainer *
policy_object(JsonbContainer *obj, const char *key, const char *prefix)
{
	JsonbValue *v = obj ? msgq_jsonb_member(obj, key) : NULL;

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		INVALID_PARAMETER("%sDeliveryPolicy: %s must be an object", prefix, key);
	return v->val.binary.data;
}

static bool
policy_int(JsonbContainer *obj, const char *key, int lo, int hi, int *out,
		 const char *prefix, const char *where)
{
	JsonbValue *v = obj ? msgq_jsonb_member(obj, key) : NULL;
	double		d;

	if (v == NULL)
		return false;
	if (v->type != jbvNumeric)
		INVALID_PARAMETER("%sDeliveryPolicy: %s%s must be a number", prefix, where, key);
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (d != floor(d) || d < lo || d > hi)
		INVALID_PARAMETER("%sDeliveryPolicy: %s%s must be an integer between %d and %d",
						  prefix, where, key, lo, hi);
	*out = (int) d;
	return true;
}

/* Read a healthyRetryPolicy object over the defaults in p; raises */
static void
retry_policy_parse(JsonbContainer *obj, MsgqRetryPolicy *p, const char *prefix,
				   const char *where)
{
	JsonbValue *v;
	int			backoff_count;

	if (obj == NULL)
		return;
	/* a policy that is given replaces the whole default schedule */
	*p = http_default;
	(void) policy_int(obj, "numRetries", 0, 100, &p->num_retries, prefix, where);
	(void) policy_int(obj, "numNoDelayRetries", 0, 100, &p->num_no_delay, prefix, where);
	(void) policy_int(obj, "numMinDelayRetries", 0, 100, &p->num_min_delay, prefix, where);
	(void) policy_int(obj, "numMaxDelayRetries", 0, 100, &p->num_max_delay, prefix, where);
	(void) policy_int(obj, "minDelayTarget", 1, DELIVERY_MAX_DELAY, &p->min_delay, prefix, where);
	(void) policy_int(obj, "maxDelayTarget", 1, DELIVERY_MAX_DELAY, &p->max_delay, prefix, where);
	if (p->min_delay > p->max_delay)
		INVALID_PARAMETER("%sDeliveryPolicy: %sminDelayTarget must be less than or equal to maxDelayTarget",
						  prefix, where);
	v = msgq_jsonb_member(obj, "backoffFunction");
	if (v != NULL)
	{
		char	   *f;

		if (v->type != jbvString)
			INVALID_PARAMETER("%sDeliveryPolicy: %sbackoffFunction must be a string", prefix, where);
		f = pnstrdup(v->val.string.val, v->val.string.len);
		if (strcmp(f, "linear") == 0)
			p->backoff = MSGQ_BACKOFF_LINEAR;
		else if (strcmp(f, "arithmetic") == 0)
			p->backoff = MSGQ_BACKOFF_ARITHMETIC;
		else if (strcmp(f, "geometric") == 0)
			p->backoff = MSGQ_BACKOFF_GEOMETRIC;
		else if (strcmp(f, "exponential") == 0)
			p->backoff = MSGQ_BACKOFF_EXPONENTIAL;
		else
			INVALID_PARAMETER("%sDeliveryPolicy: %sbackoffFunction must be one of linear, arithmetic, geometric, exponential",
							  prefix, where);
	}
	backoff_count = p->num_retries - p->num_no_delay - p->num_min_delay - p->num_max_delay;
	if (backoff_count < 0)
		INVALID_PARAMETER("%sDeliveryPolicy: %snumRetries must be at least numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries",
						  prefix, where);
	{
		double		total = 0;
		int			i;

		for (i = 1; i <= p->num_retries; i++)
			total += msgq_retry_delay(p, i, false);
		if (total > DELIVERY_MAX_DELAY)
			INVALID_PARAMETER("%sDeliveryPolicy: the total retry time of %.*s must be at most %d seconds, this policy takes %.0f",
							  prefix, (int) strlen(where) - 1, where, DELIVERY_MAX_DELAY, total);
	}
}

static void
throttle_parse(JsonbContainer *obj, int *per_second, const char *prefix, const char *where)
{
	if (obj != NULL)
		(void) policy_int(obj, "maxReceivesPerSecond", 1, INT_MAX, per_second, prefix, where);
}

static void
request_parse(JsonbContainer *obj, char *content_type, const char *prefix, const char *where)
{
	JsonbValue *v = obj ? msgq_jsonb_member(obj, "headerContentType") : NULL;
	int			i;

	if (v == NULL)
		return;
	if (v->type != jbvString || v->val.string.len == 0 || v->val.string.len > 256)
		INVALID_PARAMETER("%sDeliveryPolicy: %sheaderContentType must be a string of 1 to 256 characters",
						  prefix, where);
	for (i = 0; i < v->val.string.len; i++)
		if ((unsigned char) v->val.string.val[i] < 0x20 || v->val.string.val[i] == 0x7f)
			INVALID_PARAMETER("%sDeliveryPolicy: %sheaderContentType must not contain control characters",
							  prefix, where);
	memcpy(content_type, v->val.string.val, v->val.string.len);
	content_type[v->val.string.len] = '\0';
}

static Jsonb *
policy_json(const char *json, const char *prefix)
{
	Jsonb	   *volatile j = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	if (json == NULL || json[0] == '\0')
		return NULL;
	PG_TRY();
	{
		j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		j = NULL;
	}
	PG_END_TRY();
	if (j == NULL || !JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
		INVALID_PARAMETER("%sDeliveryPolicy: failed to parse JSON", prefix);
	return j;
}

/* Parse both levels into p; raises on a bad policy */
static void
policy_read(MsgqDeliveryPolicy *p, bool http, const char *sub_policy,
			const char *topic_policy, const char *prefix)
{
	Jsonb	   *tj = policy_json(topic_policy, prefix);
	Jsonb	   *sj = policy_json(sub_policy, prefix);
	bool		overrides = true;

	memset(p, 0, sizeof(*p));
	p->retry = http ? http_default : managed_default;
	strcpy(p->content_type, "text/plain; charset=UTF-8");
	if (http && tj != NULL)
	{
		JsonbContainer *h = policy_object(&tj->root, "http", prefix);
		JsonbValue *v;

		if (h != NULL)
		{
			retry_policy_parse(policy_object(h, "defaultHealthyRetryPolicy", prefix), &p->retry,
							   prefix, "defaultHealthyRetryPolicy.");
			throttle_parse(policy_object(h, "defaultThrottlePolicy", prefix), &p->max_per_second,
						   prefix, "defaultThrottlePolicy.");
			request_parse(policy_object(h, "defaultRequestPolicy", prefix), p->content_type,
						  prefix, "defaultRequestPolicy.");
			v = msgq_jsonb_member(h, "disableSubscriptionOverrides");
			if (v != NULL)
			{
				if (v->type != jbvBool)
					INVALID_PARAMETER("%sDeliveryPolicy: disableSubscriptionOverrides must be true or false", prefix);
				overrides = !v->val.boolean;
			}
		}
	}
	if (sj != NULL && overrides)
	{
		retry_policy_parse(policy_object(&sj->root, "healthyRetryPolicy", prefix), &p->retry,
						   prefix, "healthyRetryPolicy.");
		throttle_parse(policy_object(&sj->root, "throttlePolicy", prefix), &p->max_per_second,
					   prefix, "throttlePolicy.");
		request_parse(policy_object(&sj->root, "requestPolicy", prefix), p->content_type,
					  prefix, "requestPolicy.");
	}
}

void
msgq_delivery_policy_check(const char *json, bool topic_level, const char *prefix)
{
	MsgqDeliveryPolicy p;

	if (json == NULL || json[0] == '\0')
		return;
	if (topic_level)
		policy_read(&p, true, NULL, json, prefix);
	else
		policy_read(&p, true, json, NULL, prefix);
}

void
msgq_delivery_policy_effective(MsgqDeliveryPolicy *p, bool http,
							   const char *sub_policy, const char *topic_policy)
{
	policy_read(p, http, sub_policy, topic_policy, "Invalid parameter: ");
}

double
msgq_retry_delay(const MsgqRetryPolicy *p, int failures, bool jitter)
{
	int			r = failures;
	int			n_backoff = p->num_retries - p->num_no_delay - p->num_min_delay -
		p->num_max_delay;
	double		d;

	if (r < 1)
		return 0;
	if (r > p->num_retries)
		return -1;
	if (r <= p->num_no_delay)
		return 0;
	r -= p->num_no_delay;
	if (r <= p->num_min_delay)
		d = p->min_delay;
	else if ((r -= p->num_min_delay) <= n_backoff)
	{
		double		lo = p->min_delay;
		double		hi = p->max_delay;
		double		x = (double) r / n_backoff;

		switch (p->backoff)
		{
			case MSGQ_BACKOFF_ARITHMETIC:
				d = lo + (hi - lo) * ((double) r * (r + 1)) / ((double) n_backoff * (n_backoff + 1));
				break;
			case MSGQ_BACKOFF_GEOMETRIC:
				d = lo * pow(hi / lo, x);
				break;
			case MSGQ_BACKOFF_EXPONENTIAL:
				d = lo + (hi - lo) * (pow(2.0, r) - 1) / (pow(2.0, n_backoff) - 1);
				break;
			default:
				d = lo + (hi - lo) * x;
				break;
		}
	}
	else
		d = p->max_delay;
	if (jitter && d > 0)
		d *= 1.0 - 0.1 * pg_prng_double(&pg_global_prng_state);
	return Min(d, DELIVERY_MAX_DELAY);
}

/* ------------------------------------------------------------------------
 * The publisher's side
 * ------------------------------------------------------------------------
 */

static void
delivery_xact_callback(XactEvent event, void *arg)
{
	if (!delivery_wake_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		delivery_wake_at_commit = false;
		msgq_bgw_wake_worker(MyDatabaseId);
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
		delivery_wake_at_commit = false;
}

/* Wake the worker when this transaction commits (delivery_xact_callback) */
void
msgq_delivery_wake_worker_at_commit(void)
{
	if (!delivery_callback_registered)
	{
		RegisterXactCallback(delivery_xact_callback, NULL);
		delivery_callback_registered = true;
	}
	delivery_wake_at_commit = true;
}

/*
 * The publisher's outbox row: one per published message, whatever the
 * number of its subscriptions delivered after commit, and with each
 * distinct document once.  A publish calls msgq_delivery_outbox_begin,
 * then msgq_delivery_outbox_add for each such subscription the message
 * matched, with the index of its document (msgq_delivery_outbox_document
 * stores a document and returns its index), then msgq_delivery_outbox_flush,
 * which writes the row (if any subscription was added) and wakes the worker
 * at commit.  A document that names its subscription carries the row's
 * token instead (the subscription ARN differs for each and is the only
 * difference): the expansion replaces the token by arn_prefix and the
 * subscription id.  The worker (or msgq.run_maintenance) expands the row
 * into one msgq.topic_delivery row per subscription, in its own
 * transaction: the per-subscription state (attempts, schedule) is never the
 * publisher's write.
 */
static Datum *outbox_subs = NULL;
static Datum *outbox_docidx = NULL;
static int	outbox_n = 0;
static int	outbox_max = 0;
static Datum *outbox_docs = NULL;
static int	outbox_ndocs = 0;
static int	outbox_maxdocs = 0;

void
msgq_delivery_outbox_begin(void)
{
	outbox_subs = outbox_docidx = outbox_docs = NULL;
	outbox_n = outbox_max = outbox_ndocs = outbox_maxdocs = 0;
}

/* Store one document of the message being published; returns its index */
int
msgq_delivery_outbox_document(const char *payload)
{
	if (outbox_ndocs == outbox_maxdocs)
	{
		outbox_maxdocs = outbox_maxdocs == 0 ? 4 : outbox_maxdocs * 2;
		outbox_docs = outbox_docs == NULL ?
			palloc(sizeof(Datum) * outbox_maxdocs) :
			repalloc(outbox_docs, sizeof(Datum) * outbox_maxdocs);
	}
	outbox_docs[outbox_ndocs] = CStringGetTextDatum(payload);
	return ++outbox_ndocs;		/* SQL arrays count from 1 */
}

void
msgq_delivery_outbox_add(const pg_uuid_t *sub_id, int document)
{
	if (outbox_n == outbox_max)
	{
		outbox_max = outbox_max == 0 ? 8 : outbox_max * 2;
		if (outbox_subs == NULL)
		{
			outbox_subs = palloc(sizeof(Datum) * outbox_max);
			outbox_docidx = palloc(sizeof(Datum) * outbox_max);
		}
		else
		{
			outbox_subs = repalloc(outbox_subs, sizeof(Datum) * outbox_max);
			outbox_docidx = repalloc(outbox_docidx, sizeof(Datum) * outbox_max);
		}
	}
	outbox_subs[outbox_n] = UUIDPGetDatum(sub_id);
	outbox_docidx[outbox_n] = Int32GetDatum(document);
	outbox_n++;
}

void
msgq_delivery_outbox_flush(Datum message_id, TimestampTz at, const char *token,
						   const char *arn_prefix)
{
	Oid			argtypes[7] = {UUIDOID, TIMESTAMPTZOID, UUIDARRAYOID, INT4ARRAYOID,
	TEXTARRAYOID, TEXTOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	if (outbox_n == 0)
	{
		msgq_delivery_outbox_begin();
		return;
	}
	values[0] = message_id;
	values[1] = TimestampTzGetDatum(at);
	values[2] = PointerGetDatum(construct_array(outbox_subs, outbox_n, UUIDOID,
												UUID_LEN, false, TYPALIGN_CHAR));
	values[3] = PointerGetDatum(construct_array(outbox_docidx, outbox_n, INT4OID,
												4, true, TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_array(outbox_docs, outbox_ndocs, TEXTOID,
												-1, false, TYPALIGN_INT));
	values[5] = token ? CStringGetTextDatum(token) : (Datum) 0;
	nulls[5] = token ? ' ' : 'n';
	values[6] = arn_prefix ? CStringGetTextDatum(arn_prefix) : (Datum) 0;
	nulls[6] = arn_prefix ? ' ' : 'n';
	if (SPI_execute_plan(msgq_plan(&plan_outbox,
								   "INSERT INTO msgq.topic_outbox (message_id, published_at,"
								   "  subscription_ids, document_index, documents, token, arn_prefix)"
								   " VALUES ($1, $2, $3, $4, $5, $6, $7)",
								   7, argtypes),
						 values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not queue a delivery");
	msgq_delivery_outbox_begin();
	msgq_delivery_wake_worker_at_commit();
}

/*
 * Expand committed outbox rows into delivery rows, at most max outbox rows;
 * returns how many were expanded.  Concurrent expanders skip each other's
 * rows.
 */
static int
delivery_expand(int max)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(max);
	if (SPI_execute_plan(msgq_plan(&plan_expand,
								   "WITH o AS ("
								   "  DELETE FROM msgq.topic_outbox"
								   "   WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
								   "     SELECT ctid FROM msgq.topic_outbox LIMIT $1"
								   "        FOR UPDATE SKIP LOCKED))"
								   "  RETURNING message_id, published_at, subscription_ids, document_index,"
								   "            documents, token, arn_prefix),"
								   " i AS ("
								   "  INSERT INTO msgq.topic_delivery (delivery_id, subscription_id,"
								   "    message_id, kind, payload, attempts, next_attempt_at, created_at)"
								   "  SELECT pg_catalog.nextval('msgq.topic_delivery_seq'), u.s, o.message_id,"
								   "         'Notification',"
								   "         CASE WHEN o.token IS NULL THEN o.documents[u.i]"
								   "              ELSE pg_catalog.replace(o.documents[u.i], o.token,"
								   "                                      o.arn_prefix OPERATOR(pg_catalog.||) u.s::pg_catalog.text) END,"
								   "         0, o.published_at, o.published_at"
								   "    FROM o, ROWS FROM (pg_catalog.unnest(o.subscription_ids),"
								   "                       pg_catalog.unnest(o.document_index)) AS u(s, i))"
								   " SELECT pg_catalog.count(*)::pg_catalog.int4 FROM o",
								   1, argtypes),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not expand the topic outbox");
	{
		bool		isnull;

		return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										   1, &isnull));
	}
}

/*
 * Queue one delivery row (a SubscriptionConfirmation or an
 * UnsubscribeConfirmation; notifications go through the outbox).  protocol,
 * endpoint and topic_name are NULL, except for a delivery that outlives its
 * subscription (an UnsubscribeConfirmation): the row then carries what the
 * subscription row had.
 */
void
msgq_delivery_enqueue(const pg_uuid_t *sub_id, Datum message_id, const char *kind,
					  const char *payload, TimestampTz at, const char *protocol,
					  const char *endpoint, const char *topic_name)
{
	Oid			argtypes[8] = {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
	TEXTOID, TEXTOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	const char *target[3] = {protocol, endpoint, topic_name};
	int			i;

	values[0] = UUIDPGetDatum(sub_id);
	values[1] = message_id;
	values[2] = CStringGetTextDatum(kind);
	values[3] = CStringGetTextDatum(payload);
	values[4] = TimestampTzGetDatum(at);
	for (i = 0; i < 3; i++)
	{
		values[5 + i] = target[i] ? CStringGetTextDatum(target[i]) : (Datum) 0;
		nulls[5 + i] = target[i] ? ' ' : 'n';
	}
	if (SPI_execute_plan(msgq_plan(&plan_enqueue,
								   "INSERT INTO msgq.topic_delivery (delivery_id, subscription_id,"
								   "  message_id, kind, payload, attempts, next_attempt_at, created_at,"
								   "  protocol, endpoint, topic_name)"
								   " VALUES (pg_catalog.nextval('msgq.topic_delivery_seq'), $1, $2, $3, $4,"
								   "  0, $5, $5, $6, $7, $8)",
								   8, argtypes),
						 values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not queue a delivery");
	msgq_delivery_wake_worker_at_commit();
}

/* ------------------------------------------------------------------------
 * Outcomes
 * ------------------------------------------------------------------------
 */

static void
delivery_delete(int64 id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(id);
	if (SPI_execute_plan(msgq_plan(&plan_delete,
								   "DELETE FROM msgq.topic_delivery"
								   " WHERE delivery_id OPERATOR(pg_catalog.=) $1",
								   1, argtypes),
						 values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete a delivery");
}

static void
delivery_retry_later(int64 id, int attempts, TimestampTz at, const char *error)
{
	Oid			argtypes[4] = {INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[4];

	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum(attempts);
	values[2] = TimestampTzGetDatum(at);
	values[3] = CStringGetTextDatum(error);
	if (SPI_execute_plan(msgq_plan(&plan_retry,
								   "UPDATE msgq.topic_delivery SET attempts = $2, next_attempt_at = $3,"
								   "  last_error = $4 WHERE delivery_id OPERATOR(pg_catalog.=) $1",
								   4, argtypes),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record a failed delivery");
}

/* Put the delivered text into a dead-letter queue; false if it cannot be */
static bool
delivery_to_queue(const char *queue_name, Oid owner, const char *body)
{
	MsgqQueue	q;
	MsgqStoreMessage msg;
	text	   *t = cstring_to_text(body);
	TimestampTz now = msgq_now();
	char	   *sender = GetUserNameFromId(owner, true);

	if (sender == NULL || !msgq_queue_lookup(queue_name, &q) ||
		!msgq_queue_action_allowed(owner, q.owner, q.acl, MSGQ_ACT_SEND) ||
		q.fifo || VARSIZE_ANY_EXHDR(t) > msgq_queue_size_limit(&q))
		return false;
	memset(&msg, 0, sizeof(msg));
	msg.message_id = msgq_new_uuid();
	msg.body = t;
	msg.md5_body = msgq_md5_hex(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	msg.sender = sender;
	msg.sent_at = now;
	msg.visible_at = now + (TimestampTz) q.delay_seconds * USECS_PER_SEC;
	(void) msgq_queue_deliver(&q, &msg);
	return true;
}

/*
 * A delivery that will not be retried: to the dead-letter queue if there
 * is one (never for a subscription confirmation), else dropped.
 */
static void
delivery_give_up(int64 id, const pg_uuid_t *sub_id, const char *dlq, Oid owner,
				 bool confirmation, const char *payload, const char *why)
{
	char	   *sub = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(sub_id)));
	bool		moved = false;

	if (!confirmation && dlq != NULL)
	{
		if (payload == NULL)
		{
			Oid			argtypes[1] = {INT8OID};
			Datum		values[1];
			bool		isnull;
			Datum		d;

			values[0] = Int64GetDatum(id);
			if (SPI_execute_plan(msgq_plan(&plan_payload,
										   "SELECT payload FROM msgq.topic_delivery"
										   " WHERE delivery_id OPERATOR(pg_catalog.=) $1",
										   1, argtypes),
								 values, NULL, false, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not read a delivery");
			if (SPI_processed == 1)
			{
				d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
				payload = TextDatumGetCString(d);
			}
		}
		if (payload != NULL)
			moved = delivery_to_queue(dlq, owner, payload);
	}
	if (moved)
		ereport(LOG,
				(errmsg("msgq: delivery %lld of subscription %s moved to dead-letter queue \"%s\": %s",
						(long long) id, sub, dlq, why)));
	else
		ereport(LOG,
				(errmsg("msgq: delivery %lld of subscription %s dropped: %s",
						(long long) id, sub, why)));
	msgq_topic_count(sub_id, moved ? MSGQ_TOPIC_COUNT_DLQ : MSGQ_TOPIC_COUNT_FAILED);
	delivery_delete(id);
}

/* ------------------------------------------------------------------------
 * Function subscriptions
 * ------------------------------------------------------------------------
 */

typedef struct DueRow
{
	int64		id;
	pg_uuid_t	sub_id;
	bool		orphan;
	bool		confirmation;	/* not a Notification */
	bool		unsubscribe;	/* an UnsubscribeConfirmation */
	char	   *kind;
	int			attempts;
	char	   *payload;
	char	   *protocol;
	char	   *endpoint;
	Oid			owner;
	bool		raw;
	char	   *dlq;
	char	   *sub_policy;
	char	   *topic_policy;
	char	   *topic_name;
	Datum		message_id;
} DueRow;

static char *
col_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Copy the rows of a due-deliveries query (see the column order below) */
static DueRow *
due_rows(int *n)
{
	DueRow	   *rows = palloc0(sizeof(DueRow) * Max(SPI_processed, 1));
	uint64		i;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		DueRow	   *r = &rows[i];
		bool		isnull;
		Datum		d;
		char	   *kind;

		r->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		memcpy(&r->sub_id, DatumGetUUIDP(SPI_getbinval(tup, desc, 2, &isnull)), sizeof(pg_uuid_t));
		kind = col_text(tup, desc, 3);
		r->kind = kind;
		r->confirmation = strcmp(kind, "Notification") != 0;
		r->unsubscribe = strcmp(kind, "UnsubscribeConfirmation") == 0;
		r->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		r->payload = col_text(tup, desc, 5);
		r->protocol = col_text(tup, desc, 6);
		r->orphan = r->protocol == NULL;
		r->endpoint = col_text(tup, desc, 7);
		d = SPI_getbinval(tup, desc, 8, &isnull);
		r->owner = isnull ? InvalidOid : DatumGetObjectId(d);
		d = SPI_getbinval(tup, desc, 9, &isnull);
		r->raw = !isnull && DatumGetBool(d);
		r->dlq = col_text(tup, desc, 10);
		r->sub_policy = col_text(tup, desc, 11);
		r->topic_policy = col_text(tup, desc, 12);
		r->topic_name = col_text(tup, desc, 13);
		d = SPI_getbinval(tup, desc, 14, &isnull);
		r->message_id = DirectFunctionCall1(uuid_in, DirectFunctionCall1(uuid_out, d));
	}
	*n = (int) SPI_processed;
	return rows;
}

#define DUE_COLUMNS \
	"SELECT d.delivery_id, d.subscription_id, d.kind, d.attempts, %s," \
	"       COALESCE(s.protocol, d.protocol), COALESCE(s.endpoint, d.endpoint)," \
	"       s.owner::pg_catalog.oid, s.raw_delivery, s.dead_letter_queue," \
	"       s.attributes OPERATOR(pg_catalog.->>) 'DeliveryPolicy'," \
	"       t.attributes OPERATOR(pg_catalog.->>) 'DeliveryPolicy'," \
	"       COALESCE(t.topic_name, d.topic_name), d.message_id" \
	"  FROM msgq.topic_delivery d" \
	"  LEFT JOIN msgq.subscription s USING (subscription_id)" \
	"  LEFT JOIN msgq.topic t USING (topic_id)"

/*
 * Call the subscription's function with the delivery's text.  Raises the
 * function's error, or one of ours: a client error (set *client) when the
 * function cannot be called at all.
 */
static void
function_call(DueRow *r, bool *client)
{
	Oid			fn;
	Oid			rettype;
	Oid		   *argtypes;
	int			nargs;
	FmgrInfo	flinfo;
	Datum		arg;
	Oid			save_userid;
	int			save_sec_context;
	int			nest;

	LOCAL_FCINFO(fcinfo, 1);

	*client = true;
	fn = DatumGetObjectId(DirectFunctionCall1(regprocedurein, CStringGetDatum(r->endpoint)));
	if (GetUserNameFromId(r->owner, true) == NULL)
		elog(ERROR, "the subscription's owner no longer exists");
	msgq_check_execute(fn, r->owner);
	rettype = get_func_signature(fn, &argtypes, &nargs);
	(void) rettype;
	if (nargs != 1 || (argtypes[0] != JSONBOID && argtypes[0] != JSONOID &&
					   argtypes[0] != TEXTOID))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("function %s must take one argument of type jsonb, json or text",
						r->endpoint)));
	if (argtypes[0] == JSONBOID)
		arg = DirectFunctionCall1(jsonb_in, CStringGetDatum(r->payload));
	else
		arg = CStringGetTextDatum(r->payload);
	*client = false;

	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = arg;
	fcinfo->args[0].isnull = false;

	/* as the owner, who can neither change role nor outlive the call */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(r->owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest = msgq_caller_search_path();
	(void) FunctionCallInvoke(fcinfo);
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

typedef struct FunctionCallArgs
{
	DueRow	   *r;
	bool		client;
} FunctionCallArgs;

static void
function_call_subxact(void *arg)
{
	FunctionCallArgs *c = (FunctionCallArgs *) arg;

	function_call(c->r, &c->client);
}

/* One due function delivery: call, then delete, retry later or give up */
static void
function_deliver(DueRow *r, bool in_worker)
{
	ErrorData  *edata;
	FunctionCallArgs c = {r, false};
	bool		client;
	MsgqDeliveryPolicy policy;
	double		delay;

	edata = msgq_run_subxact(function_call_subxact, &c, in_worker);
	client = c.client;

	if (edata == NULL)
	{
		delivery_delete(r->id);
		msgq_topic_count(&r->sub_id, MSGQ_TOPIC_COUNT_DELIVERED);
		return;
	}
	if (client)
	{
		delivery_give_up(r->id, &r->sub_id, r->dlq, r->owner, r->confirmation, r->payload,
						 edata->message);
		return;
	}
	msgq_delivery_policy_effective(&policy, false, r->sub_policy, NULL);
	delay = msgq_retry_delay(&policy.retry, r->attempts + 1, true);
	if (delay < 0)
		delivery_give_up(r->id, &r->sub_id, r->dlq, r->owner, r->confirmation, r->payload,
						 psprintf("%d attempts failed, the last with: %s",
								  r->attempts + 1, edata->message));
	else
	{
		delivery_retry_later(r->id, r->attempts + 1,
							 msgq_now() + (TimestampTz) (delay * USECS_PER_SEC),
							 edata->message);
		msgq_topic_count(&r->sub_id, MSGQ_TOPIC_COUNT_RETRIED);
	}
	FreeErrorData(edata);
}

int
msgq_delivery_run_functions(int max, bool in_worker)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];
	DueRow	   *rows;
	int			n;
	int			i;

	while (delivery_expand(1000) == 1000)
		CHECK_FOR_INTERRUPTS();

	values[0] = TimestampTzGetDatum(msgq_now());
	values[1] = Int32GetDatum(max);
	if (SPI_execute_plan(msgq_plan(&plan_due_functions,
								   psprintf(DUE_COLUMNS
											" WHERE d.next_attempt_at OPERATOR(pg_catalog.<=) $1"
											"   AND (s.protocol OPERATOR(pg_catalog.=) 'function'"
											"        OR (s.subscription_id IS NULL AND d.protocol IS NULL))"
											" ORDER BY d.next_attempt_at LIMIT $2"
											"   FOR UPDATE OF d SKIP LOCKED", "d.payload"),
								   2, argtypes),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read due deliveries");
	rows = due_rows(&n);
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (rows[i].orphan)
			delivery_delete(rows[i].id);	/* unsubscribed */
		else
			function_deliver(&rows[i], in_worker);
	}
	return n;
}

/* ------------------------------------------------------------------------
 * HTTP subscriptions (the worker only)
 * ------------------------------------------------------------------------
 */

static void
worker_state_init(void)
{
	HASHCTL		ctl;

	if (delivery_cxt != NULL)
		return;
	delivery_cxt = AllocSetContextCreate(TopMemoryContext, "msgq delivery",
										 ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(InflightEntry);
	ctl.hcxt = delivery_cxt;
	delivery_inflight = hash_create("msgq deliveries in flight", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(ThrottleEntry);
	ctl.hcxt = delivery_cxt;
	delivery_throttle = hash_create("msgq delivery throttles", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Record what the finished transfers got */
static void
http_record(MsgqHttpResult *results, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		MsgqHttpResult *res = &results[i];
		InflightEntry *e;
		bool		found;
		double		delay;
		char	   *why;
		bool		client_error;

		e = hash_search(delivery_inflight, &res->tag, HASH_FIND, &found);
		if (!found)
			continue;
		/*
		 * 2xx and 3xx (no redirect is followed) are deliveries; a 4xx is a
		 * client error: the endpoint's own answer, which retrying would
		 * not change, so it is not retried but goes to the dead-letter
		 * queue (SPEC-aws.md 2.4), where it is not lost.  5xx, timeouts and
		 * failed connections are retried.
		 */
		if (res->status >= 200 && res->status < 400)
		{
			delivery_delete(e->delivery_id);
			if (!e->confirmation)
				msgq_topic_count(&e->sub_id, MSGQ_TOPIC_COUNT_DELIVERED);
		}
		else
		{
			Oid			argtypes[1] = {UUIDOID};
			Datum		values[1];
			char	   *dlq = NULL;
			Oid			owner = InvalidOid;

			if (res->status != 0)
				why = psprintf("HTTP status %ld", res->status);
			else if (res->timed_out)
				why = psprintf("timed out after %d ms", msgq_http_timeout_ms);
			else
				why = psprintf("%s", res->error[0] ? res->error : "connection failed");

			values[0] = UUIDPGetDatum(&e->sub_id);
			if (e->unsubscribe)
			{
				/* its subscription is gone: retried, then dropped */
			}
			else if (SPI_execute_with_args("SELECT dead_letter_queue, owner::pg_catalog.oid"
										   "  FROM msgq.subscription"
										   " WHERE subscription_id OPERATOR(pg_catalog.=) $1",
										   1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not read a subscription");
			else if (SPI_processed == 1)
			{
				bool		isnull;

				dlq = col_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
				owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 2, &isnull));
			}
			else
			{
				/* unsubscribed meanwhile */
				delivery_delete(e->delivery_id);
				hash_search(delivery_inflight, &res->tag, HASH_REMOVE, NULL);
				continue;
			}

			client_error = res->status >= 400 && res->status < 500;
			delay = client_error ? -1 :
				msgq_retry_delay(&e->retry, e->attempts + 1, true);
			if (delay < 0)
				delivery_give_up(e->delivery_id, &e->sub_id, dlq, owner, e->confirmation, NULL,
								 client_error ?
								 psprintf("client error, not retried: %s", why) :
								 psprintf("%d attempts failed, the last with: %s",
										  e->attempts + 1, why));
			else
			{
				delivery_retry_later(e->delivery_id, e->attempts + 1,
									 msgq_now() + (TimestampTz) (delay * USECS_PER_SEC), why);
				if (!e->confirmation)
					msgq_topic_count(&e->sub_id, MSGQ_TOPIC_COUNT_RETRIED);
			}
		}
		hash_search(delivery_inflight, &res->tag, HASH_REMOVE, NULL);
	}
}

/*
 * Start the due HTTP deliveries not in flight yet.  Returns the time the
 * next throttled one may start (0: none is waiting for its throttle); sets
 * *more when more rows were due than could be started.
 */
static TimestampTz
http_start_due(bool *more)
{
	int			room = msgq_http_max_inflight - (int) hash_get_num_entries(delivery_inflight);
	Oid			argtypes[3] = {TIMESTAMPTZOID, INT4OID, INT8ARRAYOID};
	Datum		values[3];
	Datum	   *ids;
	int			nids = 0;
	HASH_SEQ_STATUS seq;
	InflightEntry *e;
	DueRow	   *rows;
	int			n;
	int			i;
	TimestampTz now = msgq_now();
	TimestampTz throttled = 0;
	MemoryContext cxt = CurrentMemoryContext;

	*more = false;
	if (room <= 0)
		return 0;
	ids = palloc(sizeof(Datum) * (hash_get_num_entries(delivery_inflight) + 1));
	hash_seq_init(&seq, delivery_inflight);
	while ((e = hash_seq_search(&seq)) != NULL)
		ids[nids++] = Int64GetDatum(e->delivery_id);
	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(room);
	values[2] = PointerGetDatum(construct_array(ids, nids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_plan(msgq_plan(&plan_due_http,
								   psprintf(DUE_COLUMNS
											" WHERE d.next_attempt_at OPERATOR(pg_catalog.<=) $1"
											"   AND COALESCE(s.protocol, d.protocol) OPERATOR(pg_catalog.=) ANY ('{http,https}')"
											"   AND d.delivery_id OPERATOR(pg_catalog.<>) ALL ($3)"
											" ORDER BY d.next_attempt_at LIMIT $2", "d.payload"),
								   3, argtypes),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read due deliveries");
	rows = due_rows(&n);
	*more = n == room;
	for (i = 0; i < n; i++)
	{
		DueRow	   *r = &rows[i];
		MsgqDeliveryPolicy policy;
		const char *headers[8];
		int			nh = 0;
		char	   *topic_arn;
		char	   *msgid;
		bool		found;

		PG_TRY();
		{
			msgq_delivery_policy_effective(&policy, true, r->sub_policy, r->topic_policy);
		}
		PG_CATCH();
		{
			/* a stored policy is always valid; fall back to the defaults */
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			memset(&policy, 0, sizeof(policy));
			policy.retry = http_default;
			strcpy(policy.content_type, "text/plain; charset=UTF-8");
		}
		PG_END_TRY();

		if (policy.max_per_second > 0)
		{
			ThrottleEntry *t = hash_search(delivery_throttle, &r->sub_id, HASH_ENTER, &found);

			if (!found)
				t->next_allowed = 0;
			if (t->next_allowed > now)
			{
				if (throttled == 0 || t->next_allowed < throttled)
					throttled = t->next_allowed;
				continue;
			}
			t->next_allowed = Max(now, t->next_allowed) + USECS_PER_SEC / policy.max_per_second;
		}

		topic_arn = msgq_topic_arn(r->topic_name);
		msgid = DatumGetCString(DirectFunctionCall1(uuid_out, r->message_id));
		headers[nh++] = psprintf("Content-Type: %s", policy.content_type);
		headers[nh++] = psprintf("x-amz-sns-message-type: %s", r->kind);
		headers[nh++] = psprintf("x-amz-sns-message-id: %s", msgid);
		headers[nh++] = psprintf("x-amz-sns-topic-arn: %s", topic_arn);
		if (!r->confirmation || r->unsubscribe)
			headers[nh++] = psprintf("x-amz-sns-subscription-arn: %s",
									 msgq_subscription_arn(r->topic_name, &r->sub_id));
		if (r->raw && !r->confirmation)
			headers[nh++] = "x-amz-sns-rawdelivery: true";

		e = hash_search(delivery_inflight, &r->id, HASH_ENTER, &found);
		e->sub_id = r->sub_id;
		e->attempts = r->attempts;
		e->confirmation = r->confirmation;
		e->unsubscribe = r->unsubscribe;
		e->retry = policy.retry;
		msgq_http_post(delivery_http, (uint64) r->id, r->endpoint, headers, nh,
					   r->payload, strlen(r->payload), msgq_http_timeout_ms);
	}
	return throttled;
}

/* When the next row not in flight falls due (0: none) */
static TimestampTz
next_due(TimestampTz after)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = TimestampTzGetDatum(after);
	if (SPI_execute_plan(msgq_plan(&plan_next_due,
								   "SELECT pg_catalog.min(next_attempt_at) FROM msgq.topic_delivery"
								   " WHERE next_attempt_at OPERATOR(pg_catalog.>) $1",
								   1, argtypes),
						 values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read due deliveries");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * One pass of the worker over the deliveries, in a transaction of its
 * own.  Returns the milliseconds until something falls due (0: at once),
 * or -1 when nothing is pending but transfers in flight.
 */
long
msgq_delivery_worker_pass(void)
{
	MsgqHttpResult *results;
	int			nresults = 0;
	int			maxresults = 64;
	MemoryContext oldcxt;
	bool		more_functions = false;
	bool		more_http = false;
	TimestampTz throttled = 0;
	TimestampTz due = 0;
	TimestampTz now;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nest;
	long		wait_ms = -1;

	worker_state_init();
	if (delivery_http == NULL)
		delivery_http = msgq_http_create();

	oldcxt = MemoryContextSwitchTo(delivery_cxt);
	results = palloc(sizeof(MsgqHttpResult) * maxresults);
	while (msgq_http_result(delivery_http, &results[nresults]))
	{
		if (++nresults == maxresults)
		{
			maxresults *= 2;
			results = repalloc(results, sizeof(MsgqHttpResult) * maxresults);
		}
	}
	MemoryContextSwitchTo(oldcxt);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "msgq deliveries");
	if (msgq_extension_lock_shared())
	{
		msgq_switch_to_owner(&save_userid, &save_sec_context, &save_nest);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		http_record(results, nresults);
		more_functions = msgq_delivery_run_functions(DELIVERY_FUNCTION_BATCH, true) ==
			DELIVERY_FUNCTION_BATCH;
		throttled = http_start_due(&more_http);
		now = msgq_now();
		due = next_due(now);
		SPI_finish();
		msgq_restore_user(save_userid, save_sec_context, save_nest);
	}
	else
		now = msgq_now();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	pfree(results);

	if (more_functions)
		return 0;
	/* more due HTTP rows than room: a finishing transfer wakes us */
	(void) more_http;
	if (throttled != 0 && (due == 0 || throttled < due))
		due = throttled;
	if (due != 0)
	{
		long		secs;
		int			usecs;

		TimestampDifference(now, due, &secs, &usecs);
		wait_ms = secs * 1000 + (usecs + 999) / 1000;
	}
	return wait_ms;
}

/*
 * Wait for the latch, a transfer, or timeout_ms (-1: no limit).
 */
int
msgq_delivery_wait(long timeout_ms, uint32 wait_event_info)
{
	if (delivery_http != NULL)
		return msgq_http_wait(delivery_http, timeout_ms, wait_event_info);
	return WaitLatch(MyLatch,
					 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0),
					 timeout_ms, wait_event_info);
}
