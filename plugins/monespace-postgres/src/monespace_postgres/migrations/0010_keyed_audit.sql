-- 0010: the keyed audit trail and its signed checkpoints (decision 0012).
-- Each event records the version of its chain (1: plain SHA-256, written before this
-- migration; 2: HMAC-SHA256 under an audit key), the id of that key (never the key: keys
-- come from the key provider only), and its shard (one shard, '0', on SQLite).

ALTER TABLE audit_events ADD COLUMN key_id TEXT COLLATE "C";
ALTER TABLE audit_events ADD COLUMN shard TEXT COLLATE "C" NOT NULL DEFAULT '0';
ALTER TABLE audit_events ADD COLUMN chain BIGINT NOT NULL DEFAULT 1 CHECK (chain IN (1, 2));

-- One row per shard. legacy_until is the last event written unkeyed, set once, here: a space
-- created keyed has 0, and no unkeyed event is ever accepted after it. The head seal (the
-- newest event's seq and hash, HMAC-keyed) is rewritten with every append: the trail must end
-- exactly there, so cutting off its newest events is detected even after the last checkpoint.
CREATE TABLE audit_shards (
    shard        TEXT COLLATE "C" PRIMARY KEY,
    legacy_until BIGINT NOT NULL CHECK (legacy_until >= 0),
    head_seq     BIGINT,
    head_hash    BYTEA,
    key_id       TEXT COLLATE "C",
    head_mac     BYTEA,
    CHECK ((head_seq IS NULL) = (head_mac IS NULL))
);
INSERT INTO audit_shards (shard, legacy_until)
    SELECT '0', coalesce(max(seq), 0) FROM audit_events;

-- Signed checkpoints: one row per shard head; the rows of one checkpoint share its number,
-- time, Merkle root, key id and Ed25519 signature. Copies are exported outside the database.
CREATE TABLE audit_checkpoints (
    number      BIGINT NOT NULL CHECK (number >= 1),
    shard       TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    head_hash   BYTEA NOT NULL,
    event_count BIGINT NOT NULL,
    at          TEXT COLLATE "C" NOT NULL,
    root        BYTEA NOT NULL,
    key_id      TEXT COLLATE "C" NOT NULL,
    signature   BYTEA NOT NULL,
    PRIMARY KEY (number, shard)
);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION monespace_append_only('audit checkpoints');
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION monespace_append_only('audit checkpoints');
