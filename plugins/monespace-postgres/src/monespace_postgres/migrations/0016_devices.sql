-- 0016: the devices that take a person's measures (a "Mesures de santé" bundle's Device is
-- created only if absent). A small sealed record like a measure; `kind` holds the keyed
-- index of the device's identifier (a serial number can say what the person measures), so
-- that "is it there already?" is one lookup that reveals nothing without the space's keys.

CREATE TABLE devices (
    id         TEXT COLLATE "C" PRIMARY KEY,
    patient_id TEXT COLLATE "C" NOT NULL REFERENCES patients (id),
    kind       TEXT COLLATE "C" NOT NULL,
    at         TEXT COLLATE "C" NOT NULL,
    sealed     BYTEA NOT NULL
);
CREATE UNIQUE INDEX devices_by_identifier ON devices (patient_id, kind);
