
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
#     WARNING in the log, and no secret in the log.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use HTTP::Tiny;
use IO::Socket::INET;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha256_hex hmac_sha256 hmac_sha256_hex);
use POSIX qw(strftime);
use JSON::PP;
use Time::HiRes qw(time sleep);
use POSIX ();

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = PostgreSQL::Test::Cluster->new('aws_endpoint');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<"EOF");
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.endpoint_port = $port
msgq.endpoint_role = 'sqs_app'
msgq.endpoint_auth = none
msgq.endpoint_request_timeout = 1s
EOF
$node->start;

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
is((call('ListQueues', {}))[0], 200, 'and the endpoint goes on');
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

$node->stop;
done_testing();
