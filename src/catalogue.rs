//! The catalogue (the database's servers and backups) against the storage directory: at
//! every start the two are made to agree, and `hoard reindex` rebuilds the catalogue from
//! the manifests beside the archives when the database was lost.

use crate::app::App;
use crate::error::{Error, Result};
use crate::model::{Integrity, now};
use crate::storage::{Manifest, Stored};
use crate::store;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64};

/// Makes the storage directory agree with the catalogue: the files of failed backups and
/// partial files nobody writes any more are removed; archives and manifests the catalogue
/// does not know are reported, never deleted (`hoard reindex` adds them back). Run at start.
/// Backups still `creating` are left alone: their job may run in another process, and the
/// reaper removes the files of those whose job died when it fails them.
pub fn reconcile(app: &App) -> Result<()> {
    let storage = app.storage();
    let states = store::backups::states(&*app.db.conn()?)?;
    let mut unknown = BTreeSet::new();
    for (server_uuid, stored, path) in storage.list()? {
        let state = states.get(stored.backup_uuid()).map(String::as_str);
        let remove = match (&stored, state) {
            (_, Some("creating")) => false,
            (Stored::Partial(_), _) | (_, Some("failed")) => true,
            (_, Some(_)) => false,
            (_, None) => {
                unknown.insert((server_uuid, stored.backup_uuid().to_string()));
                false
            }
        };
        if remove {
            log::info!(
                "removing {}: left over from a backup that did not complete",
                path.display()
            );
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
    for (server_uuid, backup_uuid) in unknown {
        match storage.read_manifest(&server_uuid, &backup_uuid) {
            Ok(_) => log::warn!(
                "backup {backup_uuid} (server {server_uuid}) is in {} but not in the catalogue: run `hoard reindex` to add it back",
                storage.root().display()
            ),
            Err(e) => log::warn!(
                "{}/{server_uuid} holds files of backup {backup_uuid}, which is not in the catalogue and has no readable manifest ({e}): `hoard reindex` cannot add it back; move the files away if they are not wanted",
                storage.root().display()
            ),
        }
    }
    crate::backups::look_at_archives(app)
}

/// What `hoard reindex` did.
#[derive(Debug, Default)]
pub struct Report {
    /// Servers put back, as "name (uuid)".
    pub servers_added: Vec<String>,
    pub backups_added: u64,
    /// Backups the catalogue already had.
    pub backups_known: u64,
    /// Backups put back whose archive is missing, the wrong size or (with verification)
    /// does not match its hash: listed as `missing` or `corrupt`.
    pub damaged: Vec<String>,
    /// Files that could not be put back, and why.
    pub problems: Vec<String>,
}

/// Adds every backup that has a manifest in the storage directory and no row in the
/// catalogue, with its server when that is missing too. Each archive's size is checked, and
/// with `verify_hashes` its SHA-256; a damaged one is added as `missing` or `corrupt`. No
/// file is ever deleted.
pub fn reindex(app: &App, verify_hashes: bool) -> Result<Report> {
    let storage = app.storage();
    let mut report = Report::default();
    let mut servers: HashMap<String, i64> = HashMap::new();
    let mut manifests = BTreeSet::new();
    let files = storage.list()?;
    for (server_uuid, stored, _) in &files {
        if let Stored::Manifest(uuid) = stored {
            manifests.insert((server_uuid.clone(), uuid.clone()));
        }
    }
    for (server_uuid, stored, path) in &files {
        if let Stored::Archive(uuid) = stored
            && !manifests.contains(&(server_uuid.clone(), uuid.clone()))
        {
            report.problems.push(format!(
                "{}: no manifest beside it, so it cannot be put back",
                path.display()
            ));
        }
    }
    for (server_uuid, uuid) in manifests {
        let manifest = match storage.read_manifest(&server_uuid, &uuid) {
            Ok(m) if m.server_uuid == server_uuid && m.uuid == uuid => m,
            Ok(_) => {
                report.problems.push(format!(
                    "the manifest of backup {uuid} names another backup or server"
                ));
                continue;
            }
            Err(e) => {
                report
                    .problems
                    .push(format!("cannot read the manifest of backup {uuid}: {e}"));
                continue;
            }
        };
        let conn = app.db.conn()?;
        if store::backups::by_uuid(&conn, &uuid)?.is_some() {
            report.backups_known += 1;
            continue;
        }
        let server_id = match servers.get(&server_uuid) {
            Some(id) => *id,
            None => match server_for(&conn, &manifest, &mut report) {
                Ok(id) => {
                    servers.insert(server_uuid.clone(), id);
                    id
                }
                Err(e) => {
                    report.problems.push(format!("backup {uuid}: {e}"));
                    continue;
                }
            },
        };
        drop(conn);
        if let Err(e) = put_back(app, &manifest, server_id, verify_hashes, &mut report) {
            report.problems.push(format!("backup {uuid}: {e}"));
        }
    }
    Ok(report)
}

/// The catalogue's id of the manifest's server, put back from the manifest when missing.
fn server_for(c: &store::Connection, m: &Manifest, report: &mut Report) -> Result<i64> {
    if let Some(server) = store::servers::by_uuid(c, &m.server_uuid)? {
        return Ok(server.id);
    }
    let short_id = m.server_uuid.get(..8).unwrap_or(&m.server_uuid).to_string();
    let name = m
        .server_name
        .clone()
        .unwrap_or_else(|| format!("Recovered {short_id}"));
    // Manifests written before they named the server's directory: a path that cannot exist,
    // so that backups of it fail clearly until an admin sets the real one.
    let path = m
        .server_path
        .clone()
        .unwrap_or_else(|| format!("/unknown-path-of-server/{}", m.server_uuid));
    let server = crate::servers::with_defaults(short_id, m.server_uuid.clone(), name.clone(), path);
    let inserted = store::servers::insert(c, &server).map_err(|e| {
        if store::is_unique_violation(&e) {
            Error::internal(format!(
                "its server {} uses the directory {}, which another server in the catalogue has",
                m.server_uuid, server.path
            ))
        } else {
            e.into()
        }
    })?;
    report
        .servers_added
        .push(format!("{name} ({})", inserted.uuid));
    Ok(inserted.id)
}

fn timestamp(text: &str, field: &str) -> Result<i64> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| {
            Error::internal(format!(
                "its manifest's {field} '{text}' is not a time: {e}"
            ))
        })
}

/// Adds one backup from its manifest, after checking its archive.
fn put_back(
    app: &App,
    m: &Manifest,
    server_id: i64,
    verify_hashes: bool,
    report: &mut Report,
) -> Result<()> {
    let storage = app.storage();
    let relative = crate::storage::Storage::relative_path(&m.server_uuid, &m.uuid, m.compression);
    let path = storage
        .resolve(&relative)
        .ok_or_else(|| Error::internal("the manifest names an impossible path"))?;
    let created_at = timestamp(&m.created_at, "created_at")?;
    let completed_at = timestamp(&m.completed_at, "completed_at")?;
    let size = std::fs::metadata(&path)
        .ok()
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len());
    let (integrity, verified_at) = if size != Some(m.bytes) {
        (Some(Integrity::Missing), Some(completed_at))
    } else if verify_hashes {
        let file = std::fs::File::open(&path)?;
        let hashed = crate::archive::hash_file(file, &AtomicU64::new(0), &AtomicBool::new(false))?;
        match hashed {
            Some((digest, _)) if digest == m.sha256_hash => (None, Some(now())),
            _ => (Some(Integrity::Corrupt), Some(completed_at)),
        }
    } else {
        (None, Some(completed_at))
    };
    if let Some(found) = integrity {
        report.damaged.push(format!(
            "backup {} ({}): the archive is {}",
            m.uuid,
            m.name,
            found.as_str()
        ));
    }
    store::backups::insert_recovered(
        &*app.db.conn()?,
        &store::backups::Recovered {
            uuid: &m.uuid,
            server_id,
            name: &m.name,
            ignored_files: &m.ignored_files,
            is_locked: m.is_locked,
            compression: m.compression,
            sha256_hash: &m.sha256_hash,
            bytes: m.bytes as i64,
            storage_path: &relative,
            warnings: &m.warnings,
            unreadable: m.unreadable as i64,
            unreadable_paths: &m.unreadable_paths,
            content_bytes: m.content_bytes as i64,
            content_files: m.files as i64,
            created_at,
            completed_at,
            integrity,
            verified_at,
            is_scheduled: m.is_scheduled,
        },
    )?;
    report.backups_added += 1;
    Ok(())
}
