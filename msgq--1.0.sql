/* msgq--1.0.sql: msgq's catalog, message storage and SQL API, version 1.0 */

\echo Use "CREATE EXTENSION msgq" to load this file. \quit

-- The database must be UTF8: message bodies are text under AWS's
-- XML-legal character rule.
DO $do$
BEGIN
	IF pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.<>) 'UTF8' THEN
		RAISE EXCEPTION USING
			ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'msgq requires a database with UTF8 encoding',
			DETAIL = pg_catalog.format('The database encoding is %s.', pg_catalog.getdatabaseencoding());
	END IF;
END
$do$;

-- msgq needs its shared memory and workers: refuse to install otherwise.
CREATE FUNCTION msgq._assert_preloaded()
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_assert_preloaded'
LANGUAGE C;
SELECT msgq._assert_preloaded();

-------------------------------------------------------------------------------
-- Catalog
-------------------------------------------------------------------------------

-- One row per queue.  Frequently read attributes have their own columns;
-- "attributes" keeps every attribute as given, for GetQueueAttributes.
CREATE TABLE msgq.queue (
	queue_id integer NOT NULL PRIMARY KEY,
	queue_name text NOT NULL UNIQUE,
	owner regrole NOT NULL,
	fifo boolean NOT NULL DEFAULT false,
	visibility_timeout integer NOT NULL DEFAULT 30,
	message_retention_period integer NOT NULL DEFAULT 345600,
	delay_seconds integer NOT NULL DEFAULT 0,
	receive_wait_time_seconds integer NOT NULL DEFAULT 0,
	maximum_message_size integer NOT NULL DEFAULT 1048576,
	extended_maximum_message_size integer NOT NULL DEFAULT 0,
	attributes jsonb NOT NULL DEFAULT '{}',
	dead_letter_queue text,
	max_receive_count integer,
	redrive_permission text,
	redrive_sources text[],
	tags jsonb NOT NULL DEFAULT '{}',
	acl aclitem[],
	created_at timestamptz NOT NULL,
	last_modified_at timestamptz NOT NULL,
	purged_at timestamptz
);
CREATE INDEX queue_dead_letter_queue_idx ON msgq.queue (dead_letter_queue);
CREATE SEQUENCE msgq.queue_id_seq AS integer OWNED BY msgq.queue.queue_id;

-- Permissions added with add_permission, one row per label.  queue.acl is
-- the concatenation of every label's items, so a check reads one row.
CREATE TABLE msgq.queue_permission (
	queue_id integer NOT NULL REFERENCES msgq.queue ON DELETE CASCADE,
	label text NOT NULL,
	acl aclitem[] NOT NULL,
	PRIMARY KEY (queue_id, label)
);

-- Storage segments (doc/design.md, "Storage").  msgq.message is split into
-- four partitions used as a ring: sends go to the active one; the
-- maintenance cycle seals it every msgq.segment_rotation_interval, moves the
-- few messages still alive in a sealed segment to the active one and then
-- TRUNCATEs it, which gives its space back at once, even while another
-- session holds an old snapshot that keeps vacuum from removing anything.
CREATE TABLE msgq.segment (
	seg smallint PRIMARY KEY CHECK (seg BETWEEN 0 AND 3),
	state text NOT NULL CHECK (state IN ('active', 'sealed', 'free')),
	since timestamptz NOT NULL
);
CREATE UNIQUE INDEX segment_one_active ON msgq.segment (state) WHERE state = 'active';
INSERT INTO msgq.segment VALUES (0, 'active', pg_catalog.now()), (1, 'free', pg_catalog.now()),
	(2, 'free', pg_catalog.now()), (3, 'free', pg_catalog.now());

-- Not dumped: a restore starts a new ring (segment 0 active) and the
-- restored messages, in whichever partitions they were, are drained or
-- written to as the ring turns; a segment is only ever truncated after its
-- messages were moved out.

-- The segment that sends write to (cached per backend).
CREATE FUNCTION msgq.active_segment()
RETURNS smallint
AS 'MODULE_PATHNAME', 'msgq_active_segment'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq.active_segment() FROM PUBLIC;

-- Messages of every queue.  Insert-only apart from the receive lease
-- columns, which are not indexed so that receive updates stay HOT.
CREATE TABLE msgq.message (
	queue_id integer NOT NULL,
	msg_seq bigint NOT NULL,
	message_id uuid NOT NULL,
	body text NOT NULL,
	message_attributes jsonb,
	md5_of_body text NOT NULL,
	md5_of_message_attributes text,
	sender text NOT NULL,
	message_group_id text,
	message_deduplication_id text,
	sent_at timestamptz NOT NULL,
	visible_at timestamptz NOT NULL,
	receive_count integer NOT NULL DEFAULT 0,
	first_received_at timestamptz,
	received_at timestamptz,
	receipt_nonce bigint,
	source_queue_id integer,	-- set on messages moved to a dead-letter queue
	seg smallint NOT NULL DEFAULT msgq.active_segment(),
	PRIMARY KEY (queue_id, msg_seq, seg)
) PARTITION BY LIST (seg);
CREATE TABLE msgq.message_0 PARTITION OF msgq.message FOR VALUES IN (0);
CREATE TABLE msgq.message_1 PARTITION OF msgq.message FOR VALUES IN (1);
CREATE TABLE msgq.message_2 PARTITION OF msgq.message FOR VALUES IN (2);
CREATE TABLE msgq.message_3 PARTITION OF msgq.message FOR VALUES IN (3);
CREATE SEQUENCE msgq.message_seq AS bigint;

-- FIFO deduplication ids seen in the last five minutes (src/fifo.c): scope
-- is '' (DeduplicationScope queue) or the MessageGroupId (messageGroup).
-- Receiving or deleting the message keeps its row; purge_queue and
-- delete_queue remove a queue's rows, the maintenance cycle expired ones.
CREATE TABLE msgq.fifo_dedup (
	queue_id integer NOT NULL,
	scope text NOT NULL,
	dedup_id text NOT NULL,
	message_id uuid NOT NULL,
	sequence_number bigint NOT NULL,
	sent_at timestamptz NOT NULL,
	PRIMARY KEY (queue_id, scope, dedup_id)
);
CREATE INDEX fifo_dedup_sent_at_idx ON msgq.fifo_dedup (sent_at);

-- Messages by group (src/fifo.c): a FIFO receive walks the groups in name
-- order from where the last receive stopped, reading each group's first
-- messages, so a blocked group costs one probe whatever its backlog.
CREATE INDEX message_group_idx ON msgq.message (queue_id, message_group_id, msg_seq)
	WHERE message_group_id IS NOT NULL;

-- Recently deleted queues.  Their names cannot be used again for 60 s
-- (QueueDeletedRecently), and a send that raced with delete_queue may still
-- commit a message for a deleted queue: the maintenance cycle removes such
-- strays while the queue is listed here (an hour).
CREATE TABLE msgq.deleted_queue (
	queue_id integer NOT NULL PRIMARY KEY,
	queue_name text NOT NULL,
	deleted_at timestamptz NOT NULL
);
CREATE INDEX deleted_queue_name_idx ON msgq.deleted_queue (queue_name, deleted_at);

-- Dead-letter redrive tasks (start_message_move_task), run by the worker.
CREATE TABLE msgq.message_move_task (
	task_handle uuid PRIMARY KEY,
	source_queue_id integer NOT NULL,
	source_queue_name text NOT NULL,
	destination_queue_id integer,
	destination_queue_name text,
	max_number_of_messages_per_second integer,
	status text NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'CANCELLING', 'CANCELLED', 'FAILED')),
	started_at timestamptz NOT NULL,
	last_run_at timestamptz NOT NULL,
	finished_at timestamptz,
	move_budget double precision NOT NULL DEFAULT 0,
	approximate_number_of_messages_moved bigint NOT NULL DEFAULT 0,
	approximate_number_of_messages_to_move bigint,
	failure_reason text
);
CREATE INDEX message_move_task_source_idx ON msgq.message_move_task (source_queue_id, started_at);

-- The key that authenticates receipt handles.  It is made at CREATE
-- EXTENSION and deliberately not dumped: a restored database gets a new
-- key, so handles issued before the dump are refused, never trusted.
CREATE TABLE msgq.secret (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	receipt_key bytea NOT NULL
);
INSERT INTO msgq.secret (receipt_key)
SELECT pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '') OPERATOR(pg_catalog.||)
						 pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '') OPERATOR(pg_catalog.||)
						 pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', ''), 'hex');

SELECT pg_catalog.pg_extension_config_dump('msgq.queue', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.queue_permission', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.message_0', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.message_1', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.message_2', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.message_3', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.message_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.message_move_task', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.fifo_dedup', '');

-- msgq's tables are written only by msgq's functions, which run as the
-- extension owner.
-- Every role may call msgq's functions (which check the caller's rights on
-- each queue) but not touch its tables.
GRANT USAGE ON SCHEMA msgq TO PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA msgq FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA msgq FROM PUBLIC;

-------------------------------------------------------------------------------
-- Queues
-------------------------------------------------------------------------------

CREATE FUNCTION msgq.create_queue(queue_name text, attributes jsonb DEFAULT '{}')
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_create_queue'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.delete_queue(queue_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_delete_queue'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_queues(queue_name_prefix text DEFAULT NULL)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'msgq_list_queues'
LANGUAGE C STABLE;

-- For paging (the AWS endpoint's ListQueues): every queue whose name sorts
-- after exclusive_start_queue_name (byte order), without the 1000 limit.
-- A function of its own, not an overload: each API function has one signature.
CREATE FUNCTION msgq._list_queues_after(queue_name_prefix text, exclusive_start_queue_name text)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'msgq_list_queues'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.get_queue_url(queue_name text)
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_get_queue_url'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.send_message(
	queue_name text,
	message_body text,
	delay_seconds integer DEFAULT NULL,
	message_attributes json DEFAULT NULL,	-- json: repeated names are refused, not collapsed
	message_group_id text DEFAULT NULL,
	message_deduplication_id text DEFAULT NULL,
	OUT message_id uuid,
	OUT md5_of_message_body text,
	OUT md5_of_message_attributes text,
	OUT sequence_number numeric)
AS 'MODULE_PATHNAME', 'msgq_send_message'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.receive_message(
	queue_name text,
	max_number_of_messages integer DEFAULT 1,
	visibility_timeout integer DEFAULT NULL,
	wait_time_seconds integer DEFAULT NULL,
	message_attribute_names text[] DEFAULT '{All}',
	message_system_attribute_names text[] DEFAULT '{All}',
	receive_request_attempt_id text DEFAULT NULL)
RETURNS TABLE (
	message_id uuid,
	receipt_handle text,
	body text,
	md5_of_body text,
	attributes jsonb,
	message_attributes jsonb)
AS 'MODULE_PATHNAME', 'msgq_receive_message'
LANGUAGE C VOLATILE ROWS 10;

CREATE FUNCTION msgq.delete_message(queue_name text, receipt_handle text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_delete_message'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.change_message_visibility(queue_name text, receipt_handle text,
											   visibility_timeout integer)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_change_message_visibility'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.send_message_batch(queue_name text, entries json)
RETURNS TABLE (
	id text,
	message_id uuid,
	md5_of_message_body text,
	md5_of_message_attributes text,
	sequence_number numeric,
	error_code text,
	error_message text,
	sender_fault boolean)
AS 'MODULE_PATHNAME', 'msgq_send_message_batch'
LANGUAGE C VOLATILE ROWS 10;

CREATE FUNCTION msgq.delete_message_batch(queue_name text, entries jsonb)
RETURNS TABLE (
	id text,
	error_code text,
	error_message text,
	sender_fault boolean)
AS 'MODULE_PATHNAME', 'msgq_delete_message_batch'
LANGUAGE C VOLATILE ROWS 10;

CREATE FUNCTION msgq.change_message_visibility_batch(queue_name text, entries jsonb)
RETURNS TABLE (
	id text,
	error_code text,
	error_message text,
	sender_fault boolean)
AS 'MODULE_PATHNAME', 'msgq_change_message_visibility_batch'
LANGUAGE C VOLATILE ROWS 10;

CREATE FUNCTION msgq.get_queue_attributes(queue_name text, attribute_names text[] DEFAULT '{All}')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_get_queue_attributes'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.set_queue_attributes(queue_name text, attributes jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_set_queue_attributes'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.purge_queue(queue_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_purge_queue'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.tag_queue(queue_name text, tags jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_tag_queue'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.untag_queue(queue_name text, tag_keys text[])
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_untag_queue'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_queue_tags(queue_name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_list_queue_tags'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_dead_letter_source_queues(queue_name text)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'msgq_list_dead_letter_source_queues'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.start_message_move_task(
	source_arn text,
	destination_arn text DEFAULT NULL,
	max_number_of_messages_per_second integer DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_start_message_move_task'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.cancel_message_move_task(task_handle text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'msgq_cancel_message_move_task'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_message_move_tasks(source_arn text, max_results integer DEFAULT 1)
RETURNS TABLE (
	task_handle text,
	status text,
	source_arn text,
	destination_arn text,
	max_number_of_messages_per_second integer,
	approximate_number_of_messages_moved bigint,
	approximate_number_of_messages_to_move bigint,
	failure_reason text,
	started_timestamp bigint)
AS 'MODULE_PATHNAME', 'msgq_list_message_move_tasks'
LANGUAGE C VOLATILE;

-------------------------------------------------------------------------------
-- Privileges
-------------------------------------------------------------------------------

CREATE FUNCTION msgq.add_permission(queue_name text, label text, roles text[], actions text[])
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_add_permission'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.remove_permission(queue_name text, label text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_remove_permission'
LANGUAGE C VOLATILE;

-- Creating queues is a privilege granted with GRANT EXECUTE on this function.
REVOKE ALL ON FUNCTION msgq.create_queue(text, jsonb) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Operations
-------------------------------------------------------------------------------

CREATE FUNCTION msgq.run_maintenance()
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_run_maintenance'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq.run_maintenance() FROM PUBLIC;

-- Receive leases in shared memory (src/lease.c): when a message's lease
-- ends (NULL without one), and the table's use.
CREATE FUNCTION msgq.lease_until(queue_id int, msg_seq bigint, message_id uuid)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'msgq_lease_until'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
REVOKE ALL ON FUNCTION msgq.lease_until(int, bigint, uuid) FROM PUBLIC;

CREATE FUNCTION msgq.lease_table(OUT leases bigint, OUT max_leases bigint,
								 OUT full_claims bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'msgq_lease_table'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq.lease_table() FROM PUBLIC;

-- Where a standard queue's receives start reading (src/head.c): every row
-- with a smaller msg_seq is deleted for good; armed: an advance is pending.
CREATE FUNCTION msgq.queue_head(queue_name text, OUT head bigint, OUT armed boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'msgq_queue_head'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq.queue_head(text) FROM PUBLIC;

-- The storage segments, their state and on-disk size (tables and indexes).
CREATE VIEW msgq.segments AS
SELECT s.seg, s.state, s.since,
	   pg_catalog.pg_total_relation_size(pg_catalog.format('msgq.message_%s', s.seg)::regclass) AS bytes
  FROM msgq.segment s;
REVOKE ALL ON msgq.segments FROM PUBLIC;

CREATE FUNCTION msgq.now()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'msgq_now_sql'
LANGUAGE C VOLATILE;

-- Queue metrics, kept in shared memory (doc/design.md, "Metrics").
CREATE FUNCTION msgq._queue_metrics(
	OUT queue_id integer, OUT visible bigint, OUT not_visible bigint, OUT delayed bigint,
	OUT sent bigint, OUT received bigint, OUT deleted bigint, OUT empty_receives bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'msgq_queue_metrics_data'
LANGUAGE C VOLATILE;
CREATE FUNCTION msgq._metrics_known()
RETURNS boolean
AS 'MODULE_PATHNAME', 'msgq_metrics_known'
LANGUAGE C VOLATILE;
CREATE FUNCTION msgq._metrics_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_metrics_reset'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq._queue_metrics() FROM PUBLIC;
REVOKE ALL ON FUNCTION msgq._metrics_known() FROM PUBLIC;
REVOKE ALL ON FUNCTION msgq._metrics_reset() FROM PUBLIC;
-- functions in a view are checked against the reader: msgq.queue_metrics's
-- readers need them
GRANT EXECUTE ON FUNCTION msgq._queue_metrics(), msgq._metrics_known() TO pg_monitor;
-- a new installation has no messages: forget what an earlier one left
SELECT msgq._metrics_reset();

-- One row per queue, with CloudWatch's metric names.  The gauges are NULL
-- after a restart until the worker has counted the messages once; the
-- counters count since the server started.  ApproximateAgeOfOldestMessage
-- is one index probe per queue.
CREATE VIEW msgq.queue_metrics AS
SELECT q.queue_name,
	   CASE WHEN k.known THEN COALESCE(m.visible, 0) END AS "ApproximateNumberOfMessagesVisible",
	   CASE WHEN k.known THEN COALESCE(m.not_visible, 0) END AS "ApproximateNumberOfMessagesNotVisible",
	   CASE WHEN k.known THEN COALESCE(m.delayed, 0) END AS "ApproximateNumberOfMessagesDelayed",
	   (SELECT pg_catalog.floor(pg_catalog.date_part('epoch', msgq.now() OPERATOR(pg_catalog.-) o.sent_at))::bigint
		  FROM msgq.message o
		 WHERE o.queue_id OPERATOR(pg_catalog.=) q.queue_id
		 ORDER BY o.queue_id, o.msg_seq LIMIT 1) AS "ApproximateAgeOfOldestMessage",
	   COALESCE(m.sent, 0) AS "NumberOfMessagesSent",
	   COALESCE(m.received, 0) AS "NumberOfMessagesReceived",
	   COALESCE(m.deleted, 0) AS "NumberOfMessagesDeleted",
	   COALESCE(m.empty_receives, 0) AS "NumberOfEmptyReceives"
  FROM msgq.queue q
  LEFT JOIN msgq._queue_metrics() m ON m.queue_id OPERATOR(pg_catalog.=) q.queue_id
 CROSS JOIN msgq._metrics_known() AS k(known);
REVOKE ALL ON msgq.queue_metrics FROM PUBLIC;
GRANT SELECT ON msgq.queue_metrics TO pg_monitor;

CREATE FUNCTION msgq.waiters(
	OUT pid integer,
	OUT queue_id integer,
	OUT wait_started timestamptz,
	OUT wait_deadline timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'msgq_waiters'
LANGUAGE C VOLATILE;

-- A queue's name shows only to roles that may see the queue (as in
-- list_queues: a superuser, a member of its owner, or a role granted any
-- action on it); other roles see the waiter with a NULL queue_name.
CREATE VIEW msgq.waiters AS
	SELECT w.pid,
	       CASE WHEN pg_catalog.pg_has_role(q.owner, 'USAGE')
	              OR EXISTS (SELECT FROM pg_catalog.aclexplode(q.acl) a
	                          WHERE a.grantee OPERATOR(pg_catalog.=) 0
	                             OR pg_catalog.pg_has_role(a.grantee, 'USAGE'))
	            THEN q.queue_name END AS queue_name,
	       w.wait_started, w.wait_deadline
	  FROM msgq.waiters() w
	  LEFT JOIN msgq.queue q ON q.queue_id OPERATOR(pg_catalog.=) w.queue_id;
GRANT SELECT ON msgq.waiters TO PUBLIC;

-- BEGIN workers (launcher.c, worker.c)

-------------------------------------------------------------------------------
-- Background workers
-------------------------------------------------------------------------------

-- The launcher and the per-database workers of the whole cluster.  The
-- launcher's row has no database; its last_cycle_at and cycles report its
-- scans of pg_database.  Each worker row shows its state (starting,
-- running, disabled, stopping, or briefly how it exited), its start, its
-- last maintenance cycle and its number of cycles.
CREATE FUNCTION msgq.worker_status(
	OUT pid integer,
	OUT database name,
	OUT state text,
	OUT started_at timestamptz,
	OUT last_cycle_at timestamptz,
	OUT cycles bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'msgq_worker_status'
LANGUAGE C VOLATILE;

CREATE VIEW msgq.workers AS
	SELECT pid, database, state, started_at, last_cycle_at, cycles
	  FROM msgq.worker_status();
GRANT SELECT ON msgq.workers TO PUBLIC;

-- END workers

-------------------------------------------------------------------------------
-- Streams (doc/streams.md)
-------------------------------------------------------------------------------

CREATE TABLE msgq.stream (
	stream_id serial PRIMARY KEY,
	stream_name text NOT NULL UNIQUE,
	owner regrole NOT NULL,
	stream_mode text NOT NULL CHECK (stream_mode IN ('PROVISIONED', 'ON_DEMAND')),
	retention_hours integer NOT NULL DEFAULT 24,
	-- records that arrived before this stay hidden: a shorter retention
	-- hides older records at once, a longer one never brings them back
	trimmed_before timestamptz,
	mode_changes timestamptz[] NOT NULL DEFAULT '{}',	-- the last two, for the 24 h limit
	enforce_shard_limits boolean NOT NULL DEFAULT false,	-- stream_metrics.c
	next_shard_index integer NOT NULL,
	created_at timestamptz NOT NULL
);

-- One row per shard ever created; hash keys are unsigned 128-bit integers.
CREATE TABLE msgq.shard (
	stream_id integer NOT NULL REFERENCES msgq.stream ON DELETE CASCADE,
	shard_index integer NOT NULL,
	parent_index integer,
	adjacent_parent_index integer,
	starting_hash numeric NOT NULL,
	ending_hash numeric NOT NULL,
	starting_seq bigint NOT NULL,
	ending_seq bigint,			-- NULL while the shard is open
	created_at timestamptz NOT NULL DEFAULT msgq.now(),
	closed_at timestamptz,
	PRIMARY KEY (stream_id, shard_index)
);

-- Records live in time slices (slice.c): one table per slice,
-- msgq.stream_slice_<slice_id>, made like this template, which holds no
-- rows.  Sequence numbers come from one sequence, so they are unique in the
-- database and increase with allocation; a reader never passes a shard's
-- safe horizon (stream.c).
CREATE TABLE msgq.stream_record (
	shard_index integer NOT NULL,
	seq bigint NOT NULL,
	arrival timestamptz NOT NULL,
	partition_key text NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (shard_index, seq)
);

-- A stream's slices: the current one (end_seq NULL) takes every put; a
-- sealed one holds the numbers start_seq .. end_seq, all arrived at or
-- before sealed_at, and is dropped whole once that is past retention.
CREATE TABLE msgq.stream_slice (
	slice_id bigserial PRIMARY KEY,
	stream_id integer NOT NULL REFERENCES msgq.stream ON DELETE CASCADE,
	start_seq bigint NOT NULL,
	end_seq bigint,
	opened_at timestamptz NOT NULL,
	sealed_at timestamptz
);
CREATE INDEX ON msgq.stream_slice (stream_id, start_seq);
CREATE UNIQUE INDEX ON msgq.stream_slice (stream_id) WHERE end_seq IS NULL;
CREATE SEQUENCE msgq.stream_seq AS bigint;

-- Consumer groups' checkpoints, written in the consumer's own transaction.
CREATE TABLE msgq.stream_checkpoint (
	stream_id integer NOT NULL REFERENCES msgq.stream ON DELETE CASCADE,
	consumer_group text NOT NULL,
	shard_index integer NOT NULL,
	seq bigint NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (stream_id, consumer_group, shard_index)
);

-- Consumer groups' shard leases, as the Kinesis Client Library keeps them
-- (src/consumer.c): one row per shard and group, made by the group's first
-- acquire_leases; the owner is a worker id, the counter grows with every
-- take and renewal, the expiry is on msgq's clock.
CREATE TABLE msgq.stream_lease (
	stream_id integer NOT NULL REFERENCES msgq.stream ON DELETE CASCADE,
	consumer_group text NOT NULL,
	shard_index integer NOT NULL,
	lease_owner text,
	lease_counter bigint NOT NULL DEFAULT 0,
	expires_at timestamptz,
	owner_switches bigint NOT NULL DEFAULT 0,	-- owners since the row was made
	PRIMARY KEY (stream_id, consumer_group, shard_index)
);

-- Registered consumers and their subscriptions (one per consumer and
-- shard, five minutes long, advanced by each subscribe_to_shard call).
CREATE TABLE msgq.stream_consumer (
	stream_id integer NOT NULL REFERENCES msgq.stream ON DELETE CASCADE,
	consumer_name text NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (stream_id, consumer_name)
);
CREATE TABLE msgq.stream_subscription (
	stream_id integer NOT NULL,
	consumer_name text NOT NULL,
	shard_index integer NOT NULL,
	position bigint NOT NULL,	-- the next sequence number to read
	started_at timestamptz NOT NULL,
	-- enforced limits: bytes read counting from this second of msgq's clock
	read_second bigint NOT NULL DEFAULT 0,
	read_bytes bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (stream_id, consumer_name, shard_index),
	FOREIGN KEY (stream_id, consumer_name) REFERENCES msgq.stream_consumer ON DELETE CASCADE
);

REVOKE ALL ON msgq.stream, msgq.shard, msgq.stream_record, msgq.stream_slice,
	msgq.stream_checkpoint, msgq.stream_consumer, msgq.stream_subscription FROM PUBLIC;
REVOKE ALL ON SEQUENCE msgq.stream_seq, msgq.stream_stream_id_seq,
	msgq.stream_slice_slice_id_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('msgq.stream', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_stream_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.shard', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_slice', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_slice_slice_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_checkpoint', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_lease', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_consumer', '');

-- Each stream's time slices, their state and on-disk size.
CREATE VIEW msgq.stream_slices AS
SELECT s.stream_name, l.slice_id,
	   pg_catalog.format('msgq.stream_slice_%s', l.slice_id) AS table_name,
	   CASE WHEN l.end_seq IS NULL THEN 'current' ELSE 'sealed' END AS state,
	   l.start_seq, l.end_seq, l.opened_at, l.sealed_at,
	   pg_catalog.pg_total_relation_size(pg_catalog.to_regclass(pg_catalog.format('msgq.stream_slice_%s', l.slice_id))) AS bytes
  FROM msgq.stream_slice l JOIN msgq.stream s USING (stream_id);
REVOKE ALL ON msgq.stream_slices FROM PUBLIC;

CREATE FUNCTION msgq.create_stream(stream_name text, shard_count integer DEFAULT NULL,
	stream_mode text DEFAULT 'PROVISIONED')
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_create_stream'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq.create_stream(text, integer, text) FROM PUBLIC;

CREATE FUNCTION msgq.delete_stream(stream_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_delete_stream'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_streams()
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'msgq_list_streams'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.list_shards(
	stream_name text,
	exclusive_start_shard_id text DEFAULT NULL,
	max_results integer DEFAULT NULL,
	shard_filter_type text DEFAULT NULL,
	shard_filter_shard_id text DEFAULT NULL,
	shard_filter_timestamp timestamptz DEFAULT NULL)
RETURNS TABLE (
	shard_id text,
	parent_shard_id text,
	adjacent_parent_shard_id text,
	starting_hash_key numeric,
	ending_hash_key numeric,
	starting_sequence_number numeric,
	ending_sequence_number numeric)
AS 'MODULE_PATHNAME', 'msgq_list_shards'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.put_record(
	stream_name text,
	partition_key text,
	data bytea,
	explicit_hash_key text DEFAULT NULL,
	sequence_number_for_ordering numeric DEFAULT NULL,
	OUT shard_id text,
	OUT sequence_number numeric)
AS 'MODULE_PATHNAME', 'msgq_put_record'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.get_shard_iterator(
	stream_name text,
	shard_id text,
	shard_iterator_type text,
	starting_sequence_number numeric DEFAULT NULL,
	at_timestamp timestamptz DEFAULT NULL,
	consumer_group text DEFAULT NULL)		-- for AFTER_CHECKPOINT
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_get_shard_iterator'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.get_records(shard_iterator text, record_limit integer DEFAULT 10000)
RETURNS TABLE (
	sequence_number numeric,
	approximate_arrival_timestamp timestamptz,
	partition_key text,
	data bytea,
	next_shard_iterator text,
	millis_behind_latest bigint,
	child_shards jsonb)
AS 'MODULE_PATHNAME', 'msgq_get_records'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.put_records(stream_name text, records jsonb)
RETURNS TABLE (
	shard_id text,
	sequence_number numeric,
	error_code text,
	error_message text)
AS 'MODULE_PATHNAME', 'msgq_put_records'
LANGUAGE C VOLATILE ROWS 500;

CREATE FUNCTION msgq.put_records(stream_name text, partition_keys text[], data bytea[])
RETURNS TABLE (
	shard_id text,
	sequence_number numeric,
	error_code text,
	error_message text)
AS 'MODULE_PATHNAME', 'msgq_put_records_array'
LANGUAGE C VOLATILE ROWS 500;

CREATE FUNCTION msgq.describe_stream_summary(stream_name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_describe_stream_summary'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.checkpoint(stream_name text, consumer_group text, shard_id text,
	sequence_number numeric)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_checkpoint'
LANGUAGE C VOLATILE;

-- The same, by a worker of a consumer group: refused (LeaseLostException,
-- SQLSTATE MQ030) unless the worker holds the shard's lease, unexpired.
CREATE FUNCTION msgq.checkpoint(stream_name text, consumer_group text, shard_id text,
	sequence_number numeric, worker_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_checkpoint'
LANGUAGE C VOLATILE;

-- KCL-style lease taking for a worker of a consumer group: renews its
-- leases, takes unowned and expired ones and steals one from the most
-- loaded worker, so that N workers hold about shards / N each; children of
-- a split or merge only once their parents' checkpoints reached SHARD_END.
-- Returns the shards the worker holds now.
CREATE FUNCTION msgq.acquire_leases(stream_name text, consumer_group text, worker_id text,
	max_leases integer DEFAULT NULL, failover_time_ms integer DEFAULT 10000)
RETURNS TABLE (shard_id text, lease_counter bigint, checkpoint_sequence_number numeric,
	acquired boolean)
AS 'MODULE_PATHNAME', 'msgq_acquire_leases'
LANGUAGE C VOLATILE;

-- A worker that stops gives its leases back; returns how many.
CREATE FUNCTION msgq.release_leases(stream_name text, consumer_group text, worker_id text)
RETURNS integer
AS 'MODULE_PATHNAME', 'msgq_release_leases'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.increase_stream_retention_period(stream_name text, retention_period_hours integer)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_increase_stream_retention_period'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.decrease_stream_retention_period(stream_name text, retention_period_hours integer)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_decrease_stream_retention_period'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.register_stream_consumer(stream_name text, consumer_name text)
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_register_stream_consumer'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.deregister_stream_consumer(stream_name text, consumer_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_deregister_stream_consumer'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_stream_consumers(stream_name text)
RETURNS TABLE (consumer_name text, consumer_arn text, consumer_status text,
	consumer_creation_timestamp timestamptz)
AS 'MODULE_PATHNAME', 'msgq_list_stream_consumers'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.subscribe_to_shard(
	stream_name text,
	consumer_name text,
	shard_id text,
	starting_position text DEFAULT 'LATEST',
	starting_sequence_number numeric DEFAULT NULL,
	at_timestamp timestamptz DEFAULT NULL,
	wait_time_seconds integer DEFAULT 20,
	record_limit integer DEFAULT 10000)
RETURNS TABLE (
	sequence_number numeric,
	approximate_arrival_timestamp timestamptz,
	partition_key text,
	data bytea,
	continuation_sequence_number numeric,
	millis_behind_latest bigint)
AS 'MODULE_PATHNAME', 'msgq_subscribe_to_shard'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.split_shard(stream_name text, shard_to_split text, new_starting_hash_key text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_split_shard'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.merge_shards(stream_name text, shard_to_merge text, adjacent_shard_to_merge text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_merge_shards'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.update_shard_count(stream_name text, target_shard_count integer,
	scaling_type text DEFAULT 'UNIFORM_SCALING')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_update_shard_count'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.update_stream_mode(stream_name text, stream_mode text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_update_stream_mode'
LANGUAGE C VOLATILE;

-------------------------------------------------------------------------------
-- Stream metrics and shard limits (src/stream_metrics.c)
-------------------------------------------------------------------------------

CREATE FUNCTION msgq.enforce_shard_limits(stream_name text, enabled boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_enforce_shard_limits'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq._stream_shard_metrics(
	OUT stream_id integer, OUT shard_index integer,
	OUT incoming_records bigint, OUT incoming_bytes bigint, OUT write_throttled bigint,
	OUT get_records_calls bigint, OUT outgoing_records bigint, OUT outgoing_bytes bigint,
	OUT read_throttled bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'msgq_stream_shard_metrics'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq._stream_shard_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION msgq._stream_shard_metrics() TO pg_monitor;

-- One row per shard of every stream: counters since the server started
-- (0 for a shard not used since), named after Kinesis's shard-level metrics.
CREATE VIEW msgq.stream_metrics AS
SELECT s.stream_name,
	   'shardId-' OPERATOR(pg_catalog.||) pg_catalog.lpad(h.shard_index::pg_catalog.text, 12, '0') AS shard_id,
	   h.ending_seq IS NULL AS open,
	   COALESCE(m.incoming_records, 0) AS incoming_records,
	   COALESCE(m.incoming_bytes, 0) AS incoming_bytes,
	   COALESCE(m.write_throttled, 0) AS write_provisioned_throughput_exceeded,
	   COALESCE(m.get_records_calls, 0) AS get_records_calls,
	   COALESCE(m.outgoing_records, 0) AS outgoing_records,
	   COALESCE(m.outgoing_bytes, 0) AS outgoing_bytes,
	   COALESCE(m.read_throttled, 0) AS read_provisioned_throughput_exceeded
  FROM msgq.stream s
  JOIN msgq.shard h ON h.stream_id OPERATOR(pg_catalog.=) s.stream_id
  LEFT JOIN msgq._stream_shard_metrics() m
	ON m.stream_id OPERATOR(pg_catalog.=) h.stream_id
   AND m.shard_index OPERATOR(pg_catalog.=) h.shard_index;
REVOKE ALL ON msgq.stream_metrics FROM PUBLIC;
GRANT SELECT ON msgq.stream_metrics TO pg_monitor;

CREATE FUNCTION msgq._consumer_group_lag(
	OUT stream_name text, OUT consumer_group text, OUT shard_id text,
	OUT checkpoint_sequence_number numeric, OUT checkpointed_at timestamptz,
	OUT millis_behind_latest bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'msgq_consumer_group_lag'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq._consumer_group_lag() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION msgq._consumer_group_lag() TO pg_monitor;

-- Each consumer group's position per shard and how far it is behind the
-- shard's newest record, as MillisBehindLatest after reading up to the
-- checkpoint: the newest record's arrival minus the checkpointed record's
-- (or, once that has expired, the oldest later record's); 0 when caught up.
CREATE VIEW msgq.consumer_group_lag AS
SELECT * FROM msgq._consumer_group_lag();
REVOKE ALL ON msgq.consumer_group_lag FROM PUBLIC;
GRANT SELECT ON msgq.consumer_group_lag TO pg_monitor;

-- Every consumer group's leases: owner, counter, expiry, checkpoint, the
-- shard's parents, whether the shard is finished, and the lag.
CREATE VIEW msgq.stream_leases AS
SELECT s.stream_name, l.consumer_group,
	   'shardId-' OPERATOR(pg_catalog.||) pg_catalog.lpad(l.shard_index::pg_catalog.text, 12, '0') AS shard_id,
	   l.lease_owner, l.lease_counter, l.expires_at AS lease_expires_at,
	   (l.lease_owner IS NOT NULL AND l.expires_at OPERATOR(pg_catalog.>) msgq.now()) AS lease_held,
	   l.owner_switches,
	   c.seq::pg_catalog.numeric AS checkpoint_sequence_number,
	   COALESCE(c.seq OPERATOR(pg_catalog.>=) h.ending_seq, false) AS shard_end,
	   pg_catalog.array_remove(ARRAY[
		   'shardId-' OPERATOR(pg_catalog.||) pg_catalog.lpad(h.parent_index::pg_catalog.text, 12, '0'),
		   'shardId-' OPERATOR(pg_catalog.||) pg_catalog.lpad(h.adjacent_parent_index::pg_catalog.text, 12, '0')],
		   NULL) AS parent_shard_ids,
	   g.millis_behind_latest
  FROM msgq.stream_lease l
  JOIN msgq.stream s ON s.stream_id OPERATOR(pg_catalog.=) l.stream_id
  JOIN msgq.shard h ON h.stream_id OPERATOR(pg_catalog.=) l.stream_id
   AND h.shard_index OPERATOR(pg_catalog.=) l.shard_index
  LEFT JOIN msgq.stream_checkpoint c ON c.stream_id OPERATOR(pg_catalog.=) l.stream_id
   AND c.consumer_group OPERATOR(pg_catalog.=) l.consumer_group
   AND c.shard_index OPERATOR(pg_catalog.=) l.shard_index
  LEFT JOIN msgq._consumer_group_lag() g ON g.stream_name OPERATOR(pg_catalog.=) s.stream_name
   AND g.consumer_group OPERATOR(pg_catalog.=) l.consumer_group
   AND g.shard_id OPERATOR(pg_catalog.=) ('shardId-' OPERATOR(pg_catalog.||) pg_catalog.lpad(l.shard_index::pg_catalog.text, 12, '0'));
REVOKE ALL ON msgq.stream_leases FROM PUBLIC;
GRANT SELECT ON msgq.stream_leases TO pg_monitor;

-------------------------------------------------------------------------------
-- Event source mappings (src/esm.c): the worker reads a queue in batches
-- and calls a function with each, as Lambda does
-------------------------------------------------------------------------------

CREATE TABLE msgq.event_source_mapping (
	uuid uuid PRIMARY KEY,
	source_kind text NOT NULL CHECK (source_kind IN ('queue', 'stream')),
	source_id integer NOT NULL,		-- msgq.queue.queue_id or msgq.stream.stream_id
	source_arn text NOT NULL,
	function regprocedure NOT NULL,
	owner regrole NOT NULL,
	enabled boolean NOT NULL,
	batch_size integer NOT NULL,
	batching_window integer NOT NULL,	-- MaximumBatchingWindowInSeconds
	report_batch_item_failures boolean NOT NULL,
	created_at timestamptz NOT NULL,
	last_modified timestamptz NOT NULL,
	last_processing_result text NOT NULL DEFAULT 'No records processed',
	last_error text,
	invocations bigint NOT NULL DEFAULT 0,
	failed_invocations bigint NOT NULL DEFAULT 0,
	last_invoked_at timestamptz,
	-- stream sources only; the position is a checkpoint of group 'esm:<uuid>'
	starting_position text,
	start_seq bigint,				-- LATEST: the records numbered after it
	start_time timestamptz,			-- AT_TIMESTAMP
	max_retry_attempts integer NOT NULL DEFAULT -1,
	max_record_age integer NOT NULL DEFAULT -1,
	bisect boolean NOT NULL DEFAULT false,
	parallelization integer NOT NULL DEFAULT 1,
	on_failure text					-- a queue or a topic
);
CREATE INDEX ON msgq.event_source_mapping (source_id);
-- A stream mapping's retry state per shard, and with a ParallelizationFactor
-- P > 1 per lane of a shard (records whose partition key hashes to lane
-- modulo P): its position (seq: every record of the lane up to it is
-- processed; the group's checkpoint is the least of the P lanes'), made
-- with P = lanes (a row of another P counts as absent).
CREATE TABLE msgq.event_source_shard (
	uuid uuid NOT NULL REFERENCES msgq.event_source_mapping ON DELETE CASCADE,
	shard_index integer NOT NULL,
	lane integer NOT NULL DEFAULT 0,
	lanes integer NOT NULL DEFAULT 1,
	seq bigint,
	attempts integer NOT NULL,
	batch_limit integer NOT NULL,	-- 0: BatchSize; less while bisecting
	next_attempt_at timestamptz,
	PRIMARY KEY (uuid, shard_index, lane)
);
SELECT pg_catalog.pg_extension_config_dump('msgq.event_source_shard', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.event_source_mapping', '');

-- Lambda's CreateEventSourceMapping.  Queues: BatchSize (1-10, up to 10,000
-- with a window), MaximumBatchingWindowInSeconds (0-300), Enabled,
-- FunctionResponseTypes ["ReportBatchItemFailures"].  Streams, also:
-- StartingPosition (required), StartingPositionTimestamp,
-- MaximumRetryAttempts, MaximumRecordAgeInSeconds,
-- BisectBatchOnFunctionError, ParallelizationFactor, DestinationConfig.
-- Returns the UUID.
CREATE FUNCTION msgq.create_event_source_mapping(source text, function regprocedure,
	attributes jsonb DEFAULT '{}')
RETURNS uuid
AS 'MODULE_PATHNAME', 'msgq_create_event_source_mapping'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.update_event_source_mapping(uuid uuid, attributes jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_update_event_source_mapping'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.delete_event_source_mapping(uuid uuid)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_delete_event_source_mapping'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.get_event_source_mapping(uuid uuid)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_get_event_source_mapping'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.list_event_source_mappings(source text DEFAULT NULL)
RETURNS SETOF jsonb
AS 'MODULE_PATHNAME', 'msgq_list_event_source_mappings'
LANGUAGE C STABLE;

-- Every mapping's state and counters (pg_monitor reads it).
CREATE VIEW msgq.event_source_mappings AS
SELECT m.uuid, m.source_arn, m.function, m.owner,
	   CASE WHEN m.enabled THEN 'Enabled' ELSE 'Disabled' END AS state,
	   m.batch_size, m.batching_window, m.report_batch_item_failures,
	   m.last_processing_result, m.invocations, m.failed_invocations,
	   m.last_invoked_at, m.last_error, m.last_modified
  FROM msgq.event_source_mapping m;
REVOKE ALL ON msgq.event_source_mappings FROM PUBLIC;
GRANT SELECT ON msgq.event_source_mappings TO pg_monitor;

-------------------------------------------------------------------------------
-- Topics (src/topic.c, doc/design.md "Topics")
-------------------------------------------------------------------------------

-- One row per topic.  "attributes" keeps the settable attributes as given
-- (DisplayName, Policy, DeliveryPolicy, ...), for get_topic_attributes.
CREATE TABLE msgq.topic (
	topic_id integer NOT NULL PRIMARY KEY,
	topic_name text NOT NULL UNIQUE,
	owner regrole NOT NULL,
	fifo boolean NOT NULL DEFAULT false,
	content_dedup boolean NOT NULL DEFAULT false,
	dedup_per_group boolean NOT NULL DEFAULT false,	-- FifoThroughputScope MessageGroup
	attributes jsonb NOT NULL DEFAULT '{}',
	acl aclitem[],
	created_at timestamptz NOT NULL,
	tags jsonb NOT NULL DEFAULT '{}'	-- TagResource's, at most 50
);
CREATE SEQUENCE msgq.topic_id_seq AS integer OWNED BY msgq.topic.topic_id;

-- Permissions added with add_permission(topic ARN, ...), one row per label;
-- topic.acl is their concatenation (as for queues).
CREATE TABLE msgq.topic_permission (
	topic_id integer NOT NULL REFERENCES msgq.topic ON DELETE CASCADE,
	label text NOT NULL,
	acl aclitem[] NOT NULL,
	PRIMARY KEY (topic_id, label)
);

-- One row per subscription.  The endpoint is kept as given (a queue or
-- stream name, a channel name); filter_scope is NULL while no policy is set.
CREATE TABLE msgq.subscription (
	subscription_id uuid NOT NULL PRIMARY KEY,
	topic_id integer NOT NULL REFERENCES msgq.topic ON DELETE CASCADE,
	protocol text NOT NULL,
	endpoint text NOT NULL,
	owner regrole NOT NULL,
	raw_delivery boolean NOT NULL DEFAULT false,
	filter_policy text,
	filter_scope text CHECK (filter_scope IN ('MessageAttributes', 'MessageBody')),
	dead_letter_queue text,		-- RedrivePolicy deadLetterTargetArn, as a queue name
	attributes jsonb NOT NULL DEFAULT '{}',
	pending boolean NOT NULL DEFAULT false,	-- http/https: not confirmed yet
	confirm_token text,			-- the token its SubscriptionConfirmation carried
	created_at timestamptz NOT NULL,
	UNIQUE (topic_id, protocol, endpoint)
);

-- Deliveries made after commit by the worker (src/delivery.c): one row per
-- message and function, http or https subscription, written in the
-- publisher's transaction with the exact text to deliver; deleted when
-- delivered or given up.  attempts and next_attempt_at carry the retry
-- schedule across restarts.  No foreign key: an unsubscribed
-- subscription's rows are dropped by the worker when they fall due.
CREATE TABLE msgq.topic_delivery (
	delivery_id bigint NOT NULL PRIMARY KEY,
	subscription_id uuid NOT NULL,
	message_id uuid NOT NULL,
	kind text NOT NULL CHECK (kind IN ('Notification', 'SubscriptionConfirmation',
									   'UnsubscribeConfirmation')),
	payload text NOT NULL,
	attempts integer NOT NULL,
	next_attempt_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL,
	last_error text,
	-- where an UnsubscribeConfirmation goes: its subscription row is gone
	protocol text,
	endpoint text,
	topic_name text
);
CREATE INDEX topic_delivery_next_idx ON msgq.topic_delivery (next_attempt_at);

-- What a publish writes for its subscriptions delivered after commit
-- (function, http, https): one row per message, whatever their number; each
-- distinct document once (documents), each subscription's by its index
-- (document_index[i] for subscription_ids[i]).  In a document, token stands
-- for the subscription's ARN, arn_prefix followed by the subscription id.
-- The worker (or msgq.run_maintenance) expands the row into topic_delivery
-- rows in its own transaction.  No index: the expander takes rows by ctid,
-- SKIP LOCKED.
CREATE TABLE msgq.topic_outbox (
	message_id uuid NOT NULL,
	published_at timestamptz NOT NULL,
	subscription_ids uuid[] NOT NULL,
	document_index integer[] NOT NULL,
	documents text[] NOT NULL,
	token text,
	arn_prefix text
);
CREATE SEQUENCE msgq.topic_delivery_seq AS bigint OWNED BY msgq.topic_delivery.delivery_id;

-- FIFO topics' deduplication ids of the last five minutes; scope is '' or
-- the MessageGroupId (FifoThroughputScope MessageGroup).
CREATE TABLE msgq.topic_dedup (
	topic_id integer NOT NULL,
	scope text NOT NULL,
	dedup_id text NOT NULL,
	message_id uuid NOT NULL,
	sequence_number bigint NOT NULL,
	published_at timestamptz NOT NULL,
	PRIMARY KEY (topic_id, scope, dedup_id)
);
CREATE INDEX topic_dedup_published_at_idx ON msgq.topic_dedup (published_at);
CREATE SEQUENCE msgq.topic_message_seq AS bigint;

REVOKE ALL ON msgq.topic, msgq.topic_permission, msgq.subscription, msgq.topic_dedup,
	msgq.topic_delivery, msgq.topic_outbox FROM PUBLIC;
REVOKE ALL ON SEQUENCE msgq.topic_id_seq, msgq.topic_message_seq, msgq.topic_delivery_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('msgq.topic_delivery', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.topic_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.topic_delivery_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.topic', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.topic_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.topic_permission', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.topic_dedup', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.topic_message_seq', '');

CREATE FUNCTION msgq.create_topic(name text, attributes jsonb DEFAULT '{}')
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_create_topic'
LANGUAGE C VOLATILE;
-- Creating topics is a privilege granted with GRANT EXECUTE on this function.
REVOKE ALL ON FUNCTION msgq.create_topic(text, jsonb) FROM PUBLIC;

CREATE FUNCTION msgq.delete_topic(topic_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_delete_topic'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_topics()
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'msgq_list_topics'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.get_topic_attributes(topic_name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_get_topic_attributes'
LANGUAGE C VOLATILE;

-- SNS's TagResource, UntagResource, ListTagsForResource (the owner's)
CREATE FUNCTION msgq.tag_topic(topic_name text, tags jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_tag_topic'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.untag_topic(topic_name text, tag_keys text[])
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_untag_topic'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_topic_tags(topic_name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_list_topic_tags'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.set_topic_attributes(topic_name text, attribute_name text,
										  attribute_value text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_set_topic_attributes'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.subscribe(topic_name text, protocol text, endpoint text,
							   attributes jsonb DEFAULT '{}')
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_subscribe'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.unsubscribe(subscription text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_unsubscribe'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.confirm_subscription(topic_name text, token text,
										  authenticate_on_unsubscribe boolean DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_confirm_subscription'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.list_subscriptions()
RETURNS TABLE (subscription_arn text, owner text, protocol text, endpoint text,
			   topic_arn text)
AS 'MODULE_PATHNAME', 'msgq_list_subscriptions'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.list_subscriptions_by_topic(topic_name text)
RETURNS TABLE (subscription_arn text, owner text, protocol text, endpoint text,
			   topic_arn text)
AS 'MODULE_PATHNAME', 'msgq_list_subscriptions_by_topic'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.get_subscription_attributes(subscription text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_get_subscription_attributes'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.set_subscription_attributes(subscription text, attribute_name text,
												 attribute_value text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_set_subscription_attributes'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.publish(
	topic_name text,
	message text,
	subject text DEFAULT NULL,
	message_attributes jsonb DEFAULT NULL,
	message_group_id text DEFAULT NULL,
	message_deduplication_id text DEFAULT NULL,
	message_structure text DEFAULT NULL)
RETURNS TABLE (message_id uuid, sequence_number text)
AS 'MODULE_PATHNAME', 'msgq_publish'
LANGUAGE C VOLATILE ROWS 1;

CREATE FUNCTION msgq.publish_batch(topic_name text, entries jsonb)
RETURNS TABLE (
	id text,
	message_id uuid,
	sequence_number text,
	error_code text,
	error_message text,
	sender_fault boolean)
AS 'MODULE_PATHNAME', 'msgq_publish_batch'
LANGUAGE C VOLATILE ROWS 10;

-- Checks a notification's Signature (doc/design.md "Topics"): true when the
-- envelope was signed by this database's msgq.
CREATE FUNCTION msgq.verify_notification(notification jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'msgq_verify_notification'
LANGUAGE C STABLE;

-- Counters of topics and subscriptions since the server started
-- (src/topic_metrics.c): committed work only.
CREATE FUNCTION msgq._topic_metrics(
	OUT topic_id integer,
	OUT subscription_id uuid,
	OUT matched bigint,
	OUT delivered bigint,
	OUT retried bigint,
	OUT failed bigint,
	OUT dead_lettered bigint,
	OUT published bigint,
	OUT filtered_out bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'msgq_topic_metrics_raw'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq._topic_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION msgq._topic_metrics() TO pg_monitor;

-- One row per subscription: its counters, and its deliveries after commit
-- still pending (in_retry: those that failed at least once).
CREATE VIEW msgq.subscription_metrics AS
WITH m AS (SELECT * FROM msgq._topic_metrics() WHERE subscription_id IS NOT NULL),
	 d AS (SELECT subscription_id, pg_catalog.count(*) AS pending,
				  pg_catalog.count(*) FILTER (WHERE attempts OPERATOR(pg_catalog.>) 0) AS in_retry
			 FROM (SELECT subscription_id, attempts FROM msgq.topic_delivery
					WHERE kind OPERATOR(pg_catalog.=) 'Notification'
				   UNION ALL
				   SELECT pg_catalog.unnest(subscription_ids), 0 FROM msgq.topic_outbox) p
			GROUP BY subscription_id)
SELECT s.subscription_id, t.topic_name, s.protocol, s.endpoint,
	   COALESCE(m.matched, 0) AS matched,
	   COALESCE(m.delivered, 0) AS delivered,
	   COALESCE(m.retried, 0) AS retried,
	   COALESCE(m.failed, 0) AS failed,
	   COALESCE(m.dead_lettered, 0) AS dead_lettered,
	   COALESCE(d.in_retry, 0) AS in_retry,
	   COALESCE(d.pending, 0) AS pending
  FROM msgq.subscription s
  JOIN msgq.topic t USING (topic_id)
  LEFT JOIN m ON m.subscription_id OPERATOR(pg_catalog.=) s.subscription_id
  LEFT JOIN d ON d.subscription_id OPERATOR(pg_catalog.=) s.subscription_id;
REVOKE ALL ON msgq.subscription_metrics FROM PUBLIC;
GRANT SELECT ON msgq.subscription_metrics TO pg_monitor;

-- One row per topic: its publishes, the subscriptions they did not match,
-- and its subscriptions' delivery counters summed.
CREATE VIEW msgq.topic_metrics AS
SELECT t.topic_name,
	   COALESCE(m.published, 0) AS published,
	   COALESCE(m.filtered_out, 0) AS filtered_out,
	   COALESCE(s.delivered, 0) AS delivered,
	   COALESCE(s.failed, 0) AS failed,
	   COALESCE(s.dead_lettered, 0) AS dead_lettered,
	   COALESCE(s.pending, 0) AS pending,
	   COALESCE(s.subscriptions, 0) AS subscriptions
  FROM msgq.topic t
  LEFT JOIN msgq._topic_metrics() m ON m.topic_id OPERATOR(pg_catalog.=) t.topic_id
  LEFT JOIN (SELECT topic_name, pg_catalog.sum(delivered)::bigint AS delivered,
					pg_catalog.sum(failed)::bigint AS failed,
					pg_catalog.sum(dead_lettered)::bigint AS dead_lettered,
					pg_catalog.sum(pending)::bigint AS pending,
					pg_catalog.count(*) AS subscriptions
			   FROM msgq.subscription_metrics GROUP BY topic_name) s USING (topic_name);
REVOKE ALL ON msgq.topic_metrics FROM PUBLIC;
GRANT SELECT ON msgq.topic_metrics TO pg_monitor;

-- ---------------------------------------------------------------------------
-- SNS filter policies (src/filter.c)

-- Validates policy as set_subscription_attributes would (raising the same
-- InvalidParameter error) and evaluates it against one message given as
-- publish takes it: message_attributes in the send_message shape
-- ({"name": {"DataType": "String", "StringValue": "x"}}), body the message.
-- scope is 'MessageAttributes' (NULL: the default) or 'MessageBody'.
CREATE FUNCTION msgq.filter_policy_matches(
	policy text,
	scope text DEFAULT NULL,
	message_attributes jsonb DEFAULT NULL,
	body text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'msgq_filter_policy_matches'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-------------------------------------------------------------------------------
-- Delivery streams, as Firehose has them (src/firehose.c, doc/design.md
-- "Delivery streams"): records put in the producer's transaction, buffered
-- in msgq.delivery_record, delivered by the worker in batches by size and
-- interval, optionally transformed by a function first
-------------------------------------------------------------------------------

CREATE TABLE msgq.delivery_stream (
	ds_id integer NOT NULL PRIMARY KEY,
	ds_name text NOT NULL UNIQUE,
	owner regrole NOT NULL,
	source_kind text NOT NULL CHECK (source_kind IN ('DirectPut', 'KinesisStreamAsSource')),
	source_stream_id integer,			-- msgq.stream.stream_id
	source_stream_arn text,
	processor regprocedure,				-- the transform, or NULL
	processor_retries integer NOT NULL DEFAULT 3,
	processor_buffer integer NOT NULL DEFAULT 1048576,	-- bytes per invocation
	buffer_bytes integer NOT NULL,		-- BufferingHints SizeInMBs
	buffer_interval integer NOT NULL,	-- BufferingHints IntervalInSeconds
	destination_kind text NOT NULL CHECK (destination_kind IN ('Table', 'File', 'Queue', 'Stream',
																'HttpEndpoint')),
	destination jsonb NOT NULL,			-- its configuration, as describe shows it
	dest_table regclass,				-- Table
	dest_mapping text,					-- Table: Columns, JsonbColumn, RawColumn
	dest_column text,					-- Table: the JsonbColumn or RawColumn
	dest_name text,						-- Queue, Stream: its name; HttpEndpoint: the URL
	dest_access_key text,				-- HttpEndpoint: X-Amz-Firehose-Access-Key
	retry_duration integer NOT NULL,	-- RetryOptions DurationInSeconds
	version_id integer NOT NULL DEFAULT 1,
	created_at timestamptz NOT NULL,
	last_modified timestamptz NOT NULL,
	-- the retry state of the batch at the head of the buffer
	attempts integer NOT NULL DEFAULT 0,
	first_failure_at timestamptz,
	next_attempt_at timestamptz,
	last_error text,
	-- counters, written by the worker once per batch
	delivered_records bigint NOT NULL DEFAULT 0,
	delivered_bytes bigint NOT NULL DEFAULT 0,
	dropped_records bigint NOT NULL DEFAULT 0,
	failed_records bigint NOT NULL DEFAULT 0,
	batches bigint NOT NULL DEFAULT 0,
	failed_attempts bigint NOT NULL DEFAULT 0,
	last_delivery_at timestamptz,
	last_latency_ms bigint,				-- the oldest record of the last batch
	max_latency_ms bigint,
	latency_sum_ms bigint NOT NULL DEFAULT 0	-- over every delivered record
);
CREATE SEQUENCE msgq.delivery_stream_id_seq AS integer OWNED BY msgq.delivery_stream.ds_id;

-- The buffer: records put and not delivered yet, in put order.  No foreign
-- key (a put would lock the delivery stream's row): delete_delivery_stream
-- deletes its records.
CREATE TABLE msgq.delivery_record (
	ds_id integer NOT NULL,
	record_seq bigint NOT NULL,
	arrival timestamptz NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (ds_id, record_seq)
);
CREATE SEQUENCE msgq.delivery_record_seq AS bigint;

-- A stream source's position per shard: every record up to seq is buffered.
CREATE TABLE msgq.delivery_source_shard (
	ds_id integer NOT NULL REFERENCES msgq.delivery_stream ON DELETE CASCADE,
	shard_index integer NOT NULL,
	seq bigint NOT NULL,
	PRIMARY KEY (ds_id, shard_index)
);

-- Records that could not be delivered (Firehose's error output): the
-- transform failed them or failed itself, the destination refused them for
-- longer than the retry duration.
CREATE TABLE msgq.delivery_error (
	ds_id integer NOT NULL,
	ds_name text NOT NULL,
	owner regrole NOT NULL,
	record_id text NOT NULL,
	output_type text NOT NULL,			-- processing-failed, delivery-failed
	attempts_made integer NOT NULL,
	arrival timestamptz NOT NULL,
	error_code text NOT NULL,
	error_message text,
	attempt_ending timestamptz NOT NULL,
	raw_data bytea NOT NULL,
	processor regprocedure
);
CREATE INDEX ON msgq.delivery_error (ds_name, attempt_ending);

REVOKE ALL ON msgq.delivery_stream, msgq.delivery_record, msgq.delivery_source_shard,
	msgq.delivery_error FROM PUBLIC;
REVOKE ALL ON SEQUENCE msgq.delivery_stream_id_seq, msgq.delivery_record_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('msgq.delivery_stream', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.delivery_stream_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.delivery_record', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.delivery_record_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.delivery_source_shard', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.delivery_error', '');

-- Firehose's CreateDeliveryStream.  attributes: DeliveryStreamType
-- (DirectPut, KinesisStreamAsSource with KinesisStreamSourceConfiguration
-- {KinesisStreamARN}), BufferingHints {SizeInMBs 1-128, IntervalInSeconds
-- 0-900}, ProcessingConfiguration {Enabled, Function, NumberOfRetries,
-- BufferSizeInMBs}, RetryOptions {DurationInSeconds 0-7200} and one
-- Destination {Type: Table | File | Queue | Stream | HttpEndpoint, ...}.
-- Returns the ARN.
CREATE FUNCTION msgq.create_delivery_stream(delivery_stream_name text,
	attributes jsonb DEFAULT '{}')
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_create_delivery_stream'
LANGUAGE C VOLATILE;
-- Creating delivery streams is a privilege granted with GRANT EXECUTE.
REVOKE ALL ON FUNCTION msgq.create_delivery_stream(text, jsonb) FROM PUBLIC;

CREATE FUNCTION msgq.delete_delivery_stream(delivery_stream_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_delete_delivery_stream'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.describe_delivery_stream(delivery_stream_name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_describe_delivery_stream'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.list_delivery_streams(delivery_stream_type text DEFAULT NULL)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'msgq_list_delivery_streams'
LANGUAGE C STABLE;

-- Firehose's PutRecord (msgq.put_record is Kinesis's): returns the RecordId.
CREATE FUNCTION msgq.put_delivery_record(delivery_stream_name text, data bytea)
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_put_delivery_record'
LANGUAGE C VOLATILE;

-- Firehose's PutRecordBatch: records is a jsonb array of {"Data": base64}
-- (1-500, each up to 1,000 KiB, 4 MiB in all); one row per record, in
-- order, with its RecordId or an error code and message.
CREATE FUNCTION msgq.put_record_batch(delivery_stream_name text, records jsonb)
RETURNS TABLE (record_id text, error_code text, error_message text)
AS 'MODULE_PATHNAME', 'msgq_put_record_batch'
LANGUAGE C VOLATILE ROWS 500;

-- Every delivery stream's counters and buffer (pg_monitor reads it).
CREATE VIEW msgq.delivery_stream_metrics AS
SELECT d.ds_name AS delivery_stream_name, d.destination_kind AS destination,
	   COALESCE(b.records, 0) AS buffered_records,
	   COALESCE(b.bytes, 0) AS buffered_bytes,
	   d.delivered_records, d.delivered_bytes, d.dropped_records, d.failed_records,
	   d.batches, d.failed_attempts, d.attempts AS retrying_attempts,
	   d.last_delivery_at, d.last_latency_ms, d.max_latency_ms,
	   CASE WHEN d.delivered_records OPERATOR(pg_catalog.>) 0
			THEN d.latency_sum_ms OPERATOR(pg_catalog./) d.delivered_records END AS avg_latency_ms,
	   d.last_error
  FROM msgq.delivery_stream d
  LEFT JOIN (SELECT ds_id, pg_catalog.count(*) AS records,
					pg_catalog.sum(pg_catalog.octet_length(data))::bigint AS bytes
			   FROM msgq.delivery_record GROUP BY ds_id) b USING (ds_id);
REVOKE ALL ON msgq.delivery_stream_metrics FROM PUBLIC;
GRANT SELECT ON msgq.delivery_stream_metrics TO pg_monitor;

-- The error output: each owner sees its delivery streams' failed records.
CREATE VIEW msgq.delivery_stream_errors AS
SELECT e.ds_name AS delivery_stream_name, e.record_id, e.output_type, e.attempts_made,
	   e.arrival AS arrival_timestamp, e.error_code, e.error_message,
	   e.attempt_ending AS attempt_ending_timestamp, e.raw_data, e.processor
  FROM msgq.delivery_error e
 WHERE pg_catalog.pg_has_role(CURRENT_USER, e.owner, 'USAGE');
GRANT SELECT ON msgq.delivery_stream_errors TO PUBLIC;

-------------------------------------------------------------------------------
-- Stream queries, as Kinesis Data Analytics has them (src/analytics.c,
-- doc/design.md "Stream queries"): the worker runs the owner's SELECT over
-- each window of a stream's records, tumbling or sliding, by arrival or by
-- event time, and writes its rows to a table or a stream, each window once
-------------------------------------------------------------------------------

CREATE TABLE msgq.stream_query (
	query_id integer NOT NULL PRIMARY KEY,
	query_name text NOT NULL UNIQUE,
	owner regrole NOT NULL,
	stream_id integer NOT NULL REFERENCES msgq.stream ON DELETE CASCADE,
	query text NOT NULL,				-- a SELECT over the relation "records"
	window_type text NOT NULL CHECK (window_type IN ('Tumbling', 'Sliding')),
	window_size integer NOT NULL,		-- seconds
	window_slide integer NOT NULL,		-- seconds; the size for tumbling windows
	time_source text NOT NULL CHECK (time_source IN ('ArrivalTime', 'EventTime')),
	event_time_field text,				-- EventTime: the record's JSON key
	lateness integer NOT NULL,			-- AllowedLatenessInSeconds
	dest_kind text NOT NULL CHECK (dest_kind IN ('Table', 'Stream')),
	dest_table regclass,
	dest_stream text,
	created_at timestamptz NOT NULL,
	-- progress, moved in the transaction that emits a window
	next_window_start timestamptz,		-- every window starting before it is emitted
	max_event_time timestamptz,
	records_read bigint NOT NULL DEFAULT 0,
	late_records bigint NOT NULL DEFAULT 0,	-- after their window was emitted: dropped
	skipped_records bigint NOT NULL DEFAULT 0,	-- EventTime: no readable event time
	windows_emitted bigint NOT NULL DEFAULT 0,
	rows_emitted bigint NOT NULL DEFAULT 0,
	last_window_end timestamptz,
	last_emitted_at timestamptz,
	last_error text
);
CREATE SEQUENCE msgq.stream_query_id_seq AS integer OWNED BY msgq.stream_query.query_id;
-- a query's position in each shard of its stream: the next read starts at seq
CREATE TABLE msgq.stream_query_shard (
	query_id integer NOT NULL REFERENCES msgq.stream_query ON DELETE CASCADE,
	shard_index integer NOT NULL,
	seq bigint NOT NULL,
	PRIMARY KEY (query_id, shard_index)
);
-- the records of the windows not emitted yet, with their window time t
CREATE TABLE msgq.stream_query_record (
	query_id integer NOT NULL REFERENCES msgq.stream_query ON DELETE CASCADE,
	seq bigint NOT NULL,
	t timestamptz NOT NULL,
	arrival timestamptz NOT NULL,
	partition_key text NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (query_id, seq)
);
CREATE INDEX ON msgq.stream_query_record (query_id, t);
REVOKE ALL ON msgq.stream_query, msgq.stream_query_shard, msgq.stream_query_record FROM PUBLIC;
REVOKE ALL ON SEQUENCE msgq.stream_query_id_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_query', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_query_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_query_shard', '');
SELECT pg_catalog.pg_extension_config_dump('msgq.stream_query_record', '');

-- query is one SELECT over "records" (sequence_number, partition_key,
-- approximate_arrival_timestamp, event_time, data jsonb, raw_data bytea,
-- window_start, window_end).  attributes: Window {Type Tumbling | Sliding,
-- SizeInSeconds, SlideInSeconds}, TimeSource ArrivalTime | EventTime with
-- EventTimeField, AllowedLatenessInSeconds, StartingPosition
-- TRIM_HORIZON | LATEST, Destination {Type Table, TableName} or
-- {Type Stream, StreamName}.
CREATE FUNCTION msgq.create_stream_query(query_name text, source_stream text, query text,
	attributes jsonb DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_create_stream_query'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq.create_stream_query(text, text, text, jsonb) FROM PUBLIC;

CREATE FUNCTION msgq.delete_stream_query(query_name text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_delete_stream_query'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.describe_stream_query(query_name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'msgq_describe_stream_query'
LANGUAGE C STABLE;

CREATE FUNCTION msgq.list_stream_queries()
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'msgq_list_stream_queries'
LANGUAGE C STABLE;

-- The records of one window of a query, for the query's own statement
-- (the owner's privileges are checked).
CREATE FUNCTION msgq._window_records(query_id integer, window_start timestamptz,
	window_end timestamptz)
RETURNS TABLE (sequence_number numeric, partition_key text, approximate_arrival_timestamp timestamptz,
	event_time timestamptz, data jsonb, raw_data bytea, window_start timestamptz,
	window_end timestamptz)
AS 'MODULE_PATHNAME', 'msgq_window_records'
LANGUAGE C STABLE;

-- Every stream query's progress (pg_monitor reads it).
CREATE VIEW msgq.stream_queries AS
SELECT q.query_name, s.stream_name, q.owner, q.window_type, q.window_size, q.window_slide,
	   q.time_source, q.lateness AS allowed_lateness, q.dest_kind AS destination,
	   q.next_window_start, q.last_window_end, q.windows_emitted, q.rows_emitted,
	   q.records_read, q.late_records, q.skipped_records,
	   (SELECT pg_catalog.count(*) FROM msgq.stream_query_record r
		 WHERE r.query_id OPERATOR(pg_catalog.=) q.query_id) AS pending_records,
	   q.last_emitted_at, q.last_error
  FROM msgq.stream_query q JOIN msgq.stream s USING (stream_id);
REVOKE ALL ON msgq.stream_queries FROM PUBLIC;
GRANT SELECT ON msgq.stream_queries TO pg_monitor;

-------------------------------------------------------------------------------
-- The AWS endpoint's access keys (src/endpoint.c): with msgq.endpoint_auth
-- = sigv4, a request signed with a key's secret runs as the key's role
-------------------------------------------------------------------------------

-- encrypted_secret is the secret encrypted and authenticated with the
-- newest key of the key file msgq_endpoint.key of the data directory
-- (src/access_key.c): nonce (16 bytes) || ciphertext || HMAC-SHA256 tag
-- (32 bytes).  Without that file, a dump or a copy of this table reveals
-- no secret, and opens none.
CREATE TABLE msgq.endpoint_credential (
	access_key_id text NOT NULL PRIMARY KEY,
	encrypted_secret bytea NOT NULL,
	role regrole NOT NULL,
	created_at timestamptz NOT NULL
);
REVOKE ALL ON msgq.endpoint_credential FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('msgq.endpoint_credential', '');

-- A new key for role (the caller needs the role's privileges): the secret
-- is shown this once.
CREATE FUNCTION msgq.create_access_key(role regrole,
	OUT access_key_id text, OUT secret_access_key text)
AS 'MODULE_PATHNAME', 'msgq_create_access_key'
LANGUAGE C VOLATILE;

CREATE FUNCTION msgq.delete_access_key(access_key_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_delete_access_key'
LANGUAGE C VOLATILE;

-- An error unless the key's secret decrypts with this server's key file
-- (after a restore, say); never shows the secret.
CREATE FUNCTION msgq.check_access_key(access_key_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'msgq_check_access_key'
LANGUAGE C VOLATILE;

-- Rotating the key file (superusers only): a new key in front of the key
-- file's, written durably first, then every secret of this database
-- re-encrypted with it in the caller's transaction (a rollback leaves them
-- as they were, and their key in the file).  Returns how many.
CREATE FUNCTION msgq.rotate_access_key_encryption()
RETURNS integer
AS 'MODULE_PATHNAME', 'msgq_rotate_access_key_encryption'
LANGUAGE C VOLATILE;

-- Every key of the key file but the newest removed, once every committed
-- secret of this database opens with the newest (superusers only, in a
-- transaction that has not written msgq.endpoint_credential).  Returns how
-- many keys were removed.
CREATE FUNCTION msgq.retire_access_key_encryption()
RETURNS integer
AS 'MODULE_PATHNAME', 'msgq_retire_access_key_encryption'
LANGUAGE C VOLATILE;

-- The keys, without their secrets: each role sees its own.
CREATE VIEW msgq.access_keys AS
SELECT c.access_key_id, c.role, c.created_at
  FROM msgq.endpoint_credential c
 WHERE pg_catalog.pg_has_role(CURRENT_USER, c.role, 'USAGE');
GRANT SELECT ON msgq.access_keys TO PUBLIC;

-- The endpoint's requests per action since the server started: errors,
-- average and greatest latency (a long poll's includes its wait).
CREATE FUNCTION msgq._endpoint_metrics(
	OUT service text, OUT action text, OUT requests bigint, OUT errors bigint,
	OUT avg_latency_ms float8, OUT max_latency_ms float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'msgq_endpoint_metrics'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION msgq._endpoint_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION msgq._endpoint_metrics() TO pg_monitor;
CREATE VIEW msgq.endpoint_metrics AS SELECT * FROM msgq._endpoint_metrics();
REVOKE ALL ON msgq.endpoint_metrics FROM PUBLIC;
GRANT SELECT ON msgq.endpoint_metrics TO pg_monitor;

-- The AWS endpoint's statements raise their own AWS errors with this (a bad
-- NextToken, a MaxResults out of range): the detail names the AWS error, as
-- every msgq error's does, and the SQLSTATE is that error's.  Executable by
-- every role the endpoint runs requests as; it only raises.
CREATE FUNCTION msgq._endpoint_error(aws_error text, message text)
RETURNS text
AS 'MODULE_PATHNAME', 'msgq_endpoint_error'
LANGUAGE C VOLATILE;