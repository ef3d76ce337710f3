-- 0002: the lifecycle of spaces, provisional codes, proofs of identity, representatives.

CREATE TABLE accounts (
    patient_id            TEXT COLLATE "C" PRIMARY KEY REFERENCES patients (id),
    state                 TEXT COLLATE "C" NOT NULL,
    channel               TEXT COLLATE "C",
    invited_at            TEXT COLLATE "C",
    opened_at             TEXT COLLATE "C",
    activated_at          TEXT COLLATE "C",
    opposed_at            TEXT COLLATE "C",
    closed_at             TEXT COLLATE "C",
    archive_until         TEXT COLLATE "C",
    deletion_requested_at TEXT COLLATE "C",
    purge_deadline        TEXT COLLATE "C",
    purged_at             TEXT COLLATE "C",
    suspended_at          TEXT COLLATE "C",
    suspension_deadline   TEXT COLLATE "C",
    resume_state          TEXT COLLATE "C",
    died_on               TEXT COLLATE "C",
    deadline_at           TEXT COLLATE "C"    -- derived: when the deadline run must next look at the account
);
CREATE INDEX accounts_by_deadline ON accounts (deadline_at) WHERE deadline_at IS NOT NULL;
CREATE INDEX accounts_by_state ON accounts (state, patient_id);

-- One live code per person: issuing a new one replaces (and so invalidates) the old one.
CREATE TABLE provisional_codes (
    patient_id TEXT COLLATE "C" PRIMARY KEY REFERENCES patients (id),
    code_hash  BYTEA NOT NULL,   -- HMAC-SHA256 under a space key; never the code
    issued_at  TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    used_at    TEXT COLLATE "C",
    revoked_at TEXT COLLATE "C"
);

CREATE TABLE identity_proofs (
    patient_id     TEXT COLLATE "C" PRIMARY KEY REFERENCES patients (id),
    vitale_index   BYTEA NOT NULL,
    birth_index    BYTEA NOT NULL,
    failures       BIGINT NOT NULL DEFAULT 0,
    failures_since TEXT COLLATE "C"
);

CREATE TABLE representations (
    patient_id        TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    representative_id TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    kind              TEXT COLLATE "C" NOT NULL,
    since             TEXT COLLATE "C" NOT NULL,
    ends_at           TEXT COLLATE "C",
    ended_at          TEXT COLLATE "C",
    end_reason        TEXT COLLATE "C",
    PRIMARY KEY (patient_id, representative_id)
);
CREATE INDEX representations_by_representative ON representations (representative_id);
CREATE INDEX representations_ending ON representations (ends_at)
    WHERE ended_at IS NULL AND ends_at IS NOT NULL;
