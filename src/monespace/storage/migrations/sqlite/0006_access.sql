-- 0006: professionals (the directory), the patient's grants, blocks and settings, emergency
-- sessions, and which professionals already read a record (for first-access notices).

CREATE TABLE professionals (
    rpps          TEXT PRIMARY KEY,
    profession    TEXT NOT NULL,
    name          TEXT NOT NULL,
    specialty     TEXT,
    mssante       TEXT,
    finess        TEXT,
    establishment TEXT,
    assurance     TEXT NOT NULL
) STRICT;

CREATE TABLE access_grants (
    patient_id      TEXT NOT NULL REFERENCES patients (id),
    professional_id TEXT NOT NULL REFERENCES professionals (rpps),
    kind            TEXT NOT NULL,
    since           TEXT NOT NULL,
    until           TEXT,
    ended_at        TEXT,
    granted_by      TEXT,
    PRIMARY KEY (patient_id, professional_id, kind)
) STRICT;
CREATE INDEX access_grants_by_professional ON access_grants (professional_id);

CREATE TABLE access_blocks (
    patient_id      TEXT NOT NULL REFERENCES patients (id),
    professional_id TEXT NOT NULL,
    since           TEXT NOT NULL,
    PRIMARY KEY (patient_id, professional_id)
) STRICT;

CREATE TABLE access_settings (
    patient_id          TEXT PRIMARY KEY REFERENCES patients (id),
    object_all          INTEGER NOT NULL DEFAULT 0,
    object_emergency    INTEGER NOT NULL DEFAULT 0,
    mask_all            INTEGER NOT NULL DEFAULT 0,
    notify_first_access INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE TABLE emergency_sessions (
    id              TEXT PRIMARY KEY,
    patient_id      TEXT NOT NULL REFERENCES patients (id),
    professional_id TEXT NOT NULL,
    mode            TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    justification   BLOB NOT NULL   -- sealed with the patient's key
) STRICT;
CREATE INDEX emergency_sessions_by_pair ON emergency_sessions (patient_id, professional_id);

CREATE TABLE access_seen (
    patient_id      TEXT NOT NULL REFERENCES patients (id),
    professional_id TEXT NOT NULL,
    first_at        TEXT NOT NULL,
    PRIMARY KEY (patient_id, professional_id)
) STRICT;
