
# Copyright (c) msgq contributors
#
# Streams across a crash (immediate shutdown) and a restart:
#   - every committed record is there, in the same sequence order per
#     shard, with its data; a put left uncommitted by the crash is not;
#   - a consumer group's checkpoint survives, and AFTER_CHECKPOINT resumes
#     after it;
#   - a shard iterator minted before the crash is still accepted (its key
#     is in a WAL-logged table);
#   - records put after the restart get higher sequence numbers than every
#     record before it.
# The records are spread over two time slices (a sealed one and the
# current one), so both slice tables are recovered.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('streams');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION msgq');

# 200 records in two time slices: the first is sealed an hour later (on
# msgq's test clock) and the next 100 go to the second
$node->safe_psql('postgres', q{
	SELECT msgq.create_stream('rs', 2);
	SELECT count(*) FROM msgq.put_records('rs',
		ARRAY(SELECT 'key-' || g FROM generate_series(1, 100) g),
		ARRAY(SELECT convert_to('data ' || g, 'UTF8') FROM generate_series(1, 100) g));
	SET msgq.clock_offset = '61min';
	SELECT msgq.run_maintenance();
	SELECT count(*) FROM msgq.put_records('rs',
		ARRAY(SELECT 'key-' || g FROM generate_series(101, 200) g),
		ARRAY(SELECT convert_to('data ' || g, 'UTF8') FROM generate_series(101, 200) g));
});
is($node->safe_psql('postgres',
		q{SELECT string_agg(state, ',' ORDER BY slice_id) FROM msgq.stream_slices}),
	'sealed,current', 'the records are in two slices');

# every record, read from the slice tables directly
my $records = '(' . join(' UNION ALL ',
	map { "SELECT * FROM $_" } split(/\n/, $node->safe_psql('postgres',
			'SELECT table_name FROM msgq.stream_slices ORDER BY slice_id'))) . ') r';
my $listing = qq{
	SELECT string_agg(shard_index || ':' || seq || ':' || convert_from(data, 'UTF8'), ','
					  ORDER BY shard_index, seq)
	  FROM $records};
my $before = $node->safe_psql('postgres', $listing);

# the group has processed shard 0 up to its 10th record
my $tenth = $node->safe_psql('postgres', q{
	SELECT sequence_number FROM msgq.get_records(
		msgq.get_shard_iterator('rs', 'shardId-000000000000', 'TRIM_HORIZON'), 10)
	 ORDER BY sequence_number DESC LIMIT 1});
$node->safe_psql('postgres',
	"SELECT msgq.checkpoint('rs', 'g', 'shardId-000000000000', $tenth)");
my $resume_before = $node->safe_psql('postgres', q{
	SELECT sequence_number FROM msgq.get_records(msgq.get_shard_iterator('rs',
		'shardId-000000000000', 'AFTER_CHECKPOINT', consumer_group => 'g'), 1)});
my $iterator = $node->safe_psql('postgres',
	q{SELECT msgq.get_shard_iterator('rs', 'shardId-000000000001', 'TRIM_HORIZON')});
my $max_before = $node->safe_psql('postgres', "SELECT max(seq) FROM $records");

# a put left open when the server goes down
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
$open->query_safe(q{SELECT msgq.put_record('rs', 'lost', convert_to('uncommitted', 'UTF8'))});

$node->stop('immediate');
eval { $open->quit; };
$node->start;

is($node->safe_psql('postgres', $listing), $before,
	'every committed record is back, in the same order per shard, with its data');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM $records WHERE partition_key = 'lost'"),
	'0', 'the uncommitted put is gone');
is( $node->safe_psql('postgres', q{
	SELECT sequence_number FROM msgq.get_records(msgq.get_shard_iterator('rs',
		'shardId-000000000000', 'AFTER_CHECKPOINT', consumer_group => 'g'), 1)}),
	$resume_before,
	'the checkpoint survived: AFTER_CHECKPOINT resumes at the same record');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM msgq.get_records('$iterator')"),
	$node->safe_psql('postgres',
		"SELECT count(*) FROM $records WHERE shard_index = 1"),
	'an iterator minted before the crash still reads its shard');
my $new = $node->safe_psql('postgres',
	q{SELECT sequence_number FROM msgq.put_record('rs', 'after', convert_to('after', 'UTF8'))});
cmp_ok($new, '>', $max_before, 'a record put after the restart has a higher sequence number');

$node->stop;
done_testing();
