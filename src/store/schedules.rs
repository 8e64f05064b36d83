//! Schedules and their tasks.

use super::Result;
use crate::model::{Cron, LastRun, Outcome, Schedule, Task, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "id, server_id, name, cron_minute, cron_hour, cron_day_of_month, cron_month, \
    cron_day_of_week, is_active, only_when_online, only_if_changed, is_processing, last_run_at, \
    next_run_at, last_outcome, last_reason, last_backup_uuid, last_catch_up, created_at, updated_at";

const TASK_COLUMNS: &str = "id, schedule_id, sequence_id, payload, time_offset, is_queued, \
    continue_on_failure, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<Schedule> {
    let outcome: Option<String> = r.get(14)?;
    let last_run = outcome
        .and_then(|o| o.parse().ok())
        .map(|outcome| -> rusqlite::Result<LastRun> {
            Ok(LastRun {
                outcome,
                reason: r.get(15)?,
                backup_uuid: r.get(16)?,
                catch_up: r.get(17)?,
            })
        })
        .transpose()?;
    Ok(Schedule {
        id: r.get(0)?,
        server_id: r.get(1)?,
        name: r.get(2)?,
        cron: Cron {
            minute: r.get(3)?,
            hour: r.get(4)?,
            day_of_month: r.get(5)?,
            month: r.get(6)?,
            day_of_week: r.get(7)?,
        },
        is_active: r.get(8)?,
        only_when_online: r.get(9)?,
        only_if_changed: r.get(10)?,
        is_processing: r.get(11)?,
        last_run_at: r.get(12)?,
        next_run_at: r.get(13)?,
        last_run,
        created_at: r.get(18)?,
        updated_at: r.get(19)?,
        tasks: Vec::new(),
    })
}

fn task_from_row(r: &Row) -> rusqlite::Result<Task> {
    Ok(Task {
        id: r.get(0)?,
        schedule_id: r.get(1)?,
        sequence_id: r.get(2)?,
        payload: r.get(3)?,
        time_offset: r.get(4)?,
        is_queued: r.get(5)?,
        continue_on_failure: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// A schedule's settings, as created or changed.
pub struct Fields<'a> {
    pub name: &'a str,
    pub cron: &'a Cron,
    pub is_active: bool,
    pub only_when_online: bool,
    pub only_if_changed: bool,
    pub next_run_at: Option<Timestamp>,
}

pub fn insert(c: &Connection, server_id: i64, f: &Fields, now: Timestamp) -> Result<i64> {
    c.execute(
        "INSERT INTO schedules (server_id, name, cron_minute, cron_hour, cron_day_of_month,
             cron_month, cron_day_of_week, is_active, only_when_online, only_if_changed,
             next_run_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        params![
            server_id,
            f.name,
            f.cron.minute,
            f.cron.hour,
            f.cron.day_of_month,
            f.cron.month,
            f.cron.day_of_week,
            f.is_active,
            f.only_when_online,
            f.only_if_changed,
            f.next_run_at,
            now
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn update(c: &Connection, id: i64, f: &Fields, now: Timestamp) -> Result<()> {
    c.execute(
        "UPDATE schedules SET name = ?2, cron_minute = ?3, cron_hour = ?4, cron_day_of_month = ?5,
             cron_month = ?6, cron_day_of_week = ?7, is_active = ?8, only_when_online = ?9,
             only_if_changed = ?10, next_run_at = ?11, updated_at = ?12
         WHERE id = ?1",
        params![
            id,
            f.name,
            f.cron.minute,
            f.cron.hour,
            f.cron.day_of_month,
            f.cron.month,
            f.cron.day_of_week,
            f.is_active,
            f.only_when_online,
            f.only_if_changed,
            f.next_run_at,
            now
        ],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM schedules WHERE id = ?1", [id])?;
    Ok(())
}

fn with_tasks(c: &Connection, mut schedule: Schedule) -> Result<Schedule> {
    schedule.tasks = tasks(c, schedule.id)?;
    Ok(schedule)
}

/// A schedule of one server, with its tasks: a schedule of another server is not found.
pub fn get(c: &Connection, server_id: i64, id: i64) -> Result<Option<Schedule>> {
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE server_id = ?1 AND id = ?2");
    let found = c
        .prepare_cached(&sql)?
        .query_row(params![server_id, id], from_row)
        .optional()?;
    found.map(|s| with_tasks(c, s)).transpose()
}

pub fn by_id(c: &Connection, id: i64) -> Result<Option<Schedule>> {
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1");
    let found = c
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?;
    found.map(|s| with_tasks(c, s)).transpose()
}

/// A server's schedules with their tasks, oldest first.
pub fn list(c: &Connection, server_id: i64) -> Result<Vec<Schedule>> {
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE server_id = ?1 ORDER BY id");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([server_id], from_row)?;
    let schedules: Vec<Schedule> = rows.collect::<rusqlite::Result<_>>()?;
    schedules.into_iter().map(|s| with_tasks(c, s)).collect()
}

/// Active schedules whose time has come and that are not running already.
pub fn due(c: &Connection, now: Timestamp) -> Result<Vec<Schedule>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM schedules
         WHERE is_active = 1 AND is_processing = 0 AND next_run_at <= ?1 ORDER BY next_run_at, id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([now], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Schedules marked as running, with the process that performs the run.
pub fn processing(c: &Connection) -> Result<Vec<(Schedule, Option<i64>)>> {
    let sql = format!("SELECT {COLUMNS}, run_pid FROM schedules WHERE is_processing = 1");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([], |r| Ok((from_row(r)?, r.get(20)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks a schedule as running in this process, unless it is already: returns whether
/// this call did.
pub fn claim(
    c: &Connection,
    id: i64,
    now: Timestamp,
    next_run_at: Option<Timestamp>,
) -> Result<bool> {
    let changed = c.execute(
        "UPDATE schedules SET is_processing = 1, run_pid = ?4, last_run_at = ?2, next_run_at = ?3
         WHERE id = ?1 AND is_processing = 0",
        params![id, now, next_run_at, std::process::id()],
    )?;
    Ok(changed == 1)
}

/// Records how a run ended, and that the schedule is no longer running.
pub fn finish(c: &Connection, id: i64, run: &LastRun) -> Result<()> {
    c.execute(
        "UPDATE schedules SET is_processing = 0, run_pid = NULL, last_outcome = ?2, last_reason = ?3,
             last_backup_uuid = ?4, last_catch_up = ?5
         WHERE id = ?1",
        params![
            id,
            run.outcome.as_str(),
            run.reason,
            run.backup_uuid,
            run.catch_up
        ],
    )?;
    Ok(())
}

/// Records a time that passed without a run (see [`crate::model::Outcome::Missed`]).
pub fn missed(
    c: &Connection,
    id: i64,
    run: &LastRun,
    next_run_at: Option<Timestamp>,
) -> Result<()> {
    finish(c, id, run)?;
    c.execute(
        "UPDATE schedules SET next_run_at = ?2 WHERE id = ?1",
        params![id, next_run_at],
    )?;
    Ok(())
}

/// A server's schedules at a glance, for the servers list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub count: i64,
    /// The soonest next run of its active schedules.
    pub next_run_at: Option<Timestamp>,
    /// The latest run that failed or was missed, if that is how its schedule last ran:
    /// the schedule's name, the run, and when.
    pub problem: Option<(String, LastRun, Option<Timestamp>)>,
}

/// Each server's [`Summary`], by server id, in one query: every server's, or only `only`'s.
pub fn summaries(
    c: &Connection,
    only: Option<i64>,
) -> Result<std::collections::HashMap<i64, Summary>> {
    let sql =
        format!("SELECT {COLUMNS} FROM schedules WHERE ?1 IS NULL OR server_id = ?1 ORDER BY id");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([only], from_row)?;
    let mut out: std::collections::HashMap<i64, Summary> = std::collections::HashMap::new();
    for schedule in rows {
        let schedule = schedule?;
        let summary = out.entry(schedule.server_id).or_default();
        summary.count += 1;
        if schedule.is_active {
            summary.next_run_at = match (summary.next_run_at, schedule.next_run_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let Some(run) = schedule.last_run
            && matches!(run.outcome, Outcome::Failed | Outcome::Missed)
            && summary
                .problem
                .as_ref()
                .is_none_or(|(_, _, at)| *at < schedule.last_run_at)
        {
            summary.problem = Some((schedule.name, run, schedule.last_run_at));
        }
    }
    Ok(out)
}

pub fn tasks(c: &Connection, schedule_id: i64) -> Result<Vec<Task>> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM schedule_tasks WHERE schedule_id = ?1 ORDER BY sequence_id, id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([schedule_id], task_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A task's settings, as created or changed.
pub struct TaskFields<'a> {
    pub sequence_id: i64,
    pub payload: &'a str,
    pub time_offset: i64,
    pub continue_on_failure: bool,
}

pub fn insert_task(
    c: &Connection,
    schedule_id: i64,
    f: &TaskFields,
    now: Timestamp,
) -> Result<i64> {
    c.execute(
        "INSERT INTO schedule_tasks (schedule_id, sequence_id, action, payload, time_offset,
             continue_on_failure, created_at, updated_at)
         VALUES (?1, ?2, 'backup', ?3, ?4, ?5, ?6, ?6)",
        params![
            schedule_id,
            f.sequence_id,
            f.payload,
            f.time_offset,
            f.continue_on_failure,
            now
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn update_task(c: &Connection, id: i64, f: &TaskFields, now: Timestamp) -> Result<()> {
    c.execute(
        "UPDATE schedule_tasks SET sequence_id = ?2, payload = ?3, time_offset = ?4,
             continue_on_failure = ?5, updated_at = ?6
         WHERE id = ?1",
        params![
            id,
            f.sequence_id,
            f.payload,
            f.time_offset,
            f.continue_on_failure,
            now
        ],
    )?;
    Ok(())
}

pub fn delete_task(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM schedule_tasks WHERE id = ?1", [id])?;
    Ok(())
}

/// Moves the tasks at `from` and after one place later, making room at `from`.
pub fn shift_tasks(c: &Connection, schedule_id: i64, from: i64) -> Result<()> {
    c.execute(
        "UPDATE schedule_tasks SET sequence_id = sequence_id + 1
         WHERE schedule_id = ?1 AND sequence_id >= ?2",
        params![schedule_id, from],
    )?;
    Ok(())
}

pub fn set_task_queued(c: &Connection, id: i64, queued: bool) -> Result<()> {
    c.execute(
        "UPDATE schedule_tasks SET is_queued = ?2 WHERE id = ?1",
        params![id, queued],
    )?;
    Ok(())
}
