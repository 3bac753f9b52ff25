
# Copyright (c) msgq contributors
#
# function subscriptions of topics, delivered by the worker after commit
# (src/delivery.c, doc/design.md "Deliveries after commit"):
#
#   - a publish wakes the worker at commit, which calls the function as the
#     subscription's owner (not a superuser), in the same transaction as
#     the end of the delivery (each delivery's effects happen once);
#   - a function that raises goes through its retry schedule and then to
#     the subscription's dead-letter queue;
#   - a function that runs too long is cancelled after msgq.function_timeout
#     and counts as failed;
#   - the retry state survives a worker restart (the worker is terminated
#     mid-schedule) and a crash: the delivery completes once, later.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use MsgqTest;

my $node = PostgreSQL::Test::Cluster->new('topic_function');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
msgq.worker_naptime = 200ms
msgq.function_timeout = 500ms
restart_after_crash = on
EOF
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub wait_for
{
	my ($query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), $what);
}

sql(<<'EOF');
CREATE EXTENSION msgq;
CREATE ROLE fn_owner LOGIN;
CREATE TABLE seen (n serial, who text, super boolean, message text);
CREATE TABLE switch (fail boolean);
INSERT INTO switch VALUES (true);
CREATE SEQUENCE calls;
GRANT ALL ON seen, seen_n_seq, switch, calls TO fn_owner;
CREATE FUNCTION handler(event jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM nextval('calls');
	INSERT INTO seen (who, super, message)
	SELECT current_user, rolsuper, event #>> '{Records,0,Sns,Message}'
	  FROM pg_roles WHERE rolname = current_user;
END $$;
CREATE FUNCTION flaky(event jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM nextval('calls');
	IF (SELECT fail FROM switch) THEN
		RAISE EXCEPTION 'not today';
	END IF;
	INSERT INTO seen (who, message) VALUES ('flaky', event #>> '{Records,0,Sns,Message}');
END $$;
CREATE FUNCTION slow(event jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM nextval('calls');
	PERFORM pg_sleep(30);
END $$;
SELECT msgq.create_topic('t');
SELECT msgq.create_queue('dlq');
SELECT msgq.add_permission(msgq.create_topic('t'), 'owner', '{fn_owner}', '{Subscribe}');
SELECT msgq.add_permission(msgq.get_queue_url('dlq'), 'owner', '{fn_owner}', '{SendMessage}');
EOF

# 1. delivered after commit, as the owner
my $sub = $node->safe_psql('postgres',
	q{SET ROLE fn_owner; SELECT msgq.subscribe('t', 'function', 'handler(jsonb)')});
sql(q{SELECT msgq.publish('t', 'first')});
wait_for(q{SELECT count(*) = 1 FROM seen}, 'the worker called the function after commit');
is(sql(q{SELECT who || ' ' || super || ' ' || message FROM seen}),
	'fn_owner false first', 'it ran as the subscription owner, not a superuser');
is(sql(q{SELECT count(*) FROM msgq.topic_delivery}), '0', 'the delivery row is gone');
sql(qq{SELECT msgq.unsubscribe('$sub')});

# 2. retries, then the dead-letter queue
my $policy =
  '{"healthyRetryPolicy": {"numRetries": 3, "numNoDelayRetries": 1, "numMinDelayRetries": 2, "minDelayTarget": 1, "maxDelayTarget": 1}}';
$sub = sql(
	qq{SELECT msgq.subscribe('t', 'function', 'flaky(jsonb)', jsonb_build_object(
		'DeliveryPolicy', '$policy', 'RedrivePolicy', '{"deadLetterTargetArn": "dlq"}'))});
my $calls0 = sql(q{SELECT last_value FROM calls});
sql(q{SELECT msgq.publish('t', 'doomed')});
wait_for($none_pending, 'the retries ran out');
is(sql(q{SELECT last_value FROM calls}) - $calls0, 4, 'the function was called 1 + 3 times');
is( sql(
		q{SELECT string_agg(body::jsonb #>> '{Records,0,Sns,Message}', ',') FROM msgq.receive_message('dlq', 10)}
	),
	'doomed',
	'the message went to the dead-letter queue');
ok($node->log_contains(qr/moved to dead-letter queue "dlq": 4 attempts failed, the last with: not today/),
	'the move is logged with its reason');
sql(qq{SELECT msgq.unsubscribe('$sub')});

# 3. a call that runs too long is cancelled and counts as failed
$sub = sql(
	q{SELECT msgq.subscribe('t', 'function', 'slow(jsonb)', jsonb_build_object(
		'DeliveryPolicy', '{"healthyRetryPolicy": {"numRetries": 0}}',
		'RedrivePolicy', '{"deadLetterTargetArn": "dlq"}'))});
sql(q{SELECT msgq.publish('t', 'too slow')});
wait_for($none_pending, 'the slow call was given up');
ok($node->log_contains(qr/canceling statement due to statement timeout/),
	'because msgq.function_timeout cancelled it');
is(sql(q{SELECT count(*) FROM msgq.receive_message('dlq', 10)}), '1', 'to the dead-letter queue');
sql(qq{SELECT msgq.unsubscribe('$sub')});

# 4. the retry state survives a worker restart and a crash
$policy =
  '{"healthyRetryPolicy": {"numRetries": 10, "minDelayTarget": 2, "maxDelayTarget": 2}}';
$sub = sql(
	qq{SELECT msgq.subscribe('t', 'function', 'flaky(jsonb)', jsonb_build_object('DeliveryPolicy', '$policy'))});
sql(q{SELECT msgq.publish('t', 'eventually')});
wait_for(q{SELECT attempts >= 1 FROM msgq.topic_delivery}, 'the first attempt failed');
my $pid = sql(q{SELECT pid FROM msgq.workers WHERE database = 'postgres'});
sql(qq{SELECT pg_terminate_backend($pid)});
wait_for(qq{SELECT pid IS NOT NULL AND pid <> $pid FROM msgq.workers WHERE database = 'postgres'},
	'the worker was restarted');
my $attempts = sql(q{SELECT attempts FROM msgq.topic_delivery});
cmp_ok($attempts, '>=', 1, 'the attempts so far are kept');
$node->stop('immediate');
$node->start;
ok(sql(q{SELECT attempts FROM msgq.topic_delivery}) >= $attempts,
	'and still after a crash');
sql(q{UPDATE switch SET fail = false});
wait_for($none_pending, 'then it was delivered');
is(sql(q{SELECT count(*) FROM seen WHERE message = 'eventually'}), '1',
	'exactly once: the function effects and the end of the delivery commit together');

# 5. a publish committed just before a crash is delivered after it
sql(q{UPDATE switch SET fail = true});
$node->stop('fast');
$node->start;
sql(q{ALTER SYSTEM SET msgq.worker_enabled = off; SELECT pg_reload_conf()});
wait_for(q{SELECT state = 'disabled' FROM msgq.workers WHERE database = 'postgres'},
	'the worker is disabled');
sql(q{UPDATE switch SET fail = false});
sql(q{SELECT msgq.publish('t', 'across a crash')});
$node->stop('immediate');
$node->start;
is(sql(q{SELECT (SELECT count(*) FROM msgq.topic_delivery) + (SELECT count(*) FROM msgq.topic_outbox)}), '1',
	'the pending delivery survived the crash');
sql(q{ALTER SYSTEM RESET msgq.worker_enabled; SELECT pg_reload_conf()});
wait_for(q{SELECT count(*) = 1 FROM seen WHERE message = 'across a crash'},
	'and was delivered once the worker ran');

$node->stop;
done_testing();
