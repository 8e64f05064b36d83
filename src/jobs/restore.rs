//! The restore job: hooks, extraction, the swap and its journal, and the recovery of
//! restores whose process died, so that whatever happens the server's files end up either
//! exactly the backup's or exactly what they were before.
//!
//! The job extracts into a staging directory in a work directory beside the server
//! directory (same filesystem), verifying the archive's hash on the way (a mismatch stops
//! the restore unless it was asked to go ahead with a corrupt archive); only when that
//! fully succeeded are the server's entries moved aside and the staged ones moved in. A
//! journal row records the step reached; a swap that fails is undone at once, and
//! [`recover`] undoes one whose process died.

use super::{Task, Tracker, hooks};
use crate::app::App;
use crate::archive::Exclusions;
use crate::model::{Actor, Backup, Integrity, Server, event, now};
use crate::notify;
use crate::restore::swap::{Keep, KeepRule};
use crate::restore::{self, Limits, Workspace, extract, swap};
use crate::store::restores::{Restore, Step};
use crate::store::{self, TransactionBehavior};
use serde_json::json;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

/// Why a restore failed. The server's files are as they were unless it says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Hook(#[from] hooks::Error),
    #[error("the backup was deleted before the restore started")]
    BackupGone,
    #[error("{0}")]
    Extract(#[from] restore::Error),
    #[error("cannot {action}: {source}")]
    Files {
        action: &'static str,
        source: io::Error,
    },
    #[error("cannot record the restore's progress: {0}")]
    Catalogue(#[from] crate::store::Error),
    /// The swap failed and was undone.
    #[error("{0}; the server's files were put back as they were")]
    RolledBack(Box<Failure>),
    /// The swap failed, and some entries could not go back because the server directory
    /// was changed under the restore (by whoever writes in it): they are kept aside.
    #[error("{cause}; {partly}")]
    PartlyRolledBack { cause: Box<Failure>, partly: String },
    /// hoard stopped (or died) during the restore: why.
    #[error("{0}")]
    Interrupted(String),
    /// The restore stopped before the swap.
    #[error("{0}; the server's files were not changed")]
    Untouched(Box<Failure>),
}

fn files(action: &'static str) -> impl FnOnce(io::Error) -> Failure {
    move |source| Failure::Files { action, source }
}

/// Why a restore stopped.
enum Stop {
    Failed(Failure),
    /// The swap could not be undone: the journal keeps its step, so that recovery tries
    /// again, and the server stays locked meanwhile.
    Stuck(String),
}

impl<E: Into<Failure>> From<E> for Stop {
    fn from(e: E) -> Stop {
        Stop::Failed(e.into())
    }
}

fn restore_env<'a>(
    server: &'a Server,
    restore: &'a Restore,
    status: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    hooks::hook_env(server, &restore.backup_uuid, hooks::Job::Restore { status })
}

fn load(app: &App, id: i64) -> crate::error::Result<Option<(Restore, Server)>> {
    let conn = app.db.conn()?;
    let Some(restore) = store::restores::by_id(&conn, id)? else {
        return Ok(None);
    };
    let Some(server) = store::servers::by_id(&conn, restore.server_id)? else {
        return Ok(None);
    };
    Ok(Some((restore, server)))
}

fn set_step(app: &App, id: i64, step: Step) -> Result<(), Failure> {
    let conn = app.db.conn()?;
    store::restores::set_step(&conn, id, step)?;
    Ok(())
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
    let timeout = Duration::from_secs(app.config.hook_timeout_secs);
    if let Some(command) = &server.hooks.pre_restore
        && let Err(e) = hooks::run(
            "pre_restore",
            command,
            &server.path,
            &restore_env(&server, &restore, None),
            timeout,
        )
    {
        conclude(app, &restore, &server, Err(Failure::Hook(e)), false);
        return;
    }
    let (outcome, leftovers) = match restore_files(app, &restore, &server, tracker) {
        Ok(restored) => (Ok(restored.warning), restored.leftovers),
        Err(Stop::Failed(e)) => (Err(e), None),
        Err(Stop::Stuck(e)) => {
            log::error!(
                "restore {} of server {} failed and could not be undone: {e}; it is retried while the server stays locked",
                restore.uuid,
                server.short_id
            );
            return;
        }
    };
    conclude(app, &restore, &server, outcome, true);
    // The old files go once the server has its new ones, on a thread of their own: the
    // server's next job need not wait for thousands of deletes.
    if let Some(work) = leftovers {
        let (id, uuid) = (restore.id, restore.uuid.clone());
        cleaning().insert(id);
        let spawned = std::thread::Builder::new()
            .name("restore-cleanup".into())
            .spawn(move || {
                super::lower_priority();
                remove_leftovers(&uuid, work);
                cleaning().remove(&id);
            });
        if let Err(e) = spawned {
            // Recovery removes them later.
            cleaning().remove(&id);
            log::warn!(
                "restore {}: cannot start removing the replaced files: {e}",
                restore.uuid
            );
        }
    }
}

/// Restores whose replaced files are being deleted in the background, which recovery
/// leaves alone.
fn cleaning() -> MutexGuard<'static, HashSet<i64>> {
    static CLEANING: LazyLock<Mutex<HashSet<i64>>> = LazyLock::new(Default::default);
    CLEANING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a successful restore's work directory (the replaced files).
fn remove_leftovers(restore_uuid: &str, work: Workspace) {
    if let Err(e) = work.remove() {
        log::warn!("restore {restore_uuid}: cannot remove the replaced files: {e}");
    }
}

/// What a restore that succeeded leaves behind.
struct Restored {
    /// The work directory with the replaced files, when they are left to remove.
    leftovers: Option<Workspace>,
    /// Why the restored files may not be the backup's as it was made.
    warning: Option<String>,
}

/// Extraction and the swap; on failure, the server's files are put back as they were.
fn restore_files(
    app: &App,
    restore: &Restore,
    server: &Server,
    tracker: &Tracker,
) -> Result<Restored, Stop> {
    set_step(app, restore.id, Step::Extracting)?;
    let backup = {
        let conn = app.db.conn().map_err(Failure::from)?;
        restore
            .backup_id
            .map(|id| store::backups::by_id(&conn, id))
            .transpose()
            .map_err(Failure::from)?
            .flatten()
            .ok_or(Failure::BackupGone)?
    };
    let archive = app.storage().archive_path(&server.uuid, &backup);
    let work_path = restore.work_dir();
    let ws = Workspace::create(server.path.as_ref(), &work_path)
        .map_err(files("make the work directory"))?;
    let extracted = extract(
        &archive,
        backup.compression,
        backup.sha256_hash.as_deref().unwrap_or_default(),
        &ws.staging,
        Limits {
            max_entries: backup.content_files.max(0) as u64,
            max_bytes: backup.content_bytes.max(0) as u64,
        },
        &tracker.progress,
        app.jobs.cancel_flag(),
    );
    if let Err(restore::Error::Mismatch { found, .. }) = &extracted {
        mark_corrupt(app, server, &backup, found);
    }
    let (extracted, warning) = match extracted {
        Ok(done) => (done, None),
        Err(restore::Error::Mismatch {
            expected,
            found,
            extracted,
        }) if restore.allow_corrupt => {
            let warning = format!(
                "the archive did not match its SHA-256 (expected {expected}, found {found}): it was restored as it is, as asked"
            );
            log::warn!("restore {}: {warning}", restore.uuid);
            // Before the swap, so that a restore finished by recovery says it too.
            if let Err(e) = record_warning(app, restore.id, &warning) {
                drop_work(restore, ws);
                return Err(e.into());
            }
            (extracted, Some(warning))
        }
        Err(e) => {
            drop_work(restore, ws);
            return Err(e.into());
        }
    };
    for note in &extracted.skipped {
        log::warn!("restore {}: {note}", restore.uuid);
    }
    // The swap may only start once the staged files are on disk: after a power loss the
    // journal finishes the swap, and it must find whole files.
    if let Err(e) = ws.staging.sync_filesystem() {
        drop_work(restore, ws);
        return Err(files("flush the restored files to disk")(e).into());
    }
    let swapped = if restore.truncate {
        let rules = Exclusions::of_dir(Some(&ws.staging), &backup.ignored_files);
        let unreadable: HashSet<PathBuf> =
            backup.unreadable_paths.iter().map(PathBuf::from).collect();
        let keep = |rel: &Path, is_dir: bool| {
            if unreadable.contains(rel) {
                Keep::Always
            } else if rules.excludes(rel, is_dir) {
                Keep::UnlessInBackup
            } else {
                Keep::No
            }
        };
        let keeps_any = !rules.is_empty() || !unreadable.is_empty();
        replace(app, restore, &ws, keeps_any.then_some(&keep as KeepRule))
    } else {
        overlay(app, restore, &ws)
    };
    if let Err((reached, e)) = swapped {
        return Err(match roll_back(app, restore, ws, reached) {
            Ok(()) => Stop::Failed(Failure::RolledBack(Box::new(e))),
            Err(RollBack::Partly(partly)) => Stop::Failed(Failure::PartlyRolledBack {
                cause: Box::new(e),
                partly,
            }),
            Err(RollBack::Stuck(u)) => Stop::Stuck(format!("{e}; {u}")),
        });
    }
    // Inside the server directory the replaced files would be in the server's next backup,
    // so they go before the server is released; beside it, after (see `run`).
    let leftovers = if ws.is_inside() {
        remove_leftovers(&restore.uuid, ws);
        None
    } else {
        Some(ws)
    };
    Ok(Restored { leftovers, warning })
}

/// Records what a restore found wrong with its archive: an archive that does not match its
/// SHA-256 is corrupt for every later use too, whatever this restore does with it.
fn mark_corrupt(app: &App, server: &Server, backup: &Backup, found: &str) {
    log::error!(
        "backup {} of server {}: the archive is corrupt: its SHA-256 is {found}, not the {} recorded",
        backup.uuid,
        server.short_id,
        backup.sha256_hash.as_deref().unwrap_or_default()
    );
    let marked = app
        .db
        .conn()
        .and_then(|conn| store::backups::set_integrity(&conn, backup.id, Some(Integrity::Corrupt)));
    if let Err(e) = marked {
        log::error!("cannot record that backup {} is corrupt: {e}", backup.uuid);
    }
}

fn record_warning(app: &App, id: i64, warning: &str) -> Result<(), Failure> {
    let conn = app.db.conn()?;
    store::restores::set_warning(&conn, id, warning)?;
    Ok(())
}

fn drop_work(restore: &Restore, ws: Workspace) {
    if let Err(e) = ws.remove() {
        log::warn!(
            "restore {}: cannot remove its staging directory: {e}",
            restore.uuid
        );
    }
}

/// A swap that stopped: the step it had reached (as recorded), and why.
type Stopped = (Step, Failure);

/// `truncate: true`: the server's entries go to the trash, then the staged ones move in,
/// then what `keep` keeps (what the backup left out or could not read) comes back from the
/// trash.
/// The journal names each phase before its first move, so a crash is undone by the step,
/// and says `cleanup` once the swap is whole: only then may the replaced files go.
fn replace(
    app: &App,
    restore: &Restore,
    ws: &Workspace,
    keep: Option<KeepRule>,
) -> Result<(), Stopped> {
    let kept = match keep {
        None => swap::Kept::default(),
        Some(keep) => swap::Kept::find(&ws.server, ws.skip(), keep)
            .and_then(|kept| ws.save_kept(&kept).map(|()| kept))
            .map_err(|e| {
                (
                    Step::Extracting,
                    files("list the files the backup left out")(e),
                )
            })?,
    };
    set_step(app, restore.id, Step::Evacuating).map_err(|e| (Step::Extracting, e))?;
    swap::move_all(&ws.server, &ws.trash, ws.skip())
        .map_err(|e| (Step::Evacuating, files("move the current files aside")(e)))?;
    set_step(app, restore.id, Step::Installing).map_err(|e| (Step::Evacuating, e))?;
    swap::move_all(&ws.staging, &ws.server, ws.skip())
        .map_err(|e| (Step::Installing, files("move the restored files in")(e)))?;
    if !kept.is_empty() {
        kept.put_back(&ws.trash, &ws.server).map_err(|e| {
            (
                Step::Installing,
                files("put back the files the backup left out")(e),
            )
        })?;
    }
    set_step(app, restore.id, Step::Cleanup).map_err(|e| (Step::Installing, e))
}

/// `truncate: false`: the staged entries are laid over the server's, by a plan saved first.
fn overlay(app: &App, restore: &Restore, ws: &Workspace) -> Result<(), Stopped> {
    let plan = swap::Overlay::plan(&ws.staging, &ws.server)
        .and_then(|plan| ws.save_plan(&plan).map(|()| plan))
        .map_err(|e| (Step::Extracting, files("plan the overlay")(e)))?;
    set_step(app, restore.id, Step::Overlaying).map_err(|e| (Step::Extracting, e))?;
    plan.apply(&ws.staging, &ws.server, &ws.trash)
        .map_err(|e| {
            (
                Step::Overlaying,
                files("lay the restored files over the current ones")(e),
            )
        })?;
    // The renames reached many directories: all of them must be on disk before the journal
    // lets the replaced files go.
    ws.server
        .sync_filesystem()
        .map_err(|e| (Step::Overlaying, files("flush the overlay to disk")(e)))?;
    set_step(app, restore.id, Step::Cleanup).map_err(|e| (Step::Overlaying, e))
}

/// Why a rollback did not put everything back.
enum RollBack {
    /// Some entries could not go back because their place in the server directory was
    /// changed meanwhile; they are kept in the work directory, which is left in place.
    Partly(String),
    /// The rollback itself failed (a disk error): it is tried again later.
    Stuck(String),
}

/// Whether an error means the server directory was changed under the restore (a name
/// taken, a directory replaced by a link or a file), which trying again cannot fix.
fn changed_under_us(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AlreadyExists
        || matches!(
            e.raw_os_error(),
            Some(libc::ELOOP | libc::ENOTDIR | libc::EXDEV | libc::ENOENT)
        )
}

/// Puts the server's files back as they were before the swap, from what is on disk at
/// `reached`, and removes the work directory. Running it again after an interruption
/// finishes it.
fn roll_back(app: &App, restore: &Restore, ws: Workspace, reached: Step) -> Result<(), RollBack> {
    let put_back = match reached {
        Step::Evacuating => swap::move_all(&ws.trash, &ws.server, ws.skip()),
        // The staged entries go back to staging first; only once the journal says so may
        // the old ones return, or a second run would take them for staged ones.
        // Kept entries put back go to the trash again first, or they would be taken for
        // staged ones.
        Step::Installing => ws
            .load_kept()
            .and_then(|kept| kept.take_out(&ws.trash, &ws.server))
            .and_then(|()| swap::move_all(&ws.server, &ws.staging, ws.skip()))
            .and_then(|()| {
                set_step(app, restore.id, Step::Evacuating).map_err(io::Error::other)?;
                swap::move_all(&ws.trash, &ws.server, ws.skip())
            }),
        Step::Overlaying => ws
            .load_plan()
            .and_then(|plan| plan.undo(&ws.staging, &ws.server, &ws.trash)),
        _ => Ok(()),
    };
    let put_back = put_back.and_then(|()| ws.server.sync_filesystem());
    match put_back {
        Ok(()) => {
            if let Err(e) = ws.discard() {
                log::warn!(
                    "restore {}: cannot remove its work directory: {e}",
                    restore.uuid
                );
            }
            Ok(())
        }
        Err(e) if changed_under_us(&e) => Err(RollBack::Partly(format!(
            "the server directory was changed during the restore and some of its files could not be put back ({e}): they are kept in {}",
            restore.work_dir().display()
        ))),
        Err(e) => Err(RollBack::Stuck(format!(
            "the server's files could not be put back ({e}): the old ones are in {}, the restored ones in {}",
            restore.trash_path, restore.staging_path
        ))),
    }
}

/// Runs the post-restore hook, then records the outcome (Ok: with the warning a completed
/// restore carries, if any) and clears the server's status.
fn conclude(
    app: &App,
    restore: &Restore,
    server: &Server,
    outcome: Result<Option<String>, Failure>,
    run_post_hook: bool,
) {
    let error = outcome.as_ref().err().map(ToString::to_string);
    // What a failed hook printed is for owners and admins only: it is kept apart.
    let detail = match &outcome {
        Err(Failure::Hook(e)) => e.output(),
        _ => None,
    };
    let (step, name) = match &outcome {
        Ok(_) => (Step::Done, event::BACKUP_RESTORE_COMPLETE),
        Err(_) => (Step::Failed, event::BACKUP_RESTORE_FAILED),
    };
    let warning = outcome.as_ref().ok().and_then(Option::as_deref);
    match (&error, warning) {
        (None, None) => log::info!(
            "restore {} of server {} completed",
            restore.uuid,
            server.short_id
        ),
        (None, Some(w)) => log::warn!(
            "restore {} of server {} completed, but {w}",
            restore.uuid,
            server.short_id
        ),
        (Some(e), _) => log::warn!(
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
            &restore_env(server, restore, Some(status)),
            timeout,
        ) {
            log::warn!("restore {}: {e}", restore.uuid);
        }
    }
    let recorded = (|| -> crate::error::Result<()> {
        let mut conn = app.db.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let finished_at = now();
        store::restores::finish(&tx, restore.id, step, error.as_deref(), detail, finished_at)?;
        store::servers::set_status(&tx, server.id, restore.server_status)?;
        store::activity::record(
            &tx,
            &Actor::on_behalf_of(restore.user_id),
            name,
            Some(server.id),
            &json!({
                "backup": restore.backup_uuid,
                "truncate": restore.truncate,
                "outcome": if error.is_none() { "completed" } else { "failed" },
                "duration_secs": (finished_at - restore.started_at).max(0),
                "error": error,
                "warning": warning,
            }),
        )?;
        tx.commit()?;
        Ok(())
    })();
    if let Err(e) = recorded {
        log::error!("cannot record the outcome of restore {}: {e}", restore.uuid);
    }
    let (event, message) = match &error {
        None => (
            notify::Event::RestoreCompleted,
            format!("The restore of {} completed.", server.name),
        ),
        Some(e) => (
            notify::Event::RestoreFailed,
            format!("The restore of {} failed: {e}", server.name),
        ),
    };
    let mut notice = notify::Notice::new(event, message, Some(server));
    notice.restore = Some(notify::RestoreRef {
        uuid: restore.uuid.clone(),
        backup_uuid: restore.backup_uuid.clone(),
        successful: error.is_none(),
        duration_secs: notify::since(restore.started_at),
        error,
    });
    notify::emit(app, Some(server.id), &notice);
}

/// Fails a restore that never started (hoard stopped first).
pub fn abandon(app: &App, id: i64, why: &str) -> crate::error::Result<()> {
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
/// Returns how many interrupted restores were resolved.
pub fn recover(app: &App) -> crate::error::Result<usize> {
    let mut resolved = 0;
    for (restore, pid) in store::restores::succeeded(&*app.db.conn()?)? {
        if super::may_be_running(app, Task::Restore(restore.id), pid)
            || cleaning().contains(&restore.id)
        {
            continue;
        }
        if let Some(ws) = open_work(&restore, &server_path(app, &restore)?) {
            log::info!(
                "removing {}, left over from restore {}",
                restore.work_dir().display(),
                restore.uuid
            );
            remove_leftovers(&restore.uuid, ws);
        }
    }
    let unfinished = store::restores::unfinished(&*app.db.conn()?)?;
    for (restore, pid) in unfinished {
        let heartbeat = restore.heartbeat_at.unwrap_or(restore.started_at);
        if !super::is_dead(app, Task::Restore(restore.id), heartbeat, pid) {
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
        resolved += 1;
    }
    Ok(resolved)
}

fn server_path(app: &App, restore: &Restore) -> crate::error::Result<PathBuf> {
    let server = store::servers::by_id(&*app.db.conn()?, restore.server_id)?;
    Ok(server.map(|s| PathBuf::from(s.path)).unwrap_or_default())
}

/// The work directory of a restore that was under way, if it is still there.
fn open_work(restore: &Restore, server_path: &std::path::Path) -> Option<Workspace> {
    let work = restore.work_dir();
    match Workspace::open(server_path, &work) {
        Ok(found) => found,
        Err(e) => {
            log::warn!(
                "restore {}: cannot open {}: {e}",
                restore.uuid,
                work.display()
            );
            None
        }
    }
}

fn resolve(app: &App, restore: &Restore, server: &Server, why: &str) {
    let work = open_work(restore, server.path.as_ref());
    let outcome = match restore.step {
        Step::Queued | Step::Extracting => {
            if let Some(ws) = work {
                drop_work(restore, ws);
            }
            Err(Failure::Untouched(Box::new(Failure::Interrupted(
                why.to_string(),
            ))))
        }
        Step::Evacuating | Step::Installing | Step::Overlaying => {
            let Some(ws) = work else {
                // A rollback that completed renamed the work directory away: at most its
                // delete is left.
                if let Err(e) = Workspace::remove_discarded(&restore.work_dir()) {
                    log::warn!("restore {}: {e}", restore.uuid);
                }
                let outcome = Err(Failure::RolledBack(Box::new(Failure::Interrupted(
                    why.to_string(),
                ))));
                conclude(app, restore, server, outcome, true);
                return;
            };
            let interrupted = Failure::Interrupted(why.to_string());
            match roll_back(app, restore, ws, restore.step) {
                Ok(()) => Err(Failure::RolledBack(Box::new(interrupted))),
                Err(RollBack::Partly(partly)) => Err(Failure::PartlyRolledBack {
                    cause: Box::new(interrupted),
                    partly,
                }),
                Err(RollBack::Stuck(e)) => {
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
            if let Some(ws) = work {
                remove_leftovers(&restore.uuid, ws);
            }
            Ok(restore.warning.clone())
        }
        Step::Done | Step::Failed => return,
    };
    let ran_pre_hook = restore.step != Step::Queued;
    conclude(app, restore, server, outcome, ran_pre_hook);
}
