use super::Result;
use crate::model::{Hooks, Server, ServerStatus, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "s.id, s.uuid, s.short_id, s.name, s.description, s.path, s.owner_id, \
    s.backup_limit, s.backup_quota_bytes, s.max_backup_bytes, s.compression, s.status, \
    s.pre_backup, s.post_backup, s.pre_restore, s.post_restore, s.created_at, s.updated_at";

fn from_row(r: &Row) -> rusqlite::Result<Server> {
    let compression: Option<String> = r.get(10)?;
    let status: Option<String> = r.get(11)?;
    Ok(Server {
        id: r.get(0)?,
        uuid: r.get(1)?,
        short_id: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
        path: r.get(5)?,
        owner_id: r.get(6)?,
        backup_limit: r.get(7)?,
        backup_quota_bytes: r.get(8)?,
        max_backup_bytes: r.get(9)?,
        compression: compression.and_then(|c| c.parse().ok()),
        status: status.and_then(|s| s.parse().ok()),
        hooks: Hooks {
            pre_backup: r.get(12)?,
            post_backup: r.get(13)?,
            pre_restore: r.get(14)?,
            post_restore: r.get(15)?,
        },
        created_at: r.get(16)?,
        updated_at: r.get(17)?,
    })
}

/// Inserts `server` (its `id` is ignored) and returns it as stored.
pub fn insert(c: &Connection, s: &Server) -> Result<Server> {
    c.execute(
        "INSERT INTO servers (uuid, short_id, name, description, path, owner_id, backup_limit,
             backup_quota_bytes, max_backup_bytes, compression, status, pre_backup, post_backup,
             pre_restore, post_restore, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            s.uuid,
            s.short_id,
            s.name,
            s.description,
            s.path,
            s.owner_id,
            s.backup_limit,
            s.backup_quota_bytes,
            s.max_backup_bytes,
            s.compression.map(|c| c.as_str()),
            s.status.map(|s| s.as_str()),
            s.hooks.pre_backup,
            s.hooks.post_backup,
            s.hooks.pre_restore,
            s.hooks.post_restore,
            s.created_at,
            s.updated_at,
        ],
    )?;
    Ok(by_id(c, c.last_insert_rowid())?.expect("row just inserted"))
}

/// Writes every editable field of `server`.
pub fn update(c: &Connection, s: &Server) -> Result<()> {
    c.execute(
        "UPDATE servers SET name = ?2, description = ?3, path = ?4, owner_id = ?5,
             backup_limit = ?6, backup_quota_bytes = ?7, max_backup_bytes = ?8, compression = ?9,
             status = ?10, pre_backup = ?11, post_backup = ?12, pre_restore = ?13,
             post_restore = ?14, updated_at = ?15
         WHERE id = ?1",
        params![
            s.id,
            s.name,
            s.description,
            s.path,
            s.owner_id,
            s.backup_limit,
            s.backup_quota_bytes,
            s.max_backup_bytes,
            s.compression.map(|c| c.as_str()),
            s.status.map(|s| s.as_str()),
            s.hooks.pre_backup,
            s.hooks.post_backup,
            s.hooks.pre_restore,
            s.hooks.post_restore,
            s.updated_at,
        ],
    )?;
    Ok(())
}

pub fn set_status(c: &Connection, id: i64, status: Option<ServerStatus>) -> Result<()> {
    c.execute(
        "UPDATE servers SET status = ?2 WHERE id = ?1",
        params![id, status.map(|s| s.as_str())],
    )?;
    Ok(())
}

pub fn by_id(c: &Connection, id: i64) -> Result<Option<Server>> {
    let sql = format!("SELECT {COLUMNS} FROM servers s WHERE s.id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

/// Finds a server by its UUID or its 8-character short identifier.
pub fn by_identifier(c: &Connection, identifier: &str) -> Result<Option<Server>> {
    let sql = format!("SELECT {COLUMNS} FROM servers s WHERE s.uuid = ?1 OR s.short_id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([identifier], from_row)
        .optional()?)
}

pub fn list(c: &Connection) -> Result<Vec<Server>> {
    let sql = format!("SELECT {COLUMNS} FROM servers s ORDER BY s.name, s.id");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Servers a non-admin user owns or is a subuser of.
pub fn list_visible_to(c: &Connection, user_id: i64) -> Result<Vec<Server>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM servers s
         WHERE s.owner_id = ?1
            OR EXISTS (SELECT 1 FROM subusers u WHERE u.server_id = s.id AND u.user_id = ?1)
         ORDER BY s.name, s.id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([user_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM servers WHERE id = ?1", [id])?;
    Ok(())
}

pub fn touch(c: &Connection, id: i64, now: Timestamp) -> Result<()> {
    c.execute(
        "UPDATE servers SET updated_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}
