-- 0006: professionals (the directory), the patient's grants, blocks and settings, emergency
-- sessions, and which professionals already read a record (for first-access notices).

CREATE TABLE professionals (
    rpps          TEXT COLLATE "C" PRIMARY KEY,
    profession    TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    specialty     TEXT COLLATE "C",
    mssante       TEXT COLLATE "C",
    finess        TEXT COLLATE "C",
    establishment TEXT COLLATE "C",
    assurance     TEXT COLLATE "C" NOT NULL
);

CREATE TABLE access_grants (
    patient_id      TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    professional_id TEXT COLLATE "C" NOT NULL REFERENCES professionals (rpps),
    kind            TEXT COLLATE "C" NOT NULL,
    since           TEXT COLLATE "C" NOT NULL,
    until           TEXT COLLATE "C",
    ended_at        TEXT COLLATE "C",
    granted_by      TEXT COLLATE "C",
    PRIMARY KEY (patient_id, professional_id, kind)
);
CREATE INDEX access_grants_by_professional ON access_grants (professional_id);

CREATE TABLE access_blocks (
    patient_id      TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    professional_id TEXT COLLATE "C" NOT NULL,
    since           TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (patient_id, professional_id)
);

CREATE TABLE access_settings (
    patient_id          TEXT COLLATE "C" PRIMARY KEY REFERENCES patients (id),
    object_all          BIGINT NOT NULL DEFAULT 0,
    object_emergency    BIGINT NOT NULL DEFAULT 0,
    mask_all            BIGINT NOT NULL DEFAULT 0,
    notify_first_access BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE emergency_sessions (
    id              TEXT COLLATE "C" PRIMARY KEY,
    patient_id      TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    professional_id TEXT COLLATE "C" NOT NULL,
    mode            TEXT COLLATE "C" NOT NULL,
    started_at      TEXT COLLATE "C" NOT NULL,
    expires_at      TEXT COLLATE "C" NOT NULL,
    justification   BYTEA NOT NULL   -- sealed with the patient's key
);
CREATE INDEX emergency_sessions_by_pair ON emergency_sessions (patient_id, professional_id);

CREATE TABLE access_seen (
    patient_id      TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    professional_id TEXT COLLATE "C" NOT NULL,
    first_at        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (patient_id, professional_id)
);
