-- 0013: the catalogue of referenced services. Applications for référencement and the
-- catalogue's entries are shared reference data about services (no patient key, nothing
-- about a person); patients' consents to apps carry patient_id first in their key, like
-- every table of a person's data.

CREATE TABLE catalogue_applications (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    client_id   TEXT COLLATE "C" NOT NULL UNIQUE,
    vendor_id   TEXT COLLATE "C" NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    changed_at  TEXT COLLATE "C" NOT NULL,
    payload     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX catalogue_applications_by_status ON catalogue_applications (status, id);

CREATE TABLE catalogue_apps (
    client_id        TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES catalogue_applications (client_id),
    application_id   TEXT COLLATE "C" NOT NULL REFERENCES catalogue_applications (id),
    name             TEXT COLLATE "C" NOT NULL,
    publisher        TEXT COLLATE "C" NOT NULL,
    category         TEXT COLLATE "C" NOT NULL,
    exchange_tier    TEXT COLLATE "C" NOT NULL,
    status           TEXT COLLATE "C" NOT NULL,
    convention_until TEXT COLLATE "C",
    payload          TEXT COLLATE "C" NOT NULL
);

-- One row per patient and app: granting again after a revocation replaces it (the audit
-- trail keeps every grant, narrowing and revocation).
CREATE TABLE app_consents (
    patient_id  TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    client_id   TEXT COLLATE "C" NOT NULL REFERENCES catalogue_apps (client_id),
    scopes      TEXT COLLATE "C" NOT NULL,
    granted_at  TEXT COLLATE "C" NOT NULL,
    granted_by  TEXT COLLATE "C" NOT NULL,
    revoked_at  TEXT COLLATE "C",
    PRIMARY KEY (patient_id, client_id)
);
