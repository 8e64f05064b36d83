//! The SQLite store: one database file in the data directory, opened through a small
//! connection pool, with its schema kept as numbered migrations in `sql/`.
//!
//! Every query is a plain parameterised statement. Functions take a `&Connection` so callers
//! can run several of them inside one transaction.

pub mod activity;
pub mod backups;
pub mod keys;
mod migrate;
pub mod notifications;
pub mod restores;
pub mod retention;
pub mod schedules;
pub mod servers;
pub mod sessions;
pub mod subusers;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use migrate::{LATEST_VERSION, MIGRATIONS, apply_migrations};
pub use rusqlite::{Connection, TransactionBehavior};

pub type Conn = r2d2::PooledConnection<Manager>;

/// The database's revision: it changes whenever anything a page shows changes (see
/// `sql/0009_revision.sql`).
pub fn revision(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached("SELECT value FROM revision WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

/// Opens pooled connections with the settings every connection needs.
#[derive(Debug)]
pub struct Manager {
    path: PathBuf,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> std::result::Result<Connection, rusqlite::Error> {
        let c = Connection::open(&self.path)?;
        c.busy_timeout(BUSY_TIMEOUT)?;
        c.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
        Ok(c)
    }

    fn is_valid(&self, c: &mut Connection) -> std::result::Result<(), rusqlite::Error> {
        c.execute_batch("")
    }

    fn has_broken(&self, _: &mut Connection) -> bool {
        false
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the database: {0}")]
    Pool(#[from] r2d2::Error),
    #[error(
        "the database {} is damaged ({detail}). hoard will not start on it: stop every hoard \
         using this data directory, then put back a copy of the database, or move hoard.db, \
         hoard.db-wal and hoard.db-shm aside and run `hoard reindex` to rebuild the catalogue \
         from the archives' manifests",
        path.display()
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "the database {} cannot be written ({detail}). Check that it and its directory are \
         writable by this user, not immutable (lsattr), and not on a read-only or full \
         filesystem",
        path.display()
    )]
    ReadOnly { path: PathBuf, detail: String },
    #[error(
        "the database {path} has schema version {found}, but this hoard knows versions up to {supported} only: \
         run the newer hoard that wrote it, or restore an older copy of the data directory"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// How long a statement waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
}

impl Db {
    /// Opens (creating if needed) the database, checks it can be read and written, and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db> {
        check(path)?;
        let manager = Manager {
            path: path.to_path_buf(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(24)
            .min_idle(Some(2))
            .connection_timeout(Duration::from_secs(30))
            .test_on_check_out(false)
            .build(manager)?;
        let mut conn = pool.get()?;
        // WAL is a property of the file: set once here, not by every new connection (changing
        // the journal mode needs a lock another connection may hold).
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        migrate::run(&mut conn, path)?;
        Ok(Db { pool })
    }

    pub fn conn(&self) -> Result<Conn> {
        Ok(self.pool.get()?)
    }
}

/// How long the start-up integrity check may take before it is cut short (a large database
/// on a slow disk): the check is a safety net, not a reason to keep hoard from starting.
const QUICK_CHECK_LIMIT: Duration = Duration::from_secs(5);

/// Refuses a database that is damaged or cannot be written, at once and with a clear reason,
/// instead of starting and failing every request: `PRAGMA quick_check`, bounded in time, then
/// a write.
fn check(path: &Path) -> Result<()> {
    let damaged = |detail: String| Error::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    let read_only = |detail: String| Error::ReadOnly {
        path: path.to_path_buf(),
        detail,
    };
    let mut c = Connection::open(path).map_err(|e| read_only(e.to_string()))?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    let interrupt = c.get_interrupt_handle();
    let (done, waiting) = std::sync::mpsc::channel::<()>();
    let timer = std::thread::spawn(move || {
        if waiting.recv_timeout(QUICK_CHECK_LIMIT).is_err() {
            interrupt.interrupt();
        }
    });
    let checked = c.query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0));
    let _ = done.send(());
    let _ = timer.join();
    match checked {
        Ok(result) if result == "ok" => {}
        Ok(problem) => return Err(damaged(problem)),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            log::warn!(
                "the integrity check of {} took over {} s and was cut short",
                path.display(),
                QUICK_CHECK_LIMIT.as_secs()
            );
        }
        Err(rusqlite::Error::SqliteFailure(e, detail))
            if matches!(
                e.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            return Err(damaged(detail.unwrap_or_else(|| e.to_string())));
        }
        Err(e) => return Err(e.into()),
    }
    if c.is_readonly(rusqlite::MAIN_DB)? {
        return Err(read_only("it opens read-only".into()));
    }
    // Rewriting the schema version in place writes the file without changing anything. The
    // write lock is taken first: another hoard may be writing, and a read transaction that
    // turns into a write then fails at once instead of waiting its turn.
    let written = (|| {
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()
    })();
    match written {
        Err(rusqlite::Error::SqliteFailure(e, detail))
            if matches!(
                e.code,
                rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::PermissionDenied
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::DiskFull
            ) =>
        {
            Err(read_only(detail.unwrap_or_else(|| e.to_string())))
        }
        other => Ok(other?),
    }
}

/// Whether an error is a UNIQUE constraint violation (a duplicate name, path...).
pub fn is_unique_violation(err: &Error) -> bool {
    matches!(err, Error::Sqlite(rusqlite::Error::SqliteFailure(e, _))
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}
