-- 0005: the reconciliation ledger of legacy DMP imports. One row per document per run:
-- imported, skipped as a duplicate, or quarantined (never attached to anyone) with a reason.
-- Quarantined documents are not stored: the source stays with the operator, for review.

CREATE TABLE dmp_ledger (
    id          TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    at          TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      BLOB NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('imported', 'duplicate', 'quarantined')),
    reason      TEXT,
    patient_id  TEXT REFERENCES patients (id),
    document_id TEXT
) STRICT;
CREATE INDEX dmp_ledger_by_run ON dmp_ledger (run_id, at);
CREATE INDEX dmp_ledger_by_hash ON dmp_ledger (sha256, outcome);
CREATE INDEX dmp_ledger_by_patient ON dmp_ledger (patient_id) WHERE patient_id IS NOT NULL;
