-- 0003: documents of the record (XDS entries). Codes and flags stay in clear so that access
-- can be decided and records searched without decrypting; titles, comments and author
-- names are sealed in sealed_meta.

CREATE TABLE documents (
    id              TEXT PRIMARY KEY,
    patient_id      TEXT NOT NULL REFERENCES patients (id),
    lineage_id      TEXT NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    unique_id       TEXT NOT NULL,
    class_code      TEXT NOT NULL,
    type_code       TEXT NOT NULL,
    type_system     TEXT NOT NULL,
    format_code     TEXT,
    media_type      TEXT NOT NULL,
    confidentiality TEXT NOT NULL CHECK (confidentiality IN ('N', 'R', 'V')),
    flags           INTEGER NOT NULL DEFAULT 0 CHECK (flags BETWEEN 0 AND 7),
    author_kind     TEXT NOT NULL,
    author_id       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    submitted_at    TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('approved', 'deprecated', 'deleted')),
    replaces        TEXT REFERENCES documents (id),
    content_id      TEXT NOT NULL REFERENCES blobs (id),
    size            INTEGER NOT NULL CHECK (size >= 0),
    sha256          BLOB NOT NULL,
    sealed_meta     BLOB NOT NULL,
    release_at      TEXT,
    notify_at       TEXT,
    UNIQUE (patient_id, unique_id)
) STRICT;
CREATE INDEX documents_by_patient ON documents (patient_id, created_at, id);
CREATE INDEX documents_by_lineage ON documents (lineage_id, version);
CREATE INDEX documents_releasing ON documents (release_at) WHERE release_at IS NOT NULL;
CREATE INDEX documents_to_notify ON documents (notify_at) WHERE notify_at IS NOT NULL;
