-- Workload "send10", baseline: one 10-row INSERT per transaction into
-- t (id bigserial primary key, payload jsonb).
INSERT INTO t (payload) VALUES (:payload), (:payload), (:payload), (:payload), (:payload), (:payload), (:payload), (:payload), (:payload), (:payload);
