//! The verification job: re-reads a backup's archive and compares its size and SHA-256
//! with what was recorded when it was made.

use super::Tracker;
use crate::app::App;
use crate::error::{Error, Result};
use crate::model::{Integrity, now};
use crate::store;
use std::io;

/// What reading the archive found.
enum Found {
    Matches,
    Differs(Integrity, String),
    /// hoard is stopping: nothing is concluded.
    Cancelled,
}

pub fn run(app: &App, id: i64, tracker: &Tracker) {
    if let Err(e) = verify(app, id, tracker) {
        log::error!("cannot verify backup {id}: {e}");
        abandon(app, id).unwrap_or_else(|e| log::error!("cannot record it: {e}"));
    }
}

fn verify(app: &App, id: i64, tracker: &Tracker) -> Result<()> {
    let (backup, server) = {
        let conn = app.db.conn()?;
        let Some(backup) = store::backups::by_id(&conn, id)? else {
            return Ok(());
        };
        let server = store::servers::by_id(&conn, backup.server_id)?
            .ok_or_else(|| Error::not_found("server"))?;
        (backup, server)
    };
    let path = app.storage().archive_path(&server.uuid, &backup);
    let expected = backup.sha256_hash.clone().unwrap_or_default();
    let found = match std::fs::File::open(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Found::Differs(
            Integrity::Missing,
            format!("{} does not exist", path.display()),
        ),
        Err(e) => {
            return Err(Error::internal(format!(
                "cannot open {}: {e}",
                path.display()
            )));
        }
        Ok(file) => {
            match crate::archive::hash_file(file, &tracker.progress.bytes, app.jobs.cancel_flag()) {
                Err(e) => {
                    return Err(Error::internal(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                }
                Ok(None) => Found::Cancelled,
                Ok(Some((_, size))) if size != backup.bytes as u64 => Found::Differs(
                    Integrity::Missing,
                    format!("it holds {size} bytes, not the {} recorded", backup.bytes),
                ),
                Ok(Some((digest, _))) if digest != expected => Found::Differs(
                    Integrity::Corrupt,
                    format!("its SHA-256 is {digest}, not the {expected} recorded"),
                ),
                Ok(Some(_)) => Found::Matches,
            }
        }
    };
    let conn = app.db.conn()?;
    match found {
        Found::Cancelled => store::backups::verify_stopped(&conn, id)?,
        Found::Matches => {
            log::info!("backup {}: the archive matches its SHA-256", backup.uuid);
            store::backups::verified(&conn, id, None, now())?;
        }
        Found::Differs(integrity, why) => {
            log::error!(
                "backup {} of server {}: the archive is {}: {why}",
                backup.uuid,
                server.short_id,
                integrity.as_str()
            );
            store::backups::verified(&conn, id, Some(integrity), now())?;
        }
    }
    Ok(())
}

/// Records that a verification stopped without a result.
pub fn abandon(app: &App, id: i64) -> Result<()> {
    store::backups::verify_stopped(&*app.db.conn()?, id)?;
    Ok(())
}
