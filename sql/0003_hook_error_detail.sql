-- What a failed hook printed, kept apart from `error`: the output of an `rcon-cli` or a stop
-- script may hold passwords, so only the server's owner and admins see it.

ALTER TABLE backups ADD COLUMN error_detail TEXT;
ALTER TABLE restores ADD COLUMN error_detail TEXT;
