-- Workload "cycle", baseline: the hand-written SKIP LOCKED queue of
-- /work/shared/BENCH.md on q (id bigserial primary key, vt timestamptz,
-- read_ct int, payload jsonb) with an index on vt.  Transaction 1 takes one
-- message and hides it for 30 s; transaction 2 deletes it.
WITH c AS (SELECT id FROM q WHERE vt <= now() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE q SET vt = now() + interval '30 seconds', read_ct = read_ct + 1 FROM c WHERE q.id = c.id RETURNING q.id AS qid, q.payload AS qpayload \gset
DELETE FROM q WHERE id = :qid;
