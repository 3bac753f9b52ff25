--
-- segments: the rotating storage segments of msgq.message (src/segment.c).
-- Sends write to the active segment; a maintenance cycle seals it after
-- msgq.segment_rotation_interval (10 s) if it is not empty and a free
-- segment exists; a segment sealed for at least 1 s with at most 10000 live
-- messages has them moved to the active segment (every column kept) and is
-- truncated.  Receipt handles, receive counts and delivery order survive
-- the move.
--
-- The worker is off for the whole file, so that only this file's
-- msgq.run_maintenance() calls rotate, on msgq.clock_offset's clock, 20
-- days ahead: the ring's times are msgq's clock, and files before this one
-- ran maintenance cycles up to 14 days ahead.  Queue names start with
-- "sg_".
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
RESET client_min_messages;

ALTER SYSTEM SET msgq.worker_enabled = off;
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
-- Autovacuum on a partition holds a lock that a drain does not wait for;
-- keep it off these partitions while this file expects drains to happen.
ALTER TABLE msgq.message_0 SET (autovacuum_enabled = off);
ALTER TABLE msgq.message_1 SET (autovacuum_enabled = off);
ALTER TABLE msgq.message_2 SET (autovacuum_enabled = off);
ALTER TABLE msgq.message_3 SET (autovacuum_enabled = off);

-- the four partitions and their ring
SELECT c.relname, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'msgq.message'::regclass AND c.relkind = 'r'
 ORDER BY 1;
SELECT count(*) FILTER (WHERE state = 'active') AS active, count(*) AS segments FROM msgq.segments;

-- A helper: the segments ordered from the active one, with heap sizes.
CREATE FUNCTION pg_temp.ring() RETURNS TABLE (pos int, state text, heap_bytes bigint)
LANGUAGE sql AS $$
	SELECT ((s.seg - a.seg + 4) % 4)::int, s.state,
		   pg_catalog.pg_relation_size(pg_catalog.format('msgq.message_%s', s.seg)::regclass)
	  FROM msgq.segment s, (SELECT seg FROM msgq.segment WHERE state = 'active') a
	 ORDER BY 1
$$;

-- Start from a known state.  Other files may have left messages behind:
-- purge every queue, write to the active segment so that it rotates, then
-- drain: every segment is empty and free but the new active one.
-- msgq's clock is stopped (msgq.clock_frozen), so that only the offsets
-- below move it, however slowly the statements between them run.
SET msgq.clock_frozen = on;
SET msgq.clock_offset = '1727100s';
SELECT msgq.create_queue('sg_a') IS NOT NULL AS created;
SELECT count(*) AS sent FROM msgq.send_message('sg_a', 'x');
SELECT count(*) >= 1 AS purged FROM msgq.list_queues() AS q, LATERAL msgq.purge_queue(q);
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '1727101s';
SELECT msgq.run_maintenance();
SELECT * FROM pg_temp.ring();

SELECT count(*) AS sent FROM generate_series(1, 5) g,
	LATERAL msgq.send_message('sg_a', 'm' || g);
SELECT receipt_handle AS h1, body AS b1 FROM msgq.receive_message('sg_a', visibility_timeout => 600) \gset
SELECT :'b1' AS received_first;

-- the messages are in the active segment
SELECT count(*) AS in_active FROM msgq.message m
 WHERE m.seg = (SELECT seg FROM msgq.segment WHERE state = 'active');

-- not yet 10 s: no rotation
SET msgq.clock_offset = '1727109s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();

-- 10 s: the active segment is sealed, the next one becomes active
SET msgq.clock_offset = '1727110s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();

-- new sends go to the new active segment; the sealed one keeps its messages
SELECT count(*) AS sent FROM msgq.send_message('sg_a', 'm6');
SELECT s.state, count(*) AS messages
  FROM msgq.message m JOIN msgq.segment s USING (seg)
 WHERE m.queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = 'sg_a')
 GROUP BY 1 ORDER BY 1;

-- sealed for less than 1 s: not drained yet
SET msgq.clock_offset = '1727110.5s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();

-- consume two more while the segment is sealed, one deleted and one left in flight
SELECT receipt_handle AS h2, body AS b2 FROM msgq.receive_message('sg_a', visibility_timeout => 600) \gset
SELECT 'ok' AS deleted_m2 FROM msgq.delete_message('sg_a', :'h2');
SELECT receipt_handle AS h3 FROM msgq.receive_message('sg_a', visibility_timeout => 600) \gset

-- sealed for 1 s: its four live messages (two in flight, two visible) move
-- to the active segment and it is truncated to nothing
SET msgq.clock_offset = '1727111s';
SELECT msgq.run_maintenance();
SELECT * FROM pg_temp.ring();
SELECT s.state, count(*) AS messages
  FROM msgq.message m JOIN msgq.segment s USING (seg)
 WHERE m.queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = 'sg_a')
 GROUP BY 1 ORDER BY 1;

-- the handles of the moved messages still work, and their receive counts
-- and send order are kept
SELECT 'ok' AS h3_made_visible FROM msgq.change_message_visibility('sg_a', :'h3', 0);
SELECT body, attributes->>'ApproximateReceiveCount' AS receive_count
  FROM msgq.receive_message('sg_a', 10, visibility_timeout => 600);
SELECT 'ok' AS h1_deleted FROM msgq.delete_message('sg_a', :'h1');
SELECT count(*) AS left_in_queue FROM msgq.message m
 WHERE m.queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = 'sg_a');
SELECT (msgq.get_queue_attributes('sg_a'))->>'ApproximateNumberOfMessagesNotVisible' AS in_flight;

-- a receive count recorded by a rolled-back receive survives a move too
SET msgq.clock_offset = '1727230s';
SELECT 'ok' AS purged FROM msgq.purge_queue('sg_a');
SELECT count(*) AS sent FROM msgq.send_message('sg_a', 'rb');
BEGIN;
SELECT body FROM msgq.receive_message('sg_a');
ROLLBACK;
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '1727231s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();
SELECT body, attributes->>'ApproximateReceiveCount' AS receive_count
  FROM msgq.receive_message('sg_a', visibility_timeout => 0);

-- An active segment that has never been written is not rotated.  Empty
-- the queue, let the written segment rotate away and drain.
SET msgq.clock_offset = '1727300s';
SELECT 'ok' AS purged FROM msgq.purge_queue('sg_a');
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '1727301s';
SELECT msgq.run_maintenance();
SELECT * FROM pg_temp.ring();
SET msgq.clock_offset = '1727400s';
SELECT msgq.run_maintenance();
SELECT * FROM pg_temp.ring();

-- A sealed segment that is mostly alive is not drained (moving it would
-- cost more than keeping it): more than 1000 live messages and more than
-- one per page, or more than 10000.  It waits until receives, which take
-- the oldest messages first, have consumed most of it.
SELECT count(*) AS sent FROM generate_series(1, 10001) g,
	LATERAL msgq.send_message('sg_a', 'bulk' || g);
SET msgq.clock_offset = '1727410s';
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '1727420s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();
-- A helper: receive and delete n messages of sg_a.
CREATE FUNCTION pg_temp.take(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	r record;
	got int := 0;
BEGIN
	WHILE got < n LOOP
		FOR r IN SELECT receipt_handle FROM msgq.receive_message('sg_a', least(10, n - got)) LOOP
			PERFORM msgq.delete_message('sg_a', r.receipt_handle);
			got := got + 1;
		END LOOP;
	END LOOP;
	RETURN got;
END
$$;
-- consume 9900 of them: 101 left.  That is worth draining, but receives
-- are emptying the segment (it had more messages at the last cycle's
-- look), so the cycle leaves the rest to them: nothing is copied.
SELECT pg_temp.take(9900) AS taken;
SET msgq.clock_offset = '1727421s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();
-- still shrinking 29 s after it was sealed: left alone
SELECT pg_temp.take(1) AS taken;
SET msgq.clock_offset = '1727439s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();
-- three rotation intervals (30 s) after it was sealed, it is drained even
-- though it is still shrinking: its 99 messages move
SELECT pg_temp.take(1) AS taken;
SET msgq.clock_offset = '1727440s';
SELECT msgq.run_maintenance();
SELECT pos, state, heap_bytes FROM pg_temp.ring();
SELECT (msgq.get_queue_attributes('sg_a'))->>'ApproximateNumberOfMessages' AS visible;
SELECT min(body), max(body) FROM msgq.receive_message('sg_a', 10, visibility_timeout => 0);

-- When no segment is free, the active one is not rotated: sends keep
-- writing to it.  Fill three segments with 10001 messages each.
SET msgq.clock_offset = '1727500s';
SELECT 'ok' AS purged FROM msgq.purge_queue('sg_a');
SELECT msgq.run_maintenance();
SET msgq.clock_offset = '1727501s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();
SELECT msgq.create_queue('sg_b') IS NOT NULL AS created;
SELECT count(*) AS sent FROM generate_series(1, 10001) g, LATERAL msgq.send_message('sg_b', 'one' || g);
SET msgq.clock_offset = '1727600s';
SELECT msgq.run_maintenance();
SELECT count(*) AS sent FROM generate_series(1, 10001) g, LATERAL msgq.send_message('sg_b', 'two' || g);
SET msgq.clock_offset = '1727700s';
SELECT msgq.run_maintenance();
SELECT count(*) AS sent FROM generate_series(1, 10001) g, LATERAL msgq.send_message('sg_b', 'three' || g);
SET msgq.clock_offset = '1727800s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();
SELECT count(*) AS sent FROM msgq.send_message('sg_b', 'four');
SET msgq.clock_offset = '1727900s';
SELECT msgq.run_maintenance();
SELECT pos, state FROM pg_temp.ring();
-- purging frees the three sealed ones on the next cycle; the cycle after
-- rotates the active one (free segments exist again), and it is drained
-- once it has been sealed for a second
SELECT 'ok' AS purged FROM msgq.purge_queue('sg_b');
SET msgq.clock_offset = '1727901s';
SELECT msgq.run_maintenance();
SELECT pos, state, heap_bytes FROM pg_temp.ring();
SET msgq.clock_offset = '1727902s';
SELECT msgq.run_maintenance();
SELECT pos, state, heap_bytes FROM pg_temp.ring();
SET msgq.clock_offset = '1727903s';
SELECT msgq.run_maintenance();
SELECT pos, state, heap_bytes FROM pg_temp.ring();

-- the segment table and the partitions are msgq's own
SELECT has_table_privilege('public', 'msgq.segment', 'SELECT') AS public_reads_segment,
	   has_table_privilege('public', 'msgq.message_0', 'SELECT') AS public_reads_partition,
	   has_table_privilege('public', 'msgq.segments', 'SELECT') AS public_reads_view,
	   has_function_privilege('public', 'msgq.active_segment()', 'EXECUTE') AS public_calls_active_segment;

--
-- clean up: cycles on again
--
SELECT count(*) AS deleted FROM msgq.list_queues('sg_') AS q, LATERAL msgq.delete_queue(q);
RESET msgq.clock_offset;
RESET msgq.clock_frozen;
ALTER TABLE msgq.message_0 RESET (autovacuum_enabled);
ALTER TABLE msgq.message_1 RESET (autovacuum_enabled);
ALTER TABLE msgq.message_2 RESET (autovacuum_enabled);
ALTER TABLE msgq.message_3 RESET (autovacuum_enabled);
ALTER SYSTEM RESET msgq.worker_enabled;
SELECT pg_reload_conf();
DO $$
BEGIN
	FOR i IN 1..1200 LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM msgq.workers
						   WHERE database = current_database() AND state = 'running');
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SELECT state FROM msgq.workers WHERE database = current_database();
