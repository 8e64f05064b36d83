-- The paths a backup could not read (with skip_unreadable), so that a truncating restore of
-- it keeps the server's own copies of them instead of deleting them.
ALTER TABLE backups ADD COLUMN unreadable_paths TEXT NOT NULL DEFAULT '[]';
