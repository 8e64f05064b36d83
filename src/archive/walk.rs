//! Walking a server directory the way tar does: one open directory per level, and every
//! entry looked up relative to it. A lookup by full path walks every component again,
//! which on a tree of many small files costs more than reading them; and a path can be
//! changed under hoard by whoever writes in the server directory, while a descriptor keeps
//! meaning the directory it was opened on. Every call goes through [`crate::safefs`].
//!
//! The walk never follows a symlink, never descends into an excluded directory nor into
//! hoard's own data directory, and yields each directory's entries sorted by name, so the
//! same tree gives the same archive.

use super::Exclusions;
use super::fingerprint::{Fingerprint, Seen};
use crate::safefs::Dir;
use rustix::fs::FileType;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
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
    parent: &'a Dir,
    name: &'a OsStr,
}

impl Entry<'_> {
    /// Opens a regular file for reading. If it was swapped for a symlink since the walk saw
    /// it, whatever the link points at is not read, and a FIFO swapped in does not hang
    /// the backup.
    pub fn open(&self) -> io::Result<File> {
        self.parent.open_file(self.name)
    }

    /// A symlink's metadata and target.
    pub fn read_symlink(&self) -> io::Result<(Metadata, OsString)> {
        let meta = self.parent.link_metadata(self.name)?;
        let target = self.parent.read_link(self.name)?;
        Ok((meta, target))
    }
}

/// What the visitor is given.
pub enum Step<'a> {
    Entry(Entry<'a>),
    /// An entry that could not be read: a directory that could not be opened or listed (its
    /// contents are missing), or an entry whose type could not be found out.
    Unreadable(&'a Path, io::Error),
    /// A directory left out because it is hoard's own data directory.
    DataDir(&'a Path),
}

/// A directory being walked: its descriptor and its remaining entries, sorted.
struct Level {
    dir: Arc<Dir>,
    rel: PathBuf,
    entries: std::vec::IntoIter<(OsString, FileType)>,
}

impl Level {
    fn read(dir: Dir, rel: PathBuf) -> io::Result<Level> {
        let entries = dir.entries()?;
        Ok(Level {
            dir: Arc::new(dir),
            rel,
            entries: entries.into_iter(),
        })
    }
}

/// The type of `name` in `parent`, asking the filesystem where the listing did not say.
fn type_of(parent: &Dir, name: &OsStr, listed: FileType) -> io::Result<FileType> {
    match listed {
        FileType::Unknown => match parent.stat(name)? {
            Some(stat) => Ok(crate::safefs::kind(&stat)),
            None => Err(io::ErrorKind::NotFound.into()),
        },
        known => Ok(known),
    }
}

/// Opens a subdirectory, with its metadata for the archive.
fn open_dir(parent: &Dir, name: &OsStr) -> io::Result<(Metadata, Dir)> {
    let dir = parent.child(name)?;
    let meta = dir.metadata()?;
    Ok((meta, dir))
}

/// Walks `root` depth first, calling `visit` for every entry that is not excluded (the
/// root itself is not visited). Stops at the first error `visit` returns.
pub fn walk<E>(
    root: Dir,
    exclusions: &Exclusions,
    mut visit: impl FnMut(Step<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut stack = match Level::read(root, PathBuf::new()) {
        Ok(level) => vec![level],
        Err(e) => return visit(Step::Unreadable(Path::new(""), e)),
    };
    while let Some(level) = stack.last_mut() {
        let Some((name, listed)) = level.entries.next() else {
            stack.pop();
            continue;
        };
        let rel = level.rel.join(&name);
        let parent = Arc::clone(&level.dir);
        let file_type = match type_of(&parent, &name, listed) {
            Ok(known) => known,
            Err(e) => {
                visit(Step::Unreadable(&rel, e))?;
                continue;
            }
        };
        let is_dir = file_type == FileType::Directory;
        if exclusions.excludes(&rel, is_dir) {
            continue;
        }
        let kind = match file_type {
            FileType::Directory => match open_dir(&parent, &name) {
                Ok((meta, _)) if exclusions.is_data_dir(&meta) => {
                    visit(Step::DataDir(&rel))?;
                    continue;
                }
                Ok((meta, dir)) => {
                    let entry = Entry {
                        rel: &rel,
                        kind: Kind::Dir(meta),
                        parent: &parent,
                        name: &name,
                    };
                    visit(Step::Entry(entry))?;
                    match Level::read(dir, rel.clone()) {
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
            parent: &parent,
            name: &name,
        }))?;
    }
    Ok(())
}

/// Counts the entries of `root` and the bytes of its regular files, as [`walk`] would visit
/// them, and fingerprints them, on `threads` threads: listing directories and `stat`ing
/// files is all system calls, which overlap well.
pub fn count(root: Dir, exclusions: &Exclusions, threads: usize) -> Tally {
    let Ok(root_level) = Level::read(root, PathBuf::new()) else {
        return Tally::default();
    };
    let work = Counting {
        state: Mutex::new(Pending {
            dirs: Vec::new(),
            busy: 0,
        }),
        changed: Condvar::new(),
        exclusions,
    };
    let mut tally = Tally::default();
    let first = work.count_level(root_level, &mut tally);
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
        let own = work.run();
        helpers
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .fold(tally.merge(own), Tally::merge)
    })
}

/// What a count found: entries, bytes of regular files, and their fingerprint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub entries: u64,
    pub bytes: u64,
    pub fingerprint: Fingerprint,
}

impl Tally {
    fn merge(self, other: Tally) -> Tally {
        Tally {
            entries: self.entries + other.entries,
            bytes: self.bytes + other.bytes,
            fingerprint: self.fingerprint.merge(other.fingerprint),
        }
    }
}

/// A subdirectory still to count: its parent's descriptor and its name.
type Subdir = (Arc<Dir>, OsString, PathBuf);

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
    /// One thread's share.
    fn run(&self) -> Tally {
        let mut tally = Tally::default();
        let mut state = self.lock();
        loop {
            let Some((parent, name, rel)) = state.dirs.pop() else {
                if state.busy == 0 {
                    self.changed.notify_all();
                    return tally;
                }
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            state.busy += 1;
            drop(state);
            let mut found = Vec::new();
            let opened = open_dir(&parent, &name);
            drop(parent);
            if let Ok((meta, dir)) = opened
                && !self.exclusions.is_data_dir(&meta)
            {
                tally.entries += 1;
                // A directory's mtime is left out: games create and delete lock and
                // temporary files all the time, which touches it without changing what a
                // backup holds; an entry added or removed shows up on its own.
                let seen = Seen {
                    kind: b'd',
                    size: 0,
                    mtime: 0,
                    mtime_nsec: 0,
                    mode: meta.mode(),
                };
                tally.fingerprint.add(&rel, seen);
                if let Ok(level) = Level::read(dir, rel) {
                    found = self.count_level(level, &mut tally);
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
    fn count_level(&self, level: Level, tally: &mut Tally) -> Vec<Subdir> {
        let dir = level.dir;
        let mut found = Vec::new();
        for (name, listed) in level.entries {
            let Ok(file_type) = type_of(&dir, &name, listed) else {
                continue;
            };
            let rel = level.rel.join(&name);
            let is_dir = file_type == FileType::Directory;
            if self.exclusions.excludes(&rel, is_dir) {
                continue;
            }
            let kind = match file_type {
                FileType::Directory => {
                    found.push((Arc::clone(&dir), name, rel));
                    continue;
                }
                FileType::RegularFile => b'f',
                FileType::Symlink => b'l',
                _ => continue,
            };
            tally.entries += 1;
            // Gone since the listing: the archive will not hold it either.
            let Ok(Some(stat)) = dir.stat(&name) else {
                continue;
            };
            let size = stat.st_size.max(0) as u64;
            if kind == b'f' {
                tally.bytes += size;
            }
            let seen = Seen {
                kind,
                size,
                mtime: stat.st_mtime,
                mtime_nsec: stat.st_mtime_nsec as i64,
                mode: stat.st_mode,
            };
            tally.fingerprint.add(&rel, seen);
        }
        found
    }
}
