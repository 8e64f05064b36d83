//! Durability and page-cache calls for files hoard writes: making renames durable, starting
//! writeback early, and streaming large files through a few megabytes of cache.
//!
//! The path-taking calls here are for hoard's own data directory, which nobody else writes.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// Makes the entries of the directory at `dir` (creations, renames, removals) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Makes the entry `path` in its directory durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Starts writing a range of a file to disk without waiting for it (sync_file_range), so a
/// later fsync or syncfs finds little left to do. A length of 0 means to the end.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    sync_range(file, offset, len, libc::SYNC_FILE_RANGE_WRITE);
}

/// Waits until a range of a file written earlier is on disk, then drops it from the page
/// cache: a file written once and not read soon (an archive) then streams through a few
/// megabytes of memory instead of evicting what the server's game keeps cached.
pub fn drop_written(file: &File, offset: u64, len: u64) {
    sync_range(
        file,
        offset,
        len,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    );
    drop_cached(file, offset, len);
}

/// Drops a range of a file from the page cache (a length of 0 means to the end): a file
/// read once (an archive being verified) then does not evict what the game servers keep
/// cached.
pub fn drop_cached(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file.as_fd(),
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

fn sync_range(file: &File, offset: u64, len: u64, flags: libc::c_uint) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads the descriptor, which `file` keeps open.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags);
    }
}

/// Bytes available to unprivileged users on the filesystem holding `path`.
pub fn free_space(path: &Path) -> io::Result<u64> {
    fs4::available_space(path)
}
