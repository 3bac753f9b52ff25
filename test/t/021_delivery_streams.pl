
# Copyright (c) msgq contributors
#
# Delivery streams run by the worker (src/firehose.c, README "Delivery
# streams"):
#
#   - a put's commit wakes the worker at IntervalInSeconds 0, which
#     delivers to a table as the owner;
#   - 10,000 records reach the table exactly once although the worker is
#     killed with SIGKILL in the middle (the crash cycle): a batch's inserts
#     and the deletes from the buffer commit together;
#   - with IntervalInSeconds 1 and a size hint that is not reached, the
#     worker delivers when the interval ends, without a wake-up;
#   - a stream source: records put to the stream reach the table once,
#     across a restart;
#   - a File destination leaves complete files only, holding every record;
#   - an HttpEndpoint destination answering 500 and then success gets the
#     batch again, in Firehose's request shape with the access key; one
#     answering with another requestId fails, and with RetryOptions
#     DurationInSeconds 0 its records go to the error output.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use POSIX ();

my $node = PostgreSQL::Test::Cluster->new('delivery_streams');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = 10s
msgq.delivery_directory = 'fh_out'
restart_after_crash = on
EOF
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(<<'EOF');
CREATE EXTENSION msgq;
CREATE ROLE fh_owner;
GRANT USAGE ON SCHEMA msgq TO fh_owner;
GRANT EXECUTE ON FUNCTION msgq.create_delivery_stream(text, jsonb) TO fh_owner;
GRANT EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) TO fh_owner;
GRANT pg_write_server_files TO fh_owner;
CREATE TABLE events (id bigserial, k text, n int, who text DEFAULT current_user);
CREATE TABLE late (k text);
CREATE TABLE from_stream (k text, n int);
GRANT ALL ON events, late, from_stream TO fh_owner;
-- slow inserts (1 ms a row), so that the worker is killed in the middle
CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.n > 0 THEN
		PERFORM pg_sleep(0.001);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER slow BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow();
GRANT ALL ON SEQUENCE events_id_seq TO fh_owner;
SET ROLE fh_owner;
SELECT msgq.create_delivery_stream('now', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Table", "TableName": "events"}}');
SELECT msgq.create_delivery_stream('later', '{"BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
	"Destination": {"Type": "Table", "TableName": "late"}}');
EOF

# one put: its commit wakes the worker (the naptime is 10 s)
sql(q{SET ROLE fh_owner; SELECT msgq.put_delivery_record('now', convert_to('{"k": "first", "n": 0}', 'UTF8'))});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM events}, 't'),
	'a put at IntervalInSeconds 0 is delivered at once, woken by its commit');
is(sql(q{SELECT who FROM events}), 'fh_owner', 'inserted as the owner');

# 10,000 records in 20 transactions of 500; the worker is killed midway
for my $t (1 .. 20)
{
	sql(qq{SET ROLE fh_owner;
		SELECT count(*) FROM msgq.put_record_batch('now', (SELECT jsonb_agg(jsonb_build_object('Data',
			encode(convert_to(jsonb_build_object('k', '$t-' || g, 'n', g)::text, 'UTF8'), 'base64')))
			FROM generate_series(1, 500) g))});
}
my $pid = sql(q{SELECT pid FROM msgq.workers WHERE database = 'postgres'});
my $before = sql(q{SELECT count(*) FROM events});
cmp_ok($before, '<', 10001, "killed with $before of 10,001 delivered");
cmp_ok(sql(q{SELECT count(*) FROM msgq.delivery_record}), '>', 0, 'while records wait in the buffer');
my $offset = -s $node->logfile;
kill 'KILL', $pid;
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server did not come back after the crash';
ok($node->poll_query_until('postgres', q{SELECT count(*) = 10001 FROM events}, 't'),
	'after the crash the worker delivers the rest');
is(sql(q{SELECT count(*) || '|' || count(DISTINCT k) FROM events}), '10001|10001',
	'every record exactly once');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM msgq.delivery_record}, 't'),
	'and the buffer is empty');

# IntervalInSeconds 1: delivered when the interval ends, no wake-up needed
sql(q{SET ROLE fh_owner; SELECT msgq.put_delivery_record('later', convert_to('{"k": "l1"}', 'UTF8'))});
is(sql(q{SELECT count(*) FROM late}), '0', 'a put at IntervalInSeconds 1 waits in the buffer');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM late}, 't'),
	'and is delivered once its interval has passed');
is( sql(q{SELECT last_latency_ms >= 1000 AND last_latency_ms < 5000
		FROM msgq.delivery_stream_metrics WHERE delivery_stream_name = 'later'}),
	't', 'about a second after its arrival');

# a stream source, across a restart
sql(<<'EOF');
SET ROLE fh_owner;
SELECT msgq.create_stream('clicks', 2);
SELECT msgq.create_delivery_stream('from_clicks', '{"DeliveryStreamType": "KinesisStreamAsSource",
	"KinesisStreamSourceConfiguration": {"KinesisStreamARN": "clicks"},
	"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "Table", "TableName": "from_stream"}}');
EOF
sql(q{SET ROLE fh_owner; SELECT count(*) FROM msgq.put_records('clicks', (SELECT jsonb_agg(jsonb_build_object(
	'Data', encode(convert_to(jsonb_build_object('k', 'a' || g, 'n', g)::text, 'UTF8'), 'base64'),
	'PartitionKey', 'p' || g)) FROM generate_series(1, 300) g))});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 300 FROM from_stream}, 't'),
	'records put to the source stream are delivered, woken by the put');
$node->restart;
sql(q{SET ROLE fh_owner; SELECT count(*) FROM msgq.put_records('clicks', (SELECT jsonb_agg(jsonb_build_object(
	'Data', encode(convert_to(jsonb_build_object('k', 'b' || g, 'n', g)::text, 'UTF8'), 'base64'),
	'PartitionKey', 'p' || g)) FROM generate_series(1, 300) g))});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 600 FROM from_stream}, 't'),
	'and after a restart, from where it was');
is(sql(q{SELECT count(DISTINCT k) FROM from_stream}), '600', 'each stream record once');

# an HTTP endpoint: /flaky answers 500 once, then echoes the requestId;
# /wrongid always names another one.  Every request is saved to a file.
my $dir = PostgreSQL::Test::Utils::tempdir;
my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Proto => 'tcp',
	Listen => 16,
	ReuseAddr => 1) or die "cannot listen: $!";
my $port = $listener->sockport;
my $server = fork();
die "fork: $!" if !defined $server;
if ($server == 0)
{
	POSIX::setsid();
	my $n = 0;
	while (1)
	{
		my $conn = $listener->accept or next;
		my $req = '';
		while ($req !~ /\r\n\r\n/)
		{
			my $got = sysread($conn, my $buf, 65536);
			last if !$got;
			$req .= $buf;
		}
		my ($headers, $body) = split(/\r\n\r\n/, $req, 2);
		my ($len) = $headers =~ /^content-length:\s*(\d+)/mi;
		while (length($body // '') < ($len // 0))
		{
			my $got = sysread($conn, my $buf, 65536);
			last if !$got;
			$body .= $buf;
		}
		$n++;
		open(my $out, '>', "$dir/$n.req") or die $!;
		print $out "$headers\r\n\r\n$body";
		close($out);
		my ($path) = $headers =~ m{^POST (\S+) };
		my ($id) = $body =~ /"requestId": "([^"]+)"/;
		my ($status, $answer) = (200, qq({"requestId": "$id", "timestamp": 1}));
		$status = 500 if $path eq '/flaky' && !-e "$dir/flaky.failed";
		if ($status == 500)
		{
			open(my $f, '>', "$dir/flaky.failed");
			close($f);
		}
		$answer = '{"requestId": "someone-else", "timestamp": 1}' if $path eq '/wrongid';
		syswrite($conn, "HTTP/1.1 $status X\r\nContent-Type: application/json\r\nContent-Length: "
			  . length($answer) . "\r\nConnection: close\r\n\r\n$answer");
		close($conn);
	}
}
close($listener);
END { kill 'KILL', -$server if $server; }

sql(qq{SET ROLE fh_owner;
	SELECT msgq.create_delivery_stream('to_http', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
		"Destination": {"Type": "HttpEndpoint", "Url": "http://127.0.0.1:$port/flaky", "AccessKey": "s3cret"}}');
	SELECT msgq.create_delivery_stream('to_wrongid', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
		"RetryOptions": {"DurationInSeconds": 0},
		"Destination": {"Type": "HttpEndpoint", "Url": "http://127.0.0.1:$port/wrongid"}}');
	SELECT count(*) FROM msgq.put_record_batch('to_http', '[{"Data": "b25l"}, {"Data": "dHdv"}]');});
ok( $node->poll_query_until(
		'postgres', q{SELECT delivered_records = 2 AND failed_attempts = 1
			FROM msgq.delivery_stream_metrics WHERE delivery_stream_name = 'to_http'}, 't'),
	'an HTTP endpoint answering 500 then 200 gets the batch again, and takes it');
my @reqs = map { slurp_file($_) } sort glob("$dir/*.req");
is(scalar(@reqs), 2, 'two requests');
like($reqs[1], qr{^POST /flaky HTTP/1.1}, 'POSTed to the URL');
like($reqs[1], qr{^x-amz-firehose-access-key: s3cret\r?$}mi, 'with the access key');
like($reqs[1], qr{^x-amz-firehose-request-id: [0-9a-f-]{36}\r?$}mi, 'and a request id');
like($reqs[1], qr{"records": \[\{"data": "b25l"\}, \{"data": "dHdv"\}\]}, 'the records in base64, in order');
like($reqs[1], qr{"timestamp": \d{13}}, 'a timestamp in milliseconds');
my ($id) = $reqs[1] =~ /"requestId": "([^"]+)"/;
like($reqs[1], qr{^x-amz-firehose-request-id: \Q$id\E\r?$}mi, 'the body names the header\'s request id');
sql(q{SET ROLE fh_owner; SELECT msgq.put_delivery_record('to_wrongid', 'x')});
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 1 FROM msgq.delivery_stream_errors
			WHERE delivery_stream_name = 'to_wrongid' AND error_code = 'HttpEndpoint.DeliveryFailed'
			  AND error_message LIKE '%answered requestId someone-else%'}, 't'),
	'an answer naming another requestId fails the batch: with no retry duration, to the error output');

# files: complete ones only, with every record
sql(<<'EOF');
SET ROLE fh_owner;
SELECT msgq.create_delivery_stream('to_files', '{"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
	"Destination": {"Type": "File", "Prefix": "lines/", "Format": "JSONLines"}}');
EOF
for my $t (1 .. 5)
{
	sql(qq{SET ROLE fh_owner;
		SELECT count(*) FROM msgq.put_record_batch('to_files', (SELECT jsonb_agg(jsonb_build_object('Data',
			encode(convert_to(jsonb_build_object('f', '$t-' || g)::text, 'UTF8'), 'base64')))
			FROM generate_series(1, 200) g))});
}
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 0 FROM msgq.delivery_record r
			JOIN msgq.delivery_stream d USING (ds_id) WHERE d.ds_name = 'to_files'}, 't'),
	'the file records are delivered');
my @files = split /\n/, `find ${\$node->data_dir}/fh_out -type f`;
ok(scalar(@files) >= 1, scalar(@files) . ' files written');
is(scalar(grep { /\.tmp$/ } @files), 0, 'no temporary file is left');
my %seen;
my $lines = 0;
for my $f (@files)
{
	for my $l (split /\n/, slurp_file($f))
	{
		$lines++;
		$seen{$1} = 1 if $l =~ /"f": "([^"]+)"/;
	}
}
is($lines, 1000, 'the files hold 1,000 lines');
is(scalar(keys %seen), 1000, 'one per record');

$node->stop;
done_testing();
