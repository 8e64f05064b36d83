//! Schedule runs. The scheduler (a thread of `hoard serve`) starts the runs of schedules
//! whose time has come, and at start the run of each schedule whose time passed while hoard
//! was not running: once, however many times were missed, or not at all, recorded as
//! missed, when catching up is turned off. A run performs its tasks in sequence: each makes
//! a backup, waiting first for a backup or restore of the server that is already running
//! (up to `schedule_wait_secs`), then for its own backup to end. How the run ended is
//! recorded on the schedule and in the activity log.

use super::Task as Job;
use crate::app::App;
use crate::archive;
use crate::backups::{self, Scheduled, Started};
use crate::error::Error;
use crate::model::{Actor, BackupStatus, LastRun, Outcome, Schedule, Server, event, rfc3339};
use crate::notify;
use crate::store;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A schedule's time counts as missed, rather than merely due, once it is this late.
const LATE_AFTER_SECS: i64 = 60;
/// How often the scheduler looks for due schedules, and a waiting run tries again.
const POLL: Duration = Duration::from_secs(1);
const RETRY_BUSY: Duration = Duration::from_secs(2);
/// How often runs whose process died are looked for.
const RECOVER_EVERY: Duration = Duration::from_secs(15);

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its time came.
    Scheduled,
    /// Its time passed while hoard was not running.
    CatchUp,
    /// Someone asked for it to run now.
    Manual,
}

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the server no longer exists")]
    NoServer,
    #[error("{0}")]
    Refused(Error),
    #[error("another backup or restore of the server ran for more than {0} seconds")]
    Busy(u64),
    /// Why the backup failed, as recorded on it.
    #[error("{0}")]
    Backup(String),
    #[error("hoard stopped during the run")]
    Stopped,
    #[error("cannot record the run: {0}")]
    Catalogue(#[from] crate::store::Error),
}

impl Failure {
    /// Whether the run was skipped rather than failed: it made no backup because it could
    /// not start one, not because one went wrong.
    fn is_skip(&self) -> bool {
        matches!(
            self,
            Failure::Busy(_)
                | Failure::Refused(Error::TooManyBackups(_) | Error::InsufficientStorage(_))
        )
    }
}

/// How one task ended.
enum Done {
    Backup(String),
    Unchanged,
}

/// Starts the scheduler thread; it runs until hoard closes.
pub fn start_scheduler(app: &Arc<App>) -> std::thread::JoinHandle<()> {
    let app = app.clone();
    std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || scheduler(&app))
        .expect("cannot start the scheduler")
}

fn scheduler(app: &Arc<App>) {
    let mut starting = true;
    let mut last_recovery: Option<Instant> = None;
    while !app.jobs.closing.load(Ordering::SeqCst) {
        if last_recovery.is_none_or(|t| t.elapsed() >= RECOVER_EVERY) {
            last_recovery = Some(Instant::now());
            if let Err(e) = recover(app, starting) {
                log::error!("cannot recover the schedules' runs: {e}");
            }
        }
        if let Err(e) = start_due(app, starting) {
            log::warn!("cannot start the schedules that are due: {e}");
        }
        starting = false;
        while let Ok(run) = app.jobs.runs.1.try_recv() {
            spawn_run(app, run.0, run.1);
        }
        if let Ok(run) = app.jobs.runs.1.recv_timeout(POLL) {
            spawn_run(app, run.0, run.1);
        }
    }
}

/// Ends the runs whose process stopped (it was killed, or the machine went down): they are
/// failed, so that the schedule runs again. At start, a run recorded with this process's
/// pid belonged to an earlier process that had it.
pub fn recover(app: &App, starting: bool) -> Result<(), crate::store::Error> {
    let conn = app.db.conn()?;
    for (schedule, pid) in store::schedules::processing(&conn)? {
        let ours = pid == Some(std::process::id() as i64);
        let alive = match pid {
            Some(_) if ours => !starting,
            Some(pid) => super::is_live_hoard(pid),
            None => false,
        };
        if alive {
            continue;
        }
        log::warn!(
            "the run of schedule {} ended with the process that performed it",
            schedule.id
        );
        let run = LastRun {
            outcome: Outcome::Failed,
            reason: Some(Failure::Stopped.to_string()),
            backup_uuid: schedule.last_run.and_then(|r| r.backup_uuid),
            catch_up: false,
        };
        store::schedules::finish(&conn, schedule.id, &run)?;
    }
    Ok(())
}

/// Starts the runs of the schedules whose time has come. At start, a schedule whose time
/// is long past was missed while hoard was not running.
fn start_due(app: &Arc<App>, starting: bool) -> Result<(), crate::store::Error> {
    let now = app.config.schedule_now();
    let conn = app.db.conn()?;
    for schedule in store::schedules::due(&conn, now)? {
        let due_at = schedule.next_run_at.unwrap_or(now);
        let next = crate::schedules::next_run(app, &schedule.cron, now);
        let late = starting && now - due_at > LATE_AFTER_SECS;
        if late && !app.config.schedule_catch_up {
            let run = LastRun {
                outcome: Outcome::Missed,
                reason: Some(format!(
                    "hoard was not running at {}, and catching up is turned off",
                    rfc3339(due_at)
                )),
                backup_uuid: None,
                catch_up: false,
            };
            store::schedules::missed(&conn, schedule.id, &run, next)?;
            record_run(&conn, &schedule, &run);
            tell(app, &schedule, &run);
            continue;
        }
        if store::schedules::claim(&conn, schedule.id, now, next)? {
            let trigger = if late {
                Trigger::CatchUp
            } else {
                Trigger::Scheduled
            };
            spawn_run(app, schedule.id, trigger);
        }
    }
    Ok(())
}

fn spawn_run(app: &Arc<App>, schedule_id: i64, trigger: Trigger) {
    let runner = app.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("schedule-{schedule_id}"))
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(&runner, schedule_id, trigger);
            }));
            if ran.is_err() {
                log::error!("the run of schedule {schedule_id} panicked");
                end_unfinished(&runner, schedule_id, trigger);
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the run of schedule {schedule_id}: {e}");
        end_unfinished(app, schedule_id, trigger);
    }
}

/// Ends a claimed run that could not be performed to its end, so that the schedule runs
/// again.
fn end_unfinished(app: &App, schedule_id: i64, trigger: Trigger) {
    let run = LastRun {
        outcome: Outcome::Failed,
        reason: Some("an internal error stopped this run; the log has details".into()),
        backup_uuid: None,
        catch_up: trigger == Trigger::CatchUp,
    };
    let ended = app
        .db
        .conn()
        .and_then(|conn| store::schedules::finish(&conn, schedule_id, &run));
    if let Err(e) = ended {
        log::error!("cannot record the end of the run of schedule {schedule_id}: {e}");
    }
}

/// Performs a claimed run (see [`store::schedules::claim`]) of the schedule to its end,
/// and records how it ended.
pub fn run(app: &App, schedule_id: i64, trigger: Trigger) -> LastRun {
    let catch_up = trigger == Trigger::CatchUp;
    let outcome = perform(app, schedule_id);
    let run = match outcome {
        Ok(Some(Done::Unchanged)) => LastRun {
            outcome: Outcome::Skipped,
            reason: Some("nothing changed since the last successful backup".into()),
            backup_uuid: None,
            catch_up,
        },
        Ok(Some(Done::Backup(uuid))) => LastRun {
            outcome: Outcome::Completed,
            reason: None,
            backup_uuid: Some(uuid),
            catch_up,
        },
        Ok(None) => LastRun {
            outcome: Outcome::Skipped,
            reason: Some("the schedule has no tasks".into()),
            backup_uuid: None,
            catch_up,
        },
        Err((failure, backup_uuid)) => LastRun {
            outcome: if failure.is_skip() {
                Outcome::Skipped
            } else {
                Outcome::Failed
            },
            reason: Some(failure.to_string()),
            backup_uuid,
            catch_up,
        },
    };
    let recorded = app.db.conn().map_err(Error::from).and_then(|conn| {
        store::schedules::finish(&conn, schedule_id, &run)?;
        Ok(
            store::schedules::by_id(&conn, schedule_id)?.inspect(|schedule| {
                record_run(&conn, schedule, &run);
            }),
        )
    });
    match recorded {
        Ok(Some(schedule)) => tell(app, &schedule, &run),
        Ok(None) => {}
        Err(e) => log::error!("cannot record the run of schedule {schedule_id}: {e}"),
    }
    run
}

/// Notifies the channels that want to know of a run that made no backup: skipped, missed,
/// or failed before its backup started. (A backup that ran tells of itself.)
fn tell(app: &App, schedule: &Schedule, run: &LastRun) {
    if run.outcome == Outcome::Completed || run.backup_uuid.is_some() {
        return;
    }
    let Ok(Some(server)) = app
        .db
        .conn()
        .and_then(|c| store::servers::by_id(&c, schedule.server_id))
    else {
        return;
    };
    let reason = run.reason.as_deref().unwrap_or("no reason was recorded");
    let message = match run.outcome {
        Outcome::Missed => format!(
            "The schedule '{}' of {} was missed: {reason}.",
            schedule.name, server.name
        ),
        Outcome::Failed => format!(
            "The schedule '{}' of {} failed: {reason}.",
            schedule.name, server.name
        ),
        _ => format!(
            "The schedule '{}' of {} was skipped: {reason}.",
            schedule.name, server.name
        ),
    };
    let mut notice = notify::Notice::new(notify::Event::ScheduleSkipped, message, Some(&server));
    notice.schedule = Some(notify::ScheduleRef {
        id: schedule.id,
        name: schedule.name.clone(),
        outcome: run.outcome.as_str().to_string(),
        reason: run.reason.clone(),
    });
    notify::emit(app, Some(server.id), &notice);
}

/// The activity-log event of a run.
fn record_run(c: &store::Connection, schedule: &Schedule, run: &LastRun) {
    let recorded = store::activity::record(
        c,
        &Actor::Schedule { id: schedule.id },
        event::SCHEDULE_RUN,
        Some(schedule.server_id),
        &json!({
            "schedule": schedule.id,
            "name": schedule.name,
            "outcome": run.outcome.as_str(),
            "reason": run.reason,
            "backup": run.backup_uuid,
            "catch_up": run.catch_up,
        }),
    );
    if let Err(e) = recorded {
        log::warn!("cannot log the run of schedule {}: {e}", schedule.id);
    }
}

/// A run's last task's end (None without tasks), or its failure and the backup it made.
type Performed = Result<Option<Done>, (Failure, Option<String>)>;

/// Runs the tasks in sequence; the outcome is the last task's, or the first failure's
/// unless that task may fail and let the run go on.
fn perform(app: &App, schedule_id: i64) -> Performed {
    let schedule = {
        let conn = app
            .db
            .conn()
            .map_err(|e| (Failure::Refused(e.into()), None))?;
        store::schedules::by_id(&conn, schedule_id)
            .map_err(|e| (e.into(), None))?
            .ok_or((Failure::Refused(Error::not_found("schedule")), None))?
    };
    log::info!(
        "schedule {} ({}) of server {} runs",
        schedule.id,
        schedule.name,
        schedule.server_id
    );
    let mut last = None;
    let mut first_failure = None;
    for task in &schedule.tasks {
        // The wait before a task, cut short when hoard stops.
        let start = Instant::now() + Duration::from_secs(task.time_offset.max(0) as u64);
        while Instant::now() < start && !app.jobs.closing.load(Ordering::SeqCst) {
            std::thread::sleep(POLL.min(start.saturating_duration_since(Instant::now())));
        }
        if app.jobs.closing.load(Ordering::SeqCst) {
            return Err((Failure::Stopped, None));
        }
        mark_queued(app, task.id, true);
        let done = backup_task(app, &schedule, &task.payload);
        mark_queued(app, task.id, false);
        match done {
            Ok(done) => last = Some(done),
            Err(failure) if task.continue_on_failure => {
                log::warn!("schedule {}: a task failed: {}", schedule.id, failure.0);
                first_failure.get_or_insert(failure);
            }
            Err(failure) => return Err(failure),
        }
    }
    match first_failure {
        Some(failure) => Err(failure),
        None => Ok(last),
    }
}

/// Shows a task as queued (its backup started or waiting to) or not; only shown, so a
/// failure to record it is logged, not the run's.
fn mark_queued(app: &App, task_id: i64, queued: bool) {
    let marked = app
        .db
        .conn()
        .and_then(|c| store::schedules::set_task_queued(&c, task_id, queued));
    if let Err(e) = marked {
        log::warn!("cannot show task {task_id} as queued: {e}");
    }
}

/// One backup task: starts the backup (waiting while the server is busy), then waits for
/// it to end.
fn backup_task(
    app: &App,
    schedule: &Schedule,
    payload: &str,
) -> Result<Done, (Failure, Option<String>)> {
    let scheduled = Scheduled {
        schedule_id: schedule.id,
        only_if_changed: schedule.only_if_changed,
    };
    let wait = Duration::from_secs(app.config.schedule_wait_secs);
    let deadline = Instant::now() + wait;
    let (backup, server) = loop {
        let server = load_server(app, schedule.server_id).map_err(|f| (f, None))?;
        let ignored = archive::split_patterns(payload);
        match backups::create_scheduled(app, &server, ignored, scheduled) {
            Ok(Started::Unchanged) => return Ok(Done::Unchanged),
            Ok(Started::Backup(backup)) => break (backup, server),
            Err(Error::Conflict(_)) if Instant::now() < deadline => {
                if app.jobs.closing.load(Ordering::SeqCst) {
                    return Err((Failure::Stopped, None));
                }
                std::thread::sleep(RETRY_BUSY);
            }
            Err(Error::Conflict(_)) => {
                return Err((Failure::Busy(app.config.schedule_wait_secs), None));
            }
            Err(e) => return Err((Failure::Refused(e), None)),
        }
    };
    let uuid = backup.uuid.clone();
    let mut notice = notify::Notice::new(
        notify::Event::ScheduledBackupStarted,
        format!("The scheduled backup of {} started.", server.name),
        Some(&server),
    );
    notice.backup = Some(notify::BackupRef::of(&backup, None));
    notify::emit(app, Some(schedule.server_id), &notice);
    backups::queue(app, &backup).map_err(|e| (Failure::Refused(e), Some(uuid.clone())))?;
    while !app
        .jobs
        .wait_for(Job::Backup(backup.id), Duration::from_secs(60))
    {}
    let ended = app
        .db
        .conn()
        .and_then(|c| store::backups::by_id(&c, backup.id))
        .map_err(|e| (Failure::from(e), Some(uuid.clone())))?;
    match ended {
        Some(b) if b.status.is_completed() => Ok(Done::Backup(uuid)),
        Some(b) if b.status == BackupStatus::Failed => Err((
            Failure::Backup(b.error.unwrap_or_else(|| "no reason was recorded".into())),
            Some(uuid),
        )),
        _ => Err((Failure::Stopped, Some(uuid))),
    }
}

fn load_server(app: &App, id: i64) -> Result<Server, Failure> {
    let conn = app.db.conn().map_err(|e| Failure::Refused(e.into()))?;
    store::servers::by_id(&conn, id)?.ok_or(Failure::NoServer)
}
