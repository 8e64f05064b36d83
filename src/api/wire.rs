//! The JSON shapes of the API: Pterodactyl's envelopes and attribute sets, plus hoard's
//! documented extensions.

use crate::auth::Access;
use crate::config::ApiCompat;
use crate::model::{
    ActorKind, ApiKey, Backup, BackupStatus, Permission, Progress, Schedule, Server, ServerStatus,
    Subuser, Task, Timestamp, User, now, rfc3339,
};
use crate::retention::{Policy, Verdict};
use crate::servers::View;
use crate::store::activity::Entry;
use crate::store::restores::{Restore, Step};
use serde::Serialize;
use serde_json::{Value, json};

pub fn item(object: &str, attributes: Value) -> Value {
    json!({"object": object, "attributes": attributes})
}

pub fn list(items: Vec<Value>) -> Value {
    json!({"object": "list", "data": items})
}

fn ts(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// `{"object": ..., "attributes": ...}` for attributes serialised straight from borrowed
/// data: the backup list is the hottest response, and building a `Value` tree per backup
/// made allocation its main cost.
#[derive(Serialize)]
pub struct Item<T> {
    object: &'static str,
    attributes: T,
}

/// A list of typed items with its `meta`.
#[derive(Serialize)]
pub struct List<T> {
    object: &'static str,
    data: Vec<T>,
    meta: Value,
}

impl<T> List<T> {
    pub fn new(data: Vec<T>, meta: Value) -> List<T> {
        List {
            object: "list",
            data,
            meta,
        }
    }
}

#[derive(Serialize)]
pub struct BackupAttributes<'a> {
    uuid: &'a str,
    name: &'a str,
    ignored_files: &'a [String],
    sha256_hash: Option<&'a str>,
    checksum: Option<String>,
    bytes: i64,
    created_at: String,
    completed_at: Option<String>,
    is_successful: Option<bool>,
    is_locked: bool,
    is_scheduled: bool,
    status: &'static str,
    progress: Option<BackupProgress>,
    compression: &'static str,
    error: Option<&'a str>,
    error_detail: Option<&'a str>,
    warnings: &'a [String],
    verified_at: Option<String>,
    verification: Option<BackupVerification>,
}

/// A verification of the archive under way.
#[derive(Serialize)]
pub struct BackupVerification {
    bytes_processed: i64,
    bytes_total: i64,
    percent: f64,
}

#[derive(Serialize)]
pub struct BackupProgress {
    bytes_processed: i64,
    bytes_total: i64,
    files_processed: i64,
    files_total: i64,
    percent: f64,
    eta_seconds: Option<i64>,
}

/// A backup as a user with `access` to its server sees it: what a failed hook printed is for
/// the owner and admins only. `compat` decides `completed_at` and `is_successful` where a
/// real Pterodactyl panel differs from the reference.
pub fn backup<'a>(b: &'a Backup, access: &Access, compat: ApiCompat) -> Item<BackupAttributes<'a>> {
    let p = &b.progress;
    let progress = (b.status == BackupStatus::Creating).then(|| BackupProgress {
        bytes_processed: p.bytes_processed,
        bytes_total: p.bytes_total,
        files_processed: p.files_processed,
        files_total: p.files_total,
        percent: (p.percent() * 10.0).round() / 10.0,
        eta_seconds: p.eta_seconds(now()),
    });
    // The backup itself succeeded, whatever became of its archive since. Pterodactyl's
    // column is false until the backup succeeds.
    let is_successful = match (b.status, compat) {
        (BackupStatus::Creating, ApiCompat::Hoard) => None,
        (BackupStatus::Creating | BackupStatus::Failed, _) => Some(false),
        _ => Some(true),
    };
    let verification = b.verifying.map(|read| BackupVerification {
        bytes_processed: read,
        bytes_total: b.bytes,
        percent: if b.bytes > 0 {
            ((read as f64 * 1000.0 / b.bytes as f64).round() / 10.0).clamp(0.0, 100.0)
        } else {
            0.0
        },
    });
    Item {
        object: "backup",
        attributes: BackupAttributes {
            uuid: &b.uuid,
            name: &b.name,
            ignored_files: &b.ignored_files,
            sha256_hash: b.sha256_hash.as_deref(),
            checksum: b.sha256_hash.as_ref().map(|h| format!("sha256:{h}")),
            bytes: b.bytes,
            created_at: rfc3339(b.created_at),
            completed_at: completed_at(b, compat),
            is_successful,
            is_locked: b.is_locked,
            is_scheduled: b.is_scheduled,
            status: b.status.as_str(),
            progress,
            compression: b.compression.as_str(),
            error: b.error.as_deref(),
            error_detail: b.error_detail.as_deref().filter(|_| access.is_full()),
            warnings: &b.warnings,
            verified_at: b.verified_at.map(rfc3339),
            verification,
        },
    }
}

/// When the backup completed. A failed backup records when it ended there too, which
/// Pterodactyl shows and the reference does not.
fn completed_at(b: &Backup, compat: ApiCompat) -> Option<String> {
    match (b.status, compat) {
        (BackupStatus::Failed, ApiCompat::Hoard) => None,
        _ => b.completed_at.map(rfc3339),
    }
}

/// The backup as a JSON value, as an admin sees it, for the command line (hoard's own
/// output, in the reference's shape).
pub fn backup_value(b: &Backup) -> Value {
    serde_json::to_value(backup(b, &Access::Admin, ApiCompat::Hoard))
        .expect("backup attributes serialise")
}

/// Every permission hoard knows, with what it allows, in Pterodactyl's `system_permissions`
/// shape: groups, each with its description and its keys' descriptions.
pub fn permissions() -> Value {
    let mut groups = serde_json::Map::new();
    for p in Permission::ALL {
        let (group, key) = p.group_and_key();
        let entry = groups
            .entry(group)
            .or_insert_with(|| json!({"description": p.group_description(), "keys": {}}));
        entry["keys"][key] = Value::from(p.description());
    }
    item("system_permissions", json!({ "permissions": groups }))
}

/// Page links and counts, in Pterodactyl's `meta.pagination` shape.
pub struct Page {
    pub total: i64,
    pub count: usize,
    pub per_page: i64,
    pub current_page: i64,
    /// Absolute URL of the listing, with its filters if any; links add `page` and `per_page`.
    pub base: String,
}

pub fn pagination(p: &Page) -> Value {
    let total_pages = ((p.total + p.per_page - 1) / p.per_page).max(1);
    let mut links = serde_json::Map::new();
    // A base that holds a query already (a filter) keeps it in every link.
    let sep = if p.base.contains('?') { '&' } else { '?' };
    let link = |page: i64| {
        Value::String(format!(
            "{}{sep}page={page}&per_page={}",
            p.base, p.per_page
        ))
    };
    if p.current_page > 1 {
        links.insert(
            "previous".into(),
            link((p.current_page - 1).min(total_pages)),
        );
    }
    if p.current_page < total_pages {
        links.insert("next".into(), link(p.current_page + 1));
    }
    json!({
        "total": p.total,
        "count": p.count,
        "per_page": p.per_page,
        "current_page": p.current_page,
        "total_pages": total_pages,
        "links": links,
    })
}

/// A list that is never paged, with the pagination block clients expect anyway.
pub fn single_page<T: Serialize>(items: Vec<T>, base: String) -> List<T> {
    let count = items.len();
    let meta = json!({"pagination": pagination(&Page {
        total: count as i64,
        count,
        per_page: count.max(1) as i64,
        current_page: 1,
        base,
    })});
    List::new(items, meta)
}

#[derive(Serialize)]
pub struct ServerAttributes<'a> {
    server_owner: bool,
    identifier: &'a str,
    uuid: &'a str,
    name: &'a str,
    description: &'a str,
    status: Option<&'static str>,
    is_suspended: bool,
    is_installing: bool,
    feature_limits: FeatureLimits,
    backup_count: i64,
    last_backup: Option<LastBackup<'a>>,
    restore: Option<RunningRestore<'a>>,
    last_restore: Option<LastRestore<'a>>,
    schedules: Option<Value>,
    storage: Option<Value>,
    /// Which hooks are set (not their commands): what a backup or restore will really do.
    hooks: Value,
}

#[derive(Serialize)]
struct FeatureLimits {
    databases: i64,
    allocations: i64,
    backups: i64,
}

#[derive(Serialize)]
struct LastBackup<'a> {
    uuid: &'a str,
    name: &'a str,
    status: &'static str,
    created_at: String,
    completed_at: Option<String>,
}

#[derive(Serialize)]
struct RunningRestore<'a> {
    uuid: &'a str,
    backup_uuid: &'a str,
    truncate: bool,
    step: &'static str,
    bytes_processed: i64,
    bytes_total: i64,
    percent: f64,
    eta_seconds: Option<i64>,
}

#[derive(Serialize)]
struct LastRestore<'a> {
    uuid: &'a str,
    backup_uuid: &'a str,
    successful: bool,
    error: Option<&'a str>,
    /// What a failed hook printed: for the owner and admins only.
    error_detail: Option<&'a str>,
    /// Why the restored files may not be the backup's as it was made.
    warning: Option<&'a str>,
    finished_at: Option<String>,
}

/// The client API's view of a server, as `user` sees it; typed rather than a `Value` tree,
/// since a user's server list is requested as often as the backup list.
pub fn client_server<'a>(view: &'a View, user: &User) -> Item<ServerAttributes<'a>> {
    let s = &view.server;
    let status = s.status.map(|st| st.as_str());
    Item {
        object: "server",
        attributes: ServerAttributes {
            server_owner: s.owner_id == Some(user.id),
            identifier: &s.short_id,
            uuid: &s.uuid,
            name: &s.name,
            description: &s.description,
            status,
            is_suspended: s.status == Some(ServerStatus::Suspended),
            is_installing: s.status == Some(ServerStatus::Installing),
            feature_limits: FeatureLimits {
                databases: 0,
                allocations: 0,
                backups: s.backup_limit,
            },
            backup_count: view.backup_count,
            last_backup: view.last_backup.as_ref().map(|b| LastBackup {
                uuid: &b.uuid,
                name: &b.name,
                status: b.status.as_str(),
                created_at: rfc3339(b.created_at),
                // A hoard extension, so the reference's rule.
                completed_at: completed_at(b, ApiCompat::Hoard),
            }),
            restore: view.running_restore.as_ref().map(running_restore),
            last_restore: view.last_restore.as_ref().map(|r| LastRestore {
                uuid: &r.uuid,
                backup_uuid: &r.backup_uuid,
                successful: r.step == Step::Done,
                error: r.error.as_deref(),
                error_detail: r.error_detail.as_deref().filter(|_| view.access.is_full()),
                warning: r.warning.as_deref(),
                finished_at: r.finished_at.map(rfc3339),
            }),
            hooks: json!({
                "pre_backup": s.hooks.pre_backup.is_some(),
                "post_backup": s.hooks.post_backup.is_some(),
                "pre_restore": s.hooks.pre_restore.is_some(),
                "post_restore": s.hooks.post_restore.is_some(),
            }),
            storage: view.storage.as_ref().map(|s| {
                json!({
                    "used_bytes": s.used_bytes,
                    "quota_bytes": s.quota_bytes,
                    "free_bytes": s.free_bytes,
                    "warning": s.warning,
                })
            }),
            schedules: view.schedules.as_ref().map(|s| {
                json!({
                    "count": s.count,
                    "next_run_at": ts(s.next_run_at),
                    "problem": s.problem.as_ref().map(|(name, run, at)| json!({
                        "schedule": name,
                        "outcome": run.outcome.as_str(),
                        "reason": run.reason,
                        "at": ts(*at),
                    })),
                })
            }),
        },
    }
}

/// A running restore's step and progress.
fn running_restore(r: &Restore) -> RunningRestore<'_> {
    let progress = Progress {
        bytes_processed: r.bytes_processed,
        bytes_total: r.bytes_total,
        files_processed: 0,
        files_total: 0,
        started_at: Some(r.started_at),
    };
    RunningRestore {
        uuid: &r.uuid,
        backup_uuid: &r.backup_uuid,
        truncate: r.truncate,
        step: r.step.as_str(),
        bytes_processed: r.bytes_processed,
        bytes_total: r.bytes_total,
        percent: (progress.percent() * 10.0).round() / 10.0,
        eta_seconds: progress.eta_seconds(now()),
    }
}

/// The administration API's view of a server: every setting.
pub fn admin_server(s: &Server, owner: Option<&User>, backup_count: i64) -> Value {
    item(
        "server",
        json!({
            "uuid": s.uuid,
            "identifier": s.short_id,
            "name": s.name,
            "description": s.description,
            "path": s.path,
            "owner": owner.map(|u| u.username.clone()),
            "backup_limit": s.backup_limit,
            "backup_quota_bytes": s.backup_quota_bytes,
            "max_backup_bytes": s.max_backup_bytes,
            "compression": s.compression.map(|c| c.as_str()),
            "status": s.status.map(|st| st.as_str()),
            "skip_unreadable": s.skip_unreadable,
            "hooks": {
                "pre_backup": s.hooks.pre_backup,
                "post_backup": s.hooks.post_backup,
                "pre_restore": s.hooks.pre_restore,
                "post_restore": s.hooks.post_restore,
            },
            "backup_count": backup_count,
            "created_at": rfc3339(s.created_at),
            "updated_at": rfc3339(s.updated_at),
        }),
    )
}

pub fn user(u: &User) -> Value {
    item(
        "user",
        json!({
            "id": u.id,
            "uuid": u.uuid,
            "username": u.username,
            "admin": u.is_admin,
            "created_at": rfc3339(u.created_at),
            "updated_at": rfc3339(u.updated_at),
        }),
    )
}

pub fn api_key(k: &ApiKey) -> Value {
    item(
        "api_key",
        json!({
            "identifier": k.identifier,
            "description": k.description,
            "allowed_ips": [],
            "last_used_at": ts(k.last_used_at),
            "created_at": rfc3339(k.created_at),
        }),
    )
}

pub fn subuser(s: &Subuser) -> Value {
    item(
        "server_subuser",
        json!({
            "uuid": s.user.uuid,
            "username": s.user.username,
            "email": "",
            "image": null,
            "2fa_enabled": false,
            "created_at": rfc3339(s.created_at),
            "permissions": s.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        }),
    )
}

/// A schedule as Pterodactyl's `ScheduleTransformer` gives it, its tasks included, plus
/// hoard's `only_if_changed`, `description`, `next_runs` and `last_run`.
pub fn schedule(s: &Schedule, next_runs: &[Timestamp], description: Option<String>) -> Value {
    let last_run = s.last_run.as_ref().map(|run| {
        json!({
            "outcome": run.outcome.as_str(),
            "reason": run.reason,
            "backup": run.backup_uuid,
            "catch_up": run.catch_up,
            "at": ts(s.last_run_at),
        })
    });
    item(
        "server_schedule",
        json!({
            "id": s.id,
            "name": s.name,
            "cron": {
                "day_of_week": s.cron.day_of_week,
                "day_of_month": s.cron.day_of_month,
                "month": s.cron.month,
                "hour": s.cron.hour,
                "minute": s.cron.minute,
            },
            "is_active": s.is_active,
            "is_processing": s.is_processing,
            "only_when_online": s.only_when_online,
            "last_run_at": ts(s.last_run_at),
            "next_run_at": ts(s.next_run_at.filter(|_| s.is_active)),
            "created_at": rfc3339(s.created_at),
            "updated_at": rfc3339(s.updated_at),
            "only_if_changed": s.only_if_changed,
            "description": description,
            "next_runs": next_runs.iter().map(|t| rfc3339(*t)).collect::<Vec<_>>(),
            "last_run": last_run,
            "relationships": {
                "tasks": list(s.tasks.iter().map(task).collect()),
            },
        }),
    )
}

/// A schedule's task as Pterodactyl's `TaskTransformer` gives it.
pub fn task(t: &Task) -> Value {
    item(
        "schedule_task",
        json!({
            "id": t.id,
            "sequence_id": t.sequence_id,
            "action": "backup",
            "payload": t.payload,
            "time_offset": t.time_offset,
            "is_queued": t.is_queued,
            "continue_on_failure": t.continue_on_failure,
            "created_at": rfc3339(t.created_at),
            "updated_at": rfc3339(t.updated_at),
        }),
    )
}

/// A server's retention policy (every rule null when it has none) and the time zone its
/// buckets are counted in.
pub fn retention(app: &crate::app::App, policy: Option<&Policy>) -> Value {
    let empty = Policy::default();
    let p = policy.unwrap_or(&empty);
    item(
        "retention_policy",
        json!({
            "is_set": policy.is_some(),
            "keep_last": p.keep_last,
            "keep_hourly": p.keep_hourly,
            "keep_daily": p.keep_daily,
            "keep_weekly": p.keep_weekly,
            "keep_monthly": p.keep_monthly,
            "keep_yearly": p.keep_yearly,
            "keep_within": p.keep_within.map(|w| w.to_string()),
            "timezone": app.config.timezone.iana_name().unwrap_or("UTC"),
        }),
    )
}

/// What a policy would do with each backup, newest first.
pub fn retention_preview(verdicts: &[(Backup, Verdict)]) -> Value {
    let kept = verdicts.iter().filter(|(_, v)| v.keep).count();
    let mut body = list(
        verdicts
            .iter()
            .map(|(b, v)| {
                item(
                    "retention_verdict",
                    json!({
                        "backup": b.uuid,
                        "name": b.name,
                        "created_at": rfc3339(b.created_at),
                        "status": b.status.as_str(),
                        "is_locked": b.is_locked,
                        "bytes": b.bytes,
                        "keep": v.keep,
                        "reasons": v.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    }),
                )
            })
            .collect(),
    );
    body["meta"] = json!({"keep": kept, "delete": verdicts.len() - kept});
    body
}

/// A notification channel as admins see it: its URL masked, its secret never shown.
pub fn notification_channel(
    c: &crate::store::notifications::Channel,
    servers: Option<Vec<String>>,
) -> Value {
    item(
        "notification_channel",
        json!({
            "id": c.id,
            "name": c.name,
            "kind": c.kind,
            "url": crate::notify::mask_url(&c.url),
            "has_secret": c.secret.is_some(),
            "events": c.events,
            "servers": servers,
            "is_enabled": c.is_enabled,
            "pending": c.pending,
            "last_delivery_at": ts(c.last_delivery_at),
            "last_error": c.last_error,
            "last_error_at": ts(c.last_error_at),
            "created_at": rfc3339(c.created_at),
            "updated_at": rfc3339(c.updated_at),
        }),
    )
}

/// An activity-log event as Pterodactyl's `ActivityLogTransformer` gives it, to `viewer`:
/// the address is shown only to the one who acted and to admins, as Pterodactyl does.
/// hoard adds `actor_kind` (`user`, `api_key`, `schedule`, `system`) and, for a schedule,
/// `actor_schedule`: the actor of events no user made is null, as in Pterodactyl.
pub fn activity(e: &Entry, actor: Option<&User>, viewer: &User) -> Value {
    let sees_ip = viewer.is_admin || e.user_id == Some(viewer.id);
    let has_metadata = e.properties.as_object().is_some_and(|p| !p.is_empty());
    item(
        "activity_log",
        json!({
            "id": e.id,
            "batch": null,
            "event": e.event,
            "is_api": e.actor_kind == ActorKind::ApiKey,
            "ip": e.ip.as_deref().filter(|_| sees_ip),
            "description": null,
            "properties": e.properties,
            "has_additional_metadata": has_metadata,
            "timestamp": rfc3339(e.created_at),
            "actor_kind": e.actor_kind.as_str(),
            "actor_schedule": e.schedule.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
            "relationships": {
                "actor": actor.map(user),
            },
        }),
    )
}
