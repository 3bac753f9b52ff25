--
-- guc: msgq's settings, the reserved "msgq." prefix, and msgq's clock
-- (msgq.now() = clock_timestamp() + msgq.clock_offset).
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
-- Only superusers may move the clock
--
CREATE ROLE regress_msgq_guc;
SET ROLE regress_msgq_guc;
SHOW msgq.clock_offset;
SELECT msgq_test.err($$SET msgq.clock_offset = '1s'$$);
SELECT msgq_test.err($$SELECT set_config('msgq.clock_offset', '1000', false)$$);
SELECT msgq_test.err($$SET msgq.wait_recheck_interval = '1s'$$);
SHOW msgq.clock_offset;
RESET ROLE;
DROP ROLE regress_msgq_guc;
