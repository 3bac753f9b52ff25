-- 55-stream-input-errors.sql: bad input to stream, move task and delivery
-- stream calls that no other test sent (found with make coverage), each
-- refused with its SQLSTATE and message, and nothing written:
-- ValidationException and InvalidArgumentException MQ021,
-- InvalidParameterValue MQ006.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(17);

SELECT lives_ok($$SELECT msgq.create_stream('tap_in', 1)$$, 'a stream of one shard');
SELECT lives_ok($$SELECT msgq.register_stream_consumer('tap_in', 'c1')$$, 'a consumer');

-- put_records(stream, records jsonb): each record's fields
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_in', '[1]')$$,
	'MQ021', 'record 1: a record must be a JSON object',
	'put_records: a record that is not an object');
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_in',
	'[{"PartitionKey": "k", "Data": "eA=="}, {"PartitionKey": 5, "Data": "eA=="}]')$$,
	'MQ021', 'record 2: PartitionKey must be a string',
	'put_records: a PartitionKey that is a number, named by its record');
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_in',
	'[{"PartitionKey": "k", "ExplicitHashKey": 5, "Data": "eA=="}]')$$,
	'MQ021', 'record 1: ExplicitHashKey must be a string',
	'put_records: an ExplicitHashKey that is a number');
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_in',
	'[{"PartitionKey": "k", "ExplicitHashKey": "", "Data": "eA=="}]')$$,
	'MQ021', 'explicit hash key "" is not a decimal number',
	'put_records: an empty ExplicitHashKey');
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_in',
	'[{"PartitionKey": "k", "Data": ["eA=="]}]')$$,
	'MQ021', 'record 1: Data must be a base64 string',
	'put_records: Data that is not a string');
-- put_records(stream, partition_keys text[], data bytea[])
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_in', NULL::text[], ARRAY['\x78'::bytea])$$,
	'MQ021', 'partition_keys and data must not be NULL',
	'put_records: NULL partition keys');
SELECT is((SELECT count(sequence_number) FROM msgq.get_records(
		msgq.get_shard_iterator('tap_in', 'shardId-000000000000', 'TRIM_HORIZON'))),
	0::bigint, 'none of the refused puts wrote a record');

SELECT throws_ok($$SELECT msgq.get_shard_iterator('tap_in', 'shardId-000000000000', NULL)$$,
	'MQ021', 'a shard iterator type is required',
	'get_shard_iterator without an iterator type');
SELECT throws_ok($$SELECT * FROM msgq.subscribe_to_shard('tap_in', 'c1', 'shardId-000000000000',
	'AT_NOTHING', wait_time_seconds => 0)$$,
	'MQ021', 'starting position must be AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST or AT_TIMESTAMP, not "AT_NOTHING"',
	'subscribe_to_shard with an unknown starting position');

-- resharding
SELECT throws_ok($$SELECT msgq.update_shard_count('tap_in', 0)$$,
	'MQ021', NULL, 'update_shard_count to 0 shards');
SELECT lives_ok($$SELECT msgq.create_stream('tap_in_od', NULL, 'ON_DEMAND')$$, 'an ON_DEMAND stream');
SELECT throws_ok($$SELECT msgq.merge_shards('tap_in_od', 'shardId-000000000000', 'shardId-000000000001')$$,
	'MQ021', 'an ON_DEMAND stream is resharded by msgq, not by merge_shards',
	'merge_shards on an ON_DEMAND stream');

-- a move task from a queue to itself
SELECT lives_ok($$SELECT msgq.create_queue('tap_in_q')$$, 'a queue');
SELECT throws_ok($$SELECT msgq.start_message_move_task('tap_in_q', 'tap_in_q')$$,
	'MQ006', 'the destination of a move task must not be its source queue',
	'start_message_move_task with its source as destination');

-- File destinations while msgq.delivery_directory is empty (its default)
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap_in_fh', '{"Destination": {"Type": "File"}}')$$,
	'MQ021', 'File destinations are disabled',
	'a delivery stream to files while msgq.delivery_directory is empty');

SELECT * FROM finish();
ROLLBACK;
