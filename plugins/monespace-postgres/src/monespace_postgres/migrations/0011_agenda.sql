-- 0010: the agenda (appointments and health events), its history, and prevention reminders:
-- the families a person opted out of and the reminders already sent (once per cycle).
-- Every key starts with patient_id so that a large deployment can partition by patient.
-- What says something about the person (title, place, professional, notes, linked documents)
-- is sealed with their data key; kind, status and times stay in clear to list and evaluate.

CREATE TABLE agenda_events (
    patient_id   TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    id           TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    status       TEXT COLLATE "C" NOT NULL,
    starts_at    TEXT COLLATE "C" NOT NULL,
    ends_at      TEXT COLLATE "C",
    reminder_id  TEXT COLLATE "C",
    uid          TEXT COLLATE "C" NOT NULL,
    sequence     BIGINT NOT NULL,
    changed_at   TEXT COLLATE "C" NOT NULL,
    actor_kind   TEXT COLLATE "C" NOT NULL,
    actor_id     TEXT COLLATE "C" NOT NULL,
    change       TEXT COLLATE "C" NOT NULL,
    sealed       BYTEA NOT NULL,
    PRIMARY KEY (patient_id, id)
);
CREATE UNIQUE INDEX agenda_events_by_uid ON agenda_events (patient_id, uid);
CREATE INDEX agenda_events_by_start ON agenda_events (patient_id, starts_at, id);

-- Every version of every event, as it was written (append-only).
CREATE TABLE agenda_history (
    patient_id   TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    id           TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    status       TEXT COLLATE "C" NOT NULL,
    starts_at    TEXT COLLATE "C" NOT NULL,
    ends_at      TEXT COLLATE "C",
    reminder_id  TEXT COLLATE "C",
    uid          TEXT COLLATE "C" NOT NULL,
    sequence     BIGINT NOT NULL,
    changed_at   TEXT COLLATE "C" NOT NULL,
    actor_kind   TEXT COLLATE "C" NOT NULL,
    actor_id     TEXT COLLATE "C" NOT NULL,
    change       TEXT COLLATE "C" NOT NULL,
    sealed       BYTEA NOT NULL,
    PRIMARY KEY (patient_id, id, version)
);

CREATE TABLE reminder_opt_outs (
    patient_id TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    family     TEXT COLLATE "C" NOT NULL,
    at         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (patient_id, family)
);

-- One line per reminder, cycle (the first day of its window) and recipient: a tick sends
-- nothing that has a line already. ``sealed`` holds why it was sent (the patient's key).
CREATE TABLE reminders_sent (
    patient_id   TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    reminder_id  TEXT COLLATE "C" NOT NULL,
    cycle        TEXT COLLATE "C" NOT NULL,
    recipient_id TEXT COLLATE "C" NOT NULL,
    sent_at      TEXT COLLATE "C" NOT NULL,
    sealed       BYTEA NOT NULL,
    PRIMARY KEY (patient_id, reminder_id, cycle, recipient_id)
);
