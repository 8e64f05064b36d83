//! A notice as each kind of channel wants it: the HTTP request to send.

use super::{Event, Kind, Notice};
use crate::units;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

/// One HTTP request to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The header holding the webhook body's HMAC-SHA256, as `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Hoard-Signature";

pub fn request(kind: Kind, url: &str, secret: Option<&str>, notice: &Notice) -> Request {
    match kind {
        Kind::Webhook => webhook(url, secret, notice),
        Kind::Discord => discord(url, notice),
        Kind::Ntfy => ntfy(url, notice),
        Kind::Healthchecks => healthchecks(url, notice),
    }
}

fn webhook(url: &str, secret: Option<&str>, notice: &Notice) -> Request {
    let body = serde_json::to_vec(notice).expect("a notice serialises");
    let mut headers = vec![
        ("Content-Type", "application/json".to_string()),
        ("X-Hoard-Event", notice.event.as_str().to_string()),
    ];
    if let Some(secret) = secret {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(&body);
        let signature = hex::encode(mac.finalize().into_bytes());
        headers.push((SIGNATURE_HEADER, format!("sha256={signature}")));
    }
    Request {
        url: url.to_string(),
        headers,
        body,
    }
}

/// A short title: what happened, to which server.
fn title(notice: &Notice) -> String {
    let what = match notice.event {
        Event::BackupFailed => "Backup failed",
        Event::BackupCompleted => "Backup completed",
        Event::RestoreCompleted => "Restore completed",
        Event::RestoreFailed => "Restore failed",
        Event::ScheduleSkipped => match notice.schedule.as_ref().map(|s| s.outcome.as_str()) {
            Some("missed") => "Scheduled backup missed",
            Some("failed") => "Scheduled backup failed",
            _ => "Scheduled backup skipped",
        },
        Event::StorageLow => "Storage low",
        Event::JobsRecovered => "Interrupted jobs recovered",
        Event::ScheduledBackupStarted => "Scheduled backup started",
        Event::Test => "Test notification",
    };
    match &notice.server {
        Some(server) => format!("{what}: {}", server.name),
        None => what.to_string(),
    }
}

/// Green for good news, red for failures, orange for what needs a look, blue for tests.
fn colour(event: Event) -> u32 {
    match event {
        Event::BackupFailed | Event::RestoreFailed => 0xE7_4C_3C,
        Event::Test => 0x34_98_DB,
        e if e.is_bad() => 0xE6_7E_22,
        _ => 0x2E_CC_71,
    }
}

fn discord(url: &str, notice: &Notice) -> Request {
    let mut fields = Vec::new();
    let mut field = |name: &str, value: String| {
        fields.push(json!({"name": name, "value": value, "inline": name != "Error"}));
    };
    if let Some(server) = &notice.server {
        field("Server", format!("{} ({})", server.name, server.identifier));
    }
    if let Some(backup) = &notice.backup {
        field("Backup", backup.name.clone());
        if backup.bytes > 0 {
            field("Size", units::bytes(backup.bytes as u64));
        }
        if let Some(secs) = backup.duration_secs {
            field("Duration", units::duration(secs));
        }
        if let Some(error) = &backup.error {
            field("Error", error.clone());
        }
    }
    if let Some(restore) = &notice.restore {
        if let Some(secs) = restore.duration_secs {
            field("Duration", units::duration(secs));
        }
        if let Some(error) = &restore.error {
            field("Error", error.clone());
        }
    }
    if let Some(schedule) = &notice.schedule {
        field("Schedule", schedule.name.clone());
        if let Some(reason) = &schedule.reason {
            field("Why", reason.clone());
        }
    }
    let body = json!({
        "username": "hoard",
        "embeds": [{
            "title": title(notice),
            "description": notice.message,
            "color": colour(notice.event),
            "fields": fields,
            "timestamp": notice.timestamp,
        }],
    });
    Request {
        url: url.to_string(),
        headers: vec![("Content-Type", "application/json".to_string())],
        body: serde_json::to_vec(&body).expect("JSON serialises"),
    }
}

fn ntfy(url: &str, notice: &Notice) -> Request {
    let (priority, tags) = match notice.event {
        Event::BackupFailed | Event::RestoreFailed => ("high", "rotating_light"),
        e if e.is_bad() => ("high", "warning"),
        Event::Test => ("default", "bell"),
        _ => ("default", "white_check_mark"),
    };
    Request {
        url: url.to_string(),
        headers: vec![
            ("Title", title(notice)),
            ("Priority", priority.to_string()),
            ("Tags", format!("{tags},hoard")),
        ],
        body: notice.message.clone().into_bytes(),
    }
}

/// `/start` when a scheduled backup starts, the bare URL when it succeeded (a run skipped
/// because nothing changed succeeded too), `/fail` otherwise; a test goes to `/log`, which
/// records it without marking the check up or down.
fn healthchecks(url: &str, notice: &Notice) -> Request {
    let nothing_changed = notice.schedule.as_ref().is_some_and(|s| {
        s.outcome == "skipped"
            && s.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("nothing changed"))
    });
    let suffix = match notice.event {
        Event::ScheduledBackupStarted => "/start",
        Event::BackupCompleted => "",
        Event::Test => "/log",
        Event::ScheduleSkipped if nothing_changed => "",
        _ => "/fail",
    };
    Request {
        url: format!("{}{suffix}", url.trim_end_matches('/')),
        headers: vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
        body: notice.message.clone().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{BackupRef, ServerRef};

    fn notice(event: Event) -> Notice {
        Notice {
            event,
            message: "The backup of Survival failed.".into(),
            timestamp: "2026-12-02T04:00:00+00:00".into(),
            server: Some(ServerRef {
                uuid: "u".into(),
                identifier: "0b222df8".into(),
                name: "Survival".into(),
            }),
            backup: Some(BackupRef {
                uuid: "b".into(),
                name: "Nightly".into(),
                status: "failed".into(),
                bytes: 0,
                is_scheduled: true,
                duration_secs: Some(65),
                error: Some("the pre_backup hook exited with status 1".into()),
            }),
            restore: None,
            schedule: None,
        }
    }

    #[test]
    fn webhooks_are_signed_over_their_exact_body() {
        let r = request(
            Kind::Webhook,
            "https://x/hook",
            Some("key"),
            &notice(Event::BackupFailed),
        );
        let signature = r
            .headers
            .iter()
            .find(|(n, _)| *n == SIGNATURE_HEADER)
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(&r.body);
        assert_eq!(
            signature.1,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event"], "backup_failed");
        assert_eq!(body["server"]["identifier"], "0b222df8");
    }

    #[test]
    fn discord_embeds_are_red_for_failures_with_the_error() {
        let r = request(
            Kind::Discord,
            "https://discord/x",
            None,
            &notice(Event::BackupFailed),
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let embed = &body["embeds"][0];
        assert_eq!(embed["color"], 0xE74C3C);
        assert_eq!(embed["title"], "Backup failed: Survival");
        let fields = embed["fields"].as_array().unwrap();
        assert!(
            fields
                .iter()
                .any(|f| f["name"] == "Duration" && f["value"] == "1m 5s")
        );
        assert!(fields.iter().any(|f| f["name"] == "Error"));
    }

    #[test]
    fn healthchecks_pings_start_success_and_fail() {
        let url = "https://hc/ping/abc/";
        let ping = |e| request(Kind::Healthchecks, url, None, &notice(e)).url;
        assert_eq!(
            ping(Event::ScheduledBackupStarted),
            "https://hc/ping/abc/start"
        );
        assert_eq!(ping(Event::BackupCompleted), "https://hc/ping/abc");
        assert_eq!(ping(Event::BackupFailed), "https://hc/ping/abc/fail");
    }
}
