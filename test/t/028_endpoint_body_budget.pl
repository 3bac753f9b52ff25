
# Copyright (c) msgq contributors
#
# The AWS endpoint's budget for request bodies (msgq.endpoint_body_memory,
# here its smallest value, 16 MiB): a request whose body is still coming
# holds room for all of it; one that finds no room is answered 503
# ServiceUnavailable at once, before its body is read, and its connection
# is closed; room comes back when a request has been handled and when a
# client goes away in the middle of a body.  HTTP/1.1 through raw sockets,
# HTTP/2 through node:http2 (test/node/body_budget.mjs).

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my ($node, $port) = endpoint_node('body_budget', <<'EOF');
msgq.endpoint_role = 'budget_app'
msgq.endpoint_auth = none
msgq.endpoint_body_memory = 16MB
msgq.endpoint_request_timeout = 60s
EOF
$node->safe_psql('postgres', <<'EOF');
CREATE EXTENSION msgq;
CREATE ROLE budget_app;
GRANT USAGE ON SCHEMA msgq TO budget_app;
EOF

my $MB = 1000 * 1000;

# A ListQueues request whose JSON body is {} padded with spaces to $len bytes
sub head
{
	my ($len, $target) = @_;
	$target //= 'AmazonSQS.ListQueues';
	return "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n"
	  . "X-Amz-Target: $target\r\nContent-Length: $len\r\n\r\n";
}
sub body { return '{' . (' ' x ($_[0] - 2)) . '}'; }

sub connect_ep
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
	  or die "connect: $!";
	binmode $s;
	return $s;
}

# Read one answer (status line, headers, Content-Length body)
sub answer
{
	my ($s) = @_;
	my $got = '';
	while ($got !~ /\r\n\r\n/)
	{
		my $n = sysread($s, my $buf, 65536);
		return $got unless $n;
		$got .= $buf;
	}
	my ($len) = $got =~ /^Content-Length: (\d+)/mi;
	while (length($got) - index($got, "\r\n\r\n") - 4 < ($len // 0))
	{
		my $n = sysread($s, my $buf, 65536);
		last unless $n;
		$got .= $buf;
	}
	return $got;
}

# A whole request on a new connection; returns the answer's status
sub whole
{
	my ($len, $target) = @_;
	my $s = connect_ep();
	print $s head($len, $target) . body($len);
	my ($status) = answer($s) =~ m{^HTTP/1.1 (\d+)};
	close $s;
	return $status // 'none';
}

# the endpoint comes up with the server
my $up = 0;
for (1 .. 100)
{
	if (eval { whole(2) } eq '200') { $up = 1; last; }
	sleep 0.1;
}
ok($up, 'the endpoint answers');

# A: 10 MB announced, 1 MB sent; it holds room for all 10 MB
my $a = connect_ep();
print $a head(10 * $MB) . substr(body(10 * $MB), 0, $MB);
sleep 0.3;

# B: another 10 MB does not fit in 16 MiB next to A's
{
	my $b = connect_ep();
	print $b head(10 * $MB);
	my $got = answer($b);
	like($got, qr{^HTTP/1.1 503 }, 'a second 10 MB body while the first is coming: 503 at once');
	like($got, qr{"__type": "com.amazonaws.sqs#ServiceUnavailable"}, 'ServiceUnavailable');
	like($got, qr{^x-amzn-query-error: ServiceUnavailable;Receiver}mi,
		'a server-side error, which the SDKs retry');
	my $rest = '';
	while (sysread($b, my $buf, 4096)) { $rest .= $buf; }
	is($rest, '', 'and its connection is closed, the body never read');
	close $b;
	like(
		do
		{
			my $k = connect_ep();
			print $k head(10 * $MB, 'Kinesis_20131202.ListStreams');
			my $g = answer($k);
			close $k;
			$g;
		},
		qr{"__type": "ServiceUnavailable"},
		'a Kinesis request gets Kinesis\'s error format');
}

# C: 5 MB fits next to A's 10 MB
is(whole(5 * $MB), '200', 'a 5 MB body fits next to the 10 MB one');

# A's body finishes: answered, and its room is given back
print $a substr(body(10 * $MB), $MB);
like(answer($a), qr{^HTTP/1.1 200 }, 'the first 10 MB request, once whole, is answered');
is(whole(10 * $MB), '200', 'then another 10 MB body fits');

# A client that goes away in the middle of its body gives its room back
{
	my $d = connect_ep();
	print $d head(12 * $MB) . substr(body(12 * $MB), 0, $MB);
	sleep 0.3;
	is(whole(10 * $MB), '503', 'while 12 MB are held, 10 MB more do not fit');
	close $d;
	my $status = '';
	my $t0 = time;
	while (time - $t0 < 10)
	{
		$status = whole(10 * $MB);
		last if $status eq '200';
		sleep 0.1;
	}
	is($status, '200', 'after that client closed its connection, 10 MB fit again');
}

# Many small requests at once on one connection (pipelined) are not held
# back by what a connection may read ahead
{
	my $s = connect_ep();
	print $s ((head(2) . '{}') x 200);
	my $all = '';
	my $ok = 0;
	while ($ok < 200)
	{
		my $n = sysread($s, my $buf, 65536);
		last unless $n;
		$all .= $buf;
		$ok = () = $all =~ m{HTTP/1.1 200 }g;
	}
	is($ok, 200, '200 pipelined requests on one connection are all answered');
	close $s;
}

# HTTP/2: the same budget, for streams with and without content-length
# (node is installed by scripts/deps.sh, for the AWS SDK tests)
my $out = `node $FindBin::Bin/../node/body_budget.mjs $port 2>&1`;
is( $out,
	"held 10 MB: 200\nsecond 10 MB (content-length): 503\n"
	  . "second 10 MB (no content-length): 503\n5 MB: 200\nafter: 10 MB: 200\n",
	'HTTP/2: a stream that finds no room is answered 503; room comes back');

$node->stop;
done_testing();
