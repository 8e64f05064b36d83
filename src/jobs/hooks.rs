//! Server hooks: shell commands run before and after backups and restores (an RCON
//! `save-off`, a stop or start command...), with a timeout and the job's details in the
//! environment. Their output goes to the log.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// Characters of stderr kept for the error message of a failed hook.
const TAIL_CHARS: usize = 2000;

/// Bytes of hook output logged as one line at most.
const MAX_LINE: u64 = 16 * 1024;

/// How long the output of a hook that exited is still read: a process it left running
/// (`./start.sh &`, the usual post-restore command) keeps the pipes open for good.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Runs `command` with `sh -c` in `dir`; Err carries a message naming the hook, the exit
/// status and the tail of its stderr.
pub fn run(
    name: &str,
    command: &str,
    dir: &str,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), String> {
    // The command may hold an RCON password: it is logged only when debugging.
    log::info!("running the {name} hook");
    log::debug!("{name} hook command: {command}");
    let mut shell = Command::new("sh");
    // hoard's own settings (the admin password among them) are not the hook's business.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOARD_") {
            shell.env_remove(key);
        }
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
    // SAFETY: prctl is async-signal-safe and changes only the child. Children inherit the
    // transparent-huge-page switch hoard turns off for its own heap (main.rs); a game server
    // a hook starts gets the system's setting back.
    unsafe {
        shell.pre_exec(|| {
            libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0);
            Ok(())
        });
    }
    let mut child = shell
        .spawn()
        .map_err(|e| format!("the {name} hook could not be started: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    // Each reader holds a sender; when both are gone, the output is over.
    let (reading, output_over) = crossbeam_channel::bounded::<()>(0);
    let hook = name.to_string();
    let still_reading = reading.clone();
    std::thread::spawn(move || {
        let _reading = still_reading;
        for_each_line(stdout, |line| log::info!("{hook} hook: {line}"));
    });
    let hook = name.to_string();
    let tail = Arc::new(Mutex::new(String::new()));
    let kept = Arc::clone(&tail);
    std::thread::spawn(move || {
        let _reading = reading;
        for_each_line(stderr, |line| {
            log::warn!("{hook} hook (stderr): {line}");
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
            Err(format!(
                "the {name} hook did not finish within {} s and was killed",
                timeout.as_secs()
            ))
        }
        Err(e) => Err(format!("the {name} hook could not be waited for: {e}")),
    };
    let deadline = Instant::now() + OUTPUT_GRACE;
    if output_over.recv_deadline(deadline) == Err(crossbeam_channel::RecvTimeoutError::Timeout) {
        log::warn!(
            "{name} hook: a process it started still holds its output, which is read only while hoard runs; redirect that process's output (e.g. >/dev/null 2>&1) so it cannot get SIGPIPE"
        );
    }
    let stderr = tail.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let status = status?;
    if status.success() {
        return Ok(());
    }
    let tail: String = {
        let trimmed = stderr.trim();
        let skip = trimmed.chars().count().saturating_sub(TAIL_CHARS);
        trimmed.chars().skip(skip).collect()
    };
    let code = status.code().map_or_else(
        || "was killed by a signal".to_string(),
        |c| format!("exited with status {c}"),
    );
    if tail.is_empty() {
        Err(format!("the {name} hook {code}"))
    } else {
        Err(format!("the {name} hook {code}: {tail}"))
    }
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
