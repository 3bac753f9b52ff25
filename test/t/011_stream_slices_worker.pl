
# Copyright (c) msgq contributors
#
# The worker keeps a stream's time slices on its own (src/slice.c), with
# msgq's clock moved for the whole server (ALTER SYSTEM SET
# msgq.clock_offset and a reload):
#   - after an hour (1/24 of the 24 h retention) it seals the current slice
#     and opens the next one;
#   - while a writer keeps a put open, sealing waits only
#     msgq.segment_lock_timeout per cycle: other writers' puts go on
#     (each under lock_timeout = 1s), and the slice is sealed once the
#     writer commits;
#   - once a sealed slice is past retention it is dropped whole, but not
#     while a reader's transaction still holds it: the worker does not wait
#     (the reader, writers and other readers go on), and drops it on a
#     later cycle once the reader is done;
#   - nothing but expired records is ever lost, and order is kept.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('slices');
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

sub wait_cycles
{
	my ($n) = @_;
	my $cycles = $node->safe_psql('postgres',
		"SELECT cycles FROM msgq.workers WHERE database = 'postgres'");
	$node->poll_query_until('postgres',
		"SELECT cycles >= $cycles + $n FROM msgq.workers WHERE database = 'postgres'"
	) or die "timed out waiting for $n maintenance cycles";
}

sub set_server_offset
{
	my ($offset) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET msgq.clock_offset = '$offset'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	# every later cycle sees the new clock
	wait_cycles(2);
}

sub slices
{
	return $node->safe_psql('postgres',
		q{SELECT string_agg(state, ',' ORDER BY slice_id) FROM msgq.stream_slices
		   WHERE stream_name = 'ts'});
}

sub put
{
	my ($data) = @_;
	return $node->safe_psql('postgres',
		"SET lock_timeout = '1s'; SELECT sequence_number FROM msgq.put_record('ts', 'k', convert_to('$data', 'UTF8'))"
	);
}

my $all_records = q{
	SELECT string_agg(convert_from(data, 'UTF8'), ',' ORDER BY sequence_number)
	  FROM msgq.get_records(msgq.get_shard_iterator('ts', 'shardId-000000000000', 'TRIM_HORIZON'))};

$node->poll_query_until('postgres',
	"SELECT cycles > 0 FROM msgq.workers WHERE database = 'postgres' AND state = 'running'"
) or die "timed out waiting for the msgq worker of postgres";

$node->safe_psql('postgres', q{SELECT msgq.create_stream('ts', 1)});
put("a$_") for 1 .. 3;
wait_cycles(3);
is(slices(), 'current', 'within the hour the slice stays current');

# an open writer holds the seal off; other writers are not held up
my $writer = $node->background_psql('postgres');
$writer->query_safe('BEGIN');
$writer->query_safe(q{SELECT msgq.put_record('ts', 'k', convert_to('a4', 'UTF8'))});
set_server_offset('61min');
wait_cycles(5);
is(slices(), 'current', 'the seal waits for an open writer (and gives up each cycle)');
my $puts_ok = 0;
for my $i (1 .. 10)
{
	$puts_ok++ if put("b$i") =~ /^\d+$/;
}
is($puts_ok, 10, 'other writers put meanwhile, none waiting 1 s for the worker');
$writer->query_safe('COMMIT');
$node->poll_query_until('postgres',
	q{SELECT string_agg(state, ',' ORDER BY slice_id) = 'sealed,current'
		FROM msgq.stream_slices WHERE stream_name = 'ts'})
  or die 'the slice was not sealed';
pass('the slice is sealed once the writer has committed');
set_server_offset('120min');
put("c$_") for 1 .. 3;

# a reader holds the first slice while it expires
my $reader = $node->background_psql('postgres');
$reader->query_safe('BEGIN');
my $before = $reader->query_safe($all_records);
is($before, 'a1,a2,a3,a4,b1,b2,b3,b4,b5,b6,b7,b8,b9,b10,c1,c2,c3',
	'a reader sees every record across both slices, in order');
# 25 h 2 min: the first slice (sealed at ~1 h 1 min) has expired; the c
# records (2 h) have not
set_server_offset('1502min');
wait_cycles(5);
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM msgq.stream_slices WHERE stream_name = 'ts' AND slice_id = 1}),
	'1', 'the expired slice a reader holds is not dropped');
ok(put('d1') =~ /^\d+$/, 'a writer puts while the worker cannot drop the slice');
is( $node->safe_psql('postgres', "SET statement_timeout = '2s'; $all_records"),
	'c1,c2,c3,d1', 'another reader reads (the expired records are hidden)');
is($reader->query_safe('SELECT 1'), '1', 'the holding reader is not blocked');
$reader->query_safe('COMMIT');

$node->poll_query_until('postgres',
	q{SELECT NOT EXISTS (SELECT 1 FROM msgq.stream_slices WHERE slice_id = 1)
	     AND to_regclass('msgq.stream_slice_1') IS NULL})
  or die 'the expired slice was not dropped';
pass('the worker drops the slice whole once the reader is done');
is($node->safe_psql('postgres', $all_records), 'c1,c2,c3,d1',
	'the records after it are all there, in order');

$writer->quit;
$reader->quit;
$node->stop;
done_testing();
