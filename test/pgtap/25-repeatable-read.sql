-- 25-repeatable-read.sql: long polling needs READ COMMITTED (each check of a
-- wait takes a fresh snapshot), so a receive that would wait fails with
-- SQLSTATE 0A000 at any other isolation level; a receive that does not wait
-- works at every level.  pgTAP runs a file in one transaction and the
-- isolation level can only be set before its first query, so this file runs
-- at REPEATABLE READ.  (20-errors.sql holds the other errors.)
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT plan(13);

SELECT is(current_setting('transaction_isolation'), 'repeatable read',
	'this file runs at REPEATABLE READ');
SELECT lives_ok($$SELECT msgq.create_queue('tap_rr')$$, 'create_queue');
SELECT lives_ok(
	$$SELECT msgq.create_queue('tap_rr_wait', '{"ReceiveMessageWaitTimeSeconds": 5}')$$,
	'create_queue with a default wait time');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_rr', 'm1')$$, 'send_message');

SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_rr', wait_time_seconds => 1)$$,
	'0A000', 'long polling requires the READ COMMITTED isolation level',
	'a long poll at REPEATABLE READ fails, even with a message waiting');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_rr_wait')$$,
	'0A000', 'long polling requires the READ COMMITTED isolation level',
	'the queue''s ReceiveMessageWaitTimeSeconds makes a receive a long poll too');

SELECT is((SELECT body FROM msgq.receive_message('tap_rr', wait_time_seconds => 0)),
	'm1', 'wait_time_seconds 0 receives at REPEATABLE READ');
SELECT is_empty($$SELECT * FROM msgq.receive_message('tap_rr_wait', wait_time_seconds => 0)$$,
	'wait_time_seconds 0 overrides the queue''s wait time');
SELECT lives_ok($$SELECT msgq.delete_queue('tap_rr')$$, 'delete_queue');

-- streams: subscribe_to_shard waits for records the same way
SELECT lives_ok($$SELECT msgq.create_stream('tap_rr_s', 1)$$, 'create_stream');
SELECT lives_ok($$SELECT msgq.register_stream_consumer('tap_rr_s', 'c1')$$, 'register_stream_consumer');
SELECT throws_ok($$SELECT * FROM msgq.subscribe_to_shard('tap_rr_s', 'c1', 'shardId-000000000000')$$,
	'0A000', 'waiting for records requires the READ COMMITTED isolation level',
	'subscribe_to_shard (a 20 s wait by default) at REPEATABLE READ fails');
SELECT is((SELECT count(*) FROM msgq.subscribe_to_shard('tap_rr_s', 'c1', 'shardId-000000000000',
		wait_time_seconds => 0)),
	1::bigint, 'wait_time_seconds 0 subscribes at REPEATABLE READ');

SELECT * FROM finish();
ROLLBACK;
