-- Workload "wal", floor, second half: delete one row per transaction from
-- wal_floor, oldest block first (no index: the scan is by block).
DELETE FROM wal_floor WHERE ctid = (SELECT ctid FROM wal_floor LIMIT 1);
