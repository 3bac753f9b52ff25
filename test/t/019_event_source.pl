
# Copyright (c) msgq contributors
#
# Event source mappings over a queue, run by the worker (src/esm.c,
# README "Event source mappings"):
#
#   - a send's commit wakes the worker, which calls the function with
#     batches of at most BatchSize, as the mapping's owner;
#   - 10,000 messages are processed exactly once although the worker is
#     killed with SIGKILL in the middle (the crash cycle): a batch's
#     function writes and its deletes commit together or not at all, and
#     the batches in flight at the crash are received again afterwards;
#   - a mapping whose function fails does not stop another mapping;
#   - over a stream, woken by the puts' commits: a function failing on one
#     record bisects the batch down to it and sends it to the on-failure
#     destination, while every other record is processed once, in order.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;

my $node = PostgreSQL::Test::Cluster->new('event_source');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = 200ms
restart_after_crash = on
EOF
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(<<'EOF');
CREATE EXTENSION msgq;
CREATE ROLE esm_owner;
GRANT USAGE ON SCHEMA msgq TO esm_owner;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO esm_owner;
CREATE TABLE got (id text, body text, batch int, who text);
CREATE TABLE other (id text);
GRANT ALL ON got, other TO esm_owner;
CREATE FUNCTION handler(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO got SELECT r->>'messageId', r->>'body', jsonb_array_length(ev->'Records'), current_user
	  FROM jsonb_array_elements(ev->'Records') r;
	PERFORM pg_sleep(0.002);
END $$;
CREATE FUNCTION broken(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO other SELECT r->>'messageId' FROM jsonb_array_elements(ev->'Records') r;
	RAISE EXCEPTION 'always fails';
END $$;
ALTER FUNCTION handler(jsonb) OWNER TO esm_owner;
ALTER FUNCTION broken(jsonb) OWNER TO esm_owner;
SET ROLE esm_owner;
SELECT msgq.create_queue('src');
SELECT msgq.create_queue('bad');
SELECT msgq.create_event_source_mapping('bad', 'broken(jsonb)', '{"BatchSize": 10}');
SELECT msgq.create_event_source_mapping('src', 'handler(jsonb)', '{"BatchSize": 10}');
EOF

# a failing mapping, created first, does not stop the other one
sql(q{SET ROLE esm_owner; SELECT count(*) FROM msgq.send_message('bad', 'doomed')});

# 10,000 messages, in 10 transactions of 1,000
for my $t (1 .. 10)
{
	sql(qq{SET ROLE esm_owner;
		SELECT count(*) FROM generate_series(1, 1000) g,
		  LATERAL msgq.send_message(CASE WHEN g > 0 THEN 'src' END, '$t-' || g)});
}

ok($node->poll_query_until('postgres', 'SELECT count(*) >= 1500 FROM got'),
	'the worker processes batches as they are sent');

# kill the worker in the middle: the postmaster's crash cycle follows
my $pid = sql(q{SELECT pid FROM msgq.workers WHERE database = 'postgres'});
my $before = sql('SELECT count(*) FROM got');
cmp_ok($before, '<', 10000, "killed with $before of 10000 processed");
my $offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server did not come back after the crash';

ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 10000 FROM got}),
	'after the crash the worker finishes the queue');
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 0 FROM msgq.message m JOIN msgq.queue q USING (queue_id)
			WHERE q.queue_name = 'src'}),
	'and every message is deleted');
is(sql('SELECT count(*) || ' . q{'|'} . ' || count(DISTINCT id) || ' . q{'|'} . ' || count(DISTINCT body) FROM got'),
	'10000|10000|10000', 'each of the 10,000 messages was processed exactly once');
is(sql(q{SELECT max(batch) <= 10 AND bool_and(who = 'esm_owner') FROM got}), 't',
	'in batches of at most 10, as the mapping owner');

# the broken mapping kept failing, and its writes never stayed
is(sql('SELECT count(*) FROM other'), '0', 'the failing function left no writes');
is( sql(q{SELECT failed_invocations > 0 AND last_processing_result LIKE 'PROBLEM%'
		FROM msgq.event_source_mappings WHERE source_arn LIKE '%:bad'}),
	't', 'and its failures are counted in msgq.event_source_mappings');
like(slurp_file($node->logfile),
	qr/event source mapping [0-9a-f-]+: function public\.broken\(jsonb\) failed on a batch of 1 messages of queue "bad": always fails/,
	'and logged with the mapping and the batch');

# a stream mapping: 200 records, one of them poison
sql(<<'EOF');
CREATE TABLE recs (seq numeric, data text);
GRANT ALL ON recs TO esm_owner;
CREATE FUNCTION on_records(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM jsonb_array_elements(ev->'Records') r
				WHERE convert_from(decode(r->'kinesis'->>'data', 'base64'), 'UTF8') = 'poison') THEN
		RAISE EXCEPTION 'poison';
	END IF;
	INSERT INTO recs SELECT (r->'kinesis'->>'sequenceNumber')::numeric,
		   convert_from(decode(r->'kinesis'->>'data', 'base64'), 'UTF8')
	  FROM jsonb_array_elements(ev->'Records') r;
END $$;
ALTER FUNCTION on_records(jsonb) OWNER TO esm_owner;
GRANT EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) TO esm_owner;
SET ROLE esm_owner;
SELECT msgq.create_stream('clicks', 1);
SELECT msgq.create_queue('clicks_failed');
SELECT msgq.create_event_source_mapping('clicks', 'on_records(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "BatchSize": 50, "BisectBatchOnFunctionError": true,
	  "MaximumRetryAttempts": 0, "DestinationConfig": {"OnFailure": {"Destination": "clicks_failed"}}}');
EOF
# four transactions of 50 puts; record 77 is the poison one
for my $t (0 .. 3)
{
	sql(qq{SET ROLE esm_owner;
		SELECT count(*) FROM generate_series($t * 50 + 1, $t * 50 + 50) g,
		  LATERAL msgq.put_record(CASE WHEN g > 0 THEN 'clicks' END, 'k',
			convert_to(CASE WHEN g = 77 THEN 'poison' ELSE 'c' || g END, 'UTF8'))});
}
ok($node->poll_query_until('postgres', 'SELECT count(*) = 199 FROM recs'),
	'every record but the poison one is processed');
is( sql(q{SELECT count(*) = count(DISTINCT seq) AND bool_and(data <> 'poison')
		AND array_agg(data ORDER BY seq) = (SELECT array_agg('c' || g ORDER BY g) FROM generate_series(1, 200) g WHERE g <> 77)
		FROM recs}),
	't', 'once each, in order');
is( sql(q{SET ROLE esm_owner; SELECT string_agg(body::jsonb->'KinesisBatchInfo'->>'batchSize' || '|' ||
		(body::jsonb->'KinesisBatchInfo'->>'startSequenceNumber' = body::jsonb->'KinesisBatchInfo'->>'endSequenceNumber')::text, ',')
		FROM msgq.receive_message('clicks_failed', 10)}),
	'1|true', 'the poison record alone went to the on-failure destination');

$node->stop;
done_testing();
