-- 0002: the lifecycle of spaces, provisional codes, proofs of identity, representatives.

CREATE TABLE accounts (
    patient_id            TEXT PRIMARY KEY REFERENCES patients (id),
    state                 TEXT NOT NULL,
    channel               TEXT,
    invited_at            TEXT,
    opened_at             TEXT,
    activated_at          TEXT,
    opposed_at            TEXT,
    closed_at             TEXT,
    archive_until         TEXT,
    deletion_requested_at TEXT,
    purge_deadline        TEXT,
    purged_at             TEXT,
    suspended_at          TEXT,
    suspension_deadline   TEXT,
    resume_state          TEXT,
    died_on               TEXT,
    deadline_at           TEXT    -- derived: when the deadline run must next look at the account
) STRICT;
CREATE INDEX accounts_by_deadline ON accounts (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX accounts_by_state ON accounts (state, patient_id);

-- One live code per person: issuing a new one replaces (and so invalidates) the old one.
CREATE TABLE provisional_codes (
    patient_id TEXT PRIMARY KEY REFERENCES patients (id),
    code_hash  BLOB NOT NULL,   -- HMAC-SHA256 under a space key; never the code
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used_at    TEXT,
    revoked_at TEXT
) STRICT;

CREATE TABLE identity_proofs (
    patient_id     TEXT PRIMARY KEY REFERENCES patients (id),
    vitale_index   BLOB NOT NULL,
    birth_index    BLOB NOT NULL,
    failures       INTEGER NOT NULL DEFAULT 0,
    failures_since TEXT
) STRICT;

CREATE TABLE representations (
    patient_id        TEXT NOT NULL REFERENCES patients (id),
    representative_id TEXT NOT NULL REFERENCES patients (id),
    kind              TEXT NOT NULL,
    since             TEXT NOT NULL,
    ends_at           TEXT,
    ended_at          TEXT,
    end_reason        TEXT,
    PRIMARY KEY (patient_id, representative_id)
) STRICT;
CREATE INDEX representations_by_representative ON representations (representative_id);
CREATE INDEX representations_ending ON representations (ends_at)
    WHERE ended_at IS NULL AND ends_at IS NOT NULL;
