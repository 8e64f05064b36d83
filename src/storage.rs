//! Where archives live: `<data>/backups/<server uuid>/<backup uuid>.<ext>`, each with a JSON
//! manifest beside it. Files are written under a temporary name, synced and renamed, and
//! the directory synced, so a crash leaves either the whole archive or none.

use crate::model::{Backup, Compression};
use crate::safefs::{free_space, sync_dir, sync_parent};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The manifest beside each archive: everything `hoard reindex` needs to put the backup
/// (and its server) back in the catalogue when the database is lost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub server_uuid: String,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub server_path: Option<String>,
    pub uuid: String,
    pub name: String,
    #[serde(default)]
    pub ignored_files: Vec<String>,
    pub compression: Compression,
    pub sha256_hash: String,
    pub bytes: u64,
    /// Entries the archive holds.
    pub files: u64,
    pub content_bytes: u64,
    pub is_locked: bool,
    /// RFC 3339, as the API writes times.
    pub created_at: String,
    pub completed_at: String,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Entries left out because they could not be read.
    #[serde(default)]
    pub unreadable: u64,
    /// Their paths, relative to the server directory.
    #[serde(default)]
    pub unreadable_paths: Vec<String>,
    /// Made by a schedule.
    #[serde(default)]
    pub is_scheduled: bool,
}

/// A file of the storage directory, as its name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Archive(String),
    Manifest(String),
    /// An archive or manifest being written: never a whole one.
    Partial(String),
}

impl Stored {
    /// What a file name in a server's directory is, if hoard wrote it.
    pub fn parse(name: &str) -> Option<Stored> {
        let uuid_ok = |u: &str| uuid::Uuid::parse_str(u).is_ok();
        if let Some(u) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".partial"))
        {
            return uuid_ok(u).then(|| Stored::Partial(u.to_string()));
        }
        if let Some(u) = name.strip_suffix(".json.partial") {
            return uuid_ok(u).then(|| Stored::Partial(u.to_string()));
        }
        if let Some(u) = name.strip_suffix(".json") {
            return uuid_ok(u).then(|| Stored::Manifest(u.to_string()));
        }
        [Compression::Zstd, Compression::Gzip, Compression::None]
            .into_iter()
            .find_map(|c| name.strip_suffix(&format!(".{}", c.extension())))
            .filter(|u| uuid_ok(u))
            .map(|u| Stored::Archive(u.to_string()))
    }

    pub fn backup_uuid(&self) -> &str {
        match self {
            Stored::Archive(u) | Stored::Manifest(u) | Stored::Partial(u) => u,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn new(root: PathBuf) -> Storage {
        Storage { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the server's directory if needed.
    pub fn server_dir(&self, server_uuid: &str) -> io::Result<PathBuf> {
        let dir = self.root.join(server_uuid);
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The archive's path relative to the storage root, as recorded in the database.
    pub fn relative_path(server_uuid: &str, backup_uuid: &str, compression: Compression) -> String {
        format!("{server_uuid}/{backup_uuid}.{}", compression.extension())
    }

    /// The absolute path of a recorded relative path; None if it would leave the root.
    pub fn resolve(&self, relative: &str) -> Option<PathBuf> {
        let rel = Path::new(relative);
        let safe = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        safe.then(|| self.root.join(rel))
    }

    /// Where a backup's archive is, from the recorded path or else from the layout.
    pub fn archive_path(&self, server_uuid: &str, backup: &Backup) -> PathBuf {
        backup
            .storage_path
            .as_deref()
            .and_then(|p| self.resolve(p))
            .unwrap_or_else(|| {
                self.root.join(Storage::relative_path(
                    server_uuid,
                    &backup.uuid,
                    backup.compression,
                ))
            })
    }

    /// The archive's size, or None when it is not there as a file.
    pub fn archive_size(&self, server_uuid: &str, backup: &Backup) -> Option<u64> {
        fs::metadata(self.archive_path(server_uuid, backup))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Where an archive is written before it is complete.
    pub fn partial_path(&self, server_uuid: &str, backup_uuid: &str) -> PathBuf {
        self.root
            .join(server_uuid)
            .join(format!(".{backup_uuid}.partial"))
    }

    pub fn manifest_path(&self, server_uuid: &str, backup_uuid: &str) -> PathBuf {
        self.root
            .join(server_uuid)
            .join(format!("{backup_uuid}.json"))
    }

    /// Moves a finished, synced file into place and makes the rename durable.
    pub fn publish(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)?;
        sync_parent(to)
    }

    /// Writes the manifest beside the archive, durably.
    pub fn write_manifest(&self, manifest: &Manifest) -> io::Result<()> {
        let path = self.manifest_path(&manifest.server_uuid, &manifest.uuid);
        let tmp = path.with_extension("json.partial");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(
            serde_json::to_string_pretty(manifest)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        file.sync_all()?;
        drop(file);
        self.publish(&tmp, &path)
    }

    pub fn read_manifest(&self, server_uuid: &str, backup_uuid: &str) -> io::Result<Manifest> {
        let text = fs::read(self.manifest_path(server_uuid, backup_uuid))?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Removes a backup's archive, manifest and any partial file; missing files are fine.
    /// The archive's place comes from the layout when no path was recorded: a crash can
    /// publish it before its path is recorded.
    pub fn remove(&self, server_uuid: &str, backup: &Backup) -> io::Result<()> {
        let paths = [
            self.partial_path(server_uuid, &backup.uuid),
            self.manifest_path(server_uuid, &backup.uuid),
            self.manifest_path(server_uuid, &backup.uuid)
                .with_extension("json.partial"),
            self.archive_path(server_uuid, backup),
        ];
        for path in paths {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let dir = self.root.join(server_uuid);
        if dir.exists() {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Every file hoard wrote in the storage directory: (server uuid, what, path).
    pub fn list(&self) -> io::Result<Vec<(String, Stored, PathBuf)>> {
        let mut found = Vec::new();
        let servers = match fs::read_dir(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            other => other?,
        };
        for server in servers {
            let server = server?;
            let Some(server_uuid) = server.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if uuid::Uuid::parse_str(&server_uuid).is_err() || !server.file_type()?.is_dir() {
                continue;
            }
            for file in fs::read_dir(server.path())? {
                let file = file?;
                if let Some(stored) = file.file_name().to_str().and_then(Stored::parse) {
                    found.push((server_uuid.clone(), stored, file.path()));
                }
            }
        }
        found.sort_by(|a, b| a.2.cmp(&b.2));
        Ok(found)
    }

    /// Removes the server's directory if nothing is left in it.
    pub fn remove_server_dir(&self, server_uuid: &str) {
        let _ = fs::remove_dir(self.root.join(server_uuid));
    }

    /// Bytes free for an unprivileged writer on the storage filesystem.
    /// Asked on every page load: the directory is made only the first time it is missing.
    pub fn free_space(&self) -> io::Result<u64> {
        match free_space(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&self.root)?;
                free_space(&self.root)
            }
            found => found,
        }
    }
}
