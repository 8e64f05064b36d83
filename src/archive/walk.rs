//! Walking a server directory the way tar does: one open directory per level, and every
//! entry looked up relative to it (`fstatat`, `openat`). A lookup by full path walks every
//! component again, which on a tree of many small files costs more than reading them.
//!
//! The walk never follows a symlink, never descends into an excluded directory, and
//! yields each directory's entries sorted by name, so the same tree gives the same archive.

use super::Exclusions;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use std::ffi::{CString, OsStr};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// What an entry is, as far as archiving cares.
pub enum Kind {
    /// A directory, with its metadata (read from the descriptor the walk descends through).
    Dir(Metadata),
    File,
    Symlink,
    /// A socket, FIFO or device: named for the warning, never archived.
    Special(&'static str),
}

/// One entry of the walk. Borrowed from the walk: it lives for one call of the visitor.
pub struct Entry<'a> {
    /// The path relative to the walked root.
    pub rel: &'a Path,
    pub kind: Kind,
    parent: BorrowedFd<'a>,
    name: &'a CString,
    root: &'a Path,
}

impl Entry<'_> {
    /// Opens a regular file for reading. O_NOFOLLOW: if it was swapped for a symlink since
    /// the walk saw it, whatever the link points at is not read; O_NONBLOCK: a FIFO swapped
    /// in does not hang the backup.
    pub fn open(&self) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd: OwnedFd =
            rustix::fs::openat(self.parent, self.name.as_c_str(), flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// The full path, for the rare calls that have no relative form (symlinks).
    pub fn path(&self) -> PathBuf {
        self.root.join(self.rel)
    }
}

/// What the visitor is given.
pub enum Step<'a> {
    Entry(Entry<'a>),
    /// An entry that could not be read: a directory that could not be opened or listed (its
    /// contents are missing), or an entry whose type could not be found out.
    Unreadable(&'a Path, io::Error),
}

/// A directory being walked: its descriptor and its remaining entries, sorted.
struct Level {
    dir: Dir,
    rel: PathBuf,
    entries: std::vec::IntoIter<(CString, FileType)>,
}

impl Level {
    fn read_root(root: &Path) -> io::Result<Level> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(root, flags, Mode::empty())?;
        Level::read(fd, PathBuf::new())
    }

    fn read(fd: OwnedFd, rel: PathBuf) -> io::Result<Level> {
        let mut dir = Dir::new(fd)?;
        let mut entries = Vec::new();
        for entry in &mut dir {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                entries.push((name.to_owned(), entry.file_type()));
            }
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(Level {
            dir,
            rel,
            entries: entries.into_iter(),
        })
    }
}

/// Opens a subdirectory to list it, refusing a symlink swapped in since it was listed.
fn open_subdir(parent: BorrowedFd<'_>, name: &CString) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(
        parent,
        name.as_c_str(),
        flags,
        Mode::empty(),
    )?)
}

/// Opens a subdirectory, with its metadata for the archive.
fn open_dir(parent: BorrowedFd<'_>, name: &CString) -> io::Result<(Metadata, OwnedFd)> {
    let file = File::from(open_subdir(parent, name)?);
    let meta = file.metadata()?;
    Ok((meta, OwnedFd::from(file)))
}

/// Walks `root` depth first, calling `visit` for every entry that is not excluded (the
/// root itself is not visited). Stops at the first error `visit` returns.
pub fn walk<E>(
    root: &Path,
    exclusions: &Exclusions,
    mut visit: impl FnMut(Step<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let opened = Level::read_root(root);
    let mut stack = match opened {
        Ok(level) => vec![level],
        Err(e) => return visit(Step::Unreadable(Path::new(""), e)),
    };
    while let Some(level) = stack.last_mut() {
        let Some((name, file_type)) = level.entries.next() else {
            stack.pop();
            continue;
        };
        let rel = level.rel.join(OsStr::from_bytes(name.to_bytes()));
        let parent = level.dir.fd().map_err(io::Error::from);
        let parent = match parent {
            Ok(fd) => fd,
            Err(e) => {
                visit(Step::Unreadable(&rel, e))?;
                continue;
            }
        };
        let file_type = match file_type {
            // Some filesystems do not say in the listing; ask.
            FileType::Unknown => {
                match rustix::fs::statat(parent, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                    Err(e) => {
                        visit(Step::Unreadable(&rel, e.into()))?;
                        continue;
                    }
                }
            }
            known => known,
        };
        let is_dir = file_type == FileType::Directory;
        if exclusions.excludes(&rel, is_dir) {
            continue;
        }
        let kind = match file_type {
            FileType::Directory => match open_dir(parent, &name) {
                Ok((meta, fd)) => {
                    let entry = Entry {
                        rel: &rel,
                        kind: Kind::Dir(meta),
                        parent,
                        name: &name,
                        root,
                    };
                    visit(Step::Entry(entry))?;
                    match Level::read(fd, rel.clone()) {
                        Ok(level) => stack.push(level),
                        Err(e) => visit(Step::Unreadable(&rel, e))?,
                    }
                    continue;
                }
                Err(e) => {
                    visit(Step::Unreadable(&rel, e))?;
                    continue;
                }
            },
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            FileType::Socket => Kind::Special("a socket"),
            FileType::Fifo => Kind::Special("a FIFO"),
            _ => Kind::Special("a device"),
        };
        visit(Step::Entry(Entry {
            rel: &rel,
            kind,
            parent,
            name: &name,
            root,
        }))?;
    }
    Ok(())
}

/// Counts the entries of `root` and the bytes of its regular files, as [`walk`] would visit
/// them, on `threads` threads: listing directories and `stat`ing files is all system calls,
/// which overlap well.
pub fn count(root: &Path, exclusions: &Exclusions, threads: usize) -> (u64, u64) {
    let opened = Level::read_root(root);
    let Ok(root_level) = opened else {
        return (0, 0);
    };
    let work = Counting {
        state: Mutex::new(Pending {
            dirs: Vec::new(),
            busy: 0,
        }),
        changed: Condvar::new(),
        exclusions,
    };
    let (mut entries, mut bytes) = (0, 0);
    let first = work.count_level(root_level, &mut entries, &mut bytes);
    work.lock().dirs = first;
    std::thread::scope(|scope| {
        // The calling thread counts too; a helper that cannot be started is simply missing.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("scan".into())
                    .spawn_scoped(scope, || work.run())
                    .ok()
            })
            .collect();
        let (e, b) = work.run();
        helpers
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .fold((entries + e, bytes + b), |(e, b), (e2, b2)| {
                (e + e2, b + b2)
            })
    })
}

/// A subdirectory still to count: its parent's descriptor and its name.
type Subdir = (Arc<Dir>, CString, PathBuf);

/// Subdirectories still to count, and how many threads are counting one (and may add
/// more): the count is over when both are zero. Only the parents' descriptors are held,
/// so a directory with thousands of subdirectories does not open them all at once.
struct Pending {
    dirs: Vec<Subdir>,
    busy: usize,
}

struct Counting<'a> {
    state: Mutex<Pending>,
    changed: Condvar,
    exclusions: &'a Exclusions,
}

impl Counting<'_> {
    /// One thread's share: (entries, bytes).
    fn run(&self) -> (u64, u64) {
        let (mut entries, mut bytes) = (0, 0);
        let mut state = self.lock();
        loop {
            let Some((parent, name, rel)) = state.dirs.pop() else {
                if state.busy == 0 {
                    self.changed.notify_all();
                    return (entries, bytes);
                }
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            state.busy += 1;
            drop(state);
            let mut found = Vec::new();
            let listed = parent
                .fd()
                .map_err(io::Error::from)
                .and_then(|fd| open_subdir(fd, &name));
            drop(parent);
            if let Ok(fd) = listed {
                entries += 1;
                if let Ok(level) = Level::read(fd, rel) {
                    found = self.count_level(level, &mut entries, &mut bytes);
                }
            }
            state = self.lock();
            state.dirs.append(&mut found);
            state.busy -= 1;
            self.changed.notify_all();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one directory's files and links; returns its subdirectories.
    fn count_level(&self, level: Level, entries: &mut u64, bytes: &mut u64) -> Vec<Subdir> {
        let dir = Arc::new(level.dir);
        let mut found = Vec::new();
        let Ok(parent) = dir.fd() else {
            return found;
        };
        for (name, file_type) in level.entries {
            let stat = || rustix::fs::statat(parent, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW);
            let file_type = match file_type {
                FileType::Unknown => match stat() {
                    Ok(s) => FileType::from_raw_mode(s.st_mode),
                    Err(_) => continue,
                },
                known => known,
            };
            let rel = level.rel.join(OsStr::from_bytes(name.to_bytes()));
            let is_dir = file_type == FileType::Directory;
            if self.exclusions.excludes(&rel, is_dir) {
                continue;
            }
            match file_type {
                FileType::Directory => found.push((Arc::clone(&dir), name, rel)),
                FileType::RegularFile => {
                    *entries += 1;
                    *bytes += stat().map_or(0, |s| s.st_size.max(0) as u64);
                }
                FileType::Symlink => *entries += 1,
                _ => {}
            }
        }
        found
    }
}
