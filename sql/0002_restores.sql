-- The restore journal: one row per restore, recording the step reached so that a restore
-- interrupted at any point is rolled back or completed at the next start.

CREATE TABLE restores (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT    NOT NULL UNIQUE,
    server_id       INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    backup_id       INTEGER REFERENCES backups(id) ON DELETE SET NULL,
    backup_uuid     TEXT    NOT NULL,
    user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    truncate        INTEGER NOT NULL CHECK (truncate IN (0, 1)),
    -- queued -> extracting -> (truncate: evacuating -> installing | overlay: overlaying)
    --        -> cleanup -> done; or failed, after a rollback.
    step            TEXT    NOT NULL CHECK (step IN ('queued', 'extracting', 'evacuating',
                        'installing', 'overlaying', 'cleanup', 'done', 'failed')),
    staging_path    TEXT    NOT NULL,
    trash_path      TEXT    NOT NULL,
    bytes_processed INTEGER NOT NULL DEFAULT 0,
    bytes_total     INTEGER NOT NULL DEFAULT 0,
    started_at      INTEGER NOT NULL,
    heartbeat_at    INTEGER,
    -- Process running (or queueing) the restore, to tell a dead one from a slow one.
    job_pid         INTEGER,
    finished_at     INTEGER,
    error           TEXT
);
CREATE INDEX restores_server ON restores(server_id, step);
CREATE INDEX restores_backup ON restores(backup_id, step);
