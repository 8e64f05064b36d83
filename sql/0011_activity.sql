-- The activity log as the API lists it: who acted (a user, an API key, a schedule, hoard
-- itself) is kept with each event, since the user, key or schedule may be deleted later;
-- the account's activity is listed by user, newest first, as a server's is by server.
ALTER TABLE activity_log ADD COLUMN actor_kind TEXT NOT NULL DEFAULT 'system'
    CHECK (actor_kind IN ('user', 'api_key', 'anonymous', 'schedule', 'system'));
ALTER TABLE activity_log ADD COLUMN schedule_id INTEGER REFERENCES schedules(id) ON DELETE SET NULL;

UPDATE activity_log SET actor_kind = CASE
    WHEN api_key_id IS NOT NULL THEN 'api_key'
    WHEN user_id IS NOT NULL THEN 'user'
    WHEN event = 'auth:fail' THEN 'anonymous'
    ELSE 'system'
END;
-- Runs were logged as hoard's: the schedule is in their properties.
UPDATE activity_log SET actor_kind = 'schedule',
    schedule_id = (SELECT id FROM schedules WHERE id = json_extract(activity_log.properties, '$.schedule'))
WHERE event = 'server:schedule.run';

CREATE INDEX activity_log_user ON activity_log(user_id, id);
-- filter[event]: counted and paged from the index rather than by reading every event.
CREATE INDEX activity_log_server_event ON activity_log(server_id, event, id);
CREATE INDEX activity_log_user_event ON activity_log(user_id, event, id);

-- The schedule that made a backup, so the backup's outcome is logged as the schedule's.
ALTER TABLE backups ADD COLUMN schedule_id INTEGER REFERENCES schedules(id) ON DELETE SET NULL;
