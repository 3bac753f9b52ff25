
# Copyright (c) msgq contributors
#
# The fast paths of stream reads stay in use (src/stream.c, doc/streams.md
# "The read path"): get_records and subscribe_to_shard build their rows
# and sequence numbers themselves, and fall back to PostgreSQL's own
# heap_form_minimal_tuple() and int64_to_numeric() only if a row or a
# number ever differs from theirs, saying so once in the server log.  A
# fallback returns the same rows, so only the log can tell; this test
# reads rows of every layout (keys and data on each side of the
# short-header limit, a closed shard's last answer with child shards, a
# shard read past its end with no next iterator) and checks that the log
# has neither line, and that every value came back as put.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('stream_read_paths');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', <<'EOF2');
shared_preload_libraries = 'msgq'
max_worker_processes = 16
EOF2
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql('CREATE EXTENSION msgq');
sql(q{SELECT msgq.create_stream('paths', 1)});
sql(q{SELECT msgq.register_stream_consumer('paths', 'reader')});
sql(q{SELECT count(*) FROM msgq.subscribe_to_shard('paths', 'reader', '0', 'TRIM_HORIZON',
		wait_time_seconds => 0)});

# 6 key lengths x 8 data lengths, and sequence numbers of 1 to 5 base-10000
# digits (the sequence is moved between puts)
sql(q{CREATE TABLE shapes AS
	SELECT k.n AS klen, d.n AS dlen, repeat(chr(97 + k.n % 26), k.n) AS key,
		   decode(repeat(lpad(to_hex(d.n % 256), 2, '0'), d.n), 'hex') AS data
	  FROM unnest(ARRAY[1, 125, 126, 127, 200, 256]) k(n),
		   unnest(ARRAY[0, 1, 120, 126, 127, 128, 300, 5000]) d(n)});
for my $start (1, 10000, 99990000, 123456789012, 1000000000000000000)
{
	sql(qq{SELECT setval('msgq.stream_seq', $start) > 0});
	sql(q{SELECT count(*) FROM msgq.put_records('paths',
		ARRAY(SELECT key FROM shapes ORDER BY klen, dlen),
		ARRAY(SELECT data FROM shapes ORDER BY klen, dlen))});
}

is( sql(q{SELECT count(*) || ' ' || count(s.key) || ' ' || count(DISTINCT g.next_shard_iterator)
		  FROM msgq.get_records(msgq.get_shard_iterator('paths', '0', 'TRIM_HORIZON')) g
		  LEFT JOIN shapes s ON s.key = g.partition_key AND s.data = g.data}),
	'240 240 1',
	'get_records: 240 rows of every layout, each as put, one next iterator');
is( sql(q{SELECT count(*) || ' ' || count(s.key) || ' ' || count(DISTINCT g.continuation_sequence_number)
		  FROM msgq.subscribe_to_shard('paths', 'reader', '0', wait_time_seconds => 0) g
		  LEFT JOIN shapes s ON s.key = g.partition_key AND s.data = g.data}),
	'240 240 1',
	'subscribe_to_shard: the same 240 rows, one continuation number');
is( sql(q{SELECT bool_and(g.sequence_number::text = g.sequence_number::bigint::text
				   AND numeric_send(g.sequence_number) = numeric_send(g.sequence_number::bigint::numeric))
		  FROM msgq.get_records(msgq.get_shard_iterator('paths', '0', 'TRIM_HORIZON')) g}),
	't',
	'sequence numbers of 1 to 5 base-10000 digits are numeric.c\'s');

# a closed shard: its last answer carries child shards and no next iterator
sql(q{SELECT msgq.split_shard('paths', 'shardId-000000000000',
		'170141183460469231731687303715884105728')});
is( sql(q{SELECT count(*) || ' ' || count(child_shards) || ' ' || count(next_shard_iterator)
		  FROM msgq.get_records(msgq.get_shard_iterator('paths', '0', 'TRIM_HORIZON'))}),
	'240 240 0',
	'a closed shard read to its end: every row has the child shards and no next iterator');

my $log = slurp_file($node->logfile);
unlike($log, qr/stream rows are formed by heap_form_minimal_tuple/,
	'rows were built by msgq, never handed to heap_form_minimal_tuple()');
unlike($log, qr/sequence numbers are converted to numeric by numeric\.c/,
	'sequence numbers were built by msgq, never by numeric.c');

$node->stop;
done_testing();
