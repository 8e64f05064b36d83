//! Notification channels and the queue of notifications still to deliver.

use super::Result;
use crate::model::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A channel as stored; [`crate::notify`] gives the fields their meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub secret: Option<String>,
    pub events: Vec<String>,
    /// None: every server.
    pub servers: Option<Vec<i64>>,
    pub is_enabled: bool,
    pub last_delivery_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// Notifications waiting for delivery.
    pub pending: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "id, name, kind, url, secret, events, servers, is_enabled, last_delivery_at, \
    last_error, last_error_at, \
    (SELECT COUNT(*) FROM notification_queue q WHERE q.channel_id = notification_channels.id), \
    created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<Channel> {
    let events: String = r.get(5)?;
    let servers: Option<String> = r.get(6)?;
    Ok(Channel {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        url: r.get(3)?,
        secret: r.get(4)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        servers: servers.and_then(|s| serde_json::from_str(&s).ok()),
        is_enabled: r.get(7)?,
        last_delivery_at: r.get(8)?,
        last_error: r.get(9)?,
        last_error_at: r.get(10)?,
        pending: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

/// A channel's settings, as created or changed.
pub struct Fields<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub url: &'a str,
    pub secret: Option<&'a str>,
    pub events: &'a [String],
    pub servers: Option<&'a [i64]>,
    pub is_enabled: bool,
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain values serialise")
}

pub fn insert(c: &Connection, f: &Fields, now: Timestamp) -> Result<i64> {
    c.execute(
        "INSERT INTO notification_channels (name, kind, url, secret, events, servers, is_enabled,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![
            f.name,
            f.kind,
            f.url,
            f.secret,
            json(f.events),
            f.servers.map(json),
            f.is_enabled,
            now
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn update(c: &Connection, id: i64, f: &Fields, now: Timestamp) -> Result<()> {
    c.execute(
        "UPDATE notification_channels SET name = ?2, kind = ?3, url = ?4, secret = ?5,
             events = ?6, servers = ?7, is_enabled = ?8, updated_at = ?9
         WHERE id = ?1",
        params![
            id,
            f.name,
            f.kind,
            f.url,
            f.secret,
            json(f.events),
            f.servers.map(json),
            f.is_enabled,
            now
        ],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM notification_channels WHERE id = ?1", [id])?;
    Ok(())
}

pub fn get(c: &Connection, id: i64) -> Result<Option<Channel>> {
    let sql = format!("SELECT {COLUMNS} FROM notification_channels WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

pub fn list(c: &Connection) -> Result<Vec<Channel>> {
    let sql = format!("SELECT {COLUMNS} FROM notification_channels ORDER BY id");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records a delivery that worked, or why one did not.
pub fn record_delivery(c: &Connection, id: i64, error: Option<&str>, now: Timestamp) -> Result<()> {
    match error {
        None => c.execute(
            "UPDATE notification_channels SET last_delivery_at = ?2, last_error = NULL,
                 last_error_at = NULL
             WHERE id = ?1",
            params![id, now],
        )?,
        Some(error) => c.execute(
            "UPDATE notification_channels SET last_error = ?2, last_error_at = ?3 WHERE id = ?1",
            params![id, error, now],
        )?,
    };
    Ok(())
}

/// A notification waiting for delivery.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: i64,
    pub channel_id: i64,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
    pub created_at: Timestamp,
}

pub fn enqueue(
    c: &Connection,
    channel_id: i64,
    event: &str,
    payload: &str,
    now: Timestamp,
) -> Result<()> {
    c.execute(
        "INSERT INTO notification_queue (channel_id, event, payload, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![channel_id, event, payload, now],
    )?;
    Ok(())
}

/// Notifications whose next attempt is due, oldest first.
pub fn due(c: &Connection, now: Timestamp, limit: i64) -> Result<Vec<Queued>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, channel_id, event, payload, attempts, created_at FROM notification_queue
         WHERE next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], |r| {
        Ok(Queued {
            id: r.get(0)?,
            channel_id: r.get(1)?,
            event: r.get(2)?,
            payload: r.get(3)?,
            attempts: r.get(4)?,
            created_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delivered(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM notification_queue WHERE id = ?1", [id])?;
    Ok(())
}

pub fn retry_later(c: &Connection, id: i64, error: &str, at: Timestamp) -> Result<()> {
    c.execute(
        "UPDATE notification_queue SET attempts = attempts + 1, last_error = ?2,
             next_attempt_at = ?3
         WHERE id = ?1",
        params![id, error, at],
    )?;
    Ok(())
}
