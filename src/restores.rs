//! Restores as users see them: the rules for starting one (under one transaction with its
//! journal row), and where its archive is. The job that runs it is `jobs::restore`; the
//! engine that moves the files, `restore`.

use crate::app::App;
use crate::error::{Error, Result};
use crate::jobs::Task;
use crate::model::{Actor, Server, ServerStatus, event, now};
use crate::restore::Workspace;
use crate::safefs::Dir;
use crate::store::restores::Restore;
use crate::store::{self, TransactionBehavior};
use serde_json::json;
use std::path::Path;

/// Starts a restore: checks, journal row, server status, queued job.
pub fn start(
    app: &App,
    actor: &Actor,
    server: &Server,
    backup_uuid: &str,
    truncate: bool,
    allow_corrupt: bool,
) -> Result<Restore> {
    // Outside the transaction, which a refusal rolls back: a missing archive is recorded.
    crate::backups::look_at_archive(app, server, backup_uuid)?;
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let server =
        store::servers::by_id(&tx, server.id)?.ok_or_else(|| Error::not_found("server"))?;
    let backup = store::backups::for_server(&tx, server.id, backup_uuid)?
        .ok_or_else(|| Error::not_found("backup"))?;
    let backup =
        crate::backups::ensure_usable(backup, crate::backups::Use::Restore { allow_corrupt })?;
    crate::backups::ensure_idle(&tx, &server, "restore backup")?;
    let server_dir = Path::new(&server.path);
    let unusable = |e: std::io::Error| {
        Error::Conflict(format!(
            "The server directory cannot be restored into: {e}."
        ))
    };
    let free = Dir::open(server_dir)
        .and_then(|dir| dir.free_space())
        .map_err(unusable)?;
    if free < backup.content_bytes as u64 {
        return Err(Error::InsufficientStorage(format!(
            "Not enough storage space to restore: {} needed, {} free beside the server directory.",
            crate::units::bytes(backup.content_bytes.max(0) as u64),
            crate::units::bytes(free)
        )));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let work = Workspace::location(server_dir, &uuid).map_err(unusable)?;
    let restore = store::restores::insert(
        &tx,
        &store::restores::NewRestore {
            uuid: &uuid,
            server_id: server.id,
            backup_id: backup.id,
            backup_uuid: &backup.uuid,
            user_id: actor.user_id(),
            truncate,
            allow_corrupt,
            staging_path: &work.join("staging").to_string_lossy(),
            trash_path: &work.join("trash").to_string_lossy(),
            bytes_total: backup.bytes,
            server_status: server.status,
            now: now(),
        },
    )?;
    store::restores::set_pid(&tx, restore.id, Some(std::process::id()))?;
    store::servers::set_status(&tx, server.id, Some(ServerStatus::RestoringBackup))?;
    store::activity::record(
        &tx,
        actor,
        event::BACKUP_RESTORE,
        Some(server.id),
        &json!({
            "backup": backup.uuid,
            "name": backup.name,
            "truncate": truncate,
            "allow_corrupt": allow_corrupt,
        }),
    )?;
    tx.commit()?;
    app.jobs.submit(Task::Restore(restore.id));
    Ok(restore)
}
