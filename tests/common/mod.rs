//! Test support: a real `hoard serve` on a free port with its own data directory, the CLI,
//! and a small HTTP client that returns every status instead of failing on errors.

#![allow(dead_code)]

pub mod receiver;

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "admin-password-123";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hoard")
}

/// A running hoard.
pub struct Hoard {
    child: Option<Child>,
    pub data: tempfile::TempDir,
    pub base: String,
    pub stdout_path: PathBuf,
    pub log_path: PathBuf,
    args: Vec<String>,
    /// Open-file limit (soft and hard) to start hoard with.
    nofile: Option<u64>,
}

impl Hoard {
    pub fn start(args: &[&str]) -> Hoard {
        let data = tempfile::tempdir().expect("temp data dir");
        Hoard::start_in(data, args)
    }

    /// Starts on an existing data directory (e.g. to test what a restart does).
    pub fn start_in(data: tempfile::TempDir, args: &[&str]) -> Hoard {
        Hoard::start_with(data, args, None)
    }

    /// Starts with an open-file limit, to run it out of descriptors.
    pub fn start_with_nofile(args: &[&str], nofile: u64) -> Hoard {
        Hoard::start_with(
            tempfile::tempdir().expect("temp data dir"),
            args,
            Some(nofile),
        )
    }

    fn start_with(data: tempfile::TempDir, args: &[&str], nofile: Option<u64>) -> Hoard {
        let mut hoard = Hoard {
            child: None,
            stdout_path: data.path().join("test-stdout.txt"),
            log_path: data.path().join("test-log.txt"),
            data,
            base: String::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            nofile,
        };
        hoard.spawn();
        hoard
    }

    fn spawn(&mut self) {
        let stdout = std::fs::File::create(&self.stdout_path).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut command = Command::new(bin());
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command
            .arg("--data-dir")
            .arg(self.data.path())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(if self.args.iter().any(|a| a == "--space-reserve-mib") {
                &[][..]
            } else {
                &["--space-reserve-mib", "0"][..]
            })
            .args(&self.args)
            .env("HOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .expect("start hoard");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
            if let Some(url) = out
                .lines()
                .find_map(|l| l.strip_prefix("hoard is running: open "))
            {
                self.base = url.trim().to_string();
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("hoard exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "hoard did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// How many times `event` is in the activity log.
    pub fn activity_count(&self, event: &str) -> i64 {
        let db = rusqlite::Connection::open(self.data.path().join("hoard.db")).unwrap();
        db.query_row(
            "SELECT COUNT(*) FROM activity_log WHERE event = ?1",
            [event],
            |r| r.get(0),
        )
        .unwrap()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Kills with SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks for a clean stop with SIGTERM and waits for it.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        child.wait().unwrap()
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs a CLI command on this data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli_in(self.data.path(), args, None)
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "hoard {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.cli_ok(&all)).expect("JSON output")
    }

    /// An API key for a user.
    pub fn key(&self, user: &str) -> String {
        self.cli_ok(&["key", "create", "--user", user])
            .trim()
            .to_string()
    }

    pub fn add_user(&self, name: &str, admin: bool) {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        if admin {
            args.push("--admin");
        }
        let out = cli_in(
            self.data.path(),
            &args,
            Some(&format!("{name}-password-1\n")),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds a server over `path` owned by `owner`; returns its short identifier.
    /// Makes `user` a subuser of `server` with these permissions (comma-separated; empty
    /// for none), through the CLI.
    pub fn add_subuser(&self, server: &str, user: &str, permissions: &str) {
        self.cli_ok(&[
            "subuser",
            "add",
            "--server",
            server,
            "--user",
            user,
            "--permissions",
            permissions,
        ]);
    }

    pub fn add_server(&self, name: &str, path: &Path, owner: &str, extra: &[&str]) -> String {
        let mut args = vec![
            "server",
            "add",
            "--name",
            name,
            "--path",
            path.to_str().unwrap(),
            "--owner",
            owner,
        ];
        args.extend_from_slice(extra);
        let v = self.cli_json(&args);
        v["attributes"]["identifier"].as_str().unwrap().to_string()
    }

    pub fn api(&self, token: &str) -> Api {
        Api::new(&self.base, Some(token.to_string()))
    }

    pub fn anon(&self) -> Api {
        Api::new(&self.base, None)
    }
}

impl Drop for Hoard {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn cli_in(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("HOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The first error's `detail`, or "" when there is none.
    pub fn detail(&self) -> String {
        self.json()["errors"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the contract's error body with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "expected {status} {code}, got {}: {}",
            self.status,
            self.text()
        );
        let body = self.json();
        let err = &body["errors"][0];
        assert_eq!(err["code"], code, "{body}");
        assert_eq!(err["status"], status.to_string(), "{body}");
        assert!(
            err["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

pub struct Api {
    agent: ureq::Agent,
    base: String,
    pub token: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Api {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Api {
            agent,
            base: base.to_string(),
            token,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Api {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        builder = builder.header("Accept", "application/json");
        if let Some(token) = &self.token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        for (n, v) in &self.headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        for (n, v) in extra {
            builder = builder.header(*n, *v);
        }
        let response = match body {
            Some(b) => {
                let req = builder
                    .header("Content-Type", "application/json")
                    .body(b.to_string())
                    .unwrap();
                self.agent.run(req)
            }
            None => self.agent.run(builder.body(()).unwrap()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let mut body = Vec::new();
        if method != "HEAD" {
            response
                .body_mut()
                .with_config()
                .limit(u64::MAX)
                .reader()
                .read_to_end(&mut body)
                .unwrap();
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, Some(body), &[])
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, None, &[])
    }

    pub fn patch(&self, path: &str, body: &str) -> Reply {
        self.request("PATCH", path, Some(body), &[])
    }

    /// Creates a backup and waits for it to finish; returns its attributes.
    pub fn backup_and_wait(&self, server: &str, body: &str) -> Value {
        let r = self.post(&format!("/api/client/servers/{server}/backups"), body);
        assert_eq!(r.status, 200, "{}", r.text());
        let uuid = r.json()["attributes"]["uuid"].as_str().unwrap().to_string();
        self.wait_backup(server, &uuid)
    }

    pub fn wait_backup(&self, server: &str, uuid: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let b = self
                .get(&format!("/api/client/servers/{server}/backups/{uuid}"))
                .json();
            if b["attributes"]["status"] != "creating" {
                return b["attributes"].clone();
            }
            assert!(Instant::now() < deadline, "backup {uuid} did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the server is no longer restoring.
    pub fn wait_restore(&self, server: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let s = self.get(&format!("/api/client/servers/{server}")).json();
            if s["attributes"]["status"] != "restoring_backup" {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "restore of {server} did not finish"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Sends raw bytes as an HTTP request and returns the status code (0 if none came back).
pub fn raw_request(base: &str, request: &[u8]) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    exchange(std::net::TcpStream::connect(addr).unwrap(), request)
}

/// Writes `request` on `stream` and reads the response to its end: its status (0 if none
/// came back) and text.
fn exchange(mut stream: std::net::TcpStream, request: &[u8]) -> (u16, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Writes a file, creating parent directories.
pub fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift), incompressible.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// What a tree holds, path by path: kind, mode, mtime, and content hash or link target.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let desc = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {:o} {}", meta.mode() & 0o7777, meta.mtime())
            } else {
                format!(
                    "file {:o} {} {}",
                    meta.mode() & 0o7777,
                    meta.mtime(),
                    sha256_hex(&std::fs::read(&path).unwrap())
                )
            };
            out.insert(rel, desc);
        }
    }
    out
}

/// Mounts a tmpfs of `size` (e.g. "8m") on `dir`, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "this test mounts a small tmpfs: run it as root"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Bytes of a file held in the page cache, from util-linux's `fincore`.
pub fn cached_bytes(path: &Path) -> u64 {
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .expect("fincore (util-linux) runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Sends raw bytes as an HTTP request from the local address `from`: on Linux all of
/// 127.0.0.0/8 is loopback, so tests can be several clients of a hoard on 127.0.0.1.
pub fn raw_request_from(base: &str, from: std::net::Ipv4Addr, request: &[u8]) -> (u16, String) {
    use socket2::{Domain, Socket, Type};
    let server: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from((from, 0)).into())
        .unwrap();
    socket.connect(&server.into()).unwrap();
    exchange(socket.into(), request)
}

/// A `POST` with a body of the given type, closing the connection after the response.
pub fn post_request(path: &str, content_type: &str, body: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}
