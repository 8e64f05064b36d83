use super::Result;
use crate::model::{Actor, ActorKind, Timestamp, now};
use rusqlite::{Connection, Row, params, types::Value as Sql};

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub event: String,
    pub user_id: Option<i64>,
    pub actor_kind: ActorKind,
    /// The schedule that acted, while it exists: its id and name.
    pub schedule: Option<(i64, String)>,
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
        "INSERT INTO activity_log (event, user_id, api_key_id, schedule_id, actor_kind,
             server_id, properties, ip, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        event,
        actor.user_id(),
        actor.api_key_id(),
        actor.schedule_id(),
        actor.kind().as_str(),
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

/// Whose events a listing holds.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Everything that happened on one server.
    Server(i64),
    /// Everything one user did, on any server or their account.
    User(i64),
}

impl Scope {
    /// The condition, on a column that leads an index with `id`, so the newest-first page
    /// is read from the index whatever the log's size.
    fn condition(self) -> (&'static str, i64) {
        match self {
            Scope::Server(id) => ("a.server_id = ?1", id),
            Scope::User(id) => ("a.user_id = ?1", id),
        }
    }
}

/// One page of a scope's events, newest first, narrowed to one event name if given, and
/// how many there are in all.
pub fn page(
    c: &Connection,
    scope: Scope,
    event: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<Entry>)> {
    let (condition, id) = scope.condition();
    let mut args = vec![Sql::Integer(id)];
    let mut filter = String::new();
    if let Some(event) = event {
        filter = format!(" AND a.event = ?{}", args.len() + 1);
        args.push(Sql::Text(event.to_string()));
    }
    let total = c
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM activity_log a WHERE {condition}{filter}"
        ))?
        .query_row(rusqlite::params_from_iter(&args), |r| r.get(0))?;
    let (l, o) = (args.len() + 1, args.len() + 2);
    args.extend([Sql::Integer(limit), Sql::Integer(offset)]);
    let mut stmt = c.prepare_cached(&format!(
        "SELECT a.id, a.event, a.user_id, a.actor_kind, s.id, s.name, a.server_id,
             a.properties, a.ip, a.created_at
         FROM activity_log a LEFT JOIN schedules s ON s.id = a.schedule_id
         WHERE {condition}{filter} ORDER BY a.id DESC LIMIT ?{l} OFFSET ?{o}"
    ))?;
    let entries = stmt
        .query_map(rusqlite::params_from_iter(&args), from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((total, entries))
}

fn from_row(r: &Row) -> rusqlite::Result<Entry> {
    let kind: String = r.get(3)?;
    let schedule_id: Option<i64> = r.get(4)?;
    let props: String = r.get(7)?;
    Ok(Entry {
        id: r.get(0)?,
        event: r.get(1)?,
        user_id: r.get(2)?,
        actor_kind: kind.parse().unwrap_or(ActorKind::System),
        schedule: schedule_id
            .map(|id| r.get(5).map(|name| (id, name)))
            .transpose()?,
        server_id: r.get(6)?,
        properties: serde_json::from_str(&props).unwrap_or_default(),
        ip: r.get(8)?,
        created_at: r.get(9)?,
    })
}
