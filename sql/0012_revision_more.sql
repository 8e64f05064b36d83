-- What else pages show: API keys made or revoked (not their last use, written on every
-- request a key makes), the activity log, and the notification queue.

CREATE TRIGGER api_keys_insert_revision AFTER INSERT ON api_keys
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_delete_revision AFTER DELETE ON api_keys
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER activity_log_insert_revision AFTER INSERT ON activity_log
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER activity_log_delete_revision AFTER DELETE ON activity_log
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER notification_queue_insert_revision AFTER INSERT ON notification_queue
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER notification_queue_update_revision AFTER UPDATE ON notification_queue
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER notification_queue_delete_revision AFTER DELETE ON notification_queue
    BEGIN UPDATE revision SET value = value + 1 WHERE id = 1; END;
