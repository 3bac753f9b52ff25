--
-- streams: create_stream, list_streams, list_shards, delete_stream; the
-- hash space split into shards; routing by the MD5 of the partition key
-- (checked against a hash computed here, independently) or an explicit
-- hash key; put_record's limits; every shard iterator type; get_records
-- in order, with paging, the empty answer, the 10,000 limit; iterators
-- authenticated and expiring after 5 minutes (msgq's test clock).
-- Stream names start with "st_", roles with "regress_msgq_st_".
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

-- The hash key of a partition key, computed here: MD5 of its UTF-8 bytes
-- read as an unsigned big-endian 128-bit integer.
CREATE FUNCTION pg_temp.h(k text) RETURNS numeric LANGUAGE sql AS $$
	SELECT sum(get_byte(decode(md5(convert_to(k, 'UTF8')), 'hex'), i)::numeric
			   * trunc(256::numeric ^ (15 - i)))
	  FROM generate_series(0, 15) i
$$;

--
-- create_stream and the shards
--
SELECT msgq.create_stream('st_a', 4);
SELECT shard_id, parent_shard_id, starting_hash_key, ending_hash_key,
	   starting_sequence_number IS NOT NULL AS has_start, ending_sequence_number
  FROM msgq.list_shards('st_a');
-- contiguous, from 0 to 2^128 - 1, each floor(2^128 / n) wide but the last
SELECT msgq.create_stream('st_3', 3);
SELECT shard_id, ending_hash_key - starting_hash_key + 1 AS width,
	   ending_hash_key - starting_hash_key + 1 = trunc(2::numeric ^ 128 / 3) AS even
  FROM msgq.list_shards('st_3');
SELECT min(starting_hash_key) = 0 AS from_zero,
	   max(ending_hash_key) = trunc(2::numeric ^ 128) - 1 AS to_max,
	   bool_and(starting_hash_key = coalesce(prev + 1, 0)) AS contiguous
  FROM (SELECT starting_hash_key, ending_hash_key,
			   lag(ending_hash_key) OVER (ORDER BY starting_hash_key) AS prev
		  FROM msgq.list_shards('st_3')) s;
SELECT msgq.create_stream('st_od', stream_mode => 'ON_DEMAND');
SELECT count(*) AS on_demand_shards FROM msgq.list_shards('st_od');
SELECT s FROM msgq.list_streams() AS s WHERE s LIKE 'st\_%' ORDER BY s;

-- errors
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('exists', $$SELECT msgq.create_stream('st_a', 1)$$),
	('empty name', $$SELECT msgq.create_stream('', 1)$$),
	('bad name', $$SELECT msgq.create_stream('st a', 1)$$),
	('129 chars', format($$SELECT msgq.create_stream(%L, 1)$$, repeat('s', 129))),
	('128 chars ok', format($$SELECT msgq.create_stream(%L, 1)$$, 'st_' || repeat('s', 125))),
	('dots ok', $$SELECT msgq.create_stream('st_a.b-c', 1)$$),
	('0 shards', $$SELECT msgq.create_stream('st_z', 0)$$),
	('501 shards', $$SELECT msgq.create_stream('st_z', 501)$$),
	('no count', $$SELECT msgq.create_stream('st_z')$$),
	('on demand count', $$SELECT msgq.create_stream('st_z', 2, 'ON_DEMAND')$$),
	('bad mode', $$SELECT msgq.create_stream('st_z', 2, 'SERVERLESS')$$),
	('shards of nothing', $$SELECT * FROM msgq.list_shards('st_nope')$$),
	('delete nothing', $$SELECT msgq.delete_stream('st_nope')$$),
	('put to nothing', $$SELECT * FROM msgq.put_record('st_nope', 'k', '\x00')$$)
	) AS t(f, s);

--
-- put_record: routing
--
CREATE TEMP TABLE st_put AS
SELECT g, 'key-' || g AS k, p.shard_id, p.sequence_number
  FROM generate_series(1, 40) g,
	   LATERAL msgq.put_record('st_a', 'key-' || g, convert_to('record ' || g, 'UTF8')) p;
-- every record went to the shard whose range holds the MD5 of its key
SELECT count(*) AS records,
	   count(*) FILTER (WHERE p.shard_id = s.shard_id) AS routed_as_computed
  FROM st_put p JOIN msgq.list_shards('st_a') s
	ON pg_temp.h(p.k) BETWEEN s.starting_hash_key AND s.ending_hash_key;
SELECT count(DISTINCT shard_id) AS shards_used FROM st_put;
-- a few known hashes (non-ASCII keys are hashed as UTF-8)
SELECT k, pg_temp.h(k) AS hash_key,
	   (SELECT shard_id FROM msgq.put_record('st_a', k, '\x') ) AS shard_id
  FROM (VALUES ('a'), ('partition-key'), ('é'), ('日本')) v(k);
-- sequence numbers increase in put order, and are unique in the stream
SELECT bool_and(sequence_number > prev) AS increasing
  FROM (SELECT sequence_number, lag(sequence_number) OVER (ORDER BY g) AS prev FROM st_put) s
 WHERE prev IS NOT NULL;
SELECT count(DISTINCT sequence_number) = count(*) AS unique_numbers FROM st_put;
-- explicit hash keys
SELECT k, (SELECT shard_id FROM msgq.put_record('st_a', 'x', '\x', explicit_hash_key => k)) AS shard_id
  FROM (VALUES ('0'), ('85070591730234615865843651857942052863'),
			   ('85070591730234615865843651857942052864'),
			   ('340282366920938463463374607431768211455')) v(k);
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('hash 2^128', $$SELECT * FROM msgq.put_record('st_a', 'x', '\x', explicit_hash_key => '340282366920938463463374607431768211456')$$),
	('hash not a number', $$SELECT * FROM msgq.put_record('st_a', 'x', '\x', explicit_hash_key => '12a')$$),
	('hash negative', $$SELECT * FROM msgq.put_record('st_a', 'x', '\x', explicit_hash_key => '-1')$$),
	('empty key', $$SELECT * FROM msgq.put_record('st_a', '', '\x')$$),
	('NULL key', $$SELECT * FROM msgq.put_record('st_a', NULL, '\x')$$),
	('256 chars', format($$SELECT * FROM msgq.put_record('st_a', %L, '\x')$$, repeat('é', 256))),
	('257 chars', format($$SELECT * FROM msgq.put_record('st_a', %L, '\x')$$, repeat('k', 257))),
	('NULL data', $$SELECT * FROM msgq.put_record('st_a', 'k', NULL)$$),
	('1 MiB with key', $$SELECT * FROM msgq.put_record('st_a', 'k', decode(repeat('00', 1048575), 'hex'))$$),
	('1 MiB + 1', $$SELECT * FROM msgq.put_record('st_a', 'k', decode(repeat('00', 1048576), 'hex'))$$),
	('ordering ok', $$SELECT * FROM msgq.put_record('st_a', 'k', '\x', sequence_number_for_ordering => 1)$$),
	('ordering bad', $$SELECT * FROM msgq.put_record('st_a', 'k', '\x', sequence_number_for_ordering => 1.5)$$)
	) AS t(f, s);

--
-- Reading one shard: a stream of one shard, so every record is in it
--
SELECT msgq.create_stream('st_r', 1);
SELECT count(*) AS put FROM generate_series(1, 5) g,
	LATERAL msgq.put_record('st_r', 'k' || g, convert_to('r' || g, 'UTF8'));
CREATE TEMP TABLE st_seq AS
SELECT sequence_number AS s, convert_from(data, 'UTF8') AS d
  FROM msgq.get_records(msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'TRIM_HORIZON'));
SELECT d FROM st_seq ORDER BY s;
-- the row shape: next iterator and lag repeated on each row, no child shards
SELECT count(*) AS rows, count(DISTINCT next_shard_iterator) AS one_next,
	   max(millis_behind_latest) AS behind, count(child_shards) AS child_shards
  FROM msgq.get_records(msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'TRIM_HORIZON'));

-- AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER
SELECT convert_from(data, 'UTF8') AS at_r3
  FROM msgq.get_records(msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'AT_SEQUENCE_NUMBER',
		(SELECT s FROM st_seq WHERE d = 'r3')), 1);
SELECT convert_from(data, 'UTF8') AS after_r3
  FROM msgq.get_records(msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'AFTER_SEQUENCE_NUMBER',
		(SELECT s FROM st_seq WHERE d = 'r3')));
-- paging with a limit: each next iterator continues where the last stopped
CREATE TEMP TABLE st_it (it text);
INSERT INTO st_it SELECT msgq.get_shard_iterator('st_r', '0', 'TRIM_HORIZON');
CREATE FUNCTION pg_temp.page(n int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	got text;
	nxt text;
BEGIN
	SELECT string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number), max(next_shard_iterator)
	  INTO got, nxt
	  FROM msgq.get_records((SELECT it FROM st_it), n);
	UPDATE st_it SET it = nxt;
	RETURN coalesce(got, '(none)');
END $$;
SELECT pg_temp.page(2) AS page1, pg_temp.page(2) AS page2, pg_temp.page(2) AS page3,
	   pg_temp.page(2) AS page4;
-- the empty answer: one row, record columns NULL, a next iterator
SELECT sequence_number, approximate_arrival_timestamp, partition_key, data,
	   next_shard_iterator IS NOT NULL AS has_next, millis_behind_latest, child_shards
  FROM msgq.get_records((SELECT it FROM st_it));
-- a new record shows up through the same iterator
SELECT shard_id FROM msgq.put_record('st_r', 'k6', convert_to('r6', 'UTF8'));
SELECT pg_temp.page(10) AS after_new_put;
-- LATEST starts after the newest record
UPDATE st_it SET it = msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'LATEST');
SELECT pg_temp.page(10) AS latest_before;
SELECT shard_id FROM msgq.put_record('st_r', 'k7', convert_to('r7', 'UTF8'));
SELECT pg_temp.page(10) AS latest_after;
-- MillisBehindLatest: the time between the last record returned and the tip
SET msgq.clock_offset = '10s';
SELECT shard_id FROM msgq.put_record('st_r', 'k8', convert_to('r8', 'UTF8'));
SELECT convert_from(data, 'UTF8') AS d, millis_behind_latest >= 9000 AS about_10s_behind
  FROM msgq.get_records(msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'TRIM_HORIZON'), 1);
-- AT_TIMESTAMP: the first record that arrived at or after the time
SELECT convert_from(data, 'UTF8') AS at_time
  FROM msgq.get_records(msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'AT_TIMESTAMP',
		at_timestamp => msgq.now() - interval '5 seconds'));
SELECT count(data) AS in_future
  FROM msgq.get_records(msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'AT_TIMESTAMP',
		at_timestamp => msgq.now() + interval '1 hour'));

-- iterator errors
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('no such shard', $$SELECT msgq.get_shard_iterator('st_r', 'shardId-000000000001', 'LATEST')$$),
	('bad shard id', $$SELECT msgq.get_shard_iterator('st_r', 'shard-1', 'LATEST')$$),
	('bad type', $$SELECT msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'OLDEST')$$),
	('AT without number', $$SELECT msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'AT_SEQUENCE_NUMBER')$$),
	('AT before shard', $$SELECT msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'AT_SEQUENCE_NUMBER', 0)$$),
	('AT not a number', $$SELECT msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'AT_SEQUENCE_NUMBER', -5)$$),
	('AT_TIMESTAMP without time', $$SELECT msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'AT_TIMESTAMP')$$),
	('forged', $$SELECT * FROM msgq.get_records('AAAAAQAAAAAAAAABXNpCR0njumji3cuGjme2T0re2f4VMW7D')$$),
	('garbage', $$SELECT * FROM msgq.get_records('not an iterator')$$),
	('NULL', $$SELECT * FROM msgq.get_records(NULL)$$),
	('limit 0', $$SELECT * FROM msgq.get_records(msgq.get_shard_iterator('st_r', '0', 'LATEST'), 0)$$),
	('limit 10001', $$SELECT * FROM msgq.get_records(msgq.get_shard_iterator('st_r', '0', 'LATEST'), 10001)$$),
	('limit 10000', $$SELECT * FROM msgq.get_records(msgq.get_shard_iterator('st_r', '0', 'LATEST'), 10000)$$)
	) AS t(f, s);
-- a receipt handle is not an iterator, even though both are msgq's tokens
SELECT msgq.create_queue('st_q') IS NOT NULL AS created;
SELECT count(*) AS sent FROM msgq.send_message('st_q', 'x');
SELECT msgq_test.err(format('SELECT * FROM msgq.get_records(%L)', receipt_handle)) AS handle_as_iterator
  FROM msgq.receive_message('st_q');
SELECT 'ok' AS deleted FROM msgq.delete_queue('st_q');
-- iterators expire after 5 minutes
RESET msgq.clock_offset;
UPDATE st_it SET it = msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'TRIM_HORIZON');
SET msgq.clock_offset = '300s';
SELECT msgq_test.err('SELECT * FROM msgq.get_records((SELECT it FROM st_it))') AS after_300s;
SET msgq.clock_offset = '301s';
SELECT msgq_test.err('SELECT * FROM msgq.get_records((SELECT it FROM st_it))') AS after_301s;
RESET msgq.clock_offset;

--
-- put_records: every entry checked first (a bad one fails the request, as
-- in Kinesis), then all written with one statement, one row per entry in
-- entry order
--
SELECT msgq.create_stream('st_p', 4);
SELECT r.shard_id, r.sequence_number IS NOT NULL AS has_seq, r.error_code,
	   r.shard_id = (SELECT shard_id FROM msgq.list_shards('st_p')
					  WHERE pg_temp.h(v.k) BETWEEN starting_hash_key AND ending_hash_key) AS routed_by_md5
  FROM msgq.put_records('st_p', '[{"PartitionKey": "a", "Data": "b25l"},
								  {"PartitionKey": "b", "Data": "dHdv"},
								  {"PartitionKey": "c", "Data": ""},
								  {"PartitionKey": "d", "Data": "Zm91cg=="}]') WITH ORDINALITY AS r(shard_id, sequence_number, error_code, error_message, ord)
  JOIN (VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')) v(ord, k) USING (ord)
 ORDER BY ord;
SELECT shard_id FROM msgq.put_records('st_p', '[{"PartitionKey": "x", "Data": "", "ExplicitHashKey": "0"},
												{"PartitionKey": "x", "Data": "", "ExplicitHashKey": "340282366920938463463374607431768211455"}]');
-- the array form, for SQL callers
SELECT count(*) AS put, count(DISTINCT sequence_number) AS distinct_numbers
  FROM msgq.put_records('st_p', ARRAY(SELECT 'k' || g FROM generate_series(1, 500) g),
						ARRAY(SELECT convert_to('v' || g, 'UTF8') FROM generate_series(1, 500) g));
-- sequence numbers follow the entries
SELECT bool_and(sequence_number > prev) AS in_entry_order
  FROM (SELECT sequence_number, lag(sequence_number) OVER (ORDER BY ord) AS prev
		  FROM msgq.put_records('st_p', ARRAY['a', 'b', 'c', 'd', 'e'], ARRAY['\x01', '\x02', '\x03', '\x04', '\x05']::bytea[])
			   WITH ORDINALITY AS r(shard_id, sequence_number, error_code, error_message, ord)) s
 WHERE prev IS NOT NULL;
SELECT convert_from(data, 'UTF8') AS one
  FROM msgq.get_records(msgq.get_shard_iterator('st_p',
		(SELECT shard_id FROM msgq.list_shards('st_p') WHERE pg_temp.h('a') BETWEEN starting_hash_key AND ending_hash_key),
		'TRIM_HORIZON'), 1);
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('empty', $$SELECT * FROM msgq.put_records('st_p', '[]'::jsonb)$$),
	('not an array', $$SELECT * FROM msgq.put_records('st_p', '{"PartitionKey": "a", "Data": ""}'::jsonb)$$),
	('501 records', $$SELECT * FROM msgq.put_records('st_p', ARRAY(SELECT 'k' FROM generate_series(1, 501)), ARRAY(SELECT '\x'::bytea FROM generate_series(1, 501)))$$),
	('lengths differ', $$SELECT * FROM msgq.put_records('st_p', ARRAY['a', 'b'], ARRAY['\x'::bytea])$$),
	('no key', $$SELECT * FROM msgq.put_records('st_p', '[{"PartitionKey": "a", "Data": ""}, {"Data": ""}]'::jsonb)$$),
	('no data', $$SELECT * FROM msgq.put_records('st_p', '[{"PartitionKey": "a"}]'::jsonb)$$),
	('bad base64', $$SELECT * FROM msgq.put_records('st_p', '[{"PartitionKey": "a", "Data": "!!"}]'::jsonb)$$),
	('bad hash key', $$SELECT * FROM msgq.put_records('st_p', '[{"PartitionKey": "a", "Data": "", "ExplicitHashKey": "x"}]'::jsonb)$$),
	('NULL key in array', $$SELECT * FROM msgq.put_records('st_p', ARRAY['a', NULL], ARRAY['\x', '\x']::bytea[])$$),
	('over 10 MiB', $$SELECT * FROM msgq.put_records('st_p', ARRAY(SELECT 'k' FROM generate_series(1, 11)), ARRAY(SELECT decode(repeat('00', 1048000), 'hex') FROM generate_series(1, 11)))$$)
	) AS t(f, s);
-- nothing of a failed request was written (records are in the stream's
-- time slices: count the rows of each slice table)
CREATE FUNCTION pg_temp.records_in(stream text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	t text;
	n bigint := 0;
	c bigint;
BEGIN
	FOR t IN SELECT table_name FROM msgq.stream_slices WHERE stream_name = stream LOOP
		EXECUTE format('SELECT count(*) FROM %s', t) INTO c;
		n := n + c;
	END LOOP;
	RETURN n;
END $$;
SELECT pg_temp.records_in('st_p') AS records_in_st_p;

--
-- describe_stream_summary
--
SELECT jsonb_pretty(msgq.describe_stream_summary('st_p') - 'StreamCreationTimestamp') AS summary;

--
-- checkpoints: written in the consumer's transaction; AFTER_CHECKPOINT
-- starts after the group's checkpoint (or at the shard's start)
--
SELECT msgq.create_stream('st_c', 1);
SELECT count(*) AS put FROM generate_series(1, 6) g,
	LATERAL msgq.put_record('st_c', 'k', convert_to('c' || g, 'UTF8'));
CREATE TEMP TABLE st_c_seq AS
SELECT sequence_number AS s, convert_from(data, 'UTF8') AS d
  FROM msgq.get_records(msgq.get_shard_iterator('st_c', '0', 'TRIM_HORIZON'));
CREATE FUNCTION pg_temp.after_cp(g text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number), '(none)')
	  FROM msgq.get_records(msgq.get_shard_iterator('st_c', '0', 'AFTER_CHECKPOINT', consumer_group => g))
$$;
SELECT pg_temp.after_cp('billing') AS no_checkpoint_yet;
SELECT msgq.checkpoint('st_c', 'billing', 'shardId-000000000000', (SELECT s FROM st_c_seq WHERE d = 'c2'));
SELECT pg_temp.after_cp('billing') AS after_c2, pg_temp.after_cp('audit') AS other_group;
-- rolled back with the consumer's work: not kept
BEGIN;
SELECT msgq.checkpoint('st_c', 'billing', '0', (SELECT s FROM st_c_seq WHERE d = 'c5'));
SELECT pg_temp.after_cp('billing') AS inside;
ROLLBACK;
SELECT pg_temp.after_cp('billing') AS after_rollback;
-- the same checkpoint again is fine; backwards, or not a record of the shard, is not
SELECT msgq.checkpoint('st_c', 'billing', '0', (SELECT s FROM st_c_seq WHERE d = 'c2'));
SELECT f, regexp_replace(msgq_test.err(s), '\m[0-9]{3,6}\M', 'N', 'g') AS result
  FROM (VALUES
	('backwards', format($$SELECT msgq.checkpoint('st_c', 'billing', '0', %s)$$, (SELECT s FROM st_c_seq WHERE d = 'c1'))),
	('not a record', $$SELECT msgq.checkpoint('st_c', 'billing', '0', 1)$$),
	('other shard', format($$SELECT msgq.checkpoint('st_p', 'billing', '0', %s)$$, (SELECT s FROM st_c_seq WHERE d = 'c3'))),
	('no such shard', $$SELECT msgq.checkpoint('st_c', 'billing', '7', 1)$$),
	('no group', $$SELECT msgq.checkpoint('st_c', '', '0', 1)$$),
	('no number', $$SELECT msgq.checkpoint('st_c', 'billing', '0', NULL)$$),
	('AFTER_CHECKPOINT without group', $$SELECT msgq.get_shard_iterator('st_c', '0', 'AFTER_CHECKPOINT')$$)
	) AS t(f, s);
SELECT consumer_group, shard_index, seq = (SELECT s FROM st_c_seq WHERE d = 'c2') AS at_c2
  FROM msgq.stream_checkpoint ORDER BY 1;

--
-- retention: 24 h by default; records past it are never returned; a
-- shorter period hides older records at once, a longer one does not bring
-- expired records back (msgq's test clock)
--
SELECT msgq.create_stream('st_ret', 1);
CREATE FUNCTION pg_temp.all_ret() RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number), '(none)')
	  FROM msgq.get_records(msgq.get_shard_iterator('st_ret', '0', 'TRIM_HORIZON'))
$$;
SELECT shard_id FROM msgq.put_record('st_ret', 'k', convert_to('at 0h', 'UTF8'));
SET msgq.clock_offset = '23h';
SELECT shard_id FROM msgq.put_record('st_ret', 'k', convert_to('at 23h', 'UTF8'));
SELECT pg_temp.all_ret() AS at_23h;
SET msgq.clock_offset = '86401s';
SELECT pg_temp.all_ret() AS after_24h;
SELECT msgq.increase_stream_retention_period('st_ret', 48);
SELECT pg_temp.all_ret() AS after_increase,
	   msgq.describe_stream_summary('st_ret')->'RetentionPeriodHours' AS hours;
SET msgq.clock_offset = '169201s';	-- 47 h and 1 s: "at 23h" is 24 h and 1 s old
SELECT pg_temp.all_ret() AS at_47h_under_48h;
SELECT msgq.decrease_stream_retention_period('st_ret', 24);
SELECT pg_temp.all_ret() AS after_decrease,
	   msgq.describe_stream_summary('st_ret')->'RetentionPeriodHours' AS hours;
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('23 hours', $$SELECT msgq.decrease_stream_retention_period('st_ret', 23)$$),
	('8761 hours', $$SELECT msgq.increase_stream_retention_period('st_ret', 8761)$$),
	('increase to less', $$SELECT msgq.increase_stream_retention_period('st_ret', 24)$$),
	('decrease to more', $$SELECT msgq.decrease_stream_retention_period('st_ret', 30)$$),
	('NULL', $$SELECT msgq.increase_stream_retention_period('st_ret', NULL)$$),
	('no stream', $$SELECT msgq.increase_stream_retention_period('st_nope', 48)$$)
	) AS t(f, s);
RESET msgq.clock_offset;

--
-- consumers and subscribe_to_shard: a subscription is a row (consumer,
-- shard, next position, start time); each call returns the records from
-- its position and advances it in the caller's transaction; after five
-- minutes a call starts a new subscription from its starting position
--
SELECT msgq.create_stream('st_sub', 1);
SELECT msgq.register_stream_consumer('st_sub', 'app') AS consumer_arn;
SELECT consumer_name, consumer_arn, consumer_status FROM msgq.list_stream_consumers('st_sub');
SELECT msgq.describe_stream_summary('st_sub')->'ConsumerCount' AS consumer_count;
SELECT count(*) AS put FROM generate_series(1, 3) g,
	LATERAL msgq.put_record('st_sub', 'k', convert_to('s' || g, 'UTF8'));
CREATE FUNCTION pg_temp.sub(pos text DEFAULT 'TRIM_HORIZON', n int DEFAULT 10000) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number), '(none)')
	  FROM msgq.subscribe_to_shard('st_sub', 'app', 'shardId-000000000000', pos,
								   wait_time_seconds => 0, record_limit => n)
$$;
SELECT pg_temp.sub(n => 2) AS first_call, pg_temp.sub() AS second_call, pg_temp.sub() AS third_call;
SELECT count(*) AS put FROM msgq.put_record('st_sub', 'k', convert_to('s4', 'UTF8'));
-- a call that rolls back is delivered again
BEGIN;
SELECT pg_temp.sub() AS inside;
ROLLBACK;
SELECT pg_temp.sub() AS again_after_rollback;
-- the empty answer carries the continuation sequence number
SELECT sequence_number, data, continuation_sequence_number IS NOT NULL AS has_continuation,
	   millis_behind_latest
  FROM msgq.subscribe_to_shard('st_sub', 'app', '0', wait_time_seconds => 0);
-- five minutes later the subscription starts again, here from the trim horizon
SET msgq.clock_offset = '301s';
SELECT pg_temp.sub() AS new_subscription;
RESET msgq.clock_offset;
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('consumer exists', $$SELECT msgq.register_stream_consumer('st_sub', 'app')$$),
	('bad consumer name', $$SELECT msgq.register_stream_consumer('st_sub', 'a b')$$),
	('no consumer', $$SELECT * FROM msgq.subscribe_to_shard('st_sub', 'nobody', '0', wait_time_seconds => 0)$$),
	('no shard', $$SELECT * FROM msgq.subscribe_to_shard('st_sub', 'app', '3', wait_time_seconds => 0)$$),
	('wait 21', $$SELECT * FROM msgq.subscribe_to_shard('st_sub', 'app', '0', wait_time_seconds => 21)$$),
	('limit 0', $$SELECT * FROM msgq.subscribe_to_shard('st_sub', 'app', '0', wait_time_seconds => 0, record_limit => 0)$$),
	('deregister nobody', $$SELECT msgq.deregister_stream_consumer('st_sub', 'nobody')$$)
	) AS t(f, s);
SELECT count(*) AS registered FROM generate_series(1, 19) g,
	LATERAL msgq.register_stream_consumer('st_sub', 'c' || g);
SELECT msgq_test.err($$SELECT msgq.register_stream_consumer('st_sub', 'c21')$$) AS twenty_first;
SELECT msgq.deregister_stream_consumer('st_sub', 'app');
SELECT count(*) AS consumers, count(*) FILTER (WHERE consumer_name = 'app') AS app
  FROM msgq.list_stream_consumers('st_sub');
SELECT count(*) AS subscriptions_left FROM msgq.stream_subscription s
  JOIN msgq.stream USING (stream_id) WHERE stream_name = 'st_sub' AND consumer_name = 'app';

--
-- resharding: split_shard and merge_shards close shards and add children
-- numbered after everything their parents hold; puts go to the open
-- shards; a closed shard read to its end has no next iterator and names
-- its children
--
SELECT msgq.create_stream('st_rs', 2);
SELECT count(*) AS put FROM generate_series(1, 10) g,
	LATERAL msgq.put_record('st_rs', 'k' || g, convert_to('before ' || g, 'UTF8'));
SELECT msgq.split_shard('st_rs', 'shardId-000000000000',
	(SELECT trunc((starting_hash_key + ending_hash_key + 1) / 2)::text
	   FROM msgq.list_shards('st_rs') WHERE shard_id = 'shardId-000000000000'));
SELECT shard_id, parent_shard_id, adjacent_parent_shard_id, starting_hash_key, ending_hash_key,
	   ending_sequence_number IS NOT NULL AS closed
  FROM msgq.list_shards('st_rs');
SELECT (SELECT min(starting_sequence_number) FROM msgq.list_shards('st_rs')
		 WHERE parent_shard_id = 'shardId-000000000000')
	 > (SELECT ending_sequence_number FROM msgq.list_shards('st_rs')
		 WHERE shard_id = 'shardId-000000000000') AS children_after_parent;
-- puts now go to the children, never to the closed shard
SELECT count(*) FILTER (WHERE p.shard_id = 'shardId-000000000000') AS to_closed,
	   count(*) FILTER (WHERE p.shard_id IN ('shardId-000000000002', 'shardId-000000000003')) AS to_children
  FROM generate_series(11, 60) g,
	   LATERAL msgq.put_record('st_rs', 'k' || g, convert_to('after ' || g, 'UTF8')) p
 WHERE pg_temp.h('k' || g) < 170141183460469231731687303715884105728;
-- the closed shard, read to its end
SELECT count(data) AS records, bool_and(next_shard_iterator IS NULL) AS no_next,
	   min(jsonb_array_length(child_shards)) AS children
  FROM msgq.get_records(msgq.get_shard_iterator('st_rs', 'shardId-000000000000', 'TRIM_HORIZON'));
SELECT jsonb_pretty(child_shards) AS child_shards
  FROM msgq.get_records(msgq.get_shard_iterator('st_rs', 'shardId-000000000000', 'TRIM_HORIZON')) LIMIT 1;
-- merge the two children back into one
SELECT msgq.merge_shards('st_rs', 'shardId-000000000003', 'shardId-000000000002');
SELECT shard_id, parent_shard_id, adjacent_parent_shard_id, starting_hash_key, ending_hash_key,
	   ending_sequence_number IS NOT NULL AS closed
  FROM msgq.list_shards('st_rs') WHERE shard_id = 'shardId-000000000004';
SELECT count(*) AS open_shards FROM msgq.list_shards('st_rs') WHERE ending_sequence_number IS NULL;
SELECT msgq.create_stream('st_rs3', 3);
SELECT msgq.create_stream('st_rs_od', stream_mode => 'ON_DEMAND');
-- update_shard_count: uniform scaling, doubling then halving
SELECT msgq.create_stream('st_us', 2);
SELECT msgq.update_shard_count('st_us', 4);
SELECT shard_id, parent_shard_id, adjacent_parent_shard_id, starting_hash_key, ending_hash_key
  FROM msgq.list_shards('st_us') WHERE ending_sequence_number IS NULL;
SELECT msgq.update_shard_count('st_us', 2);
SELECT shard_id, parent_shard_id, adjacent_parent_shard_id, starting_hash_key, ending_hash_key
  FROM msgq.list_shards('st_us') WHERE ending_sequence_number IS NULL;
SELECT msgq.update_shard_count('st_us', 3) - 'StreamName' AS to_three;
SELECT shard_id, parent_shard_id, adjacent_parent_shard_id
  FROM msgq.list_shards('st_us') WHERE ending_sequence_number IS NULL;
SELECT count(*) AS shards_ever FROM msgq.list_shards('st_us');
-- list_shards: paging and ShardFilter
SELECT string_agg(shard_id, ',' ORDER BY shard_id) AS at_latest
  FROM msgq.list_shards('st_us', shard_filter_type => 'AT_LATEST');
SELECT string_agg(shard_id, ',' ORDER BY shard_id) AS page
  FROM msgq.list_shards('st_us', exclusive_start_shard_id => 'shardId-000000000007', max_results => 2);
SELECT string_agg(shard_id, ',' ORDER BY shard_id) AS after_shard_8
  FROM msgq.list_shards('st_us', shard_filter_type => 'AFTER_SHARD_ID', shard_filter_shard_id => '8');
SELECT count(*) AS from_trim_horizon
  FROM msgq.list_shards('st_us', shard_filter_type => 'FROM_TRIM_HORIZON');
SET msgq.clock_offset = '1000s';
SELECT msgq.create_stream('st_ts', 1);
SET msgq.clock_offset = '1100s';
SELECT msgq.split_shard('st_ts', '0', '170141183460469231731687303715884105728');
SELECT f, string_agg(shard_id, ',' ORDER BY shard_id) AS shards
  FROM (VALUES ('AT_TIMESTAMP', -50), ('AT_TIMESTAMP', 10), ('FROM_TIMESTAMP', -50), ('FROM_TIMESTAMP', 10)) v(f, secs),
	   LATERAL msgq.list_shards('st_ts', shard_filter_type => f,
									shard_filter_timestamp => msgq.now() + make_interval(secs => secs))
 GROUP BY f, secs ORDER BY f, secs;
RESET msgq.clock_offset;
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('bad filter', $$SELECT * FROM msgq.list_shards('st_us', shard_filter_type => 'NEWEST')$$),
	('max 0', $$SELECT * FROM msgq.list_shards('st_us', max_results => 0)$$),
	('bad start id', $$SELECT * FROM msgq.list_shards('st_us', exclusive_start_shard_id => 'shard-x')$$),
	('AFTER_SHARD_ID without id', $$SELECT * FROM msgq.list_shards('st_us', shard_filter_type => 'AFTER_SHARD_ID')$$),
	('AT_TIMESTAMP without time', $$SELECT * FROM msgq.list_shards('st_us', shard_filter_type => 'AT_TIMESTAMP')$$)
	) AS t(f, s);
-- update_stream_mode: at most twice in 24 hours
SELECT msgq.create_stream('st_mode', 2);
SELECT msgq.update_stream_mode('st_mode', 'ON_DEMAND');
SELECT msgq.describe_stream_summary('st_mode')->'StreamModeDetails' AS mode,
	   (SELECT count(*) FROM msgq.list_shards('st_mode')) AS shards;
SELECT msgq_test.err($$SELECT msgq.split_shard('st_mode', '0', '5')$$) AS split_on_demand;
SELECT msgq.update_stream_mode('st_mode', 'PROVISIONED');
SELECT msgq_test.err($$SELECT msgq.update_stream_mode('st_mode', 'ON_DEMAND')$$) AS third_in_24h;
SET msgq.clock_offset = '86401s';
SELECT msgq.update_stream_mode('st_mode', 'ON_DEMAND');
RESET msgq.clock_offset;
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('same mode', $$SELECT msgq.update_stream_mode('st_mode', 'ON_DEMAND')$$),
	('bad mode', $$SELECT msgq.update_stream_mode('st_mode', 'SERVERLESS')$$),
	('NULL mode', $$SELECT msgq.update_stream_mode('st_mode', NULL)$$)
	) AS t(f, s);
SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('more than double', $$SELECT msgq.update_shard_count('st_us', 7)$$),
	('less than half', $$SELECT msgq.update_shard_count('st_us', 1)$$),
	('same count', $$SELECT msgq.update_shard_count('st_us', 3)$$),
	('bad scaling type', $$SELECT msgq.update_shard_count('st_us', 4, 'SPLIT_ALL')$$),
	('no count', $$SELECT msgq.update_shard_count('st_us', NULL)$$),
	('on demand', $$SELECT msgq.update_shard_count('st_rs_od', 2)$$)
	) AS t(f, s);

SELECT f, msgq_test.err(s) AS result
  FROM (VALUES
	('split a closed shard', $$SELECT msgq.split_shard('st_rs', '0', '1')$$),
	('split at the start', $$SELECT msgq.split_shard('st_rs', '1', '170141183460469231731687303715884105728')$$),
	('split outside', $$SELECT msgq.split_shard('st_rs', '4', '170141183460469231731687303715884105728')$$),
	('split no key', $$SELECT msgq.split_shard('st_rs', '4', NULL)$$),
	('split bad key', $$SELECT msgq.split_shard('st_rs', '4', 'x')$$),
	('split no shard', $$SELECT msgq.split_shard('st_rs', '9', '5')$$),
	('merge with itself', $$SELECT msgq.merge_shards('st_rs', '4', '4')$$),
	('merge not adjacent', $$SELECT msgq.merge_shards('st_rs3', '0', '2')$$),
	('merge a closed shard', $$SELECT msgq.merge_shards('st_rs', '0', '1')$$),
	('split on demand', $$SELECT msgq.split_shard('st_rs_od', '0', '5')$$)
	) AS t(f, s);

--
-- PREPARE TRANSACTION is refused after a put, and the put is undone
SELECT msgq.create_stream('st_prep', 1);
BEGIN;
SELECT sequence_number IS NOT NULL AS put FROM msgq.put_record('st_prep', 'k', '\x78');
PREPARE TRANSACTION 'msgq_put';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS prepared FROM pg_prepared_xacts;
SELECT count(sequence_number) AS records
  FROM msgq.get_records(msgq.get_shard_iterator('st_prep', 'shardId-000000000000', 'TRIM_HORIZON'));
-- a put in the next transaction works
SELECT sequence_number IS NOT NULL AS put FROM msgq.put_record('st_prep', 'k', '\x79');

-- privileges: the owner (and its members, and superusers) only
--
CREATE ROLE regress_msgq_st_user;
UPDATE st_it SET it = msgq.get_shard_iterator('st_r', 'shardId-000000000000', 'TRIM_HORIZON');
GRANT SELECT ON st_it TO regress_msgq_st_user;
SET ROLE regress_msgq_st_user;
SELECT msgq_test.err($$SELECT msgq.create_stream('st_mine', 1)$$) AS create_stream;
SELECT msgq_test.err($$SELECT * FROM msgq.put_record('st_r', 'k', '\x')$$) AS put_record;
SELECT msgq_test.err($$SELECT msgq.get_shard_iterator('st_r', '0', 'LATEST')$$) AS get_shard_iterator;
SELECT msgq_test.err('SELECT * FROM msgq.get_records((SELECT it FROM st_it))') AS get_records;
SELECT msgq_test.err($$SELECT * FROM msgq.put_records('st_r', ARRAY['k'], ARRAY['\x'::bytea])$$) AS put_records;
SELECT msgq_test.err($$SELECT msgq.checkpoint('st_r', 'g', '0', 1)$$) AS checkpoint;
SELECT msgq_test.err($$SELECT msgq.describe_stream_summary('st_r')$$) AS describe;
SELECT msgq_test.err($$SELECT msgq.register_stream_consumer('st_r', 'x')$$) AS register;
SELECT msgq_test.err($$SELECT msgq.split_shard('st_r', '0', '5')$$) AS split;
SELECT count(*) AS streams_listed FROM msgq.list_streams();
RESET ROLE;

-- a role that owns a stream cannot be dropped
GRANT EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) TO regress_msgq_st_user;
SET ROLE regress_msgq_st_user;
SELECT msgq.create_stream('st_owned', 1);
SELECT s FROM msgq.list_streams() AS s;
RESET ROLE;
SELECT msgq_test.err('DROP ROLE regress_msgq_st_user') AS drop_owner;
SET ROLE regress_msgq_st_user;
SELECT msgq.delete_stream('st_owned');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) FROM regress_msgq_st_user;

--
-- A stream named by its ARN, as the Kinesis API's StreamARN, wherever a
-- stream is named; a consumer's ARN or a malformed one names no stream
--
SELECT msgq.create_stream('st_arn', 1);
SELECT 'arn:aws:kinesis:msgq:' || current_database() || ':stream/st_arn' AS st_arn \gset
SELECT shard_id FROM msgq.put_record(:'st_arn', 'k', '\x0102');
SELECT msgq.describe_stream_summary(:'st_arn')->>'StreamName' AS by_arn;
SELECT shard_id FROM msgq.list_shards(:'st_arn');
SELECT partition_key, data
  FROM msgq.get_records(msgq.get_shard_iterator(:'st_arn', 'shardId-000000000000', 'TRIM_HORIZON'));
SELECT count(*) AS put_many FROM msgq.put_records(:'st_arn', ARRAY['a', 'b'], ARRAY['\x03', '\x04']::bytea[]);
SELECT msgq.register_stream_consumer(:'st_arn', 'arn_app') LIKE :'st_arn' || '/consumer/arn_app%' AS consumer_arn;
SELECT replace(msgq_test.err(format('SELECT msgq.describe_stream_summary(%L)', :'st_arn' || '/consumer/arn_app')),
			   current_database(), 'DB') AS consumer_arn_is_no_stream;
SELECT msgq_test.err('SELECT msgq.describe_stream_summary(''arn:aws:kinesis:msgq:x:stream/'')') AS empty_name;
SELECT msgq_test.err('SELECT msgq.describe_stream_summary(''arn:aws:kinesis:msgq:x:stream/nosuch'')') AS unknown;
SELECT msgq.delete_stream(:'st_arn');
SELECT count(*) AS gone FROM msgq.list_streams() AS s WHERE s = 'st_arn';

--
-- delete_stream
--
SELECT msgq.delete_stream('st_r');
SELECT msgq_test.err('SELECT * FROM msgq.get_records((SELECT it FROM st_it))') AS old_iterator;
SELECT s FROM msgq.list_streams() AS s WHERE s LIKE 'st\_%' ORDER BY s;
SELECT count(*) AS deleted FROM msgq.list_streams() AS s, LATERAL msgq.delete_stream(s) WHERE s LIKE 'st\_%';
SELECT count(*) AS left_streams FROM msgq.list_streams() AS s WHERE s LIKE 'st\_%';
-- and their time slices are gone, tables and all
SELECT count(*) AS left_slices FROM msgq.stream_slice;
SELECT count(*) AS left_slice_tables FROM pg_class
 WHERE relnamespace = 'msgq'::regnamespace AND relname ~ '^stream_slice_[0-9]+$';
DROP TABLE st_it;
DROP ROLE regress_msgq_st_user;
