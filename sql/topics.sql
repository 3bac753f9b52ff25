--
-- topics: SNS-style topics (src/topic.c): names, attributes and
-- idempotency; subscriptions (sqs, notify, kinesis) and their attributes;
-- publish and publish_batch with fan-out in the publisher's transaction,
-- raw and enveloped delivery, filter policies, MessageStructure json, FIFO
-- topics to FIFO queues with deduplication; dead-letter queues of
-- subscriptions; rights.  Names here start with "t_".
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
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
-- everything of a queue's messages, received at once (and deleted)
CREATE FUNCTION msgq_test.drain(p_queue text)
RETURNS TABLE (body text, message_attributes jsonb, group_id text)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT * FROM msgq.receive_message(p_queue, 10) LOOP
		body := r.body;
		message_attributes := r.message_attributes;
		group_id := r.attributes->>'MessageGroupId';
		PERFORM msgq.delete_message(p_queue, r.receipt_handle);
		RETURN NEXT;
	END LOOP;
END
$$;

-- Topic names and attributes
SELECT msgq.create_topic('t_orders') = 'arn:aws:sns:msgq:' || current_database() || ':t_orders' AS arn_ok;
SELECT msgq.create_topic('t_orders') = msgq.create_topic('t_orders') AS idempotent;
SELECT n, msgq_test.err(format('SELECT msgq.create_topic(%L, %L)', n, a)) FROM (VALUES
	('', '{}'), (repeat('x', 257), '{}'), ('bad name', '{}'), ('t_x.fifo', '{}'),
	('t_x', '{"FifoTopic": "true"}'), ('t_x', '{"FifoTopic": "maybe"}'),
	('t_x', '{"Nope": "1"}'), ('t_x', '{"ContentBasedDeduplication": "true"}'),
	('t_x', '{"SignatureVersion": "3"}'), ('t_x', '{"Policy": "not json"}'),
	('t_x', '{"DisplayName": "' || repeat('d', 101) || '"}'),
	('t_orders', '{"DisplayName": "other"}')) AS v(n, a);
SELECT msgq.create_topic(repeat('x', 256)) IS NOT NULL AS longest_name;
SELECT msgq.delete_topic(repeat('x', 256));
SELECT msgq.create_topic('t_attrs', '{"DisplayName": "Orders", "SignatureVersion": "2", "TracingConfig": "Active"}') IS NOT NULL;
SELECT msgq.create_topic('t_attrs', '{"DisplayName": "Orders"}') IS NOT NULL AS same_given_attributes;
SELECT key, value FROM jsonb_each_text(msgq.get_topic_attributes('t_attrs'))
 WHERE key NOT IN ('TopicArn', 'Owner', 'EffectiveDeliveryPolicy') ORDER BY key;
SELECT msgq.set_topic_attributes('t_attrs', 'DisplayName', 'Renamed');
SELECT msgq.get_topic_attributes('t_attrs')->>'DisplayName' AS display_name;
SELECT a, msgq_test.err(format('SELECT msgq.set_topic_attributes(%L, %L, %L)', t, a, v)) FROM (VALUES
	('t_attrs', 'FifoTopic', 'true'), ('t_attrs', 'Bogus', 'x'),
	('t_attrs', 'ContentBasedDeduplication', 'true'), ('t_nope', 'DisplayName', 'x'),
	('t_attrs', 'TracingConfig', 'Sometimes')) AS v(t, a, v);
SELECT msgq.create_topic('t_f.fifo', '{"FifoTopic": true, "ContentBasedDeduplication": true}') IS NOT NULL;
SELECT key, value FROM jsonb_each_text(msgq.get_topic_attributes('t_f.fifo'))
 WHERE key LIKE 'Fifo%' OR key = 'ContentBasedDeduplication' ORDER BY key;
SELECT msgq.set_topic_attributes('t_f.fifo', 'FifoThroughputScope', 'MessageGroup');
SELECT msgq.get_topic_attributes('t_f.fifo')->>'FifoThroughputScope' AS scope;
SELECT msgq.set_topic_attributes('t_f.fifo', 'FifoThroughputScope', 'Topic');
SELECT replace(t, current_database(), 'DB') AS topic FROM msgq.list_topics() t WHERE t LIKE '%:t\_%';
SELECT msgq_test.err($$SELECT msgq.get_topic_attributes('t_nope')$$);
SELECT msgq.delete_topic('t_nope');	-- deleting a missing topic succeeds

-- Subscriptions
SELECT msgq.create_queue('t_q1'), msgq.create_queue('t_q2'), msgq.create_queue('t_dlq'),
	   msgq.create_queue('t_fq.fifo', '{"FifoQueue": "true"}'),
	   msgq.create_queue('t_fdlq.fifo', '{"FifoQueue": "true"}');
SELECT msgq.create_stream('t_s', 1);
SELECT msgq.subscribe('t_orders', 'sqs', 't_q1', '{"RawMessageDelivery": "true"}') AS sub_q1 \gset
SELECT :'sub_q1' LIKE 'arn:aws:sns:msgq:%:t_orders:________-____-____-____-____________' AS sub_arn_ok;
SELECT msgq.subscribe('t_orders', 'sqs', 't_q1', '{"RawMessageDelivery": "true"}') = :'sub_q1' AS idempotent;
SELECT msgq.subscribe('t_orders', 'sqs', 'arn:aws:sqs:msgq:' || current_database() || ':t_q2',
	'{"FilterPolicy": {"kind": ["big", {"prefix": "huge"}]}}') AS sub_q2 \gset
SELECT msgq.subscribe('t_orders', 'notify', 't_chan') AS sub_n \gset
SELECT msgq.subscribe('t_orders', 'kinesis', 't_s',
	'{"RawMessageDelivery": "true", "PartitionKeyAttribute": "kind"}') AS sub_k \gset
SELECT p, msgq_test.err(format('SELECT msgq.subscribe(%L, %L, %L, %L)', t, p, e, a)) FROM (VALUES
	('t_orders', 'sqs', 't_q1', '{"RawMessageDelivery": "false"}'),
	('t_orders', 'sqs', 'msgq://db/t_q1', '{}'),
	('t_orders', 'sqs', 't_missing', '{}'),
	('t_orders', 'sqs', 't_fq.fifo', '{}'),
	('t_f.fifo', 'sqs', 't_q1', '{}'),
	('t_f.fifo', 'notify', 'c', '{}'),
	('t_orders', 'email', 'a@b', '{}'),
	('t_orders', 'smoke', 'x', '{}'),
	('t_orders', 'sqs', '', '{}'),
	('t_orders', 'notify', repeat('c', 64), '{}'),
	('t_orders', 'kinesis', 't_nostream', '{}'),
	('t_orders', 'sqs', 't_q2', '{"RawMessageDelivery": "yes"}'),
	('t_orders', 'sqs', 't_q2', '{"FilterPolicyScope": "Body"}'),
	('t_orders', 'sqs', 't_q2', '{"FilterPolicy": "{\"a\": []}"}'),
	('t_orders', 'sqs', 't_q2', '{"FilterPolicy": "{\"a\": {\"b\": [1]}}"}'),
	('t_orders', 'sqs', 't_q2', '{"DeliveryPolicy": "{}"}'),
	('t_orders', 'sqs', 't_q2', '{"RedrivePolicy": "{\"deadLetterTargetArn\": \"t_none\"}"}'),
	('t_orders', 'sqs', 't_q2', '{"Whatever": "1"}'),
	('t_nope', 'sqs', 't_q1', '{}')) AS v(t, p, e, a);
SELECT protocol, endpoint, owner = current_user AS mine,
	   subscription_arn = :'sub_q1' OR subscription_arn = :'sub_q2' OR subscription_arn = :'sub_n'
	   OR subscription_arn = :'sub_k' AS known
  FROM msgq.list_subscriptions_by_topic('t_orders');
SELECT count(*) FROM msgq.list_subscriptions() WHERE topic_arn LIKE '%:t_orders';
SELECT key, value FROM jsonb_each_text(msgq.get_subscription_attributes(:'sub_q2'))
 WHERE key NOT IN ('SubscriptionArn', 'TopicArn', 'Owner', 'Endpoint') ORDER BY key;
SELECT msgq.get_subscription_attributes(:'sub_q2')->>'Endpoint' LIKE 'arn:aws:sqs:msgq:%:t_q2' AS endpoint_arn;
SELECT a, msgq_test.err(format('SELECT msgq.set_subscription_attributes(%L, %L, %L)', s, a, v)) FROM (VALUES
	(:'sub_q1', 'RawMessageDelivery', 'TRUE'), (:'sub_q1', 'Protocol', 'x'),
	(:'sub_q1', 'FilterPolicyScope', 'Nowhere'), (:'sub_q1', 'FilterPolicy', '{"a": "b"}'),
	('arn:aws:sns:msgq:x:t:not-a-uuid', 'RawMessageDelivery', 'true'),
	('arn:aws:sns:msgq:x:t:00000000-0000-0000-0000-000000000000', 'RawMessageDelivery', 'true')) AS v(s, a, v);
SELECT msgq_test.err($$SELECT msgq.confirm_subscription('t_orders', 'some-token')$$);

-- Publish: fan-out to each matching subscription
SELECT message_id IS NOT NULL AS has_id, sequence_number FROM msgq.publish('t_orders', 'small order',
	message_attributes => '{"kind": {"DataType": "String", "StringValue": "small"}}');
SELECT message_id AS big_id FROM msgq.publish('t_orders', 'big order', subject => 'Big',
	message_attributes => '{"kind": {"DataType": "String", "StringValue": "huge-1"}, "n": {"DataType": "Number", "StringValue": "42"}}') \gset
-- raw delivery: the message and its attributes as SQS message attributes
SELECT * FROM msgq_test.drain('t_q1') ORDER BY body;
-- enveloped: the SNS notification document, only the matching message
SELECT body::jsonb - 'MessageId' - 'Timestamp' - 'Signature' - 'UnsubscribeURL' - 'TopicArn' AS envelope,
	   body::jsonb->>'MessageId' = :'big_id' AS same_id,
	   body::jsonb->>'UnsubscribeURL' = 'msgq:unsubscribe?SubscriptionArn=' || :'sub_q2' AS unsubscribe_url,
	   body::jsonb->>'Timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$' AS iso_timestamp,
	   msgq.verify_notification(body::jsonb) AS signed,
	   msgq.verify_notification(jsonb_set(body::jsonb, '{Message}', '"forged"')) AS forged_verifies
  FROM msgq_test.drain('t_q2');
-- kinesis: the partition key from the named attribute
SELECT partition_key, convert_from(data, 'UTF8') AS data
  FROM msgq.get_records(msgq.get_shard_iterator('t_s', 'shardId-000000000000', 'TRIM_HORIZON'));

-- Rollback delivers nothing; commit delivers in the same transaction as the
-- publisher's own writes
BEGIN;
SELECT count(*) FROM msgq.publish('t_orders', 'rolled back');
ROLLBACK;
SELECT count(*) AS after_rollback FROM msgq_test.drain('t_q1');
BEGIN;
SELECT count(*) FROM msgq.publish('t_orders', 'first');
SELECT count(*) FROM msgq.publish('t_orders', 'second');
SELECT count(*) AS before_commit_elsewhere FROM msgq_test.drain('t_q1');	-- own transaction sees them
ROLLBACK;

-- MessageStructure json: the sqs entry for queues, default for others
SELECT count(*) FROM msgq.publish('t_orders', '{"default": "for everyone", "sqs": "for queues", "email": 1}',
	message_structure => 'json');
SELECT body FROM msgq_test.drain('t_q1');
SELECT convert_from(data, 'UTF8') AS data
  FROM msgq.get_records(msgq.get_shard_iterator('t_s', 'shardId-000000000000', 'TRIM_HORIZON'))
 ORDER BY sequence_number DESC LIMIT 1;

-- Publish errors
SELECT w, msgq_test.err(s) FROM (VALUES
	('empty', $$SELECT msgq.publish('t_orders', '')$$),
	('null', $$SELECT msgq.publish('t_orders', NULL)$$),
	('too long', $$SELECT msgq.publish('t_orders', repeat('x', 262145))$$),
	('too long with attributes', $$SELECT msgq.publish('t_orders', repeat('x', 262140), message_attributes => '{"abc": {"DataType": "String", "StringValue": "de"}}')$$),
	('empty subject', $$SELECT msgq.publish('t_orders', 'x', subject => '')$$),
	('subject line break', $$SELECT msgq.publish('t_orders', 'x', subject => E'a\nb')$$),
	('long subject', $$SELECT msgq.publish('t_orders', 'x', subject => repeat('s', 100))$$),
	('no topic', $$SELECT msgq.publish('t_nope', 'x')$$),
	('dedup on standard', $$SELECT msgq.publish('t_orders', 'x', message_deduplication_id => 'd')$$),
	('structure', $$SELECT msgq.publish('t_orders', 'x', message_structure => 'xml')$$),
	('structure not json', $$SELECT msgq.publish('t_orders', 'x', message_structure => 'json')$$),
	('structure no default', $$SELECT msgq.publish('t_orders', '{"sqs": "x"}', message_structure => 'json')$$),
	('attribute empty value', $$SELECT msgq.publish('t_orders', 'x', message_attributes => '{"a": {"DataType": "String", "StringValue": ""}}')$$),
	('attribute bad type', $$SELECT msgq.publish('t_orders', 'x', message_attributes => '{"a": {"DataType": "Text", "StringValue": "v"}}')$$),
	('number as binary', $$SELECT msgq.publish('t_orders', 'x', message_attributes => '{"a": {"DataType": "Number", "BinaryValue": "AA=="}}')$$),
	('number not a number', $$SELECT msgq.publish('t_orders', 'x', message_attributes => '{"a": {"DataType": "Number", "StringValue": "ten"}}')$$),
	('number out of range', $$SELECT msgq.publish('t_orders', 'x', message_attributes => '{"a": {"DataType": "Number", "StringValue": "1000000001"}}')$$),
	('binary as string', $$SELECT msgq.publish('t_orders', 'x', message_attributes => '{"a": {"DataType": "Binary", "StringValue": "x"}}')$$),
	('attribute name', $$SELECT msgq.publish('t_orders', 'x', message_attributes => '{"AWS.x": {"DataType": "String", "StringValue": "v"}}')$$),
	('fifo no group', $$SELECT msgq.publish('t_f.fifo', 'x')$$)) AS v(w, s);
SELECT count(*) AS nothing_delivered FROM msgq_test.drain('t_q1');

-- More than 10 attributes cannot go raw to a queue: the delivery fails
SELECT count(*) FROM msgq.publish('t_orders', 'many',
	message_attributes => (SELECT jsonb_object_agg('a' || i, jsonb_build_object('DataType', 'String', 'StringValue', 'v'))
							 FROM generate_series(1, 11) i));
SELECT count(*) AS raw_with_11_attributes FROM msgq_test.drain('t_q1');

-- A subscription's dead-letter queue gets what cannot be delivered
SELECT msgq.set_subscription_attributes(:'sub_q1', 'RedrivePolicy',
	'{"deadLetterTargetArn": "arn:aws:sqs:msgq:db:t_dlq"}');
SELECT msgq.get_subscription_attributes(:'sub_q1')->>'RedrivePolicy' AS redrive;
SELECT msgq.set_queue_attributes('t_q1', '{"MaximumMessageSize": "1024"}');
SELECT count(*) FROM msgq.publish('t_orders', repeat('y', 2000));
SELECT count(*) AS in_q1 FROM msgq_test.drain('t_q1');
SELECT body::jsonb->>'Type' AS type, length(body::jsonb->>'Message') AS message_length
  FROM msgq_test.drain('t_dlq');
SELECT msgq.set_subscription_attributes(:'sub_q1', 'RedrivePolicy', '');
SELECT msgq.get_subscription_attributes(:'sub_q1') ? 'RedrivePolicy' AS has_redrive;
SELECT msgq.set_queue_attributes('t_q1', '{"MaximumMessageSize": "1048576"}');
-- a deleted queue: the publish succeeds, nothing is delivered there
SELECT msgq.delete_queue('t_q2');
SELECT count(*) FROM msgq.publish('t_orders', 'after delete',
	message_attributes => '{"kind": {"DataType": "String", "StringValue": "big"}}');
SELECT body FROM msgq_test.drain('t_q1');

-- Filter policies change at once; FilterPolicy "" removes the policy and its scope
SELECT msgq.set_subscription_attributes(:'sub_q1', 'FilterPolicyScope', 'MessageBody');
SELECT msgq.set_subscription_attributes(:'sub_q1', 'FilterPolicy', '{"order": {"total": [{"numeric": [">", 100]}]}}');
SELECT count(*) FROM msgq.publish('t_orders', '{"order": {"total": 50}}');
SELECT count(*) FROM msgq.publish('t_orders', '{"order": {"total": 150.5}}');
SELECT count(*) FROM msgq.publish('t_orders', 'not json');
SELECT body FROM msgq_test.drain('t_q1');
SELECT msgq.set_subscription_attributes(:'sub_q1', 'FilterPolicy', '');
SELECT msgq.get_subscription_attributes(:'sub_q1') ?| '{FilterPolicy,FilterPolicyScope}' AS has_policy;

-- publish_batch: per-entry results in entry order
SELECT id, message_id IS NOT NULL AS published, sequence_number, error_code, error_message, sender_fault
  FROM msgq.publish_batch('t_orders', '[
	{"Id": "a", "Message": "batch one"},
	{"Id": "b", "Message": ""},
	{"Id": "c", "Message": "batch three", "Subject": "S", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
	{"Id": "d", "Message": "x", "MessageDeduplicationId": "no"}]');
SELECT body, message_attributes FROM msgq_test.drain('t_q1') ORDER BY body;
SELECT w, msgq_test.err(s) FROM (VALUES
	('empty', $$SELECT * FROM msgq.publish_batch('t_orders', '[]')$$),
	('eleven', $$SELECT * FROM msgq.publish_batch('t_orders', (SELECT jsonb_agg(jsonb_build_object('Id', 'e' || i, 'Message', 'm')) FROM generate_series(1, 11) i))$$),
	('same ids', $$SELECT * FROM msgq.publish_batch('t_orders', '[{"Id": "a", "Message": "m"}, {"Id": "a", "Message": "n"}]')$$),
	('bad id', $$SELECT * FROM msgq.publish_batch('t_orders', '[{"Id": "a b", "Message": "m"}]')$$),
	('too long', $$SELECT * FROM msgq.publish_batch('t_orders', jsonb_build_array(jsonb_build_object('Id', 'a', 'Message', repeat('x', 200000)), jsonb_build_object('Id', 'b', 'Message', repeat('x', 100000))))$$)) AS v(w, s);

-- FIFO topics to FIFO queues: groups, sequence numbers, deduplication
SELECT msgq.subscribe('t_f.fifo', 'sqs', 't_fq.fifo', '{"RawMessageDelivery": "true"}') IS NOT NULL AS fifo_sub;
SELECT msgq_test.err($$SELECT msgq.subscribe('t_f.fifo', 'sqs', 't_fdlq.fifo', '{"RedrivePolicy": "{\"deadLetterTargetArn\": \"t_dlq\"}"}')$$);
SELECT sequence_number AS s1 FROM msgq.publish('t_f.fifo', 'g1 first', message_group_id => 'g1') \gset
SELECT sequence_number AS s2 FROM msgq.publish('t_f.fifo', 'g1 second', message_group_id => 'g1') \gset
SELECT length(:'s1') AS digits, :'s2'::numeric > :'s1'::numeric AS increasing;
-- content-based: the same message within five minutes is the same publish
SELECT message_id AS dup1, sequence_number AS dseq FROM msgq.publish('t_f.fifo', 'g1 first', message_group_id => 'g1') \gset
SELECT :'dseq' = :'s1' AS same_sequence_number;
SELECT count(*) FROM msgq.publish('t_f.fifo', 'explicit', message_group_id => 'g2', message_deduplication_id => 'd-1');
SELECT count(*) FROM msgq.publish('t_f.fifo', 'explicit again', message_group_id => 'g2', message_deduplication_id => 'd-1');
SELECT body, group_id FROM msgq_test.drain('t_fq.fifo');
SELECT body, group_id FROM msgq_test.drain('t_fq.fifo');
SELECT body, group_id FROM msgq_test.drain('t_fq.fifo');
-- the window ends after five minutes (msgq's test clock) and maintenance
SET msgq.clock_offset = '301s';
SELECT msgq.run_maintenance();
SELECT count(*) FROM msgq.publish('t_f.fifo', 'explicit again', message_group_id => 'g2', message_deduplication_id => 'd-1');
SELECT body FROM msgq_test.drain('t_fq.fifo');
RESET msgq.clock_offset;
SELECT w, msgq_test.err(s) FROM (VALUES
	('group on a standard topic', $$SELECT msgq.publish('t_attrs', 'x', message_group_id => 'g')$$),
	('fifo dedup needed', $$SELECT msgq.create_topic('t_g.fifo', '{"FifoTopic": "true"}')$$),
	('fifo without dedup', $$SELECT msgq.publish('t_g.fifo', 'x', message_group_id => 'g')$$),
	('bad group', $$SELECT msgq.publish('t_f.fifo', 'x', message_group_id => repeat('g', 129))$$)) AS v(w, s);
SELECT id, sequence_number IS NOT NULL AS numbered, error_code
  FROM msgq.publish_batch('t_f.fifo', '[{"Id": "1", "Message": "b1", "MessageGroupId": "g3"},
	{"Id": "2", "Message": "b2"}, {"Id": "3", "Message": "b3", "MessageGroupId": "g3"}]');
SELECT body FROM msgq_test.drain('t_fq.fifo');

-- Rights: the topic's owner (or a superuser) only
CREATE ROLE regress_msgq_t_other;
GRANT EXECUTE ON FUNCTION msgq.create_topic(text, jsonb) TO regress_msgq_t_other;
GRANT USAGE ON SCHEMA msgq_test TO regress_msgq_t_other;
SET ROLE regress_msgq_t_other;
SELECT w, msgq_test.err(s) FROM (VALUES
	('publish', $$SELECT msgq.publish('t_orders', 'x')$$),
	('subscribe', $$SELECT msgq.subscribe('t_orders', 'notify', 'c')$$),
	('attributes', $$SELECT msgq.get_topic_attributes('t_orders')$$),
	('delete', $$SELECT msgq.delete_topic('t_orders')$$),
	('unsubscribe', format('SELECT msgq.unsubscribe(%L)', :'sub_q1')),
	('own topic', $$SELECT msgq.create_topic('t_theirs')$$),
	('their queue', $$SELECT msgq.subscribe('t_theirs', 'sqs', 't_q1')$$),
	('tag', $$SELECT msgq.tag_topic('t_orders', '{"a": "b"}')$$),
	('list tags', $$SELECT msgq.list_topic_tags('t_orders')$$)) AS v(w, s);
SELECT count(*) AS visible_topics FROM msgq.list_topics();
RESET ROLE;
-- add_permission with a topic ARN grants SNS actions on it
SELECT msgq.create_topic('t_orders') AS t_arn \gset
SELECT msgq.add_permission(:'t_arn', 'pub', '{regress_msgq_t_other}', '{Publish,SNS:GetTopicAttributes}');
SELECT msgq_test.err(format('SELECT msgq.add_permission(%L, %L, %L, %L)', :'t_arn', l, r, a)) FROM (VALUES
	('pub', '{regress_msgq_t_other}', '{Publish}'), ('x', '{regress_msgq_t_other}', '{SendMessage}'),
	('y', '{regress_msgq_t_nobody}', '{Publish}')) AS v(l, r, a);
SET ROLE regress_msgq_t_other;
SELECT w, msgq_test.err(s) FROM (VALUES
	('publish', $$SELECT msgq.publish('t_orders', 'x')$$),
	('attributes', $$SELECT msgq.get_topic_attributes('t_orders') IS NOT NULL$$),
	('subscribe', $$SELECT msgq.subscribe('t_orders', 'notify', 'c')$$),
	('set attributes', $$SELECT msgq.set_topic_attributes('t_orders', 'DisplayName', 'x')$$),
	('grant onward', format('SELECT msgq.add_permission(%L, %L, %L, %L)', :'t_arn', 'z', '{public}', '{Publish}'))) AS v(w, s);
SELECT count(*) AS visible_topics FROM msgq.list_topics();
RESET ROLE;
SELECT body FROM msgq_test.drain('t_q1');
SELECT msgq.remove_permission(:'t_arn', 'pub');
SELECT msgq_test.err(format('SELECT msgq.remove_permission(%L, %L)', :'t_arn', 'pub'));
SET ROLE regress_msgq_t_other;
SELECT msgq_test.err($$SELECT msgq.publish('t_orders', 'x')$$) AS after_remove;
RESET ROLE;
-- a role that owns a topic cannot be dropped
SELECT msgq_test.err('DROP ROLE regress_msgq_t_other');
SELECT msgq.delete_topic('t_theirs');
REVOKE EXECUTE ON FUNCTION msgq.create_topic(text, jsonb) FROM regress_msgq_t_other;
REVOKE USAGE ON SCHEMA msgq_test FROM regress_msgq_t_other;
DROP ROLE regress_msgq_t_other;

-- Tags (SNS's TagResource, UntagResource, ListTagsForResource): by name or
-- ARN, a key given again replaces its value, at most 50, AWS's characters
SELECT msgq.tag_topic('t_orders', '{"team": "orders", "env": "dev"}');
SELECT msgq.tag_topic(:'t_arn', '{"env": "prod", "cost center": ""}');
SELECT msgq.list_topic_tags('t_orders');
SELECT msgq.untag_topic('t_orders', '{team,absent}');
SELECT msgq.list_topic_tags(:'t_arn');
SELECT w, msgq_test.err(s) FROM (VALUES
	('empty key', $$SELECT msgq.tag_topic('t_orders', '{"": "x"}')$$),
	('reserved key', $$SELECT msgq.tag_topic('t_orders', '{"AWS:x": "y"}')$$),
	('bad character', $$SELECT msgq.tag_topic('t_orders', '{"a#b": "y"}')$$),
	('not a string', $$SELECT msgq.tag_topic('t_orders', '{"n": 1}')$$),
	('no tags', $$SELECT msgq.tag_topic('t_orders', '{}')$$),
	('no keys', $$SELECT msgq.untag_topic('t_orders', NULL)$$),
	('51 tags', (SELECT format('SELECT msgq.tag_topic(%L, %L)', 't_orders', jsonb_object_agg('k' || i, 'v'))
				   FROM generate_series(1, 49) i)),
	('missing topic', $$SELECT msgq.list_topic_tags('t_none')$$)) AS v(w, s);
SELECT msgq.list_topic_tags('t_orders') AS unchanged;

-- Unsubscribe and delete
SELECT msgq.unsubscribe(:'sub_n');
SELECT msgq.unsubscribe(:'sub_n');	-- again: nothing to do
SELECT count(*) FROM msgq.list_subscriptions_by_topic('t_orders');
SELECT msgq.delete_topic('t_orders');
SELECT count(*) AS subscriptions_left FROM msgq.subscription s JOIN msgq.topic t USING (topic_id)
 WHERE t.topic_name = 't_orders';
SELECT msgq_test.err(format('SELECT msgq.get_subscription_attributes(%L)', :'sub_q1'));
SELECT msgq.delete_topic('t_f.fifo'), msgq.delete_topic('t_attrs'), msgq.delete_topic('t_g.fifo');
SELECT msgq.delete_queue(q) FROM unnest('{t_q1,t_dlq,t_fq.fifo,t_fdlq.fifo}'::text[]) q;
SELECT msgq.delete_stream('t_s');
