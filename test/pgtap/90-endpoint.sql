-- 90-endpoint.sql: the SQL contract of the AWS endpoint's access keys
-- (src/endpoint.c): signatures, who may call what, the view, and the
-- SQLSTATE of every error (NotFound MQ025, InvalidParameterValue MQ006,
-- AccessDenied 42501, a secret that does not decrypt XX001); secrets
-- stored encrypted (src/access_key.c): no piece of a secret in its row, a
-- changed byte or a secret moved to another key's row refused.  test/t/023
-- tests the endpoint itself, 91-key-rotation.sql rotating the key file.
--
-- Run with pg_prove against a database where CREATE EXTENSION pgtap and
-- CREATE EXTENSION msgq already ran.  Leaves nothing behind (ROLLBACK).
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(30);

SELECT has_function('msgq', 'create_access_key', ARRAY['regrole'], 'msgq.create_access_key(regrole) exists');
SELECT has_function('msgq', 'delete_access_key', ARRAY['text'], 'msgq.delete_access_key(text) exists');
SELECT has_function('msgq', 'check_access_key', ARRAY['text'], 'msgq.check_access_key(text) exists');
SELECT columns_are('msgq', 'endpoint_credential', ARRAY['access_key_id', 'encrypted_secret', 'role', 'created_at'],
	'msgq.endpoint_credential has no column of secrets in clear');
SELECT col_type_is('msgq', 'endpoint_credential', 'encrypted_secret', 'bytea', 'the secret is stored as bytea');
SELECT function_returns('msgq', 'delete_access_key', ARRAY['text'], 'void');
SELECT columns_are('msgq', 'access_keys', ARRAY['access_key_id', 'role', 'created_at'],
	'msgq.access_keys shows no secret');
SELECT ok(NOT has_table_privilege('public', 'msgq.endpoint_credential', 'SELECT'),
	'the secrets are not readable by PUBLIC');

CREATE ROLE tap_ep_app;
CREATE ROLE tap_ep_other;
CREATE TEMP TABLE tap_ep_key AS SELECT * FROM msgq.create_access_key('tap_ep_app');
CREATE TEMP TABLE tap_ep_key2 AS SELECT * FROM msgq.create_access_key('tap_ep_app');
SELECT is((SELECT length(access_key_id) || '/' || length(secret_access_key) FROM tap_ep_key),
	'20/40', 'a key of 20 characters, a secret of 40');
SELECT is((SELECT count(*)::int FROM msgq.access_keys WHERE role = 'tap_ep_app'::regrole), 2, 'listed');

-- How many 6-character pieces of the secret of key k appear in t
CREATE FUNCTION pg_temp.pieces(t text) RETURNS int
LANGUAGE sql AS $$
	SELECT count(*)::int FROM tap_ep_key k, generate_series(1, 35) i
	 WHERE strpos(t, substr(k.secret_access_key, i, 6)) > 0
$$;
-- The error of check_access_key on key k: SQLSTATE, message, detail, hint
CREATE FUNCTION pg_temp.check_key() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text; hint text;
BEGIN
	PERFORM msgq.check_access_key(access_key_id) FROM tap_ep_key;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
							hint = PG_EXCEPTION_HINT;
	RETURN concat_ws(' | ', st, msg, det, hint);
END
$$;
-- key k's stored secret with byte n XORed with 1 (n < 0: from the end)
CREATE FUNCTION pg_temp.flip(n int) RETURNS void
LANGUAGE sql AS $$
	UPDATE msgq.endpoint_credential c
	   SET encrypted_secret = set_byte(encrypted_secret, (CASE WHEN n < 0 THEN octet_length(encrypted_secret) ELSE 0 END) + n,
									   get_byte(encrypted_secret, (CASE WHEN n < 0 THEN octet_length(encrypted_secret) ELSE 0 END) + n) # 1)
	  FROM tap_ep_key k WHERE c.access_key_id = k.access_key_id
$$;

SELECT is((SELECT pg_temp.pieces(c::text) + pg_temp.pieces(encode(c.encrypted_secret, 'escape'))
			 FROM msgq.endpoint_credential c JOIN tap_ep_key USING (access_key_id)), 0,
	'the stored row holds no piece of its secret (neither as text nor as bytes)');
SELECT is((SELECT octet_length(c.encrypted_secret) FROM msgq.endpoint_credential c JOIN tap_ep_key USING (access_key_id)),
	16 + 40 + 32, 'stored: a nonce of 16 bytes, the 40 encrypted, a tag of 32');
SELECT isnt((SELECT substr(encrypted_secret, 1, 16) FROM msgq.endpoint_credential JOIN tap_ep_key USING (access_key_id)),
	(SELECT substr(encrypted_secret, 1, 16) FROM msgq.endpoint_credential JOIN tap_ep_key2 USING (access_key_id)),
	'each secret has a nonce of its own');
SELECT is((SELECT count(*)::int FROM msgq.access_keys a JOIN tap_ep_key USING (access_key_id)
			WHERE pg_temp.pieces(a::text) = 0), 1, 'msgq.access_keys shows no piece of the secret');
SELECT is((SELECT size FROM pg_stat_file('msgq_endpoint.key')), 32::bigint,
	'the key file of the data directory holds 32 bytes');
SELECT is(pg_temp.check_key(), 'no error', 'check_access_key: the secret decrypts');
SELECT pg_temp.flip(0);
SELECT is(split_part(pg_temp.check_key(), ' | ', 1), 'XX001', 'a changed byte of the nonce: XX001');
SELECT pg_temp.flip(0);
SELECT pg_temp.flip(20);
SELECT is(split_part(pg_temp.check_key(), ' | ', 1), 'XX001', 'a changed byte of the ciphertext: XX001');
SELECT pg_temp.flip(20);
SELECT pg_temp.flip(-1);
SELECT matches(pg_temp.check_key(),
	'^XX001 \| the secret of access key "AKIA[A-Z2-7]{16}" cannot be decrypted \| AWS error code: InvalidClientTokenId\. ',
	'a changed byte of the tag: XX001, with the AWS error InvalidClientTokenId');
SELECT is(pg_temp.pieces(pg_temp.check_key()), 0, 'the error shows no piece of the secret');
SELECT pg_temp.flip(-1);
SELECT is(pg_temp.check_key(), 'no error', 'changed back, it decrypts again');
UPDATE msgq.endpoint_credential c SET encrypted_secret = substr(encrypted_secret, 1, 40)
  FROM tap_ep_key k WHERE c.access_key_id = k.access_key_id;
SELECT is(split_part(pg_temp.check_key(), ' | ', 1), 'XX001', 'a cut stored secret: XX001');
UPDATE msgq.endpoint_credential c SET encrypted_secret = (SELECT encrypted_secret FROM msgq.endpoint_credential
															  JOIN tap_ep_key2 USING (access_key_id))
  FROM tap_ep_key k WHERE c.access_key_id = k.access_key_id;
SELECT is(split_part(pg_temp.check_key(), ' | ', 1), 'XX001', 'another key''s stored secret: XX001');
SELECT throws_ok($$SELECT msgq.check_access_key('AKIANOSUCHKEY0000000')$$,
	'MQ025', NULL, 'check_access_key: NotFound for an unknown key');
SELECT throws_ok($$SELECT msgq.delete_access_key('AKIANOSUCHKEY0000000')$$,
	'MQ025', NULL, 'NotFound: an unknown key');
SELECT throws_ok($$SELECT * FROM msgq.create_access_key(NULL)$$,
	'MQ006', NULL, 'InvalidParameterValue: no role');
GRANT SELECT ON tap_ep_key2 TO tap_ep_other;
SET LOCAL ROLE tap_ep_other;
SELECT throws_ok($$SELECT * FROM msgq.create_access_key('tap_ep_app')$$,
	'42501', NULL, 'AccessDenied: a key for a role one lacks');
SELECT is((SELECT count(*)::int FROM msgq.access_keys), 0, 'another role sees no key');
SELECT throws_ok(format('SELECT msgq.check_access_key(%L)', (SELECT access_key_id FROM tap_ep_key2)),
	'42501', NULL, 'AccessDenied: checking a key of a role one lacks');
RESET ROLE;
SELECT lives_ok($$SELECT msgq.delete_access_key(access_key_id) FROM msgq.access_keys WHERE role = 'tap_ep_app'::regrole$$,
	'delete_access_key');

SELECT * FROM finish();
ROLLBACK;
