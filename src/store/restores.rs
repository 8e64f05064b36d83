use super::Result;
use crate::model::{ServerStatus, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// The step a restore has reached; see `sql/0002_restores.sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Queued,
    Extracting,
    Evacuating,
    Installing,
    Overlaying,
    Cleanup,
    Done,
    Failed,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Queued => "queued",
            Step::Extracting => "extracting",
            Step::Evacuating => "evacuating",
            Step::Installing => "installing",
            Step::Overlaying => "overlaying",
            Step::Cleanup => "cleanup",
            Step::Done => "done",
            Step::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Step {
        match s {
            "queued" => Step::Queued,
            "extracting" => Step::Extracting,
            "evacuating" => Step::Evacuating,
            "installing" => Step::Installing,
            "overlaying" => Step::Overlaying,
            "cleanup" => Step::Cleanup,
            "done" => Step::Done,
            _ => Step::Failed,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Restore {
    pub id: i64,
    pub uuid: String,
    pub server_id: i64,
    pub backup_id: Option<i64>,
    pub backup_uuid: String,
    pub user_id: Option<i64>,
    pub truncate: bool,
    /// Asked to restore the archive even if it does not match its SHA-256.
    pub allow_corrupt: bool,
    pub step: Step,
    pub staging_path: String,
    pub trash_path: String,
    pub bytes_processed: i64,
    pub bytes_total: i64,
    pub started_at: Timestamp,
    pub heartbeat_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    /// What a failed hook printed: for the server's owner and admins only.
    pub error_detail: Option<String>,
    /// The server's status before the restore, which it gets back at the end.
    pub server_status: Option<ServerStatus>,
    /// Why the restored files may not be the backup's as it was made (the archive did not
    /// match its SHA-256 and was restored as asked).
    pub warning: Option<String>,
}

const COLUMNS: &str = "id, uuid, server_id, backup_id, backup_uuid, user_id, truncate, step, \
    staging_path, trash_path, bytes_processed, bytes_total, started_at, heartbeat_at, \
    finished_at, error, error_detail, server_status, allow_corrupt, warning";

fn from_row(r: &Row) -> rusqlite::Result<Restore> {
    let step: String = r.get(7)?;
    let server_status: Option<String> = r.get(17)?;
    Ok(Restore {
        id: r.get(0)?,
        uuid: r.get(1)?,
        server_id: r.get(2)?,
        backup_id: r.get(3)?,
        backup_uuid: r.get(4)?,
        user_id: r.get(5)?,
        truncate: r.get(6)?,
        step: Step::parse(&step),
        staging_path: r.get(8)?,
        trash_path: r.get(9)?,
        bytes_processed: r.get(10)?,
        bytes_total: r.get(11)?,
        started_at: r.get(12)?,
        heartbeat_at: r.get(13)?,
        finished_at: r.get(14)?,
        error: r.get(15)?,
        error_detail: r.get(16)?,
        server_status: server_status.and_then(|s| s.parse().ok()),
        allow_corrupt: r.get(18)?,
        warning: r.get(19)?,
    })
}

impl Restore {
    /// The work directory (staging and trash live in it).
    pub fn work_dir(&self) -> std::path::PathBuf {
        let staging = std::path::Path::new(&self.staging_path);
        staging.parent().unwrap_or(staging).to_path_buf()
    }
}

pub struct NewRestore<'a> {
    pub uuid: &'a str,
    pub server_id: i64,
    pub backup_id: i64,
    pub backup_uuid: &'a str,
    pub user_id: Option<i64>,
    pub truncate: bool,
    pub allow_corrupt: bool,
    pub staging_path: &'a str,
    pub trash_path: &'a str,
    pub bytes_total: i64,
    pub server_status: Option<ServerStatus>,
    pub now: Timestamp,
}

pub fn insert(c: &Connection, r: &NewRestore) -> Result<Restore> {
    c.execute(
        "INSERT INTO restores (uuid, server_id, backup_id, backup_uuid, user_id, truncate,
             allow_corrupt, step, staging_path, trash_path, bytes_total, started_at,
             heartbeat_at, server_status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?10, ?11, ?11, ?12)",
        params![
            r.uuid,
            r.server_id,
            r.backup_id,
            r.backup_uuid,
            r.user_id,
            r.truncate,
            r.allow_corrupt,
            r.staging_path,
            r.trash_path,
            r.bytes_total,
            r.now,
            r.server_status.map(|s| s.as_str())
        ],
    )?;
    Ok(by_id(c, c.last_insert_rowid())?.expect("row just inserted"))
}

pub fn by_id(c: &Connection, id: i64) -> Result<Option<Restore>> {
    let sql = format!("SELECT {COLUMNS} FROM restores WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

/// The restores with these ids, in no particular order.
pub fn by_ids(c: &Connection, ids: &[i64]) -> Result<Vec<Restore>> {
    // Driven by the list, so that no temporary index is built for it.
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT value AS wanted FROM json_each(?1))
         JOIN restores ON restores.id = wanted"
    );
    let ids = serde_json::to_string(ids).expect("integers serialise");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([ids], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether an unfinished restore reads this backup.
pub fn reading_backup(c: &Connection, backup_id: i64) -> Result<bool> {
    Ok(c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM restores WHERE backup_id = ?1 AND step NOT IN ('done', 'failed'))",
    )?
    .query_row([backup_id], |r| r.get(0))?)
}

/// Every unfinished restore, with the process that runs it.
pub fn unfinished(c: &Connection) -> Result<Vec<(Restore, Option<i64>)>> {
    let sql =
        format!("SELECT {COLUMNS}, job_pid FROM restores WHERE step NOT IN ('done', 'failed')");
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map([], |r| Ok((from_row(r)?, r.get(20)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every restore that succeeded: their work directories, normally removed right after,
/// may remain if hoard stopped first.
/// Returned with the process that ran them.
pub fn succeeded(c: &Connection) -> Result<Vec<(Restore, Option<i64>)>> {
    let sql = format!("SELECT {COLUMNS}, job_pid FROM restores WHERE step = 'done'");
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map([], |r| Ok((from_row(r)?, r.get(20)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set_step(c: &Connection, id: i64, step: Step) -> Result<()> {
    c.execute(
        "UPDATE restores SET step = ?2 WHERE id = ?1",
        params![id, step.as_str()],
    )?;
    Ok(())
}

pub fn set_warning(c: &Connection, id: i64, warning: &str) -> Result<()> {
    c.execute(
        "UPDATE restores SET warning = ?2 WHERE id = ?1",
        params![id, warning],
    )?;
    Ok(())
}

pub fn finish(
    c: &Connection,
    id: i64,
    step: Step,
    error: Option<&str>,
    error_detail: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    c.execute(
        "UPDATE restores SET step = ?2, error = ?3, error_detail = ?4, finished_at = ?5,
             heartbeat_at = NULL
         WHERE id = ?1",
        params![id, step.as_str(), error, error_detail, now],
    )?;
    Ok(())
}

pub fn heartbeat(c: &Connection, id: i64, bytes_processed: i64, now: Timestamp) -> Result<()> {
    c.prepare_cached(
        "UPDATE restores SET bytes_processed = ?2, heartbeat_at = ?3
         WHERE id = ?1 AND step NOT IN ('done', 'failed')",
    )?
    .execute(params![id, bytes_processed, now])?;
    Ok(())
}

pub fn set_pid(c: &Connection, id: i64, pid: Option<u32>) -> Result<()> {
    c.execute(
        "UPDATE restores SET job_pid = ?2 WHERE id = ?1",
        params![id, pid],
    )?;
    Ok(())
}

/// Takes over an unfinished restore left by process `from` for process `to`, unless another
/// process took it first (or it moved on): true when this call took it.
pub fn claim(
    c: &Connection,
    id: i64,
    step: Step,
    from: Option<i64>,
    to: u32,
    now: Timestamp,
) -> Result<bool> {
    let changed = c.execute(
        "UPDATE restores SET job_pid = ?4, heartbeat_at = ?5
         WHERE id = ?1 AND step = ?2 AND job_pid IS ?3",
        params![id, step.as_str(), from, to, now],
    )?;
    Ok(changed == 1)
}
