
# Copyright (c) msgq contributors
#
# The AWS wire endpoint (src/endpoint.c, README "The AWS endpoint"): SQS's
# AWS JSON 1.0 protocol over HTTP/1.1, spoken here byte for byte as the AWS
# SDKs speak it:
#
#   - CreateQueue, GetQueueUrl, ListQueues, SendMessage (MD5 of the body),
#     SendMessageBatch with a failed entry, ReceiveMessage with attributes,
#     DeleteMessage, ChangeMessageVisibility, Get/SetQueueAttributes,
#     DeleteMessageBatch, PurgeQueue, DeleteQueue, tags;
#   - errors as __type and x-amzn-query-error, with HTTP 400 or 403;
#   - a long poll parks without blocking other clients and is answered
#     within milliseconds of a send's commit, or empty at its end;
#   - keep-alive; malformed and oversized requests; a client that is too
#     slow to send its headers; 10,000 idle keep-alive connections;
#   - SigV4: a request signed with an access key's secret runs as the key's
#     role; a wrong signature, an unknown key, a missing or malformed
#     Authorization header and a stale X-Amz-Date are refused;
#   - secrets encrypted at rest with the data directory's msgq_endpoint.key
#     (0600): a key made before a restart verifies after it; a changed row
#     or another key file is refused with InvalidClientTokenId (403), a
#     WARNING in the log, and no secret in the log; after
#     rotate_access_key_encryption and retire_access_key_encryption the
#     endpoint's worker reads the new file, and the old one opens nothing.
#   - paging: ListQueues and ListDeadLetterSourceQueues (MaxResults and
#     NextToken, JSON and the query protocol), SNS's lists (100 a page),
#     ListStreams, ListShards, DescribeStream, ListStreamConsumers; bad and
#     expired tokens get AWS's errors;
#   - permissions and move tasks (SQS), ConfirmSubscription and permissions
#     (SNS), retention, resharding, stream mode and consumers (Kinesis).

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;
use HTTP::Tiny;
use IO::Socket::INET;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha256_hex hmac_sha256 hmac_sha256_hex);
use POSIX qw(strftime);
use JSON::PP;
use Time::HiRes qw(time sleep);
use POSIX ();

my ($node, $port) = endpoint_node('aws_endpoint', <<'EOF');
msgq.endpoint_role = 'sqs_app'
msgq.endpoint_auth = none
msgq.endpoint_request_timeout = 1s
EOF

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(<<'EOF');
CREATE EXTENSION msgq;
CREATE ROLE sqs_app;
GRANT USAGE ON SCHEMA msgq TO sqs_app;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO sqs_app;
SELECT msgq.create_queue('not_yours');
EOF

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 30);
my $base = "http://127.0.0.1:$port/";

# POST an action; returns (status, decoded body, response)
sub call
{
	my ($action, $req, $client) = @_;
	$client //= $http;
	my $res = $client->post(
		$base,
		{
			headers => {
				'Content-Type' => 'application/x-amz-json-1.0',
				'X-Amz-Target' => "AmazonSQS.$action",
				'x-amzn-query-mode' => 'true'
			},
			content => $json->encode($req)
		});
	my $body = eval { $json->decode($res->{content}) };
	return ($res->{status}, $body, $res);
}

# the endpoint comes up with the server
my $up = 0;
for (1 .. 100)
{
	my ($st) = call('ListQueues', {});
	if ($st == 200) { $up = 1; last; }
	sleep 0.1;
}
ok($up, 'the endpoint answers');

my ($st, $r, $res) = call('CreateQueue', { QueueName => 'orders', Attributes => { VisibilityTimeout => '30' } });
is($st, 200, 'CreateQueue');
my $url = $r->{QueueUrl};
is($url, "http://127.0.0.1:$port/postgres/orders", 'the queue URL names the endpoint, the database and the queue');
like($res->{headers}{'x-amzn-requestid'}, qr/^[0-9a-f-]{36}$/, 'a request id');
is((call('GetQueueUrl', { QueueName => 'orders' }))[1]{QueueUrl}, $url, 'GetQueueUrl');
is_deeply((call('ListQueues', { QueueNamePrefix => 'ord' }))[1], { QueueUrls => [$url] }, 'ListQueues');

($st, $r) = call('SendMessage', { QueueUrl => $url, MessageBody => 'hello',
	MessageAttributes => { n => { DataType => 'Number', StringValue => '5' } } });
is($st, 200, 'SendMessage');
is($r->{MD5OfMessageBody}, md5_hex('hello'), 'with the MD5 of the body');
like($r->{MD5OfMessageAttributes}, qr/^[0-9a-f]{32}$/, 'and of the attributes');
is(sql(q{SELECT body || ' from ' || sender FROM msgq.message m JOIN msgq.queue q USING (queue_id) WHERE queue_name = 'orders'}),
	'hello from sqs_app', 'the message is in the queue, sent as the endpoint role');

($st, $r) = call('SendMessageBatch', { QueueUrl => $url, Entries => [
	{ Id => 'a', MessageBody => 'one' }, { Id => 'b', MessageBody => 'two', DelaySeconds => 901 } ] });
is($st, 200, 'SendMessageBatch');
is(scalar(@{ $r->{Successful} }), 1, 'one entry sent');
is($r->{Failed}[0]{Id}, 'b', 'one failed');
is($r->{Failed}[0]{SenderFault}, JSON::PP::true, 'as the sender\'s fault');

($st, $r) = call('ReceiveMessage', { QueueUrl => $url, MaxNumberOfMessages => 10,
	AttributeNames => ['All'], MessageAttributeNames => ['All'] });
is($st, 200, 'ReceiveMessage');
my @msgs = sort { $a->{Body} cmp $b->{Body} } @{ $r->{Messages} };
is(join(',', map { $_->{Body} } @msgs), 'hello,one', 'both messages');
is($msgs[0]{MD5OfBody}, md5_hex('hello'), 'MD5OfBody');
is($msgs[0]{Attributes}{ApproximateReceiveCount}, '1', 'system attributes as strings');
is($msgs[0]{MessageAttributes}{n}{StringValue}, '5', 'message attributes');
($st) = call('ChangeMessageVisibility', { QueueUrl => $url, ReceiptHandle => $msgs[1]{ReceiptHandle}, VisibilityTimeout => 0 });
is($st, 200, 'ChangeMessageVisibility');
($st) = call('DeleteMessage', { QueueUrl => $url, ReceiptHandle => $msgs[0]{ReceiptHandle} });
is($st, 200, 'DeleteMessage');
($st, $r) = call('ReceiveMessage', { QueueUrl => $url });
is($r->{Messages}[0]{Body}, 'one', 'the message made visible again');
($st, $r) = call('DeleteMessageBatch', { QueueUrl => $url, Entries => [
	{ Id => 'x', ReceiptHandle => $r->{Messages}[0]{ReceiptHandle} }, { Id => 'y', ReceiptHandle => 'forged' } ] });
is_deeply([ map { $_->{Id} } @{ $r->{Successful} } ], ['x'], 'DeleteMessageBatch: one deleted');
is($r->{Failed}[0]{Code}, 'ReceiptHandleIsInvalid', 'one with a forged handle');

($st) = call('SetQueueAttributes', { QueueUrl => $url, Attributes => { DelaySeconds => '7' } });
is($st, 200, 'SetQueueAttributes');
($st, $r) = call('GetQueueAttributes', { QueueUrl => $url, AttributeNames => ['DelaySeconds', 'VisibilityTimeout'] });
is_deeply($r, { Attributes => { DelaySeconds => '7', VisibilityTimeout => '30' } }, 'GetQueueAttributes');
call('TagQueue', { QueueUrl => $url, Tags => { team => 'billing' } });
is_deeply((call('ListQueueTags', { QueueUrl => $url }))[1], { Tags => { team => 'billing' } }, 'TagQueue, ListQueueTags');
call('SetQueueAttributes', { QueueUrl => $url, Attributes => { DelaySeconds => '0' } });
($st) = call('PurgeQueue', { QueueUrl => $url });
is($st, 200, 'PurgeQueue');

# errors
($st, $r, $res) = call('GetQueueUrl', { QueueName => 'nope' });
is($st, 400, 'an unknown queue: 400');
is($r->{__type}, 'com.amazonaws.sqs#QueueDoesNotExist', 'its __type');
is($res->{headers}{'x-amzn-query-error'}, 'AWS.SimpleQueueService.NonExistentQueue;Sender',
	'and the query-compatible code');
($st, $r) = call('SendMessage', { QueueUrl => "${base}postgres/not_yours", MessageBody => 'x' });
is($st, 403, 'a queue the role may not use: 403');
is($r->{__type}, 'com.amazonaws.sqs#AccessDenied', 'AccessDenied');
($st, $r) = call('SendMessage', { QueueUrl => $url, MessageBody => 'x', DelaySeconds => 'soon' });
is($r->{__type}, 'com.amazonaws.sqs#InvalidParameterValue', 'a malformed number: InvalidParameterValue');
($st, $r) = call('Frobnicate', {});
is($r->{__type}, 'com.amazonaws.sqs#UnsupportedOperation', 'an unknown action');
$res = $http->post($base, { headers => { 'X-Amz-Target' => 'AmazonSQS.ListQueues' }, content => '{not json' });
is($res->{status}, 400, 'a body that is not JSON: 400');
$res = $http->post($base, { headers => { 'X-Amz-Target' => 'AmazonSQS.ListQueues' }, content => '{"a": 1e999999}' });
is($res->{status}, 400, 'JSON that is not jsonb (a number beyond numeric): 400');
for my $case ([ '[{"QueueNamePrefix": "a"}]', 'a JSON array' ], [ "{\"QueueNamePrefix\": \"a\"}\0tail", 'a NUL after the object' ],
	[ "{\"QueueNamePrefix\": \"\xff\"}", 'bytes that are not UTF-8' ], [ "  \n{\"QueueNamePrefix\": \"a\"} {", 'a second text after the object' ])
{
	$res = $http->post($base, { headers => { 'X-Amz-Target' => 'AmazonSQS.ListQueues' }, content => $case->[0] });
	is($res->{status}, 400, "a body that is not one JSON object ($case->[1]): 400");
	like($res->{content}, qr/must be a JSON object/, "... as such ($case->[1])");
}
is((call('ListQueues', {}))[0], 200, 'and the endpoint goes on');
{
	my $pid = sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'msgq endpoint'});
	$res = $http->post($base,
		{ headers => { 'X-Amz-Target' => 'AmazonSQS.ListQueues' }, content => '{"a":' . ('[' x 200000) });
	is($res->{status}, 400, 'JSON nested 200,000 deep (the parser\'s stack limit): 400');
	is((call('ListQueues', {}))[0], 200, 'and the endpoint goes on');
	is(sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'msgq endpoint'}), $pid,
		'in the same worker (it did not crash)');
}
# malformed forms and XML: the AWS error, and nothing sent
for my $case (
	[ 'Action=SendMessage&Version=2012-11-05&QueueUrl=' . $url . '&MessageBody=cut%00short', 'a %00 in a form field' ],
	[ 'Action=SendMessage&Version=2012-11-05&QueueUrl=' . $url . '&MessageBody=%FF%FE', 'a form field that is not UTF-8' ])
{
	$res = $http->post($base,
		{ headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }, content => $case->[0] });
	is($res->{status}, 400, "$case->[1]: 400");
	like($res->{content}, qr{<Code>InvalidParameter</Code>}, "$case->[1]: InvalidParameter, as XML");
}
$res = $http->post($base,
	{ headers => { 'Content-Type' => 'text/xml' }, content => '<SendMessage><QueueUrl>' . $url . '</QueueUrl><Mess' });
is($res->{status}, 400, 'an XML body (and a broken one): 400');
like($res->{content}, qr/UnsupportedOperation/, 'UnsupportedOperation');
is(sql(q{SELECT count(*) FROM msgq.message m JOIN msgq.queue q USING (queue_id)
	WHERE q.queue_name = 'orders' AND m.body LIKE 'cut%'}), '0', 'no message was sent by a refused form');
$res = $http->post($base, { content => '{}' });
like($res->{content}, qr/X-Amz-Target/, 'no X-Amz-Target: 400, saying so');
$res = $http->get($base);
is($res->{status}, 400, 'a GET: 400');

# an oversized request: refused and closed, before its body is read
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die $!;
	print $s "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Length: 99999999\r\n\r\n";
	my $answer = '';
	while (sysread($s, my $buf, 4096)) { $answer .= $buf; }
	like($answer, qr{^HTTP/1.1 413 }, 'a 99 MB body: 413, then the connection is closed');
}

# a long poll parks: another client is served meanwhile; a send's commit
# answers it
{
	my $pid = fork();
	if ($pid == 0)
	{
		my $t0 = time;
		my $h = HTTP::Tiny->new(timeout => 30);
		my (undef, $got) = call('ReceiveMessage', { QueueUrl => $url, WaitTimeSeconds => 10 }, $h);
		my $body = $got->{Messages}[0]{Body} // 'none';
		open(my $out, '>', "$PostgreSQL::Test::Utils::tmp_check/longpoll.out") or die $!;
		printf $out "%s %.3f\n", $body, time - $t0;
		close($out);
		POSIX::_exit(0);    # not exit: the node's END blocks belong to the parent
	}
	sleep 0.5;
	my $t0 = time;
	my ($st2) = call('ListQueues', {});
	my $other = time - $t0;
	is($st2, 200, 'another client is served while a long poll waits');
	cmp_ok($other, '<', 1, 'at once');
	sql(q{SELECT msgq.send_message('orders', 'woken') FROM (SELECT pg_sleep(0.2)) s});
	waitpid($pid, 0);
	my ($body, $secs) = split ' ', slurp_file("$PostgreSQL::Test::Utils::tmp_check/longpoll.out");
	is($body, 'woken', 'the long poll returns the message sent meanwhile');
	cmp_ok($secs, '<', 3, "after ${secs} s, not at the end of its 10 s");
}
{
	my $t0 = time;
	my ($st2, $got, $raw) = call('ReceiveMessage', { QueueUrl => $url, WaitTimeSeconds => 1 });
	my $secs = time - $t0;
	is_deeply($got, {}, 'a long poll that gets nothing answers empty (no Messages, as SQS)')
	  or diag explain $raw;
	cmp_ok($secs, '>=', 0.9, 'at the end of its wait');
}

# slow and idle clients
{
	my $slow = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die $!;
	print $slow "POST / HTTP/1.1\r\nHost: x\r\n";    # and never the rest
	my $bodiless = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die $!;
	print $bodiless "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Length: 10\r\n\r\n{}";
	my @idle = map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die $! } 1 .. 300;
	my ($st2) = call('ListQueues', {}, HTTP::Tiny->new(timeout => 10));
	is($st2, 200, '300 idle connections do not stop a request');
	sleep 2.5;
	my $got = sysread($slow, my $buf, 100);
	is($got, 0, 'a client that does not finish its headers within msgq.endpoint_request_timeout is disconnected');
	$got = sysread($bodiless, $buf, 100);
	is($got, 0, 'so is one that sends headers and not the body they announce');
	close($_) for @idle;
}

# A client that pipelines requests and never reads its answers: the worker
# stops reading from it once answers wait unsent (TCP then holds the client
# back), so its memory stays small and other clients are served at once
{
	my $pid = sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'msgq endpoint'});
	my $greedy = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die $!;
	$greedy->blocking(0);
	my $chunk = "POST / HTTP/1.1\r\nHost: x\r\n\r\n" x 1000;
	my $sent = 0;
	my $t_end = time + 5;
	while ($sent < 20 * 1024 * 1024 && time < $t_end)
	{
		my $n = syswrite($greedy, $chunk);
		if (defined $n) { $sent += $n; } else { sleep 0.05; }
	}
	my $t0 = time;
	my ($st2) = call('ListQueues', {}, HTTP::Tiny->new(timeout => 10));
	my $secs = time - $t0;
	is($st2, 200, "a client that sent $sent bytes of requests without reading does not stop others");
	cmp_ok($secs, '<', 1, "who are served at once ($secs s)");
	my $offset = -s $node->logfile;
	sql("SELECT pg_log_backend_memory_contexts($pid)");
	my $mem;
	for (1 .. 100)
	{
		last if ($mem) = slurp_file($node->logfile, $offset) =~ /level: 1; msgq endpoint: (\d+) total/;
		sleep 0.1;
	}
	cmp_ok($mem // 1e12, '<', 16 * 1024 * 1024, "the worker holds $mem bytes for it (its answers are held back)");
	close($greedy);
}

# 10,000 idle keep-alive connections, each after one request: other clients
# are still served at once, and the worker's memory stays small (buffers
# are given back when empty)
{
	my $pid = sql(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'msgq endpoint'});
	my $rss = sub {
		open(my $f, '<', "/proc/$pid/status") or die "no worker $pid: $!";
		my ($kb) = map { /^VmRSS:\s+(\d+)/ ? $1 : () } <$f>;
		return $kb;
	};
	my $before = $rss->();
	my ($in, $out) = ('', '');
	my $h = IPC::Run::start([ 'python3', "$FindBin::Bin/../python/idle_connections.py", $port, 10000 ],
		'<', \$in, '>', \$out, '2>&1', IPC::Run::timeout(300));
	$h->pump until $out =~ /held|limit|Error/;
	like($out, qr/^answered 10000$/m, '10,000 keep-alive connections, each answered') or diag($out);
	my $t0 = time;
	my ($st2) = call('ListQueues', {}, HTTP::Tiny->new(timeout => 10));
	my $secs = time - $t0;
	is($st2, 200, 'with 10,000 idle connections open, a new client is served');
	cmp_ok($secs, '<', 1, "at once ($secs s)");
	my $grown = $rss->() - $before;
	cmp_ok($grown, '<', 16 * 1024, "the worker grew by $grown kB for 10,000 connections");
	$h->finish;
	($st2) = call('ListQueues', {}, HTTP::Tiny->new(timeout => 10));
	is($st2, 200, 'served after they all closed');
}

($st) = call('DeleteQueue', { QueueUrl => $url });
is($st, 200, 'DeleteQueue');
is(sql(q{SELECT count(*) FROM msgq.queue WHERE queue_name = 'orders'}), '0', 'the queue is gone');

# paging: opaque NextTokens, exact shapes, and AWS's errors for bad ones
sub json_call
{
	my ($target, $type, $req) = @_;
	my $res = $http->post($base,
		{ headers => { 'Content-Type' => $type, 'X-Amz-Target' => $target }, content => $json->encode($req) });
	return ($res->{status}, eval { $json->decode($res->{content}) }, $res);
}
sub kcall { return json_call("Kinesis_20131202.$_[0]", 'application/x-amz-json-1.1', $_[1]); }

# a query-protocol form (SNS's, or SQS's older one with Version); returns (status, XML)
sub form
{
	my (%f) = @_;
	my $res = $http->post($base,
		{ headers => { 'Content-Type' => 'application/x-www-form-urlencoded' }, content => $http->www_form_urlencode(\%f) });
	return ($res->{status}, $res->{content});
}

sql(q{SET ROLE sqs_app; SELECT msgq.create_queue('page-' || i) FROM generate_series(1, 5) i});
my $qurl = "${base}postgres/page-";
($st, $r) = call('ListQueues', { QueueNamePrefix => 'page-', MaxResults => 2 });
is_deeply($r->{QueueUrls}, [ map { "$qurl$_" } 1, 2 ], 'ListQueues: MaxResults 2 is a page of 2');
like($r->{NextToken}, qr/^[A-Za-z0-9_-]+$/, 'with an opaque, URL-safe NextToken');
my @urls = @{ $r->{QueueUrls} };
my $pages = 1;
while ($r->{NextToken})
{
	($st, $r) = call('ListQueues', { QueueNamePrefix => 'page-', MaxResults => 2, NextToken => $r->{NextToken} });
	push @urls, @{ $r->{QueueUrls} };
	$pages++;
}
is_deeply(\@urls, [ map { "$qurl$_" } 1 .. 5 ], 'the pages hold every queue once, in order');
is($pages, 3, 'in 3 pages');
is_deeply((call('ListQueues', { QueueNamePrefix => 'page-', MaxResults => 5 }))[1], { QueueUrls => [ map { "$qurl$_" } 1 .. 5 ] },
	'no NextToken when the page holds the rest');
is_deeply((call('ListQueues', { QueueNamePrefix => 'page-' }))[1], { QueueUrls => [ map { "$qurl$_" } 1 .. 5 ] },
	'nor without MaxResults');
($st, $r, $res) = call('ListQueues', { MaxResults => 1001 });
is("$st $r->{__type}", '400 com.amazonaws.sqs#InvalidParameterValue', 'MaxResults 1001: InvalidParameterValue');
is($res->{headers}{'x-amzn-query-error'}, 'InvalidParameterValue;Sender', 'with its query-compatible code');
($st, $r) = call('ListQueues', { MaxResults => 0 });
is("$st $r->{__type}", '400 com.amazonaws.sqs#InvalidParameterValue', 'MaxResults 0: InvalidParameterValue');
for my $bad ('not a token', 'x', 'dDpwYWdlLTI')    # the last: a token of another list (topics)
{
	($st, $r) = call('ListQueues', { MaxResults => 2, NextToken => $bad });
	is("$st $r->{__type}", '400 com.amazonaws.sqs#InvalidParameterValue', "NextToken '$bad': InvalidParameterValue");
}

sql(q{SET ROLE sqs_app; SELECT msgq.create_queue('page-dlq'); SELECT msgq.create_queue('page-src-' || i,
	'{"RedrivePolicy": "{\"deadLetterTargetArn\": \"arn:aws:sqs:msgq:postgres:page-dlq\", \"maxReceiveCount\": 2}"}')
	FROM generate_series(1, 3) i});
($st, $r) = call('ListDeadLetterSourceQueues', { QueueUrl => "${qurl}dlq", MaxResults => 2 });
is_deeply($r->{queueUrls}, [ "${qurl}src-1", "${qurl}src-2" ], 'ListDeadLetterSourceQueues: a page of 2');
($st, $r) = call('ListDeadLetterSourceQueues', { QueueUrl => "${qurl}dlq", MaxResults => 2, NextToken => $r->{NextToken} });
is_deeply($r, { queueUrls => ["${qurl}src-3"] }, 'and the rest');

# permissions and move tasks
($st, $r) = call('AddPermission', { QueueUrl => "${qurl}1", Label => 'all', AWSAccountIds => ['public'], Actions => ['SendMessage'] });
is_deeply([ $st, $r ], [ 200, {} ], 'AddPermission: {}');
is(sql(q{SELECT count(*) FROM msgq.queue_permission p JOIN msgq.queue USING (queue_id) WHERE queue_name = 'page-1'}), '1',
	'the grant is stored');
($st, $r) = call('AddPermission', { QueueUrl => "${qurl}1", Label => 'none', Actions => ['SendMessage'] });
is("$st $r->{__type}", '400 com.amazonaws.sqs#MissingParameter', 'without AWSAccountIds: MissingParameter');
($st, $r) = call('AddPermission', { QueueUrl => "${base}postgres/not_yours", Label => 'x', AWSAccountIds => ['public'], Actions => ['*'] });
is("$st $r->{__type}", '403 com.amazonaws.sqs#AccessDenied', 'only the owner grants');
($st, $r) = call('RemovePermission', { QueueUrl => "${qurl}1", Label => 'all' });
is_deeply([ $st, $r ], [ 200, {} ], 'RemovePermission: {}');
($st, $r) = call('RemovePermission', { QueueUrl => "${qurl}1", Label => 'all' });
is("$st $r->{__type}", '400 com.amazonaws.sqs#InvalidParameterValue', 'a label that is not there: InvalidParameterValue');

my $dlq_arn = 'arn:aws:sqs:msgq:postgres:page-dlq';
# a message in flight in the dead-letter queue keeps the task running
sql(q{SET ROLE sqs_app; SELECT msgq.send_message('page-dlq', 'stuck');
	SELECT count(*) FROM msgq.receive_message('page-dlq', 1, 600)});
($st, $r) = call('StartMessageMoveTask', { SourceArn => $dlq_arn, MaxNumberOfMessagesPerSecond => 1 });
like($r->{TaskHandle}, qr/^[0-9a-f-]{36}$/, 'StartMessageMoveTask: a TaskHandle');
my $task = $r->{TaskHandle};
($st, $r) = call('ListMessageMoveTasks', { SourceArn => $dlq_arn });
is_deeply([ sort keys %{ $r->{Results}[0] } ],
	[ qw(ApproximateNumberOfMessagesMoved ApproximateNumberOfMessagesToMove MaxNumberOfMessagesPerSecond SourceArn StartedTimestamp Status TaskHandle) ],
	'ListMessageMoveTasks: the fields of a running task');
is("$r->{Results}[0]{TaskHandle} $r->{Results}[0]{Status} $r->{Results}[0]{SourceArn}", "$task RUNNING $dlq_arn", 'its handle, status and source');
($st, $r) = call('CancelMessageMoveTask', { TaskHandle => $task });
is_deeply([ $st, $r ], [ 200, { ApproximateNumberOfMessagesMoved => 0 } ], 'CancelMessageMoveTask: how many were moved');
is((call('ListMessageMoveTasks', { SourceArn => $dlq_arn }))[1]{Results}[0]{Status}, 'CANCELLED', 'the task is cancelled');
($st, $r) = call('StartMessageMoveTask', { SourceArn => 'arn:aws:sqs:msgq:postgres:page-1' });
is("$st $r->{__type}", '400 com.amazonaws.sqs#InvalidParameterValue', 'a source that is no dead-letter queue');
($st, $r) = call('StartMessageMoveTask', { SourceArn => 'arn:aws:sqs:msgq:postgres:nope' });
is("$st $r->{__type}", '400 com.amazonaws.sqs#ResourceNotFoundException', 'an unknown source: ResourceNotFoundException');
($st, $r) = call('CancelMessageMoveTask', { TaskHandle => 'nope' });
is("$st $r->{__type}", '400 com.amazonaws.sqs#ResourceNotFoundException', 'an unknown task: ResourceNotFoundException');

# SQS's query protocol
my $xml;
($st, $xml) = form(Action => 'ListQueues', Version => '2012-11-05', QueueNamePrefix => 'page-src-', MaxResults => 2);
my ($token) = $xml =~ m{<NextToken>([^<]+)</NextToken>};
is_deeply([ $xml =~ m{<QueueUrl>([^<]+)</QueueUrl>}g ], [ map { "${qurl}src-$_" } 1, 2 ], 'query protocol: ListQueues, a page of 2');
ok($token, 'and a NextToken');
($st, $xml) = form(Action => 'ListQueues', Version => '2012-11-05', QueueNamePrefix => 'page-src-', MaxResults => 2,
	NextToken => $token);
like($xml, qr{<ListQueuesResult><QueueUrl>\Q${qurl}src-3\E</QueueUrl></ListQueuesResult>}, 'the next page, without a NextToken');
($st, $xml) = form(Action => 'ListQueues', Version => '2012-11-05', NextToken => 'bad token');
like("$st $xml", qr{^400 .*<Code>InvalidParameterValue</Code>}, 'a bad token: InvalidParameterValue');
($st, $xml) = form(Action => 'AddPermission', Version => '2012-11-05', QueueUrl => "${qurl}2", Label => 'q',
	'AWSAccountId.1' => 'public', 'ActionName.1' => 'SendMessage', 'ActionName.2' => 'GetQueueUrl');
like("$st $xml", qr{^200 <AddPermissionResponse }, 'query protocol: AddPermission');
like((form(Action => 'RemovePermission', Version => '2012-11-05', QueueUrl => "${qurl}2", Label => 'q'))[1],
	qr{^<RemovePermissionResponse }, 'RemovePermission');
form(Action => 'TagQueue', Version => '2012-11-05', QueueUrl => "${qurl}2", 'Tag.1.Key' => 'team', 'Tag.1.Value' => 'blue team',
	'Tag.2.Key' => 'env', 'Tag.2.Value' => 'dev');
form(Action => 'UntagQueue', Version => '2012-11-05', QueueUrl => "${qurl}2", 'TagKey.1' => 'env');
like((form(Action => 'ListQueueTags', Version => '2012-11-05', QueueUrl => "${qurl}2"))[1],
	qr{<ListQueueTagsResult><Tag><Key>team</Key><Value>blue team</Value></Tag></ListQueueTagsResult>}, 'TagQueue, UntagQueue, ListQueueTags');
like((form(Action => 'ListDeadLetterSourceQueues', Version => '2012-11-05', QueueUrl => "${qurl}dlq", MaxResults => 1))[1],
	qr{<ListDeadLetterSourceQueuesResult><QueueUrl>\Q${qurl}src-1\E</QueueUrl><NextToken>[A-Za-z0-9_-]+</NextToken></ListDeadLetterSourceQueuesResult>},
	'ListDeadLetterSourceQueues');
# move tasks over the query protocol (the in-flight message keeps the task running)
($st, $xml) = form(Action => 'StartMessageMoveTask', Version => '2012-11-05', SourceArn => $dlq_arn,
	MaxNumberOfMessagesPerSecond => 2);
my ($qtask) = $xml =~ m{<StartMessageMoveTaskResult><TaskHandle>([0-9a-f-]{36})</TaskHandle></StartMessageMoveTaskResult>};
ok($st == 200 && $qtask, 'query protocol: StartMessageMoveTask, a TaskHandle');
($st, $xml) = form(Action => 'ListMessageMoveTasks', Version => '2012-11-05', SourceArn => $dlq_arn, MaxResults => 2);
like($xml, qr{<ListMessageMoveTasksResult><ListMessageMoveTasksResultEntry><TaskHandle>\Q$qtask\E</TaskHandle><Status>RUNNING</Status><SourceArn>\Q$dlq_arn\E</SourceArn><MaxNumberOfMessagesPerSecond>2</MaxNumberOfMessagesPerSecond><ApproximateNumberOfMessagesMoved>0</ApproximateNumberOfMessagesMoved><ApproximateNumberOfMessagesToMove>1</ApproximateNumberOfMessagesToMove><StartedTimestamp>[0-9]+</StartedTimestamp></ListMessageMoveTasksResultEntry><ListMessageMoveTasksResultEntry><Status>CANCELLED</Status><SourceArn>},
	'ListMessageMoveTasks: the entries flattened, newest first, NULL fields (a finished task\'s TaskHandle) left out');
($st, $xml) = form(Action => 'CancelMessageMoveTask', Version => '2012-11-05', TaskHandle => $qtask);
like("$st $xml", qr{^200 <CancelMessageMoveTaskResponse [^>]*><CancelMessageMoveTaskResult><ApproximateNumberOfMessagesMoved>0</ApproximateNumberOfMessagesMoved></CancelMessageMoveTaskResult>},
	'CancelMessageMoveTask');
($st, $xml) = form(Action => 'CancelMessageMoveTask', Version => '2012-11-05', TaskHandle => 'nope');
like("$st $xml", qr{^400 .*<Code>ResourceNotFoundException</Code>}, 'an unknown task: ResourceNotFoundException');

# SNS: 100 a page
sql(q{GRANT EXECUTE ON FUNCTION msgq.create_topic(text, jsonb) TO sqs_app});
sql(q{SET ROLE sqs_app; SELECT msgq.create_topic(pg_catalog.format('page-%s', pg_catalog.lpad(i::text, 3, '0'))),
	msgq.subscribe(pg_catalog.format('page-%s', pg_catalog.lpad(i::text, 3, '0')), 'sqs', 'page-1') FROM generate_series(1, 101) i});
($st, $xml) = form(Action => 'ListTopics');
my @topics = $xml =~ m{<TopicArn>([^<]+)</TopicArn>}g;
($token) = $xml =~ m{</Topics><NextToken>([^<]+)</NextToken></ListTopicsResult>};
is(scalar(@topics), 100, 'ListTopics: 100 topics');
ok($token, 'then a NextToken');
($st, $xml) = form(Action => 'ListTopics', NextToken => $token);
push @topics, $xml =~ m{<TopicArn>([^<]+)</TopicArn>}g;
is_deeply(\@topics, [ map { sprintf('arn:aws:sns:msgq:postgres:page-%03d', $_) } 1 .. 101 ], 'and the last one on the next page');
unlike($xml, qr{NextToken}, 'without a NextToken');
for my $action ('ListTopics', 'ListSubscriptions')
{
	($st, $xml) = form(Action => $action, NextToken => 'cTpwYWdlLTI');    # a token of queues
	like("$st $xml", qr{^400 .*<Code>InvalidParameter</Code><Message>Invalid parameter: NextToken</Message>},
		"$action with a bad NextToken: InvalidParameter");
}
($st, $xml) = form(Action => 'ListSubscriptions');
my @subs = $xml =~ m{<TopicArn>([^<]+)</TopicArn>}g;
($token) = $xml =~ m{<NextToken>([^<]+)</NextToken>};
($st, $xml) = form(Action => 'ListSubscriptions', NextToken => $token);
push @subs, $xml =~ m{<TopicArn>([^<]+)</TopicArn>}g;
is_deeply(\@subs, [ map { sprintf('arn:aws:sns:msgq:postgres:page-%03d', $_) } 1 .. 101 ], 'ListSubscriptions: 100, then 1');
sql(q{SET ROLE sqs_app; SELECT msgq.subscribe('page-001', 'sqs', 'page-' || i) FROM generate_series(2, 5) i});
($st, $xml) = form(Action => 'ListSubscriptionsByTopic', TopicArn => 'arn:aws:sns:msgq:postgres:page-001');
is(scalar(() = $xml =~ m{<member>}g), 5, 'ListSubscriptionsByTopic: one page of 5');
unlike($xml, qr{NextToken}, 'without a NextToken');

# SNS ConfirmSubscription, AddPermission, RemovePermission
sql(q{SET ROLE sqs_app; SELECT msgq.subscribe('page-002', 'http', 'http://127.0.0.1:9/hook')});
my $confirm = sql(q{SELECT confirm_token FROM msgq.subscription WHERE endpoint = 'http://127.0.0.1:9/hook'});
($st, $xml) = form(Action => 'ConfirmSubscription', TopicArn => 'arn:aws:sns:msgq:postgres:page-002', Token => 'forged');
like("$st $xml", qr{^400 .*<Code>InvalidParameter</Code>}, 'ConfirmSubscription with a forged token: InvalidParameter');
($st, $xml) = form(Action => 'ConfirmSubscription', TopicArn => 'arn:aws:sns:msgq:postgres:page-002', Token => $confirm,
	AuthenticateOnUnsubscribe => 'sometimes');
like("$st $xml", qr{^400 .*<Message>Invalid parameter: AuthenticateOnUnsubscribe</Message>}, 'a bad AuthenticateOnUnsubscribe');
($st, $xml) = form(Action => 'ConfirmSubscription', TopicArn => 'arn:aws:sns:msgq:postgres:page-002', Token => $confirm);
like($xml, qr{^<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:msgq:postgres:page-002:[0-9a-f-]{36}</SubscriptionArn></ConfirmSubscriptionResult><ResponseMetadata><RequestId>},
	'ConfirmSubscription: the subscription ARN');
is(sql(q{SELECT pending FROM msgq.subscription WHERE endpoint = 'http://127.0.0.1:9/hook'}), 'f', 'the subscription is confirmed');
($st, $xml) = form(Action => 'AddPermission', TopicArn => 'arn:aws:sns:msgq:postgres:page-002', Label => 'pub',
	'AWSAccountId.member.1' => 'public', 'ActionName.member.1' => 'Publish');
like("$st $xml", qr{^200 <AddPermissionResponse }, 'SNS AddPermission');
($st, $xml) = form(Action => 'AddPermission', TopicArn => 'arn:aws:sns:msgq:postgres:page-002', Label => 'x',
	'ActionName.member.1' => 'Publish');
like("$st $xml", qr{^400 .*<Code>InvalidParameter</Code>}, 'without AWSAccountId: InvalidParameter');
like((form(Action => 'RemovePermission', TopicArn => 'arn:aws:sns:msgq:postgres:page-002', Label => 'pub'))[1],
	qr{^<RemovePermissionResponse }, 'SNS RemovePermission');

# Kinesis
sql(q{GRANT EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) TO sqs_app});
sql(q{SET ROLE sqs_app; SELECT msgq.create_stream('page-' || i, 3) FROM generate_series(1, 3) i});
($st, $r) = kcall('ListStreams', { Limit => 2 });
is_deeply([ @$r{qw(StreamNames HasMoreStreams)} ], [ [ 'page-1', 'page-2' ], JSON::PP::true ], 'ListStreams: Limit 2');
is_deeply([ sort keys %{ $r->{StreamSummaries}[0] } ],
	[ qw(StreamARN StreamCreationTimestamp StreamModeDetails StreamName StreamStatus) ], 'StreamSummaries');
my $ktoken = $r->{NextToken};
($st, $r) = kcall('ListStreams', { NextToken => $ktoken });
is_deeply([ @$r{qw(StreamNames HasMoreStreams NextToken)} ], [ ['page-3'], JSON::PP::false, undef ], 'then the rest, without a NextToken');
is_deeply((kcall('ListStreams', { ExclusiveStartStreamName => 'page-1' }))[1]{StreamNames}, [ 'page-2', 'page-3' ],
	'ExclusiveStartStreamName');
($st, $r) = kcall('ListStreams', { Limit => 10001 });
is("$st $r->{__type}", '400 InvalidArgumentException', 'Limit 10001: InvalidArgumentException');
($st, $r) = kcall('ListShards', { StreamName => 'page-1', MaxResults => 2 });
is_deeply([ map { $_->{ShardId} } @{ $r->{Shards} } ], [ 'shardId-000000000000', 'shardId-000000000001' ], 'ListShards: MaxResults 2');
my $stoken = $r->{NextToken};
($st, $r) = kcall('ListShards', { NextToken => $stoken });
is_deeply([ map { $_->{ShardId} } @{ $r->{Shards} } ], ['shardId-000000000002'], 'the NextToken names the stream');
ok(!exists $r->{NextToken}, 'and the last page has none');
($st, $r) = kcall('ListShards', { NextToken => $stoken, StreamName => 'page-1' });
is("$st $r->{__type} $r->{message}", '400 InvalidArgumentException NextToken and StreamName cannot be provided together.',
	'NextToken with StreamName: InvalidArgumentException, as AWS');
($st, $r) = kcall('ListShards', { NextToken => $stoken, ShardFilter => { Type => 'AT_LATEST' } });
is("$st $r->{__type} $r->{message}", '400 InvalidArgumentException NextToken and ShardFilter cannot be provided together.',
	'or with ShardFilter');
($st, $r) = kcall('ListShards', { NextToken => $ktoken });
is("$st $r->{__type}", '400 InvalidArgumentException', 'a token of ListStreams: InvalidArgumentException');
# tokens last 300 s (of msgq's clock)
$node->append_conf('postgresql.conf', "msgq.clock_offset = '301s'");
$node->reload;
sleep 0.5;
($st, $r) = kcall('ListShards', { NextToken => $stoken });
is("$st $r->{__type}", '400 ExpiredNextTokenException', 'a token older than 300 s: ExpiredNextTokenException');
($st, $r) = kcall('ListStreams', { NextToken => $ktoken });
is("$st $r->{__type}", '400 ExpiredNextTokenException', 'ListStreams\' too');
$node->append_conf('postgresql.conf', "msgq.clock_offset = 0");
$node->reload;
sleep 0.5;

($st, $r) = kcall('DescribeStream', { StreamARN => 'arn:aws:kinesis:msgq:postgres:stream/page-2', Limit => 2 });
is_deeply([ sort keys %{ $r->{StreamDescription} } ],
	[ qw(EncryptionType EnhancedMonitoring HasMoreShards RetentionPeriodHours Shards StreamARN StreamCreationTimestamp StreamModeDetails StreamName StreamStatus) ],
	'DescribeStream: the fields of StreamDescription');
is_deeply([ scalar(@{ $r->{StreamDescription}{Shards} }), $r->{StreamDescription}{HasMoreShards} ], [ 2, JSON::PP::true ],
	'Limit 2 of 3 shards: HasMoreShards');
($st, $r) = kcall('DescribeStream', { StreamName => 'page-2', ExclusiveStartShardId => 'shardId-000000000001' });
is_deeply([ map { $_->{ShardId} } @{ $r->{StreamDescription}{Shards} } ], ['shardId-000000000002'], 'ExclusiveStartShardId');
is($r->{StreamDescription}{HasMoreShards}, JSON::PP::false, 'the last');

my $sarn = 'arn:aws:kinesis:msgq:postgres:stream/page-3';
is_deeply((kcall('IncreaseStreamRetentionPeriod', { StreamARN => $sarn, RetentionPeriodHours => 72 }))[1], {},
	'IncreaseStreamRetentionPeriod');
is((kcall('DescribeStreamSummary', { StreamARN => $sarn }))[1]{StreamDescriptionSummary}{RetentionPeriodHours}, 72, 'to 72 hours');
($st, $r) = kcall('DecreaseStreamRetentionPeriod', { StreamARN => $sarn, RetentionPeriodHours => 100 });
is("$st $r->{__type}", '400 InvalidArgumentException', 'a decrease that increases: InvalidArgumentException');
is_deeply((kcall('UpdateShardCount', { StreamName => 'page-3', TargetShardCount => 6, ScalingType => 'UNIFORM_SCALING' }))[1],
	{ StreamName => 'page-3', StreamARN => $sarn, CurrentShardCount => 3, TargetShardCount => 6 }, 'UpdateShardCount');
is_deeply((kcall('UpdateStreamMode', { StreamARN => $sarn, StreamModeDetails => { StreamMode => 'ON_DEMAND' } }))[1], {},
	'UpdateStreamMode');
($st, $r) = kcall('RegisterStreamConsumer', { StreamARN => $sarn, ConsumerName => 'app' });
is_deeply([ sort keys %{ $r->{Consumer} } ], [qw(ConsumerARN ConsumerCreationTimestamp ConsumerName ConsumerStatus)],
	'RegisterStreamConsumer');
my $carn = $r->{Consumer}{ConsumerARN};
is($carn, "$sarn/consumer/app", 'the consumer\'s ARN');
kcall('RegisterStreamConsumer', { StreamARN => $sarn, ConsumerName => 'other' });
($st, $r) = kcall('ListStreamConsumers', { StreamARN => $sarn, MaxResults => 1 });
is_deeply([ map { $_->{ConsumerName} } @{ $r->{Consumers} } ], ['app'], 'ListStreamConsumers: a page of 1');
($st, $r) = kcall('ListStreamConsumers', { StreamARN => $sarn, NextToken => $r->{NextToken} });
is_deeply([ map { $_->{ConsumerName} } @{ $r->{Consumers} } ], ['other'], 'and the next');
($st, $r) = kcall('DescribeStreamConsumer', { ConsumerARN => $carn });
is_deeply([ @{ $r->{ConsumerDescription} }{qw(ConsumerName StreamARN ConsumerStatus)} ], [ 'app', $sarn, 'ACTIVE' ],
	'DescribeStreamConsumer');
is_deeply((kcall('DeregisterStreamConsumer', { StreamARN => $sarn, ConsumerName => 'app' }))[1], {}, 'DeregisterStreamConsumer');
($st, $r) = kcall('DescribeStreamConsumer', { ConsumerARN => $carn });
is("$st $r->{__type}", '400 ResourceNotFoundException', 'a consumer that is gone: ResourceNotFoundException');

# SigV4
$node->append_conf('postgresql.conf', "msgq.endpoint_auth = sigv4");
$node->reload;
sleep 0.5;
my ($akid, $secret) = split /\|/, sql(q{SELECT access_key_id || '|' || secret_access_key FROM msgq.create_access_key('sqs_app')});
like($akid, qr/^AKIA[A-Z2-7]{16}$/, 'create_access_key: an access key id');
is(sql(q{SELECT role FROM msgq.access_keys}), 'sqs_app', 'listed without its secret');

# a request signed as the SDKs sign it; returns the response
sub signed
{
	my (%o) = @_;
	my $body = $json->encode($o{request});
	my $amzdate = $o{date} // strftime('%Y%m%dT%H%M%SZ', gmtime);
	my $day = substr($amzdate, 0, 8);
	my $host = "127.0.0.1:$port";
	my $target = "AmazonSQS.$o{action}";
	my $creq = join("\n", 'POST', '/', '',
		"content-type:application/x-amz-json-1.0", "host:$host", "x-amz-date:$amzdate",
		"x-amz-target:$target", '', 'content-type;host;x-amz-date;x-amz-target', sha256_hex($body));
	my $scope = "$day/us-east-1/sqs/aws4_request";
	my $sts = join("\n", 'AWS4-HMAC-SHA256', $amzdate, $scope, sha256_hex($creq));
	my $k = hmac_sha256($day, 'AWS4' . ($o{secret} // $secret));
	$k = hmac_sha256('us-east-1', $k);
	$k = hmac_sha256('sqs', $k);
	$k = hmac_sha256('aws4_request', $k);
	my $sig = hmac_sha256_hex($sts, $k);
	my %h = ('Content-Type' => 'application/x-amz-json-1.0', 'X-Amz-Date' => $amzdate,
		'X-Amz-Target' => $target,
		'Authorization' => $o{authorization} // ('AWS4-HMAC-SHA256 Credential=' . ($o{akid} // $akid)
			. "/$scope, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=$sig"));
	delete $h{Authorization} if $o{no_auth};
	my $res = HTTP::Tiny->new->post($base, { headers => \%h, content => $body });
	return ($res->{status}, eval { $json->decode($res->{content}) });
}
($st, $r) = signed(action => 'CreateQueue', request => { QueueName => 'signed' });
is($st, 200, 'SigV4: a signed request is served');
is(sql(q{SELECT owner FROM msgq.queue WHERE queue_name = 'signed'}), 'sqs_app', 'as the key\'s role');
($st, $r) = signed(action => 'ListQueues', request => {}, secret => 'wrong');
is($st . ' ' . $r->{__type}, '403 com.amazonaws.sqs#SignatureDoesNotMatch', 'a wrong secret: SignatureDoesNotMatch');
($st, $r) = signed(action => 'ListQueues', request => {}, akid => 'AKIANOSUCHKEY0000000');
is($st . ' ' . $r->{__type}, '403 com.amazonaws.sqs#InvalidClientTokenId', 'an unknown key: InvalidClientTokenId');
($st, $r) = signed(action => 'ListQueues', request => {}, no_auth => 1);
is($st . ' ' . $r->{__type}, '403 com.amazonaws.sqs#MissingAuthenticationToken', 'no Authorization: MissingAuthenticationToken');
($st, $r) = signed(action => 'ListQueues', request => {}, authorization => 'Basic abc');
is($st . ' ' . $r->{__type}, '400 com.amazonaws.sqs#IncompleteSignature', 'not SigV4: IncompleteSignature');
($st, $r) = signed(action => 'ListQueues', request => {}, date => '20200101T000000Z');
is($st . ' ' . $r->{__type}, '403 com.amazonaws.sqs#SignatureDoesNotMatch', 'a signature from 2020: refused');

# the secret at rest: encrypted with the key file, which stays out of the database
my $keyfile = $node->data_dir . '/msgq_endpoint.key';
is(sprintf('%o %d', (stat $keyfile)[2] & 07777, -s $keyfile), '600 32',
	'the key file: 32 bytes in the data directory, mode 0600');
{
	# compared here: a statement with the secret would put it into the log
	my ($row, $hex) = split /\|/, sql(qq{SELECT c::text || '|' || encode(encrypted_secret, 'hex')
		FROM msgq.endpoint_credential c WHERE access_key_id = '$akid'});
	ok(index($row, $secret) < 0 && index(pack('H*', $hex), $secret) < 0 && length($hex) == 2 * (16 + 40 + 32),
		'the row holds the secret encrypted: 16 bytes of nonce, 40 encrypted, 32 of tag');
}

sql(qq{SELECT msgq.delete_access_key('$akid')});
($st, $r) = signed(action => 'ListQueues', request => {});
is($st . ' ' . $r->{__type}, '403 com.amazonaws.sqs#InvalidClientTokenId', 'a deleted key no longer works');
$node->append_conf('postgresql.conf', "msgq.endpoint_auth = none");
$node->reload;
sleep 0.5;

# per-action counts
is( sql(q{SELECT requests > errors AND errors >= 2 FROM msgq.endpoint_metrics WHERE service = 'sqs' AND action = 'SendMessage'}),
	't', 'msgq.endpoint_metrics counts SendMessage and its errors');
is( sql(q{SELECT errors >= 1 AND max_latency_ms >= avg_latency_ms FROM msgq.endpoint_metrics WHERE service = 'sqs' AND action = 'GetQueueUrl'}),
	't', 'and GetQueueUrl\'s error');
is( sql(q{SELECT max_latency_ms >= 900 FROM msgq.endpoint_metrics WHERE service = 'sqs' AND action = 'ReceiveMessage'}),
	't', 'a long poll\'s latency includes its wait');
is(sql(q{SELECT errors >= 2 FROM msgq.endpoint_metrics WHERE action = '(none)'}), 't',
	'requests of no action are counted as errors');

# without a role, nothing is served
$node->append_conf('postgresql.conf', "msgq.endpoint_role = ''");
$node->reload;
sleep 0.5;
($st, $r) = call('ListQueues', {}, HTTP::Tiny->new);
is($st, 403, 'with msgq.endpoint_role empty every request is refused');

# SigV4 across restarts, with a changed row or another key file

# wait for the endpoint after a restart: any HTTP answer
sub endpoint_up
{
	for (1 .. 100)
	{
		return 1 if HTTP::Tiny->new(timeout => 2)->get($base)->{status} != 599;
		sleep 0.1;
	}
	return 0;
}
my ($akid2, $secret2) = split /\|/, sql(q{SELECT access_key_id || '|' || secret_access_key FROM msgq.create_access_key('sqs_app')});
sub list_signed2 { return signed(action => 'ListQueues', request => {}, akid => $akid2, secret => $secret2); }
$node->append_conf('postgresql.conf', "msgq.endpoint_auth = sigv4");
$node->restart;
ok(endpoint_up(), 'the endpoint answers after a restart');
($st, $r) = list_signed2();
is($st, 200, 'a key made before the restart still verifies after it');

my $flip = qq{UPDATE msgq.endpoint_credential SET encrypted_secret = set_byte(encrypted_secret, 20, get_byte(encrypted_secret, 20) # 1)
	WHERE access_key_id = '$akid2'};
sql($flip);
($st, $r) = list_signed2();
is($st . ' ' . $r->{__type}, '403 com.amazonaws.sqs#InvalidClientTokenId', 'a changed byte of the stored secret: InvalidClientTokenId');
is($r->{message}, 'the security token included in the request is invalid', 'told as AWS tells an unknown key');
sql($flip);
($st, $r) = list_signed2();
is($st, 200, 'changed back, it verifies again');

# another key file: refused; the right one again: the endpoint reads it anew
$node->stop;
my $key = slurp_file($keyfile);
append_to_file($keyfile . '.other', join('', map { chr(int(rand(256))) } 1 .. 32));
rename($keyfile . '.other', $keyfile) or die $!;
$node->start;
ok(endpoint_up(), 'the endpoint answers after a restart with another key file');
($st, $r) = list_signed2();
is($st . ' ' . $r->{__type}, '403 com.amazonaws.sqs#InvalidClientTokenId', 'another key file: InvalidClientTokenId');
append_to_file($keyfile . '.right', $key);
rename($keyfile . '.right', $keyfile) or die $!;
($st, $r) = list_signed2();
is($st, 200, 'the right key file back: verified without a restart');
my $log = slurp_file($node->logfile);
like($log, qr/WARNING:  the secret of access key "$akid2" cannot be decrypted/, 'a secret that does not decrypt is logged');
is(index($log, $secret) + index($log, $secret2), -2, 'the log never shows a secret');

# rotating the key file: the worker (one, msgq.endpoint_workers = 1) served
# a signed request just now, so it holds the key file's key; after the
# rotation the secret is encrypted with a key it has not read
my $filestat = sub { sprintf('%o %d', (stat $keyfile)[2] & 07777, -s $keyfile) };
my $before_rotation = slurp_file($keyfile);
is(sql(q{SELECT msgq.rotate_access_key_encryption() = (SELECT count(*) FROM msgq.endpoint_credential)}), 't',
	'rotate_access_key_encryption re-encrypts every access key');
is($filestat->(), '600 84', 'the key file: two keys (16 bytes of header, 64 of keys, 4 of checksum), mode 0600');
($st, $r) = list_signed2();
is($st, 200, 'a request signed with a rotated secret verifies: the worker read the new key file');
is(sql(q{SELECT msgq.retire_access_key_encryption()}), '1', 'retire_access_key_encryption removes the older key');
is($filestat->(), '600 32', 'the key file: one key again, 32 bytes, mode 0600');
($st, $r) = list_signed2();
is($st, 200, 'after the retire it still verifies');
my $after_retire = slurp_file($keyfile);
isnt($after_retire, $before_rotation, 'the key is not the one from before the rotation');
# the file from before the rotation opens nothing now: the secret was re-encrypted
append_to_file($keyfile . '.old', $before_rotation);
rename($keyfile . '.old', $keyfile) or die $!;
($st, $r) = list_signed2();
is($st . ' ' . $r->{__type}, '403 com.amazonaws.sqs#InvalidClientTokenId',
	'the key file from before the rotation: InvalidClientTokenId');
append_to_file($keyfile . '.new', $after_retire);
rename($keyfile . '.new', $keyfile) or die $!;
($st, $r) = list_signed2();
is($st, 200, 'the rotated key file back: verified');
is(index(slurp_file($node->logfile), $secret2), -1, 'the log never shows the rotated secret');

$node->stop;
done_testing();
