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
    token_hash  BYTEA PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('patient', 'professional')),
    person_id   TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    last_seen   TEXT COLLATE "C" NOT NULL,
    ends_at     TEXT COLLATE "C" NOT NULL,
    csrf_token  TEXT COLLATE "C" NOT NULL,
    emergencies TEXT COLLATE "C" NOT NULL DEFAULT '{}'
);
CREATE INDEX web_sessions_by_person ON web_sessions (kind, person_id);
CREATE INDEX web_sessions_by_end ON web_sessions (ends_at);

CREATE TABLE rate_limits (
    bucket       TEXT COLLATE "C" NOT NULL,
    key_hash     BYTEA NOT NULL,
    window_start TEXT COLLATE "C" NOT NULL,
    hits         BIGINT NOT NULL CHECK (hits >= 0),
    PRIMARY KEY (bucket, key_hash, window_start)
);
CREATE INDEX rate_limits_by_window ON rate_limits (window_start);

ALTER TABLE outbox ADD COLUMN claimed_by TEXT COLLATE "C";
ALTER TABLE outbox ADD COLUMN lease_until TEXT COLLATE "C";

-- The slice of a patient among n (monespace.storage.slice_of): the first 8 bytes of the
-- SHA-256 of the id, unsigned big-endian, modulo n. SQLite registers the same function on
-- each connection.
CREATE FUNCTION monespace_slice(patient_id TEXT, slices INTEGER) RETURNS INTEGER
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT mod(h::numeric + CASE WHEN h < 0 THEN 18446744073709551616 ELSE 0 END, slices)::integer
    FROM (
        SELECT ('x' || encode(substr(sha256(convert_to(patient_id, 'UTF8')), 1, 8), 'hex'))
            ::bit(64)::bigint AS h
    ) AS digest
$$;
