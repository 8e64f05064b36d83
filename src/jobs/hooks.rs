//! Server hooks: shell commands run before and after backups and restores (an RCON
//! `save-off`, a stop or start command...), with a timeout, a minimal environment and the
//! job's details in it. Their output goes to the log; a failure carries its stderr apart
//! from the summary, because that output (where `rcon-cli` prints passwords) is for the
//! server's owner and admins only.

use crate::model::{BackupStatus, Server};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// Characters of stderr kept with a failure.
const TAIL_CHARS: usize = 2000;

/// Bytes of hook output logged as one line at most.
const MAX_LINE: u64 = 16 * 1024;

/// How long the output of a hook that exited is still read: a process it left running
/// (`./start.sh &`, the usual post-restore command) keeps the pipes open for good.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Variables a hook inherits from hoard's environment; nothing else of it (hoard's settings,
/// secrets its service manager passed) is the hook's business.
const INHERITED: [&str; 3] = ["PATH", "HOME", "LANG"];

/// `PATH` when hoard itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a hook failed. The message names the hook and its exit status only; what it printed
/// is in [`Error::output`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the {hook} hook could not be started: {source}")]
    Start {
        hook: &'static str,
        source: std::io::Error,
    },
    #[error("the {hook} hook could not be waited for: {source}")]
    Wait {
        hook: &'static str,
        source: std::io::Error,
    },
    #[error("the {hook} hook did not finish within {secs} s and was killed")]
    TimedOut { hook: &'static str, secs: u64 },
    #[error("the {hook} hook {}", describe(*.status))]
    Failed {
        hook: &'static str,
        status: ExitStatus,
        /// The tail of its stderr.
        stderr: String,
    },
}

impl Error {
    /// The tail of what the hook printed on stderr, when it ran and failed.
    pub fn output(&self) -> Option<&str> {
        match self {
            Error::Failed { stderr, .. } if !stderr.is_empty() => Some(stderr),
            _ => None,
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended abnormally".to_string(),
    }
}

/// The job a hook runs around, and (after it) its outcome.
pub enum Job<'a> {
    Backup {
        name: &'a str,
        status: Option<BackupStatus>,
    },
    Restore {
        status: Option<&'a str>,
    },
}

/// The variables that tell a hook about its server, backup and job.
pub fn hook_env<'a>(
    server: &'a Server,
    backup_uuid: &'a str,
    job: Job<'a>,
) -> Vec<(&'static str, &'a str)> {
    let mut env = vec![
        ("HOARD_SERVER_UUID", server.uuid.as_str()),
        ("HOARD_SERVER_NAME", server.name.as_str()),
        ("HOARD_SERVER_PATH", server.path.as_str()),
        ("HOARD_BACKUP_UUID", backup_uuid),
    ];
    match job {
        Job::Backup { name, status } => {
            env.push(("HOARD_BACKUP_NAME", name));
            env.extend(status.map(|s| ("HOARD_BACKUP_STATUS", s.as_str())));
        }
        Job::Restore { status } => env.extend(status.map(|s| ("HOARD_RESTORE_STATUS", s))),
    }
    env
}

/// Runs `command` with `sh -c` in `dir`, with `PATH`, `HOME`, `LANG`, `env` and nothing
/// else in its environment, and hoard's original umask (hoard's own is private).
pub fn run(
    name: &'static str,
    command: &str,
    dir: &str,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), Error> {
    // The command may hold an RCON password: it is logged only when debugging.
    log::info!("running the {name} hook");
    log::debug!("{name} hook command: {command}");
    let mut shell = Command::new("sh");
    shell.env_clear();
    for key in INHERITED {
        if let Some(value) = std::env::var_os(key) {
            shell.env(key, value);
        }
    }
    if std::env::var_os("PATH").is_none() {
        shell.env("PATH", DEFAULT_PATH);
    }
    let umask = crate::app::inherited_umask();
    // Children inherit hoard's private umask and the transparent-huge-page switch hoard turns
    // off for its own heap (main.rs); a game server a hook starts gets the original umask
    // and the system's setting back.
    // SAFETY: umask(2) and prctl(2) are async-signal-safe and change only the child.
    unsafe {
        shell.pre_exec(move || {
            libc::umask(umask);
            libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0);
            Ok(())
        });
    }
    shell
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so a timeout kills whatever the command started too.
        .process_group(0);
    let mut child = shell
        .spawn()
        .map_err(|source| Error::Start { hook: name, source })?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    // Each reader holds a sender; when both are gone, the output is over.
    let (reading, output_over) = crossbeam_channel::bounded::<()>(0);
    let still_reading = reading.clone();
    std::thread::spawn(move || {
        let _reading = still_reading;
        for_each_line(stdout, |line| log::info!("{name} hook: {line}"));
    });
    let tail = Arc::new(Mutex::new(String::new()));
    let kept = Arc::clone(&tail);
    std::thread::spawn(move || {
        let _reading = reading;
        for_each_line(stderr, |line| {
            log::warn!("{name} hook (stderr): {line}");
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            kept.push_str(line);
            kept.push('\n');
            let excess = kept.chars().count().saturating_sub(TAIL_CHARS);
            if excess > 0 {
                let cut = kept
                    .char_indices()
                    .nth(excess)
                    .map_or(kept.len(), |(i, _)| i);
                kept.drain(..cut);
            }
        });
    });
    let status = match child.wait_timeout(timeout) {
        Ok(Some(status)) => Ok(status),
        Ok(None) => {
            // SAFETY: kill(2) on the child's process group, which we created.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            Err(Error::TimedOut {
                hook: name,
                secs: timeout.as_secs(),
            })
        }
        Err(source) => Err(Error::Wait { hook: name, source }),
    };
    let deadline = Instant::now() + OUTPUT_GRACE;
    if output_over.recv_deadline(deadline) == Err(crossbeam_channel::RecvTimeoutError::Timeout) {
        log::warn!(
            "{name} hook: a process it started still holds its output, which is read only while hoard runs; redirect that process's output (e.g. >/dev/null 2>&1) so it cannot get SIGPIPE"
        );
    }
    let status = status?;
    if status.success() {
        return Ok(());
    }
    let stderr = tail
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .trim()
        .to_string();
    Err(Error::Failed {
        hook: name,
        status,
        stderr,
    })
}

/// Calls `each` with every line of `pipe` until it closes; bytes that are not UTF-8 are
/// shown replaced rather than ending the reading (which would break the writer's pipe), and
/// a line longer than [`MAX_LINE`] comes in pieces.
fn for_each_line(pipe: impl std::io::Read, mut each: impl FnMut(&str)) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                each(text.trim_end_matches(['\n', '\r']));
            }
        }
    }
}
