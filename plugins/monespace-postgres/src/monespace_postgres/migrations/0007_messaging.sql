-- 0007: secure messaging (MSS-C): threads between a patient and a professional, their
-- messages and the messages' attachments. Who takes part, states and dates stay in clear so
-- that access can be decided and mailboxes listed without decrypting; subjects, bodies,
-- threading headers, file names and CDA codes are sealed with the patient's key. Attachment
-- bytes are blobs of kind 'attachment'. No foreign key points at blobs: a purge deletes a
-- patient's blobs in one statement, and must not be blocked by attachment rows.

CREATE TABLE message_threads (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    patient_id            TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    professional_id       TEXT COLLATE "C" NOT NULL,
    status                TEXT COLLATE "C" NOT NULL CHECK (status IN ('open', 'closed')),
    created_at            TEXT COLLATE "C" NOT NULL,
    last_message_at       TEXT COLLATE "C" NOT NULL,
    sealed_subject        BYTEA NOT NULL,
    patient_archived      BIGINT NOT NULL DEFAULT 0 CHECK (patient_archived IN (0, 1)),
    professional_archived BIGINT NOT NULL DEFAULT 0 CHECK (professional_archived IN (0, 1)),
    closed_at             TEXT COLLATE "C"
);
CREATE INDEX message_threads_by_patient ON message_threads (patient_id, last_message_at, id);
CREATE INDEX message_threads_by_professional
    ON message_threads (professional_id, last_message_at, id);

CREATE TABLE messages (
    id             TEXT COLLATE "C" PRIMARY KEY,
    thread_id      TEXT COLLATE "C" NOT NULL REFERENCES message_threads (id),
    patient_id     TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    sender_kind    TEXT COLLATE "C" NOT NULL,
    sender_id      TEXT COLLATE "C" NOT NULL,
    sent_at        TEXT COLLATE "C" NOT NULL,
    rfc_message_id TEXT COLLATE "C" NOT NULL,
    origin         TEXT COLLATE "C" NOT NULL CHECK (origin IN ('space', 'smtp')),
    sealed         BYTEA NOT NULL,
    closes_thread  BIGINT NOT NULL DEFAULT 0 CHECK (closes_thread IN (0, 1)),
    ins_qualified  BIGINT CHECK (ins_qualified IN (0, 1)),
    read_at        TEXT COLLATE "C",
    -- The conversation's order: timestamps may tie, or a clock step back.
    position       BIGINT NOT NULL CHECK (position >= 0),
    -- An inbound message delivered twice (an SMTP retry) is stored once.
    UNIQUE (patient_id, rfc_message_id),
    -- patient_id first, as in every key of a person's data (a thread belongs to one person).
    UNIQUE (patient_id, thread_id, position)
);
CREATE INDEX messages_by_age ON messages (sent_at, id);
CREATE INDEX messages_unread ON messages (thread_id) WHERE read_at IS NULL;

CREATE TABLE message_attachments (
    id          TEXT COLLATE "C" PRIMARY KEY,
    message_id  TEXT COLLATE "C" NOT NULL REFERENCES messages (id),
    thread_id   TEXT COLLATE "C" NOT NULL REFERENCES message_threads (id),
    patient_id  TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    content_id  TEXT COLLATE "C" NOT NULL,
    media_type  TEXT COLLATE "C" NOT NULL,
    size        BIGINT NOT NULL CHECK (size >= 0),
    sha256      BYTEA NOT NULL,
    sealed_meta BYTEA NOT NULL,
    position    BIGINT NOT NULL CHECK (position >= 0),
    UNIQUE (patient_id, message_id, position)
);
CREATE INDEX message_attachments_by_thread ON message_attachments (thread_id, message_id, position);

-- Inbound messages name their sender by MSSanté address: find them in the directory.
CREATE INDEX professionals_by_mssante ON professionals (lower(mssante)) WHERE mssante IS NOT NULL;
