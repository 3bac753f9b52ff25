--
-- move_task: dead-letter redrive with start_message_move_task,
-- cancel_message_move_task and list_message_move_tasks: every error, every
-- task state (RUNNING, COMPLETED, CANCELLED, FAILED), the rate budget
-- (rate x elapsed seconds on msgq's clock, at most one second's worth, the
-- fractional remainder carried), 10000 messages per cycle without a rate,
-- messages in flight, messages with no source queue to return to, the
-- destination override, the 36 hour limit, listing order and max_results.
--
-- The worker's maintenance cycles are turned off for the whole file
-- (ALTER SYSTEM, a reload, then waiting for the worker of this database to
-- report "disabled"), so that tasks move only when this file calls
-- msgq.run_maintenance(), with msgq.clock_offset as its clock.  Each timed
-- section starts from a known offset and leaves no task RUNNING.  Queue
-- names here all start with "mv_", roles with "regress_msgq_mv_"; every
-- section has its own dead-letter queue.  A deleted name is never created
-- again (QueueDeletedRecently).
--

-- msgq_test.err() comes from queue.sql; made again here so this file can run alone
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
CREATE SCHEMA IF NOT EXISTS msgq_test;
RESET client_min_messages;
GRANT USAGE ON SCHEMA msgq_test TO PUBLIC;
CREATE OR REPLACE FUNCTION msgq_test.err(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
							det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || msg || CASE WHEN length(det) > 0 THEN ' | ' || det ELSE '' END;
END
$$;

-- like err(), with the hint, which names the action a permission error lacks
CREATE FUNCTION msgq_test.mv_err(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
	hint text;
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
							det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN st || ': ' || msg || CASE WHEN length(det) > 0 THEN ' | ' || det ELSE '' END
		|| CASE WHEN length(hint) > 0 THEN ' | ' || hint ELSE '' END;
END
$$;

-- Send p_n messages p_prefix01, p_prefix02, ... to p_src, whose
-- RedrivePolicy has maxReceiveCount 1, and receive until the queue is empty:
-- the first receive of each message makes it visible again at once, the
-- next one moves it to the dead-letter queue.  Returns how many moved.
CREATE FUNCTION msgq_test.mv_to_dlq(p_src text, p_prefix text, p_n int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	got int;
	dlq text;
BEGIN
	PERFORM msgq.send_message(p_src, p_prefix || lpad(i::text, 2, '0'))
	   FROM generate_series(1, p_n) i;
	LOOP
		SELECT count(*) INTO got FROM msgq.receive_message(p_src, 10, 0);
		EXIT WHEN got = 0;
	END LOOP;
	SELECT (msgq.get_queue_attributes(p_src, '{RedrivePolicy}')->>'RedrivePolicy')::jsonb->>'deadLetterTargetArn'
	  INTO dlq;
	RETURN (SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id)
			 WHERE q.queue_name = regexp_replace(dlq, '^.*:', '')
			   AND m.body LIKE p_prefix || '%');
END
$$;

-- A queue's ARN without the part every ARN here shares, so that the
-- output does not depend on the database's name; an ARN of another shape
-- shows whole.
CREATE FUNCTION msgq_test.mv_arn(p_arn text) RETURNS text
LANGUAGE sql AS $$
	SELECT CASE WHEN starts_with(p_arn, 'arn:aws:sqs:msgq:' || current_database() || ':')
				THEN 'arn:' || substr(p_arn, length('arn:aws:sqs:msgq:' || current_database() || ':') + 1)
				ELSE p_arn END
$$;

-- The tasks of a source queue, newest first, as list_message_move_tasks
-- returns them (whether a task handle is shown, and the rest)
CREATE FUNCTION msgq_test.mv_list(p_source text, p_max int DEFAULT 10)
RETURNS TABLE (has_handle boolean, status text, source text, destination text, rate int,
			   moved bigint, to_move bigint, failure_reason text)
LANGUAGE sql AS $$
	SELECT t.task_handle IS NOT NULL, t.status, msgq_test.mv_arn(t.source_arn),
		   msgq_test.mv_arn(t.destination_arn), t.max_number_of_messages_per_second,
		   t.approximate_number_of_messages_moved, t.approximate_number_of_messages_to_move,
		   t.failure_reason
	  FROM msgq.list_message_move_tasks(p_source, p_max) AS t
$$;

-- Where the messages whose body starts with p_prefix are stored, whatever
-- their state: one row per queue, bodies in order
CREATE FUNCTION msgq_test.mv_where(p_prefix text)
RETURNS TABLE (queue text, n bigint, bodies text)
LANGUAGE sql AS $$
	SELECT q.queue_name, count(*), string_agg(m.body, ',' ORDER BY m.body)
	  FROM msgq.message m JOIN msgq.queue q USING (queue_id)
	 WHERE starts_with(m.body, p_prefix) AND starts_with(q.queue_name, 'mv_')
	 GROUP BY q.queue_name ORDER BY q.queue_name
$$;

-- msgq's clock in epoch milliseconds, as SentTimestamp & co. show it
CREATE FUNCTION msgq_test.mv_now_ms() RETURNS bigint
LANGUAGE sql AS $$
	SELECT floor(extract(epoch FROM msgq.now()) * 1000)::bigint
$$;

-- Move msgq's clock to p_offset, run one maintenance cycle, and show the
-- newest task of p_dlq and where the messages p_prefix* are
CREATE FUNCTION msgq_test.mv_run(p_offset text, p_dlq text, p_prefix text)
RETURNS TABLE (status text, moved bigint, failure_reason text, queue text, n bigint, bodies text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('msgq.clock_offset', p_offset, false);
	PERFORM msgq.run_maintenance();
	RETURN QUERY
	SELECT l.status, l.moved, l.failure_reason, w.queue, w.n, w.bodies
	  FROM msgq_test.mv_list(p_dlq, 1) AS l, msgq_test.mv_where(p_prefix) AS w;
END
$$;

--
-- The worker's cycles off, for this whole file (a reload setting: the
-- worker applies it at its next wake-up, between two cycles)
--
ALTER SYSTEM SET msgq.worker_enabled = off;
SELECT pg_reload_conf();
DO $$
BEGIN
	FOR i IN 1..1200 LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM msgq.workers
						   WHERE database = current_database() AND state = 'disabled');
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SELECT state FROM msgq.workers WHERE database = current_database();

SET msgq.clock_offset = 0;

--
-- Queues: for each section a dead-letter queue mv_<x>_dlq and the sources
-- that name it in their RedrivePolicy (maxReceiveCount 1)
--
CREATE FUNCTION msgq_test.mv_setup(p_dlq text, VARIADIC p_sources text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s text;
BEGIN
	PERFORM msgq.create_queue(p_dlq);
	FOREACH s IN ARRAY p_sources LOOP
		PERFORM msgq.create_queue(s, jsonb_build_object('RedrivePolicy',
			jsonb_build_object('deadLetterTargetArn', p_dlq, 'maxReceiveCount', 1)));
	END LOOP;
END
$$;
SELECT msgq_test.mv_setup('mv_e_dlq', 'mv_e_src');
SELECT msgq.create_queue('mv_plain');
SELECT msgq.create_queue('mv_e_dest');

--
-- start_message_move_task: errors
--
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('NULL source', $$SELECT msgq.start_message_move_task(NULL)$$),
	('unknown source', $$SELECT msgq.start_message_move_task('mv_no_such_queue')$$),
	('unknown source ARN', $$SELECT msgq.start_message_move_task('arn:aws:sqs:msgq:' || current_database() || ':mv_no_such_queue')$$),
	('not a DLQ', $$SELECT msgq.start_message_move_task('mv_plain')$$),
	('a source, not a DLQ', $$SELECT msgq.start_message_move_task('mv_e_src')$$),
	('unknown destination', $$SELECT msgq.start_message_move_task('mv_e_dlq', 'mv_no_such_queue')$$),
	('unknown destination ARN', $$SELECT msgq.start_message_move_task('mv_e_dlq', 'arn:aws:sqs:msgq:' || current_database() || ':mv_no_such_queue')$$),
	('rate 0', $$SELECT msgq.start_message_move_task('mv_e_dlq', NULL, 0)$$),
	('rate -1', $$SELECT msgq.start_message_move_task('mv_e_dlq', NULL, -1)$$),
	('rate 501', $$SELECT msgq.start_message_move_task('mv_e_dlq', 'mv_e_dest', 501)$$)
	) AS t(f, s);
-- no task was made by any of them
SELECT count(*) AS tasks FROM msgq.list_message_move_tasks('mv_e_dlq', 10);

-- rates 1 and 500 are accepted; one RUNNING task per source queue, however
-- the source is named
SELECT msgq.start_message_move_task('mv_e_dlq', NULL, 500) AS h_e1 \gset
SELECT :'h_e1' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' AS handle_is_uuid;
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('by name', $$SELECT msgq.start_message_move_task('mv_e_dlq')$$),
	('by ARN', $$SELECT msgq.start_message_move_task('arn:aws:sqs:msgq:' || current_database() || ':mv_e_dlq', 'mv_e_dest', 10)$$),
	('by URL', $$SELECT msgq.start_message_move_task('msgq://' || current_database() || '/mv_e_dlq')$$)
	) AS t(f, s);
SELECT * FROM msgq_test.mv_list('mv_e_dlq');
SELECT msgq.cancel_message_move_task(:'h_e1') AS moved;
-- once it is cancelled, another may start
SELECT msgq.start_message_move_task('arn:aws:sqs:msgq:' || current_database() || ':mv_e_dlq', 'mv_e_dest', 1) AS h_e2 \gset
SELECT * FROM msgq_test.mv_list('mv_e_dlq');
SELECT msgq.cancel_message_move_task(:'h_e2') AS moved;

--
-- cancel_message_move_task and list_message_move_tasks: errors
--
SELECT f, regexp_replace(msgq_test.err(s), :'h_e1', '<handle>') AS err
  FROM (VALUES
	('cancel NULL', $$SELECT msgq.cancel_message_move_task(NULL)$$),
	('cancel garbage', $$SELECT msgq.cancel_message_move_task('not-a-task-handle')$$),
	('cancel empty', $$SELECT msgq.cancel_message_move_task('')$$),
	('cancel unknown', $$SELECT msgq.cancel_message_move_task('00000000-0000-4000-8000-000000000000')$$),
	('cancel CANCELLED', format('SELECT msgq.cancel_message_move_task(%L)', :'h_e1')),
	('list NULL', $$SELECT msgq.list_message_move_tasks(NULL)$$),
	('list unknown', $$SELECT msgq.list_message_move_tasks('mv_no_such_queue')$$),
	('list max 0', $$SELECT msgq.list_message_move_tasks('mv_e_dlq', 0)$$),
	('list max 11', $$SELECT msgq.list_message_move_tasks('mv_e_dlq', 11)$$),
	('list max -1', $$SELECT msgq.list_message_move_tasks('mv_e_dlq', -1)$$)
	) AS t(f, s);
-- a queue that never had a task lists none, DLQ or not
SELECT count(*) AS plain, (SELECT count(*) FROM msgq.list_message_move_tasks('mv_e_src', 10)) AS source
  FROM msgq.list_message_move_tasks('mv_plain', 10);

--
-- Permissions: starting needs ReceiveMessage and DeleteMessage on the
-- source and SendMessage on the destination; cancelling needs
-- ReceiveMessage on the source; listing needs GetQueueAttributes
--
CREATE ROLE regress_msgq_mv_user;
SET ROLE regress_msgq_mv_user;
SELECT msgq_test.mv_err($$SELECT msgq.start_message_move_task('mv_e_dlq')$$) AS start;
-- (the hint of this one names no action that add_permission() grants)
SELECT msgq_test.err($$SELECT msgq.list_message_move_tasks('mv_e_dlq')$$) AS list;
RESET ROLE;
SELECT msgq.start_message_move_task('mv_e_dlq') AS h_e3 \gset
SET ROLE regress_msgq_mv_user;
SELECT msgq_test.mv_err(format('SELECT msgq.cancel_message_move_task(%L)', :'h_e3')) AS cancel;
RESET ROLE;
SELECT msgq.add_permission('mv_e_dlq', 'recv', '{regress_msgq_mv_user}', '{ReceiveMessage}');
SET ROLE regress_msgq_mv_user;
SELECT msgq_test.mv_err($$SELECT msgq.start_message_move_task('mv_e_dlq', 'mv_e_dest')$$) AS receive_only;
-- ReceiveMessage is enough to cancel
SELECT msgq.cancel_message_move_task(:'h_e3') AS moved;
RESET ROLE;
SELECT msgq.add_permission('mv_e_dlq', 'del', '{regress_msgq_mv_user}', '{DeleteMessage}');
SET ROLE regress_msgq_mv_user;
SELECT msgq_test.mv_err($$SELECT msgq.start_message_move_task('mv_e_dlq', 'mv_e_dest')$$) AS no_send_on_destination;
SELECT msgq_test.mv_err($$SELECT msgq.start_message_move_task('mv_e_dlq')$$) AS back_to_sources;
SELECT msgq_test.err($$SELECT msgq.list_message_move_tasks('mv_e_dlq')$$) AS list;
RESET ROLE;
SELECT * FROM msgq_test.mv_list('mv_e_dlq', 1);
SELECT msgq.cancel_message_move_task(task_handle) AS moved FROM msgq.list_message_move_tasks('mv_e_dlq');
SELECT msgq.add_permission('mv_e_dest', 'send', '{regress_msgq_mv_user}', '{SendMessage}');
SELECT msgq.add_permission('mv_e_dlq', 'get', '{regress_msgq_mv_user}', '{GetQueueAttributes}');
SET ROLE regress_msgq_mv_user;
SELECT msgq.start_message_move_task('mv_e_dlq', 'mv_e_dest', 7) AS h_e4 \gset
SELECT * FROM msgq_test.mv_list('mv_e_dlq', 1);
SELECT msgq.cancel_message_move_task(:'h_e4') AS moved;
RESET ROLE;

--
-- COMPLETED: without a destination each message goes back to the queue it
-- came from, as a new message (new id, sent time, receive count 0) with
-- the same body, message attributes and group id
--
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_c_dlq', 'mv_c_src1', 'mv_c_src2');
CREATE TABLE msgq_test.mv_sent AS
SELECT 'c1-attr'::text AS body, s.*
  FROM msgq.send_message('mv_c_src1', 'c1-attr', NULL,
		'{"color": {"DataType": "String", "StringValue": "red"}, "n": {"DataType": "Number", "StringValue": "42"}}',
		'group-7') AS s;
SELECT msgq_test.mv_to_dlq('mv_c_src1', 'c1-', 3) AS to_dlq_1,
	   msgq_test.mv_to_dlq('mv_c_src2', 'c2-', 2) AS to_dlq_2;
SELECT * FROM msgq_test.mv_where('c');
-- in the dead-letter queue the message kept its id
SELECT m.message_id = s.message_id AS same_id_in_dlq
  FROM msgq.message m JOIN msgq.queue q USING (queue_id), msgq_test.mv_sent s
 WHERE q.queue_name = 'mv_c_dlq' AND m.body = 'c1-attr';
SELECT msgq_test.mv_now_ms() AS t_before \gset
SELECT msgq.start_message_move_task('mv_c_dlq') AS h_c \gset
SELECT msgq_test.mv_now_ms() AS t_after \gset
-- RUNNING: the handle is listed; the messages to move are counted at the start
SELECT * FROM msgq_test.mv_list('mv_c_dlq');
SELECT task_handle = :'h_c' AS same_handle,
	   source_arn = 'arn:aws:sqs:msgq:' || current_database() || ':mv_c_dlq' AS source_arn_ok,
	   started_timestamp BETWEEN :t_before - 1 AND :t_after + 1 AS started_ok
  FROM msgq.list_message_move_tasks('mv_c_dlq');
SELECT msgq_test.mv_now_ms() AS t_before \gset
SELECT * FROM msgq_test.mv_run('10s', 'mv_c_dlq', 'c');
SELECT msgq_test.mv_now_ms() AS t_after \gset
SELECT * FROM msgq_test.mv_list('mv_c_dlq');
CREATE TEMP TABLE mv_got AS
SELECT q, r.* FROM unnest('{mv_c_src1,mv_c_src2}'::text[]) q, msgq.receive_message(q, 10, 0) r;
-- the moved message is a new one
SELECT r.message_id <> s.message_id AS new_id,
	   r.md5_of_body = s.md5_of_message_body AS same_md5_of_body,
	   r.message_attributes,
	   (SELECT md5_of_message_attributes FROM msgq.message WHERE message_id = r.message_id)
		 = s.md5_of_message_attributes AS same_md5_of_attributes,
	   r.attributes->>'ApproximateReceiveCount' AS receive_count,
	   r.attributes->>'MessageGroupId' AS group_id,
	   (r.attributes->>'SentTimestamp')::bigint BETWEEN :t_before - 1 AND :t_after + 1 AS sent_when_moved,
	   (r.attributes->>'ApproximateFirstReceiveTimestamp')::bigint >= :t_after AS first_receive_now
  FROM mv_got AS r JOIN msgq_test.mv_sent s USING (body);
SELECT count(*) FILTER (WHERE m.message_id = s.message_id) AS old_id_left
  FROM msgq.message m, msgq_test.mv_sent s;
-- every moved message shows its first receive, each a new id
SELECT q AS queue, body, attributes->>'ApproximateReceiveCount' AS receive_count,
	   attributes->>'SentTimestamp' = (SELECT attributes->>'SentTimestamp' FROM mv_got WHERE body = 'c1-attr') AS same_sent_time
  FROM mv_got ORDER BY q, body;
SELECT count(DISTINCT message_id) AS ids FROM mv_got;
DROP TABLE mv_got;
-- a COMPLETED task cannot be cancelled
SELECT msgq_test.err(format('SELECT msgq.cancel_message_move_task(%L)', :'h_c')) ~ '^MQ006: only a running task can be cancelled; task "[0-9a-f-]{36}" is COMPLETED \| AWS error code: InvalidParameterValue$' AS cancel_completed;
-- an empty dead-letter queue completes at the first cycle
SELECT msgq_test.mv_setup('mv_z_dlq', 'mv_z_src');
SELECT msgq.start_message_move_task('mv_z_dlq') IS NOT NULL AS started;
SELECT * FROM msgq_test.mv_list('mv_z_dlq');
SELECT msgq.run_maintenance();
SELECT * FROM msgq_test.mv_list('mv_z_dlq');

--
-- Messages in flight in the dead-letter queue wait until they are visible
-- again; the task completes only then
--
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_f_dlq', 'mv_f_src');
SELECT msgq_test.mv_to_dlq('mv_f_src', 'f', 3) AS to_dlq;
SELECT body FROM msgq.receive_message('mv_f_dlq', 1, 60);
SELECT msgq.start_message_move_task('mv_f_dlq') IS NOT NULL AS started;
SELECT * FROM msgq_test.mv_run('1s', 'mv_f_dlq', 'f');
SELECT * FROM msgq_test.mv_run('59s', 'mv_f_dlq', 'f');
SELECT * FROM msgq_test.mv_run('61s', 'mv_f_dlq', 'f');
SELECT body, attributes->>'ApproximateReceiveCount' AS receive_count
  FROM msgq.receive_message('mv_f_src', 10, 0) ORDER BY body;

--
-- FAILED: messages with no queue to return to (sent straight to the
-- dead-letter queue, or whose source queue was deleted) stay in the
-- dead-letter queue; the others move.  Not before the messages in flight
-- are done.
--
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_o_dlq', 'mv_o_src', 'mv_o_gone');
SELECT msgq_test.mv_to_dlq('mv_o_src', 'o-src', 2) AS to_dlq,
	   msgq_test.mv_to_dlq('mv_o_gone', 'o-gone', 1) AS to_dlq_gone;
SELECT count(*) AS sent_direct FROM generate_series(1, 2) i, msgq.send_message('mv_o_dlq', 'o-direct' || i);
SELECT msgq.delete_queue('mv_o_gone');
SELECT * FROM msgq_test.mv_where('o');
-- one movable message in flight
SELECT body FROM msgq.receive_message('mv_o_dlq', 1, 30);
SELECT msgq.start_message_move_task('mv_o_dlq') AS h_o \gset
SELECT * FROM msgq_test.mv_list('mv_o_dlq');
SELECT * FROM msgq_test.mv_run('1s', 'mv_o_dlq', 'o');
SELECT * FROM msgq_test.mv_run('31s', 'mv_o_dlq', 'o');
SELECT * FROM msgq_test.mv_list('mv_o_dlq');
SELECT msgq_test.err(format('SELECT msgq.cancel_message_move_task(%L)', :'h_o')) ~ '^MQ006: only a running task can be cancelled; task "[0-9a-f-]{36}" is FAILED \| AWS error code: InvalidParameterValue$' AS cancel_failed;
-- what is left moves with a destination
SELECT msgq.start_message_move_task('mv_o_dlq', 'mv_e_dest') IS NOT NULL AS started;
SELECT * FROM msgq_test.mv_run('32s', 'mv_o_dlq', 'o');
SELECT * FROM msgq_test.mv_list('mv_o_dlq', 2);

--
-- The destination override: every message goes to the destination,
-- wherever it came from (a source, a deleted source, or nowhere)
--
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_d_dlq', 'mv_d_src1', 'mv_d_src2');
SELECT msgq.create_queue('mv_d_dest');
SELECT msgq_test.mv_to_dlq('mv_d_src1', 'd1-', 2) AS to_dlq_1,
	   msgq_test.mv_to_dlq('mv_d_src2', 'd2-', 2) AS to_dlq_2;
SELECT count(*) AS sent_direct FROM msgq.send_message('mv_d_dlq', 'd3-direct');
SELECT msgq.start_message_move_task('mv_d_dlq', 'msgq://' || current_database() || '/mv_d_dest') IS NOT NULL AS started;
SELECT * FROM msgq_test.mv_list('mv_d_dlq');
SELECT * FROM msgq_test.mv_run('1s', 'mv_d_dlq', 'd');
SELECT body, attributes->>'ApproximateReceiveCount' AS receive_count
  FROM msgq.receive_message('mv_d_dest', 10, 0) ORDER BY body;
-- a destination deleted while the task runs: nothing is lost, the task fails
SELECT msgq.create_queue('mv_d_dest_gone');
SELECT msgq_test.mv_to_dlq('mv_d_src1', 'd4-', 2) AS to_dlq;
SELECT msgq.start_message_move_task('mv_d_dlq', 'mv_d_dest_gone') IS NOT NULL AS started;
SELECT msgq.delete_queue('mv_d_dest_gone');
SELECT status, moved FROM msgq_test.mv_run('2s', 'mv_d_dlq', 'd4-') LIMIT 1;
SELECT * FROM msgq_test.mv_where('d4-');

--
-- CANCELLED: the messages moved so far stay moved, the others stay in the
-- dead-letter queue; cancel returns the number moved
--
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_x_dlq', 'mv_x_src');
SELECT msgq_test.mv_to_dlq('mv_x_src', 'x', 5) AS to_dlq;
SELECT msgq.start_message_move_task('mv_x_dlq', NULL, 3) AS h_x \gset
SELECT * FROM msgq_test.mv_run('2s', 'mv_x_dlq', 'x');
SELECT msgq.cancel_message_move_task(:'h_x') AS moved;
SELECT * FROM msgq_test.mv_list('mv_x_dlq');
-- nothing moves any more
SELECT * FROM msgq_test.mv_run('10s', 'mv_x_dlq', 'x');
SELECT msgq_test.err(format('SELECT msgq.cancel_message_move_task(%L)', :'h_x')) ~ '^MQ006: only a running task can be cancelled; task "[0-9a-f-]{36}" is CANCELLED \| AWS error code: InvalidParameterValue$' AS cancel_twice;
-- started and cancelled in one transaction: nothing moved
BEGIN;
SELECT msgq.start_message_move_task('mv_x_dlq') AS h_x2 \gset
SELECT msgq.cancel_message_move_task(:'h_x2') AS moved;
SELECT * FROM msgq_test.mv_list('mv_x_dlq', 1);
COMMIT;
-- a start rolled back leaves no task
BEGIN;
SELECT msgq.start_message_move_task('mv_x_dlq') IS NOT NULL AS started;
SELECT count(*) AS tasks FROM msgq.list_message_move_tasks('mv_x_dlq', 10);
ROLLBACK;
SELECT count(*) AS tasks FROM msgq.list_message_move_tasks('mv_x_dlq', 10);
-- a new task moves the rest
SELECT msgq.start_message_move_task('mv_x_dlq') IS NOT NULL AS started;
SELECT * FROM msgq_test.mv_list('mv_x_dlq', 1);
SELECT * FROM msgq_test.mv_run('11s', 'mv_x_dlq', 'x');
SELECT * FROM msgq_test.mv_list('mv_x_dlq', 10);

--
-- The rate: each cycle moves rate x the seconds elapsed on msgq's clock
-- since the task's previous cycle, at most one second's worth, and carries
-- the fraction; a capped cycle starts the count afresh.  msgq's clock is
-- stopped for this section (msgq.clock_frozen), so that only the offsets
-- below count, however slowly the statements between them run.
--
-- At 2 messages per second:
SET msgq.clock_frozen = on;
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_r_dlq', 'mv_r_src', 'mv_r_src2');
SELECT msgq_test.mv_to_dlq('mv_r_src', 'r', 10) AS to_dlq;
SELECT msgq.start_message_move_task('mv_r_dlq', NULL, 2) AS h_r \gset
SELECT * FROM msgq_test.mv_list('mv_r_dlq');
-- 0.25 s: half a message, none moves
SELECT * FROM msgq_test.mv_run('250ms', 'mv_r_dlq', 'r');
-- 0.5 s: the half carried and another make one
SELECT * FROM msgq_test.mv_run('500ms', 'mv_r_dlq', 'r');
-- 1.25 s: one and a half: one moves, a half is carried
SELECT * FROM msgq_test.mv_run('1250ms', 'mv_r_dlq', 'r');
-- 1.5 s: one
SELECT * FROM msgq_test.mv_run('1500ms', 'mv_r_dlq', 'r');
-- 11.5 s: ten seconds earn one second's worth only: two
SELECT * FROM msgq_test.mv_run('11500ms', 'mv_r_dlq', 'r');
-- 12 s: one
SELECT * FROM msgq_test.mv_run('12s', 'mv_r_dlq', 'r');
-- 12.2 s: 0.4, none
SELECT * FROM msgq_test.mv_run('12200ms', 'mv_r_dlq', 'r');
-- 12.5 s: 0.4 carried and 0.6, one
SELECT * FROM msgq_test.mv_run('12500ms', 'mv_r_dlq', 'r');
-- a minute later: two
SELECT * FROM msgq_test.mv_run('72500ms', 'mv_r_dlq', 'r');
-- and the last one, with budget to spare: nothing is left, COMPLETED
SELECT * FROM msgq_test.mv_run('132500ms', 'mv_r_dlq', 'r');
SELECT * FROM msgq_test.mv_list('mv_r_dlq');
-- At 3 per second, six messages: the cycle that moves the last three has
-- no budget to spare, so the task is still RUNNING; it completes at the
-- next cycle that has budget for a message (not one at the same time)
SET msgq.clock_offset = '5min';
SELECT msgq_test.mv_to_dlq('mv_r_src2', 'R', 6) AS to_dlq;
SELECT msgq.start_message_move_task('mv_r_dlq', NULL, 3) IS NOT NULL AS started;
SELECT * FROM msgq_test.mv_run('6min', 'mv_r_dlq', 'R');
SELECT * FROM msgq_test.mv_run('7min', 'mv_r_dlq', 'R');
SELECT * FROM msgq_test.mv_run('7min', 'mv_r_dlq', 'R');
SELECT * FROM msgq_test.mv_run('8min', 'mv_r_dlq', 'R');
SELECT * FROM msgq_test.mv_list('mv_r_dlq', 2);
-- At 500 per second, 500 per cycle at most
SET msgq.clock_offset = '10min';
SELECT count(*) AS sent_direct FROM generate_series(1, 1200) i, msgq.send_message('mv_r_dlq', 'Q' || lpad(i::text, 4, '0'));
SELECT msgq.start_message_move_task('mv_r_dlq', 'mv_e_dest', 500) IS NOT NULL AS started;
SELECT status, moved, queue, n FROM msgq_test.mv_run('11min', 'mv_r_dlq', 'Q');
SELECT status, moved, queue, n FROM msgq_test.mv_run('12min', 'mv_r_dlq', 'Q');
SELECT status, moved, queue, n FROM msgq_test.mv_run('13min', 'mv_r_dlq', 'Q');
SELECT * FROM msgq_test.mv_list('mv_r_dlq', 3);
RESET msgq.clock_frozen;

--
-- Without a rate, at most 10000 messages per cycle
--
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_b_dlq', 'mv_b_src');
SELECT msgq.create_queue('mv_b_dest');
SELECT count(*) AS sent_direct
  FROM generate_series(0, 1000) b,
	   LATERAL msgq.send_message_batch('mv_b_dlq',
		(SELECT jsonb_agg(jsonb_build_object('Id', 'm' || i, 'MessageBody', 'b' || (b * 10 + i)))::json
		   FROM generate_series(1, 10) i)) s
 WHERE s.error_code IS NULL;
SELECT msgq.start_message_move_task('mv_b_dlq', 'mv_b_dest') IS NOT NULL AS started;
SELECT status, moved, queue, n FROM msgq_test.mv_run('1s', 'mv_b_dlq', 'b');
SELECT status, moved, queue, n FROM msgq_test.mv_run('1s', 'mv_b_dlq', 'b');
SELECT * FROM msgq_test.mv_list('mv_b_dlq');
SELECT count(DISTINCT body) AS distinct_bodies FROM msgq.message m JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'mv_b_dest';

--
-- FAILED after 36 hours (msgq's clock), whatever is left
--
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_t_dlq', 'mv_t_src');
SELECT msgq_test.mv_to_dlq('mv_t_src', 't', 3) AS to_dlq;
SELECT msgq.start_message_move_task('mv_t_dlq', NULL, 1) AS h_t \gset
SELECT * FROM msgq_test.mv_run('129599s', 'mv_t_dlq', 't');
SELECT * FROM msgq_test.mv_run('129601s', 'mv_t_dlq', 't');
SELECT * FROM msgq_test.mv_list('mv_t_dlq');
SELECT msgq_test.err(format('SELECT msgq.cancel_message_move_task(%L)', :'h_t')) ~ '^MQ006: only a running task can be cancelled; task "[0-9a-f-]{36}" is FAILED \| AWS error code: InvalidParameterValue$' AS cancel_failed;

--
-- Listing: the most recent tasks first, 1 by default, at most 10; the
-- task handle only for a RUNNING task
--
SET msgq.clock_offset = 0;
SELECT msgq_test.mv_setup('mv_l_dlq', 'mv_l_src');
-- eleven tasks, told apart by their rates 1 to 11; all but the last cancelled
DO $$
DECLARE
	h text;
BEGIN
	FOR i IN 1..11 LOOP
		h := msgq.start_message_move_task('mv_l_dlq', NULL, i);
		IF i < 11 THEN
			PERFORM msgq.cancel_message_move_task(h);
		END IF;
	END LOOP;
END
$$;
SELECT * FROM msgq_test.mv_list('mv_l_dlq', 10);
SELECT * FROM msgq_test.mv_list('mv_l_dlq', 3);
SELECT rate, status FROM msgq_test.mv_list('mv_l_dlq', 1);
SELECT max_number_of_messages_per_second AS rate, status FROM msgq.list_message_move_tasks('mv_l_dlq');
SELECT max_number_of_messages_per_second AS rate, status FROM msgq.list_message_move_tasks('mv_l_dlq', NULL);
SELECT max_number_of_messages_per_second AS rate, status
  FROM msgq.list_message_move_tasks('arn:aws:sqs:msgq:' || current_database() || ':mv_l_dlq', 2);
SELECT count(*) AS started_in_order
  FROM (SELECT started_timestamp, max_number_of_messages_per_second AS rate,
			   lag(started_timestamp) OVER (ORDER BY max_number_of_messages_per_second) AS prev
		  FROM msgq.list_message_move_tasks('mv_l_dlq', 10)) s
 WHERE prev IS NULL OR started_timestamp >= prev;
SELECT msgq.cancel_message_move_task(task_handle) AS moved FROM msgq.list_message_move_tasks('mv_l_dlq');
SELECT rate, status, has_handle FROM msgq_test.mv_list('mv_l_dlq', 1);

--
-- Clean up: no task is left RUNNING; queues, then the role; the worker's
-- cycles on again
--
SELECT count(*) AS running FROM msgq.message_move_task WHERE status = 'RUNNING';
SELECT count(*) AS deleted FROM msgq.list_queues('mv_') AS q, LATERAL msgq.delete_queue(q);
SELECT * FROM msgq.list_queues('mv_');
DROP ROLE regress_msgq_mv_user;
DROP TABLE msgq_test.mv_sent;
RESET msgq.clock_offset;
ALTER SYSTEM RESET msgq.worker_enabled;
SELECT pg_reload_conf();
DO $$
BEGIN
	FOR i IN 1..1200 LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM msgq.workers
						   WHERE database = current_database() AND state = 'running');
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SELECT state FROM msgq.workers WHERE database = current_database();
