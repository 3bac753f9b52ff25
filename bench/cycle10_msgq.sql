-- Workload "cycle10", msgq side: receive up to ten messages, then delete them
-- with one msgq.delete_message_batch (two transactions, as in the baseline).
-- The queue is pre-filled so that every receive gets ten messages.
SELECT jsonb_agg(jsonb_build_object('Id', n::text, 'ReceiptHandle', h)) AS hs FROM (SELECT row_number() OVER () AS n, receipt_handle AS h FROM msgq.receive_message('bench2', max_number_of_messages => 10)) r \gset
SELECT count(*) FROM msgq.delete_message_batch('bench2', :hs);
