-- 0008: find a patient's pending notifications without scanning the outbox (a purge cancels
-- them; with millions of pending notifications the scan took most of a second per purge).

CREATE INDEX outbox_by_patient ON outbox (patient_id, status) WHERE patient_id IS NOT NULL;
