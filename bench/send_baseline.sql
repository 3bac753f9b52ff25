-- Workload "send", baseline: one row per transaction into
-- t (id bigserial primary key, payload jsonb).
INSERT INTO t (payload) VALUES (:payload);
