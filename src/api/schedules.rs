//! `/api/client/servers/{server}/schedules` in Pterodactyl's shapes, and hoard's
//! `/retention`: handlers parse the request, then call [`crate::schedules`] and
//! [`crate::retention`].

use super::client::{actionable, visible};
use super::fields::Fields;
use super::http::Response;
use super::{Caller, Ctx, wire};
use crate::error::{Error, FieldError, Result};
use crate::jobs::schedule::Trigger;
use crate::model::Permission;
use crate::retention::{self, Policy, Within};
use crate::schedules::{self, ScheduleRequest, TaskRequest};
use serde_json::json;

/// A schedule or task id from the path: anything but a number is not found.
fn id(text: &str, what: &str) -> Result<i64> {
    text.parse().map_err(|_| Error::not_found(what))
}

fn schedule_request(ctx: &Ctx) -> Result<ScheduleRequest> {
    let mut f = Fields::new(ctx.req.body_object()?);
    let request = ScheduleRequest {
        name: f.string("name"),
        minute: f.string("minute"),
        hour: f.string("hour"),
        day_of_month: f.string("day_of_month"),
        month: f.string("month"),
        day_of_week: f.string("day_of_week"),
        is_active: f.bool("is_active"),
        only_when_online: f.bool("only_when_online"),
        only_if_changed: f.bool("only_if_changed"),
    };
    f.finish()?;
    Ok(request)
}

fn task_request(ctx: &Ctx) -> Result<TaskRequest> {
    let mut f = Fields::new(ctx.req.body_object()?);
    let request = TaskRequest {
        action: f.string("action"),
        payload: f.string("payload"),
        time_offset: f.int("time_offset"),
        sequence_id: f.int("sequence_id"),
        continue_on_failure: f.bool("continue_on_failure"),
    };
    f.finish()?;
    Ok(request)
}

fn schedule_body(ctx: &Ctx, schedule: &crate::model::Schedule) -> serde_json::Value {
    wire::schedule(
        schedule,
        &schedules::next_runs(ctx.app, schedule),
        schedules::describe(&schedule.cron),
    )
}

pub fn list(ctx: &Ctx, caller: &Caller, server_id: &str) -> Result<Response> {
    let (server, access) = visible(ctx, caller, server_id)?;
    let list = schedules::list(&*ctx.app.db.conn()?, &server, &access)?;
    let items = list.iter().map(|s| schedule_body(ctx, s)).collect();
    let mut body = wire::list(items);
    body["meta"] = json!({"timezone": ctx.app.config.timezone.iana_name().unwrap_or("UTC")});
    Ok(Response::json(200, &body))
}

/// The next runs and the plain words of cron fields not saved yet, for a form that shows
/// them as they are typed.
pub fn preview(ctx: &Ctx, caller: &Caller, server_id: &str) -> Result<Response> {
    let (_, access) = visible(ctx, caller, server_id)?;
    access.require(Permission::ScheduleRead)?;
    let request = schedule_request(ctx)?;
    let preview = schedules::preview(ctx.app, &request)?;
    Ok(Response::json(
        200,
        &json!({
            "object": "schedule_preview",
            "attributes": {
                "expression": preview.cron.expression(),
                "description": preview.description,
                "next_runs": preview.next_runs.iter().map(|t| crate::model::rfc3339(*t)).collect::<Vec<_>>(),
                "timezone": ctx.app.config.timezone.iana_name().unwrap_or("UTC"),
            },
        }),
    ))
}

pub fn show(ctx: &Ctx, caller: &Caller, server_id: &str, schedule: &str) -> Result<Response> {
    let (server, access) = visible(ctx, caller, server_id)?;
    let schedule = schedules::get(
        &*ctx.app.db.conn()?,
        &server,
        &access,
        id(schedule, "schedule")?,
    )?;
    Ok(Response::json(200, &schedule_body(ctx, &schedule)))
}

pub fn create(ctx: &Ctx, caller: &Caller, server_id: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, server_id, Permission::ScheduleCreate)?;
    let request = schedule_request(ctx)?;
    let schedule = schedules::create(ctx.app, &ctx.actor(caller), &server, &access, &request)?;
    Ok(Response::json(200, &schedule_body(ctx, &schedule)))
}

pub fn update(ctx: &Ctx, caller: &Caller, server_id: &str, schedule: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, server_id, Permission::ScheduleUpdate)?;
    let schedule_id = id(schedule, "schedule")?;
    let request = schedule_request(ctx)?;
    let schedule = schedules::update(
        ctx.app,
        &ctx.actor(caller),
        &server,
        &access,
        schedule_id,
        &request,
    )?;
    Ok(Response::json(200, &schedule_body(ctx, &schedule)))
}

pub fn delete(ctx: &Ctx, caller: &Caller, server_id: &str, schedule: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, server_id, Permission::ScheduleDelete)?;
    schedules::delete(
        ctx.app,
        &ctx.actor(caller),
        &server,
        &access,
        id(schedule, "schedule")?,
    )?;
    Ok(Response::empty(204))
}

pub fn execute(ctx: &Ctx, caller: &Caller, server_id: &str, schedule: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, server_id, Permission::ScheduleUpdate)?;
    let schedule = schedules::execute(
        ctx.app,
        &ctx.actor(caller),
        &server,
        &access,
        id(schedule, "schedule")?,
    )?;
    ctx.app.jobs.request_run(schedule.id, Trigger::Manual);
    // As Pterodactyl answers: accepted, with an empty JSON array.
    Ok(Response::json(202, &json!([])))
}

pub fn create_task(
    ctx: &Ctx,
    caller: &Caller,
    server_id: &str,
    schedule: &str,
) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, server_id, Permission::ScheduleUpdate)?;
    let schedule_id = id(schedule, "schedule")?;
    let request = task_request(ctx)?;
    let task = schedules::create_task(
        ctx.app,
        &ctx.actor(caller),
        &server,
        &access,
        schedule_id,
        &request,
    )?;
    Ok(Response::json(200, &wire::task(&task)))
}

pub fn update_task(
    ctx: &Ctx,
    caller: &Caller,
    server_id: &str,
    schedule: &str,
    task: &str,
) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, server_id, Permission::ScheduleUpdate)?;
    let (schedule_id, task_id) = (id(schedule, "schedule")?, id(task, "task")?);
    let request = task_request(ctx)?;
    let task = schedules::update_task(
        ctx.app,
        &ctx.actor(caller),
        &server,
        &access,
        schedule_id,
        task_id,
        &request,
    )?;
    Ok(Response::json(200, &wire::task(&task)))
}

pub fn delete_task(
    ctx: &Ctx,
    caller: &Caller,
    server_id: &str,
    schedule: &str,
    task: &str,
) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, server_id, Permission::ScheduleUpdate)?;
    schedules::delete_task(
        ctx.app,
        &ctx.actor(caller),
        &server,
        &access,
        id(schedule, "schedule")?,
        id(task, "task")?,
    )?;
    Ok(Response::empty(204))
}

/// A policy from a request body: each rule a count of 0 or more, or null (unused);
/// `keep_within` restic's duration syntax.
fn policy(ctx: &Ctx) -> Result<Policy> {
    let mut f = Fields::new(ctx.req.body_object()?);
    let count = |f: &mut Fields, name: &str| match f.nullable_int(name).flatten() {
        None => None,
        Some(n) => match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                f.push(FieldError::new(
                    name,
                    "integer|min:0",
                    format!("The {name} field must be a whole number of backups, 0 or more."),
                ));
                None
            }
        },
    };
    let mut policy = Policy {
        keep_last: count(&mut f, "keep_last"),
        keep_hourly: count(&mut f, "keep_hourly"),
        keep_daily: count(&mut f, "keep_daily"),
        keep_weekly: count(&mut f, "keep_weekly"),
        keep_monthly: count(&mut f, "keep_monthly"),
        keep_yearly: count(&mut f, "keep_yearly"),
        keep_within: None,
    };
    if let Some(text) = f.nullable_string("keep_within").flatten()
        && !text.trim().is_empty()
    {
        match text.trim().parse::<Within>() {
            Ok(within) => policy.keep_within = Some(within),
            Err(e) => f.push(FieldError::new("keep_within", "duration", e.to_string())),
        }
    }
    f.finish()?;
    Ok(policy)
}

pub fn show_retention(ctx: &Ctx, caller: &Caller, server_id: &str) -> Result<Response> {
    let (server, access) = visible(ctx, caller, server_id)?;
    let policy = retention::policy(&*ctx.app.db.conn()?, &server, &access)?;
    Ok(Response::json(
        200,
        &wire::retention(ctx.app, policy.as_ref()),
    ))
}

pub fn set_retention(ctx: &Ctx, caller: &Caller, server_id: &str) -> Result<Response> {
    let (server, access) = actionable(ctx, caller, server_id, Permission::BackupDelete)?;
    let policy = policy(ctx)?;
    let conn = ctx.app.db.conn()?;
    retention::set_policy(&conn, &ctx.actor(caller), &server, &access, &policy)?;
    let stored = retention::policy(&conn, &server, &access)?;
    Ok(Response::json(
        200,
        &wire::retention(ctx.app, stored.as_ref()),
    ))
}

pub fn preview_retention(ctx: &Ctx, caller: &Caller, server_id: &str) -> Result<Response> {
    let (server, access) = visible(ctx, caller, server_id)?;
    let policy = policy(ctx)?;
    let verdicts = retention::preview(ctx.app, &server, &access, &policy)?;
    Ok(Response::json(200, &wire::retention_preview(&verdicts)))
}
