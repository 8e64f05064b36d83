//! Which paths a backup leaves out: the patterns of `.pteroignore` in the server root, then
//! the request's, with gitignore semantics (`!` re-includes, the last match wins).
//!
//! Unlike Pterodactyl's matcher, an excluded directory is not descended into, so nothing
//! below it can be re-included (git's rule).

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::io::Read;
use std::path::Path;

pub const IGNORE_FILE: &str = ".pteroignore";
/// A larger `.pteroignore` is not read: it is more likely junk than a list of patterns.
pub const MAX_IGNORE_FILE: u64 = 32 * 1024;

/// The compiled exclusion patterns of one backup.
pub struct Exclusions {
    matcher: Gitignore,
    /// Why `.pteroignore` or a pattern was not used, for the backup's warnings.
    pub notes: Vec<String>,
}

impl Exclusions {
    /// Builds the matcher for `root` from its `.pteroignore` (unless it is a symlink or too
    /// large) and the request's patterns, one per line.
    pub fn new(root: &Path, request_patterns: &[String]) -> Exclusions {
        let mut builder = GitignoreBuilder::new(root);
        let mut notes = Vec::new();
        let file = root.join(IGNORE_FILE);
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if meta.file_type().is_symlink() => {
                notes.push(format!("{IGNORE_FILE} is a symlink and was not used"));
            }
            Ok(meta) if meta.len() > MAX_IGNORE_FILE => {
                notes.push(format!(
                    "{IGNORE_FILE} is larger than 32 KiB and was not used"
                ));
            }
            Ok(meta) if meta.is_file() => {
                let mut text = String::new();
                let read = std::fs::File::open(&file)
                    .and_then(|f| f.take(MAX_IGNORE_FILE).read_to_string(&mut text));
                match read {
                    Ok(_) => add_lines(&mut builder, &text, &mut notes),
                    Err(e) => notes.push(format!("{IGNORE_FILE} could not be read: {e}")),
                }
            }
            _ => {}
        }
        for line in request_patterns {
            add_lines(&mut builder, line, &mut notes);
        }
        let matcher = builder.build().unwrap_or_else(|e| {
            notes.push(format!("exclusion patterns could not be compiled: {e}"));
            Gitignore::empty()
        });
        Exclusions { matcher, notes }
    }

    /// Whether the path (relative to the root or absolute under it) is left out.
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
