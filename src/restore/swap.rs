//! Moving extracted files into a server directory, and back out again. Every move is a
//! rename between directories hoard holds open, within one filesystem, and each phase can
//! be undone from what is on disk, so a restore that fails or is interrupted at any point
//! leaves the server's files as they were.
//!
//! The server directory itself is never renamed or removed: it may be a mount point. Its
//! subdirectories are opened without following symlinks, so whoever writes in it cannot
//! turn a move or a metadata change into one outside it.

use crate::safefs::{self, Dir, Stat, Time};
use rustix::fs::FileType;
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An error about the entry `name`, naming it.
fn about(name: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", name.display()))
}

/// Moves every entry of `from` into `to`, except `skip` (the work directory, when it lives
/// inside `from`, recognised by device and inode whatever it is named now). An entry of
/// the same name in `to` stops the move: nothing is ever replaced.
pub fn move_all(from: &Dir, to: &Dir, skip: Option<&Stat>) -> io::Result<()> {
    for (name, _) in from.entries()? {
        if let Some(skip) = skip
            && from
                .stat(&name)?
                .is_some_and(|found| safefs::same_file(&found, skip))
        {
            continue;
        }
        from.rename(&name, to, &name)
            .map_err(|e| about(Path::new(&name), e))?;
    }
    from.sync()?;
    to.sync()
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

/// The directory part and the name of a relative path.
fn split(rel: &Path) -> io::Result<(&Path, &OsStr)> {
    match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a path inside the server", rel.display()),
        )),
    }
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
    pub fn plan(staging: &Dir, server: &Dir) -> io::Result<Overlay> {
        let mut steps = Vec::new();
        plan_dir(staging, server, Path::new(""), &mut steps)?;
        Ok(Overlay { steps })
    }

    pub fn apply(&self, staging: &Dir, server: &Dir, trash: &Dir) -> io::Result<()> {
        for step in &self.steps {
            match step {
                Step::Put(rel) => {
                    let rel = decode(rel)?;
                    let (parent, name) = split(&rel)?;
                    let into = server.open_dir(parent)?;
                    if into.stat(name)?.is_some() {
                        let aside = trash.create_dirs(parent, 0o700)?;
                        into.rename(name, &aside, name)
                            .map_err(|e| about(&rel, e))?;
                    }
                    staging
                        .open_dir(parent)?
                        .rename(name, &into, name)
                        .map_err(|e| about(&rel, e))?;
                }
                Step::Merge {
                    path, mode, time, ..
                } => server
                    .open_dir(&decode(path)?)?
                    .set_mode_and_time(*mode, *time)?,
            }
        }
        server.sync()
    }

    /// Puts the server's files back as they were, however far [`Overlay::apply`] got: an
    /// entry no longer in staging was moved in and goes back there, and an entry in the
    /// trash returns to its place. Running it again after an interruption finishes it.
    ///
    /// An entry that cannot go back (its place in the server was changed meanwhile, by
    /// someone writing there) is left where it is, and the rest are still put back: the
    /// first such error is returned at the end.
    pub fn undo(&self, staging: &Dir, server: &Dir, trash: &Dir) -> io::Result<()> {
        let mut first_error = None;
        for step in self.steps.iter().rev() {
            if let Step::Put(rel) = step
                && let Err(e) = undo_put(staging, server, trash, &decode(rel)?)
            {
                first_error.get_or_insert(e);
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
                let restored = server
                    .open_dir(&decode(path)?)
                    .and_then(|dir| dir.set_mode_and_time(*old_mode, *old_time));
                if let Err(e) = restored {
                    first_error.get_or_insert(e);
                }
            }
        }
        server.sync()?;
        first_error.map_or(Ok(()), Err)
    }
}

fn undo_put(staging: &Dir, server: &Dir, trash: &Dir, rel: &Path) -> io::Result<()> {
    let (parent, name) = split(rel)?;
    let present = |dir: &Dir, name: &OsStr| dir.stat(name).map(|s| s.is_some());
    let opened = |root: &Dir| match root.open_dir(parent) {
        Ok(dir) => Ok(Some(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let (staged, current, aside) = (opened(staging)?, opened(server)?, opened(trash)?);
    if let (Some(staged), Some(current)) = (&staged, &current)
        && !present(staged, name)?
        && present(current, name)?
    {
        current
            .rename(name, staged, name)
            .map_err(|e| about(rel, e))?;
    }
    if let Some(aside) = &aside
        && present(aside, name)?
    {
        let current = current.ok_or_else(|| {
            about(
                rel,
                io::Error::new(io::ErrorKind::NotFound, "its directory is gone"),
            )
        })?;
        aside
            .rename(name, &current, name)
            .map_err(|e| about(rel, e))?;
    }
    Ok(())
}

fn plan_dir(staging: &Dir, server: &Dir, rel: &Path, steps: &mut Vec<Step>) -> io::Result<()> {
    for (name, _) in staging.entries()? {
        let path = rel.join(&name);
        let staged = staging
            .stat(&name)?
            .ok_or_else(|| about(&path, io::ErrorKind::NotFound.into()))?;
        let is_dir = |stat: &Stat| safefs::kind(stat) == FileType::Directory;
        match server.stat(&name)? {
            Some(current) if is_dir(&staged) && is_dir(&current) => {
                let (inner_staged, inner_server) = (
                    staging.child(&name),
                    server.child(&name).map_err(|e| about(&path, e))?,
                );
                plan_dir(&inner_staged?, &inner_server, &path, steps)?;
                steps.push(Step::Merge {
                    path: encode(&path),
                    mode: staged.st_mode & 0o7777,
                    time: Time::modified(&staged),
                    old_mode: current.st_mode & 0o7777,
                    old_time: Time::modified(&current),
                });
            }
            _ => steps.push(Step::Put(encode(&path))),
        }
    }
    Ok(())
}

/// Whether a `truncate: true` restore keeps an entry of the server directory in place.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    No,
    /// Left out by the backup's own rules (`.pteroignore`, the request's `ignored`): kept
    /// unless the backup has an entry of that path after all.
    UnlessInBackup,
    /// The backup could not read it: what the backup holds of it is missing or incomplete,
    /// so the server's own copy wins.
    Always,
}

/// Says whether to keep an entry, given its path relative to the server directory and
/// whether it is a directory.
pub type KeepRule<'a> = &'a dyn Fn(&Path, bool) -> Keep;

/// What a `truncate: true` restore keeps in place, so that restoring a backup made without
/// `logs/` does not delete the logs, nor one that could not read a file the file. Listed
/// before anything moves and kept on disk, so that a rollback can take them out again.
#[derive(Serialize, Deserialize, Default)]
pub struct Kept {
    entries: Vec<(String, Keep)>,
}

impl Kept {
    /// The topmost entries of `server` that `keep` says to keep (given the relative path
    /// and whether it is a directory), leaving out `skip` (the work directory).
    pub fn find(server: &Dir, skip: Option<&Stat>, keep: KeepRule) -> io::Result<Kept> {
        let mut entries = Vec::new();
        find_kept(server, skip, Path::new(""), keep, &mut entries)?;
        Ok(Kept { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Moves each kept entry from the trash back to its place in the server directory,
    /// making the directories it was in where the backup has none. Where the backup has an
    /// entry of the same path, that entry goes (with the replaced files) only if the kept
    /// one is [`Keep::Always`].
    pub fn put_back(&self, trash: &Dir, server: &Dir) -> io::Result<()> {
        for (rel, keep) in &self.entries {
            let rel = decode(rel)?;
            let (parent, name) = split(&rel)?;
            let Some(from) = open_if_there(trash, parent)? else {
                continue;
            };
            if from.stat(name)?.is_none() {
                continue;
            }
            let Some(into) = make_like(server, trash, parent)? else {
                log::warn!(
                    "{}: kept aside, the backup has a file where its directory was",
                    rel.display()
                );
                continue;
            };
            if into.stat(name)?.is_some() {
                if *keep != Keep::Always {
                    continue;
                }
                // Staged, so hoard's own: the backup's incomplete copy.
                into.remove(name)?;
            }
            // The directory keeps the backup's time, as if the entry had been in it.
            let before = into.stat_self()?;
            from.rename(name, &into, name).map_err(|e| about(&rel, e))?;
            into.set_mode_and_time(before.st_mode & 0o7777, Time::modified(&before))?;
        }
        server.sync()
    }

    /// Undoes [`Kept::put_back`], however far it got: a kept entry in the server directory
    /// and not in the trash goes back to the trash.
    pub fn take_out(&self, trash: &Dir, server: &Dir) -> io::Result<()> {
        for (rel, _) in &self.entries {
            let rel = decode(rel)?;
            let (parent, name) = split(&rel)?;
            let Some(from) = open_if_there(server, parent)? else {
                continue;
            };
            let into = trash.create_dirs(parent, 0o700)?;
            if from.stat(name)?.is_some() && into.stat(name)?.is_none() {
                from.rename(name, &into, name).map_err(|e| about(&rel, e))?;
            }
        }
        Ok(())
    }
}

fn open_if_there(root: &Dir, rel: &Path) -> io::Result<Option<Dir>> {
    match root.open_dir(rel) {
        Ok(dir) => Ok(Some(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens `rel` in `server`, making each missing directory of it with the mode and owner of
/// its counterpart in `like`; None where a non-directory is in the way.
fn make_like(server: &Dir, like: &Dir, rel: &Path) -> io::Result<Option<Dir>> {
    let (mut dir, mut model) = (server.try_clone()?, like.try_clone()?);
    for part in rel.iter() {
        model = model.child(part)?;
        if dir.stat(part)?.is_none() {
            let stat = model.stat_self()?;
            dir.create_dir(part, 0o700)?;
            dir.set_owner_of(part, Some(stat.st_uid), Some(stat.st_gid))?;
            dir.child(part)?
                .set_mode_and_time(stat.st_mode & 0o7777, Time::modified(&stat))?;
        }
        dir = match dir.child(part) {
            Ok(next) => next,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
    }
    Ok(Some(dir))
}

fn find_kept(
    dir: &Dir,
    skip: Option<&Stat>,
    rel: &Path,
    keep: KeepRule,
    out: &mut Vec<(String, Keep)>,
) -> io::Result<()> {
    for (name, _) in dir.entries()? {
        let Some(stat) = dir.stat(&name)? else {
            continue;
        };
        if skip.is_some_and(|skip| safefs::same_file(&stat, skip)) {
            continue;
        }
        let path = rel.join(&name);
        let is_dir = safefs::kind(&stat) == FileType::Directory;
        match keep(&path, is_dir) {
            Keep::No if is_dir => find_kept(&dir.child(&name)?, None, &path, keep, out)?,
            Keep::No => {}
            kept => out.push((encode(&path), kept)),
        }
    }
    Ok(())
}
