
# Copyright (c) msgq contributors

# The launcher and the per-database workers: one worker per database where
# msgq is installed and none elsewhere, restarts after pg_terminate_backend
# of a worker or of the launcher without ever duplicating a worker, the
# database commands that need a database to themselves (DROP DATABASE,
# CREATE DATABASE ... TEMPLATE, ALTER DATABASE ... RENAME) succeed while a
# worker runs, DROP EXTENSION stops the worker, SIGHUP toggles
# msgq.worker_enabled, and msgq.workers shows it all.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('workers');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'msgq'
msgq.launcher_naptime = '1s'
msgq.worker_naptime = '100ms'
max_worker_processes = 16
});
$node->start;

# The pid of the msgq worker of a database ('' when there is none).
sub worker_pid
{
	my ($dbname) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
		  . "WHERE backend_type = 'msgq worker' AND datname = '$dbname'");
}

# Wait until the database has exactly one worker, other than $old_pid if
# given; return its pid.
sub wait_for_worker
{
	my ($dbname, $old_pid) = @_;
	my $cond = defined $old_pid ? "AND pid <> $old_pid" : '';
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity "
		  . "WHERE backend_type = 'msgq worker' AND datname = '$dbname' $cond"
	) or die "timed out waiting for the msgq worker of $dbname";
	return worker_pid($dbname);
}

sub wait_for_no_worker
{
	my ($dbname) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity "
		  . "WHERE backend_type = 'msgq worker' AND datname = '$dbname'")
	  or die "timed out waiting for the msgq worker of $dbname to exit";
}

# No database ever has two workers, in pg_stat_activity or in the slots.
sub check_no_duplicates
{
	my ($what) = @_;
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM (SELECT datname FROM pg_stat_activity "
			  . "WHERE backend_type = 'msgq worker' "
			  . "GROUP BY datname HAVING count(*) > 1) d"),
		'0',
		"$what: no database has two workers");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM (SELECT database FROM msgq.workers "
			  . "WHERE database IS NOT NULL "
			  . "GROUP BY database HAVING count(*) > 1) d"),
		'0',
		"$what: no database has two slots");
}

# The launcher's number of scans of pg_database.
sub launcher_scans
{
	return $node->safe_psql('postgres',
		"SELECT cycles FROM msgq.workers WHERE state = 'launcher'");
}

# Wait until the launcher has scanned pg_database twice more, so that a
# worker it would start for what we just did has had its chance.
sub wait_two_scans
{
	my $scans = launcher_scans();
	$node->poll_query_until('postgres',
		"SELECT cycles >= $scans + 2 FROM msgq.workers WHERE state = 'launcher'")
	  or die "timed out waiting for the launcher to scan pg_database";
}

# The launcher starts once the server is up.
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'msgq launcher'"
) or die "timed out waiting for the msgq launcher";
pass('launcher is running');

# The launcher probes postgres at once; msgq is not installed there yet.
$node->safe_psql('postgres', 'CREATE EXTENSION msgq');
my $pg_pid = wait_for_worker('postgres');
ok($pg_pid, 'CREATE EXTENSION msgq starts a worker in postgres');

# A database created with msgq installed right after.
$node->safe_psql('postgres', 'CREATE DATABASE db1');
$node->safe_psql('db1', 'CREATE EXTENSION msgq');
my $db1_pid = wait_for_worker('db1');
ok($db1_pid, 'CREATE EXTENSION msgq starts a worker in a new database');

# A database without msgq gets no lasting worker.
$node->safe_psql('postgres', 'CREATE DATABASE plain');
wait_two_scans();
is(worker_pid('plain'), '', 'no worker in a database without msgq');
wait_two_scans();
is(worker_pid('plain'), '', 'still no worker in a database without msgq');

# The status view.
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM msgq.workers "
	  . "WHERE database IN ('postgres', 'db1') AND state = 'running' AND cycles > 0"
) or die "timed out waiting for maintenance cycles";
is( $node->safe_psql(
		'postgres',
		"SELECT pid IS NOT NULL AND database IS NULL AND started_at IS NOT NULL "
		  . "FROM msgq.workers WHERE state = 'launcher'"),
	't',
	'msgq.workers shows the launcher');
is( $node->safe_psql(
		'db1',
		"SELECT pid FROM msgq.workers WHERE database = 'db1'"),
	$db1_pid,
	'msgq.workers shows the worker pid');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM msgq.workers WHERE database = 'plain'"),
	'0',
	'msgq.workers shows no worker for a database without msgq');
check_no_duplicates('after start');

# pg_terminate_backend on a worker: the launcher starts a new one.
$node->safe_psql('postgres', "SELECT pg_terminate_backend($db1_pid)");
my $db1_pid2 = wait_for_worker('db1', $db1_pid);
isnt($db1_pid2, $db1_pid, 'a terminated worker is restarted');
check_no_duplicates('after a worker was terminated');

# pg_terminate_backend on the launcher: the postmaster restarts it, and
# the new launcher adopts the running workers instead of starting more.
my $launcher_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'msgq launcher'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher_pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity "
	  . "WHERE backend_type = 'msgq launcher' AND pid <> $launcher_pid")
  or die "timed out waiting for the launcher to restart";
pass('the launcher is restarted');
wait_two_scans();
is(worker_pid('postgres'), $pg_pid, 'the postgres worker was adopted');
is(worker_pid('db1'), $db1_pid2, 'the db1 worker was adopted');
check_no_duplicates('after the launcher restarted');

# The launcher dies right after registering workers (a new database with
# msgq, a restarting worker): whatever the postmaster had not started yet
# must not run next to what the new launcher starts.
$launcher_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'msgq launcher'");
$node->safe_psql('postgres', 'CREATE DATABASE race');
$node->safe_psql('race', 'CREATE EXTENSION msgq');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend($pg_pid), pg_terminate_backend($launcher_pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity "
	  . "WHERE backend_type = 'msgq launcher' AND pid <> $launcher_pid")
  or die "timed out waiting for the launcher to restart";
$pg_pid = wait_for_worker('postgres', $pg_pid);
ok(wait_for_worker('race'), 'a database created around a launcher crash gets its worker');
wait_two_scans();
check_no_duplicates('after the launcher died while starting workers');

# A terminated worker is still restarted by the new launcher.
$node->safe_psql('postgres', "SELECT pg_terminate_backend($db1_pid2)");
my $db1_pid3 = wait_for_worker('db1', $db1_pid2);
ok($db1_pid3, 'an adopted worker is restarted by the new launcher');

# Plain DROP DATABASE of a database with a running worker.
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'DROP DATABASE db1');
is($ret, 0, 'DROP DATABASE succeeds while a worker runs')
  or diag($stderr);
wait_for_no_worker('db1');
wait_two_scans();
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM msgq.workers WHERE database IS NOT NULL "
		  . "AND database NOT IN (SELECT datname FROM pg_database)"),
	'0',
	'the slot of the dropped database is freed');

# CREATE DATABASE ... TEMPLATE a database with msgq and a running worker.
$node->safe_psql('postgres', 'CREATE DATABASE db2');
$node->safe_psql('db2', 'CREATE EXTENSION msgq');
my $db2_pid = wait_for_worker('db2');
($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE DATABASE db3 TEMPLATE db2');
is($ret, 0, 'CREATE DATABASE ... TEMPLATE succeeds while the template has a worker')
  or diag($stderr);
ok(wait_for_worker('db3'), 'the copy gets its own worker');
ok(wait_for_worker('db2', $db2_pid), 'the template gets its worker back');
check_no_duplicates('after CREATE DATABASE ... TEMPLATE');

# ALTER DATABASE ... RENAME of a database with a running worker.
($ret, $stdout, $stderr) =
  $node->psql('postgres', 'ALTER DATABASE db2 RENAME TO db2r');
is($ret, 0, 'ALTER DATABASE ... RENAME succeeds while a worker runs')
  or diag($stderr);
ok(wait_for_worker('db2r'), 'the renamed database gets its worker back');

# A rename inside a transaction block keeps the database paused until the
# transaction ends: no worker may start and then block on the database lock.
my $db2_oid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'db2r'");
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
$bg->query_safe('ALTER DATABASE db2r RENAME TO db2');
wait_two_scans();
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity "
		  . "WHERE backend_type = 'msgq worker' AND datid = $db2_oid"),
	'0',
	'no worker runs while a RENAME is not committed');
$bg->query_safe('COMMIT');
$bg->quit;
ok(wait_for_worker('db2'), 'the worker returns when the RENAME commits');

# A database that stops accepting connections loses its worker.
$node->safe_psql('postgres', 'ALTER DATABASE db2 ALLOW_CONNECTIONS false');
wait_for_no_worker('db2');
pass('ALLOW_CONNECTIONS false stops the worker');
$node->safe_psql('postgres', 'ALTER DATABASE db2 ALLOW_CONNECTIONS true');
ok(wait_for_worker('db2'), 'ALLOW_CONNECTIONS true brings it back');

# msgq installed in template1: a new database inherits it, and no worker
# ever runs in the template.
$node->safe_psql('template1', 'CREATE EXTENSION msgq');
($ret, $stdout, $stderr) = $node->psql('postgres', 'CREATE DATABASE z');
is($ret, 0, 'CREATE DATABASE from a template1 with msgq succeeds')
  or diag($stderr);
ok(wait_for_worker('z'), 'the new database gets a worker');
is(worker_pid('template1'), '', 'no worker runs in template1');

# DROP EXTENSION makes the worker exit, and it stays away.
$node->safe_psql('db3', 'DROP EXTENSION msgq');
wait_for_no_worker('db3');
pass('DROP EXTENSION msgq stops the worker');
wait_two_scans();
is(worker_pid('db3'), '', 'the worker is not restarted without msgq');

# ... and CREATE EXTENSION brings it back.
$node->safe_psql('db3', 'CREATE EXTENSION msgq');
ok(wait_for_worker('db3'), 'CREATE EXTENSION msgq restarts the worker');

# msgq.worker_enabled is reloaded on SIGHUP.
$node->append_conf('postgresql.conf', 'msgq.worker_enabled = off');
$node->reload;
$node->poll_query_until('postgres',
	"SELECT bool_and(state = 'disabled') FROM msgq.workers WHERE database IS NOT NULL"
) or die "timed out waiting for the workers to be disabled";
my $cycles = $node->safe_psql('postgres',
	"SELECT cycles FROM msgq.workers WHERE database = 'postgres'");
wait_two_scans();
is( $node->safe_psql(
		'postgres',
		"SELECT cycles FROM msgq.workers WHERE database = 'postgres'"),
	$cycles,
	'a disabled worker runs no maintenance cycle');
$node->append_conf('postgresql.conf', 'msgq.worker_enabled = on');
$node->reload;
$node->poll_query_until('postgres',
	"SELECT cycles > $cycles FROM msgq.workers WHERE database = 'postgres'")
  or die "timed out waiting for the workers to be enabled again";
pass('msgq.worker_enabled = on resumes maintenance');

check_no_duplicates('after SIGHUP');

# Fewer slots than databases with msgq (postgres, race, db2, db3, z): as many
# workers as slots, a warning, and a free slot is used at once.
$node->append_conf('postgresql.conf', 'msgq.max_workers = 2');
$node->restart;
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'msgq worker'"
) or die "timed out waiting for two workers";
wait_two_scans();
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'msgq worker'"
	),
	'2',
	'no more workers than msgq.max_workers');
ok( $node->wait_for_log(qr/no free msgq worker slot for database/),
	'running out of slots is logged');
my $served = $node->safe_psql('postgres',
	"SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_stat_activity "
	  . "WHERE backend_type = 'msgq worker'");
my ($first) = split /,/, $served;
$node->safe_psql($first, 'DROP EXTENSION msgq');
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_activity "
	  . "WHERE backend_type = 'msgq worker' AND datname <> '$first'")
  or die "timed out waiting for a waiting database to get the free slot";
pass('a freed slot goes to a waiting database');
check_no_duplicates('at the end');

# Nothing went wrong in the launcher.
my $log = slurp_file($node->logfile);
unlike($log, qr/could not register background process/,
	'no background worker registration failed');
unlike($log, qr/PANIC|server process .* was terminated by signal/,
	'no crash');

$node->stop;

done_testing();
