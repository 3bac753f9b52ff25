-- Workload "wal", msgq side, first half: send one message to the queue that
-- cycle_msgq.sql consumes.
SELECT msgq.send_message('bench2', :payload);
