//! Notifications: telling people what they need to know where they already look. Admins
//! set up channels (a signed generic webhook, a Discord webhook, an ntfy topic, a
//! Healthchecks-style ping URL), each for the events it chooses and for every server or
//! chosen ones. Jobs only [`emit`]: a notification is a row in a queue kept in SQLite, and a
//! background thread ([`deliver`]) sends it, retrying with backoff, so that delivery never
//! blocks a job and a restart loses nothing.

pub mod deliver;
mod render;

use crate::app::App;
use crate::error::{Error, FieldError, Result};
use crate::model::{Backup, Server, Timestamp, now};
use crate::store::{self, Connection, notifications::Channel};
use serde::{Deserialize, Serialize};

pub use render::Request;

/// Where a channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON body signed with HMAC-SHA256 (`X-Hoard-Signature`).
    Webhook,
    /// A Discord webhook: an embed coloured by outcome.
    Discord,
    /// An ntfy topic URL: title, priority and tags.
    Ntfy,
    /// A dead-man's switch: `/start` when a scheduled backup starts, the bare URL when it
    /// succeeds, `/fail` when it fails, so a run that never happens is noticed.
    Healthchecks,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Webhook, Kind::Discord, Kind::Ntfy, Kind::Healthchecks];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Discord => "discord",
            Kind::Ntfy => "ntfy",
            Kind::Healthchecks => "healthchecks",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a channel can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    BackupFailed,
    BackupCompleted,
    RestoreCompleted,
    RestoreFailed,
    /// A scheduled run was skipped (with why) or missed while hoard was down.
    ScheduleSkipped,
    /// Free space or a server's quota ran low.
    StorageLow,
    /// hoard found jobs a crash interrupted, and failed or rolled them back.
    JobsRecovered,
    /// A scheduled backup started: what Healthchecks-style channels ping `/start` for.
    ScheduledBackupStarted,
    /// Sent by "send test".
    Test,
}

impl Event {
    /// The events a channel may choose.
    pub const CHOOSABLE: [Event; 7] = [
        Event::BackupFailed,
        Event::BackupCompleted,
        Event::RestoreCompleted,
        Event::RestoreFailed,
        Event::ScheduleSkipped,
        Event::StorageLow,
        Event::JobsRecovered,
    ];
    /// A new channel's events: failures only.
    pub const DEFAULT: [Event; 2] = [Event::BackupFailed, Event::RestoreFailed];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::BackupFailed => "backup_failed",
            Event::BackupCompleted => "backup_completed",
            Event::RestoreCompleted => "restore_completed",
            Event::RestoreFailed => "restore_failed",
            Event::ScheduleSkipped => "schedule_skipped",
            Event::StorageLow => "storage_low",
            Event::JobsRecovered => "jobs_recovered",
            Event::ScheduledBackupStarted => "scheduled_backup_started",
            Event::Test => "test",
        }
    }

    fn parse(s: &str) -> Option<Event> {
        Event::CHOOSABLE.into_iter().find(|e| e.as_str() == s)
    }

    /// Whether it tells of something that went wrong: coloured and prioritised so.
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            Event::BackupFailed
                | Event::RestoreFailed
                | Event::ScheduleSkipped
                | Event::StorageLow
                | Event::JobsRecovered
        )
    }
}

/// The server a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRef {
    pub uuid: String,
    pub identifier: String,
    pub name: String,
}

impl ServerRef {
    pub fn of(server: &Server) -> ServerRef {
        ServerRef {
            uuid: server.uuid.clone(),
            identifier: server.short_id.clone(),
            name: server.name.clone(),
        }
    }
}

/// The backup a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRef {
    pub uuid: String,
    pub name: String,
    pub status: String,
    pub bytes: i64,
    pub is_scheduled: bool,
    pub duration_secs: Option<i64>,
    pub error: Option<String>,
}

impl BackupRef {
    pub fn of(backup: &Backup, duration_secs: Option<i64>) -> BackupRef {
        BackupRef {
            uuid: backup.uuid.clone(),
            name: backup.name.clone(),
            status: backup.status.as_str().to_string(),
            bytes: backup.bytes,
            is_scheduled: backup.is_scheduled,
            duration_secs,
            error: backup.error.clone(),
        }
    }
}

/// The restore a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRef {
    pub uuid: String,
    pub backup_uuid: String,
    pub successful: bool,
    pub duration_secs: Option<i64>,
    pub error: Option<String>,
}

/// The schedule run a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRef {
    pub id: i64,
    pub name: String,
    pub outcome: String,
    pub reason: Option<String>,
}

/// What is known of a notification's subject, sent as the generic webhook's body and
/// rendered for the other kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub event: Event,
    /// A sentence saying what happened.
    pub message: String,
    pub timestamp: String,
    pub server: Option<ServerRef>,
    pub backup: Option<BackupRef>,
    pub restore: Option<RestoreRef>,
    pub schedule: Option<ScheduleRef>,
}

impl Notice {
    pub fn new(event: Event, message: impl Into<String>, server: Option<&Server>) -> Notice {
        Notice {
            event,
            message: message.into(),
            timestamp: crate::model::rfc3339(now()),
            server: server.map(ServerRef::of),
            backup: None,
            restore: None,
            schedule: None,
        }
    }
}

/// Whether a channel hears a notice. A Healthchecks-style channel hears exactly what its
/// pings are for: scheduled backups starting and ending, and scheduled runs skipped.
fn hears(channel: &Channel, notice: &Notice, server_id: Option<i64>) -> bool {
    if !channel.is_enabled {
        return false;
    }
    if let (Some(only), Some(id)) = (&channel.servers, server_id)
        && !only.contains(&id)
    {
        return false;
    }
    let scheduled = notice.backup.as_ref().is_some_and(|b| b.is_scheduled);
    match Kind::parse(&channel.kind) {
        Some(Kind::Healthchecks) => match notice.event {
            Event::ScheduledBackupStarted | Event::ScheduleSkipped => true,
            Event::BackupCompleted | Event::BackupFailed => scheduled,
            _ => false,
        },
        Some(_) => channel.events.iter().any(|e| e == notice.event.as_str()),
        None => false,
    }
}

/// Queues a notice for every channel that hears it. Never fails the caller: a job's
/// outcome does not depend on telling anyone about it.
pub fn emit(app: &App, server_id: Option<i64>, notice: &Notice) {
    let queued = (|| -> Result<usize> {
        let conn = app.db.conn()?;
        let payload = serde_json::to_string(notice).map_err(Error::internal)?;
        let mut count = 0;
        for channel in store::notifications::list(&conn)? {
            if hears(&channel, notice, server_id) {
                store::notifications::enqueue(
                    &conn,
                    channel.id,
                    notice.event.as_str(),
                    &payload,
                    now(),
                )?;
                count += 1;
            }
        }
        Ok(count)
    })();
    match queued {
        Ok(0) => {}
        Ok(_) => app.notifier.wake(),
        Err(e) => log::warn!(
            "cannot queue the {} notification: {e}",
            notice.event.as_str()
        ),
    }
}

/// A channel as an admin asks for it: on create, kind and url are required; on update,
/// what is left out stays as it is.
#[derive(Debug, Clone, Default)]
pub struct ChannelRequest {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    pub events: Option<Vec<String>>,
    /// Server identifiers; Some(None) for every server.
    pub servers: Option<Option<Vec<String>>>,
    pub is_enabled: Option<bool>,
}

/// A channel's settings, checked.
struct Checked {
    name: String,
    kind: Kind,
    url: String,
    secret: Option<String>,
    events: Vec<String>,
    servers: Option<Vec<i64>>,
    is_enabled: bool,
}

fn check(c: &Connection, request: &ChannelRequest, current: Option<&Channel>) -> Result<Checked> {
    let mut errors = Vec::new();
    let kind_text = request
        .kind
        .clone()
        .or_else(|| current.map(|c| c.kind.clone()));
    let kind = match kind_text.as_deref().map(Kind::parse) {
        Some(Some(kind)) => kind,
        Some(None) => {
            errors.push(FieldError::new(
                "kind",
                "in:webhook,discord,ntfy,healthchecks",
                "The kind must be webhook, discord, ntfy or healthchecks.",
            ));
            Kind::Webhook
        }
        None => {
            errors.push(FieldError::new(
                "kind",
                "required",
                "The kind field is required: webhook, discord, ntfy or healthchecks.",
            ));
            Kind::Webhook
        }
    };
    // A blank URL on a change keeps the saved one, which is only ever shown masked.
    let url = request
        .url
        .clone()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| current.map(|c| c.url.clone()))
        .unwrap_or_default();
    if url.is_empty() {
        errors.push(FieldError::new(
            "url",
            "required",
            "The url field is required.",
        ));
    } else if !valid_url(&url) {
        errors.push(FieldError::new(
            "url",
            "url",
            "The url must be an http:// or https:// address with a host.",
        ));
    }
    let mut events = request
        .events
        .clone()
        .or_else(|| current.map(|c| c.events.clone()))
        .unwrap_or_else(|| {
            Event::DEFAULT
                .iter()
                .map(|e| e.as_str().to_string())
                .collect()
        });
    events.sort_by_key(|e| Event::parse(e).map(|e| e as u8));
    events.dedup();
    // A Healthchecks-style channel's pings do not depend on its events.
    if events.is_empty() && kind != Kind::Healthchecks {
        errors.push(FieldError::new(
            "events",
            "required",
            "Choose at least one event for the channel to be told of.",
        ));
    }
    if request.secret.as_deref().is_some_and(|s| !s.is_empty()) && kind != Kind::Webhook {
        errors.push(FieldError::new(
            "secret",
            "prohibited",
            "Only webhooks are signed: leave the secret out for this kind.",
        ));
    }
    for event in &events {
        if Event::parse(event).is_none() {
            errors.push(FieldError::new(
                "events",
                "in",
                format!(
                    "'{event}' is not an event: use {}.",
                    Event::CHOOSABLE.map(Event::as_str).join(", ")
                ),
            ));
        }
    }
    let servers = match &request.servers {
        Some(None) => None,
        Some(Some(identifiers)) if identifiers.is_empty() => {
            errors.push(FieldError::new(
                "servers",
                "min:1",
                "Choose at least one server, or null for every server.",
            ));
            None
        }
        Some(Some(identifiers)) => {
            let mut ids = Vec::new();
            for identifier in identifiers {
                match store::servers::by_identifier(c, identifier)? {
                    Some(server) => ids.push(server.id),
                    None => errors.push(FieldError::new(
                        "servers",
                        "exists",
                        format!("There is no server '{identifier}'."),
                    )),
                }
            }
            Some(ids)
        }
        None => current.and_then(|c| c.servers.clone()),
    };
    let name = request
        .name
        .clone()
        .or_else(|| current.map(|c| c.name.clone()))
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| kind.as_str().to_string());
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    // A webhook always signs; the other kinds have no use for a secret.
    let secret = match kind {
        Kind::Webhook => request
            .secret
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| current.and_then(|c| c.secret.clone()))
            .or_else(|| Some(crate::auth::random_base62(32))),
        _ => None,
    };
    Ok(Checked {
        name: name.trim().to_string(),
        kind,
        url,
        secret,
        events,
        servers,
        is_enabled: request
            .is_enabled
            .or(current.map(|c| c.is_enabled))
            .unwrap_or(true),
    })
}

fn valid_url(url: &str) -> bool {
    url.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|host| !host.is_empty())
    })
}

fn save(c: &Connection, checked: &Checked, id: Option<i64>) -> Result<Channel> {
    let fields = store::notifications::Fields {
        name: &checked.name,
        kind: checked.kind.as_str(),
        url: &checked.url,
        secret: checked.secret.as_deref(),
        events: &checked.events,
        servers: checked.servers.as_deref(),
        is_enabled: checked.is_enabled,
    };
    let id = match id {
        Some(id) => {
            store::notifications::update(c, id, &fields, now())?;
            id
        }
        None => store::notifications::insert(c, &fields, now())?,
    };
    get(c, id)
}

pub fn get(c: &Connection, id: i64) -> Result<Channel> {
    store::notifications::get(c, id)?.ok_or_else(|| Error::not_found("notification channel"))
}

pub fn list(c: &Connection) -> Result<Vec<Channel>> {
    Ok(store::notifications::list(c)?)
}

pub fn create(c: &Connection, request: &ChannelRequest) -> Result<Channel> {
    let checked = check(c, request, None)?;
    save(c, &checked, None)
}

pub fn update(c: &Connection, id: i64, request: &ChannelRequest) -> Result<Channel> {
    let current = get(c, id)?;
    let checked = check(c, request, Some(&current))?;
    save(c, &checked, Some(id))
}

pub fn delete(c: &Connection, id: i64) -> Result<()> {
    get(c, id)?;
    store::notifications::delete(c, id)?;
    Ok(())
}

/// Sends a test notification to one channel now and says whether it arrived (and why
/// not); the channel's last delivery or error records it too.
pub fn send_test(app: &App, id: i64) -> Result<std::result::Result<(), String>> {
    let channel = get(&*app.db.conn()?, id)?;
    let notice = Notice::new(
        Event::Test,
        format!(
            "This is a test notification from hoard for '{}'.",
            channel.name
        ),
        None,
    );
    Ok(deliver::send_now(app, &channel, &notice))
}

/// A URL with its secret part hidden: the scheme and host, then only the last four
/// characters (webhook URLs carry their token in the path).
pub fn mask_url(url: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return "…".into();
    };
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map_or("", |a| a.as_str());
    // A user name and password before the host are hidden whole.
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => authority.to_string(),
    };
    let rest = uri.path_and_query().map_or("", |p| p.as_str());
    // The parser gives "/" to a URL without a path.
    let rest = if rest == "/" && !url.ends_with('/') {
        ""
    } else {
        rest
    };
    let chars: Vec<char> = rest.chars().collect();
    if chars.len() <= 4 {
        return format!("{scheme}://{host}{rest}");
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{scheme}://{host}/…{tail}")
}

/// The identifiers of a channel's servers, for display.
pub fn server_identifiers(c: &Connection, channel: &Channel) -> Result<Option<Vec<String>>> {
    let Some(ids) = &channel.servers else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for id in ids {
        if let Some(server) = store::servers::by_id(c, *id)? {
            out.push(server.short_id);
        }
    }
    Ok(Some(out))
}

/// Seconds since `from`, for a duration shown in a notification.
pub fn since(from: Timestamp) -> Option<i64> {
    Some((now() - from).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_urls_keep_the_host_and_hide_the_token() {
        assert_eq!(
            mask_url("https://discord.com/api/webhooks/123/abcdefTOKEN"),
            "https://discord.com/…OKEN"
        );
        assert_eq!(mask_url("https://ntfy.sh/ab"), "https://ntfy.sh/ab");
        assert_eq!(mask_url("http://hc.local"), "http://hc.local");
        assert_eq!(
            mask_url("https://user:pw@hc.example/ping/abcd1234"),
            "https://…@hc.example/…1234"
        );
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert!(valid_url("https://hc-ping.com/uuid"));
        assert!(valid_url("http://127.0.0.1:8000/hook"));
        assert!(!valid_url("ftp://x"));
        assert!(!valid_url("https://"));
        assert!(!valid_url("https://a b"));
        assert!(!valid_url("http://:80"));
        assert!(!valid_url("https://user:pw@"));
    }
}
