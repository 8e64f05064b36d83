-- A restore asked to go ahead even if the archive no longer matches its SHA-256, and what a
-- restore that went ahead must be known for.

ALTER TABLE restores ADD COLUMN allow_corrupt INTEGER NOT NULL DEFAULT 0
    CHECK (allow_corrupt IN (0, 1));
-- Set when the archive did not match and was restored anyway, as asked: recorded before the
-- swap, so a restore finished by recovery still says so.
ALTER TABLE restores ADD COLUMN warning TEXT;
