//! Background jobs: a bounded pool of workers runs backups and restores; a ticker records
//! each job's progress and heartbeat once a second and fails jobs whose heartbeat stopped
//! (their process died). The same machinery runs inside `hoard serve` and inside a CLI
//! command that waits for its job.

mod backup;
pub mod hooks;
mod restore;
pub mod schedule;
mod verify;

use crate::app::App;
use crate::archive;
use crate::model::now;
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A job whose heartbeat is older than this is dead.
pub const DEAD_AFTER_SECS: i64 = 60;
/// How often progress and heartbeats are written.
const TICK: Duration = Duration::from_secs(1);
/// How often dead jobs are looked for.
const REAP_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    Backup(i64),
    Restore(i64),
    /// Re-reading a backup's archive to compare it with its hash.
    Verify(i64),
}

/// A schedule's run to start: its id, and what started it.
type RunRequest = (i64, schedule::Trigger);

/// Live state of one queued or running job.
#[derive(Debug, Default)]
pub struct Tracker {
    pub progress: archive::Progress,
}

pub struct Jobs {
    tx: Sender<Task>,
    rx: Receiver<Task>,
    trackers: Mutex<HashMap<Task, Arc<Tracker>>>,
    /// Signalled whenever a job finishes.
    finished: Condvar,
    /// Set when running jobs must stop as soon as they can.
    cancel: AtomicBool,
    /// Set when the process is going away: no more jobs start.
    closing: AtomicBool,
    /// Set in `hoard serve`: the ticker also runs the verification schedule, and the
    /// scheduler runs the schedules.
    scheduling: AtomicBool,
    /// Schedule runs asked for, for the scheduler to start.
    runs: (Sender<RunRequest>, Receiver<RunRequest>),
}

impl Default for Jobs {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Jobs {
            tx,
            rx,
            trackers: Mutex::new(HashMap::new()),
            finished: Condvar::new(),
            cancel: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            scheduling: AtomicBool::new(false),
            runs: crossbeam_channel::unbounded(),
        }
    }
}

impl Jobs {
    /// Queues a job; it is tracked (and its heartbeat kept) from now on.
    pub fn submit(&self, task: Task) {
        self.lock().insert(task, Arc::new(Tracker::default()));
        let _ = self.tx.send(task);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Task, Arc<Tracker>>> {
        self.trackers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn tracker(&self, task: Task) -> Option<Arc<Tracker>> {
        self.lock().get(&task).cloned()
    }

    pub fn is_tracked(&self, task: Task) -> bool {
        self.lock().contains_key(&task)
    }

    pub fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }

    /// Whether a verification is queued or running here.
    pub fn is_verifying(&self) -> bool {
        self.lock().keys().any(|t| matches!(t, Task::Verify(_)))
    }

    /// Makes the ticker run scheduled work (verifications) too: for `hoard serve`, not for
    /// a command waiting on its own job.
    pub fn run_schedules(&self) {
        self.scheduling.store(true, Ordering::SeqCst);
    }

    /// Has the scheduler perform a run of a schedule that was claimed for it (see
    /// [`crate::store::schedules::claim`]).
    pub fn request_run(&self, schedule_id: i64, trigger: schedule::Trigger) {
        let _ = self.runs.0.send((schedule_id, trigger));
    }

    /// Whether hoard is stopping: background threads end.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Whether this process runs the schedules (`hoard serve`).
    pub fn runs_schedules(&self) -> bool {
        self.scheduling.load(Ordering::SeqCst)
    }

    /// Blocks until `task` has finished (or was never queued here), or `timeout` passed;
    /// returns whether it finished.
    pub fn wait_for(&self, task: Task, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut map = self.lock();
        while map.contains_key(&task) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            map = self
                .finished
                .wait_timeout(map, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn finish(&self, task: Task) {
        self.lock().remove(&task);
        self.finished.notify_all();
    }

    /// Starts `workers` job threads and the ticker. They run until [`Jobs::shutdown`].
    pub fn start(app: &Arc<App>, workers: usize) -> Vec<JoinHandle<()>> {
        let mut handles: Vec<JoinHandle<()>> = (0..workers)
            .map(|i| {
                let app = app.clone();
                std::thread::Builder::new()
                    .name(format!("job-{i}"))
                    .spawn(move || work(&app))
                    .expect("cannot start a job thread")
            })
            .collect();
        if app.jobs.runs_schedules() {
            handles.push(schedule::start_scheduler(app));
        }
        let app = app.clone();
        handles.push(
            std::thread::Builder::new()
                .name("job-ticker".into())
                .spawn(move || tick(&app))
                .expect("cannot start the job ticker"),
        );
        handles
    }

    /// Stops taking jobs, gives running ones `grace` to finish, then cancels them; jobs
    /// still queued are failed at once. Waits for the threads in `handles`.
    pub fn shutdown(app: &App, handles: Vec<JoinHandle<()>>, grace: Duration) {
        let jobs = &app.jobs;
        jobs.closing.store(true, Ordering::SeqCst);
        while let Ok(task) = jobs.rx.try_recv() {
            abandon(app, task, "hoard stopped before this job could start");
            jobs.finish(task);
        }
        let deadline = Instant::now() + grace;
        {
            let mut map = jobs.lock();
            while !map.is_empty() && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                map = jobs
                    .finished
                    .wait_timeout(map, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if !map.is_empty() {
                log::warn!(
                    "cancelling {} running job(s) after the {} s grace period",
                    map.len(),
                    grace.as_secs()
                );
            }
        }
        jobs.cancel.store(true, Ordering::SeqCst);
        jobs.finished.notify_all();
        // Wake the workers blocked on the empty queue.
        for _ in 0..handles.len() {
            let _ = jobs.tx.send(Task::Backup(-1));
        }
        for h in handles {
            let _ = h.join();
        }
    }
}

/// Backups and restores yield the CPU and the disk to the game servers and the API: job
/// threads (and the compression threads they start, which inherit this) run at nice 10 and
/// at the lowest best-effort I/O priority.
fn lower_priority() {
    const IOPRIO_CLASS_BE: libc::c_long = 2;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: both calls only change this thread's scheduling priorities (who = 0: the
    // calling thread on Linux).
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | 7,
        );
    }
}

fn work(app: &App) {
    lower_priority();
    let jobs = &app.jobs;
    while let Ok(task) = jobs.rx.recv() {
        if jobs.closing.load(Ordering::SeqCst) {
            if jobs.is_tracked(task) {
                abandon(app, task, "hoard stopped before this job could start");
                jobs.finish(task);
            }
            if jobs.cancel.load(Ordering::SeqCst) {
                return;
            }
            continue;
        }
        let Some(tracker) = jobs.tracker(task) else {
            continue;
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match task {
            Task::Backup(id) => backup::run(app, id, &tracker),
            Task::Restore(id) => restore::run(app, id, &tracker),
            Task::Verify(id) => verify::run(app, id, &tracker),
        }));
        if outcome.is_err() {
            log::error!("job {task:?} panicked");
            abandon(
                app,
                task,
                "an internal error stopped this job; the log has details",
            );
        }
        jobs.finish(task);
        // A job allocates megabytes of buffers; hand them back to the system rather than
        // keep them in this thread's heap until its next job.
        // SAFETY: mi_collect has no preconditions; it only returns free memory.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
}

/// Fails a job that will not run (or crashed) and cleans up after it.
fn abandon(app: &App, task: Task, why: &str) {
    let result = match task {
        Task::Backup(id) => backup::fail_by_id(app, id, why),
        Task::Restore(id) => restore::abandon(app, id, why),
        Task::Verify(id) => verify::abandon(app, id),
    };
    if let Err(e) = result {
        log::error!("cannot record that job {task:?} stopped: {e}");
    }
}

fn tick(app: &App) {
    let mut last_reap: Option<Instant> = None;
    loop {
        if app.jobs.cancel.load(Ordering::SeqCst) && app.jobs.lock().is_empty() {
            return;
        }
        let trackers: Vec<(Task, Arc<Tracker>)> = app
            .jobs
            .lock()
            .iter()
            .map(|(t, k)| (*t, k.clone()))
            .collect();
        if let Err(e) = record_heartbeats(app, &trackers) {
            log::warn!("cannot record job progress: {e}");
        }
        if last_reap.is_none_or(|t| t.elapsed() >= REAP_EVERY) {
            last_reap = Some(Instant::now());
            if let Err(e) = reap(app) {
                log::warn!("cannot look for interrupted jobs: {e}");
            }
            if let Err(e) = crate::backups::look_at_archives(app) {
                log::warn!("cannot look at the archives: {e}");
            }
            if app.jobs.scheduling.load(Ordering::SeqCst)
                && let Err(e) = crate::backups::schedule_verification(app)
            {
                log::warn!("cannot schedule a verification: {e}");
            }
        }
        // Sleep a tick; shutdown and finishing jobs wake it early.
        let map = app.jobs.lock();
        if app.jobs.cancel.load(Ordering::SeqCst) && map.is_empty() {
            return;
        }
        let _ = app.jobs.finished.wait_timeout(map, TICK);
    }
}

fn record_heartbeats(app: &App, trackers: &[(Task, Arc<Tracker>)]) -> crate::error::Result<()> {
    if trackers.is_empty() {
        return Ok(());
    }
    let conn = app.db.conn()?;
    let now = now();
    for (task, tracker) in trackers {
        let bytes = tracker.progress.bytes.load(Ordering::Relaxed) as i64;
        let files = tracker.progress.files.load(Ordering::Relaxed) as i64;
        match task {
            Task::Backup(id) => crate::store::backups::heartbeat(&conn, *id, bytes, files, now)?,
            Task::Restore(id) => crate::store::restores::heartbeat(&conn, *id, bytes, now)?,
            Task::Verify(id) => crate::store::backups::verify_heartbeat(&conn, *id, bytes, now)?,
        }
    }
    Ok(())
}

/// Fails (or, for restores, resolves) every job whose process died mid-way.
pub fn reap(app: &App) -> crate::error::Result<()> {
    let backups = backup::reap(app)?;
    let restores = restore::recover(app)?;
    if backups + restores > 0 {
        let notice = crate::notify::Notice::new(
            crate::notify::Event::JobsRecovered,
            format!(
                "hoard found jobs that stopped with the process running them: {backups} backup(s) marked failed, {restores} restore(s) rolled back or finished."
            ),
            None,
        );
        crate::notify::emit(app, None, &notice);
    }
    Ok(())
}

/// Whether a job recorded in the database has no live process behind it: the process that
/// ran it is gone, or, where no process is known, its heartbeat stopped. A hoard process
/// that still runs the job is never taken for dead, however old its heartbeat: it may be
/// stopped (Ctrl-Z, a paused machine) and resume, and undoing its work under it would
/// lose files.
fn is_dead(app: &App, task: Task, heartbeat_at: i64, pid: Option<i64>) -> bool {
    if app.jobs.is_tracked(task) {
        return false;
    }
    let age = now() - heartbeat_at;
    match pid {
        // Ours but not tracked: left by an earlier process that had our pid.
        Some(pid) if pid == std::process::id() as i64 => age > 10,
        Some(pid) => !is_live_hoard(pid),
        None => age > DEAD_AFTER_SECS,
    }
}

/// Whether `pid` may be a running hoard: alive, and not known to be another program that
/// took the pid of one that ended. When its executable cannot be read (another user's
/// process, a restricted /proc), it is taken for a hoard: only a sure answer may let a job
/// be undone.
fn is_live_hoard(pid: i64) -> bool {
    if !process_alive(pid) {
        return false;
    }
    // An executable replaced by an upgrade shows as "hoard (deleted)".
    let name = |path: std::path::PathBuf| {
        let name = path.file_name()?.to_string_lossy().into_owned();
        Some(name.trim_end_matches(" (deleted)").to_string())
    };
    let own = std::env::current_exe().ok().and_then(name);
    let theirs = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(name);
    match (own, theirs) {
        (Some(own), Some(theirs)) => own == theirs,
        _ => true,
    }
}

/// Whether a job may still be at work: tracked by this process, or recorded as run by
/// another process that is alive.
fn may_be_running(app: &App, task: Task, pid: Option<i64>) -> bool {
    app.jobs.is_tracked(task)
        || pid.is_some_and(|pid| pid != std::process::id() as i64 && process_alive(pid))
}

/// Whether a process exists and has not ended: a zombie (ended, waiting for a parent that
/// may never reap it) is dead.
fn process_alive(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !matches!(process_state(pid), Some('Z' | 'X'))
}

/// The state letter of `/proc/<pid>/stat` (after the command name, which may hold spaces
/// and parentheses); None when it cannot be read.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 1..)?
        .trim_start()
        .chars()
        .next()
}
