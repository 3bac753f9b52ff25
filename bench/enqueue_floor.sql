-- Workload "wal", floor, first half: the payload alone, one row per
-- transaction, into a one-column table with no index (wal_floor).  No queue
-- that stores the body in a heap table and commits each call can write less.
INSERT INTO wal_floor VALUES (:payload);
