-- 0015: the layout that scales out (docs/explanation/scaling-out.md).
-- Every table of a person's data is hash-partitioned by its patient key, and every primary
-- and unique key of it includes that key: each patient's rows live in one partition, and the
-- same tables can be distributed by Citus (create_distributed_table) without a change of key.
-- The shared tables (the directory of professionals, the audit shards and checkpoints) stay
-- plain: reference tables. Lookups that do not start from a patient (the NIR blind index, a
-- document id) go through two small mapping tables, kept in step by triggers, which also keep
-- those values unique across partitions.
-- The partition count comes from the URL (?partitions=N, 8 by default) through the session
-- setting monespace.partitions, read once here: it is fixed when the tables are created.

CREATE FUNCTION monespace_partition(tbl TEXT, key TEXT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER := coalesce(nullif(current_setting('monespace.partitions', true), ''), '8')::int;
    defs TEXT[];
    def TEXT;
    i INTEGER;
BEGIN
    IF n < 1 OR n > 1024 THEN
        RAISE EXCEPTION 'the partition count must be between 1 and 1024 (got %)', n;
    END IF;
    -- The secondary indexes (not those of a key, re-declared by the migration with the
    -- patient key first), to be created again on the partitioned table.
    SELECT coalesce(array_agg(pg_get_indexdef(x.indexrelid)), '{}') INTO defs
        FROM pg_index x
        WHERE x.indrelid = tbl::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, tbl || '_unpartitioned');
    EXECUTE format(
        'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED) '
        'PARTITION BY HASH (%I)', tbl, tbl || '_unpartitioned', key);
    FOR i IN 0 .. n - 1 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                       tbl || '_p' || i, tbl, n, i);
    END LOOP;
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', tbl, tbl || '_unpartitioned');
    -- CASCADE drops the foreign keys that pointed at the old table: re-declared below.
    EXECUTE format('DROP TABLE %I CASCADE', tbl || '_unpartitioned');
    FOREACH def IN ARRAY defs LOOP
        EXECUTE def;
    END LOOP;
END;
$$;

SELECT monespace_partition('patients', 'id');
SELECT monespace_partition('data_keys', 'patient_id');
SELECT monespace_partition('blobs', 'patient_id');
SELECT monespace_partition('accounts', 'patient_id');
SELECT monespace_partition('provisional_codes', 'patient_id');
SELECT monespace_partition('identity_proofs', 'patient_id');
SELECT monespace_partition('representations', 'patient_id');
SELECT monespace_partition('documents', 'patient_id');
SELECT monespace_partition('profile_entries', 'patient_id');
SELECT monespace_partition('measures', 'patient_id');
SELECT monespace_partition('access_grants', 'patient_id');
SELECT monespace_partition('access_blocks', 'patient_id');
SELECT monespace_partition('access_settings', 'patient_id');
SELECT monespace_partition('emergency_sessions', 'patient_id');
SELECT monespace_partition('access_seen', 'patient_id');
SELECT monespace_partition('message_threads', 'patient_id');
SELECT monespace_partition('messages', 'patient_id');
SELECT monespace_partition('message_attachments', 'patient_id');
SELECT monespace_partition('agenda_events', 'patient_id');
SELECT monespace_partition('agenda_history', 'patient_id');
SELECT monespace_partition('reminder_opt_outs', 'patient_id');
SELECT monespace_partition('reminders_sent', 'patient_id');
SELECT monespace_partition('app_consents', 'patient_id');
SELECT monespace_partition('oauth_codes', 'patient_id');
SELECT monespace_partition('oauth_tokens', 'patient_id');
DROP FUNCTION monespace_partition(TEXT, TEXT);

-- Keys: the patient key first, as Citus requires of a distributed table.
ALTER TABLE patients ADD PRIMARY KEY (id);
ALTER TABLE data_keys ADD PRIMARY KEY (patient_id);
ALTER TABLE blobs ADD PRIMARY KEY (patient_id, id);
ALTER TABLE accounts ADD PRIMARY KEY (patient_id);
ALTER TABLE provisional_codes ADD PRIMARY KEY (patient_id);
ALTER TABLE identity_proofs ADD PRIMARY KEY (patient_id);
ALTER TABLE representations ADD PRIMARY KEY (patient_id, representative_id);
ALTER TABLE documents ADD PRIMARY KEY (patient_id, id);
ALTER TABLE documents ADD UNIQUE (patient_id, unique_id);
ALTER TABLE profile_entries ADD PRIMARY KEY (patient_id, id);
ALTER TABLE measures ADD PRIMARY KEY (patient_id, id);
ALTER TABLE access_grants ADD PRIMARY KEY (patient_id, professional_id, kind);
ALTER TABLE access_blocks ADD PRIMARY KEY (patient_id, professional_id);
ALTER TABLE access_settings ADD PRIMARY KEY (patient_id);
ALTER TABLE emergency_sessions ADD PRIMARY KEY (patient_id, id);
ALTER TABLE access_seen ADD PRIMARY KEY (patient_id, professional_id);
ALTER TABLE message_threads ADD PRIMARY KEY (patient_id, id);
ALTER TABLE messages ADD PRIMARY KEY (patient_id, id);
ALTER TABLE messages ADD UNIQUE (patient_id, rfc_message_id);
ALTER TABLE messages ADD UNIQUE (patient_id, thread_id, position);
ALTER TABLE message_attachments ADD PRIMARY KEY (patient_id, id);
ALTER TABLE message_attachments ADD UNIQUE (patient_id, message_id, position);
ALTER TABLE agenda_events ADD PRIMARY KEY (patient_id, id);
ALTER TABLE agenda_history ADD PRIMARY KEY (patient_id, id, version);
ALTER TABLE reminder_opt_outs ADD PRIMARY KEY (patient_id, family);
ALTER TABLE reminders_sent ADD PRIMARY KEY (patient_id, reminder_id, cycle, recipient_id);
ALTER TABLE app_consents ADD PRIMARY KEY (patient_id, client_id);
ALTER TABLE oauth_codes ADD PRIMARY KEY (patient_id, code_hash);
ALTER TABLE oauth_tokens ADD PRIMARY KEY (patient_id, token_hash);

-- Lookups by id alone (a blob, a document, a thread named in a URL) still work: an index per
-- partition on the id, scanned in every partition.
CREATE INDEX blobs_by_id ON blobs (id);
CREATE INDEX documents_by_id ON documents (id);
CREATE INDEX profile_entries_by_id ON profile_entries (id);
CREATE INDEX measures_by_id ON measures (id);
CREATE INDEX emergency_sessions_by_id ON emergency_sessions (id);
CREATE INDEX message_threads_by_id ON message_threads (id);
CREATE INDEX messages_by_id ON messages (id);
CREATE INDEX message_attachments_by_id ON message_attachments (id);
CREATE INDEX message_attachments_by_message ON message_attachments (message_id, position);
CREATE INDEX patients_by_nir_index ON patients (nir_index);

-- Foreign keys, within one patient: a document's blob, a message's thread, a replaced
-- document all belong to the same person, so every reference carries the patient key.
ALTER TABLE data_keys ADD CHECK (patient_id <> '');
ALTER TABLE blobs ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE accounts ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE provisional_codes ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE identity_proofs ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE representations ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
-- Across two persons: kept on one node; a Citus deployment drops it (see scaling-out.md).
ALTER TABLE representations ADD CONSTRAINT representations_representative_fkey
    FOREIGN KEY (representative_id) REFERENCES patients (id);
ALTER TABLE documents ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE documents ADD FOREIGN KEY (patient_id, replaces) REFERENCES documents (patient_id, id);
ALTER TABLE documents ADD FOREIGN KEY (patient_id, content_id) REFERENCES blobs (patient_id, id);
ALTER TABLE profile_entries ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE measures ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE access_grants ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE access_grants ADD FOREIGN KEY (professional_id) REFERENCES professionals (rpps);
ALTER TABLE access_blocks ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE access_settings ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE emergency_sessions ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE access_seen ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE message_threads ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE messages ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE messages ADD FOREIGN KEY (patient_id, thread_id) REFERENCES message_threads (patient_id, id);
ALTER TABLE message_attachments ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE message_attachments ADD FOREIGN KEY (patient_id, message_id) REFERENCES messages (patient_id, id);
ALTER TABLE message_attachments ADD FOREIGN KEY (patient_id, thread_id) REFERENCES message_threads (patient_id, id);
ALTER TABLE agenda_events ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE agenda_history ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE reminder_opt_outs ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE reminders_sent ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE app_consents ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE app_consents ADD FOREIGN KEY (client_id) REFERENCES catalogue_apps (client_id);
ALTER TABLE oauth_codes ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
ALTER TABLE oauth_tokens ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
-- From the coordinator's ledger to a patient: kept on one node, dropped by a Citus deployment.
ALTER TABLE dmp_ledger ADD CONSTRAINT dmp_ledger_patient_fkey
    FOREIGN KEY (patient_id) REFERENCES patients (id);

-- The mapping tables: one row per value, so the value is unique across every partition and
-- found without asking each of them. In Citus they are distributed by the looked-up value.
CREATE TABLE patient_by_nir_index (
    nir_index  BYTEA PRIMARY KEY,
    patient_id TEXT COLLATE "C" NOT NULL
);
INSERT INTO patient_by_nir_index SELECT nir_index, id FROM patients;

CREATE TABLE patient_by_document (
    document_id TEXT COLLATE "C" PRIMARY KEY,
    patient_id  TEXT COLLATE "C" NOT NULL
);
INSERT INTO patient_by_document SELECT id, patient_id FROM documents;

CREATE FUNCTION monespace_map_nir_index() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM patient_by_nir_index WHERE nir_index = OLD.nir_index AND patient_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO patient_by_nir_index (nir_index, patient_id) VALUES (NEW.nir_index, NEW.id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER patients_map_nir_index AFTER INSERT OR DELETE OR UPDATE OF nir_index ON patients
    FOR EACH ROW EXECUTE FUNCTION monespace_map_nir_index();

CREATE FUNCTION monespace_map_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM patient_by_document WHERE document_id = OLD.id AND patient_id = OLD.patient_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO patient_by_document (document_id, patient_id) VALUES (NEW.id, NEW.patient_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER documents_map_id AFTER INSERT OR DELETE OR UPDATE OF id, patient_id ON documents
    FOR EACH ROW EXECUTE FUNCTION monespace_map_document();

-- An app presents a code or a token, not a patient: the keyed hash of each finds its
-- patient in one lookup, and stays unique across partitions.
CREATE TABLE patient_by_oauth_code (
    code_hash  BYTEA PRIMARY KEY,
    patient_id TEXT COLLATE "C" NOT NULL
);
INSERT INTO patient_by_oauth_code SELECT code_hash, patient_id FROM oauth_codes;
CREATE TABLE patient_by_oauth_token (
    token_hash BYTEA PRIMARY KEY,
    patient_id TEXT COLLATE "C" NOT NULL
);
INSERT INTO patient_by_oauth_token SELECT token_hash, patient_id FROM oauth_tokens;

CREATE FUNCTION monespace_map_oauth_code() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM patient_by_oauth_code WHERE code_hash = OLD.code_hash;
    ELSE
        INSERT INTO patient_by_oauth_code (code_hash, patient_id)
            VALUES (NEW.code_hash, NEW.patient_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER oauth_codes_map_hash AFTER INSERT OR DELETE ON oauth_codes
    FOR EACH ROW EXECUTE FUNCTION monespace_map_oauth_code();

CREATE FUNCTION monespace_map_oauth_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM patient_by_oauth_token WHERE token_hash = OLD.token_hash;
    ELSE
        INSERT INTO patient_by_oauth_token (token_hash, patient_id)
            VALUES (NEW.token_hash, NEW.patient_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER oauth_tokens_map_hash AFTER INSERT OR DELETE ON oauth_tokens
    FOR EACH ROW EXECUTE FUNCTION monespace_map_oauth_token();

-- The sharded audit trail (decision 0015), as on SQLite: shard '0' for events without a
-- patient and for the whole trail written before this migration (it goes on as that chain,
-- untouched); shards '1'..'N' for patients, by a stable hash of their id (N from the URL,
-- ?audit_shards=N, 16 by default, through the session setting monespace.audit_shards; 0
-- keeps one chain). Each shard has its own sequence numbers, head and seal: writers for
-- different patients never wait on one chain head.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE audit_events ADD PRIMARY KEY (shard, seq);
DROP INDEX audit_events_by_patient;
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, shard, seq);
INSERT INTO audit_shards (shard, legacy_until)
    SELECT s::text, 0 FROM generate_series(
        1, coalesce(nullif(current_setting('monespace.audit_shards', true), ''), '16')::int) s;
