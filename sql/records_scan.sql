--
-- records_scan: get_records in FROM is read by a custom scan that returns
-- its rows as it fetches them (src/records_scan.c), not by a function scan
-- that makes them all first.  Every answer is the function's: the same
-- rows, columns, errors, metrics and privileges, whether msgq.records_scan
-- is on (the default) or off.  The planner keeps the function scan for
-- WITH ORDINALITY, ROWS FROM, LATERAL arguments and whole-row uses.
-- Stream names start with "rs_".
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

-- the plan's node that reads get_records
CREATE FUNCTION pg_temp.scan_node(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		IF l ~ '(Custom Scan|Function Scan)' THEN
			RETURN substring(l FROM '(Custom Scan \([^)]*\)|Function Scan on [a-z_]+)');
		END IF;
	END LOOP;
	RETURN NULL;
END $$;

-- every column of a read as text, with the scan on and then off: are the
-- two answers the same, and how many rows has each
CREATE FUNCTION pg_temp.both(q text) RETURNS TABLE (same boolean, rows_on bigint, rows_off bigint)
LANGUAGE plpgsql AS $$
DECLARE
	a_on text;
	a_off text;
BEGIN
	PERFORM set_config('msgq.records_scan', 'on', true);
	EXECUTE 'SELECT string_agg(x::text, '';''), count(*) FROM (' || q || ') x' INTO a_on, rows_on;
	PERFORM set_config('msgq.records_scan', 'off', true);
	EXECUTE 'SELECT string_agg(x::text, '';''), count(*) FROM (' || q || ') x' INTO a_off, rows_off;
	PERFORM set_config('msgq.records_scan', 'on', true);
	same := a_on IS NOT DISTINCT FROM a_off;
	RETURN NEXT;
END $$;

SELECT msgq.create_stream('rs_a', 1);
SELECT count(*) AS put FROM generate_series(1, 25) g,
	LATERAL msgq.put_record('rs_a', 'k' || g, convert_to('r' || g, 'UTF8'));
-- sequence numbers are shared by all streams: the one before rs_a's first
SELECT min(sequence_number) - 1 AS s0
  FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON')) \gset

--
-- Which node reads it
--
SHOW msgq.records_scan;
SELECT pg_temp.scan_node($$SELECT * FROM msgq.get_records('x', 5)$$) AS plain;
SELECT pg_temp.scan_node($$SELECT data FROM msgq.get_records('x') r WHERE r.partition_key = 'k1'$$) AS filtered;
SELECT pg_temp.scan_node($$SELECT count(*) FROM msgq.get_records(shard_iterator => 'x', record_limit => 3)$$) AS named;
SELECT pg_temp.scan_node($$SELECT * FROM msgq.get_records('x') WITH ORDINALITY$$) AS ordinality;
SELECT pg_temp.scan_node($$SELECT * FROM ROWS FROM (msgq.get_records('x'), generate_series(1, 2))$$) AS rows_from;
SELECT pg_temp.scan_node($$SELECT r FROM msgq.get_records('x') r$$) AS whole_row;
SELECT pg_temp.scan_node($$SELECT * FROM msgq.get_records('x') r WHERE r IS NOT NULL$$) AS whole_row_qual;
CREATE TEMP TABLE rs_its (it text);
SELECT pg_temp.scan_node($$SELECT * FROM rs_its v, LATERAL msgq.get_records(v.it)$$) AS lateral;
-- a one-row VALUES list is folded into the call: no longer LATERAL
SELECT pg_temp.scan_node($$SELECT * FROM (VALUES ('x')) v(it), LATERAL msgq.get_records(v.it)$$) AS values_folded;
SET msgq.records_scan = off;
SELECT pg_temp.scan_node($$SELECT * FROM msgq.get_records('x', 5)$$) AS scan_off;
RESET msgq.records_scan;
-- a function altered to run as its owner, or to be strict, is left to fmgr
BEGIN;
ALTER FUNCTION msgq.get_records(text, integer) SECURITY DEFINER;
SELECT pg_temp.scan_node($$SELECT * FROM msgq.get_records('x', 5)$$) AS security_definer;
ROLLBACK;
BEGIN;
ALTER FUNCTION msgq.get_records(text, integer) STRICT;
SELECT pg_temp.scan_node($$SELECT * FROM msgq.get_records('x', 5)$$) AS strict;
SELECT count(*) AS strict_null FROM msgq.get_records(NULL);
ROLLBACK;
SELECT pg_temp.scan_node($$SELECT * FROM msgq.get_records('x', 5)$$) AS plain_again;

--
-- The same answers, on and off
--
-- every column, from the start, a few at a time and all
SELECT * FROM pg_temp.both($$SELECT * FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'))$$);
SELECT * FROM pg_temp.both($$SELECT * FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 7)$$);
SELECT sequence_number - :s0 AS n, partition_key, convert_from(data, 'UTF8') AS data,
	   next_shard_iterator IS NOT NULL AS has_next, millis_behind_latest, child_shards
  FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 3);
-- nothing to read: one row, with the next iterator only
SELECT sequence_number, data, next_shard_iterator IS NOT NULL AS has_next, millis_behind_latest
  FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'LATEST'));
SELECT * FROM pg_temp.both($$SELECT * FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'LATEST'))$$);
-- conditions, order, aggregates and LIMIT over the scan
SELECT partition_key FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'))
 WHERE convert_from(data, 'UTF8') LIKE 'r1%' ORDER BY sequence_number DESC;
SELECT count(*), min(sequence_number) - :s0 AS first, max(sequence_number) - :s0 AS last,
	   sum(octet_length(data))
  FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 20);
SELECT partition_key FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON')) LIMIT 2;
-- the iterator from a subquery (an init plan) and from the next iterator
SELECT string_agg(partition_key, ',' ORDER BY sequence_number) AS second_page
  FROM msgq.get_records((SELECT max(next_shard_iterator)
						   FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 20)));

--
-- Records across slices: sealed by the maintenance cycle (test clock)
--
SELECT msgq.create_stream('rs_sl', 1);
SELECT count(*) FROM generate_series(1, 3) g, LATERAL msgq.put_record('rs_sl', 'a' || g, '\x01');
SET msgq.clock_offset = '2h';
SELECT msgq.run_maintenance() IS NOT NULL AS ran;
SELECT count(*) FROM generate_series(1, 3) g, LATERAL msgq.put_record('rs_sl', 'b' || g, '\x02');
SET msgq.clock_offset = '4h';
SELECT msgq.run_maintenance() IS NOT NULL AS ran;
SELECT count(*) FROM generate_series(1, 3) g, LATERAL msgq.put_record('rs_sl', 'c' || g, '\x03');
SELECT count(*) AS slices FROM msgq.stream_slices WHERE stream_name = 'rs_sl';
SELECT string_agg(partition_key, ',' ORDER BY sequence_number) AS keys
  FROM msgq.get_records(msgq.get_shard_iterator('rs_sl', '0', 'TRIM_HORIZON'));
SELECT * FROM pg_temp.both($$SELECT * FROM msgq.get_records(msgq.get_shard_iterator('rs_sl', '0', 'TRIM_HORIZON'), 5)$$);
RESET msgq.clock_offset;

--
-- Read again: without new arguments the same rows (one read, one call
-- counted), with new ones a new read
--
SELECT get_records_calls AS calls_before FROM msgq.stream_metrics WHERE stream_name = 'rs_a' \gset
-- the scan inside a nested loop, over and over
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
EXPLAIN (COSTS OFF) SELECT g, count(*) AS n
  FROM generate_series(1, 3) g,
	   msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 4) r
 GROUP BY g ORDER BY g;
SELECT g, count(*) AS n
  FROM generate_series(1, 3) g,
	   msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 4) r
 GROUP BY g ORDER BY g;
EXPLAIN (COSTS OFF) SELECT x.partition_key AS x, y.partition_key AS y
  FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 2) x,
	   msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'AT_SEQUENCE_NUMBER', :s0 + 24), 5) y
 ORDER BY 1, 2;
SELECT x.partition_key AS x, y.partition_key AS y
  FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 2) x,
	   msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'AT_SEQUENCE_NUMBER', :s0 + 24), 5) y
 ORDER BY 1, 2;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;
SELECT get_records_calls - :calls_before AS calls FROM msgq.stream_metrics WHERE stream_name = 'rs_a';
-- a correlated subquery: each outer row its own read
INSERT INTO rs_its SELECT msgq.get_shard_iterator('rs_a', '0', 'AT_SEQUENCE_NUMBER', :s0 + 20);
SELECT (SELECT count(*) FROM rs_its v, LATERAL msgq.get_records(v.it, 3)) AS lateral_read;
SELECT t.n, (SELECT string_agg(partition_key, ',' ORDER BY sequence_number)
			   FROM msgq.get_records(t.it, t.n)) AS keys
  FROM (SELECT n, msgq.get_shard_iterator('rs_a', '0', 'AT_SEQUENCE_NUMBER', :s0 + n * 2) AS it
		  FROM generate_series(1, 3) n) t
 ORDER BY t.n;
-- a prepared statement, past its custom plans into the generic one
PREPARE rs_page(text, int) AS
	SELECT count(*) AS n, min(partition_key) AS first FROM msgq.get_records($1, $2);
SELECT msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON') AS it \gset
EXECUTE rs_page(:'it', 1);
EXECUTE rs_page(:'it', 2);
EXECUTE rs_page(:'it', 3);
EXECUTE rs_page(:'it', 4);
EXECUTE rs_page(:'it', 5);
EXECUTE rs_page(:'it', 6);
EXECUTE rs_page(:'it', 25);
DEALLOCATE rs_page;
-- a scrollable cursor (the planner puts a Material node over the scan)
BEGIN;
DECLARE rs_c SCROLL CURSOR FOR
	SELECT partition_key FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 4);
FETCH 3 FROM rs_c;
FETCH BACKWARD 2 FROM rs_c;
FETCH ALL FROM rs_c;
COMMIT;
-- PL/pgSQL pages through the stream
DO $$
DECLARE
	it text := msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON');
	r record;
	n int := 0;
	pages int := 0;
BEGIN
	WHILE it IS NOT NULL AND pages < 10 LOOP
		pages := pages + 1;
		FOR r IN SELECT * FROM msgq.get_records(it, 10) LOOP
			IF r.sequence_number IS NOT NULL THEN
				n := n + 1;
			END IF;
			it := r.next_shard_iterator;
		END LOOP;
		EXIT WHEN r.sequence_number IS NULL;
	END LOOP;
	RAISE NOTICE 'records %, pages %', n, pages;
END $$;

--
-- Scans that stop half-way: a query that fails after some rows, a cursor
-- left open (its page pinned) while other reads run and fail, a savepoint
-- rolled back; later reads are whole, and nothing is left pinned or open
-- (a leak would be reported at commit)
--
SELECT 1 / (octet_length(data) - 3)
  FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'));
BEGIN;
DECLARE rs_open CURSOR FOR
	SELECT partition_key FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'));
FETCH 2 FROM rs_open;
SELECT count(*) AS meanwhile FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'));
SAVEPOINT s;
SELECT 1 / (octet_length(data) - 3)
  FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'));
ROLLBACK TO s;
FETCH 3 FROM rs_open;
SELECT count(*) AS again FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'));
COMMIT;
BEGIN;
DECLARE rs_left CURSOR FOR
	SELECT partition_key FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'));
FETCH 1 FROM rs_left;
COMMIT;
SELECT count(*) AS after FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'));

--
-- Each read counts as a call of the function (track_functions = all)
--
SET track_functions = 'all';
SELECT coalesce((SELECT calls FROM pg_stat_user_functions
				  WHERE funcid = 'msgq.get_records(text, integer)'::regprocedure), 0) AS calls0 \gset
SELECT count(*) AS scan FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 2);
SET msgq.records_scan = off;
SELECT count(*) AS function FROM msgq.get_records(msgq.get_shard_iterator('rs_a', '0', 'TRIM_HORIZON'), 2);
RESET msgq.records_scan;
RESET track_functions;
SELECT pg_stat_force_next_flush();
SELECT calls - :calls0 AS calls FROM pg_stat_user_functions
 WHERE funcid = 'msgq.get_records(text, integer)'::regprocedure;

--
-- Errors: the function's
--
SELECT msgq_test.err($$SELECT * FROM msgq.get_records(NULL)$$) AS null_iterator;
SELECT msgq_test.err($$SELECT * FROM msgq.get_records('not an iterator')$$) AS bad_iterator;
SELECT msgq_test.err(format($$SELECT * FROM msgq.get_records(%L, 0)$$, :'it')) AS limit_0;
SELECT msgq_test.err(format($$SELECT * FROM msgq.get_records(%L, 10001)$$, :'it')) AS limit_10001;
SELECT msgq_test.err(format($$SELECT * FROM msgq.get_records(%L, NULL)$$, :'it')) AS limit_null;
SET msgq.records_scan = off;
SELECT msgq_test.err($$SELECT * FROM msgq.get_records(NULL)$$) AS null_iterator_off;
SELECT msgq_test.err(format($$SELECT * FROM msgq.get_records(%L, 0)$$, :'it')) AS limit_0_off;
RESET msgq.records_scan;

--
-- Privileges: EXECUTE on the function, and the stream's own checks
--
CREATE ROLE rs_stranger;
GRANT USAGE ON SCHEMA msgq, msgq_test TO rs_stranger;
SET ROLE rs_stranger;
SELECT msgq_test.err(format($$SELECT * FROM msgq.get_records(%L)$$, :'it')) AS stranger;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION msgq.get_records(text, integer) FROM PUBLIC;
SET ROLE rs_stranger;
SELECT msgq_test.err(format($$SELECT * FROM msgq.get_records(%L)$$, :'it')) AS no_execute;
SET msgq.records_scan = off;
SELECT msgq_test.err(format($$SELECT * FROM msgq.get_records(%L)$$, :'it')) AS no_execute_off;
RESET msgq.records_scan;
RESET ROLE;
GRANT EXECUTE ON FUNCTION msgq.get_records(text, integer) TO PUBLIC;
REVOKE USAGE ON SCHEMA msgq, msgq_test FROM rs_stranger;
DROP ROLE rs_stranger;

SELECT msgq.delete_stream('rs_a');
SELECT msgq.delete_stream('rs_sl');
