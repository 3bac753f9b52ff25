
# Copyright (c) msgq contributors
#
# subscribe_to_shard as a bounded long poll: a call with nothing to return
# sleeps on a condition variable and wakes at the commit of a put to the
# stream, not before it; without a put it returns empty when its wait
# ends.  Sessions are psql processes driven through IPC::Run; times are
# correctness bounds, not benchmarks.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('subscribe');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\n"
	  . "msgq.wait_recheck_interval = '20s'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION msgq;
	SELECT msgq.create_stream('sub', 1);
	SELECT msgq.register_stream_consumer('sub', 'app');
});

my $marker_seq = 0;

sub session_start
{
	my $s = { in => '', out => '', err => '' };
	$s->{timer} = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$s->{h} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-f', '-', '-d', $node->connstr('postgres') ],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err}, $s->{timer});
	return $s;
}

sub session_send
{
	my ($s, $sql) = @_;
	my $marker = 'msgq_tap_done_' . ++$marker_seq;
	$s->{out} = '';
	$s->{err} = '';
	$s->{in} .= "$sql\n\\echo $marker\n";
	$s->{h}->pump_nb;
	return $marker;
}

sub session_wait
{
	my ($s, $marker) = @_;
	$s->{timer}->start($PostgreSQL::Test::Utils::timeout_default);
	pump_until($s->{h}, $s->{timer}, \$s->{out}, qr/^$marker$/m)
	  or die "psql session timed out or died waiting for $marker: $s->{err}";
	my $out = $s->{out};
	$out =~ s/^$marker\n//m;
	chomp $out;
	return $out;
}

sub session_pending
{
	my ($s, $marker) = @_;
	$s->{h}->pump_nb;
	return $s->{out} !~ /^$marker$/m;
}

my $writer = session_start();
my $reader = session_start();

# start the subscription at LATEST, with nothing there yet
is( session_wait($reader, session_send($reader,
		q{SELECT count(data) FROM msgq.subscribe_to_shard('sub', 'app', '0', 'LATEST', wait_time_seconds => 0);})),
	'0', 'the subscription starts at LATEST, empty');

# (a) a waiting call wakes at the commit of a put, not before
my $wait = session_send($reader,
	q{SELECT 'got:' || convert_from(data, 'UTF8') FROM msgq.subscribe_to_shard('sub', 'app', '0', wait_time_seconds => 15);});
$node->poll_query_until('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%subscribe_to_shard%wait_time_seconds => 15%' AND wait_event IS NOT NULL AND pid <> pg_backend_pid()},
	'1');
session_wait($writer, session_send($writer, 'BEGIN;'));
session_wait($writer, session_send($writer,
	q{SELECT shard_id FROM msgq.put_record('sub', 'k', convert_to('hello', 'UTF8'));}));
sleep(1);
ok(session_pending($reader, $wait), '(a) the waiting call has not returned before the commit');
my $t0 = time;
session_wait($writer, session_send($writer, 'COMMIT;'));
is(session_wait($reader, $wait), 'got:hello', '(a) it returns the record once the put commits');
cmp_ok(time - $t0, '<', 2, '(a) promptly after the commit');

# (b) no put: empty when the wait ends
$t0 = time;
is( session_wait($reader, session_send($reader,
		q{SELECT count(data) FROM msgq.subscribe_to_shard('sub', 'app', '0', wait_time_seconds => 1);})),
	'0', '(b) nothing to return: empty');
cmp_ok(time - $t0, '>=', 0.8, '(b) after waiting about its wait time');

$writer->{in} .= "\\q\n";
$writer->{h}->finish;
$reader->{in} .= "\\q\n";
$reader->{h}->finish;
$node->stop;
done_testing();
