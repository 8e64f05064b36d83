//! The backup job: hooks, scan, archive, publish, record.

use super::{Task, Tracker, hooks};
use crate::app::App;
use crate::archive::{self, Exclusions};
use crate::error::{Error, Result};
use crate::model::{Backup, BackupStatus, Server, event, now};
use crate::notify;
use crate::store::{self, TransactionBehavior};
use serde_json::json;
use std::time::Duration;

pub fn run(app: &App, id: i64, tracker: &Tracker) {
    let loaded = (|| -> Result<(Backup, Server)> {
        let conn = app.db.conn()?;
        let backup = store::backups::by_id(&conn, id)?.ok_or_else(|| Error::not_found("backup"))?;
        let server = store::servers::by_id(&conn, backup.server_id)?
            .ok_or_else(|| Error::not_found("server"))?;
        Ok((backup, server))
    })();
    let (backup, server) = match loaded {
        Ok(found) if found.0.status == BackupStatus::Creating => found,
        Ok(_) => return,
        Err(e) => {
            log::error!("backup job {id} cannot start: {e}");
            return;
        }
    };
    log::info!(
        "backup {} of server {} ({}) started",
        backup.uuid,
        server.name,
        server.short_id
    );
    let produced = archive_server(app, &backup, &server, tracker);
    // The post-backup hook (e.g. `save-on`) is part of the job: the backup shows as
    // finished only once it ran.
    if let Some(command) = &server.hooks.post_backup {
        let status = match &produced {
            Ok(stored) if !stored.output.unreadable.is_empty() => {
                BackupStatus::CompletedWithWarnings
            }
            Ok(_) => BackupStatus::Completed,
            Err(_) => BackupStatus::Failed,
        };
        let job = hooks::Job::Backup {
            name: &backup.name,
            status: Some(status),
        };
        if let Err(e) = hooks::run(
            "post_backup",
            command,
            &server.path,
            &hooks::hook_env(&server, &backup.uuid, job),
            hook_timeout(app),
        ) {
            log::warn!("backup {}: {e}", backup.uuid);
        }
    }
    match produced.and_then(|archive| record(app, &backup, &server, archive)) {
        Ok(()) => {
            // Only now, with a new good backup recorded, may older ones go.
            if let Err(e) = crate::retention::after_backup(app, &server) {
                log::warn!(
                    "cannot apply the retention policy of server {}: {e}",
                    server.short_id
                );
            }
            tell(app, &server, backup.id);
            storage_check(app, &server);
        }
        Err(failure) => {
            log::warn!(
                "backup {} of server {} failed: {}",
                backup.uuid,
                server.short_id,
                failure.why
            );
            if let Err(e) = fail(app, &backup, &server, &failure) {
                log::error!("cannot record the failure of backup {}: {e}", backup.uuid);
            }
            tell(app, &server, backup.id);
        }
    }
}

/// After a backup: tells the channels that want to know when the server's storage runs low,
/// once a day at most per server.
fn storage_check(app: &App, server: &Server) {
    let judged = (|| -> Result<crate::servers::StorageState> {
        let conn = app.db.conn()?;
        let (used, last) = store::backups::usage(&conn, Some(server.id))?
            .remove(&server.id)
            .unwrap_or((0, 0));
        let free = app
            .storage()
            .free_space()?
            .saturating_sub(app.config.space_reserve_bytes());
        Ok(crate::servers::storage_state(server, used, last, free))
    })();
    match judged {
        Ok(state) => {
            if let Some(warning) = state.warning
                && app.notifier.first_warning_today(server.id)
            {
                let notice = notify::Notice::new(notify::Event::StorageLow, warning, Some(server));
                notify::emit(app, Some(server.id), &notice);
            }
        }
        Err(e) => log::warn!(
            "cannot judge the storage of server {}: {e}",
            server.short_id
        ),
    }
}

/// Notifies the channels that want to know how a backup ended.
fn tell(app: &App, server: &Server, id: i64) {
    let Ok(Some(backup)) = app.db.conn().and_then(|c| store::backups::by_id(&c, id)) else {
        return;
    };
    let (event, message) = match backup.status {
        BackupStatus::Failed => (
            notify::Event::BackupFailed,
            format!(
                "The backup of {} failed: {}",
                server.name,
                backup.error.as_deref().unwrap_or("no reason was recorded")
            ),
        ),
        _ => (
            notify::Event::BackupCompleted,
            format!(
                "The backup of {} completed: {}.",
                server.name,
                crate::units::bytes(backup.bytes.max(0) as u64)
            ),
        ),
    };
    let mut notice = notify::Notice::new(event, message, Some(server));
    notice.backup = Some(notify::BackupRef::of(
        &backup,
        notify::since(backup.created_at),
    ));
    notify::emit(app, Some(server.id), &notice);
}

fn hook_timeout(app: &App) -> Duration {
    Duration::from_secs(app.config.hook_timeout_secs)
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Hook(#[from] hooks::Error),
    #[error("the server directory {0} does not exist")]
    NoServerDirectory(String),
    #[error("cannot create the backup directory: {0}")]
    BackupDirectory(std::io::Error),
    #[error(transparent)]
    Archive(#[from] archive::Error),
    #[error("cannot store the finished archive: {0}")]
    Publish(std::io::Error),
    #[error("cannot record the backup: {0}")]
    Catalogue(#[from] Error),
    /// The job stopped without finishing (hoard stopped, or the process died): why.
    #[error("{0}")]
    Stopped(String),
}

impl Failure {
    /// What a failed hook printed: for the server's owner and admins only.
    fn detail(&self) -> Option<&str> {
        match self {
            Failure::Hook(e) => e.output(),
            _ => None,
        }
    }
}

/// A failure, with the files warned about until then.
struct Failed {
    why: Failure,
    warnings: Vec<String>,
}

impl<E: Into<Failure>> From<E> for Failed {
    fn from(e: E) -> Failed {
        Failed {
            why: e.into(),
            warnings: Vec::new(),
        }
    }
}

/// An archive written, published and described by its manifest, not yet recorded.
struct Stored {
    output: archive::Output,
    relative: String,
}

/// Runs the pre-backup hook and writes the archive.
fn archive_server(
    app: &App,
    backup: &Backup,
    server: &Server,
    tracker: &Tracker,
) -> std::result::Result<Stored, Failed> {
    if let Some(command) = &server.hooks.pre_backup {
        let job = hooks::Job::Backup {
            name: &backup.name,
            status: None,
        };
        hooks::run(
            "pre_backup",
            command,
            &server.path,
            &hooks::hook_env(server, &backup.uuid, job),
            hook_timeout(app),
        )?;
    }
    let root = std::path::Path::new(&server.path);
    if !root.is_dir() {
        return Err(Failure::NoServerDirectory(server.path.clone()).into());
    }
    let exclusions = Exclusions::new(root, &backup.ignored_files).never_enter(&app.config.data_dir);
    {
        // The create request sized the directory already; the totals only drive the
        // progress display, so a second walk is not worth its time.
        let conn = app.db.conn().map_err(Error::from)?;
        store::backups::mark_started(&conn, backup.id, now()).map_err(Error::from)?;
    }
    let storage = app.storage();
    storage
        .server_dir(&server.uuid)
        .map_err(Failure::BackupDirectory)?;
    let partial = storage.partial_path(&server.uuid, &backup.uuid);
    let options = archive::Options {
        compression: backup.compression,
        zstd_level: app.config.zstd_level,
        threads: app.config.compression_workers(),
        gzip_level: app.config.gzip_level,
        read_limit_bytes_per_sec: app.config.io_limit_mib_s.saturating_mul(1 << 20),
        max_bytes: server.max_backup_bytes.max(0) as u64,
        skip_unreadable: server.skip_unreadable,
    };
    let output = archive::write(
        root,
        &exclusions,
        &partial,
        &options,
        &tracker.progress,
        app.jobs.cancel_flag(),
    )?;

    let relative =
        crate::storage::Storage::relative_path(&server.uuid, &backup.uuid, backup.compression);
    let dest = storage.resolve(&relative).expect("built from uuids");
    let published = storage.publish(&partial, &dest).and_then(|()| {
        storage.write_manifest(&crate::storage::Manifest {
            format: 1,
            server_uuid: server.uuid.clone(),
            server_name: Some(server.name.clone()),
            server_path: Some(server.path.clone()),
            uuid: backup.uuid.clone(),
            name: backup.name.clone(),
            ignored_files: backup.ignored_files.clone(),
            compression: backup.compression,
            sha256_hash: output.sha256.clone(),
            bytes: output.bytes,
            files: output.content.files,
            content_bytes: output.content.bytes,
            is_locked: backup.is_locked,
            created_at: crate::model::rfc3339(backup.created_at),
            completed_at: crate::model::rfc3339(now()),
            warnings: output.warnings.clone(),
            unreadable: output.unreadable.len() as u64,
            unreadable_paths: output.unreadable.clone(),
            is_scheduled: backup.is_scheduled,
        })
    });
    let mut done = backup.clone();
    done.storage_path = Some(relative.clone());
    if let Err(e) = published {
        let _ = storage.remove(&server.uuid, &done);
        return Err(Failed {
            why: Failure::Publish(e),
            warnings: output.warnings,
        });
    }
    pause_after_publish();
    Ok(Stored { output, relative })
}

/// For tests only: with `HOARD_TEST_PAUSE_AFTER_PUBLISH=<file>` in the environment, a backup
/// creates that file once its archive and manifest are published and waits, before
/// recording them, until the file is removed: the window a crash must not leave an orphan
/// in.
fn pause_after_publish() {
    let Some(flag) = std::env::var_os("HOARD_TEST_PAUSE_AFTER_PUBLISH") else {
        return;
    };
    let flag = std::path::PathBuf::from(flag);
    if std::fs::write(&flag, b"").is_ok() {
        while flag.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Marks the backup completed; if that cannot be recorded, the archive is removed.
fn record(
    app: &App,
    backup: &Backup,
    server: &Server,
    stored: Stored,
) -> std::result::Result<(), Failed> {
    let Stored { output, relative } = stored;
    // One transaction: the completion and its event are recorded together or not at all,
    // so the archive is removed below only when no row points at it.
    let recorded = (|| -> Result<()> {
        let mut conn = app.db.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        store::backups::mark_completed(
            &tx,
            backup.id,
            &store::backups::Completion {
                sha256_hash: &output.sha256,
                bytes: output.bytes as i64,
                storage_path: &relative,
                warnings: &output.warnings,
                unreadable_paths: &output.unreadable,
                content_bytes: output.content.bytes as i64,
                content_files: output.content.files as i64,
                now: now(),
            },
        )?;
        store::activity::record(
            &tx,
            &backup.requested_by,
            event::BACKUP_COMPLETE,
            Some(server.id),
            &json!({"backup": backup.uuid, "name": backup.name, "bytes": output.bytes}),
        )?;
        tx.commit()?;
        Ok(())
    })();
    if let Err(e) = recorded {
        let mut stored = backup.clone();
        stored.storage_path = Some(relative);
        let _ = app.storage().remove(&server.uuid, &stored);
        return Err(Failed {
            why: Failure::Catalogue(e),
            warnings: output.warnings,
        });
    }
    log::info!(
        "backup {} of server {} completed: {} bytes, {} entries, {} warning(s), {} unreadable",
        backup.uuid,
        server.short_id,
        output.bytes,
        output.content.files,
        output.warnings.len(),
        output.unreadable.len()
    );
    Ok(())
}

/// Marks a backup failed, removes any partial file, and logs the event.
fn fail(app: &App, backup: &Backup, server: &Server, failure: &Failed) -> Result<()> {
    if let Err(e) = app.storage().remove(&server.uuid, backup) {
        log::warn!(
            "cannot remove the partial archive of backup {}: {e}",
            backup.uuid
        );
    }
    let message = failure.why.to_string();
    let conn = app.db.conn()?;
    store::backups::mark_failed(
        &conn,
        backup.id,
        &store::backups::Failure {
            error: &message,
            error_detail: failure.why.detail(),
            warnings: &failure.warnings,
            ended_at: now(),
        },
    )?;
    store::activity::record(
        &conn,
        &backup.requested_by,
        event::BACKUP_FAIL,
        Some(server.id),
        &json!({"backup": backup.uuid, "name": backup.name, "error": message}),
    )?;
    Ok(())
}

pub fn fail_by_id(app: &App, id: i64, message: &str) -> Result<()> {
    let conn = app.db.conn()?;
    let Some(backup) = store::backups::by_id(&conn, id)? else {
        return Ok(());
    };
    if backup.status != BackupStatus::Creating {
        return Ok(());
    }
    let Some(server) = store::servers::by_id(&conn, backup.server_id)? else {
        return Ok(());
    };
    drop(conn);
    let failure = Failed {
        why: Failure::Stopped(message.to_string()),
        warnings: backup.warnings.clone(),
    };
    fail(app, &backup, &server, &failure)?;
    tell(app, &server, backup.id);
    Ok(())
}

/// Fails backups whose job died; returns how many.
pub fn reap(app: &App) -> Result<usize> {
    let creating = store::backups::creating(&*app.db.conn()?)?;
    let mut reaped = 0;
    for (backup, pid) in creating {
        let heartbeat = backup.heartbeat_at.unwrap_or(backup.created_at);
        if super::is_dead(app, Task::Backup(backup.id), heartbeat, pid) {
            log::warn!("backup {} was interrupted: its job is gone", backup.uuid);
            fail_by_id(
                app,
                backup.id,
                "interrupted: hoard stopped while this backup was being created",
            )?;
            reaped += 1;
        }
    }
    Ok(reaped)
}
