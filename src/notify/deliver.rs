//! Delivery: a background thread of `hoard serve` sends queued notifications, oldest first,
//! and retries what failed with a growing delay (up to `notify_retry_max_secs`) for
//! `notify_give_up_secs` (a day), after which the notification is dropped and the failure
//! logged in the server's history.
//! Each channel keeps its last delivery and its last error for the API and the UI.

use super::{Kind, Notice, mask_url, render};
use crate::app::App;
use crate::model::{Actor, now};
use crate::store::{self, notifications::Channel};
use serde_json::json;
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long one request to a channel may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the queue is looked at when nothing woke the thread (another process, a CLI
/// command, may have queued notifications).
const POLL: Duration = Duration::from_secs(1);
/// The first retry's delay; each next one doubles, up to `notify_retry_max_secs`.
const FIRST_RETRY_SECS: i64 = 5;
/// How much of a refusing channel's answer goes into the error.
const ANSWER_SHOWN: u64 = 200;

/// Wakes the delivery thread when a notification is queued, and remembers which servers
/// were warned of low storage today.
#[derive(Debug, Default)]
pub struct Notifier {
    queued: Mutex<bool>,
    changed: Condvar,
    storage_warned: Mutex<std::collections::HashMap<i64, i64>>,
}

impl Notifier {
    /// Whether a low-storage warning for this server is the first in a day (and, if so,
    /// that it was given now).
    pub fn first_warning_today(&self, server_id: i64) -> bool {
        let mut warned = self
            .storage_warned
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = now();
        match warned.get(&server_id) {
            Some(at) if now - at < 86_400 => false,
            _ => {
                warned.insert(server_id, now);
                true
            }
        }
    }

    pub fn wake(&self) {
        *self.queued.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    fn wait(&self, timeout: Duration) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if !*queued {
            queued = self
                .changed
                .wait_timeout(queued, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *queued = false;
    }
}

/// Starts the delivery thread; it stops when hoard closes (a notification being sent then
/// stays queued and is sent at the next start).
pub fn start(app: &Arc<App>) {
    let app = app.clone();
    let started = std::thread::Builder::new()
        .name("notifier".into())
        .spawn(move || {
            let agent = agent();
            while !app.jobs.is_closing() {
                if let Err(e) = deliver_due(&app, &agent) {
                    log::warn!("cannot deliver notifications: {e}");
                }
                app.notifier.wait(POLL);
            }
        });
    if let Err(e) = started {
        log::error!("cannot start the notification thread: {e}");
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .user_agent(concat!("hoard/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn deliver_due(app: &App, agent: &ureq::Agent) -> crate::error::Result<()> {
    let conn = app.db.conn()?;
    for queued in store::notifications::due(&conn, now(), 50)? {
        if app.jobs.is_closing() {
            break;
        }
        let Some(channel) = store::notifications::get(&conn, queued.channel_id)? else {
            store::notifications::delivered(&conn, queued.id)?;
            continue;
        };
        let Ok(notice) = serde_json::from_str::<Notice>(&queued.payload) else {
            log::warn!("dropping notification {}: it cannot be read", queued.id);
            store::notifications::delivered(&conn, queued.id)?;
            continue;
        };
        match send(agent, &channel, &notice) {
            Ok(()) => {
                store::notifications::delivered(&conn, queued.id)?;
                store::notifications::record_delivery(&conn, channel.id, None, now())?;
            }
            Err(error) if now() - queued.created_at >= app.config.notify_give_up_secs as i64 => {
                let why = format!(
                    "gave up on a {} notification after {}: {error}",
                    queued.event,
                    crate::units::duration_words(app.config.notify_give_up_secs as i64)
                );
                log::warn!("notification channel '{}': {why}", channel.name);
                store::notifications::delivered(&conn, queued.id)?;
                store::notifications::record_delivery(&conn, channel.id, Some(&why), now())?;
                // In the history of the server it was about, where its people look.
                let server_id = match &notice.server {
                    Some(server) => {
                        store::servers::by_identifier(&conn, &server.uuid)?.map(|s| s.id)
                    }
                    None => None,
                };
                store::activity::record(
                    &conn,
                    &Actor::Hoard,
                    "notification:failed",
                    server_id,
                    &json!({"channel": channel.id, "name": channel.name, "event": queued.event, "error": error}),
                )?;
            }
            Err(error) => {
                let delay = backoff(queued.attempts, app.config.notify_retry_max_secs as i64);
                log::info!(
                    "notification channel '{}': {error}; trying again in {delay} s",
                    channel.name
                );
                store::notifications::retry_later(&conn, queued.id, &error, now() + delay)?;
                store::notifications::record_delivery(&conn, channel.id, Some(&error), now())?;
            }
        }
    }
    Ok(())
}

/// The delay before attempt `attempts + 1`: doubling from a few seconds up to `max`.
fn backoff(attempts: i64, max: i64) -> i64 {
    let doubled = FIRST_RETRY_SECS.saturating_mul(1 << attempts.clamp(0, 20));
    doubled.min(max.max(1))
}

/// Sends a notice to a channel once, now, and records the outcome on the channel.
pub fn send_now(app: &App, channel: &Channel, notice: &Notice) -> Result<(), String> {
    let sent = send(&agent(), channel, notice);
    let recorded = app
        .db
        .conn()
        .map_err(crate::error::Error::from)
        .and_then(|c| {
            store::notifications::record_delivery(
                &c,
                channel.id,
                sent.as_ref().err().map(String::as_str),
                now(),
            )?;
            Ok(())
        });
    if let Err(e) = recorded {
        log::warn!("cannot record the test of channel {}: {e}", channel.id);
    }
    sent
}

/// One request; an error says what went wrong without showing the URL's secret part.
fn send(agent: &ureq::Agent, channel: &Channel, notice: &Notice) -> Result<(), String> {
    let kind = Kind::parse(&channel.kind).ok_or("the channel's kind is unknown")?;
    let request = render::request(kind, &channel.url, channel.secret.as_deref(), notice);
    let mut builder = agent.post(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    let shown = mask_url(&request.url);
    let mut response = builder
        .send(&request.body[..])
        .map_err(|e| format!("cannot reach {shown}: {e}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let mut answer = String::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(ANSWER_SHOWN)
        .read_to_string(&mut answer);
    Err(format!(
        "{shown} answered {status}{}",
        if answer.trim().is_empty() {
            String::new()
        } else {
            format!(": {}", answer.trim())
        }
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_back_off_up_to_the_maximum() {
        assert_eq!(super::backoff(0, 300), 5);
        assert_eq!(super::backoff(1, 300), 10);
        assert_eq!(super::backoff(3, 300), 40);
        assert_eq!(super::backoff(10, 300), 300);
        assert_eq!(super::backoff(60, 2), 2);
    }
}
