
# Copyright (c) msgq contributors
#
# msgq.esm_max_concurrency (src/worker.c "Event source mapping runners",
# src/esm.c runner mode):
#
#   - at 3, the database's worker keeps three runner processes; a 6-shard
#     stream mapping whose function is slow runs batches of different
#     shards at once, never more than three at a time, never two of one
#     shard at once, every record exactly once and each shard in order;
#   - a queue mapping spreads its batches over the runners, each message
#     processed exactly once;
#   - a one-shard stream with ParallelizationFactor 3 runs its lanes at
#     once, each partition key in order;
#   - a runner that is terminated is started again by the worker;
#   - back at 1, the runners exit and the worker runs the batches itself.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;

my $node = PostgreSQL::Test::Cluster->new('esm_concurrency');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = 200ms
msgq.esm_max_concurrency = 3
EOF
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $runners = q{SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'msgq esm runner')};

sql(<<'EOF');
CREATE EXTENSION msgq;
CREATE TABLE recs (ord bigserial, shard text, seq numeric);
CREATE TABLE calls (shard text, pid int, started timestamptz, ended timestamptz);
CREATE FUNCTION slow(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM pg_sleep(0.05);
	INSERT INTO recs (shard, seq)
	SELECT split_part(r->>'eventID', ':', 1), (r->'kinesis'->>'sequenceNumber')::numeric
	  FROM jsonb_array_elements(ev->'Records') r;
	INSERT INTO calls VALUES (split_part(ev->'Records'->0->>'eventID', ':', 1), pg_backend_pid(), t0, clock_timestamp());
END $$;
SELECT msgq.create_stream('wide', 6);
EOF

ok($node->poll_query_until('postgres', "$runners = 3"),
	'the worker starts three runners');

sql(q{SELECT msgq.create_event_source_mapping('wide', 'slow(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "BatchSize": 10}')});
for my $t (0 .. 5)
{
	sql(qq{SELECT count(*) FROM generate_series($t * 100 + 1, $t * 100 + 100) g,
		LATERAL msgq.put_record(CASE WHEN g > 0 THEN 'wide' END, 'key-' || g, '\\x00'::bytea)});
}
ok($node->poll_query_until('postgres', 'SELECT count(*) = 600 FROM recs'),
	'the runners process the 600 records');
is(sql('SELECT count(*) || \'|\' || count(DISTINCT seq) FROM recs'),
	'600|600', 'each record exactly once');
is( sql(q{SELECT count(*) FROM (SELECT shard, seq < lag(seq) OVER (PARTITION BY shard ORDER BY ord) AS back
		FROM recs) x WHERE back}),
	'0', 'each shard in order');
my $overlap = sql(q{SELECT max((SELECT count(*) FROM calls c2
		WHERE c2.started <= c1.started AND c2.ended > c1.started)) FROM calls c1});
cmp_ok($overlap, '>=', 2, "batches ran at once ($overlap at most)");
cmp_ok($overlap, '<=', 3, 'never more than msgq.esm_max_concurrency');
is( sql(q{SELECT count(*) FROM calls c1 JOIN calls c2 ON c1.shard = c2.shard AND c1.ctid <> c2.ctid
		AND c2.started >= c1.started AND c2.started < c1.ended}),
	'0', 'never two batches of one shard at once');
cmp_ok(sql('SELECT count(DISTINCT pid) FROM calls'), '>=', 2, 'in several runners');
is(sql(q{SELECT count(*) FROM calls c WHERE NOT EXISTS
		(SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.pid AND a.backend_type = 'msgq esm runner')}),
	'0', 'every batch ran in a runner');

# a queue mapping over the runners
sql(<<'EOF');
CREATE TABLE msgs (id text, pid int);
CREATE FUNCTION on_msgs(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_sleep(0.01);
	INSERT INTO msgs SELECT r->>'messageId', pg_backend_pid() FROM jsonb_array_elements(ev->'Records') r;
END $$;
SELECT msgq.create_queue('jobs');
SELECT msgq.create_event_source_mapping('jobs', 'on_msgs(jsonb)', '{"BatchSize": 10}');
EOF
for my $t (1 .. 4)
{
	sql(q{SELECT count(*) FROM generate_series(1, 500) g,
		LATERAL msgq.send_message(CASE WHEN g > 0 THEN 'jobs' END, 'job ' || g)});
}
ok($node->poll_query_until('postgres', 'SELECT count(*) = 2000 FROM msgs'),
	'the runners process the queue');
is(sql('SELECT count(*) || \'|\' || count(DISTINCT id) FROM msgs'), '2000|2000',
	'each message exactly once');
cmp_ok(sql('SELECT count(DISTINCT pid) FROM msgs'), '>=', 2, 'in several runners');
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 0 FROM msgq.message m JOIN msgq.queue q USING (queue_id)
			WHERE q.queue_name = 'jobs'}),
	'and every message is deleted');

# ParallelizationFactor 3 on one shard: its lanes run at once, each key in order
sql(<<'EOF');
CREATE TABLE lrecs (ord bigserial, pkey text, seq numeric);
CREATE TABLE lcalls (pid int, started timestamptz, ended timestamptz);
CREATE FUNCTION slow_lanes(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	PERFORM pg_sleep(0.05);
	INSERT INTO lrecs (pkey, seq)
	SELECT r->'kinesis'->>'partitionKey', (r->'kinesis'->>'sequenceNumber')::numeric
	  FROM jsonb_array_elements(ev->'Records') r;
	INSERT INTO lcalls VALUES (pg_backend_pid(), t0, clock_timestamp());
END $$;
SELECT msgq.create_stream('narrow', 1);
SELECT msgq.create_event_source_mapping('narrow', 'slow_lanes(jsonb)',
	'{"StartingPosition": "TRIM_HORIZON", "BatchSize": 5, "ParallelizationFactor": 3}');
EOF
sql(q{SELECT count(*) FROM generate_series(1, 300) g,
	LATERAL msgq.put_record(CASE WHEN g > 0 THEN 'narrow' END, 'user-' || (g % 30), '\x02'::bytea)});
ok($node->poll_query_until('postgres', 'SELECT count(*) = 300 FROM lrecs'),
	'a one-shard mapping with ParallelizationFactor 3 processes its records');
is(sql('SELECT count(*) || \'|\' || count(DISTINCT seq) FROM lrecs'), '300|300', 'each exactly once');
is( sql(q{SELECT count(*) FROM (SELECT seq < lag(seq) OVER (PARTITION BY pkey ORDER BY ord) AS back
		FROM lrecs) x WHERE back}),
	'0', 'each partition key in order');
my $lane_overlap = sql(q{SELECT max((SELECT count(*) FROM lcalls c2
		WHERE c2.started <= c1.started AND c2.ended > c1.started)) FROM lcalls c1});
cmp_ok($lane_overlap, '>=', 2, "batches of one shard ran at once ($lane_overlap at most)");
cmp_ok($lane_overlap, '<=', 3, 'at most one per lane');

# a terminated runner comes back
my $victim = sql(q{SELECT min(pid) FROM pg_stat_activity WHERE backend_type = 'msgq esm runner'});
sql("SELECT pg_terminate_backend($victim)");
ok( $node->poll_query_until(
		'postgres', qq{SELECT count(*) = 3 AND bool_and(pid <> $victim) FROM pg_stat_activity
			WHERE backend_type = 'msgq esm runner'}),
	'the worker starts a terminated runner again');

# back to 1: no runner, the worker runs the batches
sql('ALTER SYSTEM SET msgq.esm_max_concurrency = 1');
sql('SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', "$runners = 0"), 'at 1 the runners exit');
sql('TRUNCATE calls');
sql(q{SELECT count(*) FROM generate_series(1, 30) g,
	LATERAL msgq.put_record(CASE WHEN g > 0 THEN 'wide' END, 'later-' || g, '\x01'::bytea)});
ok($node->poll_query_until('postgres', 'SELECT count(*) = 630 FROM recs'),
	'and the worker processes new records itself');
is( sql(q{SELECT bool_and(a.backend_type = 'msgq worker') FROM calls c
		JOIN pg_stat_activity a ON a.pid = c.pid}),
	't', 'in the worker process');
is(sql('SELECT count(*) || \'|\' || count(DISTINCT seq) FROM recs'), '630|630',
	'still exactly once');

$node->stop;
done_testing();
