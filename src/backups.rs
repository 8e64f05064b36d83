//! Backups as users see them: listing, creating (with every check of the contract, under one
//! transaction), deleting, locking, and download links.

use crate::app::App;
use crate::archive::{self, Exclusions};
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::jobs::Task;
use crate::model::{
    Actor, Backup, BackupStatus, Integrity, Permission, Server, ServerStatus, User, event, now,
};
use crate::store::{self, Connection, TransactionBehavior};
use crate::units;
use serde_json::json;
use std::path::Path;

pub const MAX_NAME_CHARS: usize = 191;
pub const DEFAULT_PER_PAGE: i64 = 25;
pub const MAX_PER_PAGE: i64 = 100;

/// One page of a server's backups, the total, and how many count against the limit.
pub struct Listing {
    pub backups: Vec<Backup>,
    pub total: i64,
    pub backup_count: i64,
}

pub fn list(c: &Connection, server: &Server, page: i64, per_page: i64) -> Result<Listing> {
    let offset = (page - 1).saturating_mul(per_page);
    Ok(Listing {
        backups: store::backups::page(c, server.id, per_page, offset)?,
        total: store::backups::count(c, server.id)?,
        backup_count: store::backups::count_live(c, server.id)?,
    })
}

pub fn get(c: &Connection, server: &Server, uuid: &str) -> Result<Backup> {
    store::backups::for_server(c, server.id, uuid)?.ok_or_else(|| Error::not_found("backup"))
}

/// What a user asks for when creating a backup.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub ignored: Vec<String>,
    pub is_locked: bool,
}

/// `Backup at 2023-10-20 14:30:00`, the name of an unnamed backup.
pub fn default_name(at: i64) -> String {
    let when = jiff::Timestamp::from_second(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("Backup at {}", when.strftime("%Y-%m-%d %H:%M:%S"))
}

/// Checks and records a new backup that a user asked for. `access` is the caller's access
/// to the server (the CLI acts with full access).
pub fn create(
    app: &App,
    actor: &Actor,
    server: &Server,
    access: &Access,
    request: CreateRequest,
) -> Result<Backup> {
    access.require(Permission::BackupCreate)?;
    if request.is_locked && !access.has(Permission::BackupDelete) {
        return Err(Error::Forbidden(
            "Creating a locked backup needs the backup.delete permission.".into(),
        ));
    }
    if let Some(name) = &request.name {
        check_name_length(name)?;
    }
    match start(app, actor, server, request, None)? {
        Started::Backup(backup) => Ok(*backup),
        Started::Unchanged => Err(Error::internal("a backup asked for is never skipped")),
    }
}

/// Refuses (422) a backup name over [`MAX_NAME_CHARS`] characters.
fn check_name_length(name: &str) -> Result<()> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            "name",
            "max:191",
            "The name may not be longer than 191 characters.",
        ));
    }
    Ok(())
}

/// What a schedule asks of the backup it starts.
#[derive(Debug, Clone, Copy)]
pub struct Scheduled {
    /// The schedule: the backup's actor in the activity log.
    pub schedule_id: i64,
    /// Make no backup when the tree's fingerprint equals the last good backup's.
    pub only_if_changed: bool,
}

/// What starting a backup came to.
#[derive(Debug)]
pub enum Started {
    Backup(Box<Backup>),
    /// Nothing changed since the last successful backup (for a schedule that asked).
    Unchanged,
}

/// Checks and records a backup for a schedule. Scheduled backups do not count against the
/// create throttle, and at the server's limit or quota they rotate out the oldest backup
/// that may go instead of being refused (see [`crate::retention::after_backup`]).
pub fn create_scheduled(
    app: &App,
    server: &Server,
    ignored: Vec<String>,
    scheduled: Scheduled,
) -> Result<Started> {
    let request = CreateRequest {
        name: None,
        ignored,
        is_locked: false,
    };
    let actor = Actor::Schedule {
        id: scheduled.schedule_id,
    };
    start(app, &actor, server, request, Some(scheduled))
}

/// Records a new backup and its event, after every check of the contract, under one
/// transaction; the job is queued by the caller ([`queue`]).
fn start(
    app: &App,
    actor: &Actor,
    server: &Server,
    request: CreateRequest,
    scheduled: Option<Scheduled>,
) -> Result<Started> {
    // Refusals that need no sizing come first: the walk is the expensive part of a create.
    may_start(app, &*app.db.conn()?, server, now(), scheduled.is_some())?;
    // Sizing the server directory walks it: done before the transaction, which must be short.
    let root = Path::new(&server.path);
    let scan = archive::scan(
        root,
        &Exclusions::new(root, &request.ignored).never_enter(&app.config.data_dir),
        app.config.compression_workers() as usize,
    );
    if scheduled.is_some_and(|s| s.only_if_changed)
        && store::backups::last_good_fingerprint(&*app.db.conn()?, server.id, &request.ignored)?
            .is_some_and(|last| last == scan.fingerprint)
    {
        return Ok(Started::Unchanged);
    }
    let needed = scan.bytes;
    let storage = app.storage();
    let free = storage.free_space()?;

    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let server =
        store::servers::by_id(&tx, server.id)?.ok_or_else(|| Error::not_found("server"))?;
    let now = now();
    // Again, inside the transaction that serialises creates: the state may have changed.
    let rotates = may_start(app, &tx, &server, now, scheduled.is_some())?;
    let available = free.saturating_sub(app.config.space_reserve_bytes());
    if available < needed {
        return Err(Error::InsufficientStorage(format!(
            "Not enough storage space available for backup: {} needed, {} free beyond the reserve.",
            units::bytes(needed),
            units::bytes(available)
        )));
    }
    if let Some(quota) = server.backup_quota_bytes {
        let used = store::backups::completed_bytes(&tx, server.id)?;
        // Rotating, the backups that may go make room once the new one succeeded: only
        // the locked ones stay.
        let staying = if rotates {
            store::backups::locked_bytes(&tx, server.id)?
        } else {
            used
        };
        if staying.saturating_add(needed as i64) > quota {
            return Err(Error::InsufficientStorage(format!(
                "This backup would exceed the server's backup quota: {} needed, {} of {} used.",
                units::bytes(needed),
                units::bytes(used.max(0) as u64),
                units::bytes(quota.max(0) as u64)
            )));
        }
    }
    let name = match request.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ if scheduled.is_some() => format!("Scheduled {}", default_name(now)),
        _ => default_name(now),
    };
    let uuid = uuid::Uuid::new_v4().to_string();
    let backup = store::backups::insert_creating(
        &tx,
        &store::backups::NewBackup {
            uuid: &uuid,
            server_id: server.id,
            created_by: actor.user_id(),
            name: &name,
            ignored_files: &request.ignored,
            is_locked: request.is_locked,
            compression: server.compression.unwrap_or(app.config.compression),
            totals: crate::model::Progress {
                bytes_total: scan.bytes as i64,
                files_total: scan.files as i64,
                ..Default::default()
            },
            fingerprint: &scan.fingerprint,
            is_scheduled: scheduled.is_some(),
            schedule_id: actor.schedule_id(),
            now,
        },
    )?;
    store::activity::record(
        &tx,
        actor,
        event::BACKUP_START,
        Some(server.id),
        &json!({"backup": uuid, "name": name, "is_scheduled": scheduled.is_some()}),
    )?;
    tx.commit()?;
    Ok(Started::Backup(Box::new(backup)))
}

/// The refusals of a create that depend on the server's state, in the contract's order:
/// busy (409), backups disabled or at the limit (400), throttled (429). A schedule's
/// backups, and any backup of a server with a retention policy, rotate at the limit
/// instead of being refused, as long as some backup may go: returns whether this one
/// rotates.
fn may_start(
    app: &App,
    c: &Connection,
    server: &Server,
    now: i64,
    scheduled: bool,
) -> Result<bool> {
    ensure_idle(c, server, "create backup")?;
    if server.backup_limit == 0 {
        return Err(Error::TooManyBackups(
            "Backups are disabled for this server.".into(),
        ));
    }
    let rotates = scheduled || store::retention::get(c, server.id)?.is_some();
    if store::backups::count_live(c, server.id)? >= server.backup_limit {
        if !rotates {
            return Err(Error::TooManyBackups(
                "This server has reached its backup limit.".into(),
            ));
        }
        if store::backups::count_rotatable(c, server.id)? == 0 {
            return Err(Error::TooManyBackups(
                "This server has reached its backup limit and every backup is locked: unlock or delete one to make room.".into(),
            ));
        }
    }
    let throttle = app.config.throttle_backups;
    if throttle > 0 && !scheduled {
        let window = app.config.throttle_window_secs as i64;
        // Deleting a backup does not give its start back: the activity log keeps it.
        let (recent, oldest) =
            store::activity::user_backup_starts_since(c, server.id, now - window)?;
        if recent >= throttle as i64 {
            let retry_after = (oldest.unwrap_or(now) + window - now).max(1) as u64;
            return Err(Error::TooManyRequests {
                detail: format!(
                    "This server may start {throttle} backups every {}: try again in {}.",
                    units::duration_words(window),
                    units::duration_words(retry_after as i64)
                ),
                retry_after,
            });
        }
    }
    Ok(rotates)
}

/// Refuses (409) to `action` a server that is installing, restoring, or making a backup: at
/// most one backup or restore runs per server. Call inside the transaction that then
/// records the new job. (Suspension is a matter of who asks: see
/// [`crate::auth::Access::require_unsuspended`].)
pub fn ensure_idle(c: &Connection, server: &Server, action: &str) -> Result<()> {
    let busy = match server.status {
        Some(ServerStatus::Installing) => Some("server is installing"),
        Some(ServerStatus::RestoringBackup) => Some("a restore is in progress"),
        None | Some(ServerStatus::Suspended)
            if store::backups::count_creating(c, server.id)? > 0 =>
        {
            Some("another backup is in progress")
        }
        None | Some(ServerStatus::Suspended) => None,
    };
    match busy {
        Some(why) => Err(Error::Conflict(format!("Cannot {action} while {why}."))),
        None => Ok(()),
    }
}

/// Writes an activity-log event about one backup.
fn record_event(
    c: &Connection,
    event: &str,
    actor: &Actor,
    server: &Server,
    backup: &Backup,
) -> Result<()> {
    store::activity::record(
        c,
        actor,
        event,
        Some(server.id),
        &json!({"backup": backup.uuid, "name": backup.name}),
    )?;
    Ok(())
}

/// Hands a created backup to this process's job workers.
pub fn queue(app: &App, backup: &Backup) -> Result<()> {
    store::backups::set_pid(&*app.db.conn()?, backup.id, Some(std::process::id()))?;
    app.jobs.submit(Task::Backup(backup.id));
    Ok(())
}

pub fn delete(app: &App, actor: &Actor, server: &Server, uuid: &str) -> Result<()> {
    remove(app, actor, server, uuid, None)
}

/// Deletes a backup that retention or rotation let go, saying why in its event; a backup
/// that may not be deleted now (locked, being created or restored) is left alone.
pub fn prune(app: &App, server: &Server, uuid: &str, why: &str) -> Result<()> {
    remove(app, &Actor::Hoard, server, uuid, Some(why))
}

/// Deletes a backup, its row and event in one transaction, then its files. `pruned` says
/// why hoard deletes it by itself.
fn remove(
    app: &App,
    actor: &Actor,
    server: &Server,
    uuid: &str,
    pruned: Option<&str>,
) -> Result<()> {
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let backup = get(&tx, server, uuid)?;
    if backup.status == BackupStatus::Creating {
        return Err(Error::Conflict(
            "Cannot delete backup while it is being created.".into(),
        ));
    }
    if store::restores::reading_backup(&tx, backup.id)? {
        return Err(Error::Conflict(
            "Cannot delete backup while it is being restored.".into(),
        ));
    }
    if backup.is_locked && backup.status.is_completed() {
        return Err(Error::BackupLocked(
            "This backup is locked and cannot be deleted.".into(),
        ));
    }
    store::backups::delete(&tx, backup.id)?;
    match pruned {
        None => record_event(&tx, event::BACKUP_DELETE, actor, server, &backup)?,
        Some(why) => store::activity::record(
            &tx,
            actor,
            event::BACKUP_PRUNE,
            Some(server.id),
            &json!({"backup": backup.uuid, "name": backup.name, "reason": why}),
        )?,
    }
    tx.commit()?;
    if let Err(e) = app.storage().remove(&server.uuid, &backup) {
        log::warn!(
            "backup {} deleted, but its files could not be removed: {e}",
            backup.uuid
        );
    }
    Ok(())
}

/// Flips the lock; returns whether the backup is now locked.
pub fn toggle_lock(app: &App, actor: &Actor, server: &Server, uuid: &str) -> Result<bool> {
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let backup = get(&tx, server, uuid)?;
    let locked = !backup.is_locked;
    store::backups::set_locked(&tx, backup.id, locked)?;
    let name = if locked {
        event::BACKUP_LOCK
    } else {
        event::BACKUP_UNLOCK
    };
    record_event(&tx, name, actor, server, &backup)?;
    tx.commit()?;
    update_manifest(app, server, &backup, "lock", |m| m.is_locked = locked);
    Ok(locked)
}

/// Renames a backup, locked or not (Pelican's rename), to `name` trimmed, which may be
/// neither blank nor over [`MAX_NAME_CHARS`] characters; returns it renamed.
pub fn rename(app: &App, actor: &Actor, server: &Server, uuid: &str, name: &str) -> Result<Backup> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid(
            "name",
            "required",
            "The name may not be blank: give the backup a name.",
        ));
    }
    check_name_length(name)?;
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let backup = get(&tx, server, uuid)?;
    store::backups::set_name(&tx, backup.id, name)?;
    store::activity::record(
        &tx,
        actor,
        event::BACKUP_RENAME,
        Some(server.id),
        &json!({"backup": backup.uuid, "old_name": backup.name, "name": name}),
    )?;
    let renamed = get(&tx, server, uuid)?;
    tx.commit()?;
    update_manifest(app, server, &backup, "name", |m| m.name = name.to_string());
    Ok(renamed)
}

/// Makes a change to the backup's manifest, which speaks for the backup if the database is
/// lost. Only a completed backup must have one: failing that is logged, not refused, since
/// the database, which is what hoard reads, already holds the change.
fn update_manifest(
    app: &App,
    server: &Server,
    backup: &Backup,
    what: &str,
    change: impl FnOnce(&mut crate::storage::Manifest),
) {
    let storage = app.storage();
    let updated = storage
        .read_manifest(&server.uuid, &backup.uuid)
        .and_then(|mut manifest| {
            change(&mut manifest);
            storage.write_manifest(&manifest)
        });
    if let Err(e) = updated
        && backup.status.is_completed()
    {
        log::warn!(
            "cannot record the {what} of backup {} in its manifest: {e}",
            backup.uuid
        );
    }
}

/// A fresh signed link to a completed backup, as a path and query.
pub fn download_link(
    app: &App,
    actor: &Actor,
    user: &User,
    server: &Server,
    uuid: &str,
) -> Result<String> {
    let backup = ensure_usable(look_at_archive(app, server, uuid)?, Use::Download)?;
    let conn = app.db.conn()?;
    let expires = now() + app.config.download_link_ttl_secs as i64;
    record_event(&conn, event::BACKUP_DOWNLOAD, actor, server, &backup)?;
    Ok(crate::links::path(
        &app.secret,
        &backup.uuid,
        &user.uuid,
        expires,
    ))
}

/// Removes a server; with `delete_backups` its backups go too, else having any is a conflict.
pub fn delete_server(
    app: &App,
    actor: &Actor,
    server: &Server,
    delete_backups: bool,
) -> Result<()> {
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // As it is now: a restore may have started since the caller loaded it.
    let server =
        &store::servers::by_id(&tx, server.id)?.ok_or_else(|| Error::not_found("server"))?;
    if server.status == Some(ServerStatus::RestoringBackup)
        || store::backups::count_creating(&tx, server.id)? > 0
    {
        return Err(Error::Conflict(
            "Cannot delete a server while a backup or restore of it is running.".into(),
        ));
    }
    let backups = store::backups::all_for_server(&tx, server.id)?;
    if !backups.is_empty() && !delete_backups {
        return Err(Error::Conflict(format!(
            "This server has {} backup(s): delete them first, or delete the server with delete_backups=true.",
            backups.len()
        )));
    }
    for backup in &backups {
        store::backups::delete(&tx, backup.id)?;
    }
    store::servers::delete(&tx, server.id)?;
    store::activity::record(
        &tx,
        actor,
        "server:delete",
        None,
        &json!({"server": server.uuid, "name": server.name, "backups_deleted": backups.len()}),
    )?;
    tx.commit()?;
    let storage = app.storage();
    for backup in &backups {
        if let Err(e) = storage.remove(&server.uuid, backup) {
            log::warn!("cannot remove the files of backup {}: {e}", backup.uuid);
        }
    }
    storage.remove_server_dir(&server.uuid);
    Ok(())
}

/// What a caller wants a backup's archive for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Download,
    /// A corrupt archive is restored only when asked for explicitly.
    Restore {
        allow_corrupt: bool,
    },
}

/// The backup, if its archive may be used as asked: refused while it is being created, when
/// it failed, when its archive is missing or not the size recorded, and, for a restore,
/// when verification found it corrupt.
pub fn ensure_usable(backup: Backup, to: Use) -> Result<Backup> {
    let verb = match to {
        Use::Download => "downloaded",
        Use::Restore { .. } => "restored",
    };
    match backup.status {
        BackupStatus::Creating => Err(Error::BackupNotCompleted(format!(
            "This backup has not completed yet and cannot be {verb}."
        ))),
        BackupStatus::Failed => Err(Error::BackupFailed(format!(
            "This backup failed and cannot be {verb}."
        ))),
        BackupStatus::Missing => Err(Error::BackupFailed(format!(
            "The archive of this backup is missing from storage or is not the size recorded, so it cannot be {verb}."
        ))),
        BackupStatus::Corrupt if to == (Use::Restore { allow_corrupt: false }) => {
            Err(Error::BackupFailed(
                "The archive of this backup is corrupt (its SHA-256 no longer matches the one recorded), so it is not restored; the server's owner or an administrator may restore it anyway with allow_corrupt."
                    .into(),
            ))
        }
        _ => Ok(backup),
    }
}

/// A server's backup, its archive looked at now (see [`refresh`]).
pub fn look_at_archive(app: &App, server: &Server, uuid: &str) -> Result<Backup> {
    let conn = app.db.conn()?;
    refresh(app, &conn, &server.uuid, get(&conn, server, uuid)?)
}

/// Compares a completed backup's archive with the size recorded; records a change (gone,
/// or back) and returns the backup as it now is.
fn refresh(app: &App, c: &Connection, server_uuid: &str, backup: Backup) -> Result<Backup> {
    if !backup.status.is_completed() {
        return Ok(backup);
    }
    let present = app.storage().archive_size(server_uuid, &backup) == Some(backup.bytes as u64);
    let integrity = match (backup.status, present) {
        (BackupStatus::Missing, true) => None,
        (BackupStatus::Missing, false) | (_, true) => return Ok(backup),
        (_, false) => Some(Integrity::Missing),
    };
    match integrity {
        Some(_) => log::warn!(
            "the archive of backup {} is missing or not the {} bytes recorded",
            backup.uuid,
            backup.bytes
        ),
        None => log::info!("the archive of backup {} is back", backup.uuid),
    }
    store::backups::set_integrity(c, backup.id, integrity)?;
    store::backups::by_id(c, backup.id)?.ok_or_else(|| Error::not_found("backup"))
}

/// Looks at every completed backup's archive (see [`refresh`]).
pub fn look_at_archives(app: &App) -> Result<()> {
    let conn = app.db.conn()?;
    for (backup, server_uuid) in store::backups::completed(&conn)? {
        refresh(app, &conn, &server_uuid, backup)?;
    }
    Ok(())
}

/// Starts re-reading a backup's archive to compare it with its recorded SHA-256, as a job.
pub fn verify(
    app: &App,
    actor: &Actor,
    server: &Server,
    access: &Access,
    uuid: &str,
) -> Result<Backup> {
    access.require(Permission::BackupRead)?;
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let backup = get(&tx, server, uuid)?;
    match backup.status {
        BackupStatus::Creating => {
            return Err(Error::BackupNotCompleted(
                "This backup has not completed yet: there is no archive to verify.".into(),
            ));
        }
        BackupStatus::Failed => {
            return Err(Error::BackupFailed(
                "This backup failed: there is no archive to verify.".into(),
            ));
        }
        _ => {}
    }
    if backup.verifying.is_some() || app.jobs.is_tracked(Task::Verify(backup.id)) {
        return Err(Error::Conflict(
            "This backup's archive is already being verified.".into(),
        ));
    }
    store::backups::verify_started(&tx, backup.id, now())?;
    record_event(&tx, event::BACKUP_VERIFY, actor, server, &backup)?;
    tx.commit()?;
    app.jobs.submit(Task::Verify(backup.id));
    let backup = get(&*app.db.conn()?, server, uuid)?;
    Ok(backup)
}

/// Queues the verification of the backup whose archive was checked longest ago, once it is
/// `verify_interval_days` old, when no other verification runs: one archive at a time, so
/// that the reading spreads out and never crowds the backups' disk.
pub fn schedule_verification(app: &App) -> Result<()> {
    let days = app.config.verify_interval_days;
    if days == 0 || app.jobs.is_verifying() {
        return Ok(());
    }
    let now = now();
    let before = now - (days as i64).saturating_mul(86_400);
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(backup) = store::backups::next_to_verify(&tx, before, now)? else {
        return Ok(());
    };
    store::backups::verify_started(&tx, backup.id, now)?;
    tx.commit()?;
    log::info!(
        "verifying the archive of backup {} (scheduled)",
        backup.uuid
    );
    app.jobs.submit(Task::Verify(backup.id));
    Ok(())
}
