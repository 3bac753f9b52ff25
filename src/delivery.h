/*-------------------------------------------------------------------------
 *
 * delivery.h
 *	  Deliveries made after commit by the worker: topic subscriptions of
 *	  the function, http and https protocols (src/delivery.c).
 *
 * IDENTIFICATION
 *	  src/delivery.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MSGQ_DELIVERY_H
#define MSGQ_DELIVERY_H

#include "datatype/timestamp.h"
#include "utils/uuid.h"

/* The phases of a retry policy (SPEC-aws.md 2.4) */
typedef enum MsgqBackoff
{
	MSGQ_BACKOFF_LINEAR,
	MSGQ_BACKOFF_ARITHMETIC,
	MSGQ_BACKOFF_GEOMETRIC,
	MSGQ_BACKOFF_EXPONENTIAL
} MsgqBackoff;

typedef struct MsgqRetryPolicy
{
	int			num_retries;
	int			num_no_delay;
	int			num_min_delay;
	int			num_max_delay;
	int			min_delay;		/* seconds */
	int			max_delay;		/* seconds */
	MsgqBackoff backoff;
} MsgqRetryPolicy;

typedef struct MsgqDeliveryPolicy
{
	MsgqRetryPolicy retry;
	int			max_per_second; /* throttlePolicy.maxReceivesPerSecond, 0: none */
	char		content_type[257];	/* requestPolicy.headerContentType */
} MsgqDeliveryPolicy;

/* Validation of a DeliveryPolicy attribute; raises AWS's error */
extern void msgq_delivery_policy_check(const char *json, bool topic_level,
									   const char *prefix);

/*
 * The policy in force for a subscription of protocol "function" or
 * "http"/"https", from its own DeliveryPolicy and its topic's (either may
 * be NULL).
 */
extern void msgq_delivery_policy_effective(MsgqDeliveryPolicy *p, bool http,
										   const char *sub_policy,
										   const char *topic_policy);

/* Seconds to wait after the given number of failed attempts; -1: give up */
extern double msgq_retry_delay(const MsgqRetryPolicy *p, int failures, bool jitter);

/*
 * Publisher side: queue one delivery (a row of msgq.topic_delivery) in the
 * current transaction, and wake the worker when it commits.  Caller is in
 * SPI as the extension owner.
 */
extern void msgq_delivery_enqueue(const pg_uuid_t *sub_id, Datum message_id,
								  const char *kind, const char *payload,
								  TimestampTz at, const char *protocol,
								  const char *endpoint, const char *topic_name);
extern void msgq_delivery_outbox_begin(void);
extern int	msgq_delivery_outbox_document(const char *payload);
extern void msgq_delivery_outbox_add(const pg_uuid_t *sub_id, int document);
extern void msgq_delivery_outbox_flush(Datum message_id, TimestampTz at,
									   const char *token, const char *arn_prefix);
/*
 * Run the function deliveries that are due, at most max of them, in the
 * current transaction (one subtransaction each).  Caller is in SPI as the
 * extension owner; in_worker: the worker's call (it bounds each call with
 * msgq.function_timeout), else msgq.run_maintenance() in a backend.
 * Returns how many were attempted.
 */
extern int	msgq_delivery_run_functions(int max, bool in_worker);

/* The worker's part (worker.c) */
extern long msgq_delivery_worker_pass(void);
extern int	msgq_delivery_wait(long timeout_ms, uint32 wait_event_info);

#endif							/* MSGQ_DELIVERY_H */
