-- Workload "send", msgq side: one message per transaction.
-- :payload is bound as a parameter under -M prepared (pgbench -D payload=...).
SELECT msgq.send_message('bench', :payload);
