-- 0009: who deposited a document, when it was deposited in an establishment's name. The
-- establishment is the author (its FINESS number); the depositing professional manages the
-- document as its author would (release a hidden result, replace, delete).

ALTER TABLE documents ADD COLUMN submitted_by TEXT COLLATE "C";
