
# Copyright (c) msgq contributors
#
# pg_dump and pg_restore bring queues back with their messages, and streams
# with their time slices, records and checkpoints.
#
# msgq's catalog and message tables are extension configuration tables
# (pg_extension_config_dump), so a dump carries their rows.  The restore
# goes to a fresh cluster whose roles were created in another order, after
# an extra one, so every role has another OID there: ownership and
# permissions must follow role names, not OIDs.  The receipt-handle key is
# deliberately not dumped: the restored database makes its own, and
# handles minted before the dump are refused.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5 qw(md5_hex);

# The output of the last statement of a multi-statement safe_psql.
sub last_line
{
	my ($out) = @_;
	return (split /\n/, $out)[-1];
}

my $tempdir = PostgreSQL::Test::Utils::tempdir;
my $dumpfile = "$tempdir/msgq.dump";

my $node1 = PostgreSQL::Test::Cluster->new('source');
$node1->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node1->append_conf('postgresql.conf',
	"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\n");
$node1->start;

# ---------------------------------------------------------------------------
# Source database
# ---------------------------------------------------------------------------
$node1->safe_psql(
	'postgres', q{
	CREATE ROLE regress_owner;
	CREATE ROLE regress_reader;
	CREATE ROLE regress_other;
	CREATE DATABASE src;});
$node1->safe_psql('src', 'CREATE EXTENSION msgq');

# Roles that msgq's permissions let in must be able to reach msgq's
# functions at all.
is( $node1->safe_psql('src',
		"SELECT has_schema_privilege('regress_reader', 'msgq', 'USAGE')"),
	't',
	'every role has USAGE on schema msgq after CREATE EXTENSION');

my $attributes = q{'{"VisibilityTimeout": 45, "MessageRetentionPeriod": 86400,
	"DelaySeconds": 0, "MaximumMessageSize": 4096,
	"Policy": {"Version": "2012-10-17"}}'};
$node1->safe_psql(
	'src', qq{
	GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO regress_owner;
	SET ROLE regress_owner;
	SELECT msgq.create_queue('dq', $attributes);
	SELECT msgq.create_queue('dq_handles');
	SELECT msgq.add_permission('dq', 'readers', ARRAY['regress_reader'],
							   ARRAY['ReceiveMessage']);});

my $sent = $node1->safe_psql(
	'src', q{
	SET ROLE regress_owner;
	SELECT s.message_id, 'body ' || g, s.md5_of_message_body,
		   s.md5_of_message_attributes
	  FROM generate_series(1, 5) g,
	  LATERAL msgq.send_message('dq', 'body ' || g,
		message_attributes => jsonb_build_object(
			'color', jsonb_build_object('DataType', 'String', 'StringValue', 'red ' || g),
			'n', jsonb_build_object('DataType', 'Number', 'StringValue', g::text),
			'blob', jsonb_build_object('DataType', 'Binary', 'BinaryValue', 'aGVsbG8='))::json) s
	 ORDER BY g});
is(scalar(split /\n/, $sent), 5, '5 messages sent with attributes');

# A receipt handle minted before the dump; the message stays visible.
my $old_handle = last_line(
	$node1->safe_psql(
		'src', q{
		SET ROLE regress_owner;
		SELECT msgq.send_message('dq_handles', 'handle test');
		SELECT receipt_handle
		  FROM msgq.receive_message('dq_handles', visibility_timeout => 0);}));

my $queue_sql = q{SELECT queue_id, queue_name, owner, fifo, visibility_timeout,
	message_retention_period, delay_seconds, receive_wait_time_seconds,
	maximum_message_size, attributes, acl, created_at
	FROM msgq.queue ORDER BY queue_id};
my $perm_sql = 'SELECT * FROM msgq.queue_permission ORDER BY queue_id, label';
my $message_sql = q{SELECT queue_id, msg_seq, message_id, body,
	message_attributes, md5_of_body, md5_of_message_attributes, sender,
	sent_at, visible_at, receive_count
	FROM msgq.message ORDER BY queue_id, msg_seq};
# receive counts reach the rows in a maintenance cycle (doc/design.md,
# "Receive leases"): write them now, so the rows compared are final
$node1->safe_psql('src', 'SELECT msgq.run_maintenance()');
my $queues_before = $node1->safe_psql('src', $queue_sql);
my $perms_before = $node1->safe_psql('src', $perm_sql);
my $messages_before = $node1->safe_psql('src', $message_sql);
my $max_seq_before =
  $node1->safe_psql('src', 'SELECT max(msg_seq) FROM msgq.message');
my $max_queue_before =
  $node1->safe_psql('src', 'SELECT max(queue_id) FROM msgq.queue');

# A stream whose records are in two time slices (the first sealed an hour
# later on msgq's test clock), and a consumer group's checkpoint.
$node1->safe_psql(
	'src', q{
	GRANT EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) TO regress_owner;
	SET ROLE regress_owner;
	SELECT msgq.create_stream('ds', 2);
	SELECT count(*) FROM msgq.put_records('ds', ARRAY(SELECT 'k' || g FROM generate_series(1, 20) g),
		ARRAY(SELECT convert_to('first ' || g, 'UTF8') FROM generate_series(1, 20) g));
	RESET ROLE;
	SET msgq.clock_offset = '61min';
	SELECT msgq.run_maintenance();
	SET ROLE regress_owner;
	SELECT count(*) FROM msgq.put_records('ds', ARRAY(SELECT 'k' || g FROM generate_series(1, 20) g),
		ARRAY(SELECT convert_to('second ' || g, 'UTF8') FROM generate_series(1, 20) g));
	SELECT msgq.checkpoint('ds', 'g', 'shardId-000000000000',
		(SELECT max(sequence_number) FROM msgq.get_records(msgq.get_shard_iterator('ds',
			'shardId-000000000000', 'TRIM_HORIZON'), 3)));});
my $stream_records_sql = q{SET ROLE regress_owner;
	SELECT string_agg(convert_from(r.data, 'UTF8') || '@' || r.sequence_number, ',' ORDER BY s, r.sequence_number)
	  FROM unnest(ARRAY['shardId-000000000000', 'shardId-000000000001']) s,
	  LATERAL msgq.get_records(msgq.get_shard_iterator('ds', s, 'TRIM_HORIZON')) r};
my $after_checkpoint_sql = q{SET ROLE regress_owner;
	SELECT string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number)
	  FROM msgq.get_records(msgq.get_shard_iterator('ds', 'shardId-000000000000',
		'AFTER_CHECKPOINT', consumer_group => 'g'))};
my $slices_sql = q{SELECT string_agg(table_name || ':' || state, ',' ORDER BY slice_id)
	FROM msgq.stream_slices WHERE stream_name = 'ds'};
my $stream_records_before = last_line($node1->safe_psql('src', $stream_records_sql));
my $after_checkpoint_before = last_line($node1->safe_psql('src', $after_checkpoint_sql));
my $slices_before = $node1->safe_psql('src', $slices_sql);
is($slices_before =~ tr/,//, 1, 'the stream has two slices');
my $max_stream_seq_before = $node1->safe_psql('src',
	q{SELECT max(end_seq) FROM msgq.stream_slice});

$node1->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dumpfile, '-d', $node1->connstr('src') ],
	'pg_dump of the source database');

# ---------------------------------------------------------------------------
# Restore into a fresh cluster with other role OIDs
# ---------------------------------------------------------------------------
my $node2 = PostgreSQL::Test::Cluster->new('target');
$node2->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node2->append_conf('postgresql.conf',
	"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\n");
$node2->start;
$node2->safe_psql(
	'postgres', q{
	CREATE ROLE regress_extra;
	CREATE ROLE regress_other;
	CREATE ROLE regress_reader;
	CREATE ROLE regress_owner;
	CREATE DATABASE restored;});
isnt(
	$node2->safe_psql('postgres', "SELECT 'regress_owner'::regrole::oid"),
	$node1->safe_psql('postgres', "SELECT 'regress_owner'::regrole::oid"),
	'the owner role has another OID on the target cluster');

$node2->command_ok(
	[ 'pg_restore', '-d', $node2->connstr('restored'), $dumpfile ],
	'pg_restore into the target cluster');

is($node2->safe_psql('restored', $queue_sql),
	$queues_before, 'queues restored with the same attributes');
is($node2->safe_psql('restored', $perm_sql),
	$perms_before, 'permissions restored');
is($node2->safe_psql('restored', $message_sql),
	$messages_before, 'messages restored as they were');
is( $node2->safe_psql(
		'restored', q{
		SELECT owner::text, acl::text, attributes->>'VisibilityTimeout'
		  FROM msgq.queue WHERE queue_name = 'dq'}),
	'regress_owner|{regress_reader=r/regress_owner}|45',
	'the queue belongs to regress_owner and grants regress_reader by name');
is($node2->safe_psql('restored', 'SELECT count(*) FROM msgq.secret'),
	'1', 'exactly one receipt key after the restore');

# The reader receives the 5 messages with their ids, bodies and attributes.
is( $node2->safe_psql(
		'restored', q{
		SET ROLE regress_reader;
		SELECT message_id, body, md5_of_body,
			   message_attributes->'color'->>'StringValue',
			   message_attributes->'n'->>'StringValue',
			   message_attributes->'blob'->>'BinaryValue',
			   attributes->>'SenderId',
			   attributes->>'ApproximateReceiveCount'
		  FROM msgq.receive_message('dq', 10, 600)
		 ORDER BY body}),
	join(
		"\n",
		map {
			my ($id, $body, $md5) = split /\|/;
			my ($g) = $body =~ /(\d+)$/;
			"$id|$body|" . md5_hex($body) . "|red $g|$g|aGVsbG8=|regress_owner|1"
		} split /\n/,
		$sent),
	'regress_reader receives the 5 messages with the same ids, bodies and attributes'
);
is( $node2->safe_psql(
		'restored', q{
		SELECT string_agg(md5_of_message_attributes, ',' ORDER BY body)
		  FROM msgq.message WHERE queue_id = (
			SELECT queue_id FROM msgq.queue WHERE queue_name = 'dq')}),
	join(',', map { (split /\|/)[3] } split /\n/, $sent),
	'message attribute digests are unchanged');

my ($ret, $stdout, $stderr) = $node2->psql(
	'restored', q{
	\set VERBOSITY verbose
	SET ROLE regress_other;
	SELECT * FROM msgq.receive_message('dq');});
like(
	$stderr,
	qr/ERROR:  42501: permission denied for queue "dq"/,
	'regress_other cannot receive (42501)');

($ret, $stdout, $stderr) = $node2->psql(
	'restored', q{
	\set VERBOSITY verbose
	SET ROLE regress_reader;
	SELECT msgq.add_permission('dq', 'more', ARRAY['regress_other'],
							   ARRAY['ReceiveMessage']);});
like(
	$stderr,
	qr/ERROR:  42501: must be owner of queue "dq"/,
	'regress_reader is not the owner');

($ret, $stdout, $stderr) = $node2->psql(
	'restored', q{
	SET ROLE regress_owner;
	SELECT msgq.add_permission('dq', 'more', ARRAY['regress_other'],
							   ARRAY['SendMessage']);});
is($stderr, '', 'regress_owner still owns the queue: add_permission works');

($ret, $stdout, $stderr) = $node2->psql(
	'restored', q{
	\set VERBOSITY verbose
	SET ROLE regress_owner;
	SELECT msgq.delete_message('dq_handles', '} . $old_handle . q{');});
like(
	$stderr,
	qr/ERROR:  MQ004: /,
	'a receipt handle minted before the dump is refused (ReceiptHandleIsInvalid)'
);

# Sending and creating queues continue the restored sequences.
cmp_ok(
	last_line(
		$node2->safe_psql(
			'restored', q{
			SET ROLE regress_owner;
			SELECT msgq.send_message('dq', 'after restore');
			RESET ROLE;
			SELECT msg_seq FROM msgq.message WHERE body = 'after restore';})),
	'>',
	$max_seq_before,
	'a message sent after the restore gets a later sequence number');
is( $node2->safe_psql(
		'restored', q{
		SET ROLE regress_reader;
		SELECT body FROM msgq.receive_message('dq');}),
	'after restore',
	'the new message is received');
cmp_ok(
	last_line(
		$node2->safe_psql(
			'restored', q{
			SET ROLE regress_owner;
			SELECT msgq.create_queue('dq_new');
			RESET ROLE;
			SELECT queue_id FROM msgq.queue WHERE queue_name = 'dq_new';})),
	'>',
	$max_queue_before,
	'a queue created after the restore gets a new queue id');

# ---------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------
is($node2->safe_psql('restored', $slices_sql), $slices_before,
	'the stream comes back with the same time slices');
is(last_line($node2->safe_psql('restored', $stream_records_sql)), $stream_records_before,
	'every record is back in both shards, in order, with its sequence number');
is(last_line($node2->safe_psql('restored', $after_checkpoint_sql)), $after_checkpoint_before,
	'the consumer group resumes after its checkpoint');
cmp_ok(
	last_line(
		$node2->safe_psql(
			'restored', q{
			SET ROLE regress_owner;
			SELECT sequence_number FROM msgq.put_record('ds', 'k1', '\x00');})),
	'>',
	$max_stream_seq_before,
	'a record put after the restore gets a higher sequence number');
# the restored slice tables are plain tables until a maintenance cycle
# makes them depend on the extension again; then DROP EXTENSION takes them
$node2->safe_psql('restored', 'SELECT msgq.run_maintenance()');
is( $node2->safe_psql(
		'restored', q{
		SELECT count(*) FROM msgq.stream_slice l
		 WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
			WHERE d.objid = format('msgq.stream_slice_%s', l.slice_id)::regclass
			  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'msgq')
			  AND d.deptype = 'a')}),
	'0',
	'every restored slice depends on the extension again');
$node2->safe_psql('restored', 'DROP EXTENSION msgq');
is( $node2->safe_psql(
		'restored', q{SELECT count(*) FROM pg_class WHERE relname ~ '^stream_slice_[0-9]+$'}),
	'0',
	'DROP EXTENSION takes the restored slices along');

$node1->stop;
$node2->stop;

done_testing();
