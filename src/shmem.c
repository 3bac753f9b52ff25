/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory of msgq: one request hook sums the sizes of the parts,
 *	  one startup hook initializes them.
 *
 * The parts are the long-poll wake-up buckets and the rolled-back receive
 * table (wait.c), and the launcher's per-database worker slots
 * (launcher.c), the per-queue metrics (metrics.c), the stream writer
 * slots (stream.c), the per-shard stream counters (stream_metrics.c),
 * the receive leases (lease.c), the queues' heads (head.c) and the
 * event source mappings' wake-up table (esm.c).
 * Each part documents its own locking.
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "msgq.h"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
shm_request(void)
{
	Size		size = 0;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	msgq_wait_shmem_size(&size);
	size = add_size(size, msgq_bgw_shmem_size());
	msgq_metrics_shmem_size(&size);
	msgq_stream_shmem_size(&size);
	msgq_stream_metrics_shmem_size(&size);
	msgq_lease_shmem_size(&size);
	msgq_fifo_shmem_size(&size);
	msgq_topic_metrics_shmem_size(&size);
	msgq_head_shmem_size(&size);
	msgq_esm_shmem_size(&size);
	msgq_firehose_shmem_size(&size);
	msgq_endpoint_shmem_size(&size);
	RequestAddinShmemSpace(size);
	RequestNamedLWLockTranche("msgq", 4);
	RequestNamedLWLockTranche("msgq_lease", 16);
	RequestNamedLWLockTranche("msgq_fifo", 1);
	RequestNamedLWLockTranche("msgq_topic", 1);
}

static void
shm_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	msgq_wait_shmem_init();
	msgq_bgw_shmem_init();
	msgq_metrics_shmem_init();
	msgq_stream_shmem_init();
	msgq_stream_metrics_shmem_init();
	msgq_lease_shmem_init();
	msgq_fifo_shmem_init();
	msgq_topic_metrics_shmem_init();
	msgq_head_shmem_init();
	msgq_esm_shmem_init();
	msgq_firehose_shmem_init();
	msgq_endpoint_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

void
msgq_shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shm_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shm_startup;
}
