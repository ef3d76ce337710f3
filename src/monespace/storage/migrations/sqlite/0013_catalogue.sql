-- 0013: the catalogue of referenced services. Applications for référencement and the
-- catalogue's entries are shared reference data about services (no patient key, nothing
-- about a person); patients' consents to apps carry patient_id first in their key, like
-- every table of a person's data.

CREATE TABLE catalogue_applications (
    id          TEXT NOT NULL PRIMARY KEY,
    client_id   TEXT NOT NULL UNIQUE,
    vendor_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    changed_at  TEXT NOT NULL,
    payload     TEXT NOT NULL
) STRICT;
CREATE INDEX catalogue_applications_by_status ON catalogue_applications (status, id);

CREATE TABLE catalogue_apps (
    client_id        TEXT NOT NULL PRIMARY KEY REFERENCES catalogue_applications (client_id),
    application_id   TEXT NOT NULL REFERENCES catalogue_applications (id),
    name             TEXT NOT NULL,
    publisher        TEXT NOT NULL,
    category         TEXT NOT NULL,
    exchange_tier    TEXT NOT NULL,
    status           TEXT NOT NULL,
    convention_until TEXT,
    payload          TEXT NOT NULL
) STRICT;

-- One row per patient and app: granting again after a revocation replaces it (the audit
-- trail keeps every grant, narrowing and revocation).
CREATE TABLE app_consents (
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    client_id   TEXT NOT NULL REFERENCES catalogue_apps (client_id),
    scopes      TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    revoked_at  TEXT,
    PRIMARY KEY (patient_id, client_id)
) STRICT;
