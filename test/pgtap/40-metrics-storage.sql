-- 40-metrics-storage.sql: the SQL contract of the metrics view, the
-- in-flight limit (OverLimit, SQLSTATE MQ010) and the storage ring: the
-- view's CloudWatch column names and types, who may read it, the
-- partitioned message table and its segment table, the settings.
-- (sql/metrics.sql and sql/segments.sql test the behaviour.)
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

-- Committed set-up for OverLimit (metrics change at commit, and pgTAP runs
-- the tests in one transaction): a queue with one message in flight.
\o /dev/null
SELECT msgq.create_queue('tap_limit');
SELECT msgq.send_message('tap_limit', m) FROM (VALUES ('a'), ('b')) v(m);
SELECT count(*) FROM msgq.receive_message('tap_limit', visibility_timeout => 600);
\o

BEGIN;
SELECT plan(39);

-- The metrics view -----------------------------------------------------------
SELECT has_view('msgq', 'queue_metrics', 'msgq.queue_metrics exists');
SELECT columns_are('msgq', 'queue_metrics',
	ARRAY['queue_name', 'ApproximateNumberOfMessagesVisible',
		  'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed',
		  'ApproximateAgeOfOldestMessage', 'NumberOfMessagesSent',
		  'NumberOfMessagesReceived', 'NumberOfMessagesDeleted', 'NumberOfEmptyReceives'],
	'msgq.queue_metrics has the CloudWatch metric names');
SELECT col_type_is('msgq', 'queue_metrics', 'queue_name', 'text', 'queue_name is text');
SELECT col_type_is('msgq', 'queue_metrics', c, 'bigint', c || ' is bigint')
  FROM unnest(ARRAY['ApproximateNumberOfMessagesVisible',
					'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed',
					'ApproximateAgeOfOldestMessage', 'NumberOfMessagesSent',
					'NumberOfMessagesReceived', 'NumberOfMessagesDeleted',
					'NumberOfEmptyReceives']) AS c;
SELECT ok(NOT has_table_privilege('public', 'msgq.queue_metrics', 'SELECT'),
	'PUBLIC cannot read msgq.queue_metrics');
SELECT ok(has_table_privilege('pg_monitor', 'msgq.queue_metrics', 'SELECT'),
	'pg_monitor can read msgq.queue_metrics');
SELECT ok(NOT has_function_privilege('public', 'msgq._queue_metrics()', 'EXECUTE'),
	'PUBLIC cannot call msgq._queue_metrics()');
SELECT ok(NOT has_function_privilege('public', 'msgq._metrics_reset()', 'EXECUTE'),
	'PUBLIC cannot call msgq._metrics_reset()');
SELECT ok(msgq._metrics_known(), 'the gauges of this database are known');

SELECT lives_ok($$SELECT msgq.create_queue('tap_metrics')$$, 'create a queue');
SELECT results_eq(
	$$SELECT "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
			 "ApproximateNumberOfMessagesDelayed", "NumberOfMessagesSent"
		FROM msgq.queue_metrics WHERE queue_name = 'tap_metrics'$$,
	$$VALUES (0::bigint, 0::bigint, 0::bigint, 0::bigint)$$,
	'a new queue has a row of zeros');

-- OverLimit --------------------------------------------------------------------
SELECT is(current_setting('msgq.max_inflight_messages'), '120000',
	'msgq.max_inflight_messages defaults to 120000, as in SQS');
SELECT results_eq(
	$$SELECT "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible"
		FROM msgq.queue_metrics WHERE queue_name = 'tap_limit'$$,
	$$VALUES (1::bigint, 1::bigint)$$,
	'the committed receive shows one message in flight, one visible');
SET LOCAL msgq.max_inflight_messages = 1;
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_limit')$$, 'MQ010',
	'queue "tap_limit" has too many messages in flight',
	'a receive at the in-flight limit fails with OverLimit (MQ010)');
SET LOCAL msgq.max_inflight_messages = 2;
SELECT is((SELECT count(*) FROM msgq.receive_message('tap_limit', 10))::int, 1,
	'a receive near the limit returns only what fits');
RESET msgq.max_inflight_messages;

-- The storage ring -------------------------------------------------------------
SELECT has_table('msgq', 'segment', 'msgq.segment exists');
SELECT is_partitioned('msgq', 'message', 'msgq.message is partitioned');
SELECT partitions_are('msgq', 'message',
	ARRAY['msgq.message_0', 'msgq.message_1', 'msgq.message_2', 'msgq.message_3'],
	'msgq.message has the four segment partitions');
SELECT col_type_is('msgq', 'message', 'seg', 'smallint', 'msgq.message.seg is smallint');
SELECT col_default_is('msgq', 'message', 'seg', 'msgq.active_segment()',
	'sends write to the active segment');
SELECT results_eq(
	$$SELECT count(*) FILTER (WHERE state = 'active')::int, count(*)::int FROM msgq.segment$$,
	$$VALUES (1, 4)$$,
	'one active segment out of four');
SELECT has_view('msgq', 'segments', 'msgq.segments exists');
SELECT columns_are('msgq', 'segments', ARRAY['seg', 'state', 'since', 'bytes'],
	'msgq.segments has columns seg, state, since, bytes');
SELECT ok(NOT has_function_privilege('public', 'msgq.active_segment()', 'EXECUTE'),
	'PUBLIC cannot call msgq.active_segment()');
SELECT throws_ok($$INSERT INTO msgq.segment VALUES (4, 'free', now())$$, '23514', NULL,
	'there are exactly four segments (0 to 3)');
SELECT throws_ok($$UPDATE msgq.segment SET state = 'active'$$, '23505', NULL,
	'only one segment can be active');
SELECT is(current_setting('msgq.segment_rotation_interval'), '10s',
	'msgq.segment_rotation_interval defaults to 10 s');
SELECT is(current_setting('msgq.segment_lock_timeout'), '50ms',
	'msgq.segment_lock_timeout defaults to 50 ms');

-- The queue's head (src/head.c) ----------------------------------------------
SELECT has_function('msgq', 'queue_head', ARRAY['text'], 'msgq.queue_head(text) exists');
SELECT function_returns('msgq', 'queue_head', ARRAY['text'], 'record');
SELECT ok(NOT has_function_privilege('public', 'msgq.queue_head(text)', 'EXECUTE'),
	'msgq.queue_head is not for PUBLIC');
SELECT throws_ok($$SELECT * FROM msgq.queue_head('tap_no_such_queue')$$, 'MQ001', NULL,
	'msgq.queue_head of an unknown queue: QueueDoesNotExist');

SELECT * FROM finish();
ROLLBACK;

\o /dev/null
SELECT msgq.delete_queue('tap_limit');
\o
