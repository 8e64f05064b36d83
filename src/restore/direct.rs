//! Writing large restored files around the page cache (`O_DIRECT`).
//!
//! A restore writes a whole server at once, and all of it must be on disk before the swap.
//! Through the page cache every byte is first copied into freshly allocated cache pages
//! (on a virtual machine whose host reclaimed that memory, this copy alone can take longer
//! than the disk), then written out by `syncfs`, and the cache is left full of files nobody
//! reads yet, evicting what the game beside it had cached. Written directly, a large file
//! goes from one reused buffer to the disk, and `syncfs` is left the small files and the
//! metadata.
//!
//! Direct writes must start and end on block boundaries, so the last partial block of a
//! file is written through the cache. A filesystem that refuses direct I/O (at the open or
//! at a write) gets buffered writes from then on: the data is the same either way.

use crate::safefs::Dir;
use rustix::fs::OFlags;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};

/// Alignment of direct writes, in memory and in the file: the largest logical block size
/// in common use.
const ALIGN: usize = 4096;

/// Files smaller than this are written through the cache: a wait for the disk per file
/// would cost more than the copy it saves, and `syncfs` writes many small files at once.
const DIRECT_MIN: u64 = 256 << 10;

/// Why copying an entry's data into its file stopped.
pub enum CopyError {
    /// The archive could not be read.
    Read(io::Error),
    /// The file could not be written.
    Write(io::Error),
}

/// Creates restored files and writes their data, directly where the filesystem allows it.
pub struct FileWriter {
    /// Over-allocated by [`ALIGN`]: the window of all but that from `start` is aligned.
    buffer: Vec<u8>,
    start: usize,
    /// Cleared the first time the filesystem refuses direct I/O.
    direct: bool,
}

/// A file created by [`FileWriter::create`].
pub struct NewFile {
    pub file: File,
    /// Whether its writes still bypass the cache.
    direct: bool,
}

impl FileWriter {
    /// `chunk` (a multiple of [`ALIGN`]) is the most data written in one call.
    pub fn new(chunk: usize) -> FileWriter {
        debug_assert_eq!(chunk % ALIGN, 0);
        let buffer = vec![0; chunk + ALIGN];
        let start = buffer.as_ptr().align_offset(ALIGN);
        FileWriter {
            buffer,
            start,
            direct: true,
        }
    }

    /// The most data written in one call.
    fn chunk(&self) -> usize {
        self.buffer.len() - ALIGN
    }

    /// Creates the new file `name` in `dir` (mode 0600; an existing file or link there is
    /// an error) for `size` bytes: for direct writes if it is large enough and the
    /// filesystem takes them.
    pub fn create(&mut self, dir: &Dir, name: &OsStr, size: u64) -> io::Result<NewFile> {
        if self.direct && size >= DIRECT_MIN {
            match dir.create_file(name, 0o600, OFlags::DIRECT) {
                Ok(file) => return Ok(NewFile { file, direct: true }),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.direct = false,
                Err(e) => return Err(e),
            }
        }
        let file = dir.create_file(name, 0o600, OFlags::empty())?;
        Ok(NewFile {
            file,
            direct: false,
        })
    }

    /// Copies everything `from` holds into `to`; returns how many bytes.
    pub fn copy(&mut self, from: &mut impl Read, to: &mut NewFile) -> Result<u64, CopyError> {
        let (start, chunk) = (self.start, self.chunk());
        let mut total = 0;
        loop {
            let filled =
                fill(from, &mut self.buffer[start..start + chunk]).map_err(CopyError::Read)?;
            let data = &self.buffer[start..start + filled];
            let written = if to.direct {
                write_direct(to, data, &mut self.direct)
            } else {
                to.file.write_all(data)
            };
            written.map_err(CopyError::Write)?;
            total += filled as u64;
            if filled < chunk {
                return Ok(total);
            }
        }
    }
}

/// Reads into `buf` until it is full or `from` ends; returns how much it holds.
fn fill(from: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match from.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes the whole blocks of `data` directly and the rest through the cache. A short
/// write leaves the file off the block grid and a refusal means the filesystem does not
/// take direct I/O: either way the file goes on buffered (and after a refusal, every
/// later file too, through `allowed`).
fn write_direct(to: &mut NewFile, data: &[u8], allowed: &mut bool) -> io::Result<()> {
    let blocks = data.len() / ALIGN * ALIGN;
    let mut done = 0;
    while done < blocks {
        match to.file.write(&data[done..blocks]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                done += n;
                if n % ALIGN != 0 {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                *allowed = false;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    if done < data.len() {
        let flags = rustix::fs::fcntl_getfl(&to.file)?;
        rustix::fs::fcntl_setfl(&to.file, flags - rustix::fs::OFlags::DIRECT)?;
        to.direct = false;
        to.file.write_all(&data[done..])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory off the block grid makes the kernel refuse a direct write, as a filesystem
    /// without direct I/O would: the file goes on buffered, with every byte in place.
    #[test]
    fn a_refused_direct_write_goes_on_buffered() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("region.mca");
        let dir = Dir::open(tmp.path()).unwrap();
        let mut writer = FileWriter::new(4 * ALIGN);
        let mut to = writer
            .create(&dir, OsStr::new("region.mca"), DIRECT_MIN)
            .unwrap();
        if !to.direct {
            // This filesystem refuses direct I/O at the open already, which `create`
            // handled: there is no direct write to refuse.
            return;
        }
        // One byte past the writer's aligned window.
        let misaligned = writer.start + 1..writer.start + 1 + 3 * ALIGN + 100;
        for (i, byte) in writer.buffer[misaligned.clone()].iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let data = &writer.buffer[misaligned];
        write_direct(&mut to, data, &mut writer.direct).unwrap();
        assert!(!to.direct);
        assert!(!writer.direct);
        drop(to);
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
