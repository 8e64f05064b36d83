//! Retention: which of a server's backups to keep, by restic's `forget` rules ([`rules`]),
//! with hoard's guarantees on top. Locked backups and the newest successful one are never
//! deleted, and nothing is pruned except right after a new backup succeeded, so a schedule
//! that keeps failing never eats the good backups. After that, a server over its backup
//! limit or quota (which a schedule, or a server with a policy, may be for the time a new
//! backup is made) rotates out its oldest backups that may go.

mod rules;

pub use rules::{Candidate, Kind, Policy, Reason, Verdict, Within, apply};

use crate::app::App;
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::model::{Actor, Backup, BackupStatus, Permission, Server, event, now};
use crate::store::{self, Connection};
use serde_json::json;

/// A server's policy; None when it has none (hoard then never prunes by itself).
pub fn policy(c: &Connection, server: &Server, access: &Access) -> Result<Option<Policy>> {
    access.require(Permission::BackupRead)?;
    Ok(store::retention::get(c, server.id)?)
}

/// Sets a server's policy (an empty one removes it). Takes effect after the next backup
/// that succeeds: setting a policy deletes nothing by itself.
pub fn set_policy(
    c: &Connection,
    actor: &Actor,
    server: &Server,
    access: &Access,
    policy: &Policy,
) -> Result<()> {
    access.require(Permission::BackupDelete)?;
    store::retention::set(c, server.id, policy, now())?;
    store::activity::record(
        c,
        actor,
        event::RETENTION_UPDATE,
        Some(server.id),
        &json!({"policy": policy}),
    )?;
    Ok(())
}

fn kind(status: BackupStatus) -> Kind {
    match status {
        BackupStatus::Completed | BackupStatus::CompletedWithWarnings => Kind::Successful,
        BackupStatus::Failed => Kind::Failed,
        BackupStatus::Creating => Kind::InProgress,
        BackupStatus::Missing => Kind::Missing,
        BackupStatus::Corrupt => Kind::Corrupt,
    }
}

/// Every backup of the server with what `policy` would do with it, newest first.
pub fn verdicts(app: &App, backups: Vec<Backup>, policy: &Policy) -> Vec<(Backup, Verdict)> {
    let candidates: Vec<Candidate> = backups
        .iter()
        .map(|b| Candidate {
            id: b.id,
            created_at: b.created_at,
            kind: kind(b.status),
            locked: b.is_locked,
        })
        .collect();
    let mut by_id: std::collections::HashMap<i64, Backup> =
        backups.into_iter().map(|b| (b.id, b)).collect();
    apply(policy, &candidates, &app.config.timezone)
        .into_iter()
        .filter_map(|v| by_id.remove(&v.id).map(|b| (b, v)))
        .collect()
}

/// What a proposed policy would keep and delete of the server's backups now, changing
/// nothing.
pub fn preview(
    app: &App,
    server: &Server,
    access: &Access,
    policy: &Policy,
) -> Result<Vec<(Backup, Verdict)>> {
    access.require(Permission::BackupRead)?;
    let backups = store::backups::all_for_server(&*app.db.conn()?, server.id)?;
    Ok(verdicts(app, backups, policy))
}

/// After a backup of `server` succeeded: deletes what its policy does not keep, then, while
/// the server is over its backup limit or quota, its oldest backups that may go. Returns
/// how many were deleted. A backup that cannot be deleted now (being restored) is left
/// for the next time.
pub fn after_backup(app: &App, server: &Server) -> Result<usize> {
    let mut pruned = 0;
    let policy = store::retention::get(&*app.db.conn()?, server.id)?;
    if let Some(policy) = &policy {
        let backups = store::backups::all_for_server(&*app.db.conn()?, server.id)?;
        for (backup, verdict) in verdicts(app, backups, policy) {
            if verdict.keep {
                continue;
            }
            let why = verdict
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            pruned += prune(app, server, &backup, &format!("retention: {why}"));
        }
    }
    loop {
        let conn = app.db.conn()?;
        let over_limit = store::backups::count_live(&conn, server.id)? > server.backup_limit;
        let over_quota = server.backup_quota_bytes.is_some_and(|quota| {
            store::backups::completed_bytes(&conn, server.id).unwrap_or(0) > quota
        });
        if !(over_limit || over_quota) {
            return Ok(pruned);
        }
        let backups = store::backups::all_for_server(&conn, server.id)?;
        drop(conn);
        let why = if over_limit {
            format!("rotation: over the backup limit of {}", server.backup_limit)
        } else {
            "rotation: over the backup quota".to_string()
        };
        // Oldest first, among what no rule protects: not locked, not the newest successful.
        let newest_successful = backups
            .iter()
            .find(|b| kind(b.status) == Kind::Successful)
            .map(|b| b.id);
        let Some(victim) = backups
            .iter()
            .rev()
            .find(|b| b.status.is_completed() && !b.is_locked && Some(b.id) != newest_successful)
        else {
            log::warn!(
                "server {} is over its backup limit or quota, but every backup that is left is locked or the newest",
                server.short_id
            );
            return Ok(pruned);
        };
        if prune(app, server, victim, &why) == 0 {
            return Ok(pruned);
        }
        pruned += 1;
    }
}

/// Deletes one backup for retention; 1 if it went, 0 if it could not go now.
fn prune(app: &App, server: &Server, backup: &Backup, why: &str) -> usize {
    match crate::backups::prune(app, server, &backup.uuid, why) {
        Ok(()) => {
            log::info!("backup {} pruned ({why})", backup.uuid);
            1
        }
        Err(Error::Conflict(e) | Error::BackupLocked(e)) => {
            log::info!("backup {} is kept for now: {e}", backup.uuid);
            0
        }
        Err(e) => {
            log::warn!("cannot prune backup {}: {e}", backup.uuid);
            0
        }
    }
}
