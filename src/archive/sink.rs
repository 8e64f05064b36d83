//! The output side of the archiver: the compressor, then a writer that hashes and counts
//! the compressed bytes on their way to the file.

use super::{Abort, Options};
use crate::model::Compression;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};

/// The archive is handed to the disk every this many bytes while it is written, so the
/// final fsync finds little left to write instead of the whole file; each such window is
/// dropped from the page cache once the next one is started.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Input per zstd worker job.
const ZSTD_JOB_BYTES: u32 = 1 << 20;

/// Input per gzip member when several threads compress.
const GZIP_BLOCK_BYTES: usize = 1 << 20;

/// Bytes handed to the writer thread at a time.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the compressor and the writer thread.
const IN_FLIGHT: usize = 4;

/// Counts the compressed bytes and refuses to grow past the limit, then hands them in
/// chunks to a thread that hashes and writes them, so hashing and disk writes overlap with
/// reading and compressing.
pub struct HashingWriter {
    chunk: Vec<u8>,
    to_writer: Option<crossbeam_channel::Sender<Vec<u8>>>,
    recycled: crossbeam_channel::Receiver<Vec<u8>>,
    writer: Option<std::thread::JoinHandle<io::Result<(File, String)>>>,
    bytes: u64,
    limit: u64,
}

impl HashingWriter {
    pub fn new(file: File, limit: u64) -> io::Result<HashingWriter> {
        let (to_writer, chunks) = crossbeam_channel::bounded::<Vec<u8>>(IN_FLIGHT);
        let (give_back, recycled) = crossbeam_channel::bounded::<Vec<u8>>(IN_FLIGHT + 1);
        let writer = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                let mut file = file;
                let mut hasher = Sha256::new();
                let (mut written, mut flushed) = (0u64, 0u64);
                let mut previous = None;
                for mut chunk in chunks {
                    hasher.update(&chunk);
                    file.write_all(&chunk)?;
                    written += chunk.len() as u64;
                    if written - flushed >= WRITEBACK_EVERY {
                        crate::storage::start_writeback(&file, flushed, written - flushed);
                        // The window before has had a window's time to reach the disk.
                        if let Some((offset, len)) = previous {
                            crate::storage::drop_written(&file, offset, len);
                        }
                        previous = Some((flushed, written - flushed));
                        flushed = written;
                    }
                    chunk.clear();
                    let _ = give_back.try_send(chunk);
                }
                Ok((file, hex::encode(hasher.finalize())))
            })?;
        Ok(HashingWriter {
            chunk: Vec::with_capacity(CHUNK),
            to_writer: Some(to_writer),
            recycled,
            writer: Some(writer),
            bytes: 0,
            limit,
        })
    }

    /// Sends the current chunk; if the writer thread stopped, returns its error.
    fn send(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.chunk, next);
        let sent = self.to_writer.as_ref().map(|tx| tx.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the archive writer stopped"))),
        }
    }

    fn join(&mut self) -> io::Result<(File, String)> {
        self.to_writer = None;
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the archive writer panicked")),
            None => Err(io::Error::other("the archive writer already stopped")),
        }
    }

    /// Writes what is left and returns the file, the hex SHA-256 and the byte count.
    pub fn into_parts(mut self) -> io::Result<(File, String, u64)> {
        self.send()?;
        let (file, sha) = self.join()?;
        Ok((file, sha, self.bytes))
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes + buf.len() as u64 > self.limit {
            return Err(io::Error::other(Abort::Limit(self.limit)));
        }
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        self.bytes += n as u64;
        if self.chunk.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Compressor {
    Zstd(zstd::Encoder<'static, HashingWriter>),
    /// Several threads compressing 1 MiB blocks with libdeflate, each block a gzip member:
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
