-- Schedules in Pterodactyl's shape (a cron expression and ordered tasks), the outcome of each
-- schedule's last run, per-server retention policies, and what a backup needs for them:
-- whether a schedule made it, and the fingerprint of the tree it saved.

CREATE TABLE schedules (
    id                 INTEGER PRIMARY KEY,
    server_id          INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    name               TEXT    NOT NULL,
    cron_minute        TEXT    NOT NULL,
    cron_hour          TEXT    NOT NULL,
    cron_day_of_month  TEXT    NOT NULL,
    cron_month         TEXT    NOT NULL,
    cron_day_of_week   TEXT    NOT NULL,
    is_active          INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    -- Kept for Pterodactyl clients; hoard has no console and cannot tell.
    only_when_online   INTEGER NOT NULL DEFAULT 0 CHECK (only_when_online IN (0, 1)),
    -- Skip a run when the tree's fingerprint equals the last successful backup's.
    only_if_changed    INTEGER NOT NULL DEFAULT 0 CHECK (only_if_changed IN (0, 1)),
    is_processing      INTEGER NOT NULL DEFAULT 0 CHECK (is_processing IN (0, 1)),
    -- The process performing the run, to tell a run whose process died from a long one.
    run_pid            INTEGER,
    last_run_at        INTEGER,
    next_run_at        INTEGER,
    -- The last run's outcome: completed, failed, skipped or missed, and why.
    last_outcome       TEXT    CHECK (last_outcome IN ('completed', 'failed', 'skipped', 'missed')),
    last_reason        TEXT,
    last_backup_uuid   TEXT,
    last_catch_up      INTEGER NOT NULL DEFAULT 0 CHECK (last_catch_up IN (0, 1)),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX schedules_server ON schedules(server_id, id);
CREATE INDEX schedules_due ON schedules(is_active, next_run_at);

CREATE TABLE schedule_tasks (
    id                  INTEGER PRIMARY KEY,
    schedule_id         INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    sequence_id         INTEGER NOT NULL CHECK (sequence_id >= 1),
    action              TEXT    NOT NULL CHECK (action IN ('backup')),
    -- For a backup: the ignored-files text, one pattern per line.
    payload             TEXT    NOT NULL DEFAULT '',
    time_offset         INTEGER NOT NULL DEFAULT 0 CHECK (time_offset BETWEEN 0 AND 900),
    is_queued           INTEGER NOT NULL DEFAULT 0 CHECK (is_queued IN (0, 1)),
    continue_on_failure INTEGER NOT NULL DEFAULT 0 CHECK (continue_on_failure IN (0, 1)),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX schedule_tasks_schedule ON schedule_tasks(schedule_id, sequence_id);

-- restic's keep rules; NULL means the rule is not used.
CREATE TABLE retention_policies (
    server_id    INTEGER PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    keep_last    INTEGER CHECK (keep_last >= 0),
    keep_hourly  INTEGER CHECK (keep_hourly >= 0),
    keep_daily   INTEGER CHECK (keep_daily >= 0),
    keep_weekly  INTEGER CHECK (keep_weekly >= 0),
    keep_monthly INTEGER CHECK (keep_monthly >= 0),
    keep_yearly  INTEGER CHECK (keep_yearly >= 0),
    -- restic's duration syntax, e.g. 30d or 1y6m.
    keep_within  TEXT,
    updated_at   INTEGER NOT NULL
);

ALTER TABLE backups ADD COLUMN is_scheduled INTEGER NOT NULL DEFAULT 0
    CHECK (is_scheduled IN (0, 1));
-- Hex digest over every included entry's path, type, size, mtime and mode when the backup
-- was requested; NULL for backups made before fingerprints existed.
ALTER TABLE backups ADD COLUMN fingerprint TEXT;
