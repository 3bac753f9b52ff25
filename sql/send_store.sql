--
-- send_store: the direct insert path of send_message and send_message_batch
-- (src/msgstore.c): what the INSERT it replaces did must still hold.
-- Queue names start with "ss_".  Partition names in messages are masked
-- (message_N): which segment is active depends on the files before this one.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
RESET client_min_messages;

CREATE FUNCTION pg_temp.masked(t text) RETURNS text
LANGUAGE sql AS $$ SELECT regexp_replace(split_part(t, ' | ', 1), 'message_[0-3]', 'message_N', 'g') $$;
CREATE FUNCTION pg_temp.stored(q text) RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM msgq.message
	 WHERE queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = q)
$$;
CREATE FUNCTION pg_temp.active() RETURNS text
LANGUAGE sql AS $$
	SELECT format('msgq.message_%s', seg) FROM msgq.segment WHERE state = 'active'
$$;

SELECT msgq.create_queue('ss_a') IS NOT NULL AS created;

-- the row as the INSERT wrote it: columns set, defaults, NULLs, the segment
SELECT md5_of_message_body = md5('one') AS md5_ok, md5_of_message_attributes
  FROM msgq.send_message('ss_a', 'one');
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'two', 5,
	'{"k": {"DataType": "String", "StringValue": "v"}}', NULL, NULL);
SELECT body, message_attributes IS NULL AS no_attrs, md5_of_body = md5(body) AS md5_ok,
	   md5_of_message_attributes IS NULL AS no_md5_attrs, sender = current_user AS sender_ok,
	   message_group_id, message_deduplication_id, receive_count, first_received_at,
	   received_at, receipt_nonce, source_queue_id,
	   visible_at - sent_at AS delay,
	   seg = (SELECT seg FROM msgq.segment WHERE state = 'active') AS in_active_segment,
	   tableoid::regclass::text = pg_temp.active() AS in_its_partition
  FROM msgq.message
 WHERE queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = 'ss_a')
 ORDER BY msg_seq;
-- msg_seq follows send order, in a batch too
SELECT count(*) AS sent FROM msgq.send_message_batch('ss_a',
	'[{"Id": "a", "MessageBody": "b1"}, {"Id": "bad", "MessageBody": ""},
	  {"Id": "b", "MessageBody": "b2", "DelaySeconds": 3}, {"Id": "c", "MessageBody": "b3"}]');
SELECT array_agg(body ORDER BY msg_seq) AS bodies,
	   array_agg(extract(epoch FROM visible_at - sent_at)::int ORDER BY msg_seq) AS delays
  FROM msgq.message
 WHERE queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = 'ss_a');

-- a send is seen by the next commands of its transaction
BEGIN;
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'in tx');
SELECT pg_temp.stored('ss_a') AS stored_in_tx;
SELECT msgq.purge_queue('ss_a') IS NOT NULL AS purged;
SELECT pg_temp.stored('ss_a') AS stored_after_purge;
COMMIT;

-- rolled back, a send leaves nothing: transaction and savepoint
BEGIN;
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'rolled back');
SELECT count(*) AS sent FROM msgq.send_message_batch('ss_a', '[{"Id": "x", "MessageBody": "rolled back"}]');
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'undone');
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'kept');
COMMIT;
SELECT body FROM msgq.receive_message('ss_a', max_number_of_messages => 10);

-- a read-only transaction cannot send, as it could not INSERT
BEGIN READ ONLY;
SELECT msgq_test.err($$SELECT msgq.send_message('ss_a', 'ro')$$);
SELECT msgq_test.err($$SELECT msgq.send_message_batch('ss_a', '[{"Id": "x", "MessageBody": "ro"}]')$$);
ROLLBACK;

-- the primary key's uniqueness is still checked: set the sequence back
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'u1');
SELECT setval('msgq.message_seq', currval('msgq.message_seq') - 1) > 0 AS set_back;
SELECT pg_temp.masked(msgq_test.err($$SELECT msgq.send_message('ss_a', 'u2')$$)) AS dup;
SELECT setval('msgq.message_seq', currval('msgq.message_seq') - 1) > 0 AS set_back;
SELECT pg_temp.masked(msgq_test.err($$SELECT msgq.send_message_batch('ss_a', '[{"Id": "x", "MessageBody": "u3"}]')$$)) AS dup;
SELECT nextval('msgq.message_seq') > 0 AS moved_on;
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'u4');

-- a large body is TOASTed and comes back whole
SELECT count(*) AS sent FROM msgq.send_message('ss_a', repeat('0123456789', 20000));
SELECT length(body), md5(body) = md5(repeat('0123456789', 20000)) AS same
  FROM msgq.receive_message('ss_a', max_number_of_messages => 10)
 WHERE length(body) > 100;

-- a batch is inserted with heap_multi_insert: bodies of 1,505 bytes that do
-- not compress span several pages, one of 60,000 bytes is TOASTed, and
-- every message is found both through the primary key and by a scan of
-- the heap, whole and in send order
SELECT count(*) AS sent FROM msgq.send_message_batch('ss_a',
	(SELECT jsonb_agg(jsonb_build_object('Id', 'm' || i,
			'MessageBody', CASE WHEN i = 5 THEN repeat('big', 20000) ELSE chr(64 + i) ||
				(SELECT string_agg(md5(i || '-' || j), '') FROM generate_series(1, 47) j) END)
			ORDER BY i)
	   FROM generate_series(1, 10) i)::json);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS by_index, count(DISTINCT (ctid::text::point)[0]) > 1 AS several_pages,
	   bool_and(md5_of_body = md5(body)) AS bodies_whole,
	   max(length(body)) AS longest
  FROM msgq.message
 WHERE queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = 'ss_a')
   AND length(body) BETWEEN 1500 AND 100000;
RESET enable_seqscan;
RESET enable_bitmapscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS by_heap FROM msgq.message
 WHERE queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = 'ss_a')
   AND length(body) BETWEEN 1500 AND 100000;
RESET enable_indexscan;
RESET enable_bitmapscan;
SELECT array_agg(left(body, 1) ORDER BY r.ordinality) AS in_order
  FROM msgq.receive_message('ss_a', max_number_of_messages => 10) WITH ORDINALITY AS r
 WHERE length(body) BETWEEN 1500 AND 100000;

-- What an INSERT would fire and the direct path cannot is refused, and
-- sends work again once it is gone (the partition's relcache entry is
-- rebuilt): a trigger, a CHECK constraint, a partial index.
CREATE FUNCTION pg_temp.never() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
DO $$ BEGIN EXECUTE format('CREATE TRIGGER ss_trg BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION pg_temp.never()', pg_temp.active()); END $$;
SELECT pg_temp.masked(msgq_test.err($$SELECT msgq.send_message('ss_a', 't')$$)) AS with_trigger;
DO $$ BEGIN EXECUTE format('DROP TRIGGER ss_trg ON %s', pg_temp.active()); END $$;
DO $$ BEGIN EXECUTE format('ALTER TABLE %s ADD CONSTRAINT ss_check CHECK (queue_id > 0)', pg_temp.active()); END $$;
SELECT pg_temp.masked(msgq_test.err($$SELECT msgq.send_message_batch('ss_a', '[{"Id": "x", "MessageBody": "c"}]')$$)) AS with_check;
DO $$ BEGIN EXECUTE format('ALTER TABLE %s DROP CONSTRAINT ss_check', pg_temp.active()); END $$;
DO $$ BEGIN EXECUTE format('CREATE INDEX ss_partial ON %s (queue_id) WHERE receive_count > 0', pg_temp.active()); END $$;
SELECT pg_temp.masked(msgq_test.err($$SELECT msgq.send_message('ss_a', 'p')$$)) AS with_partial_index;
DROP INDEX msgq.ss_partial;
-- a plain extra index is kept up to date
DO $$ BEGIN EXECUTE format('CREATE INDEX ss_group ON %s (message_group_id)', pg_temp.active()); END $$;
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'g', message_group_id => 'grp-1');
SET enable_seqscan = off;
SELECT body FROM msgq.message WHERE message_group_id = 'grp-1';
RESET enable_seqscan;
DROP INDEX msgq.ss_group;
SELECT count(*) AS sent FROM msgq.send_message('ss_a', 'after');

SELECT msgq.delete_queue('ss_a') IS NOT NULL AS deleted;
