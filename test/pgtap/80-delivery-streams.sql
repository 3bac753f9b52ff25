-- 80-delivery-streams.sql: the SQL contract of delivery streams
-- (src/firehose.c): signatures, return types, who may call what, the views,
-- and the SQLSTATE of every error (InvalidArgumentException and
-- ValidationException MQ021, ResourceNotFoundException MQ019,
-- ResourceInUseException MQ020, QueueDoesNotExist MQ001,
-- AccessDeniedException 42501).
-- sql/delivery_streams.sql tests the behaviour, test/t/021 the worker.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(38);

SELECT has_function('msgq', 'create_delivery_stream', ARRAY['text', 'jsonb'],
	'msgq.create_delivery_stream(text, jsonb) exists');
SELECT function_returns('msgq', 'create_delivery_stream', ARRAY['text', 'jsonb'], 'text');
SELECT has_function('msgq', 'delete_delivery_stream', ARRAY['text'],
	'msgq.delete_delivery_stream(text) exists');
SELECT function_returns('msgq', 'delete_delivery_stream', ARRAY['text'], 'void');
SELECT has_function('msgq', 'describe_delivery_stream', ARRAY['text'],
	'msgq.describe_delivery_stream(text) exists');
SELECT function_returns('msgq', 'describe_delivery_stream', ARRAY['text'], 'jsonb');
SELECT has_function('msgq', 'list_delivery_streams', ARRAY['text'],
	'msgq.list_delivery_streams(text) exists');
SELECT function_returns('msgq', 'list_delivery_streams', ARRAY['text'], 'setof text');
SELECT has_function('msgq', 'put_delivery_record', ARRAY['text', 'bytea'],
	'msgq.put_delivery_record(text, bytea) exists');
SELECT function_returns('msgq', 'put_delivery_record', ARRAY['text', 'bytea'], 'text');
SELECT has_function('msgq', 'put_record_batch', ARRAY['text', 'jsonb'],
	'msgq.put_record_batch(text, jsonb) exists');
SELECT function_returns('msgq', 'put_record_batch', ARRAY['text', 'jsonb'], 'setof record');
SELECT columns_are('msgq', 'delivery_stream_metrics', ARRAY['delivery_stream_name', 'destination',
	'buffered_records', 'buffered_bytes', 'delivered_records', 'delivered_bytes', 'dropped_records',
	'failed_records', 'batches', 'failed_attempts', 'retrying_attempts', 'last_delivery_at',
	'last_latency_ms', 'max_latency_ms', 'avg_latency_ms', 'last_error'],
	'msgq.delivery_stream_metrics columns');
SELECT columns_are('msgq', 'delivery_stream_errors', ARRAY['delivery_stream_name', 'record_id',
	'output_type', 'attempts_made', 'arrival_timestamp', 'error_code', 'error_message',
	'attempt_ending_timestamp', 'raw_data', 'processor'], 'msgq.delivery_stream_errors columns');
SELECT ok(has_table_privilege('pg_monitor', 'msgq.delivery_stream_metrics', 'SELECT')
	  AND NOT has_table_privilege('public', 'msgq.delivery_stream_metrics', 'SELECT'),
	'pg_monitor reads msgq.delivery_stream_metrics, PUBLIC does not');
SELECT ok(NOT has_function_privilege('public', 'msgq.create_delivery_stream(text, jsonb)', 'EXECUTE'),
	'creating delivery streams is granted, not public');
SELECT ok(NOT has_table_privilege('public', 'msgq.delivery_record', 'SELECT')
	  AND NOT has_table_privilege('public', 'msgq.delivery_error', 'SELECT'),
	'the buffer and the error output are msgq''s own');

CREATE TABLE pg_temp.tap_fh (page text, doc jsonb);
CREATE FUNCTION pg_temp.tap_text(ev text) RETURNS text LANGUAGE sql AS $$ SELECT ev $$;
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap fh', '{}')$$,
	'MQ021', NULL, 'InvalidArgumentException: a bad name');
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap_fh', '{}')$$,
	'MQ021', NULL, 'InvalidArgumentException: no Destination');
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap_fh', '{"Destination": {"Type": "Table", "TableName": "tap_none"}}')$$,
	'MQ019', NULL, 'ResourceNotFoundException: an unknown table');
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap_fh', '{"Destination": {"Type": "Queue", "QueueName": "tap_none"}}')$$,
	'MQ001', NULL, 'QueueDoesNotExist: an unknown queue');
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap_fh', '{"Destination": {"Type": "Stream", "StreamName": "tap_none"}}')$$,
	'MQ019', NULL, 'ResourceNotFoundException: an unknown stream');
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap_fh', '{"BufferingHints": {"SizeInMBs": 200, "IntervalInSeconds": 1}, "Destination": {"Type": "Table", "TableName": "pg_temp.tap_fh"}}')$$,
	'MQ021', NULL, 'InvalidArgumentException: SizeInMBs over 128');
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap_fh', '{"ProcessingConfiguration": {"Function": "pg_temp.tap_text(text)"}, "Destination": {"Type": "Table", "TableName": "pg_temp.tap_fh"}}')$$,
	'MQ021', NULL, 'InvalidArgumentException: a transform that does not take jsonb');
SELECT lives_ok($$SELECT msgq.create_delivery_stream('tap_fh', '{"Destination": {"Type": "Table", "TableName": "pg_temp.tap_fh"}}')$$,
	'a delivery stream to a table');
SELECT throws_ok($$SELECT msgq.create_delivery_stream('tap_fh', '{"Destination": {"Type": "Table", "TableName": "pg_temp.tap_fh"}}')$$,
	'MQ020', NULL, 'ResourceInUseException: the name exists');
SELECT is(msgq.describe_delivery_stream('tap_fh')->>'DeliveryStreamStatus', 'ACTIVE', 'describe: ACTIVE');
SELECT throws_ok($$SELECT msgq.describe_delivery_stream('tap_none')$$,
	'MQ019', NULL, 'ResourceNotFoundException: describe an unknown delivery stream');
SELECT throws_ok($$SELECT msgq.put_delivery_record('tap_none', '\x00')$$,
	'MQ019', NULL, 'ResourceNotFoundException: put to an unknown delivery stream');
SELECT throws_ok($$SELECT msgq.put_delivery_record('tap_fh', NULL)$$,
	'MQ021', NULL, 'ValidationException: no data');
SELECT throws_ok($$SELECT * FROM msgq.put_record_batch('tap_fh', '[]')$$,
	'MQ021', NULL, 'ValidationException: an empty batch');
SELECT throws_ok($$SELECT * FROM msgq.put_record_batch('tap_fh', '[{"Data": "!!"}]')$$,
	'MQ021', NULL, 'ValidationException: data that is not base64');
SELECT is((SELECT count(*)::int FROM msgq.put_record_batch('tap_fh', '[{"Data": "eyJwYWdlIjogIngifQ=="}, {"Data": "eyJ9"}]')
			WHERE record_id IS NOT NULL AND error_code IS NULL), 2, 'put_record_batch: a RecordId per record');
SELECT is((SELECT count(*)::int FROM msgq.delivery_record r JOIN msgq.delivery_stream d USING (ds_id)
			WHERE d.ds_name = 'tap_fh'), 2, 'the records wait in the buffer');
CREATE ROLE tap_fh_other;
SET LOCAL ROLE tap_fh_other;
SELECT throws_ok($$SELECT msgq.put_delivery_record('tap_fh', '\x00')$$,
	'42501', NULL, 'AccessDeniedException: put by a role without the owner''s privileges');
SELECT throws_ok($$SELECT msgq.delete_delivery_stream('tap_fh')$$,
	'42501', NULL, 'AccessDeniedException: delete by another role');
RESET ROLE;
SELECT lives_ok($$SELECT msgq.delete_delivery_stream('tap_fh')$$, 'delete_delivery_stream');
SELECT is((SELECT count(*)::int FROM msgq.delivery_record), 0, 'delete drops the buffered records');

SELECT * FROM finish();
ROLLBACK;
