//! Restoring a backup over a server's files, so that whatever happens the files end up
//! either exactly the backup's or exactly what they were before.
//!
//! The job extracts into a staging directory beside the server directory (same filesystem),
//! verifying the archive's hash on the way; only when that fully succeeded are the server's
//! entries moved aside and the staged ones moved in. A journal row records the step reached;
//! a swap that fails is undone at once, and [`recover`] undoes one whose process died.

mod direct;
mod extract;
mod swap;

use crate::app::App;
use crate::error::{Error, Result};
use crate::jobs::{Task, Tracker, hooks};
use crate::model::{Backup, Origin, Server, ServerStatus, event, now};
use crate::store::restores::{Restore, Step};
use crate::store::{self, TransactionBehavior};
use serde_json::json;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use extract::{Extracted, Limits, extract};

/// Starts a restore: checks, journal row, server status, queued job.
pub fn start(
    app: &App,
    origin: &Origin,
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
    if !server_dir.is_dir() {
        return Err(Error::Conflict(format!(
            "The server directory {} does not exist.",
            server.path
        )));
    }
    let free = crate::storage::free_space(server_dir)?;
    if free < backup.content_bytes as u64 {
        return Err(Error::InsufficientStorage(format!(
            "Not enough storage space to restore: the backup holds {} bytes but only {free} bytes are free beside the server directory.",
            backup.content_bytes
        )));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let work = work_dir(server_dir, &uuid);
    let restore = store::restores::insert(
        &tx,
        &store::restores::NewRestore {
            uuid: &uuid,
            server_id: server.id,
            backup_id: backup.id,
            backup_uuid: &backup.uuid,
            user_id: origin.user_id,
            truncate,
            staging_path: &work.join("staging").to_string_lossy(),
            trash_path: &work.join("trash").to_string_lossy(),
            bytes_total: backup.bytes,
            now: now(),
        },
    )?;
    store::restores::set_pid(&tx, restore.id, Some(std::process::id()))?;
    store::servers::set_status(&tx, server.id, Some(ServerStatus::RestoringBackup))?;
    store::activity::record(
        &tx,
        event::BACKUP_RESTORE,
        origin.user_id,
        Some(server.id),
        &json!({"backup": backup.uuid, "name": backup.name, "truncate": truncate}),
        origin.ip.as_deref(),
        now(),
    )?;
    tx.commit()?;
    app.jobs.submit(Task::Restore(restore.id));
    Ok(restore)
}

fn archive_path(app: &App, backup: &Backup) -> Result<PathBuf> {
    backup
        .storage_path
        .as_deref()
        .and_then(|p| app.storage().resolve(p))
        .ok_or_else(|| {
            Error::BadRequest("The archive of this backup is missing from storage.".into())
        })
}

/// Where staging and trash live: beside the server directory when its parent is on the
/// same filesystem and writable, else inside it (a mount point), skipped by every move.
fn work_dir(server_dir: &Path, restore_uuid: &str) -> PathBuf {
    let short = &restore_uuid[..8];
    let dir_name = server_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(parent) = server_dir.parent() {
        let same_fs = match (std::fs::metadata(parent), std::fs::metadata(server_dir)) {
            (Ok(p), Ok(s)) => p.dev() == s.dev(),
            _ => false,
        };
        let beside = parent.join(format!(".hoard-restore-{dir_name}-{short}"));
        if same_fs && std::fs::create_dir(&beside).is_ok() {
            let _ = std::fs::remove_dir(&beside);
            return beside;
        }
    }
    server_dir.join(format!(".hoard-restore-{short}"))
}

/// The work directory's name when it lives inside the server directory.
fn skip_name(work: &Path, server_dir: &Path) -> Option<OsString> {
    (work.parent() == Some(server_dir))
        .then(|| work.file_name().map(|n| n.to_os_string()))
        .flatten()
}

struct Paths {
    server: PathBuf,
    work: PathBuf,
    staging: PathBuf,
    trash: PathBuf,
    skip: Option<OsString>,
}

impl Paths {
    fn of(restore: &Restore, server: &Server) -> Paths {
        let staging = PathBuf::from(&restore.staging_path);
        let work = staging
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| staging.clone());
        let server_dir = PathBuf::from(&server.path);
        Paths {
            skip: skip_name(&work, &server_dir),
            trash: PathBuf::from(&restore.trash_path),
            server: server_dir,
            staging,
            work,
        }
    }

    /// The work directory's name once nothing in it is wanted any more.
    fn discarded(&self) -> PathBuf {
        let mut name = self.work.file_name().unwrap_or_default().to_os_string();
        name.push("-discarded");
        self.work.with_file_name(name)
    }

    /// Drops the work directory after a rollback: renamed first, so that the rollback is
    /// complete on disk before anything in it is deleted (a rerun would otherwise take
    /// the server's files for staged ones as their staged copies vanish).
    fn discard(&self) {
        let discarded = self.discarded();
        let renamed = match std::fs::rename(&self.work, &discarded) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => crate::storage::sync_parent(&self.work),
        };
        let removed = renamed.and_then(|()| remove_tree(&discarded));
        if let Err(e) = removed {
            log::warn!("cannot remove {}: {e}", self.work.display());
        }
    }

    /// Where an overlay keeps its plan, so that it can be undone after a crash.
    fn overlay_plan(&self) -> PathBuf {
        self.work.join("overlay-plan.json")
    }

    fn remove_work(&self) -> std::io::Result<()> {
        remove_tree(&self.work)
    }
}

/// Removes a directory tree; one already gone is no error.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn hook_env<'a>(
    server: &'a Server,
    restore: &'a Restore,
    status: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut env = vec![
        ("HOARD_SERVER_UUID", server.uuid.as_str()),
        ("HOARD_SERVER_NAME", server.name.as_str()),
        ("HOARD_SERVER_PATH", server.path.as_str()),
        ("HOARD_BACKUP_UUID", restore.backup_uuid.as_str()),
    ];
    if let Some(status) = status {
        env.push(("HOARD_RESTORE_STATUS", status));
    }
    env
}

fn load(app: &App, id: i64) -> Result<Option<(Restore, Server)>> {
    let conn = app.db.conn()?;
    let Some(restore) = store::restores::by_id(&conn, id)? else {
        return Ok(None);
    };
    let Some(server) = store::servers::by_id(&conn, restore.server_id)? else {
        return Ok(None);
    };
    Ok(Some((restore, server)))
}

fn set_step(app: &App, id: i64, step: Step) -> std::result::Result<(), String> {
    let conn = app.db.conn().map_err(|e| e.to_string())?;
    store::restores::set_step(&conn, id, step).map_err(|e| e.to_string())
}

/// Runs a queued restore to its end.
pub fn run(app: &App, id: i64, tracker: &Tracker) {
    let (restore, server) = match load(app, id) {
        Ok(Some(found)) if found.0.step == Step::Queued => found,
        Ok(_) => return,
        Err(e) => {
            log::error!("restore job {id} cannot start: {e}");
            return;
        }
    };
    let paths = Paths::of(&restore, &server);
    let timeout = Duration::from_secs(app.config.hook_timeout_secs);
    if let Some(command) = &server.hooks.pre_restore
        && let Err(e) = hooks::run(
            "pre_restore",
            command,
            &server.path,
            &hook_env(&server, &restore, None),
            timeout,
        )
    {
        conclude(app, &restore, &server, Err(e), false);
        return;
    }
    let outcome = match restore_files(app, &restore, &paths, tracker) {
        Ok(()) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
        Err(Stop::Stuck(e)) => {
            log::error!(
                "restore {} of server {} failed and could not be undone: {e}; it is retried while the server stays locked",
                restore.uuid,
                server.short_id
            );
            return;
        }
    };
    let succeeded = outcome.is_ok();
    conclude(app, &restore, &server, outcome, true);
    if succeeded {
        // The old files go once the server has its new ones: nobody waits on the delete.
        remove_leftovers(&restore, &paths.work);
    }
}

/// Removes a successful restore's work directory (the replaced files).
fn remove_leftovers(restore: &Restore, work: &Path) {
    let ours = work
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".hoard-restore-"));
    if !ours {
        return;
    }
    if let Err(e) = remove_tree(work) {
        log::warn!(
            "restore {}: cannot remove {}: {e}",
            restore.uuid,
            work.display()
        );
    }
}

/// Why a restore stopped.
enum Stop {
    /// The server's files are as they were.
    Failed(String),
    /// The swap could not be undone: the journal keeps its step, so that recovery tries
    /// again, and the server stays locked meanwhile.
    Stuck(String),
}

impl From<String> for Stop {
    fn from(reason: String) -> Stop {
        Stop::Failed(reason)
    }
}

/// Extraction and the swap; on failure, the server's files are put back as they were.
fn restore_files(
    app: &App,
    restore: &Restore,
    paths: &Paths,
    tracker: &Tracker,
) -> std::result::Result<(), Stop> {
    set_step(app, restore.id, Step::Extracting)?;
    let backup = {
        let conn = app.db.conn().map_err(|e| e.to_string())?;
        restore
            .backup_id
            .map(|id| store::backups::by_id(&conn, id))
            .transpose()
            .map_err(|e| e.to_string())?
            .flatten()
            .ok_or_else(|| "the backup was deleted before the restore started".to_string())?
    };
    let archive = archive_path(app, &backup).map_err(|e| e.to_string())?;
    let extracted = (|| {
        paths
            .remove_work()
            .map_err(|e| format!("cannot clear the staging directory: {e}"))?;
        std::fs::create_dir_all(&paths.staging)
            .map_err(|e| format!("cannot create the staging directory: {e}"))?;
        extract(
            &archive,
            backup.compression,
            backup.sha256_hash.as_deref().unwrap_or_default(),
            &paths.staging,
            Limits {
                max_entries: backup.content_files.max(0) as u64,
                max_bytes: backup.content_bytes.max(0) as u64,
            },
            &tracker.progress,
            app.jobs.cancel_flag(),
        )
    })();
    let extracted = match extracted {
        Ok(done) => done,
        Err(e) => {
            let _ = paths.remove_work();
            return Err(e.into());
        }
    };
    for note in &extracted.skipped {
        log::warn!("restore {}: {note}", restore.uuid);
    }
    // The swap may only start once the staged files are on disk: after a power loss the
    // journal finishes the swap, and it must find whole files.
    if let Err(e) = crate::storage::sync_filesystem(&paths.staging) {
        let _ = paths.remove_work();
        return Err(format!("cannot flush the restored files to disk: {e}").into());
    }
    let swapped = if restore.truncate {
        replace(app, restore, paths)
    } else {
        overlay(app, restore, paths)
    };
    if let Err((reached, e)) = swapped {
        return Err(match roll_back(app, restore, paths, reached) {
            Ok(()) => Stop::Failed(format!(
                "{e}; the server's files were put back as they were"
            )),
            Err(u) => Stop::Stuck(format!("{e}; {u}")),
        });
    }
    // Inside the server directory the replaced files would be in the server's next backup,
    // so they go before the server is released; beside it, after (see `run`).
    if paths.skip.is_some() {
        remove_leftovers(restore, &paths.work);
    }
    Ok(())
}

/// A swap that stopped: the step it had reached (as recorded), and why.
type Stopped = (Step, String);

/// `truncate: true`: the server's entries go to the trash, then the staged ones move in.
/// The journal names each phase before its first move, so a crash is undone by the step,
/// and says `cleanup` once the swap is whole: only then may the replaced files go.
fn replace(app: &App, restore: &Restore, paths: &Paths) -> std::result::Result<(), Stopped> {
    let skip = paths.skip.as_ref();
    set_step(app, restore.id, Step::Evacuating).map_err(|e| (Step::Extracting, e))?;
    swap::move_all(&paths.server, &paths.trash, skip).map_err(|e| {
        (
            Step::Evacuating,
            format!("cannot move the current files aside: {e}"),
        )
    })?;
    set_step(app, restore.id, Step::Installing).map_err(|e| (Step::Evacuating, e))?;
    swap::move_all(&paths.staging, &paths.server, skip).map_err(|e| {
        (
            Step::Installing,
            format!("cannot move the restored files in: {e}"),
        )
    })?;
    set_step(app, restore.id, Step::Cleanup).map_err(|e| (Step::Installing, e))
}

/// `truncate: false`: the staged entries are laid over the server's, by a plan saved first.
fn overlay(app: &App, restore: &Restore, paths: &Paths) -> std::result::Result<(), Stopped> {
    let plan = swap::Overlay::plan(&paths.staging, &paths.server)
        .and_then(|plan| plan.save(&paths.overlay_plan()).map(|()| plan))
        .map_err(|e| (Step::Extracting, format!("cannot plan the overlay: {e}")))?;
    set_step(app, restore.id, Step::Overlaying).map_err(|e| (Step::Extracting, e))?;
    plan.apply(&paths.staging, &paths.server, &paths.trash)
        .map_err(|e| {
            (
                Step::Overlaying,
                format!("cannot lay the restored files over the current ones: {e}"),
            )
        })?;
    // The renames reached many directories: all of them must be on disk before the journal
    // lets the replaced files go.
    crate::storage::sync_filesystem(&paths.server).map_err(|e| {
        (
            Step::Overlaying,
            format!("cannot flush the overlay to disk: {e}"),
        )
    })?;
    set_step(app, restore.id, Step::Cleanup).map_err(|e| (Step::Overlaying, e))
}

/// Puts the server's files back as they were before the swap, from what is on disk at
/// `reached`, and removes the work directory. Running it again after an interruption
/// finishes it. Err says where the files are when they could not be put back.
fn roll_back(
    app: &App,
    restore: &Restore,
    paths: &Paths,
    reached: Step,
) -> std::result::Result<(), String> {
    // A rollback that completed renamed the work directory away: at most its delete is left.
    if !paths.work.exists() {
        paths.discard();
        return Ok(());
    }
    let skip = paths.skip.as_ref();
    let put_back = match reached {
        Step::Evacuating => swap::move_all(&paths.trash, &paths.server, skip),
        // The staged entries go back to staging first; only once the journal says so may
        // the old ones return, or a second run would take them for staged ones.
        Step::Installing => swap::move_all(&paths.server, &paths.staging, skip).and_then(|()| {
            set_step(app, restore.id, Step::Evacuating).map_err(std::io::Error::other)?;
            swap::move_all(&paths.trash, &paths.server, skip)
        }),
        Step::Overlaying => swap::Overlay::load(&paths.overlay_plan())
            .and_then(|plan| plan.undo(&paths.staging, &paths.server, &paths.trash)),
        _ => Ok(()),
    };
    match put_back.and_then(|()| crate::storage::sync_filesystem(&paths.server)) {
        Ok(()) => {
            paths.discard();
            Ok(())
        }
        Err(e) => Err(format!(
            "the server's files could not be put back ({e}): the old ones are in {}, the restored ones in {}",
            paths.trash.display(),
            paths.staging.display()
        )),
    }
}

/// Runs the post-restore hook, then records the outcome and clears the server's status.
fn conclude(
    app: &App,
    restore: &Restore,
    server: &Server,
    outcome: std::result::Result<(), String>,
    run_post_hook: bool,
) {
    let (step, error, name) = match &outcome {
        Ok(()) => (Step::Done, None, event::BACKUP_RESTORE_COMPLETE),
        Err(e) => (Step::Failed, Some(e.as_str()), event::BACKUP_RESTORE_FAILED),
    };
    match &outcome {
        Ok(()) => log::info!(
            "restore {} of server {} completed",
            restore.uuid,
            server.short_id
        ),
        Err(e) => log::warn!(
            "restore {} of server {} failed: {e}",
            restore.uuid,
            server.short_id
        ),
    }
    // The start command runs before the status clears: while it runs, the restore is not
    // over for anyone watching the server.
    if run_post_hook && let Some(command) = &server.hooks.post_restore {
        let status = if outcome.is_ok() {
            "completed"
        } else {
            "failed"
        };
        let timeout = Duration::from_secs(app.config.hook_timeout_secs);
        if let Err(e) = hooks::run(
            "post_restore",
            command,
            &server.path,
            &hook_env(server, restore, Some(status)),
            timeout,
        ) {
            log::warn!("restore {}: {e}", restore.uuid);
        }
    }
    let recorded = (|| -> Result<()> {
        let mut conn = app.db.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        store::restores::finish(&tx, restore.id, step, error, now())?;
        store::servers::set_status(&tx, server.id, None)?;
        store::activity::record(
            &tx,
            name,
            restore.user_id,
            Some(server.id),
            &json!({"backup": restore.backup_uuid, "truncate": restore.truncate, "error": error}),
            None,
            now(),
        )?;
        tx.commit()?;
        Ok(())
    })();
    if let Err(e) = recorded {
        log::error!("cannot record the outcome of restore {}: {e}", restore.uuid);
    }
}

/// Fails a restore that never started (hoard stopped first).
pub fn abandon(app: &App, id: i64, why: &str) -> Result<()> {
    let Some((restore, server)) = load(app, id)? else {
        return Ok(());
    };
    if matches!(restore.step, Step::Done | Step::Failed) {
        return Ok(());
    }
    resolve(app, &restore, &server, why);
    Ok(())
}

/// Rolls back every restore whose process died: before the swap, the server's files were
/// never touched and the staging is dropped; during it, every entry moved is moved back.
/// A restore that had finished its swap and was deleting the replaced files is finished.
pub fn recover(app: &App) -> Result<()> {
    for (restore, pid) in store::restores::succeeded(&*app.db.conn()?)? {
        if let Some(work) = Path::new(&restore.staging_path).parent()
            && work.exists()
            && !crate::jobs::may_be_running(app, Task::Restore(restore.id), pid)
        {
            log::info!(
                "removing {}, left over from restore {}",
                work.display(),
                restore.uuid
            );
            remove_leftovers(&restore, work);
        }
    }
    let unfinished = store::restores::unfinished(&*app.db.conn()?)?;
    for (restore, pid) in unfinished {
        let heartbeat = restore.heartbeat_at.unwrap_or(restore.started_at);
        if !crate::jobs::is_dead(app, Task::Restore(restore.id), heartbeat, pid) {
            continue;
        }
        let Some(server) = store::servers::by_id(&*app.db.conn()?, restore.server_id)? else {
            continue;
        };
        // Another hoard may be looking at the same journal: one of them resolves it.
        let own = std::process::id();
        if !store::restores::claim(&*app.db.conn()?, restore.id, restore.step, pid, own, now())? {
            continue;
        }
        log::warn!(
            "restore {} was interrupted at step '{}': resolving it",
            restore.uuid,
            restore.step.as_str()
        );
        resolve(
            app,
            &restore,
            &server,
            "interrupted: hoard stopped during the restore",
        );
    }
    Ok(())
}

fn resolve(app: &App, restore: &Restore, server: &Server, why: &str) {
    let paths = Paths::of(restore, server);
    let outcome = match restore.step {
        Step::Queued | Step::Extracting => {
            let _ = paths.remove_work();
            Err(format!("{why}; the server's files were not changed"))
        }
        Step::Evacuating | Step::Installing | Step::Overlaying => {
            match roll_back(app, restore, &paths, restore.step) {
                Ok(()) => Err(format!(
                    "{why}; the server's files were put back as they were"
                )),
                Err(e) => {
                    log::error!(
                        "restore {}: {e}; it is retried while the server stays locked",
                        restore.uuid
                    );
                    return;
                }
            }
        }
        // The swap was over: only the replaced files were left to delete.
        Step::Cleanup => {
            remove_leftovers(restore, &paths.work);
            Ok(())
        }
        Step::Done | Step::Failed => return,
    };
    let ran_pre_hook = restore.step != Step::Queued;
    conclude(app, restore, server, outcome, ran_pre_hook);
}
