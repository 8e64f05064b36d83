//! The application context shared by the server and the CLI: settings, the database and the
//! signing secret of one data directory, set up on first start.

use crate::auth;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Actor;
use crate::store::{self, Db};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct App {
    pub config: Config,
    pub db: Db,
    /// Key for download-link signatures.
    pub secret: [u8; 32],
    pub login_throttle: auth::LoginThrottle,
    pub jobs: crate::jobs::Jobs,
    pub notifier: crate::notify::deliver::Notifier,
}

/// What the first start of a data directory made and must tell the user once.
pub struct FirstStart {
    pub admin_password: Option<String>,
}

impl App {
    /// Opens the data directory, creating the database, the secret and the first admin when
    /// they do not exist yet. A missing or empty database beside archives is refused: a
    /// fresh catalogue would hide them (`hoard reindex` brings them back).
    pub fn open(config: Config) -> Result<(App, FirstStart)> {
        App::open_with(config, false)
    }

    /// Opens the data directory for `hoard reindex`, which fills a missing or empty
    /// catalogue from the archives.
    pub fn open_to_reindex(config: Config) -> Result<(App, FirstStart)> {
        App::open_with(config, true)
    }

    fn open_with(config: Config, reindexing: bool) -> Result<(App, FirstStart)> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .map_err(|e| {
                Error::internal(format!(
                    "cannot create the data directory {}: {e}",
                    config.data_dir.display()
                ))
            })?;
        make_private(&config.data_dir);
        if !reindexing {
            refuse_lost_catalogue(&config)?;
        }
        let secret = load_or_create_secret(&config.secret_path())?;
        let db = Db::open(&config.database_path()).map_err(|e| Error::Internal(e.to_string()))?;
        let app = App {
            config,
            db,
            secret,
            login_throttle: auth::LoginThrottle::default(),
            jobs: crate::jobs::Jobs::default(),
            notifier: crate::notify::deliver::Notifier::default(),
        };
        let admin_password = app.create_first_admin()?;
        Ok((app, FirstStart { admin_password }))
    }

    pub fn storage(&self) -> crate::storage::Storage {
        crate::storage::Storage::new(self.config.backups_dir())
    }

    /// Creates user `admin` when there are no users; returns the password if it was generated.
    fn create_first_admin(&self) -> Result<Option<String>> {
        let conn = self.db.conn()?;
        if store::users::count(&conn)? > 0 {
            return Ok(None);
        }
        let (password, generated) = match std::env::var("HOARD_ADMIN_PASSWORD") {
            Ok(p) if !p.is_empty() => (p, false),
            _ => (auth::random_base62(20), true),
        };
        crate::users::create(&conn, &Actor::Hoard, "admin", &password, true)?;
        Ok(generated.then_some(password))
    }
}

/// The umask hoard was started with, kept for the hooks: what they create belongs to the
/// game server, not to hoard.
static INHERITED_UMASK: AtomicU32 = AtomicU32::new(0o022);

/// Makes every file hoard creates private to its user (the database and its WAL hold
/// password hashes and session tokens); call first thing, before any thread starts.
pub fn restrict_umask() {
    // SAFETY: umask(2) cannot fail; it changes this process's mask only.
    let inherited = unsafe { libc::umask(0o077) };
    INHERITED_UMASK.store(inherited as u32, Ordering::Relaxed);
}

pub fn inherited_umask() -> libc::mode_t {
    INHERITED_UMASK.load(Ordering::Relaxed) as libc::mode_t
}

/// Takes group and other access away from the data directory and everything in it (a
/// directory that existed before the first start, files copied in by hand or written by an
/// older hoard): directories become 0700, files 0600. Symbolic links are left alone.
fn make_private(dir: &Path) {
    let mut fixed = Vec::new();
    // A file that vanishes meanwhile (a CLI command's journal) or that hoard's user does not
    // own is reported, not a reason to refuse to start.
    let cannot = |path: &Path, e: &dyn std::fmt::Display| {
        log::warn!("cannot make {} private: {e}", path.display());
    };
    for entry in walkdir::WalkDir::new(dir) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                cannot(e.path().unwrap_or(dir), &e);
                continue;
            }
        };
        let kind = entry.file_type();
        if kind.is_symlink() {
            continue;
        }
        let mode = match entry.metadata() {
            Ok(meta) => meta.permissions().mode() & 0o7777,
            Err(e) => {
                cannot(entry.path(), &e);
                continue;
            }
        };
        let wanted = match (kind.is_dir(), mode & 0o7077 != 0) {
            (true, _) if mode != 0o700 => 0o700,
            (false, true) => 0o600,
            _ => continue,
        };
        match fs::set_permissions(entry.path(), fs::Permissions::from_mode(wanted)) {
            Ok(()) => fixed.push(entry.into_path()),
            Err(e) => cannot(entry.path(), &e),
        }
    }
    if let Some(first) = fixed.first() {
        log::warn!(
            "made {} entries of the data directory private (directories 0700, files 0600), {} among them: they were open to other users",
            fixed.len(),
            first.display()
        );
    }
}

/// Refuses to start a fresh catalogue while the storage directory holds archives: their
/// database was deleted or emptied, and starting afresh would orphan every one of them.
fn refuse_lost_catalogue(config: &Config) -> Result<()> {
    let path = config.database_path();
    let empty = match fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            return Err(Error::internal(format!(
                "cannot use {}: {e}",
                path.display()
            )));
        }
        Ok(meta) => meta.len() == 0,
    };
    if !empty {
        return Ok(());
    }
    let storage = crate::storage::Storage::new(config.backups_dir());
    let archives = storage
        .list()
        .map_err(|e| Error::internal(format!("cannot list {}: {e}", storage.root().display())))?
        .iter()
        .filter(|(_, stored, _)| matches!(stored, crate::storage::Stored::Archive(_)))
        .count();
    if archives == 0 {
        return Ok(());
    }
    Err(Error::internal(format!(
        "the database {} is missing or empty, but {} holds {archives} archive(s): hoard will not \
         start a new, empty catalogue over them. Put back the database from a copy, or run \
         `hoard reindex` to rebuild the catalogue from the archives' manifests",
        path.display(),
        storage.root().display()
    )))
}

fn load_or_create_secret(path: &Path) -> Result<[u8; 32]> {
    let cannot = |e: std::io::Error| {
        Error::internal(format!("cannot use the secret {}: {e}", path.display()))
    };
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let secret = auth::random_bytes::<32>();
            file.write_all(&secret).map_err(cannot)?;
            file.sync_all().map_err(cannot)?;
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut file = fs::File::open(path).map_err(cannot)?;
            let mut secret = [0u8; 32];
            let mut rest = Vec::new();
            file.read_exact(&mut secret).map_err(cannot)?;
            file.read_to_end(&mut rest).map_err(cannot)?;
            if !rest.is_empty() {
                return Err(Error::internal(format!(
                    "{} is not a 32-byte secret: restore it from a copy of the data directory",
                    path.display()
                )));
            }
            Ok(secret)
        }
        Err(e) => Err(cannot(e)),
    }
}
