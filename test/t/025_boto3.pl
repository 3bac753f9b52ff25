
# Copyright (c) msgq contributors
#
# The AWS endpoint under a second AWS client, boto3 from Debian
# (python3-boto3, installed by make deps): test/python's pytest suite
# (queues through SQS's older query protocol, topics, streams) runs
# against a server with the endpoint on: each of its tests must pass.
# The endpoint runs as two workers on one port (msgq.endpoint_workers,
# SO_REUSEPORT): both take connections, and a long poll parked in one is
# woken by commits as in the other.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;
use IO::Socket::INET;

my ($node, $port) = endpoint_node('boto3', <<'EOF2');
msgq.endpoint_workers = 2
EOF2
$node->safe_psql('postgres', <<'EOF2');
CREATE EXTENSION msgq;
CREATE ROLE boto_app;
GRANT USAGE ON SCHEMA msgq TO boto_app;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO boto_app;
GRANT EXECUTE ON FUNCTION msgq.create_topic(text, jsonb) TO boto_app;
GRANT EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) TO boto_app;
EOF2
my ($akid, $secret) = split /\|/,
  $node->safe_psql('postgres', q{SELECT access_key_id || '|' || secret_access_key FROM msgq.create_access_key('boto_app')});
$node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'msgq endpoint'})
  or die 'the endpoint did not start';

# new connections are spread over both workers (each answer names its worker)
{
	my %seen;
	for (1 .. 32)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die $!;
		print $s "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n"
		  . "Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
		local $/;
		my $answer = <$s>;
		$seen{$1}++ if $answer =~ /^x-msgq-endpoint-worker: (\d+)\r$/mi;
		close($s);
	}
	is(join(',', sort keys %seen), '1,2', 'both endpoint workers answer: ' . join(', ', map { "$_: $seen{$_}" } sort keys %seen));
}

local $ENV{MSGQ_ENDPOINT} = "http://127.0.0.1:$port";
local $ENV{MSGQ_ACCESS_KEY_ID} = $akid;
local $ENV{MSGQ_SECRET_ACCESS_KEY} = $secret;
local $ENV{PYTHONDONTWRITEBYTECODE} = '1';
my ($stdout, $stderr);
my $ok = IPC::Run::run([ '/usr/bin/python3', '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rA',
		"$FindBin::Bin/../python/test_boto3.py" ], '>', \$stdout, '2>', \$stderr);
my @passed = $stdout =~ /^PASSED \S+::(\S+)/mg;
ok($ok, 'the boto3 suite passes') or diag("$stdout\n$stderr");
is(scalar(@passed), 7, scalar(@passed) . ' boto3 tests passed: ' . join(', ', @passed));

$node->stop;
done_testing();
