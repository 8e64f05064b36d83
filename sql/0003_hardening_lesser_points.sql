-- What a failed hook printed, kept apart from `error`: the output of an `rcon-cli` or a stop
-- script may hold passwords, so only the server's owner and admins see it.

ALTER TABLE backups ADD COLUMN error_detail TEXT;
ALTER TABLE restores ADD COLUMN error_detail TEXT;

-- The server's status when a restore started (suspended, or none), given back when it ends:
-- an admin may restore a suspended server without lifting the suspension.
ALTER TABLE restores ADD COLUMN server_status TEXT CHECK (server_status IN ('installing', 'suspended'));

-- Server lists are sorted by name: read in that order rather than sorted per request.
CREATE INDEX servers_name ON servers(name, id);

-- The API key an action was taken with (NULL in the browser, the command line and jobs).
ALTER TABLE activity_log ADD COLUMN api_key_id INTEGER REFERENCES api_keys(id) ON DELETE SET NULL;
