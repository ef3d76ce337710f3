-- 0015: the sharded audit trail (decision 0015). One keyed chain per shard: shard '0' holds
-- the events without a patient and every event written before this migration (the existing
-- trail goes on as that chain, untouched: its hashes stay valid); shards '1'..'4' hold the
-- events of the patients whose stable hash falls there, each with its own sequence numbers,
-- head and seal, so writers for different patients never wait on one chain head.
-- On SQLite the writers are serialised anyway: four shards keep the model the same as on
-- PostgreSQL and let verification read them in parallel.

CREATE TABLE audit_events_sharded (
    shard       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    patient_id  TEXT,
    target_kind TEXT,
    target_id   TEXT,
    mode        TEXT NOT NULL,
    purpose     TEXT,
    rule        TEXT,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL,
    key_id      TEXT,
    chain       INTEGER NOT NULL DEFAULT 1 CHECK (chain IN (1, 2)),
    PRIMARY KEY (shard, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO audit_events_sharded (shard, seq, at, actor_kind, actor_id, action, outcome,
        patient_id, target_kind, target_id, mode, purpose, rule, prev_hash, hash, key_id, chain)
    SELECT shard, seq, at, actor_kind, actor_id, action, outcome, patient_id, target_kind,
           target_id, mode, purpose, rule, prev_hash, hash, key_id, chain
    FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_sharded RENAME TO audit_events;
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, shard, seq);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

