//! Writing restored files' data: on a thread of its own, and large files around the page
//! cache (`O_DIRECT`).
//!
//! A restore writes a whole server at once, and all of it must be on disk before the swap.
//! Through the page cache every byte is first copied into freshly allocated cache pages
//! (on a virtual machine whose host reclaimed that memory, this copy alone can take longer
//! than the disk), then written out by `syncfs`, and the cache is left full of files nobody
//! reads yet, evicting what the game beside it had cached. Written directly, a large file
//! goes from a few reused buffers to the disk, and `syncfs` is left the small files and the
//! metadata. The unpacking thread parses the archive and creates the next files while this
//! thread waits for the disk.
//!
//! Direct writes must start and end on block boundaries, so the last partial block of a
//! file is written through the cache. A filesystem that refuses direct I/O (at the open or
//! at a write) gets buffered writes from then on: the data is the same either way.

use crossbeam_channel::{Receiver, Sender};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Alignment of direct writes, in memory and in the file: the largest logical block size
/// in common use.
const ALIGN: usize = 4096;

/// Files smaller than this are written through the cache: a wait for the disk per file
/// would cost more than the copy it saves, and `syncfs` writes many small files at once.
const DIRECT_MIN: u64 = 256 << 10;

/// Buffers in circulation: one filling, one writing, one waiting.
const BUFFERS: usize = 3;

/// What a finished file is given once its data is written (writing would change its time).
pub struct Finish {
    pub mode: u32,
    /// Set only when hoard runs as root.
    pub owner: Option<(Option<u32>, Option<u32>)>,
    pub mtime: filetime::FileTime,
}

/// What the unpacking thread asks of the writing thread, in order.
enum Op {
    /// The file the following data goes to.
    Open(Target),
    Data(Buffer),
    Finish(Finish),
}

/// A file being written.
struct Target {
    file: File,
    /// Whether its writes still bypass the cache.
    direct: bool,
    /// Its path in the archive, for errors.
    shown: String,
}

/// A buffer whose window (`len` bytes from `start`) is aligned for direct I/O.
struct Buffer {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl Buffer {
    fn new(capacity: usize) -> Buffer {
        let bytes = vec![0; capacity + ALIGN];
        let start = bytes.as_ptr().align_offset(ALIGN);
        Buffer {
            bytes,
            start,
            len: 0,
        }
    }

    fn capacity(&self) -> usize {
        self.bytes.len() - ALIGN
    }

    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    /// Reads into the window until it is full or `from` ends.
    fn fill(&mut self, from: &mut impl Read) -> io::Result<()> {
        let window = self.start..self.start + self.capacity();
        let window = &mut self.bytes[window];
        self.len = 0;
        while self.len < window.len() {
            match from.read(&mut window[self.len..]) {
                Ok(0) => break,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The unpacking thread's end: creates files and hands their data over.
pub struct Files {
    ops: Sender<Op>,
    free: Receiver<Buffer>,
    /// Cleared the first time the filesystem refuses direct I/O.
    direct: Arc<AtomicBool>,
}

/// The writing thread's end: see [`Writer::run`].
pub struct Writer {
    ops: Receiver<Op>,
    give_back: Sender<Buffer>,
    direct: Arc<AtomicBool>,
}

/// Why a file could not be handed over.
pub enum FileError {
    /// The file could not be created.
    Create(io::Error),
    /// The archive could not be read.
    Read(io::Error),
    /// The writing thread stopped on an error of its own, which [`Writer::run`] returns.
    Stopped,
}

/// The two ends, with buffers of `chunk` bytes (a multiple of [`ALIGN`]).
pub fn channel(chunk: usize) -> (Files, Writer) {
    debug_assert_eq!(chunk % ALIGN, 0);
    let (ops, received) = crossbeam_channel::bounded(BUFFERS);
    let (give_back, free) = crossbeam_channel::bounded(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = give_back.send(Buffer::new(chunk));
    }
    let direct = Arc::new(AtomicBool::new(true));
    let files = Files {
        ops,
        free,
        direct: direct.clone(),
    };
    let writer = Writer {
        ops: received,
        give_back,
        direct,
    };
    (files, writer)
}

impl Files {
    /// Creates the new file `path` (mode 0600; an existing file or link there is an error)
    /// for `size` bytes, which [`Files::copy`] then fills. It exists when this returns, so
    /// that a hard link may point at it.
    pub fn create(&self, path: &Path, size: u64, shown: &str) -> Result<(), FileError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        if size >= DIRECT_MIN && self.direct.load(Ordering::Relaxed) {
            options.custom_flags(libc::O_NOFOLLOW | libc::O_DIRECT);
            match options.open(path) {
                Ok(file) => return self.open(file, true, shown),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(FileError::Create(e)),
            }
        }
        let file = options
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(FileError::Create)?;
        self.open(file, false, shown)
    }

    fn open(&self, file: File, direct: bool, shown: &str) -> Result<(), FileError> {
        let shown = shown.to_string();
        self.send(Op::Open(Target {
            file,
            direct,
            shown,
        }))
    }

    /// Hands everything `from` holds over to the file last created; returns how many bytes.
    pub fn copy(&self, from: &mut impl Read) -> Result<u64, FileError> {
        let mut total = 0;
        loop {
            let mut buffer = self.free.recv().map_err(|_| FileError::Stopped)?;
            buffer.fill(from).map_err(FileError::Read)?;
            let (filled, full) = (buffer.len, buffer.len == buffer.capacity());
            if filled == 0 {
                // Sent empty all the same: only the writing thread puts buffers back.
                let _ = self.send(Op::Data(buffer));
                return Ok(total);
            }
            self.send(Op::Data(buffer))?;
            total += filled as u64;
            if !full {
                return Ok(total);
            }
        }
    }

    /// The file last created is complete.
    pub fn finish(&self, finish: Finish) -> Result<(), FileError> {
        self.send(Op::Finish(finish))
    }

    fn send(&self, op: Op) -> Result<(), FileError> {
        self.ops.send(op).map_err(|_| FileError::Stopped)
    }
}

impl Writer {
    /// Writes what [`Files`] hands over until it is dropped. Each finished file gets its
    /// mode, owner and time, has its writeback started (so `syncfs` finds little left to
    /// write) and is closed. Err names the file and what failed.
    pub fn run(self) -> Result<(), String> {
        let mut current = None;
        for op in &self.ops {
            match op {
                Op::Open(target) => current = Some(target),
                Op::Data(buffer) => {
                    if let Some(target) = &mut current
                        && buffer.len > 0
                    {
                        self.write(target, buffer.data())
                            .map_err(|e| format!("cannot write {}: {e}", target.shown))?;
                    }
                    let _ = self.give_back.send(buffer);
                }
                Op::Finish(finish) => {
                    if let Some(target) = current.take() {
                        finish_file(&target, finish)?;
                        crate::storage::start_writeback(&target.file, 0, 0);
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes `data` at the end of the file. With direct writes, the whole blocks go
    /// directly and the rest through the cache. A short write leaves the file off the
    /// block grid and a refusal means the filesystem does not take direct I/O: either way
    /// the file goes on buffered (and after a refusal, every later file too).
    fn write(&self, target: &mut Target, data: &[u8]) -> io::Result<()> {
        if !target.direct {
            return target.file.write_all(data);
        }
        let file = &mut target.file;
        let blocks = data.len() / ALIGN * ALIGN;
        let mut done = 0;
        while done < blocks {
            match file.write(&data[done..blocks]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    if n % ALIGN != 0 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct.store(false, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if done < data.len() {
            let flags = rustix::fs::fcntl_getfl(&*file)?;
            rustix::fs::fcntl_setfl(&*file, flags - rustix::fs::OFlags::DIRECT)?;
            target.direct = false;
            file.write_all(&data[done..])?;
        }
        Ok(())
    }
}

fn finish_file(Target { file, shown, .. }: &Target, finish: Finish) -> Result<(), String> {
    file.set_permissions(std::fs::Permissions::from_mode(finish.mode))
        .map_err(|e| format!("cannot set the mode of {shown}: {e}"))?;
    if let Some((uid, gid)) = finish.owner {
        let _ = std::os::unix::fs::fchown(file, uid, gid);
    }
    filetime::set_file_handle_times(file, None, Some(finish.mtime))
        .map_err(|e| format!("cannot set the time of {shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory off the block grid makes the kernel refuse a direct write, as a filesystem
    /// without direct I/O would: the file goes on buffered, with every byte in place.
    #[test]
    fn a_refused_direct_write_goes_on_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("region.mca");
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path);
        let file = match opened {
            Ok(file) => file,
            // Refused at the open already, which `Files::create` handles.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(e) => panic!("{e}"),
        };
        let (_files, writer) = channel(4 * ALIGN);
        let mut source = Buffer::new(4 * ALIGN);
        for (i, byte) in source.bytes.iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let misaligned = &source.bytes[source.start + 1..source.start + 1 + 3 * ALIGN + 100];
        let mut target = Target {
            file,
            direct: true,
            shown: "region.mca".into(),
        };
        writer.write(&mut target, misaligned).unwrap();
        assert!(!target.direct);
        assert!(!writer.direct.load(Ordering::Relaxed));
        drop(target);
        assert_eq!(std::fs::read(&path).unwrap(), misaligned);
    }
}
