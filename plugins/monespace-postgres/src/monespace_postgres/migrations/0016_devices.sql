-- 0016: the devices that take a person's measures (a "Mesures de santé" bundle's Device is
-- created only if absent). A small sealed record like a measure; `kind` holds the keyed
-- index of the device's identifier (a serial number can say what the person measures), so
-- that "is it there already?" is one lookup that reveals nothing without the space's keys.
-- Patient data: hash-partitioned by patient like the other patient tables (0015), with as
-- many partitions as `measures` has, and the patient key in every key.

CREATE TABLE devices (
    id         TEXT COLLATE "C" NOT NULL,
    patient_id TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    at         TEXT COLLATE "C" NOT NULL,
    sealed     BYTEA NOT NULL,
    PRIMARY KEY (patient_id, id)
) PARTITION BY HASH (patient_id);

DO $$
DECLARE
    n INTEGER;
    i INTEGER;
BEGIN
    SELECT count(*) INTO n FROM pg_inherits WHERE inhparent = 'measures'::regclass;
    IF n < 1 THEN
        n := 1;
    END IF;
    FOR i IN 0 .. n - 1 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF devices FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                       'devices_p' || i, n, i);
    END LOOP;
END;
$$;

CREATE UNIQUE INDEX devices_by_identifier ON devices (patient_id, kind);
CREATE INDEX devices_by_id ON devices (id);
ALTER TABLE devices ADD FOREIGN KEY (patient_id) REFERENCES patients (id);
