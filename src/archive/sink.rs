//! The output side of the archiver: the tar stream is handed to a thread that feeds the
//! compressor, whose output is handed to a thread that hashes it and writes the file.

use super::{Abort, Options};
use crate::model::Compression;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The archive is handed to the disk every this many bytes while it is written, so the
/// final fsync finds little left to write instead of the whole file; each such window is
/// dropped from the page cache once the next one is started.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Input per zstd worker job.
const ZSTD_JOB_BYTES: u32 = 1 << 20;

/// Input per gzip member when several threads compress: 1 MiB was no faster and held 12 MiB
/// more.
const GZIP_BLOCK_BYTES: usize = 512 << 10;

/// Compressed bytes handed to the writing thread at a time.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the compressor and the writing thread.
const IN_FLIGHT: usize = 4;

/// A writer that hands its bytes, in chunks, to a thread that writes them into another
/// writer: the caller goes on while that writer works or waits. Chunks are recycled, so
/// after the first few nothing is allocated.
///
/// Dropped before [`Handoff::finish`] (the archive failed), it abandons what is still
/// queued and waits for the thread, so no thread of a failed job outlives it.
pub struct Handoff<T: Send + 'static> {
    /// The chunk being filled: always `chunk_size` long, `filled` of it in use.
    chunk: Vec<u8>,
    filled: usize,
    chunk_size: usize,
    to_thread: Option<crossbeam_channel::Sender<(Vec<u8>, usize)>>,
    recycled: crossbeam_channel::Receiver<Vec<u8>>,
    abandoned: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<io::Result<T>>>,
}

impl<T: Send + 'static> Handoff<T> {
    /// Starts the thread `name`, which writes every chunk into `inner` and, once the last
    /// is in, returns `done(inner)`.
    pub fn spawn<W: Write + Send + 'static>(
        name: &str,
        mut inner: W,
        chunk_size: usize,
        in_flight: usize,
        done: impl FnOnce(W) -> io::Result<T> + Send + 'static,
    ) -> io::Result<Handoff<T>> {
        let (to_thread, chunks) = crossbeam_channel::bounded::<(Vec<u8>, usize)>(in_flight);
        let (give_back, recycled) = crossbeam_channel::bounded::<Vec<u8>>(in_flight + 1);
        let abandoned = Arc::new(AtomicBool::new(false));
        let told = Arc::clone(&abandoned);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let abandoned = || told.load(Ordering::Relaxed);
                for (chunk, filled) in chunks {
                    if abandoned() {
                        break;
                    }
                    inner.write_all(&chunk[..filled])?;
                    let _ = give_back.try_send(chunk);
                }
                if abandoned() {
                    return Err(io::Error::other("abandoned"));
                }
                done(inner)
            })?;
        Ok(Handoff {
            chunk: vec![0; chunk_size],
            filled: 0,
            chunk_size,
            to_thread: Some(to_thread),
            recycled,
            abandoned,
            thread: Some(thread),
        })
    }

    /// Lets `fill` write into the free end of the current chunk (never empty) and keeps
    /// the bytes it says it wrote; a reader can thus read straight into the chunk.
    pub fn fill_with(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let n = fill(&mut self.chunk[self.filled..])?;
        self.filled += n.min(self.chunk_size - self.filled);
        if self.filled == self.chunk_size {
            self.send()?;
        }
        Ok(n)
    }

    /// Sends the current chunk; if the thread stopped, returns its error.
    fn send(&mut self) -> io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        let next = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| vec![0; self.chunk_size]);
        let full = std::mem::replace(&mut self.chunk, next);
        let filled = std::mem::take(&mut self.filled);
        match self.to_thread.as_ref().map(|tx| tx.send((full, filled))) {
            Some(Ok(())) => Ok(()),
            _ => Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the writing thread stopped"))),
        }
    }

    fn join(&mut self) -> io::Result<T> {
        self.to_thread = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the writing thread panicked")),
            None => Err(io::Error::other("the writing thread already stopped")),
        }
    }

    /// Hands over what is left and returns what the thread made of its writer.
    pub fn finish(mut self) -> io::Result<T> {
        self.send()?;
        self.join()
    }
}

impl<T: Send + 'static> Drop for Handoff<T> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.abandoned.store(true, Ordering::Relaxed);
            let _ = self.join();
        }
    }
}

impl<T: Send + 'static> Write for Handoff<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fill_with(|free| {
            let n = buf.len().min(free.len());
            free[..n].copy_from_slice(&buf[..n]);
            Ok(n)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes what it writes into the archive file, handing each window to the disk as the
/// next one starts and dropping it from the page cache once written.
struct HashingFile {
    file: File,
    hasher: Sha256,
    written: u64,
    flushed: u64,
    previous: Option<(u64, u64)>,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        if self.written - self.flushed >= WRITEBACK_EVERY {
            let window = self.written - self.flushed;
            crate::storage::start_writeback(&self.file, self.flushed, window);
            // The window before has had a window's time to reach the disk.
            if let Some((offset, len)) = self.previous {
                crate::storage::drop_written(&self.file, offset, len);
            }
            self.previous = Some((self.flushed, window));
            self.flushed = self.written;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the compressed bytes and refuses to grow past the limit, then hands them to a
/// thread that hashes and writes them, so hashing and disk writes overlap with reading and
/// compressing.
pub struct HashingWriter {
    handoff: Handoff<(File, String)>,
    bytes: u64,
    limit: u64,
}

impl HashingWriter {
    pub fn new(file: File, limit: u64) -> io::Result<HashingWriter> {
        let out = HashingFile {
            file,
            hasher: Sha256::new(),
            written: 0,
            flushed: 0,
            previous: None,
        };
        let handoff = Handoff::spawn("archive-writer", out, CHUNK, IN_FLIGHT, |out| {
            Ok((out.file, hex::encode(out.hasher.finalize())))
        })?;
        Ok(HashingWriter {
            handoff,
            bytes: 0,
            limit,
        })
    }

    /// Writes what is left and returns the file, the hex SHA-256 and the byte count.
    pub fn into_parts(self) -> io::Result<(File, String, u64)> {
        let (file, sha) = self.handoff.finish()?;
        Ok((file, sha, self.bytes))
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes + buf.len() as u64 > self.limit {
            return Err(io::Error::other(Abort::Limit(self.limit)));
        }
        let n = self.handoff.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Compressor {
    Zstd(zstd::Encoder<'static, HashingWriter>),
    /// Several threads compressing 512 KiB blocks with libdeflate, each block a gzip member:
    /// a multi-member gzip file, which gzip, tar and every gzip library read as one stream.
    ParallelGzip(Box<gzp::par::compress::ParCompress<'static, gzp::deflate::Mgzip, HashingWriter>>),
    Gzip(flate2::write::GzEncoder<HashingWriter>),
    None(HashingWriter),
}

impl Compressor {
    pub fn new(sink: HashingWriter, options: &Options) -> io::Result<Compressor> {
        Ok(match options.compression {
            Compression::Zstd => {
                let mut encoder = zstd::Encoder::new(sink, options.zstd_level)?;
                // A frame checksum lets any decoder (and restore) detect a damaged archive
                // even where the SHA-256 is unknown.
                encoder.include_checksum(true)?;
                if options.threads > 1 {
                    encoder.multithread(options.threads)?;
                    // zstd's default job (8 MiB at level 3) keeps ~100 MiB in flight with two
                    // workers; 1 MiB jobs measured as fast, with 32 MiB peak RSS and the same
                    // ratio on game data.
                    encoder
                        .set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_BYTES))?;
                }
                Compressor::Zstd(encoder)
            }
            Compression::Gzip if options.threads > 1 => {
                let encoder = gzp::par::compress::ParCompressBuilder::<gzp::deflate::Mgzip>::new()
                    .num_threads(options.threads as usize)
                    .map_err(io::Error::other)?
                    .buffer_size(GZIP_BLOCK_BYTES)
                    .map_err(io::Error::other)?
                    .compression_level(gzp::Compression::new(options.gzip_level))
                    .from_writer(sink);
                Compressor::ParallelGzip(Box::new(encoder))
            }
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                sink,
                flate2::Compression::new(options.gzip_level),
            )),
            Compression::None => Compressor::None(sink),
        })
    }

    /// Ends the compressed stream and hands back the sink.
    pub fn finish(self) -> io::Result<HashingWriter> {
        match self {
            Compressor::Zstd(e) => e.finish(),
            Compressor::ParallelGzip(mut e) => {
                use gzp::ZWriter;
                e.finish().map_err(|err| match err {
                    gzp::GzpError::Io(e) => e,
                    other => io::Error::other(other),
                })
            }
            Compressor::Gzip(e) => e.finish(),
            Compressor::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Zstd(e) => e.write(buf),
            Compressor::ParallelGzip(e) => e.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Zstd(e) => e.flush(),
            Compressor::ParallelGzip(e) => e.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}
