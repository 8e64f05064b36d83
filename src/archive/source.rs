//! Reading server files into the archive: exactly the size the tar header announced, no
//! matter how the file changes meanwhile, at a bounded rate, and stoppable.

use super::sink::Frames;
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

#[derive(Debug)]
pub enum Outcome {
    Whole,
    Shrank,
    Grew,
    /// Reading failed part-way; the rest of its announced size is zeros.
    ReadError(io::Error),
}

/// Copies exactly `size` bytes of a file: what it holds, then zeros if it shrank.
pub struct FileReader<'a> {
    file: File,
    remaining: u64,
    outcome: Outcome,
    /// A read came back short: the file's end was seen.
    at_eof: bool,
    /// A read returned a byte past the announced size.
    grew: bool,
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
            at_eof: false,
            grew: false,
            throttle,
            progress,
            cancel,
        }
    }

    /// How the file compared with its header, once fully read.
    pub fn outcome(mut self) -> Outcome {
        let whole = matches!(self.outcome, Outcome::Whole);
        if whole && !self.at_eof && !self.grew {
            let mut probe = [0u8; 1];
            self.grew |= matches!(self.file.read(&mut probe), Ok(n) if n > 0);
        }
        if whole && self.grew {
            Outcome::Grew
        } else {
            self.outcome
        }
    }

    /// Writes the file's announced size into `out`, read straight into its buffer.
    pub fn copy_to(&mut self, out: &mut Frames) -> io::Result<()> {
        while self.remaining > 0 {
            out.fill_with(|free| self.read_into(free))?;
        }
        Ok(())
    }

    /// Fills `dst` (or as much of it as the file has left), with the file's bytes or zeros
    /// once it ended early, and returns the length filled.
    fn read_into(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other(Abort::Cancelled));
        }
        let want = dst
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        // Reading the last piece asks for one byte more when there is room: a short read
        // then shows the end of the file, and a full one that it grew, without a read of
        // its own.
        let last = self.remaining < dst.len() as u64;
        let ask = if last { want + 1 } else { want };
        let mut n = 0;
        while matches!(self.outcome, Outcome::Whole) && n < want {
            match self.file.read(&mut dst[n..ask]) {
                Ok(0) => self.outcome = Outcome::Shrank,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.outcome = Outcome::ReadError(e),
            }
        }
        if last && matches!(self.outcome, Outcome::Whole) {
            self.grew |= n > want;
            self.at_eof = n == want;
        }
        let n = n.min(want);
        // The file ended early or failed: pad with zeros to the announced size.
        dst[n..want].fill(0);
        self.remaining -= want as u64;
        self.progress
            .bytes
            .fetch_add(want as u64, Ordering::Relaxed);
        self.throttle.consume(want as u64);
        Ok(want)
    }
}
