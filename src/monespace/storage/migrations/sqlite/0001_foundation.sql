-- 0001: the foundation. Persons, wrapped data keys, encrypted blobs, the audit trail, the outbox.
-- Timestamps are fixed-width UTC ISO 8601 text ("2026-11-25T17:33:03.000000Z"): sortable,
-- readable, and the same in every SQL dialect monespace supports.
-- Every table that belongs to a patient carries patient_id, so it can be partitioned by patient.

CREATE TABLE patients (
    id              TEXT PRIMARY KEY,
    nir_index       BLOB NOT NULL UNIQUE,   -- keyed hash of the NIR: lookup without the NIR
    sealed_identity BLOB NOT NULL,          -- AES-256-GCM under the patient's data key
    created_at      TEXT NOT NULL
) STRICT;

-- One wrapped data key per owner (a patient id, or "space:<purpose>" for space-wide keys).
-- A destroyed key keeps its row, with wrapped and master_key_id NULL: crypto-shredding.
CREATE TABLE data_keys (
    patient_id    TEXT PRIMARY KEY,
    master_key_id TEXT,
    wrapped       BLOB,
    created_at    TEXT NOT NULL,
    destroyed_at  TEXT,
    CHECK ((wrapped IS NULL) = (master_key_id IS NULL))
) STRICT;
CREATE INDEX data_keys_by_master_key ON data_keys (master_key_id);

CREATE TABLE blobs (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    kind       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     BLOB NOT NULL,
    sealed     BLOB NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX blobs_by_patient ON blobs (patient_id, created_at, id);

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,
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
    hash        BLOB NOT NULL
) STRICT;
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, seq);

-- The trail is append-only for the application. The triggers stop a bug, not an attacker
-- with write access to the file: that is what the hash chain and checkpoints are for.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    patient_id      TEXT,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    sealed          BLOB,                   -- recipient, subject, body; erased once delivered
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
