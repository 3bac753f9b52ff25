-- 91-key-rotation.sql: rotating the key file of the access keys' secrets
-- (src/access_key.c): rotate_access_key_encryption adds a key in front of
-- the file and re-encrypts every secret with it, retire_access_key_encryption
-- removes the older keys once no committed secret needs them; the file's
-- two formats; a rolled-back rotation, a secret that opens with no key, a
-- retire in the rotation's transaction; superusers only (42501).
-- 90-endpoint.sql tests the secrets themselves, test/t/023 that the
-- endpoint's workers read the rotated file.
--
-- Not in one transaction, unlike the other files: retire looks at committed
-- rows only, so the keys here are committed, and removed at the end.  Run
-- with pg_prove against a database where CREATE EXTENSION pgtap and CREATE
-- EXTENSION msgq already ran, whose key file holds one key (or none) and
-- which has no access key of its own.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

SELECT plan(39);

SELECT has_function('msgq', 'rotate_access_key_encryption', ARRAY[]::text[], 'msgq.rotate_access_key_encryption() exists');
SELECT has_function('msgq', 'retire_access_key_encryption', ARRAY[]::text[], 'msgq.retire_access_key_encryption() exists');
SELECT function_returns('msgq', 'rotate_access_key_encryption', ARRAY[]::text[], 'integer');
SELECT function_returns('msgq', 'retire_access_key_encryption', ARRAY[]::text[], 'integer');

CREATE ROLE tap_kr_app;
CREATE ROLE tap_kr_other;
CREATE TEMP TABLE tap_kr_key AS SELECT * FROM msgq.create_access_key('tap_kr_app');
INSERT INTO tap_kr_key SELECT * FROM msgq.create_access_key('tap_kr_app');
-- the stored secrets as they were at the last save_rows()
CREATE TEMP TABLE tap_kr_row AS SELECT access_key_id, encrypted_secret FROM msgq.endpoint_credential WHERE false;

-- The number of keys in the key file: 32 bytes are one, a list is 20 + 32 n
CREATE FUNCTION pg_temp.keys() RETURNS int
LANGUAGE sql AS $$
	SELECT CASE WHEN size = 32 THEN 1 ELSE ((size - 20) / 32)::int END FROM pg_stat_file('msgq_endpoint.key')
$$;
CREATE FUNCTION pg_temp.save_rows() RETURNS void
LANGUAGE sql AS $$
	DELETE FROM tap_kr_row;
	INSERT INTO tap_kr_row SELECT access_key_id, encrypted_secret FROM msgq.endpoint_credential JOIN tap_kr_key USING (access_key_id);
$$;
-- How many of the keys' stored secrets are as at the last save_rows()
CREATE FUNCTION pg_temp.unchanged() RETURNS int
LANGUAGE sql AS $$
	SELECT count(*)::int FROM msgq.endpoint_credential c JOIN tap_kr_row r USING (access_key_id)
	 WHERE c.encrypted_secret = r.encrypted_secret
$$;
-- check_access_key on every key: 'no error', or the first error
CREATE FUNCTION pg_temp.check_keys() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE st text; msg text;
BEGIN
	PERFORM msgq.check_access_key(access_key_id) FROM tap_kr_key;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	RETURN st || ' | ' || msg;
END
$$;
-- The error of a statement: SQLSTATE, message, detail, hint
CREATE FUNCTION pg_temp.error_of(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text; hint text;
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
							hint = PG_EXCEPTION_HINT;
	RETURN concat_ws(' | ', st, msg, det, hint);
END
$$;
-- How many 6-character pieces of the keys' secrets appear in t
CREATE FUNCTION pg_temp.pieces(t text) RETURNS int
LANGUAGE sql AS $$
	SELECT count(*)::int FROM tap_kr_key k, generate_series(1, 35) i
	 WHERE strpos(t, substr(k.secret_access_key, i, 6)) > 0
$$;
-- A rotation in a subtransaction that rolls back: its count
CREATE FUNCTION pg_temp.rotate_rolled_back() RETURNS int
LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
	BEGIN
		n := msgq.rotate_access_key_encryption();
		RAISE EXCEPTION 'rolled back';
	EXCEPTION WHEN raise_exception THEN
		RETURN n;
	END;
END
$$;
-- key k's stored secret with its last byte (of the tag) XORed with 1
CREATE FUNCTION pg_temp.flip(k text) RETURNS void
LANGUAGE sql AS $$
	UPDATE msgq.endpoint_credential
	   SET encrypted_secret = set_byte(encrypted_secret, octet_length(encrypted_secret) - 1,
									   get_byte(encrypted_secret, octet_length(encrypted_secret) - 1) # 1)
	 WHERE access_key_id = k
$$;

-- rotate, then retire
SELECT is(pg_temp.keys(), 1, 'the key file holds one key');
SELECT is((SELECT size FROM pg_stat_file('msgq_endpoint.key')), 32::bigint, 'one key: a file of 32 bytes');
SELECT pg_temp.save_rows();
SELECT is(msgq.rotate_access_key_encryption(), (SELECT count(*)::int FROM msgq.endpoint_credential),
	'rotate re-encrypts every access key, and says how many');
SELECT is(pg_temp.keys(), 2, 'rotate adds a key to the file');
SELECT is(encode(substr(pg_read_binary_file('msgq_endpoint.key'), 1, 16), 'hex'),
	encode('MSGQKEYS'::bytea, 'hex') || '00000001' || '00000002',
	'several keys: the header says MSGQKEYS, version 1, 2 keys');
SELECT is((SELECT size FROM pg_stat_file('msgq_endpoint.key')), (16 + 2 * 32 + 4)::bigint,
	'then the keys and a checksum of 4 bytes');
SELECT is(pg_temp.unchanged(), 0, 'every stored secret was rewritten');
SELECT is(pg_temp.check_keys(), 'no error', 'rotated, the secrets check');
INSERT INTO tap_kr_key SELECT * FROM msgq.create_access_key('tap_kr_app');
SELECT is(pg_temp.check_keys(), 'no error', 'a key made after a rotation checks');
SELECT is(msgq.retire_access_key_encryption(), 1, 'retire after a rotation removes the one older key');
SELECT is((SELECT size FROM pg_stat_file('msgq_endpoint.key')), 32::bigint,
	'one key left: the file of 32 bytes again');
SELECT is(pg_temp.check_keys(), 'no error', 'retired, the secrets (also the key made after the rotation) check');
SELECT is(msgq.retire_access_key_encryption(), 0, 'nothing more to retire');

-- a rotation that rolls back leaves its key, and the rows with the older one
SELECT pg_temp.save_rows();
SELECT is(pg_temp.rotate_rolled_back(), (SELECT count(*)::int FROM msgq.endpoint_credential),
	'a rotation rolled back in a subtransaction');
SELECT is(pg_temp.keys(), 2, 'leaves its new key in the file');
SELECT is(pg_temp.unchanged(), (SELECT count(*)::int FROM tap_kr_key), 'and the stored secrets as they were');
SELECT is(pg_temp.check_keys(), 'no error', 'which open with the older key, still in the file');
SELECT throws_ok('SELECT msgq.retire_access_key_encryption()', '55000',
	format('access key %s is still encrypted with an older key', (SELECT min(access_key_id) FROM tap_kr_key)),
	'retire refuses while a secret is encrypted with an older key, naming the access key');
SELECT is(pg_temp.pieces(pg_temp.error_of('SELECT msgq.retire_access_key_encryption()')), 0,
	'the error shows no piece of a secret');
SELECT is(pg_temp.keys(), 2, 'and removes no key');
SELECT is(pg_temp.check_keys(), 'no error', 'the secrets still check');

-- retire in the transaction of a rotation: its rollback would need the older key
SELECT throws_ok('SELECT msgq.rotate_access_key_encryption(), msgq.retire_access_key_encryption()', '25001',
	'cannot retire keys in a transaction that changed msgq.endpoint_credential',
	'retire refuses in a transaction that wrote msgq.endpoint_credential (a rotation)');
SELECT is(pg_temp.keys(), 3, 'the rolled-back rotation''s key stays in the file');

-- a secret that opens with no key: named, never skipped
SELECT pg_temp.flip((SELECT max(access_key_id) FROM tap_kr_key));
SELECT throws_ok('SELECT msgq.rotate_access_key_encryption()', 'XX001',
	format('the secret of access key %s cannot be decrypted with any key of the key file', (SELECT max(access_key_id) FROM tap_kr_key)),
	'rotate refuses a secret that opens with no key, naming the access key');
SELECT is(pg_temp.keys(), 3, 'and changes nothing in the file');
SELECT pg_temp.flip((SELECT max(access_key_id) FROM tap_kr_key));

SELECT is(msgq.rotate_access_key_encryption(), (SELECT count(*)::int FROM msgq.endpoint_credential),
	'rotate again');
SELECT is(msgq.retire_access_key_encryption(), 3, 'retire removes every older key');
SELECT is(pg_temp.keys(), 1, 'one key left');
SELECT is(pg_temp.check_keys(), 'no error', 'the secrets check');

-- superusers only
GRANT SELECT ON tap_kr_key TO tap_kr_other;
SET ROLE tap_kr_other;
SELECT throws_ok('SELECT msgq.rotate_access_key_encryption()', '42501',
	'permission denied to rotate the key file of access keys'' secrets', 'rotate: superusers only (42501)');
SELECT throws_ok('SELECT msgq.retire_access_key_encryption()', '42501',
	'permission denied to retire the older keys of the key file of access keys'' secrets', 'retire: superusers only (42501)');
RESET ROLE;
GRANT tap_kr_app TO tap_kr_other;
SET ROLE tap_kr_other;
SELECT throws_ok('SELECT msgq.rotate_access_key_encryption()', '42501', NULL,
	'rotate: not even for a member of every key''s role');
RESET ROLE;
SELECT is(pg_temp.keys(), 1, 'a refused rotation adds no key');

SELECT lives_ok($$SELECT msgq.delete_access_key(access_key_id) FROM tap_kr_key$$, 'delete the keys');
SELECT is((SELECT count(*)::int FROM msgq.endpoint_credential JOIN tap_kr_key USING (access_key_id)), 0, 'none left');

SELECT * FROM finish();

DROP TABLE tap_kr_key, tap_kr_row;
DROP ROLE tap_kr_other;
DROP ROLE tap_kr_app;
