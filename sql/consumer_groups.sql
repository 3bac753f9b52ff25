--
-- consumer_groups: KCL-style shard leases of consumer groups (src/consumer.c):
-- acquire_leases balancing N workers to about shards / N each, expired
-- leases taken first, stealing from the most loaded worker, failover on
-- msgq's test clock, children of a split leased only after the parent's
-- SHARD_END checkpoint, checkpoints refused from a worker that lost its
-- lease (LeaseLostException, MQ030), release_leases, the stream_leases
-- view, every argument error.
-- Stream names start with "cg_", roles with "regress_msgq_cg_".
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

-- how many leases each worker holds, unexpired
CREATE FUNCTION pg_temp.owners(g text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(lease_owner || '=' || n, ' ' ORDER BY lease_owner), '-')
	  FROM (SELECT lease_owner, count(*) AS n FROM msgq.stream_leases
			 WHERE consumer_group = g AND lease_held GROUP BY 1) o
$$;
-- one acquire_leases call: the shards returned, as their indexes
CREATE FUNCTION pg_temp.acq(w text, g text DEFAULT 'app', s text DEFAULT 'cg_8') RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(substr(shard_id, 9)::int::text, ',' ORDER BY shard_id), '-')
	  FROM msgq.acquire_leases(s, g, w)
$$;

SELECT msgq.create_stream('cg_8', 8);

-- the first worker takes every lease; the counter is 1, no checkpoint yet
SELECT shard_id, lease_counter, checkpoint_sequence_number, acquired
  FROM msgq.acquire_leases('cg_8', 'app', 'w1') ORDER BY 1 LIMIT 2;
SELECT pg_temp.owners('app');
-- renewing: the same shards, counter 2, not acquired anew
SELECT count(*) AS held, min(lease_counter) AS counter, bool_or(acquired) AS acquired
  FROM msgq.acquire_leases('cg_8', 'app', 'w1');

-- a second worker steals one lease per call until both hold 4
SELECT pg_temp.acq('w2') AS w2_1, pg_temp.acq('w2') AS w2_2;
SELECT pg_temp.acq('w2') AS w2_3, pg_temp.acq('w2') AS w2_4, pg_temp.acq('w2') AS w2_5;
SELECT pg_temp.owners('app');
-- a stolen lease changed owner; w1 learns it at its next call
SELECT owner_switches FROM msgq.stream_leases WHERE shard_id = 'shardId-000000000007';
SELECT pg_temp.acq('w1') AS w1;

-- four workers balance to 2 each
SELECT pg_temp.acq('w3'), pg_temp.acq('w4'), pg_temp.acq('w3'), pg_temp.acq('w4');
SELECT pg_temp.acq('w3'), pg_temp.acq('w4'), pg_temp.acq('w1'), pg_temp.acq('w2');
SELECT pg_temp.owners('app');

-- a worker that stops renewing: after the failover time (10 s) others
-- take its leases, expired ones before any steal
SET msgq.clock_offset = '6s';
SELECT pg_temp.acq('w1'), pg_temp.acq('w2'), pg_temp.acq('w3');
SET msgq.clock_offset = '11s';
SELECT pg_temp.owners('app');
SELECT pg_temp.acq('w1') AS w1, pg_temp.acq('w2') AS w2, pg_temp.acq('w3') AS w3;
SELECT pg_temp.owners('app');
SELECT lease_owner, lease_held FROM msgq.stream_leases
 WHERE consumer_group = 'app' AND lease_owner = 'w4';

-- checkpoints by a worker: only the lease holder
SELECT shard_id FROM msgq.put_record('cg_8', 'k', '\x01'::bytea, explicit_hash_key => '0');
SELECT sequence_number AS seq0 FROM msgq.get_records(
	msgq.get_shard_iterator('cg_8', 'shardId-000000000000', 'TRIM_HORIZON')) \gset
SELECT lease_owner AS holder FROM msgq.stream_leases
 WHERE consumer_group = 'app' AND shard_id = 'shardId-000000000000' \gset
SELECT msgq_test.err(format($$SELECT msgq.checkpoint('cg_8', 'app', 'shardId-000000000000', %s, %L)$$,
	:seq0, :'holder')) AS by_holder;
SELECT regexp_replace(msgq_test.err(format($$SELECT msgq.checkpoint('cg_8', 'app', 'shardId-000000000000', %s, 'w9')$$,
	:seq0)), '"w[0-9]"', '"w?"', 'g') AS by_other;
SELECT msgq_test.err(format($$SELECT msgq.checkpoint('cg_8', 'app', 'shardId-000000000000', %s, NULL)$$,
	:seq0)) AS no_worker;
-- the four-argument form stays unchecked
SELECT msgq_test.err(format($$SELECT msgq.checkpoint('cg_8', 'app', 'shardId-000000000000', %s)$$,
	:seq0)) AS unchecked;
SELECT checkpoint_sequence_number = :seq0 AS checkpointed FROM msgq.stream_leases
 WHERE consumer_group = 'app' AND shard_id = 'shardId-000000000000';
-- an expired lease is not held either
SET msgq.clock_offset = '30s';
SELECT msgq_test.err(format($$SELECT msgq.checkpoint('cg_8', 'app', 'shardId-000000000000', %s, %L)$$,
	:seq0, :'holder')) AS expired;
-- the returned checkpoint
SELECT checkpoint_sequence_number = :seq0 AS returned FROM msgq.acquire_leases('cg_8', 'app', :'holder')
 WHERE shard_id = 'shardId-000000000000';

-- release_leases gives them back at once (w1 had taken all 8 at 30 s:
-- the others' had expired); another worker takes them without waiting
SELECT msgq.release_leases('cg_8', 'app', 'w1') AS released, msgq.release_leases('cg_8', 'app', 'w1') AS again;
SELECT pg_temp.acq('w5') AS w5;
SELECT pg_temp.owners('app');

-- max_leases caps a worker; groups are independent
SELECT count(*) AS capped FROM msgq.acquire_leases('cg_8', 'other', 'x1', max_leases => 3);
SELECT count(*) AS capped_lower FROM msgq.acquire_leases('cg_8', 'other', 'x1', max_leases => 2);
SELECT pg_temp.owners('other');

-- after a split, the children are leased only once the parent's
-- checkpoint reached SHARD_END (its ending sequence number)
SET msgq.clock_offset = '100s';
SELECT msgq.create_stream('cg_split', 1);
SELECT shard_id FROM msgq.put_record('cg_split', 'k', '\x01'::bytea);
-- a put elsewhere: the split's ending sequence number is past the last record
SELECT shard_id FROM msgq.put_record('cg_8', 'k', '\x02'::bytea, explicit_hash_key => '0');
SELECT pg_temp.acq('a', 'g', 'cg_split') AS before_split;
SELECT msgq.split_shard('cg_split', 'shardId-000000000000', '170141183460469231731687303715884105728');
SELECT pg_temp.acq('a', 'g', 'cg_split') AS parent_only, pg_temp.acq('b', 'g', 'cg_split') AS b_waits;
SELECT shard_id, parent_shard_ids, shard_end FROM msgq.stream_leases
 WHERE stream_name = 'cg_split' ORDER BY 1;
-- a checkpoint at the last record is not the end when the ending sequence
-- number is past it; a checkpoint at the ending sequence number is
SELECT sequence_number AS last_seq FROM msgq.get_records(
	msgq.get_shard_iterator('cg_split', 'shardId-000000000000', 'TRIM_HORIZON')) \gset
SELECT msgq.checkpoint('cg_split', 'g', 'shardId-000000000000', :last_seq, 'a');
SELECT pg_temp.acq('a', 'g', 'cg_split') AS not_yet;
SELECT ending_sequence_number AS end_seq
  FROM msgq.list_shards('cg_split') WHERE shard_id = 'shardId-000000000000' \gset
SELECT msgq.checkpoint('cg_split', 'g', 'shardId-000000000000', :end_seq, 'a');
SELECT pg_temp.acq('a', 'g', 'cg_split') AS children, pg_temp.acq('b', 'g', 'cg_split') AS b;
SELECT pg_temp.acq('b', 'g', 'cg_split') AS b_steals;
SELECT shard_id, lease_owner, shard_end FROM msgq.stream_leases
 WHERE stream_name = 'cg_split' ORDER BY 1;
-- a shard end of an open shard is not a record
SELECT regexp_replace(msgq_test.err(format($$SELECT msgq.checkpoint('cg_split', 'g', 'shardId-000000000001', %s, 'a')$$,
	:end_seq)), 'number [0-9]+', 'number N') AS not_end;

-- argument errors
SELECT name, msgq_test.err(sql) AS result FROM (VALUES
	('no stream', $$SELECT * FROM msgq.acquire_leases('cg_none', 'app', 'w')$$),
	('null stream', $$SELECT * FROM msgq.acquire_leases(NULL, 'app', 'w')$$),
	('no group', $$SELECT * FROM msgq.acquire_leases('cg_8', NULL, 'w')$$),
	('empty group', $$SELECT * FROM msgq.acquire_leases('cg_8', '', 'w')$$),
	('long group', $$SELECT * FROM msgq.acquire_leases('cg_8', repeat('g', 129), 'w')$$),
	('no worker', $$SELECT * FROM msgq.acquire_leases('cg_8', 'app', NULL)$$),
	('long worker', $$SELECT * FROM msgq.acquire_leases('cg_8', 'app', repeat('w', 257))$$),
	('max 0', $$SELECT * FROM msgq.acquire_leases('cg_8', 'app', 'w', 0)$$),
	('failover 0', $$SELECT * FROM msgq.acquire_leases('cg_8', 'app', 'w', NULL, 0)$$),
	('failover huge', $$SELECT * FROM msgq.acquire_leases('cg_8', 'app', 'w', NULL, 86400001)$$),
	('release no stream', $$SELECT msgq.release_leases('cg_none', 'app', 'w')$$),
	('release no worker', $$SELECT msgq.release_leases('cg_8', 'app', NULL)$$),
	('checkpoint no lease row', $$SELECT msgq.checkpoint('cg_8', 'nogroup', 'shardId-000000000000', 1, 'w')$$)
) AS t(name, sql);

-- only the stream's owner (and its members) may lease its shards
CREATE ROLE regress_msgq_cg_other;
GRANT USAGE ON SCHEMA msgq TO regress_msgq_cg_other;
SET ROLE regress_msgq_cg_other;
SELECT msgq_test.err($$SELECT * FROM msgq.acquire_leases('cg_8', 'app', 'w')$$) AS other_acquire;
SELECT msgq_test.err($$SELECT msgq.release_leases('cg_8', 'app', 'w5')$$) AS other_release;
SELECT msgq_test.err($$SELECT * FROM msgq.stream_leases$$) AS other_view;
RESET ROLE;
REVOKE USAGE ON SCHEMA msgq FROM regress_msgq_cg_other;
DROP ROLE regress_msgq_cg_other;

-- deleting the stream deletes its leases
SELECT msgq.delete_stream('cg_split');
SELECT count(*) AS leases_left FROM msgq.stream_lease l
 WHERE NOT EXISTS (SELECT FROM msgq.stream s WHERE s.stream_id = l.stream_id);
RESET msgq.clock_offset;
