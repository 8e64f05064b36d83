//! Extracting an archive into a staging directory without ever writing outside it.
//!
//! Hostile archives are the threat: absolute paths and `..` are refused; every parent
//! directory of an entry must be a real directory inside staging (never a symlink), so no
//! write goes through a link; hard links may point only at files this extraction wrote;
//! symlinks are recreated as data, never followed; devices and FIFOs are skipped;
//! setuid, setgid and sticky bits are dropped; and the entry count and total size may not
//! exceed what the backup's manifest recorded.

use super::Error;
use super::direct::{CopyError, FileWriter};
use crate::archive::Progress;
use crate::model::Compression;
use crate::safefs::{self, Dir, Time};
use rustix::fs::FileType;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// What the archive may hold at most, from the backup's manifest.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

#[derive(Debug, Default)]
pub struct Extracted {
    pub entries: u64,
    pub bytes: u64,
    /// Entries left out (devices, FIFOs...), with the reason.
    pub skipped: Vec<String>,
}

enum Decoder {
    Zstd(zstd::Decoder<'static, ChunkReader>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<ChunkReader>>),
    None(ChunkReader),
}

impl Decoder {
    fn new(source: ChunkReader, compression: Compression) -> io::Result<Decoder> {
        Ok(match compression {
            Compression::Zstd => Decoder::Zstd(zstd::Decoder::with_buffer(source)?),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(source)))
            }
            Compression::None => Decoder::None(source),
        })
    }

    /// The raw source, to read whatever follows the compressed stream.
    fn into_source(self) -> ChunkReader {
        match self {
            Decoder::Zstd(d) => d.finish(),
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::None(b) => b,
        }
    }
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::None(b) => b.read(buf),
        }
    }
}

/// Archive bytes passed from the reading thread to the decompressor: small, since zstd
/// reads its input a block at a time.
const RAW_CHUNK: usize = 256 << 10;
/// Decompressed bytes passed to the unpacking thread: large, so big files are written in
/// few calls.
const CHUNK: usize = 1 << 20;
/// Chunks in circulation on each hop: one filling, one emptying, two waiting.
const BUFFERS: usize = 4;

/// Extracts `archive` into the empty directory `staging`, then checks the archive's
/// SHA-256 against `expected_sha256`: [`Error::Mismatch`] if it differs, with staging left
/// whole, since whether a corrupt archive may be restored is the caller's decision.
///
/// Three threads overlap: one reads the archive and hashes it, one decompresses what was
/// hashed, and the calling thread parses the tar stream and writes the files, large ones
/// straight to the disk (a fourth starts the others' writeback). The hash covers exactly
/// the bytes decompressed.
pub fn extract(
    archive: &Path,
    compression: Compression,
    expected_sha256: &str,
    staging: &Dir,
    limits: Limits,
    progress: &Progress,
    cancel: &AtomicBool,
) -> Result<Extracted, Error> {
    let file = File::open(archive).map_err(|e| Error::io("open", "the archive", e))?;
    // The buffers are made here, on the job's long-lived thread, and lent to the others:
    // memory first allocated by a thread that then exits tends to stay with the process.
    let (to_decoder, raw) = Hop::new(RAW_CHUNK);
    let (to_unpacker, stream) = Hop::new(CHUNK);
    std::thread::scope(|scope| {
        // Owned by this closure, the stream is dropped as a panic leaves it, which stops the
        // other threads before the scope waits for them.
        let mut stream = stream;
        let hashing = std::thread::Builder::new()
            .name("restore-hasher".into())
            .spawn_scoped(scope, move || read_and_hash(file, progress, to_decoder))
            .map_err(|e| Error::io("start", "the archive reader", e))?;
        let decompressing = std::thread::Builder::new()
            .name("restore-decoder".into())
            .spawn_scoped(scope, move || decompress(raw, compression, to_unpacker))
            .map_err(|e| Error::io("start", "the decompressor", e))?;
        let (to_writeback, written) = crossbeam_channel::bounded(256);
        let writeback = std::thread::Builder::new()
            .name("restore-writeback".into())
            .spawn_scoped(scope, move || start_writeback(written))
            .map_err(|e| Error::io("start", "the writeback thread", e))?;
        let unpacked = unpack(&mut stream, to_writeback, staging, limits, cancel);
        let _ = writeback.join();
        // Whatever follows the tar end is read too, so the hash covers the whole file; on
        // failure, dropping the stream stops the other threads.
        if unpacked.is_ok() {
            let _ = io::copy(&mut stream, &mut io::sink());
        }
        drop(stream);
        let decoded = decompressing
            .join()
            .unwrap_or_else(|_| Err("the decompressor crashed".into()));
        let hashed = hashing
            .join()
            .unwrap_or_else(|_| Err("the archive reader crashed".into()));
        match (
            unpacked,
            decoded.map_err(Error::Archive),
            hashed.map_err(Error::Archive),
        ) {
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            (Ok(done), Ok(()), Ok(actual)) if actual == expected_sha256 => Ok(done),
            (Ok(extracted), Ok(()), Ok(found)) => Err(Error::Mismatch {
                expected: expected_sha256.to_string(),
                found,
                extracted,
            }),
        }
    })
}

/// Starts the kernel writing each finished file to disk and closes it, so that the
/// `syncfs` before the swap finds little left to write; neither waits for the disk.
fn start_writeback(files: crossbeam_channel::Receiver<File>) {
    for file in files {
        safefs::start_writeback(&file, 0, 0);
    }
}

type Chunk = Result<Vec<u8>, String>;

/// One hop between two threads: the sending side takes empty buffers from `free`, fills
/// them and sends them; the receiving side ([`ChunkReader`]) reads them and gives them back.
struct Hop {
    out: crossbeam_channel::Sender<Chunk>,
    free: crossbeam_channel::Receiver<Vec<u8>>,
    chunk: usize,
}

impl Hop {
    fn new(chunk: usize) -> (Hop, ChunkReader) {
        let (out, chunks) = crossbeam_channel::bounded(BUFFERS);
        let (give_back, free) = crossbeam_channel::bounded(BUFFERS);
        for _ in 0..BUFFERS {
            let _ = give_back.send(Vec::with_capacity(chunk));
        }
        let reader = ChunkReader {
            chunks,
            give_back,
            current: Vec::new(),
            pos: 0,
        };
        (Hop { out, free, chunk }, reader)
    }

    /// Fills the next buffer from `source` (at most a chunk) and sends it; false once the
    /// source is exhausted. Err if the source failed (the reason also goes to the reader)
    /// or the reader is gone.
    fn pass(&self, source: &mut impl Read, on_chunk: impl FnOnce(&[u8])) -> Result<bool, String> {
        let Ok(mut buf) = self.free.recv() else {
            return Err("extraction stopped".into());
        };
        buf.clear();
        match source.take(self.chunk as u64).read_to_end(&mut buf) {
            Ok(0) => Ok(false),
            Ok(_) => {
                on_chunk(&buf);
                self.out
                    .send(Ok(buf))
                    .map(|()| true)
                    .map_err(|_| "extraction stopped".into())
            }
            Err(e) => {
                let reason = corrupt_reason(&e);
                let _ = self.out.send(Err(reason.clone()));
                Err(reason)
            }
        }
    }
}

/// The reading thread: reads the archive, hashes and counts each chunk, and passes it to
/// the decompressor. Returns the hex SHA-256 of the whole file.
fn read_and_hash(mut file: File, progress: &Progress, out: Hop) -> Result<String, String> {
    let mut hasher = Sha256::new();
    while out.pass(&mut file, |chunk| {
        hasher.update(chunk);
        progress
            .bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    })? {}
    Ok(hex::encode(hasher.finalize()))
}

/// The decompressing thread: sends the tar stream on, then reads whatever follows it so the
/// reading thread hashes the whole file.
fn decompress(raw: ChunkReader, compression: Compression, out: Hop) -> Result<(), String> {
    // gzip reads its header as it starts: only here, once the reading thread runs.
    let mut decoder = match Decoder::new(raw, compression) {
        Ok(decoder) => decoder,
        Err(e) => {
            let reason = corrupt_reason(&e);
            let _ = out.out.send(Err(reason.clone()));
            return Err(reason);
        }
    };
    while out.pass(&mut decoder, |_| {})? {}
    drop(out);
    let mut source = decoder.into_source();
    io::copy(&mut source, &mut io::sink()).map_err(|e| corrupt_reason(&e))?;
    Ok(())
}

/// Reads what a [`Hop`] sends.
struct ChunkReader {
    chunks: crossbeam_channel::Receiver<Chunk>,
    give_back: crossbeam_channel::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(next)) => {
                    let used = std::mem::replace(&mut self.current, next);
                    if used.capacity() > 0 {
                        let _ = self.give_back.try_send(used);
                    }
                    self.pos = 0;
                }
                Ok(Err(reason)) => return Err(io::Error::other(reason)),
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.current.len());
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = out.len().min(available.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Parses the tar stream and writes its entries into `staging`.
fn unpack(
    stream: &mut ChunkReader,
    written: crossbeam_channel::Sender<File>,
    staging: &Dir,
    limits: Limits,
    cancel: &AtomicBool,
) -> Result<Extracted, Error> {
    let mut tar = tar::Archive::new(stream);
    let mut state = State {
        staging,
        cwd: staging
            .try_clone()
            .map_err(|e| Error::io("open", "the staging directory", e))?,
        cwd_rel: PathBuf::new(),
        limits,
        done: Extracted::default(),
        files: HashSet::new(),
        dirs: Vec::new(),
        as_root: running_as_root(),
        writer: FileWriter::new(CHUNK),
        written,
    };
    let entries = tar.entries().map_err(|e| corrupt(&e))?;
    for entry in entries {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let mut entry = entry.map_err(|e| corrupt(&e))?;
        state.entry(&mut entry)?;
    }
    state.finish_dirs();
    Ok(state.done)
}

fn corrupt(e: &io::Error) -> Error {
    Error::Archive(corrupt_reason(e))
}

fn corrupt_reason(e: &io::Error) -> String {
    let text = e.to_string();
    if text.starts_with("the archive is corrupt") {
        text
    } else {
        format!("the archive is corrupt or unreadable: {text}")
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A relative path with no `..` and no root; None for the archive root itself.
fn safe_relative(bytes: &[u8]) -> Result<Option<PathBuf>, Error> {
    let shown = String::from_utf8_lossy(bytes);
    if bytes.first() == Some(&b'/') {
        return Err(Error::Archive(format!(
            "the archive holds an absolute path ({shown})"
        )));
    }
    let mut out = PathBuf::new();
    for part in bytes.split(|&b| b == b'/') {
        match part {
            b"" | b"." => continue,
            b".." => {
                return Err(Error::Archive(format!(
                    "the archive holds a path that climbs out with '..' ({shown})"
                )));
            }
            _ => out.push(OsStr::from_bytes(part)),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

struct State<'a> {
    staging: &'a Dir,
    /// The directory the last entry went into, and its path: archives list a directory's
    /// entries together, so most entries go where the one before went.
    cwd: Dir,
    cwd_rel: PathBuf,
    limits: Limits,
    done: Extracted,
    /// Regular files written so far: the only valid hard-link targets.
    files: HashSet<PathBuf>,
    /// Directories with the mode and mtime to give them once their contents are in.
    dirs: Vec<(PathBuf, u32, Time)>,
    as_root: bool,
    /// Creates the files and writes their data, in writes of up to 1 MiB.
    writer: FileWriter,
    /// Finished files go to the writeback thread, which starts writing them to disk.
    written: crossbeam_channel::Sender<File>,
}

impl State<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), Error> {
        let Some(rel) = safe_relative(&entry.path_bytes())? else {
            return Ok(());
        };
        let shown = rel.display().to_string();
        self.done.entries += 1;
        if self.done.entries > self.limits.max_entries {
            return Err(Error::Archive(format!(
                "the archive holds more entries than its manifest records ({}): it was tampered with",
                self.limits.max_entries
            )));
        }
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o777;
        // Archives written before hoard kept times before 1970 out of them hold such a time
        // as its two's complement: read as signed, it is that time again.
        let mtime = Time {
            secs: header.mtime().unwrap_or(0) as i64,
            nanos: 0,
        };
        let owner = (
            header.uid().ok().map(|u| u as u32),
            header.gid().ok().map(|g| g as u32),
        );
        let name = rel.file_name().unwrap_or_default().to_os_string();
        self.enter_parent(&rel)?;
        let io_err = |action: &'static str, e: io::Error| Error::io(action, &shown, e);
        match kind {
            tar::EntryType::Directory => {
                match self.cwd.stat(&name).map_err(|e| io_err("inspect", e))? {
                    Some(found) if safefs::kind(&found) == FileType::Directory => {}
                    Some(_) => {
                        self.remove(&name, &rel).map_err(|e| io_err("replace", e))?;
                        self.cwd
                            .create_dir(&name, 0o700)
                            .map_err(|e| io_err("create", e))?;
                    }
                    None => self
                        .cwd
                        .create_dir(&name, 0o700)
                        .map_err(|e| io_err("create", e))?,
                }
                self.chown(&name, owner);
                self.dirs.push((rel, mode, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                if self.done.bytes + size > self.limits.max_bytes {
                    return Err(Error::Archive(format!(
                        "the archive holds more data than its manifest records ({} bytes): it was tampered with",
                        self.limits.max_bytes
                    )));
                }
                self.remove(&name, &rel).map_err(|e| io_err("replace", e))?;
                let mut out = self
                    .writer
                    .create(&self.cwd, &name, size)
                    .map_err(|e| io_err("create", e))?;
                let written = self.writer.copy(entry, &mut out).map_err(|e| match e {
                    CopyError::Read(e) => corrupt(&e),
                    CopyError::Write(e) => io_err("write", e),
                })?;
                let out = out.file;
                if written != size {
                    return Err(Error::Archive(format!(
                        "the entry {shown} declares {size} bytes but the archive holds only {written}"
                    )));
                }
                self.done.bytes += size;
                out.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err("set the mode of", e))?;
                if self.as_root {
                    let _ = std::os::unix::fs::fchown(&out, owner.0, owner.1);
                }
                let mtime = filetime::FileTime::from_unix_time(mtime.secs, mtime.nanos);
                filetime::set_file_handle_times(&out, None, Some(mtime))
                    .map_err(|e| io_err("set the time of", e))?;
                self.written(out);
                self.files.insert(rel);
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::Archive(format!("the symlink {shown} has no target")))?
                    .into_owned();
                self.remove(&name, &rel).map_err(|e| io_err("replace", e))?;
                self.cwd
                    .symlink(OsStr::from_bytes(&target), &name)
                    .map_err(|e| io_err("create", e))?;
                self.chown(&name, owner);
                let _ = self.cwd.set_time_of(&name, mtime);
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::Archive(format!("the hard link {shown} has no target")))?
                    .into_owned();
                let target = safe_relative(&target)?
                    .filter(|t| self.files.contains(t))
                    .ok_or_else(|| {
                        Error::Archive(format!(
                            "the hard link {shown} points at {}, which is not a file extracted before it",
                            String::from_utf8_lossy(&target)
                        ))
                    })?;
                self.remove(&name, &rel).map_err(|e| io_err("replace", e))?;
                let target_dir = self
                    .staging
                    .open_dir(target.parent().unwrap_or(Path::new("")))
                    .map_err(|e| io_err("link", e))?;
                self.cwd
                    .hard_link(&target_dir, target.file_name().unwrap_or_default(), &name)
                    .map_err(|e| io_err("create", e))?;
                self.files.insert(rel);
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.done.skipped.push(format!(
                    "{shown}: skipped, device nodes and FIFOs are not restored"
                ));
            }
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {
                self.done.entries -= 1;
            }
            other => {
                self.done.skipped.push(format!(
                    "{shown}: skipped, unsupported entry type {:?}",
                    other.as_byte() as char
                ));
            }
        }
        Ok(())
    }

    /// Hands a finished file to the writeback thread (or closes it if that thread is gone).
    fn written(&self, file: File) {
        let _ = self.written.send(file);
    }

    /// Opens the directory `rel` goes into as `cwd`, creating what is missing of it: each
    /// step must be a real directory inside staging, never a symlink or a file.
    fn enter_parent(&mut self, rel: &Path) -> Result<(), Error> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if parent == self.cwd_rel {
            return Ok(());
        }
        let opened = match parent.strip_prefix(&self.cwd_rel) {
            Ok(rest) => self
                .cwd
                .try_clone()
                .map(|d| (d, self.cwd_rel.clone(), rest)),
            Err(_) => self
                .staging
                .try_clone()
                .map(|d| (d, PathBuf::new(), parent)),
        };
        let (mut dir, mut at, rest) =
            opened.map_err(|e| Error::io("open", "the staging directory", e))?;
        for part in rest.iter() {
            at.push(part);
            dir = match dir.child(part) {
                Ok(next) => next,
                Err(e) if e.kind() == io::ErrorKind::NotFound => dir
                    .create_dir(part, 0o755)
                    .and_then(|()| dir.child(part))
                    .map_err(|e| Error::io("create", &at.display().to_string(), e))?,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                    return Err(Error::Archive(format!(
                        "the archive writes through {}, which is not a directory (a symlink or file): refused",
                        at.display()
                    )));
                }
                Err(e) => return Err(Error::io("inspect", &at.display().to_string(), e)),
            };
        }
        self.cwd = dir;
        self.cwd_rel = at;
        Ok(())
    }

    /// Removes what a later entry of the same path replaces (never following links), and
    /// forgets it as a link target and a directory to finish.
    fn remove(&mut self, name: &OsStr, rel: &Path) -> io::Result<()> {
        if self.cwd.remove(name)? {
            self.files.retain(|f| !f.starts_with(rel));
            self.dirs.retain(|(d, _, _)| !d.starts_with(rel));
        }
        Ok(())
    }

    fn chown(&self, name: &OsStr, (uid, gid): (Option<u32>, Option<u32>)) {
        if self.as_root {
            let _ = self.cwd.set_owner_of(name, uid, gid);
        }
    }

    /// Gives directories their modes and times, deepest first, now that nothing more is
    /// written into them.
    fn finish_dirs(&mut self) {
        self.dirs.sort_by(|a, b| b.0.cmp(&a.0));
        for (rel, mode, mtime) in &self.dirs {
            if let Ok(dir) = self.staging.open_dir(rel) {
                let _ = dir.set_mode_and_time(*mode, *mtime);
            }
        }
    }
}
