--
-- delivery_streams: Firehose-style delivery streams (src/firehose.c):
-- create / describe / list / delete with every attribute and error;
-- put_delivery_record and put_record_batch and their limits; buffering by
-- size and by interval on msgq's test clock; Table destinations (Columns,
-- JsonbColumn, RawColumn), Queue, Stream and File (Raw, JSONLines, CSV,
-- GZIP) destinations; a transform that keeps, drops and fails records, and
-- one that breaks the contract; a destination that fails, retried, then
-- the error output; a stream source read from LATEST; privileges.
-- msgq.run_maintenance() runs the flushes, with the worker off.
-- Names start with "fh_", roles with "regress_msgq_fh_".
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
-- msgq's clock is stopped: only the offsets below move it, however slowly
-- the statements between them run
SET msgq.clock_frozen = on;
SET msgq.clock_offset = 0;

ALTER SYSTEM SET msgq.worker_enabled = off;
ALTER SYSTEM SET msgq.delivery_directory = 'fh_files';
SELECT pg_reload_conf();
DO $$
BEGIN
	FOR i IN 1..1200 LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM msgq.workers
						   WHERE database = current_database() AND state = 'disabled');
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SELECT state FROM msgq.workers WHERE database = current_database();

CREATE TABLE msgq_test.fh_events (id bigserial PRIMARY KEY, page text, n int,
	at timestamptz DEFAULT '2000-01-01');
CREATE TABLE msgq_test.fh_docs (id bigserial, doc jsonb, raw bytea, txt text);

-- ---------------------------------------------------------------------------
-- Errors of create_delivery_stream
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh bad', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream(repeat('x', 65), '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', NULL)$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '[]')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Nope": 1}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "S3"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table", "TableName": "msgq_test.nope"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_events", "Extra": 1}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_events", "ColumnMapping": "Rows"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_events", "DataColumn": "page"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_docs", "ColumnMapping": "JsonbColumn"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_docs", "ColumnMapping": "JsonbColumn", "DataColumn": "raw"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_docs", "ColumnMapping": "RawColumn", "DataColumn": "id"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_docs", "ColumnMapping": "RawColumn", "DataColumn": "nope"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Queue", "QueueName": "fh_nope"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "Stream", "StreamName": "fh_nope"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"BufferingHints": {"SizeInMBs": 1}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"BufferingHints": {"SizeInMBs": 0, "IntervalInSeconds": 60}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"BufferingHints": {"SizeInMBs": 129, "IntervalInSeconds": 60}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 901}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"BufferingHints": {"SizeInMBs": "x", "IntervalInSeconds": 1}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"RetryOptions": {"DurationInSeconds": 7201}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"DeliveryStreamType": "Kafka", "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"DeliveryStreamType": "KinesisStreamAsSource", "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"DeliveryStreamType": "KinesisStreamAsSource", "KinesisStreamSourceConfiguration": {"KinesisStreamARN": "fh_nope"}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"KinesisStreamSourceConfiguration": {"KinesisStreamARN": "fh_nope"}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"ProcessingConfiguration": {"Enabled": true}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"ProcessingConfiguration": {"Function": "msgq_test.nope(jsonb)"}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"ProcessingConfiguration": {"Function": "msgq_test.err(text)"}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"ProcessingConfiguration": {"Function": "pg_catalog.jsonb_strip_nulls(jsonb)", "BufferSizeInMBs": 4}, "Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "File", "Prefix": "/abs/"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "File", "Prefix": "a/../b/"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "File", "Prefix": "a/!{other:x}/"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "File", "Format": "Parquet"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "File", "Format": "CSV"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "File", "Format": "CSV", "CsvColumns": [1]}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "File", "CompressionFormat": "ZIP"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "HttpEndpoint"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "HttpEndpoint", "Url": "ftp://x/"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "HttpEndpoint", "Url": "http://x/", "AccessKey": "a\nb"}}')$$);
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_x', '{"Destination": {"Type": "HttpEndpoint", "Url": "http://x/", "Headers": {}}}')$$);
SELECT count(*) FROM msgq.delivery_stream;
-- an HttpEndpoint's access key is not shown
SELECT msgq.create_delivery_stream('fh_http', '{"Destination": {"Type": "HttpEndpoint", "Url": "http://127.0.0.1:9/x", "AccessKey": "k", "Name": "n"}}') IS NOT NULL;
SELECT msgq.describe_delivery_stream('fh_http')->'Destinations'->0->'Destination';
SELECT msgq.delete_delivery_stream('fh_http');

-- ---------------------------------------------------------------------------
-- A Table destination, Columns: buffering by interval, then by size
SELECT msgq.create_delivery_stream('fh_table', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}');
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_table', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT jsonb_pretty(msgq.describe_delivery_stream('fh_table') - 'CreateTimestamp' - 'LastUpdateTimestamp');
SELECT msgq.describe_delivery_stream('arn:aws:firehose:msgq:x:deliverystream/fh_table')->>'DeliveryStreamName';
SELECT msgq_test.err($$SELECT msgq.describe_delivery_stream('fh_nope')$$);

SELECT msgq.put_delivery_record('fh_table', convert_to('{"page": "/a", "n": 1}', 'UTF8')) IS NOT NULL AS put;
SELECT record_id IS NOT NULL AS id, error_code, error_message
  FROM msgq.put_record_batch('fh_table', jsonb_build_array(
	jsonb_build_object('Data', encode(convert_to('{"page": "/b", "n": 2}', 'UTF8'), 'base64')),
	jsonb_build_object('Data', encode(convert_to('{"page": "/c"}', 'UTF8'), 'base64'))));
-- a rolled-back put delivers nothing
BEGIN;
SELECT msgq.put_delivery_record('fh_table', convert_to('{"page": "/rolled-back"}', 'UTF8')) IS NOT NULL AS put;
ROLLBACK;
SELECT delivery_stream_name, buffered_records, buffered_bytes, delivered_records, batches
  FROM msgq.delivery_stream_metrics WHERE delivery_stream_name = 'fh_table';
-- not before the interval (60 s on msgq's clock)
SELECT msgq.run_maintenance();
SELECT count(*) FROM msgq_test.fh_events;
SET msgq.clock_offset = '59s';
SELECT msgq.run_maintenance();
SELECT count(*) FROM msgq_test.fh_events;
SET msgq.clock_offset = '61s';
SELECT msgq.run_maintenance();
-- keys name columns; the other columns get their defaults
SELECT page, n, at FROM msgq_test.fh_events ORDER BY id;
SELECT delivery_stream_name, buffered_records, delivered_records, delivered_bytes, batches,
	   dropped_records, failed_records, last_latency_ms >= 61000 AS latency
  FROM msgq.delivery_stream_metrics WHERE delivery_stream_name = 'fh_table';
-- by size: 1 MB reached flushes at once (here two records of 600 KB)
SELECT count(*) FROM msgq.put_record_batch('fh_table', (SELECT jsonb_agg(jsonb_build_object('Data',
	encode(convert_to(format('{"page": "%s", "n": %s}', repeat('p', 600000), i), 'UTF8'), 'base64')))
	FROM generate_series(1, 3) i));
SELECT msgq.run_maintenance();
-- the first two made the batch; the third waits for its interval
SELECT count(*), sum(length(page)) FROM msgq_test.fh_events WHERE n IS NOT NULL AND length(page) > 100;
SELECT buffered_records, batches FROM msgq.delivery_stream_metrics WHERE delivery_stream_name = 'fh_table';
SET msgq.clock_offset = '122s';
SELECT msgq.run_maintenance();
SELECT count(*) FROM msgq_test.fh_events WHERE length(page) > 100;
-- a record that is not a JSON object goes to the error output; the rest is delivered
SELECT count(*) FROM msgq.put_record_batch('fh_table', jsonb_build_array(
	jsonb_build_object('Data', encode(convert_to('[1, 2]', 'UTF8'), 'base64')),
	jsonb_build_object('Data', encode(convert_to('not json', 'UTF8'), 'base64')),
	jsonb_build_object('Data', encode(convert_to('{"page": "/ok", "n": 9}', 'UTF8'), 'base64'))));
SET msgq.clock_offset = '183s';
SELECT msgq.run_maintenance();
SELECT page, n FROM msgq_test.fh_events WHERE page = '/ok';
SELECT delivery_stream_name, output_type, attempts_made, error_code, error_message,
	   convert_from(raw_data, 'UTF8') AS raw, record_id IS NOT NULL AS id
  FROM msgq.delivery_stream_errors ORDER BY convert_from(raw_data, 'UTF8');

-- ---------------------------------------------------------------------------
-- Put limits and errors
SELECT msgq_test.err($$SELECT msgq.put_delivery_record('fh_nope', '\x00')$$);
SELECT msgq_test.err($$SELECT msgq.put_delivery_record('fh_table', NULL)$$);
SELECT msgq_test.err($$SELECT msgq.put_delivery_record('fh_table', convert_to(repeat('x', 1024001), 'UTF8'))$$);
SELECT msgq_test.err($$SELECT msgq.put_delivery_record('fh_table', convert_to(repeat('x', 1024000), 'UTF8'))$$) AS largest_ok;
SELECT msgq_test.err($$SELECT * FROM msgq.put_record_batch('fh_table', '[]')$$);
SELECT msgq_test.err($$SELECT * FROM msgq.put_record_batch('fh_table', '{}')$$);
SELECT msgq_test.err($$SELECT * FROM msgq.put_record_batch('fh_table', (SELECT jsonb_agg(jsonb_build_object('Data', 'eA==')) FROM generate_series(1, 501)))$$);
SELECT msgq_test.err($$SELECT count(*) FROM msgq.put_record_batch('fh_table', (SELECT jsonb_agg(jsonb_build_object('Data', 'eA==')) FROM generate_series(1, 500)))$$) AS five_hundred_ok;
SELECT msgq_test.err($$SELECT * FROM msgq.put_record_batch('fh_table', '[{"Data": "###"}]')$$);
SELECT msgq_test.err($$SELECT * FROM msgq.put_record_batch('fh_table', '[{"Other": "eA=="}]')$$);
SELECT msgq_test.err($$SELECT * FROM msgq.put_record_batch('fh_table', (SELECT jsonb_agg(jsonb_build_object('Data', encode(convert_to(repeat('x', 900000), 'UTF8'), 'base64'))) FROM generate_series(1, 5)))$$);
SELECT msgq_test.err($$SELECT * FROM msgq.list_delivery_streams('Kafka')$$);
-- the 501 single-byte records above are not JSON: error output
SET msgq.clock_offset = '244s';
SELECT msgq.run_maintenance();
SELECT error_code, count(*) FROM msgq.delivery_stream_errors GROUP BY 1 ORDER BY 1;

-- ---------------------------------------------------------------------------
-- JsonbColumn and RawColumn (bytea and text), at IntervalInSeconds 0
SELECT msgq.create_delivery_stream('fh_jsonb', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_docs", "ColumnMapping": "JsonbColumn", "DataColumn": "doc"}}') IS NOT NULL;
SELECT msgq.create_delivery_stream('fh_raw', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_docs", "ColumnMapping": "RawColumn", "DataColumn": "raw"}}') IS NOT NULL;
SELECT msgq.create_delivery_stream('fh_text', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_docs", "ColumnMapping": "RawColumn", "DataColumn": "txt"}}') IS NOT NULL;
SELECT msgq.put_delivery_record('fh_jsonb', convert_to('{"a": [1, 2]}', 'UTF8')) IS NOT NULL;
SELECT msgq.put_delivery_record('fh_jsonb', convert_to('"a string"', 'UTF8')) IS NOT NULL;
SELECT msgq.put_delivery_record('fh_raw', '\x00ff01') IS NOT NULL;
SELECT msgq.put_delivery_record('fh_text', convert_to('plain text', 'UTF8')) IS NOT NULL;
SELECT msgq.put_delivery_record('fh_text', '\x00ff') IS NOT NULL;
SELECT msgq.run_maintenance();
SELECT doc, raw, txt FROM msgq_test.fh_docs ORDER BY id;
SELECT error_code, raw_data FROM msgq.delivery_stream_errors
 WHERE delivery_stream_name = 'fh_text';

-- ---------------------------------------------------------------------------
-- A transform: upper-cases the page, drops "drop", fails "fail"
CREATE FUNCTION msgq_test.fh_transform(ev jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	out jsonb := '[]';
	r jsonb;
	doc jsonb;
BEGIN
	FOR r IN SELECT * FROM jsonb_array_elements(ev->'records') LOOP
		doc := convert_from(decode(r->>'data', 'base64'), 'UTF8')::jsonb;
		IF doc->>'page' = 'drop' THEN
			out := out || jsonb_build_object('recordId', r->'recordId', 'result', 'Dropped');
		ELSIF doc->>'page' = 'fail' THEN
			out := out || jsonb_build_object('recordId', r->'recordId', 'result', 'ProcessingFailed');
		ELSE
			out := out || jsonb_build_object('recordId', r->'recordId', 'result', 'Ok', 'data',
				encode(convert_to(jsonb_build_object('page', upper(doc->>'page'),
					'n', (r->>'approximateArrivalTimestamp')::bigint > 0)::text, 'UTF8'), 'base64'));
		END IF;
	END LOOP;
	RETURN jsonb_build_object('records', out);
END
$$;
CREATE TABLE msgq_test.fh_pages (page text, n text);
SELECT msgq.create_delivery_stream('fh_xform', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"ProcessingConfiguration": {"Enabled": true, "Function": "msgq_test.fh_transform(jsonb)", "NumberOfRetries": 1},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_pages"}}') IS NOT NULL;
SELECT msgq.describe_delivery_stream('fh_xform')->'Destinations'->0->'ProcessingConfiguration';
SELECT count(*) FROM msgq.put_record_batch('fh_xform', (SELECT jsonb_agg(jsonb_build_object('Data',
	encode(convert_to(jsonb_build_object('page', p)::text, 'UTF8'), 'base64')) ORDER BY o)
	FROM unnest(ARRAY['/home', 'drop', 'fail', '/cart']) WITH ORDINALITY u(p, o)));
SELECT msgq.run_maintenance();
SELECT page, n FROM msgq_test.fh_pages ORDER BY page;
SELECT delivered_records, dropped_records, failed_records FROM msgq.delivery_stream_metrics
 WHERE delivery_stream_name = 'fh_xform';
SELECT output_type, error_code, convert_from(raw_data, 'UTF8') AS raw, processor
  FROM msgq.delivery_stream_errors WHERE delivery_stream_name = 'fh_xform';
-- a transform that raises: retried, then every record to the error output
CREATE FUNCTION msgq_test.fh_raise(ev jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO msgq_test.fh_pages VALUES ('raised', jsonb_array_length(ev->'records'));
	RAISE EXCEPTION 'transform broke';
END
$$;
-- one that forgets a record, and one that names one twice
CREATE FUNCTION msgq_test.fh_forget(ev jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('records', jsonb_build_array(jsonb_build_object(
		'recordId', ev->'records'->0->'recordId', 'result', 'Ok', 'data', ev->'records'->0->'data')))
$$;
CREATE FUNCTION msgq_test.fh_twice(ev jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('records', jsonb_build_array(
		jsonb_build_object('recordId', ev->'records'->0->'recordId', 'result', 'Ok', 'data', ev->'records'->0->'data'),
		jsonb_build_object('recordId', ev->'records'->0->'recordId', 'result', 'Dropped')))
$$;
CREATE FUNCTION msgq_test.fh_badresult(ev jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('records', (SELECT jsonb_agg(jsonb_build_object('recordId', r->'recordId',
		'result', 'Maybe')) FROM jsonb_array_elements(ev->'records') r))
$$;
SELECT msgq.create_delivery_stream(s, jsonb_build_object('BufferingHints', '{"SizeInMBs": 1, "IntervalInSeconds": 0}'::jsonb,
	'ProcessingConfiguration', jsonb_build_object('Function', f, 'NumberOfRetries', 2),
	'Destination', '{"Type": "Table", "TableName": "msgq_test.fh_pages"}'::jsonb)) IS NOT NULL
  FROM (VALUES ('fh_raise', 'msgq_test.fh_raise(jsonb)'), ('fh_forget', 'msgq_test.fh_forget(jsonb)'),
			   ('fh_twice', 'msgq_test.fh_twice(jsonb)'), ('fh_badresult', 'msgq_test.fh_badresult(jsonb)')) v(s, f);
SELECT count(*) FROM (SELECT msgq.put_record_batch(s, '[{"Data": "eyJwYWdlIjogIngifQ=="}, {"Data": "eyJwYWdlIjogInkifQ=="}]')
  FROM unnest(ARRAY['fh_raise', 'fh_forget', 'fh_twice', 'fh_badresult']) s) p;
SELECT msgq.run_maintenance();
-- the raising transform's writes are rolled back (three attempts)
SELECT count(*) FROM msgq_test.fh_pages WHERE page IN ('raised', 'x', 'y');
SELECT delivery_stream_name, output_type, error_code, count(*)
  FROM msgq.delivery_stream_errors WHERE delivery_stream_name IN ('fh_raise', 'fh_forget', 'fh_twice', 'fh_badresult')
 GROUP BY 1, 2, 3 ORDER BY 1;
SELECT buffered_records FROM msgq.delivery_stream_metrics WHERE delivery_stream_name = 'fh_raise';

-- ---------------------------------------------------------------------------
-- A destination that fails: retried after 1 s, 2 s, ..., then after
-- RetryOptions DurationInSeconds its batch goes to the error output
CREATE TABLE msgq_test.fh_checked (n int CHECK (n > 0));
SELECT msgq.create_delivery_stream('fh_retry', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"RetryOptions": {"DurationInSeconds": 10},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_checked"}}') IS NOT NULL;
SET msgq.clock_offset = '1000s';
SELECT count(*) FROM msgq.put_record_batch('fh_retry', '[{"Data": "eyJuIjogMX0="}, {"Data": "eyJuIjogLTF9"}]');
SELECT msgq.run_maintenance();
SELECT attempts, next_attempt_at - msgq.now() BETWEEN '0.9s' AND '1s' AS backoff_1s, last_error
  FROM msgq.delivery_stream WHERE ds_name = 'fh_retry';
SELECT msgq.run_maintenance();	-- not due yet
SELECT attempts FROM msgq.delivery_stream WHERE ds_name = 'fh_retry';
SET msgq.clock_offset = '1001s';
SELECT msgq.run_maintenance();
SELECT attempts, next_attempt_at - msgq.now() BETWEEN '1.9s' AND '2s' AS backoff_2s
  FROM msgq.delivery_stream WHERE ds_name = 'fh_retry';
-- fixed in time: delivered
UPDATE msgq.delivery_record SET data = convert_to('{"n": 2}', 'UTF8')
 WHERE ds_id = (SELECT ds_id FROM msgq.delivery_stream WHERE ds_name = 'fh_retry')
   AND convert_from(data, 'UTF8') = '{"n": -1}';
SET msgq.clock_offset = '1003s';
SELECT msgq.run_maintenance();
SELECT n FROM msgq_test.fh_checked ORDER BY n;
SELECT attempts, failed_attempts, delivered_records, batches FROM msgq.delivery_stream WHERE ds_name = 'fh_retry';
-- not fixed: to the error output once 10 s have passed since the first failure
SELECT count(*) FROM msgq.put_record_batch('fh_retry', '[{"Data": "eyJuIjogM30="}, {"Data": "eyJuIjogLTN9"}]');
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '1006s';
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '1014s';
SELECT msgq.run_maintenance();
SELECT attempts, failed_records FROM msgq.delivery_stream WHERE ds_name = 'fh_retry';
SET msgq.clock_offset = '1030s';
SELECT msgq.run_maintenance();
SELECT n FROM msgq_test.fh_checked ORDER BY n;
SELECT output_type, error_code, attempts_made, convert_from(raw_data, 'UTF8') AS raw,
	   error_message LIKE '%violates check constraint%' AS why
  FROM msgq.delivery_stream_errors WHERE delivery_stream_name = 'fh_retry' ORDER BY raw;
SELECT attempts, m.failed_records, buffered_records FROM msgq.delivery_stream_metrics m
  JOIN msgq.delivery_stream d ON d.ds_name = m.delivery_stream_name WHERE ds_name = 'fh_retry';

-- ---------------------------------------------------------------------------
-- Queue and Stream destinations
SELECT msgq.create_queue('fh_queue') IS NOT NULL;
SELECT msgq.create_stream('fh_out', 1);
SELECT msgq.create_delivery_stream('fh_to_queue', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Queue", "QueueName": "fh_queue"}}') IS NOT NULL;
SELECT msgq.create_delivery_stream('fh_to_stream', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Stream", "StreamName": "fh_out"}}') IS NOT NULL;
SELECT count(*) FROM msgq.put_record_batch('fh_to_queue', '[{"Data": "b25l"}, {"Data": "dHdv"}, {"Data": "AP8="}]');
SELECT count(*) FROM msgq.put_record_batch('fh_to_stream', '[{"Data": "b25l"}, {"Data": "dHdv"}]');
SELECT msgq.run_maintenance();
SELECT body FROM msgq.receive_message('fh_queue', max_number_of_messages => 10) ORDER BY body;
SELECT error_code FROM msgq.delivery_stream_errors WHERE delivery_stream_name = 'fh_to_queue';
SELECT convert_from(data, 'UTF8') AS data
  FROM msgq.get_records(msgq.get_shard_iterator('fh_out', 'shardId-000000000000', 'TRIM_HORIZON'))
 ORDER BY sequence_number;

-- ---------------------------------------------------------------------------
-- A stream source: read from LATEST (records put before the creation stay out)
SELECT msgq.create_stream('fh_src', 2);
SELECT count(*) FROM msgq.put_records('fh_src', '[{"Data": "eyJwYWdlIjogIm9sZCJ9", "PartitionKey": "a"}]');
CREATE TABLE msgq_test.fh_from_stream (page text);
SELECT msgq.create_delivery_stream('fh_from_src', '{"DeliveryStreamType": "KinesisStreamAsSource",
	"KinesisStreamSourceConfiguration": {"KinesisStreamARN": "fh_src"},
	"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_from_stream"}}') IS NOT NULL;
SELECT msgq.describe_delivery_stream('fh_from_src')->'Source';
SELECT msgq_test.err($$SELECT msgq.put_delivery_record('fh_from_src', '\x00')$$);
SELECT count(*) FROM msgq.put_records('fh_src', (SELECT jsonb_agg(jsonb_build_object(
	'Data', encode(convert_to(jsonb_build_object('page', 'p' || i)::text, 'UTF8'), 'base64'),
	'PartitionKey', 'k' || i)) FROM generate_series(1, 20) i));
SELECT msgq.run_maintenance();
SELECT count(*), count(DISTINCT page), bool_and(page <> 'old') FROM msgq_test.fh_from_stream;
SELECT count(*) FROM msgq.delivery_source_shard s JOIN msgq.delivery_stream d USING (ds_id)
 WHERE d.ds_name = 'fh_from_src';
SELECT msgq.run_maintenance();
SELECT count(*) FROM msgq_test.fh_from_stream;
SELECT * FROM msgq.list_delivery_streams('KinesisStreamAsSource');

-- ---------------------------------------------------------------------------
-- File destinations: complete files only, under msgq.delivery_directory
CREATE FUNCTION msgq_test.fh_files(dir text) RETURNS SETOF text LANGUAGE sql AS $$
	WITH RECURSIVE t(p) AS (
		SELECT dir
		UNION ALL
		SELECT t.p || '/' || f FROM t, LATERAL pg_ls_dir(t.p, true, false) f
		 WHERE (pg_stat_file(t.p, true)).isdir)
	SELECT p FROM t WHERE NOT (pg_stat_file(p, true)).isdir ORDER BY p
$$;
SELECT msgq.create_delivery_stream('fh_lines', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "File", "Prefix": "lines/", "Format": "JSONLines"}}') IS NOT NULL;
SELECT msgq.create_delivery_stream('fh_csv', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "File", "Prefix": "csv/!{timestamp:yyyy-MM}/!{firehose:random-string}/", "Format": "CSV", "CsvColumns": ["page", "n", "tags"]}}') IS NOT NULL;
SELECT msgq.create_delivery_stream('fh_gz', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "File", "Prefix": "gz/", "CompressionFormat": "GZIP"}}') IS NOT NULL;
SELECT count(*) FROM msgq.put_record_batch('fh_lines', '[{"Data": "eyJhIjogMX0="}, {"Data": "eyJhIjogMn0K"}]');
SELECT count(*) FROM msgq.put_record_batch('fh_csv', jsonb_build_array(
	jsonb_build_object('Data', encode(convert_to('{"page": "/a,b", "n": 1, "tags": ["x"]}', 'UTF8'), 'base64')),
	jsonb_build_object('Data', encode(convert_to('{"page": "say \"hi\"", "extra": true}', 'UTF8'), 'base64')),
	jsonb_build_object('Data', encode(convert_to('[3]', 'UTF8'), 'base64'))));
SELECT count(*) FROM msgq.put_record_batch('fh_gz', '[{"Data": "YWJj"}, {"Data": "ZGVm"}]');
SELECT msgq.run_maintenance();
SELECT regexp_replace(regexp_replace(regexp_replace(f, '\d{4}/\d{2}/\d{2}/\d{2}/', 'YYYY/MM/DD/HH/'),
		'csv/\d{4}-\d{2}/[a-z0-9]{11}/', 'csv/YYYY-MM/RANDOM/'),
		'-\d+-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[a-z0-9]{11}', '-V-TIME-RANDOM') AS file
  FROM msgq_test.fh_files('fh_files') f;
SELECT replace(pg_read_file(f), E'\n', '|') AS content FROM msgq_test.fh_files('fh_files') f
 WHERE f LIKE 'fh_files/lines/%' OR f LIKE 'fh_files/csv/%';
SELECT substr(pg_read_binary_file(f), 1, 2) AS gzip_magic FROM msgq_test.fh_files('fh_files') f WHERE f LIKE '%.gz';
SELECT count(*) FROM msgq_test.fh_files('fh_files') f WHERE f LIKE '%.tmp';
SELECT error_code FROM msgq.delivery_stream_errors WHERE delivery_stream_name = 'fh_csv';
-- a File destination needs msgq.delivery_directory and pg_write_server_files
CREATE ROLE regress_msgq_fh_user;
GRANT EXECUTE ON FUNCTION msgq.create_delivery_stream(text, jsonb) TO regress_msgq_fh_user;
GRANT INSERT ON msgq_test.fh_pages TO regress_msgq_fh_user;
SET ROLE regress_msgq_fh_user;
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_user_file', '{"Destination": {"Type": "File"}}')$$);
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Privileges: creating needs EXECUTE; using needs the owner's privileges
CREATE ROLE regress_msgq_fh_other;
SET ROLE regress_msgq_fh_other;
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_other', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_pages"}}')$$);
SELECT msgq_test.err($$SELECT msgq.put_delivery_record('fh_table', '\x00')$$);
SELECT msgq_test.err($$SELECT msgq.describe_delivery_stream('fh_table')$$);
SELECT msgq_test.err($$SELECT msgq.delete_delivery_stream('fh_table')$$);
SELECT count(*) FROM msgq.list_delivery_streams();
SELECT count(*) FROM msgq.delivery_stream_errors;
RESET ROLE;
SET ROLE regress_msgq_fh_user;
SELECT msgq_test.err($$SELECT msgq.create_delivery_stream('fh_user', '{"Destination": {"Type": "Table", "TableName": "msgq_test.fh_events"}}')$$);
SELECT msgq.create_delivery_stream('fh_user', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_pages"}}') IS NOT NULL;
SELECT msgq.put_delivery_record('fh_user', convert_to('{"page": "by user"}', 'UTF8')) IS NOT NULL;
SELECT * FROM msgq.list_delivery_streams();
RESET ROLE;
GRANT regress_msgq_fh_user TO regress_msgq_fh_other;
SET ROLE regress_msgq_fh_other;
SELECT msgq.put_delivery_record('fh_user', convert_to('{"page": "by member"}', 'UTF8')) IS NOT NULL;
RESET ROLE;
-- the insert runs as the owner: revoked, it fails (and is retried)
REVOKE INSERT ON msgq_test.fh_pages FROM regress_msgq_fh_user;
SELECT msgq.run_maintenance();
SELECT attempts, last_error FROM msgq.delivery_stream WHERE ds_name = 'fh_user';
GRANT INSERT ON msgq_test.fh_pages TO regress_msgq_fh_user;
-- EXECUTE on a transform is checked at every batch: once revoked, the
-- batch is not transformed and goes to the error output
CREATE FUNCTION msgq_test.fh_ident(ev jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('records', (SELECT jsonb_agg(jsonb_build_object('recordId', r->'recordId',
		'result', 'Ok', 'data', r->'data')) FROM jsonb_array_elements(ev->'records') r))
$$;
REVOKE ALL ON FUNCTION msgq_test.fh_ident(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION msgq_test.fh_ident(jsonb) TO regress_msgq_fh_user;
SET ROLE regress_msgq_fh_user;
SELECT msgq.create_delivery_stream('fh_user_xform', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"ProcessingConfiguration": {"Function": "msgq_test.fh_ident(jsonb)", "NumberOfRetries": 0},
	"Destination": {"Type": "Table", "TableName": "msgq_test.fh_pages"}}') IS NOT NULL AS created;
SELECT msgq.put_delivery_record('fh_user_xform', convert_to('{"page": "revoked"}', 'UTF8')) IS NOT NULL AS put;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION msgq_test.fh_ident(jsonb) FROM regress_msgq_fh_user;
SELECT msgq.run_maintenance();
SELECT count(*) AS revoked_delivered FROM msgq_test.fh_pages WHERE page = 'revoked';
SET ROLE regress_msgq_fh_user;
SELECT output_type, error_code, error_message FROM msgq.delivery_stream_errors
 WHERE delivery_stream_name = 'fh_user_xform';
SELECT msgq.delete_delivery_stream('fh_user_xform') IS NOT NULL AS deleted;
RESET ROLE;
DROP FUNCTION msgq_test.fh_ident(jsonb);
SET msgq.clock_offset = '1100s';
SELECT msgq.run_maintenance();
SELECT page FROM msgq_test.fh_pages WHERE page LIKE 'by %' ORDER BY page;

-- ---------------------------------------------------------------------------
-- delete_delivery_stream drops what it buffered
SELECT msgq.put_delivery_record('fh_table', convert_to('{"page": "never"}', 'UTF8')) IS NOT NULL;
SELECT msgq.delete_delivery_stream('fh_table');
SELECT msgq_test.err($$SELECT msgq.delete_delivery_stream('fh_table')$$);
SELECT count(*) FROM msgq.delivery_record r WHERE NOT EXISTS (SELECT 1 FROM msgq.delivery_stream d WHERE d.ds_id = r.ds_id);
SELECT * FROM msgq.list_delivery_streams();

-- clean up
SELECT msgq.delete_delivery_stream(s) FROM msgq.list_delivery_streams() s;
SELECT msgq.delete_stream('fh_src');
SELECT msgq.delete_stream('fh_out');
SELECT msgq.delete_queue('fh_queue');
DELETE FROM msgq.delivery_error;
DROP ROLE regress_msgq_fh_other;
REVOKE ALL ON msgq_test.fh_pages FROM regress_msgq_fh_user;
REVOKE ALL ON FUNCTION msgq.create_delivery_stream(text, jsonb) FROM regress_msgq_fh_user;
DROP ROLE regress_msgq_fh_user;
RESET msgq.clock_frozen;
SET msgq.clock_offset = 0;
ALTER SYSTEM RESET msgq.worker_enabled;
ALTER SYSTEM RESET msgq.delivery_directory;
SELECT pg_reload_conf();
