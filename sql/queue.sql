--
-- queue: the extension's objects, queue names, queue attributes,
-- create_queue / get_queue_url / list_queues / delete_queue.
--
-- Runs first; receive, privileges and guc run after it in the same database
-- and rely only on the extension and the msgq_test helpers made here.
--
CREATE EXTENSION IF NOT EXISTS msgq;

-- Helpers shared by every regress file.
-- msgq_test.err(sql): run a statement, return 'ok' or
-- "SQLSTATE: message | detail", so every error path shows its SQLSTATE and
-- the AWS error name (the detail reads "AWS error code: <Name>").
CREATE SCHEMA msgq_test;
GRANT USAGE ON SCHEMA msgq_test TO PUBLIC;
CREATE FUNCTION msgq_test.err(sql text) RETURNS text
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

--
-- Extension objects
--
SELECT e.extname, e.extversion, e.extrelocatable, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'msgq';

-- the frozen SQL API
SELECT f AS function, to_regprocedure(f) IS NOT NULL AS present
  FROM unnest(ARRAY[
	'msgq.create_queue(text,jsonb)',
	'msgq.delete_queue(text)',
	'msgq.list_queues(text)',
	'msgq.get_queue_url(text)',
	'msgq.send_message(text,text,integer,json,text,text)',
	'msgq.receive_message(text,integer,integer,integer,text[],text[],text)',
	'msgq.delete_message(text,text)',
	'msgq.change_message_visibility(text,text,integer)',
	'msgq.add_permission(text,text,text[],text[])',
	'msgq.remove_permission(text,text)',
	'msgq.run_maintenance()',
	'msgq.now()']) AS f;

-- output columns of receive_message and send_message
SELECT pg_get_function_result('msgq.receive_message(text,integer,integer,integer,text[],text[],text)'::regprocedure);
SELECT pg_get_function_result('msgq.send_message(text,text,integer,json,text,text)'::regprocedure);

-- no msgq function is STRICT (NULL arguments get AWS errors, not NULL)
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'msgq'::regnamespace AND p.proisstrict
 ORDER BY 1;

-- creating queues and running maintenance are not for PUBLIC; the rest is
SELECT f AS function, has_function_privilege('public', f, 'EXECUTE') AS public_execute
  FROM unnest(ARRAY[
	'msgq.create_queue(text,jsonb)',
	'msgq.run_maintenance()',
	'msgq.send_message(text,text,integer,json,text,text)',
	'msgq.receive_message(text,integer,integer,integer,text[],text[],text)',
	'msgq.list_queues(text)',
	'msgq.now()']) AS f;

-- the storage is not readable nor writable by PUBLIC
SELECT t AS relation,
	   has_table_privilege('public', t, 'SELECT') AS public_select,
	   has_table_privilege('public', t, 'INSERT') AS public_insert,
	   has_table_privilege('public', t, 'UPDATE') AS public_update,
	   has_table_privilege('public', t, 'DELETE') AS public_delete
  FROM unnest(ARRAY['msgq.queue', 'msgq.queue_permission', 'msgq.message',
					'msgq.secret']) AS t;
-- nor is any other table or sequence of the extension
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'msgq'::regnamespace AND c.relkind IN ('r', 'p', 'S')
   AND EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0);
-- the waiters view is public
SELECT has_table_privilege('public', 'msgq.waiters', 'SELECT') AS waiters_public;

-- the receipt key exists and is not trivially short
SELECT count(*), bool_and(octet_length(receipt_key) >= 32) FROM msgq.secret;

--
-- Queue names
--
SELECT msgq.create_queue('q_basic');
SELECT msgq.create_queue('Az09_-');
-- 80 characters is the maximum
SELECT length(msgq.create_queue(repeat('n', 80))) = length('msgq://contrib_regression/') + 80 AS ok_80;
SELECT msgq_test.err($$SELECT msgq.create_queue(repeat('n', 81))$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('bad name')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('bad.name')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('bad/name')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('bad:name')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('bäd')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('semi;colon')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue(' lead')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue(NULL)$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('')$$);
-- a URL is not a queue name
SELECT msgq_test.err($$SELECT msgq.create_queue('msgq://contrib_regression/q_url')$$);
-- a FIFO name needs FifoQueue true (and only FIFO names may have it); the
-- name is checked first (sql/fifo.sql has the FIFO rules)
SELECT msgq_test.err($$SELECT msgq.create_queue('q.fifo')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q.fifo', '{"FifoQueue": "true"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue(repeat('f', 76) || '.fifo')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('b@d.fifo')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('.fifo')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q', '{"FifoQueue": true}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q', '{"FifoQueue": "maybe"}')$$);
-- FifoQueue false is a standard queue
SELECT msgq.create_queue('q_fifo_false', '{"FifoQueue": false}');
-- names are case-sensitive
SELECT msgq.create_queue('Q_BASIC');
SELECT msgq.get_queue_url('q_basic'), msgq.get_queue_url('Q_BASIC');
-- none of the failures above created anything (q.fifo is a FIFO queue)
SELECT queue_name, fifo FROM msgq.queue ORDER BY queue_name COLLATE "C";

--
-- Attributes: every integer attribute at both ends of its range, just
-- outside, as a JSON number and as a string, and not an integer
--
CREATE TABLE msgq_test.int_attr (attr text, lo int, hi int);
INSERT INTO msgq_test.int_attr VALUES
	('VisibilityTimeout', 0, 43200),
	('MessageRetentionPeriod', 60, 1209600),
	('DelaySeconds', 0, 900),
	('ReceiveMessageWaitTimeSeconds', 0, 20),
	('MaximumMessageSize', 1024, 1048576),
	('KmsDataKeyReusePeriodSeconds', 60, 86400);

SELECT a.attr, v.label,
	   msgq_test.err(format('SELECT msgq.create_queue(%L, %L::jsonb)',
							'q_attr_' || left(a.attr, 8) || '_' || v.label,
							jsonb_build_object(a.attr, v.val))) AS result
  FROM msgq_test.int_attr a,
	   LATERAL (VALUES
		('lo', to_jsonb(a.lo)),
		('hi', to_jsonb(a.hi)),
		('lostr', to_jsonb(a.lo::text)),
		('histr', to_jsonb(a.hi::text)),
		('below', to_jsonb(a.lo - 1)),
		('above', to_jsonb(a.hi + 1)),
		('belowstr', to_jsonb((a.lo - 1)::text)),
		('abovestr', to_jsonb((a.hi + 1)::text)),
		('frac', to_jsonb(a.lo + 0.5)),
		('fracstr', to_jsonb((a.lo + 0.5)::text)),
		('word', to_jsonb('ten'::text)),
		('empty', to_jsonb(''::text)),
		('bool', to_jsonb(true)),
		('null', 'null'::jsonb),
		('huge', to_jsonb(99999999999999999999::numeric))) AS v(label, val)
 ORDER BY a.attr, v.label;

-- the values were stored
SELECT queue_name, visibility_timeout, message_retention_period, delay_seconds,
	   receive_wait_time_seconds, maximum_message_size
  FROM msgq.queue WHERE queue_name LIKE 'q\_attr\_%' ORDER BY queue_name COLLATE "C";
-- and the full attribute set keeps every settable attribute as a string
SELECT attributes FROM msgq.queue WHERE queue_name = 'q_basic';
SELECT attributes FROM msgq.queue WHERE queue_name = 'q_attr_KmsDataK_histr';

-- several attributes at once
SELECT msgq.create_queue('q_multi', '{"VisibilityTimeout": "45", "DelaySeconds": 5,
	"MaximumMessageSize": 2048, "MessageRetentionPeriod": 3600,
	"ReceiveMessageWaitTimeSeconds": "2"}');
SELECT visibility_timeout, message_retention_period, delay_seconds,
	   receive_wait_time_seconds, maximum_message_size
  FROM msgq.queue WHERE queue_name = 'q_multi';

-- store-and-echo attributes
SELECT msgq.create_queue('q_policy', '{"Policy": {"Version": "2012-10-17", "Statement": []}}');
SELECT attributes->>'Policy' IS NOT NULL AS has_policy,
	   (attributes->>'Policy')::jsonb = '{"Version": "2012-10-17", "Statement": []}' AS same_policy
  FROM msgq.queue WHERE queue_name = 'q_policy';
SELECT msgq.create_queue('q_kms', '{"KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": "600"}');
SELECT attributes->>'KmsMasterKeyId' AS key, attributes->>'KmsDataKeyReusePeriodSeconds' AS reuse,
	   attributes->>'SqsManagedSseEnabled' AS sse
  FROM msgq.queue WHERE queue_name = 'q_kms';
SELECT msgq.create_queue('q_sse', '{"SqsManagedSseEnabled": "false"}');
SELECT attributes->>'SqsManagedSseEnabled' AS sse FROM msgq.queue WHERE queue_name = 'q_sse';
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"SqsManagedSseEnabled": "yes"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"KmsMasterKeyId": "k", "SqsManagedSseEnabled": true}')$$);

-- unknown, read-only, FIFO-only and not yet supported attributes
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"Foo": 1}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"visibilitytimeout": 1}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"ApproximateNumberOfMessages": 1}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"QueueArn": "x"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"ContentBasedDeduplication": "true"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"DeduplicationScope": "queue"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"FifoThroughputLimit": "perQueue"}')$$);
-- (redrive policies are covered in queue_admin.sql; two refusals here)
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"RedrivePolicy": {"deadLetterTargetArn": "q_no_such_dlq", "maxReceiveCount": 3}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"RedriveAllowPolicy": {"redrivePermission": "sometimes"}}')$$);
-- integers are plain digits: no spaces, no plus sign
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"DelaySeconds": " 5"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '{"DelaySeconds": "+5"}')$$);
-- attributes must be an object
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '[]')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '"VisibilityTimeout"')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_bad', '3')$$);
-- NULL and {} mean "all defaults"
SELECT msgq.create_queue('q_null_attrs', NULL);
SELECT msgq.create_queue('q_null_attrs', '{}');
SELECT visibility_timeout, message_retention_period, delay_seconds,
	   receive_wait_time_seconds, maximum_message_size
  FROM msgq.queue WHERE queue_name = 'q_null_attrs';
-- no failed create left a queue behind
SELECT count(*) FROM msgq.queue WHERE queue_name = 'q_bad';

--
-- Idempotent create, QueueNameExists
--
SELECT msgq.create_queue('q_idem', '{"VisibilityTimeout": 60}');
SELECT msgq.create_queue('q_idem', '{"VisibilityTimeout": 60}');
-- the same value written differently is the same value
SELECT msgq.create_queue('q_idem', '{"VisibilityTimeout": "60"}');
-- giving a default explicitly is the same as leaving it out
SELECT msgq.create_queue('q_idem', '{"VisibilityTimeout": 60, "DelaySeconds": 0}');
SELECT msgq_test.err($$SELECT msgq.create_queue('q_idem', '{"VisibilityTimeout": 61}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_idem', '{"VisibilityTimeout": 60, "DelaySeconds": 1}')$$);
-- leaving out a non-default attribute is a different value too
SELECT msgq_test.err($$SELECT msgq.create_queue('q_idem', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_queue('q_idem', '{"VisibilityTimeout": 60, "Policy": "{}"}')$$);
-- a bad attribute is reported before the existing queue is considered
SELECT msgq_test.err($$SELECT msgq.create_queue('q_idem', '{"VisibilityTimeout": 43201}')$$);
SELECT visibility_timeout FROM msgq.queue WHERE queue_name = 'q_idem';
SELECT count(*) FROM msgq.queue WHERE queue_name = 'q_idem';

--
-- URLs and ARNs are accepted wherever a queue is named
--
SELECT msgq.get_queue_url('q_basic') AS url \gset
SELECT :'url' AS url;
SELECT msgq.get_queue_url(:'url') = :'url' AS url_round_trip;
SELECT msgq.get_queue_url('arn:aws:sqs:us-east-1:123456789012:q_basic') = :'url' AS arn_ok;
SELECT md5_of_message_body = md5('via url') AS sent_via_url
  FROM msgq.send_message(:'url', 'via url');
SELECT body FROM msgq.receive_message('arn:aws:sqs:us-east-1:123456789012:q_basic');
SELECT msgq_test.err($$SELECT msgq.get_queue_url('msgq://contrib_regression/')$$);
SELECT msgq_test.err($$SELECT msgq.get_queue_url('msgq://contrib_regression/nope')$$);

--
-- list_queues
--
SELECT msgq.create_queue('list_a');
SELECT msgq.create_queue('list_b');
SELECT msgq.create_queue('listXc');
SELECT msgq.create_queue('list_');
SELECT * FROM msgq.list_queues();
SELECT array(SELECT msgq.list_queues(NULL)) = array(SELECT msgq.list_queues()) AS null_prefix_lists_all;
SELECT * FROM msgq.list_queues('list');
-- the prefix is literal (no LIKE wildcards) and case-sensitive
SELECT * FROM msgq.list_queues('list_');
SELECT * FROM msgq.list_queues('LIST');
SELECT * FROM msgq.list_queues('list_a');
SELECT * FROM msgq.list_queues('list_ab');
SELECT count(*) = (SELECT count(*) FROM msgq.list_queues()) AS empty_prefix_lists_all
  FROM msgq.list_queues('');
-- for paging (the endpoint's ListQueues): the names after one, in byte
-- order, with the prefix; NULL starts at the first
SELECT * FROM msgq._list_queues_after('list', 'list_');
SELECT * FROM msgq._list_queues_after('list', 'list_b');
SELECT array(SELECT msgq._list_queues_after('list', NULL)) = array(SELECT msgq.list_queues('list')) AS null_start_lists_all;
-- the endpoint's statements raise AWS errors with this
SELECT msgq_test.err($$SELECT msgq._endpoint_error('InvalidParameterValue', 'invalid NextToken value')$$);
SELECT msgq_test.err($$SELECT msgq._endpoint_error('ExpiredNextTokenException', 'expired')$$);

--
-- delete_queue deletes the queue and its messages
--
SELECT queue_id AS del_id FROM msgq.queue WHERE queue_name = 'list_b' \gset
SELECT message_id IS NOT NULL AS sent FROM msgq.send_message('list_b', 'one');
SELECT message_id IS NOT NULL AS sent FROM msgq.send_message('list_b', 'two');
SELECT count(*) FROM msgq.message WHERE queue_id = :del_id;
SELECT msgq.delete_queue('list_b');
SELECT count(*) FROM msgq.message WHERE queue_id = :del_id;
SELECT * FROM msgq.list_queues('list');
SELECT msgq_test.err($$SELECT msgq.delete_queue('list_b')$$);
-- by URL
SELECT msgq.delete_queue(msgq.get_queue_url('listXc'));
SELECT * FROM msgq.list_queues('list');
SELECT msgq_test.err($$SELECT msgq.delete_queue(NULL)$$);
SELECT msgq_test.err($$SELECT msgq.delete_queue('')$$);
-- a delete that rolls back leaves the queue and its messages
SELECT message_id IS NOT NULL AS sent FROM msgq.send_message('list_a', 'kept');
BEGIN;
SELECT msgq.delete_queue('list_a');
ROLLBACK;
SELECT body FROM msgq.receive_message('list_a');

--
-- QueueDoesNotExist from every function
--
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('get_queue_url', $$SELECT msgq.get_queue_url('q_missing')$$),
	('delete_queue', $$SELECT msgq.delete_queue('q_missing')$$),
	('send_message', $$SELECT msgq.send_message('q_missing', 'x')$$),
	('receive_message', $$SELECT msgq.receive_message('q_missing')$$),
	('delete_message', $$SELECT msgq.delete_message('q_missing', repeat('A', 48))$$),
	('change_message_visibility', $$SELECT msgq.change_message_visibility('q_missing', repeat('A', 48), 10)$$),
	('add_permission', $$SELECT msgq.add_permission('q_missing', 'l', '{public}', '{SendMessage}')$$),
	('remove_permission', $$SELECT msgq.remove_permission('q_missing', 'l')$$),
	('send_message by url', $$SELECT msgq.send_message('msgq://contrib_regression/q_missing', 'x')$$),
	('receive_message by arn', $$SELECT msgq.receive_message('arn:aws:sqs:us-east-1:123456789012:q_missing')$$)
	) AS t(f, s);
-- and MissingParameter for a NULL or empty queue
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('get_queue_url', $$SELECT msgq.get_queue_url(NULL)$$),
	('send_message', $$SELECT msgq.send_message(NULL, 'x')$$),
	('receive_message', $$SELECT msgq.receive_message('')$$),
	('delete_message', $$SELECT msgq.delete_message(NULL, repeat('A', 48))$$),
	('change_message_visibility', $$SELECT msgq.change_message_visibility('', repeat('A', 48), 10)$$),
	('add_permission', $$SELECT msgq.add_permission(NULL, 'l', '{public}', '{SendMessage}')$$),
	('remove_permission', $$SELECT msgq.remove_permission(NULL, 'l')$$)
	) AS t(f, s);

-- clean up this file's queues
SELECT count(*) AS deleted FROM (
	SELECT msgq.delete_queue(q) FROM msgq.list_queues() AS q) d;
SELECT * FROM msgq.list_queues();
DROP TABLE msgq_test.int_attr;
