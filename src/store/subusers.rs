use super::Result;
use crate::model::{Permission, Subuser, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

fn permissions_to_json(perms: &[Permission]) -> String {
    serde_json::Value::from(perms.iter().map(|p| p.as_str()).collect::<Vec<_>>()).to_string()
}

pub(super) fn permissions_from_json(text: &str) -> Vec<Permission> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn from_row(r: &Row) -> rusqlite::Result<Subuser> {
    let perms: String = r.get(7)?;
    Ok(Subuser {
        user: super::users::from_row(r)?,
        permissions: permissions_from_json(&perms),
        created_at: r.get(8)?,
    })
}

const SELECT: &str = "SELECT u.id, u.uuid, u.username, u.password_hash, u.is_admin, u.created_at,
    u.updated_at, s.permissions, s.created_at FROM subusers s JOIN users u ON u.id = s.user_id";

/// Adds or replaces the permissions of `user_id` on `server_id`.
pub fn upsert(
    c: &Connection,
    server_id: i64,
    user_id: i64,
    perms: &[Permission],
    now: Timestamp,
) -> Result<()> {
    c.execute(
        "INSERT INTO subusers (server_id, user_id, permissions, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (server_id, user_id) DO UPDATE SET permissions = excluded.permissions",
        params![server_id, user_id, permissions_to_json(perms), now],
    )?;
    Ok(())
}

pub fn get(c: &Connection, server_id: i64, user_id: i64) -> Result<Option<Subuser>> {
    let sql = format!("{SELECT} WHERE s.server_id = ?1 AND s.user_id = ?2");
    Ok(c.prepare_cached(&sql)?
        .query_row(params![server_id, user_id], from_row)
        .optional()?)
}

pub fn list(c: &Connection, server_id: i64) -> Result<Vec<Subuser>> {
    let sql = format!("{SELECT} WHERE s.server_id = ?1 ORDER BY u.username");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([server_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The permissions `user_id` holds on `server_id` as a subuser, if any.
pub fn permissions(
    c: &Connection,
    server_id: i64,
    user_id: i64,
) -> Result<Option<Vec<Permission>>> {
    let mut stmt =
        c.prepare_cached("SELECT permissions FROM subusers WHERE server_id = ?1 AND user_id = ?2")?;
    let text: Option<String> = stmt
        .query_row(params![server_id, user_id], |r| r.get(0))
        .optional()?;
    Ok(text.map(|t| permissions_from_json(&t)))
}

pub fn delete(c: &Connection, server_id: i64, user_id: i64) -> Result<bool> {
    let n = c.execute(
        "DELETE FROM subusers WHERE server_id = ?1 AND user_id = ?2",
        params![server_id, user_id],
    )?;
    Ok(n > 0)
}
