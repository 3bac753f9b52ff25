/*-------------------------------------------------------------------------
 *
 * msgq.c
 *	  Module entry point: settings, shared-memory hooks and the launcher.
 *
 * msgq must be loaded through shared_preload_libraries: it needs shared
 * memory for long-poll wake-ups and receive bookkeeping, and a launcher
 * background worker that starts one maintenance worker per database.
 * Loaded any other way (LOAD, or a backend resolving a function) it only
 * defines its settings and every entry point refuses to run.
 *
 * IDENTIFICATION
 *	  src/msgq.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "msgq.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * msgq.clock_frozen turned on: the clock stops at the real time of that
 * moment.  Restoring the same value (a transaction's end, a reload) keeps
 * the time it stopped at.
 */
static void
clock_frozen_assign(bool newval, void *extra)
{
	if (newval && !msgq_clock_frozen)
		msgq_clock_frozen_at = GetCurrentTimestamp();
}

/* Settings */
int			msgq_clock_offset_ms = 0;
bool		msgq_clock_frozen = false;
TimestampTz msgq_clock_frozen_at = 0;
int			msgq_wait_buckets = 1024;
int			msgq_max_aborted_receives = 65536;
int			msgq_wait_recheck_interval_ms = 5000;
int			msgq_outbox_fixup_after_ms = 1000;
int			msgq_max_receive_bytes = 16 * 1024 * 1024;
bool		msgq_loaded_via_preload = false;

/*
 * _PG_init
 *
 * Define the settings, reserve the "msgq." prefix, install the shared
 * memory hooks and register the launcher.  Under binary upgrade nothing is
 * registered: pg_upgrade's temporary servers must not run msgq's workers.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("msgq.clock_offset",
							"Offset added to msgq's clock, for tests of time rules.",
							"Every msgq time rule (visibility, delay, retention) "
							"reads clock_timestamp() plus this offset.",
							&msgq_clock_offset_ms,
							0, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("msgq.clock_frozen",
							 "Stops msgq's clock in this session, for tests of time rules.",
							 "While on, msgq's clock is the time at which it was turned on "
							 "plus msgq.clock_offset, however long statements take. "
							 "Long polls are refused while it is on.",
							 &msgq_clock_frozen,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, clock_frozen_assign, NULL);

	DefineCustomIntVariable("msgq.wait_recheck_interval",
							"Longest sleep of a long-polling receive between two checks.",
							"Wake-ups are event driven; this bounds the damage of a lost one.",
							&msgq_wait_recheck_interval_ms,
							5000, 10, 20000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("msgq.segment_rotation_interval",
							"How long sends write to one storage segment before the next.",
							"The maintenance cycle then seals the segment and truncates it "
							"once its last messages are gone or moved, which gives its space "
							"back even while old snapshots are held.",
							&msgq_segment_rotation_interval_ms,
							10000, 1000, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("msgq.segment_lock_timeout",
							"Longest wait of the maintenance cycle for the lock it needs to truncate a storage segment.",
							"While it waits, other sessions' statements on messages queue behind "
							"it; on timeout the segment is tried again next cycle.  0: only "
							"take the lock when it is free at once.",
							&msgq_segment_lock_timeout_ms,
							50, 0, 10000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("msgq.outbox_fixup_after",
							"Transaction age after which sent messages count their delay and retention from commit.",
							"A message counts its delay and retention from when it can first "
							"be seen.  When the sending transaction commits more than this "
							"long after its first send, its messages' send times are moved "
							"to the commit.",
							&msgq_outbox_fixup_after_ms,
							1000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("msgq.max_receive_bytes",
							"Most bytes of message bodies one receive_message call returns.",
							"A receive stops adding messages once their bodies reach this "
							"size; it always returns at least one message.",
							&msgq_max_receive_bytes,
							16 * 1024 * 1024, 1024, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("msgq.wait_buckets",
								"Number of condition variables long-polling receives wait on.",
								"Queues hash into buckets; a wake-up wakes every waiter of its bucket.",
								&msgq_wait_buckets,
								1024, 16, 65536,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

		DefineCustomIntVariable("msgq.max_aborted_receives",
								"Number of rolled-back receives whose receive count is kept in shared memory.",
								"A receive whose transaction rolls back still counts toward "
								"maxReceiveCount; when this table is full the count of the "
								"oldest pending entry is written off and a warning is logged.",
								&msgq_max_aborted_receives,
								65536, 64, 16 * 1024 * 1024,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

		DefineCustomIntVariable("msgq.max_leases",
								"Number of receive leases kept in shared memory.",
								"About 100 bytes each.  A receive that finds the table full "
								"takes the durable path: it writes the lease into the message's row.",
								&msgq_max_leases,
								65536, 16, 16 * 1024 * 1024,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

		DefineCustomIntVariable("msgq.max_stream_shard_metrics",
								"Number of stream shards whose counters and limits are kept in shared memory.",
								"About 150 bytes each.  A shard beyond it is neither counted in "
								"msgq.stream_metrics nor held to its stream's shard limits.",
								&msgq_max_stream_shard_metrics,
								4096, 16, 1024 * 1024,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

		DefineCustomIntVariable("msgq.max_queue_metrics",
								"Number of queues whose metrics are kept in shared memory.",
								"About 13 kB each.  Beyond it, msgq.queue_metrics shows NULL "
								"gauges for the database until a maintenance cycle finds room.",
								&msgq_max_queue_metrics,
								1024, 16, 1024 * 1024,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

		DefineCustomIntVariable("msgq.max_topic_metrics",
								"Number of topics and subscriptions whose counters are kept in shared memory.",
								"About 100 bytes each.  Beyond it, new topics and subscriptions "
								"are not counted in msgq.topic_metrics and msgq.subscription_metrics.",
								&msgq_max_topic_metrics,
								4096, 16, 1024 * 1024,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
	}

	DefineCustomIntVariable("msgq.max_inflight_messages",
							"Most messages of one queue in flight at once (received, not yet deleted or visible again).",
							"A receive beyond it fails with OverLimit, as in SQS (about 120,000).",
							&msgq_max_inflight_messages,
							120000, 1, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	msgq_bgw_define_gucs();
	msgq_delivery_define_gucs();
	msgq_firehose_define_gucs();
	msgq_endpoint_define_gucs();
	msgq_records_scan_define_gucs();

	MarkGUCPrefixReserved("msgq");

	/* a planner hook: works (and fails, as the function) without preloading */
	msgq_records_scan_install_hooks();

	if (!process_shared_preload_libraries_in_progress)
		return;

	msgq_loaded_via_preload = true;

	msgq_shmem_install_hooks();

	if (IsBinaryUpgrade)
		return;

	msgq_bgw_register_launcher();
	msgq_endpoint_register();
	msgq_bgw_install_hooks();
	msgq_acl_install_hooks();
}
