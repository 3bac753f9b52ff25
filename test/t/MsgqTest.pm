
# Copyright (c) msgq contributors
#
# Helpers shared by msgq's TAP tests.

package MsgqTest;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(crash_backend endpoint_node $none_pending);

# A query true when no topic delivery is left: no outbox row (a publish's,
# not expanded by the worker yet) and no delivery row.
our $none_pending =
  q{SELECT (SELECT count(*) FROM msgq.topic_delivery) + (SELECT count(*) FROM msgq.topic_outbox) = 0};

# Kill the backend of a background_psql session with SIGKILL and wait until
# the server accepts queries again after its crash cycle (the node needs
# restart_after_crash = on).
sub crash_backend
{
	my ($node, $session) = @_;
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	my $offset = -s $node->logfile;

	kill 'KILL', $pid;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	eval { $session->{run}->kill_kill; };
	$node->poll_query_until('postgres', 'SELECT 1', '1')
	  or die 'the server did not come back after the crash';
	return;
}

# A started node with msgq preloaded and the AWS endpoint on a free port,
# with more postgresql.conf lines; returns the node and the port.
sub endpoint_node
{
	my ($name, $conf) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'msgq'\nmax_worker_processes = 16\nmsgq.endpoint_port = $port\n"
		  . ($conf // ''));
	$node->start;
	return ($node, $port);
}

1;
