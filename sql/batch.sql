--
-- batch: send_message_batch, delete_message_batch,
-- change_message_visibility_batch: one row per entry in entry order,
-- per-entry failures that do not stop the other entries, whole-request
-- errors that stop everything, MD5s, transactions, privileges; and the
-- maintenance cycle's MessageRetentionPeriod.
--
-- Time rules are driven by msgq.clock_offset, never by sleeping; each timed
-- section starts from offset 0 on fresh queues.  Queue names here all start
-- with "b_" (never created twice), roles with "regress_msgq_b_".
--

-- the extension and msgq_test.err() come from queue.sql; made again here so
-- this file can run alone
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

-- Batch results and received messages are kept under a tag, so that later
-- statements can compare them and use receipt handles without printing them.
CREATE TABLE msgq_test.b_sent (
	tag text,
	ord bigint,
	id text,
	message_id uuid,
	md5_of_message_body text,
	md5_of_message_attributes text,
	sequence_number numeric,
	error_code text,
	error_message text,
	sender_fault boolean);

CREATE TABLE msgq_test.b_got (
	tag text,
	message_id uuid,
	receipt_handle text,
	body text,
	md5_of_body text,
	attributes jsonb,
	message_attributes jsonb,
	ord bigint);

-- send_message_batch, remember the rows under tag, show their stable part
CREATE FUNCTION msgq_test.b_send(p_tag text, p_queue text, p_entries jsonb)
RETURNS TABLE (ord bigint, id text, sent boolean, error_code text,
			   error_message text, sender_fault boolean)
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM msgq_test.b_sent s WHERE s.tag = p_tag;
	INSERT INTO msgq_test.b_sent
	SELECT p_tag, r.ordinality, r.id, r.message_id, r.md5_of_message_body,
		   r.md5_of_message_attributes, r.sequence_number, r.error_code,
		   r.error_message, r.sender_fault
	  FROM msgq.send_message_batch(p_queue, p_entries::json) WITH ORDINALITY AS r;
	RETURN QUERY
	SELECT s.ord, s.id, s.message_id IS NOT NULL, s.error_code, s.error_message,
		   s.sender_fault
	  FROM msgq_test.b_sent s WHERE s.tag = p_tag ORDER BY s.ord;
END
$$;

-- receive, remember under tag, show position, body and receive count
CREATE FUNCTION msgq_test.b_recv(p_tag text, p_queue text, p_max int DEFAULT 1,
								 p_vt int DEFAULT NULL)
RETURNS TABLE (ord bigint, body text, receive_count int)
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM msgq_test.b_got g WHERE g.tag = p_tag;
	INSERT INTO msgq_test.b_got
	SELECT p_tag, r.*
	  FROM msgq.receive_message(p_queue, max_number_of_messages => p_max,
								visibility_timeout => p_vt) WITH ORDINALITY AS r;
	RETURN QUERY
	SELECT g.ord, g.body, (g.attributes->>'ApproximateReceiveCount')::int
	  FROM msgq_test.b_got g WHERE g.tag = p_tag ORDER BY g.ord;
END
$$;

-- the receipt handle of the n-th message received under a tag
CREATE FUNCTION msgq_test.b_h(p_tag text, p_ord int DEFAULT 1) RETURNS text
LANGUAGE sql AS $$
	SELECT receipt_handle FROM msgq_test.b_got WHERE tag = p_tag AND ord = p_ord
$$;

-- the same handle with its first character changed: well-formed, not minted
CREATE FUNCTION msgq_test.b_forged(p_handle text) RETURNS text
LANGUAGE sql AS $$
	SELECT overlay(p_handle PLACING CASE WHEN left(p_handle, 1) = 'A' THEN 'B' ELSE 'A' END
				   FROM 1 FOR 1)
$$;

-- the number of stored messages of a queue (deleted ones are gone)
CREATE FUNCTION msgq_test.b_stored(p_queue text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id)
	 WHERE q.queue_name = p_queue
$$;

-- MD5OfMessageAttributes, computed independently of msgq (as in receive.sql)
CREATE FUNCTION msgq_test.b_attr_md5(attrs jsonb) RETURNS text
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
-- send_message_batch: one row per entry, in entry order; the messages are
-- stored in entry order
--
SELECT msgq.create_queue('b_send');
CREATE TABLE msgq_test.b_entries AS SELECT '[
	{"Id": "first", "MessageBody": "one"},
	{"Id": "Second-2", "MessageBody": "two", "MessageAttributes": {
		"zeta": {"DataType": "String", "StringValue": "last by name"},
		"a": {"DataType": "Number", "StringValue": "42"},
		"Bin": {"DataType": "Binary", "BinaryValue": "AAH/"},
		"aa": {"DataType": "String.custom", "StringValue": "héllo wörld ✓"}}},
	{"Id": "third_3", "MessageBody": "three", "MessageGroupId": "grp-1"},
	{"Id": "4", "MessageBody": "héllo wörld ✓ 😀", "DelaySeconds": 0, "MessageAttributes": {}},
	{"Id": "five", "MessageBody": "<xml attr=\"&amp;\"/>", "MessageAttributes": null,
	 "MessageGroupId": null, "MessageDeduplicationId": null, "DelaySeconds": null}
]'::jsonb AS e;
SELECT * FROM msgq_test.b_send('s', 'b_send', (SELECT e FROM msgq_test.b_entries));
-- MD5OfMessageBody is md5(body); MD5OfMessageAttributes is AWS's digest of
-- the entry's attributes, NULL without attributes; no SequenceNumber on a
-- standard queue; fresh version-4 UUIDs
SELECT s.ord, s.id = e.value->>'Id' AS same_id,
	   s.md5_of_message_body = md5(e.value->>'MessageBody') AS body_md5_ok,
	   CASE WHEN jsonb_typeof(e.value->'MessageAttributes') = 'object'
				 AND e.value->'MessageAttributes' <> '{}'
			THEN s.md5_of_message_attributes = msgq_test.b_attr_md5(e.value->'MessageAttributes')
			ELSE s.md5_of_message_attributes IS NULL END AS attr_md5_ok,
	   s.sequence_number IS NULL AS no_sequence_number,
	   substr(s.message_id::text, 15, 1) = '4' AS uuid_v4
  FROM msgq_test.b_sent s, msgq_test.b_entries t,
	   jsonb_array_elements(t.e) WITH ORDINALITY AS e(value, ord)
 WHERE s.tag = 's' AND e.ord = s.ord
 ORDER BY s.ord;
SELECT count(DISTINCT message_id) AS distinct_ids FROM msgq_test.b_sent WHERE tag = 's';
SELECT msgq_test.b_stored('b_send');
-- received in entry order, as sent: same ids, bodies, MD5s and attributes
SELECT * FROM msgq_test.b_recv('r', 'b_send', 10);
SELECT g.ord, g.message_id = s.message_id AS same_id,
	   g.body = e.value->>'MessageBody' AS same_body,
	   g.md5_of_body = s.md5_of_message_body AS same_md5,
	   g.message_attributes IS NOT DISTINCT FROM
		 CASE WHEN e.value->'MessageAttributes' IN ('{}', 'null') THEN NULL
			  ELSE e.value->'MessageAttributes' END AS same_attributes,
	   g.attributes->>'MessageGroupId' AS group_id,
	   g.attributes->>'SenderId' = current_user AS sender_ok
  FROM msgq_test.b_got g
  JOIN msgq_test.b_sent s ON s.tag = 's' AND s.ord = g.ord
  CROSS JOIN msgq_test.b_entries t
  CROSS JOIN LATERAL jsonb_array_elements(t.e) WITH ORDINALITY AS e(value, ord)
 WHERE g.tag = 'r' AND e.ord = g.ord
 ORDER BY g.ord;
DROP TABLE msgq_test.b_entries;
SELECT count(*) FROM msgq.delete_message_batch('b_send',
	(SELECT jsonb_agg(jsonb_build_object('Id', 'd' || ord, 'ReceiptHandle', receipt_handle))
	   FROM msgq_test.b_got WHERE tag = 'r')) AS d
 WHERE d.error_code IS NULL;
SELECT msgq_test.b_stored('b_send');

-- AWS's published attribute digests, one entry each
SELECT id, md5_of_message_attributes
  FROM msgq.send_message_batch('b_send', '[
	{"Id": "ref1", "MessageBody": "ref1", "MessageAttributes":
		{"SellerName": {"DataType": "String", "StringValue": "Example Store"}}},
	{"Id": "ref2", "MessageBody": "ref2", "MessageAttributes":
		{"City": {"DataType": "String", "StringValue": "Any City"},
		 "PostalCode": {"DataType": "String", "StringValue": "99065"},
		 "PricePerGallon": {"DataType": "Number", "StringValue": "1.99"},
		 "Region": {"DataType": "String", "StringValue": "WA"},
		 "SellerName": {"DataType": "String", "StringValue": "Example Store"}}},
	{"Id": "ref3", "MessageBody": "ref3", "MessageAttributes":
		{"test_attribute_name_2": {"DataType": "String", "StringValue": "test_attribute_value_2"},
		 "test_attribute_name_1": {"DataType": "String", "StringValue": "test_attribute_value_1"}}},
	{"Id": "ref4", "MessageBody": "ref4", "MessageAttributes":
		{"test_attribute_name": {"DataType": "Binary", "BinaryValue": "dGVzdF9hdHRyaWJ1dGVfdmFsdWU="}}}]');
SELECT count(*) FROM msgq.receive_message('b_send', max_number_of_messages => 10) r,
	LATERAL msgq.delete_message('b_send', r.receipt_handle);

-- a batch of one, and of ten
SELECT * FROM msgq_test.b_send('one', 'b_send', '[{"Id": "only", "MessageBody": "alone"}]');
SELECT count(*) AS sent FROM msgq.send_message_batch('b_send',
	(SELECT json_agg(json_build_object('Id', 'm' || i, 'MessageBody', 'ten ' || i) ORDER BY i)
	   FROM generate_series(1, 10) i)) AS s
 WHERE s.error_code IS NULL;
SELECT * FROM msgq_test.b_recv('ten', 'b_send', 10);
SELECT * FROM msgq_test.b_recv('ten2', 'b_send', 10);
SELECT g.tag, count(*) FROM unnest(ARRAY['ten', 'ten2']) AS g(tag),
	LATERAL msgq.delete_message_batch('b_send',
		(SELECT jsonb_agg(jsonb_build_object('Id', 'd' || ord, 'ReceiptHandle', receipt_handle))
		   FROM msgq_test.b_got WHERE tag = g.tag)) AS d
 WHERE d.error_code IS NULL GROUP BY g.tag ORDER BY g.tag;
SELECT msgq_test.b_stored('b_send');

--
-- send_message_batch: delays, the queue's DelaySeconds as the default
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('b_delay', '{"DelaySeconds": 10}');
SELECT * FROM msgq_test.b_send('d', 'b_delay', '[
	{"Id": "queue-default", "MessageBody": "queue default"},
	{"Id": "zero", "MessageBody": "zero", "DelaySeconds": 0},
	{"Id": "five", "MessageBody": "five", "DelaySeconds": 5},
	{"Id": "string-three", "MessageBody": "string three", "DelaySeconds": "3"},
	{"Id": "max", "MessageBody": "max", "DelaySeconds": 900}]');
SELECT * FROM msgq_test.b_recv('d0', 'b_delay', 10, 1000);
SET msgq.clock_offset = '2s';
SELECT * FROM msgq_test.b_recv('d2', 'b_delay', 10, 1000);
SET msgq.clock_offset = '4s';
SELECT * FROM msgq_test.b_recv('d4', 'b_delay', 10, 1000);
SET msgq.clock_offset = '6s';
SELECT * FROM msgq_test.b_recv('d6', 'b_delay', 10, 1000);
SET msgq.clock_offset = '11s';
SELECT * FROM msgq_test.b_recv('d11', 'b_delay', 10, 1000);
SET msgq.clock_offset = '899s';
SELECT * FROM msgq_test.b_recv('d899', 'b_delay', 10, 1000);
SET msgq.clock_offset = '901s';
SELECT * FROM msgq_test.b_recv('d901', 'b_delay', 10, 1000);

--
-- send_message_batch: per-entry failures; the other entries go through,
-- and only they are stored, in entry order
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('b_partial');
SELECT * FROM msgq_test.b_send('p1', 'b_partial', '[
	{"Id": "good-1", "MessageBody": "good 1"},
	{"Id": "no-body"},
	{"Id": "empty-body", "MessageBody": ""},
	{"Id": "null-body", "MessageBody": null},
	{"Id": "good-2", "MessageBody": "good 2", "DelaySeconds": 0},
	{"Id": "bad-chars", "MessageBody": "a\u0001b"},
	{"Id": "number-body", "MessageBody": 42},
	{"Id": "delay-901", "MessageBody": "x", "DelaySeconds": 901},
	{"Id": "delay-minus-1", "MessageBody": "x", "DelaySeconds": -1},
	{"Id": "good-3", "MessageBody": "good 3", "MessageGroupId": "g"}]');
SELECT * FROM msgq_test.b_send('p2', 'b_partial', '[
	{"Id": "delay-fraction", "MessageBody": "x", "DelaySeconds": 1.5},
	{"Id": "delay-word", "MessageBody": "x", "DelaySeconds": "soon"},
	{"Id": "dedup-id", "MessageBody": "x", "MessageDeduplicationId": "d1"},
	{"Id": "group-space", "MessageBody": "x", "MessageGroupId": "has space"},
	{"Id": "group-129", "MessageBody": "x", "MessageGroupId": "ggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg"},
	{"Id": "good-4", "MessageBody": "good 4", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
	{"Id": "attr-type", "MessageBody": "x", "MessageAttributes": {"k": {"DataType": "Str", "StringValue": "v"}}},
	{"Id": "attr-aws", "MessageBody": "x", "MessageAttributes": {"AWS.k": {"DataType": "String", "StringValue": "v"}}},
	{"Id": "attr-array", "MessageBody": "x", "MessageAttributes": []},
	{"Id": "attr-scalar", "MessageBody": "x", "MessageAttributes": "k"}]');
-- a failed entry has no result, a good one has no error
SELECT tag, count(*) FILTER (WHERE error_code IS NULL) AS good,
	   count(*) FILTER (WHERE error_code IS NULL AND message_id IS NOT NULL
						AND md5_of_message_body IS NOT NULL AND sender_fault IS NULL) AS good_complete,
	   count(*) FILTER (WHERE error_code IS NOT NULL) AS failed,
	   count(*) FILTER (WHERE error_code IS NOT NULL AND message_id IS NULL
						AND md5_of_message_body IS NULL AND md5_of_message_attributes IS NULL
						AND sequence_number IS NULL AND error_message IS NOT NULL
						AND sender_fault) AS failed_complete
  FROM msgq_test.b_sent WHERE tag IN ('p1', 'p2') GROUP BY tag ORDER BY tag;
SELECT msgq_test.b_stored('b_partial');
SELECT * FROM msgq_test.b_recv('p', 'b_partial', 10);
SELECT g.ord, g.message_id = s.message_id AS same_id, g.md5_of_body = s.md5_of_message_body AS same_md5
  FROM msgq_test.b_got g
  JOIN (SELECT row_number() OVER (ORDER BY tag, ord) AS n, *
		  FROM msgq_test.b_sent WHERE tag IN ('p1', 'p2') AND error_code IS NULL) s ON s.n = g.ord
 WHERE g.tag = 'p' ORDER BY g.ord;
-- the body size counts against the queue's MaximumMessageSize per entry
SELECT msgq.create_queue('b_small', '{"MaximumMessageSize": 1024}');
SELECT * FROM msgq_test.b_send('sm', 'b_small', jsonb_build_array(
	jsonb_build_object('Id', 'fits', 'MessageBody', repeat('x', 1024)),
	jsonb_build_object('Id', 'too-big', 'MessageBody', repeat('x', 1025)),
	jsonb_build_object('Id', 'too-big-with-attribute', 'MessageBody', repeat('x', 1000),
		'MessageAttributes', jsonb_build_object('n', jsonb_build_object('DataType', 'String', 'StringValue', repeat('v', 18)))),
	jsonb_build_object('Id', 'fits-with-attribute', 'MessageBody', repeat('x', 1000),
		'MessageAttributes', jsonb_build_object('n', jsonb_build_object('DataType', 'String', 'StringValue', repeat('v', 17))))));
SELECT msgq_test.b_stored('b_small');
-- entry ids are case-sensitive; 80 characters are allowed
SELECT * FROM msgq_test.b_send('ids', 'b_small', jsonb_build_array(
	jsonb_build_object('Id', 'a', 'MessageBody', 'lower'),
	jsonb_build_object('Id', 'A', 'MessageBody', 'upper'),
	jsonb_build_object('Id', repeat('Z', 80), 'MessageBody', 'long id')));
SELECT msgq_test.b_stored('b_small');

--
-- send_message_batch: whole-request errors fail the call and send nothing
--
SELECT msgq.create_queue('b_whole');
SELECT f, msgq_test.err(format('SELECT msgq.send_message_batch(%L, %L)', 'b_whole', e)) AS result
  FROM (VALUES
	('NULL', NULL),
	('empty array', '[]'),
	('object', '{"Id": "a", "MessageBody": "x"}'),
	('scalar', '"a"'),
	('11 entries', (SELECT jsonb_agg(jsonb_build_object('Id', 'e' || i, 'MessageBody', 'x')) FROM generate_series(1, 11) i)),
	('no Id', '[{"Id": "a", "MessageBody": "x"}, {"MessageBody": "x"}]'),
	('empty Id', '[{"Id": "", "MessageBody": "x"}]'),
	('null Id', '[{"Id": null, "MessageBody": "x"}]'),
	('number Id', '[{"Id": 1, "MessageBody": "x"}]'),
	('Id 81', jsonb_build_array(jsonb_build_object('Id', repeat('a', 81), 'MessageBody', 'x'))),
	('Id with dot', '[{"Id": "a.b", "MessageBody": "x"}]'),
	('Id with space', '[{"Id": "a b", "MessageBody": "x"}]'),
	('Id non-ascii', '[{"Id": "é", "MessageBody": "x"}]'),
	('entry not an object', '[{"Id": "a", "MessageBody": "x"}, "b"]'),
	('entry an array', '[[{"Id": "a", "MessageBody": "x"}]]'),
	('ids not distinct', '[{"Id": "a", "MessageBody": "x"}, {"Id": "b", "MessageBody": "y"}, {"Id": "a", "MessageBody": "z"}]'),
	-- each entry fits the queue's 1 MiB, together they do not
	('2 x 600000 bytes', jsonb_build_array(
		jsonb_build_object('Id', 'a', 'MessageBody', repeat('x', 600000)),
		jsonb_build_object('Id', 'b', 'MessageBody', repeat('x', 600000)))),
	-- attribute bytes count: 524288 + 524281 + 1 + 6 + 1 = 1048577
	('1048576 + 1 attribute byte', jsonb_build_array(
		jsonb_build_object('Id', 'a', 'MessageBody', repeat('x', 524288)),
		jsonb_build_object('Id', 'b', 'MessageBody', repeat('x', 524281),
			'MessageAttributes', jsonb_build_object('n', jsonb_build_object('DataType', 'String', 'StringValue', 'v'))))),
	-- the request counts, even where an entry would fail on its own
	('one entry of 1048577 bytes', jsonb_build_array(
		jsonb_build_object('Id', 'a', 'MessageBody', repeat('x', 1048577)))),
	('2 x 600000 bytes, one invalid', jsonb_build_array(
		jsonb_build_object('Id', 'a', 'MessageBody', repeat('x', 600000)),
		jsonb_build_object('Id', 'b', 'MessageBody', repeat('x', 599999) || chr(1))))
	) AS t(f, e);
SELECT f, msgq_test.err(format('SELECT msgq.send_message_batch(%L, %L)', q, '[{"Id": "a", "MessageBody": "x"}]')) AS result
  FROM (VALUES ('queue NULL', NULL), ('queue empty', ''), ('no such queue', 'b_no_such_queue')) AS t(f, q);
SELECT msgq_test.b_stored('b_whole');
-- exactly 1 MiB in all, attributes included, is fine
SELECT * FROM msgq_test.b_send('mib', 'b_whole', jsonb_build_array(
	jsonb_build_object('Id', 'a', 'MessageBody', repeat('x', 524288)),
	jsonb_build_object('Id', 'b', 'MessageBody', repeat('x', 524280),
		'MessageAttributes', jsonb_build_object('n', jsonb_build_object('DataType', 'String', 'StringValue', 'v')))));
SELECT length(body) FROM msgq.receive_message('b_whole', max_number_of_messages => 10);
-- the queue is reachable by URL and ARN as well
SELECT * FROM msgq_test.b_send('url', msgq.get_queue_url('b_whole'), '[{"Id": "url", "MessageBody": "by url"}]');
SELECT * FROM msgq_test.b_send('arn', 'arn:aws:sqs:region:000000000000:b_whole', '[{"Id": "arn", "MessageBody": "by arn"}]');
SELECT * FROM msgq_test.b_recv('ua', 'b_whole', 10);

--
-- send_message_batch in transactions
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('b_tx');
-- rolled back: nothing of the batch exists
BEGIN;
SELECT * FROM msgq_test.b_send('t1', 'b_tx', '[{"Id": "a", "MessageBody": "rolled back a"},
	{"Id": "b", "MessageBody": "rolled back b"}]');
ROLLBACK;
SELECT msgq_test.b_stored('b_tx');
SELECT * FROM msgq_test.b_recv('t1', 'b_tx', 10);
-- good and bad entries, then COMMIT: the per-entry failures did not abort
-- the transaction, and exactly the good entries exist
BEGIN;
SELECT * FROM msgq_test.b_send('t2', 'b_tx', '[{"Id": "a", "MessageBody": "committed a"},
	{"Id": "bad", "MessageBody": ""},
	{"Id": "b", "MessageBody": "committed b"},
	{"Id": "worse", "MessageBody": "x", "DelaySeconds": 1000},
	{"Id": "c", "MessageBody": "committed c"}]');
SELECT msgq_test.b_stored('b_tx');
COMMIT;
SELECT msgq_test.b_stored('b_tx');
SELECT * FROM msgq_test.b_recv('t2', 'b_tx', 10);
-- a batch rolled back to a savepoint goes, the one before it stays
BEGIN;
SELECT * FROM msgq_test.b_send('t3', 'b_tx', '[{"Id": "kept", "MessageBody": "kept"}]');
SAVEPOINT s;
SELECT * FROM msgq_test.b_send('t4', 'b_tx', '[{"Id": "undone", "MessageBody": "undone"}]');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT * FROM msgq_test.b_recv('t3', 'b_tx', 10);
-- a whole-request error aborts the transaction like any error
BEGIN;
SELECT * FROM msgq_test.b_send('t5', 'b_tx', '[{"Id": "lost", "MessageBody": "lost"}]');
SELECT * FROM msgq.send_message_batch('b_tx', '[]');
COMMIT;
SELECT msgq_test.b_stored('b_tx');
SELECT count(*) FROM msgq.delete_message_batch('b_tx',
	(SELECT jsonb_agg(jsonb_build_object('Id', tag || ord, 'ReceiptHandle', receipt_handle))
	   FROM msgq_test.b_got WHERE tag IN ('t2', 't3'))) AS d
 WHERE d.error_code IS NULL;
SELECT msgq_test.b_stored('b_tx');

--
-- delete_message_batch
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('b_del');
SELECT msgq.create_queue('b_del_other');
SELECT count(*) AS sent FROM msgq.send_message_batch('b_del',
	(SELECT json_agg(json_build_object('Id', 'm' || i, 'MessageBody', 'del ' || i) ORDER BY i)
	   FROM generate_series(1, 6) i)) AS s
 WHERE s.error_code IS NULL;
SELECT md5_of_message_body = md5('other') AS sent FROM msgq.send_message('b_del_other', 'other');
SELECT * FROM msgq_test.b_recv('x', 'b_del', 10);
SELECT * FROM msgq_test.b_recv('o', 'b_del_other');
-- good entries delete; bad ones get their error; one row per entry, in order
SELECT * FROM msgq.delete_message_batch('b_del', jsonb_build_array(
	jsonb_build_object('Id', 'first', 'ReceiptHandle', msgq_test.b_h('x', 1)),
	jsonb_build_object('Id', 'forged', 'ReceiptHandle', msgq_test.b_forged(msgq_test.b_h('x', 2))),
	jsonb_build_object('Id', 'second', 'ReceiptHandle', msgq_test.b_h('x', 2)),
	jsonb_build_object('Id', 'empty', 'ReceiptHandle', ''),
	jsonb_build_object('Id', 'missing'),
	jsonb_build_object('Id', 'null', 'ReceiptHandle', NULL),
	jsonb_build_object('Id', 'garbage', 'ReceiptHandle', 'garbage'),
	jsonb_build_object('Id', 'other-queue', 'ReceiptHandle', msgq_test.b_h('o', 1)),
	jsonb_build_object('Id', 'message-id', 'ReceiptHandle', (SELECT message_id::text FROM msgq_test.b_got WHERE tag = 'x' AND ord = 3))));
SELECT msgq_test.b_stored('b_del') AS stored, msgq_test.b_stored('b_del_other') AS other_stored;
-- deleting again with the same handles succeeds (idempotent); the same
-- handle twice in one batch is fine too
SELECT * FROM msgq.delete_message_batch('b_del', jsonb_build_array(
	jsonb_build_object('Id', 'again-1', 'ReceiptHandle', msgq_test.b_h('x', 1)),
	jsonb_build_object('Id', 'again-2', 'ReceiptHandle', msgq_test.b_h('x', 2)),
	jsonb_build_object('Id', 'third', 'ReceiptHandle', msgq_test.b_h('x', 3)),
	jsonb_build_object('Id', 'third-twice', 'ReceiptHandle', msgq_test.b_h('x', 3))));
SELECT msgq_test.b_stored('b_del');
-- a stale handle (the message was received again since) succeeds without
-- deleting; the latest handle deletes, even after its timeout expired
SELECT msgq.change_message_visibility('b_del', msgq_test.b_h('x', 4), 0);
SELECT * FROM msgq_test.b_recv('y', 'b_del', 1, 0);
SELECT * FROM msgq.delete_message_batch('b_del', jsonb_build_array(
	jsonb_build_object('Id', 'stale', 'ReceiptHandle', msgq_test.b_h('x', 4))));
SELECT msgq_test.b_stored('b_del');
SELECT * FROM msgq.delete_message_batch('b_del', jsonb_build_array(
	jsonb_build_object('Id', 'latest', 'ReceiptHandle', msgq_test.b_h('y', 1))));
SELECT msgq_test.b_stored('b_del');
-- rolled back: the messages are still there
BEGIN;
SELECT * FROM msgq.delete_message_batch('b_del', jsonb_build_array(
	jsonb_build_object('Id', 'five', 'ReceiptHandle', msgq_test.b_h('x', 5)),
	jsonb_build_object('Id', 'six', 'ReceiptHandle', msgq_test.b_h('x', 6))));
SELECT msgq_test.b_stored('b_del');
ROLLBACK;
SELECT msgq_test.b_stored('b_del');
-- whole-request errors delete nothing
SELECT f, msgq_test.err(format('SELECT msgq.delete_message_batch(%L, %L)', 'b_del', e)) AS result
  FROM (VALUES
	('NULL', NULL),
	('empty array', '[]'),
	('object', jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('x', 5))),
	('11 entries', (SELECT jsonb_agg(jsonb_build_object('Id', 'e' || i, 'ReceiptHandle', msgq_test.b_h('x', 5))) FROM generate_series(1, 11) i)),
	('no Id', jsonb_build_array(jsonb_build_object('ReceiptHandle', msgq_test.b_h('x', 5)))),
	('Id 81', jsonb_build_array(jsonb_build_object('Id', repeat('a', 81), 'ReceiptHandle', msgq_test.b_h('x', 5)))),
	('Id with dot', jsonb_build_array(jsonb_build_object('Id', 'a.b', 'ReceiptHandle', msgq_test.b_h('x', 5)))),
	('entry not an object', jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('x', 5)), 'b'::text)),
	('ids not distinct', jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('x', 5)),
										   jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('x', 6))))
	) AS t(f, e);
SELECT f, msgq_test.err(format('SELECT msgq.delete_message_batch(%L, %L)', q,
							   jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('x', 5))))) AS result
  FROM (VALUES ('queue NULL', NULL), ('queue empty', ''), ('no such queue', 'b_no_such_queue')) AS t(f, q);
SELECT msgq_test.b_stored('b_del');
SELECT * FROM msgq.delete_message_batch(msgq.get_queue_url('b_del'), jsonb_build_array(
	jsonb_build_object('Id', 'five', 'ReceiptHandle', msgq_test.b_h('x', 5)),
	jsonb_build_object('Id', 'six', 'ReceiptHandle', msgq_test.b_h('x', 6))));
SELECT msgq_test.b_stored('b_del');

--
-- change_message_visibility_batch
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('b_cmv');
SELECT count(*) AS sent FROM msgq.send_message_batch('b_cmv',
	(SELECT json_agg(json_build_object('Id', 'm' || i, 'MessageBody', 'cmv ' || i) ORDER BY i)
	   FROM generate_series(1, 4) i)) AS s
 WHERE s.error_code IS NULL;
SELECT * FROM msgq_test.b_recv('c', 'b_cmv', 10);
-- 0: visible at once; 100: counted from now; the others keep the
-- queue's 30 s; bad entries get their error and change nothing
SELECT * FROM msgq.change_message_visibility_batch('b_cmv', jsonb_build_array(
	jsonb_build_object('Id', 'zero', 'ReceiptHandle', msgq_test.b_h('c', 1), 'VisibilityTimeout', 0),
	jsonb_build_object('Id', 'hundred', 'ReceiptHandle', msgq_test.b_h('c', 2), 'VisibilityTimeout', 100),
	jsonb_build_object('Id', 'too-long', 'ReceiptHandle', msgq_test.b_h('c', 3), 'VisibilityTimeout', 43201),
	jsonb_build_object('Id', 'negative', 'ReceiptHandle', msgq_test.b_h('c', 3), 'VisibilityTimeout', -1),
	jsonb_build_object('Id', 'no-timeout', 'ReceiptHandle', msgq_test.b_h('c', 4)),
	jsonb_build_object('Id', 'null-timeout', 'ReceiptHandle', msgq_test.b_h('c', 4), 'VisibilityTimeout', NULL),
	jsonb_build_object('Id', 'word-timeout', 'ReceiptHandle', msgq_test.b_h('c', 4), 'VisibilityTimeout', 'soon'),
	jsonb_build_object('Id', 'forged', 'ReceiptHandle', msgq_test.b_forged(msgq_test.b_h('c', 4)), 'VisibilityTimeout', 0),
	jsonb_build_object('Id', 'empty-handle', 'ReceiptHandle', '', 'VisibilityTimeout', 0),
	jsonb_build_object('Id', 'no-handle', 'VisibilityTimeout', 0)));
-- (each receive from here on holds what it gets for 1000 s)
SELECT * FROM msgq_test.b_recv('c0', 'b_cmv', 10, 1000);
SET msgq.clock_offset = '29s';
SELECT * FROM msgq_test.b_recv('c29', 'b_cmv', 10, 1000);
SET msgq.clock_offset = '31s';
SELECT * FROM msgq_test.b_recv('c31', 'b_cmv', 10, 1000);
SET msgq.clock_offset = '99s';
SELECT * FROM msgq_test.b_recv('c99', 'b_cmv', 10, 1000);
SET msgq.clock_offset = '101s';
SELECT * FROM msgq_test.b_recv('c101', 'b_cmv', 10, 1000);
-- the numeric string form of VisibilityTimeout is accepted as well
SELECT * FROM msgq.change_message_visibility_batch('b_cmv', jsonb_build_array(
	jsonb_build_object('Id', 'cmv-2', 'ReceiptHandle', msgq_test.b_h('c101', 1), 'VisibilityTimeout', '0'),
	jsonb_build_object('Id', 'cmv-3', 'ReceiptHandle', msgq_test.b_h('c31', 1), 'VisibilityTimeout', 0),
	jsonb_build_object('Id', 'cmv-4', 'ReceiptHandle', msgq_test.b_h('c31', 2), 'VisibilityTimeout', 0)));
SELECT * FROM msgq_test.b_recv('c101b', 'b_cmv', 10, 0);

-- stale handles: on a visible message MessageNotInflight; on a message in
-- flight for a later receive InvalidParameterValue, without changing it;
-- the latest handle works although its timeout expired (as AWS records);
-- a deleted message: InvalidParameterValue
RESET msgq.clock_offset;
SELECT msgq.create_queue('b_cmv_stale');
SELECT count(*) AS sent FROM msgq.send_message_batch('b_cmv_stale',
	(SELECT json_agg(json_build_object('Id', 'm' || i, 'MessageBody', 'stale ' || i) ORDER BY i)
	   FROM generate_series(1, 4) i)) AS s
 WHERE s.error_code IS NULL;
SELECT * FROM msgq_test.b_recv('sa', 'b_cmv_stale', 10, 0);
SELECT * FROM msgq_test.b_recv('sb', 'b_cmv_stale', 2, 0);
SELECT * FROM msgq_test.b_recv('sc', 'b_cmv_stale', 1);
SELECT msgq.delete_message('b_cmv_stale', msgq_test.b_h('sa', 4));
SELECT * FROM msgq.change_message_visibility_batch('b_cmv_stale', jsonb_build_array(
	jsonb_build_object('Id', 'stale-in-flight', 'ReceiptHandle', msgq_test.b_h('sb', 1), 'VisibilityTimeout', 0),
	jsonb_build_object('Id', 'stale-visible', 'ReceiptHandle', msgq_test.b_h('sa', 2), 'VisibilityTimeout', 10),
	jsonb_build_object('Id', 'latest-expired', 'ReceiptHandle', msgq_test.b_h('sa', 3), 'VisibilityTimeout', 50),
	jsonb_build_object('Id', 'deleted', 'ReceiptHandle', msgq_test.b_h('sa', 4), 'VisibilityTimeout', 10),
	jsonb_build_object('Id', 'latest', 'ReceiptHandle', msgq_test.b_h('sc', 1), 'VisibilityTimeout', 40)));
-- stale 1 until 40 s, stale 2 visible, stale 3 until 50 s
SELECT * FROM msgq_test.b_recv('sd', 'b_cmv_stale', 10, 0);
SET msgq.clock_offset = '39s';
SELECT * FROM msgq_test.b_recv('se', 'b_cmv_stale', 10, 0);
SET msgq.clock_offset = '41s';
SELECT * FROM msgq_test.b_recv('sf', 'b_cmv_stale', 10, 0);
SET msgq.clock_offset = '51s';
SELECT * FROM msgq_test.b_recv('sg', 'b_cmv_stale', 10, 0);

-- rolled back: no change
RESET msgq.clock_offset;
SELECT msgq.create_queue('b_cmv_tx');
SELECT count(*) AS sent FROM msgq.send_message_batch('b_cmv_tx', '[{"Id": "a", "MessageBody": "tx a"}, {"Id": "b", "MessageBody": "tx b"}]') AS s
 WHERE s.error_code IS NULL;
SELECT * FROM msgq_test.b_recv('k', 'b_cmv_tx', 10);
BEGIN;
SELECT * FROM msgq.change_message_visibility_batch('b_cmv_tx', jsonb_build_array(
	jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('k', 1), 'VisibilityTimeout', 0),
	jsonb_build_object('Id', 'b', 'ReceiptHandle', msgq_test.b_h('k', 2), 'VisibilityTimeout', 0)));
ROLLBACK;
SELECT * FROM msgq_test.b_recv('k2', 'b_cmv_tx', 10);
-- committed with a failed entry among them: the good one changed
BEGIN;
SELECT * FROM msgq.change_message_visibility_batch('b_cmv_tx', jsonb_build_array(
	jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('k', 1), 'VisibilityTimeout', 0),
	jsonb_build_object('Id', 'bad', 'ReceiptHandle', msgq_test.b_h('k', 2), 'VisibilityTimeout', 50000)));
COMMIT;
SELECT * FROM msgq_test.b_recv('k3', 'b_cmv_tx', 10, 0);
-- the 12-hour limit counts from the receive
SELECT * FROM msgq_test.b_recv('l', 'b_cmv_tx', 1, 43200);
SET msgq.clock_offset = '3701s';
SELECT * FROM msgq.change_message_visibility_batch('b_cmv_tx', jsonb_build_array(
	jsonb_build_object('Id', 'beyond', 'ReceiptHandle', msgq_test.b_h('l', 1), 'VisibilityTimeout', 39501),
	jsonb_build_object('Id', 'max', 'ReceiptHandle', msgq_test.b_h('l', 1), 'VisibilityTimeout', 43200)));
SELECT * FROM msgq.change_message_visibility_batch('b_cmv_tx', jsonb_build_array(
	jsonb_build_object('Id', 'within', 'ReceiptHandle', msgq_test.b_h('l', 1), 'VisibilityTimeout', 39400)));
SET msgq.clock_offset = '43000s';
SELECT * FROM msgq_test.b_recv('l2', 'b_cmv_tx', 10, 0);
SET msgq.clock_offset = '43102s';
SELECT * FROM msgq_test.b_recv('l3', 'b_cmv_tx', 10, 0);
-- whole-request errors change nothing
RESET msgq.clock_offset;
SELECT * FROM msgq_test.b_recv('m', 'b_cmv_tx', 1);
SELECT f, msgq_test.err(format('SELECT msgq.change_message_visibility_batch(%L, %L)', 'b_cmv_tx', e)) AS result
  FROM (VALUES
	('NULL', NULL),
	('empty array', '[]'),
	('object', jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0)),
	('11 entries', (SELECT jsonb_agg(jsonb_build_object('Id', 'e' || i, 'ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0)) FROM generate_series(1, 11) i)),
	('no Id', jsonb_build_array(jsonb_build_object('ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0))),
	('Id 81', jsonb_build_array(jsonb_build_object('Id', repeat('a', 81), 'ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0))),
	('Id with slash', jsonb_build_array(jsonb_build_object('Id', 'a/b', 'ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0))),
	('entry not an object', jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0), 1)),
	('ids not distinct', jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0),
										   jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0)))
	) AS t(f, e);
SELECT f, msgq_test.err(format('SELECT msgq.change_message_visibility_batch(%L, %L)', q,
							   jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('m', 1), 'VisibilityTimeout', 0)))) AS result
  FROM (VALUES ('queue NULL', NULL), ('queue empty', ''), ('no such queue', 'b_no_such_queue')) AS t(f, q);
-- still in flight
SELECT * FROM msgq_test.b_recv('m2', 'b_cmv_tx', 10);

--
-- Privileges: SendMessage, DeleteMessage, ChangeMessageVisibility
--
RESET msgq.clock_offset;
CREATE ROLE regress_msgq_b_user;
SELECT msgq.create_queue('b_priv');
SELECT count(*) AS sent FROM msgq.send_message_batch('b_priv', '[{"Id": "a", "MessageBody": "priv a"}, {"Id": "b", "MessageBody": "priv b"}]') AS s
 WHERE s.error_code IS NULL;
SELECT * FROM msgq_test.b_recv('pv', 'b_priv', 10);
CREATE TABLE msgq_test.b_calls AS SELECT * FROM (VALUES
	('send batch', $$SELECT msgq.send_message_batch('b_priv', '[{"Id": "c", "MessageBody": "by user"}]')$$),
	('delete batch', format('SELECT msgq.delete_message_batch(%L, %L)', 'b_priv',
							jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', msgq_test.b_h('pv', 1))))),
	('change batch', format('SELECT msgq.change_message_visibility_batch(%L, %L)', 'b_priv',
							jsonb_build_array(jsonb_build_object('Id', 'b', 'ReceiptHandle', msgq_test.b_h('pv', 2), 'VisibilityTimeout', 0)))),
	-- refused before the request is looked at
	('empty send batch', $$SELECT msgq.send_message_batch('b_priv', '[]')$$),
	('empty delete batch', $$SELECT msgq.delete_message_batch('b_priv', '[]')$$),
	('empty change batch', $$SELECT msgq.change_message_visibility_batch('b_priv', '[]')$$)
	) AS t(f, s);
GRANT SELECT ON msgq_test.b_calls TO regress_msgq_b_user;
-- no right at all
SET ROLE regress_msgq_b_user;
SELECT f, msgq_test.err(s) AS result FROM msgq_test.b_calls;
RESET ROLE;
-- each batch needs the right of its single-message action, and only that
SELECT msgq.add_permission('b_priv', 'others', '{regress_msgq_b_user}',
						   '{ReceiveMessage,GetQueueUrl,GetQueueAttributes,PurgeQueue,SetQueueAttributes,DeleteQueue}');
SET ROLE regress_msgq_b_user;
SELECT f, msgq_test.err(s) AS result FROM msgq_test.b_calls;
RESET ROLE;
SELECT msgq.add_permission('b_priv', 'send', '{regress_msgq_b_user}', '{SendMessage}');
SET ROLE regress_msgq_b_user;
SELECT f, msgq_test.err(s) AS result FROM msgq_test.b_calls;
RESET ROLE;
SELECT msgq.remove_permission('b_priv', 'send');
SELECT msgq.add_permission('b_priv', 'change', '{regress_msgq_b_user}', '{SQS:ChangeMessageVisibility}');
SET ROLE regress_msgq_b_user;
SELECT f, msgq_test.err(s) AS result FROM msgq_test.b_calls;
RESET ROLE;
SELECT msgq.remove_permission('b_priv', 'change');
SELECT msgq.add_permission('b_priv', 'delete', '{regress_msgq_b_user}', '{DeleteMessage}');
SET ROLE regress_msgq_b_user;
SELECT f, msgq_test.err(s) AS result FROM msgq_test.b_calls;
RESET ROLE;
SELECT msgq.remove_permission('b_priv', 'delete');
-- granted to PUBLIC
SELECT msgq.add_permission('b_priv', 'all', '{public}', '{SendMessage,DeleteMessage,ChangeMessageVisibility}');
SET ROLE regress_msgq_b_user;
SELECT * FROM msgq.send_message_batch('b_priv', '[{"Id": "by-public", "MessageBody": "by public"}]') AS s
 WHERE s.error_code IS NOT NULL;
RESET ROLE;
-- the sender is the calling role
SELECT * FROM msgq_test.b_recv('pv2', 'b_priv', 10, 0);
SELECT body, CASE WHEN attributes->>'SenderId' = current_user THEN 'superuser'
				  ELSE attributes->>'SenderId' END AS sender
  FROM msgq_test.b_got WHERE tag = 'pv2' ORDER BY ord;
DROP TABLE msgq_test.b_calls;

--
-- MessageRetentionPeriod: a maintenance cycle deletes the messages older
-- than their queue's retention, and only them
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('b_ret', '{"MessageRetentionPeriod": 60}');
SELECT msgq.create_queue('b_ret_long', '{"MessageRetentionPeriod": 120}');
SELECT count(*) AS sent FROM msgq.send_message_batch('b_ret',
	(SELECT json_agg(json_build_object('Id', 'm' || i, 'MessageBody', 'old ' || i) ORDER BY i)
	   FROM generate_series(1, 5) i)) AS s
 WHERE s.error_code IS NULL;
SELECT count(*) AS sent FROM msgq.send_message_batch('b_ret_long', '[{"Id": "a", "MessageBody": "long lived"}]') AS s
 WHERE s.error_code IS NULL;
-- one of them in flight, with a visibility timeout beyond its retention
SELECT * FROM msgq_test.b_recv('rt', 'b_ret', 1, 3600);
SET msgq.clock_offset = '30s';
SELECT count(*) AS sent FROM msgq.send_message_batch('b_ret', '[{"Id": "young", "MessageBody": "young"}]') AS s
 WHERE s.error_code IS NULL;
SET msgq.clock_offset = '55s';
SELECT msgq.run_maintenance();
SELECT msgq_test.b_stored('b_ret') AS ret, msgq_test.b_stored('b_ret_long') AS ret_long;
SET msgq.clock_offset = '61s';
SELECT msgq.run_maintenance();
SELECT msgq_test.b_stored('b_ret') AS ret, msgq_test.b_stored('b_ret_long') AS ret_long;
SELECT * FROM msgq_test.b_recv('rt2', 'b_ret', 10, 0);
-- a handle of an expired message: delete succeeds, visibility cannot change
SELECT * FROM msgq.delete_message_batch('b_ret', jsonb_build_array(
	jsonb_build_object('Id', 'expired', 'ReceiptHandle', msgq_test.b_h('rt', 1))));
SELECT * FROM msgq.change_message_visibility_batch('b_ret', jsonb_build_array(
	jsonb_build_object('Id', 'expired', 'ReceiptHandle', msgq_test.b_h('rt', 1), 'VisibilityTimeout', 0)));
SET msgq.clock_offset = '91s';
SELECT msgq.run_maintenance();
SELECT msgq_test.b_stored('b_ret') AS ret, msgq_test.b_stored('b_ret_long') AS ret_long;
SET msgq.clock_offset = '121s';
SELECT msgq.run_maintenance();
SELECT msgq_test.b_stored('b_ret') AS ret, msgq_test.b_stored('b_ret_long') AS ret_long;

--
-- Repeated keys.  message_attributes and send_message_batch's entries are
-- json, not jsonb, so that two attributes with the same name are refused
-- instead of silently collapsing into the last one.
--
SELECT msgq.create_queue('b_dup') IS NOT NULL AS created;
SELECT msgq_test.err($$SELECT msgq.send_message('b_dup', 'x', message_attributes =>
	'{"a": {"DataType": "String", "StringValue": "1"},
	  "a": {"DataType": "String", "StringValue": "2"}}')$$);
SELECT msgq_test.err($$SELECT msgq.send_message('b_dup', 'x', message_attributes =>
	'{"a": {"DataType": "String", "StringValue": "1", "StringValue": "2"}}')$$);
-- names that differ only in case are different names
SELECT md5_of_message_attributes IS NOT NULL AS sent FROM msgq.send_message('b_dup', 'x',
	message_attributes => '{"a": {"DataType": "String", "StringValue": "1"},
							"A": {"DataType": "String", "StringValue": "2"}}');
-- a jsonb value is passed with a cast
SELECT md5_of_message_attributes IS NOT NULL AS sent FROM msgq.send_message('b_dup', 'x',
	message_attributes => jsonb_build_object('k', jsonb_build_object('DataType', 'String', 'StringValue', 'v'))::json);
-- in a batch, the entry with the repeated name fails and the others are sent
SELECT id, message_id IS NOT NULL AS sent, error_code, error_message, sender_fault
  FROM msgq.send_message_batch('b_dup', '[
	{"Id": "ok1", "MessageBody": "one"},
	{"Id": "dup", "MessageBody": "two", "MessageAttributes": {
		"n": {"DataType": "Number", "StringValue": "1"},
		"n": {"DataType": "Number", "StringValue": "2"}}},
	{"Id": "dupkey", "MessageBody": "three", "MessageBody": "four"},
	{"Id": "ok2", "MessageBody": "five", "MessageAttributes": {
		"n": {"DataType": "Number", "StringValue": "1"},
		"m": {"DataType": "Number", "StringValue": "2"}}}]');
SELECT body FROM msgq.receive_message('b_dup', 10) ORDER BY body;

--
-- clean up
--
RESET msgq.clock_offset;
SELECT count(*) AS deleted FROM msgq.list_queues('b_') AS q, LATERAL msgq.delete_queue(q);
SELECT * FROM msgq.list_queues('b_');
DROP ROLE regress_msgq_b_user;
DROP TABLE msgq_test.b_got, msgq_test.b_sent;
DROP FUNCTION msgq_test.b_send, msgq_test.b_recv, msgq_test.b_h, msgq_test.b_forged,
	msgq_test.b_stored, msgq_test.b_attr_md5;
