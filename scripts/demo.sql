-- A walk through msgq's SQS-style queues, run by scripts/demo.sh (make demo)
-- with psql -e, so every statement is shown before its result.
-- The long-polling step starts a second psql in the background; it finds the
-- server through PGHOST/PGPORT/PGDATABASE and writes to $MSGQ_DEMO_TMP.

\set ON_ERROR_STOP on

\echo
\echo '=== 1. Start clean: recreate the extension in the demo database, dropping an earlier run''s queues'
\echo '    and the tables and functions of the demo''s later steps'
\echo '    (a deleted queue''s name stays reserved for 60 s, as in SQS)'
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS msgq CASCADE;
CREATE EXTENSION msgq;
DROP TABLE IF EXISTS order_audit, click_counts, click_log, clicks_per_minute;
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_app') THEN
    DROP OWNED BY demo_app;    -- its grants of an earlier run
    DROP ROLE demo_app;
  END IF;
END $$;
DROP FUNCTION IF EXISTS audit_order(jsonb), count_clicks(jsonb), tag_click(jsonb);
RESET client_min_messages;

\echo
\echo '=== 2. Create two standard queues'
SELECT msgq.create_queue('orders', '{"VisibilityTimeout": 30}');
SELECT msgq.create_queue('orders-wait');

\echo
\echo '=== 3. Send three messages; the first one carries a message attribute'
SELECT message_id, md5_of_message_body, md5_of_message_attributes
  FROM msgq.send_message('orders', '{"order": 1001, "item": "book"}',
       message_attributes => '{"customer": {"DataType": "String", "StringValue": "acme"}}');
SELECT message_id FROM msgq.send_message('orders', '{"order": 1002, "item": "pen"}');
SELECT message_id FROM msgq.send_message('orders', '{"order": 1003, "item": "ink"}');

\echo
\echo '=== 4. Long polling: a receive waits on an empty queue until a message arrives'
\echo 'A second session now runs, on the empty queue orders-wait:'
\echo '  SELECT * FROM msgq.receive_message(''orders-wait'', wait_time_seconds => 10);'
\! rm -f "$MSGQ_DEMO_TMP/longpoll.out" "$MSGQ_DEMO_TMP/longpoll.rc"; ( psql -X -c "SELECT body AS sent_at, round(extract(epoch FROM clock_timestamp() - statement_timestamp()), 3) AS waited_s, round(extract(epoch FROM clock_timestamp() - body::timestamptz) * 1000, 1) AS ms_after_send FROM msgq.receive_message('orders-wait', wait_time_seconds => 10)" > "$MSGQ_DEMO_TMP/longpoll.out" 2>&1; echo $? > "$MSGQ_DEMO_TMP/longpoll.rc" ) < /dev/null &
SELECT pg_sleep(1);
\echo 'One second later, this session sends a message whose body is the time of sending:'
SELECT message_id FROM msgq.send_message('orders-wait', clock_timestamp()::text);
\echo 'The waiting receive returns at once: it waited about 1 s of its 10 s, and'
\echo 'ms_after_send is the time from the send to the receive returning:'
\! i=0; while [ ! -s "$MSGQ_DEMO_TMP/longpoll.rc" ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done; cat "$MSGQ_DEMO_TMP/longpoll.out"

\echo
\echo '=== 5. Receive from orders; the messages stay invisible to others for 60 s'
CREATE TEMP TABLE received AS
  SELECT * FROM msgq.receive_message('orders', max_number_of_messages => 10,
                                     visibility_timeout => 60);
SELECT body, message_attributes,
       attributes ->> 'ApproximateReceiveCount' AS receive_count,
       left(receipt_handle, 16) || '...' AS receipt_handle
  FROM received ORDER BY body;
\echo 'While they are in flight, another receive finds nothing:'
SELECT count(*) AS received_now FROM msgq.receive_message('orders');

\echo
\echo '=== 6. Delete order 1001 with its receipt handle'
SELECT receipt_handle AS handle FROM received WHERE body LIKE '%1001%' \gset
SELECT msgq.delete_message('orders', :'handle');

\echo
\echo '=== 7. Hand order 1002 back at once (visibility timeout 0) and receive it again'
SELECT msgq.change_message_visibility('orders', receipt_handle, 0)
  FROM received WHERE body LIKE '%1002%';
SELECT body, attributes ->> 'ApproximateReceiveCount' AS receive_count
  FROM msgq.receive_message('orders', visibility_timeout => 60);

\echo
\echo '=== 7b. A receive writes no WAL: its lease lives in shared memory, and the'
\echo 'delete is the one durable write (WAL of other sessions, if any, counts too)'
SELECT msgq.send_message('orders-wait', 'wal check') IS NOT NULL AS sent;
SELECT pg_current_wal_insert_lsn() AS lsn0 \gset
SELECT receipt_handle AS wal_handle FROM msgq.receive_message('orders-wait') \gset
SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0') AS receive_wal_bytes;
SELECT msgq.delete_message('orders-wait', :'wal_handle');
SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0') AS receive_and_delete_wal_bytes;
SELECT * FROM msgq.lease_table();

\echo
\echo '=== 8. The queues'
SELECT q AS queue_name FROM msgq.list_queues() AS q ORDER BY q;

\echo
\echo '=== 9. Metrics, with CloudWatch names, read from shared memory (no row counting)'
SELECT queue_name, "ApproximateNumberOfMessagesVisible" AS visible,
       "ApproximateNumberOfMessagesNotVisible" AS in_flight,
       "ApproximateNumberOfMessagesDelayed" AS delayed,
       "NumberOfMessagesSent" AS sent, "NumberOfMessagesReceived" AS received,
       "NumberOfMessagesDeleted" AS deleted
  FROM msgq.queue_metrics ORDER BY queue_name;

\echo
\echo '=== 10. Repeated attribute names are refused, not silently collapsed'
\set ON_ERROR_STOP 0
SELECT msgq.send_message('orders', 'dup', message_attributes =>
  '{"k": {"DataType": "String", "StringValue": "1"}, "k": {"DataType": "String", "StringValue": "2"}}');
\set ON_ERROR_STOP 1

\echo
\echo '=== 11. The storage ring: sends go to the active segment; sealed ones are'
\echo 'truncated once consumed, so dead rows never pile up, even under an old snapshot'
SELECT seg, state, pg_size_pretty(bytes) AS size FROM msgq.segments ORDER BY seg;

\echo
\echo '=== 12. Streams: shards over the 128-bit hash space, records routed by the MD5 of their key'
SELECT msgq.create_stream('clicks', 2);
SELECT shard_id, starting_hash_key, ending_hash_key FROM msgq.list_shards('clicks');
SELECT k AS partition_key, p.shard_id, p.sequence_number
  FROM (VALUES ('user-1'), ('user-2'), ('user-3'), ('user-4')) v(k),
       LATERAL msgq.put_record('clicks', k, convert_to('click by ' || k, 'UTF8')) p;
\echo 'Reading shard 0 from its oldest record; the next iterator continues from there:'
SELECT sequence_number, partition_key, convert_from(data, 'UTF8') AS data,
       left(next_shard_iterator, 12) || '...' AS next_shard_iterator
  FROM msgq.get_records(msgq.get_shard_iterator('clicks', 'shardId-000000000000', 'TRIM_HORIZON'));

\echo
\echo '=== 13. Exactly-once consumption: process and checkpoint in one transaction'
BEGIN;
SELECT sequence_number, convert_from(data, 'UTF8') AS data
  FROM msgq.get_records(msgq.get_shard_iterator('clicks', 'shardId-000000000000', 'TRIM_HORIZON'), 1) \gset
SELECT msgq.checkpoint('clicks', 'billing', 'shardId-000000000000', :sequence_number);
COMMIT;
SELECT consumer_group, shard_id, checkpoint_sequence_number, millis_behind_latest
  FROM msgq.consumer_group_lag WHERE stream_name = 'clicks';

\echo
\echo '=== 14. Records live in time slices, one table each; the worker seals them and'
\echo 'drops a slice whole once its records pass retention (no DELETE, no bloat)'
SELECT stream_name, table_name, state, start_seq, end_seq, pg_size_pretty(bytes) AS size
  FROM msgq.stream_slices WHERE stream_name = 'clicks';

\echo
\echo '=== 15. Opt-in shard limits: 1,000 records per shard and second, as in Kinesis'
SELECT msgq.enforce_shard_limits('clicks');
SELECT count(*) FILTER (WHERE error_code IS NULL) AS written,
       count(*) FILTER (WHERE error_code IS NOT NULL) AS refused,
       min(error_code) AS error_code
  FROM generate_series(1, 3) g,
       LATERAL msgq.put_records('clicks', ARRAY(SELECT 'user-1' || left(g::text, 0) FROM generate_series(1, 500)),
                                ARRAY(SELECT '\x00'::bytea FROM generate_series(1, 500))) r;
SELECT stream_name, shard_id, incoming_records, write_provisioned_throughput_exceeded AS refused_puts,
       get_records_calls
  FROM msgq.stream_metrics WHERE stream_name = 'clicks';
SELECT msgq.enforce_shard_limits('clicks', false);

\echo
\echo '=== 16. FIFO queues: a message group is delivered in commit order, one receive at a time'
SELECT msgq.create_queue('payments.fifo', '{"FifoQueue": "true", "ContentBasedDeduplication": "true"}');
SELECT s.message_id, s.sequence_number
  FROM (VALUES ('{"order": 1, "step": "authorized"}', 'order-1'),
               ('{"order": 2, "step": "authorized"}', 'order-2'),
               ('{"order": 1, "step": "captured"}', 'order-1')) v(body, grp),
       LATERAL msgq.send_message('payments.fifo', v.body, message_group_id => v.grp) s;
\echo 'The same body again within five minutes is a duplicate: the first send''s id, nothing enqueued:'
SELECT message_id, sequence_number
  FROM msgq.send_message('payments.fifo', '{"order": 1, "step": "authorized"}', message_group_id => 'order-1');
\echo 'A receive takes one group''s messages first, in order:'
SELECT body, attributes->>'MessageGroupId' AS grp, attributes->>'SequenceNumber' AS sequence_number
  FROM msgq.receive_message('payments.fifo', 2, message_system_attribute_names => ARRAY['All']);
\echo 'order-1 is now in flight, so the next receive gets only order-2:'
SELECT body, attributes->>'MessageGroupId' AS grp
  FROM msgq.receive_message('payments.fifo', 10, message_system_attribute_names => ARRAY['All']);

\echo
\echo '=== 17. Topics: one publish fans out in the publisher''s transaction, each subscription filtered'
SELECT msgq.create_topic('order-events');
SELECT msgq.create_queue('invoicing');
SELECT msgq.create_queue('large-orders');
SELECT msgq.subscribe('order-events', 'sqs', 'invoicing', '{"RawMessageDelivery": "true"}') IS NOT NULL AS invoicing_subscribed;
SELECT msgq.subscribe('order-events', 'sqs', 'large-orders',
       '{"FilterPolicyScope": "MessageBody", "FilterPolicy": {"total": [{"numeric": [">=", 1000]}]}}') IS NOT NULL AS large_orders_subscribed;
SELECT msgq.subscribe('order-events', 'kinesis', 'clicks', '{"RawMessageDelivery": "true"}') IS NOT NULL AS stream_subscribed;
BEGIN;
SELECT message_id FROM msgq.publish('order-events', '{"order": 7, "total": 25}');
SELECT message_id FROM msgq.publish('order-events', '{"order": 8, "total": 1250}', subject => 'Large order');
\echo 'Before the commit, no subscriber sees anything outside this transaction; now COMMIT:'
COMMIT;
\echo 'invoicing (raw delivery) got both:'
SELECT body FROM msgq.receive_message('invoicing', 10);
\echo 'large-orders (filtered, SNS notification document) got only the large one:'
SELECT body::jsonb->>'Subject' AS subject, body::jsonb->>'Message' AS message,
       msgq.verify_notification(body::jsonb) AS signature_ok
  FROM msgq.receive_message('large-orders', 10);
\echo 'A policy can be tried on its own:'
SELECT msgq.filter_policy_matches('{"total": [{"numeric": [">=", 1000]}]}', 'MessageBody', NULL,
                                  '{"order": 9, "total": 999.5}') AS matches;

\echo
\echo '=== 18. Topics: a SQL function subscriber, called by the worker after commit, as its owner'
CREATE TABLE order_audit (seen_at timestamptz DEFAULT now(), message text);
CREATE FUNCTION audit_order(event jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO order_audit (message) SELECT event #>> '{Records,0,Sns,Message}' $$;
SELECT msgq.subscribe('order-events', 'function', 'audit_order(jsonb)') IS NOT NULL AS function_subscribed;
SELECT message_id IS NOT NULL AS published FROM msgq.publish('order-events', '{"order": 10, "total": 40}');
\echo 'The publish wrote one pending delivery; the worker, woken at commit, calls the function:'
DO $$ BEGIN
  FOR i IN 1..200 LOOP EXIT WHEN EXISTS (SELECT 1 FROM order_audit); PERFORM pg_sleep(0.05); END LOOP;
END $$;
SELECT message FROM order_audit;
SELECT protocol, matched, delivered, pending FROM msgq.subscription_metrics
 WHERE topic_name = 'order-events' ORDER BY protocol;

\echo
\echo '=== 19. Consumer groups: workers share a stream''s shards through leases, as the KCL does'
SELECT shard_id FROM msgq.acquire_leases('clicks', 'analytics', 'worker-a');
\echo 'A second worker joins; on its next call it takes a shard from the loaded worker-a:'
SELECT shard_id FROM msgq.acquire_leases('clicks', 'analytics', 'worker-b');
SELECT shard_id, lease_owner, lease_counter FROM msgq.stream_leases
 WHERE stream_name = 'clicks' AND consumer_group = 'analytics' ORDER BY shard_id;
\echo 'A checkpoint by a worker that does not hold the lease is refused (LeaseLostException):'
SELECT shard_id AS a_shard FROM msgq.stream_leases
 WHERE stream_name = 'clicks' AND consumer_group = 'analytics' AND lease_owner = 'worker-a' LIMIT 1 \gset
\set ON_ERROR_STOP 0
SELECT msgq.checkpoint('clicks', 'analytics', :'a_shard', '1', 'worker-b');
\set ON_ERROR_STOP 1

\echo
\echo '=== 20. An event source mapping: the worker calls a SQL function with each shard''s batches,'
\echo 'in order, and moves the checkpoint in the function''s transaction (exactly once)'
CREATE TABLE click_counts (partition_key text PRIMARY KEY, clicks bigint NOT NULL);
CREATE FUNCTION count_clicks(event jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO click_counts
  SELECT r #>> '{kinesis,partitionKey}', count(*)
    FROM jsonb_array_elements(event -> 'Records') r GROUP BY 1
  ON CONFLICT (partition_key) DO UPDATE SET clicks = click_counts.clicks + excluded.clicks $$;
SELECT msgq.create_event_source_mapping('clicks', 'count_clicks(jsonb)',
       '{"StartingPosition": "TRIM_HORIZON", "BatchSize": 500}') AS mapping \gset
\echo 'The worker reads every shard from its oldest record; a put''s commit wakes it for new ones:'
SELECT count(*) AS records_put FROM msgq.put_records('clicks',
       ARRAY['user-1', 'user-2', 'user-3'], ARRAY['\x01'::bytea, '\x02', '\x03']);
DO $$ BEGIN
  FOR i IN 1..200 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM msgq.consumer_group_lag
                           WHERE stream_name = 'clicks' AND consumer_group LIKE 'esm:%'
                             AND millis_behind_latest > 0)
          AND EXISTS (SELECT 1 FROM click_counts WHERE partition_key = 'user-3');
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT partition_key, clicks FROM click_counts ORDER BY clicks DESC, partition_key LIMIT 3;
SELECT (SELECT sum(clicks) FROM click_counts) AS records_seen_by_the_function,
       (SELECT sum(incoming_records) FROM msgq.stream_metrics WHERE stream_name = 'clicks') AS records_in_the_stream;
SELECT shard_id, checkpoint_sequence_number, millis_behind_latest FROM msgq.consumer_group_lag
 WHERE stream_name = 'clicks' AND consumer_group = 'esm:' || :'mapping' ORDER BY shard_id;
SELECT state, batch_size, invocations, failed_invocations, last_processing_result
  FROM msgq.event_source_mappings WHERE uuid = :'mapping';

\echo
\echo '=== 21. A delivery stream (Firehose): the clicks stream feeds it; a SQL function transforms'
\echo 'each record; the worker delivers the batches into a table (exactly once)'
CREATE TABLE click_log (page text, user_id int, tagged boolean);
CREATE FUNCTION tag_click(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('records', jsonb_agg(jsonb_build_object(
           'recordId', r->'recordId',
           'result', CASE WHEN d->>'page' = '/health' THEN 'Dropped' ELSE 'Ok' END,
           'data', translate(encode(convert_to((d || '{"tagged": true}')::text, 'UTF8'), 'base64'), E'\n', ''))))
    FROM jsonb_array_elements(event->'records') r,
         LATERAL (SELECT convert_from(decode(r->>'data', 'base64'), 'UTF8')::jsonb AS d) x $$;
SELECT msgq.create_delivery_stream('click-log', '{
  "DeliveryStreamType": "KinesisStreamAsSource",
  "KinesisStreamSourceConfiguration": {"KinesisStreamARN": "clicks"},
  "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
  "ProcessingConfiguration": {"Enabled": true, "Function": "tag_click(jsonb)"},
  "Destination": {"Type": "Table", "TableName": "click_log"}}') AS delivery_stream;
SELECT count(*) AS records_put FROM msgq.put_records('clicks', (SELECT jsonb_agg(jsonb_build_object(
       'PartitionKey', 'user-' || u,
       'Data', translate(encode(convert_to(jsonb_build_object('page', p, 'user_id', u,
               'ts', '2026-01-01T10:00:00Z'::timestamptz + s * interval '1 second')::text, 'UTF8'), 'base64'), E'\n', '')))
  FROM (VALUES ('/home', 1, 5), ('/cart', 1, 20), ('/health', 0, 30), ('/home', 2, 50),
               ('/pay', 1, 65), ('/home', 3, 70), ('/home', 2, 130)) v(p, u, s)));
DO $$ BEGIN
  FOR i IN 1..200 LOOP EXIT WHEN (SELECT count(*) FROM click_log) >= 6; PERFORM pg_sleep(0.05); END LOOP;
END $$;
SELECT page, user_id, tagged FROM click_log ORDER BY page, user_id;
SELECT delivery_stream_name, delivered_records, dropped_records, batches FROM msgq.delivery_stream_metrics;

\echo
\echo '=== 22. A stream query (Kinesis Analytics): views per page in tumbling windows of a minute,'
\echo 'by the records'' own event time; each window is emitted once the newest event time passes its end'
CREATE TABLE clicks_per_minute (window_start timestamptz, page text, views bigint);
SELECT msgq.create_stream_query('clicks-per-minute', 'clicks',
       $$SELECT window_start, data->>'page', count(*) FROM records WHERE data ? 'page' GROUP BY 1, 2$$,
       '{"Window": {"Type": "Tumbling", "SizeInSeconds": 60}, "StartingPosition": "TRIM_HORIZON",
         "TimeSource": "EventTime", "EventTimeField": "ts",
         "Destination": {"Type": "Table", "TableName": "clicks_per_minute"}}');
DO $$ BEGIN
  FOR i IN 1..200 LOOP EXIT WHEN (SELECT count(*) FROM clicks_per_minute) >= 5; PERFORM pg_sleep(0.05); END LOOP;
END $$;
SELECT window_start AT TIME ZONE 'UTC' AS window_start_utc, page, views FROM clicks_per_minute ORDER BY 1, 2;
SELECT query_name, windows_emitted, records_read, skipped_records, pending_records, next_window_start AT TIME ZONE 'UTC' AS next_window_utc
  FROM msgq.stream_queries;

-- the role the AWS endpoint's demo requests run as (scripts/demo.sh, step 23)
CREATE ROLE demo_app;
GRANT USAGE ON SCHEMA msgq TO demo_app;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO demo_app;
GRANT EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) TO demo_app;
