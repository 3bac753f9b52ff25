# msgq: SQS-, SNS- and Kinesis-style messaging inside PostgreSQL (PGXS build)

EXTENSION = msgq
MODULE_big = msgq
OBJS = \
	$(WIN32RES) \
	src/msgq.o \
	src/shmem.o \
	src/utils.o \
	src/acl.o \
	src/batch.o \
	src/attributes.o \
	src/handle.o \
	src/queue.o \
	src/lease.o \
	src/head.o \
	src/fifo.o \
	src/filter.o \
	src/topic.o \
	src/queue_admin.o \
	src/wait.o \
	src/maintenance.o \
	src/segment.o \
	src/msgstore.o \
	src/metrics.o \
	src/stream.o \
	src/records_scan.o \
	src/consumer.o \
	src/esm.o \
	src/firehose.o \
	src/analytics.o \
	src/endpoint.o \
	src/slice.o \
	src/stream_metrics.o \
	src/move_task.o \
	src/launcher.o \
	src/worker.o \
	src/delivery.o \
	src/http.o \
	src/h2.o \
	src/access_key.o \
	src/topic_metrics.o \
	src/filter_fuzz.o

DATA = $(wildcard msgq--*.sql)
PGFILEDESC = "msgq - queues, topics and streams"
PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK = -lcurl -lz -lnghttp2

REGRESS = queue receive privileges guc queue_admin batch outbox_large move_task segments metrics streams stream_metrics stream_slices send_store queue_head fifo filter filter_fuzz topics topic_delivery stream_rows consumer_groups event_source_mappings event_source_streams delivery_streams stream_queries records_scan
REGRESS_OPTS = --temp-config=$(srcdir)/msgq.conf --temp-instance=./tmp_check_regress

ISOLATION = receive-skip-locked send-uncommitted receive-rollback receive-lease dlq-move purge-concurrent batch-partial segment-drain stream-horizon stream-checkpoint stream-reshard stream-slices fifo-order fifo-groups topic-fanout queue-head consumer-leases access-key-rotation
ISOLATION_OPTS = --inputdir=$(srcdir)/test --outputdir=output_iso \
	--temp-config=$(srcdir)/msgq.conf --temp-instance=./tmp_check_iso

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = tmp_check_regress tmp_check_iso output_iso results regression.diffs regression.out

# No LLVM bitcode: the servers here are built with LLVM but the project does
# not need JIT-inlinable bitcode, and clang is not a dependency.
with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: deps demo test bench bench-churn bench-streams bench-fifo bench-esm bench-firehose bench-endpoint pgtap valgrind coverage

deps:
	./scripts/deps.sh

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

# The regress tests and the AWS endpoint's TAP tests with every server
# process under Valgrind's memcheck; fails on an error in msgq's code
# (scripts/valgrind.sh; about an hour, not part of make test).
valgrind:
	./scripts/valgrind.sh

# The whole test suite on a gcov build; lines run per source file, and the
# annotated sources in test-results/coverage/ (scripts/coverage.sh).
coverage:
	./scripts/coverage.sh

bench:
	./scripts/bench.sh

# The 10-minute churn run (two runs: msgq, then the SKIP LOCKED queue).
bench-churn:
	./bench/churn.sh

# Streams: put_record(s) and get_records against plain SQL, subscribe_to_shard's
# wake-up latency against LISTEN/NOTIFY (bench/streams.sh).
bench-streams:
	./bench/streams.sh

# FIFO queues against standard queues: sends over 1 to 1000 groups, content-based
# deduplication, receive + delete, and receive cost with 100,000 groups vs 10
# (bench/fifo.sh).
bench-fifo:
	./bench/fifo.sh

# Event source mappings over a stream against a hand-written get_records +
# INSERT + checkpoint loop, and a put's commit to the function's start
# (bench/esm.sh).
bench-esm:
	./bench/esm.sh

# Records per second through a delivery stream into a table vs put_records
# plus a hand-written INSERT ... SELECT of the same records, and the delivery
# latency at IntervalInSeconds 0 (bench/firehose.sh).
bench-firehose:
	./bench/firehose.sh

# The same queue operations through the AWS SDK (msgq's AWS endpoint) and in
# SQL, one client each (bench/endpoint.sh).
bench-endpoint:
	./bench/endpoint.sh

# ---------------------------------------------------------------------------
# One target per test suite, used by scripts/test.sh (make test) so that every
# suite runs and is counted even when another one fails. `make installcheck`
# still runs regress, isolation and TAP in one go.
.PHONY: installcheck-regress installcheck-isolation installcheck-tap list-tests demo-stop

installcheck-regress: submake $(REGRESS_PREP)
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)

installcheck-isolation: submake $(REGRESS_PREP)
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)

# PROVE_TESTS=test/t/NNN_name.pl runs one file.
installcheck-tap:
	$(prove_installcheck)

# pgTAP, against the running server named by PGHOST, PGPORT and PGDATABASE
# (scripts/test.sh starts one); PGTAP_TESTS=test/pgtap/name.sql runs one file.
PGTAP_TESTS ?= $(sort $(wildcard $(srcdir)/test/pgtap/*.sql))
pgtap:
	pg_prove --ext .sql $(PGTAP_TESTS)

# The extension and the tests, for scripts/test.sh to count.
list-tests:
	@echo "extension $(EXTENSION)"
	@echo "regress $(REGRESS)"
	@echo "isolation $(ISOLATION)"
	@echo "tap $(PROVE_TESTS)"

demo-stop:
	./scripts/demo.sh stop
