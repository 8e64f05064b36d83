-- Accounts, keys, sessions, servers, subusers, backups and the activity log.
-- Times are Unix seconds (UTC); the API formats them as RFC 3339.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT    NOT NULL UNIQUE,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The public part of the key (`ptlc_` and 11 characters), shown in listings.
    identifier   TEXT    NOT NULL UNIQUE,
    -- SHA-256 of the 32-character secret part; the secret itself is never stored.
    secret_hash  BLOB    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- SHA-256 of the cookie value.
    token_hash   BLOB    NOT NULL UNIQUE,
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE servers (
    id                 INTEGER PRIMARY KEY,
    uuid               TEXT    NOT NULL UNIQUE,
    short_id           TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    description        TEXT    NOT NULL DEFAULT '',
    path               TEXT    NOT NULL UNIQUE,
    owner_id           INTEGER REFERENCES users(id) ON DELETE SET NULL,
    backup_limit       INTEGER NOT NULL DEFAULT 10 CHECK (backup_limit >= 0),
    backup_quota_bytes INTEGER CHECK (backup_quota_bytes IS NULL OR backup_quota_bytes >= 0),
    max_backup_bytes   INTEGER NOT NULL DEFAULT 10737418240 CHECK (max_backup_bytes > 0),
    -- NULL means the configured default.
    compression        TEXT    CHECK (compression IN ('zstd', 'gzip', 'none')),
    status             TEXT    CHECK (status IN ('installing', 'suspended', 'restoring_backup')),
    pre_backup         TEXT,
    post_backup        TEXT,
    pre_restore        TEXT,
    post_restore       TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE subusers (
    server_id   INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- JSON array of permission names, e.g. ["backup.read","backup.download"].
    permissions TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE TABLE backups (
    id               INTEGER PRIMARY KEY,
    uuid             TEXT    NOT NULL UNIQUE,
    server_id        INTEGER NOT NULL REFERENCES servers(id),
    created_by       INTEGER REFERENCES users(id) ON DELETE SET NULL,
    name             TEXT    NOT NULL,
    -- JSON array of the request's exclusion patterns.
    ignored_files    TEXT    NOT NULL DEFAULT '[]',
    status           TEXT    NOT NULL CHECK (status IN ('creating', 'completed', 'failed')),
    is_locked        INTEGER NOT NULL DEFAULT 0 CHECK (is_locked IN (0, 1)),
    compression      TEXT    NOT NULL CHECK (compression IN ('zstd', 'gzip', 'none')),
    sha256_hash      TEXT,
    bytes            INTEGER NOT NULL DEFAULT 0,
    -- Archive location relative to the data directory; NULL until completed.
    storage_path     TEXT,
    error            TEXT,
    -- JSON array of paths that changed or could not be read while archiving.
    warnings         TEXT    NOT NULL DEFAULT '[]',
    -- Size and count of what the archive holds, for restore space checks.
    content_bytes    INTEGER NOT NULL DEFAULT 0,
    content_files    INTEGER NOT NULL DEFAULT 0,
    bytes_processed  INTEGER NOT NULL DEFAULT 0,
    bytes_total      INTEGER NOT NULL DEFAULT 0,
    files_processed  INTEGER NOT NULL DEFAULT 0,
    files_total      INTEGER NOT NULL DEFAULT 0,
    -- When archiving started (after the hooks and the scan), for the ETA.
    started_at       INTEGER,
    heartbeat_at     INTEGER,
    -- Process running (or queueing) the job, to tell a dead job from a slow one.
    job_pid          INTEGER,
    created_at       INTEGER NOT NULL,
    completed_at     INTEGER
);
CREATE INDEX backups_server_created ON backups(server_id, created_at DESC, id DESC);
CREATE INDEX backups_status ON backups(status);

CREATE TABLE activity_log (
    id         INTEGER PRIMARY KEY,
    event      TEXT    NOT NULL,
    user_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    server_id  INTEGER REFERENCES servers(id) ON DELETE SET NULL,
    -- JSON object with the event's details (backup uuid, name, key identifier...).
    properties TEXT    NOT NULL DEFAULT '{}',
    ip         TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX activity_log_server ON activity_log(server_id, id);
