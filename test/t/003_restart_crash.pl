
# Copyright (c) msgq contributors
#
# Durability across a clean restart and across a crash-restart cycle:
#
#   - messages survive a clean restart, receipt handles minted before it
#     still delete their message after it, and messages in flight before
#     it are visible again after it (leases live in shared memory);
#   - a backend killed with SIGKILL while a session commits one message
#     per transaction (another one, batches of five) makes the postmaster
#     reinitialize; afterwards every
#     committed message is there and no uncommitted one is, messages that
#     were in flight are receivable again at once with the receive counts
#     the maintenance cycle wrote, and a receive left uncommitted by the
#     crash is undone.
#
# The crash part follows src/test/recovery/t/013_crash_restart.pl: the
# test cluster disables restart_after_crash, so it is turned on first, and
# a second session, killed by the postmaster during its reinitialization,
# tells when the crash cycle has begun.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('durability');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION msgq');

# ---------------------------------------------------------------------------
# Background psql sessions
# ---------------------------------------------------------------------------

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

# The superuser's view of a queue's stored messages.
sub stored
{
	my ($queue, $what) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT $what FROM msgq.message m JOIN msgq.queue q USING (queue_id)
		 WHERE q.queue_name = '$queue'});
}

# ---------------------------------------------------------------------------
# Clean restart
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('durable')");
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM generate_series(1, 100) g,
		  LATERAL msgq.send_message('durable', 'msg-' || g)}),
	'100',
	'100 messages sent');

# A message held in flight across the restart, and its receipt handle.
$node->safe_psql('postgres', "SELECT msgq.create_queue('handles')");
$node->safe_psql(
	'postgres', q{
	SELECT msgq.send_message('handles', 'h-' || g) FROM generate_series(1, 3) g});
my ($held_id, $held_handle) = split /\|/,
  $node->safe_psql('postgres',
	"SELECT message_id, receipt_handle FROM msgq.receive_message('handles', visibility_timeout => 600)"
  );
ok(defined $held_handle && $held_handle ne '',
	'a receipt handle was minted before the restart');

$node->restart;

is(stored('durable', 'count(*)'), '100',
	'the 100 messages are stored after the restart');
is( $node->safe_psql(
		'postgres', q{
		CREATE TEMP TABLE got (message_id uuid, body text);
		DO $$
		DECLARE
			n int;
		BEGIN
			FOR i IN 1..20 LOOP
				INSERT INTO got
				SELECT message_id, body
				  FROM msgq.receive_message('durable', 10, 600);
				GET DIAGNOSTICS n = ROW_COUNT;
				EXIT WHEN n = 0;
			END LOOP;
		END
		$$;
		SELECT count(*), count(DISTINCT body),
		       count(*) FILTER (WHERE body NOT IN
		           (SELECT 'msg-' || g FROM generate_series(1, 100) g))
		  FROM got}),
	'100|100|0',
	'all 100 messages are received after the restart, each once');

$node->safe_psql('postgres',
	"SELECT msgq.delete_message('handles', '$held_handle')");
is(stored('handles', 'count(*)'),
	'2', 'a receipt handle minted before the restart deletes its message');
is(stored('handles', "count(*) FILTER (WHERE message_id = '$held_id')"),
	'0', 'the deleted message is the one the handle was for');

$node->safe_psql('postgres', q{
	SELECT msgq.send_message('handles', 'h-4');
	SELECT count(*) FROM msgq.receive_message('handles', 1, 600)});
$node->restart;
is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg(body, ',' ORDER BY body)
		  FROM msgq.receive_message('handles', 10, 600)}),
	'h-2,h-3,h-4',
	'a message in flight before a restart is visible again after it');

# ---------------------------------------------------------------------------
# Crash in the middle of a stream of committed sends
# ---------------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
	ALTER SYSTEM SET restart_after_crash = on;
	SELECT pg_reload_conf();});
ok($node->poll_query_until('postgres', 'SHOW restart_after_crash', 'on'),
	'restart_after_crash is on');

$node->safe_psql(
	'postgres', q{
	SELECT msgq.create_queue('crashq');
	SELECT msgq.create_queue('inflight');
	SELECT msgq.create_queue('open_receive');
	CREATE TABLE sent_log (body text PRIMARY KEY);
	SELECT msgq.send_message('inflight', 'f' || g) FROM generate_series(1, 5) g;
	SELECT msgq.send_message('open_receive', 'uncommitted receive');});

# Three messages in flight for 300 s, received in committed transactions.
is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg(body, ',' ORDER BY body)
		  FROM msgq.receive_message('inflight', 3, 300)}),
	'f1,f2,f3',
	'three messages put in flight before the crash');
# their receive counts live in the leases until a maintenance cycle writes
# them (doc/design.md, "Receive leases"): wait for that
ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(*) FILTER (WHERE receive_count = 1) FROM msgq.message m
		  JOIN msgq.queue q USING (queue_id) WHERE q.queue_name = 'inflight'}, '3'),
	'the maintenance cycle wrote the three receive counts');

# A receive still uncommitted at the crash; this session, left sleeping,
# also tells when the postmaster's crash cycle has begun.
my $receiver = session_start();
session_query($receiver, 'BEGIN;');
my $open_id = session_query($receiver,
	"SELECT message_id FROM msgq.receive_message('open_receive', visibility_timeout => 300);"
);
like($open_id, qr/^[0-9a-f-]{36}$/, 'a receive is left uncommitted');
session_send($receiver, 'SELECT pg_sleep(3600);');

# Two sessions commit messages, one per transaction with send_message
# ("a1", "a2", ...) and five per transaction with send_message_batch
# ("b1-1" .. "b1-5", ...: heap_multi_insert, replayed from one WAL record
# a page); sent_log lists exactly the committed ones.
my @senders;
foreach my $prefix ('a', 'b')
{
	my $sender = session_start();
	my $send =
	  $prefix eq 'a'
	  ? q{PERFORM msgq.send_message('crashq', 'a' || i);
				INSERT INTO sent_log VALUES ('a' || i);}
	  : q{PERFORM msgq.send_message_batch('crashq',
					(SELECT json_agg(json_build_object('Id', k::text, 'MessageBody', 'b' || i || '-' || k))
					   FROM generate_series(1, 5) k));
				INSERT INTO sent_log SELECT 'b' || i || '-' || k FROM generate_series(1, 5) k;};
	session_send(
		$sender, qq{
		DO \$\$
		BEGIN
			FOR i IN 1..1000000 LOOP
				$send
				COMMIT;
			END LOOP;
		END
		\$\$;});
	push @senders, $sender;
}
ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(*) FILTER (WHERE body LIKE 'a%') >= 300
		   AND count(*) FILTER (WHERE body LIKE 'b%') >= 300
		  FROM sent_log}, 't'),
	'the senders have committed at least 300 messages each');

my $log_offset = -s $node->logfile;
is(kill('KILL', $senders[0]->{pid}), 1, 'a sending backend is killed');
ok(session_wait_lost($senders[0]), 'the killed sender lost its connection');
ok(session_wait_lost($senders[1]),
	'the other sender is terminated by the crash cycle');
ok(session_wait_lost($receiver),
	'the receiver is terminated by the crash cycle');
$node->wait_for_log(qr/all server processes terminated; reinitializing/,
	$log_offset);
ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
	'the server accepts connections after crash recovery');

my $logged = $node->safe_psql('postgres', 'SELECT count(*) FROM sent_log');
note "$logged sends committed before the crash";
cmp_ok($logged, '>=', 600, 'committed sends are on record');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM sent_log s
		 WHERE NOT EXISTS (
			SELECT 1 FROM msgq.message m JOIN msgq.queue q USING (queue_id)
			 WHERE q.queue_name = 'crashq' AND m.body = s.body)}),
	'0',
	'no committed message is lost');
is(stored('crashq', 'count(*)'),
	$logged, 'no message of an uncommitted send exists');

is( $node->safe_psql(
		'postgres', q{
		SELECT message_id FROM msgq.receive_message('open_receive', visibility_timeout => 300)}
	),
	$open_id,
	'a receive left uncommitted by the crash is undone: the message is visible');

is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg(body || ':' || (attributes->>'ApproximateReceiveCount'),
		                  ',' ORDER BY body)
		  FROM msgq.receive_message('inflight', 10, 600)}),
	'f1:2,f2:2,f3:2,f4:1,f5:1',
	'messages in flight at the crash are receivable at once, their counts kept'
);

like(
	$node->safe_psql('postgres',
		"SELECT message_id FROM msgq.send_message('crashq', 'after the crash')"
	),
	qr/^[0-9a-f-]{36}$/,
	'sending works after crash recovery');
like(
	$node->safe_psql(
		'postgres', q{
		SELECT body FROM msgq.receive_message('crashq', wait_time_seconds => 1)}),
	qr/^(a1|b1-1)$/,
	'receiving works after crash recovery, oldest message first');

$node->stop;

done_testing();
