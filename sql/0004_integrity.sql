-- Complete or failed, and integrity you can see: whether a server's unreadable files may be
-- skipped, how many a backup skipped, and what the last look at its archive found.

ALTER TABLE servers ADD COLUMN skip_unreadable INTEGER NOT NULL DEFAULT 0
    CHECK (skip_unreadable IN (0, 1));

-- Entries left out because they could not be read (with skip_unreadable): a completed
-- backup with any is `completed_with_warnings`.
ALTER TABLE backups ADD COLUMN unreadable INTEGER NOT NULL DEFAULT 0;
-- NULL while the archive is as recorded; 'missing' (gone or the wrong size) or 'corrupt'
-- (its SHA-256 differs) once a check found otherwise.
ALTER TABLE backups ADD COLUMN integrity TEXT CHECK (integrity IN ('missing', 'corrupt'));
-- When the archive was last re-read and its hash matched; its creation counts as one.
ALTER TABLE backups ADD COLUMN verified_at INTEGER;
-- A verification running: its heartbeat and how far it read.
ALTER TABLE backups ADD COLUMN verify_heartbeat_at INTEGER;
ALTER TABLE backups ADD COLUMN verify_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE backups SET verified_at = completed_at WHERE status = 'completed';
