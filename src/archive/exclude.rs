//! Which paths a backup leaves out: the patterns of `.pteroignore` in the server root, then
//! the request's, with gitignore semantics (`!` re-includes, the last match wins).
//!
//! Unlike Pterodactyl's matcher, an excluded directory is not descended into, so nothing
//! below it can be re-included (git's rule).

use crate::safefs::Dir;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub const IGNORE_FILE: &str = ".pteroignore";
/// A larger `.pteroignore` is not read: it is more likely junk than a list of patterns.
pub const MAX_IGNORE_FILE: u64 = 32 * 1024;

/// The compiled exclusion patterns of one backup.
pub struct Exclusions {
    matcher: Gitignore,
    /// Why `.pteroignore` or a pattern was not used, for the backup's warnings.
    pub notes: Vec<String>,
    /// Device and inode of hoard's data directory.
    data_dir: Option<(u64, u64)>,
}

/// The text of the `.pteroignore` in `root`, read without following a symlink; Err is the
/// note saying why it was not used.
fn read_ignore_file(root: &Dir) -> Result<Option<String>, String> {
    let opened = root.open_file(std::ffi::OsStr::new(IGNORE_FILE));
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(format!("{IGNORE_FILE} is a symlink and was not used"));
        }
        Err(e) => return Err(format!("{IGNORE_FILE} could not be read: {e}")),
    };
    match file.metadata() {
        Ok(meta) if !meta.is_file() => Ok(None),
        Ok(meta) if meta.len() > MAX_IGNORE_FILE => Err(format!(
            "{IGNORE_FILE} is larger than 32 KiB and was not used"
        )),
        Ok(_) => {
            let mut text = String::new();
            file.take(MAX_IGNORE_FILE)
                .read_to_string(&mut text)
                .map(|_| Some(text))
                .map_err(|e| format!("{IGNORE_FILE} could not be read: {e}"))
        }
        Err(e) => Err(format!("{IGNORE_FILE} could not be read: {e}")),
    }
}

impl Exclusions {
    /// Builds the matcher for `root` from its `.pteroignore` (unless it is a symlink or too
    /// large) and the request's patterns, one per line.
    pub fn new(root: &Path, request_patterns: &[String]) -> Exclusions {
        // A root that cannot be opened fails the backup where the walk opens it.
        Exclusions::of_dir(Dir::open(root).ok().as_ref(), request_patterns)
    }

    /// [`Exclusions::new`] for a directory already open (a restore's staging directory,
    /// which holds the `.pteroignore` the backup was made with).
    pub fn of_dir(root: Option<&Dir>, request_patterns: &[String]) -> Exclusions {
        let mut builder = GitignoreBuilder::new("");
        let mut notes = Vec::new();
        match root.map_or(Ok(None), read_ignore_file) {
            Ok(Some(text)) => add_lines(&mut builder, &text, &mut notes),
            Ok(None) => {}
            Err(note) => notes.push(note),
        }
        for line in request_patterns {
            add_lines(&mut builder, line, &mut notes);
        }
        let matcher = builder.build().unwrap_or_else(|e| {
            notes.push(format!("exclusion patterns could not be compiled: {e}"));
            Gitignore::empty()
        });
        Exclusions {
            matcher,
            notes,
            data_dir: None,
        }
    }

    /// Makes the walk leave out `dir` (hoard's data directory) wherever it is met, by
    /// device and inode: a bind mount or a link farm may bring it inside a server's tree,
    /// and its database and secret must never end up in an archive.
    pub fn never_enter(mut self, dir: &Path) -> Exclusions {
        self.data_dir = std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()));
        self
    }

    /// Whether a directory met by the walk is the one [`Exclusions::never_enter`] names.
    pub fn is_data_dir(&self, meta: &std::fs::Metadata) -> bool {
        self.data_dir == Some((meta.dev(), meta.ino()))
    }

    /// Whether no pattern leaves anything out.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    /// Whether the path (relative to the root) is left out.
    pub fn excludes(&self, path: &Path, is_dir: bool) -> bool {
        self.matcher.matched(path, is_dir).is_ignore()
    }
}

fn add_lines(builder: &mut GitignoreBuilder, text: &str, notes: &mut Vec<String>) {
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Err(e) = builder.add_line(None, line) {
            notes.push(format!(
                "exclusion pattern '{line}' is invalid and was ignored: {e}"
            ));
        }
    }
}

/// Splits a request's `ignored` text into patterns: one per line, blank lines dropped.
pub fn split_patterns(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}
