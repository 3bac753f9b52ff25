-- 10-privileges.sql: msgq's default privileges and what pg_dump keeps.
--
-- * Creating queues and running maintenance are not for PUBLIC (a DBA
--   grants EXECUTE on msgq.create_queue); every other API function is
--   callable by PUBLIC, and per-queue rights are checked inside it.
-- * PUBLIC can use the schema, but has no privilege on msgq's tables and
--   sequences: they are written only by msgq's functions, as the extension
--   owner.  msgq.secret (the receipt-handle key) is readable by nobody else.
--   The monitoring views msgq.waiters and msgq.workers are readable by all.
-- * The catalog and message tables and their sequences are dumped
--   (pg_extension_config_dump); msgq.secret is deliberately not, so a
--   restored database makes a new key and refuses old receipt handles.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(59);

-- Schema ---------------------------------------------------------------------
-- Without USAGE on the schema no ordinary role could call any msgq function,
-- whatever EXECUTE says.
SELECT schema_privs_are('msgq', 'public', ARRAY['USAGE'],
	'PUBLIC has USAGE (only) on schema msgq');

-- Functions: not for PUBLIC --------------------------------------------------
SELECT function_privs_are('msgq', 'create_queue', ARRAY['text', 'jsonb'],
	'public', ARRAY[]::name[],
	'PUBLIC has no EXECUTE on msgq.create_queue');
SELECT function_privs_are('msgq', 'run_maintenance', ARRAY[]::name[],
	'public', ARRAY[]::name[],
	'PUBLIC has no EXECUTE on msgq.run_maintenance');

-- Functions: for PUBLIC ------------------------------------------------------
SELECT function_privs_are('msgq', 'delete_queue', ARRAY['text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.delete_queue');
SELECT function_privs_are('msgq', 'list_queues', ARRAY['text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.list_queues');
SELECT function_privs_are('msgq', 'get_queue_url', ARRAY['text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.get_queue_url');
SELECT function_privs_are('msgq', 'send_message',
	ARRAY['text', 'text', 'integer', 'json', 'text', 'text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.send_message');
SELECT function_privs_are('msgq', 'receive_message',
	ARRAY['text', 'integer', 'integer', 'integer', 'text[]', 'text[]', 'text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.receive_message');
SELECT function_privs_are('msgq', 'delete_message', ARRAY['text', 'text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.delete_message');
SELECT function_privs_are('msgq', 'change_message_visibility',
	ARRAY['text', 'text', 'integer'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.change_message_visibility');
SELECT function_privs_are('msgq', 'add_permission',
	ARRAY['text', 'text', 'text[]', 'text[]'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.add_permission');
SELECT function_privs_are('msgq', 'remove_permission', ARRAY['text', 'text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.remove_permission');
SELECT function_privs_are('msgq', 'now', ARRAY[]::name[],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.now');
SELECT function_privs_are('msgq', 'waiters', ARRAY[]::name[],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.waiters()');
SELECT function_privs_are('msgq', 'worker_status', ARRAY[]::name[],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.worker_status()');
SELECT function_privs_are('msgq', 'get_queue_attributes', ARRAY['text', 'text[]'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.get_queue_attributes');
SELECT function_privs_are('msgq', 'set_queue_attributes', ARRAY['text', 'jsonb'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.set_queue_attributes');
SELECT function_privs_are('msgq', 'purge_queue', ARRAY['text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.purge_queue');
SELECT function_privs_are('msgq', 'tag_queue', ARRAY['text', 'jsonb'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.tag_queue');
SELECT function_privs_are('msgq', 'untag_queue', ARRAY['text', 'text[]'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.untag_queue');
SELECT function_privs_are('msgq', 'list_queue_tags', ARRAY['text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.list_queue_tags');
SELECT function_privs_are('msgq', 'list_dead_letter_source_queues', ARRAY['text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.list_dead_letter_source_queues');
SELECT function_privs_are('msgq', 'send_message_batch', ARRAY['text', 'json'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.send_message_batch');
SELECT function_privs_are('msgq', 'delete_message_batch', ARRAY['text', 'jsonb'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.delete_message_batch');
SELECT function_privs_are('msgq', 'change_message_visibility_batch', ARRAY['text', 'jsonb'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.change_message_visibility_batch');
SELECT function_privs_are('msgq', 'start_message_move_task', ARRAY['text', 'text', 'integer'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.start_message_move_task');
SELECT function_privs_are('msgq', 'cancel_message_move_task', ARRAY['text'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.cancel_message_move_task');
SELECT function_privs_are('msgq', 'list_message_move_tasks', ARRAY['text', 'integer'],
	'public', ARRAY['EXECUTE'], 'PUBLIC has EXECUTE on msgq.list_message_move_tasks');

-- Tables, sequences, view ----------------------------------------------------
SELECT table_privs_are('msgq', 'queue', 'public', ARRAY[]::name[],
	'PUBLIC has no privilege on msgq.queue');
SELECT table_privs_are('msgq', 'message', 'public', ARRAY[]::name[],
	'PUBLIC has no privilege on msgq.message');
SELECT table_privs_are('msgq', 'queue_permission', 'public', ARRAY[]::name[],
	'PUBLIC has no privilege on msgq.queue_permission');
SELECT table_privs_are('msgq', 'secret', 'public', ARRAY[]::name[],
	'PUBLIC has no privilege on msgq.secret');
SELECT table_privs_are('msgq', 'deleted_queue', 'public', ARRAY[]::name[],
	'PUBLIC has no privilege on msgq.deleted_queue');
SELECT table_privs_are('msgq', 'message_move_task', 'public', ARRAY[]::name[],
	'PUBLIC has no privilege on msgq.message_move_task');
SELECT is_empty(
	$$SELECT c.oid::regclass::text
	    FROM pg_catalog.pg_class c
	   WHERE c.relnamespace = 'msgq'::regnamespace AND c.relkind IN ('r', 'S', 'p')
		 AND (pg_catalog.has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
		      OR (c.relkind = 'S' AND pg_catalog.has_sequence_privilege('public', c.oid, 'USAGE, SELECT, UPDATE')))$$,
	'PUBLIC has no privilege on any msgq table or sequence, present or future');
SELECT sequence_privs_are('msgq', 'queue_id_seq', 'public', ARRAY[]::name[],
	'PUBLIC has no privilege on msgq.queue_id_seq');
SELECT sequence_privs_are('msgq', 'message_seq', 'public', ARRAY[]::name[],
	'PUBLIC has no privilege on msgq.message_seq');
SELECT table_privs_are('msgq', 'waiters', 'public', ARRAY['SELECT'],
	'PUBLIC may only SELECT from the msgq.waiters view');
SELECT table_privs_are('msgq', 'workers', 'public', ARRAY['SELECT'],
	'PUBLIC may only SELECT from the msgq.workers view');

-- The same, seen by a real role with no grant of its own.
CREATE ROLE msgq_tap_nobody NOLOGIN;
SELECT table_privs_are('msgq', 'secret', 'msgq_tap_nobody', ARRAY[]::name[],
	'a role without grants has no privilege on msgq.secret');
SELECT table_privs_are('msgq', 'message', 'msgq_tap_nobody', ARRAY[]::name[],
	'a role without grants has no privilege on msgq.message');
SELECT function_privs_are('msgq', 'create_queue', ARRAY['text', 'jsonb'],
	'msgq_tap_nobody', ARRAY[]::name[],
	'a role without grants cannot execute msgq.create_queue');

-- ... and in practice: it can use the schema, but can neither read the key
-- nor touch the tables nor call the restricted functions.
SET LOCAL ROLE msgq_tap_nobody;
SELECT throws_ok('SELECT receipt_key FROM msgq.secret', '42501',
	'permission denied for table secret',
	'a role without grants cannot read msgq.secret');
SELECT throws_ok('SELECT count(*) FROM msgq.message', '42501',
	'permission denied for table message',
	'a role without grants cannot read msgq.message');
SELECT throws_ok($$INSERT INTO msgq.queue_permission VALUES (1, 'x', '{}')$$, '42501',
	'permission denied for table queue_permission',
	'a role without grants cannot write msgq.queue_permission');
SELECT throws_ok($$UPDATE msgq.queue SET owner = 'msgq_tap_nobody'$$, '42501',
	'permission denied for table queue',
	'a role without grants cannot write msgq.queue');
SELECT throws_ok($$SELECT nextval('msgq.message_seq')$$, '42501',
	'permission denied for sequence message_seq',
	'a role without grants cannot use msgq.message_seq');
SELECT throws_ok($$SELECT msgq.create_queue('tap_priv_q')$$, '42501',
	'permission denied for function create_queue',
	'a role without grants cannot create queues');
SELECT throws_ok($$SELECT msgq.run_maintenance()$$, '42501',
	'permission denied for function run_maintenance',
	'a role without grants cannot run maintenance');
SELECT lives_ok($$SELECT * FROM msgq.waiters$$,
	'a role without grants can read msgq.waiters');
SELECT lives_ok($$SELECT * FROM msgq.workers$$,
	'a role without grants can read msgq.workers');
RESET ROLE;

-- Dump membership: pg_extension.extconfig ------------------------------------
SELECT is_empty(
	$$SELECT c::regclass::text
	    FROM pg_catalog.pg_extension e, unnest(e.extconfig) c
	   WHERE e.extname = 'msgq' AND c::regclass::text IN ('msgq.secret', 'msgq.deleted_queue', 'msgq.segment')$$,
	'pg_dump keeps none of msgq.secret, msgq.deleted_queue and msgq.segment');

SELECT ok(
	(SELECT e.extconfig @> ARRAY['msgq.queue'::regclass, 'msgq.message_0'::regclass,
								 'msgq.message_1'::regclass, 'msgq.message_2'::regclass,
								 'msgq.message_3'::regclass, 'msgq.queue_permission'::regclass]::oid[]
	   FROM pg_catalog.pg_extension e WHERE e.extname = 'msgq'),
	'the queue, message (its four partitions) and permission tables are extension configuration tables');

SELECT ok(
	(SELECT e.extconfig @> ARRAY['msgq.queue_id_seq'::regclass,
								 'msgq.message_seq'::regclass]::oid[]
	   FROM pg_catalog.pg_extension e WHERE e.extname = 'msgq'),
	'the two sequences are dumped, so restored ids do not collide');

SELECT ok(
	(SELECT NOT ('msgq.secret'::regclass::oid = ANY (e.extconfig))
	   FROM pg_catalog.pg_extension e WHERE e.extname = 'msgq'),
	'msgq.secret is NOT dumped (a restore makes a new receipt-handle key)');

SELECT is(
	(SELECT array_length(e.extconfig, 1) = array_length(e.extcondition, 1)
			AND '' = ALL (e.extcondition)
	   FROM pg_catalog.pg_extension e WHERE e.extname = 'msgq'),
	true,
	'configuration tables are dumped whole (no WHERE condition)');

-- The key exists, is secret-sized, and there is exactly one.
SELECT is((SELECT count(*)::int FROM msgq.secret), 1, 'msgq.secret holds one key');
SELECT cmp_ok((SELECT octet_length(receipt_key) FROM msgq.secret), '>=', 32,
	'the receipt-handle key has at least 256 bits');

-- Ownership: everything in the schema belongs to the extension owner.
SELECT is_empty(
	$$SELECT c.oid::regclass::text
	    FROM pg_catalog.pg_class c, pg_catalog.pg_extension e
	   WHERE e.extname = 'msgq' AND c.relnamespace = 'msgq'::regnamespace
		 AND c.relowner <> e.extowner$$,
	'every msgq relation is owned by the extension owner');

SELECT * FROM finish();
ROLLBACK;
