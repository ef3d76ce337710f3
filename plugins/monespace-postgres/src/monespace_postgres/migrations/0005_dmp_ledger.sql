-- 0005: the reconciliation ledger of legacy DMP imports. One row per document per run:
-- imported, skipped as a duplicate, or quarantined (never attached to anyone) with a reason.
-- Quarantined documents are not stored: the source stays with the operator, for review.

CREATE TABLE dmp_ledger (
    -- SQLite orders a run's lines by its implicit rowid: the same, as an identity column.
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY,
    id          TEXT COLLATE "C" PRIMARY KEY,
    run_id      TEXT COLLATE "C" NOT NULL,
    at          TEXT COLLATE "C" NOT NULL,
    source      TEXT COLLATE "C" NOT NULL,
    sha256      BYTEA NOT NULL,
    outcome     TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('imported', 'duplicate', 'quarantined')),
    reason      TEXT COLLATE "C",
    patient_id  TEXT COLLATE "C" REFERENCES patients (id),
    document_id TEXT COLLATE "C"
);
CREATE INDEX dmp_ledger_by_run ON dmp_ledger (run_id, at);
CREATE INDEX dmp_ledger_by_hash ON dmp_ledger (sha256, outcome);
CREATE INDEX dmp_ledger_by_patient ON dmp_ledger (patient_id) WHERE patient_id IS NOT NULL;
