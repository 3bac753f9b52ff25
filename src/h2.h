/*-------------------------------------------------------------------------
 *
 * h2.h
 *	  Cleartext HTTP/2 (prior knowledge) for the AWS endpoint, on
 *	  libnghttp2's server session, fed and drained through memory buffers.
 *
 * IDENTIFICATION
 *	  src/h2.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MSGQ_H2_H
#define MSGQ_H2_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* what a client sends first on an HTTP/2 connection with prior knowledge */
#define EP_H2_PREFACE		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define EP_H2_PREFACE_LEN	24

typedef struct EpH2 EpH2;

/* a whole request: its headers as HTTP/1.1 text, and its body */
typedef struct EpH2Request
{
	int32		stream_id;
	char	   *headers;		/* "POST /path HTTP/2\r\nhost: ...\r\n...\r\n" */
	char	   *body;
	int			body_len;
	bool		too_big;		/* the body was over the limit: not kept */
	bool		refused;		/* no room in the endpoint's body budget: not kept */
	size_t		reserved;		/* of the body budget, for the caller to release */
} EpH2Request;

/*
 * The endpoint process's budget for request bodies (endpoint.c): a body is
 * kept only within what it reserved.
 */
extern bool ep_body_reserve(size_t n);
extern void ep_body_release(size_t n);

extern EpH2 *ep_h2_create(MemoryContext parent, int max_header, int max_body);
extern void ep_h2_free(EpH2 *h2);
extern bool ep_h2_recv(EpH2 *h2, const char *data, size_t len);
extern bool ep_h2_next(EpH2 *h2, EpH2Request *req);
extern void ep_h2_respond(EpH2 *h2, int32 stream_id, int status, const char *headers,
						  const char *body, size_t len, bool end);
extern void ep_h2_write(EpH2 *h2, int32 stream_id, const char *data, size_t len, bool end);
extern bool ep_h2_send(EpH2 *h2, StringInfo out, int limit);
extern bool ep_h2_want_write(EpH2 *h2);
extern size_t ep_h2_pending(EpH2 *h2, int32 stream_id);
extern void ep_h2_goaway(EpH2 *h2, StringInfo out);
extern bool ep_h2_stream_open(EpH2 *h2, int32 stream_id);
extern TimestampTz ep_h2_oldest_incomplete(EpH2 *h2);
extern size_t ep_h2_queued(EpH2 *h2);

#endif							/* MSGQ_H2_H */
