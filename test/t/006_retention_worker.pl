
# Copyright (c) msgq contributors
#
# The per-database worker enforces MessageRetentionPeriod on its own: with
# msgq's clock moved 120 s ahead for the whole server (ALTER SYSTEM SET
# msgq.clock_offset and a reload, which the worker picks up on SIGHUP), the
# messages of a queue with a 60 s retention are deleted by the worker's
# maintenance cycles, without anyone calling msgq.run_maintenance(); while
# msgq.worker_enabled is off they are hidden from receive but stay stored.
# Only they are deleted: a queue with the default retention keeps its
# messages, and a message sent after the clock moved lives its own 60 s,
# across many cycles, and is deleted once the clock moves past them.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('retention');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = '100ms'
msgq.launcher_naptime = '1s'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION msgq');

# The number of maintenance cycles the worker of postgres has run.
sub worker_cycles
{
	return $node->safe_psql('postgres',
		"SELECT cycles FROM msgq.workers WHERE database = 'postgres'");
}

# Wait until the worker has run at least $n more cycles, so that at least
# $n - 1 of them started after this call.
sub wait_cycles
{
	my ($n) = @_;
	my $cycles = worker_cycles();
	$node->poll_query_until('postgres',
		"SELECT cycles >= $cycles + $n FROM msgq.workers WHERE database = 'postgres'"
	) or die "timed out waiting for $n maintenance cycles";
}

# The number of stored messages of a queue, receivable or not.
sub stored
{
	my ($queue) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id) "
		  . "WHERE q.queue_name = '$queue'");
}

# Move msgq's clock for the whole server, the worker included.
sub set_server_offset
{
	my ($offset) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET msgq.clock_offset = '$offset'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
}

# The worker runs its cycles.
$node->poll_query_until('postgres',
	"SELECT cycles > 0 FROM msgq.workers WHERE database = 'postgres' AND state = 'running'"
) or die "timed out waiting for the msgq worker of postgres";
pass('the worker runs maintenance cycles');

$node->safe_psql('postgres',
	q{SELECT msgq.create_queue('ret', '{"MessageRetentionPeriod": 60}')});
$node->safe_psql('postgres', q{SELECT msgq.create_queue('keep')});
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM generate_series(0, 1) b,
	LATERAL msgq.send_message_batch('ret',
		(SELECT json_agg(json_build_object('Id', 'm' || i, 'MessageBody', 'old ' || (b * 10 + i)))
		   FROM generate_series(1, 10) i)) s
 WHERE s.error_code IS NULL}),
	'20',
	'20 messages sent to the queue with a 60 s retention');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM generate_series(1, 5) i, msgq.send_message('keep', 'kept ' || i)}),
	'5',
	'5 messages sent to the queue with the default retention');

# On the real clock nothing has expired: cycles delete nothing.
wait_cycles(3);
is(stored('ret'), '20', 'no message deleted before its retention ended');
is(stored('keep'), '5', 'nor in the other queue');

# 120 s later on msgq's clock, for every session and the worker; first
# with the worker's cycles off: the expired messages are no longer
# received, but nothing deletes them.
$node->safe_psql('postgres', 'ALTER SYSTEM SET msgq.worker_enabled = off');
set_server_offset('120s');
is($node->safe_psql('postgres', 'SHOW msgq.clock_offset'),
	'2min', 'new sessions see the server-wide clock offset');
$node->poll_query_until('postgres',
	"SELECT state = 'disabled' FROM msgq.workers WHERE database = 'postgres'")
  or die "timed out waiting for the worker to be disabled";
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM msgq.receive_message('ret', 10, visibility_timeout => 0)}),
	'0',
	'expired messages are not received');
# (ten naptimes)
sleep(1);
is(stored('ret'), '20', 'they stay stored while the worker is disabled');

# The worker's cycles delete them.
$node->safe_psql('postgres', 'ALTER SYSTEM SET msgq.worker_enabled = on');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM msgq.message m JOIN msgq.queue q USING (queue_id) "
		  . "WHERE q.queue_name = 'ret'"),
	'the worker deleted the 20 expired messages');
is( $node->safe_psql(
		'postgres',
		"SELECT state FROM msgq.workers WHERE database = 'postgres'"),
	'running',
	'the worker is running again');
is(stored('keep'), '5',
	'the messages of the queue with the default retention stay');

# A message sent now lives its own 60 s, whatever the cycles do meanwhile.
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM msgq.send_message_batch('ret',
			'[{"Id": "fresh", "MessageBody": "fresh"}]') s WHERE s.error_code IS NULL}),
	'1',
	'a message sent after the clock moved');
wait_cycles(5);
is(stored('ret'), '1', 'it survives the following cycles');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(body, ',') FROM msgq.receive_message('ret', 10, visibility_timeout => 0)}),
	'fresh',
	'and is received, alone');

# 61 s later it expires too, and the worker deletes it.
set_server_offset('181s');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM msgq.message m JOIN msgq.queue q USING (queue_id) "
		  . "WHERE q.queue_name = 'ret'"),
	'the worker deleted the message once it expired');
is(stored('keep'), '5', 'the other queue still keeps its messages');

$node->safe_psql('postgres', 'ALTER SYSTEM RESET msgq.clock_offset');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET msgq.worker_enabled');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->stop;

done_testing();
