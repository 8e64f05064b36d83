//! Settings: built-in defaults, overridden by `hoard.toml` in the data directory, overridden
//! by `HOARD_*` environment variables, overridden by command-line flags.
//!
//! One struct, [`Settings`], declares every setting once: clap reads it from flags and the
//! environment, serde from the file (rejecting unknown keys), and [`Config::resolve`] fills
//! what nobody set with the defaults.

use crate::model::Compression;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "hoard.toml";

/// Every setting of `hoard serve`. Each may also be set in `hoard.toml` (same name, snake
/// case) or as an environment variable (`HOARD_` and the name in capitals).
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on [default: 127.0.0.1:8080]. Keep it on loopback and put
    /// a TLS-terminating reverse proxy in front to reach it from elsewhere.
    #[arg(long, env = "HOARD_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,

    /// Base URL that download links point at, e.g. https://backups.example.com [default:
    /// taken from each request's Host header].
    #[arg(long, env = "HOARD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Threads answering API requests [default: twice the number of cores, at least 4].
    #[arg(long, env = "HOARD_HTTP_THREADS", value_name = "N")]
    pub http_threads: Option<usize>,

    /// How long a client may stall, in seconds, while it takes a response (a paused download
    /// included) before the connection is closed [default: 60].
    #[arg(long, env = "HOARD_HTTP_TIMEOUT_SECS", value_name = "SECS")]
    pub http_timeout_secs: Option<u64>,

    /// Time a client has to send a whole request, head and body, in seconds, counted from
    /// its first byte; a slower request gets 408 and the connection is closed [default: 30].
    #[arg(long, env = "HOARD_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,

    /// How long a connection may wait idle for its next request, in seconds, before it is
    /// closed [default: 10].
    #[arg(long, env = "HOARD_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,

    /// Open connections at most; connections beyond are closed at once. Lowered at start
    /// when the open-file limit is too small to keep descriptors for jobs [default: 1024].
    #[arg(long, env = "HOARD_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Backups and restores running at once, across servers [default: 2].
    #[arg(long, env = "HOARD_JOB_WORKERS", value_name = "N")]
    pub job_workers: Option<usize>,

    /// Compression for servers that do not choose one: zstd, gzip or none [default: zstd].
    #[arg(long, env = "HOARD_COMPRESSION", value_name = "KIND")]
    pub compression: Option<Compression>,

    /// zstd compression level, 1 to 19 [default: 3].
    #[arg(long, env = "HOARD_ZSTD_LEVEL", value_name = "N")]
    pub zstd_level: Option<i32>,

    /// Compression threads per backup (zstd and gzip); 0 means one per core [default: 0].
    #[arg(long, env = "HOARD_COMPRESSION_THREADS", value_name = "N")]
    pub compression_threads: Option<u32>,

    /// gzip compression level, 1 to 9 [default: 6].
    #[arg(long, env = "HOARD_GZIP_LEVEL", value_name = "N")]
    pub gzip_level: Option<u32>,

    /// Cap on how fast server files are read while archiving, in MiB/s; 0 means no cap
    /// [default: 0].
    #[arg(long, env = "HOARD_IO_LIMIT_MIB_S", value_name = "MIB")]
    pub io_limit_mib_s: Option<u64>,

    /// Backups a server may start within the throttle window; 0 turns the throttle off
    /// [default: 2].
    #[arg(long, env = "HOARD_THROTTLE_BACKUPS", value_name = "N")]
    pub throttle_backups: Option<u32>,

    /// Length of the throttle window in seconds [default: 600].
    #[arg(long, env = "HOARD_THROTTLE_WINDOW_SECS", value_name = "SECS")]
    pub throttle_window_secs: Option<u64>,

    /// Free space to keep on the archive disk, in MiB: a backup is refused (507) when it
    /// would eat into it [default: 1024].
    #[arg(long, env = "HOARD_SPACE_RESERVE_MIB", value_name = "MIB")]
    pub space_reserve_mib: Option<u64>,

    /// How long a download link stays valid, in seconds [default: 3600].
    #[arg(long, env = "HOARD_DOWNLOAD_LINK_TTL_SECS", value_name = "SECS")]
    pub download_link_ttl_secs: Option<u64>,

    /// How long a server hook may run before it is killed, in seconds [default: 300].
    #[arg(long, env = "HOARD_HOOK_TIMEOUT_SECS", value_name = "SECS")]
    pub hook_timeout_secs: Option<u64>,

    /// On SIGINT/SIGTERM, how long running jobs may finish before they are cancelled, in
    /// seconds [default: 30].
    #[arg(long, env = "HOARD_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,

    /// How long a browser login lasts, in seconds [default: 43200].
    #[arg(long, env = "HOARD_SESSION_TTL_SECS", value_name = "SECS")]
    pub session_ttl_secs: Option<u64>,

    /// Re-read every backup's archive and check its SHA-256 once this many days have passed
    /// since it was last checked, one archive at a time, at the priority of backups; 0 turns
    /// the schedule off [default: 7].
    #[arg(long, env = "HOARD_VERIFY_INTERVAL_DAYS", value_name = "DAYS")]
    pub verify_interval_days: Option<u64>,

    /// Time zone of schedules' cron expressions and of retention's hours, days, weeks,
    /// months and years, as an IANA name such as Europe/Berlin [default: the host's].
    #[arg(long, env = "HOARD_TIMEZONE", value_name = "ZONE")]
    pub timezone: Option<String>,

    /// Run a schedule once at start when its time passed while hoard was not running (once,
    /// however many times were missed); false records the run as missed instead [default:
    /// true].
    #[arg(long, env = "HOARD_SCHEDULE_CATCH_UP", value_name = "BOOL")]
    pub schedule_catch_up: Option<bool>,

    /// How long a scheduled backup waits for a backup or restore of the same server that is
    /// already running, in seconds, before the run is recorded as skipped [default: 3600].
    #[arg(long, env = "HOARD_SCHEDULE_WAIT_SECS", value_name = "SECS")]
    pub schedule_wait_secs: Option<u64>,

    /// Moves the schedules' clock this many seconds ahead of the system's (negative: behind),
    /// to try a schedule without waiting for its time; for testing [default: 0].
    #[arg(
        long,
        env = "HOARD_SCHEDULE_CLOCK_OFFSET_SECS",
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    pub schedule_clock_offset_secs: Option<i64>,

    /// Longest wait between two attempts to deliver a notification a channel did not take,
    /// in seconds; attempts stop a day after the notification was queued [default: 300].
    #[arg(long, env = "HOARD_NOTIFY_RETRY_MAX_SECS", value_name = "SECS")]
    pub notify_retry_max_secs: Option<u64>,

    /// How long hoard keeps trying to deliver a notification, in seconds, before it drops
    /// it and logs the failure in the server's history [default: 86400].
    #[arg(long, env = "HOARD_NOTIFY_GIVE_UP_SECS", value_name = "SECS")]
    pub notify_give_up_secs: Option<u64>,

    /// Whose behaviour the API follows where the reference and a real Pterodactyl panel
    /// differ: `hoard` (the reference) or `pterodactyl` (lock answers 200 with the backup,
    /// restore 204, a failed backup has `completed_at`, `is_successful` is false while
    /// creating) for scripts written against a panel [default: hoard].
    #[arg(long, env = "HOARD_API_COMPAT", value_name = "MODE")]
    pub api_compat: Option<ApiCompat>,
}

/// Whose behaviour the API follows where the reference and a real Pterodactyl panel differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiCompat {
    /// The reference's behaviour.
    #[default]
    Hoard,
    /// A real Pterodactyl panel's behaviour.
    Pterodactyl,
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The settings in force, every one decided.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub public_url: Option<String>,
    pub http_threads: usize,
    pub http_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub job_workers: usize,
    pub compression: Compression,
    pub zstd_level: i32,
    pub compression_threads: u32,
    pub gzip_level: u32,
    pub io_limit_mib_s: u64,
    pub throttle_backups: u32,
    pub throttle_window_secs: u64,
    pub space_reserve_mib: u64,
    pub download_link_ttl_secs: u64,
    pub hook_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub session_ttl_secs: u64,
    pub verify_interval_days: u64,
    pub timezone: jiff::tz::TimeZone,
    pub schedule_catch_up: bool,
    pub schedule_wait_secs: u64,
    pub schedule_clock_offset_secs: i64,
    pub notify_retry_max_secs: u64,
    pub notify_give_up_secs: u64,
    pub api_compat: ApiCompat,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// Takes each field from `high` where set, else from `low`.
macro_rules! overlay {
    ($high:expr, $low:expr, $($field:ident),+ $(,)?) => {
        Settings { $($field: $high.$field.or($low.$field)),+ }
    };
}

impl Settings {
    /// Reads `hoard.toml` from the data directory; a missing file is no settings at all.
    pub fn from_file(data_dir: &Path) -> Result<Settings, Error> {
        let path = data_dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => return Err(Error::Read { path, source }),
        };
        toml::from_str(&text).map_err(|e| Error::Parse {
            path,
            message: e.to_string(),
        })
    }

    /// `self` where set, else `low`.
    pub fn or(self, low: Settings) -> Settings {
        overlay!(
            self,
            low,
            listen,
            public_url,
            http_threads,
            http_timeout_secs,
            request_timeout_secs,
            idle_timeout_secs,
            max_connections,
            job_workers,
            compression,
            zstd_level,
            compression_threads,
            gzip_level,
            io_limit_mib_s,
            throttle_backups,
            throttle_window_secs,
            space_reserve_mib,
            download_link_ttl_secs,
            hook_timeout_secs,
            shutdown_grace_secs,
            session_ttl_secs,
            verify_interval_days,
            timezone,
            schedule_catch_up,
            schedule_wait_secs,
            schedule_clock_offset_secs,
            notify_retry_max_secs,
            notify_give_up_secs,
            api_compat,
        )
    }
}

impl Config {
    /// Combines flags and environment (`given`, already merged by clap) with the data
    /// directory's file and the defaults, and checks the result.
    pub fn resolve(data_dir: &Path, given: Settings) -> Result<Config, Error> {
        let s = given.or(Settings::from_file(data_dir)?);
        let config = Config {
            data_dir: data_dir.to_path_buf(),
            listen: s.listen.unwrap_or_else(|| "127.0.0.1:8080".into()),
            public_url: s.public_url.map(|u| u.trim_end_matches('/').to_string()),
            // Measured on 2 cores: 4 threads answered ~10% more requests than 8, with a lower
            // p99; more threads only add context switches.
            http_threads: s.http_threads.unwrap_or_else(|| (2 * cores()).max(4)),
            http_timeout_secs: s.http_timeout_secs.unwrap_or(60),
            request_timeout_secs: s.request_timeout_secs.unwrap_or(30),
            idle_timeout_secs: s.idle_timeout_secs.unwrap_or(10),
            max_connections: s.max_connections.unwrap_or(1024),
            job_workers: s.job_workers.unwrap_or(2),
            compression: s.compression.unwrap_or_default(),
            zstd_level: s.zstd_level.unwrap_or(3),
            compression_threads: s.compression_threads.unwrap_or(0),
            gzip_level: s.gzip_level.unwrap_or(6),
            io_limit_mib_s: s.io_limit_mib_s.unwrap_or(0),
            throttle_backups: s.throttle_backups.unwrap_or(2),
            throttle_window_secs: s.throttle_window_secs.unwrap_or(600),
            space_reserve_mib: s.space_reserve_mib.unwrap_or(1024),
            download_link_ttl_secs: s.download_link_ttl_secs.unwrap_or(3600),
            hook_timeout_secs: s.hook_timeout_secs.unwrap_or(300),
            shutdown_grace_secs: s.shutdown_grace_secs.unwrap_or(30),
            session_ttl_secs: s.session_ttl_secs.unwrap_or(43200),
            verify_interval_days: s.verify_interval_days.unwrap_or(7),
            timezone: match s.timezone.as_deref() {
                None => jiff::tz::TimeZone::system(),
                Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| Error::Invalid {
                    name: "timezone",
                    message: format!(
                        "{e}; expected an IANA time zone name such as UTC or Europe/Berlin"
                    ),
                })?,
            },
            schedule_catch_up: s.schedule_catch_up.unwrap_or(true),
            schedule_wait_secs: s.schedule_wait_secs.unwrap_or(3600),
            schedule_clock_offset_secs: s.schedule_clock_offset_secs.unwrap_or(0),
            notify_retry_max_secs: s.notify_retry_max_secs.unwrap_or(300),
            notify_give_up_secs: s.notify_give_up_secs.unwrap_or(86_400),
            api_compat: s.api_compat.unwrap_or_default(),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), Error> {
        let invalid = |name, message: &str| {
            Err(Error::Invalid {
                name,
                message: message.to_string(),
            })
        };
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return invalid(
                "listen",
                "expected an address and port such as 127.0.0.1:8080",
            );
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid(
                "public_url",
                "expected a URL starting with http:// or https://",
            );
        }
        if !(1..=256).contains(&self.http_threads) {
            return invalid("http_threads", "expected 1 to 256");
        }
        if self.http_timeout_secs == 0 {
            return invalid("http_timeout_secs", "must be above 0");
        }
        if self.request_timeout_secs == 0 {
            return invalid("request_timeout_secs", "must be above 0");
        }
        if self.idle_timeout_secs == 0 {
            return invalid("idle_timeout_secs", "must be above 0");
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be above 0");
        }
        if !(1..=64).contains(&self.job_workers) {
            return invalid("job_workers", "expected 1 to 64");
        }
        if !(1..=19).contains(&self.zstd_level) {
            return invalid("zstd_level", "expected 1 to 19");
        }
        if !(1..=9).contains(&self.gzip_level) {
            return invalid("gzip_level", "expected 1 to 9");
        }
        if self.throttle_backups > 0 && self.throttle_window_secs == 0 {
            return invalid(
                "throttle_window_secs",
                "must be above 0 while the throttle is on",
            );
        }
        if self.download_link_ttl_secs == 0 {
            return invalid("download_link_ttl_secs", "must be above 0");
        }
        if self.session_ttl_secs < 60 {
            return invalid("session_ttl_secs", "must be at least 60");
        }
        Ok(())
    }

    /// Compression threads, with 0 resolved to the number of cores.
    pub fn compression_workers(&self) -> u32 {
        match self.compression_threads {
            0 => cores() as u32,
            n => n,
        }
    }

    /// The schedules' clock: now, moved by `schedule_clock_offset_secs`.
    pub fn schedule_now(&self) -> crate::model::Timestamp {
        crate::model::now() + self.schedule_clock_offset_secs
    }

    pub fn space_reserve_bytes(&self) -> u64 {
        self.space_reserve_mib.saturating_mul(1 << 20)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("hoard.db")
    }

    pub fn secret_path(&self) -> PathBuf {
        self.data_dir.join("secret.key")
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.data_dir.join("backups")
    }
}
