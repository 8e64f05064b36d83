use super::Result;
use crate::model::{Actor, Backup, BackupStatus, Compression, Integrity, Progress, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "id, uuid, server_id, name, ignored_files, status, is_locked, compression, \
    sha256_hash, bytes, storage_path, error, warnings, content_bytes, content_files, \
    bytes_processed, bytes_total, files_processed, files_total, started_at, heartbeat_at, \
    created_at, completed_at, unreadable, integrity, verified_at, verify_heartbeat_at, verify_bytes, \
    error_detail, unreadable_paths, is_scheduled, created_by, schedule_id";
/// The position of the first column a query selects after [`COLUMNS`].
const EXTRA: usize = 33;

/// A verification whose heartbeat is older than this is no longer running.
const VERIFY_DEAD_AFTER_SECS: i64 = crate::jobs::DEAD_AFTER_SECS;

fn json_list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

/// The status users see: the job's outcome (the `status` column), refined for completed
/// backups by what they skipped and what the last check of the archive found.
fn status(
    job: &str,
    unreadable: i64,
    integrity: Option<Integrity>,
) -> std::result::Result<BackupStatus, String> {
    Ok(match (job, integrity) {
        ("creating", _) => BackupStatus::Creating,
        ("failed", _) => BackupStatus::Failed,
        ("completed", Some(Integrity::Missing)) => BackupStatus::Missing,
        ("completed", Some(Integrity::Corrupt)) => BackupStatus::Corrupt,
        ("completed", None) if unreadable > 0 => BackupStatus::CompletedWithWarnings,
        ("completed", None) => BackupStatus::Completed,
        (other, _) => return Err(format!("unknown backup status '{other}'")),
    })
}

fn from_row(r: &Row) -> rusqlite::Result<Backup> {
    let job: String = r.get(5)?;
    let compression: String = r.get(7)?;
    let unreadable: i64 = r.get(23)?;
    let integrity: Option<String> = r.get(24)?;
    let integrity = integrity.and_then(|i| i.parse().ok());
    let verify_heartbeat: Option<Timestamp> = r.get(26)?;
    let verifying = verify_heartbeat
        .filter(|t| crate::model::now() - t <= VERIFY_DEAD_AFTER_SECS)
        .map(|_| r.get(27))
        .transpose()?;
    Ok(Backup {
        id: r.get(0)?,
        uuid: r.get(1)?,
        server_id: r.get(2)?,
        name: r.get(3)?,
        ignored_files: json_list(r.get(4)?),
        status: status(&job, unreadable, integrity).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?,
        is_locked: r.get(6)?,
        compression: compression.parse().unwrap_or_default(),
        sha256_hash: r.get(8)?,
        bytes: r.get(9)?,
        storage_path: r.get(10)?,
        error: r.get(11)?,
        warnings: json_list(r.get(12)?),
        content_bytes: r.get(13)?,
        content_files: r.get(14)?,
        progress: Progress {
            bytes_processed: r.get(15)?,
            bytes_total: r.get(16)?,
            files_processed: r.get(17)?,
            files_total: r.get(18)?,
            started_at: r.get(19)?,
        },
        heartbeat_at: r.get(20)?,
        created_at: r.get(21)?,
        completed_at: r.get(22)?,
        error_detail: r.get(28)?,
        unreadable_paths: json_list(r.get(29)?),
        is_scheduled: r.get(30)?,
        requested_by: Actor::requester(r.get(31)?, r.get(32)?),
        unreadable,
        verified_at: r.get(25)?,
        verifying,
    })
}

/// The fields of a backup being requested.
pub struct NewBackup<'a> {
    pub uuid: &'a str,
    pub server_id: i64,
    pub created_by: Option<i64>,
    pub name: &'a str,
    pub ignored_files: &'a [String],
    pub is_locked: bool,
    pub compression: Compression,
    /// What the server directory held when the backup was requested, for progress.
    pub totals: Progress,
    /// The fingerprint of that tree (see [`crate::archive::Fingerprint`]).
    pub fingerprint: &'a str,
    pub is_scheduled: bool,
    pub schedule_id: Option<i64>,
    pub now: Timestamp,
}

/// Inserts a backup in status `creating`, with a heartbeat so it is not taken for dead
/// while it waits for a worker.
pub fn insert_creating(c: &Connection, b: &NewBackup) -> Result<Backup> {
    c.execute(
        "INSERT INTO backups (uuid, server_id, created_by, name, ignored_files, status, is_locked,
             compression, bytes_total, files_total, heartbeat_at, created_at, fingerprint,
             is_scheduled, schedule_id)
         VALUES (?1, ?2, ?3, ?4, ?5, 'creating', ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13)",
        params![
            b.uuid,
            b.server_id,
            b.created_by,
            b.name,
            serde_json::to_string(b.ignored_files).expect("strings serialise"),
            b.is_locked,
            b.compression.as_str(),
            b.totals.bytes_total,
            b.totals.files_total,
            b.now,
            b.fingerprint,
            b.is_scheduled,
            b.schedule_id,
        ],
    )?;
    Ok(by_id(c, c.last_insert_rowid())?.expect("row just inserted"))
}

pub fn by_id(c: &Connection, id: i64) -> Result<Option<Backup>> {
    let sql = format!("SELECT {COLUMNS} FROM backups WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

pub fn by_uuid(c: &Connection, uuid: &str) -> Result<Option<Backup>> {
    let sql = format!("SELECT {COLUMNS} FROM backups WHERE uuid = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([uuid], from_row)
        .optional()?)
}

/// A backup of one server: a backup of another server is not found.
pub fn for_server(c: &Connection, server_id: i64, uuid: &str) -> Result<Option<Backup>> {
    let sql = format!("SELECT {COLUMNS} FROM backups WHERE server_id = ?1 AND uuid = ?2");
    Ok(c.prepare_cached(&sql)?
        .query_row(params![server_id, uuid], from_row)
        .optional()?)
}

/// The backups with these ids, in no particular order.
pub fn by_ids(c: &Connection, ids: &[i64]) -> Result<Vec<Backup>> {
    // Driven by the list, so that no temporary index is built for it.
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT value AS wanted FROM json_each(?1))
         JOIN backups ON backups.id = wanted"
    );
    let ids = serde_json::to_string(ids).expect("integers serialise");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([ids], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One page of a server's backups, newest first.
pub fn page(c: &Connection, server_id: i64, limit: i64, offset: i64) -> Result<Vec<Backup>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM backups WHERE server_id = ?1
         ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![server_id, limit, offset], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn all_for_server(c: &Connection, server_id: i64) -> Result<Vec<Backup>> {
    page(c, server_id, i64::MAX, 0)
}

pub fn count(c: &Connection, server_id: i64) -> Result<i64> {
    Ok(
        c.prepare_cached("SELECT COUNT(*) FROM backups WHERE server_id = ?1")?
            .query_row([server_id], |r| r.get(0))?,
    )
}

/// Backups that count against the limit: creating or completed.
pub fn count_live(c: &Connection, server_id: i64) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT COUNT(*) FROM backups WHERE server_id = ?1 AND status != 'failed'",
    )?
    .query_row([server_id], |r| r.get(0))?)
}

pub fn count_creating(c: &Connection, server_id: i64) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT COUNT(*) FROM backups WHERE server_id = ?1 AND status = 'creating'",
    )?
    .query_row([server_id], |r| r.get(0))?)
}

/// Completed backups that are not locked: what rotation may delete to make room.
pub fn count_rotatable(c: &Connection, server_id: i64) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT COUNT(*) FROM backups WHERE server_id = ?1 AND status = 'completed' AND is_locked = 0",
    )?
    .query_row([server_id], |r| r.get(0))?)
}

/// Total size of a server's locked archives: what rotation cannot make room from.
pub fn locked_bytes(c: &Connection, server_id: i64) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT COALESCE(SUM(bytes), 0) FROM backups
         WHERE server_id = ?1 AND status = 'completed' AND is_locked = 1",
    )?
    .query_row([server_id], |r| r.get(0))?)
}

/// Each server's completed archives' total size and its newest one's size, by server id:
/// every server's, or only `only`'s.
pub fn usage(
    c: &Connection,
    only: Option<i64>,
) -> Result<std::collections::HashMap<i64, (i64, i64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT server_id, SUM(bytes),
             (SELECT newest.bytes FROM backups newest
              WHERE newest.server_id = b.server_id AND newest.status = 'completed'
              ORDER BY newest.created_at DESC, newest.id DESC LIMIT 1)
         FROM backups b WHERE status = 'completed' AND (?1 IS NULL OR server_id = ?1)
         GROUP BY server_id",
    )?;
    let rows = stmt.query_map([only], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Total size of a server's completed archives.
pub fn completed_bytes(c: &Connection, server_id: i64) -> Result<i64> {
    Ok(c.prepare_cached(
        "SELECT COALESCE(SUM(bytes), 0) FROM backups WHERE server_id = ?1 AND status = 'completed'",
    )?
    .query_row([server_id], |r| r.get(0))?)
}

/// The fingerprint of the server's newest backup that completed and whose archive was last
/// found sound, made with exactly these exclusion patterns.
pub fn last_good_fingerprint(
    c: &Connection,
    server_id: i64,
    ignored_files: &[String],
) -> Result<Option<String>> {
    Ok(c.prepare_cached(
        "SELECT fingerprint FROM backups
         WHERE server_id = ?1 AND status = 'completed' AND integrity IS NULL AND ignored_files = ?2
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )?
    .query_row(
        params![
            server_id,
            serde_json::to_string(ignored_files).expect("strings serialise")
        ],
        |r| r.get(0),
    )
    .optional()?
    .flatten())
}

/// Records that archiving began (after the hooks), the start of the ETA's clock.
pub fn mark_started(c: &Connection, id: i64, now: Timestamp) -> Result<()> {
    c.execute(
        "UPDATE backups SET started_at = ?2, heartbeat_at = ?2 WHERE id = ?1 AND status = 'creating'",
        params![id, now],
    )?;
    Ok(())
}

/// Records progress and proves the job is alive.
pub fn heartbeat(
    c: &Connection,
    id: i64,
    bytes_processed: i64,
    files_processed: i64,
    now: Timestamp,
) -> Result<()> {
    c.prepare_cached(
        "UPDATE backups SET bytes_processed = ?2, files_processed = ?3, heartbeat_at = ?4
         WHERE id = ?1 AND status = 'creating'",
    )?
    .execute(params![id, bytes_processed, files_processed, now])?;
    Ok(())
}

/// What a finished archive records.
pub struct Completion<'a> {
    pub sha256_hash: &'a str,
    pub bytes: i64,
    pub storage_path: &'a str,
    pub warnings: &'a [String],
    /// Entries left out (or archived short) because they could not be read.
    pub unreadable_paths: &'a [String],
    pub content_bytes: i64,
    pub content_files: i64,
    pub now: Timestamp,
}

pub fn mark_completed(c: &Connection, id: i64, done: &Completion) -> Result<()> {
    c.execute(
        "UPDATE backups SET status = 'completed', sha256_hash = ?2, bytes = ?3, storage_path = ?4,
             warnings = ?5, content_bytes = ?6, content_files = ?7, completed_at = ?8,
             verified_at = ?8, unreadable = ?9, unreadable_paths = ?10,
             bytes_processed = bytes_total, files_processed = files_total, heartbeat_at = NULL
         WHERE id = ?1",
        params![
            id,
            done.sha256_hash,
            done.bytes,
            done.storage_path,
            serde_json::to_string(done.warnings).expect("strings serialise"),
            done.content_bytes,
            done.content_files,
            done.now,
            done.unreadable_paths.len() as i64,
            serde_json::to_string(done.unreadable_paths).expect("strings serialise"),
        ],
    )?;
    Ok(())
}

/// Why a backup failed.
pub struct Failure<'a> {
    pub error: &'a str,
    /// What a failed hook printed, for the owner and admins only.
    pub error_detail: Option<&'a str>,
    pub warnings: &'a [String],
    /// When the job gave up: kept in `completed_at`, which the API shows for failed
    /// backups only as Pterodactyl does (`api_compat`).
    pub ended_at: Timestamp,
}

pub fn mark_failed(c: &Connection, id: i64, failure: &Failure) -> Result<()> {
    c.execute(
        "UPDATE backups SET status = 'failed', error = ?2, error_detail = ?3, warnings = ?4,
             heartbeat_at = NULL, sha256_hash = NULL, bytes = 0, storage_path = NULL,
             completed_at = ?5
         WHERE id = ?1",
        params![
            id,
            failure.error,
            failure.error_detail,
            serde_json::to_string(failure.warnings).expect("strings serialise"),
            failure.ended_at,
        ],
    )?;
    Ok(())
}

/// Every backup still `creating`, with the process that runs it.
pub fn creating(c: &Connection) -> Result<Vec<(Backup, Option<i64>)>> {
    let sql = format!("SELECT {COLUMNS}, job_pid FROM backups WHERE status = 'creating'");
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map([], |r| Ok((from_row(r)?, r.get(EXTRA)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records which process runs the job.
pub fn set_pid(c: &Connection, id: i64, pid: Option<u32>) -> Result<()> {
    c.execute(
        "UPDATE backups SET job_pid = ?2 WHERE id = ?1",
        params![id, pid],
    )?;
    Ok(())
}

pub fn set_locked(c: &Connection, id: i64, locked: bool) -> Result<()> {
    c.execute(
        "UPDATE backups SET is_locked = ?2 WHERE id = ?1",
        params![id, locked],
    )?;
    Ok(())
}

pub fn set_name(c: &Connection, id: i64, name: &str) -> Result<()> {
    c.execute(
        "UPDATE backups SET name = ?2 WHERE id = ?1",
        params![id, name],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM backups WHERE id = ?1", [id])?;
    Ok(())
}

/// Every completed backup, with the uuid of its server: what the storage directory should
/// hold.
pub fn completed(c: &Connection) -> Result<Vec<(Backup, String)>> {
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT uuid FROM servers WHERE servers.id = backups.server_id)
         FROM backups WHERE status = 'completed' ORDER BY id"
    );
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map([], |r| Ok((from_row(r)?, r.get(EXTRA)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every backup's uuid and status column (`creating`, `completed`, `failed`).
pub fn states(c: &Connection) -> Result<std::collections::HashMap<String, String>> {
    let mut stmt = c.prepare("SELECT uuid, status FROM backups")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records what a check of the archive found: None when it is as recorded.
pub fn set_integrity(c: &Connection, id: i64, integrity: Option<Integrity>) -> Result<()> {
    c.execute(
        "UPDATE backups SET integrity = ?2 WHERE id = ?1",
        params![id, integrity.map(|i| i.as_str())],
    )?;
    Ok(())
}

/// Records that a verification of the archive was asked for: it counts as running from now.
pub fn verify_started(c: &Connection, id: i64, now: Timestamp) -> Result<()> {
    c.execute(
        "UPDATE backups SET verify_heartbeat_at = ?2, verify_bytes = 0 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// Records how far a running verification read; one that already stopped stays stopped.
pub fn verify_heartbeat(c: &Connection, id: i64, bytes: i64, now: Timestamp) -> Result<()> {
    c.prepare_cached(
        "UPDATE backups SET verify_heartbeat_at = ?2, verify_bytes = ?3
         WHERE id = ?1 AND verify_heartbeat_at IS NOT NULL",
    )?
    .execute(params![id, now, bytes])?;
    Ok(())
}

/// Records that a verification stopped without a result.
pub fn verify_stopped(c: &Connection, id: i64) -> Result<()> {
    c.execute(
        "UPDATE backups SET verify_heartbeat_at = NULL, verify_bytes = 0 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// Records a finished verification: the archive matched (`None`) or not.
pub fn verified(
    c: &Connection,
    id: i64,
    integrity: Option<Integrity>,
    now: Timestamp,
) -> Result<()> {
    c.execute(
        "UPDATE backups SET integrity = ?2, verify_heartbeat_at = NULL, verify_bytes = 0,
             verified_at = CASE WHEN ?2 IS NULL THEN ?3 ELSE verified_at END
         WHERE id = ?1",
        params![id, integrity.map(|i| i.as_str()), now],
    )?;
    Ok(())
}

/// The completed backup whose archive was checked longest ago, if that was before `before`
/// and no verification of it runs: the next for the verification schedule.
pub fn next_to_verify(c: &Connection, before: Timestamp, now: Timestamp) -> Result<Option<Backup>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM backups
         WHERE status = 'completed' AND integrity IS NULL
           AND COALESCE(verified_at, completed_at, created_at) < ?1
           AND (verify_heartbeat_at IS NULL OR verify_heartbeat_at < ?2)
         ORDER BY COALESCE(verified_at, completed_at, created_at), id LIMIT 1"
    );
    Ok(c.prepare_cached(&sql)?
        .query_row(params![before, now - VERIFY_DEAD_AFTER_SECS], from_row)
        .optional()?)
}

/// A completed backup rebuilt from its manifest by `hoard reindex`.
pub struct Recovered<'a> {
    pub uuid: &'a str,
    pub server_id: i64,
    pub name: &'a str,
    pub ignored_files: &'a [String],
    pub is_locked: bool,
    pub compression: Compression,
    pub sha256_hash: &'a str,
    pub bytes: i64,
    pub storage_path: &'a str,
    pub warnings: &'a [String],
    pub unreadable: i64,
    pub unreadable_paths: &'a [String],
    pub content_bytes: i64,
    pub content_files: i64,
    pub created_at: Timestamp,
    pub completed_at: Timestamp,
    pub integrity: Option<Integrity>,
    pub verified_at: Option<Timestamp>,
    pub is_scheduled: bool,
}

pub fn insert_recovered(c: &Connection, b: &Recovered) -> Result<()> {
    c.execute(
        "INSERT INTO backups (uuid, server_id, name, ignored_files, status, is_locked, compression,
             sha256_hash, bytes, storage_path, warnings, unreadable, content_bytes, content_files,
             created_at, completed_at, integrity, verified_at, unreadable_paths, is_scheduled)
         VALUES (?1, ?2, ?3, ?4, 'completed', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
             ?16, ?17, ?18, ?19)",
        params![
            b.uuid,
            b.server_id,
            b.name,
            serde_json::to_string(b.ignored_files).expect("strings serialise"),
            b.is_locked,
            b.compression.as_str(),
            b.sha256_hash,
            b.bytes,
            b.storage_path,
            serde_json::to_string(b.warnings).expect("strings serialise"),
            b.unreadable,
            b.content_bytes,
            b.content_files,
            b.created_at,
            b.completed_at,
            b.integrity.map(|i| i.as_str()),
            b.verified_at,
            serde_json::to_string(b.unreadable_paths).expect("strings serialise"),
            b.is_scheduled,
        ],
    )?;
    Ok(())
}
