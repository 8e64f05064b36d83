use super::Result;
use crate::model::{ApiKey, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "id, user_id, identifier, description, created_at, last_used_at";

fn from_row(r: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        user_id: r.get(1)?,
        identifier: r.get(2)?,
        description: r.get(3)?,
        created_at: r.get(4)?,
        last_used_at: r.get(5)?,
    })
}

pub fn insert(
    c: &Connection,
    user_id: i64,
    identifier: &str,
    secret_hash: &[u8],
    description: &str,
    now: Timestamp,
) -> Result<ApiKey> {
    c.execute(
        "INSERT INTO api_keys (user_id, identifier, secret_hash, description, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user_id, identifier, secret_hash, description, now],
    )?;
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1");
    Ok(c.query_row(&sql, [c.last_insert_rowid()], from_row)?)
}

/// The key with this identifier and the stored hash of its secret.
pub fn by_identifier(c: &Connection, identifier: &str) -> Result<Option<(ApiKey, Vec<u8>)>> {
    let sql = format!("SELECT {COLUMNS}, secret_hash FROM api_keys WHERE identifier = ?1");
    let mut stmt = c.prepare_cached(&sql)?;
    Ok(stmt
        .query_row([identifier], |r| Ok((from_row(r)?, r.get(6)?)))
        .optional()?)
}

pub fn list_for_user(c: &Connection, user_id: i64) -> Result<Vec<ApiKey>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE user_id = ?1 ORDER BY id");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([user_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records a use of the key.
pub fn touch(c: &Connection, id: i64, now: Timestamp) -> Result<()> {
    c.prepare_cached("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Deletes a user's key; false when that user has no such key.
pub fn delete(c: &Connection, user_id: i64, identifier: &str) -> Result<bool> {
    let n = c.execute(
        "DELETE FROM api_keys WHERE user_id = ?1 AND identifier = ?2",
        params![user_id, identifier],
    )?;
    Ok(n > 0)
}
