
# Copyright (c) msgq contributors
#
# msgq.queue_metrics across restarts.  The metrics live in shared memory,
# so a restart (clean or a crash) loses them; the gauges (visible, not
# visible, delayed) show NULL until the database's maintenance cycle has
# counted the messages once, and the counters start again from zero.
#
#   - with the worker off, the gauges stay NULL after a restart until
#     msgq.run_maintenance() recounts them, and then match what was there;
#   - the recount needs a SHARE lock on the message table: while a writing
#     transaction is open it is skipped (gauges still NULL), and once that
#     transaction commits its message is counted exactly once;
#   - after an immediate shutdown (a crash for the data), the worker
#     recounts by itself.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('metrics');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\n"
	  . "msgq.worker_naptime = '200ms'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION msgq');

my $gauges = q{SELECT coalesce("ApproximateNumberOfMessagesVisible"::text, 'null') || '|'
	|| coalesce("ApproximateNumberOfMessagesNotVisible"::text, 'null') || '|'
	|| coalesce("ApproximateNumberOfMessagesDelayed"::text, 'null')
	FROM msgq.queue_metrics WHERE queue_name = 'mr'};

$node->safe_psql('postgres', q{
	SELECT msgq.create_queue('mr');
	SELECT msgq.send_message('mr', 'm' || g) FROM generate_series(1, 5) g;
	SELECT count(*) FROM msgq.receive_message('mr', 2, visibility_timeout => 600);
	SELECT msgq.send_message('mr', 'later', delay_seconds => 600);
	BEGIN; SELECT msgq.send_message('mr', 'rolled back'); ROLLBACK;
});
is($node->safe_psql('postgres', $gauges), '3|2|1',
	'before the restart: 3 visible, 2 in flight, 1 delayed');
is( $node->safe_psql('postgres',
		q{SELECT "NumberOfMessagesSent" FROM msgq.queue_metrics WHERE queue_name = 'mr'}),
	'6', 'six messages sent (the rolled-back one is not counted)');

# ---------------------------------------------------------------------------
# Worker off: NULL until a maintenance cycle recounts
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "msgq.worker_enabled = off\n");
$node->restart;
is($node->safe_psql('postgres', $gauges), 'null|null|null',
	'after a restart the gauges are unknown (NULL), not wrong');
is( $node->safe_psql('postgres',
		q{SELECT "NumberOfMessagesSent" FROM msgq.queue_metrics WHERE queue_name = 'mr'}),
	'0', 'the counters start again from zero');

# an open writing transaction holds the recount off
my $bg = $node->background_psql('postgres');
$bg->query_safe(q{BEGIN});
$bg->query_safe(q{SELECT msgq.send_message('mr', 'while counting')});
$node->safe_psql('postgres',
	q{SET msgq.segment_lock_timeout = 0; SELECT msgq.run_maintenance()});
is($node->safe_psql('postgres', $gauges), 'null|null|null',
	'the recount waits for the open writing transaction');
$bg->query_safe(q{COMMIT});
$node->safe_psql('postgres', q{SELECT msgq.run_maintenance()});
is($node->safe_psql('postgres', $gauges), '6|0|1',
	'after it commits, the recount sees every message once: 6 visible (the leases ended with the restart), 1 delayed'
);
$node->safe_psql('postgres',
	q{SELECT count(*) FROM msgq.receive_message('mr', visibility_timeout => 600)});
is($node->safe_psql('postgres', $gauges), '5|1|1',
	'and later receives are counted on top');
$bg->quit;

# ---------------------------------------------------------------------------
# Worker on, immediate shutdown: the worker recounts by itself
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "msgq.worker_enabled = on\n");
$node->stop('immediate');
$node->start;
ok($node->poll_query_until('postgres', $gauges, '6|0|1'),
	'after an immediate shutdown the worker recounts: 6 visible (no lease survives), 1 delayed');

$node->stop;
done_testing();
