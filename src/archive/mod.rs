//! The archiver: walks a server directory and writes it as one tar stream, compressed,
//! hashed and counted in the same pass, into a file. It knows nothing of HTTP or the
//! database; the job that runs it records progress from [`Progress`].

mod exclude;
mod sink;
mod source;

pub use exclude::{Exclusions, IGNORE_FILE, split_patterns};

use crate::model::Compression;
use ignore::{DirEntry, WalkBuilder};
use sink::{Compressor, HashingWriter};
use source::{FileReader, Throttle};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How to write one archive.
#[derive(Debug, Clone)]
pub struct Options {
    pub compression: Compression,
    pub zstd_level: i32,
    /// Compression worker threads (zstd and gzip); 1 compresses on the calling thread.
    pub threads: u32,
    pub gzip_level: u32,
    /// Cap on reading server files, bytes per second; 0 for none.
    pub read_limit_bytes_per_sec: u64,
    /// The archive file may not grow past this many bytes.
    pub max_bytes: u64,
}

/// Counters the job reads while the archive is written.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub files: AtomicU64,
}

/// What the quick scan before archiving found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    pub files: u64,
    pub bytes: u64,
}

/// A written archive.
#[derive(Debug, Clone)]
pub struct Output {
    /// Lower-case hex SHA-256 of the archive file.
    pub sha256: String,
    /// Size of the archive file.
    pub bytes: u64,
    /// Entries archived and the bytes of their contents.
    pub content: Scan,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the archive grew past this server's size limit of {limit} bytes (max_backup_bytes)")]
    LimitExceeded { limit: u64 },
    #[error("the backup was cancelled: {0}")]
    Cancelled(String),
    #[error("the disk holding the backups is full")]
    DiskFull,
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

/// Why a stream was stopped on purpose; carried through `io::Error` from deep inside the
/// tar and compression writers.
#[derive(Debug, thiserror::Error)]
enum Abort {
    #[error("size limit exceeded")]
    Limit(u64),
    #[error("cancelled")]
    Cancelled,
}

fn classify(err: io::Error, context: &str) -> Error {
    if let Some(abort) = err.get_ref().and_then(|e| e.downcast_ref::<Abort>()) {
        return match abort {
            Abort::Limit(limit) => Error::LimitExceeded { limit: *limit },
            Abort::Cancelled => Error::Cancelled("hoard is shutting down".into()),
        };
    }
    if err.raw_os_error() == Some(libc::ENOSPC) {
        return Error::DiskFull;
    }
    Error::Io {
        context: context.to_string(),
        source: err,
    }
}

/// Walks `root` without following symlinks and without any of the `ignore` crate's standard
/// filters (hidden files and `.gitignore` do not matter), skipping excluded paths and never
/// descending into an excluded directory. Entries come sorted by name.
fn walk(root: &Path, exclusions: Arc<Exclusions>) -> ignore::Walk {
    let root_owned = root.to_path_buf();
    WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| {
            let Ok(rel) = entry.path().strip_prefix(&root_owned) else {
                return true;
            };
            rel.as_os_str().is_empty()
                || !exclusions.excludes(rel, entry.file_type().is_some_and(|t| t.is_dir()))
        })
        .build()
}

/// The entry's path relative to the root; None for the root itself.
fn relative(root: &Path, entry: &DirEntry) -> Option<PathBuf> {
    let rel = entry.path().strip_prefix(root).ok()?;
    (!rel.as_os_str().is_empty()).then(|| rel.to_path_buf())
}

/// Counts what a backup of `root` will hold, for progress and space checks.
pub fn scan(root: &Path, exclusions: Arc<Exclusions>) -> Scan {
    let mut scan = Scan::default();
    for entry in walk(root, exclusions).flatten() {
        if relative(root, &entry).is_none() {
            continue;
        }
        let Some(ft) = entry.file_type() else {
            continue;
        };
        if ft.is_file() {
            scan.files += 1;
            scan.bytes += entry.metadata().map_or(0, |m| m.len());
        } else if ft.is_dir() || ft.is_symlink() {
            scan.files += 1;
        }
    }
    scan
}

/// Writes the archive of `root` to `dest` (created, synced on success, removed on failure).
pub fn write(
    root: &Path,
    exclusions: Arc<Exclusions>,
    dest: &Path,
    options: &Options,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<Output, Error> {
    let result = write_inner(root, exclusions, dest, options, progress, cancel);
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

fn write_inner(
    root: &Path,
    exclusions: Arc<Exclusions>,
    dest: &Path,
    options: &Options,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<Output, Error> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| classify(e, &format!("cannot create {}", dest.display())))?;
    let sink = HashingWriter::new(file, options.max_bytes)
        .map_err(|e| classify(e, "cannot start the archive writer"))?;
    let compressor =
        Compressor::new(sink, options).map_err(|e| classify(e, "cannot start the compressor"))?;
    // No buffer in between: every compressor buffers its input itself.
    let mut tar = tar::Builder::new(compressor);
    tar.follow_symlinks(false);
    let mut warnings: Vec<String> = exclusions.notes.clone();
    let mut content = Scan::default();
    let mut throttle = Throttle::new(options.read_limit_bytes_per_sec);
    let mut read_buf = vec![0u8; source::READ_CHUNK];

    for entry in walk(root, exclusions) {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled("hoard is shutting down".into()));
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                warnings.push(format!("could not be read: {e}"));
                continue;
            }
        };
        let Some(rel) = relative(root, &entry) else {
            continue;
        };
        let shown = rel.to_string_lossy().into_owned();
        let Some(ft) = entry.file_type() else {
            continue;
        };
        let result = if ft.is_dir() {
            append_dir(&mut tar, &entry, &rel)
        } else if ft.is_symlink() {
            append_symlink(&mut tar, &entry, &rel)
        } else if ft.is_file() {
            append_file(
                &mut tar,
                &entry,
                &rel,
                &mut read_buf,
                &mut throttle,
                progress,
                cancel,
            )
        } else {
            let kind = if ft.is_socket() {
                "a socket"
            } else if ft.is_fifo() {
                "a FIFO"
            } else {
                "a device"
            };
            warnings.push(format!("{shown}: skipped, {kind} cannot be backed up"));
            continue;
        };
        match result {
            Ok(Appended::Whole(size)) => {
                content.files += 1;
                content.bytes += size;
            }
            Ok(Appended::Changed(size, what)) => {
                content.files += 1;
                content.bytes += size;
                warnings.push(format!("{shown}: {what} while it was being archived"));
            }
            Ok(Appended::Skipped(why)) => warnings.push(format!("{shown}: skipped, {why}")),
            Err(e) => return Err(classify(e, &format!("cannot archive {shown}"))),
        }
        progress.files.fetch_add(1, Ordering::Relaxed);
    }

    let finish = |e| classify(e, "cannot finish the archive");
    let compressor = tar.into_inner().map_err(finish)?;
    let sink = compressor.finish().map_err(finish)?;
    let (file, sha256, bytes) = sink.into_parts().map_err(finish)?;
    file.sync_all()
        .map_err(|e| classify(e, "cannot sync the archive to disk"))?;
    Ok(Output {
        sha256,
        bytes,
        content,
        warnings,
    })
}

/// How an entry went into the archive.
enum Appended {
    /// Whole, with this many content bytes.
    Whole(u64),
    /// Archived as far as it could be read (padded to its header size): what happened.
    Changed(u64, &'static str),
    /// Left out, and why.
    Skipped(String),
}

type Tar = tar::Builder<Compressor>;

fn header_for(meta: &std::fs::Metadata) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    header
}

fn append_dir(tar: &mut Tar, entry: &DirEntry, rel: &Path) -> io::Result<Appended> {
    let meta = match entry.metadata() {
        Ok(meta) => meta,
        Err(e) => return Ok(Appended::Skipped(format!("cannot read its metadata: {e}"))),
    };
    let mut header = header_for(&meta);
    header.set_size(0);
    tar.append_data(&mut header, rel, io::empty())?;
    Ok(Appended::Whole(0))
}

fn append_symlink(tar: &mut Tar, entry: &DirEntry, rel: &Path) -> io::Result<Appended> {
    let (meta, target) = match (entry.metadata(), std::fs::read_link(entry.path())) {
        (Ok(meta), Ok(target)) => (meta, target),
        (Err(e), _) => return Ok(Appended::Skipped(format!("cannot read its metadata: {e}"))),
        (_, Err(e)) => return Ok(Appended::Skipped(format!("cannot read the link: {e}"))),
    };
    let mut header = header_for(&meta);
    header.set_size(0);
    tar.append_link(&mut header, rel, target)?;
    Ok(Appended::Whole(0))
}

fn append_file(
    tar: &mut Tar,
    entry: &DirEntry,
    rel: &Path,
    read_buf: &mut [u8],
    throttle: &mut Throttle,
    progress: &Progress,
    cancel: &AtomicBool,
) -> io::Result<Appended> {
    // O_NOFOLLOW: if the file was swapped for a symlink since the walk saw it, do not read
    // whatever it points at.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(entry.path());
    let file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Appended::Skipped(
                "it vanished before it could be read".into(),
            ));
        }
        Err(e) => return Ok(Appended::Skipped(format!("cannot open it: {e}"))),
    };
    let meta = match file.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Ok(Appended::Skipped("it is no longer a regular file".into())),
        Err(e) => return Ok(Appended::Skipped(format!("cannot read its metadata: {e}"))),
    };
    let size = meta.len();
    let mut header = header_for(&meta);
    let mut reader = FileReader::new(file, size, read_buf, throttle, progress, cancel);
    tar.append_data(&mut header, rel, &mut reader)?;
    let outcome = reader.outcome();
    Ok(match outcome {
        source::Outcome::Whole => Appended::Whole(size),
        source::Outcome::Shrank => Appended::Changed(size, "shrank or vanished"),
        source::Outcome::Grew => Appended::Changed(size, "grew"),
        source::Outcome::ReadError => Appended::Changed(size, "could not be read completely"),
    })
}

/// Reads a whole stream into a hasher; used to verify archives.
pub fn sha256_of(mut reader: impl Read) -> io::Result<(String, u64)> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}
