--
-- privileges: who may create queues, the owner's rights, add_permission /
-- remove_permission, group and PUBLIC grants, list_queues filtering, the
-- storage closed to ordinary roles, superuser-only settings and functions,
-- and a hostile search_path.
--
-- Queue names here all start with "p_"; roles with "regress_msgq_".
--

-- msgq_test.err() comes from queue.sql; made again here so this file can run alone
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS msgq_test;
RESET client_min_messages;
GRANT USAGE ON SCHEMA msgq_test TO PUBLIC;
CREATE OR REPLACE FUNCTION msgq_test.err(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
							det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || msg || CASE WHEN length(det) > 0 THEN ' | ' || det ELSE '' END;
END
$$;

CREATE ROLE regress_msgq_owner;
CREATE ROLE regress_msgq_other;
CREATE ROLE regress_msgq_sender;
CREATE ROLE regress_msgq_group NOLOGIN;
CREATE ROLE regress_msgq_member IN ROLE regress_msgq_group;
CREATE ROLE regress_msgq_noinherit NOINHERIT IN ROLE regress_msgq_group;
CREATE ROLE regress_msgq_evil;

-- Ordinary roles must be able to reach msgq's functions (queue rights are
-- checked by msgq itself), so PUBLIC has USAGE on the schema.
SELECT has_schema_privilege('public', 'msgq', 'USAGE') AS public_usage;
-- (a no-op when the install script granted it; keeps the rest meaningful otherwise)
GRANT USAGE ON SCHEMA msgq TO PUBLIC;

--
-- A hostile search_path: functions and operators shadowing the ones msgq
-- uses.  Each raises an error if called.  This runs before anything else
-- in this session calls msgq, so msgq prepares its statements under it.
--
CREATE SCHEMA regress_msgq_evil AUTHORIZATION regress_msgq_evil;
SET ROLE regress_msgq_evil;
CREATE FUNCTION regress_msgq_evil.trap() RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hostile search_path object used'; END $$;
CREATE FUNCTION regress_msgq_evil.eq_text(text, text) RETURNS boolean
LANGUAGE sql AS 'SELECT regress_msgq_evil.trap()';
CREATE FUNCTION regress_msgq_evil.eq_int4(int4, int4) RETURNS boolean
LANGUAGE sql AS 'SELECT regress_msgq_evil.trap()';
CREATE FUNCTION regress_msgq_evil.eq_int8(int8, int8) RETURNS boolean
LANGUAGE sql AS 'SELECT regress_msgq_evil.trap()';
CREATE FUNCTION regress_msgq_evil.cmp_ts(timestamptz, timestamptz) RETURNS boolean
LANGUAGE sql AS 'SELECT regress_msgq_evil.trap()';
CREATE FUNCTION regress_msgq_evil.add_ts(timestamptz, interval) RETURNS timestamptz
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN $1 END';
CREATE FUNCTION regress_msgq_evil.add_int4(int4, int4) RETURNS int4
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN $1 END';
CREATE OPERATOR regress_msgq_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_msgq_evil.eq_text);
CREATE OPERATOR regress_msgq_evil.= (LEFTARG = int4, RIGHTARG = int4, FUNCTION = regress_msgq_evil.eq_int4);
CREATE OPERATOR regress_msgq_evil.= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = regress_msgq_evil.eq_int8);
CREATE OPERATOR regress_msgq_evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_msgq_evil.cmp_ts);
CREATE OPERATOR regress_msgq_evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_msgq_evil.cmp_ts);
CREATE OPERATOR regress_msgq_evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_msgq_evil.cmp_ts);
CREATE OPERATOR regress_msgq_evil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = regress_msgq_evil.add_ts);
CREATE OPERATOR regress_msgq_evil.+ (LEFTARG = int4, RIGHTARG = int4, FUNCTION = regress_msgq_evil.add_int4);
CREATE FUNCTION regress_msgq_evil.md5(text) RETURNS text
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN $1 END';
CREATE FUNCTION regress_msgq_evil.now() RETURNS timestamptz
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN NULL::timestamptz END';
CREATE FUNCTION regress_msgq_evil.clock_timestamp() RETURNS timestamptz
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN NULL::timestamptz END';
CREATE FUNCTION regress_msgq_evil.nextval(regclass) RETURNS bigint
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN 1::bigint END';
CREATE FUNCTION regress_msgq_evil.make_interval(years int DEFAULT 0, months int DEFAULT 0,
	weeks int DEFAULT 0, days int DEFAULT 0, hours int DEFAULT 0, mins int DEFAULT 0,
	secs double precision DEFAULT 0) RETURNS interval
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN NULL::interval END';
CREATE FUNCTION regress_msgq_evil.starts_with(text, text) RETURNS boolean
LANGUAGE sql AS 'SELECT regress_msgq_evil.trap()';
CREATE FUNCTION regress_msgq_evil.array_agg(anyelement) RETURNS anyarray
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN ARRAY[$1] END';
CREATE FUNCTION regress_msgq_evil.unnest(anyarray) RETURNS SETOF anyelement
LANGUAGE sql AS 'SELECT CASE WHEN regress_msgq_evil.trap() THEN $1[1] END';
-- a look-alike of msgq's tables in the evil schema
CREATE TABLE regress_msgq_evil.queue (queue_name text);
CREATE TABLE regress_msgq_evil.message (body text);
RESET ROLE;
-- the traps work
SET search_path = regress_msgq_evil, pg_catalog, public;
SELECT msgq_test.err($$SELECT md5('x')$$);
SELECT msgq_test.err($$SELECT 'a'::text = 'a'::text$$);

-- msgq works as usual under it, for a superuser ...
SELECT msgq.create_queue('p_evil');
SELECT msgq.create_queue('p_evil');
SELECT msgq.get_queue_url('p_evil');
SELECT * FROM msgq.list_queues('p_evil');
SELECT md5_of_message_body AS evil_md5_one, md5_of_message_attributes AS evil_attr_md5
  FROM msgq.send_message('p_evil', 'one',
	message_attributes => '{"a": {"DataType": "String", "StringValue": "v"}}') \gset
SELECT md5_of_message_body AS evil_md5_two FROM msgq.send_message('p_evil', 'two', delay_seconds => 0) \gset
SELECT body, md5_of_body AS evil_md5_got, attributes->>'ApproximateReceiveCount' AS count
  FROM msgq.receive_message('p_evil', visibility_timeout => 0) \gset
SELECT :'body' AS body, :'count' AS count;
SELECT receipt_handle AS evil_handle FROM msgq.receive_message('p_evil') \gset
SELECT body FROM msgq.receive_message('p_evil');
SELECT body FROM msgq.receive_message('p_evil');
SELECT msgq.change_message_visibility('p_evil', :'evil_handle', 60);
SELECT msgq.delete_message('p_evil', :'evil_handle');
SELECT msgq.add_permission('p_evil', 'evil', ARRAY['regress_msgq_evil'], ARRAY['SendMessage', 'ReceiveMessage']);
SELECT msgq.remove_permission('p_evil', 'evil');
SELECT msgq.add_permission('p_evil', 'evil', ARRAY['regress_msgq_evil'], ARRAY['SendMessage', 'ReceiveMessage', 'DeleteMessage']);
SELECT msgq.run_maintenance();
SELECT msgq.now() IS NOT NULL AS has_now;
-- put_record runs SQL only when its stream is not cached yet (the first
-- put), and then with the path pinned; the caller's path is intact after
SELECT msgq.create_stream('p_evil_put', 1);
SELECT shard_id, sequence_number > 0 AS numbered FROM msgq.put_record('p_evil_put', 'k', '\x01'::bytea);
SELECT shard_id, sequence_number > 0 AS numbered FROM msgq.put_record('p_evil_put', 'k', '\x02'::bytea);
SHOW search_path;
SELECT count(*) AS evil_put_records
  FROM msgq.get_records(msgq.get_shard_iterator('p_evil_put', 'shardId-000000000000', 'TRIM_HORIZON'));
SELECT msgq.delete_stream('p_evil_put');
-- send_message_batch to a queue this session has not cached yet: the SQL path
SELECT msgq.create_queue('p_evil_batch') IS NOT NULL AS created;
SELECT id, message_id IS NOT NULL AS sent, error_code IS NULL AS ok
  FROM msgq.send_message_batch('p_evil_batch', '[{"Id": "u1", "MessageBody": "uncached"}]');
SHOW search_path;
SELECT msgq.delete_queue('p_evil_batch');
-- ... and for the role that owns the hostile schema
SET ROLE regress_msgq_evil;
SELECT md5_of_message_body AS evil_md5_three FROM msgq.send_message('p_evil', 'three') \gset
SELECT id, message_id IS NOT NULL AS sent, md5_of_message_body AS evil_md5_batch, error_code IS NULL AS ok
  FROM msgq.send_message_batch('p_evil', '[{"Id": "b1", "MessageBody": "batch"}]');
SHOW search_path;
SELECT count(*) FROM msgq.receive_message('p_evil', max_number_of_messages => 10) r,
	LATERAL msgq.delete_message('p_evil', r.receipt_handle);
SELECT body FROM msgq.receive_message('p_evil', max_number_of_messages => 10);
RESET ROLE;
RESET search_path;

-- Statements msgq runs as its owner are parsed with search_path pinned to
-- pg_catalog, pg_temp, whatever the caller's path (the plan cache parses a
-- statement again when the path changes, so pinning only at prepare time is
-- not enough).  A temporary domain named like a type msgq casts to, and the
-- operators above, are found first under the caller's path: were they used,
-- they would run as the extension's owner, a superuser.
SELECT msgq.create_stream('p_evil_stream', 1);
SELECT msgq.create_topic('p_evil_topic') AS evil_topic \gset
SELECT msgq.subscribe('p_evil_topic', 'sqs', 'p_evil') IS NOT NULL AS subscribed;
SET ROLE regress_msgq_evil;
CREATE DOMAIN pg_temp.oid AS pg_catalog.oid CHECK (regress_msgq_evil.trap());
CREATE DOMAIN pg_temp.bool AS pg_catalog.bool CHECK (regress_msgq_evil.trap());
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (regress_msgq_evil.trap());
SET search_path = regress_msgq_evil, pg_catalog, public;
SELECT msgq_test.err($$SELECT NULL::oid$$);
SELECT * FROM msgq.list_streams() WHERE list_streams = 'p_evil_stream';
SELECT count(*) > 0 AS listed FROM msgq.list_subscriptions() WHERE topic_arn = :'evil_topic';
SELECT (msgq.send_message('p_evil', 'four')).message_id IS NOT NULL AS sent;
SELECT r.body, msgq.delete_message('p_evil', r.receipt_handle) AS deleted
  FROM msgq.receive_message('p_evil') r;
RESET search_path;
DISCARD TEMP;
RESET ROLE;
-- a superuser's session whose path is hostile runs the maintenance cycle
SET search_path = regress_msgq_evil, pg_catalog, public;
SELECT msgq.run_maintenance();
RESET search_path;
SELECT msgq.delete_topic('p_evil_topic');
SELECT msgq.delete_stream('p_evil_stream');
-- the digests were right
SELECT :'evil_md5_one' = md5('one') AS md5_one, :'evil_md5_two' = md5('two') AS md5_two,
	   :'evil_md5_got' = md5('one') AS md5_got, :'evil_md5_three' = md5('three') AS md5_three,
	   :'evil_attr_md5' ~ '^[0-9a-f]{32}$' AS attr_md5;
SELECT count(*) FROM regress_msgq_evil.queue;
SELECT count(*) FROM regress_msgq_evil.message;
SELECT count(*) AS p_evil_messages FROM msgq.message m JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'p_evil';

--
-- Creating queues needs EXECUTE on msgq.create_queue
--
SET ROLE regress_msgq_owner;
SELECT msgq_test.err($$SELECT msgq.create_queue('p_owned')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO regress_msgq_owner;
SET ROLE regress_msgq_owner;
SELECT msgq.create_queue('p_owned');
SELECT msgq.create_queue('p_deletable');
-- the owner can do everything
SELECT msgq.get_queue_url('p_owned');
SELECT * FROM msgq.list_queues('p_');
SELECT md5_of_message_body = md5('owned') AS sent FROM msgq.send_message('p_owned', 'owned');
SELECT receipt_handle AS owner_handle, body FROM msgq.receive_message('p_owned') \gset
SELECT :'body' AS body;
SELECT msgq.change_message_visibility('p_owned', :'owner_handle', 60);
RESET ROLE;
-- the creating role owns the queue
SELECT queue_name,
	   CASE WHEN owner = current_user::regrole THEN '(current superuser)' ELSE owner::text END AS owner
  FROM msgq.queue WHERE queue_name LIKE 'p\_%' ORDER BY 1;

--
-- Another role can do nothing on it
--
SET ROLE regress_msgq_other;
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('create_queue', $$SELECT msgq.create_queue('p_other')$$),
	('create_queue existing', $$SELECT msgq.create_queue('p_owned')$$),
	('send_message', $$SELECT msgq.send_message('p_owned', 'x')$$),
	('receive_message', $$SELECT msgq.receive_message('p_owned')$$),
	('delete_message', format('SELECT msgq.delete_message(%L, %L)', 'p_owned', :'owner_handle')),
	('change_message_visibility', format('SELECT msgq.change_message_visibility(%L, %L, 0)', 'p_owned', :'owner_handle')),
	('get_queue_url', $$SELECT msgq.get_queue_url('p_owned')$$),
	('delete_queue', $$SELECT msgq.delete_queue('p_owned')$$),
	('add_permission', $$SELECT msgq.add_permission('p_owned', 'mine', '{regress_msgq_other}', '{*}')$$),
	('remove_permission', $$SELECT msgq.remove_permission('p_owned', 'mine')$$),
	('by url', $$SELECT msgq.send_message('msgq://contrib_regression/p_owned', 'x')$$)
	) AS t(f, s);
-- and does not see it
SELECT * FROM msgq.list_queues('p_');
SELECT * FROM msgq.list_queues();
-- a missing queue is still QueueDoesNotExist
SELECT msgq_test.err($$SELECT msgq.send_message('p_missing', 'x')$$);
RESET ROLE;
-- nothing changed
SELECT count(*) AS p_owned_messages FROM msgq.message m JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'p_owned';

--
-- add_permission grants exactly the listed actions
--
SET ROLE regress_msgq_owner;
SELECT msgq.add_permission('p_owned', 'senders', ARRAY['regress_msgq_sender'], ARRAY['SendMessage']);
SELECT msgq.add_permission('p_owned', 'workers', ARRAY['regress_msgq_other'],
						   ARRAY['ReceiveMessage', 'SQS:DeleteMessage']);
RESET ROLE;
SELECT label, p.acl FROM msgq.queue_permission p JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'p_owned' ORDER BY label;
SELECT acl FROM msgq.queue WHERE queue_name = 'p_owned';

SET ROLE regress_msgq_sender;
SELECT md5_of_message_body = md5('from sender') AS sent FROM msgq.send_message('p_owned', 'from sender');
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('receive_message', $$SELECT msgq.receive_message('p_owned')$$),
	('delete_message', format('SELECT msgq.delete_message(%L, %L)', 'p_owned', :'owner_handle')),
	('change_message_visibility', format('SELECT msgq.change_message_visibility(%L, %L, 0)', 'p_owned', :'owner_handle')),
	('get_queue_url', $$SELECT msgq.get_queue_url('p_owned')$$),
	('delete_queue', $$SELECT msgq.delete_queue('p_owned')$$)
	) AS t(f, s);
-- any right makes the queue listed
SELECT * FROM msgq.list_queues('p_');
RESET ROLE;

SET ROLE regress_msgq_other;
SELECT receipt_handle AS other_handle, body, attributes->>'SenderId' AS sender
  FROM msgq.receive_message('p_owned') \gset
SELECT :'body' AS body, :'sender' AS sender;
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('send_message', $$SELECT msgq.send_message('p_owned', 'x')$$),
	('change_message_visibility', format('SELECT msgq.change_message_visibility(%L, %L, 0)', 'p_owned', :'other_handle')),
	('get_queue_url', $$SELECT msgq.get_queue_url('p_owned')$$),
	('delete_queue', $$SELECT msgq.delete_queue('p_owned')$$),
	('add_permission', $$SELECT msgq.add_permission('p_owned', 'mine', '{regress_msgq_other}', '{*}')$$)
	) AS t(f, s);
SELECT msgq.delete_message('p_owned', :'other_handle');
SELECT * FROM msgq.list_queues('p_');
RESET ROLE;

-- all actions ('*') still do not make a role the owner
SET ROLE regress_msgq_owner;
SELECT msgq.add_permission('p_owned', 'all', ARRAY['regress_msgq_sender'], ARRAY['*']);
RESET ROLE;
SET ROLE regress_msgq_sender;
SELECT msgq.get_queue_url('p_owned');
SELECT msgq.change_message_visibility('p_owned', :'owner_handle', 0);
SELECT body FROM msgq.receive_message('p_owned');
SELECT msgq_test.err($$SELECT msgq.add_permission('p_owned', 'mine', '{regress_msgq_sender}', '{*}')$$);
SELECT msgq_test.err($$SELECT msgq.remove_permission('p_owned', 'senders')$$);
RESET ROLE;

-- DeleteQueue lets a role delete the queue
SET ROLE regress_msgq_owner;
SELECT msgq.add_permission('p_deletable', 'deleters', ARRAY['regress_msgq_other'], ARRAY['DeleteQueue']);
RESET ROLE;
SET ROLE regress_msgq_other;
SELECT msgq_test.err($$SELECT msgq.send_message('p_deletable', 'x')$$);
SELECT msgq.delete_queue('p_deletable');
SELECT * FROM msgq.list_queues('p_');
RESET ROLE;

--
-- Grants to a group reach its members that inherit; grants to PUBLIC reach everyone
--
SET ROLE regress_msgq_owner;
SELECT msgq.add_permission('p_owned', 'group', ARRAY['regress_msgq_group'], ARRAY['GetQueueUrl']);
RESET ROLE;
SET ROLE regress_msgq_member;
SELECT msgq.get_queue_url('p_owned');
SELECT msgq_test.err($$SELECT msgq.send_message('p_owned', 'x')$$);
RESET ROLE;
SET ROLE regress_msgq_noinherit;
SELECT msgq_test.err($$SELECT msgq.get_queue_url('p_owned')$$);
SELECT * FROM msgq.list_queues('p_');
RESET ROLE;
SET ROLE regress_msgq_owner;
SELECT msgq.add_permission('p_owned', 'everyone', ARRAY['PUBLIC'], ARRAY['GetQueueUrl', 'SendMessage']);
RESET ROLE;
SET ROLE regress_msgq_noinherit;
SELECT msgq.get_queue_url('p_owned');
SELECT md5_of_message_body = md5('from public') AS sent FROM msgq.send_message('p_owned', 'from public');
SELECT msgq_test.err($$SELECT msgq.receive_message('p_owned')$$);
SELECT * FROM msgq.list_queues('p_');
RESET ROLE;

-- a queue owned by a group: its inheriting members act as the owner
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO regress_msgq_group;
SET ROLE regress_msgq_group;
SELECT msgq.create_queue('p_group_owned');
RESET ROLE;
SET ROLE regress_msgq_member;
SELECT md5_of_message_body = md5('member') AS sent FROM msgq.send_message('p_group_owned', 'member');
SELECT body FROM msgq.receive_message('p_group_owned', visibility_timeout => 0);
SELECT msgq.add_permission('p_group_owned', 'member-grant', ARRAY['regress_msgq_other'], ARRAY['ReceiveMessage']);
RESET ROLE;
SET ROLE regress_msgq_noinherit;
SELECT msgq_test.err($$SELECT msgq.send_message('p_group_owned', 'x')$$);
SELECT msgq_test.err($$SELECT msgq.add_permission('p_group_owned', 'x', '{regress_msgq_noinherit}', '{*}')$$);
RESET ROLE;
SET ROLE regress_msgq_other;
SELECT body FROM msgq.receive_message('p_group_owned', visibility_timeout => 0);
SELECT * FROM msgq.list_queues('p_');
RESET ROLE;

--
-- remove_permission revokes
--
SET ROLE regress_msgq_owner;
SELECT msgq.remove_permission('p_owned', 'everyone');
SELECT msgq.remove_permission('p_owned', 'all');
SELECT msgq.remove_permission('p_owned', 'senders');
RESET ROLE;
SET ROLE regress_msgq_sender;
SELECT msgq_test.err($$SELECT msgq.send_message('p_owned', 'x')$$);
SELECT * FROM msgq.list_queues('p_');
RESET ROLE;
SET ROLE regress_msgq_noinherit;
SELECT msgq_test.err($$SELECT msgq.get_queue_url('p_owned')$$);
RESET ROLE;
-- the other labels are untouched
SELECT label FROM msgq.queue_permission p JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'p_owned' ORDER BY label;
SET ROLE regress_msgq_other;
SELECT count(*) FROM msgq.receive_message('p_owned', max_number_of_messages => 10);
RESET ROLE;

--
-- add_permission / remove_permission argument checks (as the owner)
--
SET ROLE regress_msgq_owner;
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('7 actions', $$SELECT msgq.add_permission('p_owned', 'seven', '{regress_msgq_sender}',
		'{SendMessage,ReceiveMessage,DeleteMessage,ChangeMessageVisibility,PurgeQueue,GetQueueAttributes,GetQueueUrl}')$$),
	('8 actions', $$SELECT msgq.add_permission('p_owned', 'eight', '{regress_msgq_sender}',
		'{SendMessage,ReceiveMessage,DeleteMessage,ChangeMessageVisibility,PurgeQueue,GetQueueAttributes,GetQueueUrl,SetQueueAttributes}')$$),
	('unknown action', $$SELECT msgq.add_permission('p_owned', 'bad', '{regress_msgq_sender}', '{SendMessages}')$$),
	('lower-case action', $$SELECT msgq.add_permission('p_owned', 'bad', '{regress_msgq_sender}', '{sendmessage}')$$),
	('CreateQueue action', $$SELECT msgq.add_permission('p_owned', 'bad', '{regress_msgq_sender}', '{CreateQueue}')$$),
	('AddPermission action', $$SELECT msgq.add_permission('p_owned', 'bad', '{regress_msgq_sender}', '{AddPermission}')$$),
	('NULL action', $$SELECT msgq.add_permission('p_owned', 'bad', '{regress_msgq_sender}', ARRAY[NULL]::text[])$$),
	('no actions', $$SELECT msgq.add_permission('p_owned', 'bad', '{regress_msgq_sender}', '{}')$$),
	('actions NULL', $$SELECT msgq.add_permission('p_owned', 'bad', '{regress_msgq_sender}', NULL)$$),
	('unknown role', $$SELECT msgq.add_permission('p_owned', 'bad', '{regress_msgq_nobody}', '{SendMessage}')$$),
	('NULL role', $$SELECT msgq.add_permission('p_owned', 'bad', ARRAY[NULL]::text[], '{SendMessage}')$$),
	('no roles', $$SELECT msgq.add_permission('p_owned', 'bad', '{}', '{SendMessage}')$$),
	('roles NULL', $$SELECT msgq.add_permission('p_owned', 'bad', NULL, '{SendMessage}')$$),
	('duplicate label', $$SELECT msgq.add_permission('p_owned', 'workers', '{regress_msgq_sender}', '{SendMessage}')$$),
	('label with space', $$SELECT msgq.add_permission('p_owned', 'bad label', '{regress_msgq_sender}', '{SendMessage}')$$),
	('label 81', $$SELECT msgq.add_permission('p_owned', repeat('l', 81), '{regress_msgq_sender}', '{SendMessage}')$$),
	('label 80', $$SELECT msgq.add_permission('p_owned', repeat('l', 80), '{regress_msgq_sender}', '{SendMessage}')$$),
	('label empty', $$SELECT msgq.add_permission('p_owned', '', '{regress_msgq_sender}', '{SendMessage}')$$),
	('label NULL', $$SELECT msgq.add_permission('p_owned', NULL, '{regress_msgq_sender}', '{SendMessage}')$$),
	('remove unknown label', $$SELECT msgq.remove_permission('p_owned', 'nope')$$),
	('remove NULL label', $$SELECT msgq.remove_permission('p_owned', NULL)$$)
	) AS t(f, s);
RESET ROLE;
-- only the two valid grants were added
SELECT label FROM msgq.queue_permission p JOIN msgq.queue q USING (queue_id)
 WHERE q.queue_name = 'p_owned' ORDER BY label;

--
-- msgq's storage is closed to ordinary roles, owners included
--
SET ROLE regress_msgq_owner;
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('select message', $$SELECT count(*) FROM msgq.message$$),
	('insert message', $$INSERT INTO msgq.message (queue_id, msg_seq, message_id, body, md5_of_body, sender, sent_at, visible_at) VALUES (1, 1, gen_random_uuid(), 'x', 'x', 'x', now(), now())$$),
	('update message', $$UPDATE msgq.message SET visible_at = now()$$),
	('delete message', $$DELETE FROM msgq.message$$),
	('select queue', $$SELECT count(*) FROM msgq.queue$$),
	('insert queue', $$INSERT INTO msgq.queue (queue_id, queue_name, owner, created_at, last_modified_at) VALUES (999, 'p_forged', 'regress_msgq_owner', now(), now())$$),
	('update queue', $$UPDATE msgq.queue SET owner = 'regress_msgq_owner'$$),
	('select queue_permission', $$SELECT count(*) FROM msgq.queue_permission$$),
	('insert queue_permission', $$INSERT INTO msgq.queue_permission VALUES (1, 'x', '{}')$$),
	('select secret', $$SELECT receipt_key FROM msgq.secret$$),
	('update secret', $$UPDATE msgq.secret SET receipt_key = '\x00'$$),
	('nextval message_seq', $$SELECT nextval('msgq.message_seq')$$),
	('run_maintenance', $$SELECT msgq.run_maintenance()$$),
	('set clock_offset', $$SET msgq.clock_offset = '1h'$$),
	('set wait_recheck_interval', $$SET msgq.wait_recheck_interval = '1s'$$)
	) AS t(f, s);
-- reading settings and msgq's clock is fine
SHOW msgq.clock_offset;
SELECT msgq.now() IS NOT NULL AS has_now;
SELECT count(*) FROM msgq.waiters;
RESET ROLE;

--
-- create_queue on an existing name tells nothing to a role without rights on it
--
SELECT msgq.create_queue('p_secret_probe');
SET ROLE regress_msgq_group;
SELECT msgq_test.err($$SELECT msgq.create_queue('p_secret_probe')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('p_secret_probe', '{"DelaySeconds": 7}')$$);
RESET ROLE;

--
-- a role that owns a queue or holds a grant cannot be dropped
--
SELECT msgq.create_queue('p_drop_guard');
SELECT msgq.add_permission('p_drop_guard', 'guard', '{regress_msgq_other}', '{SendMessage}');
SELECT msgq_test.err($$DROP ROLE regress_msgq_other$$);
SELECT msgq_test.err($$DROP ROLE regress_msgq_owner$$);
SELECT msgq.remove_permission('p_drop_guard', 'guard');

--
-- Clean up: queues first, then the roles
--
SELECT msgq.delete_queue(q) FROM msgq.list_queues('p_') AS q;
SELECT * FROM msgq.list_queues('p_');
REVOKE EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) FROM regress_msgq_owner, regress_msgq_group;
SET client_min_messages = warning;
DROP SCHEMA regress_msgq_evil CASCADE;
RESET client_min_messages;
DROP ROLE regress_msgq_owner, regress_msgq_other, regress_msgq_sender, regress_msgq_member,
	regress_msgq_noinherit, regress_msgq_group, regress_msgq_evil;
