//! Where archives live: `<data>/backups/<server uuid>/<backup uuid>.<ext>`, each with a JSON
//! manifest beside it. Files are written under a temporary name, synced and renamed, and
//! the directory synced, so a crash leaves either the whole archive or none.

use crate::model::{Backup, Compression};
use crate::safefs::{free_space, sync_dir, sync_parent};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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
    pub fn write_manifest(
        &self,
        server_uuid: &str,
        backup: &Backup,
        manifest: &serde_json::Value,
    ) -> io::Result<()> {
        let path = self.manifest_path(server_uuid, &backup.uuid);
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

    /// Removes a backup's archive, manifest and any partial file; missing files are fine.
    pub fn remove(&self, server_uuid: &str, backup: &Backup) -> io::Result<()> {
        let mut paths = vec![
            self.partial_path(server_uuid, &backup.uuid),
            self.manifest_path(server_uuid, &backup.uuid),
            self.manifest_path(server_uuid, &backup.uuid)
                .with_extension("json.partial"),
        ];
        if let Some(p) = backup.storage_path.as_deref().and_then(|p| self.resolve(p)) {
            paths.push(p);
        }
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

    /// Removes the server's directory if nothing is left in it.
    pub fn remove_server_dir(&self, server_uuid: &str) {
        let _ = fs::remove_dir(self.root.join(server_uuid));
    }

    /// Bytes free for an unprivileged writer on the storage filesystem.
    pub fn free_space(&self) -> io::Result<u64> {
        fs::create_dir_all(&self.root)?;
        free_space(&self.root)
    }
}
