//! Schedules as users see them: Pterodactyl's rules for creating and changing a server's
//! schedules and their tasks, when a schedule runs next, and running one now. The runs
//! themselves are jobs ([`crate::jobs::schedule`]).

use crate::app::App;
use crate::auth::Access;
use crate::error::{Error, FieldError, Result};
use crate::model::{Actor, Cron, Permission, Schedule, Server, Task, Timestamp, event, now};
use crate::store::{self, Connection, TransactionBehavior};
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use serde_json::json;

pub const MAX_NAME_CHARS: usize = 191;
/// Tasks a schedule may hold, as Pterodactyl allows by default.
pub const MAX_TASKS: usize = 10;
/// The longest wait before a task, in seconds, as in Pterodactyl.
pub const MAX_TIME_OFFSET: i64 = 900;
/// How many upcoming runs a schedule shows.
pub const SHOWN_RUNS: usize = 5;

/// What hoard says when asked for a task it cannot run.
pub const NO_CONSOLE: &str = "hoard has no console: the only task it runs is a backup. To send a command to the game or stop it around a backup, set the server's pre_backup and post_backup hooks.";

/// The names Pterodactyl gives the five fields, with the words used in errors.
const FIELDS: [(&str, &str); 5] = [
    ("minute", "minute"),
    ("hour", "hour"),
    ("day_of_month", "day of the month"),
    ("month", "month"),
    ("day_of_week", "day of the week"),
];

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// A schedule's cron fields, checked: they parse as a standard five-field expression and
/// match some time. A bad field is a 422 naming it.
pub fn parse_cron(cron: &Cron) -> Result<croner::Cron> {
    let values = [
        &cron.minute,
        &cron.hour,
        &cron.day_of_month,
        &cron.month,
        &cron.day_of_week,
    ];
    let mut errors = Vec::new();
    for (i, ((field, words), value)) in FIELDS.iter().zip(values).enumerate() {
        let mut alone = ["*"; 5];
        alone[i] = value.as_str();
        let single = value.split_whitespace().count() == 1;
        if let Some(why) = match parser().parse(&alone.join(" ")) {
            _ if !single => Some("a field is one word, such as *, 5, 1-5, */15 or MON".into()),
            Err(e) => Some(e.to_string()),
            Ok(_) => None,
        } {
            errors.push(FieldError::new(
                field,
                "cron",
                format!("The {words} field '{value}' is not a valid cron field: {why}"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let parsed = parser()
        .parse(&cron.expression())
        .map_err(|e| Error::invalid("minute", "cron", format!("{e}")))?;
    if upcoming(&parsed, &TimeZone::UTC, now(), 1).is_empty() {
        return Err(Error::invalid(
            "day_of_month",
            "cron",
            format!(
                "The cron expression '{}' never matches a date: check the day of the month against the month.",
                cron.expression()
            ),
        ));
    }
    Ok(parsed)
}

/// The next `n` times `cron` matches after `after`, in the time zone `tz`.
pub fn upcoming(cron: &croner::Cron, tz: &TimeZone, after: Timestamp, n: usize) -> Vec<Timestamp> {
    let Ok(start) = jiff::Timestamp::from_second(after) else {
        return Vec::new();
    };
    cron.iter_after(start.to_zoned(tz.clone()))
        .take(n)
        .map(|z| z.timestamp().as_second())
        .collect()
}

/// When a schedule with these fields runs next after `after`; None if the fields do not
/// parse (which stored fields always do).
pub fn next_run(app: &App, cron: &Cron, after: Timestamp) -> Option<Timestamp> {
    let parsed = parser().parse(&cron.expression()).ok()?;
    upcoming(&parsed, &app.config.timezone, after, 1).pop()
}

/// When a schedule being saved runs first.
fn first_run(app: &App, parsed: &croner::Cron) -> Option<Timestamp> {
    upcoming(parsed, &app.config.timezone, app.config.schedule_now(), 1).pop()
}

/// A schedule's next runs, for display.
pub fn next_runs(app: &App, schedule: &Schedule) -> Vec<Timestamp> {
    match parser().parse(&schedule.cron.expression()) {
        Ok(parsed) if schedule.is_active => upcoming(
            &parsed,
            &app.config.timezone,
            app.config.schedule_now(),
            SHOWN_RUNS,
        ),
        _ => Vec::new(),
    }
}

/// The schedule in plain words, e.g. "At 04:00".
pub fn describe(cron: &Cron) -> Option<String> {
    parser()
        .parse(&cron.expression())
        .ok()
        .map(|c| c.describe())
}

/// When cron fields not saved yet would run.
pub struct Preview {
    pub cron: Cron,
    pub description: String,
    pub next_runs: Vec<Timestamp>,
}

/// The next runs of the request's cron fields (a 422 for a bad one); the name is not needed.
pub fn preview(app: &App, request: &ScheduleRequest) -> Result<Preview> {
    let named = ScheduleRequest {
        name: Some("preview".into()),
        ..request.clone()
    };
    let (_, cron, parsed) = named.resolve(None)?;
    Ok(Preview {
        description: parsed.describe(),
        next_runs: upcoming(
            &parsed,
            &app.config.timezone,
            app.config.schedule_now(),
            SHOWN_RUNS,
        ),
        cron,
    })
}

/// A schedule as asked for: on create every field but the flags is required; on update,
/// what is left out stays as it is.
#[derive(Debug, Clone, Default)]
pub struct ScheduleRequest {
    pub name: Option<String>,
    pub minute: Option<String>,
    pub hour: Option<String>,
    pub day_of_month: Option<String>,
    pub month: Option<String>,
    pub day_of_week: Option<String>,
    pub is_active: Option<bool>,
    pub only_when_online: Option<bool>,
    pub only_if_changed: Option<bool>,
}

impl ScheduleRequest {
    /// The schedule's name and cron fields (and the expression they make), from the request
    /// over `current`; a 422 for what is missing or invalid.
    fn resolve(&self, current: Option<&Schedule>) -> Result<(String, Cron, croner::Cron)> {
        let mut errors = Vec::new();
        let mut take = |field: &str, given: &Option<String>, now: Option<&String>| match given
            .as_ref()
            .or(now)
        {
            Some(value) if !value.trim().is_empty() => value.trim().to_string(),
            _ => {
                errors.push(FieldError::new(
                    field,
                    "required",
                    format!("The {field} field is required."),
                ));
                String::new()
            }
        };
        let name = take("name", &self.name, current.map(|s| &s.name));
        let cron = Cron {
            minute: take("minute", &self.minute, current.map(|s| &s.cron.minute)),
            hour: take("hour", &self.hour, current.map(|s| &s.cron.hour)),
            day_of_month: take(
                "day_of_month",
                &self.day_of_month,
                current.map(|s| &s.cron.day_of_month),
            ),
            month: take("month", &self.month, current.map(|s| &s.cron.month)),
            day_of_week: take(
                "day_of_week",
                &self.day_of_week,
                current.map(|s| &s.cron.day_of_week),
            ),
        };
        if name.chars().count() > MAX_NAME_CHARS {
            errors.push(FieldError::new(
                "name",
                "max:191",
                "The name may not be longer than 191 characters.",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let parsed = parse_cron(&cron)?;
        Ok((name, cron, parsed))
    }
}

pub fn list(c: &Connection, server: &Server, access: &Access) -> Result<Vec<Schedule>> {
    access.require(Permission::ScheduleRead)?;
    Ok(store::schedules::list(c, server.id)?)
}

pub fn get(c: &Connection, server: &Server, access: &Access, id: i64) -> Result<Schedule> {
    access.require(Permission::ScheduleRead)?;
    find(c, server, id)
}

fn find(c: &Connection, server: &Server, id: i64) -> Result<Schedule> {
    store::schedules::get(c, server.id, id)?.ok_or_else(|| Error::not_found("schedule"))
}

fn record_event(
    c: &Connection,
    actor: &Actor,
    event: &str,
    server: &Server,
    schedule: &Schedule,
) -> Result<()> {
    store::activity::record(
        c,
        actor,
        event,
        Some(server.id),
        &json!({"schedule": schedule.id, "name": schedule.name}),
    )?;
    Ok(())
}

pub fn create(
    app: &App,
    actor: &Actor,
    server: &Server,
    access: &Access,
    request: &ScheduleRequest,
) -> Result<Schedule> {
    access.require(Permission::ScheduleCreate)?;
    let (name, cron, parsed) = request.resolve(None)?;
    let is_active = request.is_active.unwrap_or(true);
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let id = store::schedules::insert(
        &tx,
        server.id,
        &store::schedules::Fields {
            name: &name,
            cron: &cron,
            is_active,
            only_when_online: request.only_when_online.unwrap_or(false),
            only_if_changed: request.only_if_changed.unwrap_or(false),
            next_run_at: first_run(app, &parsed),
        },
        now(),
    )?;
    let schedule = find(&tx, server, id)?;
    record_event(&tx, actor, event::SCHEDULE_CREATE, server, &schedule)?;
    tx.commit()?;
    Ok(schedule)
}

pub fn update(
    app: &App,
    actor: &Actor,
    server: &Server,
    access: &Access,
    id: i64,
    request: &ScheduleRequest,
) -> Result<Schedule> {
    access.require(Permission::ScheduleUpdate)?;
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = find(&tx, server, id)?;
    let (name, cron, parsed) = request.resolve(Some(&current))?;
    let is_active = request.is_active.unwrap_or(current.is_active);
    store::schedules::update(
        &tx,
        id,
        &store::schedules::Fields {
            name: &name,
            cron: &cron,
            is_active,
            only_when_online: request.only_when_online.unwrap_or(current.only_when_online),
            only_if_changed: request.only_if_changed.unwrap_or(current.only_if_changed),
            next_run_at: first_run(app, &parsed),
        },
        now(),
    )?;
    let schedule = find(&tx, server, id)?;
    record_event(&tx, actor, event::SCHEDULE_UPDATE, server, &schedule)?;
    tx.commit()?;
    Ok(schedule)
}

pub fn delete(app: &App, actor: &Actor, server: &Server, access: &Access, id: i64) -> Result<()> {
    access.require(Permission::ScheduleDelete)?;
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let schedule = find(&tx, server, id)?;
    store::schedules::delete(&tx, id)?;
    record_event(&tx, actor, event::SCHEDULE_DELETE, server, &schedule)?;
    tx.commit()?;
    Ok(())
}

/// Claims a run of a schedule now, whether or not it is active, as Pterodactyl's "Run now"
/// does; the caller has it performed ([`crate::jobs::schedule::run`], or by the scheduler).
pub fn execute(
    app: &App,
    actor: &Actor,
    server: &Server,
    access: &Access,
    id: i64,
) -> Result<Schedule> {
    access.require(Permission::ScheduleUpdate)?;
    let conn = app.db.conn()?;
    let schedule = find(&conn, server, id)?;
    if schedule.tasks.is_empty() {
        return Err(Error::BadRequest(
            "This schedule has no tasks to run: add a backup task first.".into(),
        ));
    }
    // A run whose process died no longer stands in the way.
    crate::jobs::schedule::recover(app, false)?;
    if !store::schedules::claim(&conn, id, app.config.schedule_now(), schedule.next_run_at)? {
        return Err(Error::Conflict(
            "This schedule is running already: wait for its run to end.".into(),
        ));
    }
    record_event(&conn, actor, event::SCHEDULE_EXECUTE, server, &schedule)?;
    Ok(schedule)
}

/// A task as asked for; on update, what is left out stays as it is.
#[derive(Debug, Clone, Default)]
pub struct TaskRequest {
    pub action: Option<String>,
    pub payload: Option<String>,
    pub time_offset: Option<i64>,
    pub sequence_id: Option<i64>,
    pub continue_on_failure: Option<bool>,
}

impl TaskRequest {
    /// The task's fields over `current`; a 422 for a missing or invalid one, and for an
    /// action other than `backup`.
    fn resolve(&self, current: Option<&Task>) -> Result<(String, i64, bool)> {
        let mut errors = Vec::new();
        match self.action.as_deref() {
            Some("backup") => {}
            None if current.is_some() => {}
            Some("command" | "power") => {
                errors.push(FieldError::new("action", "in:backup", NO_CONSOLE));
            }
            None => errors.push(FieldError::new(
                "action",
                "required",
                "The action field is required: hoard runs \"backup\" tasks.",
            )),
            Some(other) => errors.push(FieldError::new(
                "action",
                "in:backup",
                format!("'{other}' is not a task action: hoard runs \"backup\" tasks."),
            )),
        }
        let time_offset = match self.time_offset.or(current.map(|t| t.time_offset)) {
            Some(offset) if (0..=MAX_TIME_OFFSET).contains(&offset) => offset,
            Some(_) => {
                errors.push(FieldError::new(
                    "time_offset",
                    "between:0,900",
                    "The time offset must be between 0 and 900 seconds.",
                ));
                0
            }
            None => {
                errors.push(FieldError::new(
                    "time_offset",
                    "required",
                    "The time_offset field is required: the seconds to wait after the previous task (0 to 900).",
                ));
                0
            }
        };
        if self.sequence_id.is_some_and(|s| s < 1) {
            errors.push(FieldError::new(
                "sequence_id",
                "min:1",
                "The sequence_id must be at least 1.",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let payload = self
            .payload
            .clone()
            .or_else(|| current.map(|t| t.payload.clone()))
            .unwrap_or_default();
        let continue_on_failure = self
            .continue_on_failure
            .or(current.map(|t| t.continue_on_failure))
            .unwrap_or(false);
        Ok((payload, time_offset, continue_on_failure))
    }
}

fn find_task(schedule: &Schedule, task_id: i64) -> Result<Task> {
    schedule
        .tasks
        .iter()
        .find(|t| t.id == task_id)
        .cloned()
        .ok_or_else(|| Error::not_found("task"))
}

fn record_task_event(
    c: &Connection,
    actor: &Actor,
    event: &str,
    server: &Server,
    schedule: &Schedule,
    task: &Task,
) -> Result<()> {
    store::activity::record(
        c,
        actor,
        event,
        Some(server.id),
        &json!({"schedule": schedule.id, "name": schedule.name, "task": task.id, "action": "backup"}),
    )?;
    Ok(())
}

pub fn create_task(
    app: &App,
    actor: &Actor,
    server: &Server,
    access: &Access,
    schedule_id: i64,
    request: &TaskRequest,
) -> Result<Task> {
    access.require(Permission::ScheduleUpdate)?;
    let (payload, time_offset, continue_on_failure) = request.resolve(None)?;
    if server.backup_limit == 0 {
        return Err(Error::Forbidden(
            "A backup task cannot be created when the server's backup limit is set to 0.".into(),
        ));
    }
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let schedule = find(&tx, server, schedule_id)?;
    if schedule.tasks.len() >= MAX_TASKS {
        return Err(Error::BadRequest(format!(
            "Schedules may not have more than {MAX_TASKS} tasks associated with them."
        )));
    }
    let last = schedule
        .tasks
        .iter()
        .map(|t| t.sequence_id)
        .max()
        .unwrap_or(0);
    // As in Pterodactyl: a task given a place already taken goes there, and the ones from
    // that place on move one later.
    let sequence_id = match request.sequence_id {
        Some(wanted) if wanted <= last => {
            store::schedules::shift_tasks(&tx, schedule.id, wanted)?;
            wanted
        }
        _ => last + 1,
    };
    let id = store::schedules::insert_task(
        &tx,
        schedule.id,
        &store::schedules::TaskFields {
            sequence_id,
            payload: &payload,
            time_offset,
            continue_on_failure,
        },
        now(),
    )?;
    let task = find_task(&find(&tx, server, schedule.id)?, id)?;
    record_task_event(&tx, actor, event::TASK_CREATE, server, &schedule, &task)?;
    tx.commit()?;
    Ok(task)
}

pub fn update_task(
    app: &App,
    actor: &Actor,
    server: &Server,
    access: &Access,
    schedule_id: i64,
    task_id: i64,
    request: &TaskRequest,
) -> Result<Task> {
    access.require(Permission::ScheduleUpdate)?;
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let schedule = find(&tx, server, schedule_id)?;
    let current = find_task(&schedule, task_id)?;
    let (payload, time_offset, continue_on_failure) = request.resolve(Some(&current))?;
    store::schedules::update_task(
        &tx,
        task_id,
        &store::schedules::TaskFields {
            sequence_id: request.sequence_id.unwrap_or(current.sequence_id),
            payload: &payload,
            time_offset,
            continue_on_failure,
        },
        now(),
    )?;
    let task = find_task(&find(&tx, server, schedule.id)?, task_id)?;
    record_task_event(&tx, actor, event::TASK_UPDATE, server, &schedule, &task)?;
    tx.commit()?;
    Ok(task)
}

pub fn delete_task(
    app: &App,
    actor: &Actor,
    server: &Server,
    access: &Access,
    schedule_id: i64,
    task_id: i64,
) -> Result<()> {
    // As in Pterodactyl: removing a task changes the schedule.
    access.require(Permission::ScheduleUpdate)?;
    let mut conn = app.db.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let schedule = find(&tx, server, schedule_id)?;
    let task = find_task(&schedule, task_id)?;
    store::schedules::delete_task(&tx, task_id)?;
    record_task_event(&tx, actor, event::TASK_DELETE, server, &schedule, &task)?;
    tx.commit()?;
    Ok(())
}
