
# Copyright (c) msgq contributors
#
# Receive leases live in shared memory (src/lease.c, doc/design.md,
# "Receive leases").  This test checks the failure modes that decide the
# design:
#
#   - the lease table full (msgq.max_leases = 16): receives take the
#     durable path, no message is returned twice or lost, visibility
#     batches change both kinds of lease, and every handle deletes its
#     message; a FIFO group, which has no durable path, waits for room;
#   - a backend killed with SIGKILL while leases are held: after the crash
#     cycle every message is there and receivable at once, and receive
#     counts written by the maintenance cycle are kept;
#   - a message that crashes its consumer's backend on every receive
#     still reaches the dead-letter queue, after at most maxReceiveCount + 1
#     receives (the bound doc/design.md states);
#   - a standby refuses receives, and once promoted in the middle of a
#     load (receives in flight and uncommitted on the primary) it has every
#     committed, undeleted message, receivable at once.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;

my $node = PostgreSQL::Test::Cluster->new('leases');
$node->init(allows_streaming => 1, extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.max_leases = 16
msgq.worker_naptime = 200ms
restart_after_crash = on
EOF
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION msgq');

sub crash { crash_backend($node, $_[0]); }

sub sql { return $node->safe_psql('postgres', $_[0]); }

# ---------------------------------------------------------------------------
# The lease table full: 100 messages in flight with room for 16 leases
# ---------------------------------------------------------------------------

sql("SELECT msgq.create_queue('full')");
sql("SELECT count(*) FROM generate_series(1, 100) i, msgq.send_message('full', 'm' || i)");
sql("CREATE TABLE got (body text, handle text)");
for my $i (1 .. 10)
{
	sql("INSERT INTO got SELECT body, receipt_handle
	     FROM msgq.receive_message('full', 10, visibility_timeout => 600)");
}
is(sql("SELECT count(*) || '|' || count(DISTINCT body) FROM got"), '100|100',
	'100 messages in flight with 16 leases: each returned once');
is(sql("SELECT leases || '|' || (full_claims > 0) FROM msgq.lease_table()"), '16|true',
	'the lease table is full and receives took the durable path');
is(sql("SELECT count(*) FROM msgq.receive_message('full', 10)"), '0',
	'nothing else is receivable: durable and shared-memory leases both hold');
is( sql(
		"SELECT (msgq.get_queue_attributes('full', '{ApproximateNumberOfMessagesNotVisible}')
		  ->>'ApproximateNumberOfMessagesNotVisible')"),
	'100',
	'every message counts as in flight');
sql("SELECT count(msgq.change_message_visibility('full', handle, 900)) FROM got");

# change_message_visibility_batch, ten entries a call, on both paths (16
# handles of shared-memory leases, 84 of durable ones)
sql(q{CREATE FUNCTION vis_batches(t int) RETURNS TABLE (error_code text, n bigint)
	LANGUAGE sql AS $$
	SELECT r.error_code, count(*)
	  FROM (SELECT b, jsonb_agg(entry) AS entries
	          FROM (SELECT (row_number() OVER (ORDER BY body) - 1) / 10 AS b,
	                       jsonb_build_object('Id', 'e' || row_number() OVER (ORDER BY body),
	                                          'ReceiptHandle', handle, 'VisibilityTimeout', t) AS entry
	                  FROM got) x
	         GROUP BY b) y,
	       LATERAL msgq.change_message_visibility_batch('full', y.entries) r
	 GROUP BY 1 ORDER BY 1
	$$});
is(sql("SET msgq.clock_offset = '10s'; SELECT error_code || '|' || n FROM vis_batches(43200)"),
	'InvalidParameterValue|100',
	'a batch that would keep messages received 10 s ago hidden past 12 hours fails every entry');
is(sql("SELECT coalesce(error_code, 'ok') || '|' || n FROM vis_batches(1000)"), 'ok|100',
	'a batch of 1000 s succeeds for every entry');
is(sql("SET msgq.clock_offset = '950s'; SELECT count(*) FROM msgq.receive_message('full', 10)"), '0',
	'the batch moved every deadline past the 900 s set before, on both paths');
sql("SELECT msgq.delete_message('full', handle) FROM got WHERE body = 'm1'");
is( sql(
		"SELECT error_code || '|' || error_message
		   FROM got, msgq.change_message_visibility_batch('full',
		        jsonb_build_array(jsonb_build_object('Id', 'gone', 'ReceiptHandle', handle, 'VisibilityTimeout', 5)))
		  WHERE body = 'm1'"),
	'InvalidParameterValue|message does not exist or is not available for visibility timeout change',
	'a batch entry for a deleted message fails');
sql("DELETE FROM got WHERE body = 'm1'");
sql("SELECT count(msgq.delete_message('full', handle)) FROM got");
is(sql("SELECT count(*) FROM msgq.message JOIN msgq.queue USING (queue_id) WHERE queue_name = 'full'"),
	'0', 'every handle deleted its message, on both paths');
sql("SELECT msgq.run_maintenance()");
is(sql("SELECT leases FROM msgq.lease_table()"), '0',
	'deleted messages leave no lease behind');

# FIFO queues have no durable path: with the table full a group waits for
# room, and gets its messages in order once there is some
sql("SELECT msgq.create_queue('fill')");
sql("SELECT count(*) FROM generate_series(1, 16) i, msgq.send_message('fill', 'f' || i)");
sql("CREATE TABLE fill_got AS SELECT body, receipt_handle AS handle
	 FROM msgq.receive_message('fill', 10, visibility_timeout => 600)");
sql("INSERT INTO fill_got SELECT body, receipt_handle
	 FROM msgq.receive_message('fill', 10, visibility_timeout => 600)");
sql(q{SELECT msgq.create_queue('grp.fifo', '{"FifoQueue": "true"}')});
sql("SELECT count(*) FROM generate_series(1, 2) i,
	 msgq.send_message('grp.fifo', 'g' || i, message_group_id => 'g', message_deduplication_id => 'd' || i)");
my $claims = sql("SELECT full_claims FROM msgq.lease_table()");
is(sql("SELECT leases FROM msgq.lease_table()") . '|'
	  . sql("SELECT count(*) FROM msgq.receive_message('grp.fifo', 10)"),
	'16|0', 'a FIFO receive with the lease table full returns nothing');
cmp_ok(sql("SELECT full_claims FROM msgq.lease_table()"), '>', $claims,
	'and counts as a receive that found the table full');
sql("SELECT msgq.delete_message('fill', handle) FROM fill_got WHERE body = 'f1'");
my ($g1, $g1_handle) = split /\|/,
  sql("SELECT body || '|' || receipt_handle FROM msgq.receive_message('grp.fifo', 1)");
is($g1, 'g1', 'with room for one lease the group gives its first message');
sql("SELECT count(msgq.delete_message('fill', handle)) FROM fill_got WHERE body <> 'f1'");
is(sql("SELECT string_agg(body, ',') FROM msgq.receive_message('grp.fifo', 10)"), '',
	'the group stays blocked while its first message is in flight');
sql("SELECT msgq.delete_message('grp.fifo', '$g1_handle')");
is(sql("SELECT string_agg(body, ',') || '|' || count(msgq.delete_message('grp.fifo', receipt_handle))
	    FROM msgq.receive_message('grp.fifo', 10)"), 'g2|1',
	'once it is deleted the group gives the next one');
is(sql("SELECT leases FROM msgq.lease_table()"), '0', 'no lease is left');

# ---------------------------------------------------------------------------
# A crash while leases are held
# ---------------------------------------------------------------------------

sql("SELECT msgq.create_queue('crash')");
sql("SELECT count(*) FROM generate_series(1, 20) i, msgq.send_message('crash', 'c' || i)");
my $s = $node->background_psql('postgres');
$s->query_safe("SELECT count(*) FROM msgq.receive_message('crash', 10, visibility_timeout => 600)");
# two of them received twice: the maintenance cycle writes those counts
$s->query_safe("SELECT count(*) FROM msgq.receive_message('crash', 2, visibility_timeout => 0)");
$s->query_safe("SELECT count(*) FROM msgq.receive_message('crash', 2, visibility_timeout => 600)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 12 FROM msgq.message WHERE receive_count > 0 AND queue_id = (SELECT queue_id FROM msgq.queue WHERE queue_name = 'crash')")
  or die 'the maintenance cycle did not write the receive counts';
is(sql("SELECT leases FROM msgq.lease_table()"), '12', 'twelve leases held before the crash');
crash($s);

is(sql("SELECT leases FROM msgq.lease_table()"), '0', 'the crash cleared the lease table');
is( sql(
		"SELECT count(*) FROM msgq.message JOIN msgq.queue USING (queue_id) WHERE queue_name = 'crash'"),
	'20',
	'no message was lost');
sql("CREATE TABLE after_crash AS SELECT body, (attributes->>'ApproximateReceiveCount')::int AS n
     FROM msgq.receive_message('crash', 10, visibility_timeout => 600)");
sql("INSERT INTO after_crash SELECT body, (attributes->>'ApproximateReceiveCount')::int
     FROM msgq.receive_message('crash', 10, visibility_timeout => 600)");
is(sql("SELECT count(*) || '|' || count(DISTINCT body) FROM after_crash"), '20|20',
	'every message is receivable at once after the crash (the leases ended with it)');
is( sql(
		"SELECT count(*) FILTER (WHERE n = 1) || '|' || count(*) FILTER (WHERE n = 2) || '|' || count(*) FILTER (WHERE n = 3) FROM after_crash"
	),
	'8|10|2',
	'the receive counts the maintenance cycle wrote survived the crash');

# ---------------------------------------------------------------------------
# A message that crashes its consumer every time reaches the DLQ
# ---------------------------------------------------------------------------

sql("SELECT msgq.create_queue('poison_dlq')");
sql("SELECT msgq.create_queue('poison', '{\"RedrivePolicy\": {\"deadLetterTargetArn\": \"poison_dlq\", \"maxReceiveCount\": 3}}')");
sql("SELECT msgq.send_message('poison', 'boom')");
my $receives = 0;
for my $attempt (1 .. 6)
{
	my $c = $node->background_psql('postgres');
	my $got = $c->query_safe(
		"SELECT count(*) FROM msgq.receive_message('poison', 1, visibility_timeout => 0)");
	last if $got eq '0';
	$receives++;
	crash($c);    # the consumer dies while processing it
}
is(sql("SELECT body FROM msgq.receive_message('poison_dlq')"), 'boom',
	'the poison message reached its dead-letter queue');
cmp_ok($receives, '<=', 4,
	"it was received at most maxReceiveCount + 1 times ($receives)");
cmp_ok($receives, '>=', 3, 'and at least maxReceiveCount times');

# ---------------------------------------------------------------------------
# Standby: refuses receives; promoted mid-load, it has every message
# ---------------------------------------------------------------------------

$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET synchronous_standby_names = '*'; SELECT pg_reload_conf()");

sql("SELECT msgq.create_queue('ha')");
sql("SELECT count(*) FROM generate_series(1, 200) i, msgq.send_message('ha', 'h' || i)");
# 50 consumed, 30 in flight (committed receives), 10 in an open receive
for (1 .. 5)
{
	sql("SELECT count(msgq.delete_message('ha', receipt_handle)) FROM msgq.receive_message('ha', 10)");
}
for (1 .. 3)
{
	sql("SELECT count(*) FROM msgq.receive_message('ha', 10, visibility_timeout => 600)");
}
my $open = $node->background_psql('postgres');
$open->query_safe("BEGIN");
$open->query_safe("SELECT count(*) FROM msgq.receive_message('ha', 10, visibility_timeout => 600)");
$node->wait_for_catchup($standby);
# with 16 leases, some receives took the durable path: those stay hidden
my $durable = $node->safe_psql('postgres',
	"SELECT count(*) FROM msgq.message JOIN msgq.queue USING (queue_id) WHERE queue_name = 'ha' AND visible_at > now()");
cmp_ok($durable, '>', 0, "some in-flight messages hold durable leases ($durable)");

my ($rc, $out, $err) = $standby->psql('postgres',
	"SELECT count(*) FROM msgq.receive_message('ha')");
like($err, qr/cannot execute receive_message (during recovery|in a read-only transaction)/,
	'a standby refuses receives');

$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';
is( $standby->safe_psql('postgres',
		"SELECT count(*) FROM msgq.message JOIN msgq.queue USING (queue_id) WHERE queue_name = 'ha'"),
	'150',
	'the promoted standby has every committed, undeleted message');
$standby->safe_psql('postgres', 'CREATE TABLE ha_got (body text)');
for (1 .. 15)
{
	$standby->safe_psql('postgres',
		"INSERT INTO ha_got SELECT body FROM msgq.receive_message('ha', 10, visibility_timeout => 600)");
}
my $expect = 150 - $durable;
is($standby->safe_psql('postgres', 'SELECT count(*) || \'|\' || count(DISTINCT body) FROM ha_got'),
	"$expect|$expect",
	'all but the durably leased are receivable at once (shared-memory leases do not replicate)');

eval { $open->quit; };
$standby->stop;
$node->stop;
done_testing();
