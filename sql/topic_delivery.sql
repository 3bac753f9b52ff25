--
-- topic_delivery: subscriptions delivered after commit (src/delivery.c).
-- function subscriptions called by msgq.run_maintenance() (the worker is
-- off for this file), their retry schedules on msgq's clock, dead-letter
-- queues, rights; http/https subscriptions up to their confirmation (the
-- transfers themselves are tested by the TAP test 017_topic_http.pl);
-- DeliveryPolicy validation; the metrics views.  Names start with "td_".
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
CREATE SCHEMA IF NOT EXISTS msgq_test;
RESET client_min_messages;
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

-- The worker's cycles and deliveries off for this file
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
SET msgq.clock_offset = 0;

-- what the functions saw
CREATE TABLE msgq_test.td_seen (
	n serial,
	who text,
	message text,
	subject text,
	source text,
	arn_ok boolean,
	attrs jsonb
);
GRANT ALL ON msgq_test.td_seen, msgq_test.td_seen_n_seq TO PUBLIC;
GRANT USAGE ON SCHEMA msgq_test TO PUBLIC;
CREATE SEQUENCE msgq_test.td_calls;
GRANT ALL ON SEQUENCE msgq_test.td_calls TO PUBLIC;

CREATE FUNCTION msgq_test.td_handler(event jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM nextval('msgq_test.td_calls');
	INSERT INTO msgq_test.td_seen (who, message, subject, source, arn_ok, attrs)
	VALUES (current_user,
			event #>> '{Records,0,Sns,Message}',
			event #>> '{Records,0,Sns,Subject}',
			event #>> '{Records,0,EventSource}',
			event #>> '{Records,0,EventSubscriptionArn}' LIKE 'arn:aws:sns:msgq:%:td_topic:%',
			event #> '{Records,0,Sns,MessageAttributes}');
END
$$;
-- fails while the message says so; its calls are counted by a sequence
CREATE FUNCTION msgq_test.td_failing(event text) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM nextval('msgq_test.td_calls');
	INSERT INTO msgq_test.td_seen (who, message) VALUES (current_user, 'never kept');
	RAISE EXCEPTION 'handler failed on %', (event::jsonb) #>> '{Records,0,Sns,Message}';
END
$$;
CREATE FUNCTION msgq_test.td_two(a jsonb, b jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION msgq_test.td_int(a int) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION msgq_test.td_set(a jsonb) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1';

SELECT msgq.create_topic('td_topic') IS NOT NULL AS created;
SELECT msgq.create_queue('td_dlq') IS NOT NULL AS created;

-- Endpoints of function subscriptions
SELECT e, msgq_test.err(format('SELECT msgq.subscribe(%L, %L, %L)', 'td_topic', 'function', e))
  FROM (VALUES ('msgq_test.td_missing(jsonb)'), ('msgq_test.td_two(jsonb,jsonb)'),
			   ('msgq_test.td_int(int)'), ('msgq_test.td_set(jsonb)'), ('not a function((')) AS v(e);
SELECT msgq_test.err($$SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_handler(jsonb)',
	'{"RawMessageDelivery": "true"}')$$) AS raw_refused;
SELECT msgq.create_topic('td_fifo.fifo', '{"FifoTopic": "true"}') IS NOT NULL AS created;
SELECT msgq_test.err($$SELECT msgq.subscribe('td_fifo.fifo', 'function', 'msgq_test.td_handler(jsonb)')$$) AS fifo_refused;

SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_handler(jsonb)') AS sub_ok \gset
SELECT :'sub_ok' LIKE 'arn:aws:sns:msgq:%:td_topic:%' AS arn_ok;
-- stored as the canonical signature; subscribing again is idempotent
SELECT endpoint, protocol FROM msgq.list_subscriptions_by_topic('td_topic');
SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_handler(jsonb)') = :'sub_ok' AS idempotent;

-- A publish writes one outbox row; nothing is called before the worker
-- runs, which expands it into one delivery row per subscription
SELECT count(*) FROM msgq.publish('td_topic', 'hello', subject => 'greeting',
	message_attributes => '{"k": {"DataType": "String", "StringValue": "v"}}');
SELECT cardinality(subscription_ids) AS subscriptions,
	   documents[1]::jsonb #>> '{Records,0,Sns,Type}' AS type,
	   documents[1]::jsonb #>> '{Records,0,EventSubscriptionArn}' = token AS arn_is_the_token,
	   arn_prefix LIKE 'arn:aws:sns:msgq:%:td_topic:' AS prefix_ok
  FROM msgq.topic_outbox;
SELECT count(*) AS delivery_rows FROM msgq.topic_delivery;
SELECT count(*) AS calls_before FROM msgq_test.td_seen;
SELECT msgq.run_maintenance();
SELECT who = current_user AS as_subscriber, message, subject, source, arn_ok, attrs FROM msgq_test.td_seen ORDER BY n;
SELECT (SELECT count(*) FROM msgq.topic_delivery) + (SELECT count(*) FROM msgq.topic_outbox) AS left_over;

-- A rolled-back publish delivers nothing
BEGIN;
SELECT count(*) FROM msgq.publish('td_topic', 'rolled back');
SELECT count(*) AS queued_inside FROM msgq.topic_outbox;
ROLLBACK;
SELECT count(*) AS queued_after FROM msgq.topic_outbox;

-- Filter policies apply before anything is queued
SELECT msgq.set_subscription_attributes(:'sub_ok', 'FilterPolicy', '{"k": ["yes"]}');
SELECT count(*) FROM msgq.publish('td_topic', 'filtered', message_attributes => '{"k": {"DataType": "String", "StringValue": "no"}}');
SELECT count(*) FROM msgq.publish('td_topic', 'kept', message_attributes => '{"k": {"DataType": "String", "StringValue": "yes"}}');
SELECT count(*) AS queued FROM msgq.topic_outbox;
SELECT msgq.run_maintenance();
SELECT message FROM msgq_test.td_seen ORDER BY n;
SELECT msgq.unsubscribe(:'sub_ok');

-- The function runs as the subscription's owner, who needs EXECUTE
CREATE ROLE regress_msgq_td_owner;
SELECT msgq.add_permission(msgq.create_topic('td_topic'), 'td_sub', '{regress_msgq_td_owner}', '{Subscribe}');
REVOKE EXECUTE ON FUNCTION msgq_test.td_handler(jsonb) FROM PUBLIC;
SET ROLE regress_msgq_td_owner;
SELECT msgq_test.err($$SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_handler(jsonb)')$$) AS no_execute;
RESET ROLE;
GRANT EXECUTE ON FUNCTION msgq_test.td_handler(jsonb) TO regress_msgq_td_owner;
SET ROLE regress_msgq_td_owner;
SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_handler(jsonb)') AS sub_owned \gset
RESET ROLE;
TRUNCATE msgq_test.td_seen;
SELECT count(*) FROM msgq.publish('td_topic', 'as owner');
SELECT msgq.run_maintenance();
SELECT who, message FROM msgq_test.td_seen;
-- a revoked right is a client error: not retried, dropped (no DLQ here)
REVOKE EXECUTE ON FUNCTION msgq_test.td_handler(jsonb) FROM regress_msgq_td_owner;
SELECT count(*) FROM msgq.publish('td_topic', 'no longer allowed');
SELECT msgq.run_maintenance();
SELECT count(*) AS left_over FROM msgq.topic_delivery;
SELECT message FROM msgq_test.td_seen ORDER BY n;
SELECT msgq.unsubscribe(:'sub_owned');

-- DeliveryPolicy of function subscriptions: validated, then followed
SELECT p, msgq_test.err(format('SELECT msgq.subscribe(%L, %L, %L, %L)', 'td_topic', 'function',
		'msgq_test.td_failing(text)', jsonb_build_object('DeliveryPolicy', p)))
  FROM (VALUES ('not json'), ('{"healthyRetryPolicy": {"numRetries": 101}}'),
			   ('{"healthyRetryPolicy": {"numRetries": -1}}'),
			   ('{"healthyRetryPolicy": {"numRetries": "3"}}'),
			   ('{"healthyRetryPolicy": {"minDelayTarget": 30, "maxDelayTarget": 10}}'),
			   ('{"healthyRetryPolicy": {"maxDelayTarget": 3601}}'),
			   ('{"healthyRetryPolicy": {"numRetries": 3, "numNoDelayRetries": 2, "numMaxDelayRetries": 2}}'),
			   ('{"healthyRetryPolicy": {"numRetries": 100, "minDelayTarget": 60, "maxDelayTarget": 60}}'),
			   ('{"healthyRetryPolicy": {"backoffFunction": "cubic"}}'),
			   -- each backoff curve's total, 10 retries from 300 s to 1000 s
			   ('{"healthyRetryPolicy": {"numRetries": 10, "minDelayTarget": 300, "maxDelayTarget": 1000, "backoffFunction": "linear"}}'),
			   ('{"healthyRetryPolicy": {"numRetries": 10, "minDelayTarget": 300, "maxDelayTarget": 1000, "backoffFunction": "arithmetic"}}'),
			   ('{"healthyRetryPolicy": {"numRetries": 10, "minDelayTarget": 300, "maxDelayTarget": 1000, "backoffFunction": "geometric"}}'),
			   ('{"healthyRetryPolicy": {"numRetries": 10, "minDelayTarget": 300, "maxDelayTarget": 1000, "backoffFunction": "exponential"}}'),
			   ('{"healthyRetryPolicy": 3}'),
			   ('{"requestPolicy": {"headerContentType": "text/plain\r\nX-Evil: 1"}}'),
			   ('{"throttlePolicy": {"maxReceivesPerSecond": 0}}')) AS v(p);
SELECT msgq_test.err($$SELECT msgq.subscribe('td_topic', 'sqs', 'td_dlq', '{"DeliveryPolicy": "{}"}')$$) AS sqs_has_none;

-- 1 immediate retry, then 2 at 10 s, then the dead-letter queue
SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_failing(text)',
	jsonb_build_object('DeliveryPolicy', '{"healthyRetryPolicy": {"numRetries": 3, "numNoDelayRetries": 1, "numMinDelayRetries": 2, "minDelayTarget": 10, "maxDelayTarget": 10}}',
					   'RedrivePolicy', '{"deadLetterTargetArn": "arn:aws:sqs:msgq:db:td_dlq"}'))
	AS sub_fail \gset
TRUNCATE msgq_test.td_seen;
SELECT count(*) FROM msgq.publish('td_topic', 'doomed');
SELECT last_value AS calls0 FROM msgq_test.td_calls \gset
SELECT msgq.run_maintenance();	-- attempt 1 fails
SELECT attempts, next_attempt_at <= clock_timestamp() AS due_now, last_error FROM msgq.topic_delivery;
SELECT msgq.run_maintenance();	-- attempt 2 (the immediate retry) fails
SELECT attempts, next_attempt_at - clock_timestamp() BETWEEN interval '8 s' AND interval '10 s' AS in_10s
  FROM msgq.topic_delivery;
SELECT msgq.run_maintenance();	-- not due yet: nothing runs
SELECT attempts FROM msgq.topic_delivery;
SET msgq.clock_offset = '10s';
SELECT msgq.run_maintenance();	-- attempt 3
SET msgq.clock_offset = '20s';
SELECT msgq.run_maintenance();	-- attempt 4, the last: to the DLQ
SELECT count(*) AS left_over FROM msgq.topic_delivery;
SELECT (SELECT last_value FROM msgq_test.td_calls) - :calls0 AS calls;
SELECT count(*) AS kept_writes FROM msgq_test.td_seen;
SELECT body::jsonb #>> '{Records,0,Sns,Message}' AS dead_lettered
  FROM msgq.receive_message('td_dlq', 10);
SET msgq.clock_offset = 0;
SELECT msgq.unsubscribe(:'sub_fail');

-- The default schedule of a function (AWS-managed endpoints): 3 immediate
-- retries, then 1 s
SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_failing(text)') AS sub_default \gset
SELECT count(*) FROM msgq.publish('td_topic', 'default schedule');
SELECT msgq.run_maintenance() FROM generate_series(1, 4);
SELECT attempts, next_attempt_at - clock_timestamp() BETWEEN interval '0.8 s' AND interval '1 s' AS in_1s
  FROM msgq.topic_delivery;
-- unsubscribing drops what is pending, when it falls due
SELECT msgq.unsubscribe(:'sub_default');
SET msgq.clock_offset = '2s';
SELECT msgq.run_maintenance();
SELECT count(*) AS left_over FROM msgq.topic_delivery;
SET msgq.clock_offset = 0;

-- HTTP subscriptions: endpoints, then pending until confirmed
SELECT p, e, msgq_test.err(format('SELECT msgq.subscribe(%L, %L, %L)', 'td_topic', p, e))
  FROM (VALUES ('http', 'https://example.invalid/'), ('https', 'http://example.invalid/'),
			   ('http', 'ftp://example.invalid/'), ('http', 'http://a b/')) AS v(p, e);
SELECT msgq.subscribe('td_topic', 'http', 'http://127.0.0.1:9/hook') AS pending_answer;
SELECT subscription_arn, protocol, endpoint FROM msgq.list_subscriptions_by_topic('td_topic');
SELECT msgq.get_topic_attributes('td_topic')->>'SubscriptionsPending' AS pending,
	   msgq.get_topic_attributes('td_topic')->>'SubscriptionsConfirmed' AS confirmed;
SELECT kind, payload::jsonb->>'Type' AS type,
	   payload::jsonb->>'SubscribeURL' LIKE 'msgq:confirm_subscription?TopicArn=arn:aws:sns:msgq:%:td_topic&Token=%' AS url_ok,
	   length(payload::jsonb->>'Token') AS token_length
  FROM msgq.topic_delivery;
SELECT payload::jsonb->>'Token' AS token FROM msgq.topic_delivery \gset
-- a pending subscription receives nothing
SELECT count(*) FROM msgq.publish('td_topic', 'before confirmation');
SELECT count(*) AS queued FROM msgq.topic_outbox;
SELECT msgq_test.err($$SELECT msgq.confirm_subscription('td_topic', 'wrong')$$) AS wrong_token;
SELECT msgq.confirm_subscription('td_topic', :'token') LIKE 'arn:aws:sns:msgq:%:td_topic:%' AS confirmed;
SELECT msgq.confirm_subscription('td_topic', :'token') LIKE 'arn:aws:sns:msgq:%:td_topic:%' AS again;
SELECT msgq.get_topic_attributes('td_topic')->>'SubscriptionsPending' AS pending;
SELECT count(*) FROM msgq.publish('td_topic', 'after confirmation', subject => 's');
SELECT documents[1]::jsonb->>'Type' AS type, documents[1]::jsonb->>'Message' AS message,
	   msgq.verify_notification(documents[1]::jsonb) AS signed
  FROM msgq.topic_outbox;
SELECT subscription_arn AS http_sub FROM msgq.list_subscriptions_by_topic('td_topic') WHERE protocol = 'http' \gset
SELECT msgq.get_subscription_attributes(:'http_sub')->>'PendingConfirmation' AS pending_attr;
-- DeliveryPolicy on http subscriptions and topics
SELECT msgq.set_subscription_attributes(:'http_sub', 'DeliveryPolicy',
	'{"healthyRetryPolicy": {"numRetries": 5, "minDelayTarget": 1, "maxDelayTarget": 8, "backoffFunction": "exponential"}, "throttlePolicy": {"maxReceivesPerSecond": 2}}');
SELECT msgq.get_subscription_attributes(:'http_sub')->>'DeliveryPolicy' AS policy;
SELECT msgq_test.err($$SELECT msgq.set_topic_attributes('td_topic', 'DeliveryPolicy', '{"http": {"defaultHealthyRetryPolicy": {"numRetries": 200}}}')$$) AS bad_topic_policy;
SELECT msgq.set_topic_attributes('td_topic', 'DeliveryPolicy', '{"http": {"defaultHealthyRetryPolicy": {"numRetries": 2, "minDelayTarget": 5, "maxDelayTarget": 5}, "disableSubscriptionOverrides": true}}');
SELECT msgq.unsubscribe(:'http_sub');
-- the confirmed endpoint is told: an UnsubscribeConfirmation that keeps the
-- endpoint in its row (the subscription row is gone)
SELECT kind, protocol, endpoint, topic_name, payload::jsonb->>'Type' AS type,
	   payload::jsonb->>'SubscribeURL' LIKE 'msgq:subscribe?TopicArn=arn:aws:sns:msgq:%:td_topic' AS url_ok,
	   length(payload::jsonb->>'Token') AS token_length,
	   msgq.verify_notification(payload::jsonb) AS signed,
	   msgq.verify_notification(jsonb_set(payload::jsonb, '{Token}', '"forged"')) AS forged
  FROM msgq.topic_delivery WHERE kind = 'UnsubscribeConfirmation';
-- the worker is off here: the transfer is 017_topic_http.pl's
DELETE FROM msgq.topic_delivery WHERE kind = 'UnsubscribeConfirmation';
-- a subscription never confirmed goes after three days
SELECT msgq.subscribe('td_topic', 'https', 'https://127.0.0.1:9/never') AS pending_answer;
SET msgq.clock_offset = '71h';
SELECT msgq.run_maintenance();
SELECT count(*) AS still_pending FROM msgq.list_subscriptions_by_topic('td_topic') WHERE protocol = 'https';
SET msgq.clock_offset = '73h';
SELECT msgq.run_maintenance();
SELECT count(*) AS expired FROM msgq.list_subscriptions_by_topic('td_topic') WHERE protocol = 'https';
SELECT count(*) AS its_confirmation_left FROM msgq.topic_delivery;
SET msgq.clock_offset = 0;

-- Metrics: per topic and per subscription
SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_handler(jsonb)',
	'{"FilterPolicy": "{\"k\": [\"yes\"]}"}') AS sub_m \gset
SELECT msgq.subscribe('td_topic', 'sqs', 'td_dlq') AS sub_q \gset
CREATE FUNCTION msgq_test.td_noop(event jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT msgq.subscribe('td_topic', 'function', 'msgq_test.td_noop(jsonb)') AS sub_n \gset
SELECT count(*) FROM msgq.publish('td_topic', 'm1', message_attributes => '{"k": {"DataType": "String", "StringValue": "yes"}}');
-- two function subscriptions after commit: one outbox row with one document
-- (m1 is the only message queued)
SELECT count(*) AS outbox_rows, sum(cardinality(subscription_ids)) AS subscriptions,
	   sum(cardinality(documents)) AS documents, bool_and(document_index = '{1,1}') AS shared
  FROM msgq.topic_outbox;
SELECT count(*) FROM msgq.publish('td_topic', 'm2');
BEGIN;
SELECT count(*) FROM msgq.publish('td_topic', 'rolled back, not counted');
ROLLBACK;
SELECT protocol, matched, delivered, retried, failed, dead_lettered, in_retry, pending
  FROM msgq.subscription_metrics WHERE topic_name = 'td_topic' ORDER BY protocol, endpoint;
SELECT msgq.run_maintenance();
SELECT protocol, matched, delivered, pending
  FROM msgq.subscription_metrics WHERE topic_name = 'td_topic' ORDER BY protocol, endpoint;
SELECT topic_name, published, filtered_out, delivered, subscriptions
  FROM msgq.topic_metrics WHERE topic_name = 'td_topic';
SELECT msgq.unsubscribe(:'sub_m');
SELECT msgq.unsubscribe(:'sub_q');
SELECT msgq.unsubscribe(:'sub_n');

-- Cleanup
SELECT msgq.delete_topic('td_topic');
SELECT msgq.delete_topic('td_fifo.fifo');
SELECT msgq.delete_queue('td_dlq');
DROP OWNED BY regress_msgq_td_owner;
DROP ROLE regress_msgq_td_owner;
ALTER SYSTEM RESET msgq.worker_enabled;
SELECT pg_reload_conf();
