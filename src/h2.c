/*-------------------------------------------------------------------------
 *
 * h2.c
 *	  Cleartext HTTP/2 for the AWS endpoint (what the AWS SDK for
 *	  JavaScript's Kinesis client speaks by default: prior knowledge, no
 *	  Upgrade), on libnghttp2's server session.
 *
 * The endpoint owns the socket: bytes read are given to ep_h2_recv, frames
 * to write are taken with ep_h2_send.  libnghttp2 parses frames, keeps the
 * streams' states, flow control and HPACK; the callbacks here only collect
 * each request's headers and body.  A request whose stream has ended is
 * queued and handed out by ep_h2_next after ep_h2_recv returns, so that
 * requests are run outside libnghttp2's callbacks (an ERROR must not
 * unwind through the library).  The headers are given back as HTTP/1.1
 * text ("POST /path HTTP/2", then "name: value" lines, :authority as
 * host), which the endpoint's parser and SigV4 check read as they do
 * HTTP/1.1 requests.
 *
 * A response body is a buffer per stream that libnghttp2 reads as flow
 * control allows; a response may stay open (ep_h2_write adds to it and
 * resumes the deferred stream), for event streams.
 *
 * IDENTIFICATION
 *	  src/h2.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <nghttp2/nghttp2.h>

#include "lib/ilist.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "h2.h"

/* streams one connection may have open at once */
#define H2_MAX_STREAMS		100
/* how much a client may send on a stream before a window update */
#define H2_STREAM_WINDOW	(128 * 1024)
/* ... and on the connection, whose window is given back as data arrives */
#define H2_CONN_WINDOW		(16 * 1024 * 1024)
/*
 * Request bodies of incomplete streams past which only the oldest such
 * stream gets its window back (h2_settle); the others may still send what
 * their windows allow.
 */
#define H2_MAX_BUFFERED		(16 * 1024 * 1024)

typedef struct H2Stream
{
	int32		id;
	char	   *method;
	char	   *path;
	char	   *authority;
	StringInfoData headers;		/* "name: value\r\n" lines */
	StringInfoData body;
	bool		too_big;
	bool		refused;		/* the body budget had no room for it */
	size_t		reserved;		/* of the body budget, held for its body */
	size_t		owed;			/* body bytes not yet given back to its window */
	bool		ready;			/* the request is whole, in h2->ready */
	dlist_node	node;			/* in h2->ready, or before in h2->incomplete_streams */
	TimestampTz started;		/* its first frame */
	/* the response */
	bool		responding;
	StringInfoData out;
	size_t		out_off;
	bool		out_end;
	bool		deferred;
} H2Stream;

struct EpH2
{
	nghttp2_session *session;
	MemoryContext cxt;
	int			max_header;
	int			max_body;
	dlist_head	incomplete_streams; /* streams whose request is not whole yet, oldest first */
	dlist_head	ready;
	size_t		buffered;		/* request body bytes of incomplete streams */
	size_t		conn_owed;		/* DATA bytes not yet given back to the connection */
	size_t		queued;			/* response bytes not yet taken into frames */
};

static H2Stream *
h2_stream(EpH2 *h2, int32 id)
{
	return (H2Stream *) nghttp2_session_get_stream_user_data(h2->session, id);
}

static int
h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	EpH2	   *h2 = (EpH2 *) user_data;
	H2Stream   *s;
	MemoryContext old;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	old = MemoryContextSwitchTo(h2->cxt);
	s = palloc0(sizeof(H2Stream));
	s->id = frame->hd.stream_id;
	initStringInfo(&s->headers);
	initStringInfo(&s->body);
	MemoryContextSwitchTo(old);
	nghttp2_session_set_stream_user_data(session, s->id, s);
	s->started = GetCurrentTimestamp();
	dlist_push_tail(&h2->incomplete_streams, &s->node);
	return 0;
}

/*
 * A request's content-length: hold room for the whole body at once, or
 * refuse it before it comes.  A value that is not a length is left to the
 * DATA frames (h2_on_data reserves as they come).
 */
static void
h2_reserve_declared(EpH2 *h2, H2Stream *s, const uint8_t *value, size_t valuelen)
{
	char		text[24];
	char	   *e;
	long		cl;

	if (valuelen == 0 || valuelen >= sizeof(text) || s->reserved > 0 || s->refused)
		return;
	memcpy(text, value, valuelen);
	text[valuelen] = '\0';
	errno = 0;
	cl = strtol(text, &e, 10);
	if (errno != 0 || *e != '\0' || cl <= 0 || cl > h2->max_body)
		return;
	if (ep_body_reserve((size_t) cl))
		s->reserved = (size_t) cl;
	else
		s->refused = true;
}

static int
h2_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
			 size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			 void *user_data)
{
	EpH2	   *h2 = (EpH2 *) user_data;
	H2Stream   *s = h2_stream(h2, frame->hd.stream_id);
	MemoryContext old;

	if (s == NULL || s->ready)
		return 0;				/* trailers, or a stream not ours */
	if (s->headers.len + namelen + valuelen + 4 > (size_t) h2->max_header)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;	/* resets the stream */
	old = MemoryContextSwitchTo(h2->cxt);
	if (namelen == 7 && memcmp(name, ":method", 7) == 0)
		s->method = pnstrdup((const char *) value, valuelen);
	else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
		s->path = pnstrdup((const char *) value, valuelen);
	else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
		s->authority = pnstrdup((const char *) value, valuelen);
	else if (namelen > 0 && name[0] != ':')
	{
		/* libnghttp2 has refused names and values with CR, LF or NUL */
		appendBinaryStringInfo(&s->headers, (const char *) name, namelen);
		appendStringInfoString(&s->headers, ": ");
		appendBinaryStringInfo(&s->headers, (const char *) value, valuelen);
		appendStringInfoString(&s->headers, "\r\n");
		if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
			h2_reserve_declared(h2, s, value, valuelen);
	}
	MemoryContextSwitchTo(old);
	return 0;
}

static int
h2_on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
		   size_t len, void *user_data)
{
	EpH2	   *h2 = (EpH2 *) user_data;
	H2Stream   *s = h2_stream(h2, stream_id);

	h2->conn_owed += len;
	if (s == NULL || s->ready)
		return 0;
	s->owed += len;
	if (!s->too_big && !s->refused && s->body.len + len <= (size_t) h2->max_body &&
		s->body.len + len > s->reserved)
	{
		/* no content-length, or more than it said: reserve as it comes */
		size_t		more = s->body.len + len - s->reserved;

		if (ep_body_reserve(more))
			s->reserved += more;
		else
			s->refused = true;
	}
	if (s->too_big || s->refused || s->body.len + len > (size_t) h2->max_body)
	{
		h2->buffered -= s->body.len;
		/* answered with an error once whole; the bytes are not kept */
		if (!s->refused)
			s->too_big = true;
		ep_body_release(s->reserved);
		s->reserved = 0;
		if (s->body.maxlen > 1024)
		{
			MemoryContext old = MemoryContextSwitchTo(h2->cxt);

			pfree(s->body.data);
			initStringInfo(&s->body);
			MemoryContextSwitchTo(old);
		}
		resetStringInfo(&s->body);
		return 0;
	}
	{
		MemoryContext old = MemoryContextSwitchTo(h2->cxt);

		appendBinaryStringInfo(&s->body, (const char *) data, len);
		MemoryContextSwitchTo(old);
	}
	h2->buffered += len;
	return 0;
}

static int
h2_on_frame(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	EpH2	   *h2 = (EpH2 *) user_data;
	H2Stream   *s;

	if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
		(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
		return 0;
	s = h2_stream(h2, frame->hd.stream_id);
	if (s == NULL || s->ready)
		return 0;
	s->ready = true;
	h2->buffered -= s->body.len;
	dlist_delete(&s->node);
	dlist_push_tail(&h2->ready, &s->node);
	return 0;
}

static int
h2_on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
	EpH2	   *h2 = (EpH2 *) user_data;
	H2Stream   *s = h2_stream(h2, stream_id);

	if (s == NULL)
		return 0;
	if (s->ready)
	{
		if (!s->responding)
			dlist_delete(&s->node); /* reset before it was answered */
	}
	else
	{
		h2->buffered -= s->body.len;
		dlist_delete(&s->node);
	}
	if (s->out.data)
		h2->queued -= s->out.len - s->out_off;
	ep_body_release(s->reserved);	/* not handed out */
	nghttp2_session_set_stream_user_data(session, stream_id, NULL);
	pfree(s->headers.data);
	pfree(s->body.data);
	if (s->out.data)
		pfree(s->out.data);
	pfree(s);
	return 0;
}

/* libnghttp2 takes the response body from the stream's buffer */
static ssize_t
h2_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
			 uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	H2Stream   *s = (H2Stream *) source->ptr;
	size_t		n = Min(length, s->out.len - s->out_off);

	memcpy(buf, s->out.data + s->out_off, n);
	s->out_off += n;
	((EpH2 *) user_data)->queued -= n;
	if (s->out_off == s->out.len)
	{
		resetStringInfo(&s->out);
		s->out_off = 0;
		if (s->out_end)
			*data_flags |= NGHTTP2_DATA_FLAG_EOF;
		else if (n == 0)
		{
			s->deferred = true;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	return (ssize_t) n;
}

EpH2 *
ep_h2_create(MemoryContext parent, int max_header, int max_body)
{
	EpH2	   *h2;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32) max_header},
	};
	MemoryContext cxt = AllocSetContextCreate(parent, "msgq endpoint HTTP/2", ALLOCSET_SMALL_SIZES);

	h2 = MemoryContextAllocZero(cxt, sizeof(EpH2));
	h2->cxt = cxt;
	h2->max_header = max_header;
	h2->max_body = max_body;
	dlist_init(&h2->ready);
	dlist_init(&h2->incomplete_streams);
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		elog(ERROR, "out of memory for an HTTP/2 session");
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_close);
	if (nghttp2_option_new(&opt) != 0)
	{
		nghttp2_session_callbacks_del(cbs);
		elog(ERROR, "out of memory for an HTTP/2 session");
	}
	nghttp2_option_set_no_auto_window_update(opt, 1);
	if (nghttp2_session_server_new2(&h2->session, cbs, h2, opt) != 0)
	{
		nghttp2_option_del(opt);
		nghttp2_session_callbacks_del(cbs);
		elog(ERROR, "out of memory for an HTTP/2 session");
	}
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	if (nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, settings, lengthof(settings)) != 0 ||
		nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
		elog(ERROR, "could not set up an HTTP/2 session");
	return h2;
}

void
ep_h2_free(EpH2 *h2)
{
	dlist_iter	iter;

	/* the bodies not handed out give their room back */
	dlist_foreach(iter, &h2->incomplete_streams)
		ep_body_release(dlist_container(H2Stream, node, iter.cur)->reserved);
	dlist_foreach(iter, &h2->ready)
		ep_body_release(dlist_container(H2Stream, node, iter.cur)->reserved);
	nghttp2_session_del(h2->session);	/* no callbacks: the streams are in cxt */
	MemoryContextDelete(h2->cxt);
}

/*
 * Flow control (libnghttp2's automatic window updates are off).  Every DATA
 * byte is given back to the connection's window at once, so the connection
 * window never holds a stream up; what a client may send is bounded by the
 * streams' windows.  A stream gets its received bytes back (a WINDOW_UPDATE
 * once half its window is used) while the incomplete streams' bodies total
 * at most H2_MAX_BUFFERED, and the oldest incomplete stream always does, so
 * one request at a time always completes: past the budget the others wait
 * with what their windows let them send.  A stream over max_body keeps
 * getting its window back (its bytes are dropped) until its 413.  So a
 * connection buffers at most H2_MAX_BUFFERED, the oldest stream's body and
 * H2_MAX_STREAMS windows, and no set of large bodies is refused for being
 * sent at once.  Across connections, a body is kept only within what it
 * reserved of the endpoint process's budget (msgq.endpoint_body_memory):
 * all of its content-length when the headers come, else as its DATA comes;
 * a stream that finds no room is refused (503 once whole, its bytes
 * dropped), like one over max_body.
 */
static void
h2_settle(EpH2 *h2)
{
	dlist_iter	iter;
	bool		oldest = true;

	if (h2->conn_owed > 0)
	{
		(void) nghttp2_session_consume_connection(h2->session, h2->conn_owed);
		h2->conn_owed = 0;
	}
	dlist_foreach(iter, &h2->incomplete_streams)
	{
		H2Stream   *s = dlist_container(H2Stream, node, iter.cur);

		if (s->owed > 0 &&
			(oldest || s->too_big || s->refused || h2->buffered <= H2_MAX_BUFFERED))
		{
			(void) nghttp2_session_consume_stream(h2->session, s->id, s->owed);
			s->owed = 0;
		}
		oldest = false;
	}
}

/* Frames read from the client; false when the connection must end */
bool
ep_h2_recv(EpH2 *h2, const char *data, size_t len)
{
	if (nghttp2_session_mem_recv(h2->session, (const uint8_t *) data, len) < 0)
		return false;
	h2_settle(h2);
	return true;
}

/*
 * The next whole request: its headers' text in the current memory context,
 * its body the session's (both for the caller to pfree)
 */
bool
ep_h2_next(EpH2 *h2, EpH2Request *req)
{
	H2Stream   *s;
	StringInfoData text;

	if (dlist_is_empty(&h2->ready))
		return false;
	s = dlist_container(H2Stream, node, dlist_pop_head_node(&h2->ready));
	s->responding = true;
	initStringInfo(&text);
	appendStringInfo(&text, "%s %s HTTP/2\r\n", s->method ? s->method : "GET",
					 s->path ? s->path : "/");
	if (s->authority)
	{
		/* SigV4 over HTTP/2 may sign :authority rather than host */
		appendStringInfo(&text, "host: %s\r\n", s->authority);
		appendStringInfo(&text, ":authority: %s\r\n", s->authority);
	}
	appendBinaryStringInfo(&text, s->headers.data, s->headers.len);
	req->stream_id = s->id;
	req->headers = text.data;
	/* the body itself, not a copy: the caller frees it, the stream has done with it */
	req->body = s->body.data;
	req->body_len = s->body.len;
	req->too_big = s->too_big;
	req->refused = s->refused;
	req->reserved = s->reserved;
	s->reserved = 0;
	{
		MemoryContext old = MemoryContextSwitchTo(h2->cxt);

		initStringInfo(&s->body);
		MemoryContextSwitchTo(old);
	}
	return true;
}

/*
 * Answer a stream: status, headers as "Name: value\r\n" lines, and the
 * body so far; end false leaves the body open for ep_h2_write.
 */
void
ep_h2_respond(EpH2 *h2, int32 stream_id, int status, const char *headers,
			  const char *body, size_t len, bool end)
{
	H2Stream   *s = h2_stream(h2, stream_id);
	nghttp2_nv	nv[32];
	int			n = 0;
	char		status_text[8];
	char	   *copy;
	char	   *line;
	nghttp2_data_provider body_source;
	MemoryContext old;

	if (s == NULL)
		return;					/* the client reset the stream */
	snprintf(status_text, sizeof(status_text), "%d", status);
	nv[n++] = (nghttp2_nv)
	{
		(uint8_t *) ":status", (uint8_t *) status_text, 7, strlen(status_text), NGHTTP2_NV_FLAG_NONE
	};
	copy = pstrdup(headers ? headers : "");
	for (line = copy; *line && n < lengthof(nv);)
	{
		char	   *eol = strstr(line, "\r\n");
		char	   *colon;
		char	   *p;
		char	   *value;

		if (eol == NULL)
			break;
		*eol = '\0';
		colon = strchr(line, ':');
		if (colon != NULL)
		{
			*colon = '\0';
			for (p = line; *p; p++)
				*p = pg_ascii_tolower((unsigned char) *p);
			value = colon + 1;
			while (*value == ' ')
				value++;
			nv[n++] = (nghttp2_nv)
			{
				(uint8_t *) line, (uint8_t *) value, strlen(line), strlen(value), NGHTTP2_NV_FLAG_NONE
			};
		}
		line = eol + 2;
	}
	old = MemoryContextSwitchTo(h2->cxt);
	initStringInfo(&s->out);
	appendBinaryStringInfo(&s->out, body, len);
	MemoryContextSwitchTo(old);
	h2->queued += len;
	s->out_off = 0;
	s->out_end = end;
	body_source.source.ptr = s;
	body_source.read_callback = h2_read_body;
	/* the names and values are copied */
	if (nghttp2_submit_response(h2->session, stream_id, nv, n, &body_source) != 0)
		(void) nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, stream_id,
										 NGHTTP2_INTERNAL_ERROR);
	pfree(copy);
}

/* More of an open response's body; end closes it */
void
ep_h2_write(EpH2 *h2, int32 stream_id, const char *data, size_t len, bool end)
{
	H2Stream   *s = h2_stream(h2, stream_id);
	MemoryContext old;

	if (s == NULL || s->out.data == NULL || s->out_end)
		return;
	old = MemoryContextSwitchTo(h2->cxt);
	appendBinaryStringInfo(&s->out, data, len);
	MemoryContextSwitchTo(old);
	h2->queued += len;
	s->out_end = end;
	if (s->deferred)
	{
		s->deferred = false;
		(void) nghttp2_session_resume_data(h2->session, stream_id);
	}
}

/*
 * Append the frames to write to out, while out holds less than limit
 * bytes; false when the session is over
 */
bool
ep_h2_send(EpH2 *h2, StringInfo out, int limit)
{
	while (out->len < limit)
	{
		const uint8_t *data;
		ssize_t		n = nghttp2_session_mem_send(h2->session, &data);

		if (n < 0)
			return false;
		if (n == 0)
			break;
		appendBinaryStringInfo(out, (const char *) data, (int) n);
	}
	return nghttp2_session_want_read(h2->session) || nghttp2_session_want_write(h2->session);
}

/* End the session politely (GOAWAY, no error): its frames are appended to out */
void
ep_h2_goaway(EpH2 *h2, StringInfo out)
{
	(void) nghttp2_session_terminate_session(h2->session, NGHTTP2_NO_ERROR);
	(void) ep_h2_send(h2, out, PG_INT32_MAX);
}

/* Whether the session has frames to write */
bool
ep_h2_want_write(EpH2 *h2)
{
	return nghttp2_session_want_write(h2->session) != 0;
}

/* Bytes of a stream's response not yet taken into frames (0: none, or no stream) */
size_t
ep_h2_pending(EpH2 *h2, int32 stream_id)
{
	H2Stream   *s = h2_stream(h2, stream_id);

	return s == NULL || s->out.data == NULL ? 0 : s->out.len - s->out_off;
}

/* Whether a stream is still open (a parked request's client may reset it) */
bool
ep_h2_stream_open(EpH2 *h2, int32 stream_id)
{
	return h2_stream(h2, stream_id) != NULL;
}

/* When the oldest request not whole yet began (a slow client), or 0 */
TimestampTz
ep_h2_oldest_incomplete(EpH2 *h2)
{
	if (dlist_is_empty(&h2->incomplete_streams))
		return 0;
	return dlist_head_element(H2Stream, node, &h2->incomplete_streams)->started;
}

/* Response bytes queued in the session's streams, not yet framed */
size_t
ep_h2_queued(EpH2 *h2)
{
	return h2->queued;
}
