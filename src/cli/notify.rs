//! `hoard notify`: the notification channels, changed in the data directory. Delivering
//! what jobs queue is the work of a running `hoard serve`, so these commands need none;
//! `notify test` sends its test itself, so a channel can be checked before hoard serves.

use super::{CliResult, Failure, Out, local, table};
use crate::api::wire;
use crate::app::App;
use crate::error::Error;
use crate::notify::{self, ChannelRequest, Event, Kind};
use crate::store::{Connection, notifications::Channel};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum NotifyCommand {
    /// List the channels: where each sends (URLs masked), what, for which servers, and how
    /// its last delivery went.
    List,
    /// Add a channel; a webhook's signing secret is printed this once.
    Add {
        #[arg(long, value_name = "KIND", help = kind_help())]
        kind: String,
        /// Where to send: an http:// or https:// URL (the Discord webhook URL, the ntfy topic
        /// URL, the Healthchecks-style ping URL, or your own endpoint).
        #[arg(long)]
        url: String,
        /// A name to tell the channel by (its kind unless given).
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "event", value_name = "EVENT", help = events_help())]
        events: Vec<String>,
        /// Only notify of this server (short id or UUID); repeat for more. Without it, every
        /// server, including those added later.
        #[arg(long = "server", value_name = "SERVER")]
        servers: Vec<String>,
        /// The webhook's signing secret (webhooks only); a random one unless given.
        #[arg(long)]
        secret: Option<String>,
        /// Add the channel switched off; turn it on later with `notify edit --enable`.
        #[arg(long)]
        disabled: bool,
    },
    /// Change a channel: only what is given changes.
    Edit {
        /// The channel's ID, as `notify list` shows it.
        id: i64,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new URL to send to.
        #[arg(long)]
        url: Option<String>,
        /// The events to notify of, replacing the channel's list; repeat for more.
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
        /// Only notify of these servers (short id or UUID), replacing the channel's list;
        /// repeat for more.
        #[arg(long = "server", value_name = "SERVER", conflicts_with = "all_servers")]
        servers: Vec<String>,
        /// Notify of every server, including those added later.
        #[arg(long)]
        all_servers: bool,
        /// Switch the channel on.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Switch the channel off: it keeps its settings but is sent nothing.
        #[arg(long)]
        disable: bool,
        /// A new signing secret (webhooks only).
        #[arg(long)]
        secret: Option<String>,
    },
    /// Delete a channel, with the notifications still queued for it.
    Rm {
        /// The channel's ID, as `notify list` shows it.
        id: i64,
    },
    /// Send a test notification to a channel now, whether or not it is switched on, and
    /// say whether it arrived.
    Test {
        /// The channel's ID, as `notify list` shows it.
        id: i64,
    },
}

fn kind_help() -> String {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    format!(
        "Where the channel sends: {}. A webhook gets a JSON body signed with HMAC-SHA256 in \
         the X-Hoard-Signature header; healthchecks is a dead-man's switch that pings <url>/start \
         when a scheduled backup starts, <url> when it succeeds and <url>/fail when it fails or \
         is skipped or missed, whatever the events.",
        kinds.join(", ")
    )
}

fn events_help() -> String {
    let names = |events: &[Event]| {
        events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "An event to notify of; repeat for more: {}. Failures only ({}) unless given. \
         Healthchecks channels ignore the events.",
        names(&Event::CHOOSABLE),
        names(&Event::DEFAULT)
    )
}

pub fn run(app: &App, out: &Out, command: NotifyCommand) -> CliResult {
    match command {
        NotifyCommand::List => list(app, out)?,
        NotifyCommand::Add {
            kind,
            url,
            name,
            events,
            servers,
            secret,
            disabled,
        } => {
            if secret.is_some() && Kind::parse(&kind).is_some_and(|k| k != Kind::Webhook) {
                return Err(unsigned(&kind));
            }
            let request = ChannelRequest {
                name,
                kind: Some(kind),
                url: Some(url),
                secret,
                events: (!events.is_empty()).then_some(events),
                servers: (!servers.is_empty()).then_some(Some(servers)),
                is_enabled: Some(!disabled),
            };
            let conn = app.db.conn()?;
            let shown = Shown::of(&conn, notify::create(&conn, &request)?)?;
            let secret = shown.channel.secret.as_deref();
            let mut value = shown.value();
            // Shown once, as the API does, so the receiver can be set up to check signatures.
            if let Some(secret) = secret {
                value["meta"] = json!({"secret": secret});
            }
            out.print(&value, || {
                let table = channel_table(app, std::slice::from_ref(&shown));
                match secret {
                    Some(secret) => format!(
                        "{table}\nSigning secret: {secret}\nIt is not shown again: give it to the receiver now, to check the X-Hoard-Signature header (sha256= and the HMAC-SHA256 of the body, in hex)."
                    ),
                    None => table,
                }
            });
        }
        NotifyCommand::Edit {
            id,
            name,
            url,
            events,
            servers,
            all_servers,
            enable,
            disable,
            secret,
        } => {
            let request = ChannelRequest {
                name,
                kind: None,
                url,
                secret,
                events: (!events.is_empty()).then_some(events),
                servers: if all_servers {
                    Some(None)
                } else {
                    (!servers.is_empty()).then_some(Some(servers))
                },
                is_enabled: (enable || disable).then_some(enable),
            };
            if is_unchanged(&request) {
                return Err(Failure(
                    "nothing to change: give --name, --url, --event, --server, --all-servers, --enable, --disable or --secret".into(),
                ));
            }
            let conn = app.db.conn()?;
            if request.secret.is_some() {
                let current = notify::get(&conn, id).map_err(|e| unknown(e, id))?;
                if current.kind != Kind::Webhook.as_str() {
                    return Err(unsigned(&current.kind));
                }
            }
            let channel = notify::update(&conn, id, &request).map_err(|e| unknown(e, id))?;
            let shown = Shown::of(&conn, channel)?;
            out.print(&shown.value(), || {
                channel_table(app, std::slice::from_ref(&shown))
            });
        }
        NotifyCommand::Rm { id } => {
            notify::delete(&*app.db.conn()?, id).map_err(|e| unknown(e, id))?;
            out.print(&json!({}), || format!("Deleted notification channel {id}"));
        }
        NotifyCommand::Test { id } => {
            let sent = notify::send_test(app, id).map_err(|e| unknown(e, id))?;
            let value = wire::item(
                "notification_test",
                json!({"delivered": sent.is_ok(), "error": sent.as_ref().err()}),
            );
            match sent {
                Ok(()) => out.print(&value, || "Delivered.".into()),
                Err(error) => {
                    out.print(&value, String::new);
                    return Err(Failure(format!(
                        "the test notification was not delivered: {error}"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn list(app: &App, out: &Out) -> CliResult {
    let conn = app.db.conn()?;
    let shown = notify::list(&conn)?
        .into_iter()
        .map(|c| Shown::of(&conn, c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = wire::list(shown.iter().map(Shown::value).collect());
    body["meta"] = json!({"events": Event::CHOOSABLE.map(Event::as_str)});
    out.print(&body, || {
        if shown.is_empty() {
            "There are no notification channels: add one with `hoard notify add`.".into()
        } else {
            channel_table(app, &shown)
        }
    });
    Ok(())
}

/// The refusal of a secret for a kind that does not sign: only webhooks do, and a secret
/// silently dropped would leave the user believing the notifications are signed.
fn unsigned(kind: &str) -> Failure {
    Failure(format!(
        "--secret is for webhook channels only: a {kind} channel's notifications are not signed, so leave --secret out"
    ))
}

/// A channel that is not there, said with where to find the IDs; other errors as they are.
fn unknown(error: Error, id: i64) -> Failure {
    match error {
        Error::NotFound(_) => Failure(format!(
            "there is no notification channel {id}: `hoard notify list` shows the channels and their IDs"
        )),
        other => other.into(),
    }
}

/// Whether an edit asks for no change at all.
fn is_unchanged(request: &ChannelRequest) -> bool {
    let ChannelRequest {
        name,
        kind,
        url,
        secret,
        events,
        servers,
        is_enabled,
    } = request;
    name.is_none()
        && kind.is_none()
        && url.is_none()
        && secret.is_none()
        && events.is_none()
        && servers.is_none()
        && is_enabled.is_none()
}

/// A channel with the identifiers of its servers, looked up once for the JSON and the
/// table.
struct Shown {
    channel: Channel,
    /// None: every server.
    servers: Option<Vec<String>>,
}

impl Shown {
    fn of(conn: &Connection, channel: Channel) -> Result<Shown, Failure> {
        let servers = notify::server_identifiers(conn, &channel)?;
        Ok(Shown { channel, servers })
    }

    /// The channel as the API gives it.
    fn value(&self) -> Value {
        wire::notification_channel(&self.channel, self.servers.clone())
    }

    fn servers_cell(&self) -> String {
        match &self.servers {
            None => "all".into(),
            Some(ids) if ids.is_empty() => "none".into(),
            Some(ids) => ids.join(","),
        }
    }
}

/// What a channel is sent, in a table cell: a Healthchecks-style channel's pings follow
/// scheduled backups whatever its stored events, so those would mislead.
fn events_cell(channel: &Channel) -> String {
    if channel.kind == Kind::Healthchecks.as_str() {
        "scheduled backups (pings)".into()
    } else {
        channel.events.join(",")
    }
}

fn channel_table(app: &App, shown: &[Shown]) -> String {
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|s| {
            let c = &s.channel;
            vec![
                c.id.to_string(),
                c.name.clone(),
                c.kind.clone(),
                notify::mask_url(&c.url),
                events_cell(c),
                s.servers_cell(),
                if c.is_enabled { "yes" } else { "no" }.into(),
                c.last_delivery_at
                    .map_or_else(|| "never".into(), |t| local(app, t)),
                c.last_error.clone().unwrap_or_else(|| "-".into()),
                c.pending.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "KIND",
            "URL",
            "EVENTS",
            "SERVERS",
            "ENABLED",
            "LAST DELIVERY",
            "LAST ERROR",
            "PENDING",
        ],
        &rows,
    )
}
