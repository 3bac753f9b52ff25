-- 20-errors.sql: every documented error of the queue API, by SQLSTATE and
-- exact message, and the happy paths next to them.
--
-- SQLSTATEs (one per AWS error name): QueueDoesNotExist MQ001,
-- QueueNameExists MQ002, ReceiptHandleIsInvalid MQ004, MessageNotInflight
-- MQ005, InvalidParameterValue MQ006, MissingParameter MQ007,
-- InvalidAttributeName MQ008, InvalidAttributeValue MQ009, OverLimit MQ010,
-- InvalidMessageContents MQ011, UnsupportedOperation MQ013, AccessDenied 42501.
-- Long polling outside READ COMMITTED (0A000) is in 25-repeatable-read.sql;
-- the functions of queue attributes, purge, tags, redrive and batches are in
-- 30-queue-admin.sql;
-- PREPARE TRANSACTION after a send (0A000) cannot run inside pgTAP's
-- transaction and is covered by the regression suite.
--
-- Time rules use the test clock (SET LOCAL msgq.clock_offset, superuser
-- only), never sleeps.  Run with pg_prove against a database where CREATE
-- EXTENSION pgtap and CREATE EXTENSION msgq already ran.  Everything happens
-- in one transaction that is rolled back.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(214);

-------------------------------------------------------------------------------
-- create_queue: happy paths
-------------------------------------------------------------------------------
SELECT is(msgq.create_queue('tap_q'), 'msgq://' || current_database() || '/tap_q',
	'create_queue returns the queue URL');
SELECT is(msgq.create_queue('tap_q'), 'msgq://' || current_database() || '/tap_q',
	'create_queue is idempotent with the same attributes');
SELECT is(msgq.create_queue('tap_q', '{"VisibilityTimeout": 30}'),
	'msgq://' || current_database() || '/tap_q',
	'create_queue is idempotent when the given attributes equal the defaults');
SELECT is(msgq.create_queue('tap_q', '{"VisibilityTimeout": "30"}'),
	'msgq://' || current_database() || '/tap_q',
	'attributes may be numeric strings');
SELECT lives_ok($$SELECT msgq.create_queue('tap_q2', NULL)$$,
	'create_queue accepts NULL attributes');
SELECT lives_ok($$SELECT msgq.create_queue('tap_small', '{"MaximumMessageSize": 1024}')$$,
	'create_queue with MaximumMessageSize 1024 (the minimum)');
SELECT lives_ok($$SELECT msgq.create_queue(repeat('a', 80))$$,
	'an 80-character name is accepted');
SELECT lives_ok($$SELECT msgq.create_queue('Tap-Q_0123456789')$$,
	'letters, digits, hyphens and underscores are accepted');
SELECT lives_ok(
	$$SELECT msgq.create_queue('tap_all', '{"VisibilityTimeout": 0, "MessageRetentionPeriod": 60,
		"DelaySeconds": 900, "ReceiveMessageWaitTimeSeconds": 20, "MaximumMessageSize": 1048576,
		"KmsMasterKeyId": "alias/x", "KmsDataKeyReusePeriodSeconds": 86400,
		"SqsManagedSseEnabled": false, "Policy": "{}"}')$$,
	'every standard attribute at a limit is accepted');
SELECT lives_ok($$SELECT msgq.create_queue('tap_ffalse', '{"FifoQueue": "false"}')$$,
	'FifoQueue false is accepted for a standard queue');

-------------------------------------------------------------------------------
-- QueueNameExists MQ002
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT msgq.create_queue('tap_q', '{"VisibilityTimeout": 60}')$$,
	'MQ002', 'queue "tap_q" already exists with a different value for attribute VisibilityTimeout',
	'QueueNameExists: same name, different VisibilityTimeout');
SELECT throws_ok($$SELECT msgq.create_queue('tap_small')$$,
	'MQ002', 'queue "tap_small" already exists with a different value for attribute MaximumMessageSize',
	'QueueNameExists: same name, attribute left at its default this time');

-------------------------------------------------------------------------------
-- create_queue: InvalidParameterValue MQ006, MissingParameter MQ007
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT msgq.create_queue(NULL)$$,
	'MQ007', 'the request must contain the parameter QueueName',
	'MissingParameter: NULL queue name');
SELECT throws_ok($$SELECT msgq.create_queue('')$$,
	'MQ007', 'the request must contain the parameter QueueName',
	'MissingParameter: empty queue name');
SELECT throws_ok($$SELECT msgq.create_queue('bad name')$$,
	'MQ006', 'invalid queue name "bad name"',
	'InvalidParameterValue: space in a queue name');
SELECT throws_ok($$SELECT msgq.create_queue('tap.q')$$,
	'MQ006', 'invalid queue name "tap.q"',
	'InvalidParameterValue: dot in a queue name');
SELECT throws_ok($$SELECT msgq.create_queue('tap/q')$$,
	'MQ006', 'invalid queue name "tap/q"',
	'InvalidParameterValue: slash in a queue name');
SELECT throws_ok($$SELECT msgq.create_queue('caf' || chr(233))$$,
	'MQ006', 'invalid queue name "caf' || chr(233) || '"',
	'InvalidParameterValue: non-ASCII letter in a queue name');
SELECT throws_ok($$SELECT msgq.create_queue(repeat('a', 81))$$,
	'MQ006', 'queue name "' || repeat('a', 81) || '" is too long',
	'InvalidParameterValue: 81-character queue name');
SELECT throws_ok($$SELECT msgq.create_queue('tap_arr', '[1, 2]')$$,
	'MQ006', 'queue attributes must be a JSON object',
	'InvalidParameterValue: attributes given as an array');
SELECT throws_ok($$SELECT msgq.create_queue('tap_scalar', '"x"')$$,
	'MQ006', 'queue attributes must be a JSON object',
	'InvalidParameterValue: attributes given as a scalar');

-------------------------------------------------------------------------------
-- create_queue: InvalidAttributeName MQ008
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"Foo": 1}')$$,
	'MQ008', 'unrecognized queue attribute: "Foo"',
	'InvalidAttributeName: unknown attribute');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"visibilitytimeout": 1}')$$,
	'MQ008', 'unrecognized queue attribute: "visibilitytimeout"',
	'InvalidAttributeName: attribute names are case-sensitive');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"ContentBasedDeduplication": "true"}')$$,
	'MQ008', 'attribute ContentBasedDeduplication is only valid for FIFO queues',
	'InvalidAttributeName: ContentBasedDeduplication on a standard queue');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"DeduplicationScope": "queue"}')$$,
	'MQ008', 'attribute DeduplicationScope is only valid for FIFO queues',
	'InvalidAttributeName: DeduplicationScope on a standard queue');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"FifoThroughputLimit": "perQueue"}')$$,
	'MQ008', 'attribute FifoThroughputLimit is only valid for FIFO queues',
	'InvalidAttributeName: FifoThroughputLimit on a standard queue');

-------------------------------------------------------------------------------
-- create_queue: InvalidAttributeValue MQ009
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"VisibilityTimeout": 43201}')$$,
	'MQ009', 'invalid value for the parameter VisibilityTimeout',
	'InvalidAttributeValue: VisibilityTimeout 43201');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"VisibilityTimeout": -1}')$$,
	'MQ009', 'invalid value for the parameter VisibilityTimeout',
	'InvalidAttributeValue: VisibilityTimeout -1');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"VisibilityTimeout": 1.5}')$$,
	'MQ009', 'invalid value for the parameter VisibilityTimeout',
	'InvalidAttributeValue: VisibilityTimeout 1.5 (not an integer)');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"VisibilityTimeout": "ten"}')$$,
	'MQ009', 'invalid value for the parameter VisibilityTimeout',
	'InvalidAttributeValue: VisibilityTimeout "ten"');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"VisibilityTimeout": true}')$$,
	'MQ009', 'invalid value for the parameter VisibilityTimeout',
	'InvalidAttributeValue: VisibilityTimeout true');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"MessageRetentionPeriod": 59}')$$,
	'MQ009', 'invalid value for the parameter MessageRetentionPeriod',
	'InvalidAttributeValue: MessageRetentionPeriod 59');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"MessageRetentionPeriod": 1209601}')$$,
	'MQ009', 'invalid value for the parameter MessageRetentionPeriod',
	'InvalidAttributeValue: MessageRetentionPeriod 1209601');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"DelaySeconds": 901}')$$,
	'MQ009', 'invalid value for the parameter DelaySeconds',
	'InvalidAttributeValue: DelaySeconds 901');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"ReceiveMessageWaitTimeSeconds": 21}')$$,
	'MQ009', 'invalid value for the parameter ReceiveMessageWaitTimeSeconds',
	'InvalidAttributeValue: ReceiveMessageWaitTimeSeconds 21');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"MaximumMessageSize": 1023}')$$,
	'MQ009', 'invalid value for the parameter MaximumMessageSize',
	'InvalidAttributeValue: MaximumMessageSize 1023');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"MaximumMessageSize": 1048577}')$$,
	'MQ009', 'invalid value for the parameter MaximumMessageSize',
	'InvalidAttributeValue: MaximumMessageSize 1048577');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"KmsDataKeyReusePeriodSeconds": 59}')$$,
	'MQ009', 'invalid value for the parameter KmsDataKeyReusePeriodSeconds',
	'InvalidAttributeValue: KmsDataKeyReusePeriodSeconds 59');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"SqsManagedSseEnabled": "maybe"}')$$,
	'MQ009', 'invalid value for the parameter SqsManagedSseEnabled',
	'InvalidAttributeValue: SqsManagedSseEnabled "maybe"');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"Policy": 5}')$$,
	'MQ009', 'invalid value for the parameter Policy',
	'InvalidAttributeValue: Policy given as a number');
SELECT throws_ok(
	$$SELECT msgq.create_queue('tap_x', '{"KmsMasterKeyId": "alias/k", "SqsManagedSseEnabled": true}')$$,
	'MQ009', 'SqsManagedSseEnabled and KmsMasterKeyId cannot both be set',
	'InvalidAttributeValue: SSE-SQS and SSE-KMS together');

-------------------------------------------------------------------------------
-- FIFO queues: creation rules, sends, handles
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT msgq.create_queue('tap_x.fifo')$$,
	'MQ006', 'a queue whose name ends with ".fifo" must be created with FifoQueue set to true',
	'InvalidParameterValue: a name ending in .fifo without FifoQueue');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"FifoQueue": "true"}')$$,
	'MQ006', 'a FIFO queue''s name must end with ".fifo"',
	'InvalidParameterValue: FifoQueue true without .fifo');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x.fifo', '{"FifoQueue": "true", "DeduplicationScope": "all"}')$$,
	'MQ009', 'invalid value for the parameter DeduplicationScope',
	'InvalidAttributeValue: DeduplicationScope');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x.fifo', '{"FifoQueue": "true", "FifoThroughputLimit": "perMessageGroupId"}')$$,
	'MQ009', 'FifoThroughputLimit perMessageGroupId requires DeduplicationScope messageGroup',
	'InvalidAttributeValue: perMessageGroupId without messageGroup scope');
SELECT throws_ok($$SELECT msgq.create_queue('tap_x', '{"ContentBasedDeduplication": "true"}')$$,
	'MQ008', 'attribute ContentBasedDeduplication is only valid for FIFO queues',
	'InvalidAttributeName: a FIFO attribute on a standard queue');
SELECT is_empty($$SELECT 1 FROM msgq.queue WHERE queue_name LIKE 'tap\_x%'$$,
	'no failed create_queue left a queue behind');
SELECT lives_ok($$SELECT msgq.create_queue('tapfifo.fifo', '{"FifoQueue": "true"}')$$,
	'a FIFO queue');
SELECT throws_ok($$SELECT msgq.send_message('tapfifo.fifo', 'x', message_deduplication_id => 'd')$$,
	'MQ007', 'the request must contain the parameter MessageGroupId',
	'MissingParameter: MessageGroupId on a FIFO queue');
SELECT throws_ok($$SELECT msgq.send_message('tapfifo.fifo', 'x', message_group_id => 'g')$$,
	'MQ006', 'the queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly',
	'InvalidParameterValue: no deduplication id');
SELECT throws_ok($$SELECT msgq.send_message('tapfifo.fifo', 'x', 1, message_group_id => 'g', message_deduplication_id => 'd')$$,
	'MQ006', 'value 1 for parameter DelaySeconds is invalid',
	'InvalidParameterValue: per-message delay on a FIFO queue');
SELECT results_eq($$SELECT (msgq.send_message('tapfifo.fifo', 'x', message_group_id => 'g', message_deduplication_id => 'd')).sequence_number
					 = (msgq.send_message('tapfifo.fifo', 'y', message_group_id => 'g', message_deduplication_id => 'd')).sequence_number$$,
	ARRAY[true], 'a duplicate returns the first send''s sequence number');
CREATE TEMP TABLE tap_fh AS
SELECT receipt_handle FROM msgq.receive_message('tapfifo.fifo', visibility_timeout => 1);
SET msgq.clock_offset = '5s';
SELECT throws_ok($$SELECT msgq.delete_message('tapfifo.fifo', (SELECT receipt_handle FROM tap_fh))$$,
	'MQ006', 'the receipt handle has expired',
	'InvalidParameterValue: a FIFO handle whose visibility timeout passed');
RESET msgq.clock_offset;

-------------------------------------------------------------------------------
-- QueueDoesNotExist MQ001, for every function that names a queue
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT msgq.delete_queue('tap_nope')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: delete_queue');
SELECT throws_ok($$SELECT msgq.get_queue_url('tap_nope')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: get_queue_url');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_nope', 'x')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: send_message');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_nope')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: receive_message');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_nope', wait_time_seconds => 1)$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: receive_message with a wait');
SELECT throws_ok($$SELECT msgq.delete_message('tap_nope', 'x')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: delete_message');
SELECT throws_ok($$SELECT msgq.change_message_visibility('tap_nope', 'x', 0)$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: change_message_visibility');
SELECT throws_ok($$SELECT msgq.add_permission('tap_nope', 'l', '{public}', '{SendMessage}')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: add_permission');
SELECT throws_ok($$SELECT msgq.remove_permission('tap_nope', 'l')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: remove_permission');
SELECT throws_ok($$SELECT * FROM msgq.send_message('msgq://somedb/tap_nope', 'x')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: a URL names the queue after its last /');
SELECT throws_ok($$SELECT * FROM msgq.send_message('arn:aws:sqs:us-east-1:123456789012:tap_nope', 'x')$$,
	'MQ001', 'queue "tap_nope" does not exist', 'QueueDoesNotExist: an ARN names the queue after its last :');
SELECT throws_ok($$SELECT msgq.get_queue_url('TAP_Q')$$,
	'MQ001', 'queue "TAP_Q" does not exist', 'QueueDoesNotExist: queue names are case-sensitive');

-- MissingParameter when no queue is named at all.
SELECT throws_ok($$SELECT * FROM msgq.send_message(NULL, 'x')$$,
	'MQ007', 'the request must contain the parameter QueueUrl', 'MissingParameter: send_message without a queue');
SELECT throws_ok($$SELECT * FROM msgq.receive_message(NULL)$$,
	'MQ007', 'the request must contain the parameter QueueUrl', 'MissingParameter: receive_message without a queue');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('')$$,
	'MQ007', 'the request must contain the parameter QueueUrl', 'MissingParameter: receive_message with an empty queue name');
SELECT throws_ok($$SELECT msgq.delete_queue(NULL)$$,
	'MQ007', 'the request must contain the parameter QueueUrl', 'MissingParameter: delete_queue without a queue');
SELECT throws_ok($$SELECT msgq.get_queue_url(NULL)$$,
	'MQ007', 'the request must contain the parameter QueueUrl', 'MissingParameter: get_queue_url without a queue');
SELECT throws_ok($$SELECT msgq.delete_message(NULL, 'x')$$,
	'MQ007', 'the request must contain the parameter QueueUrl', 'MissingParameter: delete_message without a queue');
SELECT throws_ok($$SELECT msgq.change_message_visibility(NULL, 'x', 1)$$,
	'MQ007', 'the request must contain the parameter QueueUrl', 'MissingParameter: change_message_visibility without a queue');

-------------------------------------------------------------------------------
-- get_queue_url, list_queues: happy paths
-------------------------------------------------------------------------------
SELECT is(msgq.get_queue_url('tap_q'), 'msgq://' || current_database() || '/tap_q',
	'get_queue_url by name');
SELECT is(msgq.get_queue_url('msgq://' || current_database() || '/tap_q'),
	'msgq://' || current_database() || '/tap_q', 'get_queue_url by URL');
SELECT is(msgq.get_queue_url('arn:aws:sqs:us-east-1:123456789012:tap_q'),
	'msgq://' || current_database() || '/tap_q', 'get_queue_url by ARN');
SELECT results_eq(
	$$SELECT * FROM msgq.list_queues('tap_')$$,
	$$VALUES ('tap_all'::text), ('tap_ffalse'), ('tap_q'), ('tap_q2'), ('tap_small')$$,
	'list_queues with a prefix, in name order');
SELECT ok((SELECT count(*) >= 7 FROM msgq.list_queues()),
	'list_queues without a prefix lists every queue');
SELECT is_empty($$SELECT * FROM msgq.list_queues('tap_nope')$$,
	'list_queues with a prefix nothing matches is empty');

-------------------------------------------------------------------------------
-- send_message
-------------------------------------------------------------------------------
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_q', 'hello')$$, 'send_message');
SELECT is((SELECT md5_of_message_body FROM msgq.send_message('tap_q', 'hello')),
	md5('hello'), 'send_message returns the MD5 of the body');
SELECT is((SELECT sequence_number FROM msgq.send_message('tap_q', 'hello')),
	NULL, 'sequence_number is NULL on a standard queue');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', delay_seconds => 0)$$,
	'DelaySeconds 0');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', delay_seconds => 900)$$,
	'DelaySeconds 900');
SELECT lives_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_group_id => repeat('g', 128))$$,
	'a 128-character MessageGroupId is accepted on a standard queue');
SELECT lives_ok(
	$$SELECT * FROM msgq.send_message('tap_q', E'tab\there\nnew line\r' || chr(55295) || chr(57344) || chr(65533) || chr(65536) || chr(1114111))$$,
	'every allowed character range is accepted in a body');
SELECT lives_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"s": {"DataType": "String", "StringValue": "v"},
		  "n": {"DataType": "Number.int", "StringValue": "-1.5e3"},
		  "b": {"DataType": "Binary", "BinaryValue": "AAEC"}}')$$,
	'String, Number (with a label) and Binary message attributes are accepted');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes => '{}')$$,
	'empty message attributes are accepted');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_small', repeat('x', 1024))$$,
	'a body of exactly MaximumMessageSize bytes is accepted');

SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', NULL)$$,
	'MQ007', 'the request must contain the parameter MessageBody',
	'MissingParameter: NULL body');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', '')$$,
	'MQ007', 'the request must contain the parameter MessageBody',
	'MissingParameter: empty body');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', delay_seconds => 901)$$,
	'MQ006', 'value 901 for parameter DelaySeconds is invalid',
	'InvalidParameterValue: DelaySeconds 901');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', delay_seconds => -1)$$,
	'MQ006', 'value -1 for parameter DelaySeconds is invalid',
	'InvalidParameterValue: DelaySeconds -1');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', message_deduplication_id => 'd')$$,
	'MQ006', 'parameter MessageDeduplicationId is valid only for FIFO queues',
	'InvalidParameterValue: MessageDeduplicationId on a standard queue');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', message_group_id => repeat('g', 129))$$,
	'MQ006', 'value for parameter MessageGroupId must have 1 to 128 characters',
	'InvalidParameterValue: 129-character MessageGroupId');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', message_group_id => '')$$,
	'MQ006', 'value for parameter MessageGroupId must have 1 to 128 characters',
	'InvalidParameterValue: empty MessageGroupId');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', message_group_id => 'a b')$$,
	'MQ006', 'value "a b" for parameter MessageGroupId is invalid',
	'InvalidParameterValue: space in MessageGroupId');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_small', repeat('x', 1025))$$,
	'MQ006', 'message must be shorter than 1024 bytes',
	'InvalidParameterValue: body over MaximumMessageSize');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_small', repeat(chr(233), 513))$$,
	'MQ006', 'message must be shorter than 1024 bytes',
	'InvalidParameterValue: the size is counted in bytes, not characters');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_small', repeat('x', 1000),
		message_attributes => '{"attr": {"DataType": "String", "StringValue": "0123456789012345678901234"}}')$$,
	'MQ006', 'message must be shorter than 1024 bytes',
	'InvalidParameterValue: message attributes count toward MaximumMessageSize');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes => '[]')$$,
	'MQ006', 'message attributes must be a JSON object',
	'InvalidParameterValue: message attributes given as an array');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		(SELECT json_object_agg('a' || i, '{"DataType": "String", "StringValue": "v"}'::json)
		   FROM generate_series(1, 11) i))$$,
	'MQ006', 'number of message attributes [11] exceeds the allowed maximum [10]',
	'InvalidParameterValue: 11 message attributes');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"a": {"DataType": "String", "StringValue": "1"}, "a": {"DataType": "String", "StringValue": "2"}}')$$,
	'MQ006', 'message attribute name "a" is used more than once',
	'InvalidParameterValue: two message attributes with the same name');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"AWS.x": {"DataType": "String", "StringValue": "v"}}')$$,
	'MQ006', 'message attribute "AWS.x" is invalid: names must not start with "AWS." or "Amazon."',
	'InvalidParameterValue: attribute name with the reserved AWS. prefix');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"a..b": {"DataType": "String", "StringValue": "v"}}')$$,
	'MQ006', 'message attribute "a..b" is invalid: names must not start or end with "." nor contain ".."',
	'InvalidParameterValue: attribute name containing ..');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"a b": {"DataType": "String", "StringValue": "v"}}')$$,
	'MQ006', 'message attribute "a b" is invalid: names may contain only letters, digits, "_", "-" and "."',
	'InvalidParameterValue: attribute name with a space');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"a": {"StringValue": "v"}}')$$,
	'MQ006', 'message attribute "a" must have a DataType',
	'InvalidParameterValue: attribute without DataType');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"a": {"DataType": "Foo", "StringValue": "v"}}')$$,
	'MQ006', 'message attribute "a" has an invalid data type "Foo"',
	'InvalidParameterValue: unknown DataType');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"a": {"DataType": "String", "StringValue": ""}}')$$,
	'MQ006', 'message attribute "a" must contain a non-empty value of type "String"',
	'InvalidParameterValue: empty String value');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"a": {"DataType": "Number", "StringValue": "abc"}}')$$,
	'MQ006', 'message attribute "a" is invalid: the value is not a valid number',
	'InvalidParameterValue: Number that is not a number');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes =>
		'{"a": {"DataType": "Binary"}}')$$,
	'MQ006', 'message attribute "a" must contain a non-empty value of type "Binary"',
	'InvalidParameterValue: Binary without BinaryValue');
SELECT throws_ok(
	$$SELECT * FROM msgq.send_message('tap_q', 'x', message_attributes => '{"a": "v"}')$$,
	'MQ006', 'message attribute "a" is invalid: the value must be an object with DataType and StringValue or BinaryValue',
	'InvalidParameterValue: attribute value that is not an object');

-- InvalidMessageContents MQ011
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'a' || chr(1))$$,
	'MQ011', 'invalid characters found in the message body',
	'InvalidMessageContents: U+0001');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'a' || chr(31))$$,
	'MQ011', 'invalid characters found in the message body',
	'InvalidMessageContents: U+001F');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'a' || chr(65534))$$,
	'MQ011', 'invalid characters found in the message body',
	'InvalidMessageContents: U+FFFE');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_q', 'a' || chr(65535))$$,
	'MQ011', 'invalid characters found in the message body',
	'InvalidMessageContents: U+FFFF');

-------------------------------------------------------------------------------
-- receive_message: InvalidParameterValue MQ006
-------------------------------------------------------------------------------
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_q', max_number_of_messages => 0)$$,
	'MQ006', 'value 0 for parameter MaxNumberOfMessages is invalid',
	'InvalidParameterValue: MaxNumberOfMessages 0');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_q', max_number_of_messages => 11)$$,
	'MQ006', 'value 11 for parameter MaxNumberOfMessages is invalid',
	'InvalidParameterValue: MaxNumberOfMessages 11');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_q', visibility_timeout => 43201)$$,
	'MQ006', 'value 43201 for parameter VisibilityTimeout is invalid',
	'InvalidParameterValue: receive VisibilityTimeout 43201');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_q', visibility_timeout => -1)$$,
	'MQ006', 'value -1 for parameter VisibilityTimeout is invalid',
	'InvalidParameterValue: receive VisibilityTimeout -1');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_q', wait_time_seconds => 21)$$,
	'MQ006', 'value 21 for parameter WaitTimeSeconds is invalid',
	'InvalidParameterValue: WaitTimeSeconds 21');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_q', wait_time_seconds => -1)$$,
	'MQ006', 'value -1 for parameter WaitTimeSeconds is invalid',
	'InvalidParameterValue: WaitTimeSeconds -1');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_q', receive_request_attempt_id => repeat('r', 129))$$,
	'MQ006', 'value for parameter ReceiveRequestAttemptId must have 1 to 128 characters',
	'InvalidParameterValue: 129-character ReceiveRequestAttemptId');

-------------------------------------------------------------------------------
-- receive, delete, change visibility: happy paths
-------------------------------------------------------------------------------
SELECT lives_ok($$SELECT msgq.create_queue('tap_rx')$$, 'create the receive test queue');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_rx', 'm1')$$, 'send m1');
SELECT is((SELECT count(*)::int FROM msgq.receive_message('tap_rx', max_number_of_messages => 10)),
	1, 'receive_message returns the one visible message');
SELECT is_empty($$SELECT * FROM msgq.receive_message('tap_rx')$$,
	'a received message is hidden for the visibility timeout');
SELECT is_empty($$SELECT * FROM msgq.receive_message('tap_rx', wait_time_seconds => 0)$$,
	'wait_time_seconds 0 returns at once when nothing is visible');
SET LOCAL msgq.clock_offset = '31s';
SELECT receipt_handle AS h1 FROM msgq.receive_message('tap_rx') \gset
SELECT isnt(:'h1'::text, '', 'the message is visible again after its visibility timeout');
SELECT lives_ok(format('SELECT msgq.change_message_visibility(%L, %L, 0)', 'tap_rx', :'h1'),
	'change_message_visibility to 0');
SELECT receipt_handle AS h2 FROM msgq.receive_message('tap_rx', visibility_timeout => 5) \gset
SELECT isnt(:'h2'::text, :'h1'::text, 'each receive mints a new receipt handle');

-- MessageNotInflight MQ005: a stale handle, and the message is visible now.
SET LOCAL msgq.clock_offset = '37s';
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, 10)', 'tap_rx', :'h1'),
	'MQ005', 'message is not in flight',
	'MessageNotInflight: stale handle of a message that is visible');

-- InvalidParameterValue MQ006: a stale handle, and the message is in flight
-- for another receive.
SELECT receipt_handle AS h3 FROM msgq.receive_message('tap_rx') \gset
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, 10)', 'tap_rx', :'h2'),
	'MQ006', 'message does not exist or is not available for visibility timeout change',
	'InvalidParameterValue: stale handle of a message in flight for another receive');
SELECT lives_ok(format('SELECT msgq.change_message_visibility(%L, %L, 60)', 'tap_rx', :'h3'),
	'change_message_visibility with the latest handle');
SELECT lives_ok(format('SELECT msgq.change_message_visibility(%L, %L, 43000)', 'tap_rx', :'h3'),
	'change_message_visibility within 12 hours of the receive');
SET LOCAL msgq.clock_offset = '47s';
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, 43200)', 'tap_rx', :'h3'),
	'MQ006', 'value 43200 for parameter VisibilityTimeout is invalid',
	'InvalidParameterValue: visibility beyond 12 hours after the receive');
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, 43201)', 'tap_rx', :'h3'),
	'MQ006', 'value 43201 for parameter VisibilityTimeout is invalid',
	'InvalidParameterValue: change_message_visibility 43201');
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, -1)', 'tap_rx', :'h3'),
	'MQ006', 'value -1 for parameter VisibilityTimeout is invalid',
	'InvalidParameterValue: change_message_visibility -1');
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, NULL)', 'tap_rx', :'h3'),
	'MQ007', 'the request must contain the parameter VisibilityTimeout',
	'MissingParameter: change_message_visibility without a timeout');
SELECT throws_ok($$SELECT msgq.change_message_visibility('tap_rx', NULL, 10)$$,
	'MQ007', 'the request must contain the parameter ReceiptHandle',
	'MissingParameter: change_message_visibility without a handle');

-- delete_message: a stale handle succeeds without deleting; the latest deletes.
SELECT lives_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_rx', :'h1'),
	'delete_message with a stale handle succeeds');
SELECT is((SELECT count(*)::int FROM msgq.message m JOIN msgq.queue q USING (queue_id)
			WHERE q.queue_name = 'tap_rx'),
	1, '... and deletes nothing');
SELECT lives_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_rx', :'h3'),
	'delete_message with the latest handle');
SELECT is((SELECT count(*)::int FROM msgq.message m JOIN msgq.queue q USING (queue_id)
			WHERE q.queue_name = 'tap_rx'),
	0, '... deletes the message');
SELECT lives_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_rx', :'h3'),
	'delete_message is idempotent');
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, 10)', 'tap_rx', :'h3'),
	'MQ006', 'message does not exist or is not available for visibility timeout change',
	'InvalidParameterValue: change_message_visibility of a deleted message');
SELECT throws_ok($$SELECT msgq.delete_message('tap_rx', NULL)$$,
	'MQ007', 'the request must contain the parameter ReceiptHandle',
	'MissingParameter: delete_message without a handle');

-- ReceiptHandleIsInvalid MQ004
SELECT throws_ok($$SELECT msgq.delete_message('tap_rx', 'garbage')$$,
	'MQ004', 'the input receipt handle is invalid',
	'ReceiptHandleIsInvalid: delete_message with garbage');
SELECT throws_ok($$SELECT msgq.delete_message('tap_rx', '')$$,
	'MQ007', 'the request must contain the parameter ReceiptHandle',
	'MissingParameter: delete_message with an empty handle');
SELECT throws_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_rx',
		overlay(:'h3' PLACING CASE WHEN right(:'h3', 1) = 'A' THEN 'B' ELSE 'A' END FROM 48)),
	'MQ004', 'the input receipt handle is invalid',
	'ReceiptHandleIsInvalid: delete_message with a forged handle (one character changed)');
SELECT throws_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_rx', :'h3' || 'A'),
	'MQ004', 'the input receipt handle is invalid',
	'ReceiptHandleIsInvalid: delete_message with a handle one character too long');
SELECT throws_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_rx',
		overlay(:'h3' PLACING '!' FROM 10)),
	'MQ004', 'the input receipt handle is invalid',
	'ReceiptHandleIsInvalid: delete_message with a character outside base64url');
SELECT throws_ok(format('SELECT msgq.delete_message(%L, %L)', 'tap_q', :'h3'),
	'MQ004', 'the input receipt handle is invalid',
	'ReceiptHandleIsInvalid: delete_message with the handle of another queue');
SELECT throws_ok($$SELECT msgq.change_message_visibility('tap_rx', 'garbage', 10)$$,
	'MQ004', 'the input receipt handle is invalid',
	'ReceiptHandleIsInvalid: change_message_visibility with garbage');
SELECT throws_ok(format('SELECT msgq.change_message_visibility(%L, %L, 10)', 'tap_q', :'h3'),
	'MQ004', 'the input receipt handle is invalid',
	'ReceiptHandleIsInvalid: change_message_visibility with the handle of another queue');

-- Long polling in READ COMMITTED: returns at once when a message is there,
-- and empty (not an error) just before a shorter statement_timeout.
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_rx', 'm2')$$, 'send m2');
SELECT is((SELECT body FROM msgq.receive_message('tap_rx', wait_time_seconds => 20)),
	'm2', 'a long poll returns at once when a message is visible');
SET LOCAL statement_timeout = '300ms';
SELECT is_empty($$SELECT * FROM msgq.receive_message('tap_rx', wait_time_seconds => 20)$$,
	'a long poll returns empty before a shorter statement_timeout fires');
RESET statement_timeout;

-------------------------------------------------------------------------------
-- add_permission, remove_permission
-------------------------------------------------------------------------------
CREATE ROLE tap_alice NOLOGIN;
CREATE ROLE tap_bob NOLOGIN;
CREATE ROLE tap_bob_member NOLOGIN IN ROLE tap_bob;

SELECT lives_ok($$SELECT msgq.add_permission('tap_q', 'l1', '{tap_bob}', '{SendMessage}')$$,
	'add_permission');
SELECT lives_ok(
	$$SELECT msgq.add_permission('tap_q', 'l2', '{tap_alice,public}', '{SQS:ReceiveMessage,DeleteMessage}')$$,
	'add_permission with several roles, public and the SQS: prefix');
SELECT lives_ok(
	$$SELECT msgq.add_permission('tap_q', 'l3', '{tap_alice}', '{SendMessage,ReceiveMessage,DeleteMessage,ChangeMessageVisibility,PurgeQueue,GetQueueAttributes,GetQueueUrl}')$$,
	'add_permission with 7 actions (the limit)');
SELECT lives_ok($$SELECT msgq.add_permission('tap_q', 'l4', '{tap_alice}', '{*}')$$,
	'add_permission with *');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'l1', '{tap_alice}', '{SendMessage}')$$,
	'MQ006', 'label "l1" already exists on queue "tap_q"',
	'InvalidParameterValue: duplicate label');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'lx', '{tap_alice}', '{Foo}')$$,
	'MQ006', 'unrecognized queue action: "Foo"',
	'InvalidParameterValue: unknown action');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'lx', '{tap_alice}', '{sendmessage}')$$,
	'MQ006', 'unrecognized queue action: "sendmessage"',
	'InvalidParameterValue: action names are case-sensitive');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'lx', '{tap_no_such_role}', '{SendMessage}')$$,
	'MQ006', 'role "tap_no_such_role" does not exist',
	'InvalidParameterValue: unknown role');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'bad label', '{tap_alice}', '{SendMessage}')$$,
	'MQ006', 'invalid label "bad label"',
	'InvalidParameterValue: invalid label');
SELECT throws_ok(format('SELECT msgq.add_permission(%L, %L, %L, %L)', 'tap_q', repeat('l', 81), '{tap_alice}', '{SendMessage}'),
	'MQ006', 'label "' || repeat('l', 81) || '" is too long',
	'InvalidParameterValue: 81-character label');
SELECT throws_ok(
	$$SELECT msgq.add_permission('tap_q', 'lx', '{tap_alice}', '{SendMessage,ReceiveMessage,DeleteMessage,ChangeMessageVisibility,PurgeQueue,GetQueueAttributes,GetQueueUrl,SetQueueAttributes}')$$,
	'MQ010', 'at most 7 actions can be granted at once, got 8',
	'OverLimit: 8 actions');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', NULL, '{tap_alice}', '{SendMessage}')$$,
	'MQ007', 'the request must contain the parameter Label',
	'MissingParameter: add_permission without a label');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'lx', NULL, '{SendMessage}')$$,
	'MQ007', 'the request must contain the parameter AWSAccountIds',
	'MissingParameter: add_permission without roles');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'lx', '{}', '{SendMessage}')$$,
	'MQ007', 'the request must contain the parameter AWSAccountIds',
	'MissingParameter: add_permission with no roles');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'lx', '{tap_alice}', NULL)$$,
	'MQ007', 'the request must contain the parameter Actions',
	'MissingParameter: add_permission without actions');
SELECT throws_ok($$SELECT msgq.add_permission('tap_q', 'lx', '{tap_alice}', '{}')$$,
	'MQ007', 'the request must contain the parameter Actions',
	'MissingParameter: add_permission with no actions');
SELECT throws_ok($$SELECT msgq.remove_permission('tap_q', 'nope')$$,
	'MQ006', 'label "nope" does not exist on queue "tap_q"',
	'InvalidParameterValue: remove_permission of an unknown label');
SELECT throws_ok($$SELECT msgq.remove_permission('tap_q', NULL)$$,
	'MQ007', 'the request must contain the parameter Label',
	'MissingParameter: remove_permission without a label');
SELECT lives_ok($$SELECT msgq.remove_permission('tap_q', 'l4')$$, 'remove_permission');
SELECT throws_ok($$SELECT msgq.remove_permission('tap_q', 'l4')$$,
	'MQ006', 'label "l4" does not exist on queue "tap_q"',
	'InvalidParameterValue: a removed label is gone');

-------------------------------------------------------------------------------
-- AccessDenied 42501
-------------------------------------------------------------------------------
-- (USAGE on the schema is granted explicitly so that these tests exercise
-- msgq's own checks whatever the schema's default privileges are.)
GRANT USAGE ON SCHEMA msgq TO tap_alice, tap_bob;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO tap_alice;

SET LOCAL ROLE tap_alice;
SELECT lives_ok($$SELECT msgq.create_queue('tap_alice_q')$$,
	'a role granted EXECUTE on create_queue creates a queue');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_alice_q', 'for alice')$$,
	'the owner sends');
SELECT is((SELECT attributes->>'SenderId' FROM msgq.receive_message('tap_alice_q')),
	'tap_alice', 'the owner receives; SenderId is the sending role');

SET LOCAL ROLE tap_bob;
SELECT throws_ok($$SELECT msgq.create_queue('tap_bob_q')$$,
	'42501', 'permission denied for function create_queue',
	'AccessDenied: create_queue without EXECUTE');
SELECT throws_ok($$SELECT msgq.run_maintenance()$$,
	'42501', 'permission denied for function run_maintenance',
	'AccessDenied: run_maintenance');
SELECT throws_ok($$SET LOCAL msgq.clock_offset = '1s'$$,
	'42501', 'permission denied to set parameter "msgq.clock_offset"',
	'AccessDenied: msgq.clock_offset is superuser-only');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_alice_q', 'x')$$,
	'42501', 'permission denied for queue "tap_alice_q"',
	'AccessDenied: send_message');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_alice_q')$$,
	'42501', 'permission denied for queue "tap_alice_q"',
	'AccessDenied: receive_message');
SELECT throws_ok($$SELECT msgq.delete_message('tap_alice_q', 'x')$$,
	'42501', 'permission denied for queue "tap_alice_q"',
	'AccessDenied: delete_message (checked before the handle)');
SELECT throws_ok($$SELECT msgq.change_message_visibility('tap_alice_q', 'x', 0)$$,
	'42501', 'permission denied for queue "tap_alice_q"',
	'AccessDenied: change_message_visibility');
SELECT throws_ok($$SELECT msgq.get_queue_url('tap_alice_q')$$,
	'42501', 'permission denied for queue "tap_alice_q"',
	'AccessDenied: get_queue_url');
SELECT throws_ok($$SELECT msgq.delete_queue('tap_alice_q')$$,
	'42501', 'permission denied for queue "tap_alice_q"',
	'AccessDenied: delete_queue');
SELECT throws_ok($$SELECT msgq.add_permission('tap_alice_q', 'b', '{tap_bob}', '{*}')$$,
	'42501', 'must be owner of queue "tap_alice_q"',
	'AccessDenied: add_permission by a non-owner');
SELECT throws_ok($$SELECT msgq.remove_permission('tap_alice_q', 'b')$$,
	'42501', 'must be owner of queue "tap_alice_q"',
	'AccessDenied: remove_permission by a non-owner');
SELECT is_empty($$SELECT * FROM msgq.list_queues('tap_alice')$$,
	'list_queues hides queues the caller has no right on');

-- Grants take effect, for the role, its members and PUBLIC.
SET LOCAL ROLE tap_alice;
SELECT lives_ok($$SELECT msgq.add_permission('tap_alice_q', 'bob_send', '{tap_bob}', '{SendMessage}')$$,
	'the owner grants SendMessage to tap_bob');
SET LOCAL ROLE tap_bob;
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_alice_q', 'from bob')$$,
	'a granted action is allowed');
SELECT results_eq($$SELECT * FROM msgq.list_queues('tap_alice')$$, ARRAY['tap_alice_q'],
	'list_queues shows a queue the caller has a right on');
SELECT throws_ok($$SELECT * FROM msgq.receive_message('tap_alice_q')$$,
	'42501', 'permission denied for queue "tap_alice_q"',
	'AccessDenied: an action that was not granted stays denied');
SET LOCAL ROLE tap_bob_member;
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_alice_q', 'from a member of bob')$$,
	'a member of a granted role inherits the action');
SET LOCAL ROLE tap_alice;
SELECT lives_ok($$SELECT msgq.add_permission('tap_alice_q', 'all_recv', '{public}', '{ReceiveMessage}')$$,
	'the owner grants ReceiveMessage to public');
SELECT lives_ok($$SELECT msgq.remove_permission('tap_alice_q', 'bob_send')$$,
	'the owner removes the SendMessage grant');
SET LOCAL ROLE tap_bob;
SELECT lives_ok($$SELECT * FROM msgq.receive_message('tap_alice_q')$$,
	'an action granted to public is allowed');
SELECT throws_ok($$SELECT * FROM msgq.send_message('tap_alice_q', 'x')$$,
	'42501', 'permission denied for queue "tap_alice_q"',
	'AccessDenied: a removed grant no longer applies');
RESET ROLE;

-------------------------------------------------------------------------------
-- Operations and deleting queues
-------------------------------------------------------------------------------
-- A receive rolled back to a savepoint still counts, and leaves an entry in
-- shared memory that the maintenance cycle prunes once the message is gone.
-- (No pgTAP assertion may run between SAVEPOINT and ROLLBACK TO: it would
-- roll back its own result.)
SELECT lives_ok($$SELECT msgq.create_queue('tap_rb')$$, 'create the rollback test queue');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_rb', 'm3')$$, 'send m3');
SAVEPOINT tap_before_receive;
SELECT receipt_handle AS hr FROM msgq.receive_message('tap_rb') \gset
ROLLBACK TO SAVEPOINT tap_before_receive;
SELECT is((SELECT attributes->>'ApproximateReceiveCount' FROM msgq.receive_message('tap_rb')),
	'2', 'a receive rolled back to a savepoint counts toward ApproximateReceiveCount');
SELECT lives_ok($$SELECT * FROM msgq.send_message('tap_rb', 'm4')$$, 'send m4');
SAVEPOINT tap_before_receive;
SELECT receipt_handle AS hr FROM msgq.receive_message('tap_rb') \gset
ROLLBACK TO SAVEPOINT tap_before_receive;
SELECT lives_ok($$SELECT msgq.run_maintenance()$$,
	'run_maintenance as superuser, with a rolled-back receive pending');
SELECT lives_ok($$SELECT msgq.delete_queue('tap_rb')$$, 'delete the rollback test queue');
SELECT lives_ok($$SELECT msgq.run_maintenance()$$,
	'run_maintenance prunes the rolled-back receive of a deleted message');
SELECT ok(msgq.now() - clock_timestamp() BETWEEN interval '46 seconds' AND interval '48 seconds',
	'msgq.now() follows msgq.clock_offset');
SELECT lives_ok($$SELECT * FROM msgq.waiters$$, 'msgq.waiters can be read');
SELECT lives_ok($$SELECT msgq.delete_queue('tap_q')$$, 'delete_queue');
SELECT throws_ok($$SELECT msgq.get_queue_url('tap_q')$$,
	'MQ001', 'queue "tap_q" does not exist', 'QueueDoesNotExist: after delete_queue');
SELECT throws_ok($$SELECT msgq.delete_queue('tap_q')$$,
	'MQ001', 'queue "tap_q" does not exist', 'QueueDoesNotExist: deleting twice');
SELECT lives_ok($$SELECT msgq.delete_queue('msgq://' || current_database() || '/tap_q2')$$,
	'delete_queue by URL');

SELECT * FROM finish();
ROLLBACK;
