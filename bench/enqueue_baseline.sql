-- Workload "wal", baseline, first half: enqueue one message into the
-- hand-written SKIP LOCKED queue that cycle_baseline.sql consumes.
INSERT INTO q (payload) VALUES (:payload);
