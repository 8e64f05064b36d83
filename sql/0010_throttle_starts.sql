-- The create throttle counts the backups users started in its window, deleted since or not:
-- their `server:backup.start` events are the record that outlives the backups.
CREATE INDEX activity_log_backup_starts ON activity_log(server_id, created_at)
    WHERE event = 'server:backup.start';
