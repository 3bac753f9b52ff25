
# Copyright (c) msgq contributors
#
# Stream queries run by the worker (src/analytics.c, README "Stream
# queries"): tumbling windows of 10 s by event time with 5 s of allowed
# lateness over a 2-shard stream, written to a table:
#
#   - the worker emits a window once the newest event time is 5 s past its
#     end, woken by the puts' commits;
#   - a record that comes late, within the lateness, is counted in its
#     window; one after its window was emitted is dropped and counted;
#   - each window is emitted exactly once although the worker is killed
#     with SIGKILL and the server restarted in the middle.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('stream_queries');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF2');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = 10s
restart_after_crash = on
timezone = 'UTC'
EOF2
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# the records of window w (ts 2026-01-01 00:0w:00 + 0..9 s, one window of
# 10 s each), or the given seconds
sub put
{
	my @secs = @_;
	my $values = join(', ', map { "($_)" } @secs);
	sql(qq{SELECT count(*) FROM msgq.put_records('clicks', (SELECT jsonb_agg(jsonb_build_object(
		'Data', encode(convert_to(jsonb_build_object('s', s,
			'ts', '2026-01-01T00:00:00Z'::timestamptz + s * interval '1 second')::text, 'UTF8'), 'base64'),
		'PartitionKey', 'k' || s)) FROM (VALUES $values) v(s)))});
}
sub window { my $w = shift; return map { $w * 10 + $_ } 0 .. 9; }

sql(<<'EOF2');
CREATE EXTENSION msgq;
CREATE TABLE per_window (window_start timestamptz, n bigint, seconds int[]);
SELECT msgq.create_stream('clicks', 2);
SELECT msgq.create_stream_query('per10s', 'clicks',
	$q$SELECT window_start, count(*), array_agg((data->>'s')::int ORDER BY (data->>'s')::int) FROM records GROUP BY 1$q$,
	'{"Window": {"Type": "Tumbling", "SizeInSeconds": 10}, "TimeSource": "EventTime", "EventTimeField": "ts",
	  "AllowedLatenessInSeconds": 5, "Destination": {"Type": "Table", "TableName": "per_window"}}');
EOF2

put(window(0));
$node->poll_query_until('postgres', q{SELECT records_read = 10 FROM msgq.stream_queries}, 't')
  or die 'the worker did not read the records';
is(sql('SELECT count(*) FROM per_window'), '0', 'no window before the watermark passes its end');
put(window(1));
put(15, 16);    # two more in window 1 while it is open (the newest event time stays 19)
put((window(2))[0 .. 5]);    # newest 25: window 1 ends at 20 <= 25 - 5
ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM per_window}, 't'),
	'windows 0 and 1 are emitted once the newest event time is 5 s past their ends');

put((window(2))[6 .. 9]);
put(window(3));
put(window(4));
my $pid = sql(q{SELECT pid FROM msgq.workers WHERE database = 'postgres'});
my $offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server did not come back after the crash';
put(window(5));
put(window(6));
put(70, 71, 72);    # newest 72: window 6 [60, 70) is still open (70 > 67)
put(65);            # late, within the lateness: counted in window 6
$node->restart;
put(73 .. 79);
put(window(8));
put(window(9));
put(200);           # the newest event time moves the watermark past window 9
ok($node->poll_query_until('postgres', q{SELECT count(*) = 10 FROM per_window}, 't'),
	'ten windows emitted across a kill -9 and a restart');
put(15);            # its window was emitted long ago
ok( $node->poll_query_until(
		'postgres', q{SELECT late_records = 1 FROM msgq.stream_queries WHERE query_name = 'per10s'}, 't'),
	'a record after its window was emitted is dropped and counted as late');
is( sql(q{SELECT string_agg(extract(epoch FROM window_start - '2026-01-01T00:00:00Z')::int || ':' || n, ' '
		ORDER BY window_start) FROM per_window}),
	'0:10 10:12 20:10 30:10 40:10 50:10 60:11 70:10 80:10 90:10',
	'each window once, with its records; window 6 with its late record');
is(sql(q{SELECT seconds FROM per_window WHERE window_start = '2026-01-01T00:01:00Z'}),
	'{60,61,62,63,64,65,65,66,67,68,69}', 'the late record is in window 6');
is( sql(q{SELECT windows_emitted || '|' || rows_emitted || '|' || pending_records
		FROM msgq.stream_queries WHERE query_name = 'per10s'}),
	'10|10|1', 'the view counts the windows; only the record at 200 s waits');

$node->stop;
done_testing();
