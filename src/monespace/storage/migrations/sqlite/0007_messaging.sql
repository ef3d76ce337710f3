-- 0007: secure messaging (MSS-C): threads between a patient and a professional, their
-- messages and the messages' attachments. Who takes part, states and dates stay in clear so
-- that access can be decided and mailboxes listed without decrypting; subjects, bodies,
-- threading headers, file names and CDA codes are sealed with the patient's key. Attachment
-- bytes are blobs of kind 'attachment'. No foreign key points at blobs: a purge deletes a
-- patient's blobs in one statement, and must not be blocked by attachment rows.

CREATE TABLE message_threads (
    id                    TEXT PRIMARY KEY,
    patient_id            TEXT NOT NULL REFERENCES patients (id),
    professional_id       TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    created_at            TEXT NOT NULL,
    last_message_at       TEXT NOT NULL,
    sealed_subject        BLOB NOT NULL,
    patient_archived      INTEGER NOT NULL DEFAULT 0 CHECK (patient_archived IN (0, 1)),
    professional_archived INTEGER NOT NULL DEFAULT 0 CHECK (professional_archived IN (0, 1)),
    closed_at             TEXT
) STRICT;
CREATE INDEX message_threads_by_patient ON message_threads (patient_id, last_message_at, id);
CREATE INDEX message_threads_by_professional
    ON message_threads (professional_id, last_message_at, id);

CREATE TABLE messages (
    id             TEXT PRIMARY KEY,
    thread_id      TEXT NOT NULL REFERENCES message_threads (id),
    patient_id     TEXT NOT NULL REFERENCES patients (id),
    sender_kind    TEXT NOT NULL,
    sender_id      TEXT NOT NULL,
    sent_at        TEXT NOT NULL,
    rfc_message_id TEXT NOT NULL,
    origin         TEXT NOT NULL CHECK (origin IN ('space', 'smtp')),
    sealed         BLOB NOT NULL,
    closes_thread  INTEGER NOT NULL DEFAULT 0 CHECK (closes_thread IN (0, 1)),
    ins_qualified  INTEGER CHECK (ins_qualified IN (0, 1)),
    read_at        TEXT,
    -- The conversation's order: timestamps may tie, or a clock step back.
    position       INTEGER NOT NULL CHECK (position >= 0),
    -- An inbound message delivered twice (an SMTP retry) is stored once.
    UNIQUE (patient_id, rfc_message_id),
    UNIQUE (thread_id, position)
) STRICT;
CREATE INDEX messages_by_age ON messages (sent_at, id);
CREATE INDEX messages_unread ON messages (thread_id) WHERE read_at IS NULL;

CREATE TABLE message_attachments (
    id          TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES messages (id),
    thread_id   TEXT NOT NULL REFERENCES message_threads (id),
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    content_id  TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    sha256      BLOB NOT NULL,
    sealed_meta BLOB NOT NULL,
    position    INTEGER NOT NULL CHECK (position >= 0),
    UNIQUE (message_id, position)
) STRICT;
CREATE INDEX message_attachments_by_thread ON message_attachments (thread_id, message_id, position);

-- Inbound messages name their sender by MSSanté address: find them in the directory.
CREATE INDEX professionals_by_mssante ON professionals (lower(mssante)) WHERE mssante IS NOT NULL;
