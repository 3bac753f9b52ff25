/*-------------------------------------------------------------------------
 *
 * msgq.h
 *	  Declarations shared by msgq's C files: settings, error codes, the
 *	  clock, shared memory, privileges and the internal queue interface.
 *
 * IDENTIFICATION
 *	  src/msgq.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MSGQ_H
#define MSGQ_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "storage/buf.h"
#include "storage/itemptr.h"
#include "storage/lockdefs.h"
#include "fmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/uuid.h"

#include "compat.h"

#define MSGQ_EXTENSION_NAME		"msgq"
#define MSGQ_SCHEMA_NAME		"msgq"

/* AWS limits used across files (SPEC-aws.md section 1) */
#define MSGQ_MAX_NAME_LEN				80
#define MSGQ_MAX_VISIBILITY_TIMEOUT		43200	/* 12 hours */
#define MSGQ_MAX_DELAY_SECONDS			900
#define MSGQ_MAX_WAIT_TIME_SECONDS		20
#define MSGQ_MAX_RECEIVE_MESSAGES		10
#define MSGQ_MAX_ID_LEN					128	/* group, deduplication ids */
#define MSGQ_MAX_MESSAGE_ATTRIBUTES		10
#define MSGQ_MAX_EXTENDED_MESSAGE_SIZE	(256 * 1024 * 1024)

/*
 * One stable SQLSTATE per AWS error name.  Class "MQ" is msgq's own
 * (classes starting with I-Z are implementation-defined).  The README has
 * the table; never renumber an entry once released.
 */
#define ERRCODE_MSGQ_QUEUE_DOES_NOT_EXIST		MAKE_SQLSTATE('M','Q','0','0','1')
#define ERRCODE_MSGQ_QUEUE_NAME_EXISTS			MAKE_SQLSTATE('M','Q','0','0','2')
#define ERRCODE_MSGQ_QUEUE_DELETED_RECENTLY		MAKE_SQLSTATE('M','Q','0','0','3')
#define ERRCODE_MSGQ_RECEIPT_HANDLE_IS_INVALID	MAKE_SQLSTATE('M','Q','0','0','4')
#define ERRCODE_MSGQ_MESSAGE_NOT_INFLIGHT		MAKE_SQLSTATE('M','Q','0','0','5')
#define ERRCODE_MSGQ_INVALID_PARAMETER_VALUE	MAKE_SQLSTATE('M','Q','0','0','6')
#define ERRCODE_MSGQ_MISSING_PARAMETER			MAKE_SQLSTATE('M','Q','0','0','7')
#define ERRCODE_MSGQ_INVALID_ATTRIBUTE_NAME		MAKE_SQLSTATE('M','Q','0','0','8')
#define ERRCODE_MSGQ_INVALID_ATTRIBUTE_VALUE	MAKE_SQLSTATE('M','Q','0','0','9')
#define ERRCODE_MSGQ_OVER_LIMIT					MAKE_SQLSTATE('M','Q','0','1','0')
#define ERRCODE_MSGQ_INVALID_MESSAGE_CONTENTS	MAKE_SQLSTATE('M','Q','0','1','1')
#define ERRCODE_MSGQ_PURGE_QUEUE_IN_PROGRESS	MAKE_SQLSTATE('M','Q','0','1','2')
#define ERRCODE_MSGQ_UNSUPPORTED_OPERATION		MAKE_SQLSTATE('M','Q','0','1','3')
#define ERRCODE_MSGQ_EMPTY_BATCH_REQUEST		MAKE_SQLSTATE('M','Q','0','1','4')
#define ERRCODE_MSGQ_TOO_MANY_ENTRIES_IN_BATCH	MAKE_SQLSTATE('M','Q','0','1','5')
#define ERRCODE_MSGQ_INVALID_BATCH_ENTRY_ID		MAKE_SQLSTATE('M','Q','0','1','6')
#define ERRCODE_MSGQ_BATCH_ENTRY_IDS_NOT_DISTINCT	MAKE_SQLSTATE('M','Q','0','1','7')
#define ERRCODE_MSGQ_BATCH_REQUEST_TOO_LONG		MAKE_SQLSTATE('M','Q','0','1','8')
#define ERRCODE_MSGQ_RESOURCE_NOT_FOUND		MAKE_SQLSTATE('M','Q','0','1','9')
#define ERRCODE_MSGQ_RESOURCE_IN_USE			MAKE_SQLSTATE('M','Q','0','2','0')
#define ERRCODE_MSGQ_INVALID_ARGUMENT			MAKE_SQLSTATE('M','Q','0','2','1')
#define ERRCODE_MSGQ_EXPIRED_ITERATOR			MAKE_SQLSTATE('M','Q','0','2','2')
#define ERRCODE_MSGQ_THROUGHPUT_EXCEEDED		MAKE_SQLSTATE('M','Q','0','2','3')
/* SNS (topics, subscriptions, filter policies) */
#define ERRCODE_MSGQ_INVALID_PARAMETER			MAKE_SQLSTATE('M','Q','0','2','4')
#define ERRCODE_MSGQ_NOT_FOUND					MAKE_SQLSTATE('M','Q','0','2','5')
#define ERRCODE_MSGQ_FILTER_POLICY_LIMIT_EXCEEDED	MAKE_SQLSTATE('M','Q','0','2','6')
#define ERRCODE_MSGQ_PARAMETER_VALUE_INVALID	MAKE_SQLSTATE('M','Q','0','2','7')
#define ERRCODE_MSGQ_SUBSCRIPTION_LIMIT_EXCEEDED	MAKE_SQLSTATE('M','Q','0','2','8')
#define ERRCODE_MSGQ_TOPIC_LIMIT_EXCEEDED		MAKE_SQLSTATE('M','Q','0','2','9')
#define ERRCODE_MSGQ_LEASE_LOST					MAKE_SQLSTATE('M','Q','0','3','0')
#define ERRCODE_MSGQ_ACCESS_DENIED				ERRCODE_INSUFFICIENT_PRIVILEGE

/*
 * MSGQ_ERROR(AwsName, ERRCODE, fmt, ...): raise an AWS-named error.  The
 * primary message follows PostgreSQL's style; the detail carries the AWS
 * error name so callers can branch on either the SQLSTATE or the name.
 */
#define MSGQ_ERROR(awsname, code, ...) \
	ereport(ERROR, \
			(errcode(code), \
			 errmsg(__VA_ARGS__), \
			 errdetail_internal("AWS error code: %s", awsname)))

/*
 * msgq_aws_error(AwsName, ERRCODE, fmt, ...): raise an error whose AWS
 * message text matters to clients (SNS's "Invalid parameter: ..." texts).
 * The primary message is that text with its first letter in lower case;
 * the detail carries the AWS error name and the exact text.
 */
extern void msgq_aws_error(const char *awsname, int sqlerrcode, const char *fmt,...)
			pg_attribute_printf(3, 4) pg_attribute_noreturn();

/* Settings (msgq.c) */
extern int	msgq_clock_offset_ms;
extern bool msgq_clock_frozen;
extern TimestampTz msgq_clock_frozen_at;
extern int	msgq_wait_buckets;
extern int	msgq_max_aborted_receives;
extern int	msgq_max_leases;
extern int	msgq_wait_recheck_interval_ms;
extern int	msgq_outbox_fixup_after_ms;
extern int	msgq_max_receive_bytes;

/* Clock (utils.c): every time rule reads this, never now() */
extern TimestampTz msgq_now(void);
extern void msgq_check_clock_runs(int wait_seconds);

/* Name validation (utils.c) */

/* AWS's name characters for queues, labels and batch entry ids */
static inline bool
msgq_is_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '-';
}

extern void msgq_check_queue_name(const char *name, bool *is_fifo);

/* Run internal SQL as the extension owner (utils.c) */
extern Oid	msgq_extension_owner(void);
extern Oid	msgq_extension_owner_lookup(void);
extern bool msgq_extension_lock_shared(void);
extern JsonbValue *msgq_jsonb_member(JsonbContainer *obj, const char *key);
extern int	msgq_hex_digit(char c);
extern void msgq_utils_cache_reset(void);
extern void msgq_switch_to_owner(Oid *save_userid, int *save_sec_context,
								 int *save_nest);
extern void msgq_become_owner(Oid *save_userid, int *save_sec_context);
extern int	msgq_pin_search_path(void);
extern void msgq_restore_user(Oid save_userid, int save_sec_context, int save_nest);
extern int	msgq_caller_search_path(void);
extern void msgq_pin_process_search_path(void);
extern void msgq_check_preloaded(void);
extern void msgq_random_bytes(void *buf, size_t len);
extern void msgq_check_execute(Oid fn, Oid owner);
extern ErrorData *msgq_run_subxact(void (*fn) (void *arg), void *arg, bool in_worker);
extern long msgq_worker_pass(const char *activity, const char *relname,
							 long (*run) (bool in_worker));
extern bool msgq_loaded_via_preload;

/* Shared memory (shmem.c) */
extern void msgq_shmem_install_hooks(void);

/*
 * Long-poll wake-ups (wait.c).  Buckets are condition variables hashed by
 * (database, queue).  Anything that makes a message receivable calls
 * msgq_wakeup_at_commit(); the broadcast happens after commit (or after
 * abort, for rolled-back receives), never before.  Whatever deletes,
 * updates or locks a message row also calls msgq_wakeup_at_abort(): a
 * waiter skips a row another transaction holds, and a rollback makes that
 * row receivable again.
 */
extern void msgq_wait_shmem_size(Size *size);
extern void msgq_wait_shmem_init(void);
extern void msgq_wakeup_at_commit(int32 queue_id, bool end_waits);
extern void msgq_wakeup_now(int32 queue_id, bool end_waits);
extern void msgq_wakeup_at_abort(int32 queue_id);
extern uint64 msgq_wait_counter(int32 queue_id);
extern uint64 msgq_wait_end_counter(int32 queue_id);
extern void msgq_wait_sleep(int32 queue_id, uint64 seen, long timeout_ms);
extern void msgq_waiter_begin(int32 queue_id, TimestampTz deadline);
extern void msgq_waiter_end(void);
extern void msgq_remember_receive(int32 queue_id, int64 msg_seq,
								  const pg_uuid_t *message_id, int32 extra_count);
extern int32 msgq_take_aborted_receives(const pg_uuid_t *message_id);
extern bool msgq_aborted_receives_pending(void);
extern void msgq_remember_send(int32 queue_id, int64 msg_seq, TimestampTz sent_at);
extern void msgq_outbox_fixup(int32 *queue_ids, int64 *msg_seqs, int n);
extern int	msgq_aborted_receives_list(int32 *queue_ids, int64 *msg_seqs,
									   pg_uuid_t *ids, int max);
extern void msgq_xact_callbacks_register(void);

/* Bodies and message attributes (attributes.c) */
extern char *msgq_md5_hex(const char *data, size_t len);
extern void msgq_md5(const char *data, size_t len, uint8 *digest);
extern void msgq_check_body(const char *body, int len);
extern int	msgq_check_message_attributes(Jsonb *attrs, char **md5);
extern void msgq_json_duplicates(text *json, char **dups, int ndups);
extern Jsonb *msgq_json_to_jsonb_unique(text *json);
extern Jsonb *msgq_json_to_jsonb_dups(text *json, char **dups, int ndups);
extern bool msgq_name_selected(const char *name, Datum *sel, int nsel);

/* Batch requests (batch.c) */
extern int	msgq_batch_entries(Jsonb *entries, char ***ids, JsonbContainer ***objs);
extern void msgq_batch_error(MemoryContext cxt, char **code, char **message);

/* Receipt handles (handle.c) */
extern char *msgq_handle_encode(int32 queue_id, int64 msg_seq, int64 nonce);
extern void msgq_handle_decode(const char *handle, int32 queue_id,
							   int64 *msg_seq, int64 *nonce);
extern char *msgq_token_encode(int32 id, int64 a, int64 b);
extern bool msgq_token_decode(const char *token, int32 *id, int64 *a, int64 *b);
extern int64 msgq_random_nonce(void);
extern void msgq_sign(const char *label, const char *data, size_t len, uint8 *out);

/*
 * Receive leases in shared memory (lease.c).
 */
typedef enum MsgqClaim
{
	MSGQ_CLAIM_OK,				/* claimed */
	MSGQ_CLAIM_HELD,			/* another receive holds it */
	MSGQ_CLAIM_LIMIT,			/* at maxReceiveCount: dead-letter it */
	MSGQ_CLAIM_FULL				/* no room: use the durable path */
} MsgqClaim;

typedef enum MsgqLeaseState
{
	MSGQ_LEASE_NONE,			/* no lease in shared memory */
	MSGQ_LEASE_MATCH,			/* the handle is the latest receive's */
	MSGQ_LEASE_STALE			/* received again since */
} MsgqLeaseState;

extern void msgq_lease_shmem_size(Size *size);
extern void msgq_lease_shmem_init(void);
extern int64 msgq_lease_nonce(void);
extern int64 msgq_durable_nonce(void);
extern bool msgq_nonce_is_lease(int64 nonce);
extern TimestampTz msgq_lease_epoch(void);
extern MsgqClaim msgq_lease_claim(int32 queue_id, int64 msg_seq,
								  const pg_uuid_t *message_id,
								  TimestampTz now, TimestampTz deadline,
								  int64 nonce, int32 row_count,
								  bool row_first_null, int32 max_count,
								  int32 *total, TimestampTz *first,
								  TimestampTz *held_until);
extern void msgq_lease_claim_written(void);
extern void msgq_lease_prepare(void);

/* fifo.c */
struct MsgqQueue;

/* A message a FIFO receive returned, as ReceiveRequestAttemptId repeats it */
typedef struct MsgqFifoTaken
{
	int64		msg_seq;
	int64		nonce;
	TimestampTz deadline;
	int32		count;			/* its ApproximateReceiveCount */
	TimestampTz first;			/* its ApproximateFirstReceiveTimestamp */
} MsgqFifoTaken;

extern void msgq_fifo_shmem_size(Size *size);
extern void msgq_fifo_shmem_init(void);
extern void msgq_fifo_lock_group(int32 queue_id, const char *group_id);
extern bool msgq_fifo_try_lock_group(int32 queue_id, const char *group_id);
extern char *msgq_fifo_content_dedup_id(text *body);
extern bool msgq_fifo_dedup(struct MsgqQueue *queue, const char *group_id,
							const char *dedup_id, Datum message_id, int64 seq,
							TimestampTz now, Datum *orig_message_id,
							int64 *orig_seq);
extern void msgq_fifo_dedup_clear(int32 queue_id);
extern void msgq_fifo_dedup_expire(void);
extern bool msgq_fifo_group_blocked(int32 queue_id, const char *group_id,
									TimestampTz now, TimestampTz *until);
extern bool msgq_fifo_group_add(int32 queue_id, const char *group_id,
								int64 seq, int64 nonce, bool first);
extern void msgq_fifo_groups_prune(void);
extern int	msgq_fifo_attempt_find(int32 queue_id, const char *attempt_id,
								   TimestampTz now, MsgqFifoTaken *taken);
extern void msgq_fifo_attempt_remember(int32 queue_id, const char *attempt_id,
									   TimestampTz now, const MsgqFifoTaken *taken,
									   int n);
extern void msgq_fifo_attempts_prune(void);
extern void msgq_fifo_cursor_get(int32 queue_id, char *group_id);
extern void msgq_fifo_cursor_set(int32 queue_id, const char *group_id);
extern void msgq_fifo_cursor_forget(int32 queue_id);
extern void msgq_fifo_handle_expired(const char *handle);
extern void msgq_lease_unclaim(void);
extern bool msgq_lease_row_free(Oid relid, ItemPointer tid);
extern MsgqLeaseState msgq_lease_check(int32 queue_id, int64 msg_seq,
									   int64 nonce, TimestampTz *deadline,
									   TimestampTz *received_at);
extern bool msgq_lease_set_deadline(int32 queue_id, int64 msg_seq, int64 nonce,
									TimestampTz deadline,
									TimestampTz *old_deadline);
extern void msgq_lease_forget_at_commit(int32 queue_id, int64 msg_seq);
extern int	msgq_lease_persist(void);
extern void msgq_lease_stale_error(bool visible) pg_attribute_noreturn();
extern bool msgq_message_exists(int32 queue_id, int64 msg_seq);
extern void msgq_check_visibility_total(TimestampTz now, TimestampTz received_at,
										int32 vt);
extern void msgq_handle_prepare(void);
extern void msgq_handle_cache_reset(void);

/* Privileges (acl.c) */
#define MSGQ_ACT_SEND			ACL_INSERT
#define MSGQ_ACT_RECEIVE		ACL_SELECT
#define MSGQ_ACT_DELETE			ACL_DELETE
#define MSGQ_ACT_CHANGE_VIS		ACL_UPDATE
#define MSGQ_ACT_PURGE			ACL_TRUNCATE
#define MSGQ_ACT_GET_ATTRS		ACL_REFERENCES
#define MSGQ_ACT_SET_ATTRS		ACL_TRIGGER
#define MSGQ_ACT_DELETE_QUEUE	ACL_EXECUTE
#define MSGQ_ACT_ALL			(ACL_INSERT | ACL_SELECT | ACL_DELETE | ACL_UPDATE | \
								 ACL_TRUNCATE | ACL_REFERENCES | ACL_TRIGGER | ACL_EXECUTE)

/* Topics' actions (acl.c, topic.c), on the same bits */
#define MSGQ_TOPIC_PUBLISH				ACL_INSERT
#define MSGQ_TOPIC_SUBSCRIBE			ACL_SELECT
#define MSGQ_TOPIC_LIST_SUBSCRIPTIONS	ACL_UPDATE
#define MSGQ_TOPIC_GET_ATTRS			ACL_REFERENCES
#define MSGQ_TOPIC_SET_ATTRS			ACL_TRIGGER
#define MSGQ_TOPIC_DELETE				ACL_EXECUTE
#define MSGQ_TOPIC_ALL	(ACL_INSERT | ACL_SELECT | ACL_UPDATE | ACL_REFERENCES | \
						 ACL_TRIGGER | ACL_EXECUTE)
extern AclMode msgq_parse_topic_actions(ArrayType *actions);
extern Datum msgq_topic_add_permission(FunctionCallInfo fcinfo);
extern Datum msgq_topic_remove_permission(FunctionCallInfo fcinfo);
extern void msgq_check_label(const char *label);

/* A queue as the functions see it (queue.c) */
#define MSGQ_MAX_REDRIVE_SOURCES	10

typedef struct MsgqQueue
{
	int32		queue_id;
	char	   *queue_name;
	Oid			owner;
	bool		fifo;
	int32		visibility_timeout;
	int32		retention_period;
	int32		delay_seconds;
	int32		wait_time_seconds;
	int32		maximum_message_size;
	Acl		   *acl;			/* NULL when no permission was added */
	char	   *dlq_name;		/* RedrivePolicy target, or NULL */
	int32		max_receive_count;
	char	   *redrive_permission; /* RedriveAllowPolicy, NULL = allowAll */
	int			nsources;
	char	   *sources[MSGQ_MAX_REDRIVE_SOURCES];
	int32		extended_maximum_message_size;	/* 0 when not set */
	/* FIFO queues only */
	bool		content_dedup;	/* ContentBasedDeduplication */
	bool		dedup_per_group;	/* DeduplicationScope = messageGroup */
	bool		throughput_per_group;	/* FifoThroughputLimit = perMessageGroupId */
} MsgqQueue;

/* Validated queue attributes (queue.c) */
typedef struct MsgqQueueAttrs
{
	int32		ints[7];		/* VisibilityTimeout, MessageRetentionPeriod,
								 * DelaySeconds, ReceiveMessageWaitTimeSeconds,
								 * MaximumMessageSize,
								 * KmsDataKeyReusePeriodSeconds,
								 * ExtendedMaximumMessageSize */
	char	   *dlq_name;
	int32		max_receive_count;
	char	   *redrive_permission;
	int			nsources;
	char	   *sources[MSGQ_MAX_REDRIVE_SOURCES];
	bool		fifo;
	bool		content_dedup;
	bool		dedup_per_group;
	bool		throughput_per_group;
	Jsonb	   *normalized;		/* the full attribute set, as stored */
} MsgqQueueAttrs;

extern Oid	msgq_queue_table_relid(void);
extern void msgq_queue_build_attributes(Jsonb *given, bool is_fifo_name, bool for_set,
										MsgqQueueAttrs *out);
extern void msgq_queue_check_dead_letter_target(const char *self, MsgqQueueAttrs *a,
												Oid caller);
extern char *msgq_queue_arn(const char *name);

/* A validated message, ready to insert (queue.c) */
typedef struct MsgqPreparedMessage
{
	int32		delay;
	int			size;
	char	   *md5_body;
	char	   *md5_attrs;		/* NULL without attributes */
	Datum		message_id;		/* uuid */
	char	   *dedup_id;		/* FIFO: given or content-based; else NULL */
} MsgqPreparedMessage;

extern void msgq_message_prepare(MsgqQueue *queue, text *body, bool has_delay,
								 int32 delay, Jsonb *attrs, const char *group_id,
								 const char *dedup_id, MsgqPreparedMessage *out);
extern Datum msgq_new_uuid(void);
extern int32 msgq_queue_size_limit(MsgqQueue *queue);
extern void msgq_check_id_chars(const char *param, const char *value);
extern void msgq_queue_redrive_datums(MsgqQueueAttrs *attrs, Datum *values, char *nulls);

extern void msgq_check_queue_action(MsgqQueue *queue, Oid roleid,
									AclMode action, const char *action_name);
extern void msgq_check_queue_owner(MsgqQueue *queue, Oid roleid);
extern Jsonb *msgq_tags_merge(Jsonb *current, Jsonb *given, const char *what,
							  const char *invalid_code, const char *limit_code);
extern bool msgq_queue_action_allowed(Oid roleid, Oid owner, Acl *acl,
									  AclMode action);
extern AclMode msgq_parse_actions(ArrayType *actions);
extern Acl *msgq_build_acl(ArrayType *roles, AclMode mode, Oid grantor);
extern void msgq_acl_install_hooks(void);

/* One SQL-callable call (queue.c): the caller, and the saved identity */
typedef struct MsgqCall
{
	Oid			caller;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nest;		/* GUC nest level of the pinned search_path */
	bool		connected;		/* search_path pinned and SPI connected */
	MemoryContext cxt;			/* the caller's memory context */
} MsgqCall;

struct _SPI_plan;
extern struct _SPI_plan *msgq_plan(struct _SPI_plan **slot, const char *sql,
								   int nargs, Oid *argtypes);
extern int	msgq_execute_keyed(struct _SPI_plan *plan, Datum *values,
							   const char *nulls, bool read_only, long tcount);
extern struct _SPI_plan *msgq_plan_opts(struct _SPI_plan **slot, const char *sql,
										int nargs, Oid *argtypes,
										int cursor_options);
extern void msgq_call_enter(MsgqCall *call);
extern void msgq_call_enter_light(MsgqCall *call);
extern void msgq_call_need_sql(MsgqCall *call);
extern TupleDesc msgq_result_desc(FunctionCallInfo fcinfo, TupleDesc *cache);
extern void msgq_call_leave(MsgqCall *call);
extern char *msgq_text_arg(FunctionCallInfo fcinfo, int n);
extern void msgq_text_array(ArrayType *arr, Datum **elems, int *n);
extern void msgq_invalid_value(const char *param, long long value, const char *reason);
extern void msgq_queue_does_not_exist(const char *name);
extern char *msgq_queue_url(const char *name);
extern void msgq_queue_cache_invalidate(void);

/* Queue lookup (queue.c); caller is connected to SPI as the extension owner */
extern bool msgq_queue_lookup(const char *queue_ref, MsgqQueue *queue);
extern MsgqQueue *msgq_queue_get(const char *queue_ref);
extern MsgqQueue *msgq_queue_get_light(MsgqCall *call, const char *queue_ref);
extern void msgq_queue_cache_register(void);
extern void msgq_queue_cache_prime(void);

/*
 * Maintenance (maintenance.c): one cycle of the timed work of a database.
 * Must be called inside a transaction; it connects to SPI itself and runs
 * as the extension owner.  The per-database worker calls it every
 * msgq.worker_naptime; msgq.run_maintenance() calls it on demand.
 */
extern void msgq_maintenance_cycle(void);
extern void msgq_maintenance_streams(void);

struct LOCKTAG;
struct SnapshotData;

/* slice.c: a stream's time slices */
typedef enum SlicePlan
{
	SLICE_AT_TIME,
	SLICE_TIP,
	SLICE_EXISTS,
	SLICE_ANY,
	SLICE_NPLANS
} SlicePlan;

typedef struct MsgqSlice
{
	int64		slice_id;
	int64		start_seq;
	int64		end_seq;		/* PG_INT64_MAX for the current slice */
	TimestampTz sealed_at;		/* 0 for the current slice */
} MsgqSlice;

typedef bool (*MsgqSliceRowFn) (void *arg, int64 seq, TimestampTz arrival,
								Datum key, Datum data, ItemPointer tid);

extern struct _SPI_plan *msgq_slice_plan(int64 slice_id, SlicePlan which);
extern bool msgq_slice_scan(int64 slice_id, int32 shard, int64 from, int64 below,
							TimestampTz cutoff, struct SnapshotData *snap,
							MsgqSliceRowFn fn, void *arg);
extern bool msgq_slice_lock(int64 slice_id);
extern Relation msgq_slice_open(int64 slice_id);
extern void msgq_slice_fetch(Relation heap, Buffer *buf, ItemPointer tid,
							 Datum *key, Datum *data);
extern void msgq_slice_put(int64 slice_id, TimestampTz arrival, int n,
						   const int32 *shards, const Datum *keys, const Datum *datas,
						   int64 *seqs);
extern MsgqSlice *msgq_slices_list(int32 stream_id, int64 from, int64 below,
								   TimestampTz cutoff, bool descending, int *n);
extern int64 msgq_slice_create(int32 stream_id, int64 start_seq);
extern void msgq_slices_drop_stream(int32 stream_id);
extern void msgq_slice_plans_stale(void);
extern void msgq_streams_maintain(void);
extern Oid	msgq_stream_seq_relid(void);

/* segment.c */
extern int	msgq_segment_rotation_interval_ms;
extern int	msgq_segment_lock_timeout_ms;
extern void msgq_segment_cache_reset(void);
extern int	msgq_segment_active(void);
extern Datum msgq_active_segment(PG_FUNCTION_ARGS);

#define MSGQ_SEGMENTS			4
extern void msgq_segments_maintain(void);
extern bool msgq_lock_relation_timed(Oid relid, LOCKMODE mode);
extern bool msgq_lock_tag_timed(const struct LOCKTAG *tag, LOCKMODE mode);
extern Oid	msgq_message_relid(void);
extern Oid	msgq_segment_relid(int seg);

/* msgstore.c: the send path's inserts into the active segment */
typedef struct MsgqStoreMessage
{
	int32		queue_id;
	Datum		message_id;		/* uuid */
	text	   *body;
	Jsonb	   *attributes;		/* NULL: none */
	const char *md5_body;
	const char *md5_attrs;		/* NULL without attributes */
	const char *sender;
	const char *group_id;		/* NULL: none */
	const char *dedup_id;		/* FIFO: the deduplication id, else NULL */
	int64		msg_seq;		/* taken already (FIFO), or 0 */
	TimestampTz sent_at;
	TimestampTz visible_at;
} MsgqStoreMessage;

extern void msgq_store_insert(const MsgqStoreMessage *msgs, int n, int64 *msg_seqs);
extern bool msgq_queue_deliver(MsgqQueue *queue, MsgqStoreMessage *msg);
extern int64 msgq_store_next_seq(void);
extern Oid	msgq_store_seq_relid(void);

/* head.c: where a standard queue's live messages begin */
typedef struct MsgqHeadState
{
	int64		head;			/* the receive reads from msg_seq >= head */
	int64		armed_seq;		/* the armed advance, if armed_xid is valid */
	TransactionId armed_xid;
	TransactionId xmin;			/* the receive's snapshot's bound */
} MsgqHeadState;

extern void msgq_head_shmem_size(Size *size);
extern void msgq_head_shmem_init(void);
extern int64 msgq_head_peek(int32 queue_id);
extern int64 msgq_head_get(int32 queue_id, MsgqHeadState *state);
extern void msgq_head_advance(int32 queue_id, const MsgqHeadState *state,
							  int64 first_seq);

/* stream.c: get_records as a scan, for records_scan.c */
typedef struct MsgqRecordsScan MsgqRecordsScan;
extern MsgqRecordsScan *msgq_records_scan_create(MemoryContext cxt);
extern void msgq_records_scan_begin(MsgqRecordsScan *s, const char *it, const int32 *limit);
extern bool msgq_records_scan_next(MsgqRecordsScan *s, Datum *values, bool *nulls);
extern void msgq_records_scan_rewind(MsgqRecordsScan *s);
extern void msgq_records_scan_end(MsgqRecordsScan *s);

extern Datum msgq_get_records(PG_FUNCTION_ARGS);

/* records_scan.c */
extern bool msgq_records_scan_enabled;
extern void msgq_records_scan_define_gucs(void);
extern void msgq_records_scan_install_hooks(void);

/* stream.c */
extern void msgq_stream_enter(MsgqCall *call, const char *name, int32 *stream_id,
							  int32 *retention_hours);
extern char *msgq_shard_id_text(int32 idx);

/* esm.c: event source mappings */
extern void msgq_esm_shmem_size(Size *size);
extern void msgq_esm_shmem_init(void);
extern void msgq_esm_source_committed(int32 queue_id);
extern long msgq_esm_run(bool in_worker);
extern long msgq_esm_worker_pass(void);
extern void msgq_esm_set_runner(int runner);

#define MSGQ_MAX_ESM_RUNNERS	32
extern int	msgq_esm_max_concurrency;
extern void msgq_delivery_wake_worker_at_commit(void);
extern int	msgq_function_timeout_ms;
extern bool msgq_stream_exists(const char *name);

/* stream.c, for esm.c */
typedef struct MsgqStreamBatch
{
	int			read;			/* records read (some may be left out) */
	int			n;				/* records in the event */
	int64		first_seq;
	int64		last_seq;		/* the last record read */
	TimestampTz first_arrival;
	TimestampTz last_arrival;
	int64		next;			/* where the next read starts */
	bool		more;			/* the read stopped at its limit */
	int			n_old;			/* leading records older than asked */
	int64		last_old_seq;
	TimestampTz last_old_arrival;
} MsgqStreamBatch;

extern bool msgq_stream_resolve(const char *name, Oid roleid, int32 *stream_id,
								char **stream_name);
extern char *msgq_stream_arn(const char *stream_name);
extern Jsonb *msgq_stream_batch(int32 stream_id, int32 shard, int64 start, int32 limit,
								TimestampTz min_arrival, TimestampTz older_than,
								const char *invoker, int lane, int nlanes,
								MsgqStreamBatch *b);

typedef void (*MsgqStreamRecordFn) (void *arg, int64 seq, TimestampTz arrival,
									struct varlena *key, struct varlena *data);
extern int64 msgq_stream_read_records(int32 stream_id, int32 shard, int64 start,
									  int32 limit, MsgqStreamRecordFn fn, void *arg,
									  bool *more);

/* firehose.c: delivery streams */
extern void msgq_firehose_define_gucs(void);
extern void msgq_firehose_shmem_size(Size *size);
extern void msgq_firehose_shmem_init(void);
extern void msgq_firehose_source_committed(int32 queue_id);
extern long msgq_firehose_run(bool in_worker);
extern long msgq_firehose_worker_pass(void);
extern void msgq_firehose_publish_source(int32 stream_id);
/* attributes given as jsonb, checked (InvalidArgumentException, MQ021) */
extern void msgq_attr_check_keys(JsonbContainer *obj, const char *const *allowed,
								 const char *what);
extern JsonbContainer *msgq_attr_obj(JsonbValue *v, const char *what);
extern char *msgq_attr_str(JsonbValue *v, const char *what);
extern char *msgq_attr_str_or_null(JsonbContainer *obj, const char *key);
extern int32 msgq_attr_int(JsonbValue *v, const char *what, int32 min, int32 max);
extern bool msgq_json_text_ok(bytea *data, bool object);

/* endpoint.c: the AWS wire endpoint */
extern void msgq_endpoint_define_gucs(void);
extern void msgq_endpoint_register(void);
extern void msgq_endpoint_shmem_size(Size *size);
extern void msgq_endpoint_shmem_init(void);
extern void msgq_endpoint_wakeup(void);

/* analytics.c: stream queries */
extern long msgq_stream_queries_run(bool in_worker);
extern long msgq_stream_queries_worker_pass(void);

/* consumer.c: consumer groups' shard leases */
extern void msgq_group_lease_check(int32 stream_id, const char *group, int32 shard,
								   const char *worker_id);
extern Oid	msgq_stream_relid(void);
extern int64 msgq_stream_seq_floor(void);
extern void msgq_stream_cache_invalidate(void);
extern bool msgq_stream_deliver(const char *stream_ref, Oid role, const char *pkey,
								bytea *data);
extern void msgq_stream_check_endpoint(const char *stream_ref, Oid role);
extern void msgq_stream_shmem_size(Size *size);
extern void msgq_stream_shmem_init(void);

/* stream_metrics.c: per-shard counters and limits (Kinesis's figures) */
#define MSGQ_SHARD_WRITE_RECORDS	1000
#define MSGQ_SHARD_WRITE_BYTES		1048576
#define MSGQ_SHARD_READ_CALLS		5
#define MSGQ_SHARD_READ_BYTES		(2 * 1048576)
#define MSGQ_SHARD_ITERATOR_CALLS	5
/* enhanced fan-out: bytes per consumer, shard and second */
#define MSGQ_SUBSCRIBE_READ_BYTES	(2 * 1048576)
extern int	msgq_max_stream_shard_metrics;
extern void msgq_stream_metrics_shmem_size(Size *size);
extern void msgq_stream_metrics_shmem_init(void);
extern bool msgq_stream_metrics_put(int32 stream_id, int32 shard, int64 records,
									int64 bytes, bool enforce);
extern bool msgq_stream_metrics_read_begin(int32 stream_id, int32 shard, bool enforce);
extern void msgq_stream_metrics_read_end(int32 stream_id, int32 shard, int64 records,
										 int64 bytes, bool shared_budget);
extern int64 msgq_stream_window_second(void);
extern bool msgq_stream_metrics_iterator(int32 stream_id, int32 shard, bool enforce);
extern void msgq_stream_metrics_drop(int32 stream_id);

/* metrics.c */
extern int	msgq_max_queue_metrics;
extern int	msgq_max_inflight_messages;
extern void msgq_metrics_shmem_size(Size *size);
extern void msgq_metrics_shmem_init(void);
extern void msgq_metrics_sent(int32 queue_id, int64 n, TimestampTz now, TimestampTz visible_at);
extern void msgq_metrics_stored(int32 queue_id, int64 n);
extern void msgq_metrics_received(int32 queue_id, int64 n, TimestampTz now, TimestampTz visible_at);
extern void msgq_metrics_deleted(int32 queue_id, int64 n, TimestampTz now,
								 TimestampTz visible_at, bool received_before);
extern void msgq_metrics_unhide(int32 queue_id, int64 n, TimestampTz now, TimestampTz t,
								bool received_before);
extern void msgq_metrics_visibility(int32 queue_id, TimestampTz now, TimestampTz old_t,
									TimestampTz new_t);
extern void msgq_metrics_drop_queue(int32 queue_id);
extern void msgq_metrics_sends_moved(TimestampTz now);
extern void msgq_metrics_empty_receive(int32 queue_id);
extern void msgq_metrics_removed(int32 queue_id, SPITupleTable *tt, uint64 n,
								 TimestampTz now);

/*
 * The tail of a statement whose CTE "d" deleted messages RETURNING
 * visible_at and receive_count, $2 being now: one row with the count, then
 * one per second of hidden messages (for msgq_metrics_removed).
 */
#define MSGQ_REMOVED_SQL \
	" SELECT pg_catalog.count(*), NULL::timestamptz, NULL::bool FROM d" \
	" UNION ALL" \
	" SELECT pg_catalog.count(*), pg_catalog.max(visible_at), receive_count OPERATOR(pg_catalog.>) 0" \
	"   FROM d WHERE visible_at OPERATOR(pg_catalog.>) $2" \
	"  GROUP BY pg_catalog.date_trunc('second', visible_at), receive_count OPERATOR(pg_catalog.>) 0"
extern void msgq_metrics_maintain(void);
extern int64 msgq_metrics_inflight_room(int32 queue_id);

/* Topics (topic.c) */
extern void msgq_topic_dedup_expire(void);
extern void msgq_maintenance_deliveries(void);
extern char *msgq_topic_arn(const char *topic_name);
extern char *msgq_subscription_arn(const char *topic_name, const pg_uuid_t *sub_id);

/*
 * Topic and subscription counters (topic_metrics.c), in shared memory.
 * Counts are collected per transaction and applied when it commits.
 */
typedef enum MsgqTopicCount
{
	MSGQ_TOPIC_COUNT_MATCHED,	/* a publish matched the subscription */
	MSGQ_TOPIC_COUNT_DELIVERED, /* delivered (in the publisher's transaction or after) */
	MSGQ_TOPIC_COUNT_RETRIED,	/* an attempt failed and will be retried */
	MSGQ_TOPIC_COUNT_FAILED,	/* given up and dropped (no dead-letter queue) */
	MSGQ_TOPIC_COUNT_DLQ,		/* given up and moved to the dead-letter queue */
	MSGQ_TOPIC_COUNT_KINDS
} MsgqTopicCount;

extern int	msgq_max_topic_metrics;
extern void msgq_topic_metrics_shmem_size(Size *size);
extern void msgq_topic_metrics_shmem_init(void);
/* one publish to a topic: nsubs subscriptions, nmatched of them matched */
extern void msgq_topic_count_published(int32 topic_id, int nsubs, int nmatched);
extern void msgq_topic_count(const pg_uuid_t *sub_id, MsgqTopicCount what);
extern void msgq_topic_metrics_drop_topic(int32 topic_id);
extern void msgq_topic_metrics_drop_subscription(const pg_uuid_t *sub_id);

/* Dead-letter redrive tasks (move_task.c), advanced by the maintenance cycle */
extern void msgq_move_tasks_run(void);

/* Background workers (launcher.c, worker.c) */
extern void msgq_bgw_define_gucs(void);
extern void msgq_bgw_wake_worker(Oid dboid);
extern void msgq_bgw_wake_esm(Oid dboid);
extern void msgq_delivery_define_gucs(void);
extern Size msgq_bgw_shmem_size(void);
extern void msgq_bgw_shmem_init(void);
extern void msgq_bgw_register_launcher(void);
extern void msgq_bgw_install_hooks(void);

#endif							/* MSGQ_H */
