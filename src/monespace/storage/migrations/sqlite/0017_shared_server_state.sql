-- 0017: what several server processes and several dispatchers must share, in the database
-- rather than in one process's memory.
--
-- web_sessions: the demo server's logged-in sessions. Only the SHA-256 of a session token is
-- kept (a copy of the table yields no usable token). `emergencies` is a JSON object (patient
-- id -> [mode, end]) of the emergency accesses a professional declared in the session.
-- rate_limits: attempts per (bucket, keyed hash of the key, window start), incremented in
-- one upsert; the key (an IP address, a NIR) is hashed with a key of the space.
-- outbox.claimed_by / lease_until: the dispatcher that claimed a notification and until
-- when; a claim whose lease ended (its dispatcher crashed) is taken over by another.

CREATE TABLE web_sessions (
    token_hash  BLOB PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('patient', 'professional')),
    person_id   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    emergencies TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX web_sessions_by_person ON web_sessions (kind, person_id);
CREATE INDEX web_sessions_by_end ON web_sessions (ends_at);

CREATE TABLE rate_limits (
    bucket       TEXT NOT NULL,
    key_hash     BLOB NOT NULL,
    window_start TEXT NOT NULL,
    hits         INTEGER NOT NULL CHECK (hits >= 0),
    PRIMARY KEY (bucket, key_hash, window_start)
) STRICT;
CREATE INDEX rate_limits_by_window ON rate_limits (window_start);

ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
