/*-------------------------------------------------------------------------
 *
 * http.h
 *	  The worker's HTTP client: POSTs made with libcurl's multi interface,
 *	  waited for on one wait set with the latch and postmaster death
 *	  (src/http.c).
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MSGQ_HTTP_H
#define MSGQ_HTTP_H

typedef struct MsgqHttp MsgqHttp;

#define MSGQ_HTTP_BODY_KEPT		1024

/* What one finished transfer got */
typedef struct MsgqHttpResult
{
	uint64		tag;			/* the caller's tag given to msgq_http_post */
	long		status;			/* HTTP status, 0 when no response came */
	bool		timed_out;		/* the transfer ran out of time */
	char		error[256];		/* why, when status is 0 */
	char		body[MSGQ_HTTP_BODY_KEPT];	/* the response body's start */
} MsgqHttpResult;

extern MsgqHttp *msgq_http_create(void);
extern void msgq_http_post(MsgqHttp *http, uint64 tag, const char *url,
						   const char *const *headers, int nheaders,
						   const char *body, size_t len, int timeout_ms);
extern int	msgq_http_wait(MsgqHttp *http, long timeout_ms,
						   uint32 wait_event_info);
extern bool msgq_http_result(MsgqHttp *http, MsgqHttpResult *result);

#endif							/* MSGQ_HTTP_H */
