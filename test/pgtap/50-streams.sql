-- 50-streams.sql: the SQL contract of streams: signatures, return types,
-- who may call what, and the SQLSTATE of every stream error
-- (ResourceNotFoundException MQ019, ResourceInUseException MQ020,
-- InvalidArgumentException and ValidationException MQ021,
-- ExpiredIteratorException MQ022, ProvisionedThroughputExceededException
-- MQ023, AccessDeniedException 42501), and the views of time slices,
-- shard metrics and consumer group lag.
-- sql/streams.sql tests the behaviour, test/specs/stream-horizon.spec the
-- ordering under concurrency.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(84);

-- Signatures -------------------------------------------------------------------
SELECT has_function('msgq', 'create_stream', ARRAY['text', 'integer', 'text'],
	'msgq.create_stream(text, integer, text) exists');
SELECT function_returns('msgq', 'create_stream', ARRAY['text', 'integer', 'text'], 'void');
SELECT has_function('msgq', 'delete_stream', ARRAY['text'], 'msgq.delete_stream(text) exists');
SELECT has_function('msgq', 'list_streams', ARRAY[]::text[], 'msgq.list_streams() exists');
SELECT function_returns('msgq', 'list_streams', ARRAY[]::text[], 'setof text');
SELECT has_function('msgq', 'list_shards',
	ARRAY['text', 'text', 'integer', 'text', 'text', 'timestamp with time zone'],
	'msgq.list_shards(text, text, integer, text, text, timestamptz) exists');
SELECT is(
	(SELECT pg_catalog.pg_get_function_result('msgq.list_shards(text, text, integer, text, text, timestamptz)'::regprocedure)),
	'TABLE(shard_id text, parent_shard_id text, adjacent_parent_shard_id text, '
	'starting_hash_key numeric, ending_hash_key numeric, starting_sequence_number numeric, '
	'ending_sequence_number numeric)',
	'list_shards: the columns of a shard description');
SELECT has_function('msgq', 'put_record', ARRAY['text', 'text', 'bytea', 'text', 'numeric'],
	'msgq.put_record(text, text, bytea, text, numeric) exists');
SELECT is(
	(SELECT pg_catalog.pg_get_function_arguments('msgq.put_record(text, text, bytea, text, numeric)'::regprocedure)),
	'stream_name text, partition_key text, data bytea, explicit_hash_key text DEFAULT NULL::text, '
	'sequence_number_for_ordering numeric DEFAULT NULL::numeric, OUT shard_id text, '
	'OUT sequence_number numeric',
	'put_record: arguments, defaults and OUT parameters');
SELECT has_function('msgq', 'get_shard_iterator',
	ARRAY['text', 'text', 'text', 'numeric', 'timestamp with time zone', 'text'],
	'msgq.get_shard_iterator(text, text, text, numeric, timestamptz, text) exists');
SELECT function_returns('msgq', 'get_shard_iterator',
	ARRAY['text', 'text', 'text', 'numeric', 'timestamp with time zone', 'text'], 'text');
SELECT has_function('msgq', 'get_records', ARRAY['text', 'integer'],
	'msgq.get_records(text, integer) exists');
SELECT is(
	(SELECT pg_catalog.pg_get_function_result('msgq.get_records(text, integer)'::regprocedure)),
	'TABLE(sequence_number numeric, approximate_arrival_timestamp timestamp with time zone, '
	'partition_key text, data bytea, next_shard_iterator text, millis_behind_latest bigint, '
	'child_shards jsonb)',
	'get_records: one row per record, iterator fields repeated');
SELECT has_function('msgq', 'put_records', ARRAY['text', 'jsonb'],
	'msgq.put_records(text, jsonb) exists (AWS entries)');
SELECT has_function('msgq', 'put_records', ARRAY['text', 'text[]', 'bytea[]'],
	'msgq.put_records(text, text[], bytea[]) exists (for SQL callers)');
SELECT is(
	(SELECT pg_catalog.pg_get_function_result('msgq.put_records(text, jsonb)'::regprocedure)),
	'TABLE(shard_id text, sequence_number numeric, error_code text, error_message text)',
	'put_records: one row per entry');
SELECT has_function('msgq', 'describe_stream_summary', ARRAY['text'],
	'msgq.describe_stream_summary(text) exists');
SELECT function_returns('msgq', 'describe_stream_summary', ARRAY['text'], 'jsonb');
SELECT has_function('msgq', 'checkpoint', ARRAY['text', 'text', 'text', 'numeric'],
	'msgq.checkpoint(text, text, text, numeric) exists');
SELECT has_function('msgq', 'register_stream_consumer', ARRAY['text', 'text'],
	'msgq.register_stream_consumer(text, text) exists');
SELECT has_function('msgq', 'deregister_stream_consumer', ARRAY['text', 'text'],
	'msgq.deregister_stream_consumer(text, text) exists');
SELECT has_function('msgq', 'list_stream_consumers', ARRAY['text'],
	'msgq.list_stream_consumers(text) exists');
SELECT has_function('msgq', 'subscribe_to_shard',
	ARRAY['text', 'text', 'text', 'text', 'numeric', 'timestamp with time zone', 'integer', 'integer'],
	'msgq.subscribe_to_shard(text, text, text, text, numeric, timestamptz, integer, integer) exists');
SELECT is(
	(SELECT pg_catalog.pg_get_function_result(
		'msgq.subscribe_to_shard(text, text, text, text, numeric, timestamptz, integer, integer)'::regprocedure)),
	'TABLE(sequence_number numeric, approximate_arrival_timestamp timestamp with time zone, '
	'partition_key text, data bytea, continuation_sequence_number numeric, millis_behind_latest bigint)',
	'subscribe_to_shard: records and the continuation sequence number');
SELECT has_function('msgq', 'split_shard', ARRAY['text', 'text', 'text'],
	'msgq.split_shard(text, text, text) exists');
SELECT has_function('msgq', 'merge_shards', ARRAY['text', 'text', 'text'],
	'msgq.merge_shards(text, text, text) exists');
SELECT has_function('msgq', 'update_stream_mode', ARRAY['text', 'text'],
	'msgq.update_stream_mode(text, text) exists');
SELECT has_function('msgq', 'update_shard_count', ARRAY['text', 'integer', 'text'],
	'msgq.update_shard_count(text, integer, text) exists');
SELECT function_returns('msgq', 'update_shard_count', ARRAY['text', 'integer', 'text'], 'jsonb');
SELECT has_function('msgq', 'increase_stream_retention_period', ARRAY['text', 'integer'],
	'msgq.increase_stream_retention_period(text, integer) exists');
SELECT has_function('msgq', 'decrease_stream_retention_period', ARRAY['text', 'integer'],
	'msgq.decrease_stream_retention_period(text, integer) exists');
SELECT ok(NOT has_function_privilege('public', 'msgq.create_stream(text, integer, text)', 'EXECUTE'),
	'PUBLIC cannot create streams (GRANT EXECUTE to the roles that may)');
SELECT ok(has_function_privilege('public', 'msgq.put_record(text, text, bytea, text, numeric)', 'EXECUTE'),
	'PUBLIC may call put_record (each stream checks its owner)');
SELECT ok(NOT has_table_privilege('public', 'msgq.stream_record', 'SELECT'),
	'PUBLIC cannot read msgq.stream_record');

-- SQLSTATEs ----------------------------------------------------------------------
SELECT lives_ok($$SELECT msgq.create_stream('tap_s', 2)$$, 'create a stream of two shards');
SELECT throws_ok($$SELECT msgq.create_stream('tap_s', 2)$$, 'MQ020',
	'stream "tap_s" already exists', 'ResourceInUseException: the name is taken');
SELECT throws_ok($$SELECT * FROM msgq.list_shards('tap_none')$$, 'MQ019',
	'stream "tap_none" not found', 'ResourceNotFoundException: no such stream');
SELECT throws_ok($$SELECT msgq.get_shard_iterator('tap_s', 'shardId-000000000009', 'LATEST')$$, 'MQ019',
	'shard "shardId-000000000009" of stream "tap_s" does not exist',
	'ResourceNotFoundException: no such shard');
SELECT throws_ok($$SELECT msgq.create_stream('tap s', 1)$$, 'MQ021', NULL,
	'ValidationException: a bad stream name');
SELECT throws_ok($$SELECT msgq.create_stream('tap_t', 0)$$, 'MQ021',
	'shard count must be between 1 and 500, not 0', 'InvalidArgumentException: 0 shards');
SELECT throws_ok($$SELECT * FROM msgq.put_record('tap_s', '', '\x')$$, 'MQ021',
	'partition keys have 1 to 256 characters, not 0', 'ValidationException: an empty partition key');
SELECT throws_ok($$SELECT * FROM msgq.put_record('tap_s', 'k', '\x', explicit_hash_key => 'x')$$, 'MQ021',
	'explicit hash key "x" is not a decimal number', 'InvalidArgumentException: a bad explicit hash key');
SELECT throws_ok($$SELECT * FROM msgq.get_records('forged')$$, 'MQ021',
	'Invalid ShardIterator.', 'InvalidArgumentException: a forged iterator');
SELECT throws_ok($$SELECT msgq.get_shard_iterator('tap_s', '0', 'NEWEST')$$, 'MQ021', NULL,
	'ValidationException: an unknown iterator type');
SELECT throws_ok($$SELECT * FROM msgq.get_records(msgq.get_shard_iterator('tap_s', '0', 'LATEST'), 10001)$$,
	'MQ021', 'record limit must be between 1 and 10000, not 10001',
	'InvalidArgumentException: a record limit over 10000');
SELECT throws_ok($$SELECT * FROM msgq.put_records('tap_s', '[]'::jsonb)$$, 'MQ021',
	'put_records takes 1 to 500 records, not 0', 'ValidationException: put_records without records');
SELECT throws_ok($$SELECT msgq.checkpoint('tap_s', 'g', '0', 1)$$, 'MQ021',
	'sequence number 1 is not a record of shard shardId-000000000000',
	'InvalidArgumentException: a checkpoint outside the shard');
SELECT throws_ok($$SELECT msgq.decrease_stream_retention_period('tap_s', 48)$$, 'MQ021',
	'the requested retention period (48 hours) must be less than the current one (24 hours)',
	'InvalidArgumentException: a decrease that is not one');
SELECT throws_ok($$SELECT * FROM msgq.subscribe_to_shard('tap_s', 'nobody', '0', wait_time_seconds => 0)$$,
	'MQ019', 'consumer "nobody" of stream "tap_s" not found',
	'ResourceNotFoundException: subscribe_to_shard of an unregistered consumer');
SELECT throws_ok($$SELECT msgq.merge_shards('tap_s', '0', '0')$$, 'MQ021',
	'a shard cannot be merged with itself', 'InvalidArgumentException: a merge of a shard with itself');
SELECT lives_ok($$SELECT msgq.split_shard('tap_s', '0', '1')$$, 'split shard 0');
SELECT throws_ok($$SELECT msgq.split_shard('tap_s', '0', '2')$$, 'MQ020',
	'shard shardId-000000000000 of stream "tap_s" is closed', 'ResourceInUseException: a split of a closed shard');
SELECT lives_ok($$CREATE TEMP TABLE tap_it AS SELECT msgq.get_shard_iterator('tap_s', '0', 'TRIM_HORIZON') AS it$$,
	'an iterator');
SET LOCAL msgq.clock_offset = '301s';
SELECT throws_ok($$SELECT * FROM msgq.get_records((SELECT it FROM tap_it))$$, 'MQ022', NULL,
	'ExpiredIteratorException: an iterator older than 5 minutes');
RESET msgq.clock_offset;
SELECT lives_ok($$SELECT * FROM msgq.get_records((SELECT it FROM tap_it))$$,
	'the same iterator works within 5 minutes');

-- Shard limits, metrics and slices ------------------------------------------------
SELECT has_function('msgq', 'enforce_shard_limits', ARRAY['text', 'boolean'],
	'msgq.enforce_shard_limits(text, boolean) exists');
SELECT function_returns('msgq', 'enforce_shard_limits', ARRAY['text', 'boolean'], 'void');
SELECT lives_ok($$SELECT msgq.enforce_shard_limits('tap_s')$$, 'the owner enforces shard limits');
SELECT throws_ok($$DO $do$ BEGIN FOR i IN 1 .. 6 LOOP
		PERFORM * FROM msgq.get_records(msgq.get_shard_iterator('tap_s', '0', 'LATEST'));
	END LOOP; END $do$ $$, 'MQ023', NULL,
	'ProvisionedThroughputExceededException: a 6th get_records in one second');
SELECT throws_ok($$SELECT * FROM msgq.put_record('tap_s', 'k', decode(repeat('00', 1048575), 'hex'), explicit_hash_key => '0'),
		msgq.put_record('tap_s', 'k', '\x00', explicit_hash_key => '0') AS second$$, 'MQ023', NULL,
	'ProvisionedThroughputExceededException: past 1 MiB in one second');
SELECT lives_ok($$SELECT msgq.enforce_shard_limits('tap_s', false)$$, 'and stops enforcing them');
SELECT columns_are('msgq', 'stream_metrics', ARRAY['stream_name', 'shard_id', 'open',
	'incoming_records', 'incoming_bytes', 'write_provisioned_throughput_exceeded',
	'get_records_calls', 'outgoing_records', 'outgoing_bytes',
	'read_provisioned_throughput_exceeded'], 'msgq.stream_metrics columns');
SELECT columns_are('msgq', 'consumer_group_lag', ARRAY['stream_name', 'consumer_group',
	'shard_id', 'checkpoint_sequence_number', 'checkpointed_at', 'millis_behind_latest'],
	'msgq.consumer_group_lag columns');
SELECT columns_are('msgq', 'stream_slices', ARRAY['stream_name', 'slice_id', 'table_name',
	'state', 'start_seq', 'end_seq', 'opened_at', 'sealed_at', 'bytes'],
	'msgq.stream_slices columns');
SELECT ok(has_table_privilege('pg_monitor', 'msgq.stream_metrics', 'SELECT')
	  AND has_table_privilege('pg_monitor', 'msgq.consumer_group_lag', 'SELECT'),
	'pg_monitor reads the stream metrics views');
SELECT ok(NOT has_table_privilege('public', 'msgq.stream_slices', 'SELECT')
	  AND NOT has_table_privilege('public', (SELECT table_name FROM msgq.stream_slices
		WHERE stream_name = 'tap_s'), 'SELECT'),
	'PUBLIC reads neither the slices view nor a slice table');
SELECT is((SELECT state FROM msgq.stream_slices WHERE stream_name = 'tap_s'), 'current',
	'a new stream has one current slice');

-- Consumer group leases (src/consumer.c) -----------------------------------------
SELECT has_function('msgq', 'acquire_leases', ARRAY['text', 'text', 'text', 'integer', 'integer'],
	'msgq.acquire_leases(text, text, text, integer, integer) exists');
SELECT function_returns('msgq', 'acquire_leases', ARRAY['text', 'text', 'text', 'integer', 'integer'],
	'setof record');
SELECT has_function('msgq', 'release_leases', ARRAY['text', 'text', 'text'],
	'msgq.release_leases(text, text, text) exists');
SELECT function_returns('msgq', 'release_leases', ARRAY['text', 'text', 'text'], 'integer');
SELECT has_function('msgq', 'checkpoint', ARRAY['text', 'text', 'text', 'numeric', 'text'],
	'msgq.checkpoint(text, text, text, numeric, text) exists');
SELECT function_returns('msgq', 'checkpoint', ARRAY['text', 'text', 'text', 'numeric', 'text'], 'void');
SELECT columns_are('msgq', 'stream_leases', ARRAY['stream_name', 'consumer_group', 'shard_id',
	'lease_owner', 'lease_counter', 'lease_expires_at', 'lease_held', 'owner_switches',
	'checkpoint_sequence_number', 'shard_end', 'parent_shard_ids', 'millis_behind_latest'],
	'msgq.stream_leases columns');
SELECT ok(has_table_privilege('pg_monitor', 'msgq.stream_leases', 'SELECT')
	  AND NOT has_table_privilege('public', 'msgq.stream_leases', 'SELECT'),
	'pg_monitor reads msgq.stream_leases, PUBLIC does not');
SELECT is((SELECT count(*) FROM msgq.acquire_leases('tap_s', 'tap_g', 'tap_w')), 2::bigint,
	'a worker alone takes both shards');
SELECT throws_ok($$SELECT msgq.checkpoint('tap_s', 'tap_g', '0', 1, 'someone_else')$$, 'MQ030', NULL,
	'LeaseLostException: a checkpoint by a worker without the lease');
SELECT throws_ok($$SELECT * FROM msgq.acquire_leases('tap_s', 'tap_g', 'tap_w', 0)$$, 'MQ021',
	'max_leases must be at least 1, not 0', 'ValidationException: max_leases 0');
SELECT throws_ok($$SELECT * FROM msgq.acquire_leases('tap_nope', 'tap_g', 'tap_w')$$, 'MQ019', NULL,
	'ResourceNotFoundException: acquire_leases of an unknown stream');

-- AccessDenied -------------------------------------------------------------------
CREATE ROLE tap_stream_user;
GRANT SELECT ON tap_it TO tap_stream_user;
SET LOCAL ROLE tap_stream_user;
SELECT throws_ok($$SELECT * FROM msgq.put_record('tap_s', 'k', '\x')$$, '42501',
	'permission denied for stream "tap_s"', 'AccessDeniedException: put_record by another role');
SELECT throws_ok($$SELECT * FROM msgq.get_records((SELECT it FROM tap_it))$$, '42501',
	'permission denied for stream "tap_s"', 'AccessDeniedException: get_records by another role');
SELECT throws_ok($$SELECT msgq.delete_stream('tap_s')$$, '42501',
	'permission denied for stream "tap_s"', 'AccessDeniedException: delete_stream by another role');
SELECT throws_ok($$SELECT msgq.create_stream('tap_u', 1)$$, '42501', NULL,
	'create_stream needs EXECUTE');
RESET ROLE;
SELECT lives_ok($$SELECT msgq.delete_stream('tap_s')$$, 'the owner deletes the stream');

SELECT * FROM finish();
ROLLBACK;
