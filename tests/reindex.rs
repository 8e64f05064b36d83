//! The database at start: a damaged, read-only or lost catalogue stops hoard at once with a
//! clear message, and `hoard reindex` rebuilds a lost one from the archives' manifests.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `hoard serve` on a data directory that should be refused: returns its exit
/// status, what it printed, and how long it took; a start still running after 5 s fails.
fn refused_start(data: &Path) -> (std::process::ExitStatus, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(5) {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after 5 s: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text, took)
}

/// A hoard with a server and two backups (one locked), stopped cleanly so that its
/// database is whole in one file.
fn stopped_with_backups() -> (Hoard, tempfile::TempDir, String, Vec<Value>) {
    let mut hoard = Hoard::start(&["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "world/region.mca", &noise(400_000, 7));
    write(dir.path(), "server.properties", b"motd=hello\n");
    let server = hoard.add_server("Survival", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let first = api.backup_and_wait(&server, r#"{"name": "first", "is_locked": true}"#);
    let second = api.backup_and_wait(&server, r#"{"name": "second", "ignored": "*.properties"}"#);
    assert_eq!(first["status"], "completed");
    assert_eq!(second["status"], "completed");
    assert!(hoard.terminate().success());
    (hoard, dir, server, vec![first, second])
}

#[test]
fn a_database_with_a_corrupted_page_stops_the_start_with_a_clear_message() {
    let (hoard, _dir, _server, _) = stopped_with_backups();
    let db = hoard.data.path().join("hoard.db");
    // Everything into the main file, so that a page of it holds tables.
    rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() >= 3 * 4096, "{} bytes", bytes.len());
    bytes[4096..2 * 4096].fill(0xA5);
    std::fs::write(&db, &bytes).unwrap();

    let (status, text, took) = refused_start(hoard.data.path());
    assert!(!status.success());
    assert!(
        text.contains("damaged") && text.contains(&db.display().to_string()),
        "{text}"
    );
    assert!(text.contains("hoard reindex"), "it says what to do: {text}");
    assert!(!text.contains("hoard is running"), "{text}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Makes a file immutable (even root cannot write it) until dropped.
struct Immutable<'a>(&'a Path);

impl<'a> Immutable<'a> {
    fn set(path: &'a Path) -> Immutable<'a> {
        let ok = Command::new("chattr").arg("+i").arg(path).status().unwrap();
        assert!(ok.success(), "chattr +i needs root and ext4");
        Immutable(path)
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
    }
}

#[test]
fn a_read_only_database_stops_the_start_with_a_clear_message() {
    let (hoard, _dir, _server, _) = stopped_with_backups();
    let db = hoard.data.path().join("hoard.db");
    let _immutable = Immutable::set(&db);

    let (status, text, took) = refused_start(hoard.data.path());
    assert!(!status.success());
    assert!(
        text.contains("cannot be written") && text.contains(&db.display().to_string()),
        "{text}"
    );
    assert!(!text.contains("hoard is running"), "{text}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_lost_database_is_refused_then_rebuilt_by_reindex_with_every_backup() {
    let (mut hoard, dir, server, backups) = stopped_with_backups();
    for name in ["hoard.db", "hoard.db-wal", "hoard.db-shm"] {
        let _ = std::fs::remove_file(hoard.data.path().join(name));
    }

    let (status, text, took) = refused_start(hoard.data.path());
    assert!(!status.success());
    assert!(
        text.contains("missing or empty") && text.contains("hoard reindex"),
        "{text}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        !hoard.data.path().join("hoard.db").exists(),
        "no fresh catalogue was started"
    );
    // An empty file is no better.
    std::fs::write(hoard.data.path().join("hoard.db"), b"").unwrap();
    let (status, text, _) = refused_start(hoard.data.path());
    assert!(
        !status.success() && text.contains("hoard reindex"),
        "{text}"
    );
    std::fs::remove_file(hoard.data.path().join("hoard.db")).unwrap();

    let report = hoard.cli_json(&["reindex", "--verify"]);
    assert_eq!(report["backups_added"], 2, "{report}");
    assert_eq!(
        report["servers_added"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(report["damaged"], serde_json::json!([]), "{report}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    // Again: nothing more to add, nothing removed.
    let again = hoard.cli_json(&["reindex"]);
    assert_eq!(again["backups_added"], 0);
    assert_eq!(again["backups_known"], 2);

    hoard.restart();
    let api = hoard.api(&hoard.key("admin"));
    let list = api
        .get(&format!("/api/client/servers/{server}/backups"))
        .json();
    let listed = list["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{list}");
    for before in &backups {
        let after = listed
            .iter()
            .map(|b| &b["attributes"])
            .find(|b| b["uuid"] == before["uuid"])
            .unwrap_or_else(|| panic!("{} not listed: {list}", before["uuid"]));
        for field in [
            "name",
            "checksum",
            "sha256_hash",
            "bytes",
            "is_locked",
            "is_scheduled",
            "ignored_files",
            "created_at",
            "compression",
            "status",
        ] {
            assert_eq!(after[field], before[field], "{field}");
        }
    }
    let server_attrs = api
        .get(&format!("/api/application/servers/{server}"))
        .json();
    assert_eq!(server_attrs["attributes"]["name"], "Survival");
    assert_eq!(
        server_attrs["attributes"]["path"],
        dir.path().canonicalize().unwrap().to_str().unwrap()
    );

    // Downloads and restores work.
    let second = &backups[1];
    let uuid = second["uuid"].as_str().unwrap();
    let link = api
        .get(&format!(
            "/api/client/servers/{server}/backups/{uuid}/download"
        ))
        .json();
    let url = link["attributes"]["url"].as_str().unwrap();
    let file = hoard.anon().get(url);
    assert_eq!(file.status, 200);
    assert_eq!(
        sha256_hex(&file.body),
        second["sha256_hash"].as_str().unwrap()
    );
    write(dir.path(), "world/region.mca", b"changed after the backup");
    let r = api.post(
        &format!("/api/client/servers/{server}/backups/{uuid}/restore"),
        "{}",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let done = api.wait_restore(&server);
    assert_eq!(
        done["attributes"]["last_restore"]["successful"], true,
        "{done}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("world/region.mca")).unwrap(),
        noise(400_000, 7)
    );
}

#[test]
fn archives_the_catalogue_does_not_know_are_reported_at_start_and_never_deleted() {
    let (mut hoard, _dir, server, backups) = stopped_with_backups();
    let uuid = backups[0]["uuid"].as_str().unwrap();
    let db = rusqlite::Connection::open(hoard.data.path().join("hoard.db")).unwrap();
    db.execute("DELETE FROM backups WHERE uuid = ?1", [uuid])
        .unwrap();
    drop(db);
    let stored = |hoard: &Hoard| {
        let mut names: Vec<String> = std::fs::read_dir(hoard.data.path().join("backups"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(uuid))
            .collect();
        names.sort();
        names
    };
    assert_eq!(stored(&hoard).len(), 2);

    hoard.restart();
    assert!(
        hoard.log().contains(&format!("backup {uuid}"))
            && hoard
                .log()
                .contains("not in the catalogue: run `hoard reindex`"),
        "{}",
        hoard.log()
    );
    assert_eq!(stored(&hoard).len(), 2, "never deleted");

    let report = hoard.cli_json(&["reindex"]);
    assert_eq!(report["backups_added"], 1, "{report}");
    assert_eq!(report["servers_added"], serde_json::json!([]), "{report}");
    let api = hoard.api(&hoard.key("admin"));
    let back = api
        .get(&format!("/api/client/servers/{server}/backups/{uuid}"))
        .json();
    assert_eq!(back["attributes"]["checksum"], backups[0]["checksum"]);
    assert_eq!(back["attributes"]["is_locked"], true);
}
