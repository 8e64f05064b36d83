//! Filesystem operations on directories that someone else can write: a server's files.
//!
//! A server directory belongs to a game and its plugins, and whoever controls them can
//! rename anything in it, or put a symlink where a directory was, at any moment. A path
//! handed to the kernel is resolved again at every call, so between hoard looking at a path
//! and using it, the path can come to mean another place, outside the server (the class of
//! bug behind CVE-2023-25152, CVE-2023-25168 and CVE-2024-27102 in Wings). So no code
//! outside this module joins a path onto a server directory: every operation here works
//! relative to a directory descriptor hoard opened itself ([`Dir`]), acts on one name in it,
//! and never follows a symlink. A descriptor keeps meaning the directory it was opened on
//! wherever that directory is moved.
//!
//! Deeper paths are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`, or, on kernels without `openat2`, one component at a time with
//! `O_NOFOLLOW | O_DIRECTORY`. A symlink met where a directory is expected is an error that
//! names the path.

mod durable;

pub use durable::{drop_cached, drop_written, free_space, start_writeback, sync_dir, sync_parent};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags, Timestamps};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

pub use rustix::fs::Stat;

/// Cleared the first time the kernel says it has no `openat2` (before Linux 5.6).
static HAS_OPENAT2: AtomicBool = AtomicBool::new(true);

/// An open directory. Every operation acts on a single name inside it (or on a path
/// beneath it, resolved without following symlinks).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// A time as the filesystem keeps it: seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

impl Time {
    pub fn modified(stat: &Stat) -> Time {
        Time {
            secs: stat.st_mtime,
            nanos: stat.st_mtime_nsec as u32,
        }
    }

    fn timestamps(self) -> Timestamps {
        let at = rustix::fs::Timespec {
            tv_sec: self.secs,
            tv_nsec: self.nanos as _,
        };
        Timestamps {
            last_access: at,
            last_modification: at,
        }
    }
}

/// What a name in a directory is, without following it.
pub fn kind(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

/// Whether two stats are of the same file.
pub fn same_file(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// An error that names the path it is about, keeping the kind (and the OS error's text).
fn at(path: &Path, e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::EXDEV) => {
            "it is a symlink (or leads outside the directory), which hoard never follows".into()
        }
        Some(libc::ENOTDIR) => "it is not a directory".into(),
        _ => e.to_string(),
    };
    io::Error::new(e.kind(), format!("{}: {why}", path.display()))
}

/// A name of one component: never empty, `.`, `..`, nor holding a `/`.
fn single(name: &OsStr) -> io::Result<&OsStr> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a single file name", name.to_string_lossy()),
        ));
    }
    Ok(name)
}

impl Dir {
    /// Opens the directory at `path`, a path hoard was configured with (a server's
    /// directory), refusing it if its last component is a symlink: a directory replaced by
    /// a link after it was registered is not followed to wherever the link points.
    pub fn open(path: &Path) -> io::Result<Dir> {
        rustix::fs::open(path, DIR_FLAGS, Mode::empty())
            .map(|fd| Dir { fd })
            .map_err(|e| at(path, e.into()))
    }

    /// Opens the directory `rel` beneath this one. Any symlink on the way, or any `..`, is
    /// an error naming `rel`.
    pub fn open_dir(&self, rel: &Path) -> io::Result<Dir> {
        let target = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        if HAS_OPENAT2.load(Ordering::Relaxed) {
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.fd, target, DIR_FLAGS, Mode::empty(), resolve) {
                Ok(fd) => return Ok(Dir { fd }),
                Err(rustix::io::Errno::NOSYS) => HAS_OPENAT2.store(false, Ordering::Relaxed),
                Err(e) => return Err(at(rel, e.into())),
            }
        }
        self.step_by_step(rel, |dir, name| dir.child(name))
    }

    /// Opens `rel` one component at a time, each from the one before with `next`.
    fn step_by_step(
        &self,
        rel: &Path,
        next: impl Fn(&Dir, &OsStr) -> io::Result<Dir>,
    ) -> io::Result<Dir> {
        let mut dir = self.try_clone()?;
        for part in rel.components() {
            match part {
                Component::Normal(name) => dir = next(&dir, name).map_err(|e| at(rel, e))?,
                Component::CurDir => {}
                _ => {
                    return Err(at(
                        rel,
                        io::Error::new(io::ErrorKind::InvalidInput, "a path that climbs out"),
                    ));
                }
            }
        }
        Ok(dir)
    }

    /// Opens the directory `name` in this one, refusing a symlink.
    pub fn child(&self, name: &OsStr) -> io::Result<Dir> {
        let fd = rustix::fs::openat(&self.fd, single(name)?, DIR_FLAGS, Mode::empty())?;
        Ok(Dir { fd })
    }

    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// This directory's own metadata.
    pub fn stat_self(&self) -> io::Result<Stat> {
        Ok(rustix::fs::fstat(&self.fd)?)
    }

    /// This directory's metadata, as the standard library gives it.
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        File::from(self.fd.try_clone()?).metadata()
    }

    /// The metadata of `name` itself (a symlink's own, not its target's), as the standard
    /// library gives it.
    pub fn link_metadata(&self, name: &OsStr) -> io::Result<std::fs::Metadata> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, single(name)?, flags, Mode::empty())?;
        File::from(fd).metadata()
    }

    /// The metadata of `name`, not following a symlink; None if there is no such entry.
    pub fn stat(&self, name: &OsStr) -> io::Result<Option<Stat>> {
        match rustix::fs::statat(&self.fd, single(name)?, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(stat)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The names in this directory (without `.` and `..`), with their types as the listing
    /// gives them (`Unknown` on filesystems that do not say), sorted by name.
    pub fn entries(&self) -> io::Result<Vec<(OsString, FileType)>> {
        let mut dir = rustix::fs::Dir::read_from(&self.fd)?;
        let mut out = Vec::new();
        for entry in &mut dir {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push((OsStr::from_bytes(name).to_os_string(), entry.file_type()));
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Creates the directory `name` with `mode` (before the umask).
    pub fn create_dir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(
            &self.fd,
            single(name)?,
            Mode::from_raw_mode(mode),
        )?)
    }

    /// Opens the directory `name`, creating it first if there is none.
    pub fn create_child(&self, name: &OsStr, mode: u32) -> io::Result<Dir> {
        match self.create_dir(name, mode) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        self.child(name)
    }

    /// Opens the directory `rel` beneath this one, creating what is missing of it.
    pub fn create_dirs(&self, rel: &Path, mode: u32) -> io::Result<Dir> {
        self.step_by_step(rel, |dir, name| dir.create_child(name, mode))
    }

    /// Creates the new regular file `name` for writing (an existing entry of that name,
    /// a symlink included, is an error). `extra` adds flags such as `O_DIRECT`.
    pub fn create_file(&self, name: &OsStr, mode: u32, extra: OFlags) -> io::Result<File> {
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | extra;
        let fd = rustix::fs::openat(&self.fd, single(name)?, flags, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// Opens the regular file `name` for reading. A symlink is refused; `O_NONBLOCK` keeps
    /// a FIFO swapped in from hanging the caller.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, single(name)?, flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Reads the target of the symlink `name`.
    pub fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        let target = rustix::fs::readlinkat(&self.fd, single(name)?, Vec::new())?;
        Ok(OsStr::from_bytes(target.as_bytes()).to_os_string())
    }

    /// Creates the symlink `name` pointing at `target` (stored as data, never resolved).
    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::symlinkat(target, &self.fd, single(name)?)?)
    }

    /// Makes `name` a hard link to `from_name` in `from` (a symlink there is linked itself,
    /// never followed).
    pub fn hard_link(&self, from: &Dir, from_name: &OsStr, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::linkat(
            &from.fd,
            single(from_name)?,
            &self.fd,
            single(name)?,
            AtFlags::empty(),
        )?)
    }

    /// Moves `name` to `to_name` in `to`; an existing entry there is an error, never
    /// replaced.
    pub fn rename(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat_with(
            &self.fd,
            single(name)?,
            &to.fd,
            single(to_name)?,
            RenameFlags::NOREPLACE,
        )?)
    }

    /// Removes the entry `name`, a whole directory tree included, without following any
    /// symlink in it. Returns whether there was anything to remove.
    pub fn remove(&self, name: &OsStr) -> io::Result<bool> {
        match rustix::fs::unlinkat(&self.fd, single(name)?, AtFlags::empty()) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(rustix::io::Errno::ISDIR) => {}
            Err(e) => return Err(e.into()),
        }
        match self.child(name) {
            Ok(dir) => dir.clear()?,
            // Replaced by a file or a link since: remove that instead.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                return self.remove(name);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes everything in this directory.
    pub fn clear(&self) -> io::Result<()> {
        for (name, _) in self.entries()? {
            self.remove(&name)?;
        }
        Ok(())
    }

    /// Removes the empty directory `name`, but only if it is still `expected` (compared by
    /// device and inode): a directory renamed away and replaced is left alone.
    pub fn remove_dir_if(&self, name: &OsStr, expected: &Stat) -> io::Result<()> {
        match self.stat(name)? {
            Some(found) if same_file(&found, expected) => {
                Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
            }
            _ => Ok(()),
        }
    }

    /// Sets this directory's mode and modification time.
    pub fn set_mode_and_time(&self, mode: u32, time: Time) -> io::Result<()> {
        rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(mode))?;
        Ok(rustix::fs::futimens(&self.fd, &time.timestamps())?)
    }

    /// Sets the owner of `name` (a symlink itself, not what it points at).
    pub fn set_owner_of(&self, name: &OsStr, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let uid = uid.map(rustix::fs::Uid::from_raw);
        let gid = gid.map(rustix::fs::Gid::from_raw);
        Ok(rustix::fs::chownat(
            &self.fd,
            single(name)?,
            uid,
            gid,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Sets the times of `name` (a symlink itself, not what it points at).
    pub fn set_time_of(&self, name: &OsStr, time: Time) -> io::Result<()> {
        Ok(rustix::fs::utimensat(
            &self.fd,
            single(name)?,
            &time.timestamps(),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Makes this directory's entries (creations, renames, removals) durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// Flushes every pending write of the filesystem this directory is on (`syncfs`):
    /// cheaper than syncing thousands of extracted files one by one.
    pub fn sync_filesystem(&self) -> io::Result<()> {
        Ok(rustix::fs::syncfs(&self.fd)?)
    }

    /// Bytes available to unprivileged users on this directory's filesystem.
    pub fn free_space(&self) -> io::Result<u64> {
        let stat = rustix::fs::fstatvfs(&self.fd)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_on_the_way_is_refused_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("a/link")).unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        assert!(root.open_dir(Path::new("a/b")).is_ok());
        let err = root.open_dir(Path::new("a/link")).unwrap_err();
        assert!(err.to_string().contains("a/link"), "{err}");
        assert!(root.open_dir(Path::new("a/../..")).is_err());
        assert!(root.child(OsStr::new("a/b")).is_err());
    }

    #[test]
    fn the_fallback_walk_refuses_symlinks_too() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("a/link")).unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        HAS_OPENAT2.store(false, Ordering::Relaxed);
        let refused = root.open_dir(Path::new("a/link/x")).is_err();
        let opened = root.open_dir(Path::new("a")).is_ok();
        HAS_OPENAT2.store(true, Ordering::Relaxed);
        assert!(refused && opened);
    }

    #[test]
    fn a_root_that_became_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("real"), tmp.path().join("server")).unwrap();
        let err = Dir::open(&tmp.path().join("server")).unwrap_err();
        assert!(err.to_string().contains("server"), "{err}");
    }

    #[test]
    fn remove_never_follows_a_link_into_another_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        std::fs::create_dir_all(tmp.path().join("tree/sub")).unwrap();
        std::fs::write(tmp.path().join("tree/sub/f"), b"y").unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("tree/sub/out")).unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        root.remove(OsStr::new("tree")).unwrap();
        assert!(!tmp.path().join("tree").exists());
        assert!(outside.path().join("keep").exists());
    }
}
