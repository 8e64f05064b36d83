//! `hoard backup`: the backup commands, running jobs in this process (`--wait`) or in a
//! detached `hoard` process that outlives the command.

use super::{CliResult, Failure, Out};
use crate::api::wire;
use crate::app::App;
use crate::archive;
use crate::auth::Access;
use crate::backups::{self, CreateRequest};
use crate::jobs::{Jobs, Task};
use crate::model::{Actor, Backup, BackupStatus, now};
use crate::store::restores::Step;
use crate::{restores, servers, store};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Back up a server (UUID or short id).
    Create {
        server: String,
        #[arg(long)]
        name: Option<String>,
        /// A pattern to leave out (gitignore syntax); repeat for more.
        #[arg(long = "ignore", value_name = "PATTERN")]
        ignore: Vec<String>,
        /// Lock the backup against deletion.
        #[arg(long)]
        lock: bool,
        /// Wait for the backup to finish, showing progress.
        #[arg(long)]
        wait: bool,
    },
    /// List a server's backups, newest first.
    List { server: String },
    /// Show one backup.
    Show { server: String, backup: String },
    /// Delete a backup (not while locked).
    Delete { server: String, backup: String },
    /// Lock or unlock a backup (toggles).
    Lock { server: String, backup: String },
    /// Copy a backup's archive to a file, verifying its SHA-256.
    Download {
        server: String,
        backup: String,
        /// Output file [default: the download file name, in the current directory].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Restore a backup over the server's files.
    Restore {
        server: String,
        backup: String,
        /// Keep files that are not in the backup (default: delete them first).
        #[arg(long)]
        no_truncate: bool,
        /// Wait for the restore to finish, showing progress.
        #[arg(long)]
        wait: bool,
        /// Restore even if the archive does not match its SHA-256 (a corrupt backup): it is
        /// restored as it is, and the restore says so.
        #[arg(long)]
        allow_corrupt: bool,
    },
    /// Re-read a backup's archive and check it against its SHA-256 (marks it corrupt or
    /// missing if it does not match).
    Verify { server: String, backup: String },
    /// Runs a queued job; used by the commands above to work in the background.
    #[command(hide = true)]
    RunJob {
        #[arg(value_parser = ["backup", "restore", "verify"])]
        kind: String,
        id: i64,
    },
}

fn backup_line(b: &Backup) -> String {
    let size = if b.status.is_completed() {
        format!("{} bytes", b.bytes)
    } else {
        String::new()
    };
    let lock = if b.is_locked { "  [locked]" } else { "" };
    let error = b
        .error
        .as_deref()
        .map_or(String::new(), |e| format!("  ({e})"));
    format!(
        "{}  {}  {}  {size}{lock}{error}",
        b.uuid,
        b.status.as_str(),
        b.name
    )
}

pub fn run(app: App, out: &Out, data_dir: &Path, command: BackupCommand) -> CliResult {
    let app = Arc::new(app);
    let actor = Actor::Hoard;
    match command {
        BackupCommand::Create {
            server,
            name,
            ignore,
            lock,
            wait,
        } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            let request = CreateRequest {
                name,
                ignored: ignore
                    .iter()
                    .flat_map(|p| archive::split_patterns(p))
                    .collect(),
                is_locked: lock,
            };
            let backup = backups::create(&app, &actor, &server, &Access::Admin, request)?;
            if !wait {
                detach(&app, data_dir, Task::Backup(backup.id))?;
                out.print(&wire::backup_value(&backup), || {
                    format!("Started {}", backup_line(&backup))
                });
                return Ok(());
            }
            backups::queue(&app, &backup)?;
            run_here(&app, Task::Backup(backup.id), out.json);
            let done = store::backups::by_id(&*app.db.conn()?, backup.id)?
                .ok_or_else(|| Failure("backup vanished".into()))?;
            out.print(&wire::backup_value(&done), || backup_line(&done));
            if !done.status.is_completed() {
                return Err(Failure(format!(
                    "the backup failed: {}",
                    done.error.unwrap_or_default()
                )));
            }
        }
        BackupCommand::List { server } => {
            let conn = app.db.conn()?;
            let server = servers::find(&conn, &server)?;
            let list = store::backups::all_for_server(&conn, server.id)?;
            out.print(
                &wire::list(list.iter().map(wire::backup_value).collect()),
                || list.iter().map(backup_line).collect::<Vec<_>>().join("\n"),
            );
        }
        BackupCommand::Show { server, backup } => {
            let conn = app.db.conn()?;
            let server = servers::find(&conn, &server)?;
            let backup = backups::get(&conn, &server, &backup)?;
            let value = wire::backup_value(&backup);
            out.print(&value, || {
                serde_json::to_string_pretty(&value["attributes"]).unwrap_or_default()
            });
        }
        BackupCommand::Delete { server, backup } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            backups::delete(&app, &actor, &server, &backup)?;
            out.print(&json!({}), || format!("Deleted backup {backup}"));
        }
        BackupCommand::Lock { server, backup } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            let locked = backups::toggle_lock(&app, &actor, &server, &backup)?;
            out.print(&json!({"is_locked": locked}), || {
                format!(
                    "Backup {backup} is now {}",
                    if locked { "locked" } else { "unlocked" }
                )
            });
        }
        BackupCommand::Download {
            server,
            backup,
            output,
        } => {
            let conn = app.db.conn()?;
            let server = servers::find(&conn, &server)?;
            let backup = backups::get(&conn, &server, &backup)?;
            let dest = output.unwrap_or_else(|| {
                PathBuf::from(crate::api::download_file_name(&server.short_id, &backup))
            });
            let bytes = copy_verified(&app, &backup, &dest)?;
            out.print(
                &json!({"path": dest, "bytes": bytes, "sha256_hash": backup.sha256_hash}),
                || format!("Wrote {} ({bytes} bytes, SHA-256 verified)", dest.display()),
            );
        }
        BackupCommand::Restore {
            server,
            backup,
            no_truncate,
            wait,
            allow_corrupt,
        } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            let started =
                restores::start(&app, &actor, &server, &backup, !no_truncate, allow_corrupt)?;
            let task = Task::Restore(started.id);
            if !wait {
                detach(&app, data_dir, task)?;
                out.print(&json!({"restore": started.uuid}), || {
                    format!("Restore {} started", started.uuid)
                });
                return Ok(());
            }
            run_here(&app, task, out.json);
            let done = store::restores::by_id(&*app.db.conn()?, started.id)?
                .ok_or_else(|| Failure("restore vanished".into()))?;
            out.print(
                &json!({
                    "restore": done.uuid,
                    "step": done.step.as_str(),
                    "error": done.error,
                    "warning": done.warning,
                }),
                || match (&done.error, &done.warning) {
                    (None, None) => format!("Restored backup {backup} onto {}", server.path),
                    (None, Some(w)) => {
                        format!("Restored backup {backup} onto {}, but {w}", server.path)
                    }
                    (Some(e), _) => format!("Restore failed: {e}"),
                },
            );
            if done.step != Step::Done {
                return Err(Failure(format!(
                    "the restore failed: {}",
                    done.error.unwrap_or_default()
                )));
            }
        }
        BackupCommand::Verify { server, backup } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            let since = now();
            let started = backups::verify(&app, &actor, &server, &Access::Admin, &backup)?;
            run_here(&app, Task::Verify(started.id), out.json);
            let done = store::backups::by_id(&*app.db.conn()?, started.id)?
                .ok_or_else(|| Failure("backup vanished".into()))?;
            out.print(&wire::backup_value(&done), || backup_line(&done));
            match done.status {
                BackupStatus::Missing | BackupStatus::Corrupt => {
                    return Err(Failure(format!(
                        "the archive of backup {} is {}",
                        done.uuid,
                        done.status.as_str()
                    )));
                }
                _ if done.verified_at >= Some(since) => {}
                _ => {
                    return Err(Failure(
                        "the verification did not finish: the log says why".into(),
                    ));
                }
            }
        }
        BackupCommand::RunJob { kind, id } => {
            let task = match kind.as_str() {
                "backup" => Task::Backup(id),
                "restore" => Task::Restore(id),
                _ => Task::Verify(id),
            };
            let conn = app.db.conn()?;
            match task {
                Task::Backup(id) => store::backups::set_pid(&conn, id, Some(std::process::id()))?,
                Task::Restore(id) => store::restores::set_pid(&conn, id, Some(std::process::id()))?,
                Task::Verify(_) => {}
            }
            drop(conn);
            app.jobs.submit(task);
            run_here(&app, task, true);
        }
    }
    Ok(())
}

/// Hands a job to a detached `hoard` process, so it continues after this command exits.
fn detach(app: &App, data_dir: &Path, task: Task) -> CliResult {
    let (kind, id) = match task {
        Task::Backup(id) => ("backup", id),
        Task::Restore(id) => ("restore", id),
        Task::Verify(id) => ("verify", id),
    };
    {
        // Until the child claims the job, only its heartbeat speaks for it.
        let conn = app.db.conn()?;
        match task {
            Task::Backup(id) => store::backups::set_pid(&conn, id, None)?,
            Task::Restore(id) => store::restores::set_pid(&conn, id, None)?,
            Task::Verify(_) => {}
        }
    }
    use std::os::unix::process::CommandExt;
    std::process::Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["backup", "run-job", kind, &id.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()?;
    Ok(())
}

/// Runs one queued job in this process, with a progress display on a terminal.
fn run_here(app: &Arc<App>, task: Task, quiet: bool) {
    let handles = Jobs::start(app, 1);
    let tracker = app.jobs.tracker(task);
    let interactive = !quiet && std::io::stderr().is_terminal();
    let total = match task {
        Task::Backup(_) => None,
        Task::Verify(id) => app
            .db
            .conn()
            .ok()
            .and_then(|c| store::backups::by_id(&c, id).ok().flatten())
            .map(|b| b.bytes as u64),
        Task::Restore(id) => app
            .db
            .conn()
            .ok()
            .and_then(|c| store::restores::by_id(&c, id).ok().flatten())
            .map(|r| r.bytes_total as u64),
    };
    let bar = interactive.then(|| {
        let bar = ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let mut last_line = Instant::now();
    while !app.jobs.wait_for(task, Duration::from_millis(200)) {
        let Some(tracker) = &tracker else { break };
        let done = tracker.progress.bytes.load(Ordering::Relaxed);
        let total = match (task, total) {
            (Task::Backup(id), _) => app
                .db
                .conn()
                .ok()
                .and_then(|c| store::backups::by_id(&c, id).ok().flatten())
                .map_or(0, |b| b.progress.bytes_total as u64),
            (_, t) => t.unwrap_or(0),
        };
        if let Some(bar) = &bar {
            bar.set_length(total.max(done));
            bar.set_position(done);
        } else if !quiet && last_line.elapsed() >= Duration::from_secs(5) {
            last_line = Instant::now();
            eprintln!("{} of {} bytes processed", done, total);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Jobs::shutdown(app, handles, Duration::from_secs(0));
}

/// Copies the archive to `dest` through a hasher; the file appears only if the hash matches.
fn copy_verified(app: &App, backup: &Backup, dest: &Path) -> Result<u64, Failure> {
    backups::ensure_usable(backup.clone(), backups::Use::Download)?;
    let source = backup
        .storage_path
        .as_deref()
        .and_then(|p| app.storage().resolve(p))
        .ok_or_else(|| Failure("the backup's archive is missing".into()))?;
    let tmp = dest.with_extension(format!("partial-{}", now()));
    let result = (|| -> Result<u64, Failure> {
        let mut input = std::fs::File::open(&source)?;
        let mut output = std::fs::File::create(&tmp)?;
        let mut tee = HashTee {
            out: &mut output,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        };
        let bytes = std::io::copy(&mut input, &mut tee)?;
        let digest = hex::encode(sha2::Digest::finalize(tee.hasher));
        if Some(digest.as_str()) != backup.sha256_hash.as_deref() {
            return Err(Failure(format!(
                "the archive does not match its SHA-256 (expected {}, found {digest}): it is corrupt",
                backup.sha256_hash.as_deref().unwrap_or_default()
            )));
        }
        output.sync_all()?;
        std::fs::rename(&tmp, dest)?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

struct HashTee<'a> {
    out: &'a mut std::fs::File,
    hasher: sha2::Sha256,
}

impl Write for HashTee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
