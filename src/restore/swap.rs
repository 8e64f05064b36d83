//! Moving extracted files into a server directory. Every move is a rename within one
//! filesystem, and each phase can be undone or finished from what is on disk, so a restore
//! interrupted at any point is resolved at the next start.
//!
//! The server directory itself is never renamed or removed: it may be a mount point.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::Path;

/// Names in `dir`, except `skip` (the work directory when it lives inside `dir`).
fn names(dir: &Path, skip: Option<&OsString>) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if Some(&name) != skip {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Moves every entry of `from` into `to` (which must not hold the same names).
pub fn move_all(from: &Path, to: &Path, skip: Option<&OsString>) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for name in names(from, skip)? {
        let dest = to.join(&name);
        if fs::symlink_metadata(&dest).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", dest.display()),
            ));
        }
        fs::rename(from.join(&name), dest)?;
    }
    crate::storage::sync_dir(from)?;
    crate::storage::sync_dir(to)
}

/// Lays `staging` over `server`: files replace files (the old ones go to `trash`),
/// directories merge, and nothing else is touched. Running it again after an interruption
/// finishes the job.
pub fn overlay(staging: &Path, server: &Path, trash: &Path) -> io::Result<()> {
    for name in names(staging, None)? {
        let src = staging.join(&name);
        let dst = server.join(&name);
        let src_meta = fs::symlink_metadata(&src)?;
        match fs::symlink_metadata(&dst) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::rename(&src, &dst)?,
            Err(e) => return Err(e),
            Ok(dst_meta) if src_meta.is_dir() && dst_meta.is_dir() => {
                overlay(&src, &dst, &trash.join(&name))?;
                fs::set_permissions(&dst, src_meta.permissions())?;
                let mtime = filetime::FileTime::from_last_modification_time(&src_meta);
                let _ = filetime::set_file_mtime(&dst, mtime);
                fs::remove_dir(&src)?;
            }
            Ok(_) => {
                fs::create_dir_all(trash)?;
                fs::rename(&dst, trash.join(&name))?;
                fs::rename(&src, &dst)?;
            }
        }
    }
    crate::storage::sync_dir(server)
}
