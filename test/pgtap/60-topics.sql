-- 60-topics.sql: the SQL contract of topics: signatures, return types and
-- parameter names of every topic function, who may call what, and the
-- SQLSTATE of every topic error (InvalidParameter MQ024, NotFound MQ025,
-- FilterPolicyLimitExceeded MQ026, ParameterValueInvalid MQ027,
-- AuthorizationError 42501; batch errors MQ014-MQ018).
-- sql/topics.sql tests the behaviour, sql/filter.sql the filter language.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(81);

-- Signatures -------------------------------------------------------------------
SELECT has_function('msgq', 'create_topic', ARRAY['text', 'jsonb'], 'msgq.create_topic(text, jsonb) exists');
SELECT function_returns('msgq', 'create_topic', ARRAY['text', 'jsonb'], 'text');
SELECT has_function('msgq', 'delete_topic', ARRAY['text'], 'msgq.delete_topic(text) exists');
SELECT function_returns('msgq', 'delete_topic', ARRAY['text'], 'void');
SELECT has_function('msgq', 'list_topics', ARRAY[]::text[], 'msgq.list_topics() exists');
SELECT function_returns('msgq', 'list_topics', ARRAY[]::text[], 'setof text');
SELECT has_function('msgq', 'get_topic_attributes', ARRAY['text'], 'msgq.get_topic_attributes(text) exists');
SELECT function_returns('msgq', 'get_topic_attributes', ARRAY['text'], 'jsonb');
SELECT has_function('msgq', 'set_topic_attributes', ARRAY['text', 'text', 'text'],
	'msgq.set_topic_attributes(text, text, text) exists');
SELECT function_returns('msgq', 'set_topic_attributes', ARRAY['text', 'text', 'text'], 'void');
SELECT has_function('msgq', 'subscribe', ARRAY['text', 'text', 'text', 'jsonb'],
	'msgq.subscribe(text, text, text, jsonb) exists');
SELECT function_returns('msgq', 'subscribe', ARRAY['text', 'text', 'text', 'jsonb'], 'text');
SELECT has_function('msgq', 'unsubscribe', ARRAY['text'], 'msgq.unsubscribe(text) exists');
SELECT function_returns('msgq', 'unsubscribe', ARRAY['text'], 'void');
SELECT has_function('msgq', 'confirm_subscription', ARRAY['text', 'text', 'boolean'],
	'msgq.confirm_subscription(text, text, boolean) exists');
SELECT function_returns('msgq', 'confirm_subscription', ARRAY['text', 'text', 'boolean'], 'text');
SELECT has_function('msgq', 'list_subscriptions', ARRAY[]::text[], 'msgq.list_subscriptions() exists');
SELECT function_returns('msgq', 'list_subscriptions', ARRAY[]::text[], 'setof record');
SELECT has_function('msgq', 'list_subscriptions_by_topic', ARRAY['text'],
	'msgq.list_subscriptions_by_topic(text) exists');
SELECT function_returns('msgq', 'list_subscriptions_by_topic', ARRAY['text'], 'setof record');
SELECT has_function('msgq', 'get_subscription_attributes', ARRAY['text'],
	'msgq.get_subscription_attributes(text) exists');
SELECT function_returns('msgq', 'get_subscription_attributes', ARRAY['text'], 'jsonb');
SELECT has_function('msgq', 'set_subscription_attributes', ARRAY['text', 'text', 'text'],
	'msgq.set_subscription_attributes(text, text, text) exists');
SELECT function_returns('msgq', 'set_subscription_attributes', ARRAY['text', 'text', 'text'], 'void');
SELECT has_function('msgq', 'publish', ARRAY['text', 'text', 'text', 'jsonb', 'text', 'text', 'text'],
	'msgq.publish(text, text, text, jsonb, text, text, text) exists');
SELECT function_returns('msgq', 'publish', ARRAY['text', 'text', 'text', 'jsonb', 'text', 'text', 'text'],
	'setof record');
SELECT has_function('msgq', 'publish_batch', ARRAY['text', 'jsonb'], 'msgq.publish_batch(text, jsonb) exists');
SELECT function_returns('msgq', 'publish_batch', ARRAY['text', 'jsonb'], 'setof record');
SELECT has_function('msgq', 'filter_policy_matches', ARRAY['text', 'text', 'jsonb', 'text'],
	'msgq.filter_policy_matches(text, text, jsonb, text) exists');
SELECT function_returns('msgq', 'filter_policy_matches', ARRAY['text', 'text', 'jsonb', 'text'], 'boolean');
SELECT has_function('msgq', 'verify_notification', ARRAY['jsonb'], 'msgq.verify_notification(jsonb) exists');

SELECT is((SELECT pg_catalog.pg_get_function_arguments('msgq.publish(text, text, text, jsonb, text, text, text)'::regprocedure)),
	'topic_name text, message text, subject text DEFAULT NULL::text, message_attributes jsonb DEFAULT NULL::jsonb, message_group_id text DEFAULT NULL::text, message_deduplication_id text DEFAULT NULL::text, message_structure text DEFAULT NULL::text',
	'publish: parameter names and defaults');
SELECT is((SELECT pg_catalog.pg_get_function_result('msgq.publish(text, text, text, jsonb, text, text, text)'::regprocedure)),
	'TABLE(message_id uuid, sequence_number text)', 'publish: result columns');
SELECT is((SELECT pg_catalog.pg_get_function_arguments('msgq.create_topic(text, jsonb)'::regprocedure)),
	'name text, attributes jsonb DEFAULT ''{}''::jsonb', 'create_topic: parameter names and defaults');
SELECT is((SELECT pg_catalog.pg_get_function_arguments('msgq.subscribe(text, text, text, jsonb)'::regprocedure)),
	'topic_name text, protocol text, endpoint text, attributes jsonb DEFAULT ''{}''::jsonb',
	'subscribe: parameter names and defaults');
SELECT is((SELECT pg_catalog.pg_get_function_arguments('msgq.set_subscription_attributes(text, text, text)'::regprocedure)),
	'subscription text, attribute_name text, attribute_value text', 'set_subscription_attributes: parameter names');
SELECT is((SELECT pg_catalog.pg_get_function_result('msgq.publish_batch(text, jsonb)'::regprocedure)),
	'TABLE(id text, message_id uuid, sequence_number text, error_code text, error_message text, sender_fault boolean)',
	'publish_batch: result columns');
SELECT is((SELECT pg_catalog.pg_get_function_arguments('msgq.filter_policy_matches(text, text, jsonb, text)'::regprocedure)),
	'policy text, scope text DEFAULT NULL::text, message_attributes jsonb DEFAULT NULL::jsonb, body text DEFAULT NULL::text',
	'filter_policy_matches: parameter names and defaults');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
	   WHERE p.pronamespace = 'msgq'::regnamespace
		 AND p.proname IN ('create_topic', 'delete_topic', 'set_topic_attributes', 'subscribe',
						   'unsubscribe', 'set_subscription_attributes', 'publish', 'publish_batch')
		 AND p.provolatile <> 'v'$$,
	'topic functions that change state are VOLATILE');
SELECT ok(NOT has_function_privilege('public', 'msgq.create_topic(text, jsonb)', 'EXECUTE'),
	'creating topics is granted, not public');

-- Errors and their SQLSTATEs ------------------------------------------------------
SELECT lives_ok($$SELECT msgq.create_topic('tap_t')$$, 'create_topic');
SELECT lives_ok($$SELECT msgq.create_queue('tap_tq')$$, 'a queue to subscribe');
SELECT throws_ok($$SELECT msgq.create_topic('bad name')$$, 'MQ024',
	'invalid parameter: Topic Name', 'a bad topic name is InvalidParameter');
SELECT throws_ok($$SELECT msgq.create_topic('tap_t', '{"DisplayName": "x"}')$$, 'MQ024',
	'invalid parameter: Attributes Reason: Topic already exists with different attributes',
	'create_topic with other attributes is InvalidParameter');
-- tags: TagResource, UntagResource, ListTagsForResource
SELECT has_function('msgq', 'tag_topic', ARRAY['text', 'jsonb'], 'msgq.tag_topic(text, jsonb) exists');
SELECT function_returns('msgq', 'tag_topic', ARRAY['text', 'jsonb'], 'void');
SELECT has_function('msgq', 'untag_topic', ARRAY['text', 'text[]'], 'msgq.untag_topic(text, text[]) exists');
SELECT function_returns('msgq', 'untag_topic', ARRAY['text', 'text[]'], 'void');
SELECT has_function('msgq', 'list_topic_tags', ARRAY['text'], 'msgq.list_topic_tags(text) exists');
SELECT function_returns('msgq', 'list_topic_tags', ARRAY['text'], 'jsonb');
SELECT lives_ok($$SELECT msgq.tag_topic('tap_t', '{"team": "a", "env": ""}')$$, 'tag_topic');
SELECT is(msgq.list_topic_tags('tap_t'), '{"env": "", "team": "a"}'::jsonb, 'list_topic_tags');
SELECT throws_ok($$SELECT msgq.tag_topic('tap_none', '{"a": "b"}')$$, '42704',
	'resource does not exist: topic "tap_none"', 'tagging a missing topic is ResourceNotFound');
SELECT throws_ok($$SELECT msgq.tag_topic('tap_t', '{"aws:x": "b"}')$$, 'MQ006',
	'invalid tag key "aws:x"', 'a reserved tag key is InvalidParameter');
SELECT throws_ok(format('SELECT msgq.tag_topic(%L, %L)', 'tap_t',
	(SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 49) i)), 'MQ006',
	'too many tags for topic "tap_t": 51, at most 50', 'more than 50 tags is TagLimitExceeded');
SELECT throws_ok($$SELECT msgq.get_topic_attributes('tap_none')$$, 'MQ025',
	'topic does not exist', 'a missing topic is NotFound');
SELECT throws_ok($$SELECT msgq.publish('tap_none', 'x')$$, 'MQ025',
	'topic does not exist', 'publish to a missing topic is NotFound');
SELECT throws_ok($$SELECT msgq.publish('tap_t', '')$$, 'MQ024',
	'invalid parameter: Empty message', 'an empty message is InvalidParameter');
SELECT throws_ok($$SELECT msgq.publish('tap_t', 'x', message_attributes => '{"a": {"DataType": "Number", "StringValue": "x"}}')$$,
	'MQ027', 'could not cast message attribute ''a'' value to number.',
	'a bad attribute is ParameterValueInvalid');
SELECT throws_ok($$SELECT msgq.subscribe('tap_t', 'email', 'a@b')$$, 'MQ024',
	'invalid parameter: Amazon SNS does not support this protocol string: email',
	'an unsupported protocol is InvalidParameter');
SELECT throws_ok($$SELECT msgq.subscribe('tap_t', 'sqs', 'tap_tq', '{"FilterPolicy": "{\"a\": []}"}')$$, 'MQ024',
	'invalid parameter: Attributes Reason: FilterPolicy: Empty arrays are not allowed',
	'a bad filter policy is InvalidParameter');
SELECT throws_ok($$SELECT msgq.filter_policy_matches('{"a": 1}', 'MessageAttributes', NULL, NULL)$$, 'MQ024',
	NULL, 'filter_policy_matches validates the policy');
SELECT throws_ok($$SELECT msgq.get_subscription_attributes('arn:aws:sns:msgq:x:t:00000000-0000-0000-0000-000000000000')$$,
	'MQ025', 'subscription does not exist', 'a missing subscription is NotFound');
SELECT throws_ok($$SELECT * FROM msgq.publish_batch('tap_t', '[]')$$, 'MQ014', NULL, 'an empty batch');
SELECT throws_ok($$SELECT * FROM msgq.publish_batch('tap_t', '[{"Id": "a", "Message": "m"}, {"Id": "a", "Message": "m"}]')$$,
	'MQ017', NULL, 'repeated batch ids');
SELECT lives_ok($$SELECT msgq.subscribe('tap_t', 'sqs', 'tap_tq', '{"FilterPolicy": "{\"a\": [\"b\"]}"}')$$,
	'subscribe with a policy');
-- FilterPolicyLimitExceeded: 200 policies per topic
SELECT lives_ok($$SELECT msgq.create_queue('tap_tq' || i) FROM generate_series(1, 200) i$$, '200 queues');
SELECT throws_ok($$SELECT msgq.subscribe('tap_t', 'sqs', 'tap_tq' || i, '{"FilterPolicy": "{\"a\": [\"b\"]}"}')
					 FROM generate_series(1, 200) i$$,
	'MQ026', 'filter policy limit exceeded', 'the 201st policy of a topic is FilterPolicyLimitExceeded');

-- Deliveries after commit: function, http, https ---------------------------------
SELECT has_table('msgq', 'topic_delivery', 'msgq.topic_delivery holds the pending deliveries');
SELECT throws_ok($$SELECT msgq.subscribe('tap_t', 'function', 'tap_missing(jsonb)')$$, 'MQ024',
	NULL, 'a missing function is InvalidParameter');
SELECT throws_ok($$SELECT msgq.subscribe('tap_t', 'function', 'pg_catalog.abs(int)')$$, 'MQ024',
	NULL, 'a function of the wrong argument type is InvalidParameter');
SELECT throws_ok($$SELECT msgq.subscribe('tap_t', 'http', 'https://x.invalid/')$$, 'MQ024',
	'invalid parameter: Endpoint must match the specified protocol',
	'an endpoint of another scheme is InvalidParameter');
SELECT throws_ok($$SELECT msgq.subscribe('tap_t', 'https', 'https://x.invalid/',
	'{"DeliveryPolicy": "{\"healthyRetryPolicy\": {\"numRetries\": 101}}"}')$$, 'MQ024',
	NULL, 'a bad DeliveryPolicy is InvalidParameter');
SELECT is(msgq.subscribe('tap_t', 'https', 'https://x.invalid/'), 'pending confirmation',
	'an https subscription is pending until confirmed');
SELECT is((SELECT kind FROM msgq.topic_delivery), 'SubscriptionConfirmation',
	'its confirmation is queued');
SELECT throws_ok($$SELECT msgq.confirm_subscription('tap_t', 'bad')$$, 'MQ024',
	'invalid parameter: Token', 'an unknown token is InvalidParameter');
SELECT matches(msgq.confirm_subscription('tap_t', (SELECT payload::jsonb->>'Token' FROM msgq.topic_delivery)),
	'^arn:aws:sns:msgq:', 'the token confirms it and returns its ARN');

-- Rights ---------------------------------------------------------------------------
CREATE ROLE tap_topic_user;
SET ROLE tap_topic_user;
SELECT throws_ok($$SELECT msgq.create_topic('tap_u')$$, '42501', NULL,
	'creating a topic needs EXECUTE on create_topic');
SELECT throws_ok($$SELECT msgq.publish('tap_t', 'x')$$, '42501', NULL,
	'publishing to another role''s topic is AuthorizationError');
SELECT throws_ok($$SELECT msgq.subscribe('tap_t', 'notify', 'c')$$, '42501', NULL,
	'subscribing to another role''s topic is AuthorizationError');
SELECT is((SELECT count(*) FROM msgq.list_topics()), 0::bigint, 'list_topics shows only the caller''s topics');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
