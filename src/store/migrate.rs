//! Applies the numbered migrations of `sql/` in order, recording the schema version in
//! `PRAGMA user_version`, all inside one transaction so a failed upgrade changes nothing.

use super::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_initial", include_str!("../../sql/0001_initial.sql")),
    ("0002_restores", include_str!("../../sql/0002_restores.sql")),
    (
        "0003_hardening_lesser_points",
        include_str!("../../sql/0003_hardening_lesser_points.sql"),
    ),
    (
        "0004_integrity",
        include_str!("../../sql/0004_integrity.sql"),
    ),
    (
        "0005_unreadable_paths",
        include_str!("../../sql/0005_unreadable_paths.sql"),
    ),
    (
        "0006_restore_allow_corrupt",
        include_str!("../../sql/0006_restore_allow_corrupt.sql"),
    ),
    (
        "0007_schedules_retention",
        include_str!("../../sql/0007_schedules_retention.sql"),
    ),
    (
        "0008_notifications",
        include_str!("../../sql/0008_notifications.sql"),
    ),
    ("0009_revision", include_str!("../../sql/0009_revision.sql")),
    (
        "0010_throttle_starts",
        include_str!("../../sql/0010_throttle_starts.sql"),
    ),
    ("0011_activity", include_str!("../../sql/0011_activity.sql")),
    (
        "0012_revision_more",
        include_str!("../../sql/0012_revision_more.sql"),
    ),
];

pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn run(conn: &mut Connection, path: &Path) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > LATEST_VERSION {
        return Err(Error::TooNew {
            path: path.to_path_buf(),
            found,
            supported: LATEST_VERSION,
        });
    }
    apply_migrations(conn, LATEST_VERSION)
}

/// Applies the migrations between the database's version and `target`. Public so tests can
/// build a database at an older version.
pub fn apply_migrations(conn: &mut Connection, target: i64) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current >= target {
        return Ok(());
    }
    for (name, sql) in &MIGRATIONS[current as usize..target as usize] {
        log::info!("applying database migration {name}");
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(())
}
