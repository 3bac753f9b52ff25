--
-- queue_head: where a standard queue's receives start reading (src/head.c).
-- The head moves past deleted messages, and never past one that can still
-- be received: a delayed message, or one whose delete rolls back.
-- Queue names start with "qh_".
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
RESET client_min_messages;
SET msgq.clock_offset = 0;

CREATE FUNCTION pg_temp.seq_of(q text, b text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT m.msg_seq FROM msgq.message m JOIN msgq.queue USING (queue_id)
	 WHERE queue_name = q AND m.body = b
$$;
-- receives (each in a statement of its own, with a snapshot of its own) of
-- a queue with nothing visible, until the head reaches stop or tries have
-- been made; returns the head
CREATE FUNCTION pg_temp.settle(q text, stop bigint, tries int DEFAULT 300) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	h bigint;
BEGIN
	FOR i IN 1..tries LOOP
		IF (SELECT count(*) FROM msgq.receive_message(q)) > 0 THEN
			RAISE EXCEPTION 'a message was visible';
		END IF;
		SELECT head INTO h FROM msgq.queue_head(q);
		EXIT WHEN h >= stop;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN h;
END
$$;

SELECT msgq.create_queue('qh_a') IS NOT NULL AS created;
-- a new queue is read from its first message
SELECT head FROM msgq.queue_head('qh_a');

-- a delayed message first, then ten that are received and deleted
SELECT count(*) AS sent FROM msgq.send_message('qh_a', 'delayed', 60);
SELECT count(*) AS sent FROM generate_series(1, 10) g,
	LATERAL msgq.send_message(CASE WHEN g > 0 THEN 'qh_a' END, 'm' || g);
SELECT string_agg(receipt_handle, ' ') AS hs, string_agg(body, ',') AS got
  FROM msgq.receive_message('qh_a', max_number_of_messages => 10) \gset
SELECT :'got' AS received;
SELECT count(*) AS deleted FROM unnest(string_to_array(:'hs', ' ')) h,
	LATERAL msgq.delete_message('qh_a', h);

-- the head stops at the delayed message, not past it
SELECT pg_temp.settle('qh_a', pg_temp.seq_of('qh_a', 'delayed') + 1)
	= pg_temp.seq_of('qh_a', 'delayed') AS head_at_delayed;
SET msgq.clock_offset = '61s';
SELECT m.body, msgq.delete_message('qh_a', m.receipt_handle) AS deleted
  FROM msgq.receive_message('qh_a') m;

-- with nothing left, the head passes every message sent so far
SELECT pg_temp.settle('qh_a', (SELECT last_value + 1 FROM msgq.message_seq))
	>= (SELECT last_value + 1 FROM msgq.message_seq) AS head_past_all;

-- a delete in the receiver's own transaction that rolls back: receives in
-- that transaction do not move the head past the message
SELECT count(*) AS sent FROM msgq.send_message('qh_a', 'kept');
SELECT pg_temp.seq_of('qh_a', 'kept') AS kept \gset
BEGIN;
SELECT count(*) AS deleted FROM msgq.delete_message('qh_a',
	(SELECT receipt_handle FROM msgq.receive_message('qh_a')));
SELECT pg_temp.settle('qh_a', :kept + 1, 30) <= :kept AS head_not_past_own_delete;
ROLLBACK;
SELECT head <= :kept AS head_not_past_kept FROM msgq.queue_head('qh_a');
SELECT body, attributes->>'ApproximateReceiveCount' AS count FROM msgq.receive_message('qh_a');

-- a dead-letter move inserts under a new msg_seq: the dead-letter queue's
-- head never passes it
SELECT msgq.create_queue('qh_dlq') IS NOT NULL AS created;
SELECT msgq.create_queue('qh_src', jsonb_build_object('RedrivePolicy',
	jsonb_build_object('deadLetterTargetArn', 'qh_dlq', 'maxReceiveCount', 1)::text))
	IS NOT NULL AS created;
SELECT pg_temp.settle('qh_dlq', (SELECT last_value + 1 FROM msgq.message_seq))
	>= (SELECT last_value + 1 FROM msgq.message_seq) AS dlq_head_past_all;
SELECT count(*) AS sent FROM msgq.send_message('qh_src', 'poison');
SELECT count(*) AS received FROM msgq.receive_message('qh_src', visibility_timeout => 0);
SELECT count(*) AS received FROM msgq.receive_message('qh_src');
SELECT body FROM msgq.receive_message('qh_dlq');

-- queue_head is not for PUBLIC
SELECT has_function_privilege('public', 'msgq.queue_head(text)', 'EXECUTE') AS public_execute;
SELECT * FROM msgq.queue_head('qh_none');

RESET msgq.clock_offset;
