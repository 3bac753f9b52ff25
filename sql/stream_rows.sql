--
-- stream_rows: the write and read paths of streams.  Puts go straight into
-- the current slice's table and primary key (no executor), so large data
-- is compressed or moved out of line as an INSERT would, and every record
-- is visible to the rest of its transaction.  get_records, called as a
-- function, reads each slice once, copying the records it returns, into a
-- result store kept in the backend's memory and given back once no query
-- uses it (even after failed ones); sequence numbers are built as numeric
-- directly.  Stream names start with "rw_".
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
RESET client_min_messages;

SELECT msgq.create_stream('rw_big', 1);
SELECT msgq.create_stream('rw_small', 1);

--
-- Large data comes back byte for byte: 1 MB of zeros (compressed in the
-- row) and 640 kB of hashes (incompressible: stored out of line)
--
CREATE TEMP TABLE rw_in AS
SELECT 1 AS i, decode(repeat('00', 1000000), 'hex') AS d
UNION ALL
SELECT 2, (SELECT string_agg(sha256(int4send(g)), ''::bytea ORDER BY g)
			 FROM generate_series(1, 20000) g);
SELECT r.i, p.shard_id
  FROM rw_in r, LATERAL msgq.put_record('rw_big', 'k' || r.i, r.d) p ORDER BY r.i;
SELECT count(*) AS records, bool_and(g.data = r.d) AS same_data,
	   sum(octet_length(g.data)) AS bytes
  FROM msgq.get_records(msgq.get_shard_iterator('rw_big', '0', 'TRIM_HORIZON')) g
  JOIN rw_in r ON g.partition_key = 'k' || r.i;
-- stored as an INSERT stores them: compressed, and out of line
SELECT format('SELECT partition_key, pg_column_size(data) < octet_length(data) AS compressed'
			  ' FROM %s ORDER BY seq', table_name) AS q, table_name AS t
  FROM msgq.stream_slices WHERE stream_name = 'rw_big' AND state = 'current' \gset
:q;
SELECT pg_relation_size(reltoastrelid) > 0 AS out_of_line FROM pg_class WHERE oid = :'t'::regclass;

--
-- The 10 MiB cap of one answer: ten records of 1,000,000 bytes fit, the
-- eleventh comes with the next iterator
--
SELECT count(*) AS put FROM generate_series(0, 1) b,
	LATERAL msgq.put_records('rw_big',
		ARRAY(SELECT 'c' || g FROM generate_series(b * 6 + 1, b * 6 + 6) g WHERE g <= 11),
		ARRAY(SELECT decode(repeat('01', 1000000), 'hex') FROM generate_series(b * 6 + 1, b * 6 + 6) g
			   WHERE g <= 11));
CREATE TEMP TABLE rw_it (it text);
INSERT INTO rw_it
SELECT msgq.get_shard_iterator('rw_big', '0', 'AFTER_SEQUENCE_NUMBER',
		(SELECT max(sequence_number)
		   FROM msgq.get_records(msgq.get_shard_iterator('rw_big', '0', 'TRIM_HORIZON'), 2)));
SELECT count(*) AS first_answer, string_agg(partition_key, ',' ORDER BY sequence_number) AS keys,
	   max(octet_length(data)) AS size
  FROM msgq.get_records((SELECT it FROM rw_it));
SELECT string_agg(partition_key, ',') AS second_answer
  FROM msgq.get_records((SELECT max(next_shard_iterator)
						   FROM msgq.get_records((SELECT it FROM rw_it))));

--
-- Numbers: put_records numbers its entries in entry order, and a read
-- returns the numbers the puts returned, as numeric.c would build them
-- (compared by value, text, binary form and hash), also where base-10000
-- digits end in zeros.  The sequence only ever moves forward: this file
-- runs last, after the tests that print sequence numbers.
--
SELECT setval('msgq.stream_seq', 99999998) > 0 AS moved;
CREATE TEMP TABLE rw_put AS
SELECT p.sequence_number AS s, o
  FROM msgq.put_records('rw_small', ARRAY['a', 'b', 'c', 'd'],
						ARRAY['\x01', '\x02', '\x03', '\x04']::bytea[]) WITH ORDINALITY AS p(shard_id, sequence_number, error_code, error_message, o);
SELECT o, s FROM rw_put ORDER BY o;
SELECT setval('msgq.stream_seq', 999999999999) > 0 AS moved;
INSERT INTO rw_put SELECT sequence_number, 5 FROM msgq.put_record('rw_small', 'e', '\x05');
SELECT o, g.sequence_number,
	   g.sequence_number = p.s AS same_as_put,
	   g.sequence_number::text = g.sequence_number::bigint::text AS same_text,
	   numeric_send(g.sequence_number) = numeric_send(g.sequence_number::bigint::numeric) AS same_binary,
	   hash_numeric(g.sequence_number) = hash_numeric(g.sequence_number::bigint::numeric) AS same_hash,
	   scale(g.sequence_number) AS scale
  FROM msgq.get_records(msgq.get_shard_iterator('rw_small', '0', 'TRIM_HORIZON')) g
  JOIN rw_put p ON p.s = g.sequence_number
 ORDER BY o;

--
-- A transaction reads its own puts, in the same statement too
--
BEGIN;
SELECT shard_id FROM msgq.put_record('rw_small', 'own', convert_to('own', 'UTF8'));
SELECT convert_from(data, 'UTF8') AS own_put
  FROM msgq.get_records(msgq.get_shard_iterator('rw_small', '0', 'TRIM_HORIZON'))
 WHERE partition_key = 'own';
SELECT (SELECT sequence_number FROM msgq.put_record('rw_small', 'same', '\x'))
	   = (SELECT max(sequence_number)
			FROM msgq.get_records(msgq.get_shard_iterator('rw_small', '0', 'TRIM_HORIZON'))) AS same_statement;
ROLLBACK;
SELECT count(*) AS after_rollback
  FROM msgq.get_records(msgq.get_shard_iterator('rw_small', '0', 'TRIM_HORIZON'))
 WHERE partition_key IN ('own', 'same');

--
-- Result stores (work_mem small, so that they spill to disk and the
-- stores' memory of the backend is emptied): queries that fail after
-- get_records returned leave their stores behind; an open cursor keeps its
-- store while other reads run and fail; once no store is in use, the
-- memory left behind is given back.  get_records in FROM makes no store
-- when msgq.records_scan is on (sql/records_scan.sql has the same steps
-- for that scan), so this part turns it off.
--
SET msgq.records_scan = off;
SELECT msgq.create_stream('rw_many', 1);
SELECT count(*) AS put FROM generate_series(1, 10) b,
	LATERAL msgq.put_records('rw_many', ARRAY(SELECT 'm' || b || '-' || g FROM generate_series(1, 200) g),
		ARRAY(SELECT decode(repeat('02', 100), 'hex') || int4send(b) FROM generate_series(1, 200) g));
SET work_mem = '64kB';
SELECT 1 / (octet_length(data) - octet_length(data))
  FROM msgq.get_records(msgq.get_shard_iterator('rw_many', '0', 'TRIM_HORIZON'));
SELECT 1 / (octet_length(data) - octet_length(data))
  FROM msgq.get_records(msgq.get_shard_iterator('rw_many', '0', 'TRIM_HORIZON'));
BEGIN;
DECLARE rw_c CURSOR FOR
SELECT partition_key, octet_length(data) AS size
  FROM msgq.get_records(msgq.get_shard_iterator('rw_small', '0', 'TRIM_HORIZON'));
FETCH 2 FROM rw_c;
SELECT count(*) AS many, sum(octet_length(data)) AS bytes
  FROM msgq.get_records(msgq.get_shard_iterator('rw_many', '0', 'TRIM_HORIZON'));
SELECT count(*) AS big, sum(octet_length(data)) AS bytes
  FROM msgq.get_records(msgq.get_shard_iterator('rw_big', '0', 'TRIM_HORIZON'));
SAVEPOINT s;
SELECT 1 / (octet_length(data) - octet_length(data))
  FROM msgq.get_records(msgq.get_shard_iterator('rw_many', '0', 'TRIM_HORIZON'));
ROLLBACK TO s;
SELECT count(*) AS again FROM msgq.get_records(msgq.get_shard_iterator('rw_many', '0', 'TRIM_HORIZON'));
FETCH ALL FROM rw_c;
COMMIT;
SELECT count(*) AS after, count(DISTINCT partition_key) AS keys, min(octet_length(data)) AS size
  FROM msgq.get_records(msgq.get_shard_iterator('rw_many', '0', 'TRIM_HORIZON'));
RESET work_mem;
RESET msgq.records_scan;

--
-- Rows of every layout in one read: keys and data on each side of the
-- short-header limit (126 bytes of content), so that the columns of each
-- row are packed or aligned differently; every value comes back as put,
-- from get_records and from subscribe_to_shard, and every row carries the
-- same next iterator or continuation number and MillisBehindLatest
--
SELECT msgq.create_stream('rw_shapes', 1);
SELECT msgq.register_stream_consumer('rw_shapes', 'shapes') IS NOT NULL AS registered;
SELECT count(*) AS subscribed
  FROM msgq.subscribe_to_shard('rw_shapes', 'shapes', '0', 'TRIM_HORIZON', wait_time_seconds => 0);
CREATE TEMP TABLE rw_shape AS
SELECT k.n AS klen, d.n AS dlen, repeat(chr(97 + k.n % 26), k.n) AS key,
	   decode(repeat(lpad(to_hex(d.n % 256), 2, '0'), d.n), 'hex') AS data
  FROM unnest(ARRAY[1, 125, 126, 127, 200, 256]) k(n),
	   unnest(ARRAY[0, 1, 120, 126, 127, 128, 300, 5000]) d(n);
SELECT count(*) AS put
  FROM msgq.put_records('rw_shapes', ARRAY(SELECT key FROM rw_shape ORDER BY klen, dlen),
						ARRAY(SELECT data FROM rw_shape ORDER BY klen, dlen));
SELECT count(*) AS rows, count(s.key) AS same_key_and_data,
	   count(DISTINCT g.next_shard_iterator) AS iterators,
	   count(DISTINCT g.millis_behind_latest) AS behind, count(g.child_shards) AS children,
	   bool_and(g.sequence_number > 0 AND g.approximate_arrival_timestamp IS NOT NULL) AS numbered
  FROM msgq.get_records(msgq.get_shard_iterator('rw_shapes', '0', 'TRIM_HORIZON')) g
  LEFT JOIN rw_shape s ON s.key = g.partition_key AND s.data = g.data;
SELECT count(*) AS rows, count(s.key) AS same_key_and_data,
	   count(DISTINCT g.continuation_sequence_number) AS continuations,
	   count(DISTINCT g.millis_behind_latest) AS behind,
	   bool_and(g.continuation_sequence_number > g.sequence_number) AS after_each
  FROM msgq.subscribe_to_shard('rw_shapes', 'shapes', '0', wait_time_seconds => 0) g
  LEFT JOIN rw_shape s ON s.key = g.partition_key AND s.data = g.data;

SELECT msgq.delete_stream('rw_big');
SELECT msgq.delete_stream('rw_small');
SELECT msgq.delete_stream('rw_many');
SELECT msgq.delete_stream('rw_shapes');
DROP TABLE rw_in, rw_it, rw_put, rw_shape;
