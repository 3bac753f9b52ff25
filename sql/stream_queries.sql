--
-- stream_queries: continuous windowed queries over streams
-- (src/analytics.c): create / describe / list / delete with every
-- attribute and error; tumbling windows by event time with allowed
-- lateness (late records counted into their window, too-late ones
-- dropped and counted); sliding windows; arrival-time windows on msgq's
-- test clock; a Stream destination; a query that fails keeps its window.
-- msgq.run_maintenance() runs the windows, with the worker off.
-- Names start with "sq_", roles with "regress_msgq_sq_".
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
SET timezone = 'UTC';

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

SELECT msgq.create_stream('sq_clicks', 2);
CREATE TABLE msgq_test.sq_counts (window_start timestamptz, window_end timestamptz, page text, n bigint);
-- puts {"page": p, "ts": ts} records
CREATE FUNCTION msgq_test.sq_put(p text, ts text) RETURNS void LANGUAGE sql AS $$
	SELECT msgq.put_record('sq_clicks', p, convert_to(jsonb_build_object('page', p, 'ts', ts)::text, 'UTF8'))
$$;

-- ---------------------------------------------------------------------------
-- Errors
SELECT msgq_test.err($$SELECT msgq.create_stream_query('', 'sq_clicks', 'SELECT 1', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq bad', 'sq_clicks', 'SELECT 1', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', NULL, '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'DELETE FROM msgq_test.sq_counts', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1; SELECT 2', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1) q; DROP TABLE msgq_test.sq_counts; --', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_nope', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "Destination": {"Type": "Table", "TableName": "msgq_test.sq_counts"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Hopping", "SizeInSeconds": 60}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 0}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 86401}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60, "SlideInSeconds": 10}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Sliding", "SizeInSeconds": 60}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Sliding", "SizeInSeconds": 60, "SlideInSeconds": 25}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Sliding", "SizeInSeconds": 60, "SlideInSeconds": 61}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60, "Extra": 1}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "TimeSource": "Wallclock"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "TimeSource": "EventTime"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "EventTimeField": "ts"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "AllowedLatenessInSeconds": 3601}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "StartingPosition": "AT_TIMESTAMP"}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "Destination": {"Type": "File"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "Destination": {"Type": "Table", "TableName": "msgq_test.sq_nope"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "Destination": {"Type": "Stream", "StreamName": "sq_nope"}}')$$);
-- the statement is planned as the owner: unknown columns, wrong types
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT nope FROM records', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "Destination": {"Type": "Table", "TableName": "msgq_test.sq_counts"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_x', 'sq_clicks', 'SELECT 1, 2, 3, 4, 5 FROM records', '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "Destination": {"Type": "Table", "TableName": "msgq_test.sq_counts"}}')$$);
SELECT count(*) FROM msgq.stream_query;

-- ---------------------------------------------------------------------------
-- Tumbling windows of 60 s by event time, 30 s of allowed lateness
SELECT msgq.create_stream_query('sq_pages', 'sq_clicks',
	$q$SELECT window_start, window_end, data->>'page', count(*) FROM records GROUP BY 1, 2, 3$q$,
	'{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "TimeSource": "EventTime", "EventTimeField": "ts",
	  "AllowedLatenessInSeconds": 30, "Destination": {"Type": "Table", "TableName": "msgq_test.sq_counts"}}');
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_pages', 'sq_clicks', 'SELECT 1', '{}')$$);
SELECT jsonb_pretty(msgq.describe_stream_query('sq_pages') - 'CreateTimestamp');
SELECT * FROM msgq.list_stream_queries();
SELECT msgq_test.sq_put('/a', '2026-01-01T00:00:05Z');
SELECT msgq_test.sq_put('/a', '2026-01-01T00:00:20Z');
SELECT msgq_test.sq_put('/b', '2026-01-01T00:00:59.999Z');
SELECT msgq_test.sq_put('/a', '2026-01-01T00:01:10Z');
SELECT msgq.run_maintenance();
-- the watermark is 00:00:40 (the newest event time less 30 s): nothing yet
SELECT count(*) FROM msgq_test.sq_counts;
SELECT records_read, pending_records, windows_emitted, next_window_start FROM msgq.stream_queries;
SELECT msgq_test.sq_put('/b', '2026-01-01T00:01:40Z');
SELECT msgq.run_maintenance();
-- the watermark passed 00:01:00: the first window, once
SELECT window_start, window_end, page, n FROM msgq_test.sq_counts ORDER BY 1, 3;
SELECT msgq.run_maintenance();
SELECT count(*) FROM msgq_test.sq_counts;
-- too late (its window is emitted): dropped and counted; late within the
-- lateness (00:01:05 < the watermark's window end): counted in its window;
-- no event time: skipped; a number is seconds since the epoch
SELECT msgq_test.sq_put('/late', '2026-01-01T00:00:30Z');
SELECT msgq_test.sq_put('/c', '2026-01-01T00:01:05Z');
SELECT msgq.put_record('sq_clicks', 'x', convert_to('{"page": "/no-ts"}', 'UTF8')) IS NOT NULL;
SELECT msgq.put_record('sq_clicks', 'x', convert_to('not json', 'UTF8')) IS NOT NULL;
SELECT msgq.put_record('sq_clicks', 'x', convert_to(jsonb_build_object('page', '/epoch',
	'ts', extract(epoch FROM '2026-01-01T00:01:30Z'::timestamptz))::text, 'UTF8')) IS NOT NULL;
SELECT msgq_test.sq_put('/d', '2026-01-01T00:02:45Z');
SELECT msgq.run_maintenance();
SELECT window_start, window_end, page, n FROM msgq_test.sq_counts ORDER BY 1, 3;
SELECT query_name, stream_name, window_type, time_source, allowed_lateness, records_read,
	   late_records, skipped_records, windows_emitted, rows_emitted, pending_records,
	   next_window_start, last_window_end, last_error
  FROM msgq.stream_queries;

-- ---------------------------------------------------------------------------
-- Sliding windows: 20 s every 10 s, by event time, into a stream
SELECT msgq.create_stream('sq_out', 1);
SELECT msgq.create_stream('sq_ticks', 1);
SELECT msgq.create_stream_query('sq_slide', 'sq_ticks',
	$q$SELECT window_start, count(*) AS n, sum((data->>'v')::int) AS total FROM records GROUP BY 1$q$,
	'{"Window": {"Type": "Sliding", "SizeInSeconds": 20, "SlideInSeconds": 10}, "TimeSource": "EventTime",
	  "EventTimeField": "ts", "Destination": {"Type": "Stream", "StreamName": "sq_out"}}');
SELECT count(*) FROM msgq.put_records('sq_ticks', (SELECT jsonb_agg(jsonb_build_object(
	'Data', encode(convert_to(jsonb_build_object('v', v, 'ts', ts)::text, 'UTF8'), 'base64'), 'PartitionKey', 'k'))
	FROM (VALUES (1, '2026-01-01T00:00:05Z'), (2, '2026-01-01T00:00:15Z'), (4, '2026-01-01T00:00:25Z'),
				 (8, '2026-01-01T00:01:00Z')) v(v, ts)));
SELECT msgq.run_maintenance();
SELECT convert_from(data, 'UTF8')::jsonb AS window_row, partition_key = (convert_from(data, 'UTF8')::jsonb->>'window_start')::timestamptz::text AS keyed
  FROM msgq.get_records(msgq.get_shard_iterator('sq_out', 'shardId-000000000000', 'TRIM_HORIZON'))
 ORDER BY sequence_number;

-- ---------------------------------------------------------------------------
-- Arrival time on msgq's clock: windows of 10 s close when msgq.now() passes
-- their end; records of two moments 100 s apart
CREATE TABLE msgq_test.sq_arrivals (window_start timestamptz, window_end timestamptz, n bigint);
SELECT msgq.create_stream('sq_arr', 1);
SELECT msgq.create_stream_query('sq_arrival', 'sq_arr',
	'SELECT window_start, window_end, count(*) FROM records GROUP BY 1, 2',
	'{"Window": {"Type": "Tumbling", "SizeInSeconds": 10}, "StartingPosition": "TRIM_HORIZON",
	  "Destination": {"Type": "Table", "TableName": "msgq_test.sq_arrivals"}}');
SELECT count(*) FROM msgq.put_records('sq_arr', '[{"Data": "YQ==", "PartitionKey": "a"}, {"Data": "Yg==", "PartitionKey": "b"}]');
SET msgq.clock_offset = '100s';
SELECT count(*) FROM msgq.put_records('sq_arr', '[{"Data": "Yw==", "PartitionKey": "c"}]');
SELECT msgq.run_maintenance();
-- the first moment's window is closed (100 s ago), the second's is not
SELECT sum(n), bool_and(window_end - window_start = '10s'),
	   bool_and(extract(epoch FROM window_start)::bigint % 10 = 0) FROM msgq_test.sq_arrivals;
SET msgq.clock_offset = '111s';
SELECT msgq.run_maintenance();
SELECT sum(n), count(*) FROM msgq_test.sq_arrivals;
SELECT pending_records, windows_emitted FROM msgq.stream_queries WHERE query_name = 'sq_arrival';

-- ---------------------------------------------------------------------------
-- A query that fails keeps its window and says why
SELECT msgq.create_stream('sq_err', 1);
CREATE TABLE msgq_test.sq_ratio (r numeric);
SELECT msgq.create_stream_query('sq_broken', 'sq_err', 'SELECT 1 / (count(*) - count(*)) FROM records',
	'{"Window": {"Type": "Tumbling", "SizeInSeconds": 10}, "Destination": {"Type": "Table", "TableName": "msgq_test.sq_ratio"}}');
SELECT count(*) FROM msgq.put_records('sq_err', '[{"Data": "YQ==", "PartitionKey": "a"}]');
SET msgq.clock_offset = '200s';
SELECT msgq.run_maintenance();
SELECT windows_emitted, pending_records, last_error FROM msgq.stream_queries WHERE query_name = 'sq_broken';
SELECT count(*) FROM msgq_test.sq_ratio;

-- ---------------------------------------------------------------------------
-- Privileges: creating needs EXECUTE; others' queries are not theirs
CREATE ROLE regress_msgq_sq_other;
SET ROLE regress_msgq_sq_other;
SELECT msgq_test.err($$SELECT msgq.create_stream_query('sq_o', 'sq_clicks', 'SELECT 1', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.describe_stream_query('sq_pages')$$);
SELECT msgq_test.err($$SELECT msgq.delete_stream_query('sq_pages')$$);
SELECT msgq_test.err($$SELECT * FROM msgq._window_records(1, now(), now())$$);
SELECT count(*) FROM msgq.list_stream_queries();
RESET ROLE;
DROP ROLE regress_msgq_sq_other;

-- delete; and delete_stream takes its queries along
SELECT msgq.delete_stream_query('sq_broken');
SELECT msgq_test.err($$SELECT msgq.delete_stream_query('sq_broken')$$);
SELECT msgq_test.err($$SELECT msgq.describe_stream_query('sq_broken')$$);
SELECT msgq.delete_stream('sq_ticks');
SELECT * FROM msgq.list_stream_queries();
SELECT msgq.delete_stream_query(q) FROM msgq.list_stream_queries() q;
SELECT count(*) FROM msgq.stream_query_record;
SELECT msgq.delete_stream(s) FROM unnest(ARRAY['sq_clicks', 'sq_out', 'sq_arr', 'sq_err']) s;
SET msgq.clock_offset = 0;
ALTER SYSTEM RESET msgq.worker_enabled;
SELECT pg_reload_conf();
