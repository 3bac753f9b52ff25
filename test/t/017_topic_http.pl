
# Copyright (c) msgq contributors
#
# http subscriptions of topics, POSTed by the worker after commit with
# libcurl (src/http.c, src/delivery.c, doc/design.md "Deliveries after
# commit"), against a small HTTP server run by this test:
#
#   - the SubscriptionConfirmation flow: the subscription is pending until
#     confirm_subscription() gets the token the endpoint received;
#   - a notification carries SNS's headers and a signed envelope (or the
#     raw message, with RawMessageDelivery), and the content type of the
#     requestPolicy;
#   - a 5xx is retried on the DeliveryPolicy schedule with the same
#     message id; a 4xx is a client error: not retried, dead-lettered;
#   - retries exhausted, a timeout or a refused connection: the message goes
#     to the subscription's dead-letter queue;
#   - a transfer that hangs blocks neither publishers nor other deliveries;
#   - throttlePolicy spaces one subscription's transfers;
#   - the retry state survives a worker restart;
#   - unsubscribing a confirmed endpoint sends it an UnsubscribeConfirmation.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use Fcntl qw(:flock);
use POSIX ();
use Time::HiRes ();
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;

my $dir = PostgreSQL::Test::Utils::tempdir;

# The endpoint: one process per connection, every request saved to a file
# ("<n>.req": arrival time, request line, headers, body), the answer
# chosen by path: /ok 200, /missing 404, /down 503, /hang no answer for 10 s,
# /flakyN 500 to the first N notifications then 200.  Subscription and
# unsubscribe confirmations are always answered 200.
my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Proto => 'tcp',
	Listen => 64,
	ReuseAddr => 1) or die "cannot listen: $!";
my $port = $listener->sockport;

sub next_seq
{
	open(my $fh, '+>>', "$dir/seq") or die $!;
	flock($fh, LOCK_EX);
	seek($fh, 0, 0);
	my $n = <$fh> // 0;
	$n += 0;
	$n++;
	truncate($fh, 0);
	print $fh $n;
	close($fh);
	return $n;
}

sub count_notifications
{
	my ($path) = @_;
	my $n = 0;
	for my $f (glob("$dir/*.req"))
	{
		open(my $fh, '<', $f) or next;
		local $/;
		my $r = <$fh>;
		close($fh);
		$n++ if $r =~ m{^POST \Q$path\E }m && $r =~ /^x-amz-sns-message-type: Notification\r?$/mi;
	}
	return $n;
}

sub serve
{
	my ($conn) = @_;
	my $head = '';
	while ($head !~ /\r\n\r\n/)
	{
		my $got = sysread($conn, my $buf, 4096);
		return if !$got;
		$head .= $buf;
	}
	my ($headers, $body) = split(/\r\n\r\n/, $head, 2);
	my ($len) = $headers =~ /^content-length:\s*(\d+)/mi;
	$len //= 0;
	while (length($body) < $len)
	{
		my $got = sysread($conn, my $buf, 65536);
		last if !$got;
		$body .= $buf;
	}
	my ($path) = $headers =~ m{^POST (\S+) };
	$path //= '';
	my $confirmation = $headers =~ /^x-amz-sns-message-type: \w+Confirmation/mi;

	# decide before saving, so a request does not count itself
	my $status = 200;
	if (!$confirmation)
	{
		if ($path eq '/missing') { $status = 404; }
		elsif ($path eq '/down') { $status = 503; }
		elsif ($path =~ m{^/flaky(\d+)$})
		{
			open(my $lock, '>>', "$dir/flaky.lock") or die $!;
			flock($lock, LOCK_EX);
			$status = count_notifications($path) < $1 ? 500 : 200;
			save($headers, $body);
			close($lock);
			respond($conn, $status);
			return;
		}
	}
	save($headers, $body);
	if (!$confirmation && $path eq '/hang')
	{
		sleep 10;
		return;
	}
	respond($conn, $status);
}

sub save
{
	my ($headers, $body) = @_;
	my $n = next_seq();
	open(my $out, '>', "$dir/$n.tmp") or die $!;
	binmode($out);
	printf $out "TIME %.6f\r\n%s\r\n\r\n%s", Time::HiRes::time(), $headers, $body;
	close($out);
	rename("$dir/$n.tmp", "$dir/$n.req") or die $!;
}

sub respond
{
	my ($conn, $status) = @_;
	syswrite($conn,
		"HTTP/1.1 $status Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

my $server = fork();
die "fork: $!" if !defined $server;
if ($server == 0)
{
	$SIG{CHLD} = 'IGNORE';
	POSIX::setsid();
	while (1)
	{
		my $conn = $listener->accept or next;
		my $child = fork();
		if (defined $child && $child == 0)
		{
			serve($conn);
			close($conn);
			POSIX::_exit(0);
		}
		close($conn);
	}
}
close($listener);
END { kill 'KILL', -$server if $server; }

# Every request received so far for a path, oldest first
sub requests
{
	my ($path, $type) = @_;
	my @r;
	for my $f (sort { ($a =~ /(\d+)\.req$/)[0] <=> ($b =~ /(\d+)\.req$/)[0] } glob("$dir/*.req"))
	{
		open(my $fh, '<', $f) or next;
		binmode($fh);
		local $/;
		my $raw = <$fh>;
		close($fh);
		my ($head, $body) = split(/\r\n\r\n/, $raw, 2);
		my @lines = split(/\r\n/, $head);
		my ($time) = (shift(@lines)) =~ /^TIME (\S+)/;
		my ($method, $p) = (shift(@lines)) =~ /^(\S+) (\S+)/;
		next if $p ne $path;
		my %h;
		for (@lines) { $h{ lc $1 } = $2 if /^([^:]+):\s*(.*)$/; }
		next if defined $type && ($h{'x-amz-sns-message-type'} // '') ne $type;
		push @r, { time => $time, method => $method, headers => \%h, body => $body };
	}
	return @r;
}

# A port nobody listens on
my $closed = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1)
  or die $!;
my $dead_port = $closed->sockport;
close($closed);

my $node = PostgreSQL::Test::Cluster->new('topic_http');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = 200ms
msgq.http_timeout = 3000ms
EOF
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub wait_for
{
	my ($query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), $what);
}

# Wait until the endpoint got n requests of a type on a path
sub wait_requests
{
	my ($path, $type, $n, $what) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	my @r;
	while (time() < $deadline)
	{
		@r = requests($path, $type);
		last if @r >= $n;
		Time::HiRes::sleep(0.05);
	}
	cmp_ok(scalar(@r), '>=', $n, $what);
	return @r;
}

# Subscribe an endpoint and confirm it with the token it was sent
sub subscribe_confirmed
{
	my ($topic, $path, $attributes) = @_;
	$attributes //= '{}';
	my $before = scalar(requests($path, 'SubscriptionConfirmation'));
	my $answer = sql(
		qq{SELECT msgq.subscribe('$topic', 'http', 'http://127.0.0.1:$port$path', '$attributes')});
	is($answer, 'pending confirmation', "$path is pending confirmation");
	my @c = wait_requests($path, 'SubscriptionConfirmation', $before + 1,
		"$path got its confirmation request");
	my ($token) = $c[-1]{body} =~ /"Token"\s*:\s*"([^"]+)"/;
	my $arn = sql(qq{SELECT msgq.confirm_subscription('$topic', '$token')});
	like($arn, qr/^arn:aws:sns:msgq:[^:]+:$topic:/, "$path confirmed with the token it received");
	return ($arn, $c[-1]);
}

sql(<<'EOF');
CREATE EXTENSION msgq;
SELECT msgq.create_topic('t');
SELECT msgq.create_topic('other');
SELECT msgq.create_queue('dlq');
EOF

# 1. the confirmation flow
my ($ok_sub, $conf) = subscribe_confirmed('t', '/ok');
is($conf->{method}, 'POST', 'the confirmation is a POST');
like($conf->{headers}{'x-amz-sns-topic-arn'}, qr/^arn:aws:sns:msgq:[^:]+:t$/, 'with the topic ARN header');
like($conf->{headers}{'user-agent'}, qr{^msgq/}, 'and msgq as user agent');
like($conf->{body}, qr/"SubscribeURL"\s*:/, 'its document has the SubscribeURL');
is(sql(q{SELECT msgq.get_topic_attributes('t')->>'SubscriptionsConfirmed'}), '1',
	'the topic counts it confirmed');

# 2. a notification: headers, signed envelope, same message id
my $msgid = sql(q{SELECT message_id FROM msgq.publish('t', 'hello', subject => 'hi')});
my @n = wait_requests('/ok', 'Notification', 1, 'the notification was POSTed after commit');
my $h = $n[0]{headers};
is($h->{'x-amz-sns-message-id'}, $msgid, 'x-amz-sns-message-id is the published message id');
is($h->{'x-amz-sns-subscription-arn'}, $ok_sub, 'x-amz-sns-subscription-arn is the subscription');
is($h->{'content-type'}, 'text/plain; charset=UTF-8', 'the default content type');
ok(!exists $h->{'x-amz-sns-rawdelivery'}, 'no raw-delivery header for an envelope');
my $body = $n[0]{body};
$body =~ s/'/''/g;
is( sql(
		qq{SELECT (b->>'Type') || ' ' || (b->>'Message') || ' ' || (b->>'Subject') || ' ' || msgq.verify_notification(b)::text
		     FROM (SELECT '$body'::jsonb AS b) s}),
	'Notification hello hi true',
	'the body is the signed SNS envelope');
is(sql(qq{SELECT '$body'::jsonb->>'UnsubscribeURL'}), "msgq:unsubscribe?SubscriptionArn=$ok_sub",
	'whose UnsubscribeURL names the subscription');
wait_for($none_pending, 'the delivered row is deleted');

# a rolled-back publish sends nothing
sql(q{BEGIN; SELECT msgq.publish('t', 'never'); ROLLBACK;});

# unsubscribing tells the endpoint, with a signed UnsubscribeConfirmation
sql(qq{SELECT msgq.unsubscribe('$ok_sub')});
my @u = wait_requests('/ok', 'UnsubscribeConfirmation', 1, 'the endpoint got an UnsubscribeConfirmation');
is($u[0]{headers}{'x-amz-sns-subscription-arn'}, $ok_sub, 'naming the subscription');
$body = $u[0]{body};
$body =~ s/'/''/g;
is( sql(
		qq{SELECT (b->>'Type') || ' ' || (length(b->>'Token') = 64)::text || ' ' || msgq.verify_notification(b)::text
		     FROM (SELECT '$body'::jsonb AS b) s}),
	'UnsubscribeConfirmation true true',
	'its document has a token and a valid signature');

# raw delivery and requestPolicy's content type
my ($raw_sub) = subscribe_confirmed('t', '/raw',
	'{"RawMessageDelivery": "true", "DeliveryPolicy": "{\\"requestPolicy\\": {\\"headerContentType\\": \\"application/json\\"}}"}'
);
sql(q{SELECT msgq.publish('t', '{"raw": true}')});
@n = wait_requests('/raw', 'Notification', 1, 'the raw notification was POSTed');
is($n[0]{body}, '{"raw": true}', 'raw delivery POSTs the message verbatim');
is($n[0]{headers}{'x-amz-sns-rawdelivery'}, 'true', 'with x-amz-sns-rawdelivery: true');
is($n[0]{headers}{'content-type'}, 'application/json', 'and the requestPolicy content type');
is(scalar(requests('/ok', 'Notification')), 1, 'the rolled-back publish was never sent');
sql(qq{SELECT msgq.unsubscribe('$raw_sub')});

# 3. a 5xx is retried on the schedule, with the same message id
my ($flaky_sub) = subscribe_confirmed('t', '/flaky2',
	'{"DeliveryPolicy": "{\\"healthyRetryPolicy\\": {\\"numRetries\\": 3, \\"minDelayTarget\\": 1, \\"maxDelayTarget\\": 1}}"}'
);
$msgid = sql(q{SELECT message_id FROM msgq.publish('t', 'retry me')});
@n = wait_requests('/flaky2', 'Notification', 3, 'two 500s, then a 200');
wait_for($none_pending, 'then the row is deleted');
is(scalar(requests('/flaky2', 'Notification')), 3, 'no attempt after the success');
is(scalar(grep { $_->{headers}{'x-amz-sns-message-id'} eq $msgid } @n), 3,
	'every attempt carries the same message id');
cmp_ok($n[2]{time} - $n[1]{time}, '>=', 0.8, 'the retries follow the 1 s delay of the policy');
is( sql(
		qq{SELECT delivered || ' ' || retried || ' ' || dead_lettered FROM msgq.subscription_metrics
		    WHERE endpoint LIKE '%/flaky2'}),
	'1 2 0',
	'the metrics count one delivery and two retries');
sql(qq{SELECT msgq.unsubscribe('$flaky_sub')});

# 4. a 4xx is a client error: not retried, to the dead-letter queue
my ($missing_sub) = subscribe_confirmed('t', '/missing',
	'{"RedrivePolicy": "{\\"deadLetterTargetArn\\": \\"dlq\\"}"}');
sql(q{SELECT msgq.publish('t', 'to a 404')});
wait_requests('/missing', 'Notification', 1, 'the 404 endpoint got the notification');
wait_for($none_pending, 'and the row is gone');
is( sql(
		q{SELECT delivered || ' ' || retried || ' ' || dead_lettered FROM msgq.subscription_metrics
		    WHERE endpoint LIKE '%/missing'}),
	'0 0 1',
	'a 4xx is not retried but dead-lettered');
is(scalar(requests('/missing', 'Notification')), 1, 'one request only');
is(sql(q{SELECT string_agg(body::jsonb->>'Message', ',') FROM msgq.receive_message('dlq', 10)}),
	'to a 404', 'the notification is in the dead-letter queue');
ok($node->log_contains(qr/moved to dead-letter queue "dlq": client error, not retried: HTTP status 404/),
	'logged as a client error');
sql(qq{SELECT msgq.unsubscribe('$missing_sub')});

# 5. retries exhausted on a 5xx: the dead-letter queue
my ($down_sub) = subscribe_confirmed('t', '/down',
	'{"RedrivePolicy": "{\\"deadLetterTargetArn\\": \\"dlq\\"}", "DeliveryPolicy": "{\\"healthyRetryPolicy\\": {\\"numRetries\\": 1, \\"minDelayTarget\\": 1, \\"maxDelayTarget\\": 1}}"}'
);
sql(q{SELECT msgq.publish('t', 'server down')});
wait_for($none_pending, 'the 503s used up the retries');
is(scalar(requests('/down', 'Notification')), 2, 'one attempt and one retry');
is( sql(q{SELECT string_agg(body::jsonb->>'Message', ',') FROM msgq.receive_message('dlq', 10)}),
	'server down',
	'the notification went to the dead-letter queue');
ok($node->log_contains(qr/moved to dead-letter queue "dlq": 2 attempts failed, the last with: HTTP status 503/),
	'the move is logged with its reason');
sql(qq{SELECT msgq.unsubscribe('$down_sub')});

# 6. a hanging endpoint times out, and meanwhile blocks nobody
my $no_retry =
  '"DeliveryPolicy": "{\\"healthyRetryPolicy\\": {\\"numRetries\\": 0}}", "RedrivePolicy": "{\\"deadLetterTargetArn\\": \\"dlq\\"}"';
my ($hang_sub) = subscribe_confirmed('t', '/hang', "{$no_retry}");
my ($other_sub) = subscribe_confirmed('other', '/ok');
sql(q{SELECT msgq.publish('t', 'into the void')});
wait_requests('/hang', 'Notification', 1, 'the hanging endpoint got its request');
my $t0 = Time::HiRes::time();
sql(q{SELECT msgq.publish('other', 'meanwhile')});
my $publish_s = Time::HiRes::time() - $t0;
cmp_ok($publish_s, '<', 2, 'a publish returns while a transfer hangs');
wait_requests('/ok', 'Notification', 2, 'another subscription is delivered meanwhile');
wait_for(q{SELECT count(*) = 1 AND bool_and(payload LIKE '%into the void%') FROM msgq.topic_delivery},
	'while the hanging transfer is still in flight');
wait_for($none_pending, 'the hanging transfer timed out');
is(sql(q{SELECT string_agg(body::jsonb->>'Message', ',') FROM msgq.receive_message('dlq', 10)}),
	'into the void', 'and went to the dead-letter queue');
ok($node->log_contains(qr/dead-letter queue "dlq": 1 attempts failed, the last with: timed out after 3000 ms/),
	'logged as a timeout');
sql(qq{SELECT msgq.unsubscribe('$hang_sub')});
sql(qq{SELECT msgq.unsubscribe('$other_sub')});

# 7. a refused connection is a failure too (confirmed with the token of the table)
sql(qq{SELECT msgq.subscribe('t', 'http', 'http://127.0.0.1:$dead_port/x', '{$no_retry}')});
my $token = sql(q{SELECT confirm_token FROM msgq.subscription WHERE endpoint LIKE '%/x'});
wait_for($none_pending, 'the confirmation could not be sent');
ok($node->log_contains(qr/subscription \S+ dropped: .*attempts failed/),
	'a confirmation that cannot be sent is dropped, never dead-lettered');
my $refused_sub = sql(qq{SELECT msgq.confirm_subscription('t', '$token')});
sql(q{SELECT msgq.publish('t', 'nobody listens')});
wait_for($none_pending, 'the refused notification was given up');
is(sql(q{SELECT string_agg(body::jsonb->>'Message', ',') FROM msgq.receive_message('dlq', 10)}),
	'nobody listens', 'a refused connection goes to the dead-letter queue');
sql(qq{SELECT msgq.unsubscribe('$refused_sub')});
wait_for(q{SELECT attempts >= 1 FROM msgq.topic_delivery WHERE kind = 'UnsubscribeConfirmation'},
	'an UnsubscribeConfirmation that cannot be sent is retried (its endpoint is kept in the row)');

# 8. throttlePolicy spaces the transfers of one subscription
my ($slow_sub) = subscribe_confirmed('t', '/throttled',
	'{"DeliveryPolicy": "{\\"throttlePolicy\\": {\\"maxReceivesPerSecond\\": 1}}"}');
sql(q{SELECT msgq.publish('t', 'm' || i) FROM generate_series(1, 3) i});
@n = wait_requests('/throttled', 'Notification', 3, 'the throttled notifications arrived');
cmp_ok($n[2]{time} - $n[0]{time}, '>=', 1.8, 'at most one per second');
sql(qq{SELECT msgq.unsubscribe('$slow_sub')});

# 9. the retry state survives a worker restart
my ($restart_sub) = subscribe_confirmed('t', '/flaky3',
	'{"DeliveryPolicy": "{\\"healthyRetryPolicy\\": {\\"numRetries\\": 5, \\"minDelayTarget\\": 2, \\"maxDelayTarget\\": 2}}"}'
);
sql(q{SELECT msgq.publish('t', 'across a restart')});
wait_for(q{SELECT attempts >= 1 FROM msgq.topic_delivery WHERE kind = 'Notification'},
	'the first attempt failed');
my $pid = sql(q{SELECT pid FROM msgq.workers WHERE database = 'postgres'});
sql(qq{SELECT pg_terminate_backend($pid)});
wait_for(qq{SELECT pid IS NOT NULL AND pid <> $pid FROM msgq.workers WHERE database = 'postgres'},
	'the worker was restarted');
cmp_ok(sql(q{SELECT attempts FROM msgq.topic_delivery WHERE kind = 'Notification'}),
	'>=', 1, 'the attempts so far are kept');
wait_for(q{SELECT (SELECT count(*) FROM msgq.topic_delivery WHERE kind = 'Notification') + (SELECT count(*) FROM msgq.topic_outbox) = 0},
	'then it was delivered');
cmp_ok(scalar(requests('/flaky3', 'Notification')), '>=', 4, 'three 500s then a 200: the schedule went on');

$node->stop;
done_testing();
