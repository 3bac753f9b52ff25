-- Workload "cycle10", baseline: the SKIP LOCKED queue taking ten messages at
-- a time (LIMIT 10), then deleting them with DELETE ... WHERE id = ANY($1).
WITH c AS (SELECT id FROM q WHERE vt <= now() ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED), u AS (UPDATE q SET vt = now() + interval '30 seconds', read_ct = read_ct + 1 FROM c WHERE q.id = c.id RETURNING q.id, q.payload) SELECT array_agg(id) AS ids, count(payload) AS n FROM u \gset
DELETE FROM q WHERE id = ANY (:ids::bigint[]);
