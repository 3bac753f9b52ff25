
# Copyright (c) msgq contributors
#
# The AWS endpoint driven by the AWS SDK for JavaScript v3: test/node's
# suites for SQS, Kinesis and SNS (node's test runner, @aws-sdk/client-sqs,
# client-kinesis and client-sns installed by the test
# command with npm ci from the committed package-lock.json) runs against a
# server with the endpoint on, with an access key made by
# msgq.create_access_key (and a second role's, for the permission
# actions): each of its tests must pass. The endpoint runs two workers
# (msgq.endpoint_workers), so requests, long polls and subscriptions are
# spread over both.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;

my $dir = "$FindBin::Bin/../node";
if (!ok(-d "$dir/node_modules/\@aws-sdk/client-sqs", 'the SDK is installed (npm ci in test/node)'))
{
	diag('run npm ci in test/node (the test command does)');
	done_testing();
	exit 1;
}

my ($node, $port) = endpoint_node('aws_sdk', <<'EOF2');
msgq.endpoint_workers = 2
EOF2
$node->safe_psql('postgres', <<'EOF2');
CREATE EXTENSION msgq;
CREATE ROLE sdk_app;
GRANT USAGE ON SCHEMA msgq TO sdk_app;
GRANT EXECUTE ON FUNCTION msgq.create_queue(text, jsonb) TO sdk_app;
GRANT EXECUTE ON FUNCTION msgq.create_stream(text, integer, text) TO sdk_app;
GRANT EXECUTE ON FUNCTION msgq.create_topic(text, jsonb) TO sdk_app;
CREATE ROLE sdk_other;
GRANT USAGE ON SCHEMA msgq TO sdk_other;
EOF2
my ($akid, $secret) = split /\|/,
  $node->safe_psql('postgres', q{SELECT access_key_id || '|' || secret_access_key FROM msgq.create_access_key('sdk_app')});
# a second role, without rights on sdk_app's queues and topics until granted
my ($other_akid, $other_secret) = split /\|/,
  $node->safe_psql('postgres', q{SELECT access_key_id || '|' || secret_access_key FROM msgq.create_access_key('sdk_other')});
$node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'msgq endpoint'})
  or die 'the endpoint did not start';

local $ENV{MSGQ_ENDPOINT} = "http://127.0.0.1:$port";
local $ENV{MSGQ_ACCESS_KEY_ID} = $akid;
local $ENV{MSGQ_SECRET_ACCESS_KEY} = $secret;
local $ENV{MSGQ_OTHER_ACCESS_KEY_ID} = $other_akid;
local $ENV{MSGQ_OTHER_SECRET_ACCESS_KEY} = $other_secret;
local $ENV{AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING} = '1';
my ($stdout, $stderr);
my $ok = IPC::Run::run([ 'node', '--no-warnings', '--test', '--test-reporter=tap', "$dir/sqs.test.mjs", "$dir/kinesis.test.mjs", "$dir/h2.test.mjs", "$dir/subscribe.test.mjs", "$dir/reshard.test.mjs", "$dir/sns_tags.test.mjs",
		"$dir/sns.test.mjs" ],
	'>', \$stdout, '2>', \$stderr);
my @passed = $stdout =~ /^ok \d+ - (.+)$/mg;
my @failed = $stdout =~ /^not ok \d+ - (.+)$/mg;
ok($ok, 'the SDK suite passes') or diag("$stdout\n$stderr");
cmp_ok(scalar(@passed), '>=', 39, scalar(@passed) . ' SDK tests passed: ' . join('; ', @passed));
is(scalar(@failed), 0, 'none failed') or diag(join("\n", @failed));

# A SubscribeToShard event stream ends after five minutes of msgq's clock
{
	my ($in, $out) = ('', '');
	my $t = IPC::Run::timeout(60);
	my $h = IPC::Run::start([ 'node', '--no-warnings', "$dir/subscribe_end.mjs" ],
		'<', \$in, '>', \$out, '2>&1', $t);
	$h->pump until $out =~ /subscribed|rror/ || $t->is_expired;
	like($out, qr/^subscribed$/m, 'a subscription is open') or diag($out);
	$node->safe_psql('postgres', q{ALTER SYSTEM SET msgq.clock_offset = '301s'});
	$node->reload;
	$h->pump until $out =~ /ended|rror/ || $t->is_expired;
	$h->finish;
	like($out, qr/^ended after [1-9]\d* events$/m, "its event stream ends when msgq's clock is five minutes on")
	  or diag($out);
	$node->safe_psql('postgres', q{ALTER SYSTEM RESET msgq.clock_offset});
	$node->reload;
}
# With shard limits enforced, a subscription reads 2 MiB per second: five
# records of 1,000,000 bytes come in at least three events (2, 1 borrowing,
# then after the next second 1 and 1), and the endpoint polls again when
# more wait or the next second begins, not at the 5-second heartbeat.
{
	$node->safe_psql('postgres', q{
		SET ROLE sdk_app;
		SELECT msgq.create_stream('sdk-limited', 1);
		SELECT count(*) FROM msgq.put_records('sdk-limited', ARRAY['k', 'k', 'k', 'k', 'k'],
			ARRAY(SELECT decode(repeat('00', 1000000), 'hex') FROM generate_series(1, 5)));
		SELECT msgq.enforce_shard_limits('sdk-limited');
	});
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'node', '--no-warnings', "$dir/subscribe_limited.mjs" ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60));
	like($out, qr/^got 5 records in (\d+) events after (\d+) ms$/m, 'a limited subscription gets every record')
	  or diag("$out\n$err");
	my ($events, $ms) = $out =~ /in (\d+) events after (\d+) ms/;
	cmp_ok($events // 0, '>=', 3, 'in several events, 2 MiB per second at most');
	cmp_ok($ms // 99999, '<', 4500, 'polled again at once or at the next second, not at the heartbeat');
}

is($node->safe_psql('postgres', q{SELECT DISTINCT owner FROM msgq.queue WHERE queue_name LIKE 'sdk-%'}),
	'sdk_app', 'every queue the SDK made belongs to the access key\'s role');

$node->stop;
done_testing();
