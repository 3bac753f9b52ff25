
# Copyright (c) msgq contributors
#
# Consumer groups with shard leases, on the real clock (src/consumer.c,
# doc/streams.md "Consumer groups and shard leases"), with four workers in
# four connections renewing every 100 ms and a failover time of 1 s:
#
#   - four workers on an 8-shard stream balance to 2 shards each;
#   - one dies (its connection is killed): within the failover time (and
#     the next renewals) its leases move to the others, 3 / 3 / 2;
#   - the dead worker's checkpoint is refused (LeaseLostException);
#   - after a split, the children are leased only once the parent's
#     checkpoint reached SHARD_END.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('consumer_groups');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = 200ms
EOF
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{CREATE EXTENSION msgq; SELECT msgq.create_stream('s8', 8);});

my %w;
$w{$_} = $node->background_psql('postgres') for qw(w1 w2 w3 w4);

sub acquire
{
	my ($name) = @_;
	return $w{$name}->query_safe(
		qq{SELECT coalesce(string_agg(shard_id, ','), '') FROM msgq.acquire_leases('s8', 'app', '$name', failover_time_ms => 1000)});
}

sub held
{
	return sql(q{SELECT coalesce(string_agg(lease_owner || '=' || n, ' ' ORDER BY lease_owner), '')
		FROM (SELECT lease_owner, count(*) AS n FROM msgq.stream_leases
			   WHERE consumer_group = 'app' AND lease_held GROUP BY 1) o});
}

# rounds of renewals, every 100 ms, by the workers given
sub rounds
{
	my ($n, @names) = @_;
	for (1 .. $n)
	{
		acquire($_) for @names;
		usleep(100_000);
	}
}

rounds(12, qw(w1 w2 w3 w4));
is(held(), 'w1=2 w2=2 w3=2 w4=2', 'four workers hold two shards each');

# w4 dies
my $w4_shard = (split /,/, acquire('w4'))[0];
my $pid = $w{w4}->query_safe('SELECT pg_backend_pid()');
$w{w4}->quit;
my $died = time;
my $moved;
for (1 .. 40)
{
	rounds(1, qw(w1 w2 w3));
	if (held() eq 'w1=3 w2=3 w3=2' || held() eq 'w1=2 w2=3 w3=3' || held() eq 'w1=3 w2=2 w3=3')
	{
		$moved = time - $died;
		last;
	}
}
ok(defined $moved, 'the dead worker\'s leases moved to the others: ' . held());
cmp_ok($moved // 99, '<', 1.0 + 1.0,
	sprintf('within the failover time of 1 s and the renewals after it (%.2f s)', $moved // 99));

# its checkpoint is refused now
sql(q{SELECT msgq.put_record('s8', 'k', '\x01'::bytea, explicit_hash_key => '0')});
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	qq{SELECT msgq.checkpoint('s8', 'app', 'shardId-000000000000',
		(SELECT sequence_number FROM msgq.get_records(msgq.get_shard_iterator('s8', 'shardId-000000000000', 'TRIM_HORIZON'))),
		'w4')});
like($stderr, qr/LeaseLostException|does not hold the lease/, 'the dead worker cannot checkpoint');

# a split: the children wait for the parent's SHARD_END
sql(q{SELECT msgq.create_stream('s1', 1); SELECT msgq.put_record('s1', 'k', '\x01'::bytea)});
my $solo = $w{w1};
my $got = $solo->query_safe(q{SELECT string_agg(shard_id, ',') FROM msgq.acquire_leases('s1', 'g', 'w1')});
is($got, 'shardId-000000000000', 'one worker holds the one shard');
sql(q{SELECT msgq.split_shard('s1', 'shardId-000000000000', '170141183460469231731687303715884105728')});
sql(q{SELECT msgq.put_record('s1', 'k', '\x02'::bytea)});
$got = $solo->query_safe(q{SELECT string_agg(shard_id, ',') FROM msgq.acquire_leases('s1', 'g', 'w1')});
is($got, 'shardId-000000000000', 'after the split, still only the parent');
my $end = sql(q{SELECT ending_sequence_number FROM msgq.list_shards('s1') WHERE shard_id = 'shardId-000000000000'});
$solo->query_safe(qq{SELECT msgq.checkpoint('s1', 'g', 'shardId-000000000000', $end, 'w1')});
$got = $solo->query_safe(q{SELECT string_agg(shard_id, ',' ORDER BY shard_id) FROM msgq.acquire_leases('s1', 'g', 'w1')});
is($got, 'shardId-000000000001,shardId-000000000002', 'after SHARD_END, the children');

$w{$_}->quit for qw(w1 w2 w3);
$node->stop;
done_testing();
