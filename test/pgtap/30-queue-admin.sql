-- 30-queue-admin.sql: the contract of queue attributes, purge, tags,
-- dead-letter queues, queue-name reuse and batches: happy paths, and every
-- error by SQLSTATE and exact message.
--
-- SQLSTATEs: QueueDoesNotExist MQ001, QueueDeletedRecently MQ003,
-- InvalidParameterValue MQ006, MissingParameter MQ007, InvalidAttributeName
-- MQ008, InvalidAttributeValue MQ009, PurgeQueueInProgress MQ012,
-- EmptyBatchRequest MQ014, TooManyEntriesInBatchRequest MQ015,
-- InvalidBatchEntryId MQ016, BatchEntryIdsNotDistinct MQ017, AccessDenied
-- 42501.  A batch reports per-entry failures as rows (error_code,
-- error_message, sender_fault), not as errors.
--
-- Time rules use the test clock (SET LOCAL msgq.clock_offset).  Run with
-- pg_prove against a database where CREATE EXTENSION pgtap and CREATE
-- EXTENSION msgq already ran.  Everything is rolled back.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(79);

SELECT lives_ok($$SELECT msgq.create_queue('tap_a')$$, 'create tap_a');

-- Compare a jsonb result inside a PL/pgSQL function, and raise (caught by
-- lives_ok, so the file goes on) if it differs or is not valid jsonb: a
-- result left in memory that msgq freed before returning shows here.
CREATE FUNCTION pg_temp.tap_jsonb_is(have jsonb, want jsonb) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	filler text := repeat('x', 8192);
BEGIN
	IF have IS DISTINCT FROM want THEN
		RAISE EXCEPTION 'have %, want %', have, want;
	END IF;
END
$fn$;

-------------------------------------------------------------------------------
-- get_queue_attributes, set_queue_attributes
-------------------------------------------------------------------------------
SELECT lives_ok($$SELECT pg_temp.tap_jsonb_is(msgq.get_queue_attributes('tap_a', '{VisibilityTimeout}'),
	'{"VisibilityTimeout": "30"}')$$,
	'get_queue_attributes of one attribute, as an AWS wire string');
SELECT is(msgq.get_queue_attributes('tap_a') ->> 'QueueArn',
	'arn:aws:sqs:msgq:' || current_database() || ':tap_a',
	'get_queue_attributes returns the QueueArn');
SELECT ok(msgq.get_queue_attributes('tap_a') ?& ARRAY['VisibilityTimeout', 'MessageRetentionPeriod',
		'DelaySeconds', 'ReceiveMessageWaitTimeSeconds', 'MaximumMessageSize', 'CreatedTimestamp',
		'LastModifiedTimestamp', 'ApproximateNumberOfMessages',
		'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
	'get_queue_attributes(All) has the standard attributes');
SELECT lives_ok($$SELECT msgq.set_queue_attributes('tap_a', '{"VisibilityTimeout": 60}')$$,
	'set_queue_attributes');
SELECT lives_ok($$SELECT pg_temp.tap_jsonb_is(msgq.get_queue_attributes('tap_a', '{VisibilityTimeout}'),
	'{"VisibilityTimeout": "60"}')$$, '... takes effect, and create_queue with the old attributes now conflicts:');
SELECT throws_ok($$SELECT msgq.create_queue('tap_a')$$,
	'MQ002', 'queue "tap_a" already exists with a different value for attribute VisibilityTimeout',
	'QueueNameExists after set_queue_attributes');

SELECT throws_ok($$SELECT msgq.get_queue_attributes('tap_a', '{Foo}')$$,
	'MQ008', 'unrecognized queue attribute: "Foo"',
	'InvalidAttributeName: get_queue_attributes of an unknown attribute');
SELECT throws_ok($$SELECT msgq.set_queue_attributes('tap_a', NULL)$$,
	'MQ007', 'the request must contain the parameter Attributes',
	'MissingParameter: set_queue_attributes without attributes');
SELECT throws_ok($$SELECT msgq.set_queue_attributes('tap_a', '[1]')$$,
	'MQ006', 'queue attributes must be a JSON object',
	'InvalidParameterValue: set_queue_attributes with an array');
SELECT throws_ok($$SELECT msgq.set_queue_attributes('tap_a', '{"FifoQueue": "true"}')$$,
	'MQ008', 'attribute FifoQueue can only be set when the queue is created',
	'InvalidAttributeName: FifoQueue cannot be changed');
SELECT throws_ok($$SELECT msgq.set_queue_attributes('tap_a', '{"Foo": 1}')$$,
	'MQ008', 'unrecognized queue attribute: "Foo"',
	'InvalidAttributeName: set_queue_attributes of an unknown attribute');
SELECT throws_ok($$SELECT msgq.set_queue_attributes('tap_a', '{"VisibilityTimeout": 43201}')$$,
	'MQ009', 'invalid value for the parameter VisibilityTimeout',
	'InvalidAttributeValue: set_queue_attributes out of range');
SELECT lives_ok($$SELECT pg_temp.tap_jsonb_is(msgq.get_queue_attributes('tap_a', '{VisibilityTimeout}'),
	'{"VisibilityTimeout": "60"}')$$, 'a failed set_queue_attributes changes nothing');

-------------------------------------------------------------------------------
-- Tags
-------------------------------------------------------------------------------
SELECT lives_ok($$SELECT msgq.tag_queue('tap_a', '{"env": "test", "team": "q"}')$$, 'tag_queue');
SELECT lives_ok($$SELECT pg_temp.tap_jsonb_is(msgq.list_queue_tags('tap_a'), '{"env": "test", "team": "q"}')$$,
	'list_queue_tags');
SELECT lives_ok($$SELECT msgq.untag_queue('tap_a', '{env,absent}')$$,
	'untag_queue (unknown keys are ignored)');
SELECT lives_ok($$SELECT pg_temp.tap_jsonb_is(msgq.list_queue_tags('tap_a'), '{"team": "q"}')$$,
	'... removes the tag');
SELECT throws_ok($$SELECT msgq.tag_queue('tap_a', NULL)$$,
	'MQ007', 'the request must contain the parameter Tags as a non-empty JSON object',
	'MissingParameter: tag_queue without tags');
SELECT throws_ok($$SELECT msgq.tag_queue('tap_a', '{}')$$,
	'MQ007', 'the request must contain the parameter Tags as a non-empty JSON object',
	'MissingParameter: tag_queue with no tags');
SELECT throws_ok($$SELECT msgq.tag_queue('tap_a', '{"aws:x": "v"}')$$,
	'MQ006', 'invalid tag key "aws:x"',
	'InvalidParameterValue: the aws: prefix is reserved');
SELECT throws_ok(
	$$SELECT msgq.tag_queue('tap_a', (SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 50) i))$$,
	'MQ006', 'too many tags for queue "tap_a": 51, at most 50',
	'InvalidParameterValue: more than 50 tags in all');
SELECT throws_ok($$SELECT msgq.untag_queue('tap_a', NULL)$$,
	'MQ007', 'the request must contain the parameter TagKeys',
	'MissingParameter: untag_queue without keys');

-------------------------------------------------------------------------------
-- purge_queue: PurgeQueueInProgress MQ012
-------------------------------------------------------------------------------
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_a', 'to purge')$$, 'send a message');
SELECT lives_ok($$SELECT msgq.purge_queue('tap_a')$$, 'purge_queue');
SELECT is_empty($$SELECT * FROM msgq.receive_message('tap_a')$$, '... removes the messages');
SELECT throws_ok($$SELECT msgq.purge_queue('tap_a')$$,
	'MQ012', 'only one PurgeQueue operation on queue "tap_a" is allowed every 60 seconds',
	'PurgeQueueInProgress: a second purge within 60 seconds');
SET LOCAL msgq.clock_offset = '61s';
SELECT lives_ok($$SELECT msgq.purge_queue('tap_a')$$, 'purge_queue again after 60 seconds');

-------------------------------------------------------------------------------
-- Dead-letter queues: RedrivePolicy, RedriveAllowPolicy
-------------------------------------------------------------------------------
SELECT lives_ok($$SELECT msgq.create_queue('tap_dlq')$$, 'create a dead-letter queue');
SELECT lives_ok(
	$$SELECT msgq.create_queue('tap_src', '{"RedrivePolicy": {"deadLetterTargetArn": "tap_dlq", "maxReceiveCount": 2}}')$$,
	'create a queue with a RedrivePolicy');
SELECT lives_ok(
	$$SELECT msgq.create_queue('tap_src2', '{"RedrivePolicy": "{\"deadLetterTargetArn\": \"arn:aws:sqs:msgq:db:tap_dlq\", \"maxReceiveCount\": \"5\"}"}')$$,
	'a RedrivePolicy given as a JSON string naming the target by ARN');
SELECT results_eq($$SELECT * FROM msgq.list_dead_letter_source_queues('tap_dlq')$$,
	ARRAY['tap_src', 'tap_src2'], 'list_dead_letter_source_queues');
SELECT is_empty($$SELECT * FROM msgq.list_dead_letter_source_queues('tap_a')$$,
	'list_dead_letter_source_queues of a queue that is no dead-letter queue');
SELECT lives_ok(
	$$SELECT msgq.create_queue('tap_closed', '{"RedriveAllowPolicy": {"redrivePermission": "denyAll"}}')$$,
	'create a queue with a RedriveAllowPolicy');

SELECT throws_ok(
	$$SELECT msgq.create_queue('tap_x', '{"RedrivePolicy": {"deadLetterTargetArn": "tap_nope", "maxReceiveCount": 2}}')$$,
	'MQ006', 'invalid value for parameter RedrivePolicy',
	'InvalidParameterValue: a dead-letter target that does not exist');
SELECT throws_ok(
	$$SELECT msgq.create_queue('tap_x', '{"RedrivePolicy": {"deadLetterTargetArn": "tap_x", "maxReceiveCount": 2}}')$$,
	'MQ006', 'invalid value for parameter RedrivePolicy',
	'InvalidParameterValue: a queue as its own dead-letter queue');
SELECT throws_ok(
	$$SELECT msgq.create_queue('tap_x', '{"RedrivePolicy": {"deadLetterTargetArn": "tap_dlq", "maxReceiveCount": 0}}')$$,
	'MQ006', 'invalid value for parameter RedrivePolicy',
	'InvalidParameterValue: maxReceiveCount 0');
SELECT throws_ok(
	$$SELECT msgq.create_queue('tap_x', '{"RedrivePolicy": {"deadLetterTargetArn": "tap_dlq", "maxReceiveCount": 1001}}')$$,
	'MQ006', 'invalid value for parameter RedrivePolicy',
	'InvalidParameterValue: maxReceiveCount 1001');
SELECT throws_ok(
	$$SELECT msgq.create_queue('tap_x', '{"RedrivePolicy": {"deadLetterTargetArn": "tap_dlq"}}')$$,
	'MQ006', 'invalid value for parameter RedrivePolicy',
	'InvalidParameterValue: RedrivePolicy without maxReceiveCount');
SELECT throws_ok(
	$$SELECT msgq.create_queue('tap_x', '{"RedrivePolicy": {"deadLetterTargetArn": "tap_closed", "maxReceiveCount": 2}}')$$,
	'MQ006', 'invalid value for parameter RedrivePolicy',
	'InvalidParameterValue: a dead-letter queue whose RedriveAllowPolicy denies all');
SELECT throws_ok(
	$$SELECT msgq.create_queue('tap_x', '{"RedriveAllowPolicy": {"redrivePermission": "maybe"}}')$$,
	'MQ006', 'invalid value for parameter RedriveAllowPolicy',
	'InvalidParameterValue: an unknown redrivePermission');
SELECT is_empty($$SELECT 1 FROM msgq.queue WHERE queue_name = 'tap_x'$$,
	'no failed create_queue left a queue behind');

-------------------------------------------------------------------------------
-- delete_queue, then the name: QueueDeletedRecently MQ003
-------------------------------------------------------------------------------
SELECT lives_ok($$SELECT msgq.create_queue('tap_gone')$$, 'create tap_gone');
SELECT lives_ok($$SELECT msgq.delete_queue('tap_gone')$$, 'delete tap_gone');
SELECT throws_ok($$SELECT msgq.create_queue('tap_gone')$$,
	'MQ003', 'queue "tap_gone" was deleted less than 60 seconds ago',
	'QueueDeletedRecently: reusing a name within 60 seconds');
SET LOCAL msgq.clock_offset = '122s';
SELECT lives_ok($$SELECT msgq.create_queue('tap_gone')$$,
	'the name can be used again 60 seconds after the delete');

-------------------------------------------------------------------------------
-- Batches
-------------------------------------------------------------------------------
SELECT results_eq(
	$$SELECT id, message_id IS NOT NULL, error_code, error_message, sender_fault
	    FROM msgq.send_message_batch('tap_a', '[{"Id": "ok", "MessageBody": "x"},
	                                             {"Id": "empty", "MessageBody": ""},
	                                             {"Id": "late", "MessageBody": "y", "DelaySeconds": 901}]')$$,
	$$VALUES ('ok'::text, true, NULL::text, NULL::text, NULL::boolean),
	         ('empty', false, 'MissingParameter', 'the request must contain the parameter MessageBody', true),
	         ('late', false, 'InvalidParameterValue', 'value 901 for parameter DelaySeconds is invalid', true)$$,
	'send_message_batch: one row per entry in entry order, failures as rows');
SELECT is((SELECT count(*)::int FROM msgq.receive_message('tap_a', max_number_of_messages => 10)),
	1, '... and only the good entries were sent');
SELECT results_eq(
	$$SELECT id, error_code, error_message FROM msgq.delete_message_batch('tap_a',
		'[{"Id": "1", "ReceiptHandle": "garbage"}]')$$,
	$$VALUES ('1'::text, 'ReceiptHandleIsInvalid'::text, 'the input receipt handle is invalid'::text)$$,
	'delete_message_batch reports an invalid handle as a row');
SELECT results_eq(
	$$SELECT id, error_code, error_message FROM msgq.change_message_visibility_batch('tap_a',
		'[{"Id": "1", "ReceiptHandle": "garbage", "VisibilityTimeout": 5}]')$$,
	$$VALUES ('1'::text, 'ReceiptHandleIsInvalid'::text, 'the input receipt handle is invalid'::text)$$,
	'change_message_visibility_batch reports an invalid handle as a row');

SELECT throws_ok($$SELECT * FROM msgq.send_message_batch('tap_a', '[]')$$,
	'MQ014', 'there should be at least one entry in the request',
	'EmptyBatchRequest: no entries');
SELECT throws_ok($$SELECT * FROM msgq.send_message_batch('tap_a', NULL)$$,
	'MQ014', 'there should be at least one entry in the request',
	'EmptyBatchRequest: NULL entries');
SELECT throws_ok($$SELECT * FROM msgq.delete_message_batch('tap_a', '[]')$$,
	'MQ014', 'there should be at least one entry in the request',
	'EmptyBatchRequest: delete_message_batch');
SELECT throws_ok($$SELECT * FROM msgq.change_message_visibility_batch('tap_a', '{}')$$,
	'MQ014', 'there should be at least one entry in the request',
	'EmptyBatchRequest: entries that are not an array');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message_batch('tap_a',
		(SELECT json_agg(json_build_object('Id', i::text, 'MessageBody', 'x')) FROM generate_series(1, 11) i))$$,
	'MQ015', 'maximum number of entries per request are 10, you have sent 11',
	'TooManyEntriesInBatchRequest: 11 entries');
SELECT throws_ok($$SELECT * FROM msgq.send_message_batch('tap_a', '[1]')$$,
	'MQ016', 'batch entry 1 is not a JSON object',
	'InvalidBatchEntryId: an entry that is not an object');
SELECT throws_ok($$SELECT * FROM msgq.send_message_batch('tap_a', '[{"MessageBody": "x"}]')$$,
	'MQ016', 'batch entry 1 has no valid Id',
	'InvalidBatchEntryId: an entry without Id');
SELECT throws_ok($$SELECT * FROM msgq.send_message_batch('tap_a', '[{"Id": "a b", "MessageBody": "x"}]')$$,
	'MQ016', 'a batch entry id can only contain alphanumeric characters, hyphens and underscores: "a b"',
	'InvalidBatchEntryId: a space in an Id');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message_batch('tap_a', '[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}]')$$,
	'MQ017', 'two or more batch entries in the request have the same Id "a"',
	'BatchEntryIdsNotDistinct: the same Id twice');

-------------------------------------------------------------------------------
-- QueueDoesNotExist MQ001 for each function of this file
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT msgq.get_queue_attributes('tap_nope')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: get_queue_attributes');
SELECT throws_ok($$SELECT msgq.set_queue_attributes('tap_nope', '{}')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: set_queue_attributes');
SELECT throws_ok($$SELECT msgq.purge_queue('tap_nope')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: purge_queue');
SELECT throws_ok($$SELECT msgq.tag_queue('tap_nope', '{"a": "b"}')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: tag_queue');
SELECT throws_ok($$SELECT msgq.untag_queue('tap_nope', '{a}')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: untag_queue');
SELECT throws_ok($$SELECT msgq.list_queue_tags('tap_nope')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: list_queue_tags');
SELECT throws_ok($$SELECT * FROM msgq.list_dead_letter_source_queues('tap_nope')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: list_dead_letter_source_queues');
SELECT throws_ok($$SELECT * FROM msgq.send_message_batch('tap_nope', '[{"Id": "1", "MessageBody": "x"}]')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: send_message_batch');
SELECT throws_ok($$SELECT * FROM msgq.delete_message_batch('tap_nope', '[{"Id": "1", "ReceiptHandle": "x"}]')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: delete_message_batch');
SELECT throws_ok(
	$$SELECT * FROM msgq.change_message_visibility_batch('tap_nope', '[{"Id": "1", "ReceiptHandle": "x", "VisibilityTimeout": 1}]')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: change_message_visibility_batch');

-------------------------------------------------------------------------------
-- AccessDenied 42501: a role with no right on the queue
-------------------------------------------------------------------------------
CREATE ROLE tap_carol NOLOGIN;
SET LOCAL ROLE tap_carol;
SELECT throws_ok($$SELECT msgq.get_queue_attributes('tap_a')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: get_queue_attributes');
SELECT throws_ok($$SELECT msgq.set_queue_attributes('tap_a', '{"DelaySeconds": 1}')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: set_queue_attributes');
SELECT throws_ok($$SELECT msgq.purge_queue('tap_a')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: purge_queue');
SELECT throws_ok($$SELECT msgq.tag_queue('tap_a', '{"a": "b"}')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: tag_queue');
SELECT throws_ok($$SELECT msgq.untag_queue('tap_a', '{team}')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: untag_queue');
SELECT throws_ok($$SELECT msgq.list_queue_tags('tap_a')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: list_queue_tags');
SELECT throws_ok($$SELECT * FROM msgq.send_message_batch('tap_a', '[{"Id": "1", "MessageBody": "x"}]')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: send_message_batch');
SELECT throws_ok($$SELECT * FROM msgq.delete_message_batch('tap_a', '[{"Id": "1", "ReceiptHandle": "x"}]')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: delete_message_batch');
SELECT throws_ok(
	$$SELECT * FROM msgq.change_message_visibility_batch('tap_a', '[{"Id": "1", "ReceiptHandle": "x", "VisibilityTimeout": 1}]')$$,
	'42501', 'permission denied for queue "tap_a"', 'AccessDenied: change_message_visibility_batch');
SELECT throws_ok($$SELECT msgq.create_queue('tap_carol_q')$$,
	'42501', 'permission denied for function create_queue', 'AccessDenied: create_queue');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
