--
-- stream_metrics: per-shard counters (msgq.stream_metrics), consumer group
-- lag (msgq.consumer_group_lag) and the opt-in per-shard limits
-- (msgq.enforce_shard_limits): 1,000 records or 1 MiB written and 5
-- get_records calls or 2 MiB read per shard and second, refused with
-- ProvisionedThroughputExceededException (MQ023) by put_record and
-- get_records, and reported per entry by put_records.  A window is one
-- second of msgq's clock at the start of the client's statement, so each
-- case below runs in one statement, and msgq.clock_offset moves 100 s
-- before each so that it starts a new window.  Stream names start with
-- "sm_".
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

-- n put_record calls of `bytes` bytes each, in one statement: how many
-- succeeded, and the distinct errors of the others
CREATE FUNCTION pg_temp.puts(stream text, n int, bytes int DEFAULT 1,
	hash_key text DEFAULT '0')
RETURNS TABLE (ok int, refused int, errors text)
LANGUAGE plpgsql AS $$
DECLARE
	i int;
	e text;
	errs text[] := '{}';
BEGIN
	ok := 0;
	refused := 0;
	FOR i IN 1 .. n LOOP
		e := msgq_test.err(format('SELECT msgq.put_record(%L, ''k'', %L::bytea, explicit_hash_key => %L)',
								  stream, '\x' || repeat('00', bytes), hash_key));
		IF e = 'ok' THEN
			ok := ok + 1;
		ELSE
			refused := refused + 1;
			IF NOT e = ANY (errs) THEN
				errs := errs || e;
			END IF;
		END IF;
	END LOOP;
	errors := array_to_string(errs, '; ');
	RETURN NEXT;
END $$;
-- n get_records calls on shard 0 from TRIM_HORIZON, in one statement
CREATE FUNCTION pg_temp.reads(stream text, n int)
RETURNS TABLE (ok int, refused int, errors text)
LANGUAGE plpgsql AS $$
DECLARE
	i int;
	e text;
	errs text[] := '{}';
BEGIN
	ok := 0;
	refused := 0;
	FOR i IN 1 .. n LOOP
		e := msgq_test.err(format('SELECT count(*) FROM msgq.get_records(msgq.get_shard_iterator(%L, ''0'', ''TRIM_HORIZON''))',
								  stream));
		IF e = 'ok' THEN
			ok := ok + 1;
		ELSE
			refused := refused + 1;
			IF NOT e = ANY (errs) THEN
				errs := errs || e;
			END IF;
		END IF;
	END LOOP;
	errors := array_to_string(errs, '; ');
	RETURN NEXT;
END $$;

--
-- without enforcement nothing is refused, and everything is counted
--
SELECT msgq.create_stream('sm_free', 1);
SELECT * FROM pg_temp.puts('sm_free', 1100);
SELECT * FROM pg_temp.reads('sm_free', 7);
SELECT shard_id, open, incoming_records, incoming_bytes, write_provisioned_throughput_exceeded,
	   get_records_calls, outgoing_records, outgoing_bytes, read_provisioned_throughput_exceeded
  FROM msgq.stream_metrics WHERE stream_name = 'sm_free';
SELECT (msgq.describe_stream_summary('sm_free'))->'EnforceShardLimits' AS enforced;

--
-- enforced: 1,000 records per shard and second
--
SELECT msgq.create_stream('sm_lim', 2);
SELECT msgq.enforce_shard_limits('sm_lim');
SELECT (msgq.describe_stream_summary('sm_lim'))->'EnforceShardLimits' AS enforced;
SET msgq.clock_offset = '100s';
SELECT * FROM pg_temp.puts('sm_lim', 1005);
SET msgq.clock_offset = '200s';
-- the other shard has its own budget (one statement: both shards)
SELECT (pg_temp.puts('sm_lim', 1000, 1, '0')).ok AS shard0_ok,
	   (pg_temp.puts('sm_lim', 1000, 1, '340282366920938463463374607431768211455')).ok AS shard1_ok;
-- 1 MiB of data and keys per second: 600 kB fits once
SET msgq.clock_offset = '300s';
SELECT * FROM pg_temp.puts('sm_lim', 2, 600000);
-- put_records reports each refused entry and writes the others, in order
SET msgq.clock_offset = '400s';
SELECT r.ord, r.shard_id, r.sequence_number IS NOT NULL AS has_seq, r.error_code, r.error_message
  FROM msgq.put_records('sm_lim', ARRAY['a', 'a', 'a'],
		ARRAY[decode(repeat('00', 600000), 'hex'), decode(repeat('00', 600000), 'hex'), '\x01'::bytea])
	   WITH ORDINALITY AS r(shard_id, sequence_number, error_code, error_message, ord)
 ORDER BY r.ord;
-- 500 + 500 + 500 entries to one shard in one statement: the third call
-- is refused whole
SELECT msgq.create_stream('sm_one', 1);
SELECT msgq.enforce_shard_limits('sm_one');
SET msgq.clock_offset = '500s';
SELECT count(*) FILTER (WHERE error_code IS NULL) AS written,
	   count(*) FILTER (WHERE error_code = 'ProvisionedThroughputExceededException') AS refused,
	   count(*) FILTER (WHERE error_code IS NOT NULL AND shard_id IS NULL AND sequence_number IS NULL) AS refused_without_shard
  FROM generate_series(1, 3) g,
	   LATERAL msgq.put_records('sm_one', ARRAY(SELECT 'k' || g || '.' || i FROM generate_series(1, 500) i),
								ARRAY(SELECT '\x00'::bytea FROM generate_series(1, 500))) AS r;

-- 5 get_records calls per shard and second
SET msgq.clock_offset = '600s';
SELECT * FROM pg_temp.reads('sm_one', 7);
-- 2 MiB read per shard and second: three 1,000,000-byte records
SELECT msgq.create_stream('sm_big', 1);
SELECT count(*) FROM msgq.put_records('sm_big', ARRAY['k', 'k', 'k'],
	ARRAY(SELECT decode(repeat('00', 1000000), 'hex') FROM generate_series(1, 3)));
SELECT msgq.enforce_shard_limits('sm_big', true);
SET msgq.clock_offset = '700s';
SELECT * FROM pg_temp.reads('sm_big', 2);

-- a read beyond 2 MiB borrows from the next seconds: 3 MB read at 1000 s
-- (3 MB at 2 MiB/s: 2 s) refuses reads at 1001 s; at 1002 s they work
-- again (and borrow again).  One statement moves the clock itself, so that
-- the seconds are exact.
CREATE FUNCTION pg_temp.reads_at(stream text, offsets text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	o text;
	e text;
	out text[] := '{}';
BEGIN
	FOREACH o IN ARRAY offsets LOOP
		PERFORM set_config('msgq.clock_offset', o, true);
		e := msgq_test.err(format('SELECT count(*) FROM msgq.get_records(msgq.get_shard_iterator(%L, ''0'', ''TRIM_HORIZON''))',
								  stream));
		out := out || (o || ': ' || CASE WHEN e = 'ok' THEN 'read' ELSE left(e, 5) END);
	END LOOP;
	RETURN array_to_string(out, ', ');
END $$;
SELECT pg_temp.reads_at('sm_big', '{1000s, 1001s, 1002s, 1003s}') AS big_reads;
-- 5 get_shard_iterator calls per shard and second
CREATE FUNCTION pg_temp.iterators(stream text, n int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	i int;
	out text[] := '{}';
BEGIN
	FOR i IN 1 .. n LOOP
		out := out || left(msgq_test.err(format('SELECT msgq.get_shard_iterator(%L, ''0'', ''LATEST'')', stream)), 5);
	END LOOP;
	RETURN array_to_string(out, ',');
END $$;
SET msgq.clock_offset = '1100s';
SELECT pg_temp.iterators('sm_one', 6) AS iterator_calls;

SELECT stream_name, shard_id, incoming_records, write_provisioned_throughput_exceeded AS write_refused,
	   get_records_calls, read_provisioned_throughput_exceeded AS read_refused
  FROM msgq.stream_metrics WHERE stream_name IN ('sm_lim', 'sm_one', 'sm_big')
 ORDER BY stream_name, shard_id;

-- turned off again
SELECT msgq.enforce_shard_limits('sm_lim', false);
SET msgq.clock_offset = '800s';
SELECT * FROM pg_temp.puts('sm_lim', 1005);
RESET msgq.clock_offset;
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('NULL', $$SELECT msgq.enforce_shard_limits('sm_lim', NULL)$$),
	('no stream', $$SELECT msgq.enforce_shard_limits('sm_nope')$$)
	) AS t(f, s);
-- only the owner (or a superuser) may change it
CREATE ROLE regress_msgq_sm_other;
SET ROLE regress_msgq_sm_other;
SELECT msgq_test.err($$SELECT msgq.enforce_shard_limits('sm_lim', true)$$) AS other_role;
SELECT msgq_test.err($$SELECT count(*) FROM msgq.stream_metrics$$) AS other_role_metrics;
RESET ROLE;

--
-- enhanced fan-out: with limits enforced, a consumer's subscribe_to_shard
-- calls read at most 2 MiB per shard and second, a budget of its own that
-- neither other consumers nor get_records use.  A call past the budget
-- returns at least one record and borrows from the next seconds; a call
-- with nothing left returns no record, stays where it is and says how far
-- behind it is.  Five records of 1,000,000 bytes (and a 1-byte key).
--
-- subscribe_to_shard calls in one statement, the i-th at offsets[i] and
-- waiting waits[i] seconds (0 without waits): the records each returned
-- ("some" for a call that waited)
CREATE FUNCTION pg_temp.subs(stream text, consumer text, offsets text[], waits int[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	i int;
	n bigint;
	behind bigint;
	out text[] := '{}';
BEGIN
	FOR i IN 1 .. array_length(offsets, 1) LOOP
		PERFORM set_config('msgq.clock_offset', offsets[i], true);
		SELECT count(data), max(millis_behind_latest) INTO n, behind
		  FROM msgq.subscribe_to_shard(stream, consumer, '0', 'TRIM_HORIZON',
									   wait_time_seconds => coalesce(waits[i], 0));
		-- a wait ends in the next second or later, so how much it gets varies
		out := out || (offsets[i] || ': ' ||
					   CASE WHEN waits[i] > 0 AND n > 0 THEN 'some' ELSE n::text END ||
					   CASE WHEN n = 0 AND behind > 0 THEN ' (behind)' ELSE '' END);
	END LOOP;
	RETURN array_to_string(out, ', ');
END $$;
SELECT msgq.create_stream('sm_efo', 1);
SELECT count(msgq.register_stream_consumer('sm_efo', c)) AS consumers FROM unnest('{a,b,c,d,e}'::text[]) c;
SELECT count(*) AS put FROM msgq.put_records('sm_efo', ARRAY['k', 'k', 'k', 'k', 'k'],
	ARRAY(SELECT decode(repeat('00', 1000000), 'hex') FROM generate_series(1, 5)));
-- not enforced: one call returns all five
SELECT pg_temp.subs('sm_efo', 'a', '{1900s}') AS free;
SELECT msgq.enforce_shard_limits('sm_efo');
-- 2,000,002 bytes fit in 2000 s; the third record borrows; then nothing
-- is left in 2000 s.  In 2001 s 902,851 bytes are still owed: one record
-- fits, the last borrows again, and the next call finds no record
SELECT pg_temp.subs('sm_efo', 'b', '{2000s, 2000s, 2000s, 2001s, 2001s, 2001s, 2003s}') AS budget;
-- another consumer in the same second has its own budget, and get_records
-- still has the shard's
SELECT pg_temp.subs('sm_efo', 'c', '{2000s, 2000s, 2000s}') AS other_consumer;
SET msgq.clock_offset = '2000s';
SELECT count(*) AS get_records
  FROM msgq.get_records(msgq.get_shard_iterator('sm_efo', '0', 'TRIM_HORIZON'), 2);
-- a call that rolls back uses no budget (its records come again)
SET msgq.clock_offset = '3000s';
BEGIN;
SELECT pg_temp.subs('sm_efo', 'd', '{3000s, 3000s}') AS rolled_back;
ROLLBACK;
SELECT pg_temp.subs('sm_efo', 'd', '{3000s, 3000s, 3000s}') AS after_rollback;
-- a waiting call with nothing left waits for the next second's budget
SELECT pg_temp.subs('sm_efo', 'e', '{4000s, 4000s, 4000s}', '{0, 0, 5}') AS waited;
RESET msgq.clock_offset;
SELECT stream_name, outgoing_records, read_provisioned_throughput_exceeded AS read_refused
  FROM msgq.stream_metrics WHERE stream_name = 'sm_efo';

--
-- consumer group lag, on msgq's test clock: r1 at 0 s, r2 at 10 s, r3 at 25 s
--
SELECT msgq.create_stream('sm_lag', 1);
CREATE TEMP TABLE sm_seq (d text, s numeric);
INSERT INTO sm_seq SELECT 'r1', sequence_number FROM msgq.put_record('sm_lag', 'k', '\x01');
SET msgq.clock_offset = '10s';
INSERT INTO sm_seq SELECT 'r2', sequence_number FROM msgq.put_record('sm_lag', 'k', '\x02');
SET msgq.clock_offset = '25s';
INSERT INTO sm_seq SELECT 'r3', sequence_number FROM msgq.put_record('sm_lag', 'k', '\x03');
SELECT msgq.checkpoint('sm_lag', 'at_r1', '0', (SELECT s FROM sm_seq WHERE d = 'r1'));
SELECT msgq.checkpoint('sm_lag', 'at_r2', '0', (SELECT s FROM sm_seq WHERE d = 'r2'));
SELECT msgq.checkpoint('sm_lag', 'at_r3', '0', (SELECT s FROM sm_seq WHERE d = 'r3'));
SELECT consumer_group, shard_id, checkpoint_sequence_number = (SELECT s FROM sm_seq WHERE d = 'r' || right(consumer_group, 1)) AS at_checkpoint,
	   round(millis_behind_latest / 1000.0) AS seconds_behind
  FROM msgq.consumer_group_lag WHERE stream_name = 'sm_lag' ORDER BY consumer_group;
-- the same figure get_records gives after reading up to r1
SELECT round(max(millis_behind_latest) / 1000.0) AS get_records_seconds_behind
  FROM msgq.get_records(msgq.get_shard_iterator('sm_lag', '0', 'TRIM_HORIZON'), 1);
RESET msgq.clock_offset;

-- pg_monitor reads both views
CREATE ROLE regress_msgq_sm_monitor IN ROLE pg_monitor;
SET ROLE regress_msgq_sm_monitor;
SELECT count(*) > 0 AS monitor_reads_metrics FROM msgq.stream_metrics;
SELECT count(*) AS monitor_reads_lag FROM msgq.consumer_group_lag WHERE stream_name = 'sm_lag';
SELECT count(*) >= 0 AS monitor_reads_queue_metrics FROM msgq.queue_metrics;
RESET ROLE;

-- delete_stream forgets the counters
SELECT count(*) AS deleted FROM msgq.list_streams() AS s, LATERAL msgq.delete_stream(s) WHERE s LIKE 'sm\_%';
SELECT count(*) AS left_counters FROM msgq._stream_shard_metrics() m
 WHERE NOT EXISTS (SELECT 1 FROM msgq.stream s WHERE s.stream_id = m.stream_id);
DROP ROLE regress_msgq_sm_other;
DROP ROLE regress_msgq_sm_monitor;
