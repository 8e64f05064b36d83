//! The output side of the archiver: the compressor, then a writer that hashes and counts
//! the compressed bytes on their way to the file.

use super::{Abort, Options};
use crate::model::Compression;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};

/// Hashes and counts what passes through, and refuses to grow past a limit.
pub struct HashingWriter {
    file: File,
    hasher: Sha256,
    bytes: u64,
    limit: u64,
}

impl HashingWriter {
    pub fn new(file: File, limit: u64) -> HashingWriter {
        HashingWriter {
            file,
            hasher: Sha256::new(),
            bytes: 0,
            limit,
        }
    }

    /// The file, the hex SHA-256 and the byte count.
    pub fn into_parts(self) -> (File, String, u64) {
        (self.file, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes + buf.len() as u64 > self.limit {
            return Err(io::Error::other(Abort::Limit(self.limit)));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

pub enum Compressor {
    Zstd(zstd::Encoder<'static, HashingWriter>),
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
                if options.zstd_threads > 1 {
                    encoder.multithread(options.zstd_threads)?;
                }
                Compressor::Zstd(encoder)
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
            Compressor::Gzip(e) => e.write(buf),
            Compressor::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Zstd(e) => e.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}
