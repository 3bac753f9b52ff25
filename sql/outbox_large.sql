--
-- outbox_large: the outbox fix-up (a transaction that commits more than
-- msgq.outbox_fixup_after after its first send moves its messages' send
-- times to the commit), large messages (ExtendedMaximumMessageSize) and
-- msgq.max_receive_bytes.
--
-- Time rules are driven by msgq.clock_offset, never by sleeping; each timed
-- section starts from a known offset.  Queue names here all start with
-- "ol_", roles with "regress_msgq_ol_".  No deleted name is created again.
-- Large bodies are never printed: only their lengths, first characters and
-- comparisons.
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

-- msgq's clock in epoch milliseconds, as SentTimestamp shows it
CREATE FUNCTION msgq_test.ol_now_ms() RETURNS bigint
LANGUAGE sql AS $$
	SELECT floor(extract(epoch FROM msgq.now()) * 1000)::bigint
$$;

-- the three approximate counts of a queue
CREATE FUNCTION msgq_test.ol_counts(p_queue text)
RETURNS TABLE (visible int, not_visible int, delayed int)
LANGUAGE sql AS $$
	SELECT (a->>'ApproximateNumberOfMessages')::int,
		   (a->>'ApproximateNumberOfMessagesNotVisible')::int,
		   (a->>'ApproximateNumberOfMessagesDelayed')::int
	  FROM msgq.get_queue_attributes(p_queue,
			'{ApproximateNumberOfMessages,ApproximateNumberOfMessagesNotVisible,ApproximateNumberOfMessagesDelayed}') AS a
$$;

-- Received messages are kept in msgq_test.ol_got under a tag, so that later
-- statements can check their bodies and send times.
CREATE TABLE msgq_test.ol_got (
	tag text,
	message_id uuid,
	receipt_handle text,
	body text,
	md5_of_body text,
	attributes jsonb,
	message_attributes jsonb,
	ord bigint);

-- receive, remember under tag; show position, body (its length and first
-- characters when long) and receive count
CREATE FUNCTION msgq_test.ol_recv(p_tag text, p_queue text, p_max int DEFAULT 1)
RETURNS TABLE (ord bigint, body text, bytes int, receive_count int)
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM msgq_test.ol_got g WHERE g.tag = p_tag;
	INSERT INTO msgq_test.ol_got
	SELECT p_tag, r.*
	  FROM msgq.receive_message(p_queue, max_number_of_messages => p_max)
		   WITH ORDINALITY AS r;
	RETURN QUERY
	SELECT g.ord,
		   CASE WHEN octet_length(g.body) <= 40 THEN g.body
				ELSE left(g.body, 3) || '...' END,
		   octet_length(g.body),
		   (g.attributes->>'ApproximateReceiveCount')::int
	  FROM msgq_test.ol_got g WHERE g.tag = p_tag ORDER BY g.ord;
END
$$;

-- the SentTimestamp of a received message, by tag and body (short bodies)
CREATE FUNCTION msgq_test.ol_sent(p_tag text, p_body text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT (attributes->>'SentTimestamp')::bigint FROM msgq_test.ol_got
	 WHERE tag = p_tag AND body = p_body
$$;

CREATE ROLE regress_msgq_ol_user;

--
-- Outbox fix-up: the setting
--
SHOW msgq.outbox_fixup_after;
SELECT context, unit, boot_val FROM pg_settings WHERE name = 'msgq.outbox_fixup_after';
-- superusers only
SET ROLE regress_msgq_ol_user;
SELECT msgq_test.err($$SET msgq.outbox_fixup_after = '1h'$$);
SELECT msgq_test.err($$SET LOCAL msgq.outbox_fixup_after = 0$$);
SELECT msgq_test.err($$SELECT set_config('msgq.outbox_fixup_after', '0', false)$$);
SHOW msgq.outbox_fixup_after;
RESET ROLE;
SELECT msgq_test.err($$SET msgq.outbox_fixup_after = -1$$);
SET msgq.outbox_fixup_after = '2min';
SHOW msgq.outbox_fixup_after;
RESET msgq.outbox_fixup_after;
SHOW msgq.outbox_fixup_after;

--
-- A transaction that commits 100 s (msgq's clock) after its send: the
-- message counts its 2 s delay and its 60 s retention from the commit.
-- Without the fix-up it would have been visible at 2 s and expired at 60 s.
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_fix', '{"MessageRetentionPeriod": 60}');
BEGIN;
SELECT md5_of_message_body = md5('late') AS sent
  FROM msgq.send_message('ol_fix', 'late', delay_seconds => 2);
SET LOCAL msgq.clock_offset = '100s';
SELECT msgq_test.ol_now_ms() AS ol_commit_from \gset
COMMIT;
SET msgq.clock_offset = '100s';
SELECT msgq_test.ol_now_ms() AS ol_commit_to \gset
-- the delay runs from the commit: not visible yet at 101 s
SET msgq.clock_offset = '101s';
SELECT * FROM msgq_test.ol_counts('ol_fix');
SELECT * FROM msgq_test.ol_recv('fix1', 'ol_fix');
-- visible at 102.5 s, and not expired
SET msgq.clock_offset = '102.5s';
SHOW msgq.clock_offset;
SELECT * FROM msgq_test.ol_counts('ol_fix');
SELECT * FROM msgq_test.ol_recv('fix2', 'ol_fix');
-- SentTimestamp is the commit
SELECT msgq_test.ol_sent('fix2', 'late') BETWEEN :ol_commit_from AND :ol_commit_to AS sent_at_commit;
-- the retention runs from the commit too: still there at 155 s (the
-- receive's 30 s visibility timeout ended), gone after 161 s
SET msgq.clock_offset = '155s';
SELECT * FROM msgq_test.ol_counts('ol_fix');
SET msgq.clock_offset = '161s';
SELECT * FROM msgq_test.ol_counts('ol_fix');
SELECT * FROM msgq_test.ol_recv('fix3', 'ol_fix');

--
-- A short transaction (0.5 s, below the 1 s threshold) keeps its send times
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_short', '{"MessageRetentionPeriod": 60}');
BEGIN;
SELECT msgq_test.ol_now_ms() AS ol_send_from \gset
SELECT md5_of_message_body = md5('short') AS sent
  FROM msgq.send_message('ol_short', 'short', delay_seconds => 2);
SELECT msgq_test.ol_now_ms() AS ol_send_to \gset
SET LOCAL msgq.clock_offset = '0.5s';
COMMIT;
-- visible 2 s after the send (a fix-up would make it 2.5 s)
SET msgq.clock_offset = '2.3s';
SELECT * FROM msgq_test.ol_recv('short', 'ol_short');
SELECT msgq_test.ol_sent('short', 'short') BETWEEN :ol_send_from AND :ol_send_to AS sent_at_send;

--
-- msgq.outbox_fixup_after = '1h' turns the fix-up off for the transaction:
-- the message keeps its send time, and 100 s later it has expired
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_off', '{"MessageRetentionPeriod": 60}');
BEGIN;
SET LOCAL msgq.outbox_fixup_after = '1h';
SELECT msgq_test.ol_now_ms() AS ol_send_from \gset
SELECT md5_of_message_body = md5('off') AS sent
  FROM msgq.send_message('ol_off', 'off', delay_seconds => 2);
SELECT msgq_test.ol_now_ms() AS ol_send_to \gset
SET LOCAL msgq.clock_offset = '100s';
COMMIT;
SHOW msgq.outbox_fixup_after;
SET msgq.clock_offset = '102.5s';
SELECT * FROM msgq_test.ol_counts('ol_off');
SELECT * FROM msgq_test.ol_recv('off', 'ol_off');
-- it kept its send time (read from the table: it can no longer be received)
SELECT floor(extract(epoch FROM m.sent_at) * 1000)::bigint BETWEEN :ol_send_from AND :ol_send_to AS sent_at_send,
	   extract(epoch FROM m.visible_at - m.sent_at)::int AS delay_seconds
  FROM msgq.message m JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'ol_off';

--
-- Sends rolled back to a savepoint stay rolled back; the others are fixed up
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_sp', '{"MessageRetentionPeriod": 60}');
BEGIN;
SELECT md5_of_message_body = md5('sp kept 1') AS sent FROM msgq.send_message('ol_sp', 'sp kept 1');
SAVEPOINT a;
SELECT md5_of_message_body = md5('sp gone') AS sent FROM msgq.send_message('ol_sp', 'sp gone');
SELECT count(*) AS sent FROM generate_series(1, 3) i, msgq.send_message('ol_sp', 'sp gone ' || i);
ROLLBACK TO SAVEPOINT a;
SAVEPOINT b;
SELECT md5_of_message_body = md5('sp kept 2') AS sent FROM msgq.send_message('ol_sp', 'sp kept 2');
RELEASE SAVEPOINT b;
SET LOCAL msgq.clock_offset = '100s';
SELECT msgq_test.ol_now_ms() AS ol_commit_from \gset
COMMIT;
SET msgq.clock_offset = '100s';
SELECT msgq_test.ol_now_ms() AS ol_commit_to \gset
SELECT * FROM msgq_test.ol_counts('ol_sp');
-- both kept messages are there after their send's retention (60 s) ended
SET msgq.clock_offset = '130s';
SELECT * FROM msgq_test.ol_recv('sp', 'ol_sp', 10);
SELECT body, (attributes->>'SentTimestamp')::bigint BETWEEN :ol_commit_from AND :ol_commit_to AS sent_at_commit
  FROM msgq_test.ol_got WHERE tag = 'sp' ORDER BY ord;
SELECT count(*) AS stored FROM msgq.message m JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'ol_sp';

--
-- Batch sends are fixed up too, and so are sends to several queues
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_batch', '{"MessageRetentionPeriod": 60}');
SELECT msgq.create_queue('ol_batch2', '{"MessageRetentionPeriod": 60}');
BEGIN;
SELECT id, message_id IS NOT NULL AS sent, error_code
  FROM msgq.send_message_batch('ol_batch', '[
	{"Id": "b1", "MessageBody": "batch delayed", "DelaySeconds": 2},
	{"Id": "b2", "MessageBody": "batch now"},
	{"Id": "bad", "MessageBody": ""}]');
SET LOCAL msgq.clock_offset = '50s';
SELECT md5_of_message_body = md5('other queue') AS sent
  FROM msgq.send_message('ol_batch2', 'other queue', delay_seconds => 1);
SET LOCAL msgq.clock_offset = '100s';
SELECT msgq_test.ol_now_ms() AS ol_commit_from \gset
COMMIT;
SET msgq.clock_offset = '100s';
SELECT msgq_test.ol_now_ms() AS ol_commit_to \gset
-- at 101 s: the undelayed entry is visible, the delayed one not yet
SET msgq.clock_offset = '101s';
SELECT * FROM msgq_test.ol_counts('ol_batch');
SELECT * FROM msgq_test.ol_recv('b1', 'ol_batch', 10);
SELECT * FROM msgq_test.ol_recv('b2', 'ol_batch2', 10);
SET msgq.clock_offset = '102.5s';
SELECT * FROM msgq_test.ol_recv('b3', 'ol_batch', 10);
SELECT tag, body, (attributes->>'SentTimestamp')::bigint BETWEEN :ol_commit_from AND :ol_commit_to AS sent_at_commit
  FROM msgq_test.ol_got WHERE tag IN ('b1', 'b2', 'b3') ORDER BY tag, ord;

--
-- A sender that is neither superuser nor queue owner: the fix-up still moves
-- its message (it runs as the extension owner)
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_priv', '{"MessageRetentionPeriod": 60}');
SELECT msgq.add_permission('ol_priv', 'send', '{regress_msgq_ol_user}', '{SendMessage}');
BEGIN;
SET LOCAL ROLE regress_msgq_ol_user;
SELECT md5_of_message_body = md5('not mine') AS sent
  FROM msgq.send_message('ol_priv', 'not mine', delay_seconds => 2);
RESET ROLE;
SET LOCAL msgq.clock_offset = '100s';
SELECT msgq_test.ol_now_ms() AS ol_commit_from \gset
SET LOCAL ROLE regress_msgq_ol_user;
COMMIT;
SET msgq.clock_offset = '100s';
SELECT msgq_test.ol_now_ms() AS ol_commit_to \gset
SET msgq.clock_offset = '101s';
SELECT * FROM msgq_test.ol_recv('priv1', 'ol_priv');
SET msgq.clock_offset = '102.5s';
SELECT * FROM msgq_test.ol_recv('priv2', 'ol_priv');
SELECT msgq_test.ol_sent('priv2', 'not mine') BETWEEN :ol_commit_from AND :ol_commit_to AS sent_at_commit;

--
-- The fix-up must not make COMMIT fail: a transaction that became read-only
-- after its send still commits, with its message
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_ro', '{"MessageRetentionPeriod": 60}');
BEGIN;
SELECT md5_of_message_body = md5('read-only') AS sent
  FROM msgq.send_message('ol_ro', 'read-only');
SET LOCAL transaction_read_only = on;
SET LOCAL msgq.clock_offset = '100s';
COMMIT;
SELECT count(*) AS stored FROM msgq.message m JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'ol_ro';

--
-- A message sent and received in the same long transaction: its receive's
-- visibility timeout (5 s) is not stretched by the fix-up; once the commit
-- is 1 s old it is visible again, whichever time the receive counts from
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_own', '{"MessageRetentionPeriod": 60}');
BEGIN;
SELECT md5_of_message_body = md5('own') AS sent FROM msgq.send_message('ol_own', 'own');
SELECT body, attributes->>'ApproximateReceiveCount' AS receive_count
  FROM msgq.receive_message('ol_own', visibility_timeout => 5);
SET LOCAL msgq.clock_offset = '100s';
COMMIT;
SET msgq.clock_offset = '101s';
SELECT * FROM msgq_test.ol_recv('own', 'ol_own');

--
-- A transaction of more than 100000 sends: all its messages are moved, or
-- none (wait.c: "a transaction that sends more keeps its send times"), never
-- only some of them
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_many', '{"MessageRetentionPeriod": 60}');
BEGIN;
SELECT count(*) AS sent FROM generate_series(1, 100001) i, msgq.send_message('ol_many', 'm' || i);
SET LOCAL msgq.clock_offset = '100s';
COMMIT;
SET msgq.clock_offset = '100s';
SELECT count(*) AS stored,
	   count(*) FILTER (WHERE m.sent_at > msgq.now() - interval '50 s') IN (0, 100001) AS all_or_none
  FROM msgq.message m JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'ol_many';

--
-- ExtendedMaximumMessageSize: 0 (off) to 268435456, shown only when set
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_large', '{"ExtendedMaximumMessageSize": 10485760}');
SELECT msgq.get_queue_attributes('ol_large', '{MaximumMessageSize,ExtendedMaximumMessageSize}');
SELECT msgq.get_queue_attributes('ol_large') ? 'ExtendedMaximumMessageSize' AS in_all;
-- same attributes again: the same queue; other ones: QueueNameExists
SELECT msgq.create_queue('ol_large', '{"ExtendedMaximumMessageSize": "10485760"}');
SELECT msgq_test.err($$SELECT msgq.create_queue('ol_large', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('ol_large', '{"ExtendedMaximumMessageSize": 10485761}')$$);
-- 0 is off, and not shown
SELECT msgq.create_queue('ol_zero', '{"ExtendedMaximumMessageSize": 0}');
SELECT msgq.get_queue_attributes('ol_zero', '{ExtendedMaximumMessageSize}') AS asked,
	   msgq.get_queue_attributes('ol_zero') ? 'ExtendedMaximumMessageSize' AS in_all;
SELECT msgq.create_queue('ol_default');
SELECT msgq.get_queue_attributes('ol_default', '{ExtendedMaximumMessageSize}') AS asked,
	   msgq.get_queue_attributes('ol_default') ? 'ExtendedMaximumMessageSize' AS in_all;
-- the same effective attributes: a queue created with 0 is a default queue
SELECT msgq.create_queue('ol_default', '{"ExtendedMaximumMessageSize": 0}');
-- the largest value
SELECT msgq.create_queue('ol_max', '{"ExtendedMaximumMessageSize": 268435456}');
SELECT msgq.get_queue_attributes('ol_max', '{ExtendedMaximumMessageSize}');
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('one over', $$SELECT msgq.create_queue('ol_bad', '{"ExtendedMaximumMessageSize": 268435457}')$$),
	('negative', $$SELECT msgq.create_queue('ol_bad', '{"ExtendedMaximumMessageSize": -1}')$$),
	('huge', $$SELECT msgq.create_queue('ol_bad', '{"ExtendedMaximumMessageSize": 99999999999}')$$),
	('fraction', $$SELECT msgq.create_queue('ol_bad', '{"ExtendedMaximumMessageSize": 2048.5}')$$),
	('text', $$SELECT msgq.create_queue('ol_bad', '{"ExtendedMaximumMessageSize": "big"}')$$),
	('set one over', $$SELECT msgq.set_queue_attributes('ol_default', '{"ExtendedMaximumMessageSize": 268435457}')$$),
	('set negative', $$SELECT msgq.set_queue_attributes('ol_default', '{"ExtendedMaximumMessageSize": "-5"}')$$)
	) AS t(f, s);
SELECT * FROM msgq.list_queues('ol_bad');
SELECT msgq.get_queue_attributes('ol_default') ? 'ExtendedMaximumMessageSize' AS failed_set_changed;
-- set_queue_attributes sets it and turns it off again
SELECT msgq.create_queue('ol_set');
SELECT msgq.set_queue_attributes('ol_set', '{"ExtendedMaximumMessageSize": 2000000}');
SELECT msgq.get_queue_attributes('ol_set', '{MaximumMessageSize,ExtendedMaximumMessageSize}');
SELECT msgq_test.err($$SELECT msgq.send_message('ol_set', repeat('s', 2000000))$$) AS at_limit,
	   msgq_test.err($$SELECT msgq.send_message('ol_set', repeat('s', 2000001))$$) AS one_over;
-- other attributes leave it as it is
SELECT msgq.set_queue_attributes('ol_set', '{"VisibilityTimeout": 10}');
SELECT msgq.get_queue_attributes('ol_set', '{VisibilityTimeout,ExtendedMaximumMessageSize}');
SELECT msgq.set_queue_attributes('ol_set', '{"ExtendedMaximumMessageSize": 0}');
SELECT msgq.get_queue_attributes('ol_set', '{MaximumMessageSize,ExtendedMaximumMessageSize}');
SELECT msgq_test.err($$SELECT msgq.send_message('ol_set', repeat('s', 1048577))$$) AS over_default;

--
-- The size limit is max(MaximumMessageSize, ExtendedMaximumMessageSize)
--
SELECT length(b) AS bytes FROM repeat('x', 3000000) AS b;
SELECT md5_of_message_body = md5(repeat('x', 3000000)) AS md5_ok
  FROM msgq.send_message('ol_large', repeat('x', 3000000));
SELECT msgq_test.err($$SELECT msgq.send_message('ol_default', repeat('x', 3000000))$$);
-- the limit itself, and one byte over
SELECT md5_of_message_body = md5(repeat('y', 10485760)) AS md5_ok
  FROM msgq.send_message('ol_large', repeat('y', 10485760));
SELECT msgq_test.err($$SELECT msgq.send_message('ol_large', repeat('y', 10485761))$$);
-- message attributes count toward the limit
SELECT msgq_test.err($$SELECT msgq.send_message('ol_large', repeat('y', 10485760),
	message_attributes => '{"a": {"DataType": "String", "StringValue": "v"}}')$$);
-- bytes, not characters: 'é' takes two
SELECT msgq_test.err($$SELECT msgq.send_message('ol_large', repeat('é', 5242880))$$) AS at_limit,
	   msgq_test.err($$SELECT msgq.send_message('ol_large', repeat('é', 5242880) || 'x')$$) AS one_over;
-- an extended size below MaximumMessageSize does not lower the limit
SELECT msgq.create_queue('ol_small_ext', '{"ExtendedMaximumMessageSize": 2048}');
SELECT msgq_test.err($$SELECT msgq.send_message('ol_small_ext', repeat('z', 1048576))$$) AS at_default,
	   msgq_test.err($$SELECT msgq.send_message('ol_small_ext', repeat('z', 1048577))$$) AS one_over;
-- nor does a smaller MaximumMessageSize lower an extended one
SELECT msgq.set_queue_attributes('ol_small_ext', '{"MaximumMessageSize": 1024, "ExtendedMaximumMessageSize": 4096}');
SELECT msgq_test.err($$SELECT msgq.send_message('ol_small_ext', repeat('z', 4096))$$) AS at_limit,
	   msgq_test.err($$SELECT msgq.send_message('ol_small_ext', repeat('z', 4097))$$) AS one_over;
-- the large messages come back whole (16 MB per receive by default: the
-- third one comes with the next receive)
SELECT * FROM msgq_test.ol_recv('large', 'ol_large', 10);
SELECT * FROM msgq_test.ol_recv('large2', 'ol_large', 10);
SELECT tag, ord, body = repeat(left(body, 1), char_length(body)) AS body_ok,
	   md5_of_body = md5(body) AS md5_ok
  FROM msgq_test.ol_got WHERE tag IN ('large', 'large2') ORDER BY tag, ord;

--
-- send_message_batch on a large-message queue: an entry up to the queue's
-- limit, and a request up to max(1 MiB, the queue's limit)
--
SELECT msgq.create_queue('ol_lbatch', '{"ExtendedMaximumMessageSize": 10485760}');
SELECT id, message_id IS NOT NULL AS sent,
	   md5_of_message_body = md5(CASE id WHEN 'big' THEN repeat('B', 3000000) ELSE 'small' END) AS md5_ok,
	   error_code
  FROM msgq.send_message_batch('ol_lbatch', json_build_array(
		json_build_object('Id', 'big', 'MessageBody', repeat('B', 3000000)),
		json_build_object('Id', 'small', 'MessageBody', 'small')));
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('over the queue limit', $$SELECT * FROM msgq.send_message_batch('ol_lbatch', json_build_array(
		json_build_object('Id', 'a', 'MessageBody', repeat('B', 6000000)),
		json_build_object('Id', 'b', 'MessageBody', repeat('B', 4485761))))$$),
	('default queue', $$SELECT * FROM msgq.send_message_batch('ol_default', json_build_array(
		json_build_object('Id', 'big', 'MessageBody', repeat('B', 3000000))))$$)
	) AS t(f, s);
-- an entry over the queue's limit fails alone
SELECT id, message_id IS NOT NULL AS sent, error_code, error_message
  FROM msgq.send_message_batch('ol_small_ext', json_build_array(
		json_build_object('Id', 'over', 'MessageBody', repeat('B', 4097)),
		json_build_object('Id', 'ok', 'MessageBody', 'ok')));
SELECT * FROM msgq_test.ol_recv('lbatch', 'ol_lbatch', 10);
SELECT ord, md5_of_body = md5(body) AS md5_ok FROM msgq_test.ol_got WHERE tag = 'lbatch' ORDER BY ord;

--
-- msgq.max_receive_bytes: the setting
--
SHOW msgq.max_receive_bytes;
SELECT context, unit, boot_val, min_val FROM pg_settings WHERE name = 'msgq.max_receive_bytes';
SELECT msgq_test.err($$SET msgq.max_receive_bytes = 1023$$);
SET msgq.max_receive_bytes = 1024;
SHOW msgq.max_receive_bytes;
-- anyone may set it
SET ROLE regress_msgq_ol_user;
SET msgq.max_receive_bytes = '4MB';
SHOW msgq.max_receive_bytes;
RESET ROLE;
RESET msgq.max_receive_bytes;
SHOW msgq.max_receive_bytes;

--
-- A receive stops adding messages once their bodies would pass
-- msgq.max_receive_bytes, and always returns at least one
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_cap', '{"ExtendedMaximumMessageSize": 10485760}');
SELECT md5_of_message_body = md5(repeat('a', 3000000)) AS sent FROM msgq.send_message('ol_cap', repeat('a', 3000000));
SELECT md5_of_message_body = md5(repeat('b', 3000000)) AS sent FROM msgq.send_message('ol_cap', repeat('b', 3000000));
SELECT md5_of_message_body = md5('small') AS sent FROM msgq.send_message('ol_cap', 'small');
SET msgq.max_receive_bytes = '4MB';
SELECT * FROM msgq_test.ol_recv('cap1', 'ol_cap', 10);
-- the others were not received: still visible, with no receive counted
SELECT * FROM msgq_test.ol_counts('ol_cap');
SELECT * FROM msgq_test.ol_recv('cap2', 'ol_cap', 10);
SELECT * FROM msgq_test.ol_counts('ol_cap');
SELECT tag, ord, md5_of_body = md5(body) AS md5_ok,
	   attributes ? 'ApproximateFirstReceiveTimestamp' AS first_received
  FROM msgq_test.ol_got WHERE tag IN ('cap1', 'cap2') ORDER BY tag, ord;
-- one message larger than the cap still comes back, alone
SET msgq.clock_offset = '31s';
SET msgq.max_receive_bytes = '1kB';
SELECT * FROM msgq_test.ol_recv('cap3', 'ol_cap', 10);
SELECT * FROM msgq_test.ol_recv('cap4', 'ol_cap', 10);
SELECT * FROM msgq_test.ol_recv('cap5', 'ol_cap', 10);
SELECT * FROM msgq_test.ol_recv('cap6', 'ol_cap', 10);
RESET msgq.max_receive_bytes;

-- the cap is inclusive; past it the receive stops, it does not skip ahead
RESET msgq.clock_offset;
SELECT msgq.create_queue('ol_cap2');
SELECT count(*) AS sent
  FROM (VALUES (1, repeat('p', 1000)), (2, repeat('q', 24)), (3, 'r'), (4, repeat('s', 2000)), (5, 't')) AS v(i, b),
	   LATERAL msgq.send_message('ol_cap2', v.b);
SET msgq.max_receive_bytes = 1024;
SELECT * FROM msgq_test.ol_recv('cap2a', 'ol_cap2', 10);
SELECT * FROM msgq_test.ol_recv('cap2b', 'ol_cap2', 10);
SELECT * FROM msgq_test.ol_recv('cap2c', 'ol_cap2', 10);
SELECT * FROM msgq_test.ol_recv('cap2d', 'ol_cap2', 10);
-- the default cap takes them all
SET msgq.clock_offset = '31s';
RESET msgq.max_receive_bytes;
SELECT * FROM msgq_test.ol_recv('cap2e', 'ol_cap2', 10);
-- max_number_of_messages still limits first
SET msgq.clock_offset = '62s';
SELECT * FROM msgq_test.ol_recv('cap2f', 'ol_cap2', 2);

--
-- Clean up
--
RESET msgq.clock_offset;
RESET msgq.max_receive_bytes;
SELECT count(*) AS deleted FROM msgq.list_queues('ol_') AS q, LATERAL msgq.delete_queue(q);
SELECT * FROM msgq.list_queues('ol_');
DROP ROLE regress_msgq_ol_user;
DROP TABLE msgq_test.ol_got;
