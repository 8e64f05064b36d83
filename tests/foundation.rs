//! The foundation: first start, configuration, migrations, stored secrets, server path
//! rules and behaviour under concurrent load.

mod common;

use common::*;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `hoard serve` with the given environment and arguments; returns its stdout
/// once it printed its URL, and the child.
fn serve_raw(
    data: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (std::process::Child, String) {
    let out_path = data.with_extension("stdout");
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .arg("serve")
        .args(args)
        .env_remove("HOARD_ADMIN_PASSWORD")
        .env_remove("HOARD_LISTEN")
        .envs(env.iter().copied())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        if out.contains("hoard is running")
            && (out.contains("Keep it") || !out.contains("First start"))
        {
            std::thread::sleep(Duration::from_millis(100));
            return (child, std::fs::read_to_string(&out_path).unwrap());
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("hoard exited: {status}: {out}");
        }
        assert!(Instant::now() < deadline, "no start: {out}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(mut child: std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn first_start_prints_url_and_password_once_and_the_key_reads_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (child, out) = serve_raw(&data, &[], &["--listen", &listen]);
    assert!(out.contains(&format!("http://127.0.0.1:{port}")), "{out}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("First start: created user 'admin' with password "))
        .expect("password printed")
        .trim()
        .to_string();
    assert_eq!(password.len(), 20);
    // The secret is 32 bytes with mode 0600.
    let meta = std::fs::metadata(data.join("secret.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);

    // The printed password logs in.
    let api = Api::new(&format!("http://{listen}"), None);
    let login = api.post(
        "/auth/login",
        &format!(r#"{{"username":"admin","password":"{password}"}}"#),
    );
    assert_eq!(login.status, 200, "{}", login.text());

    let key = String::from_utf8(
        common::cli_in(&data, &["key", "create", "--user", "admin"], None).stdout,
    )
    .unwrap();
    let list =
        Api::new(&format!("http://{listen}"), Some(key.trim().to_string())).get("/api/client");
    assert_eq!(list.status, 200);
    let body = list.json();
    assert_eq!(body["object"], "list");
    assert!(body["data"].as_array().unwrap().is_empty());
    assert!(body["meta"]["pagination"]["total"].is_number());
    stop(child);

    let (child, out) = serve_raw(&data, &[], &["--listen", &listen]);
    assert!(
        !out.contains("password"),
        "second start printed a password: {out}"
    );
    stop(child);
}

#[test]
fn admin_password_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, out) = serve_raw(
        &data,
        &[("HOARD_ADMIN_PASSWORD", "chosen-password-1")],
        &["--listen", "127.0.0.1:0"],
    );
    assert!(!out.contains("chosen-password-1"));
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("hoard is running: open "))
        .unwrap()
        .trim()
        .to_string();
    let login = Api::new(&url, None).post(
        "/auth/login",
        r#"{"username":"admin","password":"chosen-password-1"}"#,
    );
    assert_eq!(login.status, 200);
    stop(child);
}

#[test]
fn settings_flags_beat_environment_beat_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (p_file, p_env, p_flag) = (free_port(), free_port(), free_port());
    std::fs::write(
        data.join("hoard.toml"),
        format!("listen = \"127.0.0.1:{p_file}\"\n"),
    )
    .unwrap();

    let (child, out) = serve_raw(&data, &[], &[]);
    assert!(
        out.contains(&format!(":{p_file}")),
        "file setting not used: {out}"
    );
    stop(child);

    let env_listen = format!("127.0.0.1:{p_env}");
    let (child, out) = serve_raw(&data, &[("HOARD_LISTEN", &env_listen)], &[]);
    assert!(
        out.contains(&format!(":{p_env}")),
        "environment did not beat the file: {out}"
    );
    stop(child);

    let flag_listen = format!("127.0.0.1:{p_flag}");
    let (child, out) = serve_raw(
        &data,
        &[("HOARD_LISTEN", &env_listen)],
        &["--listen", &flag_listen],
    );
    assert!(
        out.contains(&format!(":{p_flag}")),
        "flag did not beat the environment: {out}"
    );
    stop(child);
}

#[test]
fn unknown_keys_in_the_file_are_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hoard.toml"),
        "listen = \"127.0.0.1:0\"\nzstd_levle = 5\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(dir.path())
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zstd_levle"), "{err}");
}

#[test]
fn serve_help_documents_every_setting() {
    let out = Command::new(bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--public-url",
        "--http-threads",
        "--job-workers",
        "--compression",
        "--zstd-level",
        "--compression-threads",
        "--gzip-level",
        "--io-limit-mib-s",
        "--throttle-backups",
        "--throttle-window-secs",
        "--space-reserve-mib",
        "--download-link-ttl-secs",
        "--hook-timeout-secs",
        "--http-timeout-secs",
        "--request-timeout-secs",
        "--idle-timeout-secs",
        "--max-connections",
        "--shutdown-grace-secs",
        "--session-ttl-secs",
        "--data-dir",
    ] {
        assert!(help.contains(flag), "{flag} missing from serve --help");
    }
    assert!(
        help.contains("HOARD_LISTEN"),
        "environment variables are documented"
    );
}

#[test]
fn migrations_upgrade_older_databases_and_refuse_newer_ones() {
    use hoard::store::{self, Db, LATEST_VERSION};
    const { assert!(LATEST_VERSION >= 2) };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoard.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        store::apply_migrations(&mut conn, 1).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
        conn.execute(
            "INSERT INTO users (uuid, username, password_hash, is_admin, created_at, updated_at)
             VALUES ('u-1', 'old', 'x', 1, 0, 0)",
            [],
        )
        .unwrap();
        let has_restores: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'restores'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_restores, 0);
    }
    let db = Db::open(&path).unwrap();
    let conn = db.conn().unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, LATEST_VERSION);
    assert!(
        store::users::by_username(&conn, "old").unwrap().is_some(),
        "data kept"
    );
    let has_restores: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'restores'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(has_restores, 1);
    drop(conn);
    drop(db);

    let newer = LATEST_VERSION + 5;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = Db::open(&path)
        .err()
        .expect("a newer database is refused")
        .to_string();
    assert!(
        err.contains(&newer.to_string()) && err.contains(&LATEST_VERSION.to_string()),
        "{err}"
    );

    // The binary refuses to start on it, with the same message.
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&newer.to_string()) && stderr.contains(&LATEST_VERSION.to_string()),
        "{stderr}"
    );
}

#[test]
fn server_add_refuses_paths_that_break_the_rules() {
    let hoard = Hoard::start(&[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let data = hoard.data.path().to_str().unwrap().to_string();
    let inside = hoard.data.path().join("inside");
    std::fs::create_dir_all(&inside).unwrap();
    let parent = hoard
        .data
        .path()
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let missing = elsewhere.path().join("missing");
    let cases: [(&str, &str); 5] = [
        ("/", "root directory"),
        ("relative/dir", "relative"),
        (missing.to_str().unwrap(), "does not exist"),
        (inside.to_str().unwrap(), "inside hoard's data directory"),
        (&parent, "contains hoard's data directory"),
    ];
    for (path, rule) in cases {
        let out = hoard.cli(&["server", "add", "--name", "x", "--path", path]);
        assert!(!out.status.success(), "{path} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(rule), "{path}: expected '{rule}' in: {err}");
    }
    let _ = data;
    // The same rules hold in the API, as a 422 naming the field.
    let key = hoard.key("admin");
    let r = hoard
        .api(&key)
        .post("/api/application/servers", r#"{"name":"x","path":"/"}"#);
    r.assert_error(422, "ValidationException");
    assert_eq!(r.json()["errors"][0]["meta"]["source_field"], "path");
    assert!(r.detail().contains("root directory"));
    // A valid one works.
    let ok = hoard.cli(&[
        "server",
        "add",
        "--name",
        "ok",
        "--path",
        elsewhere.path().to_str().unwrap(),
    ]);
    assert!(ok.status.success());
}

#[test]
fn concurrent_clients_and_idle_connections() {
    let hoard = Hoard::start(&["--http-threads", "8"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", b"a");
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let key = hoard.key("admin");
    let base = hoard.base.clone();

    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (base, key, server) = (base.clone(), key.clone(), server.clone());
            std::thread::spawn(move || {
                let api = Api::new(&base, Some(key));
                let mut bad = Vec::new();
                for _ in 0..100 {
                    let r = api.get(&format!("/api/client/servers/{server}/backups"));
                    if !(200..300).contains(&r.status) {
                        bad.push(r.status);
                    }
                }
                bad
            })
        })
        .collect();
    let failures: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(failures.is_empty(), "non-2xx answers: {failures:?}");
    assert!(!hoard.log().contains("database is locked"));

    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(base.trim_start_matches("http://")).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let r = hoard.api(&key).get("/api/client");
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered in {:?}",
        started.elapsed()
    );
    drop(idle);
}

#[test]
fn the_database_and_logs_hold_no_secret_in_clear() {
    let hoard = Hoard::start(&[]);
    let key = hoard.key("admin");
    hoard.add_user("alice", false);
    let api = hoard.anon();
    assert_eq!(
        api.post(
            "/auth/login",
            &format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#)
        )
        .status,
        200
    );
    assert_eq!(
        api.post(
            "/auth/login",
            r#"{"username":"alice","password":"wrong-password-9"}"#
        )
        .status,
        401
    );
    assert_eq!(hoard.api(&key).get("/api/client").status, 200);
    let created = hoard
        .api(&key)
        .post("/api/client/account/api-keys", r#"{"description":"ci"}"#)
        .json();
    let second = format!(
        "{}{}",
        created["attributes"]["identifier"].as_str().unwrap(),
        created["meta"]["secret_token"].as_str().unwrap()
    );
    assert_eq!(hoard.api(&second).get("/api/client/account").status, 200);

    let secrets = [
        key[16..].to_string(),
        second[16..].to_string(),
        ADMIN_PASSWORD.to_string(),
        "alice-password-1".to_string(),
        "wrong-password-9".to_string(),
    ];
    let mut haystack = Vec::new();
    for entry in std::fs::read_dir(hoard.data.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            haystack.extend(std::fs::read(&path).unwrap());
        }
    }
    for secret in &secrets {
        let found = haystack
            .windows(secret.len())
            .any(|w| w == secret.as_bytes());
        assert!(
            !found,
            "a secret was found in the data directory or the log"
        );
    }
}

#[test]
fn simultaneous_keep_alive_connections_are_all_answered() {
    use std::io::{Read, Write};
    // A browser loading a page opens several connections at once and keeps them open.
    for _ in 0..5 {
        let hoard = Hoard::start(&[]);
        let addr = hoard.base.trim_start_matches("http://").to_string();
        let mut streams: Vec<TcpStream> =
            (0..8).map(|_| TcpStream::connect(&addr).unwrap()).collect();
        for s in &mut streams {
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        }
        for (i, s) in streams.iter_mut().enumerate() {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut first = [0u8; 12];
            let answered = s.read_exact(&mut first).is_ok() && first.starts_with(b"HTTP/1.1 200");
            assert!(answered, "connection {i} of 8 got no answer within 3 s");
        }
    }
}

#[test]
fn an_endless_header_line_ends_the_connection() {
    use std::io::{Read, Write};
    let hoard = Hoard::start(&[]);
    let addr = hoard.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(b"GET /api/client HTTP/1.1\r\nHost: x\r\nX-Junk: ");
    let junk = vec![b'a'; 64 * 1024];
    // The server stops reading after 16 KiB, so later writes may fail: that is the point.
    for _ in 0..32 {
        if stream.write_all(&junk).is_err() {
            break;
        }
    }
    let mut buf = [0u8; 256];
    let read = stream.read(&mut buf);
    assert!(
        !matches!(&read, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the server kept reading the header: {read:?}"
    );
    assert_eq!(hoard.anon().get("/api/client").status, 401, "still serving");
}

#[test]
fn running_out_of_file_descriptors_does_not_stop_the_listener() {
    let hoard = Hoard::start_with_nofile(&[], 64);
    let addr = hoard.base.trim_start_matches("http://").to_string();
    // Far more connections than descriptors: the connection cap, lowered to fit the limit,
    // closes the excess at once (or accepting fails for a while).
    let idle: Vec<TcpStream> = (0..120)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        hoard.log().contains("connections closed at once")
            || hoard.log().contains("cannot accept a connection"),
        "the limit was never reached: {}",
        hoard.log()
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(500));
    let (status, text) = raw_request(
        &hoard.base,
        b"GET /api/client HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        status, 401,
        "no answer once descriptors were free again: {text}"
    );
}

/// Clients that announce a body and then send nothing hold a request thread each only until
/// the HTTP timeout: they cannot stop the API answering.
#[test]
fn clients_that_stall_mid_request_do_not_stop_the_api() {
    use std::io::{Read, Write};
    let hoard = Hoard::start(&["--http-threads", "2", "--http-timeout-secs", "2"]);
    let addr = hoard.base.trim_start_matches("http://").to_string();
    let stalled: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(
                b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"username\"",
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut probe = TcpStream::connect(&addr).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    probe
        .write_all(b"GET /api/client HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    let answered = probe.read_exact(&mut first).is_ok();
    assert!(
        answered && first.starts_with(b"HTTP/1.1 401"),
        "no answer within {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
}
