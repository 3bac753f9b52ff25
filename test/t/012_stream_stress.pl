
# Copyright (c) msgq contributors
#
# A reader never skips or repeats a record, under load: four pgbench
# clients put records to both shards of a stream in transactions of
# three puts, a fifth of which roll back, while this script reads both
# shards with get_records (following next_shard_iterator) and, every few
# reads, seals the current time slice (msgq.run_maintenance() with a
# session clock moved an hour further each time).  At the end, once the
# writers are done and the reader has caught up, the sequence numbers the
# reader saw in each shard must be exactly the committed ones, read from
# the slice tables, in increasing order.  The records of rolled-back
# transactions must never have been seen.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('stress');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\nmax_connections = 40\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION msgq;
	SELECT msgq.create_stream('ss', 2);
});

my $script = $node->basedir . '/put.sql';
open(my $fh, '>', $script) or die "could not write $script: $!";
print $fh <<'EOS';
\set k random(1, 1000000000)
\set r random(1, 5)
BEGIN;
SELECT msgq.put_record('ss', 'a' || :k, convert_to(:r::text, 'UTF8'));
SELECT msgq.put_record('ss', 'b' || :k, convert_to(:r::text, 'UTF8'));
SELECT msgq.put_record('ss', 'c' || :k, convert_to(:r::text, 'UTF8'));
\if :r = 1
ROLLBACK;
\else
COMMIT;
\endif
EOS
close($fh);

my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '8', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);

my %seen = (0 => [], 1 => []);
my %iterator;
for my $shard (0, 1)
{
	$iterator{$shard} = $node->safe_psql('postgres',
		"SELECT msgq.get_shard_iterator('ss', 'shardId-00000000000$shard', 'TRIM_HORIZON')");
}

# One get_records call: appends what it returns, moves the iterator on, and
# returns how many records came back.
sub read_shard
{
	my ($shard) = @_;
	my $res = $node->safe_psql('postgres', qq{
		SELECT coalesce(string_agg(sequence_number::text, ' ' ORDER BY sequence_number), '')
			   || '|' || max(next_shard_iterator) || '|' || count(sequence_number)
		  FROM msgq.get_records('$iterator{$shard}', 500)});
	my ($seqs, $next, $n) = split /\|/, $res;
	push @{ $seen{$shard} }, split(/ /, $seqs) if $n > 0;
	$iterator{$shard} = $next;
	return $n;
}

my $minutes = 0;
my $seals = 0;
my $reads = 0;
while ($pgbench->pumpable)
{
	$pgbench->pump_nb;
	read_shard($_) for (0, 1);
	$reads++;
	if ($reads % 3 == 0 && $minutes < 20 * 61)
	{
		$minutes += 61;
		$node->safe_psql('postgres',
			"SET msgq.clock_offset = '${minutes}min'; SELECT msgq.run_maintenance()");
		$seals++;
	}
	# iterators last 5 minutes; this loop takes seconds
}
$pgbench->finish;
like($out, qr/number of transactions actually processed: [1-9]/, 'the writers put records');

# the reader catches up: reads until both shards return nothing
for my $shard (0, 1)
{
	while (read_shard($shard) > 0) { }
}

my $slices = $node->safe_psql('postgres',
	q{SELECT count(*) FROM msgq.stream_slices WHERE stream_name = 'ss'});
cmp_ok($slices, '>', 5, "the slice was sealed while the writers ran ($slices slices)");

my $union = join(' UNION ALL ',
	map { "SELECT shard_index, seq FROM $_" } split(/\n/,
		$node->safe_psql('postgres',
			q{SELECT table_name FROM msgq.stream_slices WHERE stream_name = 'ss' ORDER BY slice_id})));
for my $shard (0, 1)
{
	my $committed = $node->safe_psql('postgres',
		"SELECT string_agg(seq::text, ' ' ORDER BY seq) FROM ($union) r WHERE shard_index = $shard");
	my @r = @{ $seen{$shard} };
	my @c = split / /, $committed;
	ok(scalar(@c) > 100, "shard $shard has committed records (" . scalar(@c) . ')');

	# the first difference, if any, and how many records were missed
	my $first = -1;
	for my $i (0 .. ($#c > $#r ? $#c : $#r))
	{
		if (!defined $c[$i] || !defined $r[$i] || $c[$i] ne $r[$i])
		{
			$first = $i;
			last;
		}
	}
	my %read = map { $_ => 1 } @r;
	my $missed = grep { !$read{$_} } @c;
	ok($first < 0,
		"shard $shard: the reader saw every committed record once, in order, and nothing else")
	  or diag("read " . scalar(@r) . ", committed " . scalar(@c) . ", missed $missed; first difference at "
		  . "position $first: read " . ($r[$first] // 'nothing') . ', committed ' . ($c[$first] // 'nothing'));
}

$node->stop;
done_testing();
