//! Hardening of the API's lesser points: file modes in the data directory, what subusers
//! see, login CSRF and throttling per client address, hook output and environment, suspended
//! servers, and the server listing.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file and directory under `root`, the root included.
fn tree(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() && !out[i].is_symlink() {
            for entry in std::fs::read_dir(&out[i]).unwrap() {
                out.push(entry.unwrap().path());
            }
        }
        i += 1;
    }
    out
}

/// Acceptance 13.4: a data directory that existed with mode 0755 and a 0644 file in it is
/// made private at start, and everything hoard then writes (database, WAL, SHM, secret,
/// archives, manifests) is 0600.
#[test]
fn the_data_directory_and_everything_in_it_is_private_to_hoard() {
    let data = tempfile::tempdir().unwrap();
    chmod(data.path(), 0o755);
    let stray = data.path().join("notes.txt");
    std::fs::write(&stray, b"copied in by hand").unwrap();
    chmod(&stray, 0o644);
    std::fs::create_dir(data.path().join("old")).unwrap();
    chmod(&data.path().join("old"), 0o755);

    let mut hoard = Hoard::start_in(data, &["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "world/level.dat", b"level");
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let backup = api.backup_and_wait(&server, "{}");
    assert_eq!(backup["status"], "completed", "{backup}");
    assert!(hoard.log().contains("private"), "{}", hoard.log());

    let data = hoard.data.path().to_path_buf();
    assert_eq!(mode(&data), 0o700);
    let names: BTreeSet<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for expected in ["hoard.db", "hoard.db-wal", "hoard.db-shm", "secret.key"] {
        assert!(names.contains(expected), "{expected} missing: {names:?}");
        assert_eq!(mode(&data.join(expected)), 0o600, "{expected}");
    }
    assert_eq!(mode(&stray), 0o600);
    assert_eq!(mode(&data.join("old")), 0o700);
    let uuid = backup["uuid"].as_str().unwrap();
    let stored: Vec<_> = tree(&data.join("backups"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(uuid))
        .collect();
    assert_eq!(stored.len(), 2, "the archive and its manifest: {stored:?}");
    for path in tree(&data) {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{}", path.display());
    }

    // At every start: a file opened up while hoard was stopped is closed again.
    chmod(&data.join("secret.key"), 0o644);
    chmod(&data, 0o755);
    hoard.restart();
    assert_eq!(mode(&data.join("secret.key")), 0o600);
    assert_eq!(mode(&data), 0o700);
}

/// A server owned by `olive`, with a completed backup and a finished restore, and subusers
/// `reader` (backup.read) and `fetcher` (backup.download only).
struct Shared {
    hoard: Hoard,
    _dir: tempfile::TempDir,
    server: String,
    owner: Api,
    admin: Api,
}

fn shared(extra_server_args: &[&str]) -> Shared {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "world/level.dat", b"level");
    hoard.add_user("olive", false);
    let server = hoard.add_server("mc", dir.path(), "olive", extra_server_args);
    for (user, permissions) in [("reader", "backup.read"), ("fetcher", "backup.download")] {
        hoard.add_user(user, false);
        hoard.add_subuser(&server, user, permissions);
    }
    Shared {
        owner: hoard.api(&hoard.key("olive")),
        admin: hoard.api(&hoard.key("admin")),
        _dir: dir,
        server,
        hoard,
    }
}

impl Shared {
    fn api(&self, user: &str) -> Api {
        self.hoard.api(&self.hoard.key(user))
    }
}

/// The server as `api` sees it, alone and in the listing.
fn server_views(api: &Api, server: &str) -> (Value, Value) {
    let one = api.get(&format!("/api/client/servers/{server}"));
    assert_eq!(one.status, 200, "{}", one.text());
    let list = api.get("/api/client");
    assert_eq!(list.status, 200, "{}", list.text());
    let listed = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attributes"]["identifier"] == server)
        .expect("listed")["attributes"]
        .clone();
    (one.json()["attributes"].clone(), listed)
}

#[test]
fn a_subuser_without_backup_read_sees_no_last_backup_nor_restores() {
    let s = shared(&[]);
    let backup = s.owner.backup_and_wait(&s.server, "{}");
    let uuid = backup["uuid"].as_str().unwrap();
    let r = s.owner.post(
        &format!("/api/client/servers/{}/backups/{uuid}/restore", s.server),
        r#"{"truncate":false}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    s.owner.wait_restore(&s.server);

    for api in [&s.owner, &s.api("reader")] {
        for view in <[Value; 2]>::from(server_views(api, &s.server)) {
            assert_eq!(view["last_backup"]["uuid"], uuid, "{view}");
            assert_eq!(view["last_restore"]["backup_uuid"], uuid, "{view}");
            assert_eq!(view["last_restore"]["successful"], true, "{view}");
        }
    }
    let fetcher = s.api("fetcher");
    for view in <[Value; 2]>::from(server_views(&fetcher, &s.server)) {
        assert!(view["last_backup"].is_null(), "{view}");
        assert!(view["restore"].is_null(), "{view}");
        assert!(view["last_restore"].is_null(), "{view}");
        assert!(!view.to_string().contains(uuid), "{view}");
    }
}

fn session_count(hoard: &Hoard) -> i64 {
    let db = rusqlite::Connection::open(hoard.data.path().join("hoard.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn login_needs_a_json_body() {
    let hoard = Hoard::start(&[]);
    let body = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (status, text) = raw_request(
            &hoard.base,
            &post_request("/auth/login", content_type, &body, ""),
        );
        assert_eq!(status, 415, "{content_type}: {text}");
        assert!(
            text.contains(r#""code":"UnsupportedMediaTypeHttpException""#)
                && text.contains(r#""status":"415""#),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("set-cookie"), "{text}");
    }
    let (status, text) = raw_request(&hoard.base, &post_request("/auth/login", "", &body, ""));
    assert_eq!(status, 415, "no type: {text}");
    assert_eq!(session_count(&hoard), 0, "a refused login opens no session");
    assert_eq!(hoard.activity_count("auth:success"), 0);

    let (status, text) = raw_request(
        &hoard.base,
        &post_request("/auth/login", "Application/JSON; charset=utf-8", &body, ""),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(session_count(&hoard), 1);
}

fn login_from(hoard: &Hoard, from: [u8; 4], username: &str, password: &str) -> (u16, String) {
    let body = serde_json::json!({"username": username, "password": password}).to_string();
    // A header naming another address must change nothing: the peer address counts.
    raw_request_from(
        &hoard.base,
        Ipv4Addr::from(from),
        &post_request(
            "/auth/login",
            "application/json",
            &body,
            "X-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.7\r\n",
        ),
    )
}

#[test]
fn a_lockout_from_one_address_does_not_stop_a_login_from_another() {
    let hoard = Hoard::start(&[]);
    for _ in 0..5 {
        let (status, text) = login_from(&hoard, [127, 0, 0, 2], "admin", "wrong-password");
        assert_eq!(status, 401, "{text}");
    }
    let (status, text) = login_from(&hoard, [127, 0, 0, 2], "admin", ADMIN_PASSWORD);
    assert_eq!(status, 429, "the attacker's address is locked out: {text}");
    assert!(text.contains("TooManyRequestsException"), "{text}");
    let (status, text) = login_from(&hoard, [127, 0, 0, 3], "admin", ADMIN_PASSWORD);
    assert_eq!(status, 200, "the admin elsewhere logs in: {text}");

    // The failures were recorded with the connection's address, not the header's.
    let db = rusqlite::Connection::open(hoard.data.path().join("hoard.db")).unwrap();
    let ips: Vec<Option<String>> = db
        .prepare("SELECT ip FROM activity_log WHERE event = 'auth:fail'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ips, vec![Some("127.0.0.2".to_string()); 5]);
}

#[test]
fn many_usernames_from_one_address_are_throttled() {
    let hoard = Hoard::start(&[]);
    hoard.add_user("olive", false);
    let mut refused_at = None;
    for i in 0..30 {
        let (status, text) = login_from(&hoard, [127, 0, 0, 4], &format!("guess{i}"), "password-1");
        match status {
            401 => {}
            429 => {
                refused_at = Some(i);
                break;
            }
            _ => panic!("{text}"),
        }
    }
    assert_eq!(
        refused_at,
        Some(20),
        "twenty failures per address and minute"
    );
    // Even a correct login from that address waits; from another address it works.
    let (status, _) = login_from(&hoard, [127, 0, 0, 4], "olive", "olive-password-1");
    assert_eq!(status, 429);
    let (status, text) = login_from(&hoard, [127, 0, 0, 5], "olive", "olive-password-1");
    assert_eq!(status, 200, "{text}");
}

/// The umask of this process, which hoard inherited.
fn own_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

#[test]
fn hook_output_is_for_the_owner_and_hooks_get_a_minimal_environment() {
    let marker = tempfile::tempdir().unwrap();
    let env_file = marker.path().join("env.txt");
    let made = marker.path().join("made-by-hook");
    let hook = format!(
        "env > {}; touch {}; echo 'rcon: wrong password hunter2' >&2; exit 3",
        env_file.display(),
        made.display()
    );
    let s = shared(&["--pre-backup", &hook]);
    let failed = s.owner.backup_and_wait(&s.server, "{}");
    assert_eq!(failed["status"], "failed", "{failed}");
    let uuid = failed["uuid"].as_str().unwrap();
    let summary = "the pre_backup hook exited with status 3";
    let path = format!("/api/client/servers/{}/backups/{uuid}", s.server);
    let list = format!("/api/client/servers/{}/backups", s.server);

    for api in [&s.owner, &s.admin] {
        let b = api.get(&path).json()["attributes"].clone();
        assert_eq!(b["error"], summary, "{b}");
        assert!(
            b["error_detail"].as_str().unwrap().contains("hunter2"),
            "{b}"
        );
    }
    let reader = s.api("reader");
    let shown = [
        reader.get(&path).json()["attributes"].clone(),
        reader.get(&list).json()["data"][0]["attributes"].clone(),
    ];
    for b in shown {
        assert_eq!(b["uuid"], uuid);
        assert_eq!(b["error"], summary, "{b}");
        assert!(b["error_detail"].is_null(), "{b}");
        assert!(!b.to_string().contains("hunter2"), "{b}");
    }
    // The log has it, for the admin reading it.
    assert!(s.hoard.log().contains("hunter2"));

    let env = std::fs::read_to_string(&env_file).unwrap();
    let names: BTreeSet<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    let allowed = [
        "PATH",
        "HOME",
        "LANG",
        "HOARD_SERVER_UUID",
        "HOARD_SERVER_NAME",
        "HOARD_SERVER_PATH",
        "HOARD_BACKUP_UUID",
        "HOARD_BACKUP_NAME",
        // Set by the shell itself.
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
    ];
    for name in &names {
        assert!(allowed.contains(name), "{name} leaked into the hook: {env}");
    }
    assert!(
        names.contains("PATH") && names.contains("HOARD_BACKUP_UUID"),
        "{env}"
    );
    // Set in hoard's environment by the test harness, and not the hook's business.
    assert!(
        !env.contains("RUST_LOG") && !env.contains("HOARD_ADMIN_PASSWORD"),
        "{env}"
    );
    // hoard's own files are private; what a hook makes follows the umask hoard was given.
    assert_eq!(mode(&made), 0o666 & !own_umask());
}

/// What each backup route answers `api` on the suspended server `s`.
fn refusals(s: &Shared, api: &Api, backup: &str, link: &str) {
    let server = &s.server;
    let base = format!("/api/client/servers/{server}/backups");
    let answers = [
        ("create", api.post(&base, "{}")),
        (
            "restore",
            api.post(&format!("{base}/{backup}/restore"), "{}"),
        ),
        ("delete", api.delete(&format!("{base}/{backup}"))),
        ("lock", api.post(&format!("{base}/{backup}/lock"), "")),
        (
            "download link",
            api.get(&format!("{base}/{backup}/download")),
        ),
        ("download", api.get(link)),
    ];
    for (what, r) in answers {
        assert_eq!(r.status, 409, "{what}: {}", r.text());
        r.assert_error(409, "ConflictingServerStateException");
        assert!(r.detail().contains("suspended"), "{what}: {}", r.detail());
    }
    // Reading is still allowed.
    assert_eq!(api.get(&base).status, 200);
}

fn download_link(api: &Api, server: &str, backup: &str) -> String {
    let r = api.get(&format!(
        "/api/client/servers/{server}/backups/{backup}/download"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["attributes"]["url"].as_str().unwrap().to_string()
}

#[test]
fn a_suspended_server_refuses_changes_and_downloads_to_everyone_but_admins() {
    let s = shared(&[]);
    s.hoard.add_user("sam", false);
    s.hoard.add_subuser(
        &s.server,
        "sam",
        "backup.read,backup.create,backup.download,backup.delete,backup.restore",
    );
    let subuser = s.api("sam");
    let backup = s.owner.backup_and_wait(&s.server, "{}");
    let uuid = backup["uuid"].as_str().unwrap().to_string();
    let owner_link = download_link(&s.owner, &s.server, &uuid);
    let subuser_link = download_link(&subuser, &s.server, &uuid);
    let list = format!("/api/client/servers/{}/backups", s.server);
    let before = s.owner.get(&list).json()["data"].clone();

    s.hoard
        .cli_ok(&["server", "update", &s.server, "--status", "suspended"]);
    refusals(&s, &s.owner, &uuid, &owner_link);
    refusals(&s, &subuser, &uuid, &subuser_link);
    assert_eq!(
        s.owner.get(&list).json()["data"],
        before,
        "refused requests changed nothing"
    );

    // Admins still can, and the server stays suspended throughout.
    let admin = &s.admin;
    let base = format!("/api/client/servers/{}/backups", s.server);
    assert_eq!(admin.post(&format!("{base}/{uuid}/lock"), "").status, 204);
    assert_eq!(admin.post(&format!("{base}/{uuid}/lock"), "").status, 204);
    let link = download_link(admin, &s.server, &uuid);
    let file = admin.get(&link);
    assert_eq!(file.status, 200);
    assert_eq!(
        sha256_hex(&file.body),
        backup["sha256_hash"].as_str().unwrap()
    );
    let second = admin.backup_and_wait(&s.server, "{}");
    assert_eq!(second["status"], "completed", "{second}");
    let r = admin.post(&format!("{base}/{uuid}/restore"), "{}");
    assert_eq!(r.status, 202, "{}", r.text());
    let after = admin.wait_restore(&s.server);
    assert_eq!(after["attributes"]["status"], "suspended", "{after}");
    assert_eq!(
        after["attributes"]["last_restore"]["successful"], true,
        "{after}"
    );
    let r = admin.delete(&format!("{base}/{}", second["uuid"].as_str().unwrap()));
    assert_eq!(r.status, 204, "{}", r.text());
    // Lifting the suspension gives the users their routes back.
    s.hoard
        .cli_ok(&["server", "update", &s.server, "--status", "none"]);
    assert_eq!(s.owner.post(&format!("{base}/{uuid}/lock"), "").status, 204);
    assert_eq!(subuser.get(&owner_link).status, 200);
}

/// `GET /api/client` with 20 servers: each with its own counts, last backup and the
/// caller's view of it, whatever the caller's relation to each server.
#[test]
fn the_server_list_is_right_for_twenty_servers() {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    hoard.add_user("olive", false);
    let dirs: Vec<_> = (0..20).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        write(dir.path(), "a.txt", format!("server {i}").as_bytes());
        let owner = if i < 10 { "olive" } else { "admin" };
        let limit = (i + 1).to_string();
        let id = hoard.add_server(
            &format!("s{i:02}"),
            dir.path(),
            owner,
            &["--backup-limit", &limit],
        );
        match i {
            10..=14 => hoard.add_subuser(&id, "olive", "backup.read"),
            15..=17 => hoard.add_subuser(&id, "olive", "backup.download"),
            _ => {}
        }
        servers.push(id);
    }
    let admin = hoard.api(&hoard.key("admin"));
    // Server i has i % 3 backups; the newest is the one to show.
    let mut newest = std::collections::HashMap::new();
    for (i, id) in servers.iter().enumerate() {
        for _ in 0..i % 3 {
            let b = admin.backup_and_wait(id, "{}");
            newest.insert(id.clone(), b["uuid"].as_str().unwrap().to_string());
        }
    }

    let olive = hoard.api(&hoard.key("olive"));
    for (api, who) in [(&admin, "admin"), (&olive, "olive")] {
        let list = api.get("/api/client");
        assert_eq!(list.status, 200, "{}", list.text());
        let list = list.json();
        let data = list["data"].as_array().unwrap();
        let expected: Vec<usize> = match who {
            "admin" => (0..20).collect(),
            _ => (0..18).collect(),
        };
        let names: Vec<&str> = data
            .iter()
            .map(|s| s["attributes"]["name"].as_str().unwrap())
            .collect();
        let wanted: Vec<String> = expected.iter().map(|i| format!("s{i:02}")).collect();
        assert_eq!(names, wanted, "{who}");
        assert_eq!(list["meta"]["pagination"]["total"], expected.len());
        for (item, &i) in data.iter().zip(&expected) {
            let a = &item["attributes"];
            let id = &servers[i];
            assert_eq!(item["object"], "server");
            assert_eq!(a["identifier"], id.as_str(), "{who} {a}");
            assert_eq!(a["feature_limits"]["backups"], i + 1, "{who} {a}");
            assert_eq!(a["backup_count"], i % 3, "{who} {a}");
            let owns = if who == "admin" { i >= 10 } else { i < 10 };
            assert_eq!(a["server_owner"], owns, "{who} {a}");
            let reads = who == "admin" || i < 15;
            match newest.get(id) {
                Some(uuid) if reads => {
                    assert_eq!(a["last_backup"]["uuid"], uuid.as_str(), "{who} {a}")
                }
                _ => assert!(a["last_backup"].is_null(), "{who} {a}"),
            }
            assert!(a["restore"].is_null() && a["last_restore"].is_null(), "{a}");
        }
    }
}

/// Each event names who acted: the user and the API key they used, the user alone in the
/// browser, and nobody (hoard) for what a job did.
#[test]
fn activity_records_the_actor() {
    let s = shared(&[]);
    let token = s.owner.token.clone().unwrap();
    let backup = s.owner.backup_and_wait(&s.server, "{}");
    let uuid = backup["uuid"].as_str().unwrap();

    let browser = login_session(&s.hoard, "olive", "olive-password-1");
    let r = browser.request(
        "POST",
        &format!("/api/client/servers/{}/backups/{uuid}/lock", s.server),
        Some(""),
        &[],
    );
    assert_eq!(r.status, 204, "{}", r.text());

    let db = rusqlite::Connection::open(s.hoard.data.path().join("hoard.db")).unwrap();
    let olive: i64 = db
        .query_row("SELECT id FROM users WHERE username = 'olive'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let key: i64 = db
        .query_row(
            "SELECT id FROM api_keys WHERE ?1 LIKE identifier || '%'",
            [&token],
            |r| r.get(0),
        )
        .unwrap();
    let actor = |event: &str| -> (Option<i64>, Option<i64>, Option<String>) {
        db.query_row(
            "SELECT user_id, api_key_id, ip FROM activity_log WHERE event = ?1",
            [event],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let local = Some("127.0.0.1".to_string());
    assert_eq!(
        actor("server:backup.start"),
        (Some(olive), Some(key), local.clone())
    );
    // The job's outcome is the requester's, made by no request: no key, no address.
    assert_eq!(actor("server:backup.complete"), (Some(olive), None, None));
    assert_eq!(
        actor("server:backup.lock"),
        (Some(olive), None, local.clone())
    );
    assert_eq!(actor("auth:success"), (Some(olive), None, local));
}

/// A browser session: its cookie and CSRF token on every request.
fn login_session(hoard: &Hoard, username: &str, password: &str) -> Api {
    let r = hoard.anon().post(
        "/auth/login",
        &serde_json::json!({"username": username, "password": password}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = r.json()["meta"]["csrf_token"].as_str().unwrap().to_string();
    hoard
        .anon()
        .with_header("Cookie", &cookie)
        .with_header("X-CSRF-Token", &csrf)
}
