use super::Result;
use crate::model::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

/// A browser session found by its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

pub fn insert(
    c: &Connection,
    user_id: i64,
    token_hash: &[u8],
    csrf_token: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    c.execute(
        "INSERT INTO sessions (user_id, token_hash, csrf_token, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user_id, token_hash, csrf_token, now, expires_at],
    )?;
    Ok(())
}

/// The unexpired session with this token hash.
pub fn find(c: &Connection, token_hash: &[u8], now: Timestamp) -> Result<Option<Session>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, user_id, csrf_token, expires_at FROM sessions
         WHERE token_hash = ?1 AND expires_at > ?2",
    )?;
    Ok(stmt
        .query_row(params![token_hash, now], |r| {
            Ok(Session {
                id: r.get(0)?,
                user_id: r.get(1)?,
                csrf_token: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })
        .optional()?)
}

pub fn delete(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
    Ok(())
}

/// Ends every session of a user but `keep`, e.g. after a password change.
pub fn delete_for_user(c: &Connection, user_id: i64, keep: Option<i64>) -> Result<()> {
    c.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2",
        params![user_id, keep],
    )?;
    Ok(())
}

pub fn delete_expired(c: &Connection, now: Timestamp) -> Result<usize> {
    Ok(c.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?)
}
