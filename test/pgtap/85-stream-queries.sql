-- 85-stream-queries.sql: the SQL contract of stream queries
-- (src/analytics.c): signatures, return types, who may call what, the view,
-- and the SQLSTATE of every error (InvalidArgumentException MQ021,
-- ResourceNotFoundException MQ019, ResourceInUseException MQ020,
-- AccessDeniedException 42501, a syntax error 42601).
-- sql/stream_queries.sql tests the behaviour, test/t/022 the worker.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(24);

SELECT has_function('msgq', 'create_stream_query', ARRAY['text', 'text', 'text', 'jsonb'],
	'msgq.create_stream_query(text, text, text, jsonb) exists');
SELECT function_returns('msgq', 'create_stream_query', ARRAY['text', 'text', 'text', 'jsonb'], 'void');
SELECT has_function('msgq', 'delete_stream_query', ARRAY['text'], 'msgq.delete_stream_query(text) exists');
SELECT function_returns('msgq', 'delete_stream_query', ARRAY['text'], 'void');
SELECT has_function('msgq', 'describe_stream_query', ARRAY['text'], 'msgq.describe_stream_query(text) exists');
SELECT function_returns('msgq', 'describe_stream_query', ARRAY['text'], 'jsonb');
SELECT has_function('msgq', 'list_stream_queries', ARRAY[]::text[], 'msgq.list_stream_queries() exists');
SELECT function_returns('msgq', 'list_stream_queries', ARRAY[]::text[], 'setof text');
SELECT columns_are('msgq', 'stream_queries', ARRAY['query_name', 'stream_name', 'owner', 'window_type',
	'window_size', 'window_slide', 'time_source', 'allowed_lateness', 'destination', 'next_window_start',
	'last_window_end', 'windows_emitted', 'rows_emitted', 'records_read', 'late_records',
	'skipped_records', 'pending_records', 'last_emitted_at', 'last_error'], 'msgq.stream_queries columns');
SELECT ok(has_table_privilege('pg_monitor', 'msgq.stream_queries', 'SELECT')
	  AND NOT has_table_privilege('public', 'msgq.stream_queries', 'SELECT'),
	'pg_monitor reads msgq.stream_queries, PUBLIC does not');
SELECT ok(NOT has_function_privilege('public', 'msgq.create_stream_query(text, text, text, jsonb)', 'EXECUTE'),
	'creating stream queries is granted, not public');

CREATE TABLE pg_temp.tap_sq (window_start timestamptz, n bigint);
SELECT lives_ok($$SELECT msgq.create_stream('tap_sq_s', 1)$$, 'a stream');
SELECT throws_ok($$SELECT msgq.create_stream_query('tap sq', 'tap_sq_s', 'SELECT 1', '{}')$$,
	'MQ021', NULL, 'InvalidArgumentException: a bad name');
SELECT throws_ok($$SELECT msgq.create_stream_query('tap_sq', 'tap_sq_s', 'DELETE FROM pg_temp.tap_sq', '{}')$$,
	'MQ021', NULL, 'InvalidArgumentException: not a SELECT');
SELECT throws_ok($$SELECT msgq.create_stream_query('tap_sq', 'tap_sq_s', 'SELECT FROM FROM', '{}')$$,
	'42601', NULL, 'a syntax error');
SELECT throws_ok($$SELECT msgq.create_stream_query('tap_sq', 'tap_none', 'SELECT 1', '{}')$$,
	'MQ019', NULL, 'ResourceNotFoundException: an unknown stream');
SELECT throws_ok($$SELECT msgq.create_stream_query('tap_sq', 'tap_sq_s', 'SELECT 1', '{"Window": {"Type": "Sliding", "SizeInSeconds": 10, "SlideInSeconds": 3}}')$$,
	'MQ021', NULL, 'InvalidArgumentException: a size that is not a multiple of the slide');
SELECT throws_ok($$SELECT msgq.create_stream_query('tap_sq', 'tap_sq_s', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 10}, "Destination": {"Type": "Table", "TableName": "tap_none"}}')$$,
	'MQ019', NULL, 'ResourceNotFoundException: an unknown table');
SELECT lives_ok($$SELECT msgq.create_stream_query('tap_sq', 'tap_sq_s', 'SELECT window_start, count(*) FROM records GROUP BY 1',
	'{"Window": {"Type": "Tumbling", "SizeInSeconds": 10}, "Destination": {"Type": "Table", "TableName": "pg_temp.tap_sq"}}')$$,
	'a stream query');
SELECT throws_ok($$SELECT msgq.create_stream_query('tap_sq', 'tap_sq_s', 'SELECT 1', '{}')$$,
	'MQ020', NULL, 'ResourceInUseException: the name exists');
SELECT is(msgq.describe_stream_query('tap_sq')->'Window'->>'Type', 'Tumbling', 'describe: the window');
CREATE ROLE tap_sq_other;
SET LOCAL ROLE tap_sq_other;
SELECT throws_ok($$SELECT msgq.delete_stream_query('tap_sq')$$,
	'42501', NULL, 'AccessDeniedException: delete by another role');
RESET ROLE;
SELECT lives_ok($$SELECT msgq.delete_stream_query('tap_sq')$$, 'delete_stream_query');
SELECT throws_ok($$SELECT msgq.describe_stream_query('tap_sq')$$,
	'MQ019', NULL, 'ResourceNotFoundException: describe a deleted query');

SELECT * FROM finish();
ROLLBACK;
