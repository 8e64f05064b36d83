//! Reading server files into the archive: exactly the size the tar header announced, no
//! matter how the file changes meanwhile, at a bounded rate, and stoppable.

use super::{Abort, Progress};
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Keeps the read rate at or under a limit by sleeping when ahead of it.
pub struct Throttle {
    bytes_per_sec: u64,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    pub fn new(bytes_per_sec: u64) -> Throttle {
        Throttle {
            bytes_per_sec,
            started: Instant::now(),
            bytes: 0,
        }
    }

    pub fn consume(&mut self, n: u64) {
        if self.bytes_per_sec == 0 {
            return;
        }
        self.bytes += n;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_sec as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Whole,
    Shrank,
    Grew,
    ReadError,
}

/// Yields exactly `size` bytes of a file: what it holds, then zeros if it shrank.
pub struct FileReader<'a> {
    file: File,
    remaining: u64,
    outcome: Outcome,
    throttle: &'a mut Throttle,
    progress: &'a Progress,
    cancel: &'a AtomicBool,
}

impl<'a> FileReader<'a> {
    pub fn new(
        file: File,
        size: u64,
        throttle: &'a mut Throttle,
        progress: &'a Progress,
        cancel: &'a AtomicBool,
    ) -> FileReader<'a> {
        FileReader {
            file,
            remaining: size,
            outcome: Outcome::Whole,
            throttle,
            progress,
            cancel,
        }
    }

    /// How the file compared with its header, once fully read.
    pub fn outcome(mut self) -> Outcome {
        if self.outcome == Outcome::Whole {
            let mut probe = [0u8; 1];
            if matches!(self.file.read(&mut probe), Ok(n) if n > 0) {
                self.outcome = Outcome::Grew;
            }
        }
        self.outcome
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other(Abort::Cancelled));
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = if self.outcome == Outcome::Whole {
            match self.file.read(&mut buf[..want]) {
                Ok(0) => {
                    self.outcome = Outcome::Shrank;
                    0
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return self.read(buf),
                Err(_) => {
                    self.outcome = Outcome::ReadError;
                    0
                }
            }
        } else {
            0
        };
        let n = if n == 0 {
            // The file ended early or failed: pad with zeros to the announced size.
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.remaining -= n as u64;
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.throttle.consume(n as u64);
        Ok(n)
    }
}
