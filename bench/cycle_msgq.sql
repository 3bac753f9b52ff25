-- Workload "cycle", msgq side: receive one message, then delete it with its
-- receipt handle (two transactions, as in the baseline).  The queue is
-- pre-filled so that a receive always finds a message (\gset fails on an
-- empty result and would abort the client).
SELECT receipt_handle AS h FROM msgq.receive_message('bench2') \gset
SELECT msgq.delete_message('bench2', :h);
