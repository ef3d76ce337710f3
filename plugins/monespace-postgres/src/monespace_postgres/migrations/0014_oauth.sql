-- 0014: OAuth 2 authorization codes and tokens of referenced apps. Only a keyed hash of
-- each secret is stored. Their keys start with patient_id (they are the patient's data, and
-- a large deployment partitions them with the rest); the lookups by hash have their own
-- index. Expired rows are purged by the space's tick.

CREATE TABLE oauth_codes (
    patient_id    TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    code_hash     BYTEA NOT NULL,
    family_id     TEXT COLLATE "C" NOT NULL,
    client_id     TEXT COLLATE "C" NOT NULL,
    redirect_uri  TEXT COLLATE "C" NOT NULL,
    challenge     TEXT COLLATE "C" NOT NULL,
    scopes        TEXT COLLATE "C" NOT NULL,
    issued_at     TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL,
    used_at       TEXT COLLATE "C",
    PRIMARY KEY (patient_id, code_hash)
);
CREATE INDEX oauth_codes_by_hash ON oauth_codes (code_hash);
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_tokens (
    patient_id    TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    token_hash    BYTEA NOT NULL,
    kind          TEXT COLLATE "C" NOT NULL,
    client_id     TEXT COLLATE "C" NOT NULL,
    family_id     TEXT COLLATE "C" NOT NULL,
    scopes        TEXT COLLATE "C" NOT NULL,
    issued_at     TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL,
    rotated_at    TEXT COLLATE "C",
    revoked_at    TEXT COLLATE "C",
    PRIMARY KEY (patient_id, token_hash)
);
CREATE INDEX oauth_tokens_by_hash ON oauth_tokens (token_hash);
CREATE INDEX oauth_tokens_by_family ON oauth_tokens (patient_id, family_id);
CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at);
