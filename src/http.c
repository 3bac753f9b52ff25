/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The worker's HTTP client, for the http and https subscriptions.
 *
 * Transfers are libcurl easy handles in one multi handle, driven by the
 * multi "socket" interface: libcurl tells us which sockets it watches
 * (socket callback) and when it wants to be called back (timer callback),
 * and msgq_http_wait() waits on one WaitEventSet made of the process latch,
 * postmaster death and those sockets.  Nothing here blocks on the network:
 * name resolution, connects, TLS and transfers all advance from the wait
 * loop, and a publisher's commit (which sets the latch) wakes the worker
 * at once even while transfers are in flight.
 *
 * Transfers run outside any transaction.  Their outcome is queued here and
 * read back by delivery.c with msgq_http_result(), which records it in a
 * short transaction.  Every transfer has a total timeout; no redirect is
 * followed (a 3xx is an answer); only http and https URLs are accepted;
 * response bodies are discarded as they arrive.
 *
 * Memory is the worker's own context, never a transaction's: a handle
 * outlives the transactions between its start and its end.
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include <curl/curl.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "http.h"

/* One socket libcurl asked us to watch */
typedef struct HttpSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN, _OUT or _INOUT */
} HttpSocket;

/* One transfer in flight */
typedef struct HttpTransfer
{
	uint64		tag;
	struct curl_slist *headers;
	char		errbuf[CURL_ERROR_SIZE];
	char		body[MSGQ_HTTP_BODY_KEPT];	/* the response's start */
	size_t		body_len;
} HttpTransfer;

struct MsgqHttp
{
	MemoryContext cxt;
	CURLM	   *multi;

	HttpSocket *sockets;
	int			nsockets;
	int			maxsockets;

	bool		timer_set;		/* libcurl wants a call at timer_at */
	TimestampTz timer_at;

	MsgqHttpResult *results;	/* finished, not read yet */
	int			results_head;
	int			results_tail;
	int			maxresults;
};

static bool curl_initialized = false;

/* libcurl's socket callback: start, change or stop watching a socket */
static int
http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	MsgqHttp   *http = (MsgqHttp *) userp;
	int			i;

	for (i = 0; i < http->nsockets; i++)
		if (http->sockets[i].fd == fd)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < http->nsockets)
			http->sockets[i] = http->sockets[--http->nsockets];
		return 0;
	}
	if (i == http->nsockets)
	{
		if (http->nsockets == http->maxsockets)
		{
			/*
			 * No ereport may leave a libcurl callback: plain realloc, and a
			 * failure fails the transfer through libcurl.
			 */
			HttpSocket *more = realloc(http->sockets,
									   sizeof(HttpSocket) * http->maxsockets * 2);

			if (more == NULL)
				return -1;
			http->sockets = more;
			http->maxsockets *= 2;
		}
		http->sockets[i].fd = fd;
		http->nsockets++;
	}
	http->sockets[i].what = what;
	return 0;
}

/* libcurl's timer callback: when to call curl_multi_socket_action next */
static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	MsgqHttp   *http = (MsgqHttp *) userp;

	if (timeout_ms < 0)
		http->timer_set = false;
	else
	{
		http->timer_set = true;
		http->timer_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 timeout_ms);
	}
	return 0;
}

/* Response bodies are not kept */
static size_t
http_keep_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpTransfer *t = (HttpTransfer *) userdata;
	size_t		n = size * nmemb;
	size_t		room = sizeof(t->body) - 1 - t->body_len;

	/* the start of the response is kept, the rest read and dropped */
	memcpy(t->body + t->body_len, ptr, Min(n, room));
	t->body_len += Min(n, room);
	return n;
}

static void
http_check_multi(CURLMcode code, const char *what)
{
	if (code != CURLM_OK && code != CURLM_BAD_SOCKET)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("libcurl %s failed: %s", what, curl_multi_strerror(code))));
}

static void
http_push_result(MsgqHttp *http, const MsgqHttpResult *res)
{
	if (http->results_head == http->results_tail)
		http->results_head = http->results_tail = 0;
	if (http->results_tail == http->maxresults)
	{
		http->maxresults *= 2;
		http->results = repalloc(http->results,
								 sizeof(MsgqHttpResult) * http->maxresults);
	}
	http->results[http->results_tail++] = *res;
}

/* Move every finished transfer from libcurl to the result queue */
static void
http_collect(MsgqHttp *http)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(http->multi, &left)) != NULL)
	{
		CURL	   *easy = msg->easy_handle;
		CURLcode	code = msg->data.result;
		HttpTransfer *t = NULL;
		MsgqHttpResult res;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);

		memset(&res, 0, sizeof(res));
		res.tag = t->tag;
		memcpy(res.body, t->body, t->body_len);
		res.body[t->body_len] = '\0';
		if (code == CURLE_OK)
			curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
		else
		{
			res.timed_out = (code == CURLE_OPERATION_TIMEDOUT);
			strlcpy(res.error, t->errbuf[0] ? t->errbuf : curl_easy_strerror(code),
					sizeof(res.error));
		}
		if (code == CURLE_OK && res.status == 0)
			strlcpy(res.error, "no HTTP status in the response", sizeof(res.error));

		curl_multi_remove_handle(http->multi, easy);
		curl_easy_cleanup(easy);
		curl_slist_free_all(t->headers);
		pfree(t);
		http_push_result(http, &res);
	}
}

static void
http_action(MsgqHttp *http, curl_socket_t fd, int flags)
{
	int			running;

	http_check_multi(curl_multi_socket_action(http->multi, fd, flags, &running),
					 "socket action");
}

MsgqHttp *
msgq_http_create(void)
{
	MemoryContext cxt;
	MsgqHttp   *http;

	if (!curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not initialize libcurl")));
		curl_initialized = true;
	}

	cxt = AllocSetContextCreate(TopMemoryContext, "msgq http",
								ALLOCSET_SMALL_SIZES);
	http = MemoryContextAllocZero(cxt, sizeof(MsgqHttp));
	http->cxt = cxt;
	http->maxsockets = 16;
	http->sockets = malloc(sizeof(HttpSocket) * http->maxsockets);
	if (http->sockets == NULL)
	{
		MemoryContextDelete(cxt);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	http->maxresults = 16;
	http->results = MemoryContextAlloc(cxt, sizeof(MsgqHttpResult) * http->maxresults);

	http->multi = curl_multi_init();
	if (http->multi == NULL)
	{
		free(http->sockets);
		MemoryContextDelete(cxt);
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not create a libcurl multi handle")));
	}
	curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
	curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
	return http;
}

/*
 * Start a POST of body to url.  Its outcome comes back, under tag, from
 * msgq_http_result(); a transfer that cannot even start comes back at once
 * as a failure.
 */
void
msgq_http_post(MsgqHttp *http, uint64 tag, const char *url,
			   const char *const *headers, int nheaders,
			   const char *body, size_t len, int timeout_ms)
{
	HttpTransfer *t;
	CURL	   *easy;
	CURLMcode	mcode;
	int			i;

	t = MemoryContextAllocZero(http->cxt, sizeof(HttpTransfer));
	t->tag = tag;
	easy = curl_easy_init();
	if (easy == NULL)
	{
		MsgqHttpResult res;

		memset(&res, 0, sizeof(res));
		res.tag = tag;
		strlcpy(res.error, "could not create a libcurl handle", sizeof(res.error));
		http_push_result(http, &res);
		pfree(t);
		return;
	}
	for (i = 0; i < nheaders; i++)
	{
		struct curl_slist *l = curl_slist_append(t->headers, headers[i]);

		if (l == NULL)
			break;
		t->headers = l;
	}
	/* no "Expect: 100-continue" round trip for large bodies */
	{
		struct curl_slist *l = curl_slist_append(t->headers, "Expect:");

		if (l != NULL)
			t->headers = l;
	}

	curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *) t);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(easy, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "msgq/1.0");
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
	curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_keep_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);

	mcode = curl_multi_add_handle(http->multi, easy);
	if (mcode != CURLM_OK)
	{
		MsgqHttpResult res;

		memset(&res, 0, sizeof(res));
		res.tag = tag;
		strlcpy(res.error, curl_multi_strerror(mcode), sizeof(res.error));
		curl_easy_cleanup(easy);
		curl_slist_free_all(t->headers);
		pfree(t);
		http_push_result(http, &res);
		return;
	}
}

/* Milliseconds from now to then, rounded up, never negative */
static long
http_ms_until(TimestampTz now, TimestampTz then)
{
	if (then <= now)
		return 0;
	return (long) ((then - now + 999) / 1000);
}

/*
 * Wait for the latch, a finished transfer or timeout_ms (-1: no limit),
 * advancing the transfers meanwhile.  Returns WL_LATCH_SET (the latch is
 * left set: the caller resets it), 0 when a result is ready, or
 * WL_TIMEOUT.  Exits the process on postmaster death.
 */
int
msgq_http_wait(MsgqHttp *http, long timeout_ms, uint32 wait_event_info)
{
	TimestampTz end = 0;
	WaitEvent  *events;
	int			maxevents;

	if (timeout_ms >= 0)
		end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		WaitEventSet *set;
		long		wait_ms = -1;
		int			nevents;
		int			i;
		bool		latch = false;

		if (http->timer_set && http->timer_at <= now)
		{
			http->timer_set = false;
			http_action(http, CURL_SOCKET_TIMEOUT, 0);
			http_collect(http);
		}
		if (http->results_head < http->results_tail)
			return 0;
		if (timeout_ms >= 0 && now >= end)
			return WL_TIMEOUT;

		if (timeout_ms >= 0)
			wait_ms = http_ms_until(now, end);
		if (http->timer_set)
		{
			long		t = http_ms_until(now, http->timer_at);

			if (wait_ms < 0 || t < wait_ms)
				wait_ms = t;
		}

		maxevents = 2 + http->nsockets;
		set = msgq_create_wait_event_set(maxevents);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (i = 0; i < http->nsockets; i++)
		{
			uint32		ev = 0;

			if (http->sockets[i].what & CURL_POLL_IN)
				ev |= WL_SOCKET_READABLE;
			if (http->sockets[i].what & CURL_POLL_OUT)
				ev |= WL_SOCKET_WRITEABLE;
			if (ev != 0)
				AddWaitEventToSet(set, ev, http->sockets[i].fd, NULL, NULL);
		}
		events = palloc(sizeof(WaitEvent) * maxevents);
		nevents = WaitEventSetWait(set, wait_ms, events, maxevents, wait_event_info);
		FreeWaitEventSet(set);

		for (i = 0; i < nevents; i++)
		{
			int			flags = 0;

			if (events[i].events & WL_LATCH_SET)
			{
				latch = true;
				continue;
			}
			if (events[i].events & WL_SOCKET_READABLE)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & WL_SOCKET_WRITEABLE)
				flags |= CURL_CSELECT_OUT;
			if (flags != 0)
				http_action(http, events[i].fd, flags);
		}
		pfree(events);
		http_collect(http);

		if (latch)
			return WL_LATCH_SET;
		CHECK_FOR_INTERRUPTS();
	}
}

/* The next finished transfer's outcome, if any */
bool
msgq_http_result(MsgqHttp *http, MsgqHttpResult *result)
{
	if (http->results_head >= http->results_tail)
		return false;
	*result = http->results[http->results_head++];
	return true;
}
