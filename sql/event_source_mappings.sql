--
-- event_source_mappings: Lambda-style event source mappings over queues
-- (src/esm.c): create / update / get / list / delete with every attribute
-- and error, batches of BatchSize in Lambda's SQS event shape, the
-- function run as the mapping's owner, deletes in the function's
-- transaction, ReportBatchItemFailures, a failing function (its writes
-- rolled back, the batch received again and dead-lettered), Enabled,
-- the batching window on msgq's test clock (sql/event_source_streams.sql
-- has the stream sources).  msgq.run_maintenance() runs
-- the batches here, with the worker off (test/t/019_event_source.pl runs
-- them in the worker, across a kill -9).
-- Queue names start with "esm_", roles with "regress_msgq_esm_".
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
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
SET msgq.clock_offset = 0;

-- The worker off for this file: the batches run in msgq.run_maintenance()
ALTER SYSTEM SET msgq.worker_enabled = off;
SELECT pg_reload_conf();
DO $$
BEGIN
	FOR i IN 1..200 LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM msgq.workers
						   WHERE database = current_database() AND state = 'disabled');
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SELECT state FROM msgq.workers WHERE database = current_database();

-- a role that owns its queues and its handler
CREATE ROLE regress_msgq_esm_user;
GRANT USAGE ON SCHEMA msgq TO regress_msgq_esm_user;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO regress_msgq_esm_user;
CREATE SCHEMA esm AUTHORIZATION regress_msgq_esm_user;
SET ROLE regress_msgq_esm_user;
CREATE TABLE esm.got (body text, batch_len int, receive_count int, run_as name, event_source text);
-- records every message; reports those whose body starts with "bad" as failed
CREATE FUNCTION esm.handler(ev jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO esm.got
	SELECT r->>'body', jsonb_array_length(ev->'Records'),
		   (r->'attributes'->>'ApproximateReceiveCount')::int, current_user, r->>'eventSource'
	  FROM jsonb_array_elements(ev->'Records') r;
	RETURN jsonb_build_object('batchItemFailures',
		(SELECT coalesce(jsonb_agg(jsonb_build_object('itemIdentifier', r->>'messageId')), '[]')
		   FROM jsonb_array_elements(ev->'Records') r WHERE r->>'body' LIKE 'bad%'));
END
$$;
-- writes, then fails: its writes must not stay
CREATE FUNCTION esm.failing(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO esm.got SELECT r->>'body', -1, NULL, current_user, NULL
	  FROM jsonb_array_elements(ev->'Records') r;
	RAISE EXCEPTION 'handler failed on % records', jsonb_array_length(ev->'Records');
END
$$;
CREATE FUNCTION esm.wrong(x text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT msgq.create_queue('esm_q') IS NOT NULL AS created;
SELECT msgq.create_queue('esm_dlq') IS NOT NULL AS created;
SELECT msgq.create_queue('esm_src', jsonb_build_object('RedrivePolicy',
	jsonb_build_object('deadLetterTargetArn', 'esm_dlq', 'maxReceiveCount', 2)::text,
	'VisibilityTimeout', '30')) IS NOT NULL AS created;
SELECT msgq.create_queue('esm_fifo.fifo', '{"FifoQueue": "true"}') IS NOT NULL AS created;

-- attributes and errors
SELECT name, msgq_test.err(sql) AS result FROM (VALUES
	('no queue', $$SELECT msgq.create_event_source_mapping('esm_none', 'esm.handler(jsonb)', '{}')$$),
	('null source', $$SELECT msgq.create_event_source_mapping(NULL, 'esm.handler(jsonb)', '{}')$$),
	('null function', $$SELECT msgq.create_event_source_mapping('esm_q', NULL, '{}')$$),
	('wrong signature', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.wrong(text)', '{}')$$),
	('not an object', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '[]')$$),
	('unknown', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"Foo": 1}')$$),
	('stream only', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"StartingPosition": "LATEST"}')$$),
	('batch 0', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"BatchSize": 0}')$$),
	('batch 11', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"BatchSize": 11}')$$),
	('batch 10001', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"BatchSize": 10001, "MaximumBatchingWindowInSeconds": 1}')$$),
	('batch 2.5', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"BatchSize": 2.5}')$$),
	('batch text', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"BatchSize": "5"}')$$),
	('window 301', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"MaximumBatchingWindowInSeconds": 301}')$$),
	('window -1', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"MaximumBatchingWindowInSeconds": -1}')$$),
	('enabled text', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"Enabled": "yes"}')$$),
	('response type', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"FunctionResponseTypes": ["Other"]}')$$),
	('response not array', $$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{"FunctionResponseTypes": "ReportBatchItemFailures"}')$$),
	('fifo window', $$SELECT msgq.create_event_source_mapping('esm_fifo.fifo', 'esm.handler(jsonb)', '{"MaximumBatchingWindowInSeconds": 1}')$$),
	('unknown stream', $$SELECT msgq.create_event_source_mapping('arn:aws:kinesis:msgq:x:stream/s', 'esm.handler(jsonb)', '{}')$$),
	('update unknown', $$SELECT msgq.update_event_source_mapping('00000000-0000-0000-0000-000000000000', '{}')$$),
	('get unknown', $$SELECT msgq.get_event_source_mapping('00000000-0000-0000-0000-000000000000')$$),
	('delete unknown', $$SELECT msgq.delete_event_source_mapping('00000000-0000-0000-0000-000000000000')$$),
	('list unknown queue', $$SELECT msgq.list_event_source_mappings('esm_none')$$)
) AS t(name, sql);

-- a mapping with ReportBatchItemFailures: batches of at most 4, in
-- Lambda's event shape, run as the owner; the failed items stay
SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)',
	'{"BatchSize": 4, "FunctionResponseTypes": ["ReportBatchItemFailures"]}') AS m1 \gset
SELECT c - 'UUID' - 'LastModified' AS config FROM msgq.get_event_source_mapping(:'m1') c;
SELECT count(*) AS sent FROM generate_series(1, 10) g,
	LATERAL msgq.send_message(CASE WHEN g > 0 THEN 'esm_q' END, CASE WHEN g IN (3, 7) THEN 'bad' ELSE 'ok' END || g);
RESET ROLE;
SELECT msgq.run_maintenance();
SET ROLE regress_msgq_esm_user;
SELECT count(*) AS invoked, count(DISTINCT body) AS distinct_bodies, max(batch_len) <= 4 AS batches_of_4,
	   bool_and(run_as = 'regress_msgq_esm_user') AS as_owner, bool_and(event_source = 'aws:sqs') AS sqs_shape,
	   bool_and(receive_count = 1) AS first_receives
  FROM esm.got;
RESET ROLE;
SELECT "ApproximateNumberOfMessagesVisible" AS visible, "ApproximateNumberOfMessagesNotVisible" AS failed_items_in_flight
  FROM msgq.queue_metrics WHERE queue_name = 'esm_q';
SELECT state, last_processing_result, invocations >= 3 AS invoked_3_times, failed_invocations
  FROM msgq.event_source_mappings WHERE uuid = :'m1';
-- the failed items come back after their visibility timeout
SET msgq.clock_offset = '31s';
SELECT msgq.run_maintenance();
SET ROLE regress_msgq_esm_user;
SELECT body, receive_count FROM esm.got WHERE receive_count > 1 ORDER BY 1;

-- a function that fails: its writes are rolled back, the batch is received
-- again after the visibility timeout and reaches the dead-letter queue after
-- maxReceiveCount (2)
TRUNCATE esm.got;
SELECT msgq.create_event_source_mapping('esm_src', 'esm.failing(jsonb)', '{"BatchSize": 10}') AS m2 \gset
SELECT count(*) AS sent FROM generate_series(1, 3) g,
	LATERAL msgq.send_message(CASE WHEN g > 0 THEN 'esm_src' END, 'f' || g);
RESET ROLE;
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '62s';
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '93s';
SELECT msgq.run_maintenance();
SELECT last_processing_result, failed_invocations >= 2 AS failed_twice, last_error
  FROM msgq.event_source_mappings WHERE uuid = :'m2';
SET ROLE regress_msgq_esm_user;
SELECT count(*) FILTER (WHERE batch_len = -1) AS failing_writes_left FROM esm.got;
SELECT count(*) AS dead_lettered FROM msgq.receive_message('esm_dlq', 10);

-- disabled: nothing is processed; enabled again: the backlog is
TRUNCATE esm.got;
SELECT u->>'State' AS state, u->>'BatchSize' AS batch FROM
	msgq.update_event_source_mapping(:'m1', '{"Enabled": false, "BatchSize": 10}') u;
SELECT count(*) AS sent FROM generate_series(1, 5) g,
	LATERAL msgq.send_message(CASE WHEN g > 0 THEN 'esm_q' END, 'd' || g);
RESET ROLE;
SELECT msgq.run_maintenance();
SET ROLE regress_msgq_esm_user;
SELECT count(*) AS while_disabled FROM esm.got;
SELECT u->>'State' AS state FROM msgq.update_event_source_mapping(:'m1', '{"Enabled": true}') u;
RESET ROLE;
SELECT msgq.run_maintenance();
SET ROLE regress_msgq_esm_user;
SELECT count(*) AS after_enabling, count(DISTINCT body) AS distinct_bodies FROM esm.got WHERE body LIKE 'd%';
SELECT msgq_test.err(format($$SELECT msgq.update_event_source_mapping(%L, '{"BatchSize": 11}')$$, :'m1')) AS update_bad;

-- the batching window: a batch smaller than BatchSize waits for it
TRUNCATE esm.got;
SELECT (msgq.update_event_source_mapping(:'m1',
	'{"BatchSize": 100, "MaximumBatchingWindowInSeconds": 5}'))->>'MaximumBatchingWindowInSeconds' AS window;
RESET ROLE;
SET msgq.clock_offset = '200s';
SET ROLE regress_msgq_esm_user;
SELECT count(*) AS sent FROM generate_series(1, 3) g,
	LATERAL msgq.send_message(CASE WHEN g > 0 THEN 'esm_q' END, 'w' || g);
RESET ROLE;
SELECT msgq.run_maintenance();
SET ROLE regress_msgq_esm_user;
SELECT count(*) AS within_window FROM esm.got;
RESET ROLE;
SET msgq.clock_offset = '206s';
SELECT msgq.run_maintenance();
SET ROLE regress_msgq_esm_user;
SELECT count(*) AS after_window, max(batch_len) AS one_batch FROM esm.got;

-- list, and who may see and change a mapping
SELECT count(*) AS mine FROM msgq.list_event_source_mappings();
SELECT count(*) AS of_esm_q FROM msgq.list_event_source_mappings('esm_q');
RESET ROLE;
CREATE ROLE regress_msgq_esm_other;
GRANT USAGE ON SCHEMA msgq TO regress_msgq_esm_other;
GRANT USAGE ON SCHEMA esm TO regress_msgq_esm_other;
SET ROLE regress_msgq_esm_other;
SELECT count(*) AS others_see FROM msgq.list_event_source_mappings();
SELECT regexp_replace(msgq_test.err(format($$SELECT msgq.delete_event_source_mapping(%L)$$, :'m1')),
	'[0-9a-f-]{36}', 'UUID') AS other_delete;
SELECT msgq_test.err($$SELECT msgq.create_event_source_mapping('esm_q', 'esm.handler(jsonb)', '{}')$$) AS other_create;
SELECT regexp_replace(msgq_test.err(format($$SELECT msgq.get_event_source_mapping(%L)$$, :'m1')),
	'[0-9a-f-]{36}', 'UUID') AS other_get;
RESET ROLE;
SELECT has_table_privilege('public', 'msgq.event_source_mappings', 'SELECT') AS public_reads_view;

-- EXECUTE on the function is checked at every batch: once its owner revokes
-- it, the mapping's batches fail and the message stays in the queue
SET ROLE regress_msgq_esm_user;
SELECT msgq.create_queue('esm_rv') IS NOT NULL AS created;
CREATE FUNCTION esm.rv(ev jsonb) RETURNS jsonb LANGUAGE sql AS
$$INSERT INTO esm.got (body) SELECT 'rv:' || (ev->'Records'->0->>'body') RETURNING NULL::jsonb$$;
SELECT msgq.create_event_source_mapping('esm_rv', 'esm.rv(jsonb)', '{}') AS m_rv \gset
REVOKE EXECUTE ON FUNCTION esm.rv(jsonb) FROM PUBLIC, regress_msgq_esm_user;
SELECT (msgq.send_message('esm_rv', 'revoked')).message_id IS NOT NULL AS sent;
RESET ROLE;
SELECT msgq.run_maintenance();
SELECT count(*) AS rv_calls FROM esm.got WHERE body LIKE 'rv:%';
SELECT failed_invocations > 0 AS rv_failed, last_processing_result AS rv_result
  FROM msgq.event_source_mappings WHERE uuid = :'m_rv';
SELECT "ApproximateNumberOfMessagesVisible" + "ApproximateNumberOfMessagesNotVisible" AS rv_kept
  FROM msgq.queue_metrics WHERE queue_name = 'esm_rv';
SET ROLE regress_msgq_esm_user;
SELECT msgq.delete_queue('esm_rv');
RESET ROLE;

-- delete returns the last configuration; delete_queue removes its mappings
SET ROLE regress_msgq_esm_user;
SELECT d->>'State' AS state, d->>'EventSourceArn' LIKE '%esm_q' AS arn
  FROM msgq.delete_event_source_mapping(:'m1') d;
SELECT regexp_replace(msgq_test.err(format($$SELECT msgq.get_event_source_mapping(%L)$$, :'m1')),
	'[0-9a-f-]{36}', 'UUID') AS gone;
SELECT msgq.delete_queue('esm_src');
SELECT count(*) AS left_over FROM msgq.list_event_source_mappings();
RESET ROLE;

SELECT count(*) AS deleted FROM unnest(ARRAY['esm_q', 'esm_dlq', 'esm_fifo.fifo']) q,
	LATERAL msgq.delete_queue(q);
DROP SCHEMA esm CASCADE;
REVOKE ALL ON FUNCTION msgq.create_queue(text, jsonb) FROM regress_msgq_esm_user;
REVOKE USAGE ON SCHEMA msgq FROM regress_msgq_esm_user, regress_msgq_esm_other;
DROP ROLE regress_msgq_esm_other;
DROP ROLE regress_msgq_esm_user;
RESET msgq.clock_offset;
ALTER SYSTEM RESET msgq.worker_enabled;
SELECT pg_reload_conf();
