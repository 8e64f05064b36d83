//! Plain types shared by the store, the domain code, the API and the CLI.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Unix seconds, UTC.
pub type Timestamp = i64;

pub fn now() -> Timestamp {
    jiff::Timestamp::now().as_second()
}

/// `2023-10-20T14:30:00+00:00`: the wire format of every timestamp.
pub fn rfc3339(ts: Timestamp) -> String {
    match jiff::Timestamp::from_second(ts) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        Err(_) => "1970-01-01T00:00:00+00:00".to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub uuid: String,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: i64,
    pub identifier: String,
    pub description: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// How an archive is compressed; also its file extension and MIME type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Gzip,
    None,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zstd => "tar.zst",
            Compression::Gzip => "tar.gz",
            Compression::None => "tar",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Compression::Zstd => "application/zstd",
            Compression::Gzip => "application/gzip",
            Compression::None => "application/x-tar",
        }
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zstd" => Ok(Compression::Zstd),
            "gzip" => Ok(Compression::Gzip),
            "none" => Ok(Compression::None),
            other => Err(format!(
                "unknown compression '{other}': use zstd, gzip or none"
            )),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state that stops backups and restores from starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStatus {
    Installing,
    Suspended,
    RestoringBackup,
}

impl ServerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Installing => "installing",
            ServerStatus::Suspended => "suspended",
            ServerStatus::RestoringBackup => "restoring_backup",
        }
    }
}

impl FromStr for ServerStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "installing" => Ok(ServerStatus::Installing),
            "suspended" => Ok(ServerStatus::Suspended),
            "restoring_backup" => Ok(ServerStatus::RestoringBackup),
            other => Err(format!(
                "unknown server status '{other}': use installing, suspended or none"
            )),
        }
    }
}

/// Shell commands run around backups and restores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub pre_backup: Option<String>,
    pub post_backup: Option<String>,
    pub pre_restore: Option<String>,
    pub post_restore: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub id: i64,
    pub uuid: String,
    pub short_id: String,
    pub name: String,
    pub description: String,
    pub path: String,
    pub owner_id: Option<i64>,
    pub backup_limit: i64,
    pub backup_quota_bytes: Option<i64>,
    pub max_backup_bytes: i64,
    pub compression: Option<Compression>,
    pub status: Option<ServerStatus>,
    pub hooks: Hooks,
    /// Back up what can be read and mark the backup `completed_with_warnings`, instead of
    /// failing it, when files or directories cannot be read.
    pub skip_unreadable: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A backup as users see it: its job's outcome, and what the last look at its archive found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupStatus {
    Creating,
    Completed,
    /// Completed without the entries it could not read (the server's `skip_unreadable`).
    CompletedWithWarnings,
    Failed,
    /// Completed, but its archive is gone or not the size recorded.
    Missing,
    /// Completed, but its archive no longer matches the recorded SHA-256.
    Corrupt,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Creating => "creating",
            BackupStatus::Completed => "completed",
            BackupStatus::CompletedWithWarnings => "completed_with_warnings",
            BackupStatus::Failed => "failed",
            BackupStatus::Missing => "missing",
            BackupStatus::Corrupt => "corrupt",
        }
    }

    /// Whether the job finished and recorded an archive, whatever became of it since.
    pub fn is_completed(self) -> bool {
        !matches!(self, BackupStatus::Creating | BackupStatus::Failed)
    }
}

/// What a check of a completed backup's archive found wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    Missing,
    Corrupt,
}

impl Integrity {
    pub fn as_str(self) -> &'static str {
        match self {
            Integrity::Missing => "missing",
            Integrity::Corrupt => "corrupt",
        }
    }
}

impl FromStr for Integrity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "missing" => Ok(Integrity::Missing),
            "corrupt" => Ok(Integrity::Corrupt),
            other => Err(format!("unknown archive state '{other}'")),
        }
    }
}

/// Progress of an archive being written, as last recorded by its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub bytes_processed: i64,
    pub bytes_total: i64,
    pub files_processed: i64,
    pub files_total: i64,
    pub started_at: Option<Timestamp>,
}

impl Progress {
    pub fn percent(&self) -> f64 {
        if self.bytes_total <= 0 {
            return 0.0;
        }
        (self.bytes_processed as f64 * 100.0 / self.bytes_total as f64).clamp(0.0, 100.0)
    }

    /// Seconds left at the average rate so far; None until there is a rate.
    pub fn eta_seconds(&self, now: Timestamp) -> Option<i64> {
        let elapsed = now - self.started_at?;
        if elapsed <= 0 || self.bytes_processed <= 0 {
            return None;
        }
        let rate = self.bytes_processed as f64 / elapsed as f64;
        let left = (self.bytes_total - self.bytes_processed).max(0) as f64;
        Some((left / rate).ceil() as i64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub id: i64,
    pub uuid: String,
    pub server_id: i64,
    pub name: String,
    pub ignored_files: Vec<String>,
    pub status: BackupStatus,
    pub is_locked: bool,
    pub compression: Compression,
    pub sha256_hash: Option<String>,
    pub bytes: i64,
    pub storage_path: Option<String>,
    pub error: Option<String>,
    /// What a failed hook printed: for the server's owner and admins only.
    pub error_detail: Option<String>,
    pub warnings: Vec<String>,
    pub content_bytes: i64,
    pub content_files: i64,
    pub progress: Progress,
    pub heartbeat_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Entries left out because they could not be read.
    pub unreadable: i64,
    /// Their paths (and those of files archived short), relative to the server directory.
    pub unreadable_paths: Vec<String>,
    /// When the archive was last found to match its hash.
    pub verified_at: Option<Timestamp>,
    /// A verification of the archive under way: bytes read so far.
    pub verifying: Option<i64>,
    /// Made by a schedule rather than asked for by someone.
    pub is_scheduled: bool,
    /// Who asked for it (a user, or the schedule while it exists), so the job's outcome is
    /// logged as theirs; hoard itself when no one is known.
    pub requested_by: Actor,
}

/// A subuser permission. Owners and admins hold all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    BackupRead,
    BackupCreate,
    BackupDownload,
    BackupDelete,
    BackupRestore,
    ScheduleRead,
    ScheduleCreate,
    ScheduleUpdate,
    ScheduleDelete,
    ActivityRead,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::BackupRead,
        Permission::BackupCreate,
        Permission::BackupDownload,
        Permission::BackupDelete,
        Permission::BackupRestore,
        Permission::ScheduleRead,
        Permission::ScheduleCreate,
        Permission::ScheduleUpdate,
        Permission::ScheduleDelete,
        Permission::ActivityRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::BackupRead => "backup.read",
            Permission::BackupCreate => "backup.create",
            Permission::BackupDownload => "backup.download",
            Permission::BackupDelete => "backup.delete",
            Permission::BackupRestore => "backup.restore",
            Permission::ScheduleRead => "schedule.read",
            Permission::ScheduleCreate => "schedule.create",
            Permission::ScheduleUpdate => "schedule.update",
            Permission::ScheduleDelete => "schedule.delete",
            Permission::ActivityRead => "activity.read",
        }
    }

    /// The permission's group (`backup`, `schedule`) and its key in the group, as
    /// Pterodactyl lists them.
    pub fn group_and_key(self) -> (&'static str, &'static str) {
        self.as_str()
            .split_once('.')
            .expect("permission names are group.key")
    }

    /// What the permissions of this one's group are about.
    pub fn group_description(self) -> &'static str {
        match self {
            Permission::BackupRead
            | Permission::BackupCreate
            | Permission::BackupDownload
            | Permission::BackupDelete
            | Permission::BackupRestore => {
                "Permissions that control a user's ability to generate and manage server backups."
            }
            Permission::ScheduleRead
            | Permission::ScheduleCreate
            | Permission::ScheduleUpdate
            | Permission::ScheduleDelete => {
                "Permissions that control a user's access to the schedule management for this server."
            }
            Permission::ActivityRead => {
                "Permissions that control a user's access to the server activity logs."
            }
        }
    }

    /// What holding the permission lets a user do.
    pub fn description(self) -> &'static str {
        match self {
            Permission::BackupRead => {
                "Allows a user to view all backups that exist for this server."
            }
            Permission::BackupCreate => "Allows a user to create new backups for this server.",
            Permission::BackupDownload => {
                "Allows a user to download a backup for the server. Danger: this allows a user to access all files for the server in the backup."
            }
            Permission::BackupDelete => {
                "Allows a user to remove backups from the system, and to lock, unlock and rename them."
            }
            Permission::BackupRestore => {
                "Allows a user to restore a backup for the server. Danger: this allows the user to delete all of the server files in the process."
            }
            Permission::ScheduleRead => {
                "Allows a user to view schedules and the tasks associated with them for this server."
            }
            Permission::ScheduleCreate => "Allows a user to create new schedules for this server.",
            Permission::ScheduleUpdate => {
                "Allows a user to update schedules and schedule tasks for this server."
            }
            Permission::ScheduleDelete => "Allows a user to delete schedules for this server.",
            Permission::ActivityRead => "Allows a user to view the activity logs for the server.",
        }
    }
}

impl FromStr for Permission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown permission '{s}': use {}",
                    Permission::ALL.map(|p| p.as_str()).join(", ")
                )
            })
    }
}

/// A schedule's five cron fields, as Pterodactyl stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub minute: String,
    pub hour: String,
    pub day_of_month: String,
    pub month: String,
    pub day_of_week: String,
}

impl Cron {
    /// The standard five-field expression.
    pub fn expression(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.minute, self.hour, self.day_of_month, self.month, self.day_of_week
        )
    }
}

/// How a schedule's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    /// Ran, and found nothing to do or could not start (with the reason).
    Skipped,
    /// Its time passed while hoard was not running, and catching up is turned off.
    Missed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Missed => "missed",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Outcome::Completed,
            Outcome::Failed,
            Outcome::Skipped,
            Outcome::Missed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| format!("unknown schedule outcome '{s}'"))
    }
}

/// What a schedule's last run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The backup it made, if it got that far.
    pub backup_uuid: Option<String>,
    /// Whether it ran late, for a time that passed while hoard was not running.
    pub catch_up: bool,
}

/// A server's schedule: when to run, and the tasks it runs (backups, in sequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: i64,
    pub server_id: i64,
    pub name: String,
    pub cron: Cron,
    pub is_active: bool,
    /// Kept for Pterodactyl clients: hoard cannot tell whether the game is running.
    pub only_when_online: bool,
    /// Skip the run when nothing changed since the last successful backup.
    pub only_if_changed: bool,
    pub is_processing: bool,
    pub last_run_at: Option<Timestamp>,
    pub next_run_at: Option<Timestamp>,
    pub last_run: Option<LastRun>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// In sequence order.
    pub tasks: Vec<Task>,
}

/// One step of a schedule. hoard runs one action, `backup`; its payload is the
/// ignored-files text, as in Pterodactyl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: i64,
    pub schedule_id: i64,
    pub sequence_id: i64,
    pub payload: String,
    /// Seconds to wait after the previous task, 0 to 900.
    pub time_offset: i64,
    pub is_queued: bool,
    pub continue_on_failure: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subuser {
    pub user: User,
    pub permissions: Vec<Permission>,
    pub created_at: Timestamp,
}

/// Activity log event names, as Pterodactyl writes them.
pub mod event {
    pub const BACKUP_START: &str = "server:backup.start";
    pub const BACKUP_COMPLETE: &str = "server:backup.complete";
    pub const BACKUP_FAIL: &str = "server:backup.fail";
    pub const BACKUP_DOWNLOAD: &str = "server:backup.download";
    pub const BACKUP_DELETE: &str = "server:backup.delete";
    pub const BACKUP_RESTORE: &str = "server:backup.restore";
    pub const BACKUP_RESTORE_COMPLETE: &str = "server:backup.restore-complete";
    pub const BACKUP_RESTORE_FAILED: &str = "server:backup.restore-failed";
    pub const BACKUP_LOCK: &str = "server:backup.lock";
    pub const BACKUP_UNLOCK: &str = "server:backup.unlock";
    pub const BACKUP_RENAME: &str = "server:backup.rename";
    pub const BACKUP_VERIFY: &str = "server:backup.verify";
    pub const LOGIN: &str = "auth:success";
    pub const LOGIN_FAILED: &str = "auth:fail";
    pub const LOGOUT: &str = "auth:logout";
    pub const KEY_CREATE: &str = "user:api-key.create";
    pub const KEY_DELETE: &str = "user:api-key.delete";
    pub const SUBUSER_CREATE: &str = "server:subuser.create";
    pub const SUBUSER_UPDATE: &str = "server:subuser.update";
    pub const SUBUSER_DELETE: &str = "server:subuser.delete";
    pub const SCHEDULE_CREATE: &str = "server:schedule.create";
    pub const SCHEDULE_UPDATE: &str = "server:schedule.update";
    pub const SCHEDULE_DELETE: &str = "server:schedule.delete";
    pub const SCHEDULE_EXECUTE: &str = "server:schedule.execute";
    pub const SCHEDULE_RUN: &str = "server:schedule.run";
    pub const TASK_CREATE: &str = "server:task.create";
    pub const TASK_UPDATE: &str = "server:task.update";
    pub const TASK_DELETE: &str = "server:task.delete";
    pub const RETENTION_UPDATE: &str = "server:retention.update";
    pub const BACKUP_PRUNE: &str = "server:backup.prune";
}

/// Who caused a change, for the activity log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A user, through the API or the UI, and the address the request came from (none when
    /// a job acts for the user who started it).
    User { id: i64, ip: Option<String> },
    /// A user through one of their API keys, from an address.
    ApiKey {
        user_id: i64,
        key_id: i64,
        ip: Option<String>,
    },
    /// A client that has not signed in (a failed login), by its address.
    Anonymous { ip: Option<String> },
    /// A schedule's run, and the backups it makes.
    Schedule { id: i64 },
    /// hoard itself: retention, jobs no one is known to have asked for, and the local
    /// command line.
    Hoard,
}

impl Actor {
    pub fn user(user: &User, ip: Option<String>) -> Actor {
        Actor::User { id: user.id, ip }
    }

    /// The user a job acts for, if one started it.
    pub fn on_behalf_of(user_id: Option<i64>) -> Actor {
        user_id.map_or(Actor::Hoard, |id| Actor::User { id, ip: None })
    }

    /// Who asked for a job: its schedule, else its user, else hoard.
    pub fn requester(user_id: Option<i64>, schedule_id: Option<i64>) -> Actor {
        match schedule_id {
            Some(id) => Actor::Schedule { id },
            None => Actor::on_behalf_of(user_id),
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match self {
            Actor::User { id, .. } | Actor::ApiKey { user_id: id, .. } => Some(*id),
            Actor::Anonymous { .. } | Actor::Schedule { .. } | Actor::Hoard => None,
        }
    }

    pub fn schedule_id(&self) -> Option<i64> {
        match self {
            Actor::Schedule { id } => Some(*id),
            _ => None,
        }
    }

    /// What kind of actor this is, as the activity log stores it and the API shows it.
    pub fn kind(&self) -> ActorKind {
        match self {
            Actor::User { .. } => ActorKind::User,
            Actor::ApiKey { .. } => ActorKind::ApiKey,
            Actor::Anonymous { .. } => ActorKind::Anonymous,
            Actor::Schedule { .. } => ActorKind::Schedule,
            Actor::Hoard => ActorKind::System,
        }
    }

    pub fn api_key_id(&self) -> Option<i64> {
        match self {
            Actor::ApiKey { key_id, .. } => Some(*key_id),
            _ => None,
        }
    }

    pub fn ip(&self) -> Option<&str> {
        match self {
            Actor::User { ip, .. } | Actor::ApiKey { ip, .. } | Actor::Anonymous { ip } => {
                ip.as_deref()
            }
            Actor::Schedule { .. } | Actor::Hoard => None,
        }
    }
}

/// An activity-log actor's kind: kept with each event, because the user, key or schedule
/// it names may be deleted later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    User,
    ApiKey,
    Anonymous,
    Schedule,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::Anonymous => "anonymous",
            ActorKind::Schedule => "schedule",
            ActorKind::System => "system",
        }
    }
}

impl FromStr for ActorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            ActorKind::User,
            ActorKind::ApiKey,
            ActorKind::Anonymous,
            ActorKind::Schedule,
            ActorKind::System,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown actor kind '{s}'"))
    }
}
