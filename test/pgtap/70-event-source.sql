-- 70-event-source.sql: the SQL contract of event source mappings
-- (src/esm.c): signatures, return types, who may call what, the view, and
-- the SQLSTATE of every error (InvalidParameterValueException MQ006,
-- ResourceNotFoundException MQ019, QueueDoesNotExist MQ001,
-- AccessDeniedException 42501).
-- sql/event_source_mappings.sql tests the behaviour, test/t/019 the worker.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(26);

SELECT has_function('msgq', 'create_event_source_mapping', ARRAY['text', 'regprocedure', 'jsonb'],
	'msgq.create_event_source_mapping(text, regprocedure, jsonb) exists');
SELECT function_returns('msgq', 'create_event_source_mapping', ARRAY['text', 'regprocedure', 'jsonb'], 'uuid');
SELECT has_function('msgq', 'update_event_source_mapping', ARRAY['uuid', 'jsonb'],
	'msgq.update_event_source_mapping(uuid, jsonb) exists');
SELECT function_returns('msgq', 'update_event_source_mapping', ARRAY['uuid', 'jsonb'], 'jsonb');
SELECT has_function('msgq', 'delete_event_source_mapping', ARRAY['uuid'],
	'msgq.delete_event_source_mapping(uuid) exists');
SELECT function_returns('msgq', 'delete_event_source_mapping', ARRAY['uuid'], 'jsonb');
SELECT has_function('msgq', 'get_event_source_mapping', ARRAY['uuid'],
	'msgq.get_event_source_mapping(uuid) exists');
SELECT function_returns('msgq', 'get_event_source_mapping', ARRAY['uuid'], 'jsonb');
SELECT has_function('msgq', 'list_event_source_mappings', ARRAY['text'],
	'msgq.list_event_source_mappings(text) exists');
SELECT function_returns('msgq', 'list_event_source_mappings', ARRAY['text'], 'setof jsonb');
SELECT columns_are('msgq', 'event_source_mappings', ARRAY['uuid', 'source_arn', 'function', 'owner',
	'state', 'batch_size', 'batching_window', 'report_batch_item_failures',
	'last_processing_result', 'invocations', 'failed_invocations', 'last_invoked_at',
	'last_error', 'last_modified'], 'msgq.event_source_mappings columns');
SELECT ok(has_table_privilege('pg_monitor', 'msgq.event_source_mappings', 'SELECT')
	  AND NOT has_table_privilege('public', 'msgq.event_source_mappings', 'SELECT'),
	'pg_monitor reads msgq.event_source_mappings, PUBLIC does not');

CREATE FUNCTION pg_temp.tap_handler(ev jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION pg_temp.tap_text(ev text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT lives_ok($$SELECT msgq.create_queue('tap_esm')$$, 'a queue');
SELECT lives_ok($$SELECT msgq.create_stream('tap_esm_s', 1)$$, 'a stream');
SELECT throws_ok($$SELECT msgq.create_event_source_mapping('tap_none', 'pg_temp.tap_handler(jsonb)')$$,
	'MQ001', NULL, 'QueueDoesNotExist: an unknown queue');
SELECT throws_ok($$SELECT msgq.create_event_source_mapping('tap_esm', 'pg_temp.tap_text(text)')$$,
	'MQ006', NULL, 'InvalidParameterValueException: a function that does not take jsonb');
SELECT throws_ok($$SELECT msgq.create_event_source_mapping('tap_esm', 'pg_temp.tap_handler(jsonb)', '{"BatchSize": 11}')$$,
	'MQ006', NULL, 'InvalidParameterValueException: BatchSize over 10 without a window');
SELECT throws_ok($$SELECT msgq.create_event_source_mapping('tap_esm', 'pg_temp.tap_handler(jsonb)', '{"ParallelizationFactor": 2}')$$,
	'MQ006', NULL, 'InvalidParameterValueException: a stream attribute on a queue');
SELECT throws_ok($$SELECT msgq.create_event_source_mapping('tap_esm_s', 'pg_temp.tap_handler(jsonb)')$$,
	'MQ006', NULL, 'InvalidParameterValueException: a stream source without StartingPosition');
SELECT throws_ok($$SELECT msgq.get_event_source_mapping('00000000-0000-0000-0000-000000000000')$$,
	'MQ019', NULL, 'ResourceNotFoundException: an unknown mapping');
SELECT lives_ok($$SELECT msgq.create_event_source_mapping('tap_esm', 'pg_temp.tap_handler(jsonb)', '{"BatchSize": 3, "Enabled": false}')$$,
	'a mapping');
SELECT is((SELECT (m->>'BatchSize')::int FROM msgq.list_event_source_mappings('tap_esm') m), 3,
	'list_event_source_mappings shows it');
SELECT m->>'UUID' AS tap_uuid FROM msgq.list_event_source_mappings('tap_esm') m \gset
CREATE ROLE tap_esm_other;
GRANT USAGE ON SCHEMA msgq TO tap_esm_other;
SET LOCAL ROLE tap_esm_other;
SELECT throws_like(format('SELECT msgq.delete_event_source_mapping(%L)', :'tap_uuid'),
	'must be owner of event source mapping %', 'AccessDeniedException: another role cannot delete it');
RESET ROLE;
SELECT lives_ok($$SELECT msgq.delete_queue('tap_esm')$$, 'delete_queue removes the mapping with the queue');
SELECT lives_ok($$SELECT msgq.create_event_source_mapping('tap_esm_s', 'pg_temp.tap_handler(jsonb)',
	'{"StartingPosition": "LATEST", "Enabled": false}')$$, 'a mapping over a stream');
SELECT throws_ok($$SELECT msgq.create_event_source_mapping('tap_esm_s', 'pg_temp.tap_handler(jsonb)',
	'{"StartingPosition": "LATEST", "ParallelizationFactor": 11}')$$,
	'MQ006', NULL, 'InvalidParameterValueException: ParallelizationFactor over 10');

SELECT * FROM finish();
ROLLBACK;
