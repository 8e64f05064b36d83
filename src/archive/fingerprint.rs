//! A fingerprint of a server's tree, taken by the sizing walk that every backup makes
//! anyway: equal fingerprints mean that no included entry was added, removed, resized,
//! touched or re-moded, so a schedule told to back up only changes can skip the run without
//! reading a byte of file data.

use sha2::{Digest, Sha256};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The entries seen so far, combined so that the order they were seen in does not matter:
/// the sizing walk runs on several threads, each summing its own share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    sum: [u64; 4],
    entries: u64,
}

/// What the fingerprint records of one entry.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// `d`, `f` or `l`.
    pub kind: u8,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub mode: u32,
}

impl Fingerprint {
    pub fn add(&mut self, rel: &Path, seen: Seen) {
        let mut hasher = Sha256::new();
        hasher.update([seen.kind]);
        hasher.update(rel.as_os_str().as_bytes());
        // The path's end, so that no path and size can run into each other.
        hasher.update([0]);
        hasher.update(seen.size.to_le_bytes());
        hasher.update(seen.mtime.to_le_bytes());
        hasher.update(seen.mtime_nsec.to_le_bytes());
        hasher.update(seen.mode.to_le_bytes());
        let digest = hasher.finalize();
        for (sum, word) in self.sum.iter_mut().zip(digest.chunks_exact(8)) {
            *sum = sum.wrapping_add(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        self.entries += 1;
    }

    pub fn merge(mut self, other: Fingerprint) -> Fingerprint {
        for (sum, theirs) in self.sum.iter_mut().zip(other.sum) {
            *sum = sum.wrapping_add(theirs);
        }
        self.entries += other.entries;
        self
    }

    /// Lower-case hex, as stored with the backup.
    pub fn to_hex(self) -> String {
        let mut hasher = Sha256::new();
        for word in self.sum {
            hasher.update(word.to_le_bytes());
        }
        hasher.update(self.entries.to_le_bytes());
        hex::encode(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(size: u64, mtime: i64, mode: u32) -> Seen {
        Seen {
            kind: b'f',
            size,
            mtime,
            mtime_nsec: 0,
            mode,
        }
    }

    #[test]
    fn the_order_entries_are_seen_in_does_not_matter() {
        let (a, b) = (Path::new("world/level.dat"), Path::new("server.properties"));
        let mut one = Fingerprint::default();
        one.add(a, seen(1, 2, 0o644));
        one.add(b, seen(3, 4, 0o644));
        let mut first = Fingerprint::default();
        first.add(b, seen(3, 4, 0o644));
        let mut second = Fingerprint::default();
        second.add(a, seen(1, 2, 0o644));
        assert_eq!(one.to_hex(), first.merge(second).to_hex());
    }

    #[test]
    fn any_change_of_an_entry_changes_it() {
        let path = Path::new("world/level.dat");
        let print = |s: Seen| {
            let mut f = Fingerprint::default();
            f.add(path, s);
            f.to_hex()
        };
        let base = print(seen(10, 100, 0o644));
        assert_ne!(base, print(seen(11, 100, 0o644)));
        assert_ne!(base, print(seen(10, 101, 0o644)));
        assert_ne!(base, print(seen(10, 100, 0o600)));
        let mut renamed = Fingerprint::default();
        renamed.add(Path::new("world/level.dat_old"), seen(10, 100, 0o644));
        assert_ne!(base, renamed.to_hex());
        assert_ne!(base, Fingerprint::default().to_hex());
    }
}
