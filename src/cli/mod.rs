//! The command line: `hoard serve` and the administration commands. They work on the data
//! directory directly, whether or not a `hoard serve` runs on it at the same time.

mod admin;
mod backup;
mod notify;
mod schedule;
mod serve;

use crate::app::App;
use crate::config::{Config, Settings};
use clap::{Parser, Subcommand};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hoard",
    version,
    about = "Backups of game-server directories, with the Pterodactyl client backup API and a browser UI.",
    after_help = "Without a command, hoard runs `serve`."
)]
pub struct Cli {
    /// The data directory: database, signing secret, archives and hoard.toml.
    #[arg(
        long,
        env = "HOARD_DATA_DIR",
        default_value = "data",
        global = true,
        value_name = "DIR"
    )]
    data_dir: PathBuf,

    /// Print results as JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the browser UI (the default command).
    Serve(serve::ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(admin::KeyCommand),
    /// Manage servers (directories to back up).
    #[command(subcommand)]
    Server(admin::ServerCommand),
    /// Grant or remove a user's permissions on a server.
    #[command(subcommand)]
    Subuser(admin::SubuserCommand),
    /// Create, list, download, restore, verify, lock and delete backups.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Back up a server automatically: every hour, day or week, or at cron times.
    ///
    /// Times are in hoard's `timezone` setting (HOARD_TIMEZONE; the host's time zone
    /// unless set). A schedule runs while `hoard serve` runs; `schedule run` runs one now.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Choose which old backups are deleted automatically, with restic-style keep rules.
    ///
    /// The rules are those of restic's `forget` (--keep-last, --keep-daily, ...): a backup
    /// any rule keeps is kept. Locked backups and the newest successful backup are never
    /// deleted, and deleting happens only right after a backup succeeds.
    #[command(subcommand)]
    Retention(schedule::RetentionCommand),
    /// Tell people of failed backups and more: a signed webhook, Discord, ntfy or a
    /// Healthchecks-style ping URL.
    ///
    /// These commands change the channels in the data directory; a running `hoard serve`
    /// delivers the notifications, retrying for a day. `notify test` sends its test itself.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Rebuild the catalogue (servers and backups) from the manifests beside the archives,
    /// after the database was lost: adds what it lacks, never deletes an archive.
    Reindex {
        /// Also re-read every archive and check its SHA-256 (else only its size).
        #[arg(long)]
        verify: bool,
    },
}

/// Rows under a header, in columns as wide as their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(header.to_vec())
        .add_rows(rows.to_vec());
    table
        .lines()
        .map(|line| line.trim().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A time as people read it: in hoard's time zone, to the minute.
fn local(app: &App, t: crate::model::Timestamp) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| {
            t.to_zoned(app.config.timezone.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default()
}

/// An error for the user: printed on stderr, exit status 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.to_string())
    }
}

pub type CliResult = Result<(), Failure>;

/// What a command prints: JSON with `--json`, else lines for people.
pub struct Out {
    json: bool,
}

impl Out {
    pub fn print(&self, value: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }
}

fn init_logging(default: &str) {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_target(false)
        .try_init();
}

/// Settings for commands other than `serve`: environment and file only.
fn settings_from_env() -> Settings {
    #[derive(Parser)]
    struct EnvOnly {
        #[command(flatten)]
        settings: Settings,
    }
    EnvOnly::try_parse_from(["hoard"])
        .map(|e| e.settings)
        .unwrap_or_default()
}

/// Opens the data directory for a command; a first start also prints the admin password.
fn open(data_dir: &std::path::Path, settings: Settings, reindexing: bool) -> Result<App, Failure> {
    let config = Config::resolve(data_dir, settings)?;
    let (app, first) = if reindexing {
        App::open_to_reindex(config)?
    } else {
        App::open(config)?
    };
    if let Some(password) = first.admin_password {
        eprintln!(
            "Created user 'admin' with password: {password}\nKeep it: it is not shown again."
        );
    }
    Ok(app)
}

pub fn main() -> ExitCode {
    crate::app::restrict_umask();
    let cli = Cli::parse();
    let out = Out { json: cli.json };
    let result = match cli.command {
        None => {
            init_logging("info");
            serve::run(&cli.data_dir, serve::ServeArgs::default())
        }
        Some(Command::Serve(args)) => {
            init_logging("info");
            serve::run(&cli.data_dir, args)
        }
        Some(command) => {
            init_logging("warn");
            let reindexing = matches!(command, Command::Reindex { .. });
            open(&cli.data_dir, settings_from_env(), reindexing).and_then(|app| match command {
                Command::User(c) => admin::user(&app, &out, c),
                Command::Key(c) => admin::key(&app, &out, c),
                Command::Server(c) => admin::server(&app, &out, c),
                Command::Subuser(c) => admin::subuser(&app, &out, c),
                Command::Backup(c) => backup::run(app, &out, &cli.data_dir, c),
                Command::Schedule(c) => schedule::schedule(app, &out, c),
                Command::Retention(c) => schedule::retention(&app, &out, c),
                Command::Notify(c) => notify::run(&app, &out, c),
                Command::Reindex { verify } => admin::reindex(&app, &out, verify),
                Command::Serve(_) => unreachable!("handled above"),
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
