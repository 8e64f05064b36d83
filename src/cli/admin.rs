//! `hoard user`, `hoard key`, `hoard server` and `hoard subuser`.

use super::{CliResult, Failure, Out};
use crate::api::wire;
use crate::app::App;
use crate::model::{Actor, Server, User, rfc3339};
use crate::servers::{self, ServerChanges};
use crate::{auth, backups, store, users};
use clap::Subcommand;
use serde_json::json;
use std::io::BufRead;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin a random password is made and printed.
    Add {
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a user's password (ends their browser sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user, with their keys and subuser permissions.
    Remove { name: String },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a user and print it (shown once).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List a user's API keys.
    List {
        #[arg(long)]
        user: String,
    },
    /// Revoke a key by its identifier (the `ptlc_` prefix and the 11 characters after it).
    Revoke {
        identifier: String,
        #[arg(long)]
        user: String,
    },
}

/// Server settings shared by `server add` and `server update`.
#[derive(clap::Args)]
pub struct ServerFields {
    #[arg(long)]
    name: Option<String>,
    /// Absolute path of the server's directory.
    #[arg(long)]
    path: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Username of the owner ("" for none).
    #[arg(long)]
    owner: Option<String>,
    /// Backups kept at most (0 disables backups) [default: 10].
    #[arg(long)]
    backup_limit: Option<i64>,
    /// Total bytes the server's backups may take ("none" for no quota).
    #[arg(long)]
    quota_bytes: Option<String>,
    /// Largest archive allowed, in bytes [default: 10 GiB].
    #[arg(long)]
    max_backup_bytes: Option<i64>,
    /// zstd, gzip, none, or "default" for the configured default.
    #[arg(long)]
    compression: Option<String>,
    /// installing, suspended, or "none".
    #[arg(long)]
    status: Option<String>,
    /// Shell command run before each backup ("" for none).
    #[arg(long)]
    pre_backup: Option<String>,
    /// Shell command run after each backup ("" for none).
    #[arg(long)]
    post_backup: Option<String>,
    /// Shell command run before each restore, e.g. to stop the game ("" for none).
    #[arg(long)]
    pre_restore: Option<String>,
    /// Shell command run after each restore, e.g. to start the game ("" for none).
    #[arg(long)]
    post_restore: Option<String>,
    /// true: back up what can be read and mark the backup completed_with_warnings when
    /// files cannot be read; false: fail the backup instead [default: false].
    #[arg(long, value_name = "BOOL")]
    skip_unreadable: Option<bool>,
}

fn none_if_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl ServerFields {
    fn into_changes(self) -> Result<ServerChanges, Failure> {
        let quota = match self.quota_bytes.as_deref() {
            None => None,
            Some("none") | Some("") => Some(None),
            Some(q) => Some(Some(q.parse::<i64>().map_err(|_| {
                Failure(format!("--quota-bytes: '{q}' is not a number or 'none'"))
            })?)),
        };
        let compression = match self.compression.as_deref() {
            None => None,
            Some("default") | Some("") => Some(None),
            Some(c) => Some(Some(c.parse().map_err(Failure)?)),
        };
        let status = match self.status.as_deref() {
            None => None,
            Some("none") | Some("") => Some(None),
            Some(s) => Some(Some(s.parse().map_err(Failure)?)),
        };
        Ok(ServerChanges {
            name: self.name,
            description: self.description,
            path: self.path,
            owner: self.owner.map(none_if_empty),
            backup_limit: self.backup_limit,
            backup_quota_bytes: quota,
            max_backup_bytes: self.max_backup_bytes,
            compression,
            status,
            pre_backup: self.pre_backup.map(none_if_empty),
            post_backup: self.post_backup.map(none_if_empty),
            pre_restore: self.pre_restore.map(none_if_empty),
            post_restore: self.post_restore.map(none_if_empty),
            skip_unreadable: self.skip_unreadable,
        })
    }
}

#[derive(Subcommand)]
pub enum ServerCommand {
    /// Add a server: a directory to back up. Requires --name and --path.
    Add(ServerFields),
    /// List servers.
    List,
    /// Show one server (UUID or short id).
    Show { server: String },
    /// Change a server's settings.
    Update {
        server: String,
        #[command(flatten)]
        fields: ServerFields,
    },
    /// Remove a server. Its backups must be deleted first, or pass --delete-backups.
    Remove {
        server: String,
        #[arg(long)]
        delete_backups: bool,
    },
}

#[derive(Subcommand)]
pub enum SubuserCommand {
    /// Give a user permissions on a server (replaces their previous ones).
    Add {
        #[arg(long)]
        server: String,
        #[arg(long)]
        user: String,
        /// Comma-separated: backup.read, backup.create, backup.download, backup.delete,
        /// backup.restore, schedule.read, schedule.create, schedule.update, schedule.delete,
        /// activity.read.
        #[arg(long, value_delimiter = ',')]
        permissions: Vec<String>,
    },
    /// Take all of a user's permissions on a server away.
    Remove {
        #[arg(long)]
        server: String,
        #[arg(long)]
        user: String,
    },
    /// List a server's subusers.
    List {
        #[arg(long)]
        server: String,
    },
}

fn read_password(from_stdin: bool) -> Result<(String, bool), Failure> {
    if !from_stdin {
        return Ok((auth::random_base62(20), true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
}

fn user_line(u: &User) -> String {
    format!(
        "{}  {}{}",
        u.uuid,
        u.username,
        if u.is_admin { "  (admin)" } else { "" }
    )
}

pub fn user(app: &App, out: &Out, command: UserCommand) -> CliResult {
    let conn = app.db.conn()?;
    match command {
        UserCommand::Add {
            name,
            admin,
            password_stdin,
        } => {
            let (password, generated) = read_password(password_stdin)?;
            let user = users::create(&conn, &Actor::Hoard, &name, &password, admin)?;
            let mut value = wire::user(&user);
            if generated {
                value["meta"] = json!({"password": password});
            }
            out.print(&value, || {
                let mut text = format!("Created {}", user_line(&user));
                if generated {
                    text.push_str(&format!("\nPassword: {password}"));
                }
                text
            });
        }
        UserCommand::List => {
            let list = store::users::list(&conn)?;
            out.print(&wire::list(list.iter().map(wire::user).collect()), || {
                list.iter().map(user_line).collect::<Vec<_>>().join("\n")
            });
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let user = users::find(&conn, &name)?;
            let (password, generated) = read_password(password_stdin)?;
            users::set_password(&conn, &user, &password, None)?;
            let value = if generated {
                json!({"password": password})
            } else {
                json!({})
            };
            out.print(&value, || {
                if generated {
                    format!("New password for {name}: {password}")
                } else {
                    format!("Password of {name} changed")
                }
            });
        }
        UserCommand::Remove { name } => {
            let user = users::find(&conn, &name)?;
            users::delete(&conn, &Actor::Hoard, &user)?;
            out.print(&json!({}), || format!("Removed user {name}"));
        }
    }
    Ok(())
}

pub fn key(app: &App, out: &Out, command: KeyCommand) -> CliResult {
    let conn = app.db.conn()?;
    match command {
        KeyCommand::Create { user, description } => {
            let user = users::find(&conn, &user)?;
            let (key, token) = users::create_key(&conn, &Actor::Hoard, &user, &description)?;
            let mut value = wire::api_key(&key);
            value["meta"] = json!({"secret_token": token});
            out.print(&value, || token.clone());
        }
        KeyCommand::List { user } => {
            let user = users::find(&conn, &user)?;
            let keys = store::keys::list_for_user(&conn, user.id)?;
            out.print(
                &wire::list(keys.iter().map(wire::api_key).collect()),
                || {
                    keys.iter()
                        .map(|k| {
                            let used = k.last_used_at.map_or("never used".to_string(), |t| {
                                format!("last used {}", rfc3339(t))
                            });
                            format!("{}  {}  {used}", k.identifier, k.description)
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        KeyCommand::Revoke { identifier, user } => {
            let user = users::find(&conn, &user)?;
            users::revoke_key(&conn, &Actor::Hoard, &user, &identifier)?;
            out.print(&json!({}), || format!("Revoked {identifier}"));
        }
    }
    Ok(())
}

fn server_value(app: &App, server: &Server) -> Result<serde_json::Value, Failure> {
    let conn = app.db.conn()?;
    let owner = server
        .owner_id
        .map(|id| store::users::by_id(&conn, id))
        .transpose()?
        .flatten();
    Ok(wire::admin_server(
        server,
        owner.as_ref(),
        store::backups::count(&conn, server.id)?,
    ))
}

fn server_line(s: &Server) -> String {
    let status = s
        .status
        .map_or(String::new(), |st| format!("  [{}]", st.as_str()));
    format!("{}  {}  {}{status}", s.short_id, s.name, s.path)
}

pub fn server(app: &App, out: &Out, command: ServerCommand) -> CliResult {
    let data_dir = &app.config.data_dir;
    match command {
        ServerCommand::Add(fields) => {
            let server = servers::create(&*app.db.conn()?, data_dir, fields.into_changes()?)?;
            out.print(&server_value(app, &server)?, || {
                format!("Added {}\nUUID: {}", server_line(&server), server.uuid)
            });
        }
        ServerCommand::List => {
            let list = store::servers::list(&*app.db.conn()?)?;
            let values = list
                .iter()
                .map(|s| server_value(app, s))
                .collect::<Result<Vec<_>, _>>()?;
            out.print(&wire::list(values), || {
                list.iter().map(server_line).collect::<Vec<_>>().join("\n")
            });
        }
        ServerCommand::Show { server } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            let value = server_value(app, &server)?;
            out.print(&value, || {
                serde_json::to_string_pretty(&value["attributes"]).unwrap_or_default()
            });
        }
        ServerCommand::Update { server, fields } => {
            let conn = app.db.conn()?;
            let server = servers::find(&conn, &server)?;
            let updated = servers::update(&conn, data_dir, &server, fields.into_changes()?)?;
            out.print(&server_value(app, &updated)?, || {
                format!("Updated {}", server_line(&updated))
            });
        }
        ServerCommand::Remove {
            server,
            delete_backups,
        } => {
            let server = servers::find(&*app.db.conn()?, &server)?;
            backups::delete_server(app, &Actor::Hoard, &server, delete_backups)?;
            out.print(&json!({}), || format!("Removed server {}", server.name));
        }
    }
    Ok(())
}

pub fn subuser(app: &App, out: &Out, command: SubuserCommand) -> CliResult {
    let conn = app.db.conn()?;
    match command {
        SubuserCommand::Add {
            server,
            user,
            permissions,
        } => {
            let server = servers::find(&conn, &server)?;
            let user = users::find(&conn, &user)?;
            let named: Vec<&String> = permissions
                .iter()
                .filter(|p| !p.trim().is_empty())
                .collect();
            let perms = servers::parse_permissions(&named)?;
            servers::set_subuser(&conn, &Actor::Hoard, &server, &user, &perms)?;
            let sub = store::subusers::get(&conn, server.id, user.id)?
                .ok_or_else(|| Failure("subuser vanished".into()))?;
            out.print(&wire::subuser(&sub), || {
                format!(
                    "{} may now {} on {}",
                    user.username,
                    if perms.is_empty() {
                        "see the server".to_string()
                    } else {
                        perms
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    server.name
                )
            });
        }
        SubuserCommand::Remove { server, user } => {
            let server = servers::find(&conn, &server)?;
            let user = users::find(&conn, &user)?;
            servers::remove_subuser(&conn, &Actor::Hoard, &server, &user)?;
            out.print(&json!({}), || {
                format!("{} no longer has access to {}", user.username, server.name)
            });
        }
        SubuserCommand::List { server } => {
            let server = servers::find(&conn, &server)?;
            let subs = store::subusers::list(&conn, server.id)?;
            out.print(
                &wire::list(subs.iter().map(wire::subuser).collect()),
                || {
                    subs.iter()
                        .map(|s| {
                            format!(
                                "{}  {}",
                                s.user.username,
                                s.permissions
                                    .iter()
                                    .map(|p| p.as_str())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
    }
    Ok(())
}

pub fn reindex(app: &App, out: &Out, verify: bool) -> CliResult {
    let report = crate::catalogue::reindex(app, verify)?;
    out.print(
        &json!({
            "servers_added": report.servers_added,
            "backups_added": report.backups_added,
            "backups_known": report.backups_known,
            "damaged": report.damaged,
            "problems": report.problems,
        }),
        || {
            let mut lines = vec![format!(
                "Added {} backup(s) and {} server(s); {} backup(s) were already in the catalogue.",
                report.backups_added,
                report.servers_added.len(),
                report.backups_known
            )];
            lines.extend(report.servers_added.iter().map(|s| format!("server added: {s}")));
            lines.extend(report.damaged.iter().cloned());
            lines.extend(report.problems.iter().map(|p| format!("not added: {p}")));
            if !report.servers_added.is_empty() {
                lines.push(
                    "Owners and subusers are not in the manifests: give the servers back to their users with `hoard server update --owner`."
                        .into(),
                );
            }
            lines.join("\n")
        },
    );
    Ok(())
}
