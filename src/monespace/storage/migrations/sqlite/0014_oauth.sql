-- 0014: OAuth 2 authorization codes and tokens of referenced apps. Only a keyed hash of
-- each secret is stored. Their keys start with patient_id (they are the patient's data, and
-- a large deployment partitions them with the rest); the lookups by hash have their own
-- index. Expired rows are purged by the space's tick.

CREATE TABLE oauth_codes (
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    code_hash     BLOB NOT NULL,
    family_id     TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    challenge     TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    issued_at     TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    PRIMARY KEY (patient_id, code_hash)
) STRICT;
CREATE INDEX oauth_codes_by_hash ON oauth_codes (code_hash);
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_tokens (
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    token_hash    BLOB NOT NULL,
    kind          TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    family_id     TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    issued_at     TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    rotated_at    TEXT,
    revoked_at    TEXT,
    PRIMARY KEY (patient_id, token_hash)
) STRICT;
CREATE INDEX oauth_tokens_by_hash ON oauth_tokens (token_hash);
CREATE INDEX oauth_tokens_by_family ON oauth_tokens (patient_id, family_id);
CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at);
