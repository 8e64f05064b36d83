//! Server hooks: shell commands run before and after backups and restores (an RCON
//! `save-off`, a stop or start command...), with a timeout and the job's details in the
//! environment. Their output goes to the log.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;
use wait_timeout::ChildExt;

/// Characters of stderr kept for the error message of a failed hook.
const TAIL_CHARS: usize = 2000;

/// Runs `command` with `sh -c` in `dir`; Err carries a message naming the hook, the exit
/// status and the tail of its stderr.
pub fn run(
    name: &str,
    command: &str,
    dir: &str,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), String> {
    log::info!("running {name} hook: {command}");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so a timeout kills whatever the command started too.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("the {name} hook could not be started: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let hook = name.to_string();
    let out_thread = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            log::info!("{hook} hook: {line}");
        }
    });
    let hook = name.to_string();
    let err_thread = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        for line in text.lines() {
            log::warn!("{hook} hook (stderr): {line}");
        }
        text
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
    let _ = out_thread.join();
    let stderr = err_thread.join().unwrap_or_default();
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
