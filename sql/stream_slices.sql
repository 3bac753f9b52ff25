--
-- stream_slices: a stream's records live in time slices, one table each.
-- The maintenance cycle (msgq.run_maintenance(), msgq's test clock) seals
-- the current slice after 1/24 of the retention period when it holds a
-- record, and drops a sealed slice whole once everything in it is past
-- retention.  Readers cross slices in sequence order; expired records are
-- hidden before their slice is dropped; checkpoints, AT_TIMESTAMP and
-- MillisBehindLatest work across slices; delete_stream and DROP EXTENSION
-- take the tables along.  Stream names start with "sl_".
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
CREATE SCHEMA IF NOT EXISTS msgq_test;
RESET client_min_messages;
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

-- the slices of a stream, numbered from 1 in creation order
CREATE FUNCTION pg_temp.slices(stream text)
RETURNS TABLE (n bigint, state text, records bigint, seqs text, table_exists boolean)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	c bigint;
	s text;
BEGIN
	n := 0;
	FOR r IN SELECT * FROM msgq.stream_slices WHERE stream_name = stream ORDER BY slice_id LOOP
		n := n + 1;
		state := r.state;
		EXECUTE format('SELECT count(*), string_agg(convert_from(data, ''UTF8''), '','' ORDER BY seq) FROM %s',
					   r.table_name) INTO c, s;
		records := c;
		seqs := coalesce(s, '');
		table_exists := to_regclass(r.table_name) IS NOT NULL;
		RETURN NEXT;
	END LOOP;
END $$;
-- every record get_records returns from TRIM_HORIZON, by data
CREATE FUNCTION pg_temp.all_records(stream text, lim int DEFAULT 10000) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number), '(none)')
	  FROM msgq.get_records(msgq.get_shard_iterator(stream, '0', 'TRIM_HORIZON'), lim)
$$;
CREATE FUNCTION pg_temp.put(stream text, d text) RETURNS numeric
LANGUAGE sql AS $$
	SELECT sequence_number FROM msgq.put_record(stream, 'k', convert_to(d, 'UTF8'))
$$;

--
-- a new stream has one current slice; puts go there
--
SELECT msgq.create_stream('sl_a', 1);
SELECT * FROM pg_temp.slices('sl_a');
SELECT pg_temp.put('sl_a', 'a1') IS NOT NULL AS put, pg_temp.put('sl_a', 'a2') IS NOT NULL AS put;
SELECT * FROM pg_temp.slices('sl_a');
-- PUBLIC has no access to a slice table
SELECT has_table_privilege('public', (SELECT table_name FROM msgq.stream_slices
	WHERE stream_name = 'sl_a'), 'SELECT') AS public_can_read;

--
-- sealing: 24 h retention gives 1-hour slices
--
SET msgq.clock_offset = '59min';
SELECT msgq.run_maintenance();
SELECT n, state FROM pg_temp.slices('sl_a') AS not_yet_due;
SET msgq.clock_offset = '61min';
SELECT msgq.run_maintenance();
SELECT * FROM pg_temp.slices('sl_a');
-- the sealed slice ends at the sequence's last value, the new one starts after
SELECT (SELECT end_seq FROM msgq.stream_slices WHERE stream_name = 'sl_a' AND state = 'sealed')
	 = (SELECT start_seq FROM msgq.stream_slices WHERE stream_name = 'sl_a' AND state = 'current') - 1
	   AS contiguous;
SELECT pg_temp.put('sl_a', 'b1') IS NOT NULL AS put, pg_temp.put('sl_a', 'b2') IS NOT NULL AS put;
SELECT * FROM pg_temp.slices('sl_a');

-- a slice without records is not sealed: it starts its hour again
SELECT msgq.create_stream('sl_idle', 1);
SET msgq.clock_offset = '3h';
SELECT msgq.run_maintenance();
SELECT n, state FROM pg_temp.slices('sl_idle');
SELECT opened_at > now() + interval '179 minutes' AS restarted
  FROM msgq.stream_slices WHERE stream_name = 'sl_idle';

-- the same cycle sealed the second slice of sl_a (due at 2 h 1 min); the
-- third takes the next put, at 3 h 20 min
SET msgq.clock_offset = '200min';
SELECT pg_temp.put('sl_a', 'c1') IS NOT NULL AS put;
SELECT * FROM pg_temp.slices('sl_a');

--
-- reading crosses slices in sequence order, with paging at any limit
--
SELECT pg_temp.all_records('sl_a') AS all_records;
SELECT string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number) AS first_three,
	   max(millis_behind_latest) > 0 AS behind
  FROM msgq.get_records(msgq.get_shard_iterator('sl_a', '0', 'TRIM_HORIZON'), 3);
-- page through one record at a time: no record skipped or repeated
CREATE FUNCTION pg_temp.paged(stream text, page int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	it text := msgq.get_shard_iterator(stream, '0', 'TRIM_HORIZON');
	got text := '';
	r record;
	n int;
BEGIN
	LOOP
		n := 0;
		FOR r IN SELECT * FROM msgq.get_records(it, page) LOOP
			IF r.sequence_number IS NOT NULL THEN
				got := got || convert_from(r.data, 'UTF8') || ' ';
				n := n + 1;
			END IF;
			it := r.next_shard_iterator;
		END LOOP;
		EXIT WHEN n = 0;
	END LOOP;
	RETURN got;
END $$;
SELECT pg_temp.paged('sl_a', 1) AS by_one, pg_temp.paged('sl_a', 2) AS by_two;
-- a transaction reads its own puts, in READ COMMITTED and REPEATABLE READ,
-- and in the same statement
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.all_records('sl_a') AS rr_before;
SELECT pg_temp.put('sl_a', 'own') IS NOT NULL AS put;
SELECT pg_temp.all_records('sl_a') AS rr_own_put;
ROLLBACK;
BEGIN;
SELECT pg_temp.put('sl_a', 'own') IS NOT NULL AS put, pg_temp.all_records('sl_a') AS rc_own_put_same_statement;
ROLLBACK;
SELECT pg_temp.all_records('sl_a') AS after_rollback;
-- AT_TIMESTAMP finds the first record at or after the time (b1, put at
-- 1 h 1 min), in a later slice
SELECT string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number) AS from_1h
  FROM msgq.get_records(msgq.get_shard_iterator('sl_a', '0', 'AT_TIMESTAMP',
		at_timestamp => now() + interval '60 minutes'));
-- MillisBehindLatest: from the last record returned (b2, put at 1 h 1 min)
-- to the newest (c1, at 3 h 20 min): 139 minutes
SELECT millis_behind_latest BETWEEN 8340000 AND 8400000 AS behind_139_min
  FROM msgq.get_records(msgq.get_shard_iterator('sl_a', '0', 'TRIM_HORIZON'), 4) LIMIT 1;
-- a checkpoint on a record of a sealed slice
SELECT msgq.checkpoint('sl_a', 'g', '0',
	(SELECT sequence_number FROM msgq.get_records(msgq.get_shard_iterator('sl_a', '0', 'TRIM_HORIZON'), 2)
	  ORDER BY sequence_number DESC LIMIT 1));
SELECT string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number) AS after_checkpoint
  FROM msgq.get_records(msgq.get_shard_iterator('sl_a', '0', 'AFTER_CHECKPOINT', consumer_group => 'g'));

--
-- retention: records of the first slice (put at 0 h) expire at 24 h and
-- are hidden at once; the slice (sealed at 1 h 1 min) is dropped once that
-- is 24 h old as well, and the second when its end is
--
SET msgq.clock_offset = '1441min';	-- 24 h 1 min
SELECT pg_temp.all_records('sl_a') AS after_24h;
SELECT msgq.run_maintenance();
SELECT n, state, records FROM pg_temp.slices('sl_a') AS still_there;
SET msgq.clock_offset = '1502min';	-- 25 h 2 min
SELECT msgq.run_maintenance();
SELECT * FROM pg_temp.slices('sl_a') AS first_dropped;
SELECT pg_temp.all_records('sl_a') AS after_drop;
-- a checkpoint on a record whose slice was dropped is still taken
SELECT msgq.checkpoint('sl_a', 'late', '0',
	(SELECT start_seq FROM msgq.stream_slices WHERE stream_name = 'sl_a' ORDER BY slice_id LIMIT 1) - 1)
	AS late_checkpoint;
SET msgq.clock_offset = '1621min';	-- 27 h 1 min: the second slice (sealed at 3 h) has expired
SELECT msgq.run_maintenance();
SELECT * FROM pg_temp.slices('sl_a') AS second_dropped;
SELECT pg_temp.all_records('sl_a') AS only_c1;

--
-- a longer retention gives wider slices; a shorter one hides and drops at once
--
SELECT msgq.create_stream('sl_week', 1);
SELECT msgq.increase_stream_retention_period('sl_week', 168);	-- 7 h slices
SELECT pg_temp.put('sl_week', 'w1') IS NOT NULL AS put;
SET msgq.clock_offset = '1981min';	-- 6 h later
SELECT msgq.run_maintenance();
SELECT n, state FROM pg_temp.slices('sl_week') AS under_7h;
SET msgq.clock_offset = '2042min';	-- 7 h 1 min
SELECT msgq.run_maintenance();
SELECT n, state FROM pg_temp.slices('sl_week') AS after_7h;
SELECT pg_temp.put('sl_week', 'w2') IS NOT NULL AS put;
SET msgq.clock_offset = '3483min';	-- 24 h 1 min after w2: both past 24 h, not past 168 h
SELECT msgq.run_maintenance();
SELECT n, state FROM pg_temp.slices('sl_week') AS kept_under_168h;
SELECT msgq.decrease_stream_retention_period('sl_week', 24);
SELECT pg_temp.all_records('sl_week') AS after_decrease;
SELECT msgq.run_maintenance();
SELECT n, state, records FROM pg_temp.slices('sl_week') AS dropped_after_decrease;

--
-- a closed shard expires with its records: list_shards leaves it out once
-- its closing time is past retention (its records arrived before it closed)
--
RESET msgq.clock_offset;
SELECT msgq.create_stream('sl_split', 1);
SELECT pg_temp.put('sl_split', 'before split') IS NOT NULL AS put;
SELECT msgq.split_shard('sl_split', '0', '170141183460469231731687303715884105728');
SELECT string_agg(shard_id, ',' ORDER BY shard_id) AS shards FROM msgq.list_shards('sl_split');
SET msgq.clock_offset = '23h';
SELECT string_agg(shard_id, ',' ORDER BY shard_id) AS shards_at_23h FROM msgq.list_shards('sl_split');
SET msgq.clock_offset = '1441min';
SELECT string_agg(shard_id, ',' ORDER BY shard_id) AS shards_at_24h FROM msgq.list_shards('sl_split');
SELECT string_agg(shard_id, ',' ORDER BY shard_id) AS trim_horizon_at_24h
  FROM msgq.list_shards('sl_split', shard_filter_type => 'AT_TRIM_HORIZON');
SELECT msgq.delete_stream('sl_split');
SET msgq.clock_offset = '3483min';

--
-- delete_stream drops every slice table
--
SELECT count(*) AS sl_a_tables FROM msgq.stream_slices WHERE stream_name = 'sl_a';
SELECT array_agg(table_name) AS t FROM msgq.stream_slices WHERE stream_name = 'sl_a' \gset
SELECT msgq.delete_stream('sl_a');
SELECT count(*) AS left_slices FROM msgq.stream_slice s
 WHERE NOT EXISTS (SELECT 1 FROM msgq.stream WHERE stream_id = s.stream_id);
SELECT bool_and(to_regclass(t) IS NULL) AS tables_gone FROM unnest(:'t'::text[]) AS t;
RESET msgq.clock_offset;

--
-- DROP EXTENSION takes the slice tables along; a new CREATE starts afresh
--
SELECT count(*) > 0 AS slices_before FROM pg_class
 WHERE relnamespace = 'msgq'::regnamespace AND relname ~ '^stream_slice_[0-9]+$';
SELECT count(*) > 0 AS shard_counters_before FROM msgq._stream_shard_metrics();
DROP EXTENSION msgq;
SELECT count(*) AS slice_tables_after_drop FROM pg_class WHERE relname ~ '^stream_slice_[0-9]+$';
CREATE EXTENSION msgq;
-- the new installation forgets the old streams' counters (stream ids restart)
SELECT count(*) AS shard_counters_after_create FROM msgq._stream_shard_metrics();
SELECT msgq.create_stream('sl_new', 1);
SELECT pg_temp.put('sl_new', 'n1') IS NOT NULL AS put;
SELECT pg_temp.all_records('sl_new') AS after_recreate;
-- its counters are its own, not those of the dropped installation's stream
-- that had the same id
SELECT sum(incoming_records) AS sl_new_incoming_records FROM msgq.stream_metrics
 WHERE stream_name = 'sl_new';
SELECT msgq.delete_stream('sl_new');
