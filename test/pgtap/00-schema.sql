-- 00-schema.sql: msgq's frozen SQL contract: schema, tables, views, and every
-- function of the API with its exact argument types, return type, parameter
-- names and defaults, and strictness.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(88);

-- Schema, tables, sequences, view -------------------------------------------
SELECT has_schema('msgq');
SELECT has_table('msgq', 'queue', 'msgq.queue exists');
SELECT has_table('msgq', 'message', 'msgq.message exists');
SELECT has_table('msgq', 'queue_permission', 'msgq.queue_permission exists');
SELECT has_table('msgq', 'secret', 'msgq.secret exists');
SELECT has_table('msgq', 'deleted_queue', 'msgq.deleted_queue exists');
SELECT has_table('msgq', 'message_move_task', 'msgq.message_move_task exists');
SELECT has_table('msgq', 'fifo_dedup', 'msgq.fifo_dedup exists');
SELECT has_sequence('msgq', 'queue_id_seq', 'msgq.queue_id_seq exists');
SELECT has_sequence('msgq', 'message_seq', 'msgq.message_seq exists');
SELECT has_view('msgq', 'waiters', 'msgq.waiters view exists');
SELECT columns_are('msgq', 'waiters',
	ARRAY['pid', 'queue_name', 'wait_started', 'wait_deadline'],
	'msgq.waiters has columns pid, queue_name, wait_started, wait_deadline');
SELECT has_view('msgq', 'workers', 'msgq.workers view exists');
SELECT columns_are('msgq', 'workers',
	ARRAY['pid', 'database', 'state', 'started_at', 'last_cycle_at', 'cycles'],
	'msgq.workers has columns pid, database, state, started_at, last_cycle_at, cycles');

-- Functions with their exact argument types and return types -----------------
SELECT has_function('msgq', 'create_queue', ARRAY['text', 'jsonb'],
	'msgq.create_queue(text, jsonb) exists');
SELECT function_returns('msgq', 'create_queue', ARRAY['text', 'jsonb'], 'text');

SELECT has_function('msgq', 'delete_queue', ARRAY['text'],
	'msgq.delete_queue(text) exists');
SELECT function_returns('msgq', 'delete_queue', ARRAY['text'], 'void');

SELECT has_function('msgq', 'list_queues', ARRAY['text'],
	'msgq.list_queues(text) exists');
SELECT function_returns('msgq', 'list_queues', ARRAY['text'], 'setof text');

SELECT has_function('msgq', 'get_queue_url', ARRAY['text'],
	'msgq.get_queue_url(text) exists');
SELECT function_returns('msgq', 'get_queue_url', ARRAY['text'], 'text');

SELECT has_function('msgq', 'send_message',
	ARRAY['text', 'text', 'integer', 'json', 'text', 'text'],
	'msgq.send_message(text, text, integer, json, text, text) exists');
SELECT function_returns('msgq', 'send_message',
	ARRAY['text', 'text', 'integer', 'json', 'text', 'text'], 'record');

SELECT has_function('msgq', 'receive_message',
	ARRAY['text', 'integer', 'integer', 'integer', 'text[]', 'text[]', 'text'],
	'msgq.receive_message(text, integer, integer, integer, text[], text[], text) exists');
SELECT function_returns('msgq', 'receive_message',
	ARRAY['text', 'integer', 'integer', 'integer', 'text[]', 'text[]', 'text'],
	'setof record');

SELECT has_function('msgq', 'delete_message', ARRAY['text', 'text'],
	'msgq.delete_message(text, text) exists');
SELECT function_returns('msgq', 'delete_message', ARRAY['text', 'text'], 'void');

SELECT has_function('msgq', 'change_message_visibility', ARRAY['text', 'text', 'integer'],
	'msgq.change_message_visibility(text, text, integer) exists');
SELECT function_returns('msgq', 'change_message_visibility',
	ARRAY['text', 'text', 'integer'], 'void');

SELECT has_function('msgq', 'add_permission', ARRAY['text', 'text', 'text[]', 'text[]'],
	'msgq.add_permission(text, text, text[], text[]) exists');
SELECT function_returns('msgq', 'add_permission',
	ARRAY['text', 'text', 'text[]', 'text[]'], 'void');

SELECT has_function('msgq', 'remove_permission', ARRAY['text', 'text'],
	'msgq.remove_permission(text, text) exists');
SELECT function_returns('msgq', 'remove_permission', ARRAY['text', 'text'], 'void');

SELECT has_function('msgq', 'run_maintenance', ARRAY[]::text[],
	'msgq.run_maintenance() exists');
SELECT function_returns('msgq', 'run_maintenance', ARRAY[]::text[], 'void');

SELECT has_function('msgq', 'now', ARRAY[]::text[], 'msgq.now() exists');
SELECT function_returns('msgq', 'now', ARRAY[]::text[], 'timestamp with time zone');

SELECT has_function('msgq', 'waiters', ARRAY[]::text[], 'msgq.waiters() exists');
SELECT function_returns('msgq', 'waiters', ARRAY[]::text[], 'setof record');

SELECT has_function('msgq', 'worker_status', ARRAY[]::text[], 'msgq.worker_status() exists');
SELECT function_returns('msgq', 'worker_status', ARRAY[]::text[], 'setof record');

-- Queue administration, tags, dead-letter queues, batches
SELECT has_function('msgq', 'get_queue_attributes', ARRAY['text', 'text[]'],
	'msgq.get_queue_attributes(text, text[]) exists');
SELECT function_returns('msgq', 'get_queue_attributes', ARRAY['text', 'text[]'], 'jsonb');

SELECT has_function('msgq', 'set_queue_attributes', ARRAY['text', 'jsonb'],
	'msgq.set_queue_attributes(text, jsonb) exists');
SELECT function_returns('msgq', 'set_queue_attributes', ARRAY['text', 'jsonb'], 'void');

SELECT has_function('msgq', 'purge_queue', ARRAY['text'], 'msgq.purge_queue(text) exists');
SELECT function_returns('msgq', 'purge_queue', ARRAY['text'], 'void');

SELECT has_function('msgq', 'tag_queue', ARRAY['text', 'jsonb'], 'msgq.tag_queue(text, jsonb) exists');
SELECT function_returns('msgq', 'tag_queue', ARRAY['text', 'jsonb'], 'void');

SELECT has_function('msgq', 'untag_queue', ARRAY['text', 'text[]'],
	'msgq.untag_queue(text, text[]) exists');
SELECT function_returns('msgq', 'untag_queue', ARRAY['text', 'text[]'], 'void');

SELECT has_function('msgq', 'list_queue_tags', ARRAY['text'], 'msgq.list_queue_tags(text) exists');
SELECT function_returns('msgq', 'list_queue_tags', ARRAY['text'], 'jsonb');

SELECT has_function('msgq', 'list_dead_letter_source_queues', ARRAY['text'],
	'msgq.list_dead_letter_source_queues(text) exists');
SELECT function_returns('msgq', 'list_dead_letter_source_queues', ARRAY['text'], 'setof text');

SELECT has_function('msgq', 'send_message_batch', ARRAY['text', 'json'],
	'msgq.send_message_batch(text, json) exists');
SELECT function_returns('msgq', 'send_message_batch', ARRAY['text', 'json'], 'setof record');

SELECT has_function('msgq', 'delete_message_batch', ARRAY['text', 'jsonb'],
	'msgq.delete_message_batch(text, jsonb) exists');
SELECT function_returns('msgq', 'delete_message_batch', ARRAY['text', 'jsonb'], 'setof record');

SELECT has_function('msgq', 'change_message_visibility_batch', ARRAY['text', 'jsonb'],
	'msgq.change_message_visibility_batch(text, jsonb) exists');
SELECT function_returns('msgq', 'change_message_visibility_batch', ARRAY['text', 'jsonb'],
	'setof record');

SELECT has_function('msgq', 'start_message_move_task', ARRAY['text', 'text', 'integer'],
	'msgq.start_message_move_task(text, text, integer) exists');
SELECT function_returns('msgq', 'start_message_move_task', ARRAY['text', 'text', 'integer'], 'text');

SELECT has_function('msgq', 'cancel_message_move_task', ARRAY['text'],
	'msgq.cancel_message_move_task(text) exists');
SELECT function_returns('msgq', 'cancel_message_move_task', ARRAY['text'], 'bigint');

SELECT has_function('msgq', 'list_message_move_tasks', ARRAY['text', 'integer'],
	'msgq.list_message_move_tasks(text, integer) exists');
SELECT function_returns('msgq', 'list_message_move_tasks', ARRAY['text', 'integer'], 'setof record');

-- Parameter names and defaults ----------------------------------------------
SELECT is(
	(SELECT pg_catalog.pg_get_function_arguments(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.send_message(text, text, integer, json, text, text)'::regprocedure),
	'queue_name text, message_body text, delay_seconds integer DEFAULT NULL::integer, '
	'message_attributes json DEFAULT NULL::json, message_group_id text DEFAULT NULL::text, '
	'message_deduplication_id text DEFAULT NULL::text, OUT message_id uuid, '
	'OUT md5_of_message_body text, OUT md5_of_message_attributes text, '
	'OUT sequence_number numeric',
	'send_message: argument names, defaults and OUT parameters');

SELECT is(
	(SELECT p.proargnames
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.send_message(text, text, integer, json, text, text)'::regprocedure),
	ARRAY['queue_name', 'message_body', 'delay_seconds', 'message_attributes',
		  'message_group_id', 'message_deduplication_id', 'message_id',
		  'md5_of_message_body', 'md5_of_message_attributes', 'sequence_number'],
	'send_message: proargnames');

SELECT is(
	(SELECT p.pronargdefaults::int
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.send_message(text, text, integer, json, text, text)'::regprocedure),
	4, 'send_message: the last 4 input parameters have defaults');

SELECT is(
	(SELECT pg_catalog.pg_get_function_result(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.send_message(text, text, integer, json, text, text)'::regprocedure),
	'record',
	'send_message returns one record (OUT parameters)');

SELECT is(
	(SELECT pg_catalog.pg_get_function_arguments(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.receive_message(text, integer, integer, integer, text[], text[], text)'::regprocedure),
	'queue_name text, max_number_of_messages integer DEFAULT 1, '
	'visibility_timeout integer DEFAULT NULL::integer, '
	'wait_time_seconds integer DEFAULT NULL::integer, '
	'message_attribute_names text[] DEFAULT ''{All}''::text[], '
	'message_system_attribute_names text[] DEFAULT ''{All}''::text[], '
	'receive_request_attempt_id text DEFAULT NULL::text',
	'receive_message: argument names and defaults');

SELECT is(
	(SELECT p.proargnames
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.receive_message(text, integer, integer, integer, text[], text[], text)'::regprocedure),
	ARRAY['queue_name', 'max_number_of_messages', 'visibility_timeout', 'wait_time_seconds',
		  'message_attribute_names', 'message_system_attribute_names',
		  'receive_request_attempt_id', 'message_id', 'receipt_handle', 'body',
		  'md5_of_body', 'attributes', 'message_attributes'],
	'receive_message: proargnames');

SELECT is(
	(SELECT p.pronargdefaults::int
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.receive_message(text, integer, integer, integer, text[], text[], text)'::regprocedure),
	6, 'receive_message: the last 6 input parameters have defaults');

SELECT is(
	(SELECT pg_catalog.pg_get_function_result(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.receive_message(text, integer, integer, integer, text[], text[], text)'::regprocedure),
	'TABLE(message_id uuid, receipt_handle text, body text, md5_of_body text, '
	'attributes jsonb, message_attributes jsonb)',
	'receive_message: result columns');

SELECT is(
	(SELECT pg_catalog.pg_get_function_arguments(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.create_queue(text, jsonb)'::regprocedure),
	'queue_name text, attributes jsonb DEFAULT ''{}''::jsonb',
	'create_queue: argument names and defaults');

SELECT is(
	(SELECT pg_catalog.pg_get_function_arguments(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.list_queues(text)'::regprocedure),
	'queue_name_prefix text DEFAULT NULL::text',
	'list_queues: argument name and default');

SELECT is(
	(SELECT pg_catalog.pg_get_function_arguments(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.change_message_visibility(text, text, integer)'::regprocedure),
	'queue_name text, receipt_handle text, visibility_timeout integer',
	'change_message_visibility: argument names');

SELECT is(
	(SELECT pg_catalog.pg_get_function_arguments(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.add_permission(text, text, text[], text[])'::regprocedure),
	'queue_name text, label text, roles text[], actions text[]',
	'add_permission: argument names');

SELECT is(
	(SELECT pg_catalog.pg_get_function_arguments(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.get_queue_attributes(text, text[])'::regprocedure),
	'queue_name text, attribute_names text[] DEFAULT ''{All}''::text[]',
	'get_queue_attributes: argument names and default');

SELECT is(
	(SELECT pg_catalog.pg_get_function_result(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.send_message_batch(text, json)'::regprocedure),
	'TABLE(id text, message_id uuid, md5_of_message_body text, md5_of_message_attributes text, '
	'sequence_number numeric, error_code text, error_message text, sender_fault boolean)',
	'send_message_batch: one row per entry, with a result or an error');

SELECT is(
	(SELECT pg_catalog.pg_get_function_result(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.delete_message_batch(text, jsonb)'::regprocedure),
	'TABLE(id text, error_code text, error_message text, sender_fault boolean)',
	'delete_message_batch: one row per entry');

SELECT is(
	(SELECT pg_catalog.pg_get_function_result(p.oid)
	   FROM pg_catalog.pg_proc p
	  WHERE p.oid = 'msgq.change_message_visibility_batch(text, jsonb)'::regprocedure),
	'TABLE(id text, error_code text, error_message text, sender_fault boolean)',
	'change_message_visibility_batch: one row per entry');

-- Strictness, volatility, language -------------------------------------------
-- A strict function would silently return NULL for a NULL argument instead of
-- raising MissingParameter, so no msgq function may be strict.
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text
	    FROM pg_catalog.pg_proc p
	   WHERE p.pronamespace = 'msgq'::regnamespace AND p.proisstrict$$,
	'no msgq function is STRICT');

SELECT is(
	(SELECT count(*)::int FROM pg_catalog.pg_proc p
	  WHERE p.pronamespace = 'msgq'::regnamespace
		AND p.proname IN ('create_queue', 'delete_queue', 'list_queues', 'get_queue_url',
						  'send_message', 'receive_message', 'delete_message',
						  'change_message_visibility', 'add_permission', 'remove_permission',
						  'run_maintenance', 'now', 'waiters', 'worker_status',
						  'get_queue_attributes', 'set_queue_attributes', 'purge_queue',
						  'tag_queue', 'untag_queue', 'list_queue_tags',
						  'list_dead_letter_source_queues', 'send_message_batch',
						  'delete_message_batch', 'change_message_visibility_batch',
						  'start_message_move_task', 'cancel_message_move_task',
						  'list_message_move_tasks')),
	27, 'each API function has exactly one signature (no overloads)');

SELECT is_empty(
	$$SELECT p.oid::regprocedure::text
	    FROM pg_catalog.pg_proc p
	   WHERE p.pronamespace = 'msgq'::regnamespace
		 AND p.proname IN ('create_queue', 'delete_queue', 'send_message', 'receive_message',
						   'delete_message', 'change_message_visibility', 'add_permission',
						   'remove_permission', 'run_maintenance', 'now', 'set_queue_attributes',
						   'purge_queue', 'tag_queue', 'untag_queue', 'send_message_batch',
						   'delete_message_batch', 'change_message_visibility_batch')
		 AND p.provolatile <> 'v'$$,
	'functions that change state or read the clock are VOLATILE');

SELECT is_empty(
	$$SELECT p.oid::regprocedure::text
	    FROM pg_catalog.pg_proc p
	   WHERE p.pronamespace = 'msgq'::regnamespace AND p.prosecdef$$,
	'no msgq function is SECURITY DEFINER (rights are checked in C)');

SELECT * FROM finish();
ROLLBACK;
