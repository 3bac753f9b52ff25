
# Copyright (c) msgq contributors
#
# Helpers shared by msgq's TAP tests.

package MsgqTest;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(crash_backend $none_pending);

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

1;
