
# Copyright (c) msgq contributors
#
# msgq refuses to run where it cannot work:
#
#   - CREATE EXTENSION fails, leaving nothing behind, on a server that did
#     not load msgq through shared_preload_libraries;
#   - once installed, every entry point that needs msgq's shared memory
#     fails cleanly (no crash) if the server is restarted without msgq in
#     shared_preload_libraries;
#   - CREATE EXTENSION fails in a database whose encoding is not UTF8.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $not_preloaded =
  qr/ERROR:  55000: msgq must be loaded via "shared_preload_libraries"/;

# Run SQL that must fail; returns its stderr, with SQLSTATEs shown.
sub psql_error
{
	my ($node, $db, $sql) = @_;
	my ($ret, $stdout, $stderr) =
	  $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	return $ret == 0 ? "no error; output: $stdout" : $stderr;
}

sub msgq_leftovers
{
	my ($node, $db) = @_;
	return $node->safe_psql(
		$db, q{
		SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'msgq')
			 + (SELECT count(*) FROM pg_namespace WHERE nspname = 'msgq')});
}

my $node = PostgreSQL::Test::Cluster->new('not_preloaded');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', "max_worker_processes = 16\n");
$node->start;

# ---------------------------------------------------------------------------
# Not preloaded: CREATE EXTENSION fails
# ---------------------------------------------------------------------------
like(psql_error($node, 'postgres', 'CREATE EXTENSION msgq'),
	$not_preloaded, 'CREATE EXTENSION fails without shared_preload_libraries');
is(msgq_leftovers($node, 'postgres'),
	'0', 'the failed CREATE EXTENSION left no extension or schema behind');

# ---------------------------------------------------------------------------
# Installed, then the server restarted without msgq preloaded
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'msgq'\n");
$node->restart;
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION msgq;
	SELECT msgq.create_queue('q');
	SELECT msgq.create_queue('q_delete');
	SELECT msgq.send_message('q', 'kept');});
my $handle = $node->safe_psql('postgres',
	"SELECT receipt_handle FROM msgq.receive_message('q', visibility_timeout => 0)"
);
isnt($handle, '', 'msgq works once preloaded');

$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'restarted without msgq preloaded');

my %calls = (
	create_queue => "SELECT msgq.create_queue('q2')",
	delete_queue => "SELECT msgq.delete_queue('q_delete')",
	list_queues => 'SELECT * FROM msgq.list_queues()',
	get_queue_url => "SELECT msgq.get_queue_url('q')",
	send_message => "SELECT * FROM msgq.send_message('q', 'x')",
	receive_message => "SELECT * FROM msgq.receive_message('q')",
	receive_message_wait =>
	  "SELECT * FROM msgq.receive_message('q', wait_time_seconds => 1)",
	delete_message => "SELECT msgq.delete_message('q', '$handle')",
	change_message_visibility =>
	  "SELECT msgq.change_message_visibility('q', '$handle', 10)",
	add_permission =>
	  "SELECT msgq.add_permission('q', 'l', ARRAY['public'], ARRAY['SendMessage'])",
	remove_permission => "SELECT msgq.remove_permission('q', 'l')",
	run_maintenance => 'SELECT msgq.run_maintenance()',
	waiters => 'SELECT * FROM msgq.waiters',
	workers => 'SELECT * FROM msgq.workers',);
foreach my $name (sort keys %calls)
{
	like(psql_error($node, 'postgres', $calls{$name}),
		$not_preloaded, "$name refuses to run when msgq is not preloaded");
}
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id)
		 WHERE q.queue_name = 'q' AND m.body = 'kept'}),
	'1',
	'the stored message is untouched');
is($node->safe_psql('postgres', 'SELECT count(*) FROM msgq.queue'),
	'2', 'no queue was created or deleted');

# ---------------------------------------------------------------------------
# Preloaded, but the database is not UTF8
# ---------------------------------------------------------------------------
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "'msgq'");
$node->restart;
is( $node->safe_psql(
		'postgres', "SELECT body FROM msgq.receive_message('q')"),
	'kept',
	'msgq works again once preloaded again');

foreach my $encoding ('LATIN1', 'SQL_ASCII')
{
	my $db = lc "db_$encoding";
	$node->command_ok(
		[
			'createdb', '-E', $encoding, '--locale=C', '-T', 'template0',
			'-h', $node->host, '-p', $node->port, $db
		],
		"createdb $db with encoding $encoding");
	like(
		psql_error($node, $db, 'CREATE EXTENSION msgq'),
		qr/ERROR:  55000: msgq requires a database with UTF8 encoding/,
		"CREATE EXTENSION fails in a $encoding database");
	is(msgq_leftovers($node, $db),
		'0', "nothing is left behind in the $encoding database");
}

$node->stop;

done_testing();
