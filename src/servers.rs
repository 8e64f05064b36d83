//! Servers and their subusers: path rules, limits, and who may do what on each.

use crate::auth::{self, Access};
use crate::error::{Error, FieldError, Result};
use crate::model::{
    Actor, Backup, Compression, Hooks, Permission, Server, ServerStatus, User, event, now,
};
use crate::store::restores::Restore;
use crate::store::{self, Connection};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_BACKUP_LIMIT: i64 = 10;
pub const DEFAULT_MAX_BACKUP_BYTES: i64 = 10 << 30;
pub const MAX_NAME_CHARS: usize = 191;

/// Fields to set on a server; `None` leaves a field as it is. Nullable fields use
/// `Some(None)` to clear.
#[derive(Debug, Clone, Default)]
pub struct ServerChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub path: Option<String>,
    /// Username of the owner.
    pub owner: Option<Option<String>>,
    pub backup_limit: Option<i64>,
    pub backup_quota_bytes: Option<Option<i64>>,
    pub max_backup_bytes: Option<i64>,
    pub compression: Option<Option<Compression>>,
    pub status: Option<Option<ServerStatus>>,
    pub pre_backup: Option<Option<String>>,
    pub post_backup: Option<Option<String>>,
    pub pre_restore: Option<Option<String>>,
    pub post_restore: Option<Option<String>>,
    pub skip_unreadable: Option<bool>,
}

/// Checks a server directory against the rules and returns its canonical form.
///
/// The rules keep hoard from archiving itself or the whole machine: an existing absolute
/// directory, not `/`, not inside the data directory, not containing it.
pub fn check_path(path: &str, data_dir: &Path) -> std::result::Result<PathBuf, String> {
    let given = Path::new(path);
    if path.is_empty() {
        return Err("the path is empty: give the server directory's absolute path".into());
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    if !given.is_absolute() {
        return Err(format!(
            "the path '{path}' is relative: give an absolute path such as /srv/minecraft"
        ));
    }
    let canonical = given
        .canonicalize()
        .map_err(|e| format!("the directory '{path}' does not exist or cannot be reached: {e}"))?;
    if !canonical.is_dir() {
        return Err(format!("'{path}' is not a directory"));
    }
    if canonical == Path::new("/") {
        return Err("the path is the root directory '/': give the server's own directory".into());
    }
    let data = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    if canonical.starts_with(&data) {
        return Err(format!(
            "'{path}' is inside hoard's data directory {}: a server cannot live there",
            data.display()
        ));
    }
    if data.starts_with(&canonical) {
        return Err(format!(
            "'{path}' contains hoard's data directory {}: backups would contain themselves",
            data.display()
        ));
    }
    Ok(canonical)
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize, required: bool) {
    if required && value.trim().is_empty() {
        errors.push(FieldError::new(
            field,
            "required",
            format!("The {field} field is required."),
        ));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            &format!("max:{max}"),
            format!("The {field} may not be longer than {max} characters."),
        ));
    }
}

/// Applies `changes` to `server`, collecting every invalid field.
fn apply(
    c: &Connection,
    data_dir: &Path,
    server: &mut Server,
    changes: ServerChanges,
) -> Result<()> {
    let mut errors = Vec::new();
    if let Some(name) = changes.name {
        check_text(&mut errors, "name", &name, MAX_NAME_CHARS, true);
        server.name = name.trim().to_string();
    }
    if let Some(description) = changes.description {
        check_text(&mut errors, "description", &description, 1000, false);
        server.description = description;
    }
    if let Some(path) = changes.path {
        match check_path(&path, data_dir) {
            Ok(p) => match p.to_str() {
                Some(p) => server.path = p.to_string(),
                None => errors.push(FieldError::new(
                    "path",
                    "utf8",
                    "The path must be valid UTF-8.",
                )),
            },
            Err(rule) => errors.push(FieldError::new(
                "path",
                "directory",
                format!("Invalid path: {rule}."),
            )),
        }
    }
    if let Some(owner) = changes.owner {
        server.owner_id = match owner {
            None => None,
            Some(name) => match store::users::by_username(c, &name)? {
                Some(user) => Some(user.id),
                None => {
                    errors.push(FieldError::new(
                        "owner",
                        "exists",
                        format!("There is no user '{name}'."),
                    ));
                    None
                }
            },
        };
    }
    if let Some(limit) = changes.backup_limit {
        if !(0..=10_000).contains(&limit) {
            errors.push(FieldError::new(
                "backup_limit",
                "between:0,10000",
                "The backup limit must be between 0 and 10000.",
            ));
        }
        server.backup_limit = limit;
    }
    if let Some(quota) = changes.backup_quota_bytes {
        if quota.is_some_and(|q| q < 0) {
            errors.push(FieldError::new(
                "backup_quota_bytes",
                "min:0",
                "The backup quota must be 0 or more bytes.",
            ));
        }
        server.backup_quota_bytes = quota;
    }
    if let Some(max) = changes.max_backup_bytes {
        if max < 1 {
            errors.push(FieldError::new(
                "max_backup_bytes",
                "min:1",
                "The maximum backup size must be at least 1 byte.",
            ));
        }
        server.max_backup_bytes = max;
    }
    if let Some(compression) = changes.compression {
        server.compression = compression;
    }
    if let Some(skip) = changes.skip_unreadable {
        server.skip_unreadable = skip;
    }
    if let Some(status) = changes.status {
        if status == Some(ServerStatus::RestoringBackup)
            && server.status != Some(ServerStatus::RestoringBackup)
        {
            errors.push(FieldError::new(
                "status",
                "in",
                "The status must be installing, suspended or null.",
            ));
        } else if server.status == Some(ServerStatus::RestoringBackup) {
            errors.push(FieldError::new(
                "status",
                "restoring",
                "The status cannot change while a restore runs.",
            ));
        } else {
            server.status = status;
        }
    }
    let hooks = [
        (
            "pre_backup",
            changes.pre_backup,
            &mut server.hooks.pre_backup,
        ),
        (
            "post_backup",
            changes.post_backup,
            &mut server.hooks.post_backup,
        ),
        (
            "pre_restore",
            changes.pre_restore,
            &mut server.hooks.pre_restore,
        ),
        (
            "post_restore",
            changes.post_restore,
            &mut server.hooks.post_restore,
        ),
    ];
    for (field, change, slot) in hooks {
        if let Some(command) = change {
            let command = command.filter(|c| !c.trim().is_empty());
            if let Some(cmd) = &command {
                check_text(&mut errors, field, cmd, 4096, false);
            }
            *slot = command;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

pub fn create(c: &Connection, data_dir: &Path, changes: ServerChanges) -> Result<Server> {
    let mut missing = Vec::new();
    if changes.name.is_none() {
        missing.push(FieldError::new(
            "name",
            "required",
            "The name field is required.",
        ));
    }
    if changes.path.is_none() {
        missing.push(FieldError::new(
            "path",
            "required",
            "The path field is required.",
        ));
    }
    if !missing.is_empty() {
        return Err(Error::Validation(missing));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut server = with_defaults(uuid[..8].to_string(), uuid, String::new(), String::new());
    apply(c, data_dir, &mut server, changes)?;
    store::servers::insert(c, &server).map_err(|e| path_taken(e, &server.path))
}

fn path_taken(err: store::Error, path: &str) -> Error {
    if store::is_unique_violation(&err) {
        Error::invalid(
            "path",
            "unique",
            format!("Another server already uses the directory {path}."),
        )
    } else {
        err.into()
    }
}

pub fn update(
    c: &Connection,
    data_dir: &Path,
    server: &Server,
    changes: ServerChanges,
) -> Result<Server> {
    let mut updated = server.clone();
    apply(c, data_dir, &mut updated, changes)?;
    updated.updated_at = now();
    store::servers::update(c, &updated).map_err(|e| path_taken(e, &updated.path))?;
    Ok(updated)
}

/// A server as a user sees it in the client API.
pub struct View {
    pub server: Server,
    pub access: Access,
    /// Backups that count against the limit.
    pub backup_count: i64,
    /// The newest backup, the running restore and the last finished one: only for users
    /// with backup.read, since the backup's uuid is all a download or restore request needs.
    pub last_backup: Option<Backup>,
    pub running_restore: Option<Restore>,
    pub last_restore: Option<Restore>,
    /// Its schedules at a glance: only for users with schedule.read.
    pub schedules: Option<store::schedules::Summary>,
    /// Its storage at a glance: only for users with backup.read.
    pub storage: Option<StorageState>,
}

/// The servers `user` may see, or just `only` among them, in a fixed number of queries
/// whatever their number. `free_bytes` is the space free for backups beyond the reserve.
pub fn views(
    c: &Connection,
    user: &User,
    only: Option<&Server>,
    free_bytes: u64,
) -> Result<Vec<View>> {
    let overviews = store::servers::overviews(c, user.id, user.is_admin, only.map(|s| s.id))?;
    let mut views = Vec::with_capacity(overviews.len());
    let (mut backup_ids, mut restore_ids) = (Vec::new(), Vec::new());
    for o in overviews {
        let Some(access) = auth::access_given(user, &o.server, o.subuser_permissions) else {
            continue;
        };
        let ids = (
            o.latest_backup_id,
            o.running_restore_id,
            o.last_finished_restore_id,
        );
        if access.has(Permission::BackupRead) {
            backup_ids.extend(ids.0);
            restore_ids.extend(ids.1.into_iter().chain(ids.2));
        }
        views.push((
            View {
                server: o.server,
                access,
                backup_count: o.backup_count,
                last_backup: None,
                running_restore: None,
                last_restore: None,
                schedules: None,
                storage: None,
            },
            ids,
        ));
    }
    let mut backups: HashMap<i64, Backup> = store::backups::by_ids(c, &backup_ids)?
        .into_iter()
        .map(|b| (b.id, b))
        .collect();
    let mut restores: HashMap<i64, Restore> = store::restores::by_ids(c, &restore_ids)?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let mut summaries = store::schedules::summaries(c, only.map(|s| s.id))?;
    let usage = store::backups::usage(c, only.map(|s| s.id))?;
    Ok(views
        .into_iter()
        .map(|(mut view, (backup, running, last))| {
            if view.access.has(Permission::ScheduleRead) {
                view.schedules = Some(summaries.remove(&view.server.id).unwrap_or_default());
            }
            if view.access.has(Permission::BackupRead) {
                let (used, last) = usage.get(&view.server.id).copied().unwrap_or((0, 0));
                view.storage = Some(storage_state(&view.server, used, last, free_bytes));
            }
            view.last_backup = backup.and_then(|id| backups.remove(&id));
            view.running_restore = running.and_then(|id| restores.remove(&id));
            view.last_restore = last.and_then(|id| restores.remove(&id));
            view
        })
        .collect())
}

pub fn find(c: &Connection, identifier: &str) -> Result<Server> {
    store::servers::by_identifier(c, identifier)?
        .ok_or_else(|| Error::not_found(format_args!("server '{identifier}'")))
}

/// Validates a list of permission names.
pub fn parse_permissions<S: AsRef<str>>(names: &[S]) -> Result<Vec<Permission>> {
    let mut perms = Vec::new();
    for name in names {
        let perm: Permission = name
            .as_ref()
            .parse()
            .map_err(|e: String| Error::invalid("permissions", "in", format!("{e}.")))?;
        if !perms.contains(&perm) {
            perms.push(perm);
        }
    }
    perms.sort();
    Ok(perms)
}

/// Grants `user` the permissions on `server`, adding them as a subuser if needed.
pub fn set_subuser(
    c: &Connection,
    actor: &Actor,
    server: &Server,
    user: &User,
    perms: &[Permission],
) -> Result<()> {
    if server.owner_id == Some(user.id) {
        return Err(Error::invalid(
            "username",
            "owner",
            "The server's owner already holds every permission.",
        ));
    }
    let existed = store::subusers::get(c, server.id, user.id)?.is_some();
    store::subusers::upsert(c, server.id, user.id, perms, now())?;
    store::activity::record(
        c,
        actor,
        if existed {
            event::SUBUSER_UPDATE
        } else {
            event::SUBUSER_CREATE
        },
        Some(server.id),
        &json!({"username": user.username, "permissions": perms.iter().map(|p| p.as_str()).collect::<Vec<_>>()}),
    )?;
    Ok(())
}

pub fn remove_subuser(c: &Connection, actor: &Actor, server: &Server, user: &User) -> Result<()> {
    if !store::subusers::delete(c, server.id, user.id)? {
        return Err(Error::not_found("subuser"));
    }
    store::activity::record(
        c,
        actor,
        event::SUBUSER_DELETE,
        Some(server.id),
        &json!({"username": user.username}),
    )?;
    Ok(())
}

/// A server not yet recorded, with every setting at its default.
pub fn with_defaults(short_id: String, uuid: String, name: String, path: String) -> Server {
    Server {
        id: 0,
        short_id,
        uuid,
        name,
        description: String::new(),
        path,
        owner_id: None,
        backup_limit: DEFAULT_BACKUP_LIMIT,
        backup_quota_bytes: None,
        max_backup_bytes: DEFAULT_MAX_BACKUP_BYTES,
        compression: None,
        status: None,
        hooks: Hooks::default(),
        skip_unreadable: false,
        created_at: now(),
        updated_at: now(),
    }
}

/// A server's storage at a glance: what its backups take, its quota, and the free space of
/// the data filesystem above the reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageState {
    pub used_bytes: i64,
    pub quota_bytes: Option<i64>,
    pub free_bytes: u64,
    /// Why space is running low, in words: 90% of the quota used, or less than twice the
    /// last backup's size free.
    pub warning: Option<String>,
}

/// The share of its quota a server may use before it is warned.
const QUOTA_WARNING_PERCENT: i64 = 90;

/// Judges a server's storage from what its backups take, the size of its newest backup and
/// the free space beyond the reserve.
pub fn storage_state(
    server: &Server,
    used_bytes: i64,
    last_backup_bytes: i64,
    free_bytes: u64,
) -> StorageState {
    use crate::units::bytes;
    let quota_warning = server.backup_quota_bytes.and_then(|quota| {
        (used_bytes.saturating_mul(100) >= quota.saturating_mul(QUOTA_WARNING_PERCENT)).then(|| {
            format!(
                "Backups use {} of this server's {} quota.",
                bytes(used_bytes.max(0) as u64),
                bytes(quota.max(0) as u64)
            )
        })
    });
    let needed = (last_backup_bytes.max(0) as u64).saturating_mul(2);
    let space_warning = (last_backup_bytes > 0 && free_bytes < needed).then(|| {
        format!(
            "{} free for backups, less than twice the last backup ({}).",
            bytes(free_bytes),
            bytes(last_backup_bytes as u64)
        )
    });
    StorageState {
        used_bytes,
        quota_bytes: server.backup_quota_bytes,
        free_bytes,
        warning: quota_warning.or(space_warning),
    }
}
