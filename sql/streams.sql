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
SELECT count(*) AS streams_listed FROM msgq.list_streams();
RESET ROLE;

--
-- delete_stream
--
SELECT msgq.delete_stream('st_r');
SELECT msgq_test.err('SELECT * FROM msgq.get_records((SELECT it FROM st_it))') AS old_iterator;
SELECT s FROM msgq.list_streams() AS s WHERE s LIKE 'st\_%' ORDER BY s;
SELECT count(*) AS deleted FROM msgq.list_streams() AS s, LATERAL msgq.delete_stream(s) WHERE s LIKE 'st\_%';
SELECT count(*) AS left_streams FROM msgq.list_streams() AS s WHERE s LIKE 'st\_%';
SELECT count(*) AS left_records FROM msgq.stream_record;
DROP TABLE st_it;
DROP ROLE regress_msgq_st_user;
