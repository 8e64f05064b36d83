//! Creating backups: the checks of the create route, concurrency, files changing while
//! archived, limits and faults, crashes, progress, hooks, delete and lock.

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn setup(
    args: &[&str],
    files: &[(&str, Vec<u8>)],
    server_args: &[&str],
) -> (Hoard, tempfile::TempDir, String, Api) {
    let hoard = Hoard::start(args);
    let dir = tempfile::tempdir().unwrap();
    for (rel, data) in files {
        write(dir.path(), rel, data);
    }
    let server = hoard.add_server("mc", dir.path(), "admin", server_args);
    let key = hoard.key("admin");
    let api = hoard.api(&key);
    (hoard, dir, server, api)
}

fn server_uuid(api: &Api, server: &str) -> String {
    api.get(&format!("/api/client/servers/{server}")).json()["attributes"]["uuid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Files in the server's storage directory (archives, manifests, partial files).
fn stored_files(hoard: &Hoard, api: &Api, server: &str) -> Vec<String> {
    let dir = hoard
        .data
        .path()
        .join("backups")
        .join(server_uuid(api, server));
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Starts a backup and returns its uuid.
fn start_backup(api: &Api, server: &str) -> String {
    let r = create(api, server, "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["attributes"]["uuid"].as_str().unwrap().to_string()
}

/// Waits until the backup has read some of the server's files.
fn wait_until_archiving(api: &Api, server: &str, uuid: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while api
        .get(&format!("/api/client/servers/{server}/backups/{uuid}"))
        .json()["attributes"]["progress"]["bytes_processed"]
        .as_u64()
        .unwrap_or(0)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "backup {uuid} never started reading"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create(api: &Api, server: &str, body: &str) -> Reply {
    api.post(&format!("/api/client/servers/{server}/backups"), body)
}

#[test]
fn the_limit_counts_live_backups_and_a_failed_one_frees_its_slot() {
    let (hoard, dir, server, api) = setup(
        &["--throttle-backups", "0"],
        &[("a.txt", b"a".to_vec())],
        &["--backup-limit", "3"],
    );
    for _ in 0..3 {
        assert_eq!(api.backup_and_wait(&server, "{}")["status"], "completed");
    }
    let r = create(&api, &server, "{}");
    r.assert_error(400, "TooManyBackupsException");
    assert_eq!(
        r.json()["errors"][0]["detail"],
        "This server has reached its backup limit."
    );
    // A failing pre_backup hook makes a failed backup, which does not count.
    hoard.cli_ok(&[
        "server",
        "update",
        &server,
        "--backup-limit",
        "4",
        "--pre-backup",
        "echo broken >&2; exit 1",
    ]);
    let failed = api.backup_and_wait(&server, "{}");
    assert_eq!(failed["status"], "failed");
    hoard.cli_ok(&["server", "update", &server, "--pre-backup", ""]);
    assert_eq!(
        api.backup_and_wait(&server, "{}")["status"],
        "completed",
        "the failed backup freed its slot"
    );
    create(&api, &server, "{}").assert_error(400, "TooManyBackupsException");
    let list = api
        .get(&format!("/api/client/servers/{server}/backups"))
        .json();
    assert_eq!(list["meta"]["backup_count"], 4);
    assert_eq!(list["meta"]["pagination"]["total"], 5);
    // Limit 0 disables backups.
    hoard.cli_ok(&["server", "update", &server, "--backup-limit", "0"]);
    let r = create(&api, &server, "{}");
    r.assert_error(400, "TooManyBackupsException");
    assert!(r.detail().contains("disabled"));
    drop(dir);
}

#[test]
fn the_create_route_refuses_busy_and_unavailable_servers() {
    let big = noise(8 << 20, 3);
    let (hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0", "--io-limit-mib-s", "4"],
        &[("big.bin", big)],
        &[],
    );
    // Twenty concurrent creates on an idle server: exactly one starts.
    let base = hoard.base.clone();
    let token = api.token.clone().unwrap();
    let results: Vec<u16> = (0..20)
        .map(|_| {
            let (base, token, server) = (base.clone(), token.clone(), server.clone());
            std::thread::spawn(move || {
                Api::new(&base, Some(token))
                    .post(&format!("/api/client/servers/{server}/backups"), "{}")
                    .status
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|s| **s == 200).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|s| **s == 409).count(),
        19,
        "{results:?}"
    );
    let r = create(&api, &server, "{}");
    r.assert_error(409, "ConflictingServerStateException");
    assert_eq!(
        r.json()["errors"][0]["detail"],
        "Cannot create backup while another backup is in progress."
    );
    // Deleting a backup being created is refused too.
    let running = api
        .get(&format!("/api/client/servers/{server}/backups"))
        .json()["data"][0]["attributes"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    api.delete(&format!("/api/client/servers/{server}/backups/{running}"))
        .assert_error(409, "ConflictingServerStateException");
    api.get(&format!(
        "/api/client/servers/{server}/backups/{running}/download"
    ))
    .assert_error(400, "BackupNotCompletedException");
    api.wait_backup(&server, &running);

    // (A suspended server refuses everyone but admins: see tests/hardening_api.rs.)
    hoard.cli_ok(&["server", "update", &server, "--status", "installing"]);
    let r = create(&api, &server, "{}");
    r.assert_error(409, "ConflictingServerStateException");
    assert!(r.detail().contains("installing"));
    hoard.cli_ok(&["server", "update", &server, "--status", "none"]);
    assert_eq!(
        list_count(&api, &server),
        1,
        "refused requests created nothing"
    );
}

fn list_count(api: &Api, server: &str) -> u64 {
    api.get(&format!("/api/client/servers/{server}/backups"))
        .json()["meta"]["pagination"]["total"]
        .as_u64()
        .unwrap()
}

#[test]
fn the_throttle_answers_429_with_the_time_to_wait() {
    let (_hoard, _dir, server, api) = setup(
        &["--throttle-backups", "2", "--throttle-window-secs", "600"],
        &[("a", b"a".to_vec())],
        &[],
    );
    let first = Instant::now();
    api.backup_and_wait(&server, "{}");
    api.backup_and_wait(&server, "{}");
    let r = create(&api, &server, "{}");
    r.assert_error(429, "TooManyRequestsException");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    let elapsed = first.elapsed().as_secs();
    assert!(
        retry <= 600 && retry + elapsed + 2 >= 600,
        "Retry-After {retry} after {elapsed} s"
    );
}

#[test]
fn space_and_quota_are_checked_before_starting() {
    let data = noise(2 << 20, 4);
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "world.bin", &data);
    let server = hoard.add_server("mc", dir.path(), "admin", &["--quota-bytes", "3000000"]);
    let api = hoard.api(&hoard.key("admin"));
    assert_eq!(api.backup_and_wait(&server, "{}")["status"], "completed");
    // 2 MiB stored + 2 MiB needed > 3,000,000 bytes.
    let r = create(&api, &server, "{}");
    r.assert_error(507, "InsufficientStorageException");
    assert!(r.detail().contains("quota"));
    drop(hoard);

    // A reserve larger than the disk's free space refuses every backup.
    let hoard = Hoard::start(&[
        "--throttle-backups",
        "0",
        "--space-reserve-mib",
        "100000000",
    ]);
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let r = create(&api, &server, "{}");
    r.assert_error(507, "InsufficientStorageException");
    assert_eq!(list_count(&api, &server), 0);
}

#[test]
fn files_changing_while_archived_become_warnings() {
    let size = 24usize << 20;
    let (hoard, dir, server, api) = setup(
        &["--throttle-backups", "0", "--io-limit-mib-s", "8"],
        &[
            ("a-shrinks.bin", noise(size, 1)),
            ("b-grows.bin", noise(size, 2)),
            ("c.txt", b"steady".to_vec()),
        ],
        &["--compression", "none"],
    );
    let b = create(&api, &server, "{}").json();
    let uuid = b["attributes"]["uuid"].as_str().unwrap().to_string();
    let (mut shrunk, mut grown) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(shrunk && grown) {
        assert!(Instant::now() < deadline, "never saw the right moments");
        let b = api
            .get(&format!("/api/client/servers/{server}/backups/{uuid}"))
            .json();
        assert_eq!(
            b["attributes"]["status"], "creating",
            "finished too early: {b}"
        );
        let done = b["attributes"]["progress"]["bytes_processed"]
            .as_u64()
            .unwrap() as usize;
        if !shrunk && done > (4 << 20) && done < size - (6 << 20) {
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.path().join("a-shrinks.bin"))
                .unwrap()
                .set_len(1 << 20)
                .unwrap();
            shrunk = true;
        }
        if shrunk && !grown && done > size + (4 << 20) && done < 2 * size - (6 << 20) {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.path().join("b-grows.bin"))
                .unwrap();
            f.write_all(&noise(1 << 20, 5)).unwrap();
            grown = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let done = api.wait_backup(&server, &uuid);
    assert_eq!(done["status"], "completed", "{done}");
    let warnings = done["warnings"].to_string();
    assert!(
        warnings.contains("a-shrinks.bin") && warnings.contains("b-grows.bin"),
        "{warnings}"
    );
    assert!(!warnings.contains("c.txt"));
    // The archive extracts cleanly: the shrunk file padded to its header size.
    let file = hoard
        .data
        .path()
        .join("backups")
        .join(server_uuid(&api, &server))
        .join(format!("{uuid}.tar"));
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::metadata(out.path().join("a-shrinks.bin"))
            .unwrap()
            .len(),
        size as u64
    );
    assert_eq!(
        std::fs::metadata(out.path().join("b-grows.bin"))
            .unwrap()
            .len(),
        size as u64
    );
    assert_eq!(std::fs::read(out.path().join("c.txt")).unwrap(), b"steady");
}

#[test]
fn the_size_limit_fails_the_backup_and_leaves_no_file() {
    let (hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0"],
        &[("big.bin", noise(4 << 20, 6))],
        &["--max-backup-bytes", "1000000"],
    );
    let b = api.backup_and_wait(&server, "{}");
    assert_eq!(b["status"], "failed");
    assert_eq!(b["is_successful"], false);
    assert!(b["sha256_hash"].is_null() && b["bytes"] == 0);
    let error = b["error"].as_str().unwrap();
    assert!(
        error.contains("1000000") && error.contains("max_backup_bytes"),
        "{error}"
    );
    assert!(
        stored_files(&hoard, &api, &server).is_empty(),
        "{:?}",
        stored_files(&hoard, &api, &server)
    );
}

#[test]
fn a_full_disk_fails_the_backup_and_leaves_no_file() {
    let hoard_data = tempfile::tempdir().unwrap();
    let backups = hoard_data.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let _tmpfs = Tmpfs::mount(&backups, "16m");
    let hoard = Hoard::start_in(
        hoard_data,
        &["--throttle-backups", "0", "--io-limit-mib-s", "2"],
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "world.bin", &noise(8 << 20, 7));
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let r = create(&api, &server, "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    // Leave about 1 MiB free while the (throttled) archive is being written.
    let free = hoard::safefs::free_space(&backups).unwrap();
    let filler = backups.join("filler");
    std::fs::write(&filler, vec![0u8; (free - (1 << 20)) as usize]).unwrap();
    let b = api.wait_backup(&server, r.json()["attributes"]["uuid"].as_str().unwrap());
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(b["status"], "failed");
    assert!(b["error"].as_str().unwrap().contains("full"), "{b}");
    assert!(
        stored_files(&hoard, &api, &server).is_empty(),
        "{:?}",
        stored_files(&hoard, &api, &server)
    );
    // And the next backup works once there is room.
    hoard.cli_ok(&["server", "update", &server, "--name", "mc"]);
}

#[test]
fn a_killed_server_fails_its_backup_as_interrupted_on_restart() {
    let (mut hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0", "--io-limit-mib-s", "4"],
        &[("world.bin", noise(16 << 20, 8))],
        &[],
    );
    let uuid = start_backup(&api, &server);
    wait_until_archiving(&api, &server, &uuid);
    assert!(
        stored_files(&hoard, &api, &server)
            .iter()
            .any(|f| f.ends_with(".partial"))
    );
    hoard.restart();
    let api = Api::new(&hoard.base, api.token.clone());
    let started = Instant::now();
    let b = loop {
        let b = api
            .get(&format!("/api/client/servers/{server}/backups/{uuid}"))
            .json();
        if b["attributes"]["status"] != "creating" {
            break b;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "still creating after 90 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(b["attributes"]["status"], "failed");
    assert!(
        b["attributes"]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert!(
        stored_files(&hoard, &api, &server).is_empty(),
        "{:?}",
        stored_files(&hoard, &api, &server)
    );
    let next = create(&api, &server, "{}");
    assert_eq!(next.status, 200, "{}", next.text());
}

#[test]
fn progress_rises_while_a_large_backup_runs() {
    let (_hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0", "--io-limit-mib-s", "60"],
        &[
            ("a.bin", noise(110 << 20, 1)),
            ("b.bin", noise(110 << 20, 2)),
        ],
        &[],
    );
    let uuid = start_backup(&api, &server);
    let mut seen: Vec<(u64, f64)> = Vec::new();
    loop {
        let b = api
            .get(&format!("/api/client/servers/{server}/backups/{uuid}"))
            .json();
        let a = &b["attributes"];
        if a["status"] != "creating" {
            assert_eq!(a["status"], "completed");
            assert!(a["progress"].is_null());
            break;
        }
        let p = &a["progress"];
        let percent = p["percent"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&percent), "{p}");
        seen.push((p["bytes_processed"].as_u64().unwrap(), percent));
        std::thread::sleep(Duration::from_millis(300));
    }
    let distinct: Vec<u64> = {
        let mut v: Vec<u64> = seen.iter().map(|s| s.0).collect();
        v.dedup();
        v
    };
    assert!(
        distinct.len() >= 3,
        "progress did not visibly rise: {seen:?}"
    );
    assert!(
        distinct.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {seen:?}"
    );
}

#[test]
fn hooks_run_around_backups() {
    let marker = tempfile::tempdir().unwrap();
    let post = marker.path().join("post.txt");
    let post_cmd = format!(
        "echo \"$HOARD_BACKUP_STATUS $HOARD_BACKUP_NAME $HOARD_SERVER_NAME\" >> {}",
        post.display()
    );
    let (hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0"],
        &[("a.txt", b"a".to_vec())],
        &[
            "--pre-backup",
            "echo save-all from $HOARD_SERVER_UUID",
            "--post-backup",
            &post_cmd,
        ],
    );
    let ok = api.backup_and_wait(&server, r#"{"name":"hooked"}"#);
    assert_eq!(ok["status"], "completed");
    let uuid = server_uuid(&api, &server);
    assert!(
        hoard.log().contains(&format!("save-all from {uuid}")),
        "{}",
        hoard.log()
    );
    hoard.cli_ok(&[
        "server",
        "update",
        &server,
        "--pre-backup",
        "echo first line >&2; echo RCON refused >&2; exit 1",
    ]);
    let failed = api.backup_and_wait(&server, r#"{"name":"refused"}"#);
    assert_eq!(failed["status"], "failed");
    // The owner sees what the hook printed; the summary alone is for everyone.
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("pre_backup hook exited with status 1") && !error.contains("RCON"),
        "{error}"
    );
    let detail = failed["error_detail"].as_str().unwrap();
    assert!(detail.contains("RCON refused"), "{detail}");
    let lines = std::fs::read_to_string(&post).unwrap();
    assert_eq!(lines, "completed hooked mc\nfailed refused mc\n");
}

#[test]
fn delete_removes_everything_and_locks_protect() {
    let (hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0"],
        &[("a.txt", b"a".to_vec())],
        &[],
    );
    let b = api.backup_and_wait(&server, r#"{"is_locked":true}"#);
    assert_eq!(b["is_locked"], true);
    let uuid = b["uuid"].as_str().unwrap();
    let path = format!("/api/client/servers/{server}/backups/{uuid}");
    assert_eq!(
        stored_files(&hoard, &api, &server).len(),
        2,
        "archive and manifest"
    );
    let r = api.delete(&path);
    r.assert_error(400, "BackupIsLockedException");
    assert_eq!(stored_files(&hoard, &api, &server).len(), 2);
    assert_eq!(api.post(&format!("{path}/lock"), "").status, 204);
    assert_eq!(api.get(&path).json()["attributes"]["is_locked"], false);
    assert_eq!(api.delete(&path).status, 204);
    api.get(&path).assert_error(404, "NotFoundHttpException");
    assert!(stored_files(&hoard, &api, &server).is_empty());
    api.delete(&path).assert_error(404, "NotFoundHttpException");
    // The activity log has every step.
    let db = rusqlite::Connection::open(hoard.data.path().join("hoard.db")).unwrap();
    let events: Vec<String> = db
        .prepare("SELECT event FROM activity_log WHERE event LIKE 'server:backup.%' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "server:backup.start",
            "server:backup.complete",
            "server:backup.unlock",
            "server:backup.delete"
        ]
    );
}

#[test]
fn the_cli_creates_lists_and_shares_the_one_job_rule() {
    let (hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0", "--io-limit-mib-s", "4"],
        &[("world.bin", noise(8 << 20, 9))],
        &[],
    );
    // The CLI reads its settings from the data directory, not from serve's flags: three
    // backups start here, and deleting one does not take it off the throttle's count.
    std::fs::write(
        hoard.data.path().join("hoard.toml"),
        "throttle_backups = 0\n",
    )
    .unwrap();
    // A backup running in the server blocks the CLI, and the other way round.
    let running = start_backup(&api, &server);
    let out = hoard.cli(&["backup", "create", &server, "--wait"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another backup is in progress"));
    api.wait_backup(&server, &running);

    let out = hoard.cli_json(&[
        "backup", "create", &server, "--name", "from cli", "--ignore", "*.tmp", "--lock",
    ]);
    let uuid = out["attributes"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(out["attributes"]["status"], "creating");
    create(&api, &server, "{}").assert_error(409, "ConflictingServerStateException");
    let done = api.wait_backup(&server, &uuid);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["is_locked"], true);
    assert_eq!(done["ignored_files"], serde_json::json!(["*.tmp"]));
    let listed: Value = hoard.cli_json(&["backup", "list", &server]);
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let shown = hoard.cli_json(&["backup", "show", &server, &uuid]);
    assert_eq!(shown["attributes"]["name"], "from cli");
    let out = hoard.cli(&["backup", "delete", &server, &uuid]);
    assert!(!out.status.success(), "locked");
    hoard.cli_ok(&["backup", "lock", &server, &uuid]);
    hoard.cli_ok(&["backup", "delete", &server, &uuid]);
    let waited = hoard.cli_json(&["backup", "create", &server, "--wait"]);
    assert_eq!(waited["attributes"]["status"], "completed");
}

#[test]
fn sigterm_gives_running_backups_a_grace_period_then_cancels_them() {
    let (mut hoard, _dir, server, api) = setup(
        &[
            "--throttle-backups",
            "0",
            "--io-limit-mib-s",
            "2",
            "--shutdown-grace-secs",
            "1",
        ],
        &[("world.bin", noise(16 << 20, 8))],
        &[],
    );
    let uuid = start_backup(&api, &server);
    wait_until_archiving(&api, &server, &uuid);
    let stopping = Instant::now();
    let status = hoard.terminate();
    assert!(status.success(), "{status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "took {:?}",
        stopping.elapsed()
    );
    let db = rusqlite::Connection::open(hoard.data.path().join("hoard.db")).unwrap();
    let (state, error): (String, String) = db
        .query_row(
            "SELECT status, error FROM backups WHERE uuid = ?1",
            [&uuid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "failed");
    assert!(error.contains("cancelled"), "{error}");
    let server_dir = std::fs::read_dir(hoard.data.path().join("backups"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read_dir(server_dir).unwrap().count(),
        0,
        "no partial file left"
    );
    assert!(hoard.log().contains("cancelling 1 running job"));
}

#[test]
fn a_hook_that_hangs_is_killed_at_the_timeout() {
    let (_hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0", "--hook-timeout-secs", "1"],
        &[("a.txt", b"a".to_vec())],
        &["--pre-backup", "sleep 30 & sleep 30"],
    );
    let started = Instant::now();
    let b = api.backup_and_wait(&server, "{}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(b["status"], "failed");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1 s"),
        "{b}"
    );
}

/// A post-backup hook that leaves a process running (which keeps the hook's output open)
/// does not hold up the backup, and no hook sees hoard's own settings.
#[test]
fn a_hook_that_leaves_a_process_running_does_not_hold_up_the_job() {
    let marker = tempfile::tempdir().unwrap();
    let env_file = marker.path().join("env.txt");
    let (_hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0", "--hook-timeout-secs", "60"],
        &[("a.txt", b"a".to_vec())],
        &[
            "--post-backup",
            &format!("env > {}; sleep 30 & echo started", env_file.display()),
        ],
    );
    let started = Instant::now();
    let b = api.backup_and_wait(&server, "{}");
    assert_eq!(b["status"], "completed", "{b}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("HOARD_BACKUP_UUID="), "{env}");
    assert!(!env.contains("HOARD_ADMIN_PASSWORD"), "{env}");
}

/// Output that is not UTF-8 is logged with replacement characters, and the hook's pipes
/// stay read to the end (a reader that stopped would kill the hook with SIGPIPE).
#[test]
fn hook_output_that_is_not_utf8_is_read_to_the_end() {
    let (hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0"],
        &[("a.txt", b"a".to_vec())],
        &[
            "--pre-backup",
            "printf 'bad \\377 byte\\n'; printf 'err \\376\\n' >&2; seq 1 30000; seq 1 30000 >&2",
        ],
    );
    let b = api.backup_and_wait(&server, "{}");
    assert_eq!(b["status"], "completed", "{b}");
    let log = hoard.log();
    assert!(log.contains("pre_backup hook: 30000"), "{log}");
    assert!(log.contains("bad \u{fffd} byte"), "{log}");
}

/// A job whose process is stopped (Ctrl-Z, a paused machine) is slow, not dead: another
/// hoard does not fail it, however old its heartbeat, and it completes once resumed.
#[test]
fn a_stopped_cli_job_is_not_taken_for_dead() {
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("region/r.{i}.mca"), noise(1 << 20, i)))
        .collect();
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let (mut hoard, _dir, server, api) = setup(&["--throttle-backups", "0"], &files, &[]);
    let mut cli = std::process::Command::new(bin())
        .arg("--data-dir")
        .arg(hoard.data.path())
        .args(["backup", "create", &server, "--wait"])
        .env("HOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HOARD_IO_LIMIT_MIB_S", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let db = rusqlite::Connection::open(hoard.data.path().join("hoard.db")).unwrap();
    let running = |db: &rusqlite::Connection| -> Option<i64> {
        db.query_row(
            "SELECT job_pid FROM backups WHERE status = 'creating' AND started_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .ok()
    };
    let until = Instant::now() + Duration::from_secs(30);
    while running(&db) != Some(cli.id() as i64) {
        assert!(Instant::now() < until, "the CLI's backup never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signals to the child we started.
    unsafe { libc::kill(cli.id() as i32, libc::SIGSTOP) };
    db.execute(
        "UPDATE backups SET heartbeat_at = heartbeat_at - 600 WHERE status = 'creating'",
        [],
    )
    .unwrap();
    // The server reaps interrupted jobs as it starts.
    hoard.restart();
    std::thread::sleep(Duration::from_millis(1500));
    let status: String = db
        .query_row("SELECT status FROM backups", [], |r| r.get(0))
        .unwrap();
    unsafe { libc::kill(cli.id() as i32, libc::SIGCONT) };
    assert_eq!(status, "creating", "a stopped job was taken for dead");
    assert!(cli.wait().unwrap().success());
    let api = Api::new(&hoard.base, api.token.clone());
    let listed = api
        .get(&format!("/api/client/servers/{server}/backups"))
        .json();
    assert_eq!(
        listed["data"][0]["attributes"]["status"], "completed",
        "{listed}"
    );
}

/// A backup streams its archive through the page cache rather than filling it: the game's
/// cached files stay cached.
#[test]
fn an_archive_does_not_stay_in_the_page_cache() {
    let (hoard, dir, server, api) = setup(
        &["--throttle-backups", "0"],
        &[("world/region.mca", noise(96 << 20, 5))],
        &[],
    );
    let fs = rustix::fs::statfs(dir.path()).unwrap();
    if fs.f_type as i64 == libc::TMPFS_MAGIC {
        eprintln!("skipped: on tmpfs the page cache is the storage");
        return;
    }
    let done = api.backup_and_wait(&server, "{}");
    assert_eq!(done["status"], "completed", "{done}");
    let archive = hoard
        .data
        .path()
        .join("backups")
        .join(server_uuid(&api, &server))
        .join(format!("{}.tar.zst", done["uuid"].as_str().unwrap()));
    let size = std::fs::metadata(&archive).unwrap().len();
    assert!(size > 90 << 20, "{size}");
    let cached = cached_bytes(&archive);
    assert!(cached <= 24 << 20, "{cached} of {size} bytes cached");
}
