use super::Result;
use crate::model::{Timestamp, User};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "id, uuid, username, password_hash, is_admin, created_at, updated_at";

/// A user from the first seven columns of a row, in `COLUMNS` order.
pub(super) fn from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        uuid: r.get(1)?,
        username: r.get(2)?,
        password_hash: r.get(3)?,
        is_admin: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

pub fn insert(
    c: &Connection,
    uuid: &str,
    username: &str,
    password_hash: &str,
    is_admin: bool,
    now: Timestamp,
) -> Result<User> {
    c.execute(
        "INSERT INTO users (uuid, username, password_hash, is_admin, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![uuid, username, password_hash, is_admin, now],
    )?;
    Ok(by_id(c, c.last_insert_rowid())?.expect("row just inserted"))
}

pub fn by_id(c: &Connection, id: i64) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

pub fn by_uuid(c: &Connection, uuid: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE uuid = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([uuid], from_row)
        .optional()?)
}

pub fn by_username(c: &Connection, username: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([username], from_row)
        .optional()?)
}

/// Up to `limit` usernames that start with `prefix`, in order.
pub fn usernames_starting(c: &Connection, prefix: &str, limit: i64) -> Result<Vec<String>> {
    let mut stmt = c.prepare_cached(
        "SELECT username FROM users WHERE substr(username, 1, length(?1)) = ?1
         ORDER BY username LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![prefix, limit], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn list(c: &Connection) -> Result<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY id");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn count(c: &Connection) -> Result<i64> {
    Ok(c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

pub fn admin_count(c: &Connection) -> Result<i64> {
    Ok(
        c.query_row("SELECT COUNT(*) FROM users WHERE is_admin = 1", [], |r| {
            r.get(0)
        })?,
    )
}

pub fn update_password(c: &Connection, id: i64, password_hash: &str, now: Timestamp) -> Result<()> {
    c.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, password_hash, now],
    )?;
    Ok(())
}

pub fn update_profile(
    c: &Connection,
    id: i64,
    username: &str,
    is_admin: bool,
    now: Timestamp,
) -> Result<()> {
    c.execute(
        "UPDATE users SET username = ?2, is_admin = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, username, is_admin, now],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM users WHERE id = ?1", [id])?;
    Ok(())
}
