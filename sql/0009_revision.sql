-- One number that changes whenever anything a page shows changes, kept by triggers: a page
-- polling for changes is answered 304 Not Modified from it, without reading what it shows.
-- (A running job's progress is written every second, so its pages change every second.)

CREATE TABLE revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TRIGGER servers_insert_revision AFTER INSERT ON servers
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER servers_update_revision AFTER UPDATE ON servers
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER servers_delete_revision AFTER DELETE ON servers
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER backups_insert_revision AFTER INSERT ON backups
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER backups_update_revision AFTER UPDATE ON backups
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER backups_delete_revision AFTER DELETE ON backups
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER restores_insert_revision AFTER INSERT ON restores
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER restores_update_revision AFTER UPDATE ON restores
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER restores_delete_revision AFTER DELETE ON restores
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER subusers_insert_revision AFTER INSERT ON subusers
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER subusers_update_revision AFTER UPDATE ON subusers
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER subusers_delete_revision AFTER DELETE ON subusers
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER users_insert_revision AFTER INSERT ON users
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER users_update_revision AFTER UPDATE ON users
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER users_delete_revision AFTER DELETE ON users
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER schedules_insert_revision AFTER INSERT ON schedules
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER schedules_update_revision AFTER UPDATE ON schedules
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER schedules_delete_revision AFTER DELETE ON schedules
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER schedule_tasks_insert_revision AFTER INSERT ON schedule_tasks
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER schedule_tasks_update_revision AFTER UPDATE ON schedule_tasks
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER schedule_tasks_delete_revision AFTER DELETE ON schedule_tasks
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER retention_policies_insert_revision AFTER INSERT ON retention_policies
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER retention_policies_update_revision AFTER UPDATE ON retention_policies
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER retention_policies_delete_revision AFTER DELETE ON retention_policies
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER notification_channels_insert_revision AFTER INSERT ON notification_channels
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER notification_channels_update_revision AFTER UPDATE ON notification_channels
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER notification_channels_delete_revision AFTER DELETE ON notification_channels
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
