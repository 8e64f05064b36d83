-- Notification channels (a webhook, Discord, ntfy, a Healthchecks-style ping URL) and the
-- queue of what they are still to be told, kept here so that a restart loses nothing.

CREATE TABLE notification_channels (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('webhook', 'discord', 'ntfy', 'healthchecks')),
    url              TEXT    NOT NULL,
    -- The webhook's HMAC-SHA256 key; NULL for the other kinds.
    secret           TEXT,
    -- JSON array of the events it is told of.
    events           TEXT    NOT NULL,
    -- JSON array of server ids; NULL for every server.
    servers          TEXT,
    is_enabled       INTEGER NOT NULL DEFAULT 1 CHECK (is_enabled IN (0, 1)),
    last_delivery_at INTEGER,
    last_error       TEXT,
    last_error_at    INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE notification_queue (
    id              INTEGER PRIMARY KEY,
    channel_id      INTEGER NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    event           TEXT    NOT NULL,
    -- JSON of the event, rendered for the channel's kind when it is sent.
    payload         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX notification_queue_due ON notification_queue(next_attempt_at, id);
CREATE INDEX notification_queue_channel ON notification_queue(channel_id);
