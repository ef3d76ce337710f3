-- 0004: the profil médical (entries the holder writes) and health measures.
-- Both are small sealed records; only the section or kind and the date are in clear.

CREATE TABLE profile_entries (
    id         TEXT COLLATE "C" PRIMARY KEY,
    patient_id TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    kind       TEXT COLLATE "C" NOT NULL,
    at         TEXT COLLATE "C" NOT NULL,
    sealed     BYTEA NOT NULL
);
CREATE INDEX profile_entries_by_patient ON profile_entries (patient_id, kind, at);

CREATE TABLE measures (
    id         TEXT COLLATE "C" PRIMARY KEY,
    patient_id TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    kind       TEXT COLLATE "C" NOT NULL,
    at         TEXT COLLATE "C" NOT NULL,
    sealed     BYTEA NOT NULL
);
CREATE INDEX measures_by_patient ON measures (patient_id, kind, at);
