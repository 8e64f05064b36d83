//! `hoard schedule` and `hoard retention`: a server's backup schedules and which of its
//! backups are kept, with presets for the usual times so nobody has to write cron by hand.

use super::{CliResult, Failure, Out, local, table};
use crate::api::wire;
use crate::app::App;
use crate::auth::Access;
use crate::jobs::Jobs;
use crate::jobs::schedule::Trigger;
use crate::model::{Actor, Backup, Cron, LastRun, Outcome, Schedule, Server};
use crate::retention::{self, Policy, Verdict, Within};
use crate::schedules::{self, ScheduleRequest, TaskRequest};
use crate::servers;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How to name a server in every command below.
const SERVER_HELP: &str = "The server's short id or UUID";

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// List a server's schedules: when each runs, its next run and how its last run went.
    List {
        #[arg(help = SERVER_HELP)]
        server: String,
    },
    /// Add a schedule that backs up the server at the times given.
    #[command(mut_group("when", |g| g.required(true)))]
    Add {
        #[arg(help = SERVER_HELP)]
        server: String,
        /// A name to tell the schedule by, e.g. "nightly".
        #[arg(long)]
        name: String,
        #[command(flatten)]
        when: When,
        /// A file pattern the scheduled backups leave out (gitignore syntax); repeat for
        /// more.
        #[arg(long = "ignore", value_name = "PATTERN")]
        ignore: Vec<String>,
        /// Skip a run when no file changed since the last successful backup.
        #[arg(long)]
        only_if_changed: bool,
        /// Add the schedule switched off; turn it on later with `schedule edit --active`.
        #[arg(long)]
        inactive: bool,
    },
    /// Change a schedule: only what is given changes.
    Edit {
        #[arg(help = SERVER_HELP)]
        server: String,
        /// The schedule's ID, as `schedule list` shows it.
        id: i64,
        #[command(flatten)]
        when: When,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// Whether to skip a run when no file changed since the last successful backup.
        #[arg(long, value_name = "true|false")]
        only_if_changed: Option<bool>,
        /// Switch the schedule on.
        #[arg(long, conflicts_with = "inactive")]
        active: bool,
        /// Switch the schedule off: it keeps its settings but does not run.
        #[arg(long)]
        inactive: bool,
    },
    /// Delete a schedule (its backups stay).
    Rm {
        #[arg(help = SERVER_HELP)]
        server: String,
        /// The schedule's ID, as `schedule list` shows it.
        id: i64,
    },
    /// Run a schedule now, whether or not it is active, and wait for its backup.
    Run {
        #[arg(help = SERVER_HELP)]
        server: String,
        /// The schedule's ID, as `schedule list` shows it.
        id: i64,
    },
}

/// When a schedule runs: one preset, or a cron expression for anything else. Times are on
/// a 24-hour clock in hoard's `timezone` setting.
#[derive(Args)]
#[group(id = "when", multiple = false)]
pub struct When {
    /// Every hour, on the hour.
    #[arg(long)]
    hourly: bool,
    /// Every day at this time, e.g. 04:00.
    #[arg(long, value_name = "HH:MM")]
    daily: Option<String>,
    /// Every week on this day at this time, e.g. `--weekly sun 04:00`. The day is mon to sun,
    /// monday to sunday, or 0 to 7 (0 and 7 are both Sunday).
    #[arg(long, num_args = 2, value_names = ["DAY", "HH:MM"])]
    weekly: Option<Vec<String>>,
    /// Any standard cron expression, for what the presets cannot say: minute, hour, day of
    /// the month, month and day of the week, e.g. '30 3 * * 1-5' (03:30 on weekdays).
    #[arg(long, value_name = "'M H DOM MON DOW'")]
    cron: Option<String>,
}

/// The days of the week in cron's order: Sunday is 0.
const DAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

impl When {
    /// The cron fields of the preset given, or None when none was.
    fn cron(&self) -> Result<Option<Cron>, Failure> {
        let every = |minute: String, hour: String, day_of_week: &str| Cron {
            minute,
            hour,
            day_of_month: "*".into(),
            month: "*".into(),
            day_of_week: day_of_week.into(),
        };
        if self.hourly {
            return Ok(Some(every("0".into(), "*".into(), "*")));
        }
        if let Some(time) = &self.daily {
            let (hour, minute) = time_of_day("--daily", time)?;
            return Ok(Some(every(minute, hour, "*")));
        }
        if let Some([day, time]) = self.weekly.as_deref() {
            let (hour, minute) = time_of_day("--weekly", time)?;
            return Ok(Some(every(minute, hour, &weekday(day)?.to_string())));
        }
        self.cron.as_deref().map(expression).transpose()
    }
}

/// `HH:MM` on a 24-hour clock, as the cron hour and minute fields.
fn time_of_day(flag: &str, text: &str) -> Result<(String, String), Failure> {
    let bad = |why: &str| {
        Failure(format!(
            "{flag}: '{text}' is not a time of day: {why}. Give HH:MM on a 24-hour clock, such as 04:00 or 21:30."
        ))
    };
    let (hour, minute) = text.split_once(':').ok_or_else(|| bad("it has no ':'"))?;
    let field = |value: &str, max: u32, what: &str| {
        value
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= max && !value.starts_with('+'))
            .ok_or_else(|| bad(&format!("the {what} must be 0 to {max}")))
    };
    let hour = field(hour, 23, "hour")?;
    let minute = field(minute, 59, "minute")?;
    Ok((hour.to_string(), minute.to_string()))
}

/// A day of the week as cron's number (Sunday is 0).
fn weekday(text: &str) -> Result<usize, Failure> {
    let lower = text.to_lowercase();
    let by_name = DAYS
        .iter()
        .position(|d| lower == *d || (lower.len() == 3 && d.starts_with(&lower)));
    let by_number = lower
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= 7)
        .map(|n| n % 7);
    by_name.or(by_number).ok_or_else(|| {
        Failure(format!(
            "--weekly: '{text}' is not a day of the week. Give mon, tue, wed, thu, fri, sat or sun, the whole name (monday to sunday), or a number from 0 to 7 (0 and 7 are Sunday)."
        ))
    })
}

/// A five-field cron expression; the fields' values are checked when the schedule is saved.
fn expression(text: &str) -> Result<Cron, Failure> {
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        [minute, hour, day_of_month, month, day_of_week] => Ok(Cron {
            minute: minute.into(),
            hour: hour.into(),
            day_of_month: day_of_month.into(),
            month: month.into(),
            day_of_week: day_of_week.into(),
        }),
        ref fields => Err(Failure(format!(
            "--cron: '{text}' has {} fields, but a cron expression has five: minute, hour, day of the month, month and day of the week, such as '0 4 * * *' for 04:00 every day.",
            fields.len()
        ))),
    }
}

/// A request with `cron`'s fields; the other fields are the caller's.
fn with_cron(cron: Option<Cron>, request: ScheduleRequest) -> ScheduleRequest {
    match cron {
        Some(c) => ScheduleRequest {
            minute: Some(c.minute),
            hour: Some(c.hour),
            day_of_month: Some(c.day_of_month),
            month: Some(c.month),
            day_of_week: Some(c.day_of_week),
            ..request
        },
        None => request,
    }
}

/// The schedule as the API gives it.
fn schedule_value(app: &App, s: &Schedule) -> Value {
    wire::schedule(
        s,
        &schedules::next_runs(app, s),
        schedules::describe(&s.cron),
    )
}

/// How a run ended, in a table cell: when, the outcome, and why if there is a reason.
fn last_run_cell(app: &App, s: &Schedule) -> String {
    let Some(run) = &s.last_run else {
        return "never".into();
    };
    let at = s.last_run_at.map(|t| format!("{}, ", local(app, t)));
    let reason = run.reason.as_deref().map(|r| format!(": {r}"));
    format!(
        "{}{}{}",
        at.unwrap_or_default(),
        run.outcome.as_str(),
        reason.unwrap_or_default()
    )
}

fn schedule_table(app: &App, list: &[Schedule]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.name.clone(),
                schedules::describe(&s.cron).unwrap_or_else(|| s.cron.expression()),
                s.next_run_at
                    .filter(|_| s.is_active)
                    .map_or_else(|| "-".into(), |t| local(app, t)),
                last_run_cell(app, s),
                if s.is_active { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "WHEN", "NEXT RUN", "LAST RUN", "ACTIVE"],
        &rows,
    )
}

/// Prints one schedule, as a one-row table or the API's body.
fn print_schedule(app: &App, out: &Out, s: &Schedule) {
    out.print(&schedule_value(app, s), || {
        schedule_table(app, std::slice::from_ref(s))
    });
}

fn timezone(app: &App) -> &str {
    app.config.timezone.iana_name().unwrap_or("UTC")
}

pub fn schedule(app: App, out: &Out, command: ScheduleCommand) -> CliResult {
    let actor = Actor::Hoard;
    let access = Access::Admin;
    match command {
        ScheduleCommand::List { server } => {
            let conn = app.db.conn()?;
            let server = servers::find(&conn, &server)?;
            let list = schedules::list(&conn, &server, &access)?;
            let mut body = wire::list(list.iter().map(|s| schedule_value(&app, s)).collect());
            body["meta"] = json!({"timezone": timezone(&app)});
            out.print(&body, || {
                if list.is_empty() {
                    format!(
                        "Server {} has no schedules: add one with `hoard schedule add`.",
                        server.short_id
                    )
                } else {
                    schedule_table(&app, &list)
                }
            });
        }
        ScheduleCommand::Add {
            server,
            name,
            when,
            ignore,
            only_if_changed,
            inactive,
        } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            let request = with_cron(
                when.cron()?,
                ScheduleRequest {
                    name: Some(name),
                    is_active: Some(!inactive),
                    only_if_changed: Some(only_if_changed),
                    ..ScheduleRequest::default()
                },
            );
            let schedule = add(&app, &server, &request, ignore.join("\n"))?;
            print_schedule(&app, out, &schedule);
        }
        ScheduleCommand::Edit {
            server,
            id,
            when,
            name,
            only_if_changed,
            active,
            inactive,
        } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            let request = with_cron(
                when.cron()?,
                ScheduleRequest {
                    name,
                    is_active: (active || inactive).then_some(active),
                    only_if_changed,
                    ..ScheduleRequest::default()
                },
            );
            if is_unchanged(&request) {
                return Err(Failure(
                    "nothing to change: give a new time (--hourly, --daily, --weekly or --cron), --name, --only-if-changed, --active or --inactive".into(),
                ));
            }
            let schedule = schedules::update(&app, &actor, &server, &access, id, &request)?;
            print_schedule(&app, out, &schedule);
        }
        ScheduleCommand::Rm { server, id } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            schedules::delete(&app, &actor, &server, &access, id)?;
            out.print(&json!({}), || format!("Deleted schedule {id}"));
        }
        ScheduleCommand::Run { server, id } => run(Arc::new(app), out, &server, id)?,
    }
    Ok(())
}

/// Whether an edit asks for no change at all ([`with_cron`] sets all five cron fields or
/// none, so the minute stands for them).
fn is_unchanged(request: &ScheduleRequest) -> bool {
    let ScheduleRequest {
        name,
        minute,
        is_active,
        only_if_changed,
        ..
    } = request;
    name.is_none() && minute.is_none() && is_active.is_none() && only_if_changed.is_none()
}

/// Creates a schedule and its backup task. A schedule without a task never backs anything
/// up, so when the task cannot be added the schedule is removed again.
fn add(
    app: &App,
    server: &Server,
    request: &ScheduleRequest,
    payload: String,
) -> Result<Schedule, Failure> {
    let (actor, access) = (Actor::Hoard, Access::Admin);
    let schedule = schedules::create(app, &actor, server, &access, request)?;
    let task = TaskRequest {
        action: Some("backup".into()),
        payload: Some(payload),
        time_offset: Some(0),
        ..TaskRequest::default()
    };
    if let Err(e) = schedules::create_task(app, &actor, server, &access, schedule.id, &task) {
        schedules::delete(app, &actor, server, &access, schedule.id)?;
        return Err(e.into());
    }
    Ok(schedules::get(
        &*app.db.conn()?,
        server,
        &access,
        schedule.id,
    )?)
}

/// Runs a schedule in this process, as the scheduler of `hoard serve` would, and reports
/// how it went; a failed run is a failed command, so scripts notice.
fn run(app: Arc<App>, out: &Out, server: &str, id: i64) -> CliResult {
    let server = servers::find(&*app.db.conn()?, server)?;
    schedules::execute(&app, &Actor::Hoard, &server, &Access::Admin, id)?;
    let handles = Jobs::start(&app, 1);
    let ran = crate::jobs::schedule::run(&app, id, Trigger::Manual);
    Jobs::shutdown(&app, handles, Duration::ZERO);
    let schedule = schedules::get(&*app.db.conn()?, &server, &Access::Admin, id)?;
    let value = schedule_value(&app, &schedule);
    if ran.outcome == Outcome::Failed {
        out.print(&value, String::new);
        return Err(Failure(format!(
            "the run of schedule {id} failed: {}",
            ran.reason.as_deref().unwrap_or("no reason was recorded")
        )));
    }
    out.print(&value, || outcome_line(&ran));
    Ok(())
}

/// A run that did not fail, in words.
fn outcome_line(run: &LastRun) -> String {
    let reason = run.reason.as_deref().unwrap_or("no reason was recorded");
    match (run.outcome, &run.backup_uuid) {
        (Outcome::Completed, Some(uuid)) => format!("Completed: backup {uuid}"),
        (outcome, _) => format!("{}: {reason}", capitalised(outcome.as_str())),
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Show a server's retention policy.
    Show {
        #[arg(help = SERVER_HELP)]
        server: String,
    },
    /// Replace a server's policy with the rules given, or remove it with --clear. Nothing
    /// is deleted now: the policy is applied after the server's next successful backup.
    Set {
        #[arg(help = SERVER_HELP)]
        server: String,
        #[command(flatten)]
        rules: Rules,
        /// Remove the policy: hoard then deletes no backup by itself, except to stay under
        /// the server's backup limit or quota.
        #[arg(long, conflicts_with = "rules")]
        clear: bool,
    },
    /// Show which backups a policy would keep and delete, changing nothing. Without rules,
    /// the server's current policy.
    Preview {
        #[arg(help = SERVER_HELP)]
        server: String,
        #[command(flatten)]
        rules: Rules,
    },
}

/// Keep rules, as restic's `forget` has them: a backup is kept if any rule keeps it.
/// Hours, days, weeks, months and years are counted in hoard's `timezone` setting.
#[derive(Args, Default, PartialEq)]
#[group(id = "rules", multiple = true)]
pub struct Rules {
    /// Keep the N newest backups.
    #[arg(long, value_name = "N")]
    keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days that have one.
    #[arg(long, value_name = "N")]
    keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N weeks that have one.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the last N years that have one.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<u32>,
    /// Keep every backup made within this long before the newest one: whole years, months,
    /// days and hours in that order, such as 30d, 36h or 1y6m.
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<String>,
}

impl Rules {
    fn policy(&self) -> Result<Policy, Failure> {
        let keep_within = self
            .keep_within
            .as_deref()
            .map(|text| {
                text.trim()
                    .parse::<Within>()
                    .map_err(|e| Failure(format!("--keep-within: {e}")))
            })
            .transpose()?;
        Ok(Policy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within,
        })
    }

    fn is_empty(&self) -> bool {
        *self == Rules::default()
    }
}

/// The policy's rules as the flags that set them, e.g. "--keep-daily 7 --keep-within 30d".
fn policy_flags(p: &Policy) -> String {
    let counts = [
        ("last", p.keep_last),
        ("hourly", p.keep_hourly),
        ("daily", p.keep_daily),
        ("weekly", p.keep_weekly),
        ("monthly", p.keep_monthly),
        ("yearly", p.keep_yearly),
    ];
    counts
        .into_iter()
        .filter_map(|(rule, n)| n.map(|n| format!("--keep-{rule} {n}")))
        .chain(p.keep_within.map(|w| format!("--keep-within {w}")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn policy_text(app: &App, server: &Server, policy: Option<&Policy>) -> String {
    match policy {
        Some(p) => format!(
            "Server {} keeps: {} (time zone {}).\nLocked backups and the newest successful one are always kept; the rest go after the next successful backup.",
            server.short_id,
            policy_flags(p),
            timezone(app)
        ),
        None => format!(
            "Server {} has no retention policy: hoard deletes no backup by itself, except to stay under the server's backup limit or quota.",
            server.short_id
        ),
    }
}

fn preview_text(app: &App, verdicts: &[(Backup, Verdict)]) -> String {
    let rows: Vec<Vec<String>> = verdicts
        .iter()
        .map(|(b, v)| {
            vec![
                if v.keep { "KEEP" } else { "DELETE" }.into(),
                local(app, b.created_at),
                b.name.clone(),
                b.status.as_str().into(),
                v.reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let kept = verdicts.iter().filter(|(_, v)| v.keep).count();
    format!(
        "{}\n{kept} kept, {} deleted",
        table(&["", "CREATED", "NAME", "STATUS", "REASONS"], &rows),
        verdicts.len() - kept
    )
}

pub fn retention(app: &App, out: &Out, command: RetentionCommand) -> CliResult {
    let access = Access::Admin;
    match command {
        RetentionCommand::Show { server } => {
            let conn = app.db.conn()?;
            let server = servers::find(&conn, &server)?;
            let policy = retention::policy(&conn, &server, &access)?;
            out.print(&wire::retention(app, policy.as_ref()), || {
                policy_text(app, &server, policy.as_ref())
            });
        }
        RetentionCommand::Set {
            server,
            rules,
            clear,
        } => {
            if rules.is_empty() && !clear {
                return Err(Failure(
                    "give at least one rule (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly or --keep-within), or --clear to remove the policy".into(),
                ));
            }
            let conn = app.db.conn()?;
            let server = servers::find(&conn, &server)?;
            retention::set_policy(&conn, &Actor::Hoard, &server, &access, &rules.policy()?)?;
            let stored = retention::policy(&conn, &server, &access)?;
            out.print(&wire::retention(app, stored.as_ref()), || {
                policy_text(app, &server, stored.as_ref())
            });
        }
        RetentionCommand::Preview { server, rules } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            let policy = if rules.is_empty() {
                retention::policy(&*app.db.conn()?, &server, &access)?.unwrap_or_default()
            } else {
                rules.policy()?
            };
            let verdicts = retention::preview(app, &server, &access, &policy)?;
            out.print(&wire::retention_preview(&verdicts), || {
                preview_text(app, &verdicts)
            });
        }
    }
    Ok(())
}
