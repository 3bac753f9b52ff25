
# Copyright (c) msgq contributors
#
# FIFO queues across a restart and a crash (src/fifo.c, doc/design.md,
# "FIFO queues"):
#
#   - the five-minute deduplication window is durable: a duplicate sent
#     after a clean restart, and after a crash, still enqueues nothing, and
#     returns the first send's message id and sequence number;
#   - group order is in the rows: after the restart and the crash every
#     group's messages come in their sequence order;
#   - group blocking lives in shared memory with the leases: a group whose
#     messages were in flight is unblocked after the crash (at-least-once:
#     its messages are receivable at once), and a committed, undeleted
#     message is never lost;
#   - a send that was still open when its backend was killed leaves
#     neither a message nor a deduplication id.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;

my $node = PostgreSQL::Test::Cluster->new('fifo');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = 200ms
restart_after_crash = on
EOF
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION msgq');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub crash { crash_backend($node, $_[0]); }

# send one message; returns "message_id|sequence_number"
sub send_fifo
{
	my ($body, $group, $dedup) = @_;
	return sql(
		"SELECT message_id || '|' || sequence_number FROM msgq.send_message('f.fifo', '$body',"
		  . " message_group_id => '$group', message_deduplication_id => '$dedup')");
}

sql(q{SELECT msgq.create_queue('f.fifo', '{"FifoQueue": "true"}')});

# groups A and B, three messages each, interleaved
my %first;
for my $i (1 .. 3)
{
	for my $g ('A', 'B')
	{
		$first{"$g$i"} = send_fifo("$g$i", $g, "$g$i");
	}
}

# A's first two are in flight when the server stops
is( sql(
		"SELECT string_agg(body, ',' ORDER BY body) FROM msgq.receive_message('f.fifo', 2, visibility_timeout => 600)"
	),
	'A1,A2',
	'a receive takes group A first');
is(sql("SELECT string_agg(body, ',') FROM msgq.receive_message('f.fifo', 10, visibility_timeout => 0)"),
	'B1,B2,B3', 'A is blocked while its messages are in flight');

# ---------------------------------------------------------------------------
# Clean restart
# ---------------------------------------------------------------------------
$node->restart;

is(send_fifo('A1 again', 'A', 'A1'),
	$first{A1}, 'after a restart a duplicate returns the first send\'s id and number');
is( sql(
		"SELECT string_agg(body, ',' ORDER BY ord) FROM msgq.receive_message('f.fifo', 10, visibility_timeout => 0) WITH ORDINALITY r(i, h, body, m, a, ma, ord)"
	),
	'A1,A2,A3,B1,B2,B3',
	'after a restart the in-flight group is unblocked and both groups come in order, nothing lost');

# ---------------------------------------------------------------------------
# Crash: a backend killed while it holds a group and has an open send
# ---------------------------------------------------------------------------
my $holder = $node->background_psql('postgres');
$holder->query_safe(
	"SELECT count(*) FROM msgq.receive_message('f.fifo', 1, visibility_timeout => 600)");
$holder->query_safe('BEGIN');
$holder->query_safe(
	"SELECT msgq.send_message('f.fifo', 'C1', message_group_id => 'C', message_deduplication_id => 'C1')");
crash($holder);

is(send_fifo('B2 again', 'B', 'B2'),
	$first{B2}, 'after a crash a duplicate returns the first send\'s id and number');
is(sql("SELECT count(*) FROM msgq.fifo_dedup WHERE dedup_id = 'C1'"),
	'0', 'the killed open send left no deduplication id');
my ($c_id) = split /\|/, send_fifo('C1', 'C', 'C1');
ok($c_id ne '', 'so the same id enqueues afterwards');
is( sql(
		"SELECT string_agg(body, ',' ORDER BY ord) FROM msgq.receive_message('f.fifo', 10, visibility_timeout => 0) WITH ORDINALITY r(i, h, body, m, a, ma, ord)"
	),
	'A1,A2,A3,B1,B2,B3,C1',
	'after a crash the held group is unblocked and every group comes in order');

# the window still ends five minutes after the first send (on msgq's clock)
is( sql(
		"SET msgq.clock_offset = '301s'; SELECT message_id::text <> '"
		  . (split /\|/, $first{A3})[0]
		  . "' FROM msgq.send_message('f.fifo', 'A3 later', message_group_id => 'A', message_deduplication_id => 'A3')"
	),
	't',
	'five minutes after the first send the id enqueues again');

$node->stop;
done_testing();
