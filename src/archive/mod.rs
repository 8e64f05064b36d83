//! The archiver: walks a server directory and writes it as one tar stream, compressed,
//! hashed and counted in the same pass, into a file. It knows nothing of HTTP or the
//! database; the job that runs it records progress from [`Progress`].

mod exclude;
mod fingerprint;
mod sink;
mod source;
mod walk;

pub use exclude::{Exclusions, IGNORE_FILE, split_patterns};

use crate::model::Compression;
use crate::safefs::Dir;
use sink::Frames;
use source::{FileReader, Throttle};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use walk::{Entry, Kind, Step};

/// How to write one archive.
#[derive(Debug, Clone)]
pub struct Options {
    pub compression: Compression,
    pub zstd_level: i32,
    /// Compression worker threads (zstd and gzip), besides the walk and the writer.
    pub threads: u32,
    pub gzip_level: u32,
    /// Cap on reading server files, bytes per second; 0 for none.
    pub read_limit_bytes_per_sec: u64,
    /// The archive file may not grow past this many bytes.
    pub max_bytes: u64,
    /// Leave out what cannot be read (with a warning) instead of failing the archive.
    pub skip_unreadable: bool,
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

/// What the sizing walk before archiving found: the counts, and the tree's fingerprint (see
/// `fingerprint`) in hex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    pub files: u64,
    pub bytes: u64,
    pub fingerprint: String,
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
    /// Entries left out, or archived short, because they could not be read (only with
    /// `skip_unreadable`), relative to the server directory.
    pub unreadable: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the archive grew past this server's size limit of {limit} bytes (max_backup_bytes)")]
    LimitExceeded { limit: u64 },
    #[error("the backup was cancelled: {0}")]
    Cancelled(String),
    #[error("the disk holding the backups is full")]
    DiskFull,
    #[error(
        "cannot read {path}: {source}. Nothing that exists may be left out of a backup \
         silently: fix the cause, or set skip_unreadable on the server to back up the rest \
         (the backup is then completed_with_warnings)"
    )]
    Unreadable { path: String, source: io::Error },
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

/// Counts what a backup of `root` will hold, for progress and space checks, and
/// fingerprints it, on `threads` threads.
pub fn scan(root: &Path, exclusions: &Exclusions, threads: usize) -> Survey {
    let tally = match Dir::open(root) {
        Ok(root) => walk::count(root, exclusions, threads),
        Err(_) => walk::Tally::default(),
    };
    Survey {
        files: tally.entries,
        bytes: tally.bytes,
        fingerprint: tally.fingerprint.to_hex(),
    }
}

/// Writes the archive of `root` to `dest` (created, synced on success, removed on failure).
pub fn write(
    root: &Path,
    exclusions: &Exclusions,
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
    exclusions: &Exclusions,
    dest: &Path,
    options: &Options,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<Output, Error> {
    // A server directory replaced by a symlink is not followed to wherever it points.
    let root_dir = Dir::open(root).map_err(|e| classify(e, "cannot open the server directory"))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| classify(e, &format!("cannot create {}", dest.display())))?;
    let frames =
        Frames::new(file, options).map_err(|e| classify(e, "cannot start the compressor"))?;
    let mut tar = tar::Builder::new(frames);
    tar.follow_symlinks(false);
    let mut warnings: Vec<String> = exclusions.notes.clone();
    let mut content = Scan::default();
    let mut throttle = Throttle::new(options.read_limit_bytes_per_sec);

    let mut unreadable = Vec::new();
    walk::walk(root_dir, exclusions, |step| {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled("hoard is shutting down".into()));
        }
        let (rel, missed) = match step {
            Step::Entry(entry) => {
                let appended = append(&mut tar, &entry, &mut throttle, progress, cancel)
                    .map_err(|e| classify(e, &format!("cannot archive {}", shown(entry.rel))))?;
                let (size, note, missed) = match appended {
                    Appended::Whole(size) => (Some(size), None, None),
                    Appended::Changed(size, what) => {
                        let note =
                            format!("{}: {what} while it was being archived", shown(entry.rel));
                        (Some(size), Some(note), None)
                    }
                    Appended::Skipped(why) => (
                        None,
                        Some(format!("{}: skipped, {why}", shown(entry.rel))),
                        None,
                    ),
                    Appended::Unreadable(size, e) => (size, None, Some(e)),
                };
                if let Some(size) = size {
                    content.files += 1;
                    content.bytes += size;
                    progress.files.fetch_add(1, Ordering::Relaxed);
                }
                warnings.extend(note);
                match missed {
                    Some(e) => (entry.rel, e),
                    None => return Ok(()),
                }
            }
            Step::Unreadable(rel, e) if vanished(&e) && !rel.as_os_str().is_empty() => {
                warnings.push(format!(
                    "{}: skipped, it vanished while it was being archived",
                    shown(rel)
                ));
                return Ok(());
            }
            Step::DataDir(rel) => {
                let note = format!("{}: skipped, it is hoard's data directory", shown(rel));
                warnings.push(note);
                return Ok(());
            }
            Step::Unreadable(rel, e) => (rel, e),
        };
        // The server directory itself: there would be nothing to back up.
        let is_root = rel.as_os_str().is_empty();
        if !options.skip_unreadable || is_root {
            let path = if is_root {
                root.to_path_buf()
            } else {
                root.join(rel)
            };
            return Err(Error::Unreadable {
                path: path.display().to_string(),
                source: missed,
            });
        }
        unreadable.push(rel.to_string_lossy().into_owned());
        warnings.push(format!("{}: could not be read: {missed}", shown(rel)));
        Ok(())
    })?;

    let finish = |e| classify(e, "cannot finish the archive");
    let (file, sha256, bytes) = tar.into_inner().and_then(Frames::finish).map_err(finish)?;
    file.sync_all()
        .map_err(|e| classify(e, "cannot sync the archive to disk"))?;
    Ok(Output {
        sha256,
        bytes,
        content,
        warnings,
        unreadable,
    })
}

/// Whether an error means the entry vanished or changed type since the walk listed it (the
/// server is running: a warning), rather than that hoard cannot read what exists.
fn vanished(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENXIO)
    )
}

/// Appends one entry; I/O errors are the archive's own (writing it failed).
fn append(
    tar: &mut Tar,
    entry: &Entry,
    throttle: &mut Throttle,
    progress: &Progress,
    cancel: &AtomicBool,
) -> io::Result<Appended> {
    match &entry.kind {
        Kind::Dir(meta) => append_dir(tar, meta, entry.rel),
        Kind::Symlink => append_symlink(tar, entry),
        Kind::File => append_file(tar, entry, throttle, progress, cancel),
        Kind::Special(what) => Ok(Appended::Skipped(format!("{what} cannot be backed up"))),
    }
}

/// How an entry went into the archive.
enum Appended {
    /// Whole, with this many content bytes.
    Whole(u64),
    /// Archived as far as it could be read (padded to its header size): what happened.
    Changed(u64, &'static str),
    /// Left out, and why: it is not something a backup holds, or it changed under the walk.
    Skipped(String),
    /// Could not be read though it exists: left out (None), or archived as far as it could
    /// be read (its content bytes).
    Unreadable(Option<u64>, io::Error),
}

type Tar = tar::Builder<Frames>;

/// tar's block: every entry's data is padded to a multiple of it.
const BLOCK: u64 = 512;

fn header_for(meta: &std::fs::Metadata) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    // tar would store a time before 1970 as a huge unsigned number, which system tar
    // refuses ("out of time_t range"); such a time is the epoch in the archive instead.
    if meta.mtime() < 0 {
        header.set_mtime(0);
    }
    header
}

fn shown(rel: &Path) -> std::borrow::Cow<'_, str> {
    rel.to_string_lossy()
}

fn append_dir(tar: &mut Tar, meta: &std::fs::Metadata, rel: &Path) -> io::Result<Appended> {
    let mut header = header_for(meta);
    header.set_size(0);
    tar.append_data(&mut header, rel, io::empty())?;
    Ok(Appended::Whole(0))
}

fn append_symlink(tar: &mut Tar, entry: &Entry) -> io::Result<Appended> {
    let (meta, target) = match entry.read_symlink() {
        Ok(found) => found,
        Err(e) if vanished(&e) || e.kind() == io::ErrorKind::InvalidInput => {
            return Ok(Appended::Skipped("it vanished or changed type".into()));
        }
        Err(e) => return Ok(Appended::Unreadable(None, e)),
    };
    if !meta.file_type().is_symlink() {
        return Ok(Appended::Skipped("it is no longer a symlink".into()));
    }
    let mut header = header_for(&meta);
    header.set_size(0);
    tar.append_link(&mut header, entry.rel, target)?;
    Ok(Appended::Whole(0))
}

fn append_file(
    tar: &mut Tar,
    entry: &Entry,
    throttle: &mut Throttle,
    progress: &Progress,
    cancel: &AtomicBool,
) -> io::Result<Appended> {
    let file = match entry.open() {
        Ok(file) => file,
        Err(e) if vanished(&e) => {
            return Ok(Appended::Skipped(
                "it vanished or changed type before it could be read".into(),
            ));
        }
        Err(e) => return Ok(Appended::Unreadable(None, e)),
    };
    let meta = match file.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Ok(Appended::Skipped("it is no longer a regular file".into())),
        Err(e) => return Ok(Appended::Unreadable(None, e)),
    };
    let size = meta.len();
    let mut header = header_for(&meta);
    let mut reader = FileReader::new(file, size, throttle, progress, cancel);
    // tar would copy the data through an 8 KiB buffer: it writes the header (and a long
    // name's extra entry), and the data goes from the read buffer straight on, padded to
    // whole blocks as the format wants.
    tar.append_data(&mut header, entry.rel, io::empty())?;
    let out = tar.get_mut();
    reader.copy_to(out)?;
    let partial = (size % BLOCK) as usize;
    if partial > 0 {
        out.write_all(&[0; BLOCK as usize][partial..])?;
    }
    Ok(match reader.outcome() {
        source::Outcome::Whole => Appended::Whole(size),
        source::Outcome::Shrank => Appended::Changed(size, "shrank or vanished"),
        source::Outcome::Grew => Appended::Changed(size, "grew"),
        source::Outcome::ReadError(e) => Appended::Unreadable(Some(size), e),
    })
}

/// SHA-256 and size of an archive file, counting the bytes read into `progress`; None if
/// `cancel` was set. Read pages are dropped from the page cache as it goes: archives are
/// re-read now and then to verify them, and must not evict what the game servers keep
/// cached.
pub fn hash_file(
    mut file: std::fs::File,
    progress: &AtomicU64,
    cancel: &AtomicBool,
) -> io::Result<Option<(String, u64)>> {
    use sha2::Digest;
    const DROP_EVERY: u64 = 8 << 20;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut total, mut dropped) = (0u64, 0u64);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        progress.store(total, Ordering::Relaxed);
        if total - dropped >= DROP_EVERY {
            crate::safefs::drop_cached(&file, 0, total);
            dropped = total;
        }
    }
    crate::safefs::drop_cached(&file, 0, 0);
    Ok(Some((hex::encode(hasher.finalize()), total)))
}
