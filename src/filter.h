/*-------------------------------------------------------------------------
 *
 * filter.h
 *	  SNS filter policies: compile once, match many messages.
 *
 * IDENTIFICATION
 *	  src/filter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MSGQ_FILTER_H
#define MSGQ_FILTER_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/memutils.h"

typedef enum MsgqFilterScope
{
	MSGQ_FILTER_ATTRIBUTES,		/* FilterPolicyScope MessageAttributes */
	MSGQ_FILTER_BODY			/* FilterPolicyScope MessageBody */
} MsgqFilterScope;

/* A compiled policy (immutable once built) */
typedef struct MsgqFilter MsgqFilter;

/* One message, prepared once and matched against any number of policies */
typedef struct MsgqFilterMessage MsgqFilterMessage;

/* Many policies indexed together (one topic's subscriptions) */
typedef struct MsgqFilterSet MsgqFilterSet;

/*
 * Validate and compile a policy.  errprefix is what AWS puts before the
 * reason: "Invalid parameter: " (set_subscription_attributes,
 * filter_policy_matches) or "Invalid parameter: Attributes Reason: "
 * (subscribe).  Raises InvalidParameter (ERRCODE_MSGQ_INVALID_PARAMETER)
 * with AWS's text.  The result lives in CurrentMemoryContext.
 */
extern MsgqFilter *msgq_filter_compile(const char *policy, int len,
									   MsgqFilterScope scope,
									   const char *errprefix);

/*
 * attributes: the send_message/publish shape, or NULL; body: or NULL.
 * Raises ParameterValueInvalid for malformed attributes.  The message and
 * everything matching adds to it live in CurrentMemoryContext; body is not
 * copied (it is parsed on first use by a MessageBody policy) and must stay
 * valid while the message is matched.
 */
extern MsgqFilterMessage *msgq_filter_message(Jsonb *attributes,
											  const char *body, int bodylen);
extern bool msgq_filter_matches(const MsgqFilter *filter, MsgqFilterMessage *msg);

/*
 * A set of n policies; filters[i] NULL accepts every message.  Built in
 * cxt; it points into the filters, which must outlive it, and keeps scratch
 * space for matching, so one backend uses it at a time.
 * msgq_filter_set_match sets matched[i] (n entries) for every policy the
 * message satisfies, clears the others, and returns how many matched; the
 * answers are those of msgq_filter_matches on each policy.
 */
extern MsgqFilterSet *msgq_filter_set_build(MsgqFilter **filters, int n,
											MemoryContext cxt);
extern int	msgq_filter_set_match(MsgqFilterSet *set, MsgqFilterMessage *msg,
								  bool *matched);

#endif							/* MSGQ_FILTER_H */
