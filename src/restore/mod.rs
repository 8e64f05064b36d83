//! The restore engine: extracting an archive into a staging directory ([`extract`]) and
//! swapping the staged files with the server's ([`swap`]), in a work directory
//! ([`Workspace`]) that only hoard can enter. Everything here acts on directories through
//! descriptors ([`crate::safefs`]): the server's owner may rename or replace anything in
//! the server directory while a restore runs, and that must never redirect a write, a
//! move or a delete outside it.
//!
//! The order of the steps and the journal that makes them crash-proof belong to the job
//! (`jobs::restore`); the rules for starting one to `restores`.

mod direct;
mod extract;
pub mod swap;

use crate::safefs::{self, Dir, Stat};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

pub use extract::{Extracted, Limits, extract};

/// Why extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive is corrupt, truncated, tampered with or hostile: the reason in words.
    #[error("{0}")]
    Archive(String),
    /// Everything was extracted, but the archive does not match its SHA-256: staging holds
    /// what it decoded to, for a caller that restores a corrupt archive when asked to.
    #[error(
        "the archive does not match its SHA-256 (expected {expected}, found {found}): it is corrupt or was modified"
    )]
    Mismatch {
        expected: String,
        found: String,
        extracted: Extracted,
    },
    #[error("cannot {action} {what}: {source}")]
    Io {
        action: &'static str,
        what: String,
        source: io::Error,
    },
    #[error("cancelled: hoard is shutting down")]
    Cancelled,
}

impl Error {
    fn io(action: &'static str, what: &str, source: io::Error) -> Error {
        Error::Io {
            action,
            what: what.to_string(),
            source,
        }
    }
}

const STAGING: &str = "staging";
const TRASH: &str = "trash";
const OVERLAY_PLAN: &str = "overlay-plan.json";
const KEPT: &str = "kept.json";

/// Where a restore puts the backup's files before the swap and the server's files it
/// replaced: a directory made by hoard, mode 0700 (only root enters it), and used only
/// through its descriptor. Beside the server directory where the parent is on the same
/// filesystem; inside it where the server directory is a mount point, where every move
/// skips it by identity, not by name.
pub struct Workspace {
    /// The server's directory.
    pub server: Dir,
    pub staging: Dir,
    pub trash: Dir,
    /// The directory that holds the work directory, and the name it was given there.
    holder: Dir,
    name: OsString,
    work: Dir,
    identity: Stat,
    inside: bool,
}

/// Whether `stat` is of a directory hoard made for itself: owned by hoard's user. The
/// server's owner can make a directory of any name, but not one that is root's.
fn is_ours(stat: &Stat) -> bool {
    safefs::kind(stat) == rustix::fs::FileType::Directory && stat.st_uid == effective_uid()
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn name_of(path: &Path) -> io::Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} cannot hold a work directory", path.display()),
        )),
    }
}

impl Workspace {
    /// Chooses where the work directory of a restore of `server_path` goes: beside the
    /// server directory when its parent is on the same filesystem and hoard can write
    /// there, else inside it. Refuses a server directory that has become a symlink.
    pub fn location(server_path: &Path, restore_uuid: &str) -> io::Result<PathBuf> {
        let server = Dir::open(server_path)?;
        let short = &restore_uuid[..8.min(restore_uuid.len())];
        if let Ok((parent_path, dir_name)) = name_of(server_path)
            && let Ok(parent) = Dir::open(parent_path)
            && parent.stat_self()?.st_dev == server.stat_self()?.st_dev
        {
            let name = format!(".hoard-restore-{}-{short}", dir_name.to_string_lossy());
            if parent.create_dir(OsStr::new(&name), 0o700).is_ok() {
                let _ = parent.remove(OsStr::new(&name));
                return Ok(parent_path.join(name));
            }
        }
        Ok(server_path.join(format!(".hoard-restore-{short}")))
    }

    /// Makes the work directory at `work_path` (from [`Workspace::location`]) afresh,
    /// removing what an earlier attempt of the same restore left there.
    pub fn create(server_path: &Path, work_path: &Path) -> io::Result<Workspace> {
        let server = Dir::open(server_path)?;
        let (holder_path, name) = name_of(work_path)?;
        let holder = Dir::open(holder_path)?;
        match holder.stat(name)? {
            Some(found) if is_ours(&found) => {
                holder.remove(name)?;
            }
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not hoard's: refusing to use or remove it",
                        work_path.display()
                    ),
                ));
            }
            None => {}
        }
        holder.create_dir(name, 0o700)?;
        Workspace::open_in(server, holder, name, work_path)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} vanished as it was made", work_path.display()),
            )
        })
    }

    /// Opens the work directory of a restore that was under way; None if it is gone (or
    /// what is there now is not hoard's).
    pub fn open(server_path: &Path, work_path: &Path) -> io::Result<Option<Workspace>> {
        let server = Dir::open(server_path)?;
        let (holder_path, name) = name_of(work_path)?;
        let holder = Dir::open(holder_path)?;
        Workspace::open_in(server, holder, name, work_path)
    }

    fn open_in(
        server: Dir,
        holder: Dir,
        name: &OsStr,
        work_path: &Path,
    ) -> io::Result<Option<Workspace>> {
        let work = match holder.child(name) {
            Ok(work) => work,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let identity = work.stat_self()?;
        if !is_ours(&identity) {
            log::warn!(
                "{} is not hoard's (someone replaced it): left alone",
                work_path.display()
            );
            return Ok(None);
        }
        let inside = safefs::same_file(&holder.stat_self()?, &server.stat_self()?);
        Ok(Some(Workspace {
            staging: work.create_child(OsStr::new(STAGING), 0o700)?,
            trash: work.create_child(OsStr::new(TRASH), 0o700)?,
            server,
            holder,
            name: name.to_os_string(),
            work,
            identity,
            inside,
        }))
    }

    /// The work directory when it lives inside the server directory: every move of the
    /// server's entries leaves it where it is.
    pub fn skip(&self) -> Option<&Stat> {
        self.inside.then_some(&self.identity)
    }

    /// Whether the work directory is inside the server directory, where what it holds
    /// would end up in the server's next backup.
    pub fn is_inside(&self) -> bool {
        self.inside
    }

    /// Empties staging, for an extraction that starts over.
    pub fn clear_staging(&self) -> io::Result<()> {
        self.staging.clear()
    }

    /// Writes the overlay's plan, durably: it must be there before the first move.
    pub fn save_plan(&self, plan: &swap::Overlay) -> io::Result<()> {
        self.save(OVERLAY_PLAN, plan)
    }

    pub fn load_plan(&self) -> io::Result<swap::Overlay> {
        self.load(OVERLAY_PLAN)?
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// Writes the list of kept entries, durably: it must be there before the first move.
    pub fn save_kept(&self, kept: &swap::Kept) -> io::Result<()> {
        self.save(KEPT, kept)
    }

    /// The kept entries saved by [`Workspace::save_kept`]; none if nothing was kept.
    pub fn load_kept(&self) -> io::Result<swap::Kept> {
        Ok(self.load(KEPT)?.unwrap_or_default())
    }

    fn save(&self, name: &str, value: &impl serde::Serialize) -> io::Result<()> {
        let name = OsStr::new(name);
        self.work.remove(name)?;
        let file = self
            .work
            .create_file(name, 0o600, rustix::fs::OFlags::empty())?;
        let mut out = io::BufWriter::new(file);
        serde_json::to_writer(&mut out, value)?;
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        self.work.sync()
    }

    fn load<T: serde::de::DeserializeOwned>(&self, name: &str) -> io::Result<Option<T>> {
        let mut text = Vec::new();
        match self.work.open_file(OsStr::new(name)) {
            Ok(mut file) => io::Read::read_to_end(&mut file, &mut text)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Removes the work directory and everything in it.
    pub fn remove(self) -> io::Result<()> {
        self.work.clear()?;
        self.holder.remove_dir_if(&self.name, &self.identity)?;
        self.holder.sync()
    }

    /// Drops the work directory after a rollback: renamed first, so that the rollback is
    /// complete on disk before anything in it is deleted (a rerun would otherwise take the
    /// server's files for staged ones as their staged copies vanish).
    pub fn discard(self) -> io::Result<()> {
        let discarded = discarded_name(&self.name);
        if self
            .holder
            .stat(&self.name)?
            .is_some_and(|found| safefs::same_file(&found, &self.identity))
        {
            self.holder
                .rename(&self.name, &self.holder, &discarded)
                .and_then(|()| self.holder.sync())?;
        }
        self.work.clear()?;
        self.holder.remove_dir_if(&discarded, &self.identity)
    }

    /// Removes what a discard that was interrupted left of the work directory at
    /// `work_path`.
    pub fn remove_discarded(work_path: &Path) -> io::Result<()> {
        let (holder_path, name) = name_of(work_path)?;
        let holder = Dir::open(holder_path)?;
        let discarded = discarded_name(name);
        match holder.stat(&discarded)? {
            Some(found) if is_ours(&found) => holder.remove(&discarded).map(drop),
            _ => Ok(()),
        }
    }
}

fn discarded_name(name: &OsStr) -> OsString {
    let mut discarded = name.to_os_string();
    discarded.push("-discarded");
    discarded
}
