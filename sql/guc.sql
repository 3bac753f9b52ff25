--
-- guc: msgq's settings, the reserved "msgq." prefix, and msgq's clock
-- (msgq.now() = clock_timestamp() + msgq.clock_offset, or the time it
-- stopped at + msgq.clock_offset under msgq.clock_frozen).
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

--
-- Every setting
--
SHOW msgq.clock_offset;
SHOW msgq.wait_recheck_interval;
SHOW msgq.wait_buckets;
SHOW msgq.max_aborted_receives;
SHOW msgq.worker_enabled;
SHOW msgq.worker_naptime;
SHOW msgq.launcher_naptime;
SHOW msgq.max_workers;
SELECT name, setting, unit, context, vartype, min_val, max_val, boot_val
  FROM pg_settings WHERE name LIKE 'msgq.%' ORDER BY name;

--
-- The prefix is reserved: unknown msgq.* settings are refused
--
SELECT msgq_test.err($$SET msgq.unknown_thing = 1$$);
SELECT msgq_test.err($$SET msgq.clockoffset = '1s'$$);
SELECT msgq_test.err($$SELECT set_config('msgq.unknown_thing', '1', false)$$);
SELECT msgq_test.err($$SHOW msgq.unknown_thing$$);
SELECT current_setting('msgq.unknown_thing', true) IS NULL AS unknown_is_null;
-- other prefixes still take placeholders
SET regress_msgq_placeholder.thing = 'x';
SHOW regress_msgq_placeholder.thing;
-- names are case-insensitive
SET msgq.Clock_Offset = '2s';
SHOW msgq.clock_offset;
RESET msgq.clock_offset;

--
-- Settings that need a restart or a reload cannot be SET
--
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('wait_buckets', $$SET msgq.wait_buckets = 16$$),
	('max_aborted_receives', $$SET msgq.max_aborted_receives = 64$$),
	('max_workers', $$SET msgq.max_workers = 1$$),
	('worker_enabled', $$SET msgq.worker_enabled = off$$),
	('worker_naptime', $$SET msgq.worker_naptime = '1s'$$),
	('launcher_naptime', $$SET msgq.launcher_naptime = '1s'$$)
	) AS t(f, s);

--
-- msgq.wait_recheck_interval: 10 ms to 20 s
--
SET msgq.wait_recheck_interval = '1s';
SHOW msgq.wait_recheck_interval;
SET msgq.wait_recheck_interval = 10;
SHOW msgq.wait_recheck_interval;
SET msgq.wait_recheck_interval = '20s';
SHOW msgq.wait_recheck_interval;
SELECT msgq_test.err($$SET msgq.wait_recheck_interval = 9$$);
SELECT msgq_test.err($$SET msgq.wait_recheck_interval = '21s'$$);
RESET msgq.wait_recheck_interval;
SHOW msgq.wait_recheck_interval;

--
-- msgq.clock_offset: milliseconds, with units
--
SET msgq.clock_offset = '31s';
SHOW msgq.clock_offset;
SELECT current_setting('msgq.clock_offset');
SET msgq.clock_offset = 31000;
SHOW msgq.clock_offset;
SET msgq.clock_offset = 1500;
SHOW msgq.clock_offset;
SET msgq.clock_offset = '1.5s';
SHOW msgq.clock_offset;
SET msgq.clock_offset = '90s';
SHOW msgq.clock_offset;
SET msgq.clock_offset = '1min';
SHOW msgq.clock_offset;
SET msgq.clock_offset = '12h';
SHOW msgq.clock_offset;
SET msgq.clock_offset = '14d';
SHOW msgq.clock_offset;
SET msgq.clock_offset = 0;
SHOW msgq.clock_offset;
SELECT f, msgq_test.err(s)
  FROM (VALUES
	('negative', $$SET msgq.clock_offset = -1$$),
	('negative with unit', $$SET msgq.clock_offset = '-1s'$$),
	('beyond int', $$SET msgq.clock_offset = '25d'$$),
	('no number', $$SET msgq.clock_offset = 'abc'$$),
	('bad unit', $$SET msgq.clock_offset = '1 fortnight'$$)
	) AS t(f, s);
SHOW msgq.clock_offset;

--
-- msgq.now() follows the offset
--
RESET msgq.clock_offset;
SELECT abs(extract(epoch FROM msgq.now() - clock_timestamp())) < 1 AS now_is_now;
SELECT msgq.now() >= now() AS not_before_transaction_start;
SET msgq.clock_offset = '1h';
SELECT msgq.now() - clock_timestamp() BETWEEN interval '59 min 59 s' AND interval '1 h 1 s' AS one_hour_ahead;
SET msgq.clock_offset = '14d';
SELECT msgq.now() - clock_timestamp() BETWEEN interval '14 days' - interval '1 s'
										  AND interval '14 days' + interval '1 s' AS two_weeks_ahead;
SET msgq.clock_offset = '31s';
SELECT msgq.now() - clock_timestamp() BETWEEN interval '30 s' AND interval '32 s' AS thirty_one_seconds_ahead;
-- msgq.now() is the time of the call, not of the transaction
BEGIN;
SELECT msgq.now() AS first_now \gset
SELECT pg_sleep(0.01);
SELECT msgq.now() > :'first_now'::timestamptz AS moves_within_transaction;
COMMIT;
-- SET LOCAL lasts for its transaction
RESET msgq.clock_offset;
BEGIN;
SET LOCAL msgq.clock_offset = '1h';
SELECT msgq.now() - clock_timestamp() > interval '59 min' AS ahead_in_transaction;
COMMIT;
SHOW msgq.clock_offset;
SELECT abs(extract(epoch FROM msgq.now() - clock_timestamp())) < 1 AS back_to_now;

--
-- msgq.clock_frozen: the clock stops at the real time it is turned on, and
-- only msgq.clock_offset moves it, however long statements take
--
SHOW msgq.clock_frozen;
SET msgq.clock_frozen = on;
SELECT msgq.now() AS frozen_at \gset
SELECT abs(extract(epoch FROM :'frozen_at'::timestamptz - clock_timestamp())) < 1 AS stopped_near_now;
SELECT pg_sleep(0.05);
SELECT msgq.now() = :'frozen_at'::timestamptz AS stopped;
SET msgq.clock_offset = '90s';
SELECT msgq.now() - :'frozen_at'::timestamptz AS moved_by_offset;
-- turning it on again, a transaction's end, a reload: it stays where it stopped
SET msgq.clock_frozen = on;
BEGIN;
SET LOCAL msgq.clock_frozen = on;
COMMIT;
SELECT pg_reload_conf();
SELECT msgq.now() - :'frozen_at'::timestamptz AS still_moved_by_offset;
-- time rules run on it: a 5 s delay ends at exactly 5 s
SELECT msgq.create_queue('guc_frozen') IS NOT NULL AS created;
SELECT count(*) AS sent FROM msgq.send_message('guc_frozen', 'x', delay_seconds => 5);
SELECT count(*) AS received_at_0s FROM msgq.receive_message('guc_frozen');
SELECT pg_sleep(0.05);
SET msgq.clock_offset = '94999ms';
SELECT count(*) AS received_at_4999ms FROM msgq.receive_message('guc_frozen');
SET msgq.clock_offset = '95s';
SELECT count(*) AS received_at_5s FROM msgq.receive_message('guc_frozen');
-- a long poll could never end: refused, on queues and on shards
SELECT msgq_test.err($$SELECT * FROM msgq.receive_message('guc_frozen', wait_time_seconds => 1)$$);
SELECT count(*) AS no_wait FROM msgq.receive_message('guc_frozen', wait_time_seconds => 0);
SELECT msgq.create_stream('guc_frozen', 1);
SELECT msgq.register_stream_consumer('guc_frozen', 'c1') IS NOT NULL AS registered;
SELECT msgq_test.err($$SELECT * FROM msgq.subscribe_to_shard('guc_frozen', 'c1', 'shardId-000000000000')$$);
SELECT count(*) AS no_wait FROM msgq.subscribe_to_shard('guc_frozen', 'c1', 'shardId-000000000000',
	wait_time_seconds => 0);
SELECT msgq.delete_stream('guc_frozen');
SELECT msgq.delete_queue('guc_frozen');
-- off: the clock runs again from real time
RESET msgq.clock_frozen;
RESET msgq.clock_offset;
SELECT abs(extract(epoch FROM msgq.now() - clock_timestamp())) < 1 AS runs_again;
BEGIN;
SELECT msgq.now() AS first_now \gset
SELECT pg_sleep(0.01);
SELECT msgq.now() > :'first_now'::timestamptz AS moves_again;
COMMIT;

--
-- Only superusers may move the clock
--
CREATE ROLE regress_msgq_guc;
SET ROLE regress_msgq_guc;
SHOW msgq.clock_offset;
SELECT msgq_test.err($$SET msgq.clock_offset = '1s'$$);
SELECT msgq_test.err($$SET msgq.clock_frozen = on$$);
SELECT msgq_test.err($$SELECT set_config('msgq.clock_offset', '1000', false)$$);
SELECT msgq_test.err($$SET msgq.wait_recheck_interval = '1s'$$);
SHOW msgq.clock_offset;
RESET ROLE;
DROP ROLE regress_msgq_guc;
