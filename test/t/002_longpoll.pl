
# Copyright (c) msgq contributors
#
# Long polling: a receive_message with a wait time sleeps on a condition
# variable and wakes when something makes a message of its queue
# receivable, never before that change is committed:
#   (a) a send, at its commit and not before;
#   (b) a visibility timeout running out;
#   (c) a rolled-back receive;
#   (d) change_message_visibility(..., 0);
#   (e) delete_queue ends the wait, empty;
#   (f) pg_cancel_backend cancels the wait, pg_terminate_backend ends it;
#   (g) a shorter statement_timeout makes it return empty, without error;
#   (h) a delayed message wakes it when its delay ends;
#   (j) a rolled-back delete_message, delete_message_batch or dead-letter
#       move of a message whose lease had run out (a waiter skipped the
#       locked row) wakes it at the rollback.
#
# Sessions are psql processes driven through IPC::Run; every wait is
# bounded by a timer, and elapsed times are measured here with
# Time::HiRes (correctness bounds, not benchmarks).
#
# msgq.wait_recheck_interval, the longest sleep between two checks, is set
# to its maximum so that a missed wake-up cannot hide behind a periodic
# re-check: a waiter that is not woken sleeps until its wait time ends.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('longpoll');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\n");
$node->append_conf('postgresql.conf', "msgq.wait_recheck_interval = '20s'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION msgq');

# ---------------------------------------------------------------------------
# Background psql sessions
# ---------------------------------------------------------------------------

my $marker_seq = 0;

# Start a psql reading SQL from our pipe, one statement at a time.
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

# Send SQL followed by an end marker, without waiting; returns the marker.
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

# Wait until the SQL sent with that marker has finished; returns its output.
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

# True if the output of the SQL sent with that marker has not arrived yet.
sub session_pending
{
	my ($s, $marker) = @_;
	$s->{h}->pump_nb;
	return $s->{out} !~ /^$marker$/m;
}

sub session_quit
{
	my ($s) = @_;
	$s->{in} .= "\\q\n";
	$s->{h}->finish;
}

# Wait until the session's backend shows as a waiter of the queue.
sub wait_for_waiter
{
	my ($s, $queue) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) FROM msgq.waiters WHERE pid = $s->{pid} AND queue_name = '$queue'",
		'1');
}

sub waiter_count
{
	my ($s) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM msgq.waiters WHERE pid = $s->{pid}");
}

# Session A sends, receives and rolls back; session B waits.
my $sa = session_start();
my $sb = session_start();

# ---------------------------------------------------------------------------
# (a) a send wakes the waiter at its commit, not before
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_send')");

my $wait = session_send($sb,
	"SELECT 'got:' || body FROM msgq.receive_message('lp_send', wait_time_seconds => 15);"
);
ok(wait_for_waiter($sb, 'lp_send'), '(a) the receive shows in msgq.waiters');
$node->safe_psql('postgres', 'CREATE ROLE lp_stranger');
is( $node->safe_psql('postgres',
		"SET ROLE lp_stranger; SELECT coalesce(queue_name, 'hidden') FROM msgq.waiters WHERE pid = $sb->{pid}"),
	'hidden',
	'(a) a role without rights on the queue sees the waiter but not the queue name');
$node->safe_psql('postgres', 'DROP ROLE lp_stranger');

session_query($sa, 'BEGIN;');
like(
	session_query($sa,
		"SELECT message_id FROM msgq.send_message('lp_send', 'hello');"),
	qr/^[0-9a-f-]{36}$/,
	'(a) message sent in an open transaction');
is(waiter_count($sb), '1',
	'(a) the waiter still waits after the send, before the commit');
ok(session_pending($sb, $wait), '(a) the waiter has returned nothing yet');

my $t0 = time;
session_query($sa, 'COMMIT;');
my $got = session_wait($sb, $wait);
my $elapsed = time - $t0;
is($got, 'got:hello', '(a) the waiter receives the committed message');
cmp_ok($elapsed, '<', 2, '(a) the waiter returns promptly after the commit');
is($sb->{err}, '', '(a) no error');
is(waiter_count($sb), '0', '(a) the waiter left msgq.waiters');

# ---------------------------------------------------------------------------
# (b) a visibility timeout running out wakes the waiter
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_vt')");
my $sent_id = $node->safe_psql('postgres',
	"SELECT message_id FROM msgq.send_message('lp_vt', 'leased')");
my $recv_id = session_query($sa,
	"SELECT message_id FROM msgq.receive_message('lp_vt', visibility_timeout => 2);"
);
$t0 = time;
is($recv_id, $sent_id, '(b) session A received the message for 2 s');

$wait = session_send($sb,
	"SELECT message_id, attributes->>'ApproximateReceiveCount'"
	  . " FROM msgq.receive_message('lp_vt', wait_time_seconds => 15);");
$got = session_wait($sb, $wait);
$elapsed = time - $t0;
is($got, "$sent_id|2",
	'(b) the waiter gets the same message, with receive count 2');
cmp_ok($elapsed, '>=', 1.5,
	'(b) not before the visibility timeout ran out');
cmp_ok($elapsed, '<', 6, '(b) soon after the visibility timeout ran out');

# The same, when the message is sent and received after the wait began: the
# waiter, woken by the send's commit, finds the message in flight and must
# sleep until its visibility timeout runs out, not until its wait ends.
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_vt2')");
$wait = session_send($sb,
	"SELECT message_id, attributes->>'ApproximateReceiveCount'"
	  . " FROM msgq.receive_message('lp_vt2', wait_time_seconds => 15);");
ok(wait_for_waiter($sb, 'lp_vt2'), '(b) a receive waits on an empty queue');
session_query($sa, 'BEGIN;');
$sent_id = session_query($sa,
	"SELECT message_id FROM msgq.send_message('lp_vt2', 'leased later');");
is( session_query($sa,
		"SELECT message_id FROM msgq.receive_message('lp_vt2', visibility_timeout => 2);"
	),
	$sent_id,
	'(b) session A sends and receives a message for 2 s in one transaction');
session_query($sa, 'COMMIT;');
$t0 = time;
$got = session_wait($sb, $wait);
$elapsed = time - $t0;
is($got, "$sent_id|2",
	'(b) the waiter gets the message sent after it began waiting');
cmp_ok($elapsed, '>=', 1.5,
	'(b) not before the visibility timeout ran out');
cmp_ok($elapsed, '<', 6,
	'(b) soon after the visibility timeout ran out, not at the end of the wait');

# ---------------------------------------------------------------------------
# (c) a rolled-back receive wakes the waiter
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_rollback')");
$sent_id = $node->safe_psql('postgres',
	"SELECT message_id FROM msgq.send_message('lp_rollback', 'rolled back')");
session_query($sa, 'BEGIN;');
is( session_query($sa,
		"SELECT message_id FROM msgq.receive_message('lp_rollback', visibility_timeout => 60);"
	),
	$sent_id,
	'(c) session A receives the message in an open transaction');

$wait = session_send($sb,
	"SELECT message_id, attributes->>'ApproximateReceiveCount'"
	  . " FROM msgq.receive_message('lp_rollback', wait_time_seconds => 15);");
ok(wait_for_waiter($sb, 'lp_rollback'),
	'(c) the second receive waits while the first one holds the message');
ok(session_pending($sb, $wait), '(c) the waiter has returned nothing yet');

$t0 = time;
session_query($sa, 'ROLLBACK;');
$got = session_wait($sb, $wait);
$elapsed = time - $t0;
is($got, "$sent_id|2",
	'(c) the waiter gets the message; the rolled-back receive counts');
cmp_ok($elapsed, '<', 2, '(c) the waiter returns promptly after the rollback');

# The same with a receive rolled back to a savepoint.
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_savepoint')");
$sent_id = $node->safe_psql('postgres',
	"SELECT message_id FROM msgq.send_message('lp_savepoint', 'rolled back to a savepoint')"
);
session_query($sa, 'BEGIN;');
session_query($sa, 'SAVEPOINT s;');
is( session_query($sa,
		"SELECT message_id FROM msgq.receive_message('lp_savepoint', visibility_timeout => 60);"
	),
	$sent_id,
	'(c) session A receives the message after a savepoint');

$wait = session_send($sb,
	"SELECT message_id, attributes->>'ApproximateReceiveCount'"
	  . " FROM msgq.receive_message('lp_savepoint', wait_time_seconds => 15);");
ok(wait_for_waiter($sb, 'lp_savepoint'),
	'(c) the second receive waits while the first one holds the message');

$t0 = time;
session_query($sa, 'ROLLBACK TO SAVEPOINT s;');
$got = session_wait($sb, $wait);
$elapsed = time - $t0;
is($got, "$sent_id|2",
	'(c) the waiter gets the message rolled back to the savepoint');
cmp_ok($elapsed, '<', 2,
	'(c) the waiter returns promptly after the rollback to the savepoint');
session_query($sa, 'COMMIT;');

# ---------------------------------------------------------------------------
# (d) change_message_visibility(..., 0) wakes the waiter at its commit
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_cmv')");
$sent_id = $node->safe_psql('postgres',
	"SELECT message_id FROM msgq.send_message('lp_cmv', 'visible again')");
my $handle = session_query($sa,
	"SELECT receipt_handle FROM msgq.receive_message('lp_cmv', visibility_timeout => 60);"
);
isnt($handle, '', '(d) session A received the message for 60 s');

$wait = session_send($sb,
	"SELECT message_id, attributes->>'ApproximateReceiveCount'"
	  . " FROM msgq.receive_message('lp_cmv', wait_time_seconds => 15);");
ok(wait_for_waiter($sb, 'lp_cmv'), '(d) the second receive waits');

session_query($sa, 'BEGIN;');
session_query($sa,
	"SELECT msgq.change_message_visibility('lp_cmv', '$handle', 0);");
is(waiter_count($sb), '1',
	'(d) still waiting after change_message_visibility, before the commit');
ok(session_pending($sb, $wait), '(d) the waiter has returned nothing yet');
$t0 = time;
session_query($sa, 'COMMIT;');
$got = session_wait($sb, $wait);
$elapsed = time - $t0;
is($got, "$sent_id|2", '(d) the waiter gets the message back');
cmp_ok($elapsed, '<', 2, '(d) the waiter returns promptly after the commit');

# ---------------------------------------------------------------------------
# (e) delete_queue ends the wait, with an empty result
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_delete')");
$wait = session_send($sb,
	"SELECT 'got:' || body FROM msgq.receive_message('lp_delete', wait_time_seconds => 15);"
);
ok(wait_for_waiter($sb, 'lp_delete'), '(e) the receive waits');
$t0 = time;
$node->safe_psql('postgres', "SELECT msgq.delete_queue('lp_delete')");
$got = session_wait($sb, $wait);
$elapsed = time - $t0;
is($got, '', '(e) the wait ends with an empty result');
is($sb->{err}, '', '(e) no error');
cmp_ok($elapsed, '<', 2, '(e) the wait ends promptly after delete_queue');

# ---------------------------------------------------------------------------
# (f) pg_cancel_backend cancels the wait, pg_terminate_backend ends it
#
# In a new session whose first msgq call is the waiting receive, so that
# nothing but the wait itself has set up msgq's state in that backend.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_cancel')");
my $c = session_start();
$wait = session_send($c,
	"SELECT 'got:' || body FROM msgq.receive_message('lp_cancel', wait_time_seconds => 15);"
);
ok(wait_for_waiter($c, 'lp_cancel'), '(f) the receive waits');
$t0 = time;
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($c->{pid})"),
	't', '(f) cancel request sent');
$got = session_wait($c, $wait);
$elapsed = time - $t0;
is($got, '', '(f) the cancelled receive returns nothing');
like(
	$c->{err},
	qr/canceling statement due to user request/,
	'(f) the receive is cancelled');
cmp_ok($elapsed, '<', 2, '(f) the cancel takes effect promptly');
is(waiter_count($c), '0', '(f) the cancelled waiter left msgq.waiters');
is(session_query($c, "SELECT 'alive';"),
	'alive', '(f) the session is usable after the cancel');

$wait = session_send($c,
	"SELECT 'got:' || body FROM msgq.receive_message('lp_cancel', wait_time_seconds => 15);"
);
ok(wait_for_waiter($c, 'lp_cancel'), '(f) the session waits again');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($c->{pid})"),
	't', '(f) terminate request sent');
$c->{timer}->start($PostgreSQL::Test::Utils::timeout_default);
ok( pump_until(
		$c->{h}, $c->{timer}, \$c->{err},
		qr/terminating connection due to administrator command/),
	'(f) the terminated waiter reports the termination');
$c->{h}->kill_kill;
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $c->{pid}", '0'),
	'(f) the terminated backend has exited');
is(waiter_count($c), '0', '(f) the terminated waiter left msgq.waiters');

# ---------------------------------------------------------------------------
# (g) a shorter statement_timeout ends the wait empty, without an error
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_timeout')");
session_query($sb, "SET statement_timeout = '1s';");
$t0 = time;
$got = session_query($sb,
	"SELECT 'got:' || body FROM msgq.receive_message('lp_timeout', wait_time_seconds => 10);"
);
$elapsed = time - $t0;
is($got, '', '(g) the receive returns an empty result');
is($sb->{err}, '', '(g) and no error, in particular no statement timeout');
cmp_ok($elapsed, '>=', 0.8, '(g) after waiting close to 1 s');
cmp_ok($elapsed, '<', 3, '(g) not the whole wait time');
session_query($sb, 'RESET statement_timeout;');

# ---------------------------------------------------------------------------
# (h) a delayed message wakes the waiter when its delay ends
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_delay')");
$wait = session_send($sb,
	"SELECT 'got:' || body FROM msgq.receive_message('lp_delay', wait_time_seconds => 15);"
);
ok(wait_for_waiter($sb, 'lp_delay'), '(h) the receive waits');
$t0 = time;
$node->safe_psql('postgres',
	"SELECT msgq.send_message('lp_delay', 'later', delay_seconds => 2)");
$got = session_wait($sb, $wait);
$elapsed = time - $t0;
is($got, 'got:later', '(h) the waiter gets the delayed message');
cmp_ok($elapsed, '>=', 1.5, '(h) not before the delay ended');
cmp_ok($elapsed, '<', 6,
	'(h) soon after the delay ended, not at the end of the wait');

# ---------------------------------------------------------------------------
# (i) a sleeping waiter does not hold up the truncation of a segment
# ---------------------------------------------------------------------------
# Each check of a waiting receive runs in a subtransaction that is rolled
# back when it found nothing, releasing its locks on msgq.message's
# partitions.  The maintenance cycle runs here with msgq's clock an hour
# ahead (the worker, on the real clock, then leaves the segments alone) and
# with msgq.segment_lock_timeout = 5s: enough for a lock the worker's own
# cycle holds for a moment, far less than the 15 s the waiter sleeps, so a
# waiter that kept its locks would make the drain fail.  Three cycles, two
# seconds apart: when the worker rotated just before the first (its active
# segment then empty), the first drains the old sealed segment into the new
# active one, the second seals that one, and the third drains it.
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_seg')");
$node->safe_psql('postgres',
	"SELECT msgq.delete_message('lp_seg', receipt_handle)"
	  . " FROM msgq.send_message('lp_seg', 'first'), msgq.receive_message('lp_seg')");
$wait = session_send($sb,
	"SELECT 'got:' || body FROM msgq.receive_message('lp_seg', wait_time_seconds => 15);"
);
ok(wait_for_waiter($sb, 'lp_seg'), '(i) the receive waits on an empty queue');
my $maint = q{
	SET msgq.segment_lock_timeout = '5s';
	SET msgq.clock_offset = '3600s';
	SELECT msgq.run_maintenance();
	SET msgq.clock_offset = '3602s';
	SELECT msgq.run_maintenance();
	SET msgq.clock_offset = '3604s';
	SELECT msgq.run_maintenance();
	SELECT string_agg(state, ',' ORDER BY state) FROM msgq.segment WHERE state <> 'free';
};
is((split /\n/, $node->safe_psql('postgres', $maint))[-1], 'active',
	'(i) while the waiter sleeps, every sealed segment is drained and truncated');
is(waiter_count($sb), '1', '(i) the waiter still waits');
$node->safe_psql('postgres', "SELECT msgq.send_message('lp_seg', 'after')");
is(session_wait($sb, $wait), 'got:after',
	'(i) and receives the next message, sent to the new active segment');
is($sb->{err}, '', '(i) no error');

# ---------------------------------------------------------------------------
# (j) a rolled-back delete of a message whose lease ran out wakes the waiter
# ---------------------------------------------------------------------------
# Session A received the message (a 60 s lease) and deletes it, in an open
# transaction, after the lease ran out (both sessions' clocks are 120 s
# ahead).  The waiter finds the message free in the lease table but its row
# locked by the delete, so it skips it; nothing else will happen on the
# queue.  Only the rollback can tell it the message is back.
session_query($sa, "SET msgq.clock_offset = '120s';");
session_query($sb, "SET msgq.clock_offset = '120s';");
foreach my $how ('delete_message', 'delete_message_batch', 'savepoint')
{
	my $q = "lp_del_$how";
	my $del =
	  $how eq 'delete_message_batch'
	  ? "SELECT count(*) FROM msgq.delete_message_batch('$q',"
	  . " jsonb_build_array(jsonb_build_object('Id', 'a', 'ReceiptHandle', '%s'))) d"
	  . " WHERE d.error_code IS NULL;"
	  : "SELECT msgq.delete_message('$q', '%s');";

	$node->safe_psql('postgres', "SELECT msgq.create_queue('$q')");
	$sent_id = $node->safe_psql('postgres',
		"SELECT message_id FROM msgq.send_message('$q', 'deleted, then not')");
	$handle = $node->safe_psql('postgres',
		"SELECT receipt_handle FROM msgq.receive_message('$q', visibility_timeout => 60)");
	session_query($sa, 'BEGIN;');
	session_query($sa, 'SAVEPOINT s;') if $how eq 'savepoint';
	is(session_query($sa, sprintf($del, $handle)),
		$how eq 'delete_message_batch' ? '1' : '',
		"(j) $how: session A deletes the message, uncommitted");

	$wait = session_send($sb,
		"SELECT message_id, attributes->>'ApproximateReceiveCount'"
		  . " FROM msgq.receive_message('$q', wait_time_seconds => 15);");
	ok(wait_for_waiter($sb, $q),
		"(j) $how: the receive skips the locked row and waits");
	ok(session_pending($sb, $wait), "(j) $how: the waiter has returned nothing yet");

	$t0 = time;
	session_query($sa,
		$how eq 'savepoint' ? 'ROLLBACK TO SAVEPOINT s;' : 'ROLLBACK;');
	$got = session_wait($sb, $wait);
	$elapsed = time - $t0;
	is($got, "$sent_id|2", "(j) $how: the waiter gets the message back");
	cmp_ok($elapsed, '<', 2,
		"(j) $how: the waiter returns promptly after the rollback");
	session_query($sa, 'COMMIT;') if $how eq 'savepoint';
}

# The same for a dead-letter move: session A's receive finds the message at
# maxReceiveCount and moves it, uncommitted; the waiter on the source queue
# skips the locked row.  Woken by the rollback, the waiter moves the message
# itself and waits on (its receive returns nothing), so the wake-up shows as
# the transaction id its move takes: a check that finds nothing to do takes
# none.
$node->safe_psql('postgres', "SELECT msgq.create_queue('lp_dlq_target')");
$node->safe_psql('postgres',
	q{SELECT msgq.create_queue('lp_dlq', '{"RedrivePolicy": {"deadLetterTargetArn": "lp_dlq_target", "maxReceiveCount": 1}}')}
);
$sent_id = $node->safe_psql('postgres',
	"SELECT message_id FROM msgq.send_message('lp_dlq', 'moved, then not')");
$node->safe_psql('postgres',
	"SELECT count(*) FROM msgq.receive_message('lp_dlq', visibility_timeout => 60)");
# The maintenance cycle's count writer may hold the row for a moment, and a
# receive then skips it: try again until the move is made.
my $moved = '';
for my $try (1 .. 50)
{
	session_query($sa, 'BEGIN;');
	session_query($sa, "SELECT count(*) FROM msgq.receive_message('lp_dlq');");
	$moved = session_query($sa,
		"SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id)"
		  . " WHERE q.queue_name = 'lp_dlq_target';");
	last if $moved eq '1';
	session_query($sa, 'ROLLBACK;');
}
is($moved, '1',
	"(j) dead-letter move: session A's receive moves the message, uncommitted");
$wait = session_send($sb,
	"SELECT count(*) FROM msgq.receive_message('lp_dlq', wait_time_seconds => 15);");
ok(wait_for_waiter($sb, 'lp_dlq'),
	'(j) dead-letter move: the receive on the source queue waits');
is( $node->safe_psql('postgres',
		"SELECT backend_xid IS NULL FROM pg_stat_activity WHERE pid = $sb->{pid}"),
	't',
	'(j) dead-letter move: the waiter has written nothing');
$t0 = time;
session_query($sa, 'ROLLBACK;');
ok( $node->poll_query_until('postgres',
		"SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = $sb->{pid}"),
	'(j) dead-letter move: woken by the rollback, the waiter moves the message');
$elapsed = time - $t0;
cmp_ok($elapsed, '<', 2,
	'(j) dead-letter move: promptly after the rollback');
is(session_wait($sb, $wait), '0',
	'(j) dead-letter move: the waiter returns nothing at the end of its wait');
is( $node->safe_psql('postgres',
		"SET msgq.clock_offset = '120s';"
		  . " SELECT message_id FROM msgq.receive_message('lp_dlq_target')"),
	$sent_id,
	'(j) dead-letter move: the message is in the dead-letter queue');
session_query($sa, 'RESET msgq.clock_offset;');
session_query($sb, 'RESET msgq.clock_offset;');

session_quit($sa);
session_quit($sb);
$node->stop;

done_testing();
