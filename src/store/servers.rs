use super::Result;
use crate::model::{Hooks, Permission, Server, ServerStatus, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

const COLUMNS: &str = "s.id, s.uuid, s.short_id, s.name, s.description, s.path, s.owner_id, \
    s.backup_limit, s.backup_quota_bytes, s.max_backup_bytes, s.compression, s.status, \
    s.pre_backup, s.post_backup, s.pre_restore, s.post_restore, s.created_at, s.updated_at, \
    s.skip_unreadable";

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
        skip_unreadable: r.get(18)?,
    })
}

/// Finds a server by its UUID alone.
pub fn by_uuid(c: &Connection, uuid: &str) -> Result<Option<Server>> {
    let sql = format!("SELECT {COLUMNS} FROM servers s WHERE s.uuid = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([uuid], from_row)
        .optional()?)
}

/// Inserts `server` (its `id` is ignored) and returns it as stored.
pub fn insert(c: &Connection, s: &Server) -> Result<Server> {
    write(
        c,
        "INSERT INTO servers (uuid, short_id, created_at, name, description, path, owner_id,
             backup_limit, backup_quota_bytes, max_backup_bytes, compression, status,
             pre_backup, post_backup, pre_restore, post_restore, skip_unreadable, updated_at)
         VALUES (:uuid, :short_id, :created_at, :name, :description, :path, :owner_id,
             :backup_limit, :backup_quota_bytes, :max_backup_bytes, :compression, :status,
             :pre_backup, :post_backup, :pre_restore, :post_restore, :skip_unreadable,
             :updated_at)",
        s,
        &[
            (":uuid", &s.uuid),
            (":short_id", &s.short_id),
            (":created_at", &s.created_at),
        ],
    )?;
    Ok(by_id(c, c.last_insert_rowid())?.expect("row just inserted"))
}

/// Writes every editable field of `server`.
pub fn update(c: &Connection, s: &Server) -> Result<()> {
    write(
        c,
        "UPDATE servers SET name = :name, description = :description, path = :path,
             owner_id = :owner_id, backup_limit = :backup_limit,
             backup_quota_bytes = :backup_quota_bytes, max_backup_bytes = :max_backup_bytes,
             compression = :compression, status = :status, pre_backup = :pre_backup,
             post_backup = :post_backup, pre_restore = :pre_restore,
             post_restore = :post_restore, skip_unreadable = :skip_unreadable,
             updated_at = :updated_at
         WHERE id = :id",
        s,
        &[(":id", &s.id)],
    )
}

/// Runs `sql` with the editable fields of `s` as named parameters, plus `identity` (the
/// fields that statement alone uses).
fn write(c: &Connection, sql: &str, s: &Server, identity: &[(&str, &dyn ToSql)]) -> Result<()> {
    let compression = s.compression.map(|c| c.as_str());
    let status = s.status.map(|s| s.as_str());
    let mut fields: Vec<(&str, &dyn ToSql)> = vec![
        (":name", &s.name),
        (":description", &s.description),
        (":path", &s.path),
        (":owner_id", &s.owner_id),
        (":backup_limit", &s.backup_limit),
        (":backup_quota_bytes", &s.backup_quota_bytes),
        (":max_backup_bytes", &s.max_backup_bytes),
        (":compression", &compression),
        (":status", &status),
        (":pre_backup", &s.hooks.pre_backup),
        (":post_backup", &s.hooks.post_backup),
        (":pre_restore", &s.hooks.pre_restore),
        (":post_restore", &s.hooks.post_restore),
        (":skip_unreadable", &s.skip_unreadable),
        (":updated_at", &s.updated_at),
    ];
    fields.extend_from_slice(identity);
    c.execute(sql, fields.as_slice())?;
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

/// A server as a user's listing shows it, with what the listing needs from other tables.
pub struct Overview {
    pub server: Server,
    /// The user's permissions as a subuser of the server, if they are one.
    pub subuser_permissions: Option<Vec<Permission>>,
    /// Backups that count against the limit.
    pub backup_count: i64,
    pub latest_backup_id: Option<i64>,
    pub running_restore_id: Option<i64>,
    pub last_finished_restore_id: Option<i64>,
}

/// The servers `user_id` may see (all of them for an admin), or just `only` among them, each
/// with its live backup count and the ids of its newest backup, running restore and last
/// finished restore: one statement however many servers there are. (A LEFT JOIN on the
/// subusers with `?1` in its ON clause made SQLite re-prepare the statement at every use:
/// its plan depended on the bound value, and the statement cache clears the bindings.)
pub fn overviews(
    c: &Connection,
    user_id: i64,
    is_admin: bool,
    only: Option<i64>,
) -> Result<Vec<Overview>> {
    let sql = format!(
        "SELECT {COLUMNS},
             (SELECT u.permissions FROM subusers u WHERE u.server_id = s.id AND u.user_id = ?1)
                 AS permissions,
             (SELECT COUNT(*) FROM backups b WHERE b.server_id = s.id AND b.status != 'failed'),
             (SELECT b.id FROM backups b WHERE b.server_id = s.id
                 ORDER BY b.created_at DESC, b.id DESC LIMIT 1),
             (SELECT MAX(r.id) FROM restores r WHERE r.server_id = s.id
                 AND r.step NOT IN ('done', 'failed')),
             (SELECT MAX(r.id) FROM restores r WHERE r.server_id = s.id
                 AND r.step IN ('done', 'failed'))
         FROM servers s
         WHERE (?2 OR s.owner_id = ?1 OR permissions IS NOT NULL) AND (?3 IS NULL OR s.id = ?3)
         ORDER BY s.name, s.id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![user_id, is_admin, only], |r| {
        let permissions: Option<String> = r.get(19)?;
        Ok(Overview {
            server: from_row(r)?,
            subuser_permissions: permissions.map(|p| super::subusers::permissions_from_json(&p)),
            backup_count: r.get(20)?,
            latest_backup_id: r.get(21)?,
            running_restore_id: r.get(22)?,
            last_finished_restore_id: r.get(23)?,
        })
    })?;
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
