-- 0012: the holder's objection to the use of their record for research extracts, kept with
-- their other access settings (monespace.access.AccessSettings.object_research).

ALTER TABLE access_settings ADD COLUMN object_research INTEGER NOT NULL DEFAULT 0;
