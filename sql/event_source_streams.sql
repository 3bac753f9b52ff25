--
-- event_source_streams: event source mappings over streams (src/esm.c):
-- every stream attribute and error; TRIM_HORIZON, LATEST and AT_TIMESTAMP;
-- batches per shard in order in Lambda's Kinesis event shape, the
-- checkpoint moved in the function's transaction; retries on msgq's test
-- clock; BisectBatchOnFunctionError down to the failing record and the
-- on-failure destination after MaximumRetryAttempts; ReportBatchItemFailures;
-- MaximumRecordAgeInSeconds; children of a split after the parent's end;
-- delete_stream removes the mapping.  msgq.run_maintenance() runs the
-- batches, with the worker off.  Stream names start with "ess_".
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

CREATE TABLE msgq_test.ess_got (mapping text, shard text, seq numeric, data text, batch int, shape boolean);
-- records what it gets; fails a batch that holds "poison"; with "half"
-- reports that record and the ones after it as failed
CREATE FUNCTION msgq_test.ess_fn(ev jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	bad numeric;
BEGIN
	IF EXISTS (SELECT 1 FROM jsonb_array_elements(ev->'Records') r
				WHERE convert_from(decode(r->'kinesis'->>'data', 'base64'), 'UTF8') = 'poison') THEN
		RAISE EXCEPTION 'poison in a batch of %', jsonb_array_length(ev->'Records');
	END IF;
	SELECT min((r->'kinesis'->>'sequenceNumber')::numeric) INTO bad FROM jsonb_array_elements(ev->'Records') r
	 WHERE convert_from(decode(r->'kinesis'->>'data', 'base64'), 'UTF8') = 'half';
	INSERT INTO msgq_test.ess_got
	SELECT split_part(r->>'eventSourceARN', '/', 2), split_part(r->>'eventID', ':', 1),
		   (r->'kinesis'->>'sequenceNumber')::numeric,
		   convert_from(decode(r->'kinesis'->>'data', 'base64'), 'UTF8'), jsonb_array_length(ev->'Records'),
		   r->>'eventSource' = 'aws:kinesis' AND r->>'eventName' = 'aws:kinesis:record'
		   AND r->'kinesis'->>'kinesisSchemaVersion' = '1.0' AND r->'kinesis' ? 'partitionKey'
		   AND r->'kinesis' ? 'approximateArrivalTimestamp'
	  FROM jsonb_array_elements(ev->'Records') r
	 WHERE bad IS NULL OR (r->'kinesis'->>'sequenceNumber')::numeric < bad;
	IF bad IS NOT NULL THEN
		RETURN jsonb_build_object('batchItemFailures', jsonb_build_array(jsonb_build_object('itemIdentifier', bad::text)));
	END IF;
	RETURN '{"batchItemFailures": []}';
END
$$;
CREATE FUNCTION pg_temp.put(s text, n int, prefix text DEFAULT 'r', shard_key text DEFAULT '0') RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM generate_series(1, n) g,
		LATERAL msgq.put_record(CASE WHEN g > 0 THEN s END, 'k', convert_to(prefix || g, 'UTF8'), explicit_hash_key => shard_key)
$$;
-- what the on-failure queue got since the last call (received and deleted)
CREATE FUNCTION pg_temp.dlq() RETURNS SETOF jsonb LANGUAGE sql AS $$
	SELECT r.body::jsonb FROM msgq.receive_message('ess_dlq', 10) r,
		LATERAL (SELECT msgq.delete_message('ess_dlq', r.receipt_handle)) d
$$;
CREATE FUNCTION pg_temp.got(m text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(data, ',' ORDER BY seq), '-') FROM msgq_test.ess_got WHERE mapping = m
$$;

SELECT msgq.create_stream('ess_a', 1);
SELECT msgq.create_queue('ess_dlq') IS NOT NULL AS created;

-- attributes and errors of stream sources
SELECT name, msgq_test.err(sql) AS result FROM (VALUES
	('no position', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{}')$$),
	('bad position', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "EARLIEST"}')$$),
	('at_timestamp alone', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "AT_TIMESTAMP"}')$$),
	('timestamp not at', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "StartingPositionTimestamp": 1}')$$),
	('batch 10001', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "BatchSize": 10001}')$$),
	('retries -2', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "MaximumRetryAttempts": -2}')$$),
	('retries 10001', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "MaximumRetryAttempts": 10001}')$$),
	('age 59', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": 59}')$$),
	('age 604801', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "MaximumRecordAgeInSeconds": 604801}')$$),
	('parallel 0', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "ParallelizationFactor": 0}')$$),
	('bisect text', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "BisectBatchOnFunctionError": "yes"}')$$),
	('destination none', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "DestinationConfig": {"OnFailure": {"Destination": "ess_nowhere"}}}')$$),
	('destination shape', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "DestinationConfig": "ess_dlq"}')$$),
	('tumbling', $$SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST", "TumblingWindowInSeconds": 10}')$$),
	('no stream', $$SELECT msgq.create_event_source_mapping('arn:aws:kinesis:msgq:x:stream/ess_none', 'msgq_test.ess_fn(jsonb)', '{"StartingPosition": "LATEST"}')$$)
) AS t(name, sql);

-- TRIM_HORIZON: every record, in order, in batches of at most 4
SELECT pg_temp.put('ess_a', 10) AS put;
SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "BatchSize": 4}') AS m_trim \gset
SELECT c - 'UUID' - 'LastModified' AS config FROM msgq.get_event_source_mapping(:'m_trim') c;
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_a') AS trim_horizon;
SELECT max(batch) <= 4 AS batches_of_4, bool_and(shape) AS kinesis_shape, count(DISTINCT shard) AS shards
  FROM msgq_test.ess_got WHERE mapping = 'ess_a';
SELECT shard_id, checkpoint_sequence_number IS NOT NULL AS checkpointed
  FROM msgq.consumer_group_lag WHERE consumer_group = 'esm:' || :'m_trim';
-- new records: only those
SELECT pg_temp.put('ess_a', 2, 'n') AS put;
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_a') AS and_new;
SELECT msgq.delete_event_source_mapping(:'m_trim')->>'State' AS deleted;
-- its checkpoints go with it
SELECT count(*) AS checkpoints_left FROM msgq.stream_checkpoint WHERE consumer_group = 'esm:' || :'m_trim';

-- LATEST: only what is put after the mapping
TRUNCATE msgq_test.ess_got;
SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)',
	'{"StartingPosition": "LATEST"}') AS m_latest \gset
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_a') AS latest_before;
SELECT pg_temp.put('ess_a', 3, 'l') AS put;
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_a') AS latest_after;
SELECT msgq.delete_event_source_mapping(:'m_latest')->>'State' AS deleted;

-- AT_TIMESTAMP: the records that arrived at or after it
TRUNCATE msgq_test.ess_got;
SET msgq.clock_offset = '100s';
SELECT pg_temp.put('ess_a', 2, 't') AS put;
SELECT extract(epoch FROM msgq.now()) AS ts \gset
SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)',
	format('{"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": %s}', :ts)::jsonb) AS m_at \gset
SET msgq.clock_offset = '101s';
SELECT pg_temp.put('ess_a', 2, 'u') AS put;
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_a') AS at_timestamp;
SELECT msgq.delete_event_source_mapping(:'m_at')->>'State' AS deleted;

-- MaximumBatchingWindowInSeconds: a batch smaller than BatchSize waits for
-- more records until the window from its first record's arrival ends; a
-- full batch does not wait.  On a stopped clock (msgq.clock_frozen), so
-- that only the offsets count.
TRUNCATE msgq_test.ess_got;
SET msgq.clock_frozen = on;
SET msgq.clock_offset = '200s';
SELECT msgq.create_event_source_mapping('ess_a', 'msgq_test.ess_fn(jsonb)',
	'{"StartingPosition": "LATEST", "BatchSize": 5, "MaximumBatchingWindowInSeconds": 5}') AS m_win \gset
SELECT msgq.run_maintenance();
SELECT pg_temp.put('ess_a', 2, 'w') AS put;
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_a') AS window_open;
SET msgq.clock_offset = '204.999s';
SELECT pg_temp.put('ess_a', 1, 'x') AS put;
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_a') AS window_at_4999ms;
SET msgq.clock_offset = '205s';
SELECT msgq.run_maintenance();
SELECT string_agg(data || ' of ' || batch, ',' ORDER BY seq) AS window_ended FROM msgq_test.ess_got;
TRUNCATE msgq_test.ess_got;
SELECT pg_temp.put('ess_a', 5, 'y') AS put;
SELECT msgq.run_maintenance();
SELECT string_agg(data || ' of ' || batch, ',' ORDER BY seq) AS full_batch FROM msgq_test.ess_got;
SELECT msgq.delete_event_source_mapping(:'m_win')->>'State' AS deleted;
RESET msgq.clock_frozen;

-- a failing record: bisected down to it, sent to the destination after
-- MaximumRetryAttempts (0), the others processed in order
SELECT msgq.create_stream('ess_b', 1);
SELECT pg_temp.put('ess_b', 5, 'b') AS put;
SELECT count(*) AS put FROM msgq.put_record('ess_b', 'k', convert_to('poison', 'UTF8'));
SELECT pg_temp.put('ess_b', 4, 'c') AS put;
SELECT msgq.create_event_source_mapping('ess_b', 'msgq_test.ess_fn(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "BatchSize": 8, "BisectBatchOnFunctionError": true,
	  "MaximumRetryAttempts": 0, "DestinationConfig": {"OnFailure": {"Destination": "ess_dlq"}}}') AS m_bisect \gset
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_b') AS bisected;
SELECT b->'requestContext'->>'condition' AS condition,
	   b->'KinesisBatchInfo'->>'batchSize' AS batch_size,
	   b->'KinesisBatchInfo'->>'shardId' AS shard,
	   b->'KinesisBatchInfo'->>'streamArn' LIKE '%stream/ess_b' AS arn,
	   b->'responseContext'->>'functionError' AS error
  FROM pg_temp.dlq() b;
SELECT last_processing_result FROM msgq.event_source_mappings WHERE uuid = :'m_bisect';
SELECT msgq.delete_event_source_mapping(:'m_bisect')->>'State' AS deleted;

-- retries without bisecting: 1 s, then 2 s later on msgq's clock; once
-- MaximumRetryAttempts (2) is exceeded the whole batch goes to the
-- destination, as Lambda discards it
TRUNCATE msgq_test.ess_got;
SELECT msgq.create_stream('ess_c', 1);
SELECT count(*) AS put FROM msgq.put_record('ess_c', 'k', convert_to('poison', 'UTF8'));
SELECT pg_temp.put('ess_c', 2, 'd') AS put;
SELECT msgq.create_event_source_mapping('ess_c', 'msgq_test.ess_fn(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "MaximumRetryAttempts": 2,
	  "DestinationConfig": {"OnFailure": {"Destination": "ess_dlq"}}}') AS m_retry \gset
SET msgq.clock_offset = '200s';
SELECT msgq.run_maintenance();
SELECT attempts, round(extract(epoch FROM next_attempt_at - msgq.now())) AS retry_in_s
  FROM msgq.event_source_shard WHERE uuid = :'m_retry';
SELECT msgq.run_maintenance();
SELECT attempts FROM msgq.event_source_shard WHERE uuid = :'m_retry';
SET msgq.clock_offset = '201s';
SELECT msgq.run_maintenance();
SELECT attempts, round(extract(epoch FROM next_attempt_at - msgq.now())) AS retry_in_s
  FROM msgq.event_source_shard WHERE uuid = :'m_retry';
SET msgq.clock_offset = '203s';
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_c') AS after_giving_up;
SELECT b->'requestContext'->>'approximateInvokeCount' AS invocations,
	   b->'KinesisBatchInfo'->>'batchSize' AS whole_batch FROM pg_temp.dlq() b;
SELECT failed_invocations AS failed FROM msgq.event_source_mappings WHERE uuid = :'m_retry';

-- ReportBatchItemFailures: the batch is checkpointed before the record
-- named, and the next batch starts at it
SELECT msgq.create_stream('ess_d', 1);
SELECT pg_temp.put('ess_d', 2, 'e') AS put;
SELECT count(*) AS put FROM msgq.put_record('ess_d', 'k', convert_to('half', 'UTF8'));
SELECT pg_temp.put('ess_d', 2, 'f') AS put;
SELECT msgq.create_event_source_mapping('ess_d', 'msgq_test.ess_fn(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "FunctionResponseTypes": ["ReportBatchItemFailures"]}') AS m_report \gset
SET msgq.clock_offset = '300s';
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_d') AS first_part;
SELECT checkpoint_sequence_number IS NOT NULL AS checkpointed_before_it
  FROM msgq.consumer_group_lag WHERE consumer_group = 'esm:' || :'m_report';
SELECT msgq.delete_event_source_mapping(:'m_report')->>'State' AS deleted;

-- MaximumRecordAgeInSeconds: records older than that go to the destination
TRUNCATE msgq_test.ess_got;
SELECT msgq.create_stream('ess_e', 1);
SET msgq.clock_offset = '400s';
SELECT pg_temp.put('ess_e', 3, 'old') AS put;
SELECT msgq.create_event_source_mapping('ess_e', 'msgq_test.ess_fn(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "MaximumRecordAgeInSeconds": 60,
	  "DestinationConfig": {"OnFailure": {"Destination": "ess_dlq"}}}') AS m_age \gset
SET msgq.clock_offset = '500s';
SELECT pg_temp.put('ess_e', 2, 'young') AS put;
SELECT msgq.run_maintenance();
SELECT pg_temp.got('ess_e') AS processed;
SELECT b->'requestContext'->>'condition' AS condition,
	   b->'KinesisBatchInfo'->>'batchSize' AS expired FROM pg_temp.dlq() b;

-- a split: the parent's records first, then its SHARD_END, then the children
TRUNCATE msgq_test.ess_got;
SELECT msgq.create_stream('ess_f', 1);
SELECT pg_temp.put('ess_f', 2, 'p') AS put;
SELECT msgq.split_shard('ess_f', 'shardId-000000000000', '170141183460469231731687303715884105728');
SELECT pg_temp.put('ess_f', 2, 'x', '1') AS put;
SELECT msgq.create_event_source_mapping('ess_f', 'msgq_test.ess_fn(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON"}') AS m_split \gset
SELECT msgq.run_maintenance();
SELECT string_agg(shard || ':' || data, ',' ORDER BY seq) AS in_order FROM msgq_test.ess_got WHERE mapping = 'ess_f';
SELECT shard_id, checkpoint_sequence_number IS NOT NULL AS checkpointed
  FROM msgq.consumer_group_lag WHERE consumer_group = 'esm:' || :'m_split' ORDER BY 1;

-- updates: StartingPosition is fixed; the others change
SELECT u->>'MaximumRetryAttempts' AS retries, u->>'BisectBatchOnFunctionError' AS bisect
  FROM msgq.update_event_source_mapping(:'m_split', '{"MaximumRetryAttempts": 5, "BisectBatchOnFunctionError": true}') u;
SELECT regexp_replace(msgq_test.err(format($$SELECT msgq.update_event_source_mapping(%L, '{"StartingPosition": "LATEST"}')$$, :'m_split')),
	'[0-9a-f-]{36}', 'UUID') AS fixed_position;

-- delete_stream deletes its mappings
SELECT msgq.delete_stream('ess_f');
SELECT count(*) AS left_over FROM msgq.event_source_mapping WHERE uuid = :'m_split';

-- the event's exact shape, as Lambda gives a Kinesis batch: every key, the
-- types, a partition key that needs JSON escaping, base64 data, the arrival
-- in epoch seconds with milliseconds
CREATE TABLE msgq_test.ess_event (ev jsonb);
CREATE FUNCTION msgq_test.ess_keep(ev jsonb) RETURNS void LANGUAGE sql AS
	$$ INSERT INTO msgq_test.ess_event VALUES (ev) $$;
SELECT msgq.create_stream('ess_g', 1);
SELECT msgq.create_event_source_mapping('ess_g', 'msgq_test.ess_keep(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON"}') AS m_shape \gset
SELECT shard_id, sequence_number AS g_seq FROM msgq.put_record('ess_g', E'k"\\\u00e9', '\x00ff10'::bytea) \gset
SELECT msgq.run_maintenance();
SELECT jsonb_array_length(ev->'Records') AS records,
	   (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(ev->'Records'->0) k) AS record_keys,
	   (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(ev->'Records'->0->'kinesis') k) AS kinesis_keys
  FROM msgq_test.ess_event;
SELECT r->'kinesis'->>'partitionKey' = E'k"\\\u00e9' AS key_kept,
	   decode(r->'kinesis'->>'data', 'base64') = '\x00ff10'::bytea AS data_kept,
	   r->'kinesis'->>'sequenceNumber' = :'g_seq' AS seq_is_text,
	   r->>'eventID' = 'shardId-000000000000:' || :'g_seq' AS event_id,
	   jsonb_typeof(r->'kinesis'->'approximateArrivalTimestamp') AS arrival_type,
	   abs((r->'kinesis'->>'approximateArrivalTimestamp')::numeric - extract(epoch FROM msgq.now())) < 60 AS arrival_now,
	   scale((r->'kinesis'->>'approximateArrivalTimestamp')::numeric) AS arrival_scale,
	   r->'kinesis'->>'kinesisSchemaVersion' AS schema_version,
	   r->>'eventSource' AS source, r->>'eventVersion' AS version, r->>'eventName' AS name,
	   r->>'awsRegion' AS region, r->>'invokeIdentityArn' = 'msgq:' || current_user AS invoker,
	   r->>'eventSourceARN' = 'arn:aws:kinesis:msgq:' || current_database() || ':stream/ess_g' AS arn
  FROM msgq_test.ess_event, LATERAL (SELECT ev->'Records'->0 AS r) x;
SELECT msgq.delete_stream('ess_g');
DROP TABLE msgq_test.ess_event;
DROP FUNCTION msgq_test.ess_keep(jsonb);

-- ParallelizationFactor: a shard's records in P lanes by the hash of their
-- partition key, each lane in order with its own position and retries; the
-- group's checkpoint is the least of the lanes'
CREATE SEQUENCE msgq_test.ess_call;
CREATE TABLE msgq_test.ess_lanes (call bigint, pkey text, seq numeric, data text);
CREATE FUNCTION msgq_test.ess_lane_fn(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	c bigint := nextval('msgq_test.ess_call');
BEGIN
	IF EXISTS (SELECT 1 FROM jsonb_array_elements(ev->'Records') r
				WHERE convert_from(decode(r->'kinesis'->>'data', 'base64'), 'UTF8') = 'poison') THEN
		RAISE EXCEPTION 'poison';
	END IF;
	INSERT INTO msgq_test.ess_lanes
	SELECT c, r->'kinesis'->>'partitionKey', (r->'kinesis'->>'sequenceNumber')::numeric,
		   convert_from(decode(r->'kinesis'->>'data', 'base64'), 'UTF8')
	  FROM jsonb_array_elements(ev->'Records') r;
END
$$;
-- the lane of a key, as msgq computes it (hash_bytes of the key, which hashtext is)
CREATE FUNCTION pg_temp.lane(k text, p int) RETURNS int LANGUAGE sql AS
	$$ SELECT ((hashtext(k)::bigint & 4294967295) % p)::int $$;
SELECT msgq.create_stream('ess_p', 1);
SELECT count(*) AS put FROM generate_series(1, 60) g,
	LATERAL msgq.put_record(CASE WHEN g > 0 THEN 'ess_p' END, 'key' || (g % 12), convert_to('p' || g, 'UTF8'));
SELECT msgq.create_event_source_mapping('ess_p', 'msgq_test.ess_lane_fn(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "BatchSize": 4, "ParallelizationFactor": 3}') AS m_par \gset
SELECT count(DISTINCT pg_temp.lane('key' || g, 3)) AS lanes_used FROM generate_series(0, 11) g;
SELECT msgq.run_maintenance();
SELECT count(*) AS records, count(DISTINCT seq) AS distinct_records FROM msgq_test.ess_lanes;
-- each call got records of one lane only, at most BatchSize of them
SELECT max(n) AS most_lanes_in_a_call, max(k) AS largest_batch
  FROM (SELECT call, count(DISTINCT pg_temp.lane(pkey, 3)) AS n, count(*) AS k FROM msgq_test.ess_lanes GROUP BY call) x;
-- each key in order
SELECT count(*) AS out_of_order FROM (SELECT seq < lag(seq) OVER (PARTITION BY pkey ORDER BY call, seq) AS back
  FROM msgq_test.ess_lanes) x WHERE back;
SELECT lane, lanes, seq IS NOT NULL AS has_position FROM msgq.event_source_shard WHERE uuid = :'m_par' ORDER BY lane;
SELECT checkpoint_sequence_number = (SELECT max(seq) FROM msgq_test.ess_lanes) AS group_at_the_end
  FROM msgq.consumer_group_lag WHERE consumer_group = 'esm:' || :'m_par';
-- a poison record holds its lane back, not the others
TRUNCATE msgq_test.ess_lanes;
SELECT count(*) AS put FROM generate_series(61, 90) g,
	LATERAL msgq.put_record(CASE WHEN g > 0 THEN 'ess_p' END, 'key' || (g % 12),
							convert_to(CASE WHEN g = 65 THEN 'poison' ELSE 'p' || g END, 'UTF8'));
SELECT msgq.run_maintenance();
SELECT count(*) AS processed FROM msgq_test.ess_lanes;
SELECT count(*) FILTER (WHERE pg_temp.lane('key5', 3) = pg_temp.lane(pkey, 3)) AS of_the_poisoned_lane_after_it,
	   count(*) FILTER (WHERE pg_temp.lane('key5', 3) <> pg_temp.lane(pkey, 3)) AS of_other_lanes
  FROM msgq_test.ess_lanes WHERE seq > (SELECT min(sequence_number) FROM msgq.get_records(
	msgq.get_shard_iterator('ess_p', '0', 'TRIM_HORIZON'), 10000) WHERE convert_from(data, 'UTF8') = 'poison');
SELECT (SELECT count(*) FROM generate_series(61, 90) g WHERE g <> 65
		 AND pg_temp.lane('key' || (g % 12), 3) <> pg_temp.lane('key5', 3)) = count(*) AS all_other_lanes_done
  FROM msgq_test.ess_lanes WHERE pg_temp.lane(pkey, 3) <> pg_temp.lane('key5', 3);
SELECT checkpoint_sequence_number < (SELECT min(sequence_number) FROM msgq.get_records(
	msgq.get_shard_iterator('ess_p', '0', 'TRIM_HORIZON'), 10000) WHERE convert_from(data, 'UTF8') = 'poison') AS group_before_poison
  FROM msgq.consumer_group_lag WHERE consumer_group = 'esm:' || :'m_par';
SELECT lane = pg_temp.lane('key5', 3) AS poisoned_lane, attempts > 0 AS retrying
  FROM msgq.event_source_shard WHERE uuid = :'m_par' AND attempts > 0;
-- a new factor starts its lanes at the group's checkpoint: at least once
SELECT checkpoint_sequence_number AS g_before FROM msgq.consumer_group_lag WHERE consumer_group = 'esm:' || :'m_par' \gset
SELECT u->>'ParallelizationFactor' AS factor FROM msgq.update_event_source_mapping(:'m_par', '{"ParallelizationFactor": 2}') u;
TRUNCATE msgq_test.ess_lanes;
SELECT msgq.run_maintenance();
SELECT min(seq) > :g_before AS from_the_group_checkpoint,
	   (SELECT count(*) FROM msgq.get_records(msgq.get_shard_iterator('ess_p', '0', 'TRIM_HORIZON'), 10000) r
		 WHERE r.sequence_number > :g_before AND pg_temp.lane(r.partition_key, 2) <> pg_temp.lane('key5', 2))
	   = count(*) FILTER (WHERE pg_temp.lane(pkey, 2) <> pg_temp.lane('key5', 2)) AS the_other_lane_again,
	   count(*) FILTER (WHERE pg_temp.lane(pkey, 2) = pg_temp.lane('key5', 2) AND data <> 'poison'
						AND seq > (SELECT min(sequence_number) FROM msgq.get_records(
						msgq.get_shard_iterator('ess_p', '0', 'TRIM_HORIZON'), 10000) WHERE convert_from(data, 'UTF8') = 'poison')) AS poisoned_lane_past_it
  FROM msgq_test.ess_lanes;
SELECT lanes, count(*) AS lane_rows FROM msgq.event_source_shard WHERE uuid = :'m_par' GROUP BY lanes ORDER BY lanes;
SELECT msgq.delete_stream('ess_p');
DROP TABLE msgq_test.ess_lanes;
DROP FUNCTION msgq_test.ess_lane_fn(jsonb);
DROP SEQUENCE msgq_test.ess_call;

SELECT msgq.delete_stream(s) FROM unnest(ARRAY['ess_a', 'ess_b', 'ess_c', 'ess_d', 'ess_e']) s;
SELECT msgq.delete_queue('ess_dlq');
DROP TABLE msgq_test.ess_got;
DROP FUNCTION msgq_test.ess_fn(jsonb);
RESET msgq.clock_offset;
ALTER SYSTEM RESET msgq.worker_enabled;
SELECT pg_reload_conf();
