-- Workload "send10", msgq side: ten messages per transaction with
-- msgq.send_message_batch.  :entries is a JSON array of ten entries
-- {"Id": "0".."9", "MessageBody": <payload>} (pgbench -D entries=...).
SELECT count(*) FROM msgq.send_message_batch('bench', :entries);
