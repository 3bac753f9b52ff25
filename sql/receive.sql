--
-- receive: send / receive / delete, receive counts and handles, visibility
-- timeouts and delays on msgq's test clock, change_message_visibility,
-- bodies, message attributes and their MD5, transactions, long polling.
--
-- Time rules are driven by msgq.clock_offset (msgq.now() = clock_timestamp()
-- + offset), never by sleeping; each timed section starts from offset 0 on
-- fresh queues.  Queue names here all start with "r_".
--

-- msgq_test.err() comes from queue.sql; made again here so this file can run alone
SET client_min_messages = warning;
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

-- Received messages are kept in msgq_test.got under a tag, so that later
-- statements can use their receipt handles without printing them.
CREATE TABLE msgq_test.got (
	tag text,
	message_id uuid,
	receipt_handle text,
	body text,
	md5_of_body text,
	attributes jsonb,
	message_attributes jsonb,
	ord bigint);

-- msgq_test.recv(tag, queue, max, vt): receive, remember under tag, and
-- show the stable part of each message: its position, body and count.
CREATE FUNCTION msgq_test.recv(p_tag text, p_queue text, p_max int DEFAULT 1,
							   p_vt int DEFAULT NULL)
RETURNS TABLE (ord bigint, body text, receive_count int)
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM msgq_test.got g WHERE g.tag = p_tag;
	INSERT INTO msgq_test.got
	SELECT p_tag, r.*
	  FROM msgq.receive_message(p_queue, max_number_of_messages => p_max,
								visibility_timeout => p_vt) WITH ORDINALITY AS r;
	RETURN QUERY
	SELECT g.ord, g.body, (g.attributes->>'ApproximateReceiveCount')::int
	  FROM msgq_test.got g WHERE g.tag = p_tag ORDER BY g.ord;
END
$$;

-- the receipt handle of the first message received under a tag
CREATE FUNCTION msgq_test.h(p_tag text) RETURNS text
LANGUAGE sql AS $$
	SELECT receipt_handle FROM msgq_test.got WHERE tag = p_tag AND ord = 1
$$;

-- the number of stored messages of a queue (deleted ones are gone)
CREATE FUNCTION msgq_test.stored(p_queue text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id)
	 WHERE q.queue_name = p_queue
$$;

-- msgq's clock in epoch milliseconds, as SentTimestamp & co. show it
CREATE FUNCTION msgq_test.now_ms() RETURNS bigint
LANGUAGE sql AS $$
	SELECT floor(extract(epoch FROM msgq.now()) * 1000)::bigint
$$;

-- MD5OfMessageAttributes, computed independently of msgq: for each
-- attribute in name order, 4-byte big-endian length + name, 4-byte length +
-- data type, transport byte (1 String/Number, 2 Binary), 4-byte length +
-- value bytes (base64-decoded for Binary); MD5 of the concatenation.
CREATE FUNCTION msgq_test.attr_md5(attrs jsonb) RETURNS text
LANGUAGE sql AS $$
	SELECT md5(string_agg(
			int4send(octet_length(convert_to(a.name, 'UTF8'))) || convert_to(a.name, 'UTF8') ||
			int4send(octet_length(convert_to(a.dtype, 'UTF8'))) || convert_to(a.dtype, 'UTF8') ||
			CASE WHEN a.is_binary THEN '\x02'::bytea ELSE '\x01'::bytea END ||
			int4send(octet_length(a.val)) || a.val,
			''::bytea ORDER BY convert_to(a.name, 'UTF8')))
	  FROM (SELECT e.key AS name,
				   e.value->>'DataType' AS dtype,
				   split_part(e.value->>'DataType', '.', 1) = 'Binary' AS is_binary,
				   CASE WHEN split_part(e.value->>'DataType', '.', 1) = 'Binary'
						THEN decode(e.value->>'BinaryValue', 'base64')
						ELSE convert_to(e.value->>'StringValue', 'UTF8') END AS val
			  FROM jsonb_each(attrs) AS e) AS a
$$;

SET msgq.clock_offset = 0;

--
-- Send, receive, delete
--
SELECT msgq.create_queue('r_cycle');
SELECT msgq_test.now_ms() AS t_before \gset
CREATE TABLE msgq_test.sent AS
SELECT 'hello'::text AS tag, * FROM msgq.send_message('r_cycle', 'hello world');
SELECT msgq_test.now_ms() AS t_after \gset
SELECT message_id IS NOT NULL AS has_id,
	   substr(message_id::text, 15, 1) = '4' AS uuid_v4,
	   md5_of_message_body,
	   md5_of_message_body = md5('hello world') AS body_md5_ok,
	   md5_of_message_attributes IS NULL AS no_attributes_md5,
	   sequence_number IS NULL AS no_sequence_number
  FROM msgq_test.sent WHERE tag = 'hello';

SELECT * FROM msgq_test.recv('c1', 'r_cycle');
SELECT g.message_id = s.message_id AS same_id,
	   g.md5_of_body = md5(g.body) AS md5_ok,
	   length(g.receipt_handle) AS handle_length,
	   g.receipt_handle ~ '^[A-Za-z0-9_-]+$' AS handle_base64url,
	   g.receipt_handle <> g.message_id::text AS handle_is_not_id,
	   (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(g.attributes) k) AS system_attributes,
	   g.attributes->>'SenderId' = current_user AS sender_is_current_user,
	   (g.attributes->>'SentTimestamp')::bigint BETWEEN :t_before AND :t_after AS sent_ts_ok,
	   (g.attributes->>'ApproximateFirstReceiveTimestamp')::bigint
			BETWEEN :t_after AND msgq_test.now_ms() AS first_receive_ts_ok,
	   g.message_attributes IS NULL AS no_message_attributes
  FROM msgq_test.got g, msgq_test.sent s WHERE g.tag = 'c1' AND s.tag = 'hello';
-- in flight now: a second receive gets nothing
SELECT * FROM msgq_test.recv('c2', 'r_cycle');
SELECT msgq.delete_message('r_cycle', msgq_test.h('c1'));
SELECT msgq_test.stored('r_cycle');
-- deleting again with the same handle succeeds (idempotent)
SELECT msgq.delete_message('r_cycle', msgq_test.h('c1'));
SELECT * FROM msgq_test.recv('c3', 'r_cycle');

--
-- Every receive counts and mints a new handle
--
SELECT msgq.create_queue('r_count');
SELECT md5_of_message_body = md5('count me') AS sent FROM msgq.send_message('r_count', 'count me');
SELECT * FROM msgq_test.recv('n1', 'r_count', p_vt => 0);
SELECT * FROM msgq_test.recv('n2', 'r_count', p_vt => 0);
SELECT * FROM msgq_test.recv('n3', 'r_count', p_vt => 0);
SELECT count(DISTINCT receipt_handle) AS handles, count(DISTINCT message_id) AS ids,
	   count(DISTINCT attributes->>'ApproximateFirstReceiveTimestamp') AS first_receive_ts,
	   count(DISTINCT attributes->>'SentTimestamp') AS sent_ts
  FROM msgq_test.got WHERE tag IN ('n1', 'n2', 'n3');

--
-- max_number_of_messages: at most N, in send order
--
SELECT msgq.create_queue('r_order');
SELECT count(*) FROM generate_series(1, 5) i, msgq.send_message('r_order', 'm' || i);
SELECT * FROM msgq_test.recv('o1', 'r_order', 3);
SELECT * FROM msgq_test.recv('o2', 'r_order', 10);
SELECT * FROM msgq_test.recv('o3', 'r_order', 10);
-- NULL means the default, 1
SELECT md5_of_message_body = md5('m6') AS sent FROM msgq.send_message('r_order', 'm6');
SELECT md5_of_message_body = md5('m7') AS sent FROM msgq.send_message('r_order', 'm7');
SELECT body FROM msgq.receive_message('r_order', max_number_of_messages => NULL);
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('max 0', $$SELECT msgq.receive_message('r_order', max_number_of_messages => 0)$$),
	('max 11', $$SELECT msgq.receive_message('r_order', max_number_of_messages => 11)$$),
	('max -1', $$SELECT msgq.receive_message('r_order', max_number_of_messages => -1)$$),
	('vt -1', $$SELECT msgq.receive_message('r_order', visibility_timeout => -1)$$),
	('vt 43201', $$SELECT msgq.receive_message('r_order', visibility_timeout => 43201)$$),
	('wait -1', $$SELECT msgq.receive_message('r_order', wait_time_seconds => -1)$$),
	('wait 21', $$SELECT msgq.receive_message('r_order', wait_time_seconds => 21)$$),
	('attempt id empty', $$SELECT msgq.receive_message('r_order', receive_request_attempt_id => '')$$),
	('attempt id space', $$SELECT msgq.receive_message('r_order', receive_request_attempt_id => 'a b')$$),
	('attempt id 129', $$SELECT msgq.receive_message('r_order', receive_request_attempt_id => repeat('a', 129))$$)
	) AS t(f, s);
-- none of the failed calls received anything; the bounds themselves are fine
SELECT body FROM msgq.receive_message('r_order', max_number_of_messages => 10,
									  visibility_timeout => 43200, wait_time_seconds => 0,
									  receive_request_attempt_id => 'attempt-1');

--
-- Visibility timeout on the clock: the queue's default and a per-call value
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('r_vis');
SELECT msgq.create_queue('r_vis10', '{"VisibilityTimeout": 10}');
SELECT md5_of_message_body = md5('v') AS sent FROM msgq.send_message('r_vis', 'v');
SELECT md5_of_message_body = md5('v10') AS sent FROM msgq.send_message('r_vis10', 'v10');
SELECT * FROM msgq_test.recv('v1', 'r_vis');
SELECT * FROM msgq_test.recv('w1', 'r_vis10');
SET msgq.clock_offset = '9s';
SELECT * FROM msgq_test.recv('w2', 'r_vis10');
SET msgq.clock_offset = '11s';
SELECT * FROM msgq_test.recv('w3', 'r_vis10');
SET msgq.clock_offset = '29s';
SELECT * FROM msgq_test.recv('v2', 'r_vis');
SET msgq.clock_offset = '31s';
-- a per-call visibility timeout applies to this receive only
SELECT * FROM msgq_test.recv('v3', 'r_vis', p_vt => 5);
SET msgq.clock_offset = '35s';
SELECT * FROM msgq_test.recv('v4', 'r_vis');
SET msgq.clock_offset = '37s';
SELECT * FROM msgq_test.recv('v5', 'r_vis');
-- back to the queue's 30 s
SET msgq.clock_offset = '66s';
SELECT * FROM msgq_test.recv('v6', 'r_vis');
SET msgq.clock_offset = '68s';
SELECT * FROM msgq_test.recv('v7', 'r_vis', p_vt => 0);
-- visibility 0: visible again at once
SELECT * FROM msgq_test.recv('v8', 'r_vis', p_vt => 0);

--
-- Delays: the queue's DelaySeconds and a per-message delay_seconds
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('r_delay', '{"DelaySeconds": 10}');
SELECT msgq.create_queue('r_nodelay');
SELECT md5_of_message_body = md5('queue delay') AS sent FROM msgq.send_message('r_delay', 'queue delay');
SELECT md5_of_message_body = md5('no delay') AS sent FROM msgq.send_message('r_delay', 'no delay', delay_seconds => 0);
SELECT md5_of_message_body = md5('message delay') AS sent FROM msgq.send_message('r_nodelay', 'message delay', delay_seconds => 5);
SELECT md5_of_message_body = md5('max delay') AS sent FROM msgq.send_message('r_nodelay', 'max delay', delay_seconds => 900);
SELECT * FROM msgq_test.recv('d1', 'r_delay', 10);
SELECT * FROM msgq_test.recv('d2', 'r_nodelay', 10);
SET msgq.clock_offset = '4s';
SELECT * FROM msgq_test.recv('d3', 'r_nodelay', 10);
SET msgq.clock_offset = '6s';
SELECT * FROM msgq_test.recv('d4', 'r_nodelay', 10);
SELECT msgq.delete_message('r_nodelay', msgq_test.h('d4'));
SELECT * FROM msgq_test.recv('d5', 'r_delay', 10);
SET msgq.clock_offset = '9s';
SELECT * FROM msgq_test.recv('d6', 'r_delay', 10);
SET msgq.clock_offset = '11s';
SELECT * FROM msgq_test.recv('d7', 'r_delay', 10);
SET msgq.clock_offset = '899s';
SELECT * FROM msgq_test.recv('d8', 'r_nodelay', 10);
SET msgq.clock_offset = '901s';
SELECT * FROM msgq_test.recv('d9', 'r_nodelay', 10);
SELECT msgq_test.err($$SELECT msgq.send_message('r_nodelay', 'x', delay_seconds => 901)$$);
SELECT msgq_test.err($$SELECT msgq.delete_message('r_nodelay', '')$$);
SELECT msgq_test.err($$SELECT msgq.change_message_visibility('r_nodelay', '', 10)$$);
SELECT msgq_test.err($$SELECT msgq.send_message('r_nodelay', 'x', delay_seconds => -1)$$);
SELECT msgq_test.stored('r_nodelay');

--
-- delete_message: stale, expired, forged and foreign handles
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('r_del');
SELECT msgq.create_queue('r_del_other');
SELECT md5_of_message_body = md5('del') AS sent FROM msgq.send_message('r_del', 'del');
SELECT * FROM msgq_test.recv('s1', 'r_del', p_vt => 0);
SELECT * FROM msgq_test.recv('s2', 'r_del');
-- s1's handle is stale: the delete succeeds but deletes nothing
SELECT msgq.delete_message('r_del', msgq_test.h('s1'));
SELECT msgq_test.stored('r_del');
SELECT msgq.delete_message('r_del', msgq_test.h('s2'));
SELECT msgq_test.stored('r_del');
-- the latest handle still deletes after its visibility timeout expired
SELECT md5_of_message_body = md5('expired') AS sent FROM msgq.send_message('r_del', 'expired');
SELECT * FROM msgq_test.recv('s3', 'r_del', p_vt => 0);
SELECT msgq.delete_message('r_del', msgq_test.h('s3'));
SELECT msgq_test.stored('r_del');
-- handles that msgq did not mint for this queue are refused
SELECT md5_of_message_body = md5('forged') AS sent FROM msgq.send_message('r_del', 'forged');
SELECT * FROM msgq_test.recv('s4', 'r_del');
SELECT f, msgq_test.err(format('SELECT msgq.delete_message(%L, %L)', q, h)) AS delete_message,
	   msgq_test.err(format('SELECT msgq.change_message_visibility(%L, %L, 0)', q, h)) AS change_visibility
  FROM (SELECT 'flip first char', 'r_del',
			   overlay(msgq_test.h('s4') PLACING CASE WHEN left(msgq_test.h('s4'), 1) = 'A' THEN 'B' ELSE 'A' END FROM 1 FOR 1)
		UNION ALL
		SELECT 'flip middle char', 'r_del',
			   overlay(msgq_test.h('s4') PLACING CASE WHEN substr(msgq_test.h('s4'), 24, 1) = 'A' THEN 'B' ELSE 'A' END FROM 24 FOR 1)
		UNION ALL
		SELECT 'flip last char', 'r_del',
			   overlay(msgq_test.h('s4') PLACING CASE WHEN right(msgq_test.h('s4'), 1) = 'A' THEN 'B' ELSE 'A' END FROM 48 FOR 1)
		UNION ALL
		SELECT 'truncated', 'r_del', left(msgq_test.h('s4'), 47)
		UNION ALL
		SELECT 'extended', 'r_del', msgq_test.h('s4') || 'A'
		UNION ALL
		SELECT 'garbage', 'r_del', 'garbage'
		UNION ALL
		SELECT 'bad characters', 'r_del', repeat('!', 48)
		UNION ALL
		SELECT 'all A', 'r_del', repeat('A', 48)
		UNION ALL
		SELECT 'message id', 'r_del', (SELECT message_id::text FROM msgq_test.got WHERE tag = 's4')
		UNION ALL
		SELECT 'other queue', 'r_del_other', msgq_test.h('s4')) AS t(f, q, h);
SELECT msgq_test.err($$SELECT msgq.delete_message('r_del', NULL)$$);
-- none of this touched the message, and its real handle still works
SELECT msgq_test.stored('r_del');
SELECT msgq.change_message_visibility('r_del', msgq_test.h('s4'), 0);
SELECT * FROM msgq_test.recv('s5', 'r_del');
SELECT msgq.delete_message('r_del', msgq_test.h('s5'));
SELECT msgq_test.stored('r_del');

--
-- change_message_visibility
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('r_cmv');
SELECT md5_of_message_body = md5('cmv') AS sent FROM msgq.send_message('r_cmv', 'cmv');
SELECT * FROM msgq_test.recv('x1', 'r_cmv');
-- extend: 100 s counted from now
SELECT msgq.change_message_visibility('r_cmv', msgq_test.h('x1'), 100);
SET msgq.clock_offset = '31s';
SELECT * FROM msgq_test.recv('x2', 'r_cmv');
SET msgq.clock_offset = '99s';
SELECT * FROM msgq_test.recv('x3', 'r_cmv');
SET msgq.clock_offset = '101s';
SELECT * FROM msgq_test.recv('x4', 'r_cmv');
-- 0: visible at once
SELECT msgq.change_message_visibility('r_cmv', msgq_test.h('x4'), 0);
SELECT * FROM msgq_test.recv('x5', 'r_cmv', p_vt => 43200);
-- the total stays within 12 hours of the receive, measured from the receive
SET msgq.clock_offset = '3701s';
SELECT msgq_test.err(format('SELECT msgq.change_message_visibility(%L, %L, 39601)', 'r_cmv', msgq_test.h('x5')));
SELECT msgq_test.err(format('SELECT msgq.change_message_visibility(%L, %L, 43200)', 'r_cmv', msgq_test.h('x5')));
SELECT msgq.change_message_visibility('r_cmv', msgq_test.h('x5'), 39000);
SET msgq.clock_offset = '42700s';
SELECT * FROM msgq_test.recv('x6', 'r_cmv');
SET msgq.clock_offset = '42702s';
SELECT * FROM msgq_test.recv('x7', 'r_cmv');
-- a changed timeout is not remembered: the next receive uses the queue's 30 s
SET msgq.clock_offset = '42731s';
SELECT * FROM msgq_test.recv('x8', 'r_cmv');
SET msgq.clock_offset = '42733s';
SELECT * FROM msgq_test.recv('x9', 'r_cmv');
-- argument checks
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('vt -1', format('SELECT msgq.change_message_visibility(%L, %L, -1)', 'r_cmv', msgq_test.h('x9'))),
	('vt 43201', format('SELECT msgq.change_message_visibility(%L, %L, 43201)', 'r_cmv', msgq_test.h('x9'))),
	('vt NULL', format('SELECT msgq.change_message_visibility(%L, %L, NULL)', 'r_cmv', msgq_test.h('x9'))),
	('handle NULL', $$SELECT msgq.change_message_visibility('r_cmv', NULL, 10)$$)
	) AS t(f, s);
-- after delete: InvalidParameterValue
SELECT msgq.delete_message('r_cmv', msgq_test.h('x9'));
SELECT msgq_test.err(format('SELECT msgq.change_message_visibility(%L, %L, 10)', 'r_cmv', msgq_test.h('x9')));

-- stale handle of a message that is visible: MessageNotInflight
RESET msgq.clock_offset;
SELECT md5_of_message_body = md5('stale') AS sent FROM msgq.send_message('r_cmv', 'stale');
SELECT * FROM msgq_test.recv('y1', 'r_cmv', p_vt => 0);
SELECT * FROM msgq_test.recv('y2', 'r_cmv', p_vt => 0);
SELECT msgq_test.err(format('SELECT msgq.change_message_visibility(%L, %L, 10)', 'r_cmv', msgq_test.h('y1')));
-- the latest handle works even though its timeout expired (as AWS records)
SELECT msgq.change_message_visibility('r_cmv', msgq_test.h('y2'), 10);
SELECT * FROM msgq_test.recv('y3', 'r_cmv');
-- stale handle of a message in flight for a later receive: InvalidParameterValue
SET msgq.clock_offset = '11s';
SELECT * FROM msgq_test.recv('y4', 'r_cmv');
SELECT msgq_test.err(format('SELECT msgq.change_message_visibility(%L, %L, 0)', 'r_cmv', msgq_test.h('y2')));
-- and the stale handle did not make it visible
SELECT * FROM msgq_test.recv('y5', 'r_cmv');
SELECT msgq.delete_message('r_cmv', msgq_test.h('y4'));
SELECT msgq_test.stored('r_cmv');

--
-- Message bodies
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('r_body');
SELECT msgq_test.err($$SELECT msgq.send_message('r_body', '')$$);
SELECT msgq_test.err($$SELECT msgq.send_message('r_body', NULL)$$);
-- characters outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF
SELECT code, msgq_test.err(format('SELECT msgq.send_message(%L, %L)', 'r_body', 'a' || chr(code) || 'b')) AS result
  FROM unnest(ARRAY[1, 8, 11, 12, 31, 65534, 65535]) AS code;
-- the allowed edges round-trip unchanged
CREATE TABLE msgq_test.bodies AS
SELECT i, b FROM unnest(ARRAY[
	E'tab\there', E'new\nline', E'carriage\rreturn', ' ', 'del' || chr(127),
	chr(55295), chr(57344), chr(65533), chr(65536), chr(1114111),
	'héllo wörld ✓ 😀', '<xml attr="&amp;"/>']) WITH ORDINALITY AS t(b, i);
SELECT count(*) FROM msgq_test.bodies, msgq.send_message('r_body', b) s
 WHERE s.md5_of_message_body = md5(b);
SELECT b.i, r.body = b.b AS same_body, r.md5_of_body = md5(b.b) AS same_md5
  FROM msgq.receive_message('r_body', max_number_of_messages => 10) WITH ORDINALITY AS r(message_id, receipt_handle, body, md5_of_body, attributes, message_attributes, ord)
  JOIN msgq_test.bodies b ON b.i = r.ord
 ORDER BY b.i;
SELECT b.i, r.body = b.b AS same_body
  FROM msgq.receive_message('r_body', max_number_of_messages => 10) WITH ORDINALITY AS r(message_id, receipt_handle, body, md5_of_body, attributes, message_attributes, ord)
  JOIN msgq_test.bodies b ON b.i = r.ord + 10
 ORDER BY b.i;
DROP TABLE msgq_test.bodies;

-- size: body plus attribute names, types and values, against MaximumMessageSize
SELECT msgq.create_queue('r_small', '{"MaximumMessageSize": 1024}');
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('1024 ascii', $$SELECT msgq.send_message('r_small', repeat('x', 1024))$$),
	('1025 ascii', $$SELECT msgq.send_message('r_small', repeat('x', 1025))$$),
	('512 two-byte chars', $$SELECT msgq.send_message('r_small', repeat('é', 512))$$),
	('513 two-byte chars', $$SELECT msgq.send_message('r_small', repeat('é', 513))$$),
	('1000 + 1+6+17', $$SELECT msgq.send_message('r_small', repeat('x', 1000),
		message_attributes => jsonb_build_object('n', jsonb_build_object('DataType', 'String', 'StringValue', repeat('v', 17)))::json)$$),
	('1000 + 1+6+18', $$SELECT msgq.send_message('r_small', repeat('x', 1000),
		message_attributes => jsonb_build_object('n', jsonb_build_object('DataType', 'String', 'StringValue', repeat('v', 18)))::json)$$),
	('999 + 1+6+18 binary', $$SELECT msgq.send_message('r_small', repeat('x', 999),
		message_attributes => jsonb_build_object('b', jsonb_build_object('DataType', 'Binary', 'BinaryValue', encode(decode(repeat('ff', 18), 'hex'), 'base64')))::json)$$),
	('1000 + 1+6+18 binary', $$SELECT msgq.send_message('r_small', repeat('x', 1000),
		message_attributes => jsonb_build_object('b', jsonb_build_object('DataType', 'Binary', 'BinaryValue', encode(decode(repeat('ff', 18), 'hex'), 'base64')))::json)$$)
	) AS t(f, s);
SELECT msgq_test.stored('r_small');
-- the default maximum is 1 MiB
SELECT msgq_test.err($$SELECT msgq.send_message('r_body', repeat('x', 1048576))$$);
SELECT msgq_test.err($$SELECT msgq.send_message('r_body', repeat('x', 1048577))$$);
SELECT length(body) FROM msgq.receive_message('r_body');

--
-- Message attributes: MD5, types, selection
--
SELECT msgq.create_queue('r_attr');
-- msgq_test.attr_md5 reproduces published reference digests
SELECT msgq_test.attr_md5('{"SellerName": {"DataType": "String", "StringValue": "Example Store"}}') = 'cd28f3b68aeee4b2eac9c66f2f694b58' AS ref1,
	   msgq_test.attr_md5('{"City": {"DataType": "String", "StringValue": "Any City"},
							"PostalCode": {"DataType": "String", "StringValue": "99065"},
							"PricePerGallon": {"DataType": "Number", "StringValue": "1.99"},
							"Region": {"DataType": "String", "StringValue": "WA"},
							"SellerName": {"DataType": "String", "StringValue": "Example Store"}}') = '10809b55e3d9b22c17220b7dbaf283ef' AS ref2,
	   msgq_test.attr_md5('{"test_attribute_name_2": {"DataType": "String", "StringValue": "test_attribute_value_2"},
							"test_attribute_name_1": {"DataType": "String", "StringValue": "test_attribute_value_1"}}') = 'd53f3b558fe951154770f25cb63dbba9' AS ref3,
	   msgq_test.attr_md5('{"test_attribute_name": {"DataType": "Binary", "BinaryValue": "dGVzdF9hdHRyaWJ1dGVfdmFsdWU="}}') = '23f6bd27ea87aab7dfeadcc9aebee495' AS ref4;
-- and so does msgq
SELECT md5_of_message_attributes FROM msgq.send_message('r_attr', 'ref1',
	message_attributes => '{"SellerName": {"DataType": "String", "StringValue": "Example Store"}}');
SELECT md5_of_message_attributes FROM msgq.send_message('r_attr', 'ref2',
	message_attributes => '{"City": {"DataType": "String", "StringValue": "Any City"},
							"PostalCode": {"DataType": "String", "StringValue": "99065"},
							"PricePerGallon": {"DataType": "Number", "StringValue": "1.99"},
							"Region": {"DataType": "String", "StringValue": "WA"},
							"SellerName": {"DataType": "String", "StringValue": "Example Store"}}');
SELECT md5_of_message_attributes FROM msgq.send_message('r_attr', 'ref3',
	message_attributes => '{"test_attribute_name_2": {"DataType": "String", "StringValue": "test_attribute_value_2"},
							"test_attribute_name_1": {"DataType": "String", "StringValue": "test_attribute_value_1"}}');
SELECT md5_of_message_attributes FROM msgq.send_message('r_attr', 'ref4',
	message_attributes => '{"test_attribute_name": {"DataType": "Binary", "BinaryValue": "dGVzdF9hdHRyaWJ1dGVfdmFsdWU="}}');
SELECT count(*) FROM msgq.receive_message('r_attr', max_number_of_messages => 10) r,
	LATERAL msgq.delete_message('r_attr', r.receipt_handle);

-- every type, custom type labels, multi-byte values, names given out of
-- order and of different lengths (jsonb keeps keys shortest first; AWS
-- sorts by name)
CREATE TABLE msgq_test.attrs AS SELECT '{
	"zeta": {"DataType": "String", "StringValue": "last by name"},
	"a": {"DataType": "Number", "StringValue": "42"},
	"Bin": {"DataType": "Binary", "BinaryValue": "AAH/"},
	"mid.name": {"DataType": "String.custom", "StringValue": "custom type"},
	"aa": {"DataType": "String", "StringValue": "héllo wörld ✓"},
	"b.gif": {"DataType": "Binary.gif", "BinaryValue": "R0lGODlh"},
	"n-2": {"DataType": "Number.float", "StringValue": "-1.5E+10"},
	"B": {"DataType": "String", "StringValue": "upper case sorts first"}
}'::jsonb AS a;
SELECT s.md5_of_message_attributes = msgq_test.attr_md5(t.a) AS attr_md5_ok,
	   s.md5_of_message_body = md5('typed') AS body_md5_ok
  FROM msgq_test.attrs t, msgq.send_message('r_attr', 'typed', message_attributes => t.a::json) s;
-- (jsonb's key order is not the name order msgq must sort by)
SELECT array(SELECT jsonb_object_keys(a)) AS jsonb_order,
	   array(SELECT k FROM jsonb_object_keys(a) k ORDER BY k COLLATE "C") AS name_order
  FROM msgq_test.attrs;
SELECT r.message_attributes = t.a AS attributes_round_trip, r.body
  FROM msgq_test.attrs t, msgq.receive_message('r_attr', visibility_timeout => 0) r;
DROP TABLE msgq_test.attrs;
SELECT count(*) FROM msgq.receive_message('r_attr') r,
	LATERAL msgq.delete_message('r_attr', r.receipt_handle);

-- an empty object means no attributes
SELECT md5_of_message_attributes IS NULL AS no_md5
  FROM msgq.send_message('r_attr', 'empty attributes', message_attributes => '{}');
SELECT message_attributes IS NULL AS none FROM msgq.receive_message('r_attr');

-- selection by name: All, .*, prefix.*, exact names; none gives NULL
SELECT md5_of_message_attributes IS NOT NULL FROM msgq.send_message('r_attr', 'select', message_attributes => '{
	"bar.x": {"DataType": "String", "StringValue": "1"},
	"bar.y": {"DataType": "Number", "StringValue": "2"},
	"barx": {"DataType": "String", "StringValue": "3"},
	"foo": {"DataType": "String", "StringValue": "4"},
	"Foo": {"DataType": "String", "StringValue": "5"}}');
SELECT sel, (SELECT array_agg(k ORDER BY k COLLATE "C") FROM jsonb_object_keys(r.message_attributes) k) AS names,
	   r.message_attributes IS NULL AS is_null
  FROM (VALUES (1, '{All}'::text[]), (2, '{.*}'), (3, '{bar.*}'), (4, '{foo}'),
			   (5, '{foo,bar.x}'), (6, '{Foo,foo,barx}'), (7, '{FOO}'), (8, '{nothing}'),
			   (9, '{b.*}'), (10, '{}'), (11, NULL), (12, '{bar.*,All}')) AS v(i, sel),
	   LATERAL msgq.receive_message('r_attr', visibility_timeout => 0,
									message_attribute_names => v.sel) AS r
 ORDER BY v.i;
-- selected attributes keep their values
SELECT r.message_attributes
  FROM msgq.receive_message('r_attr', visibility_timeout => 0,
							message_attribute_names => '{bar.*}') AS r;

-- system attribute selection
SELECT sel, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(r.attributes) k) AS names
  FROM (VALUES (1, '{All}'::text[]), (2, '{SenderId}'),
			   (3, '{ApproximateReceiveCount,SentTimestamp}'),
			   (4, '{ApproximateFirstReceiveTimestamp}'), (5, '{MessageGroupId}'),
			   (6, '{AWSTraceHeader}'), (7, '{}'), (8, NULL)) AS v(i, sel),
	   LATERAL msgq.receive_message('r_attr', visibility_timeout => 0,
									message_system_attribute_names => v.sel) AS r
 ORDER BY v.i;
SELECT count(*) FROM msgq.receive_message('r_attr') r,
	LATERAL msgq.delete_message('r_attr', r.receipt_handle);

-- attribute validation
SELECT f, msgq_test.err(format('SELECT msgq.send_message(%L, %L, message_attributes => %L::json)', 'r_attr', 'x', a)) AS result
  FROM (VALUES
	('10 attributes', (SELECT jsonb_object_agg('a' || i, jsonb_build_object('DataType', 'String', 'StringValue', 'v')) FROM generate_series(1, 10) i)),
	('11 attributes', (SELECT jsonb_object_agg('a' || i, jsonb_build_object('DataType', 'String', 'StringValue', 'v')) FROM generate_series(1, 11) i)),
	('name 256', jsonb_build_object(repeat('n', 256), '{"DataType": "String", "StringValue": "v"}'::jsonb)),
	('name 257', jsonb_build_object(repeat('n', 257), '{"DataType": "String", "StringValue": "v"}'::jsonb)),
	('name empty', '{"": {"DataType": "String", "StringValue": "v"}}'),
	('name space', '{"bad name": {"DataType": "String", "StringValue": "v"}}'),
	('name slash', '{"bad/name": {"DataType": "String", "StringValue": "v"}}'),
	('name leading dot', '{".lead": {"DataType": "String", "StringValue": "v"}}'),
	('name trailing dot', '{"trail.": {"DataType": "String", "StringValue": "v"}}'),
	('name double dot', '{"a..b": {"DataType": "String", "StringValue": "v"}}'),
	('name AWS.', '{"AWS.x": {"DataType": "String", "StringValue": "v"}}'),
	('name aws.', '{"aws.x": {"DataType": "String", "StringValue": "v"}}'),
	('name Amazon.', '{"Amazon.x": {"DataType": "String", "StringValue": "v"}}'),
	('name AMAZON.', '{"AMAZON.x": {"DataType": "String", "StringValue": "v"}}'),
	('name AWSx', '{"AWSx": {"DataType": "String", "StringValue": "v"}}'),
	('name a.b-c_D9', '{"a.b-c_D9": {"DataType": "String", "StringValue": "v"}}'),
	('value not an object', '{"a": "v"}'),
	('no DataType', '{"a": {"StringValue": "v"}}'),
	('DataType empty', '{"a": {"DataType": "", "StringValue": "v"}}'),
	('DataType lower case', '{"a": {"DataType": "string", "StringValue": "v"}}'),
	('DataType Str', '{"a": {"DataType": "Str", "StringValue": "v"}}'),
	('DataType Integer', '{"a": {"DataType": "Integer", "StringValue": "1"}}'),
	('DataType String.', '{"a": {"DataType": "String.", "StringValue": "v"}}'),
	('DataType 256', jsonb_build_object('a', jsonb_build_object('DataType', 'String.' || repeat('t', 249), 'StringValue', 'v'))),
	('DataType 257', jsonb_build_object('a', jsonb_build_object('DataType', 'String.' || repeat('t', 250), 'StringValue', 'v'))),
	('String empty', '{"a": {"DataType": "String", "StringValue": ""}}'),
	('String missing', '{"a": {"DataType": "String"}}'),
	('String as BinaryValue', '{"a": {"DataType": "String", "BinaryValue": "AAH/"}}'),
	('Number empty', '{"a": {"DataType": "Number", "StringValue": ""}}'),
	('Binary empty', '{"a": {"DataType": "Binary", "BinaryValue": ""}}'),
	('Binary missing', '{"a": {"DataType": "Binary", "StringValue": "AAH/"}}'),
	('Binary bad base64', '{"a": {"DataType": "Binary", "BinaryValue": "not base64!"}}'),
	('attributes array', '[]'),
	('attributes scalar', '"a"')
	) AS t(f, a);
-- numbers: up to 38 significant digits (leading and trailing zeros do not
-- count), magnitude from 10^-128 to 10^+126; only the SQLSTATE is shown
SELECT v, split_part(msgq_test.err(format('SELECT msgq.send_message(%L, %L, message_attributes => %L::json)', 'r_attr', 'x',
							   jsonb_build_object('n', jsonb_build_object('DataType', 'Number', 'StringValue', v)))), ':', 1) AS result
  FROM unnest(ARRAY['0', '-1.5', '+3', '.5', '5.', '1e10', '1E-5', '00012', '-0',
					repeat('9', 38), '0.' || repeat('0', 20) || repeat('9', 38),
					repeat('9', 39), '1' || repeat('0', 38),
					'abc', '1.2.3', '1e', '--1', '1-', '.', 'e5', '0x10', ' 1', '1 ',
					'NaN', 'Infinity', '1e100', '-1e-100', '1e200', '-1e200', '1e-200']) AS v;
-- a String value follows the body's character rules
SELECT msgq_test.err($$SELECT msgq.send_message('r_attr', 'x', message_attributes =>
	jsonb_build_object('s', jsonb_build_object('DataType', 'String', 'StringValue', 'a' || chr(1))))$$) <> 'ok' AS refused;
SELECT count(*) FROM msgq.receive_message('r_attr', max_number_of_messages => 10) r,
	LATERAL msgq.delete_message('r_attr', r.receipt_handle);

--
-- MessageGroupId (accepted on standard queues), MessageDeduplicationId (not)
--
SELECT msgq.create_queue('r_group');
SELECT md5_of_message_body = md5('grouped') AS ok, sequence_number IS NULL AS no_sequence_number
  FROM msgq.send_message('r_group', 'grouped', message_group_id => 'grp-1');
SELECT attributes->>'MessageGroupId' AS group_id,
	   (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(attributes) k) AS names
  FROM msgq.receive_message('r_group', visibility_timeout => 0);
SELECT attributes FROM msgq.receive_message('r_group', visibility_timeout => 0,
											message_system_attribute_names => '{MessageGroupId}');
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('group 128', $$SELECT msgq.send_message('r_group', 'g', message_group_id => repeat('g', 128))$$),
	('group punctuation', $$SELECT msgq.send_message('r_group', 'g', message_group_id => '!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~')$$),
	('group 129', $$SELECT msgq.send_message('r_group', 'g', message_group_id => repeat('g', 129))$$),
	('group empty', $$SELECT msgq.send_message('r_group', 'g', message_group_id => '')$$),
	('group space', $$SELECT msgq.send_message('r_group', 'g', message_group_id => 'has space')$$),
	('group non-ascii', $$SELECT msgq.send_message('r_group', 'g', message_group_id => 'grü')$$),
	('dedup id', $$SELECT msgq.send_message('r_group', 'g', message_deduplication_id => 'd1')$$),
	('dedup id with group', $$SELECT msgq.send_message('r_group', 'g', message_group_id => 'g', message_deduplication_id => 'd1')$$)
	) AS t(f, s);
SELECT msgq_test.stored('r_group');

--
-- Transactions
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('r_tx');
-- a rolled-back send never existed
BEGIN;
SELECT md5_of_message_body = md5('rolled back') AS sent FROM msgq.send_message('r_tx', 'rolled back');
ROLLBACK;
SELECT * FROM msgq_test.recv('t0', 'r_tx');
SELECT msgq_test.stored('r_tx');
SELECT md5_of_message_body = md5('tx') AS sent FROM msgq.send_message('r_tx', 'tx');
-- a rolled-back receive: visible again at once, and it still counts
BEGIN;
SELECT * FROM msgq_test.recv('t1', 'r_tx');
ROLLBACK;
SELECT * FROM msgq_test.recv('t2', 'r_tx', p_vt => 0);
-- the same with a savepoint, receiving again in the same transaction
BEGIN;
SAVEPOINT a;
SELECT * FROM msgq_test.recv('t3', 'r_tx');
ROLLBACK TO SAVEPOINT a;
SELECT * FROM msgq_test.recv('t4', 'r_tx', p_vt => 0);
COMMIT;
SELECT * FROM msgq_test.recv('t5', 'r_tx', p_vt => 0);
-- receive and delete, then roll back: the message is back
BEGIN;
SELECT * FROM msgq_test.recv('t6', 'r_tx');
SELECT msgq.delete_message('r_tx', msgq_test.h('t6'));
ROLLBACK;
SELECT * FROM msgq_test.recv('t7', 'r_tx', p_vt => 0);
-- two rolled-back receives before the next one both count
BEGIN;
SELECT * FROM msgq_test.recv('t8', 'r_tx');
ROLLBACK;
BEGIN;
SELECT * FROM msgq_test.recv('t9', 'r_tx');
ROLLBACK;
SELECT * FROM msgq_test.recv('t10', 'r_tx', p_vt => 0);
-- a released savepoint commits with its transaction, or rolls back with it
BEGIN;
SAVEPOINT b;
SELECT * FROM msgq_test.recv('t11', 'r_tx', p_vt => 0);
RELEASE SAVEPOINT b;
ROLLBACK;
SELECT * FROM msgq_test.recv('t12', 'r_tx', p_vt => 0);
BEGIN;
SAVEPOINT c;
SELECT * FROM msgq_test.recv('t13', 'r_tx');
RELEASE SAVEPOINT c;
COMMIT;
SELECT * FROM msgq_test.recv('t14', 'r_tx');
-- change_message_visibility rolls back too
SELECT msgq.change_message_visibility('r_tx', msgq_test.h('t13'), 0);
SELECT * FROM msgq_test.recv('t15', 'r_tx');
BEGIN;
SELECT msgq.change_message_visibility('r_tx', msgq_test.h('t15'), 0);
ROLLBACK;
SELECT * FROM msgq_test.recv('t16', 'r_tx');
-- a failed statement after a receive in the same subtransaction undoes the receive
SELECT msgq.change_message_visibility('r_tx', msgq_test.h('t15'), 0);
SELECT msgq_test.err($$SELECT r.body, 1/0 FROM msgq.receive_message('r_tx') r$$);
SELECT * FROM msgq_test.recv('t17', 'r_tx');
SELECT msgq.delete_message('r_tx', msgq_test.h('t17'));
SELECT msgq_test.stored('r_tx');

-- PREPARE TRANSACTION is refused after a send or a receive
SELECT md5_of_message_body = md5('prepared') AS sent FROM msgq.send_message('r_tx', 'prepared');
BEGIN;
SELECT md5_of_message_body = md5('not prepared') AS sent FROM msgq.send_message('r_tx', 'not prepared');
PREPARE TRANSACTION 'msgq_send';
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT * FROM msgq_test.recv('p1', 'r_tx');
PREPARE TRANSACTION 'msgq_receive';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_prepared_xacts;
-- neither happened, and the refused receive still counts
SELECT * FROM msgq_test.recv('p2', 'r_tx', 10);
SELECT msgq.delete_message('r_tx', msgq_test.h('p2'));

--
-- Long polling (short cases only; wake-ups are tested elsewhere)
--
SELECT msgq.create_queue('r_poll');
SELECT msgq.create_queue('r_poll_default', '{"ReceiveMessageWaitTimeSeconds": 1}');
-- an empty queue: an empty result after the wait
SELECT clock_timestamp() AS poll_start \gset
SELECT count(*) FROM msgq.receive_message('r_poll', wait_time_seconds => 1);
SELECT clock_timestamp() - :'poll_start'::timestamptz >= interval '1 s' AS waited;
-- a shorter statement_timeout: empty, before the timeout, without error
SET statement_timeout = '300ms';
SELECT count(*) FROM msgq.receive_message('r_poll', wait_time_seconds => 5);
RESET statement_timeout;
-- a message is there: no wait
SELECT md5_of_message_body = md5('poll') AS sent FROM msgq.send_message('r_poll', 'poll');
SELECT clock_timestamp() AS poll_start \gset
SELECT body FROM msgq.receive_message('r_poll', wait_time_seconds => 20);
SELECT clock_timestamp() - :'poll_start'::timestamptz < interval '5 s' AS returned_at_once;
-- nobody is waiting now
SELECT count(*) FROM msgq.waiters;
-- waiting needs READ COMMITTED; the queue's ReceiveMessageWaitTimeSeconds counts
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT msgq_test.err($$SELECT msgq.receive_message('r_poll', wait_time_seconds => 1)$$);
SELECT msgq_test.err($$SELECT msgq.receive_message('r_poll_default')$$);
SELECT msgq_test.err($$SELECT msgq.receive_message('r_poll_default', wait_time_seconds => 0)$$);
SELECT msgq_test.err($$SELECT msgq.receive_message('r_poll', wait_time_seconds => 0)$$);
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT msgq_test.err($$SELECT msgq.receive_message('r_poll', wait_time_seconds => 1)$$);
COMMIT;

--
-- Receipt handles carry HMAC-SHA256 (RFC 2104) over the database oid and
-- their first 20 bytes, keyed with msgq.secret (handle.c computes it with
-- precomputed key states): check it against SQL's sha256()
--
CREATE FUNCTION msgq_test.hmac_sha256(k bytea, m bytea) RETURNS bytea
LANGUAGE sql AS $$
  WITH p AS (SELECT k || decode(repeat('00', 64 - length(k)), 'hex') AS kp)
  SELECT sha256(decode(string_agg(lpad(to_hex(get_byte(kp, i) # 92), 2, '0'), '' ORDER BY i), 'hex')
         || sha256(decode(string_agg(lpad(to_hex(get_byte(kp, i) # 54), 2, '0'), '' ORDER BY i), 'hex') || m))
    FROM p, generate_series(0, 63) i $$;
-- RFC 4231, test case 2
SELECT encode(msgq_test.hmac_sha256('Jefe', 'what do ya want for nothing?'), 'hex') AS rfc4231_2;
SELECT msgq.create_queue('r_mac') IS NOT NULL AS created;
SELECT count(*) AS sent FROM generate_series(1, 20) i, msgq.send_message('r_mac', 'm' || i);
WITH r AS (SELECT decode(translate(receipt_handle, '-_', '+/'), 'base64') AS raw
             FROM generate_series(1, 2), msgq.receive_message('r_mac', 10))
SELECT count(*) AS handles,
       count(*) FILTER (WHERE substr(raw, 21, 16) = substr(msgq_test.hmac_sha256(
           (SELECT receipt_key FROM msgq.secret),
           int4send((SELECT oid FROM pg_database WHERE datname = current_database())::int)
           || substr(raw, 1, 20)), 1, 16)) AS macs_ok
  FROM r;
DROP FUNCTION msgq_test.hmac_sha256;

--
-- Maintenance runs
--
SELECT msgq.run_maintenance();

-- clean up
RESET msgq.clock_offset;
SELECT count(*) AS deleted FROM msgq.list_queues('r_') AS q, LATERAL msgq.delete_queue(q);
SELECT * FROM msgq.list_queues('r_');
SELECT count(*) AS messages_left FROM msgq.message;
DROP TABLE msgq_test.got, msgq_test.sent;
DROP FUNCTION msgq_test.recv, msgq_test.h, msgq_test.stored, msgq_test.now_ms,
	msgq_test.attr_md5;
