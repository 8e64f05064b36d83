use super::Result;
use crate::model::{Actor, Timestamp, now};
use rusqlite::{Connection, params};

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub event: String,
    pub user_id: Option<i64>,
    pub server_id: Option<i64>,
    pub properties: serde_json::Value,
    pub ip: Option<String>,
    pub created_at: Timestamp,
}

/// Writes one event: who did it, on which server, with its details, now.
pub fn record(
    c: &Connection,
    actor: &Actor,
    event: &str,
    server_id: Option<i64>,
    properties: &serde_json::Value,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO activity_log (event, user_id, api_key_id, server_id, properties, ip,
             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        event,
        actor.user_id(),
        actor.api_key_id(),
        server_id,
        properties.to_string(),
        actor.ip(),
        now()
    ])?;
    Ok(())
}

/// The backups users (not schedules) started on a server after `since` that did not fail,
/// deleted since or not: how many, and when the oldest started. Read from the
/// `server:backup.start` and `server:backup.fail` events (the literal names let the
/// partial index of migration 0008 serve the query).
pub fn user_backup_starts_since(
    c: &Connection,
    server_id: i64,
    since: Timestamp,
) -> Result<(i64, Option<Timestamp>)> {
    Ok(c.prepare_cached(
        "SELECT COUNT(*), MIN(s.created_at) FROM activity_log s
         WHERE s.server_id = ?1 AND s.event = 'server:backup.start' AND s.created_at > ?2
           AND NOT COALESCE(json_extract(s.properties, '$.is_scheduled'), 0)
           AND NOT EXISTS (
               SELECT 1 FROM activity_log f
               WHERE f.server_id = s.server_id AND f.id > s.id
                 AND f.event = 'server:backup.fail'
                 AND json_extract(f.properties, '$.backup') = json_extract(s.properties, '$.backup'))",
    )?
    .query_row(params![server_id, since], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// The newest entries first; `server_id` narrows to one server.
pub fn list(c: &Connection, server_id: Option<i64>, limit: i64) -> Result<Vec<Entry>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, event, user_id, server_id, properties, ip, created_at FROM activity_log
         WHERE ?1 IS NULL OR server_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![server_id, limit], |r| {
        let props: String = r.get(4)?;
        Ok(Entry {
            id: r.get(0)?,
            event: r.get(1)?,
            user_id: r.get(2)?,
            server_id: r.get(3)?,
            properties: serde_json::from_str(&props).unwrap_or_default(),
            ip: r.get(5)?,
            created_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
