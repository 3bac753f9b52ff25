--
-- fifo: FIFO queues (src/fifo.c): creation rules and attributes, sends with
-- message groups, sequence numbers and deduplication (the five-minute
-- window on msgq's test clock), group order and blocking on receive, fill
-- from one group first, expired receipt handles, FIFO dead-letter queues.
-- Queue names here all start with "f_".
--
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS msgq_test;
RESET client_min_messages;
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

-- received messages, kept under a tag for their handles
CREATE TABLE msgq_test.fgot (tag text, ord bigint, body text, receipt_handle text,
							 attributes jsonb);
CREATE FUNCTION msgq_test.frecv(p_tag text, p_queue text, p_max int DEFAULT 10,
								p_vt int DEFAULT 30)
RETURNS TABLE (ord bigint, body text, grp text, receive_count int)
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM msgq_test.fgot g WHERE g.tag = p_tag;
	INSERT INTO msgq_test.fgot
	SELECT p_tag, r.ord, r.body, r.receipt_handle, r.attributes
	  FROM msgq.receive_message(p_queue, max_number_of_messages => p_max,
								visibility_timeout => p_vt,
								message_system_attribute_names => ARRAY['All'])
		   WITH ORDINALITY AS r(message_id, receipt_handle, body, md5_of_body,
								attributes, message_attributes, ord);
	RETURN QUERY
	SELECT g.ord, g.body, g.attributes->>'MessageGroupId',
		   (g.attributes->>'ApproximateReceiveCount')::int
	  FROM msgq_test.fgot g WHERE g.tag = p_tag ORDER BY g.ord;
END
$$;
-- as frecv, for a receive that moves a message to its dead-letter queue:
-- the worker's count writer may hold that message's row for a moment, and
-- then the move, and with it the group, waits for the next receive
CREATE FUNCTION msgq_test.frecv_moving(p_tag text, p_queue text, p_max int DEFAULT 10,
									   p_vt int DEFAULT 30)
RETURNS TABLE (ord bigint, body text, grp text, receive_count int)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 100 LOOP
		RETURN QUERY SELECT * FROM msgq_test.frecv(p_tag, p_queue, p_max, p_vt);
		EXIT WHEN FOUND;
		PERFORM pg_sleep(0.02);
	END LOOP;
END
$$;
CREATE FUNCTION msgq_test.fh(p_tag text, p_body text) RETURNS text
LANGUAGE sql AS $$
	SELECT receipt_handle FROM msgq_test.fgot WHERE tag = p_tag AND body = p_body $$;
CREATE FUNCTION msgq_test.fsend(p_queue text, p_body text, p_group text,
								p_dedup text DEFAULT NULL)
RETURNS numeric
LANGUAGE sql AS $$
	SELECT sequence_number FROM msgq.send_message(p_queue, p_body,
		message_group_id => p_group, message_deduplication_id => p_dedup) $$;

--
-- Creation and attributes
--
SELECT msgq_test.err($$SELECT msgq.create_queue('f_noattr.fifo')$$) AS fifo_name_without_attribute;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_plain', '{"FifoQueue": "true"}')$$) AS fifo_without_suffix;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_std', '{"ContentBasedDeduplication": "true"}')$$) AS std_with_fifo_attr;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_std', '{"DeduplicationScope": "queue"}')$$) AS std_with_scope;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_bad.fifo', '{"FifoQueue": "true", "DeduplicationScope": "group"}')$$) AS bad_scope;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_bad.fifo', '{"FifoQueue": "true", "FifoThroughputLimit": "perGroup"}')$$) AS bad_limit;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_bad.fifo', '{"FifoQueue": "true", "FifoThroughputLimit": "perMessageGroupId"}')$$) AS per_group_needs_group_scope;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_std', '{"FifoQueue": "false"}')$$) AS std_fifo_false;
SELECT msgq.create_queue('f_q.fifo', '{"FifoQueue": "true"}') AS created;
SELECT msgq.create_queue('f_q.fifo', '{"FifoQueue": true}') AS same_again;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_q.fifo', '{"FifoQueue": "true", "ContentBasedDeduplication": "true"}')$$) AS differs;
SELECT msgq.create_queue('f_ht.fifo', '{"FifoQueue": "true", "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId", "ContentBasedDeduplication": "true"}') AS high_throughput;
SELECT key, value FROM jsonb_each_text(msgq.get_queue_attributes('f_ht.fifo', ARRAY['All']))
 WHERE key IN ('FifoQueue', 'ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit')
 ORDER BY key;
SELECT msgq.get_queue_attributes('f_q.fifo', ARRAY['FifoQueue', 'ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit']) AS defaults;
SELECT msgq_test.err($$SELECT msgq.set_queue_attributes('f_q.fifo', '{"FifoQueue": "false"}')$$) AS modify_type_fifo;
SELECT msgq_test.err($$SELECT msgq.set_queue_attributes('f_std', '{"FifoQueue": "true"}')$$) AS modify_type_std;
SELECT msgq_test.err($$SELECT msgq.set_queue_attributes('f_std', '{"ContentBasedDeduplication": "true"}')$$) AS std_set_fifo_attr;
SELECT msgq.set_queue_attributes('f_ht.fifo', '{"ContentBasedDeduplication": "false"}');
SELECT msgq.get_queue_attributes('f_ht.fifo', ARRAY['ContentBasedDeduplication']) AS changed;
SELECT msgq_test.err($$SELECT msgq.set_queue_attributes('f_ht.fifo', '{"DeduplicationScope": "queue"}')$$) AS limit_needs_group_scope;
-- dead-letter queues have the type of their source
SELECT msgq_test.err($$SELECT msgq.create_queue('f_src.fifo', '{"FifoQueue": "true", "RedrivePolicy": {"deadLetterTargetArn": "f_std", "maxReceiveCount": 1}}')$$) AS fifo_to_std_dlq;
SELECT msgq_test.err($$SELECT msgq.create_queue('f_src2', '{"RedrivePolicy": {"deadLetterTargetArn": "f_q.fifo", "maxReceiveCount": 1}}')$$) AS std_to_fifo_dlq;

--
-- Sends
--
SELECT msgq_test.err($$SELECT msgq.send_message('f_q.fifo', 'x', message_deduplication_id => 'd')$$) AS no_group;
SELECT msgq_test.err($$SELECT msgq.send_message('f_q.fifo', 'x', message_group_id => 'g')$$) AS no_dedup_id;
SELECT msgq_test.err($$SELECT msgq.send_message('f_q.fifo', 'x', delay_seconds => 5, message_group_id => 'g', message_deduplication_id => 'd')$$) AS message_delay;
SELECT msgq_test.err($$SELECT msgq.send_message('f_q.fifo', 'x', message_group_id => 'g', message_deduplication_id => repeat('d', 129))$$) AS dedup_too_long;
SELECT msgq_test.err($$SELECT msgq.send_message('f_q.fifo', 'x', message_group_id => 'g g', message_deduplication_id => 'd')$$) AS group_bad_char;
SELECT msgq_test.err($$SELECT msgq.send_message('f_std', 'x', message_deduplication_id => 'd')$$) AS std_dedup_id;
-- delay 0 means the queue's delay, and is accepted
SELECT sequence_number IS NOT NULL AS has_sequence_number
  FROM msgq.send_message('f_q.fifo', 'a1', delay_seconds => 0, message_group_id => 'A', message_deduplication_id => 'a1');
SELECT sequence_number IS NULL AS std_has_none FROM msgq.send_message('f_std', 'x');
-- a duplicate succeeds with the first send's id and number, and enqueues nothing
CREATE TABLE msgq_test.fsent AS
SELECT 'first'::text AS tag, * FROM msgq.send_message('f_q.fifo', 'a2', message_group_id => 'A', message_deduplication_id => 'a2');
INSERT INTO msgq_test.fsent
SELECT 'again', * FROM msgq.send_message('f_q.fifo', 'a2-other-body', message_group_id => 'A', message_deduplication_id => 'a2');
SELECT count(DISTINCT message_id) AS ids, count(DISTINCT sequence_number) AS numbers FROM msgq_test.fsent;
-- queue scope: the same id in another group is a duplicate too
SELECT msgq_test.fsend('f_q.fifo', 'b-dup', 'B', 'a2') = (SELECT sequence_number FROM msgq_test.fsent WHERE tag = 'first') AS dup_across_groups;
SELECT msgq_test.fsend('f_q.fifo', 'a3', 'A', 'a3') IS NOT NULL AS sent;
SELECT msgq_test.fsend('f_q.fifo', 'b1', 'B', 'b1') IS NOT NULL AS sent;
SELECT msgq_test.fsend('f_q.fifo', 'b2', 'B', 'b2') IS NOT NULL AS sent;
SELECT msgq_test.fsend('f_q.fifo', 'a4', 'A', 'a4') IS NOT NULL AS sent;
SELECT msgq.get_queue_attributes('f_q.fifo', ARRAY['ApproximateNumberOfMessages']) AS stored;
-- sequence numbers increase within a group in send order
SELECT bool_and(s > p) AS increasing FROM (
  SELECT sequence_number AS s, lag(sequence_number) OVER (ORDER BY ord) AS p
    FROM unnest(ARRAY['g1', 'g2', 'g3', 'g4']) WITH ORDINALITY AS b(body, ord),
         msgq.send_message('f_ht.fifo', b.body, message_group_id => 'G', message_deduplication_id => b.body)) x
 WHERE p IS NOT NULL;
-- messageGroup scope: the same id in two groups makes two messages
SELECT msgq_test.fsend('f_ht.fifo', 'h1', 'H1', 'same') <> msgq_test.fsend('f_ht.fifo', 'h2', 'H2', 'same') AS two_messages;
-- content-based deduplication: SHA-256 of the body; an explicit id wins
SELECT msgq.set_queue_attributes('f_ht.fifo', '{"ContentBasedDeduplication": "true"}');
SELECT msgq_test.fsend('f_ht.fifo', 'cbd', 'C') = msgq_test.fsend('f_ht.fifo', 'cbd', 'C') AS content_dup;
SELECT msgq_test.fsend('f_ht.fifo', 'cbd', 'C', 'explicit') <> msgq_test.fsend('f_ht.fifo', 'cbd', 'C') AS explicit_differs;
SELECT msgq_test.fsend('f_ht.fifo', 'other body', 'C', encode(sha256('cbd'), 'hex')) = msgq_test.fsend('f_ht.fifo', 'cbd', 'C') AS explicit_equal_to_hash;
SELECT count(*) FILTER (WHERE attributes->>'MessageDeduplicationId' = encode(sha256('cbd'), 'hex')) AS by_hash,
	   count(*) FILTER (WHERE attributes->>'MessageDeduplicationId' = 'explicit') AS explicit
  FROM msgq.receive_message('f_ht.fifo', 10, message_system_attribute_names => ARRAY['MessageDeduplicationId'])
 WHERE body = 'cbd';
-- batches: in entry order, duplicates within the batch, per-entry errors
SELECT id, sequence_number IS NOT NULL AS numbered, error_code
  FROM msgq.send_message_batch('f_q.fifo', '[
	{"Id": "1", "MessageBody": "c1", "MessageGroupId": "C", "MessageDeduplicationId": "c1"},
	{"Id": "2", "MessageBody": "c2", "MessageGroupId": "C", "MessageDeduplicationId": "c2"},
	{"Id": "3", "MessageBody": "c1 again", "MessageGroupId": "C", "MessageDeduplicationId": "c1"},
	{"Id": "4", "MessageBody": "no group", "MessageDeduplicationId": "c4"},
	{"Id": "5", "MessageBody": "late", "MessageGroupId": "C", "MessageDeduplicationId": "c5", "DelaySeconds": 3}]');
SELECT count(DISTINCT sequence_number) AS distinct_numbers, bool_and(sequence_number IS NOT NULL) AS all_numbered
  FROM msgq.send_message_batch('f_q.fifo', '[
	{"Id": "1", "MessageBody": "c3", "MessageGroupId": "C", "MessageDeduplicationId": "c3"},
	{"Id": "2", "MessageBody": "c3", "MessageGroupId": "C", "MessageDeduplicationId": "c3"}]');

--
-- Receives: order within a group, blocking, one group first
--
-- queue f_q.fifo now holds A: a1 a2 a3 a4, B: b1 b2, C: c1 c2 c3
SELECT * FROM msgq_test.frecv('r1', 'f_q.fifo', 3);
-- A is blocked while any of its messages is in flight
SELECT * FROM msgq_test.frecv('r2', 'f_q.fifo', 10);
SELECT * FROM msgq_test.frecv('r3', 'f_q.fifo', 10);
-- deleting part of a group's in-flight messages keeps it blocked
SELECT msgq.delete_message('f_q.fifo', msgq_test.fh('r1', 'a1'));
SELECT * FROM msgq_test.frecv('r3', 'f_q.fifo', 10);
-- deleting the rest unblocks it
SELECT msgq.delete_message('f_q.fifo', msgq_test.fh('r1', 'a2'));
SELECT msgq.delete_message('f_q.fifo', msgq_test.fh('r1', 'a3'));
SELECT * FROM msgq_test.frecv('r4', 'f_q.fifo', 10);
-- a visibility change to 0 unblocks B at once; its messages come back in order
SELECT msgq.change_message_visibility('f_q.fifo', msgq_test.fh('r2', 'b1'), 0);
SELECT * FROM msgq_test.frecv('r5', 'f_q.fifo', 10);
SELECT msgq.change_message_visibility('f_q.fifo', msgq_test.fh('r2', 'b2'), 0);
SELECT * FROM msgq_test.frecv('r5', 'f_q.fifo', 10);
-- C comes back when its visibility timeout passes, in its original order
SET msgq.clock_offset = '31s';
SELECT * FROM msgq_test.frecv('r6', 'f_q.fifo', 10);
-- system attributes
SELECT ord, body, attributes->>'MessageGroupId' AS grp,
	   attributes->>'MessageDeduplicationId' AS dedup,
	   (attributes->>'SequenceNumber')::numeric > 0 AS sequence_number
  FROM msgq_test.fgot WHERE tag = 'r6' ORDER BY ord;

--
-- Expired handles (AWS: "The receipt handle has expired")
--
SET msgq.clock_offset = '62s';
SELECT regexp_replace(msgq_test.err(format('SELECT msgq.delete_message(%L, %L)', 'f_q.fifo', msgq_test.fh('r6', 'c1'))),
					  'Value \S+ for', 'Value <handle> for') AS expired_delete;
SELECT id, error_code FROM msgq.delete_message_batch('f_q.fifo',
	jsonb_build_array(jsonb_build_object('Id', 'e1', 'ReceiptHandle', msgq_test.fh('r6', 'c2'))));
-- the deduplication window survives receive and delete
SELECT count(*) AS received FROM msgq_test.frecv('r7', 'f_q.fifo', 10);
SELECT count(msgq.delete_message('f_q.fifo', receipt_handle)) AS deleted FROM msgq_test.fgot WHERE tag = 'r7';
SELECT msgq_test.fsend('f_q.fifo', 'c1 once more', 'C', 'c1') IS NOT NULL AS accepted;
SELECT count(*) AS nothing_enqueued FROM msgq_test.frecv('r8', 'f_q.fifo', 10);
-- five minutes after the first send, the id is new again
SET msgq.clock_offset = '301s';
SELECT msgq_test.fsend('f_q.fifo', 'c1 after the window', 'C', 'c1') IS NOT NULL AS accepted;
SELECT * FROM msgq_test.frecv('r9', 'f_q.fifo', 10);
SELECT msgq.run_maintenance();
SELECT count(*) AS dedup_rows_left FROM msgq.fifo_dedup d JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'f_q.fifo';
-- purge clears the deduplication history
SELECT msgq_test.fsend('f_q.fifo', 'p1', 'P', 'p1') IS NOT NULL AS sent;
SELECT msgq.purge_queue('f_q.fifo');
SELECT msgq_test.fsend('f_q.fifo', 'p1 after purge', 'P', 'p1') IS NOT NULL AS sent;
SELECT body FROM msgq.receive_message('f_q.fifo', 10);
RESET msgq.clock_offset;

--
-- FIFO dead-letter queues: the enqueue time resets and the deduplication
-- id becomes the message id; the group goes on with its next message
--
SELECT msgq.create_queue('f_dlq.fifo', '{"FifoQueue": "true"}') IS NOT NULL AS dlq;
SELECT msgq.create_queue('f_src.fifo', '{"FifoQueue": "true", "RedrivePolicy": {"deadLetterTargetArn": "f_dlq.fifo", "maxReceiveCount": 1}}') IS NOT NULL AS src;
SELECT msgq_test.fsend('f_src.fifo', 'm1', 'M', 'm1') IS NOT NULL AS sent;
SELECT msgq_test.fsend('f_src.fifo', 'm2', 'M', 'm2') IS NOT NULL AS sent;
SELECT * FROM msgq_test.frecv('d1', 'f_src.fifo', 1, 0);
SET msgq.clock_offset = '10s';
SELECT * FROM msgq_test.frecv_moving('d2', 'f_src.fifo', 1, 0);
SELECT body, attributes->>'MessageDeduplicationId' = message_id::text AS dedup_is_message_id,
	   (attributes->>'SentTimestamp')::bigint >= floor(extract(epoch FROM msgq.now()) * 1000) - 1000 AS enqueue_time_reset
  FROM msgq.receive_message('f_dlq.fifo', 10, message_system_attribute_names => ARRAY['All']);
-- a move task takes it back to its FIFO source queue, in its group
SET msgq.clock_offset = '45s';
SELECT msgq.start_message_move_task('f_dlq.fifo') IS NOT NULL AS started;
SELECT msgq.run_maintenance();
SELECT status, approximate_number_of_messages_moved AS moved
  FROM msgq.list_message_move_tasks('f_dlq.fifo');
-- m2 is at maxReceiveCount and moves to the DLQ on this receive; m1 follows it
SELECT * FROM msgq_test.frecv_moving('d3', 'f_src.fifo', 10);
-- a moved message is a new one: its deduplication id is its new message id
SELECT (attributes->>'MessageDeduplicationId')::uuid IS NOT NULL AS dedup_is_message_id
  FROM msgq_test.fgot WHERE tag = 'd3';
RESET msgq.clock_offset;

--
-- Receives go round the groups from the last group taken; a group whose
-- messages run on past a page of the group index is taken on, and a blocked
-- group in front costs nothing
--
SELECT msgq.create_queue('f_round.fifo', '{"FifoQueue": "true", "ContentBasedDeduplication": "true"}') IS NOT NULL AS created;
SELECT count(msgq_test.fsend('f_round.fifo', 'A' || i, 'A')) AS sent FROM generate_series(1, 8) i;
SELECT msgq_test.fsend('f_round.fifo', 'Z1', 'Z') IS NOT NULL AS sent;
SELECT * FROM msgq_test.frecv('o1', 'f_round.fifo', 1);
SELECT * FROM msgq_test.frecv('o2', 'f_round.fifo', 1);
SELECT msgq.delete_message('f_round.fifo', msgq_test.fh('o2', 'Z1'));
SELECT count(msgq_test.fsend('f_round.fifo', 'B' || i, 'B')) AS sent FROM generate_series(1, 12) i;
-- after Z, round to A (blocked: A1 is in flight) and B, ten of B's twelve
SELECT string_agg(body, ' ' ORDER BY ord) AS bodies FROM msgq_test.frecv('o3', 'f_round.fifo', 10);

--
-- ReceiveRequestAttemptId: a retry within five minutes returns the same
-- messages and handles while none was deleted or changed
--
SELECT msgq.create_queue('f_att.fifo', '{"FifoQueue": "true", "ContentBasedDeduplication": "true"}') IS NOT NULL AS created;
SELECT count(msgq_test.fsend('f_att.fifo', b, g)) AS sent
  FROM (VALUES ('t1', 'T'), ('t2', 'T'), ('u1', 'U')) v(b, g);
CREATE TABLE msgq_test.fatt (try int, body text, receipt_handle text, count text);
INSERT INTO msgq_test.fatt
SELECT 1, body, receipt_handle, attributes->>'ApproximateReceiveCount'
  FROM msgq.receive_message('f_att.fifo', 2, visibility_timeout => 30,
							message_system_attribute_names => ARRAY['All'],
							receive_request_attempt_id => 'attempt-1');
-- the retry: same messages, same handles, same counts
INSERT INTO msgq_test.fatt
SELECT 2, body, receipt_handle, attributes->>'ApproximateReceiveCount'
  FROM msgq.receive_message('f_att.fifo', 2, visibility_timeout => 30,
							message_system_attribute_names => ARRAY['All'],
							receive_request_attempt_id => 'attempt-1');
SELECT a.body, a.receipt_handle = b.receipt_handle AS same_handle, a.count, b.count
  FROM msgq_test.fatt a JOIN msgq_test.fatt b ON a.body = b.body AND a.try = 1 AND b.try = 2
 ORDER BY a.body;
-- the retry reset the visibility timeout: at 45 s the messages are still in flight
SET msgq.clock_offset = '20s';
SELECT count(*) AS again FROM msgq.receive_message('f_att.fifo', 2, visibility_timeout => 30,
												   receive_request_attempt_id => 'attempt-1');
SET msgq.clock_offset = '45s';
SELECT body FROM msgq.receive_message('f_att.fifo', 10);
-- another attempt id is another receive
SELECT body FROM msgq.receive_message('f_att.fifo', 10, receive_request_attempt_id => 'attempt-2');
-- once one of the messages is deleted, the attempt id receives anew
SELECT msgq.delete_message('f_att.fifo', receipt_handle) FROM msgq_test.fatt WHERE try = 1 AND body = 't1';
SET msgq.clock_offset = '90s';
SELECT body FROM msgq.receive_message('f_att.fifo', 2, receive_request_attempt_id => 'attempt-1');
RESET msgq.clock_offset;
DROP TABLE msgq_test.fatt;

-- clean up
SELECT count(*) AS deleted FROM msgq.list_queues('f_') AS q, LATERAL msgq.delete_queue(q);
SELECT count(*) AS dedup_rows FROM msgq.fifo_dedup;
DROP TABLE msgq_test.fgot, msgq_test.fsent;
DROP FUNCTION msgq_test.frecv, msgq_test.frecv_moving, msgq_test.fh, msgq_test.fsend;
