-- 0001 (PostgreSQL): the foundation, as migrations/sqlite/0001_foundation.sql of monespace.
-- Types: TEXT COLLATE "C" (byte order, as SQLite compares), BYTEA for BLOB, BIGINT for
-- INTEGER (SQLite integers are 64-bit).
-- Persons, wrapped data keys, encrypted blobs, the audit trail, the outbox.
-- Timestamps are fixed-width UTC ISO 8601 text ("2026-11-25T17:33:03.000000Z"): sortable,
-- readable, and the same in every SQL dialect monespace supports.
-- Every table that belongs to a patient carries patient_id, so it can be partitioned by patient.

CREATE TABLE patients (
    id              TEXT COLLATE "C" PRIMARY KEY,
    nir_index       BYTEA NOT NULL UNIQUE,   -- keyed hash of the NIR: lookup without the NIR
    sealed_identity BYTEA NOT NULL,          -- AES-256-GCM under the patient's data key
    created_at      TEXT COLLATE "C" NOT NULL
);

-- One wrapped data key per owner (a patient id, or "space:<purpose>" for space-wide keys).
-- A destroyed key keeps its row, with wrapped and master_key_id NULL: crypto-shredding.
CREATE TABLE data_keys (
    patient_id    TEXT COLLATE "C" PRIMARY KEY,
    master_key_id TEXT COLLATE "C",
    wrapped       BYTEA,
    created_at    TEXT COLLATE "C" NOT NULL,
    destroyed_at  TEXT COLLATE "C",
    CHECK ((wrapped IS NULL) = (master_key_id IS NULL))
);
CREATE INDEX data_keys_by_master_key ON data_keys (master_key_id);

CREATE TABLE blobs (
    id         TEXT COLLATE "C" PRIMARY KEY,
    patient_id TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    kind       TEXT COLLATE "C" NOT NULL,
    media_type TEXT COLLATE "C" NOT NULL,
    size       BIGINT NOT NULL CHECK (size >= 0),
    sha256     BYTEA NOT NULL,
    sealed     BYTEA NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX blobs_by_patient ON blobs (patient_id, created_at, id);

CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    at          TEXT COLLATE "C" NOT NULL,
    actor_kind  TEXT COLLATE "C" NOT NULL,
    actor_id    TEXT COLLATE "C" NOT NULL,
    action      TEXT COLLATE "C" NOT NULL,
    outcome     TEXT COLLATE "C" NOT NULL,
    patient_id  TEXT COLLATE "C",
    target_kind TEXT COLLATE "C",
    target_id   TEXT COLLATE "C",
    mode        TEXT COLLATE "C" NOT NULL,
    purpose     TEXT COLLATE "C",
    rule        TEXT COLLATE "C",
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL
);
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, seq);

-- The trail is append-only for the application. The triggers stop a bug, not an attacker
-- with write access to the database: that is what the hash chain and checkpoints are for.
CREATE FUNCTION monespace_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% are append-only', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION monespace_append_only('audit events');
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION monespace_append_only('audit events');

CREATE TABLE outbox (
    id              TEXT COLLATE "C" PRIMARY KEY,
    patient_id      TEXT COLLATE "C",
    channel         TEXT COLLATE "C" NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL,
    sealed          BYTEA,                   -- recipient, subject, body; erased once delivered
    created_at      TEXT COLLATE "C" NOT NULL,
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    idempotency_key TEXT COLLATE "C" NOT NULL UNIQUE,
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT COLLATE "C",
    sent_at         TEXT COLLATE "C"
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
