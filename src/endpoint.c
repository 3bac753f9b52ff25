/*-------------------------------------------------------------------------
 *
 * endpoint.c
 *	  The AWS wire endpoint: background workers that serve SQS (AWS JSON 1.0
 *	  and the older query protocol), SNS (the query protocol) and Kinesis
 *	  (AWS JSON 1.1, SubscribeToShard's event stream) over HTTP/1.1 and
 *	  cleartext HTTP/2 on a loopback address, so that unmodified AWS SDKs
 *	  talk to msgq's queues, topics and streams.
 *
 * msgq.endpoint_workers processes share the port (SO_REUSEPORT).  Each is
 * single-threaded and event-driven: its connections are in an epoll set of
 * its own, which its wait set watches with the latch and postmaster death.
 * Requests are read whole (HTTP/1.1: headers, then Content-Length bytes;
 * HTTP/2: a stream's HEADERS and DATA, through h2.c), then run, each in a
 * short transaction of its own, as the role the request authenticates as
 * (SigV4 against access_key.c's encrypted secrets); the response is
 * written as the socket takes it, with back-pressure on clients that do
 * not read.  Connections stay open (keep-alive) until the client closes
 * them, stays idle for a minute, or takes longer than
 * msgq.endpoint_request_timeout to send a request.
 *
 * Each action is one SQL statement over msgq's own functions, with the
 * request as a jsonb parameter, that builds the response (JSON, or the
 * query protocol's XML): names from requests are data, never SQL text.
 * msgq's errors carry their AWS name ("AWS error code: X" in the detail),
 * which becomes the response's error (__type and x-amzn-query-error, or
 * <ErrorResponse>).
 *
 * A ReceiveMessage that finds nothing and may wait, and a SubscribeToShard
 * for its five minutes, are parked without a transaction: commits that
 * make messages or records readable set the workers' latches
 * (msgq_endpoint_wakeup, from wait.c) while anything is parked, and parked
 * requests are tried again then (and at their ends and heartbeats).
 * doc/design.md "The AWS endpoint" has the whole design.
 *
 * IDENTIFICATION
 *	  src/endpoint.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "access/xact.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "lib/ilist.h"
#include "access/htup_details.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "access_key.h"
#include "compat.h"
#include "h2.h"
#include "msgq.h"

#define EP_MAX_HEADER		(16 * 1024)
#define EP_MAX_BODY			(16 * 1024 * 1024)	/* PutRecords: 10 MiB in base64 JSON, and keys */
#define EP_MAX_WORKERS		8
#define EP_MAX_CONNECTIONS	16384	/* and within the process's file limit */
#define EP_EVENTS			256 /* socket events taken per pass */
#define EP_MAX_PENDING		(1024 * 1024)	/* answers a connection may have unsent */
#define EP_READ_BUDGET		(256 * 1024)	/* bytes read from a connection per pass */
#define EP_MAX_INPUT		(EP_MAX_HEADER + EP_MAX_BODY + EP_READ_BUDGET)	/* unparsed */
#define EP_IDLE_TIMEOUT_MS		60000
#define EP_SUB_SECS				300 /* a SubscribeToShard lasts five minutes */
#define EP_SUB_HEARTBEAT_MS		5000	/* an event at least this often */
#define EP_SUB_RETRY_MS			100 /* a subscription behind, its client slow */

/* the X-Amz-Target prefixes served; SNS speaks the query protocol */
#define SQS						"AmazonSQS"
#define KINESIS					"Kinesis_20131202"
#define SNS						"SNS"
#define SNS_XMLNS				"http://sns.amazonaws.com/doc/2010-03-31/"
/* SQS's older query protocol (what boto3 before 1.31 speaks) */
#define SQSQ					"SQSQuery"
#define SQSQ_XMLNS				"http://queue.amazonaws.com/doc/2012-11-05/"

int			msgq_endpoint_port = 0;
int			msgq_endpoint_workers = 1;
int			msgq_endpoint_request_timeout_ms = 10000;
int			msgq_endpoint_body_memory_kb = 256 * 1024;
char	   *msgq_endpoint_listen_address = NULL;
char	   *msgq_endpoint_database = NULL;
char	   *msgq_endpoint_role = NULL;
char	   *msgq_endpoint_auth = NULL;

PGDLLEXPORT void msgq_endpoint_main(Datum main_arg);
PG_FUNCTION_INFO_V1(msgq_endpoint_error);

/* ------------------------------------------------------------------------
 * Settings, registration, shared state
 * ------------------------------------------------------------------------
 */

static bool
ep_check_auth(char **newval, void **extra, GucSource source)
{
	return *newval != NULL && (strcmp(*newval, "none") == 0 || strcmp(*newval, "sigv4") == 0);
}

void
msgq_endpoint_define_gucs(void)
{
	/* the restart-only settings exist only when msgq is preloaded */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("msgq.endpoint_port",
								"TCP port of the AWS wire endpoint (0: off).",
								NULL,
								&msgq_endpoint_port,
								0, 0, 65535,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
		DefineCustomStringVariable("msgq.endpoint_listen_address",
								   "Address the AWS wire endpoint listens on (a loopback address).",
								   NULL,
								   &msgq_endpoint_listen_address,
								   "127.0.0.1",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);
		DefineCustomIntVariable("msgq.endpoint_workers",
								"Number of AWS wire endpoint workers, sharing its port.",
								"Each accepts its share of new connections (SO_REUSEPORT).",
								&msgq_endpoint_workers,
								1, 1, EP_MAX_WORKERS,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
		DefineCustomStringVariable("msgq.endpoint_database",
								   "Database whose queues the AWS wire endpoint serves.",
								   NULL,
								   &msgq_endpoint_database,
								   "postgres",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);
	}
	DefineCustomStringVariable("msgq.endpoint_auth",
							   "How the AWS wire endpoint authenticates requests: sigv4, or none.",
							   "sigv4: AWS Signature Version 4 with the access keys of msgq.create_access_key, "
							   "each request runs as its key's role.  none (local development only): "
							   "requests run as msgq.endpoint_role.",
							   &msgq_endpoint_auth,
							   "sigv4",
							   PGC_SIGHUP,
							   0,
							   ep_check_auth, NULL, NULL);
	DefineCustomIntVariable("msgq.endpoint_request_timeout",
							"Longest time a client may take to send a whole request (headers and body).",
							"A slower client's connection is closed.",
							&msgq_endpoint_request_timeout_ms,
							10000, 100, 600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("msgq.endpoint_body_memory",
							"Most memory one endpoint worker keeps for request bodies still being received.",
							"A request whose body finds no room is answered 503 ServiceUnavailable at once, "
							"which the AWS SDKs retry.",
							&msgq_endpoint_body_memory_kb,
							256 * 1024, EP_MAX_BODY / 1024, MAX_KILOBYTES,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomStringVariable("msgq.endpoint_role",
							   "Role the AWS wire endpoint's requests run as with msgq.endpoint_auth = none.",
							   "Empty: every request is refused.",
							   &msgq_endpoint_role,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
}

void
msgq_endpoint_register(void)
{
	BackgroundWorker bgw;
	int			i;

	if (msgq_endpoint_port == 0)
		return;
	for (i = 0; i < msgq_endpoint_workers; i++)
	{
		memset(&bgw, 0, sizeof(bgw));
		bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
		bgw.bgw_restart_time = 5;
		bgw.bgw_main_arg = Int32GetDatum(i);
		strlcpy(bgw.bgw_library_name, "msgq", BGW_MAXLEN);
		strlcpy(bgw.bgw_function_name, "msgq_endpoint_main", BGW_MAXLEN);
		if (msgq_endpoint_workers == 1)
			strlcpy(bgw.bgw_name, "msgq endpoint", BGW_MAXLEN);
		else
			snprintf(bgw.bgw_name, BGW_MAXLEN, "msgq endpoint %d", i + 1);
		strlcpy(bgw.bgw_type, "msgq endpoint", BGW_MAXLEN);
		RegisterBackgroundWorker(&bgw);
	}
}

/* per action: what msgq.endpoint_metrics shows (written by every worker) */
#define EP_MAX_ACTIONS		128

typedef struct EpStats
{
	pg_atomic_uint64 requests;
	pg_atomic_uint64 errors;
	pg_atomic_uint64 latency_us;	/* summed */
	pg_atomic_uint64 max_latency_us;
} EpStats;

/*
 * The SubscribeToShard subscriptions of every worker, so that a consumer's
 * new subscription to a shard is refused within 5 seconds of the last, and
 * later takes over from it whichever worker holds it.
 */
#define EP_MAX_SUBSCRIPTIONS	1024

typedef struct EpSubSlot
{
	uint64		key;			/* hash of ConsumerARN and ShardId; 0: free */
	int			worker;			/* whose */
	uint32		gen;			/* which subscription: a takeover changes it */
	TimestampTz since;
} EpSubSlot;

typedef struct EpShared
{
	Latch	   *latch[EP_MAX_WORKERS];	/* each worker's, while it runs */
	pg_atomic_uint32 parked;	/* requests parked in a long poll */
	EpStats		stats[EP_MAX_ACTIONS + 1];	/* the last: requests of no action */
	slock_t		sub_lock;		/* protects sub_gen and subs */
	uint32		sub_gen;
	EpSubSlot	subs[EP_MAX_SUBSCRIPTIONS];
} EpShared;

static EpShared *ep_shared = NULL;

void
msgq_endpoint_shmem_size(Size *size)
{
	*size = add_size(*size, sizeof(EpShared));
}

void
msgq_endpoint_shmem_init(void)
{
	bool		found;

	ep_shared = ShmemInitStruct("msgq endpoint", sizeof(EpShared), &found);
	if (!found)
	{
		int			i;

		memset(ep_shared->latch, 0, sizeof(ep_shared->latch));
		pg_atomic_init_u32(&ep_shared->parked, 0);
		SpinLockInit(&ep_shared->sub_lock);
		ep_shared->sub_gen = 0;
		memset(ep_shared->subs, 0, sizeof(ep_shared->subs));
		for (i = 0; i <= EP_MAX_ACTIONS; i++)
		{
			pg_atomic_init_u64(&ep_shared->stats[i].requests, 0);
			pg_atomic_init_u64(&ep_shared->stats[i].errors, 0);
			pg_atomic_init_u64(&ep_shared->stats[i].latency_us, 0);
			pg_atomic_init_u64(&ep_shared->stats[i].max_latency_us, 0);
		}
	}
}

/* A commit made messages receivable (wait.c): wake the parked long polls */
void
msgq_endpoint_wakeup(void)
{
	int			i;

	if (ep_shared == NULL || pg_atomic_read_u32(&ep_shared->parked) == 0)
		return;
	for (i = 0; i < EP_MAX_WORKERS; i++)
	{
		Latch	   *latch = ep_shared->latch[i];

		if (latch != NULL)
			SetLatch(latch);
	}
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------
 */

typedef struct EpConn
{
	pgsocket	fd;
	dlist_node	node;			/* in ep_conns */
	StringInfoData in;			/* bytes read, not yet a whole request */
	StringInfoData out;			/* response bytes not yet written */
	int			out_sent;
	uint32		polled;			/* the epoll events asked for */
	TimestampTz last_activity;
	TimestampTz request_started;	/* the first byte of the pending request */
	bool		closing;		/* close once out is written */
	bool		keep_alive;
	int			nparked;		/* its parked requests (HTTP/1.1: one at most) */
	bool		dirty;			/* in ep_dirty */
	dlist_node	dirty_node;
	EpH2	   *h2;				/* an HTTP/2 connection's session */
	int32		stream;			/* HTTP/2: the stream being answered */
	int			want;			/* HTTP/1.1: bytes of in that the request being received needs */
	size_t		reserved;		/* HTTP/1.1: of the body budget, for that request */
	const char *service;		/* of the request being answered */
} EpConn;

/* a ReceiveMessage that found nothing and waits */
typedef struct EpPark
{
	dlist_node	node;			/* in ep_parked */
	EpConn	   *conn;
	int32		stream;			/* HTTP/2: its stream */
	Jsonb	   *request;
	char	   *prefix;
	TimestampTz until;
	TimestampTz since;
	Oid			role;			/* the role the request authenticated as */
	const void *action;			/* an EpAction */
	bool		subscription;	/* a SubscribeToShard's event stream */
	TimestampTz last_event;		/* a subscription's last event sent */
	TimestampTz retry_at;		/* poll again then: its read budget is spent */
	int			sub_slot;		/* its EpSubSlot, while sub_gen is the slot's */
	uint32		sub_gen;
} EpPark;

static void ep_xml_escape(StringInfo s, const char *v);
static const char *ep_legacy_code(const char *code);

/* a query-protocol service: XML replies */
static bool
ep_xml_service(const char *service)
{
	return service != NULL && (strcmp(service, SNS) == 0 || strcmp(service, SQSQ) == 0);
}

static dlist_head ep_conns = DLIST_STATIC_INIT(ep_conns);
static dlist_head ep_parked = DLIST_STATIC_INIT(ep_parked);
/* connections written to outside their own events: to write this pass */
static dlist_head ep_dirty = DLIST_STATIC_INIT(ep_dirty);
static int	ep_nconns = 0;
static int	ep_max_conns = EP_MAX_CONNECTIONS;	/* within the process's file limit */
static pgsocket ep_listen = PGINVALID_SOCKET;
static int	ep_epoll = -1;
static int	ep_worker = 0;		/* which of the msgq.endpoint_workers */
static MemoryContext ep_cxt = NULL;
static size_t ep_body_reserved = 0; /* of msgq.endpoint_body_memory */

/*
 * The process's budget for request bodies being received: a request whose
 * body is not whole yet holds room for all of it (HTTP/1.1: its
 * Content-Length, when its headers are read; HTTP/2: h2.c), and gives it
 * back once it has been handled.  A request that finds no room is refused
 * with 503 at once, before its body is read: waiting for room could leave
 * every body half-received with none able to finish.  What a connection
 * reads beyond the room it holds is at most EP_MAX_HEADER + 1 bytes
 * (ep_read_room).
 */
bool
ep_body_reserve(size_t n)
{
	size_t		limit = (size_t) msgq_endpoint_body_memory_kb * 1024;

	if (ep_body_reserved + n > limit)
		return false;
	ep_body_reserved += n;
	return true;
}

void
ep_body_release(size_t n)
{
	Assert(n <= ep_body_reserved);
	ep_body_reserved -= n;
}

/*
 * Connections' buffers are allocated when first used and given back when
 * empty, so that idle connections cost little memory.
 */
static void
ep_buf_append(StringInfo s, const char *data, int len)
{
	if (s->data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(ep_cxt);

		initStringInfo(s);
		MemoryContextSwitchTo(old);
	}
	appendBinaryStringInfo(s, data, len);
}

static void
ep_buf_release(StringInfo s)
{
	if (s->data != NULL && s->len == 0)
	{
		pfree(s->data);
		memset(s, 0, sizeof(*s));
	}
}

static void
ep_mark(EpConn *c)
{
	if (!c->dirty)
	{
		c->dirty = true;
		dlist_push_tail(&ep_dirty, &c->dirty_node);
	}
}

/* A subscription's slot, freed unless another subscription took it over */
static void
ep_sub_release(int slot, uint32 gen)
{
	if (slot < 0)
		return;
	SpinLockAcquire(&ep_shared->sub_lock);
	if (ep_shared->subs[slot].gen == gen)
		ep_shared->subs[slot].key = 0;
	SpinLockRelease(&ep_shared->sub_lock);
}

static void
ep_park_free(EpPark *p)
{
	if (p->subscription)
		ep_sub_release(p->sub_slot, p->sub_gen);
	dlist_delete(&p->node);
	pg_atomic_fetch_sub_u32(&ep_shared->parked, 1);
	p->conn->nparked--;
	pfree(p->request);
	pfree(p->prefix);
	pfree(p);
}

static void
ep_close(EpConn *c)
{
	dlist_mutable_iter it;

	dlist_foreach_modify(it, &ep_parked)
	{
		EpPark	   *p = dlist_container(EpPark, node, it.cur);

		if (p->conn == c)
			ep_park_free(p);
	}
	if (c->dirty)
		dlist_delete(&c->dirty_node);
	if (c->h2)
		ep_h2_free(c->h2);
	ep_body_release(c->reserved);
	closesocket(c->fd);			/* and out of the epoll set */
	if (c->in.data)
		pfree(c->in.data);
	if (c->out.data)
		pfree(c->out.data);
	dlist_delete(&c->node);
	ep_nconns--;
	pfree(c);
}

static void
ep_respond(EpConn *c, int status, const char *reason, const char *body,
		   const char *extra_headers)
{
	char	   *headers;

	headers = psprintf("Content-Type: %s\r\n"
					   "x-amzn-RequestId: %s\r\n"
					   "x-msgq-endpoint-worker: %d\r\n"
					   "%s",
					   ep_xml_service(c->service) ? "text/xml" :
					   c->service && strcmp(c->service, KINESIS) == 0 ? "application/x-amz-json-1.1" :
					   "application/x-amz-json-1.0",
					   DatumGetCString(DirectFunctionCall1(uuid_out,
														   DirectFunctionCall1(gen_random_uuid, (Datum) 0))),
					   ep_worker + 1,
					   extra_headers ? extra_headers : "");
	if (c->h2 != NULL)
	{
		ep_h2_respond(c->h2, c->stream, status, headers, body, strlen(body), true);
		return;
	}
	ep_buf_append(&c->out, "", 0);
	appendStringInfo(&c->out,
					 "HTTP/1.1 %d %s\r\n"
					 "%s"
					 "Content-Length: %zu\r\n"
					 "%s"
					 "\r\n%s",
					 status, reason, headers, strlen(body),
					 c->keep_alive ? "" : "Connection: close\r\n",
					 body);
	if (!c->keep_alive)
		c->closing = true;
}

/* An AWS JSON error: __type, message, and the query-compatible code */
static void
ep_error(EpConn *c, int status, const char *code, const char *legacy, bool sender,
		 const char *message)
{
	StringInfoData body;
	char	   *header;

	bool		kinesis = c->service && strcmp(c->service, KINESIS) == 0;

	if (ep_xml_service(c->service))
	{
		/* the query protocol's <ErrorResponse>; SQS's with its older codes */
		bool		sqs = strcmp(c->service, SQSQ) == 0;

		initStringInfo(&body);
		appendStringInfo(&body, "<ErrorResponse xmlns=\"%s\"><Error><Type>%s</Type><Code>%s</Code><Message>",
						 sqs ? SQSQ_XMLNS : SNS_XMLNS, sender ? "Sender" : "Receiver",
						 sqs ? ep_legacy_code(code) : code);
		ep_xml_escape(&body, message ? message : "");
		appendStringInfo(&body, "</Message></Error><RequestId>%s</RequestId></ErrorResponse>",
						 DatumGetCString(DirectFunctionCall1(uuid_out, DirectFunctionCall1(gen_random_uuid, (Datum) 0))));
		if (strcmp(code, "NotFound") == 0 && !sqs)
			status = 404;
		else if (strcmp(code, "AuthorizationError") == 0)
			status = 403;
		ep_respond(c, status, status == 404 ? "Not Found" : status == 400 ? "Bad Request" :
				   status == 403 ? "Forbidden" : "Internal Server Error", body.data, NULL);
		return;
	}
	initStringInfo(&body);
	appendStringInfo(&body, "{\"__type\": \"%s%s\", \"message\": ", kinesis ? "" : "com.amazonaws.sqs#", code);
	escape_json(&body, message ? message : "");
	appendStringInfoChar(&body, '}');
	/* SQS's query compatibility: the legacy code for the SDKs' error.Code */
	header = kinesis ? NULL : psprintf("x-amzn-query-error: %s;%s\r\n", legacy ? legacy : code,
									   sender ? "Sender" : "Receiver");
	ep_respond(c, status, status == 400 ? "Bad Request" : status == 403 ? "Forbidden" :
			   status == 413 ? "Payload Too Large" :
			   status == 503 ? "Service Unavailable" : "Internal Server Error", body.data, header);
}

static void
ep_xml_escape(StringInfo s, const char *v)
{
	for (; *v; v++)
	{
		switch (*v)
		{
			case '<':
				appendStringInfoString(s, "&lt;");
				break;
			case '>':
				appendStringInfoString(s, "&gt;");
				break;
			case '&':
				appendStringInfoString(s, "&amp;");
				break;
			case '"':
				appendStringInfoString(s, "&quot;");
				break;
			default:
				appendStringInfoChar(s, *v);
		}
	}
}

/* SQS's query-protocol codes, where they differ from the JSON names */
static const char *
ep_legacy_code(const char *code)
{
	static const char *const map[][2] = {
		{"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"},
		{"QueueNameExists", "QueueAlreadyExists"},
		{"QueueDeletedRecently", "AWS.SimpleQueueService.QueueDeletedRecently"},
		{"MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"},
		{"PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress"},
		{"EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest"},
		{"TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"},
		{"InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId"},
		{"BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
		{"BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong"},
		{"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"},
	};
	int			i;

	for (i = 0; i < lengthof(map); i++)
		if (strcmp(map[i][0], code) == 0)
			return map[i][1];
	return code;
}

/* ------------------------------------------------------------------------
 * The actions: one statement each, $1 the request, $2 the queue URL prefix
 * ------------------------------------------------------------------------
 */

#define EP_URL(expr) "$2 OPERATOR(pg_catalog.||) pg_catalog.substring(" expr ", '[^/]*$')"
#define EP_NAMES(key) \
	"COALESCE(ARRAY(SELECT pg_catalog.jsonb_array_elements_text($1->'" key "')), '{}')"
#define EP_STRINGS(expr) \
	"(SELECT COALESCE(pg_catalog.jsonb_object_agg(key, value #>> '{}'), '{}') FROM pg_catalog.jsonb_each(" expr "))"
#define EP_BATCH_RESULT \
	"SELECT pg_catalog.jsonb_build_object(" \
	"  'Successful', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('Id', id))" \
	"                  FILTER (WHERE error_code IS NULL), '[]')," \
	"  'Failed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('Id', id, 'Code', error_code," \
	"                  'Message', error_message, 'SenderFault', sender_fault))" \
	"                  FILTER (WHERE error_code IS NOT NULL), '[]'))"

/* SNS: the map of a form's Name.entry.N.key / .value pairs, as jsonb */
#define EP_SNS_MAP(name) \
	"COALESCE((SELECT pg_catalog.jsonb_object_agg(k.value, v.value)" \
	"   FROM pg_catalog.jsonb_each_text($1) k JOIN pg_catalog.jsonb_each_text($1) v" \
	"     ON v.key OPERATOR(pg_catalog.=) pg_catalog.regexp_replace(k.key, 'key$', 'value')" \
	"  WHERE k.key OPERATOR(pg_catalog.~) '^" name "\\.entry\\.[0-9]+\\.key$'), '{}')"
/* the query protocol's <ActionResult> of a batch: entries, then errors */
#define EP_Q_BATCH_RESULT(action) \
	"SELECT xmlelement(name \"" action "Result\", pg_catalog.xmlagg(CASE WHEN error_code IS NULL" \
	"   THEN xmlelement(name \"" action "ResultEntry\", xmlelement(name \"Id\", id))" \
	"   ELSE xmlelement(name \"BatchResultErrorEntry\", xmlelement(name \"Id\", id), xmlelement(name \"Code\", error_code)," \
	"          xmlelement(name \"Message\", error_message), xmlelement(name \"SenderFault\", sender_fault)) END))::pg_catalog.text"
/* SNS's Tags.member.N.Key / Value, as a jsonb map (NULL when none) */
#define EP_SNS_TAGS \
	"(SELECT pg_catalog.jsonb_object_agg(k.value, COALESCE(v.value, ''))" \
	"   FROM pg_catalog.jsonb_each_text($1) k LEFT JOIN pg_catalog.jsonb_each_text($1) v" \
	"     ON v.key OPERATOR(pg_catalog.=) pg_catalog.regexp_replace(k.key, 'Key$', 'Value')" \
	"  WHERE k.key OPERATOR(pg_catalog.~) '^Tags\\.member\\.[0-9]+\\.Key$')"
/* the query protocol's list Prefix.N.Name / Prefix.N.Value, as a jsonb map */
#define EP_Q_PAIRS(prefix, name, value) \
	"COALESCE((SELECT pg_catalog.jsonb_object_agg(k.value, v.value)" \
	"   FROM pg_catalog.jsonb_each_text($1) k JOIN pg_catalog.jsonb_each_text($1) v" \
	"     ON v.key OPERATOR(pg_catalog.=) pg_catalog.regexp_replace(k.key, '" name "$', '" value "')" \
	"  WHERE k.key OPERATOR(pg_catalog.~) '^" prefix "\\.[0-9]+\\." name "$'), '{}')"
#define EP_Q_MAP(prefix) EP_Q_PAIRS(prefix, "Name", "Value")
/* the query protocol's list Prefix.N, as a text[] */
#define EP_Q_LIST(prefix) \
	"ARRAY(SELECT value FROM pg_catalog.jsonb_each_text($1)" \
	"  WHERE key OPERATOR(pg_catalog.~) '^" prefix "\\.[0-9]+$')"
/* the query protocol's message attributes Prefix.N.Name / .Value.DataType ... */
/* one attribute's value, its fields under the key prefix x.p */
#define EP_Q_ATTR_VALUE \
	"pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(" \
	"   'DataType', $1->>(x.p OPERATOR(pg_catalog.||) 'Value.DataType')," \
	"   'StringValue', $1->>(x.p OPERATOR(pg_catalog.||) 'Value.StringValue')," \
	"   'BinaryValue', $1->>(x.p OPERATOR(pg_catalog.||) 'Value.BinaryValue')))"
#define EP_Q_MSG_ATTRS(prefix) \
	"NULLIF((SELECT pg_catalog.jsonb_object_agg(n.value, " EP_Q_ATTR_VALUE ")" \
	"   FROM pg_catalog.jsonb_each_text($1) n," \
	"        LATERAL (SELECT pg_catalog.substring(n.key, '^(" prefix "\\.[0-9]+\\.)Name$') AS p) x" \
	"  WHERE x.p IS NOT NULL), '{}')"
/* a batch's entries Prefix.N.Field as a jsonb array of objects */
#define EP_Q_ENTRY_ROWS(prefix) \
	"(SELECT (pg_catalog.regexp_match(key, '^" prefix "\\.([0-9]+)\\.'))[1]::pg_catalog.int4 AS i," \
	"        pg_catalog.jsonb_object_agg(pg_catalog.regexp_replace(key, '^" prefix "\\.[0-9]+\\.', ''), value) AS e" \
	"   FROM pg_catalog.jsonb_each_text($1) WHERE key OPERATOR(pg_catalog.~) '^" prefix "\\.[0-9]+\\.[A-Za-z]+$'" \
	"  GROUP BY 1)"
#define EP_Q_ENTRIES(prefix) \
	"(SELECT pg_catalog.jsonb_agg(e ORDER BY i) FROM " EP_Q_ENTRY_ROWS(prefix) " b)"
/* the same, NULL when empty (SNS's functions then name the parameter) */
#define EP_Q_SOME(prefix) \
	"(SELECT CASE WHEN pg_catalog.cardinality(a) OPERATOR(pg_catalog.>) 0 THEN a END" \
	"   FROM (SELECT " EP_Q_LIST(prefix) " AS a) q)"
#define EP_Q_URL(expr) "$2 OPERATOR(pg_catalog.||) pg_catalog.substring(" expr ", '[^/]*$')"
/* EP_Q_ENTRIES with each entry's Prefix.N.MessageAttributes.entry.M.Name/Value.* */
#define EP_Q_ENTRIES_ATTRS(prefix) \
	"(SELECT pg_catalog.jsonb_agg(b.e OPERATOR(pg_catalog.||) COALESCE((" \
	"     SELECT pg_catalog.jsonb_build_object('MessageAttributes'," \
	"        pg_catalog.jsonb_object_agg(n.value, " EP_Q_ATTR_VALUE "))" \
	"       FROM pg_catalog.jsonb_each_text($1) n," \
	"            LATERAL (SELECT pg_catalog.substring(n.key, '^(" prefix "\\.' OPERATOR(pg_catalog.||) b.i" \
	"                OPERATOR(pg_catalog.||) '\\.MessageAttributes\\.entry\\.[0-9]+\\.)Name$') AS p) x" \
	"      WHERE x.p IS NOT NULL HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0), '{}') ORDER BY b.i)" \
	"   FROM " EP_Q_ENTRY_ROWS(prefix) " b)"

/* SNS: <Attributes><entry><key/><value/></entry>...</Attributes> of a jsonb map */
#define EP_SNS_ATTRS(expr) \
	"(SELECT xmlelement(name \"Attributes\", pg_catalog.xmlagg(xmlelement(name entry," \
	"   xmlelement(name key, a.key), xmlelement(name value, a.value)) ORDER BY a.key))" \
	"   FROM pg_catalog.jsonb_each_text(" expr ") a)"
/* SNS: one <member> of a subscription list */
#define EP_SNS_SUB \
	"xmlelement(name member, xmlelement(name \"SubscriptionArn\", subscription_arn)," \
	" xmlelement(name \"Owner\", owner), xmlelement(name \"Protocol\", protocol)," \
	" xmlelement(name \"Endpoint\", CASE WHEN protocol OPERATOR(pg_catalog.=) 'sqs'" \
	"   AND endpoint OPERATOR(pg_catalog.!~~) 'arn:%' THEN 'arn:aws:sqs:msgq:' OPERATOR(pg_catalog.||)" \
	"   pg_catalog.current_database() OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) endpoint" \
	"   ELSE endpoint END), xmlelement(name \"TopicArn\", topic_arn))"

/*
 * Paging.  A NextToken is opaque to clients: the URL-safe base64 (without
 * padding) of a kind ("q:" queues, "t:" topics, "s:" subscriptions) and
 * the sort key of the last item returned, bytes in byte order.  Each
 * statement computes its page size and where it starts in one row "p"
 * (p.lim, p.after), then its page in "l" (EP_PAGE): the first p.lim rows of
 * source in key order, with l.total (how many there were) and l.last (the
 * key of the page's last row); each aggregate of aggs carries EP_IN_PAGE.
 */
#define EP_B64(bytes) \
	"pg_catalog.translate(pg_catalog.encode(" bytes ", 'base64'), E'+/=\\n', '-_')"
#define EP_TOKEN(kind, bytes) EP_B64("'" kind ":'::pg_catalog.bytea OPERATOR(pg_catalog.||) " bytes)
#define EP_TOKEN_OK \
	"($1->>'NextToken' OPERATOR(pg_catalog.~) '^[A-Za-z0-9_-]+$'" \
	"  AND (pg_catalog.length($1->>'NextToken') OPERATOR(pg_catalog.%) 4) OPERATOR(pg_catalog.<>) 1)"
#define EP_TOKEN_BYTES \
	"pg_catalog.decode(pg_catalog.translate($1->>'NextToken', '-_', '+/') OPERATOR(pg_catalog.||)" \
	"  pg_catalog.repeat('=', (4 OPERATOR(pg_catalog.-) (pg_catalog.length($1->>'NextToken') OPERATOR(pg_catalog.%) 4))" \
	"                         OPERATOR(pg_catalog.%) 4), 'base64')"
/* an AWS error raised by a statement: code and message (an expression) */
#define EP_FAIL(code, message) "msgq._endpoint_error('" code "', " message ")"
/* the key a request's NextToken of that kind resumes after; NULL without one */
#define EP_AFTER(kind, fail) \
	"(CASE WHEN $1->>'NextToken' IS NULL THEN NULL" \
	"  WHEN NOT " EP_TOKEN_OK " THEN " fail "::pg_catalog.bytea" \
	"  WHEN pg_catalog.substr(" EP_TOKEN_BYTES ", 1, 2) OPERATOR(pg_catalog.=) '" kind ":'::pg_catalog.bytea" \
	"    THEN pg_catalog.substr(" EP_TOKEN_BYTES ", 3)" \
	"  ELSE " fail "::pg_catalog.bytea END)"
#define EP_IN_PAGE " FILTER (WHERE n OPERATOR(pg_catalog.<=) p.lim)"
#define EP_PAGE(aggs, key, source) \
	" LATERAL (SELECT " aggs ", pg_catalog.count(*) AS total," \
	"   (pg_catalog.array_agg(" key ") FILTER (WHERE n OPERATOR(pg_catalog.=) p.lim))[1] AS last" \
	"   FROM (SELECT *, pg_catalog.row_number() OVER (ORDER BY " key ") AS n FROM " source ") x) l"
#define EP_MORE "l.total OPERATOR(pg_catalog.>) p.lim"

/*
 * SQS's ListQueues and ListDeadLetterSourceQueues: MaxResults 1-1000, and
 * a NextToken only when MaxResults was given (as AWS); agg aggregates the
 * URLs of the names u that source yields.
 */
#define EP_SQS_PAGE(agg, source) \
	" FROM (SELECT CASE WHEN $1->>'MaxResults' IS NULL THEN 1000" \
	"         WHEN ($1->>'MaxResults')::pg_catalog.int4 OPERATOR(pg_catalog.<) 1" \
	"           OR ($1->>'MaxResults')::pg_catalog.int4 OPERATOR(pg_catalog.>) 1000" \
	"         THEN " EP_FAIL("InvalidParameterValue", \
						   "pg_catalog.format('value %s for parameter MaxResults is invalid: must be between 1 and 1000, if provided', $1->>'MaxResults')") \
	"::pg_catalog.int4" \
	"         ELSE ($1->>'MaxResults')::pg_catalog.int4 END AS lim," \
	"       " EP_AFTER("q", EP_FAIL("InvalidParameterValue", "'invalid NextToken value'")) " AS after) p," \
	EP_PAGE(agg EP_IN_PAGE " AS urls", "pg_catalog.convert_to(u, 'UTF8')", source)
#define EP_SQS_MORE "$1->>'MaxResults' IS NOT NULL AND " EP_MORE
#define EP_Q_NEXT "CASE WHEN " EP_SQS_MORE " THEN xmlelement(name \"NextToken\", " EP_TOKEN("q", "l.last") ") END"
#define EP_SQS_DLQ_SOURCES \
	"(SELECT pg_catalog.substring(d, '[^/]*$') AS u FROM msgq.list_dead_letter_source_queues($1->>'QueueUrl') d) d" \
	" WHERE p.after IS NULL OR pg_catalog.convert_to(u, 'UTF8') OPERATOR(pg_catalog.>) p.after"
#define EP_SQS_QUEUES "msgq._list_queues_after($1->>'QueueNamePrefix', pg_catalog.convert_from(p.after, 'UTF8')) u"

/* SNS's lists: 100 a page; key is the sort key of source's rows */
#define EP_SNS_PAGE(kind, agg, key, source) \
	" FROM (SELECT 100 AS lim, " EP_AFTER(kind, EP_FAIL("InvalidParameter", "'Invalid parameter: NextToken'")) " AS after) p," \
	EP_PAGE(agg EP_IN_PAGE " AS items", key, source " WHERE p.after IS NULL OR " key " OPERATOR(pg_catalog.>) p.after")
#define EP_SNS_NEXT(kind) \
	"CASE WHEN " EP_MORE " THEN xmlelement(name \"NextToken\", " EP_TOKEN(kind, "l.last") ") END"
#define EP_SNS_SUB_KEY \
	"pg_catalog.convert_to(pg_catalog.concat_ws(' ', topic_arn, subscription_arn, protocol, endpoint), 'UTF8')"

/*
 * Kinesis: a stream by StreamName or StreamARN; the NextToken of
 * ListStreams ("lt"), ListShards ("ls") and ListStreamConsumers ("lc") is
 * the base64 of its kind, the time it was issued (msgq's clock, epoch
 * seconds) and what it resumes after, and it expires after 300 s, as AWS's.
 */
#define EP_STREAM \
	"COALESCE($1->>'StreamName', pg_catalog.substring($1->>'StreamARN', '^arn:[^:]*:kinesis:.*:stream/([^/]+)$')," \
	"         $1->>'StreamARN')"
#define EP_STREAM_ARN(name) \
	"'arn:aws:kinesis:msgq:' OPERATOR(pg_catalog.||) pg_catalog.current_database() OPERATOR(pg_catalog.||)" \
	" ':stream/' OPERATOR(pg_catalog.||) " name
#define EP_EPOCH(text) "pg_catalog.date_part('epoch', (" text ")::pg_catalog.timestamptz)"
#define EP_KTOKEN(kind, rest) \
	EP_B64("pg_catalog.convert_to('" kind " ' OPERATOR(pg_catalog.||)" \
		   " pg_catalog.floor(pg_catalog.date_part('epoch', msgq.now()))::pg_catalog.int8::pg_catalog.text" \
		   " OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) " rest ", 'UTF8')")
/* a request's NextToken of that kind: {issued, the parts of re}, or NULL */
#define EP_KAFTER(kind, re) \
	"(SELECT CASE WHEN $1->>'NextToken' IS NULL THEN NULL" \
	"   WHEN t.m IS NULL THEN " EP_FAIL("InvalidArgumentException", "'invalid NextToken'") "::pg_catalog.text[]" \
	"   WHEN t.m[1]::pg_catalog.float8 OPERATOR(pg_catalog.<)" \
	"        (pg_catalog.date_part('epoch', msgq.now()) OPERATOR(pg_catalog.-) 300)" \
	"     THEN " EP_FAIL("ExpiredNextTokenException", "'the NextToken has expired: a token is valid for 300 seconds'") \
	"::pg_catalog.text[]" \
	"   ELSE t.m END" \
	"  FROM (SELECT CASE WHEN " EP_TOKEN_OK " THEN pg_catalog.regexp_match(pg_catalog.encode(" EP_TOKEN_BYTES ", 'escape')," \
	"        '^" kind " ([0-9]{1,15}) " re "$') END AS m) t)"
#define EP_KNAME "([A-Za-z0-9_.-]{1,128})"
/* what a ListShards with a NextToken must not have, as AWS */
#define EP_NOT_WITH_TOKEN "StreamName,StreamARN,ExclusiveStartShardId,ShardFilter,StreamCreationTimestamp"
/* a page size: key (1-10000), at most page, dflt without one */
#define EP_KLIMIT(key, dflt, page) \
	"CASE WHEN COALESCE(($1->>'" key "')::pg_catalog.int4, " dflt ") OPERATOR(pg_catalog.<) 1" \
	"       OR COALESCE(($1->>'" key "')::pg_catalog.int4, " dflt ") OPERATOR(pg_catalog.>) 10000" \
	"  THEN " EP_FAIL("InvalidArgumentException", "pg_catalog.format('" key " must be between 1 and 10000, not %s', $1->>'" key "')") \
	"::pg_catalog.int4" \
	"  ELSE LEAST(COALESCE(($1->>'" key "')::pg_catalog.int4, " dflt "), " page ") END"
#define EP_SHARD \
	"pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('ShardId', shard_id, 'ParentShardId', parent_shard_id," \
	"  'AdjacentParentShardId', adjacent_parent_shard_id," \
	"  'HashKeyRange', pg_catalog.jsonb_build_object('StartingHashKey', starting_hash_key::pg_catalog.text," \
	"     'EndingHashKey', ending_hash_key::pg_catalog.text)," \
	"  'SequenceNumberRange', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(" \
	"     'StartingSequenceNumber', starting_sequence_number::pg_catalog.text," \
	"     'EndingSequenceNumber', ending_sequence_number::pg_catalog.text))))"
/* a page of msgq.list_shards(args) in l.shards */
#define EP_SHARDS(args) \
	EP_PAGE("pg_catalog.jsonb_agg(" EP_SHARD " ORDER BY n)" EP_IN_PAGE " AS shards", "shard_id COLLATE \"C\"", \
			"msgq.list_shards(" args ")")
#define EP_STREAM_SUMMARY(name) \
	"(SELECT pg_catalog.jsonb_build_object('StreamName', d->'StreamName', 'StreamARN', d->'StreamARN'," \
	"   'StreamStatus', d->'StreamStatus', 'StreamModeDetails', d->'StreamModeDetails'," \
	"   'StreamCreationTimestamp', " EP_EPOCH("d->>'StreamCreationTimestamp'") ")" \
	"  FROM msgq.describe_stream_summary(" name ") d)"
#define EP_CONSUMER \
	"pg_catalog.jsonb_build_object('ConsumerName', consumer_name, 'ConsumerARN', consumer_arn," \
	"  'ConsumerStatus', consumer_status," \
	"  'ConsumerCreationTimestamp', pg_catalog.date_part('epoch', consumer_creation_timestamp))"
/* a consumer by ConsumerARN, or by StreamARN (StreamName) and ConsumerName */
#define EP_CONSUMER_STREAM \
	"COALESCE(pg_catalog.substring($1->>'ConsumerARN', ':stream/([^/]+)/consumer/'), " EP_STREAM ")"
#define EP_CONSUMER_NAME \
	"COALESCE(pg_catalog.substring($1->>'ConsumerARN', '/consumer/([^/:]+)'), $1->>'ConsumerName')"

typedef struct EpAction
{
	const char *service;		/* the X-Amz-Target prefix */
	const char *name;
	const char *sql;
} EpAction;


static const EpAction ep_actions[] = {
	{SQS, "CreateQueue",
		"WITH c AS (SELECT msgq.create_queue($1->>'QueueName', COALESCE($1->'Attributes', '{}')) AS u),"
		"     t AS (SELECT msgq.tag_queue($1->>'QueueName', $1->'tags') FROM c WHERE $1 ? 'tags')"
		" SELECT pg_catalog.jsonb_build_object('QueueUrl', " EP_URL("c.u") ")"
		"   FROM c, (SELECT pg_catalog.count(*) FROM t) tt"},
	{SQS, "GetQueueUrl",
		"SELECT pg_catalog.jsonb_build_object('QueueUrl', " EP_URL("msgq.get_queue_url($1->>'QueueName')") ")"},
	{SQS, "ListQueues",
		"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('QueueUrls', COALESCE(l.urls, '[]'),"
		"       'NextToken', CASE WHEN " EP_SQS_MORE " THEN " EP_TOKEN("q", "l.last") " END))"
		EP_SQS_PAGE("pg_catalog.jsonb_agg(" EP_URL("u") " ORDER BY n)", EP_SQS_QUEUES)},
	{SQS, "DeleteQueue",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.delete_queue($1->>'QueueUrl')"},
	{SQS, "PurgeQueue",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.purge_queue($1->>'QueueUrl')"},
	{SQS, "GetQueueAttributes",
		"SELECT pg_catalog.jsonb_build_object('Attributes', CASE WHEN $1 ? 'AttributeNames' THEN "
		EP_STRINGS("msgq.get_queue_attributes($1->>'QueueUrl', " EP_NAMES("AttributeNames") ")")
		" ELSE '{}' END)"},
	{SQS, "SetQueueAttributes",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.set_queue_attributes($1->>'QueueUrl', $1->'Attributes')"},
	{SQS, "TagQueue",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.tag_queue($1->>'QueueUrl', $1->'Tags')"},
	{SQS, "UntagQueue",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.untag_queue($1->>'QueueUrl', " EP_NAMES("TagKeys") ")"},
	{SQS, "ListQueueTags",
		"SELECT pg_catalog.jsonb_build_object('Tags', msgq.list_queue_tags($1->>'QueueUrl'))"},
	{SQS, "ListDeadLetterSourceQueues",
		"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('queueUrls', COALESCE(l.urls, '[]'),"
		"       'NextToken', CASE WHEN " EP_SQS_MORE " THEN " EP_TOKEN("q", "l.last") " END))"
		EP_SQS_PAGE("pg_catalog.jsonb_agg(" EP_URL("u") " ORDER BY n)", EP_SQS_DLQ_SOURCES)},
	{SQS, "AddPermission",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.add_permission($1->>'QueueUrl', $1->>'Label',"
		"       " EP_NAMES("AWSAccountIds") ", " EP_NAMES("Actions") ")"},
	{SQS, "RemovePermission",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.remove_permission($1->>'QueueUrl', $1->>'Label')"},
	{SQS, "StartMessageMoveTask",
		"SELECT pg_catalog.jsonb_build_object('TaskHandle', msgq.start_message_move_task($1->>'SourceArn',"
		"       $1->>'DestinationArn', ($1->>'MaxNumberOfMessagesPerSecond')::pg_catalog.int4))"},
	{SQS, "CancelMessageMoveTask",
		"SELECT pg_catalog.jsonb_build_object('ApproximateNumberOfMessagesMoved',"
		"       msgq.cancel_message_move_task($1->>'TaskHandle'))"},
	{SQS, "ListMessageMoveTasks",
		"SELECT pg_catalog.jsonb_build_object('Results', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls("
		"   pg_catalog.jsonb_build_object('TaskHandle', t.task_handle, 'Status', t.status, 'SourceArn', t.source_arn,"
		"     'DestinationArn', t.destination_arn, 'MaxNumberOfMessagesPerSecond', t.max_number_of_messages_per_second,"
		"     'ApproximateNumberOfMessagesMoved', t.approximate_number_of_messages_moved,"
		"     'ApproximateNumberOfMessagesToMove', t.approximate_number_of_messages_to_move,"
		"     'FailureReason', t.failure_reason, 'StartedTimestamp', t.started_timestamp)) ORDER BY t.ordinality), '[]'))"
		"  FROM msgq.list_message_move_tasks($1->>'SourceArn', COALESCE(($1->>'MaxResults')::pg_catalog.int4, 1))"
		"       WITH ORDINALITY t"},
	{SQS, "SendMessage",
		"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('MessageId', m.message_id,"
		"   'MD5OfMessageBody', m.md5_of_message_body, 'MD5OfMessageAttributes', m.md5_of_message_attributes,"
		"   'SequenceNumber', m.sequence_number::pg_catalog.text))"
		"  FROM msgq.send_message($1->>'QueueUrl', $1->>'MessageBody', ($1->>'DelaySeconds')::pg_catalog.int4,"
		"                         ($1->'MessageAttributes')::pg_catalog.json, $1->>'MessageGroupId',"
		"                         $1->>'MessageDeduplicationId') m"},
	{SQS, "SendMessageBatch",
		"SELECT pg_catalog.jsonb_build_object("
		"  'Successful', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
		"      'Id', id, 'MessageId', message_id, 'MD5OfMessageBody', md5_of_message_body,"
		"      'MD5OfMessageAttributes', md5_of_message_attributes,"
		"      'SequenceNumber', sequence_number::pg_catalog.text))) FILTER (WHERE error_code IS NULL), '[]'),"
		"  'Failed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('Id', id, 'Code', error_code,"
		"      'Message', error_message, 'SenderFault', sender_fault)) FILTER (WHERE error_code IS NOT NULL), '[]'))"
		"  FROM msgq.send_message_batch($1->>'QueueUrl', ($1->'Entries')::pg_catalog.json)"},
	{SQS, "ReceiveMessage",
		"SELECT CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 0 THEN '{}'::pg_catalog.jsonb"
		"  ELSE pg_catalog.jsonb_build_object('Messages', pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls("
		"   pg_catalog.jsonb_build_object('MessageId', r.message_id, 'ReceiptHandle', r.receipt_handle,"
		"     'MD5OfBody', r.md5_of_body, 'Body', r.body,"
		"     'Attributes', CASE WHEN r.attributes OPERATOR(pg_catalog.<>) '{}' THEN " EP_STRINGS("r.attributes") " END,"
		"     'MessageAttributes', NULLIF(r.message_attributes, '{}'))))) END"
		"  FROM msgq.receive_message($1->>'QueueUrl', COALESCE(($1->>'MaxNumberOfMessages')::pg_catalog.int4, 1),"
		"       ($1->>'VisibilityTimeout')::pg_catalog.int4, 0, " EP_NAMES("MessageAttributeNames") ","
		"       " EP_NAMES("AttributeNames") " OPERATOR(pg_catalog.||) " EP_NAMES("MessageSystemAttributeNames") ","
		"       $1->>'ReceiveRequestAttemptId') r"},
	{SQS, "DeleteMessage",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.delete_message($1->>'QueueUrl', $1->>'ReceiptHandle')"},
	{SQS, "DeleteMessageBatch",
		EP_BATCH_RESULT " FROM msgq.delete_message_batch($1->>'QueueUrl', $1->'Entries')"},
	{SQS, "ChangeMessageVisibility",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.change_message_visibility($1->>'QueueUrl', $1->>'ReceiptHandle',"
		"       ($1->>'VisibilityTimeout')::pg_catalog.int4)"},
	{SQS, "ChangeMessageVisibilityBatch",
		EP_BATCH_RESULT " FROM msgq.change_message_visibility_batch($1->>'QueueUrl', $1->'Entries')"},

	/* Kinesis Data Streams (AWS JSON 1.1): blobs in base64, times in epoch seconds */
	{KINESIS, "CreateStream",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.create_stream($1->>'StreamName', ($1->>'ShardCount')::pg_catalog.int4,"
		"       COALESCE($1#>>'{StreamModeDetails,StreamMode}', 'PROVISIONED'))"},
	{KINESIS, "DeleteStream",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.delete_stream(" EP_STREAM ")"},
	{KINESIS, "ListStreams",
		"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('StreamNames', COALESCE(l.names, '[]'),"
		"       'HasMoreStreams', " EP_MORE ","
		"       'NextToken', CASE WHEN " EP_MORE " THEN " EP_KTOKEN("lt", "l.last") " END,"
		"       'StreamSummaries', COALESCE(l.summaries, '[]')))"
		"  FROM (SELECT " EP_KLIMIT("Limit", "100", "100") " AS lim,"
		"          CASE WHEN t.m IS NULL THEN $1->>'ExclusiveStartStreamName'"
		"            WHEN $1->>'ExclusiveStartStreamName' IS NOT NULL"
		"              THEN " EP_FAIL("InvalidArgumentException", "'NextToken and ExclusiveStartStreamName cannot be provided together.'")
		"            ELSE t.m[2] END AS after"
		"          FROM (SELECT " EP_KAFTER("lt", EP_KNAME) " AS m) t) p,"
		EP_PAGE("pg_catalog.jsonb_agg(s ORDER BY n)" EP_IN_PAGE " AS names,"
				" pg_catalog.jsonb_agg(" EP_STREAM_SUMMARY("s") " ORDER BY n)" EP_IN_PAGE " AS summaries",
				"s COLLATE \"C\"",
				"msgq.list_streams() s WHERE p.after IS NULL OR s COLLATE \"C\" OPERATOR(pg_catalog.>) p.after")},
	{KINESIS, "DescribeStreamSummary",
		"SELECT pg_catalog.jsonb_build_object('StreamDescriptionSummary', d OPERATOR(pg_catalog.||)"
		"       pg_catalog.jsonb_build_object('StreamCreationTimestamp', " EP_EPOCH("d->>'StreamCreationTimestamp'") "))"
		"  FROM msgq.describe_stream_summary(" EP_STREAM ") d"},
	{KINESIS, "DescribeStream",
		"SELECT pg_catalog.jsonb_build_object('StreamDescription', pg_catalog.jsonb_build_object("
		"   'StreamName', d->'StreamName', 'StreamARN', d->'StreamARN', 'StreamStatus', d->'StreamStatus',"
		"   'StreamModeDetails', d->'StreamModeDetails', 'Shards', COALESCE(l.shards, '[]'),"
		"   'HasMoreShards', " EP_MORE ", 'RetentionPeriodHours', d->'RetentionPeriodHours',"
		"   'StreamCreationTimestamp', " EP_EPOCH("d->>'StreamCreationTimestamp'") ","
		"   'EnhancedMonitoring', d->'EnhancedMonitoring', 'EncryptionType', d->'EncryptionType'))"
		"  FROM (SELECT " EP_KLIMIT("Limit", "100", "100") " AS lim) p, msgq.describe_stream_summary(" EP_STREAM ") d,"
		EP_SHARDS(EP_STREAM ", $1->>'ExclusiveStartShardId', p.lim OPERATOR(pg_catalog.+) 1")},
	{KINESIS, "ListShards",
		"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('Shards', COALESCE(l.shards, '[]'),"
		"       'NextToken', CASE WHEN " EP_MORE " THEN "
		EP_KTOKEN("ls", "p.stream OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) l.last") " END))"
		"  FROM (SELECT CASE WHEN t.m IS NULL THEN " EP_STREAM
		"            WHEN $1 ?| '{" EP_NOT_WITH_TOKEN "}'"
		"              THEN " EP_FAIL("InvalidArgumentException",
								   "pg_catalog.format('NextToken and %s cannot be provided together.',"
								   " (SELECT k FROM pg_catalog.unnest('{" EP_NOT_WITH_TOKEN "}'::pg_catalog.text[])"
								   "   WITH ORDINALITY u(k, i) WHERE $1 ? k ORDER BY i LIMIT 1))")
		"            ELSE t.m[2] END AS stream,"
		"          CASE WHEN t.m IS NULL THEN $1->>'ExclusiveStartShardId' ELSE t.m[3] END AS start,"
		"          " EP_KLIMIT("MaxResults", "1000", "1000") " AS lim"
		"          FROM (SELECT " EP_KAFTER("ls", EP_KNAME " (shardId-[0-9]{12})") " AS m) t) p,"
		EP_SHARDS("p.stream, p.start, p.lim OPERATOR(pg_catalog.+) 1, $1#>>'{ShardFilter,Type}',"
				  " $1#>>'{ShardFilter,ShardId}', pg_catalog.to_timestamp(($1#>>'{ShardFilter,Timestamp}')::pg_catalog.float8)")},
	{KINESIS, "PutRecord",
		"SELECT pg_catalog.jsonb_build_object('ShardId', p.shard_id, 'SequenceNumber', p.sequence_number::pg_catalog.text)"
		"  FROM msgq.put_record(" EP_STREAM ", $1->>'PartitionKey',"
		"       pg_catalog.decode($1->>'Data', 'base64'), $1->>'ExplicitHashKey',"
		"       ($1->>'SequenceNumberForOrdering')::pg_catalog.numeric) p"},
	{KINESIS, "PutRecords",
		"SELECT pg_catalog.jsonb_build_object("
		"  'FailedRecordCount', pg_catalog.count(*) FILTER (WHERE error_code IS NOT NULL),"
		"  'Records', COALESCE(pg_catalog.jsonb_agg(CASE WHEN error_code IS NULL"
		"     THEN pg_catalog.jsonb_build_object('ShardId', shard_id, 'SequenceNumber', sequence_number::pg_catalog.text)"
		"     ELSE pg_catalog.jsonb_build_object('ErrorCode', error_code, 'ErrorMessage', error_message) END), '[]'))"
		"  FROM msgq.put_records(" EP_STREAM ", $1->'Records')"},
	{KINESIS, "GetShardIterator",
		"SELECT pg_catalog.jsonb_build_object('ShardIterator', msgq.get_shard_iterator("
		"       " EP_STREAM ", $1->>'ShardId', $1->>'ShardIteratorType',"
		"       ($1->>'StartingSequenceNumber')::pg_catalog.numeric,"
		"       pg_catalog.to_timestamp(($1->>'Timestamp')::pg_catalog.float8)))"},
	{KINESIS, "GetRecords",
		"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
		"  'Records', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
		"      'SequenceNumber', sequence_number::pg_catalog.text,"
		"      'ApproximateArrivalTimestamp', pg_catalog.date_part('epoch', approximate_arrival_timestamp),"
		"      'Data', pg_catalog.translate(pg_catalog.encode(data, 'base64'), E'\\n', ''),"
		"      'PartitionKey', partition_key) ORDER BY sequence_number) FILTER (WHERE sequence_number IS NOT NULL), '[]'),"
		"  'NextShardIterator', pg_catalog.max(next_shard_iterator),"
		"  'MillisBehindLatest', pg_catalog.max(millis_behind_latest),"
		"  'ChildShards', (pg_catalog.array_agg(child_shards))[1]))"
		"  FROM msgq.get_records($1->>'ShardIterator', COALESCE(($1->>'Limit')::pg_catalog.int4, 10000))"},
	{KINESIS, "SplitShard",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.split_shard(" EP_STREAM ","
		"       $1->>'ShardToSplit', $1->>'NewStartingHashKey')"},
	{KINESIS, "IncreaseStreamRetentionPeriod",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.increase_stream_retention_period(" EP_STREAM ","
		"       ($1->>'RetentionPeriodHours')::pg_catalog.int4)"},
	{KINESIS, "DecreaseStreamRetentionPeriod",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.decrease_stream_retention_period(" EP_STREAM ","
		"       ($1->>'RetentionPeriodHours')::pg_catalog.int4)"},
	{KINESIS, "UpdateShardCount",
		"SELECT r OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('StreamARN', " EP_STREAM_ARN("(r->>'StreamName')") ")"
		"  FROM msgq.update_shard_count(" EP_STREAM ", ($1->>'TargetShardCount')::pg_catalog.int4, $1->>'ScalingType') r"},
	{KINESIS, "UpdateStreamMode",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.update_stream_mode(" EP_STREAM ", $1#>>'{StreamModeDetails,StreamMode}')"},
	{KINESIS, "RegisterStreamConsumer",
		"SELECT pg_catalog.jsonb_build_object('Consumer', pg_catalog.jsonb_build_object('ConsumerName', $1->>'ConsumerName',"
		"       'ConsumerARN', a, 'ConsumerStatus', 'ACTIVE',"
		"       'ConsumerCreationTimestamp', pg_catalog.date_part('epoch', msgq.now())))"
		"  FROM msgq.register_stream_consumer(" EP_STREAM ", $1->>'ConsumerName') a"},
	{KINESIS, "DeregisterStreamConsumer",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.deregister_stream_consumer(" EP_CONSUMER_STREAM ", " EP_CONSUMER_NAME ")"},
	{KINESIS, "DescribeStreamConsumer",
		"SELECT COALESCE((SELECT pg_catalog.jsonb_build_object('ConsumerDescription', " EP_CONSUMER " OPERATOR(pg_catalog.||)"
		"         pg_catalog.jsonb_build_object('StreamARN', pg_catalog.substring(consumer_arn, '^(.*)/consumer/')))"
		"         FROM msgq.list_stream_consumers(" EP_CONSUMER_STREAM ")"
		"        WHERE consumer_name OPERATOR(pg_catalog.=) " EP_CONSUMER_NAME "),"
		"       " EP_FAIL("ResourceNotFoundException",
					   "pg_catalog.format('consumer \"%s\" of stream \"%s\" not found', " EP_CONSUMER_NAME ", " EP_CONSUMER_STREAM ")")
		"::pg_catalog.jsonb)"},
	{KINESIS, "ListStreamConsumers",
		"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('Consumers', COALESCE(l.consumers, '[]'),"
		"       'NextToken', CASE WHEN " EP_MORE " THEN "
		EP_KTOKEN("lc", "p.stream OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) l.last") " END))"
		"  FROM (SELECT COALESCE(t.m[2], " EP_STREAM ") AS stream, t.m[3] AS after,"
		"          " EP_KLIMIT("MaxResults", "100", "100") " AS lim"
		"          FROM (SELECT " EP_KAFTER("lc", EP_KNAME " " EP_KNAME) " AS m) t) p,"
		EP_PAGE("pg_catalog.jsonb_agg(" EP_CONSUMER " ORDER BY n)" EP_IN_PAGE " AS consumers", "consumer_name COLLATE \"C\"",
				"msgq.list_stream_consumers(p.stream) c"
				" WHERE p.after IS NULL OR consumer_name COLLATE \"C\" OPERATOR(pg_catalog.>) p.after")},
	{KINESIS, "MergeShards",
		"SELECT '{}'::pg_catalog.jsonb FROM msgq.merge_shards(" EP_STREAM ","
		"       $1->>'ShardToMerge', $1->>'AdjacentShardToMerge')"},
	/* one poll of a subscription: the payload of a SubscribeToShardEvent */
#define EP_SUB_STREAM "pg_catalog.substring($1->>'ConsumerARN', ':stream/([^/]+)/consumer/')"
	{KINESIS, "SubscribeToShard",
		"SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
		"  'Records', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
		"      'SequenceNumber', sequence_number::pg_catalog.text,"
		"      'ApproximateArrivalTimestamp', pg_catalog.date_part('epoch', approximate_arrival_timestamp),"
		"      'Data', pg_catalog.translate(pg_catalog.encode(data, 'base64'), E'\\n', ''),"
		"      'PartitionKey', partition_key) ORDER BY sequence_number) FILTER (WHERE sequence_number IS NOT NULL), '[]'),"
		/*
		 * AWS's continuation is the last record delivered (resubscribe
		 * AFTER_SEQUENCE_NUMBER it); msgq's is the next to read (shards'
		 * sequence numbers have no gaps): the one before, unless the shard
		 * begins there
		 */
		"  'ContinuationSequenceNumber', (CASE"
		"    WHEN pg_catalog.count(sequence_number) OPERATOR(pg_catalog.>) 0 THEN pg_catalog.max(sequence_number)"
		"    WHEN pg_catalog.max(continuation_sequence_number) OPERATOR(pg_catalog.>) (SELECT l.starting_sequence_number"
		"           FROM msgq.list_shards(pg_catalog.substring($1->>'ConsumerARN', ':stream/([^/]+)/consumer/')) l"
		"          WHERE l.shard_id OPERATOR(pg_catalog.=) ($1->>'ShardId'))"
		"      THEN pg_catalog.max(continuation_sequence_number) OPERATOR(pg_catalog.-) 1"
		"    ELSE pg_catalog.max(continuation_sequence_number) END)::pg_catalog.text,"
		"  'MillisBehindLatest', COALESCE(pg_catalog.max(millis_behind_latest), 0),"
		/* a closed shard read to its end: its children, and the stream ends */
		"  'ChildShards', CASE WHEN pg_catalog.count(sequence_number) OPERATOR(pg_catalog.=) 0 THEN"
		"    (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('ShardId', k.shard_id,"
		"        'ParentShards', pg_catalog.to_jsonb(pg_catalog.array_remove(ARRAY[k.parent_shard_id,"
		"            k.adjacent_parent_shard_id], NULL)),"
		"        'HashKeyRange', pg_catalog.jsonb_build_object('StartingHashKey', k.starting_hash_key::pg_catalog.text,"
		"            'EndingHashKey', k.ending_hash_key::pg_catalog.text)) ORDER BY k.shard_id)"
		"       FROM msgq.list_shards(" EP_SUB_STREAM ") me, msgq.list_shards(" EP_SUB_STREAM ") k"
		"      WHERE me.shard_id OPERATOR(pg_catalog.=) ($1->>'ShardId')"
		"        AND me.ending_sequence_number IS NOT NULL"
		"        AND pg_catalog.max(continuation_sequence_number) OPERATOR(pg_catalog.>) me.ending_sequence_number"
		"        AND (k.parent_shard_id OPERATOR(pg_catalog.=) me.shard_id"
		"             OR k.adjacent_parent_shard_id OPERATOR(pg_catalog.=) me.shard_id)) END))"
		"  FROM msgq.subscribe_to_shard(pg_catalog.substring($1->>'ConsumerARN', ':stream/([^/]+)/consumer/'),"
		"       pg_catalog.substring($1->>'ConsumerARN', '/consumer/([^:/]+)'), $1->>'ShardId',"
		"       COALESCE($1->'StartingPosition'->>'Type', 'LATEST'),"
		"       ($1->'StartingPosition'->>'SequenceNumber')::pg_catalog.numeric,"
		"       pg_catalog.to_timestamp(($1->'StartingPosition'->>'Timestamp')::pg_catalog.float8), 0, 10000)"},

	/*
	 * SNS (the query protocol): $1 is the form's fields, flat ("Attributes.entry.1.key");
	 * each statement returns its <ActionResult> element as text
	 */
	{SNS, "CreateTopic",
		"WITH c AS (SELECT msgq.create_topic($1->>'Name', " EP_SNS_MAP("Attributes") ") AS arn),"
		"     t AS (SELECT msgq.tag_topic(c.arn, " EP_SNS_TAGS " ) FROM c WHERE $1 ? 'Tags.member.1.Key')"
		" SELECT xmlelement(name \"CreateTopicResult\", xmlelement(name \"TopicArn\", c.arn))::pg_catalog.text"
		"   FROM c, (SELECT pg_catalog.count(*) FROM t) tt"},
	{SNS, "TagResource",
		"SELECT '' FROM msgq.tag_topic($1->>'ResourceArn', " EP_SNS_TAGS ")"},
	{SNS, "UntagResource",
		"SELECT '' FROM msgq.untag_topic($1->>'ResourceArn', " EP_Q_LIST("TagKeys\\.member") ")"},
	{SNS, "ListTagsForResource",
		"SELECT xmlelement(name \"ListTagsForResourceResult\", xmlelement(name \"Tags\","
		"       (SELECT pg_catalog.xmlagg(xmlelement(name member, xmlelement(name \"Key\", t.key),"
		"               xmlelement(name \"Value\", t.value)) ORDER BY t.key)"
		"          FROM pg_catalog.jsonb_each_text(msgq.list_topic_tags($1->>'ResourceArn')) t)))::pg_catalog.text"},
	{SNS, "DeleteTopic",
		"SELECT '' FROM msgq.delete_topic($1->>'TopicArn')"},
	{SNS, "ListTopics",
		"SELECT xmlelement(name \"ListTopicsResult\", xmlelement(name \"Topics\", l.items), " EP_SNS_NEXT("t") ")::pg_catalog.text"
		EP_SNS_PAGE("t", "pg_catalog.xmlagg(xmlelement(name member, xmlelement(name \"TopicArn\", t)) ORDER BY n)",
					"pg_catalog.convert_to(t, 'UTF8')", "msgq.list_topics() t")},
	{SNS, "GetTopicAttributes",
		"SELECT xmlelement(name \"GetTopicAttributesResult\", " EP_SNS_ATTRS("msgq.get_topic_attributes($1->>'TopicArn')") ")::pg_catalog.text"},
	{SNS, "SetTopicAttributes",
		"SELECT '' FROM msgq.set_topic_attributes($1->>'TopicArn', $1->>'AttributeName', $1->>'AttributeValue')"},
	{SNS, "Subscribe",
		"SELECT xmlelement(name \"SubscribeResult\", xmlelement(name \"SubscriptionArn\","
		"       msgq.subscribe($1->>'TopicArn', $1->>'Protocol', $1->>'Endpoint', " EP_SNS_MAP("Attributes") ")))::pg_catalog.text"},
	{SNS, "Unsubscribe",
		"SELECT '' FROM msgq.unsubscribe($1->>'SubscriptionArn')"},
	{SNS, "ListSubscriptions",
		"SELECT xmlelement(name \"ListSubscriptionsResult\", xmlelement(name \"Subscriptions\", l.items),"
		"       " EP_SNS_NEXT("s") ")::pg_catalog.text"
		EP_SNS_PAGE("s", "pg_catalog.xmlagg(" EP_SNS_SUB " ORDER BY n)", EP_SNS_SUB_KEY, "msgq.list_subscriptions()")},
	{SNS, "ListSubscriptionsByTopic",
		"SELECT xmlelement(name \"ListSubscriptionsByTopicResult\", xmlelement(name \"Subscriptions\", l.items),"
		"       " EP_SNS_NEXT("s") ")::pg_catalog.text"
		EP_SNS_PAGE("s", "pg_catalog.xmlagg(" EP_SNS_SUB " ORDER BY n)", EP_SNS_SUB_KEY,
					"msgq.list_subscriptions_by_topic($1->>'TopicArn')")},
	{SNS, "ConfirmSubscription",
		"SELECT xmlelement(name \"ConfirmSubscriptionResult\", xmlelement(name \"SubscriptionArn\","
		"       msgq.confirm_subscription($1->>'TopicArn', $1->>'Token',"
		"         CASE WHEN $1->>'AuthenticateOnUnsubscribe' IS NULL THEN NULL"
		"           WHEN pg_catalog.lower($1->>'AuthenticateOnUnsubscribe') OPERATOR(pg_catalog.=) ANY ('{true,false}')"
		"             THEN ($1->>'AuthenticateOnUnsubscribe')::pg_catalog.bool"
		"           ELSE " EP_FAIL("InvalidParameter", "'Invalid parameter: AuthenticateOnUnsubscribe'") "::pg_catalog.bool END)))"
		"       ::pg_catalog.text"},
	{SNS, "AddPermission",
		"SELECT '' FROM msgq.add_permission($1->>'TopicArn', $1->>'Label'," EP_Q_SOME("AWSAccountId\\.member") ","
		"       " EP_Q_SOME("ActionName\\.member") ")"},
	{SNS, "RemovePermission",
		"SELECT '' FROM msgq.remove_permission($1->>'TopicArn', $1->>'Label')"},
	{SNS, "GetSubscriptionAttributes",
		"SELECT xmlelement(name \"GetSubscriptionAttributesResult\", "
		EP_SNS_ATTRS("msgq.get_subscription_attributes($1->>'SubscriptionArn')") ")::pg_catalog.text"},
	{SNS, "SetSubscriptionAttributes",
		"SELECT '' FROM msgq.set_subscription_attributes($1->>'SubscriptionArn', $1->>'AttributeName',"
		"       $1->>'AttributeValue')"},
	{SNS, "PublishBatch",
		"SELECT xmlelement(name \"PublishBatchResult\","
		"  xmlelement(name \"Successful\", pg_catalog.xmlagg(xmlelement(name member, xmlelement(name \"Id\", id),"
		"     xmlelement(name \"MessageId\", message_id),"
		"     CASE WHEN sequence_number IS NOT NULL THEN xmlelement(name \"SequenceNumber\", sequence_number) END))"
		"     FILTER (WHERE error_code IS NULL)),"
		"  xmlelement(name \"Failed\", pg_catalog.xmlagg(xmlelement(name member, xmlelement(name \"Id\", id),"
		"     xmlelement(name \"Code\", error_code), xmlelement(name \"Message\", error_message),"
		"     xmlelement(name \"SenderFault\", sender_fault))) FILTER (WHERE error_code IS NOT NULL)))::pg_catalog.text"
		"  FROM msgq.publish_batch($1->>'TopicArn', COALESCE(" EP_Q_ENTRIES_ATTRS("PublishBatchRequestEntries\\.member") ", '[]'))"},
	{SNS, "Publish",
		"SELECT xmlelement(name \"PublishResult\", xmlelement(name \"MessageId\", p.message_id),"
		"       CASE WHEN p.sequence_number IS NOT NULL"
		"         THEN xmlelement(name \"SequenceNumber\", p.sequence_number) END)::pg_catalog.text"
		"  FROM msgq.publish(COALESCE($1->>'TopicArn', $1->>'TargetArn'), $1->>'Message', $1->>'Subject',"
		"       " EP_Q_MSG_ATTRS("MessageAttributes\\.entry") ","
		"       $1->>'MessageGroupId', $1->>'MessageDeduplicationId', $1->>'MessageStructure') p"},

	/* SQS's query protocol: form fields in, <ActionResult> XML out */
	{SQSQ, "CreateQueue",
		"SELECT xmlelement(name \"CreateQueueResult\", xmlelement(name \"QueueUrl\", " EP_Q_URL("u") "))::pg_catalog.text"
		"  FROM msgq.create_queue($1->>'QueueName', " EP_Q_MAP("Attribute") ") u"},
	{SQSQ, "GetQueueUrl",
		"SELECT xmlelement(name \"GetQueueUrlResult\", xmlelement(name \"QueueUrl\","
		"       " EP_Q_URL("msgq.get_queue_url($1->>'QueueName')") "))::pg_catalog.text"},
	{SQSQ, "ListQueues",
		"SELECT xmlelement(name \"ListQueuesResult\", l.urls, " EP_Q_NEXT ")::pg_catalog.text"
		EP_SQS_PAGE("pg_catalog.xmlagg(xmlelement(name \"QueueUrl\", " EP_Q_URL("u") ") ORDER BY n)", EP_SQS_QUEUES)},
	{SQSQ, "ListDeadLetterSourceQueues",
		"SELECT xmlelement(name \"ListDeadLetterSourceQueuesResult\", l.urls, " EP_Q_NEXT ")::pg_catalog.text"
		EP_SQS_PAGE("pg_catalog.xmlagg(xmlelement(name \"QueueUrl\", " EP_Q_URL("u") ") ORDER BY n)", EP_SQS_DLQ_SOURCES)},
	{SQSQ, "AddPermission",
		"SELECT '' FROM msgq.add_permission($1->>'QueueUrl', $1->>'Label', " EP_Q_LIST("AWSAccountId") ","
		"       " EP_Q_LIST("ActionName") ")"},
	{SQSQ, "RemovePermission",
		"SELECT '' FROM msgq.remove_permission($1->>'QueueUrl', $1->>'Label')"},
	{SQSQ, "TagQueue",
		"SELECT '' FROM msgq.tag_queue($1->>'QueueUrl', " EP_Q_PAIRS("Tag", "Key", "Value") ")"},
	{SQSQ, "UntagQueue",
		"SELECT '' FROM msgq.untag_queue($1->>'QueueUrl', " EP_Q_LIST("TagKey") ")"},
	{SQSQ, "ListQueueTags",
		"SELECT xmlelement(name \"ListQueueTagsResult\", (SELECT pg_catalog.xmlagg(xmlelement(name \"Tag\","
		"       xmlelement(name \"Key\", t.key), xmlelement(name \"Value\", t.value)) ORDER BY t.key)"
		"  FROM pg_catalog.jsonb_each_text(msgq.list_queue_tags($1->>'QueueUrl')) t))::pg_catalog.text"},
	{SQSQ, "DeleteQueue", "SELECT '' FROM msgq.delete_queue($1->>'QueueUrl')"},
	{SQSQ, "PurgeQueue", "SELECT '' FROM msgq.purge_queue($1->>'QueueUrl')"},
	{SQSQ, "GetQueueAttributes",
		"SELECT xmlelement(name \"GetQueueAttributesResult\", pg_catalog.xmlagg(xmlelement(name \"Attribute\","
		"       xmlelement(name \"Name\", a.key), xmlelement(name \"Value\", a.value)) ORDER BY a.key))::pg_catalog.text"
		"  FROM pg_catalog.jsonb_each_text(msgq.get_queue_attributes($1->>'QueueUrl', " EP_Q_LIST("AttributeName") ")) a"},
	{SQSQ, "SetQueueAttributes",
		"SELECT '' FROM msgq.set_queue_attributes($1->>'QueueUrl', " EP_Q_MAP("Attribute") ")"},
	{SQSQ, "SendMessage",
		"SELECT xmlelement(name \"SendMessageResult\", xmlelement(name \"MD5OfMessageBody\", m.md5_of_message_body),"
		"       CASE WHEN m.md5_of_message_attributes IS NOT NULL"
		"         THEN xmlelement(name \"MD5OfMessageAttributes\", m.md5_of_message_attributes) END,"
		"       xmlelement(name \"MessageId\", m.message_id))::pg_catalog.text"
		"  FROM msgq.send_message($1->>'QueueUrl', $1->>'MessageBody', ($1->>'DelaySeconds')::pg_catalog.int4,"
		"       NULLIF(" EP_Q_MSG_ATTRS("MessageAttribute") ", '{}')::pg_catalog.json, $1->>'MessageGroupId',"
		"       $1->>'MessageDeduplicationId') m"},
	{SQSQ, "SendMessageBatch",
		"SELECT xmlelement(name \"SendMessageBatchResult\", pg_catalog.xmlagg(CASE WHEN error_code IS NULL"
		"   THEN xmlelement(name \"SendMessageBatchResultEntry\", xmlelement(name \"Id\", id),"
		"          xmlelement(name \"MessageId\", message_id), xmlelement(name \"MD5OfMessageBody\", md5_of_message_body))"
		"   ELSE xmlelement(name \"BatchResultErrorEntry\", xmlelement(name \"Id\", id), xmlelement(name \"Code\", error_code),"
		"          xmlelement(name \"Message\", error_message), xmlelement(name \"SenderFault\", sender_fault)) END))::pg_catalog.text"
		"  FROM msgq.send_message_batch($1->>'QueueUrl', " EP_Q_ENTRIES("SendMessageBatchRequestEntry") "::pg_catalog.json)"},
	{SQSQ, "ReceiveMessage",
		"SELECT xmlelement(name \"ReceiveMessageResult\", pg_catalog.xmlagg(xmlelement(name \"Message\","
		"   xmlelement(name \"MessageId\", r.message_id), xmlelement(name \"ReceiptHandle\", r.receipt_handle),"
		"   xmlelement(name \"MD5OfBody\", r.md5_of_body), xmlelement(name \"Body\", r.body),"
		"   (SELECT pg_catalog.xmlagg(xmlelement(name \"Attribute\", xmlelement(name \"Name\", a.key),"
		"           xmlelement(name \"Value\", a.value)) ORDER BY a.key) FROM pg_catalog.jsonb_each_text(r.attributes) a),"
		"   (SELECT pg_catalog.xmlagg(xmlelement(name \"MessageAttribute\", xmlelement(name \"Name\", a.key),"
		"           xmlelement(name \"Value\", xmlelement(name \"StringValue\", a.value->>'StringValue'),"
		"             xmlelement(name \"DataType\", a.value->>'DataType'))) ORDER BY a.key)"
		"      FROM pg_catalog.jsonb_each(r.message_attributes) a WHERE a.value ? 'StringValue'))))::pg_catalog.text"
		"  FROM msgq.receive_message($1->>'QueueUrl', COALESCE(($1->>'MaxNumberOfMessages')::pg_catalog.int4, 1),"
		"       ($1->>'VisibilityTimeout')::pg_catalog.int4, 0, " EP_Q_LIST("MessageAttributeName") ","
		"       " EP_Q_LIST("AttributeName") ", $1->>'ReceiveRequestAttemptId') r"},
	{SQSQ, "DeleteMessage",
		"SELECT '' FROM msgq.delete_message($1->>'QueueUrl', $1->>'ReceiptHandle')"},
	{SQSQ, "DeleteMessageBatch",
		EP_Q_BATCH_RESULT("DeleteMessageBatch")
		"  FROM msgq.delete_message_batch($1->>'QueueUrl', " EP_Q_ENTRIES("DeleteMessageBatchRequestEntry") ")"},
	{SQSQ, "ChangeMessageVisibilityBatch",
		EP_Q_BATCH_RESULT("ChangeMessageVisibilityBatch")
		"  FROM msgq.change_message_visibility_batch($1->>'QueueUrl',"
		"       (SELECT pg_catalog.jsonb_agg(CASE WHEN e ? 'VisibilityTimeout'"
		"          THEN e OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('VisibilityTimeout',"
		"               (e->>'VisibilityTimeout')::pg_catalog.numeric) ELSE e END)"
		"          FROM pg_catalog.jsonb_array_elements(" EP_Q_ENTRIES("ChangeMessageVisibilityBatchRequestEntry") ") e))"},
	{SQSQ, "ChangeMessageVisibility",
		"SELECT '' FROM msgq.change_message_visibility($1->>'QueueUrl', $1->>'ReceiptHandle',"
		"       ($1->>'VisibilityTimeout')::pg_catalog.int4)"},
	{SQSQ, "StartMessageMoveTask",
		"SELECT xmlelement(name \"StartMessageMoveTaskResult\", xmlelement(name \"TaskHandle\","
		"       msgq.start_message_move_task($1->>'SourceArn', $1->>'DestinationArn',"
		"       ($1->>'MaxNumberOfMessagesPerSecond')::pg_catalog.int4)))::pg_catalog.text"},
	{SQSQ, "CancelMessageMoveTask",
		"SELECT xmlelement(name \"CancelMessageMoveTaskResult\", xmlelement(name \"ApproximateNumberOfMessagesMoved\","
		"       msgq.cancel_message_move_task($1->>'TaskHandle')))::pg_catalog.text"},
	/* the entries flattened, as SQS's query protocol lists them; NULL fields left out */
	{SQSQ, "ListMessageMoveTasks",
		"SELECT xmlelement(name \"ListMessageMoveTasksResult\", pg_catalog.xmlagg("
		"   xmlelement(name \"ListMessageMoveTasksResultEntry\", xmlforest(t.task_handle AS \"TaskHandle\","
		"     t.status AS \"Status\", t.source_arn AS \"SourceArn\", t.destination_arn AS \"DestinationArn\","
		"     t.max_number_of_messages_per_second AS \"MaxNumberOfMessagesPerSecond\","
		"     t.approximate_number_of_messages_moved AS \"ApproximateNumberOfMessagesMoved\","
		"     t.approximate_number_of_messages_to_move AS \"ApproximateNumberOfMessagesToMove\","
		"     t.failure_reason AS \"FailureReason\", t.started_timestamp AS \"StartedTimestamp\"))"
		"   ORDER BY t.ordinality))::pg_catalog.text"
		"  FROM msgq.list_message_move_tasks($1->>'SourceArn', COALESCE(($1->>'MaxResults')::pg_catalog.int4, 1))"
		"       WITH ORDINALITY t"},
};

static SPIPlanPtr ep_plans[EP_MAX_ACTIONS];
static SPIPlanPtr ep_wait_plan;

StaticAssertDecl(lengthof(ep_actions) <= EP_MAX_ACTIONS, "EP_MAX_ACTIONS is too small");

/* how long a ReceiveMessage that found nothing may wait, in seconds */
#define EP_WAIT_SQL \
	"SELECT COALESCE(($1->>'WaitTimeSeconds')::pg_catalog.int4," \
	"  (msgq.get_queue_attributes($1->>'QueueUrl', '{ReceiveMessageWaitTimeSeconds}')" \
	"      ->>'ReceiveMessageWaitTimeSeconds')::pg_catalog.int4, 0)"

/*
 * What a request's SigV4 Authorization header says, and the string its
 * signature signs (the secret is looked up in the request's transaction).
 */
typedef struct EpAuth
{
	bool		role_known;		/* a parked request's: role */
	Oid			role;
	bool		none;			/* msgq.endpoint_auth = none */
	char	   *access_key_id;
	char		date[9];		/* yyyymmdd of the scope */
	char	   *region;
	char	   *service;
	char	   *amzdate;
	char	   *canonical;		/* the canonical request up to its payload hash */
	char	   *payload_header;	/* X-Amz-Content-Sha256, if any */
	const char *body;
	int			body_len;
	char	   *string_to_sign;	/* built in the request's transaction */
	char	   *signature;		/* hex */
} EpAuth;

typedef struct EpResult
{
	Jsonb	   *response;		/* NULL on error */
	char	   *xml;			/* SNS: the <ActionResult> element, or "" */
	Oid			role;			/* the request ran as */
	int			wait_seconds;	/* ReceiveMessage with no message: may wait */
	ErrorData  *error;
} EpResult;

static void
ep_hex(const uint8 *b, int n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int			i;

	for (i = 0; i < n; i++)
	{
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
ep_sha256_hex(const char *data, size_t len, char *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		d[PG_SHA256_DIGEST_LENGTH];

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, d, sizeof(d)) < 0)
		elog(ERROR, "could not compute a SHA-256 digest");
	pg_cryptohash_free(ctx);
	ep_hex(d, sizeof(d), out);
}

static void
ep_hmac(const uint8 *key, size_t klen, const char *data, uint8 *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL || pg_hmac_init(ctx, key, klen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, strlen(data)) < 0 ||
		pg_hmac_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute an HMAC");
	pg_hmac_free(ctx);
}

/* The SigV4 signature of auth's string to sign with secret, in hex */
static void
ep_sign(const EpAuth *auth, const char *secret, char *out)
{
	char	   *k = psprintf("AWS4%s", secret);
	uint8		kdate[PG_SHA256_DIGEST_LENGTH],
				kregion[PG_SHA256_DIGEST_LENGTH],
				kservice[PG_SHA256_DIGEST_LENGTH],
				ksigning[PG_SHA256_DIGEST_LENGTH],
				sig[PG_SHA256_DIGEST_LENGTH];

	ep_hmac((const uint8 *) k, strlen(k), auth->date, kdate);
	ep_hmac(kdate, sizeof(kdate), auth->region, kregion);
	ep_hmac(kregion, sizeof(kregion), auth->service, kservice);
	ep_hmac(kservice, sizeof(kservice), "aws4_request", ksigning);
	ep_hmac(ksigning, sizeof(ksigning), auth->string_to_sign, sig);
	ep_hex(sig, sizeof(sig), out);
	explicit_bzero(k, strlen(k));
}

/* The role a request runs as, inside its transaction; an error if none */
static Oid
ep_request_role(EpAuth *auth)
{
	Oid			role;
	char		expected[2 * PG_SHA256_DIGEST_LENGTH + 1];
	char	   *secret;

	if (auth->none)
	{
		role = (msgq_endpoint_role && msgq_endpoint_role[0]) ?
			get_role_oid(msgq_endpoint_role, true) : InvalidOid;
		if (!OidIsValid(role))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("msgq.endpoint_role names no role: the endpoint refuses every request"),
					 errdetail_internal("AWS error code: AccessDenied")));
		return role;
	}
	/* an unknown key, or one whose secret does not decrypt (logged) */
	secret = msgq_access_key_secret(auth->access_key_id, &role);
	if (secret == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the security token included in the request is invalid"),
				 errdetail_internal("AWS error code: InvalidClientTokenId")));

	/*
	 * The digests need a resource owner (OpenSSL contexts are tracked):
	 * they are taken here, in the request's transaction.
	 */
	{
		char		body_hash[2 * PG_SHA256_DIGEST_LENGTH + 1];
		char		creq_hash[2 * PG_SHA256_DIGEST_LENGTH + 1];
		char	   *creq;

		ep_sha256_hex(auth->body, auth->body_len, body_hash);
		if (auth->payload_header != NULL && strcmp(auth->payload_header, "UNSIGNED-PAYLOAD") != 0 &&
			strcmp(auth->payload_header, body_hash) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("X-Amz-Content-Sha256 is not the body's digest"),
					 errdetail_internal("AWS error code: SignatureDoesNotMatch")));
		creq = psprintf("%s%s", auth->canonical,
						auth->payload_header ? auth->payload_header : body_hash);
		ep_sha256_hex(creq, strlen(creq), creq_hash);
		auth->string_to_sign = psprintf("AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
										auth->amzdate, auth->date, auth->region, auth->service,
										creq_hash);
	}
	ep_sign(auth, secret, expected);
	explicit_bzero(secret, strlen(secret));
	if (strlen(auth->signature) != strlen(expected) ||
		timingsafe_bcmp(auth->signature, expected, strlen(expected)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the request signature we calculated does not match the signature you provided"),
				 errdetail_internal("AWS error code: SignatureDoesNotMatch")));
	if (GetUserNameFromId(role, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the access key's role no longer exists"),
				 errdetail_internal("AWS error code: InvalidClientTokenId")));
	return role;
}

/* Count a request of action a (NULL: of no action) that took since start */
static void
ep_count(const EpAction *a, TimestampTz start, bool error)
{
	EpStats    *st = &ep_shared->stats[a ? (int) (a - ep_actions) : EP_MAX_ACTIONS];
	uint64		us = (uint64) Max(GetCurrentTimestamp() - start, 0);
	uint64		max = pg_atomic_read_u64(&st->max_latency_us);

	pg_atomic_fetch_add_u64(&st->requests, 1);
	if (error)
		pg_atomic_fetch_add_u64(&st->errors, 1);
	pg_atomic_fetch_add_u64(&st->latency_us, us);
	while (us > max && !pg_atomic_compare_exchange_u64(&st->max_latency_us, &max, us))
		;
}

/* Run an action in a transaction of its own, as the request's role */
static void
ep_run(const EpAction *a, Jsonb *request, const char *prefix, EpAuth *auth, EpResult *res)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			save_userid;
	int			save_sec_context;

	memset(res, 0, sizeof(*res));
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		bool		isnull;
		Datum		v;

		Oid			role;

		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, a->name);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		role = auth->role_known ? auth->role : ep_request_role(auth);
		res->role = role;
		SetUserIdAndSecContext(role, SECURITY_LOCAL_USERID_CHANGE);
		/* each action's statement is planned once per process */
		if (SPI_execute_plan(msgq_plan(&ep_plans[a - ep_actions], a->sql, 2, (Oid[]) {JSONBOID, TEXTOID}),
							 (Datum[]) {JsonbPGetDatum(request), CStringGetTextDatum(prefix)},
							 NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "the action returned no result");
		v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			if (ep_xml_service(a->service))
				res->xml = isnull ? pstrdup("") : TextDatumGetCString(v);
			else
				res->response = isnull ? NULL : DatumGetJsonbPCopy(v);
			MemoryContextSwitchTo(old);
		}
		if (strcmp(a->name, "ReceiveMessage") == 0 && (res->response != NULL || res->xml != NULL))
		{
			/* no message (AWS leaves "Messages" out): may it wait? */
			if ((res->response != NULL ? msgq_jsonb_member(&res->response->root, "Messages") == NULL :
				 strstr(res->xml, "<Message>") == NULL) &&
				SPI_execute_plan(msgq_plan(&ep_wait_plan, EP_WAIT_SQL, 1, (Oid[]) {JSONBOID}),
								 (Datum[]) {JsonbPGetDatum(request)}, NULL, true, 1) == SPI_OK_SELECT)
				res->wait_seconds = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
																SPI_tuptable->tupdesc, 1, &isnull));
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		/* the commit leaves TopMemoryContext current: back to the pass's */
		MemoryContextSwitchTo(cxt);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		res->error = CopyErrorData();
		res->response = NULL;
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Authenticate a request in a transaction of its own, before running it:
 * its role is then known (auth->role_known).  NULL, or the error.
 */
static ErrorData *
ep_authenticate(EpAuth *auth)
{
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *volatile error = NULL;

	if (auth->role_known)
		return NULL;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		Oid			role;

		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		role = ep_request_role(auth);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		auth->role = role;
		auth->role_known = true;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
	}
	PG_END_TRY();
	return error;
}

/* The AWS error name of a PostgreSQL error, its HTTP status and fault */
static const char *
ep_error_code(EpConn *c, ErrorData *e, int *status_out, bool *sender_out)
{
	const char *code = NULL;
	char	   *found;
	char		name[64];
	int			status = 400;
	bool		sender = true;

	if (e->detail != NULL && (found = strstr(e->detail, "AWS error code: ")) != NULL)
	{
		int			n = 0;

		found += strlen("AWS error code: ");
		while (found[n] && (isalnum((unsigned char) found[n]) || found[n] == '.') && n < (int) sizeof(name) - 1)
		{
			name[n] = found[n];
			n++;
		}
		while (n > 0 && name[n - 1] == '.')
			n--;				/* the sentence's full stop */
		name[n] = '\0';
		if (n > 0)
			code = name;
	}
	if (code == NULL)
	{
		if (e->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
			code = c->service && strcmp(c->service, KINESIS) == 0 ? "AccessDeniedException" : "AccessDenied",
				status = 403;
		else if (ERRCODE_TO_CATEGORY(e->sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
				 ERRCODE_TO_CATEGORY(e->sqlerrcode) == ERRCODE_PROGRAM_LIMIT_EXCEEDED ||
				 ERRCODE_TO_CATEGORY(e->sqlerrcode) == ERRCODE_INVALID_TEXT_REPRESENTATION ||
				 e->sqlerrcode == ERRCODE_NULL_VALUE_NOT_ALLOWED)
			code = c->service && strcmp(c->service, KINESIS) == 0 ? "InvalidArgumentException" :
				"InvalidParameterValue";
		else
		{
			code = "InternalError";
			status = 500;
			sender = false;
		}
	}
	else if (strcmp(code, "AccessDenied") == 0 || strcmp(code, "AccessDeniedException") == 0 ||
			 strcmp(code, "InvalidClientTokenId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0 ||
			 strcmp(code, "MissingAuthenticationToken") == 0)
		status = 403;
	*status_out = status;
	*sender_out = sender;
	return code == name ? pstrdup(name) : code;
}

/* The AWS error of a PostgreSQL error */
static void
ep_error_from(EpConn *c, ErrorData *e)
{
	int			status;
	bool		sender;
	const char *code = ep_error_code(c, e, &status, &sender);

	ep_error(c, status, code, ep_legacy_code(code), sender, e->message);
}

/* Parse JSON without raising an error: NULL when it is not an object */
static Jsonb *
ep_parse_body(const char *body, int len)
{
	Jsonb	   *volatile j = NULL;
	int			i;

	/*
	 * One parse, jsonb_in's.  It takes a C string and does not check the
	 * encoding: a NUL would end the text early, and bytes that are not UTF-8
	 * would be taken as they are.
	 */
	for (i = 0; i < len && isspace((unsigned char) body[i]); i++)
		;
	if (i == len || body[i] != '{' || memchr(body, '\0', len) != NULL ||
		!pg_verifymbstr(body, len, true))
		return NULL;

	/*
	 * Valid JSON may still not be jsonb (a number beyond numeric's range),
	 * and JSON nested too deeply stops the parser (stack depth): those errors
	 * are the request's, not the endpoint's.  The parser holds no resource
	 * but memory, so its errors are caught here, outside a transaction.
	 */
	{
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(body, len))));
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			j = NULL;
		}
		PG_END_TRY();
	}
	if (j != NULL && !JB_ROOT_IS_OBJECT(j))
		return NULL;
	return j;
}

/* Percent-decode v (a form field); *outlen is the length (it may hold a NUL) */
static char *
ep_url_decode(const char *v, int len, int *outlen)
{
	char	   *out = palloc(len + 1);
	int			n = 0,
				i;

	for (i = 0; i < len; i++)
	{
		if (v[i] == '+')
			out[n++] = ' ';
		else if (v[i] == '%' && i + 2 < len &&
				 msgq_hex_digit(v[i + 1]) >= 0 && msgq_hex_digit(v[i + 2]) >= 0)
		{
			out[n++] = (char) (msgq_hex_digit(v[i + 1]) * 16 + msgq_hex_digit(v[i + 2]));
			i += 2;
		}
		else
			out[n++] = v[i];
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/*
 * A query-protocol body (a=1&b=2) as a flat jsonb object of its fields;
 * NULL when a field is not valid UTF-8 text.
 */
static Jsonb *
ep_parse_form(const char *body, int len)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	const char *p = body;
	const char *end = body + len;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	while (p < end)
	{
		const char *amp = memchr(p, '&', end - p);
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', stop - p);
		char	   *k,
				   *v;
		int			klen,
					vlen = 0;
		JsonbValue	jk,
					jv;

		if (stop > p)
		{
			k = ep_url_decode(p, (eq ? eq : stop) - p, &klen);
			v = eq ? ep_url_decode(eq + 1, stop - eq - 1, &vlen) : pstrdup("");
			/* text cannot hold NUL: a %00 is refused, not cut short */
			if (strlen(k) != klen || strlen(v) != vlen ||
				!pg_verifymbstr(k, klen, true) || !pg_verifymbstr(v, vlen, true))
				return NULL;
			jk.type = jbvString;
			jk.val.string.val = k;
			jk.val.string.len = strlen(k);
			jv.type = jbvString;
			jv.val.string.val = v;
			jv.val.string.len = strlen(v);
			pushJsonbValue(&state, WJB_KEY, &jk);
			pushJsonbValue(&state, WJB_VALUE, &jv);
		}
		p = stop + 1;
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* The value of a header (case-insensitive), or NULL */
static char *
ep_header(const char *headers, const char *name)
{
	const char *p = headers;
	size_t		nlen = strlen(name);

	while ((p = strchr(p, '\n')) != NULL)
	{
		p++;
		if (pg_strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')
		{
			const char *v = p + nlen + 1;
			const char *end = strpbrk(v, "\r\n");

			while (*v == ' ' || *v == '\t')
				v++;
			return pnstrdup(v, end ? end - v : strlen(v));
		}
	}
	return NULL;
}

static const EpAction *ep_find(const char *service, const char *name);

/* a header's value for the canonical request: trimmed, inner spaces collapsed */
static void
ep_canonical_value(StringInfo s, const char *v)
{
	bool		space = false;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++)
	{
		if (*v == ' ' || *v == '\t')
			space = true;
		else
		{
			if (space)
				appendStringInfoChar(s, ' ');
			space = false;
			appendStringInfoChar(s, *v);
		}
	}
}

/*
 * Read the request's SigV4 Authorization header into auth and build the
 * string its signature signs; NULL, or the error to answer (an AWS error
 * name and message).
 */
static const char *
ep_parse_auth(char *headers, const char *body, int body_len, EpAuth *auth, char **message)
{
	char	   *h = ep_header(headers, "Authorization");
	char	   *amzdate = ep_header(headers, "X-Amz-Date");
	char	   *cred,
			   *signed_hdrs,
			   *sig,
			   *p;
	char	   *path;
	char	   *query;
	char	   *line_end;
	StringInfoData creq;
	char	   *parts[5];
	int			n;
	TimestampTz t;

	memset(auth, 0, sizeof(*auth));
	if (strcmp(msgq_endpoint_auth, "none") == 0)
	{
		auth->none = true;
		return NULL;
	}
	if (h == NULL)
	{
		*message = "the request has no Authorization header (SigV4)";
		return "MissingAuthenticationToken";
	}
	if (strncmp(h, "AWS4-HMAC-SHA256 ", 17) != 0 || amzdate == NULL || strlen(amzdate) != 16 ||
		(cred = strstr(h, "Credential=")) == NULL ||
		(signed_hdrs = strstr(h, "SignedHeaders=")) == NULL ||
		(sig = strstr(h, "Signature=")) == NULL)
	{
		*message = "the Authorization header is not AWS4-HMAC-SHA256 with Credential, SignedHeaders, Signature and an X-Amz-Date";
		return "IncompleteSignature";
	}
	cred = pnstrdup(cred + 11, strcspn(cred + 11, ", "));
	signed_hdrs = pnstrdup(signed_hdrs + 14, strcspn(signed_hdrs + 14, ", "));
	auth->signature = pnstrdup(sig + 10, strcspn(sig + 10, ", "));
	/* Credential=AKID/yyyymmdd/region/service/aws4_request */
	for (n = 0, p = cred; n < 5 && p != NULL; n++)
	{
		parts[n] = p;
		p = strchr(p, '/');
		if (p)
			*p++ = '\0';
	}
	if (n != 5 || p != NULL || strlen(parts[1]) != 8 || strcmp(parts[4], "aws4_request") != 0 ||
		strncmp(parts[1], amzdate, 8) != 0)
	{
		*message = "the Credential is not access-key/yyyymmdd/region/service/aws4_request of the X-Amz-Date";
		return "IncompleteSignature";
	}
	auth->access_key_id = parts[0];
	memcpy(auth->date, parts[1], 9);
	auth->region = parts[2];
	auth->service = parts[3];

	/* no more than 15 minutes away from now */
	{
		struct pg_tm tm;
		int			tz = 0;

		memset(&tm, 0, sizeof(tm));
		if (sscanf(amzdate, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
				   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6 ||
			tm2timestamp(&tm, 0, &tz, &t) != 0)
		{
			*message = "X-Amz-Date is not yyyymmddThhmmssZ";
			return "IncompleteSignature";
		}
		if (t < GetCurrentTimestamp() - 15 * 60 * USECS_PER_SEC ||
			t > GetCurrentTimestamp() + 15 * 60 * USECS_PER_SEC)
		{
			*message = "the signature is more than 15 minutes away from the server's time";
			return "SignatureDoesNotMatch";
		}
	}

	/* the canonical request */
	line_end = strstr(headers, "\r\n");
	path = pnstrdup(headers + 5, strcspn(headers + 5, " ?"));
	query = "";
	if (headers[5 + strlen(path)] == '?')
		query = pnstrdup(headers + 6 + strlen(path), strcspn(headers + 6 + strlen(path), " "));
	(void) line_end;
	initStringInfo(&creq);
	appendStringInfo(&creq, "POST\n%s\n%s\n", path, query);
	for (p = signed_hdrs; *p;)
	{
		size_t		len = strcspn(p, ";");
		char	   *name = pnstrdup(p, len);
		char	   *value = ep_header(headers, name);

		if (value == NULL)
		{
			*message = psprintf("signed header %s is not in the request", name);
			return "IncompleteSignature";
		}
		appendStringInfo(&creq, "%s:", name);
		ep_canonical_value(&creq, value);
		appendStringInfoChar(&creq, '\n');
		p += len;
		if (*p == ';')
			p++;
	}
	appendStringInfo(&creq, "\n%s\n", signed_hdrs);
	auth->canonical = creq.data;
	auth->payload_header = ep_header(headers, "X-Amz-Content-Sha256");
	auth->amzdate = amzdate;
	auth->body = body;
	auth->body_len = body_len;
	return NULL;
}

/* The 200 answer of an action's result */
static void
ep_answer(EpConn *c, const EpAction *a, EpResult *res)
{
	if (ep_xml_service(a->service))
		ep_respond(c, 200, "OK",
				   psprintf("<%sResponse xmlns=\"%s\">%s<ResponseMetadata><RequestId>%s</RequestId>"
							"</ResponseMetadata></%sResponse>", a->name,
							strcmp(a->service, SQSQ) == 0 ? SQSQ_XMLNS : SNS_XMLNS, res->xml ? res->xml : "",
							DatumGetCString(DirectFunctionCall1(uuid_out, DirectFunctionCall1(gen_random_uuid, (Datum) 0))),
							a->name), NULL);
	else
		ep_respond(c, 200, "OK", res->response ? JsonbToCString(NULL, &res->response->root, VARSIZE(res->response)) : "{}",
				   NULL);
}

/*
 * The slot key of a subscription: its stream, consumer and shard as the
 * statement reads them (the ARN's stream and consumer names, the shard's
 * number), so that two spellings of one shard are one subscription.
 */
static uint64
ep_subscription_key(Jsonb *request)
{
	char	   *arn = msgq_attr_str_or_null(&request->root, "ConsumerARN");
	char	   *shard = msgq_attr_str_or_null(&request->root, "ShardId");
	char	   *stream = arn ? strstr(arn, ":stream/") : NULL;
	char	   *consumer = stream ? strstr(stream, "/consumer/") : NULL;
	char	   *digits = shard ? strrchr(shard, '-') : NULL;
	char	   *both;

	if (stream != NULL && consumer != NULL && shard != NULL)
	{
		digits = digits ? digits + 1 : shard;
		both = psprintf("%.*s\n%.*s\n%ld", (int) (consumer - stream - 8), stream + 8,
						(int) strcspn(consumer + 10, ":/"), consumer + 10, strtol(digits, NULL, 10));
	}
	else
		both = psprintf("%s\n%s", arn ? arn : "", shard ? shard : "");
	return hash_bytes_extended((const unsigned char *) both, strlen(both), 0) | 1;
}

/*
 * Before a subscription's first poll: refused ("in use") within 5 seconds
 * of the current subscription of its consumer and shard, and when no slot
 * is free.  NULL, or the AWS error to answer.
 */
static const char *
ep_subscription_check(uint64 key)
{
	int			i;
	bool		free_slot = false;
	const char *error = NULL;
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&ep_shared->sub_lock);
	for (i = 0; i < EP_MAX_SUBSCRIPTIONS; i++)
	{
		if (ep_shared->subs[i].key == key)
		{
			if (now - ep_shared->subs[i].since < 5 * USECS_PER_SEC)
				error = "ResourceInUseException";
			free_slot = true;
			break;
		}
		if (ep_shared->subs[i].key == 0)
			free_slot = true;
	}
	SpinLockRelease(&ep_shared->sub_lock);
	return error ? error : free_slot ? NULL : "LimitExceededException";
}

/*
 * After its first poll succeeded (the request authenticated, the stream
 * and consumer found, the role allowed): the subscription takes its slot,
 * from the current one if any, whose worker (woken) ends that one's event
 * stream at its next pass.  -1 if the table filled up meanwhile: the
 * subscription runs without a slot.
 */
static int
ep_subscription_take(uint64 key, uint32 *gen_out)
{
	int			i,
				slot = -1,
				free_slot = -1,
				old_worker = -1;

	SpinLockAcquire(&ep_shared->sub_lock);
	for (i = 0; i < EP_MAX_SUBSCRIPTIONS; i++)
	{
		if (ep_shared->subs[i].key == key)
		{
			slot = i;
			old_worker = ep_shared->subs[i].worker;
			break;
		}
		if (ep_shared->subs[i].key == 0 && free_slot < 0)
			free_slot = i;
	}
	if (slot < 0)
		slot = free_slot;
	if (slot >= 0)
	{
		ep_shared->subs[slot].key = key;
		ep_shared->subs[slot].worker = ep_worker;
		ep_shared->subs[slot].gen = ++ep_shared->sub_gen;
		ep_shared->subs[slot].since = GetCurrentTimestamp();
		*gen_out = ep_shared->subs[slot].gen;
	}
	SpinLockRelease(&ep_shared->sub_lock);
	if (old_worker >= 0 && old_worker != ep_worker && ep_shared->latch[old_worker] != NULL)
		SetLatch(ep_shared->latch[old_worker]);
	return slot;
}

/* Whether a subscription still holds its slot (no takeover) */
static bool
ep_subscription_current(EpPark *p)
{
	bool		current;

	if (p->sub_slot < 0)
		return true;
	SpinLockAcquire(&ep_shared->sub_lock);
	current = ep_shared->subs[p->sub_slot].gen == p->sub_gen;
	SpinLockRelease(&ep_shared->sub_lock);
	return current;
}

/*
 * SubscribeToShard's event stream: AWS's event-stream messages (a prelude
 * of total and header lengths with its CRC-32, headers, the payload, the
 * message's CRC-32), sent on the request's HTTP/2 stream.
 */
static void
ep_put32(StringInfo s, uint32 v)
{
	char		b[4] = {(char) (v >> 24), (char) (v >> 16), (char) (v >> 8), (char) v};

	appendBinaryStringInfo(s, b, 4);
}

/* a header of type string (7) */
static void
ep_event_header(StringInfo s, const char *name, const char *value)
{
	size_t		vlen = strlen(value);

	appendStringInfoChar(s, (char) strlen(name));
	appendStringInfoString(s, name);
	appendStringInfoChar(s, 7);
	appendStringInfoChar(s, (char) (vlen >> 8));
	appendStringInfoChar(s, (char) (vlen & 0xff));
	appendStringInfoString(s, value);
}

/* An event (kind "event") or an exception, with its JSON payload */
static void
ep_event(StringInfo out, const char *kind, const char *type, const char *payload)
{
	StringInfoData headers;
	int			start = out->len;
	size_t		plen = strlen(payload);

	initStringInfo(&headers);
	ep_event_header(&headers, ":message-type", kind);
	ep_event_header(&headers, strcmp(kind, "event") == 0 ? ":event-type" : ":exception-type", type);
	ep_event_header(&headers, ":content-type", "application/x-amz-json-1.1");
	ep_put32(out, (uint32) (12 + headers.len + plen + 4));
	ep_put32(out, (uint32) headers.len);
	ep_put32(out, (uint32) crc32(0L, (const Bytef *) out->data + start, 8));
	appendBinaryStringInfo(out, headers.data, headers.len);
	appendBinaryStringInfo(out, payload, plen);
	ep_put32(out, (uint32) crc32(0L, (const Bytef *) out->data + start, out->len - start));
	pfree(headers.data);
}

static char *
ep_jsonb_text(Jsonb *j)
{
	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}

/*
 * After an event with records: the subscription's request now starts after
 * the last of them, so that msgq.subscribe_to_shard, if it starts the
 * subscription again (its five minutes are over, or another request took it
 * over), goes on from there instead of the first request's position.
 */
static void
ep_subscription_advance(EpPark *p, EpResult *res)
{
	JsonbValue *records = msgq_jsonb_member(&res->response->root, "Records");
	char	   *last = msgq_attr_str_or_null(&res->response->root, "ContinuationSequenceNumber");
	Jsonb	   *position;
	Jsonb	   *moved;

	if (records == NULL || records->type != jbvBinary ||
		JsonContainerSize(records->val.binary.data) == 0 || last == NULL ||
		strspn(last, "0123456789") != strlen(last))
		return;
	position = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(
		psprintf("{\"StartingPosition\": {\"Type\": \"AFTER_SEQUENCE_NUMBER\", \"SequenceNumber\": \"%s\"}}", last))));
	moved = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(p->request), JsonbPGetDatum(position)));
	pfree(p->request);
	p->request = (Jsonb *) MemoryContextAlloc(ep_cxt, VARSIZE(moved));
	memcpy(p->request, moved, VARSIZE(moved));
}

/* Whether a poll found its shard closed and read to its end (ChildShards) */
static bool
ep_subscription_at_end(EpResult *res)
{
	JsonbValue *children = res->response ? msgq_jsonb_member(&res->response->root, "ChildShards") : NULL;

	return children != NULL && children->type == jbvBinary &&
		JsonContainerSize(children->val.binary.data) > 0;
}

/*
 * After a poll: when it is behind (MillisBehindLatest above 0), more
 * records wait, so poll again at once, instead of at the next heartbeat
 * or put.  When it got no record although it is behind, the stream
 * enforces limits and this consumer's 2 MiB for the second are spent
 * (stream.c): poll again when msgq's clock starts the next second.
 */
static void
ep_subscription_retry_at(EpPark *p, EpResult *res)
{
	JsonbValue *records = res->response ? msgq_jsonb_member(&res->response->root, "Records") : NULL;
	JsonbValue *behind = res->response ?
		msgq_jsonb_member(&res->response->root, "MillisBehindLatest") : NULL;

	p->retry_at = 0;
	if (records == NULL || records->type != jbvBinary ||
		behind == NULL || behind->type != jbvNumeric ||
		DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(behind->val.numeric))) <= 0)
		return;
	if (JsonContainerSize(records->val.binary.data) == 0)
		p->retry_at = GetCurrentTimestamp() + (USECS_PER_SEC - msgq_now() % USECS_PER_SEC);
	else
		p->retry_at = GetCurrentTimestamp();
}

/* The 200 answer that opens a subscription: initial-response, then the first event */
static void
ep_subscription_begin(EpConn *c, EpPark *p, EpResult *res)
{
	StringInfoData events;

	initStringInfo(&events);
	ep_event(&events, "event", "initial-response", "{}");
	ep_event(&events, "event", "SubscribeToShardEvent", ep_jsonb_text(res->response));
	ep_h2_respond(c->h2, c->stream, 200,
				  psprintf("Content-Type: application/vnd.amazon.eventstream\r\n"
						   "x-amzn-RequestId: %s\r\n",
						   DatumGetCString(DirectFunctionCall1(uuid_out,
															   DirectFunctionCall1(gen_random_uuid, (Datum) 0)))),
				  events.data, events.len, ep_subscription_at_end(res));
	p->last_event = GetCurrentTimestamp();
	ep_subscription_advance(p, res);
	ep_subscription_retry_at(p, res);
}

/*
 * A subscription after a wake-up, at its heartbeat or at its end: read
 * again, send an event when there are records (or every few seconds, with
 * none), end the stream after five minutes or at an error (an exception
 * event).  True when it wrote to its connection.
 */
static bool
ep_subscription_next(EpPark *p, TimestampTz now, bool woken)
{
	EpConn	   *c = p->conn;
	const EpAction *a = p->action;
	bool		ending = msgq_now() >= p->until;
	bool		heartbeat = now - p->last_event >= (int64) EP_SUB_HEARTBEAT_MS * 1000;
	bool		retry = p->retry_at != 0 && now >= p->retry_at;
	EpResult	res;
	EpAuth		auth;
	StringInfoData events;
	JsonbValue *records;

	if (!ep_subscription_current(p))
	{
		/* a newer subscription took over: this one's stream ends */
		ep_h2_write(c->h2, p->stream, "", 0, true);
		ep_count(a, p->since, false);
		ep_park_free(p);
		return true;
	}
	if (retry)
		p->retry_at = 0;
	if (!woken && !ending && !heartbeat && !retry)
		return false;
	if (!ending && ep_h2_pending(c->h2, p->stream) > 0)
	{
		/* the client has not taken the last event yet: look again soon */
		if (retry)
			p->retry_at = now + EP_SUB_RETRY_MS * 1000;
		return false;
	}
	memset(&auth, 0, sizeof(auth));
	auth.role_known = true;
	auth.role = p->role;
	ep_run(a, p->request, p->prefix, &auth, &res);
	initStringInfo(&events);
	if (res.error != NULL)
	{
		int			status;
		bool		sender;
		const char *code;
		StringInfoData payload;

		c->service = a->service;	/* Kinesis's error names */
		code = ep_error_code(c, res.error, &status, &sender);

		initStringInfo(&payload);
		appendStringInfoString(&payload, "{\"message\": ");
		escape_json(&payload, res.error->message ? res.error->message : "");
		appendStringInfoChar(&payload, '}');
		ep_event(&events, "exception", code, payload.data);
		ep_h2_write(c->h2, p->stream, events.data, events.len, true);
		ep_count(a, p->since, true);
		ep_park_free(p);
		return true;
	}
	ep_subscription_retry_at(p, &res);
	records = res.response ? msgq_jsonb_member(&res.response->root, "Records") : NULL;
	if (records != NULL && records->type == jbvBinary &&
		JsonContainerSize(records->val.binary.data) == 0 && !heartbeat && !ending &&
		!ep_subscription_at_end(&res))
		return false;			/* nothing new */
	ep_event(&events, "event", "SubscribeToShardEvent", ep_jsonb_text(res.response));
	p->last_event = now;
	ep_subscription_advance(p, &res);
	ending = ending || ep_subscription_at_end(&res);	/* the shard's end: no more events */
	ep_h2_write(c->h2, p->stream, events.data, events.len, ending);
	if (ending)
	{
		ep_count(a, p->since, false);
		ep_park_free(p);
	}
	return true;
}

static void ep_handle(EpConn *c, char *headers, const char *body, int body_len);

/*
 * ep_handle, with any error outside the request's transaction (ep_run
 * catches those inside) answered as the request's error: no request can
 * end the worker.
 */
static void
ep_handle_safely(EpConn *c, char *headers, const char *body, int body_len)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		ep_handle(c, headers, body, body_len);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		if (IsTransactionState())
			AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		ep_error_from(c, e);
		ep_count(NULL, GetCurrentTimestamp(), true);
	}
	PG_END_TRY();
}

/*
 * A request refused before its body is read (over 16 MiB, or no room in
 * the body budget): answered in its service's JSON error format.
 */
static void
ep_refuse_body(EpConn *c, const char *headers, bool too_big)
{
	char	   *target = ep_header(headers, "X-Amz-Target");

	c->service = target != NULL && strncmp(target, KINESIS ".", strlen(KINESIS) + 1) == 0 ?
		KINESIS : SQS;
	if (too_big)
		ep_error(c, 413, "BatchRequestTooLong", NULL, true, "the request body is over 16 MiB");
	else
		ep_error(c, 503, "ServiceUnavailable", NULL, false,
				 "the endpoint has no room for more request bodies now; retry");
	ep_count(NULL, GetCurrentTimestamp(), true);
}

/* One whole request: headers (NUL-terminated) and body */
static void
ep_handle(EpConn *c, char *headers, const char *body, int body_len)
{
	char	   *target = ep_header(headers, "X-Amz-Target");
	char	   *host = ep_header(headers, "Host");
	char	   *connection = ep_header(headers, "Connection");
	Jsonb	   *request;
	const EpAction *a = NULL;
	char	   *dot;
	EpResult	res;
	char	   *prefix;
	EpAuth		auth;
	const char *auth_error;
	char	   *auth_message = NULL;
	TimestampTz start = GetCurrentTimestamp();
	bool		subscription;
	const char *claim_error;
	uint64		sub_key = 0;
	int			sub_slot = -1;
	uint32		sub_gen = 0;

	c->keep_alive = !(connection && pg_strcasecmp(connection, "close") == 0) &&
		strncmp(headers, "HTTP/1.0", 8) != 0 && strstr(headers, " HTTP/1.0\r") == NULL;
	if (strncmp(headers, "POST ", 5) != 0)
	{
		ep_error(c, 400, "UnsupportedOperation", NULL, true, "only POST requests are served");
		ep_count(NULL, start, true);
		return;
	}
	dot = target ? strchr(target, '.') : NULL;
	if (dot != NULL && strncmp(target, KINESIS ".", dot - target + 1) == 0)
		c->service = KINESIS;
	else
		c->service = SQS;
	if (target == NULL)
	{
		char	   *ctype = ep_header(headers, "Content-Type");

		if (ctype != NULL && pg_strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0)
		{
			/*
			 * The query protocol, the action in the form: SNS, or SQS's
			 * older protocol (signed for service sqs, or Version 2012-11-05)
			 */
			char	   *action;
			char	   *authz = ep_header(headers, "Authorization");
			char	   *version;

			c->service = SNS;
			request = ep_parse_form(body, body_len);
			if (request == NULL)
			{
				ep_error(c, 400, "InvalidParameter", NULL, true,
						 "a field of the form is not valid UTF-8 text (or holds a NUL)");
				ep_count(NULL, start, true);
				return;
			}
			action = msgq_attr_str_or_null(&request->root, "Action");
			version = msgq_attr_str_or_null(&request->root, "Version");
			if ((authz != NULL && strstr(authz, "/sqs/aws4_request") != NULL) ||
				(version != NULL && strcmp(version, "2012-11-05") == 0))
				c->service = SQSQ;
			a = action ? ep_find(c->service, action) : NULL;
			if (a == NULL)
			{
				ep_error(c, 400, "InvalidAction", NULL, true,
						 psprintf("action %s is not valid for this endpoint", action ? action : "(none)"));
				ep_count(NULL, start, true);
				return;
			}
			goto authenticate;
		}
	}
	if (target == NULL || dot == NULL ||
		(strncmp(target, SQS ".", dot - target + 1) != 0 && strncmp(target, KINESIS ".", dot - target + 1) != 0))
	{
		ep_error(c, 400, "UnsupportedOperation", NULL, true,
				 "X-Amz-Target must name an AmazonSQS (AWS JSON 1.0) or Kinesis_20131202 (AWS JSON 1.1) action");
		ep_count(NULL, start, true);
		return;
	}
	a = ep_find(c->service, dot + 1);
	if (a == NULL)
	{
		ep_error(c, 400, strcmp(c->service, SQS) == 0 ? "UnsupportedOperation" : "UnknownOperationException",
				 NULL, true, psprintf("action %s is not supported", target));
		ep_count(NULL, start, true);
		return;
	}
	request = ep_parse_body(body, body_len);
	if (request == NULL)
	{
		ep_error(c, 400, "InvalidParameterValue", NULL, true, "the request body must be a JSON object");
		ep_count(a, start, true);
		return;
	}
authenticate:
	auth_error = ep_parse_auth(headers, body, body_len, &auth, &auth_message);
	if (auth_error != NULL)
	{
		ep_error(c, strcmp(auth_error, "IncompleteSignature") == 0 ? 400 : 403, auth_error, NULL, true,
				 auth_message);
		ep_count(a, start, true);
		return;
	}
	prefix = psprintf("http://%s/%s/", host ? host : "localhost", msgq_endpoint_database);
	subscription = strcmp(a->name, "SubscribeToShard") == 0;
	if (subscription && c->h2 == NULL)
	{
		ep_error(c, 400, "InvalidArgumentException", NULL, true,
				 "SubscribeToShard's event stream needs HTTP/2");
		ep_count(a, start, true);
		return;
	}
	if (subscription)
	{
		/*
		 * Authenticated before anything else: only a request that may read
		 * the stream can end another subscription.
		 */
		ErrorData  *auth_err = ep_authenticate(&auth);

		if (auth_err != NULL)
		{
			ep_error_from(c, auth_err);
			ep_count(a, start, true);
			return;
		}
		sub_key = ep_subscription_key(request);
		if ((claim_error = ep_subscription_check(sub_key)) != NULL)
		{
			ep_error(c, 400, claim_error, NULL, true,
					 strcmp(claim_error, "ResourceInUseException") == 0 ?
					 "the consumer subscribed to this shard less than 5 seconds ago" :
					 "too many subscriptions at once");
			ep_count(a, start, true);
			return;
		}
	}
	ep_run(a, request, prefix, &auth, &res);
	if (res.error != NULL)
	{
		ep_error_from(c, res.error);
		ep_count(a, start, true);
		return;
	}
	if (subscription)
		sub_slot = ep_subscription_take(sub_key, &sub_gen);
	if (res.wait_seconds > 0 || subscription)
	{
		/*
		 * A receive that found nothing: park until a commit, or the end of
		 * the wait.  A subscription: its event stream begins, with the
		 * records read so far, and goes on for five minutes.
		 */
		EpPark	   *p = MemoryContextAllocZero(ep_cxt, sizeof(EpPark));

		p->conn = c;
		p->stream = c->stream;
		p->request = (Jsonb *) MemoryContextAlloc(ep_cxt, VARSIZE(request));
		memcpy(p->request, request, VARSIZE(request));
		p->prefix = MemoryContextStrdup(ep_cxt, prefix);
		/* later attempts run as the role the request was authenticated as */
		p->role = res.role;
		p->since = start;
		p->action = a;
		/* a subscription's five minutes are on msgq's clock (msgq.clock_offset) */
		p->until = subscription ?
			TimestampTzPlusMilliseconds(msgq_now(), (int64) EP_SUB_SECS * 1000) :
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) Min(res.wait_seconds, 20) * 1000);
		dlist_push_tail(&ep_parked, &p->node);
		c->nparked++;
		pg_atomic_fetch_add_u32(&ep_shared->parked, 1);
		if (subscription)
		{
			p->subscription = true;
			p->sub_slot = sub_slot;
			p->sub_gen = sub_gen;
			ep_subscription_begin(c, p, &res);
			if (ep_subscription_at_end(&res))
			{
				/* a closed shard already read to its end: one event, then the end */
				ep_count(a, start, false);
				ep_park_free(p);
			}
		}
		return;
	}
	ep_answer(c, a, &res);
	ep_count(a, start, false);
}

static const EpAction *
ep_find(const char *service, const char *name)
{
	int			i;

	for (i = 0; i < lengthof(ep_actions); i++)
		if (strcmp(ep_actions[i].service, service) == 0 && strcmp(ep_actions[i].name, name) == 0)
			return &ep_actions[i];
	return NULL;
}

/*
 * A parked receive, after a wake-up or at the end of its wait: try again,
 * and answer when it got messages, failed, or its time is up.  False when
 * it stays parked.
 */
static bool
ep_retry_parked(EpPark *p, TimestampTz now, bool woken)
{
	EpResult	res;
	bool		timed_out = now >= p->until;
	EpAuth		auth;
	EpConn	   *c = p->conn;
	const EpAction *a = p->action;

	if (c->h2 != NULL && !ep_h2_stream_open(c->h2, p->stream))
	{
		ep_park_free(p);		/* the client reset the stream */
		return true;
	}
	if (p->subscription)
		return ep_subscription_next(p, now, woken);
	if (!woken && !timed_out)
		return false;
	memset(&auth, 0, sizeof(auth));
	auth.role_known = true;
	auth.role = p->role;
	ep_run(a, p->request, p->prefix, &auth, &res);
	if (res.error == NULL && res.wait_seconds > 0 && !timed_out)
		return false;
	c->service = a->service;
	c->stream = p->stream;
	if (res.error != NULL)
	{
		ep_error_from(c, res.error);
		ep_count(a, p->since, true);
	}
	else
	{
		ep_answer(c, a, &res);
		ep_count(a, p->since, false);
	}
	ep_park_free(p);
	return true;
}

/* ------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------
 */

/* An HTTP/2 connection: frames in, whole requests handled, frames out */
static void
ep_process_h2(EpConn *c)
{
	EpH2Request req;

	if (c->in.len > 0)
	{
		if (!ep_h2_recv(c->h2, c->in.data, c->in.len))
			c->closing = true;	/* a protocol error: GOAWAY is sent */
		resetStringInfo(&c->in);
		ep_buf_release(&c->in);
	}
	/* no new request while answers already wait (a client that does not read) */
	while (ep_h2_queued(c->h2) + (c->out.len - c->out_sent) <= EP_MAX_PENDING &&
		   ep_h2_next(c->h2, &req))
	{
		c->stream = req.stream_id;
		c->keep_alive = true;
		if (req.too_big || req.refused)
			ep_refuse_body(c, req.headers, req.too_big);
		else
			ep_handle_safely(c, req.headers, req.body, req.body_len);
		pfree(req.headers);
		pfree(req.body);
		ep_body_release(req.reserved);
	}
	/* the oldest stream not whole yet: PINGs and other frames do not renew it */
	c->request_started = ep_h2_oldest_incomplete(c->h2);
}

/* Parse whole requests out of c->in, handling each */
static void
ep_process_input(EpConn *c)
{
	int			consumed = 0;

	if (c->h2 == NULL && c->in.len > 0 && c->in.data[0] == 'P' &&
		strncmp(c->in.data, EP_H2_PREFACE, Min(c->in.len, 4)) == 0)
	{
		/* HTTP/2 with prior knowledge: "PRI * HTTP/2.0..." */
		if (c->in.len < EP_H2_PREFACE_LEN)
			return;
		if (memcmp(c->in.data, EP_H2_PREFACE, EP_H2_PREFACE_LEN) == 0)
			c->h2 = ep_h2_create(ep_cxt, EP_MAX_HEADER, EP_MAX_BODY);
	}
	if (c->h2 != NULL)
	{
		ep_process_h2(c);
		return;
	}
	/*
	 * Requests in order; none while one is parked or while the answers
	 * already waiting for the socket are over EP_MAX_PENDING (a client that
	 * does not read gets no more work done).  The input is compacted once.
	 */
	while (c->nparked == 0 && !c->closing && c->in.len > consumed &&
		   c->out.len - c->out_sent <= EP_MAX_PENDING)
	{
		char	   *start = c->in.data + consumed;
		char	   *end = strstr(start, "\r\n\r\n");
		char	   *headers;
		char	   *len_text;
		long		len = 0;
		int			head_len;

		if (end == NULL)
		{
			if (c->in.len - consumed > EP_MAX_HEADER)
			{
				c->keep_alive = false;
				ep_error(c, 400, "InvalidParameterValue", NULL, true, "request headers over 16 kB");
			}
			break;
		}
		head_len = end - start + 4;
		headers = pnstrdup(start, head_len - 2);
		len_text = ep_header(headers, "Content-Length");
		if (len_text != NULL)
		{
			char	   *e;

			errno = 0;
			len = strtol(len_text, &e, 10);
			if (errno != 0 || *e != '\0' || len < 0)
			{
				c->keep_alive = false;
				ep_error(c, 400, "InvalidParameterValue", NULL, true, "a bad Content-Length");
				break;
			}
		}
		c->stream = 0;
		if (len > EP_MAX_BODY)
		{
			c->keep_alive = false;
			ep_refuse_body(c, headers, true);
			break;
		}
		if (c->in.len - consumed < head_len + len)
		{
			/* the body is still coming: hold room for all of it, or refuse it */
			if (c->reserved == 0)
			{
				if (!ep_body_reserve((size_t) len))
				{
					c->keep_alive = false;
					ep_refuse_body(c, headers, false);
					break;
				}
				c->reserved = (size_t) len;
			}
			c->want = head_len + (int) len;	/* from the start, once compacted */
			break;
		}
		ep_handle_safely(c, headers, start + head_len, (int) len);
		ep_body_release(c->reserved);
		c->reserved = 0;
		c->want = 0;
		consumed += head_len + len;
		c->request_started = c->in.len > consumed ? GetCurrentTimestamp() : 0;
		pfree(headers);
	}
	if (consumed > 0)
	{
		/* drop the requests answered from the input */
		memmove(c->in.data, c->in.data + consumed, c->in.len - consumed);
		c->in.len -= consumed;
		c->in.data[c->in.len] = '\0';
	}
	ep_buf_release(&c->in);
}

/*
 * How much the connection may read now.  HTTP/1.1: the request being
 * received up to the end of the body it holds room for, and then (or with
 * no request begun) the next request's headers, EP_MAX_HEADER + 1 bytes to
 * tell headers that are too long.  HTTP/2 hands all it reads to its session
 * (h2.c bounds the bodies).
 */
static int
ep_read_room(EpConn *c)
{
	int			limit = c->h2 != NULL ? EP_MAX_INPUT :
		Min(c->want + EP_MAX_HEADER + 1, EP_MAX_INPUT);

	return Max(Min(EP_READ_BUDGET, limit - c->in.len), 0);
}

/* Ask epoll for what the connection waits for: input, output, or both */
static void
ep_poll(EpConn *c)
{
	uint32		want = EPOLLRDHUP;
	struct epoll_event ev;

	/*
	 * No reading past what the connection has room for (a whole request
	 * behind a parked one, a body past its room in the body budget) or while
	 * answers wait for the socket: TCP then holds the client back.  A
	 * hang-up is still seen.
	 */
	if (ep_read_room(c) > 0 && c->out.len - c->out_sent <= EP_MAX_PENDING)
		want |= EPOLLIN;
	if (c->out.len > c->out_sent)
		want |= EPOLLOUT;
	if (want == c->polled)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(ep_epoll, c->polled ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) == 0)
		c->polled = want;
	else
		c->closing = true;
}

static void
ep_accept(void)
{
	for (;;)
	{
		struct sockaddr_in addr;
		socklen_t	alen = sizeof(addr);
		pgsocket	fd = accept(ep_listen, (struct sockaddr *) &addr, &alen);
		EpConn	   *c;
		int			one = 1;

		if (fd == PGINVALID_SOCKET)
			return;				/* EAGAIN, or an error: the next event */
		if (ep_nconns >= ep_max_conns)
		{
			/* full: accepted and closed at once, so the backlog drains */
			closesocket(fd);
			continue;
		}
		if (!pg_set_noblock(fd))
		{
			closesocket(fd);
			continue;
		}
		(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (char *) &one, sizeof(one));
		c = MemoryContextAllocZero(ep_cxt, sizeof(EpConn));
		c->fd = fd;
		c->last_activity = GetCurrentTimestamp();
		c->keep_alive = true;
		dlist_push_tail(&ep_conns, &c->node);
		ep_nconns++;
		ep_poll(c);
		if (c->closing)
			ep_close(c);
	}
}

/*
 * Read what the socket has, up to EP_READ_BUDGET a pass (epoll is
 * level-triggered: the rest next pass); false when the connection is done.
 */
static bool
ep_read(EpConn *c)
{
	static char buf[65536];
	int			budget = ep_read_room(c);

	while (budget > 0)
	{
		ssize_t		n = recv(c->fd, buf, Min(sizeof(buf), budget), 0);

		if (n > 0)
		{
			if (c->in.len == 0 && c->h2 == NULL)
				c->request_started = GetCurrentTimestamp();
			ep_buf_append(&c->in, buf, (int) n);
			c->last_activity = GetCurrentTimestamp();
			budget -= n;
			if (n < sizeof(buf))
				return true;
			continue;
		}
		if (n == 0)
			return false;
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	}
	return true;
}

/*
 * Write what the socket takes; false when the connection is done.  On
 * HTTP/2, frames are taken from the session while what is unsent stays
 * under EP_MAX_PENDING (the rest waits in the session).
 */
static bool
ep_write(EpConn *c)
{
	for (;;)
	{
		if (c->h2 != NULL && c->out.len - c->out_sent <= EP_MAX_PENDING)
		{
			ep_buf_append(&c->out, "", 0);
			if (!ep_h2_send(c->h2, &c->out, EP_MAX_PENDING))
				c->closing = true;
		}
		if (c->out_sent >= c->out.len)
			break;
		while (c->out_sent < c->out.len)
		{
			ssize_t		n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent, 0);

			if (n < 0)
				return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
			c->out_sent += n;
			c->last_activity = GetCurrentTimestamp();
		}
		resetStringInfo(&c->out);
		c->out_sent = 0;
		if (c->h2 == NULL || !ep_h2_want_write(c->h2))
			break;
	}
	if (c->out.data != NULL)
	{
		resetStringInfo(&c->out);
		ep_buf_release(&c->out);
	}
	c->out_sent = 0;
	return !c->closing;
}

/* After input or an answer: write, ask for the next events, or close */
static void
ep_service(EpConn *c, bool ok)
{
	if (ok)
		ok = ep_write(c);
	if (ok)
	{
		ep_poll(c);
		ok = !c->closing || c->out.len > c->out_sent;
	}
	if (!ok)
		ep_close(c);
}

static void
ep_listen_socket(void)
{
	struct sockaddr_in addr;
	int			one = 1;

	ep_listen = socket(AF_INET, SOCK_STREAM, 0);
	if (ep_listen == PGINVALID_SOCKET)
		ereport(ERROR, (errcode_for_socket_access(), errmsg("could not create the endpoint's socket: %m")));
	(void) setsockopt(ep_listen, SOL_SOCKET, SO_REUSEADDR, (char *) &one, sizeof(one));
	/* the workers share the port: the kernel spreads new connections */
	if (msgq_endpoint_workers > 1 &&
		setsockopt(ep_listen, SOL_SOCKET, SO_REUSEPORT, (char *) &one, sizeof(one)) < 0)
		ereport(ERROR, (errcode_for_socket_access(), errmsg("could not share the endpoint's port: %m")));
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16) msgq_endpoint_port);
	if (inet_pton(AF_INET, msgq_endpoint_listen_address, &addr.sin_addr) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("msgq.endpoint_listen_address \"%s\" is not an IPv4 address",
						msgq_endpoint_listen_address)));
	if (bind(ep_listen, (struct sockaddr *) &addr, sizeof(addr)) < 0)
		ereport(ERROR, (errcode_for_socket_access(),
						errmsg("could not bind the endpoint to %s:%d: %m",
							   msgq_endpoint_listen_address, msgq_endpoint_port)));
	if (listen(ep_listen, 1024) < 0 || !pg_set_noblock(ep_listen))
		ereport(ERROR, (errcode_for_socket_access(), errmsg("could not listen on the endpoint's socket: %m")));
}

/* Close slow and idle clients (looked at once a second) */
static void
ep_expire(TimestampTz now)
{
	dlist_mutable_iter it;

	dlist_foreach_modify(it, &ep_conns)
	{
		EpConn	   *c = dlist_container(EpConn, node, it.cur);
		bool		slow;

		if (c->nparked > 0)
			continue;
		if (c->h2 != NULL)
			slow = c->request_started != 0;
		else
			slow = c->in.len > 0 && c->request_started != 0;	/* headers or body incomplete */
		if ((slow && now - c->request_started > (int64) msgq_endpoint_request_timeout_ms * 1000) ||
			now - c->last_activity > (int64) EP_IDLE_TIMEOUT_MS * 1000)
		{
			if (c->h2 != NULL)
			{
				/* HTTP/2: say goodbye (GOAWAY), as far as the socket takes it */
				ep_buf_append(&c->out, "", 0);
				ep_h2_goaway(c->h2, &c->out);
				c->closing = true;
				(void) ep_write(c);
			}
			ep_close(c);
		}
	}
}

/* At exit: commits stop setting this worker's latch */
static void
ep_detach(int code, Datum arg)
{
	dlist_iter	it;
	uint32		parked = 0;
	int			i;

	ep_shared->latch[ep_worker] = NULL;
	/* this worker's parked requests and subscriptions end with it */
	dlist_foreach(it, &ep_parked)
		parked++;
	if (parked > 0)
		pg_atomic_fetch_sub_u32(&ep_shared->parked, parked);
	SpinLockAcquire(&ep_shared->sub_lock);
	for (i = 0; i < EP_MAX_SUBSCRIPTIONS; i++)
		if (ep_shared->subs[i].worker == ep_worker)
			ep_shared->subs[i].key = 0;
	SpinLockRelease(&ep_shared->sub_lock);
}

void
msgq_endpoint_main(Datum main_arg)
{
	uint32		wait_event;
	WaitEventSet *set;
	TimestampTz last_expire = 0;
	MemoryContext loop_cxt;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(msgq_endpoint_database, NULL, 0);
	msgq_pin_process_search_path();
	ep_cxt = AllocSetContextCreate(TopMemoryContext, "msgq endpoint", ALLOCSET_DEFAULT_SIZES);
	loop_cxt = AllocSetContextCreate(ep_cxt, "msgq endpoint pass", ALLOCSET_DEFAULT_SIZES);
	/* as many connections as the file limit allows, raised to its hard limit */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		{
			if (rl.rlim_cur < rl.rlim_max)
			{
				rl.rlim_cur = rl.rlim_max;
				(void) setrlimit(RLIMIT_NOFILE, &rl);
				(void) getrlimit(RLIMIT_NOFILE, &rl);
			}
			if (rl.rlim_cur != RLIM_INFINITY && (long) rl.rlim_cur - 128 < EP_MAX_CONNECTIONS)
				ep_max_conns = Max((int) rl.rlim_cur - 128, 16);
		}
	}
	ep_listen_socket();

	/*
	 * The connections are in an epoll set of their own, kept across passes
	 * (a connection is added once, changed when it has output to write);
	 * the process waits on its latch, postmaster death and that set.
	 */
	ep_epoll = epoll_create1(EPOLL_CLOEXEC);
	if (ep_epoll < 0)
		ereport(ERROR, (errcode_for_socket_access(), errmsg("could not create the endpoint's epoll set: %m")));
	{
		struct epoll_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = NULL;		/* the listening socket */
		if (epoll_ctl(ep_epoll, EPOLL_CTL_ADD, ep_listen, &ev) < 0)
			ereport(ERROR, (errcode_for_socket_access(), errmsg("could not watch the endpoint's socket: %m")));
	}
	set = msgq_create_wait_event_set(3);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, ep_epoll, NULL, NULL);
	ep_worker = DatumGetInt32(main_arg);
	ep_shared->latch[ep_worker] = MyLatch;
	/* subscriptions of this worker's previous run ended with it */
	{
		int			i;

		SpinLockAcquire(&ep_shared->sub_lock);
		for (i = 0; i < EP_MAX_SUBSCRIPTIONS; i++)
			if (ep_shared->subs[i].worker == ep_worker)
				ep_shared->subs[i].key = 0;
		SpinLockRelease(&ep_shared->sub_lock);
	}
	before_shmem_exit(ep_detach, (Datum) 0);
	wait_event = MSGQ_WAIT_EVENT("MsgqEndpoint");
	ereport(LOG, (errmsg("msgq endpoint %d of %d listening on %s:%d for database \"%s\"",
						 ep_worker + 1, msgq_endpoint_workers,
						 msgq_endpoint_listen_address, msgq_endpoint_port, msgq_endpoint_database)));

	for (;;)
	{
		WaitEvent	events[3];
		struct epoll_event ready[EP_EVENTS];
		bool		woken = false;
		int			nready,
					i;
		long		timeout = 1000;
		TimestampTz now = GetCurrentTimestamp();
		dlist_iter	pit;
		dlist_mutable_iter mit;
		MemoryContext old = MemoryContextSwitchTo(loop_cxt);

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		dlist_foreach(pit, &ep_parked)
		{
			EpPark	   *p = dlist_container(EpPark, node, pit.cur);

			if (p->subscription)
			{
				timeout = Min(timeout, Max(Min((long) ((p->until - msgq_now()) / 1000),
											   (long) ((p->last_event - now) / 1000) + EP_SUB_HEARTBEAT_MS), 0));
				if (p->retry_at != 0)
					timeout = Min(timeout, Max((long) ((p->retry_at - now + 999) / 1000), 0));
			}
			else
				timeout = Min(timeout, Max((long) ((p->until - now) / 1000), 0));
		}
		nready = WaitEventSetWait(set, timeout, events, lengthof(events), wait_event);
		for (i = 0; i < nready; i++)
			if (events[i].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				woken = true;
			}

		/* the sockets' events (the set is level-triggered: the rest next pass) */
		nready = epoll_wait(ep_epoll, ready, lengthof(ready), 0);
		for (i = 0; i < nready; i++)
		{
			EpConn	   *c = (EpConn *) ready[i].data.ptr;
			bool		ok = true;

			if (c == NULL)
			{
				ep_accept();
				continue;
			}
			if (ready[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				ok = ep_read(c);
			else if (ready[i].events & EPOLLRDHUP)
				ok = false;		/* hung up while not being read */
			if (ok)
				ep_process_input(c);
			ep_service(c, ok);
		}
		now = GetCurrentTimestamp();

		/*
		 * Parked long polls and subscriptions: try again after a wake-up,
		 * answer at their end; their connections (and others written to
		 * outside their own events) are written to once all have been tried.
		 */
		dlist_foreach_modify(mit, &ep_parked)
		{
			EpPark	   *p = dlist_container(EpPark, node, mit.cur);
			EpConn	   *c = p->conn;

			if (ep_retry_parked(p, now, woken))
				ep_mark(c);
		}
		while (!dlist_is_empty(&ep_dirty))
		{
			EpConn	   *c = dlist_container(EpConn, dirty_node, dlist_pop_head_node(&ep_dirty));

			c->dirty = false;
			if (c->h2 == NULL && c->nparked == 0 && c->in.len > 0)
				ep_process_input(c);	/* a request sent behind a parked one */
			ep_service(c, true);
		}

		if (now - last_expire >= USECS_PER_SEC)
		{
			ep_expire(now);
			last_expire = now;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_cxt);
	}
}

/*
 * msgq._endpoint_error(aws_error text, message text): raise an AWS error
 * from an action's statement (a bad NextToken, a MaxResults out of range):
 * the detail names it, as every msgq error's does, with its SQLSTATE.
 */
Datum
msgq_endpoint_error(PG_FUNCTION_ARGS)
{
	char	   *code = PG_ARGISNULL(0) ? "InvalidArgumentException" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *message = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			sqlstate = ERRCODE_MSGQ_INVALID_ARGUMENT;

	if (strcmp(code, "InvalidParameterValue") == 0)
		sqlstate = ERRCODE_MSGQ_INVALID_PARAMETER_VALUE;
	else if (strcmp(code, "ResourceNotFoundException") == 0)
		sqlstate = ERRCODE_MSGQ_RESOURCE_NOT_FOUND;
	else if (strcmp(code, "ExpiredNextTokenException") == 0)
		sqlstate = ERRCODE_MSGQ_EXPIRED_ITERATOR;
	else if (strcmp(code, "InvalidParameter") == 0)
		sqlstate = ERRCODE_MSGQ_INVALID_PARAMETER;
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg_internal("%s", message),
			 errdetail_internal("AWS error code: %s", code)));
	PG_RETURN_NULL();
}

/* ------------------------------------------------------------------------
 * Access keys
 * ------------------------------------------------------------------------
 */

/* n characters of alphabet, at random */
static void
ep_random_text(char *out, int n, const char *alphabet)
{
	uint8		buf[64];
	int			len = strlen(alphabet);
	int			i;

	Assert(n <= (int) sizeof(buf));
	msgq_random_bytes(buf, n);
	for (i = 0; i < n; i++)
		out[i] = alphabet[buf[i] % len];
	out[n] = '\0';
}

/* msgq.create_access_key(role regrole) */
PG_FUNCTION_INFO_V1(msgq_create_access_key);
Datum
msgq_create_access_key(PG_FUNCTION_ARGS)
{
	Oid			role = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	MsgqCall	call;
	char		id[21];
	char		secret[41];
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	msgq_check_preloaded();
	if (!OidIsValid(role) || GetUserNameFromId(role, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("an access key needs an existing role"),
				 errdetail_internal("AWS error code: InvalidParameterValue")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	msgq_call_enter(&call);
	if (!superuser_arg(call.caller) && !has_privs_of_role(call.caller, role))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied to create an access key for role %s", GetUserNameFromId(role, false)),
				 errdetail_internal("AWS error code: AccessDenied")));
	memcpy(id, "AKIA", 4);
	ep_random_text(id + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
	ep_random_text(secret, 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
	/* the secret is stored encrypted only (access_key.c) */
	if (SPI_execute_with_args("INSERT INTO msgq.endpoint_credential VALUES ($1, $2, $3, $4)",
							  4, (Oid[]) {TEXTOID, BYTEAOID, OIDOID, TIMESTAMPTZOID},
							  (Datum[]) {CStringGetTextDatum(id), PointerGetDatum(msgq_access_key_seal(id, secret)),
							  ObjectIdGetDatum(role), TimestampTzGetDatum(GetCurrentTimestamp())},
							  NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the access key");
	msgq_call_leave(&call);
	values[0] = CStringGetTextDatum(id);
	values[1] = CStringGetTextDatum(secret);
	explicit_bzero(secret, sizeof(secret));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* msgq.delete_access_key(access_key_id text) */
PG_FUNCTION_INFO_V1(msgq_delete_access_key);
Datum
msgq_delete_access_key(PG_FUNCTION_ARGS)
{
	char	   *id = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;

	msgq_check_preloaded();
	msgq_call_enter(&call);
	(void) msgq_access_key_manage(&call, id, "delete", NULL);
	if (SPI_execute_with_args("DELETE FROM msgq.endpoint_credential WHERE access_key_id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(id)},
							  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the access key");
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/* msgq._endpoint_metrics(): per action, since the server started */
PG_FUNCTION_INFO_V1(msgq_endpoint_metrics);
Datum
msgq_endpoint_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	msgq_check_preloaded();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (i = 0; i <= (int) lengthof(ep_actions); i++)
	{
		EpStats    *st = &ep_shared->stats[i < (int) lengthof(ep_actions) ? i : EP_MAX_ACTIONS];
		uint64		n = pg_atomic_read_u64(&st->requests);
		Datum		v[6];
		bool		nulls[6] = {i == (int) lengthof(ep_actions), false, false, false, n == 0, n == 0};

		v[0] = CStringGetTextDatum(i < (int) lengthof(ep_actions) ?
								   (strcmp(ep_actions[i].service, SQS) == 0 ? "sqs" :
									strcmp(ep_actions[i].service, SNS) == 0 ? "sns" :
									strcmp(ep_actions[i].service, SQSQ) == 0 ? "sqs-query" : "kinesis") : "");
		v[1] = CStringGetTextDatum(i < (int) lengthof(ep_actions) ? ep_actions[i].name : "(none)");
		v[2] = Int64GetDatum((int64) n);
		v[3] = Int64GetDatum((int64) pg_atomic_read_u64(&st->errors));
		v[4] = Float8GetDatum(n == 0 ? 0 : (double) pg_atomic_read_u64(&st->latency_us) / n / 1000.0);
		v[5] = Float8GetDatum((double) pg_atomic_read_u64(&st->max_latency_us) / 1000.0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}
