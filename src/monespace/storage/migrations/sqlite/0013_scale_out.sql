-- 0015: audit shards (filled next).
SELECT 1;
