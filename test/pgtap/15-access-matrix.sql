-- 15-access-matrix.sql: every PUBLIC-executable msgq function, called by a
-- role with no right on the object it names, is refused with AccessDenied
-- (42501) and changes nothing.
--
-- * An owner role (granted EXECUTE on the create_* functions, as a DBA
--   would) makes one object of every kind: a queue with a dead-letter queue
--   and a running move task, a FIFO queue, a topic with a subscription, a
--   stream with a registered consumer, a lease and an iterator, a second
--   stream, an event source mapping, a delivery stream, a stream query and
--   an access key.  Receipt handles, ARNs, UUIDs, iterators and task
--   handles are obtained as the owner first.
-- * A stranger role, with USAGE on the schema and nothing else, then calls
--   every function on those objects: each call is refused with 42501, and
--   the object is checked afterwards (as superuser) to be as it was.
-- * The list functions, callable by anyone, show the stranger none of the
--   owner's objects (and show them to the owner).
-- * The same refusals when the objects are named by URL or ARN, and when the
--   stranger holds a right on one object (Subscribe on the topic,
--   DeleteMessage on the dead-letter queue) and uses it to reach another
--   (the owner's queue as an endpoint, a receipt handle of another queue:
--   ReceiptHandleIsInvalid, MQ004).
-- * Functions that name no object are listed in comments with the reason:
--   the file accounts for every function of
--     SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
--      WHERE n.nspname = 'msgq' AND has_function_privilege('public', p.oid, 'EXECUTE')
--   (the last assertion checks that this list is the one the file covers).
--
-- No sleeps: long polls get wait_time_seconds 0.  Run with pg_prove against
-- a database where CREATE EXTENSION pgtap and CREATE EXTENSION msgq already
-- ran.  Everything happens in one transaction that is rolled back.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(170);

-------------------------------------------------------------------------------
-- Roles and the owner's objects
-------------------------------------------------------------------------------
-- (USAGE on the schema is granted explicitly so that these tests exercise
-- msgq's own checks whatever the schema's default privileges are.)
CREATE ROLE tap_acl_owner NOLOGIN;
CREATE ROLE tap_acl_stranger NOLOGIN;
GRANT USAGE ON SCHEMA msgq TO tap_acl_owner, tap_acl_stranger;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb), msgq.create_topic(text, jsonb),
	msgq.create_stream(text, integer, text), msgq.create_delivery_stream(text, jsonb),
	msgq.create_stream_query(text, text, text, jsonb) TO tap_acl_owner;
-- the handler of the event source mapping (EXECUTE is PUBLIC's)
CREATE FUNCTION pg_temp.tap_acl_handler(ev jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;

SET LOCAL ROLE tap_acl_owner;
-- queues
SELECT lives_ok($$SELECT msgq.create_queue('tap_acl_dlq')$$, 'owner: create the dead-letter queue');
SELECT msgq.get_queue_attributes('tap_acl_dlq')->>'QueueArn' AS dlq_arn \gset
SELECT lives_ok(format('SELECT msgq.create_queue(%L, %L)', 'tap_acl_q',
	jsonb_build_object('RedrivePolicy', jsonb_build_object('deadLetterTargetArn', :'dlq_arn', 'maxReceiveCount', 5)::text)),
	'owner: create a queue that redrives to it');
SELECT lives_ok($$SELECT msgq.create_queue('tap_acl_q.fifo', '{"FifoQueue": "true", "ContentBasedDeduplication": "true"}')$$,
	'owner: create a FIFO queue');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_acl_q', 'm1')$$, 'owner: send m1');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_acl_q', 'm2')$$, 'owner: send m2');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_acl_q.fifo', 'f1', message_group_id => 'g')$$,
	'owner: send to the FIFO queue');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_acl_dlq', 'd1')$$, 'owner: send to the dead-letter queue');
SELECT receipt_handle AS rh FROM msgq.receive_message('tap_acl_q', visibility_timeout => 600, wait_time_seconds => 0) \gset
SELECT receipt_handle AS frh FROM msgq.receive_message('tap_acl_q.fifo', visibility_timeout => 600, wait_time_seconds => 0) \gset
SELECT lives_ok($$SELECT msgq.tag_queue('tap_acl_q', '{"team": "a"}')$$, 'owner: tag the queue');
SELECT lives_ok($$SELECT msgq.add_permission('tap_acl_q', 'tap_acl_keep', '{tap_acl_owner}', '{GetQueueAttributes}')$$,
	'owner: add a permission label');
SELECT msgq.start_message_move_task(:'dlq_arn') AS task \gset
-- topic and subscription
SELECT msgq.create_topic('tap_acl_t') AS topic_arn \gset
SELECT msgq.subscribe(:'topic_arn', 'sqs', 'tap_acl_q') AS sub_arn \gset
SELECT lives_ok(format('SELECT msgq.tag_topic(%L, %L)', :'topic_arn', '{"team": "a"}'), 'owner: tag the topic');
SELECT lives_ok(format('SELECT msgq.add_permission(%L, %L, %L, %L)', :'topic_arn', 'tap_acl_keep',
	'{tap_acl_owner}', '{GetTopicAttributes}'), 'owner: add a permission label to the topic');
-- streams, consumer, iterator, lease and checkpoint
SELECT lives_ok($$SELECT msgq.create_stream('tap_acl_s', 1)$$, 'owner: create a stream');
SELECT lives_ok($$SELECT msgq.create_stream('tap_acl_s2', 1)$$, 'owner: create a second stream');
SELECT lives_ok($$SELECT * FROM msgq.put_record('tap_acl_s', 'k', '\x01')$$, 'owner: put a record');
SELECT msgq.register_stream_consumer('tap_acl_s', 'tap_acl_c') AS consumer_arn \gset
SELECT msgq.get_shard_iterator('tap_acl_s', 'shardId-000000000000', 'TRIM_HORIZON') AS iterator \gset
SELECT is((SELECT count(*)::int FROM msgq.acquire_leases('tap_acl_s', 'tap_acl_g', 'tap_acl_w') WHERE acquired), 1,
	'owner: a worker takes the lease of the shard');
-- event source mapping, delivery stream, stream query, access key
SELECT msgq.create_event_source_mapping('tap_acl_q', 'pg_temp.tap_acl_handler(jsonb)', '{"BatchSize": 3, "Enabled": false}') AS esm \gset
SELECT lives_ok($$SELECT msgq.create_delivery_stream('tap_acl_fh', '{"Destination": {"Type": "Queue", "QueueName": "tap_acl_q"}}')$$,
	'owner: create a delivery stream');
SELECT lives_ok($$SELECT msgq.put_delivery_record('tap_acl_fh', '\x7b7d')$$, 'owner: put a delivery record');
SELECT lives_ok($$SELECT msgq.create_stream_query('tap_acl_sq', 'tap_acl_s', 'SELECT window_start, count(*) FROM records GROUP BY 1',
	'{"Window": {"Type": "Tumbling", "SizeInSeconds": 10}, "Destination": {"Type": "Stream", "StreamName": "tap_acl_s2"}}')$$,
	'owner: create a stream query');
SELECT access_key_id AS key_id FROM msgq.create_access_key('tap_acl_owner') \gset

-- The list functions show the owner its objects (so that the stranger's
-- empty lists below mean something).
SELECT is((SELECT array_agg(u ORDER BY u) FROM msgq.list_queues('tap_acl') u),
	ARRAY['tap_acl_dlq', 'tap_acl_q', 'tap_acl_q.fifo'],
	'owner: list_queues shows its three queues');
SELECT is((SELECT count(*)::int FROM msgq.list_topics() t WHERE t LIKE '%tap_acl_t'), 1, 'owner: list_topics shows its topic');
SELECT is((SELECT count(*)::int FROM msgq.list_subscriptions() WHERE topic_arn = :'topic_arn'), 1,
	'owner: list_subscriptions shows its subscription');
SELECT is((SELECT count(*)::int FROM msgq.list_streams() s WHERE s LIKE 'tap_acl_s%'), 2, 'owner: list_streams shows its streams');
SELECT is((SELECT count(*)::int FROM msgq.list_event_source_mappings('tap_acl_q')), 1,
	'owner: list_event_source_mappings shows its mapping');
SELECT is((SELECT count(*)::int FROM msgq.list_delivery_streams() d WHERE d LIKE '%tap_acl_fh'), 1,
	'owner: list_delivery_streams shows its delivery stream');
SELECT is((SELECT count(*)::int FROM msgq.list_stream_queries() q WHERE q = 'tap_acl_sq'), 1,
	'owner: list_stream_queries shows its query');
SELECT is((SELECT count(*)::int FROM msgq.access_keys WHERE access_key_id = :'key_id'), 1,
	'owner: msgq.access_keys shows its key');
RESET ROLE;
SELECT query_id AS sq_id FROM msgq.stream_query WHERE query_name = 'tap_acl_sq' \gset

-------------------------------------------------------------------------------
-- Queues
-------------------------------------------------------------------------------
SET LOCAL ROLE tap_acl_stranger;
SELECT throws_ok($$SELECT msgq.delete_queue('tap_acl_q')$$, '42501', NULL,
	'stranger: delete_queue is refused');
SELECT is_empty($$SELECT * FROM msgq.list_queues('tap_acl')$$,
	'stranger: list_queues shows none of the owner''s queues');
SELECT is_empty($$SELECT * FROM msgq.list_queues()$$,
	'stranger: list_queues without a prefix shows none of them either');
SELECT is_empty($$SELECT * FROM msgq._list_queues_after('tap_acl', 'tap_acl_a')$$,
	'stranger: _list_queues_after (the endpoint''s paging) shows none of them');
SELECT throws_ok($$SELECT msgq.get_queue_url('tap_acl_q')$$, '42501', NULL,
	'stranger: get_queue_url is refused');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_acl_q', 'x')$$, '42501', NULL,
	'stranger: send_message is refused');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_acl_q.fifo', 'x', message_group_id => 'g')$$, '42501', NULL,
	'stranger: send_message to the FIFO queue is refused');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_acl_q', wait_time_seconds => 0)$$, '42501', NULL,
	'stranger: receive_message is refused');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_acl_q.fifo', wait_time_seconds => 0)$$, '42501', NULL,
	'stranger: receive_message from the FIFO queue is refused');
SELECT throws_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_acl_q', :'rh'), '42501', NULL,
	'stranger: delete_message with the owner''s valid receipt handle is refused');
SELECT throws_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_acl_q.fifo', :'frh'), '42501', NULL,
	'stranger: delete_message on the FIFO queue with the owner''s receipt handle is refused');
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, 0)', 'tap_acl_q', :'rh'), '42501', NULL,
	'stranger: change_message_visibility with the owner''s receipt handle is refused');
SELECT throws_ok($$SELECT * FROM msgq.send_message_batch('tap_acl_q', '[{"Id": "a", "MessageBody": "x"}]')$$, '42501', NULL,
	'stranger: send_message_batch is refused');
SELECT throws_ok(format('SELECT * FROM msgq.delete_message_batch(%L, %L)', 'tap_acl_q',
	jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', :'rh'))), '42501', NULL,
	'stranger: delete_message_batch with the owner''s receipt handle is refused');
SELECT throws_ok(format('SELECT * FROM msgq.change_message_visibility_batch(%L, %L)', 'tap_acl_q',
	jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', :'rh', 'VisibilityTimeout', 0))), '42501', NULL,
	'stranger: change_message_visibility_batch with the owner''s receipt handle is refused');
SELECT throws_ok($$SELECT msgq.get_queue_attributes('tap_acl_q')$$, '42501', NULL,
	'stranger: get_queue_attributes is refused');
SELECT throws_ok($$SELECT msgq.set_queue_attributes('tap_acl_q', '{"DelaySeconds": "7"}')$$, '42501', NULL,
	'stranger: set_queue_attributes is refused');
SELECT throws_ok($$SELECT msgq.purge_queue('tap_acl_q')$$, '42501', NULL,
	'stranger: purge_queue is refused');
SELECT throws_ok($$SELECT msgq.tag_queue('tap_acl_q', '{"team": "b"}')$$, '42501', NULL,
	'stranger: tag_queue is refused');
SELECT throws_ok($$SELECT msgq.untag_queue('tap_acl_q', '{team}')$$, '42501', NULL,
	'stranger: untag_queue is refused');
SELECT throws_ok($$SELECT msgq.list_queue_tags('tap_acl_q')$$, '42501', NULL,
	'stranger: list_queue_tags is refused');
SELECT throws_ok($$SELECT * FROM msgq.list_dead_letter_source_queues('tap_acl_dlq')$$, '42501', NULL,
	'stranger: list_dead_letter_source_queues is refused');
SELECT throws_ok(format('SELECT msgq.start_message_move_task(%L)', :'dlq_arn'), '42501', NULL,
	'stranger: start_message_move_task from the owner''s dead-letter queue is refused');
SELECT throws_ok(format('SELECT msgq.cancel_message_move_task(%L)', :'task'), '42501', NULL,
	'stranger: cancel_message_move_task of the owner''s task is refused');
SELECT throws_ok(format('SELECT * FROM msgq.list_message_move_tasks(%L, 10)', :'dlq_arn'), '42501', NULL,
	'stranger: list_message_move_tasks is refused');
SELECT throws_ok($$SELECT msgq.add_permission('tap_acl_q', 'tap_acl_mine', '{tap_acl_stranger}', '{*}')$$, '42501', NULL,
	'stranger: add_permission (granting itself everything) is refused');
SELECT throws_ok($$SELECT msgq.remove_permission('tap_acl_q', 'tap_acl_keep')$$, '42501', NULL,
	'stranger: remove_permission is refused');

-- The refused calls changed nothing.
RESET ROLE;
SELECT is((SELECT count(*)::int FROM msgq.queue WHERE queue_name LIKE 'tap_acl%'), 3,
	'after the refusals: the three queues exist');
SELECT is(msgq.get_queue_attributes('tap_acl_q', '{ApproximateNumberOfMessages,ApproximateNumberOfMessagesNotVisible,DelaySeconds}'),
	'{"DelaySeconds": "0", "ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "1"}'::jsonb,
	'after the refusals: the queue holds m2 visible and m1 in flight, DelaySeconds unchanged');
SELECT is(msgq.get_queue_attributes('tap_acl_q.fifo', '{ApproximateNumberOfMessages,ApproximateNumberOfMessagesNotVisible}'),
	'{"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"}'::jsonb,
	'after the refusals: the FIFO queue holds its one message, in flight');
SELECT is(msgq.list_queue_tags('tap_acl_q'), '{"team": "a"}'::jsonb, 'after the refusals: the queue''s tags are unchanged');
SELECT is((SELECT array_agg(p.label ORDER BY p.label) FROM msgq.queue_permission p JOIN msgq.queue q USING (queue_id)
			WHERE q.queue_name = 'tap_acl_q'), ARRAY['tap_acl_keep'],
	'after the refusals: the queue''s only permission label is the owner''s');
SELECT is((SELECT status FROM msgq.message_move_task WHERE task_handle::text = :'task'), 'RUNNING',
	'after the refusals: the owner''s move task is still running');
SELECT is((SELECT count(*)::int FROM msgq.message_move_task t JOIN msgq.queue q ON q.queue_id = t.source_queue_id
			WHERE q.queue_name = 'tap_acl_dlq'), 1,
	'after the refusals: no other move task was started');

-------------------------------------------------------------------------------
-- Topics and subscriptions
-------------------------------------------------------------------------------
SET LOCAL ROLE tap_acl_stranger;
SELECT throws_ok(format('SELECT msgq.delete_topic(%L)', :'topic_arn'), '42501', NULL,
	'stranger: delete_topic is refused');
SELECT is_empty($$SELECT * FROM msgq.list_topics() t WHERE t LIKE '%tap_acl%'$$,
	'stranger: list_topics shows none of the owner''s topics');
SELECT throws_ok(format('SELECT msgq.get_topic_attributes(%L)', :'topic_arn'), '42501', NULL,
	'stranger: get_topic_attributes is refused');
SELECT throws_ok(format('SELECT msgq.tag_topic(%L, %L)', :'topic_arn', '{"team": "b"}'), '42501', NULL,
	'stranger: tag_topic is refused');
SELECT throws_ok(format('SELECT msgq.untag_topic(%L, %L)', :'topic_arn', '{team}'), '42501', NULL,
	'stranger: untag_topic is refused');
SELECT throws_ok(format('SELECT msgq.list_topic_tags(%L)', :'topic_arn'), '42501', NULL,
	'stranger: list_topic_tags is refused');
SELECT throws_ok(format('SELECT msgq.set_topic_attributes(%L, %L, %L)', :'topic_arn', 'DisplayName', 'pwned'), '42501', NULL,
	'stranger: set_topic_attributes is refused');
SELECT throws_ok(format('SELECT msgq.subscribe(%L, %L, %L)', :'topic_arn', 'sqs', 'tap_acl_dlq'), '42501', NULL,
	'stranger: subscribe to the owner''s topic is refused');
SELECT throws_ok(format('SELECT msgq.unsubscribe(%L)', :'sub_arn'), '42501', NULL,
	'stranger: unsubscribe of the owner''s subscription is refused');
SELECT throws_ok(format('SELECT msgq.confirm_subscription(%L, %L)', :'topic_arn', 'tap_acl_token'), '42501', NULL,
	'stranger: confirm_subscription on the owner''s topic is refused');
SELECT is_empty(format('SELECT * FROM msgq.list_subscriptions() WHERE topic_arn = %L', :'topic_arn'),
	'stranger: list_subscriptions shows none of the owner''s subscriptions');
SELECT throws_ok(format('SELECT * FROM msgq.list_subscriptions_by_topic(%L)', :'topic_arn'), '42501', NULL,
	'stranger: list_subscriptions_by_topic is refused');
SELECT throws_ok(format('SELECT msgq.get_subscription_attributes(%L)', :'sub_arn'), '42501', NULL,
	'stranger: get_subscription_attributes is refused');
SELECT throws_ok(format('SELECT msgq.set_subscription_attributes(%L, %L, %L)', :'sub_arn', 'RawMessageDelivery', 'true'),
	'42501', NULL, 'stranger: set_subscription_attributes is refused');
SELECT throws_ok(format('SELECT * FROM msgq.publish(%L, %L)', :'topic_arn', 'x'), '42501', NULL,
	'stranger: publish is refused');
SELECT throws_ok(format('SELECT * FROM msgq.publish_batch(%L, %L)', :'topic_arn', '[{"Id": "a", "Message": "x"}]'),
	'42501', NULL, 'stranger: publish_batch is refused');
SELECT throws_ok(format('SELECT msgq.add_permission(%L, %L, %L, %L)', :'topic_arn', 'tap_acl_mine', '{tap_acl_stranger}', '{*}'),
	'42501', NULL, 'stranger: add_permission on the topic''s ARN is refused');
SELECT throws_ok(format('SELECT msgq.remove_permission(%L, %L)', :'topic_arn', 'tap_acl_keep'), '42501', NULL,
	'stranger: remove_permission on the topic''s ARN is refused');

RESET ROLE;
SELECT is((SELECT count(*)::int FROM msgq.topic WHERE topic_name = 'tap_acl_t'), 1, 'after the refusals: the topic exists');
SELECT is(msgq.list_topic_tags(:'topic_arn'), '{"team": "a"}'::jsonb, 'after the refusals: the topic''s tags are unchanged');
SELECT ok(coalesce(msgq.get_topic_attributes(:'topic_arn')->>'DisplayName', '') <> 'pwned',
	'after the refusals: the topic''s DisplayName is unchanged');
SELECT results_eq(format('SELECT subscription_arn FROM msgq.list_subscriptions_by_topic(%L)', :'topic_arn'),
	ARRAY[:'sub_arn'], 'after the refusals: the topic has the owner''s subscription only');
SELECT is(msgq.get_subscription_attributes(:'sub_arn')->>'RawMessageDelivery', 'false',
	'after the refusals: the subscription''s attributes are unchanged');
SELECT is((SELECT array_agg(p.label) FROM msgq.topic_permission p JOIN msgq.topic t USING (topic_id)
			WHERE t.topic_name = 'tap_acl_t'), ARRAY['tap_acl_keep'],
	'after the refusals: the topic''s only permission label is the owner''s');
SELECT is(msgq.get_queue_attributes('tap_acl_q', '{ApproximateNumberOfMessages}')->>'ApproximateNumberOfMessages', '1',
	'after the refusals: nothing was published to the subscribed queue');

-------------------------------------------------------------------------------
-- Streams, consumers, leases, checkpoints
-------------------------------------------------------------------------------
SET LOCAL ROLE tap_acl_stranger;
SELECT throws_ok($$SELECT msgq.delete_stream('tap_acl_s')$$, '42501', NULL,
	'stranger: delete_stream is refused');
SELECT is_empty($$SELECT * FROM msgq.list_streams() s WHERE s LIKE 'tap_acl%'$$,
	'stranger: list_streams shows none of the owner''s streams');
SELECT throws_ok($$SELECT * FROM msgq.list_shards('tap_acl_s')$$, '42501', NULL,
	'stranger: list_shards is refused');
SELECT throws_ok($$SELECT * FROM msgq.put_record('tap_acl_s', 'k', '\x02')$$, '42501', NULL,
	'stranger: put_record is refused');
SELECT throws_ok($$SELECT msgq.get_shard_iterator('tap_acl_s', 'shardId-000000000000', 'TRIM_HORIZON')$$, '42501', NULL,
	'stranger: get_shard_iterator is refused');
SELECT throws_ok(format('SELECT * FROM msgq.get_records(%L)', :'iterator'), '42501', NULL,
	'stranger: get_records with the owner''s iterator is refused');
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_acl_s', '[{"PartitionKey": "k", "Data": "Ag=="}]'::jsonb)$$, '42501', NULL,
	'stranger: put_records (jsonb) is refused');
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_acl_s', '{k}'::text[], '{"\\x02"}'::bytea[])$$, '42501', NULL,
	'stranger: put_records (arrays) is refused');
SELECT throws_ok($$SELECT msgq.describe_stream_summary('tap_acl_s')$$, '42501', NULL,
	'stranger: describe_stream_summary is refused');
SELECT throws_ok($$SELECT msgq.checkpoint('tap_acl_s', 'tap_acl_g', 'shardId-000000000000', 1)$$, '42501', NULL,
	'stranger: checkpoint is refused');
SELECT throws_ok($$SELECT msgq.checkpoint('tap_acl_s', 'tap_acl_g', 'shardId-000000000000', 1, 'tap_acl_w')$$, '42501', NULL,
	'stranger: checkpoint naming the owner''s worker is refused');
SELECT throws_ok($$SELECT * FROM msgq.acquire_leases('tap_acl_s', 'tap_acl_g', 'tap_acl_thief', failover_time_ms => 1)$$, '42501', NULL,
	'stranger: acquire_leases is refused');
SELECT throws_ok($$SELECT * FROM msgq.acquire_leases('tap_acl_s', 'tap_acl_g', 'tap_acl_thief', 0, 0)$$, '42501', NULL,
	'stranger: acquire_leases with bad arguments is refused before they are judged');
SELECT throws_ok($$SELECT msgq.release_leases('tap_acl_s', 'tap_acl_g', 'tap_acl_w')$$, '42501', NULL,
	'stranger: release_leases of the owner''s worker is refused');
SELECT throws_ok($$SELECT msgq.increase_stream_retention_period('tap_acl_s', 48)$$, '42501', NULL,
	'stranger: increase_stream_retention_period is refused');
SELECT throws_ok($$SELECT msgq.decrease_stream_retention_period('tap_acl_s', 24)$$, '42501', NULL,
	'stranger: decrease_stream_retention_period is refused');
SELECT throws_ok($$SELECT msgq.register_stream_consumer('tap_acl_s', 'tap_acl_mine')$$, '42501', NULL,
	'stranger: register_stream_consumer is refused');
SELECT throws_ok($$SELECT msgq.deregister_stream_consumer('tap_acl_s', 'tap_acl_c')$$, '42501', NULL,
	'stranger: deregister_stream_consumer of the owner''s consumer is refused');
SELECT throws_ok($$SELECT * FROM msgq.list_stream_consumers('tap_acl_s')$$, '42501', NULL,
	'stranger: list_stream_consumers is refused');
SELECT throws_ok($$SELECT * FROM msgq.subscribe_to_shard('tap_acl_s', 'tap_acl_c', 'shardId-000000000000', 'TRIM_HORIZON', wait_time_seconds => 0)$$,
	'42501', NULL, 'stranger: subscribe_to_shard with the owner''s consumer is refused');
SELECT throws_ok(format('SELECT * FROM msgq.subscribe_to_shard(%L, %L, %L, %L, wait_time_seconds => 0)',
	'tap_acl_s', :'consumer_arn', 'shardId-000000000000', 'TRIM_HORIZON'),
	'42501', NULL, 'stranger: subscribe_to_shard with the owner''s consumer ARN is refused');
SELECT throws_ok($$SELECT msgq.split_shard('tap_acl_s', 'shardId-000000000000', '170141183460469231731687303715884105728')$$,
	'42501', NULL, 'stranger: split_shard is refused');
SELECT throws_ok($$SELECT msgq.merge_shards('tap_acl_s', 'shardId-000000000000', 'shardId-000000000001')$$, '42501', NULL,
	'stranger: merge_shards is refused');
SELECT throws_ok($$SELECT msgq.update_shard_count('tap_acl_s', 2)$$, '42501', NULL,
	'stranger: update_shard_count is refused');
SELECT throws_ok($$SELECT msgq.update_stream_mode('tap_acl_s', 'ON_DEMAND')$$, '42501', NULL,
	'stranger: update_stream_mode is refused');
SELECT throws_ok($$SELECT msgq.enforce_shard_limits('tap_acl_s', false)$$, '42501', NULL,
	'stranger: enforce_shard_limits is refused');

RESET ROLE;
SELECT is((SELECT count(*)::int FROM msgq.stream WHERE stream_name LIKE 'tap_acl_s%'), 2, 'after the refusals: both streams exist');
SELECT is((SELECT count(*)::int FROM msgq.get_records(:'iterator') WHERE data IS NOT NULL), 1,
	'after the refusals: the stream holds the owner''s one record');
SELECT is((SELECT count(*)::int FROM msgq.list_shards('tap_acl_s')), 1, 'after the refusals: the stream has one shard');
SELECT is((SELECT (s->>'RetentionPeriodHours') || ' ' || (s->>'StreamModeDetails')
		     FROM msgq.describe_stream_summary('tap_acl_s') s),
	(SELECT (s->>'RetentionPeriodHours') || ' ' || (s->>'StreamModeDetails')
	   FROM msgq.describe_stream_summary('tap_acl_s2') s),
	'after the refusals: retention and mode are those of an untouched stream');
SELECT is((SELECT enforce_shard_limits FROM msgq.stream WHERE stream_name = 'tap_acl_s'),
	(SELECT enforce_shard_limits FROM msgq.stream WHERE stream_name = 'tap_acl_s2'),
	'after the refusals: shard limits are those of an untouched stream');
SELECT results_eq($$SELECT consumer_name FROM msgq.list_stream_consumers('tap_acl_s')$$, ARRAY['tap_acl_c'],
	'after the refusals: the stream has the owner''s consumer only');
SELECT results_eq($$SELECT lease_owner, lease_held, checkpoint_sequence_number FROM msgq.stream_leases
					 WHERE stream_name = 'tap_acl_s'$$,
	$$VALUES ('tap_acl_w'::text, true, NULL::numeric)$$,
	'after the refusals: the owner''s worker holds the lease, with no checkpoint');

-------------------------------------------------------------------------------
-- Stream queries
-------------------------------------------------------------------------------
SET LOCAL ROLE tap_acl_stranger;
SELECT is_empty($$SELECT * FROM msgq.list_stream_queries() q WHERE q LIKE 'tap_acl%'$$,
	'stranger: list_stream_queries shows none of the owner''s queries');
SELECT throws_ok($$SELECT msgq.describe_stream_query('tap_acl_sq')$$, '42501', NULL,
	'stranger: describe_stream_query is refused');
SELECT throws_ok($$SELECT msgq.delete_stream_query('tap_acl_sq')$$, '42501', NULL,
	'stranger: delete_stream_query is refused');
SELECT throws_ok(format('SELECT * FROM msgq._window_records(%s, now() - interval ''1 hour'', now() + interval ''1 hour'')', :'sq_id'),
	'42501', NULL, 'stranger: _window_records of the owner''s query is refused');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM msgq.stream_query WHERE query_name = 'tap_acl_sq'), 1,
	'after the refusals: the stream query exists');

-------------------------------------------------------------------------------
-- Event source mappings
-------------------------------------------------------------------------------
SET LOCAL ROLE tap_acl_stranger;
SELECT throws_ok($$SELECT msgq.create_event_source_mapping('tap_acl_q', 'pg_temp.tap_acl_handler(jsonb)')$$, '42501', NULL,
	'stranger: create_event_source_mapping on the owner''s queue is refused');
SELECT throws_ok($$SELECT msgq.create_event_source_mapping('tap_acl_s', 'pg_temp.tap_acl_handler(jsonb)', '{"StartingPosition": "LATEST"}')$$,
	'42501', NULL, 'stranger: create_event_source_mapping on the owner''s stream is refused');
SELECT throws_ok(format('SELECT msgq.update_event_source_mapping(%L, %L)', :'esm', '{"BatchSize": 5}'), '42501', NULL,
	'stranger: update_event_source_mapping is refused');
SELECT throws_ok(format('SELECT msgq.delete_event_source_mapping(%L)', :'esm'), '42501', NULL,
	'stranger: delete_event_source_mapping is refused');
SELECT throws_ok(format('SELECT msgq.get_event_source_mapping(%L)', :'esm'), '42501', NULL,
	'stranger: get_event_source_mapping is refused');
SELECT is_empty($$SELECT * FROM msgq.list_event_source_mappings('tap_acl_q')$$,
	'stranger: list_event_source_mappings of the owner''s queue shows nothing');
SELECT is_empty(format('SELECT * FROM msgq.list_event_source_mappings() m WHERE m->>''UUID'' = %L', :'esm'),
	'stranger: list_event_source_mappings() does not show the owner''s mapping');
RESET ROLE;
SELECT is((SELECT (m->>'BatchSize')::int FROM msgq.get_event_source_mapping(:'esm') m), 3,
	'after the refusals: the mapping exists, its BatchSize unchanged');
SELECT is((SELECT count(*)::int FROM msgq.event_source_mapping), 1, 'after the refusals: no other mapping was created');

-------------------------------------------------------------------------------
-- Delivery streams
-------------------------------------------------------------------------------
SET LOCAL ROLE tap_acl_stranger;
SELECT throws_ok($$SELECT msgq.delete_delivery_stream('tap_acl_fh')$$, '42501', NULL,
	'stranger: delete_delivery_stream is refused');
SELECT throws_ok($$SELECT msgq.describe_delivery_stream('tap_acl_fh')$$, '42501', NULL,
	'stranger: describe_delivery_stream is refused');
SELECT is_empty($$SELECT * FROM msgq.list_delivery_streams() d WHERE d LIKE '%tap_acl%'$$,
	'stranger: list_delivery_streams shows none of the owner''s delivery streams');
SELECT is_empty($$SELECT * FROM msgq.list_delivery_streams('DirectPut') d WHERE d LIKE '%tap_acl%'$$,
	'stranger: list_delivery_streams(''DirectPut'') shows none of them either');
SELECT throws_ok($$SELECT msgq.put_delivery_record('tap_acl_fh', '\x7b7d')$$, '42501', NULL,
	'stranger: put_delivery_record is refused');
SELECT throws_ok($$SELECT * FROM msgq.put_record_batch('tap_acl_fh', '[{"Data": "e30="}]')$$, '42501', NULL,
	'stranger: put_record_batch is refused');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM msgq.delivery_stream WHERE ds_name = 'tap_acl_fh'), 1,
	'after the refusals: the delivery stream exists');
SELECT is((SELECT count(*)::int FROM msgq.delivery_record r JOIN msgq.delivery_stream d USING (ds_id)
			WHERE d.ds_name = 'tap_acl_fh'), 1, 'after the refusals: its buffer holds the owner''s one record');

-------------------------------------------------------------------------------
-- Access keys (the object is the key's role)
-------------------------------------------------------------------------------
SET LOCAL ROLE tap_acl_stranger;
SELECT throws_ok($$SELECT * FROM msgq.create_access_key('tap_acl_owner')$$, '42501', NULL,
	'stranger: create_access_key for the owner''s role is refused');
SELECT throws_ok(format('SELECT msgq.delete_access_key(%L)', :'key_id'), '42501', NULL,
	'stranger: delete_access_key of the owner''s key is refused');
SELECT throws_ok(format('SELECT msgq.check_access_key(%L)', :'key_id'), '42501', NULL,
	'stranger: check_access_key of the owner''s key is refused');
SELECT throws_ok($$SELECT msgq.rotate_access_key_encryption()$$, '42501', NULL,
	'stranger: rotate_access_key_encryption (superusers only) is refused');
SELECT throws_ok($$SELECT msgq.retire_access_key_encryption()$$, '42501', NULL,
	'stranger: retire_access_key_encryption (superusers only) is refused');
SELECT is_empty($$SELECT * FROM msgq.access_keys$$, 'stranger: msgq.access_keys shows none of the owner''s keys');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM msgq.endpoint_credential WHERE role = 'tap_acl_owner'::regrole), 1,
	'after the refusals: the owner has its one access key');

-------------------------------------------------------------------------------
-- The same objects named otherwise: queue URL and ARN, topic name, delivery
-- stream ARN (the stream functions take names only)
-------------------------------------------------------------------------------
SET LOCAL ROLE tap_acl_owner;
SELECT msgq.get_queue_url('tap_acl_q') AS q_url, msgq.get_queue_attributes('tap_acl_q')->>'QueueArn' AS q_arn \gset
SELECT msgq.describe_delivery_stream('tap_acl_fh')->>'DeliveryStreamARN' AS fh_arn \gset
SET LOCAL ROLE tap_acl_stranger;
SELECT throws_ok(format('SELECT * FROM msgq.send_message(%L, %L)', :'q_url', 'x'), '42501', NULL,
	'stranger: send_message by queue URL is refused');
SELECT throws_ok(format('SELECT * FROM msgq.send_message(%L, %L)', :'q_arn', 'x'), '42501', NULL,
	'stranger: send_message by queue ARN is refused');
SELECT throws_ok(format('SELECT * FROM msgq.receive_message(%L, wait_time_seconds => 0)', :'q_url'), '42501', NULL,
	'stranger: receive_message by queue URL is refused');
SELECT throws_ok(format('SELECT msgq.delete_queue(%L)', :'q_url'), '42501', NULL,
	'stranger: delete_queue by URL is refused');
SELECT throws_ok(format('SELECT msgq.purge_queue(%L)', :'q_arn'), '42501', NULL,
	'stranger: purge_queue by ARN is refused');
SELECT throws_ok($$SELECT * FROM msgq.publish('tap_acl_t', 'x')$$, '42501', NULL,
	'stranger: publish by topic name is refused');
SELECT throws_ok($$SELECT msgq.delete_topic('tap_acl_t')$$, '42501', NULL,
	'stranger: delete_topic by name is refused');
SELECT throws_ok(format('SELECT msgq.put_delivery_record(%L, %L)', :'fh_arn', '\x7b7d'), '42501', NULL,
	'stranger: put_delivery_record by ARN is refused');
SELECT throws_ok(format('SELECT msgq.delete_delivery_stream(%L)', :'fh_arn'), '42501', NULL,
	'stranger: delete_delivery_stream by ARN is refused');
RESET ROLE;
SELECT is(msgq.get_queue_attributes('tap_acl_q', '{ApproximateNumberOfMessages,ApproximateNumberOfMessagesNotVisible}'),
	'{"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "1"}'::jsonb,
	'after the refusals: the queue still holds m2 visible and m1 in flight');
SELECT is((SELECT count(*)::int FROM msgq.delivery_record r JOIN msgq.delivery_stream d USING (ds_id)
			WHERE d.ds_name = 'tap_acl_fh'), 1, 'after the refusals: the delivery buffer still holds one record');

-------------------------------------------------------------------------------
-- A right on one object does not reach another
-------------------------------------------------------------------------------
-- The owner grants the stranger Subscribe on the topic and DeleteMessage,
-- ChangeMessageVisibility on the dead-letter queue: the stranger still
-- cannot point a subscription at the owner's queue or stream, nor use a
-- receipt handle of tap_acl_q through tap_acl_dlq.
SET LOCAL ROLE tap_acl_owner;
SELECT lives_ok(format('SELECT msgq.add_permission(%L, %L, %L, %L)', :'topic_arn', 'tap_acl_sub',
	'{tap_acl_stranger}', '{Subscribe}'), 'owner: grant the stranger Subscribe on the topic');
SELECT lives_ok($$SELECT msgq.add_permission('tap_acl_dlq', 'tap_acl_del', '{tap_acl_stranger}',
	'{DeleteMessage,ChangeMessageVisibility}')$$, 'owner: grant the stranger DeleteMessage, ChangeMessageVisibility on the DLQ');
SET LOCAL ROLE tap_acl_stranger;
SELECT throws_ok(format('SELECT msgq.subscribe(%L, %L, %L)', :'topic_arn', 'sqs', 'tap_acl_q'), '42501', NULL,
	'stranger with Subscribe: subscribing the owner''s queue is refused (no SendMessage on it)');
SELECT throws_ok(format('SELECT msgq.subscribe(%L, %L, %L)', :'topic_arn', 'kinesis', 'tap_acl_s'), '42501', NULL,
	'stranger with Subscribe: subscribing the owner''s stream is refused');
SELECT throws_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_acl_dlq', :'rh'), 'MQ004', NULL,
	'stranger with DeleteMessage on the DLQ: a receipt handle of tap_acl_q is invalid there');
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, 0)', 'tap_acl_dlq', :'rh'), 'MQ004', NULL,
	'stranger with ChangeMessageVisibility on the DLQ: a receipt handle of tap_acl_q is invalid there');
SELECT is((SELECT error_code FROM msgq.delete_message_batch('tap_acl_dlq',
			jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', :'rh')))),
	'ReceiptHandleIsInvalid', 'stranger: delete_message_batch through the DLQ refuses the other queue''s handle');
SELECT is((SELECT error_code FROM msgq.change_message_visibility_batch('tap_acl_dlq',
			jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', :'rh', 'VisibilityTimeout', 0)))),
	'ReceiptHandleIsInvalid', 'stranger: change_message_visibility_batch through the DLQ refuses the other queue''s handle');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM msgq.list_subscriptions_by_topic(:'topic_arn')), 1,
	'after the refusals: the topic still has one subscription');
SELECT is(msgq.get_queue_attributes('tap_acl_q', '{ApproximateNumberOfMessages,ApproximateNumberOfMessagesNotVisible}'),
	'{"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "1"}'::jsonb,
	'after the refusals: m1 is still in flight in tap_acl_q, m2 visible');

-------------------------------------------------------------------------------
-- Functions that name no object
-------------------------------------------------------------------------------
-- msgq._assert_preloaded(): raises unless msgq is in shared_preload_libraries.
-- msgq.now(): the clock (with the superuser-only msgq.clock_offset).
-- msgq.waiters(), msgq.worker_status(): monitoring of backends and workers,
--   readable by all by design (10-privileges.sql: msgq.waiters and
--   msgq.workers are PUBLIC views); they return ids and states, no content.
-- msgq.filter_policy_matches(policy, scope, attributes, body): evaluates its
--   arguments only.
-- msgq.verify_notification(notification jsonb): checks the signature of a
--   notification document the caller already holds.
-- msgq._endpoint_error(aws_error, message): only raises an error.
SET LOCAL ROLE tap_acl_stranger;
SELECT lives_ok($$SELECT msgq.now(), msgq._assert_preloaded()$$, 'stranger: msgq.now() and _assert_preloaded() take no object');

-- Every function PUBLIC can execute is accounted for above.
RESET ROLE;
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text
	    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
	   WHERE n.nspname = 'msgq' AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
	  EXCEPT
	  SELECT unnest(ARRAY[
		'msgq._assert_preloaded()', 'msgq.delete_queue(text)', 'msgq.list_queues(text)',
		'msgq._list_queues_after(text,text)', 'msgq.get_queue_url(text)',
		'msgq.send_message(text,text,integer,json,text,text)',
		'msgq.receive_message(text,integer,integer,integer,text[],text[],text)',
		'msgq.delete_message(text,text)', 'msgq.change_message_visibility(text,text,integer)',
		'msgq.send_message_batch(text,json)', 'msgq.delete_message_batch(text,jsonb)',
		'msgq.change_message_visibility_batch(text,jsonb)', 'msgq.get_queue_attributes(text,text[])',
		'msgq.set_queue_attributes(text,jsonb)', 'msgq.purge_queue(text)', 'msgq.tag_queue(text,jsonb)',
		'msgq.untag_queue(text,text[])', 'msgq.list_queue_tags(text)',
		'msgq.list_dead_letter_source_queues(text)', 'msgq.start_message_move_task(text,text,integer)',
		'msgq.cancel_message_move_task(text)', 'msgq.list_message_move_tasks(text,integer)',
		'msgq.add_permission(text,text,text[],text[])', 'msgq.remove_permission(text,text)',
		'msgq.now()', 'msgq.waiters()', 'msgq.worker_status()', 'msgq.delete_stream(text)',
		'msgq.list_streams()', 'msgq.list_shards(text,text,integer,text,text,timestamp with time zone)',
		'msgq.put_record(text,text,bytea,text,numeric)',
		'msgq.get_shard_iterator(text,text,text,numeric,timestamp with time zone,text)',
		'msgq.get_records(text,integer)', 'msgq.put_records(text,jsonb)', 'msgq.put_records(text,text[],bytea[])',
		'msgq.describe_stream_summary(text)', 'msgq.checkpoint(text,text,text,numeric)',
		'msgq.checkpoint(text,text,text,numeric,text)', 'msgq.acquire_leases(text,text,text,integer,integer)',
		'msgq.release_leases(text,text,text)', 'msgq.increase_stream_retention_period(text,integer)',
		'msgq.decrease_stream_retention_period(text,integer)', 'msgq.register_stream_consumer(text,text)',
		'msgq.deregister_stream_consumer(text,text)', 'msgq.list_stream_consumers(text)',
		'msgq.subscribe_to_shard(text,text,text,text,numeric,timestamp with time zone,integer,integer)',
		'msgq.split_shard(text,text,text)', 'msgq.merge_shards(text,text,text)',
		'msgq.update_shard_count(text,integer,text)', 'msgq.update_stream_mode(text,text)',
		'msgq.enforce_shard_limits(text,boolean)', 'msgq.list_stream_queries()',
		'msgq.create_event_source_mapping(text,regprocedure,jsonb)', 'msgq.update_event_source_mapping(uuid,jsonb)',
		'msgq.delete_event_source_mapping(uuid)', 'msgq.get_event_source_mapping(uuid)',
		'msgq.list_event_source_mappings(text)', 'msgq.delete_topic(text)', 'msgq.list_topics()',
		'msgq.get_topic_attributes(text)', 'msgq.tag_topic(text,jsonb)', 'msgq.untag_topic(text,text[])',
		'msgq.list_topic_tags(text)', 'msgq.set_topic_attributes(text,text,text)',
		'msgq.subscribe(text,text,text,jsonb)', 'msgq.unsubscribe(text)',
		'msgq.confirm_subscription(text,text,boolean)', 'msgq.list_subscriptions()',
		'msgq.list_subscriptions_by_topic(text)', 'msgq.get_subscription_attributes(text)',
		'msgq.set_subscription_attributes(text,text,text)',
		'msgq.publish(text,text,text,jsonb,text,text,text)', 'msgq.publish_batch(text,jsonb)',
		'msgq.verify_notification(jsonb)', 'msgq.filter_policy_matches(text,text,jsonb,text)',
		'msgq.delete_delivery_stream(text)', 'msgq.describe_delivery_stream(text)',
		'msgq.list_delivery_streams(text)', 'msgq.put_delivery_record(text,bytea)',
		'msgq.put_record_batch(text,jsonb)', 'msgq.delete_stream_query(text)',
		'msgq.describe_stream_query(text)',
		'msgq._window_records(integer,timestamp with time zone,timestamp with time zone)',
		'msgq.create_access_key(regrole)', 'msgq.delete_access_key(text)', 'msgq.check_access_key(text)',
		'msgq.rotate_access_key_encryption()', 'msgq.retire_access_key_encryption()',
		'msgq._endpoint_error(text,text)'])$$,
	'every function PUBLIC can execute is covered by this file');

SELECT * FROM finish();
ROLLBACK;
