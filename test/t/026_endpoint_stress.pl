
# Copyright (c) msgq contributors
#
# The AWS endpoint under mixed, hostile load for 20 seconds
# (test/node/stress.mjs): HTTP/2 sessions of 20 streams each (sends,
# receives that long-poll, Kinesis puts, SubscribeToShard event streams),
# a third of the streams reset by the client mid-request, sessions
# destroyed without GOAWAY, HTTP/1.1 keep-alive clients with bodies that
# are not JSON, and connections sending broken HTTP/2 frames, truncated
# bodies or random bytes. Afterwards: no answer was a 5xx, both endpoint
# workers are the processes that started (none crashed and was restarted),
# the server log has no crash, and the workers' memory contexts did not
# grow.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;
use JSON::PP;
use Time::HiRes qw(sleep);

my $dir = "$FindBin::Bin/../node";
my ($node, $port) = endpoint_node('endpoint_stress', <<'EOF2');
msgq.endpoint_workers = 2
msgq.endpoint_auth = none
msgq.endpoint_role = 'stress_app'
EOF2
$node->safe_psql('postgres', <<'EOF2');
CREATE EXTENSION msgq;
CREATE ROLE stress_app;
GRANT USAGE ON SCHEMA msgq TO stress_app;
SELECT msgq.create_queue('st1');
SELECT msgq.create_stream('sts', 2);
SELECT msgq.register_stream_consumer('sts', 'c1');
EOF2
$node->safe_psql('postgres', 'GRANT ' . $node->safe_psql('postgres', 'SELECT current_user') . ' TO stress_app');
$node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'msgq endpoint'})
  or die 'the endpoint did not start';
my $workers = q{SELECT string_agg(pid || '@' || backend_start, ',' ORDER BY pid)
	FROM pg_stat_activity WHERE backend_type = 'msgq endpoint'};
my $before = $node->safe_psql('postgres', $workers);

# each worker's memory contexts in all ("Grand total" of pg_log_backend_memory_contexts)
sub memory
{
	my %total;
	my @pids = split /\n/, $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'msgq endpoint' ORDER BY pid});
	for my $pid (@pids)
	{
		my $offset = -s $node->logfile;
		$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
		for (1 .. 100)
		{
			my $log = slurp_file($node->logfile, $offset);
			if ($log =~ /\[$pid\] LOG:  Grand total: (\d+) bytes/) { $total{$pid} = $1; last; }
			sleep 0.1;
		}
	}
	return \%total;
}

# a short warm-up, so that caches and plans are built before the first measure
my ($out, $err);
IPC::Run::run([ 'node', '--no-warnings', "$dir/stress.mjs", "http://127.0.0.1:$port", 3 ], '>', \$out, '2>', \$err);
my $mem0 = memory();
IPC::Run::run([ 'node', '--no-warnings', "$dir/stress.mjs", "http://127.0.0.1:$port", 20 ], '>', \$out, '2>', \$err)
  or diag($err);
my $counts = eval { decode_json($out) } || {};
cmp_ok($counts->{ok} // 0, '>', 1000, "the endpoint answered $counts->{ok} requests under mixed load");
is($counts->{err}, 0, 'none with a 5xx or a broken connection');
is($node->safe_psql('postgres', $workers), $before, 'both endpoint workers are the ones that started');
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC|server process .* exited with exit code/,
	'no process crashed');
my $mem1 = memory();
for my $pid (sort keys %$mem0)
{
	my $grown = ($mem1->{$pid} // 0) - $mem0->{$pid};
	cmp_ok($grown, '<', 1024 * 1024, "worker $pid: memory contexts grew by $grown bytes");
}
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM msgq.list_queues()}), 't', 'and SQL still works');

$node->stop;
done_testing();
