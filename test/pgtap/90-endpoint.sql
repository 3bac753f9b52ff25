-- 90-endpoint.sql: the SQL contract of the AWS endpoint's access keys
-- (src/endpoint.c): signatures, who may call what, the view, and the
-- SQLSTATE of every error (NotFound MQ025, InvalidParameterValue MQ006,
-- AccessDenied 42501).  test/t/023 tests the endpoint itself.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(12);

SELECT has_function('msgq', 'create_access_key', ARRAY['regrole'], 'msgq.create_access_key(regrole) exists');
SELECT has_function('msgq', 'delete_access_key', ARRAY['text'], 'msgq.delete_access_key(text) exists');
SELECT function_returns('msgq', 'delete_access_key', ARRAY['text'], 'void');
SELECT columns_are('msgq', 'access_keys', ARRAY['access_key_id', 'role', 'created_at'],
	'msgq.access_keys shows no secret');
SELECT ok(NOT has_table_privilege('public', 'msgq.endpoint_credential', 'SELECT'),
	'the secrets are not readable by PUBLIC');

CREATE ROLE tap_ep_app;
CREATE ROLE tap_ep_other;
SELECT is((SELECT length(access_key_id) || '/' || length(secret_access_key)
			 FROM msgq.create_access_key('tap_ep_app')), '20/40', 'a key of 20 characters, a secret of 40');
SELECT is((SELECT count(*)::int FROM msgq.access_keys WHERE role = 'tap_ep_app'::regrole), 1, 'listed');
SELECT throws_ok($$SELECT msgq.delete_access_key('AKIANOSUCHKEY0000000')$$,
	'MQ025', NULL, 'NotFound: an unknown key');
SELECT throws_ok($$SELECT * FROM msgq.create_access_key(NULL)$$,
	'MQ006', NULL, 'InvalidParameterValue: no role');
SET LOCAL ROLE tap_ep_other;
SELECT throws_ok($$SELECT * FROM msgq.create_access_key('tap_ep_app')$$,
	'42501', NULL, 'AccessDenied: a key for a role one lacks');
SELECT is((SELECT count(*)::int FROM msgq.access_keys), 0, 'another role sees no key');
RESET ROLE;
SELECT lives_ok($$SELECT msgq.delete_access_key(access_key_id) FROM msgq.access_keys WHERE role = 'tap_ep_app'::regrole$$,
	'delete_access_key');

SELECT * FROM finish();
ROLLBACK;
