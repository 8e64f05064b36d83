//! Moving extracted files into a server directory, and back out again. Every move is a
//! rename within one filesystem, and each phase can be undone from what is on disk, so a
//! restore that fails or is interrupted at any point leaves the server's files as they were.
//!
//! The server directory itself is never renamed or removed: it may be a mount point.

use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Moves every entry of `from` into `to` (which must not hold the same names).
pub fn move_all(from: &Path, to: &Path, skip: Option<&OsString>) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for name in names(from, skip)? {
        let dest = to.join(&name);
        if exists(&dest) {
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

/// A time as the plan keeps it.
#[derive(Serialize, Deserialize, Clone, Copy)]
struct Time {
    secs: i64,
    nanos: u32,
}

impl Time {
    fn of(meta: &fs::Metadata) -> Time {
        let t = filetime::FileTime::from_last_modification_time(meta);
        Time {
            secs: t.unix_seconds(),
            nanos: t.nanoseconds(),
        }
    }

    fn file_time(self) -> filetime::FileTime {
        filetime::FileTime::from_unix_time(self.secs, self.nanos)
    }
}

/// One step of laying the staged files over the server's, in the order they are taken.
/// Paths are relative and hex-encoded: names need not be UTF-8.
#[derive(Serialize, Deserialize)]
enum Step {
    /// The staged entry goes in whole; the server's entry of that name, if any, goes to
    /// the trash at the same relative path.
    Put(String),
    /// A directory both sides have: its staged contents were laid over it (the steps
    /// before), and it takes the staged directory's mode and time.
    Merge {
        path: String,
        mode: u32,
        time: Time,
        old_mode: u32,
        old_time: Time,
    },
}

fn encode(rel: &Path) -> String {
    hex::encode(rel.as_os_str().as_bytes())
}

fn decode(rel: &str) -> io::Result<PathBuf> {
    let bytes = hex::decode(rel).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(PathBuf::from(OsStr::from_bytes(&bytes)))
}

/// Laying `staging` over `server` (`truncate: false`): staged files replace the server's,
/// directories merge, and nothing else is touched. Planned before anything moves and kept
/// on disk, so that [`Overlay::undo`] can put every moved entry back after a failure or a
/// crash, judging from where each one is.
#[derive(Serialize, Deserialize)]
pub struct Overlay {
    steps: Vec<Step>,
}

impl Overlay {
    pub fn plan(staging: &Path, server: &Path) -> io::Result<Overlay> {
        let mut steps = Vec::new();
        plan_dir(staging, server, Path::new(""), &mut steps)?;
        Ok(Overlay { steps })
    }

    /// Writes the plan to `path`, durably: it must be there before the first move.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut out = io::BufWriter::new(fs::File::create(path)?);
        serde_json::to_writer(&mut out, self)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        crate::storage::sync_parent(path)
    }

    pub fn load(path: &Path) -> io::Result<Overlay> {
        let text = fs::read(path)?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn apply(&self, staging: &Path, server: &Path, trash: &Path) -> io::Result<()> {
        for step in &self.steps {
            match step {
                Step::Put(rel) => {
                    let rel = decode(rel)?;
                    let dest = server.join(&rel);
                    if exists(&dest) {
                        let aside = trash.join(&rel);
                        if let Some(parent) = aside.parent() {
                            fs::create_dir_all(parent)?;
                        }
                        fs::rename(&dest, aside)?;
                    }
                    fs::rename(staging.join(&rel), dest)?;
                }
                Step::Merge {
                    path, mode, time, ..
                } => set_meta(&server.join(decode(path)?), *mode, *time)?,
            }
        }
        crate::storage::sync_dir(server)
    }

    /// Puts the server's files back as they were, however far [`Overlay::apply`] got: an
    /// entry no longer in staging was moved in and goes back there, and an entry in the
    /// trash returns to its place. Running it again after an interruption finishes it.
    pub fn undo(&self, staging: &Path, server: &Path, trash: &Path) -> io::Result<()> {
        for step in self.steps.iter().rev() {
            if let Step::Put(rel) = step {
                let rel = decode(rel)?;
                let (staged, current, aside) =
                    (staging.join(&rel), server.join(&rel), trash.join(&rel));
                if !exists(&staged) && exists(&current) {
                    fs::rename(&current, &staged)?;
                }
                if exists(&aside) {
                    fs::rename(&aside, &current)?;
                }
            }
        }
        // Moving entries in and out changed the merged directories' times: set them last.
        for step in &self.steps {
            if let Step::Merge {
                path,
                old_mode,
                old_time,
                ..
            } = step
            {
                set_meta(&server.join(decode(path)?), *old_mode, *old_time)?;
            }
        }
        crate::storage::sync_dir(server)
    }
}

fn set_meta(dir: &Path, mode: u32, time: Time) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    filetime::set_file_mtime(dir, time.file_time())
}

fn plan_dir(staging: &Path, server: &Path, rel: &Path, steps: &mut Vec<Step>) -> io::Result<()> {
    for name in names(&staging.join(rel), None)? {
        let rel = rel.join(&name);
        let staged = fs::symlink_metadata(staging.join(&rel))?;
        match fs::symlink_metadata(server.join(&rel)) {
            Ok(current) if staged.is_dir() && current.is_dir() => {
                plan_dir(staging, server, &rel, steps)?;
                steps.push(Step::Merge {
                    path: encode(&rel),
                    mode: staged.permissions().mode() & 0o7777,
                    time: Time::of(&staged),
                    old_mode: current.permissions().mode() & 0o7777,
                    old_time: Time::of(&current),
                });
            }
            Ok(_) => steps.push(Step::Put(encode(&rel))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => steps.push(Step::Put(encode(&rel))),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
