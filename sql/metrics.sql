--
-- metrics: msgq.queue_metrics (src/metrics.c).  Gauges and counters live in
-- shared memory and change when a transaction commits: rolled-back sends
-- and receives never show, uncommitted ones not yet.  Not-visible and
-- delayed counts follow msgq's clock without any write (a lease running
-- out makes its message visible again in the view).  Also the in-flight
-- limit (OverLimit), with msgq.max_inflight_messages lowered.
-- Queue names start with "mt_".
--
-- msgq_test.err() comes from queue.sql; made again here so this file can run alone
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

CREATE FUNCTION pg_temp.m(q text) RETURNS TABLE (vis bigint, notvis bigint, delayed bigint,
	age bigint, sent bigint, recv bigint, del bigint, empty bigint)
LANGUAGE sql AS $$
	SELECT "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
		   "ApproximateNumberOfMessagesDelayed", "ApproximateAgeOfOldestMessage",
		   "NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted",
		   "NumberOfEmptyReceives"
	  FROM msgq.queue_metrics WHERE queue_name = q
$$;

-- the view's columns carry CloudWatch's names
SELECT attname FROM pg_attribute
 WHERE attrelid = 'msgq.queue_metrics'::regclass AND attnum > 0 ORDER BY attnum;

SET msgq.clock_offset = '1000s';
SELECT msgq.create_queue('mt_a') IS NOT NULL AS created;
SELECT * FROM pg_temp.m('mt_a');

-- sends: two visible, one delayed for 60 s
SELECT count(*) AS sent FROM generate_series(1, 2) g, LATERAL msgq.send_message('mt_a', 'a' || g);
SELECT count(*) AS sent FROM msgq.send_message('mt_a', 'later', delay_seconds => 60);
SELECT * FROM pg_temp.m('mt_a');

-- a rolled-back send is never counted; an uncommitted one not yet
BEGIN;
SELECT count(*) AS sent FROM msgq.send_message('mt_a', 'rolled back');
SELECT vis, sent FROM pg_temp.m('mt_a');
ROLLBACK;
SELECT vis, sent FROM pg_temp.m('mt_a');

-- a receive puts a message in flight at commit; a rolled-back one (or a
-- rolled-back savepoint) leaves it visible
BEGIN;
SAVEPOINT s;
SELECT body FROM msgq.receive_message('mt_a', visibility_timeout => 30);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT vis, notvis, recv FROM pg_temp.m('mt_a');
SELECT receipt_handle AS h1 FROM msgq.receive_message('mt_a', visibility_timeout => 30) \gset
SELECT vis, notvis, recv FROM pg_temp.m('mt_a');

-- change_message_visibility: 0 makes it visible, 100 hides it again
SELECT 'ok' AS changed FROM msgq.change_message_visibility('mt_a', :'h1', 0);
SELECT vis, notvis FROM pg_temp.m('mt_a');
SELECT 'ok' AS changed FROM msgq.change_message_visibility('mt_a', :'h1', 100);
SELECT vis, notvis FROM pg_temp.m('mt_a');

-- 61 s later: the delay is over, the lease (100 s) is not
SET msgq.clock_offset = '1061s';
SELECT vis, notvis, delayed, age FROM pg_temp.m('mt_a');
-- 101 s later the lease has run out too, without any write
SET msgq.clock_offset = '1101s';
SELECT vis, notvis, delayed, age FROM pg_temp.m('mt_a');

-- delete: the in-flight message goes
SELECT receipt_handle AS h2 FROM msgq.receive_message('mt_a', visibility_timeout => 30) \gset
SELECT vis, notvis, recv FROM pg_temp.m('mt_a');
SELECT 'ok' AS deleted FROM msgq.delete_message('mt_a', :'h2');
SELECT vis, notvis, del FROM pg_temp.m('mt_a');
-- deleting it again changes nothing
SELECT 'ok' AS deleted FROM msgq.delete_message('mt_a', :'h2');
SELECT vis, notvis, del FROM pg_temp.m('mt_a');

-- an empty receive
SELECT count(*) AS got FROM msgq.receive_message('mt_a', 10, visibility_timeout => 30);
SELECT count(*) AS got FROM msgq.receive_message('mt_a', 10, visibility_timeout => 30);
SELECT vis, notvis, recv, empty FROM pg_temp.m('mt_a');

-- batches: three sent (one delayed), two deleted, one hidden for longer
SELECT msgq.purge_queue('mt_a') IS NOT NULL AS purged;
SELECT * FROM pg_temp.m('mt_a');
SELECT count(*) AS ok FROM msgq.send_message_batch('mt_a',
	'[{"Id": "a", "MessageBody": "b1"}, {"Id": "b", "MessageBody": "b2"},
	  {"Id": "c", "MessageBody": "b3", "DelaySeconds": 120}, {"Id": "d", "MessageBody": "bad", "DelaySeconds": 901}]')
 WHERE error_code IS NULL;
SELECT vis, notvis, delayed, sent FROM pg_temp.m('mt_a');
CREATE TEMP TABLE mt_got AS
SELECT message_id, receipt_handle FROM msgq.receive_message('mt_a', 10, visibility_timeout => 30);
SELECT count(*) AS got FROM mt_got;
SELECT count(*) AS deleted FROM msgq.delete_message_batch('mt_a',
	(SELECT jsonb_agg(jsonb_build_object('Id', 'e' || n, 'ReceiptHandle', receipt_handle))
	   FROM (SELECT row_number() OVER () AS n, receipt_handle FROM mt_got LIMIT 1) x))
 WHERE error_code IS NULL;
SELECT vis, notvis, delayed, del FROM pg_temp.m('mt_a');
SELECT count(*) AS changed FROM msgq.change_message_visibility_batch('mt_a',
	(SELECT jsonb_agg(jsonb_build_object('Id', 'e' || n, 'ReceiptHandle', receipt_handle,
										 'VisibilityTimeout', 0))
	   FROM (SELECT row_number() OVER () AS n, receipt_handle FROM mt_got OFFSET 1) x))
 WHERE error_code IS NULL;
SELECT vis, notvis, delayed FROM pg_temp.m('mt_a');

-- a lease of 12 hours is counted in ten-minute steps: not visible until
-- the step after it ends, visible after that
SELECT count(*) AS got FROM msgq.receive_message('mt_a', visibility_timeout => 43200);
SET msgq.clock_offset = '44300s';
SELECT vis, notvis FROM pg_temp.m('mt_a');
SET msgq.clock_offset = '45000s';
SELECT vis, notvis, delayed FROM pg_temp.m('mt_a');

-- purge: every gauge to 0, the counters stay
SET msgq.clock_offset = '50000s';
SELECT msgq.purge_queue('mt_a') IS NOT NULL AS purged;
SELECT * FROM pg_temp.m('mt_a');

-- dead-letter moves: the message leaves the source and arrives in the DLQ
SELECT msgq.create_queue('mt_dlq') IS NOT NULL AS created;
SELECT msgq.create_queue('mt_src', '{"RedrivePolicy": {"deadLetterTargetArn": "mt_dlq", "maxReceiveCount": 1}}') IS NOT NULL AS created;
SELECT count(*) AS sent FROM msgq.send_message('mt_src', 'poison');
SELECT count(*) AS got FROM msgq.receive_message('mt_src', visibility_timeout => 0);
SELECT vis, notvis, recv FROM pg_temp.m('mt_src');
SELECT count(*) AS got FROM msgq.receive_message('mt_src', visibility_timeout => 0);
SELECT vis, notvis, sent, recv, empty FROM pg_temp.m('mt_src');
SELECT vis, notvis, sent FROM pg_temp.m('mt_dlq');

-- retention: an expired message leaves the gauges when the maintenance
-- cycle deletes it
SELECT msgq.create_queue('mt_ret', '{"MessageRetentionPeriod": "60"}') IS NOT NULL AS created;
SELECT count(*) AS sent FROM msgq.send_message('mt_ret', 'old');
SELECT count(*) AS got FROM msgq.receive_message('mt_ret', visibility_timeout => 600);
SELECT vis, notvis FROM pg_temp.m('mt_ret');
SET msgq.clock_offset = '50061s';
SELECT msgq.run_maintenance();
SELECT vis, notvis, age FROM pg_temp.m('mt_ret');

-- the in-flight limit: a receive takes what still fits, then OverLimit
SELECT msgq.create_queue('mt_lim') IS NOT NULL AS created;
SET msgq.max_inflight_messages = 3;
SELECT count(*) AS sent FROM generate_series(1, 5) g, LATERAL msgq.send_message('mt_lim', 'f' || g);
SELECT count(*) AS got FROM msgq.receive_message('mt_lim', 2, visibility_timeout => 600);
SELECT count(*) AS got FROM msgq.receive_message('mt_lim', 10, visibility_timeout => 600);
SELECT msgq_test.err($$SELECT * FROM msgq.receive_message('mt_lim')$$);
SELECT vis, notvis FROM pg_temp.m('mt_lim');
-- once the leases run out there is room again
SET msgq.clock_offset = '50700s';
SELECT vis, notvis FROM pg_temp.m('mt_lim');
SELECT count(*) AS got FROM msgq.receive_message('mt_lim', 10, visibility_timeout => 600);
SELECT msgq_test.err($$SELECT * FROM msgq.receive_message('mt_lim')$$);
RESET msgq.max_inflight_messages;
SELECT count(*) AS got FROM msgq.receive_message('mt_lim', 10, visibility_timeout => 600);
SELECT vis, notvis FROM pg_temp.m('mt_lim');

-- a deleted queue leaves the view
SELECT count(*) AS deleted FROM msgq.list_queues('mt_') AS q, LATERAL msgq.delete_queue(q);
SELECT count(*) AS rows_left FROM msgq.queue_metrics WHERE queue_name LIKE 'mt\_%';

-- who may read it: pg_monitor, not PUBLIC
SELECT has_table_privilege('public', 'msgq.queue_metrics', 'SELECT') AS public_reads,
	   has_table_privilege('pg_monitor', 'msgq.queue_metrics', 'SELECT') AS pg_monitor_reads;
RESET msgq.clock_offset;
