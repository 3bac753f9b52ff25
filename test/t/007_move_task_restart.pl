
# Copyright (c) msgq contributors
#
# Dead-letter redrive tasks (msgq.start_message_move_task) are run by the
# per-database worker and kept in a WAL-logged table, so they survive a
# restart and a crash:
#
#   - a task moving 40 messages at 5 per second, stopped by a clean restart
#     after its first moves, is still RUNNING afterwards; the worker resumes
#     it and completes it, and every message is back in its source queue
#     exactly once; the rate held across the restart (40 messages at 5 per
#     second take at least 8 seconds);
#   - the same across a crash-restart cycle (a backend killed with SIGKILL,
#     restart_after_crash on, as in 003_restart_crash.pl);
#   - and across the crash of the worker itself, killed while it moves
#     30000 messages 10000 per cycle without a rate;
#   - at every point the task's count of moved messages is the number of
#     messages in the destination, and no message is in both queues or in
#     neither (a cycle moves and records its progress in one transaction).
#
# Last, a message of the dead-letter queue locked by a receive that has not
# committed yet is not a message without a source queue: the task waits
# for it instead of failing, and moves it once the receive rolls back.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('move_task');
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

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# Wait for the worker of postgres to run maintenance cycles.
sub wait_worker
{
	$node->poll_query_until('postgres',
		"SELECT cycles > 0 FROM msgq.workers WHERE database = 'postgres' AND state = 'running'"
	) or die "timed out waiting for the msgq worker of postgres";
}

# Make a dead-letter queue and a source queue that names it with
# maxReceiveCount 1, send $n messages "$prefix01"... to the source and
# receive until it is empty, which moves each message to the dead-letter
# queue at its second receive (a receive may skip a row the worker is
# writing, so "empty" is read from the table).  Returns the number in the
# dead-letter queue.
sub fill_dlq
{
	my ($src, $dlq, $prefix, $n) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT msgq.create_queue('$dlq');
		SELECT msgq.create_queue('$src', '{"RedrivePolicy": {"deadLetterTargetArn": "$dlq", "maxReceiveCount": 1}}');
		SELECT count(*) FROM generate_series(1, $n) i,
			LATERAL msgq.send_message('$src', '$prefix' || lpad(i::text, 2, '0'));
		DO \$\$
		DECLARE
			got int;
			tries int := 0;
		BEGIN
			LOOP
				SELECT count(*) INTO got FROM msgq.receive_message('$src', 10, 0);
				CONTINUE WHEN got > 0;
				-- a receive skips a row that the worker is writing (its
				-- receive count): try again until the source is empty
				EXIT WHEN NOT EXISTS (SELECT 1 FROM msgq.message m JOIN msgq.queue q USING (queue_id)
									   WHERE q.queue_name = '$src');
				tries := tries + 1;
				IF tries > 3000 THEN
					RAISE EXCEPTION '$src still has messages';
				END IF;
				PERFORM pg_sleep(0.01);
			END LOOP;
		END
		\$\$;
		SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id)
		 WHERE q.queue_name = '$dlq'}) =~ s/.*\n//sr;
}

# The newest task of a dead-letter queue: "status|moved".
sub task
{
	my ($dlq) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || '|' || approximate_number_of_messages_moved FROM msgq.list_message_move_tasks('$dlq')"
	);
}

# In one snapshot (one statement, reading msgq's tables directly: the
# functions' own queries would each take a new one): the task's moved count, the messages in the
# destination, the messages in the dead-letter queue; "moved|dest|dlq".
sub snapshot
{
	my ($dlq, $dest) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT (SELECT t.approximate_number_of_messages_moved FROM msgq.message_move_task t
		         WHERE t.source_queue_name = '$dlq' ORDER BY t.started_at DESC LIMIT 1)
		       || '|' || count(*) FILTER (WHERE q.queue_name = '$dest')
		       || '|' || count(*) FILTER (WHERE q.queue_name = '$dlq')
		  FROM msgq.message m JOIN msgq.queue q USING (queue_id)});
}

# Check a snapshot: moved = messages in the destination, and the two
# queues together hold the $n messages.
sub check_snapshot
{
	my ($dlq, $dest, $n, $what) = @_;
	my ($moved, $in_dest, $in_dlq) = split /\|/, snapshot($dlq, $dest);
	is($moved, $in_dest,
		"$what: the task's moved count is the number of messages moved");
	is($in_dest + $in_dlq, $n,
		"$what: every message is in one of the two queues");
	return $moved;
}

# Wait for the newest task of a dead-letter queue to end; its status.
sub wait_task_end
{
	my ($dlq) = @_;
	$node->poll_query_until('postgres',
		"SELECT status <> 'RUNNING' FROM msgq.list_message_move_tasks('$dlq')")
	  or die "timed out waiting for the move task of $dlq to end";
	return $node->safe_psql('postgres',
		"SELECT status FROM msgq.list_message_move_tasks('$dlq')");
}

# Every message "$prefix..." of the database: total, distinct bodies, in
# $queue, and bodies not among the $n sent; "total|distinct|in queue|other".
sub where_all
{
	my ($prefix, $queue, $n) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT count(*) || '|' || count(DISTINCT m.body)
		       || '|' || count(*) FILTER (WHERE q.queue_name = '$queue')
		       || '|' || count(*) FILTER (WHERE m.body NOT IN
		            (SELECT '$prefix' || lpad(i::text, 2, '0') FROM generate_series(1, $n) i))
		  FROM msgq.message m JOIN msgq.queue q USING (queue_id)
		 WHERE starts_with(m.body, '$prefix')});
}

# Background psql sessions, as in 003_restart_crash.pl.
my $marker_seq = 0;

sub session_start
{
	my $s = { in => '', out => '', err => '' };
	$s->{timer} = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$s->{h} = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-f', '-', '-d',
			$node->connstr('postgres')
		],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err}, $s->{timer});
	$s->{pid} = session_query($s, 'SELECT pg_backend_pid();');
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

sub session_query
{
	my ($s, $sql) = @_;
	return session_wait($s, session_send($s, $sql));
}

# Wait until the session's connection is lost; true if it was.
sub session_wait_lost
{
	my ($s) = @_;

	$s->{timer}->start($PostgreSQL::Test::Utils::timeout_default);
	my $ok = pump_until(
		$s->{h},
		$s->{timer},
		\$s->{err},
		qr/terminating connection because of crash of another server process|server closed the connection unexpectedly|connection to server was lost/
	);
	$s->{h}->kill_kill;
	return $ok;
}

# Wait for the postmaster's crash cycle (from $log_offset on) and for the
# server to accept connections again.
sub wait_crash_recovery
{
	my ($log_offset) = @_;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/,
		$log_offset);
	return $node->poll_query_until('postgres', 'SELECT 1', '1');
}

wait_worker();

# ---------------------------------------------------------------------------
# Clean restart while a task runs at 5 messages per second
# ---------------------------------------------------------------------------
is(fill_dlq('src1', 'dlq1', 'a', 40), '40', '40 messages in dlq1');
my $handle1 = $node->safe_psql('postgres',
	"SELECT msgq.start_message_move_task('dlq1', NULL, 5)");
like($handle1, qr/^[0-9a-f-]{36}$/, 'a task moves them at 5 per second');
ok( $node->poll_query_until(
		'postgres',
		"SELECT approximate_number_of_messages_moved > 0 FROM msgq.list_message_move_tasks('dlq1')"
	),
	'the worker moves the first messages');
my $moved_before = check_snapshot('dlq1', 'src1', 40, 'before the restart');
cmp_ok($moved_before, '<', 40, 'some are still to move');

$node->restart;

my $moved_after = check_snapshot('dlq1', 'src1', 40, 'after the restart');
cmp_ok($moved_after, '>=', $moved_before,
	'the progress made before the restart is kept');
is( $node->safe_psql(
		'postgres',
		"SELECT status || '|' || (task_handle = '$handle1') FROM msgq.list_message_move_tasks('dlq1')"
	),
	'RUNNING|true',
	'the task is still RUNNING after the restart');
is(wait_task_end('dlq1'), 'COMPLETED',
	'the worker resumes the task and completes it');
is(task('dlq1'), 'COMPLETED|40', 'it moved 40 messages');
is(where_all('a', 'src1', 40), '40|40|40|0',
	'each of the 40 messages is back in src1, once');
is( $node->safe_psql(
		'postgres', q{
		SELECT finished_at - started_at >= interval '7.5 s'
		  FROM msgq.message_move_task t JOIN msgq.queue q ON q.queue_id = t.source_queue_id
		 WHERE q.queue_name = 'dlq1'}),
	't',
	'40 messages at 5 per second took at least 8 seconds, restart included');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) || '|' || count(*) FILTER (WHERE receive_count = 0 AND source_queue_id IS NULL)
		  FROM msgq.message m JOIN msgq.queue q USING (queue_id)
		 WHERE q.queue_name = 'src1'}),
	'40|40',
	'the moved messages are new: never received, no source queue');

# ---------------------------------------------------------------------------
# Crash-restart (a backend killed with SIGKILL) while a task runs
# ---------------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	ALTER SYSTEM SET restart_after_crash = on;
	SELECT pg_reload_conf();});
ok($node->poll_query_until('postgres', 'SHOW restart_after_crash', 'on'),
	'restart_after_crash is on');

is(fill_dlq('src2', 'dlq2', 'b', 40), '40', '40 messages in dlq2');
$node->safe_psql('postgres',
	"SELECT msgq.start_message_move_task('dlq2', NULL, 5)");
ok( $node->poll_query_until(
		'postgres',
		"SELECT approximate_number_of_messages_moved > 0 FROM msgq.list_message_move_tasks('dlq2')"
	),
	'the worker moves the first messages of dlq2');

my $victim = session_start();
session_send($victim, 'SELECT pg_sleep(3600);');
my $log_offset = -s $node->logfile;
is(kill('KILL', $victim->{pid}), 1, 'a backend is killed');
ok(session_wait_lost($victim), 'the killed backend lost its connection');
ok(wait_crash_recovery($log_offset),
	'the server accepts connections after crash recovery');

my $moved2 = check_snapshot('dlq2', 'src2', 40, 'after the crash');
cmp_ok($moved2, '<', 40, 'some are still to move after the crash');
is( $node->safe_psql(
		'postgres',
		"SELECT status || '|' || (task_handle IS NOT NULL) FROM msgq.list_message_move_tasks('dlq2')"
	),
	'RUNNING|true',
	'the task is still RUNNING after the crash');
is(wait_task_end('dlq2'), 'COMPLETED',
	'the task is resumed after the crash and completes');
is(task('dlq2'), 'COMPLETED|40', 'it moved 40 messages');
is(where_all('b', 'src2', 40), '40|40|40|0',
	'each of the 40 messages is back in src2, once');

# ---------------------------------------------------------------------------
# The worker itself killed with SIGKILL while it moves 10000 messages a
# cycle
# ---------------------------------------------------------------------------
wait_worker();
is( $node->safe_psql(
		'postgres', q{
		SELECT msgq.create_queue('dlq3');
		SELECT msgq.create_queue('src3', '{"RedrivePolicy": {"deadLetterTargetArn": "dlq3", "maxReceiveCount": 1}}');
		SELECT msgq.create_queue('dest3');
		SELECT count(*)
		  FROM generate_series(0, 2999) b,
			   LATERAL msgq.send_message_batch('dlq3',
				(SELECT json_agg(json_build_object('Id', 'm' || i,
						'MessageBody', 'c' || lpad((b * 10 + i)::text, 5, '0')))
				   FROM generate_series(1, 10) i)) s
		 WHERE s.error_code IS NULL}) =~ s/.*\n//sr,
	'30000',
	'30000 messages sent to dlq3');
$node->safe_psql('postgres',
	"SELECT msgq.start_message_move_task('dlq3', 'dest3')");
ok( $node->poll_query_until(
		'postgres',
		"SELECT approximate_number_of_messages_moved > 0 FROM msgq.list_message_move_tasks('dlq3')"
	),
	'the worker moves the first 10000');
my $worker_pid = $node->safe_psql('postgres',
	"SELECT pid FROM msgq.workers WHERE database = 'postgres'");
$log_offset = -s $node->logfile;
is(kill('KILL', $worker_pid), 1, 'the worker is killed');
ok(wait_crash_recovery($log_offset),
	'the server accepts connections after crash recovery');
my $moved3 = check_snapshot('dlq3', 'dest3', 30000, 'after the worker crash');
note "$moved3 of 30000 moved at the crash";
is(wait_task_end('dlq3'), 'COMPLETED',
	'a new worker resumes the task and completes it');
is(task('dlq3'), 'COMPLETED|30000', 'it moved 30000 messages');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) || '|' || count(DISTINCT m.body)
		       || '|' || count(*) FILTER (WHERE q.queue_name = 'dest3')
		  FROM msgq.message m JOIN msgq.queue q USING (queue_id)
		 WHERE starts_with(m.body, 'c')}),
	'30000|30000|30000',
	'each of the 30000 messages is in dest3, once');

# ---------------------------------------------------------------------------
# A message locked by an uncommitted receive of the dead-letter queue has a
# source queue: the task waits for it and moves it after the rollback.
# ---------------------------------------------------------------------------
wait_worker();
is(fill_dlq('src4', 'dlq4', 'd', 3), '3', '3 messages in dlq4');
my $reader = session_start();
session_query($reader, 'BEGIN;');
is( session_query(
		$reader,
		"SELECT body FROM msgq.receive_message('dlq4', 1, 300);"),
	'd01',
	'a receive of dlq4 is left uncommitted');
$node->safe_psql('postgres', "SELECT msgq.start_message_move_task('dlq4')");
ok( $node->poll_query_until(
		'postgres',
		"SELECT approximate_number_of_messages_moved = 2 FROM msgq.list_message_move_tasks('dlq4')"
	),
	'the worker moves the two messages not locked');
# (a few cycles)
my $cycles = $node->safe_psql('postgres',
	"SELECT cycles FROM msgq.workers WHERE database = 'postgres'");
$node->poll_query_until('postgres',
	"SELECT cycles >= $cycles + 3 FROM msgq.workers WHERE database = 'postgres'")
  or die "timed out waiting for maintenance cycles";
is( $node->safe_psql(
		'postgres',
		"SELECT status || '|' || coalesce(failure_reason, '') FROM msgq.list_message_move_tasks('dlq4')"
	),
	'RUNNING|',
	'the task waits for the message being received: it is not FAILED');
session_query($reader, 'ROLLBACK;');
$reader->{in} .= "\\q\n";
$reader->{h}->finish;
is(wait_task_end('dlq4'), 'COMPLETED',
	'the task completes after the receive rolled back');
is(where_all('d', 'src4', 3), '3|3|3|0',
	'each of the 3 messages is back in src4, once');

$node->stop;

done_testing();
