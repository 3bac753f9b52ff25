--
-- queue_admin: get_queue_attributes / set_queue_attributes, RedrivePolicy
-- and RedriveAllowPolicy, dead-letter moves during receive,
-- list_dead_letter_source_queues, purge_queue, tags, QueueDeletedRecently
-- and MessageRetentionPeriod.
--
-- Time rules are driven by msgq.clock_offset, never by sleeping; each timed
-- section starts from a known offset.  Queue names here all start with
-- "a_", roles with "regress_msgq_a_".  A deleted name is only created again
-- after the clock moved past 60 s (QueueDeletedRecently).
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

-- the three approximate counts of a queue
CREATE OR REPLACE FUNCTION msgq_test.a_counts(p_queue text)
RETURNS TABLE (visible int, not_visible int, delayed int)
LANGUAGE sql AS $$
	SELECT (a->>'ApproximateNumberOfMessages')::int,
		   (a->>'ApproximateNumberOfMessagesNotVisible')::int,
		   (a->>'ApproximateNumberOfMessagesDelayed')::int
	  FROM msgq.get_queue_attributes(p_queue,
			'{ApproximateNumberOfMessages,ApproximateNumberOfMessagesNotVisible,ApproximateNumberOfMessagesDelayed}') AS a
$$;

-- Received messages are kept in msgq_test.a_got under a tag, so that later
-- statements can compare them and use their receipt handles.
CREATE TABLE msgq_test.a_got (
	tag text,
	message_id uuid,
	receipt_handle text,
	body text,
	md5_of_body text,
	attributes jsonb,
	message_attributes jsonb,
	ord bigint);

-- receive, remember under tag, show position, body and receive count
CREATE OR REPLACE FUNCTION msgq_test.a_recv(p_tag text, p_queue text, p_max int DEFAULT 1,
											p_vt int DEFAULT NULL)
RETURNS TABLE (ord bigint, body text, receive_count int)
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM msgq_test.a_got g WHERE g.tag = p_tag;
	INSERT INTO msgq_test.a_got
	SELECT p_tag, r.*
	  FROM msgq.receive_message(p_queue, max_number_of_messages => p_max,
								visibility_timeout => p_vt) WITH ORDINALITY AS r;
	RETURN QUERY
	SELECT g.ord, g.body, (g.attributes->>'ApproximateReceiveCount')::int
	  FROM msgq_test.a_got g WHERE g.tag = p_tag ORDER BY g.ord;
END
$$;

-- the receipt handle of the first message received under a tag
CREATE OR REPLACE FUNCTION msgq_test.a_h(p_tag text) RETURNS text
LANGUAGE sql AS $$
	SELECT receipt_handle FROM msgq_test.a_got WHERE tag = p_tag AND ord = 1
$$;

-- the number of stored rows of a queue, whatever their state
CREATE OR REPLACE FUNCTION msgq_test.a_stored(p_queue text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id)
	 WHERE q.queue_name = p_queue
$$;

-- the queues holding a message id (a moved message is in exactly one)
CREATE OR REPLACE FUNCTION msgq_test.a_where(p_id uuid) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(q.queue_name, ', ' ORDER BY q.queue_name), '(none)')
	  FROM msgq.message m JOIN msgq.queue q USING (queue_id)
	 WHERE m.message_id = p_id
$$;

-- msgq's clock in epoch seconds, as CreatedTimestamp & co. show it
CREATE OR REPLACE FUNCTION msgq_test.a_now_s() RETURNS bigint
LANGUAGE sql AS $$
	SELECT floor(extract(epoch FROM msgq.now()))::bigint
$$;

SET msgq.clock_offset = 0;

--
-- get_queue_attributes: every settable attribute as a string, the counts,
-- the timestamps (epoch seconds) and the ARN
--
SELECT msgq_test.a_now_s() AS t_before \gset
SELECT msgq.create_queue('a_attr');
SELECT msgq_test.a_now_s() AS t_after \gset
SELECT e.key, e.value
  FROM jsonb_each(msgq.get_queue_attributes('a_attr')) AS e
 WHERE e.key NOT IN ('CreatedTimestamp', 'LastModifiedTimestamp')
 ORDER BY e.key;
SELECT count(*) AS attributes,
	   count(*) FILTER (WHERE jsonb_typeof(e.value) = 'string') AS strings
  FROM jsonb_each(msgq.get_queue_attributes('a_attr')) AS e;
SELECT (a->>'CreatedTimestamp')::bigint BETWEEN :t_before AND :t_after AS created_ok,
	   a->>'LastModifiedTimestamp' = a->>'CreatedTimestamp' AS modified_is_created,
	   a->>'QueueArn' = 'arn:aws:sqs:msgq:' || current_database() || ':a_attr' AS arn_ok
  FROM msgq.get_queue_attributes('a_attr') AS a;
-- selection by name; "All" (the default) gives everything
SELECT msgq.get_queue_attributes('a_attr', '{VisibilityTimeout,QueueArn}');
SELECT msgq.get_queue_attributes('a_attr', '{ApproximateNumberOfMessages}');
SELECT msgq.get_queue_attributes('a_attr', '{All}') = msgq.get_queue_attributes('a_attr') AS all_is_default,
	   msgq.get_queue_attributes('a_attr', '{VisibilityTimeout,All}') = msgq.get_queue_attributes('a_attr') AS all_wins;
-- nothing asked, nothing returned; attributes a standard queue has not set are absent
SELECT msgq.get_queue_attributes('a_attr', NULL) AS null_names,
	   msgq.get_queue_attributes('a_attr', '{}') AS no_names,
	   msgq.get_queue_attributes('a_attr', '{FifoQueue,ContentBasedDeduplication,RedrivePolicy,Policy}') AS unset;
-- by URL and by ARN
SELECT msgq.get_queue_attributes('msgq://' || current_database() || '/a_attr', '{DelaySeconds}') AS by_url,
	   msgq.get_queue_attributes('arn:aws:sqs:msgq:' || current_database() || ':a_attr', '{DelaySeconds}') AS by_arn;
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('unknown name', $$SELECT msgq.get_queue_attributes('a_attr', '{Bogus}')$$),
	('wrong case', $$SELECT msgq.get_queue_attributes('a_attr', '{visibilitytimeout}')$$),
	('unknown with All', $$SELECT msgq.get_queue_attributes('a_attr', '{All,Bogus}')$$),
	('empty name', $$SELECT msgq.get_queue_attributes('a_attr', '{""}')$$),
	('unknown queue', $$SELECT msgq.get_queue_attributes('a_no_such_queue')$$),
	('NULL queue', $$SELECT msgq.get_queue_attributes(NULL)$$)
	) AS t(f, s);

--
-- The approximate counts: visible, in flight (not visible), delayed
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_count');
SELECT * FROM msgq_test.a_counts('a_count');
SELECT count(*) AS sent FROM generate_series(1, 3) i, msgq.send_message('a_count', 'c' || i);
SELECT md5_of_message_body = md5('late') AS sent FROM msgq.send_message('a_count', 'late', delay_seconds => 10);
SELECT * FROM msgq_test.a_recv('c1', 'a_count');
SELECT * FROM msgq_test.a_counts('a_count');
-- the delay ends: delayed -> visible
SET msgq.clock_offset = '12s';
SELECT * FROM msgq_test.a_counts('a_count');
-- the visibility timeout ends: in flight -> visible
SET msgq.clock_offset = '32s';
SELECT * FROM msgq_test.a_counts('a_count');
SELECT * FROM msgq_test.a_recv('c2', 'a_count', 10);
SELECT * FROM msgq_test.a_counts('a_count');
-- deleted messages are not counted; visibility 0 makes one visible again
SELECT msgq.delete_message('a_count', receipt_handle) FROM msgq_test.a_got WHERE tag = 'c2' AND ord <= 2;
SELECT msgq.change_message_visibility('a_count', receipt_handle, 0) FROM msgq_test.a_got WHERE tag = 'c2' AND ord = 3;
SELECT * FROM msgq_test.a_counts('a_count');

--
-- set_queue_attributes: merged with the current attributes, validated like
-- create_queue, LastModifiedTimestamp moves, CreatedTimestamp does not
--
SET msgq.clock_offset = 0;
SELECT msgq.create_queue('a_set');
SELECT (a->>'CreatedTimestamp')::bigint AS created_set FROM msgq.get_queue_attributes('a_set') AS a \gset
SET msgq.clock_offset = '100s';
SELECT msgq.set_queue_attributes('a_set', '{"VisibilityTimeout": 5, "DelaySeconds": "3", "Policy": "{\"Version\": \"2012-10-17\"}", "KmsMasterKeyId": "alias/a"}');
SELECT e.key, e.value
  FROM jsonb_each(msgq.get_queue_attributes('a_set')) AS e
 WHERE e.key NOT IN ('CreatedTimestamp', 'LastModifiedTimestamp')
 ORDER BY e.key;
SELECT (a->>'CreatedTimestamp')::bigint = :created_set AS created_unchanged,
	   (a->>'LastModifiedTimestamp')::bigint - :created_set BETWEEN 100 AND 102 AS modified_moved
  FROM msgq.get_queue_attributes('a_set') AS a;
-- a second change keeps the first one; "" removes Policy and KmsMasterKeyId
SELECT msgq.set_queue_attributes('a_set', '{"MaximumMessageSize": 1024, "Policy": "", "KmsMasterKeyId": ""}');
SELECT msgq.get_queue_attributes('a_set', '{VisibilityTimeout,DelaySeconds,MaximumMessageSize,Policy,KmsMasterKeyId}');
-- the queue now differs from the defaults: create_queue without attributes refuses
SELECT msgq_test.err($$SELECT msgq.create_queue('a_set')$$);
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('FifoQueue true', $$SELECT msgq.set_queue_attributes('a_set', '{"FifoQueue": "true"}')$$),
	('FifoQueue false', $$SELECT msgq.set_queue_attributes('a_set', '{"FifoQueue": false}')$$),
	('FIFO-only', $$SELECT msgq.set_queue_attributes('a_set', '{"ContentBasedDeduplication": "true"}')$$),
	('unknown', $$SELECT msgq.set_queue_attributes('a_set', '{"Bogus": "1"}')$$),
	('read-only', $$SELECT msgq.set_queue_attributes('a_set', '{"QueueArn": "x"}')$$),
	('vt 43201', $$SELECT msgq.set_queue_attributes('a_set', '{"VisibilityTimeout": 43201}')$$),
	('vt -1', $$SELECT msgq.set_queue_attributes('a_set', '{"VisibilityTimeout": -1}')$$),
	('vt text', $$SELECT msgq.set_queue_attributes('a_set', '{"VisibilityTimeout": "ten"}')$$),
	('retention 59', $$SELECT msgq.set_queue_attributes('a_set', '{"MessageRetentionPeriod": 59}')$$),
	('delay 901', $$SELECT msgq.set_queue_attributes('a_set', '{"DelaySeconds": 901}')$$),
	('wait 21', $$SELECT msgq.set_queue_attributes('a_set', '{"ReceiveMessageWaitTimeSeconds": 21}')$$),
	('size 1023', $$SELECT msgq.set_queue_attributes('a_set', '{"MaximumMessageSize": 1023}')$$),
	('NULL', $$SELECT msgq.set_queue_attributes('a_set', NULL)$$),
	('array', $$SELECT msgq.set_queue_attributes('a_set', '[]')$$),
	('scalar', $$SELECT msgq.set_queue_attributes('a_set', '"x"')$$),
	('unknown queue', $$SELECT msgq.set_queue_attributes('a_no_such_queue', '{"DelaySeconds": 1}')$$)
	) AS t(f, s);
-- a refused change changes nothing, not even the attributes that were valid
SELECT msgq_test.err($$SELECT msgq.set_queue_attributes('a_set', '{"VisibilityTimeout": 7, "DelaySeconds": 901}')$$);
SELECT msgq.get_queue_attributes('a_set', '{VisibilityTimeout,DelaySeconds}');
-- the new MaximumMessageSize applies to the next send
SELECT msgq_test.err($$SELECT msgq.send_message('a_set', repeat('x', 1025))$$);
SELECT msgq_test.err($$SELECT msgq.send_message('a_set', repeat('x', 1024))$$);

-- a new VisibilityTimeout applies to the next receive, not to a message already in flight
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_vt');
SELECT md5_of_message_body = md5('vt') AS sent FROM msgq.send_message('a_vt', 'vt');
SELECT * FROM msgq_test.a_recv('v1', 'a_vt');
SELECT msgq.set_queue_attributes('a_vt', '{"VisibilityTimeout": 5}');
SET msgq.clock_offset = '28s';
SELECT * FROM msgq_test.a_recv('v2', 'a_vt');
SET msgq.clock_offset = '32s';
SELECT * FROM msgq_test.a_recv('v3', 'a_vt');
SET msgq.clock_offset = '35s';
SELECT * FROM msgq_test.a_recv('v4', 'a_vt');
SET msgq.clock_offset = '39s';
SELECT * FROM msgq_test.a_recv('v5', 'a_vt');

--
-- RedrivePolicy: stored with the dead-letter queue's ARN and a numeric
-- maxReceiveCount; given as an object or as a JSON string, with a name or
-- an ARN, and a number or a numeric string
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_dlq');
SELECT msgq.create_queue('a_src', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": 3}}');
SELECT msgq.get_queue_attributes('a_src', '{RedrivePolicy}');
SELECT (msgq.get_queue_attributes('a_src')->>'RedrivePolicy')::jsonb AS redrive_policy;
-- the same policy in its other spellings: create_queue is idempotent
SELECT msgq.create_queue('a_src', jsonb_build_object('RedrivePolicy', jsonb_build_object(
		'deadLetterTargetArn', 'arn:aws:sqs:msgq:' || current_database() || ':a_dlq', 'maxReceiveCount', '3')));
SELECT msgq.create_queue('a_src', '{"RedrivePolicy": "{\"deadLetterTargetArn\": \"a_dlq\", \"maxReceiveCount\": \"3\"}"}');
SELECT msgq_test.err($$SELECT msgq.create_queue('a_src', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": 4}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('a_src')$$);
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('no maxReceiveCount', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq"}}')$$),
	('no target', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"maxReceiveCount": 3}}')$$),
	('empty object', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {}}')$$),
	('count 0', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": 0}}')$$),
	('count 1001', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": 1001}}')$$),
	('count text', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": "three"}}')$$),
	('count 1.5', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": 1.5}}')$$),
	('count true', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": true}}')$$),
	('target empty', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "", "maxReceiveCount": 3}}')$$),
	('target number', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": 5, "maxReceiveCount": 3}}')$$),
	('target missing', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a_no_such_dlq", "maxReceiveCount": 3}}')$$),
	('target itself', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a_bad", "maxReceiveCount": 3}}')$$),
	('target bad name', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "a bad", "maxReceiveCount": 3}}')$$)
	) AS t(f, s);
-- a RedrivePolicy that is not a JSON map: an AWS error (InvalidParameterValue
-- or InvalidAttributeValue), never a bare JSON syntax error
SELECT f, left(msgq_test.err(s), 5) IN ('MQ006', 'MQ009') AS aws_error
  FROM (VALUES
	('not JSON', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": "not json"}')$$),
	('truncated JSON', $$SELECT msgq.set_queue_attributes('a_attr', '{"RedrivePolicy": "{\"deadLetterTargetArn\": "}')$$),
	('JSON array', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": "[1]"}')$$),
	('JSON number', $$SELECT msgq.create_queue('a_bad', '{"RedrivePolicy": 5}')$$)
	) AS t(f, s);
-- the same checks through set_queue_attributes
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('target itself', $$SELECT msgq.set_queue_attributes('a_src', '{"RedrivePolicy": {"deadLetterTargetArn": "a_src", "maxReceiveCount": 3}}')$$),
	('target missing', $$SELECT msgq.set_queue_attributes('a_src', '{"RedrivePolicy": {"deadLetterTargetArn": "a_no_such_dlq", "maxReceiveCount": 3}}')$$),
	('count 0', $$SELECT msgq.set_queue_attributes('a_src', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": 0}}')$$)
	) AS t(f, s);
SELECT msgq.get_queue_attributes('a_src', '{RedrivePolicy}');
SELECT * FROM msgq.list_dead_letter_source_queues('a_dlq');
-- 1 and 1000 are the bounds
SELECT msgq.set_queue_attributes('a_attr', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": 1000}}');
SELECT msgq.set_queue_attributes('a_count', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq", "maxReceiveCount": 1}}');
SELECT (msgq.get_queue_attributes('a_attr')->>'RedrivePolicy')::jsonb->'maxReceiveCount' AS a_attr_max,
	   (msgq.get_queue_attributes('a_count')->>'RedrivePolicy')::jsonb->'maxReceiveCount' AS a_count_max;
-- sources in name order, whether the DLQ is named or given by ARN or URL
SELECT * FROM msgq.list_dead_letter_source_queues('a_dlq');
SELECT * FROM msgq.list_dead_letter_source_queues('arn:aws:sqs:msgq:' || current_database() || ':a_dlq');
SELECT * FROM msgq.list_dead_letter_source_queues('msgq://' || current_database() || '/a_dlq');
-- "" removes the policy
SELECT msgq.set_queue_attributes('a_attr', '{"RedrivePolicy": ""}');
SELECT msgq.set_queue_attributes('a_count', '{"RedrivePolicy": ""}');
SELECT msgq.get_queue_attributes('a_attr', '{RedrivePolicy}') AS a_attr, msgq.get_queue_attributes('a_count', '{RedrivePolicy}') AS a_count;
SELECT * FROM msgq.list_dead_letter_source_queues('a_dlq');
-- a queue nobody points at has no sources
SELECT count(*) AS sources FROM msgq.list_dead_letter_source_queues('a_src');
SELECT msgq_test.err($$SELECT msgq.list_dead_letter_source_queues('a_no_such_queue')$$);
SELECT msgq_test.err($$SELECT msgq.list_dead_letter_source_queues(NULL)$$);

--
-- RedriveAllowPolicy: allowAll (default), denyAll, byQueue with 1 to 10
-- sources; enforced when a source sets its RedrivePolicy
--
SELECT msgq.create_queue('a_dlq_deny', '{"RedriveAllowPolicy": {"redrivePermission": "denyAll"}}');
SELECT msgq.create_queue('a_dlq_by', jsonb_build_object('RedriveAllowPolicy', jsonb_build_object(
		'redrivePermission', 'byQueue',
		'sourceQueueArns', jsonb_build_array('arn:aws:sqs:msgq:' || current_database() || ':a_src_by1', 'a_src_by2'))::text));
SELECT (msgq.get_queue_attributes('a_dlq_by')->>'RedriveAllowPolicy')::jsonb AS redrive_allow_policy;
SELECT msgq.get_queue_attributes('a_dlq_deny', '{RedriveAllowPolicy}');
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('denyAll', $$SELECT msgq.create_queue('a_src_deny', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq_deny", "maxReceiveCount": 3}}')$$),
	('byQueue, not listed', $$SELECT msgq.create_queue('a_src_other', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq_by", "maxReceiveCount": 3}}')$$),
	('byQueue, listed (ARN)', $$SELECT msgq.create_queue('a_src_by1', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq_by", "maxReceiveCount": 3}}')$$),
	('byQueue, listed (name), later', $$SELECT msgq.create_queue('a_src_by2')$$),
	('set: byQueue, listed', $$SELECT msgq.set_queue_attributes('a_src_by2', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq_by", "maxReceiveCount": 3}}')$$),
	('set: denyAll', $$SELECT msgq.set_queue_attributes('a_src_by2', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq_deny", "maxReceiveCount": 3}}')$$)
	) AS t(f, s);
SELECT * FROM msgq.list_dead_letter_source_queues('a_dlq_by');
SELECT count(*) AS sources FROM msgq.list_dead_letter_source_queues('a_dlq_deny');
-- opening the DLQ up lets the other source in
SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "allowAll"}}');
SELECT msgq.create_queue('a_src_other', '{"RedrivePolicy": {"deadLetterTargetArn": "a_dlq_by", "maxReceiveCount": 3}}');
SELECT * FROM msgq.list_dead_letter_source_queues('a_dlq_by');
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('unknown permission', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "sometimes"}}')$$),
	('no permission', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {}}')$$),
	('byQueue without sources', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "byQueue"}}')$$),
	('byQueue, empty sources', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": []}}')$$),
	('byQueue, 11 sources', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": ["a1","a2","a3","a4","a5","a6","a7","a8","a9","a10","a11"]}}')$$),
	('byQueue, sources not an array', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": "a1"}}')$$),
	('byQueue, number source', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": [1]}}')$$),
	('allowAll with sources', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "allowAll", "sourceQueueArns": ["a_src_by1"]}}')$$),
	('denyAll with sources', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "denyAll", "sourceQueueArns": ["a_src_by1"]}}')$$),
	('byQueue, 10 sources', $$SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArns": ["a1","a2","a3","a4","a5","a6","a7","a8","a9","a10"]}}')$$)
	) AS t(f, s);
SELECT jsonb_array_length(((msgq.get_queue_attributes('a_dlq_by')->>'RedriveAllowPolicy')::jsonb)->'sourceQueueArns') AS sources;
-- "" removes it (back to allowAll)
SELECT msgq.set_queue_attributes('a_dlq_by', '{"RedriveAllowPolicy": ""}');
SELECT msgq.get_queue_attributes('a_dlq_by', '{RedriveAllowPolicy}');

--
-- Dead-letter moves.  A message whose receive count already equals
-- maxReceiveCount moves on the next receive attempt instead of being
-- returned, keeping its id, body, attributes, SentTimestamp and count.
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_mv_dlq');
SELECT msgq.create_queue('a_mv', '{"RedrivePolicy": {"deadLetterTargetArn": "a_mv_dlq", "maxReceiveCount": 1}}');
CREATE TABLE msgq_test.a_sent AS
SELECT 'poison'::text AS tag, * FROM msgq.send_message('a_mv', 'poison',
	message_attributes => '{"k": {"DataType": "String", "StringValue": "v"}, "n": {"DataType": "Number", "StringValue": "7"}}');
-- maxReceiveCount 1: received once ...
SELECT * FROM msgq_test.a_recv('m1', 'a_mv', p_vt => 0);
-- ... and moved on the second attempt
SELECT * FROM msgq_test.a_recv('m2', 'a_mv', p_vt => 0);
SELECT * FROM msgq_test.a_counts('a_mv');
SELECT * FROM msgq_test.a_counts('a_mv_dlq');
SELECT msgq_test.a_where(message_id) FROM msgq_test.a_sent WHERE tag = 'poison';
SELECT * FROM msgq_test.a_recv('m3', 'a_mv_dlq', p_vt => 0);
SELECT d.message_id = s.message_id AS same_id,
	   d.body = o.body AS same_body,
	   d.md5_of_body = s.md5_of_message_body AS same_md5,
	   d.message_attributes = o.message_attributes AS same_message_attributes,
	   d.attributes->'SentTimestamp' = o.attributes->'SentTimestamp' AS same_sent_ts,
	   d.attributes->'SenderId' = o.attributes->'SenderId' AS same_sender,
	   d.attributes->'ApproximateFirstReceiveTimestamp' = o.attributes->'ApproximateFirstReceiveTimestamp' AS same_first_receive_ts,
	   d.receipt_handle <> o.receipt_handle AS new_handle
  FROM msgq_test.a_got d, msgq_test.a_got o, msgq_test.a_sent s
 WHERE d.tag = 'm3' AND o.tag = 'm1' AND s.tag = 'poison';
-- the handle of the source's receive no longer works on the source
SELECT msgq.delete_message('a_mv', msgq_test.a_h('m1'));
SELECT msgq_test.a_where(message_id) FROM msgq_test.a_sent WHERE tag = 'poison';
-- it is an ordinary message of the DLQ now
SELECT msgq.delete_message('a_mv_dlq', msgq_test.a_h('m3'));
SELECT msgq_test.a_where(message_id) FROM msgq_test.a_sent WHERE tag = 'poison';

-- maxReceiveCount 3: three receives, moved on the fourth
SELECT msgq.create_queue('a_mv3', '{"RedrivePolicy": {"deadLetterTargetArn": "a_mv_dlq", "maxReceiveCount": "3"}}');
SELECT md5_of_message_body = md5('three') AS sent FROM msgq.send_message('a_mv3', 'three');
SELECT * FROM msgq_test.a_recv('t1', 'a_mv3', p_vt => 0);
SELECT * FROM msgq_test.a_recv('t2', 'a_mv3', p_vt => 0);
SELECT * FROM msgq_test.a_recv('t3', 'a_mv3', p_vt => 0);
SELECT * FROM msgq_test.a_recv('t4', 'a_mv3', p_vt => 0);
SELECT * FROM msgq_test.a_recv('t5', 'a_mv_dlq', p_vt => 0);
SELECT msgq.delete_message('a_mv_dlq', msgq_test.a_h('t5'));

-- the receive that moves spent messages still returns the others
SELECT msgq.create_queue('a_mv_mix', '{"RedrivePolicy": {"deadLetterTargetArn": "a_mv_dlq", "maxReceiveCount": 1}}');
SELECT count(*) AS sent FROM unnest(ARRAY['x1', 'x2']) AS b, msgq.send_message('a_mv_mix', b);
SELECT * FROM msgq_test.a_recv('x1', 'a_mv_mix', 10, 0);
SELECT md5_of_message_body = md5('x3') AS sent FROM msgq.send_message('a_mv_mix', 'x3');
SELECT * FROM msgq_test.a_recv('x2', 'a_mv_mix', 10, 0);
SELECT * FROM msgq_test.a_counts('a_mv_mix');
SELECT * FROM msgq_test.a_recv('x3', 'a_mv_dlq', 10);
SELECT count(*) AS deleted FROM msgq_test.a_got g, msgq.delete_message('a_mv_dlq', g.receipt_handle) WHERE g.tag = 'x3';

-- a message in flight is not moved; the receive after its timeout moves it
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_mv_vis', '{"RedrivePolicy": {"deadLetterTargetArn": "a_mv_dlq", "maxReceiveCount": 1}}');
SELECT md5_of_message_body = md5('vis') AS sent FROM msgq.send_message('a_mv_vis', 'vis');
SELECT * FROM msgq_test.a_recv('w1', 'a_mv_vis');
SELECT * FROM msgq_test.a_recv('w2', 'a_mv_vis');
SELECT msgq_test.a_stored('a_mv_vis') AS source, msgq_test.a_stored('a_mv_dlq') AS dlq;
SET msgq.clock_offset = '32s';
SELECT * FROM msgq_test.a_recv('w3', 'a_mv_vis');
SELECT msgq_test.a_stored('a_mv_vis') AS source, msgq_test.a_stored('a_mv_dlq') AS dlq;
SELECT * FROM msgq_test.a_recv('w4', 'a_mv_dlq');
SELECT msgq.delete_message('a_mv_dlq', msgq_test.a_h('w4'));

-- a receive that moved a message and rolled back leaves it in the source
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_mv_rb', '{"RedrivePolicy": {"deadLetterTargetArn": "a_mv_dlq", "maxReceiveCount": 1}}');
SELECT md5_of_message_body = md5('rb') AS sent FROM msgq.send_message('a_mv_rb', 'rb');
SELECT * FROM msgq_test.a_recv('b1', 'a_mv_rb', p_vt => 0);
BEGIN;
SELECT * FROM msgq_test.a_recv('b2', 'a_mv_rb', p_vt => 0);
SELECT msgq_test.a_stored('a_mv_rb') AS source, msgq_test.a_stored('a_mv_dlq') AS dlq;
ROLLBACK;
SELECT msgq_test.a_stored('a_mv_rb') AS source, msgq_test.a_stored('a_mv_dlq') AS dlq;
SELECT * FROM msgq_test.a_recv('b3', 'a_mv_rb', p_vt => 0);
SELECT msgq_test.a_stored('a_mv_rb') AS source, msgq_test.a_stored('a_mv_dlq') AS dlq;
SELECT * FROM msgq_test.a_recv('b4', 'a_mv_dlq');
SELECT msgq.delete_message('a_mv_dlq', msgq_test.a_h('b4'));

-- rolled-back receives count toward maxReceiveCount: two receives rolled
-- back with maxReceiveCount 2, and the next receive moves the message
SELECT msgq.create_queue('a_mv_abort', '{"RedrivePolicy": {"deadLetterTargetArn": "a_mv_dlq", "maxReceiveCount": 2}}');
SELECT md5_of_message_body = md5('aborted') AS sent FROM msgq.send_message('a_mv_abort', 'aborted');
BEGIN;
SELECT * FROM msgq_test.a_recv('r1', 'a_mv_abort');
ROLLBACK;
BEGIN;
SELECT * FROM msgq_test.a_recv('r2', 'a_mv_abort');
ROLLBACK;
SELECT * FROM msgq_test.a_recv('r3', 'a_mv_abort');
SELECT msgq_test.a_stored('a_mv_abort') AS source, msgq_test.a_stored('a_mv_dlq') AS dlq;
SELECT * FROM msgq_test.a_recv('r4', 'a_mv_dlq');
SELECT count(*) AS deleted FROM msgq_test.a_got g, msgq.delete_message('a_mv_dlq', g.receipt_handle) WHERE g.tag = 'r4';

-- the DLQ's retention counts from the original send (standard queues)
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_mv_old_dlq', '{"MessageRetentionPeriod": 60}');
SELECT msgq.create_queue('a_mv_old', '{"RedrivePolicy": {"deadLetterTargetArn": "a_mv_old_dlq", "maxReceiveCount": 1}}');
SELECT md5_of_message_body = md5('old') AS sent FROM msgq.send_message('a_mv_old', 'old');
SELECT * FROM msgq_test.a_recv('o1', 'a_mv_old', p_vt => 0);
SET msgq.clock_offset = '100s';
SELECT * FROM msgq_test.a_recv('o2', 'a_mv_old');
SELECT msgq_test.a_stored('a_mv_old') AS source;
SELECT * FROM msgq_test.a_counts('a_mv_old_dlq');
SELECT * FROM msgq_test.a_recv('o3', 'a_mv_old_dlq');

--
-- MessageRetentionPeriod: a message older than the retention period is
-- never returned and not counted; a shorter period applies to messages
-- already in the queue
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_ret');
SELECT md5_of_message_body = md5('r1') AS sent FROM msgq.send_message('a_ret', 'r1');
SELECT md5_of_message_body = md5('r2') AS sent FROM msgq.send_message('a_ret', 'r2');
SELECT msgq.set_queue_attributes('a_ret', '{"MessageRetentionPeriod": 60}');
SET msgq.clock_offset = '30s';
SELECT md5_of_message_body = md5('r3') AS sent FROM msgq.send_message('a_ret', 'r3');
-- r1 goes in flight until 85 s
SET msgq.clock_offset = '55s';
SELECT * FROM msgq_test.a_recv('e1', 'a_ret', 1, 30);
SELECT * FROM msgq_test.a_counts('a_ret');
SET msgq.clock_offset = '65s';
SELECT * FROM msgq_test.a_counts('a_ret');
SELECT * FROM msgq_test.a_recv('e2', 'a_ret', 10, 0);
SET msgq.clock_offset = '95s';
SELECT * FROM msgq_test.a_counts('a_ret');
SELECT * FROM msgq_test.a_recv('e3', 'a_ret', 10, 0);
-- a message sent now lives its own 60 s
SELECT md5_of_message_body = md5('r4') AS sent FROM msgq.send_message('a_ret', 'r4');
SELECT * FROM msgq_test.a_recv('e4', 'a_ret', 10, 0);

--
-- purge_queue: visible, in-flight and delayed messages go at once and
-- atomically; one purge per 60 s
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_purge');
SELECT count(*) AS sent FROM unnest(ARRAY['p1', 'p2']) AS b, msgq.send_message('a_purge', b);
SELECT md5_of_message_body = md5('p3') AS sent FROM msgq.send_message('a_purge', 'p3', delay_seconds => 100);
SELECT * FROM msgq_test.a_recv('g1', 'a_purge');
SELECT * FROM msgq_test.a_counts('a_purge');
-- rolled back: everything stays, and the purge does not count for the 60 s
BEGIN;
SELECT msgq.purge_queue('a_purge');
SELECT * FROM msgq_test.a_counts('a_purge');
ROLLBACK;
SELECT * FROM msgq_test.a_counts('a_purge');
SELECT msgq.purge_queue('a_purge');
SELECT * FROM msgq_test.a_counts('a_purge');
SELECT msgq_test.a_stored('a_purge');
-- the handle of a purged message: delete succeeds, visibility cannot change
SELECT msgq.delete_message('a_purge', msgq_test.a_h('g1'));
SELECT msgq_test.err(format('SELECT msgq.change_message_visibility(%L, %L, 10)', 'a_purge', msgq_test.a_h('g1')));
-- a message sent after the purge stays
SELECT md5_of_message_body = md5('p4') AS sent FROM msgq.send_message('a_purge', 'p4');
SELECT msgq_test.err($$SELECT msgq.purge_queue('a_purge')$$);
SET msgq.clock_offset = '30s';
SELECT msgq_test.err($$SELECT msgq.purge_queue('a_purge')$$);
SELECT * FROM msgq_test.a_counts('a_purge');
SET msgq.clock_offset = '65s';
SELECT msgq_test.err($$SELECT msgq.purge_queue('a_purge')$$);
SELECT * FROM msgq_test.a_counts('a_purge');
SELECT msgq_test.err($$SELECT msgq.purge_queue('a_purge')$$);
-- argument errors
SELECT msgq_test.err($$SELECT msgq.purge_queue('a_no_such_queue')$$);
SELECT msgq_test.err($$SELECT msgq.purge_queue(NULL)$$);

--
-- Tags
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_tags');
SELECT msgq.list_queue_tags('a_tags');
SELECT msgq.tag_queue('a_tags', '{"env": "prod", "team": "a b+c-d=e.f_g:h/i@j", "empty": "", "ünï": "çödé", "aws": "not a prefix", "x:aws:y": "1"}');
SELECT msgq.list_queue_tags('a_tags');
-- an existing key is replaced, the others stay
SELECT msgq.tag_queue('a_tags', '{"env": "dev"}');
SELECT msgq.list_queue_tags('a_tags');
-- unknown keys are ignored
SELECT msgq.untag_queue('a_tags', '{env,no_such_key}');
SELECT msgq.list_queue_tags('a_tags');
SELECT msgq.untag_queue('a_tags', '{}');
-- tags are not attributes
SELECT msgq.get_queue_attributes('a_tags', '{VisibilityTimeout}');
-- lengths count characters: 128 for keys, 0 to 256 for values
SELECT msgq_test.err(format('SELECT msgq.tag_queue(%L, %L)', 'a_tags', jsonb_build_object(repeat('é', 128), repeat('ü', 256)))) AS max_lengths;
SELECT f, split_part(msgq_test.err(s), ' "', 1) AS err
  FROM (VALUES
	('key 129', format('SELECT msgq.tag_queue(%L, %L)', 'a_tags', jsonb_build_object(repeat('é', 129), '1'))),
	('value 257', format('SELECT msgq.tag_queue(%L, %L)', 'a_tags', jsonb_build_object('k', repeat('ü', 257))))
	) AS t(f, s);
SELECT f, replace(msgq_test.err(s), E'\t', '<TAB>') AS err
  FROM (VALUES
	('aws: prefix', $$SELECT msgq.tag_queue('a_tags', '{"aws:created": "1"}')$$),
	('empty key', $$SELECT msgq.tag_queue('a_tags', '{"": "1"}')$$),
	('key !', $$SELECT msgq.tag_queue('a_tags', '{"a!": "1"}')$$),
	('key *', $$SELECT msgq.tag_queue('a_tags', '{"a*": "1"}')$$),
	('value tab', $$SELECT msgq.tag_queue('a_tags', '{"k": "a\tb"}')$$),
	('value ;', $$SELECT msgq.tag_queue('a_tags', '{"k": "a;b"}')$$),
	('value number', $$SELECT msgq.tag_queue('a_tags', '{"k": 1}')$$),
	('value null', $$SELECT msgq.tag_queue('a_tags', '{"k": null}')$$),
	('value object', $$SELECT msgq.tag_queue('a_tags', '{"k": {}}')$$),
	('no tags', $$SELECT msgq.tag_queue('a_tags', '{}')$$),
	('NULL tags', $$SELECT msgq.tag_queue('a_tags', NULL)$$),
	('NULL keys', $$SELECT msgq.untag_queue('a_tags', NULL)$$),
	('unknown queue', $$SELECT msgq.tag_queue('a_no_such_queue', '{"k": "v"}')$$),
	('unknown queue (untag)', $$SELECT msgq.untag_queue('a_no_such_queue', '{k}')$$),
	('unknown queue (list)', $$SELECT msgq.list_queue_tags('a_no_such_queue')$$)
	) AS t(f, s);
-- characters that are not letters are refused, whatever their script
SELECT msgq.create_queue('a_tags_chars');
SELECT f, left(msgq_test.err(s), 5) AS sqlstate
  FROM (VALUES
	('emoji key', $$SELECT msgq.tag_queue('a_tags_chars', '{"😀": "1"}')$$),
	('emoji value', $$SELECT msgq.tag_queue('a_tags_chars', '{"k": "😀"}')$$),
	('euro sign', $$SELECT msgq.tag_queue('a_tags_chars', '{"k": "€"}')$$),
	('no-break space', $$SELECT msgq.tag_queue('a_tags_chars', '{"k": "a\u00a0b"}')$$),
	('Greek letters', $$SELECT msgq.tag_queue('a_tags_chars', '{"k": "Ελληνικά"}')$$)
	) AS t(f, s);
-- one bad tag refuses the whole call
SELECT msgq_test.err($$SELECT msgq.tag_queue('a_tags', '{"good": "1", "aws:bad": "2"}')$$);
SELECT msgq.list_queue_tags('a_tags') ? 'good' AS good_added;
SELECT count(*) AS tags FROM jsonb_object_keys(msgq.list_queue_tags('a_tags'));

-- at most 50 tags
SELECT msgq.create_queue('a_tags50');
SELECT msgq.tag_queue('a_tags50', jsonb_object_agg('k' || i, 'v' || i)) FROM generate_series(1, 50) i;
SELECT count(*) AS tags FROM jsonb_object_keys(msgq.list_queue_tags('a_tags50'));
SELECT msgq_test.err($$SELECT msgq.tag_queue('a_tags50', '{"k51": "v"}')$$);
-- replacing one of the 50 is fine
SELECT msgq.tag_queue('a_tags50', '{"k1": "new"}');
SELECT msgq.list_queue_tags('a_tags50')->>'k1' AS k1;
SELECT msgq.untag_queue('a_tags50', '{k1}');
SELECT msgq.tag_queue('a_tags50', '{"k51": "v"}');
SELECT count(*) AS tags FROM jsonb_object_keys(msgq.list_queue_tags('a_tags50'));
SELECT msgq_test.err($$SELECT msgq.tag_queue('a_tags50', (SELECT jsonb_object_agg('n' || i, 'v') FROM generate_series(1, 51) i))$$);

--
-- QueueDeletedRecently: a deleted name can be used again 60 s (msgq's
-- clock) after the delete, and then it is a new queue
--
RESET msgq.clock_offset;
SELECT msgq.create_queue('a_gone', '{"VisibilityTimeout": 10}');
SELECT msgq.tag_queue('a_gone', '{"k": "v"}');
SELECT md5_of_message_body = md5('gone') AS sent FROM msgq.send_message('a_gone', 'gone');
SELECT msgq.delete_queue('a_gone');
SELECT msgq_test.err($$SELECT msgq.create_queue('a_gone', '{"VisibilityTimeout": 10}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('a_gone')$$);
SELECT msgq_test.err($$SELECT msgq.get_queue_url('a_gone')$$);
SET msgq.clock_offset = '55s';
SELECT msgq_test.err($$SELECT msgq.create_queue('a_gone')$$);
SET msgq.clock_offset = '65s';
SELECT msgq.create_queue('a_gone');
SELECT msgq.get_queue_attributes('a_gone', '{VisibilityTimeout}'), msgq.list_queue_tags('a_gone');
SELECT * FROM msgq_test.a_counts('a_gone');
SELECT * FROM msgq_test.a_recv('q1', 'a_gone');

--
-- Rights: each function checks the caller's right on the queue; a
-- RedrivePolicy needs SendMessage on the dead-letter queue
--
RESET msgq.clock_offset;
CREATE ROLE regress_msgq_a_user;
CREATE ROLE regress_msgq_a_other;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO regress_msgq_a_user;
SELECT msgq.create_queue('a_priv_dlq');
SELECT msgq.create_queue('a_priv');
SELECT md5_of_message_body = md5('priv') AS sent FROM msgq.send_message('a_priv', 'priv');
SET ROLE regress_msgq_a_user;
SELECT msgq_test.err($$SELECT msgq.create_queue('a_priv_src', '{"RedrivePolicy": {"deadLetterTargetArn": "a_priv_dlq", "maxReceiveCount": 2}}')$$);
SELECT msgq.create_queue('a_priv_src');
SELECT msgq_test.err($$SELECT msgq.set_queue_attributes('a_priv_src', '{"RedrivePolicy": {"deadLetterTargetArn": "a_priv_dlq", "maxReceiveCount": 2}}')$$);
RESET ROLE;
SELECT msgq.add_permission('a_priv_dlq', 'send', '{regress_msgq_a_user}', '{SendMessage}');
SET ROLE regress_msgq_a_user;
SELECT msgq.set_queue_attributes('a_priv_src', '{"RedrivePolicy": {"deadLetterTargetArn": "a_priv_dlq", "maxReceiveCount": 2}}');
-- SendMessage on the DLQ does not let its sources be listed (GetQueueAttributes does)
SELECT msgq_test.err($$SELECT msgq.list_dead_letter_source_queues('a_priv_dlq')$$);
-- the owner of a queue may do everything on it
SELECT msgq.get_queue_attributes('a_priv_src', '{RedrivePolicy}') <> '{}' AS has_policy;
SELECT msgq.tag_queue('a_priv_src', '{"owner": "user"}');
SELECT msgq.list_queue_tags('a_priv_src');
SELECT msgq.purge_queue('a_priv_src');
RESET ROLE;
SELECT * FROM msgq.list_dead_letter_source_queues('a_priv_dlq');
-- no right on a_priv
SET ROLE regress_msgq_a_other;
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('get', $$SELECT msgq.get_queue_attributes('a_priv')$$),
	('set', $$SELECT msgq.set_queue_attributes('a_priv', '{"DelaySeconds": 1}')$$),
	('purge', $$SELECT msgq.purge_queue('a_priv')$$),
	('tag', $$SELECT msgq.tag_queue('a_priv', '{"k": "v"}')$$),
	('untag', $$SELECT msgq.untag_queue('a_priv', '{k}')$$),
	('list tags', $$SELECT msgq.list_queue_tags('a_priv')$$),
	('list sources', $$SELECT msgq.list_dead_letter_source_queues('a_priv')$$)
	) AS t(f, s);
RESET ROLE;
-- GetQueueAttributes reads, but neither sets nor purges
SELECT msgq.add_permission('a_priv', 'get', '{regress_msgq_a_other}', '{GetQueueAttributes}');
SET ROLE regress_msgq_a_other;
SELECT msgq.get_queue_attributes('a_priv', '{ApproximateNumberOfMessages,DelaySeconds}');
SELECT msgq_test.err($$SELECT msgq.set_queue_attributes('a_priv', '{"DelaySeconds": 1}')$$);
SELECT msgq_test.err($$SELECT msgq.purge_queue('a_priv')$$);
RESET ROLE;
SELECT msgq.add_permission('a_priv', 'purge', '{regress_msgq_a_other}', '{PurgeQueue}');
SELECT msgq.add_permission('a_priv', 'set', '{regress_msgq_a_other}', '{SQS:SetQueueAttributes}');
SET ROLE regress_msgq_a_other;
SELECT msgq.purge_queue('a_priv');
SELECT msgq.set_queue_attributes('a_priv', '{"DelaySeconds": 1}');
SELECT msgq.get_queue_attributes('a_priv', '{ApproximateNumberOfMessages,DelaySeconds}');
RESET ROLE;

--
-- Clean up: queues first (the roles own or hold rights on some), then roles
--
SELECT count(*) AS deleted FROM msgq.list_queues('a_') AS q, LATERAL msgq.delete_queue(q);
SELECT * FROM msgq.list_queues('a_');
REVOKE EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) FROM regress_msgq_a_user;
DROP ROLE regress_msgq_a_user, regress_msgq_a_other;
DROP TABLE msgq_test.a_got, msgq_test.a_sent;
RESET msgq.clock_offset;
