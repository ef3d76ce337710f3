-- 0003: documents of the record (XDS entries). Codes and flags stay in clear so that access
-- can be decided and records searched without decrypting; titles, comments and author
-- names are sealed in sealed_meta.

CREATE TABLE documents (
    id              TEXT COLLATE "C" PRIMARY KEY,
    patient_id      TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    lineage_id      TEXT COLLATE "C" NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 1),
    unique_id       TEXT COLLATE "C" NOT NULL,
    class_code      TEXT COLLATE "C" NOT NULL,
    type_code       TEXT COLLATE "C" NOT NULL,
    type_system     TEXT COLLATE "C" NOT NULL,
    format_code     TEXT COLLATE "C",
    media_type      TEXT COLLATE "C" NOT NULL,
    confidentiality TEXT COLLATE "C" NOT NULL CHECK (confidentiality IN ('N', 'R', 'V')),
    flags           BIGINT NOT NULL DEFAULT 0 CHECK (flags BETWEEN 0 AND 7),
    author_kind     TEXT COLLATE "C" NOT NULL,
    author_id       TEXT COLLATE "C" NOT NULL,
    created_at      TEXT COLLATE "C" NOT NULL,
    submitted_at    TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('approved', 'deprecated', 'deleted')),
    replaces        TEXT COLLATE "C" REFERENCES documents (id),
    content_id      TEXT COLLATE "C" NOT NULL REFERENCES blobs (id),
    size            BIGINT NOT NULL CHECK (size >= 0),
    sha256          BYTEA NOT NULL,
    sealed_meta     BYTEA NOT NULL,
    release_at      TEXT COLLATE "C",
    notify_at       TEXT COLLATE "C",
    UNIQUE (patient_id, unique_id)
);
CREATE INDEX documents_by_patient ON documents (patient_id, created_at, id);
CREATE INDEX documents_by_lineage ON documents (lineage_id, version);
CREATE INDEX documents_releasing ON documents (release_at) WHERE release_at IS NOT NULL;
CREATE INDEX documents_to_notify ON documents (notify_at) WHERE notify_at IS NOT NULL;
