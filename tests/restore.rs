//! Restores: round trips, hostile archives, interruptions, and space checks. Whatever
//! happens, a server's files end up exactly the backup's or exactly what they were.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Fixture {
    hoard: Hoard,
    /// Holds the server directory and a sentinel directory beside it.
    top: tempfile::TempDir,
    server: String,
    api: Api,
}

impl Fixture {
    fn new(args: &[&str]) -> Fixture {
        let hoard = Hoard::start(args);
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("server");
        std::fs::create_dir_all(top.path().join("sentinel")).unwrap();
        std::fs::write(top.path().join("sentinel/keep.txt"), b"do not touch").unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let server = hoard.add_server("mc", &dir, "admin", &["--backup-limit", "50"]);
        let api = hoard.api(&hoard.key("admin"));
        Fixture {
            hoard,
            top,
            server,
            api,
        }
    }

    /// Kills hoard and starts it again on the same data directory.
    fn restart(&mut self) {
        self.hoard.restart();
        self.api = Api::new(&self.hoard.base, self.api.token.clone());
    }

    fn dir(&self) -> PathBuf {
        self.top.path().join("server")
    }

    fn sentinel(&self) -> PathBuf {
        self.top.path().join("sentinel")
    }

    fn backup(&self) -> Value {
        let b = self.api.backup_and_wait(&self.server, "{}");
        assert_eq!(b["status"], "completed", "{b}");
        b
    }

    /// Asks for a restore; the caller checks the answer.
    fn start_restore(&self, uuid: &str, body: &str) -> Reply {
        self.api.post(
            &format!("/api/client/servers/{}/backups/{uuid}/restore", self.server),
            body,
        )
    }

    /// Restores and waits; returns the outcome (`last_restore`).
    fn restore(&self, uuid: &str, truncate: bool) -> Value {
        let r = self.start_restore(uuid, &format!(r#"{{"truncate":{truncate}}}"#));
        assert_eq!(r.status, 202, "{}", r.text());
        self.api.wait_restore(&self.server)["attributes"]["last_restore"].clone()
    }

    /// Populates the server, backs it up, changes the files and restores the backup over
    /// them; returns the files as backed up and the restore's outcome.
    fn backup_change_restore(
        &self,
        truncate: bool,
    ) -> (std::collections::BTreeMap<PathBuf, String>, Value) {
        populate(&self.dir());
        let at_backup = snapshot(&self.dir());
        let b = self.backup();
        change(&self.dir());
        let outcome = self.restore(b["uuid"].as_str().unwrap(), truncate);
        (at_backup, outcome)
    }

    /// [`Fixture::backup_change_restore`] with truncate; checks the files are exactly the
    /// backup's and returns them.
    fn round_trip(&self) -> std::collections::BTreeMap<PathBuf, String> {
        let (at_backup, outcome) = self.backup_change_restore(true);
        assert_eq!(outcome["successful"], true, "{outcome}");
        assert_eq!(snapshot(&self.dir()), at_backup);
        at_backup
    }

    fn archive_path(&self, uuid: &str) -> PathBuf {
        let server_uuid = self
            .api
            .get(&format!("/api/client/servers/{}", self.server))
            .json()["attributes"]["uuid"]
            .as_str()
            .unwrap()
            .to_string();
        let dir = self.hoard.data.path().join("backups").join(server_uuid);
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name().unwrap().to_string_lossy().starts_with(uuid)
                    && !p.to_string_lossy().ends_with(".json")
            })
            .unwrap()
    }

    /// Puts `archive` (already compressed as the backup's compression) in place of a
    /// backup's file, with a matching checksum and the given manifest bounds.
    fn replace_archive(&self, uuid: &str, archive: &[u8], files: i64, bytes: i64) {
        std::fs::write(self.archive_path(uuid), archive).unwrap();
        let db = rusqlite::Connection::open(self.hoard.data.path().join("hoard.db")).unwrap();
        db.execute(
            "UPDATE backups SET sha256_hash = ?1, bytes = ?2, content_files = ?3, content_bytes = ?4 WHERE uuid = ?5",
            rusqlite::params![sha256_hex(archive), archive.len() as i64, files, bytes, uuid],
        )
        .unwrap();
    }

    /// Work directories still there once hoard had time to remove them: a successful
    /// restore removes them only after it has released the server.
    fn work_dirs_left(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.work_dirs();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn work_dirs(&self) -> Vec<String> {
        let mut left: Vec<String> = std::fs::read_dir(self.top.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".hoard-restore"))
            .collect();
        left.extend(
            std::fs::read_dir(self.dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".hoard-restore")),
        );
        left
    }

    fn activity(&self) -> Vec<String> {
        let db = rusqlite::Connection::open(self.hoard.data.path().join("hoard.db")).unwrap();
        db.prepare(
            "SELECT event FROM activity_log WHERE event LIKE 'server:backup.restore%' ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    }
}

fn populate(dir: &Path) {
    write(dir, "server.properties", b"motd=before\n");
    write(dir, "world/level.dat", &noise(100_000, 1));
    write(dir, "world/region/r.0.0.mca", &noise(300_000, 2));
    write(dir, "start.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(dir.join("start.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("plugins/empty")).unwrap();
    std::os::unix::fs::symlink("world/region", dir.join("regions")).unwrap();
    for (rel, t) in [
        ("server.properties", 1_600_000_000),
        ("world/level.dat", 1_600_001_000),
    ] {
        filetime::set_file_mtime(dir.join(rel), filetime::FileTime::from_unix_time(t, 0)).unwrap();
    }
    filetime::set_file_mtime(
        dir.join("plugins/empty"),
        filetime::FileTime::from_unix_time(1_600_002_000, 0),
    )
    .unwrap();
}

/// Changes made after the backup: a new file, a modified one, a removed one, a new dir.
fn change(dir: &Path) {
    write(dir, "server.properties", b"motd=after\n");
    write(dir, "new-after-backup.txt", b"new");
    write(dir, "world/new-region.mca", b"new");
    std::fs::remove_file(dir.join("world/level.dat")).unwrap();
    std::fs::remove_file(dir.join("regions")).unwrap();
    std::os::unix::fs::symlink("elsewhere", dir.join("regions")).unwrap();
}

#[test]
fn restore_with_truncate_brings_back_exactly_the_backup() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    f.round_trip();
    assert!(f.work_dirs_left().is_empty());
    assert_eq!(
        f.activity(),
        ["server:backup.restore", "server:backup.restore-complete"]
    );
    let server = f
        .api
        .get(&format!("/api/client/servers/{}", f.server))
        .json();
    assert!(server["attributes"]["status"].is_null());
    assert!(server["attributes"]["restore"].is_null());
}

#[test]
fn restore_without_truncate_keeps_newer_files() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    let (at_backup, outcome) = f.backup_change_restore(false);
    assert_eq!(outcome["successful"], true, "{outcome}");
    let now = snapshot(&f.dir());
    for (path, desc) in &at_backup {
        if path.as_os_str() != "world" {
            assert_eq!(now.get(path), Some(desc), "{}", path.display());
        }
    }
    assert!(now.contains_key(Path::new("new-after-backup.txt")));
    assert!(now.contains_key(Path::new("world/new-region.mca")));
    assert_eq!(
        std::fs::read(f.dir().join("server.properties")).unwrap(),
        b"motd=before\n"
    );
    assert!(f.work_dirs_left().is_empty());
}

#[test]
fn restore_is_refused_when_it_cannot_run() {
    let f = Fixture::new(&["--throttle-backups", "0", "--io-limit-mib-s", "2"]);
    write(&f.dir(), "world.bin", &noise(4 << 20, 3));
    let quick = tempfile::tempdir().unwrap();
    let _ = quick;
    // A backup being created cannot be restored, and blocks restores of the server.
    let creating = f
        .api
        .post(&format!("/api/client/servers/{}/backups", f.server), "{}")
        .json()["attributes"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    f.start_restore(&creating, "{}")
        .assert_error(400, "BackupNotCompletedException");
    f.api.wait_backup(&f.server, &creating);
    f.hoard
        .cli_ok(&["server", "update", &f.server, "--pre-backup", "exit 1"]);
    let failed = f.api.backup_and_wait(&f.server, "{}")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    f.start_restore(&failed, "{}")
        .assert_error(400, "BackupFailedException");
    // (A suspended server refuses everyone but admins: see tests/hardening_api.rs.)
    f.hoard
        .cli_ok(&["server", "update", &f.server, "--status", "installing"]);
    f.start_restore(&creating, "{}")
        .assert_error(409, "ConflictingServerStateException");
}

#[test]
fn a_failing_pre_restore_hook_changes_nothing_and_hooks_see_the_outcome() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    populate(&f.dir());
    let b = f.backup();
    change(&f.dir());
    let before = snapshot(&f.dir());
    f.hoard.cli_ok(&[
        "server",
        "update",
        &f.server,
        "--pre-restore",
        "echo cannot stop >&2; exit 2",
    ]);
    let outcome = f.restore(b["uuid"].as_str().unwrap(), true);
    assert_eq!(outcome["successful"], false);
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("pre_restore hook exited with status 2"),
        "{outcome}"
    );
    assert!(
        outcome["error_detail"]
            .as_str()
            .unwrap()
            .contains("cannot stop"),
        "{outcome}"
    );
    assert_eq!(snapshot(&f.dir()), before);
    let marker = f.top.path().join("post-restore.txt");
    f.hoard.cli_ok(&[
        "server",
        "update",
        &f.server,
        "--pre-restore",
        "true",
        "--post-restore",
        &format!("echo $HOARD_RESTORE_STATUS > {}", marker.display()),
    ]);
    assert_eq!(
        f.restore(b["uuid"].as_str().unwrap(), true)["successful"],
        true
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "completed\n");
}

/// A tar stream built by hand, so it can hold anything a hostile archive might.
#[derive(Default)]
struct RawTar(Vec<u8>);

impl RawTar {
    fn entry(
        &mut self,
        name: &[u8],
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        link: &[u8],
    ) -> &mut Self {
        self.entry_declaring(name, kind, mode, data, data.len() as u64, link)
    }

    fn entry_declaring(
        &mut self,
        name: &[u8],
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        size: u64,
        link: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name.as_bytes(), tar::EntryType::Regular, 0o644, data, b"")
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = self.0.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

#[test]
fn hostile_archives_never_write_outside_staging() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    populate(&f.dir());
    let sentinel = f.sentinel();
    let sentinel_str = sentinel.to_str().unwrap().to_string();
    let regular = tar::EntryType::Regular;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "absolute path",
            zstd(
                &RawTar::default()
                    .file("ok.txt", b"ok")
                    .file(&format!("{sentinel_str}/evil.txt"), b"evil")
                    .finish(),
            ),
            "absolute path",
        ),
        (
            "dot-dot escape",
            zstd(
                &RawTar::default()
                    .file("ok.txt", b"ok")
                    .file("../../sentinel/evil.txt", b"evil")
                    .finish(),
            ),
            "'..'",
        ),
        (
            "write through a symlink",
            zstd(
                &RawTar::default()
                    .entry(
                        b"link",
                        tar::EntryType::Symlink,
                        0o777,
                        b"",
                        sentinel_str.as_bytes(),
                    )
                    .file("link/evil.txt", b"evil")
                    .finish(),
            ),
            "not a directory",
        ),
        (
            "hard link to /etc/passwd",
            zstd(
                &RawTar::default()
                    .entry(b"passwd", tar::EntryType::Link, 0o644, b"", b"/etc/passwd")
                    .finish(),
            ),
            "absolute path",
        ),
        (
            "hard link to an outside relative path",
            zstd(
                &RawTar::default()
                    .file("a", b"a")
                    .entry(
                        b"b",
                        tar::EntryType::Link,
                        0o644,
                        b"",
                        b"../../sentinel/keep.txt",
                    )
                    .finish(),
            ),
            "'..'",
        ),
        (
            "hard link to something not extracted",
            zstd(
                &RawTar::default()
                    .entry(b"b", tar::EntryType::Link, 0o644, b"", b"world/level.dat")
                    .finish(),
            ),
            "not a file extracted before it",
        ),
        (
            "declared size beyond the data",
            zstd(&{
                let mut t = RawTar::default();
                t.file("ok.txt", b"ok").entry_declaring(
                    b"big.bin",
                    regular,
                    0o644,
                    &[7u8; 1000],
                    1 << 20,
                    b"",
                );
                t.0.clone()
            }),
            "declares 1048576 bytes",
        ),
        (
            "more data than the manifest",
            zstd(&RawTar::default().file("a.bin", &[1u8; 5000]).finish()),
            "more data than its manifest",
        ),
    ];
    let b = f.backup();
    let uuid = b["uuid"].as_str().unwrap().to_string();
    let original = std::fs::read(f.archive_path(&uuid)).unwrap();
    change(&f.dir());
    let before = snapshot(&f.dir());
    let sentinel_before = snapshot(&sentinel);
    let top_before: Vec<_> = std::fs::read_dir(f.top.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    for (name, archive, reason) in cases {
        let bound = if name == "more data than the manifest" {
            100
        } else {
            1 << 30
        };
        f.replace_archive(&uuid, &archive, 100, bound);
        let outcome = f.restore(&uuid, true);
        assert_eq!(outcome["successful"], false, "{name}: {outcome}");
        let error = outcome["error"].as_str().unwrap();
        assert!(error.contains(reason), "{name}: {error}");
        assert_eq!(
            snapshot(&f.dir()),
            before,
            "{name}: the server's files changed"
        );
        assert_eq!(
            snapshot(&sentinel),
            sentinel_before,
            "{name}: the sentinel changed"
        );
        let top_now: Vec<_> = std::fs::read_dir(f.top.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            top_now, top_before,
            "{name}: something was left beside the server"
        );
        assert!(f.work_dirs_left().is_empty(), "{name}");
    }

    // A corrupt zstd frame, with a checksum that matches the corrupt file.
    let mut corrupt = original.clone();
    let mid = corrupt.len() / 2;
    for byte in &mut corrupt[mid..mid + 64] {
        *byte ^= 0x5a;
    }
    f.replace_archive(&uuid, &corrupt, 100, 1 << 30);
    let outcome = f.restore(&uuid, true);
    assert_eq!(outcome["successful"], false);
    assert!(
        outcome["error"].as_str().unwrap().contains("corrupt"),
        "{outcome}"
    );
    assert_eq!(snapshot(&f.dir()), before);

    // The original archive with a wrong checksum recorded: refused after extraction,
    // before the swap.
    std::fs::write(f.archive_path(&uuid), &original).unwrap();
    let db = rusqlite::Connection::open(f.hoard.data.path().join("hoard.db")).unwrap();
    db.execute(
        "UPDATE backups SET sha256_hash = ?1 WHERE uuid = ?2",
        rusqlite::params!["0".repeat(64), uuid],
    )
    .unwrap();
    let outcome = f.restore(&uuid, true);
    assert!(
        outcome["error"].as_str().unwrap().contains("SHA-256"),
        "{outcome}"
    );
    assert_eq!(snapshot(&f.dir()), before);
}

#[test]
fn devices_are_skipped_and_special_bits_dropped() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    populate(&f.dir());
    let b = f.backup();
    let uuid = b["uuid"].as_str().unwrap().to_string();
    let archive = zstd(
        &RawTar::default()
            .entry(b"null", tar::EntryType::Char, 0o666, b"", b"")
            .entry(b"fifo", tar::EntryType::Fifo, 0o644, b"", b"")
            .entry(
                b"suid.sh",
                tar::EntryType::Regular,
                0o4755,
                b"#!/bin/sh\n",
                b"",
            )
            .entry(b"sgid", tar::EntryType::Directory, 0o2775, b"", b"")
            .file("sgid/ok.txt", b"ok")
            .finish(),
    );
    f.replace_archive(&uuid, &archive, 100, 1 << 20);
    let outcome = f.restore(&uuid, true);
    assert_eq!(outcome["successful"], true, "{outcome}");
    let names: Vec<String> = std::fs::read_dir(f.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.contains(&"null".to_string()) && !names.contains(&"fifo".to_string()),
        "{names:?}"
    );
    let mode = std::fs::metadata(f.dir().join("suid.sh"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o755);
    let mode = std::fs::metadata(f.dir().join("sgid"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o775);
    assert_eq!(std::fs::read(f.dir().join("sgid/ok.txt")).unwrap(), b"ok");
}

fn poll_step(f: &Fixture, wanted: &[&str], deadline: Duration) -> String {
    let db = rusqlite::Connection::open(f.hoard.data.path().join("hoard.db")).unwrap();
    let until = Instant::now() + deadline;
    loop {
        let step: Option<String> = db
            .query_row(
                "SELECT step FROM restores ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .ok();
        if let Some(step) = step
            && wanted.contains(&step.as_str())
        {
            return step;
        }
        assert!(Instant::now() < until, "never reached {wanted:?}");
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Checks that a restore failed and says the server's files were put back; `context`
/// names the case in the message.
fn assert_put_back(outcome: &Value, context: &str) {
    assert_eq!(outcome["successful"], false, "{context}: {outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("put back as they were"),
        "{context}: {outcome}"
    );
}

fn wait_resolved(f: &Fixture) -> Value {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let s = f
            .api
            .get(&format!("/api/client/servers/{}", f.server))
            .json();
        if s["attributes"]["status"].is_null() {
            return s["attributes"]["last_restore"].clone();
        }
        assert!(Instant::now() < until, "still restoring after 90 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_restore_killed_during_extraction_is_rolled_back_at_the_next_start() {
    let mut f = Fixture::new(&["--throttle-backups", "0", "--compression", "none"]);
    populate(&f.dir());
    let big = std::fs::File::create(f.dir().join("world.bin")).unwrap();
    big.set_len(1536 << 20).unwrap();
    drop(big);
    let b = f.backup();
    std::fs::remove_file(f.dir().join("world.bin")).unwrap();
    change(&f.dir());
    let before = snapshot(&f.dir());
    let r = f.start_restore(b["uuid"].as_str().unwrap(), "{}");
    assert_eq!(r.status, 202);
    poll_step(&f, &["extracting"], Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1200));
    // While it runs, the server shows the restore and its progress; backups stay readable.
    let during = f
        .api
        .get(&format!("/api/client/servers/{}", f.server))
        .json();
    assert_eq!(during["attributes"]["status"], "restoring_backup");
    let progress = &during["attributes"]["restore"];
    assert_eq!(progress["backup_uuid"], b["uuid"]);
    assert!(
        progress["bytes_total"].as_u64().unwrap() > 1 << 30,
        "{progress}"
    );
    assert!(
        progress["bytes_processed"].as_u64().unwrap() > 0,
        "{progress}"
    );
    let percent = progress["percent"].as_f64().unwrap();
    assert!((0.0..100.0).contains(&percent));
    assert_eq!(
        f.api
            .get(&format!("/api/client/servers/{}/backups", f.server))
            .status,
        200
    );
    f.api
        .post(&format!("/api/client/servers/{}/backups", f.server), "{}")
        .assert_error(409, "ConflictingServerStateException");
    f.restart();
    let outcome = wait_resolved(&f);
    assert_eq!(outcome["successful"], false, "{outcome}");
    assert!(outcome["error"].as_str().unwrap().contains("interrupted"));
    assert_eq!(snapshot(&f.dir()), before);
    assert!(f.work_dirs_left().is_empty(), "{:?}", f.work_dirs_left());
    assert_eq!(f.activity().last().unwrap(), "server:backup.restore-failed");
}

/// Kills hoard while a restore moves files into the server directory, in the given mode,
/// and checks that the next start put the server's files back as they were.
fn killed_between_the_moves(truncate: bool, steps: &[&str]) {
    let mut f = Fixture::new(&["--throttle-backups", "0", "--compression", "none"]);
    // Many entries make the moves take long enough to be interrupted; in subdirectories
    // too, for the overlay's merges.
    for i in 0..40_000 {
        let rel = match i % 4 {
            0 => format!("d{}/f{i:05}", i % 7),
            _ => format!("f{i:05}"),
        };
        write(&f.dir(), &rel, i.to_string().as_bytes());
    }
    let b = f.backup();
    for i in (0..40_000).step_by(7) {
        std::fs::write(f.dir().join(format!("f{i:05}")), b"changed").unwrap();
    }
    write(&f.dir(), "after.txt", b"after");
    write(&f.dir(), "d3/after.txt", b"after");
    std::fs::set_permissions(f.dir().join("d2"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let before = snapshot(&f.dir());
    let r = f.start_restore(
        b["uuid"].as_str().unwrap(),
        &format!(r#"{{"truncate":{truncate}}}"#),
    );
    assert_eq!(r.status, 202);
    let step = poll_step(&f, steps, Duration::from_secs(240));
    f.restart();
    let outcome = wait_resolved(&f);
    assert_put_back(&outcome, &format!("killed at '{step}'"));
    assert!(
        snapshot(&f.dir()) == before,
        "killed at '{step}': the files are not what they were"
    );
    assert!(f.work_dirs_left().is_empty(), "{:?}", f.work_dirs_left());
    assert_eq!(f.activity().last().unwrap(), "server:backup.restore-failed");
}

#[test]
fn a_restore_killed_between_the_moves_is_rolled_back_at_the_next_start() {
    killed_between_the_moves(true, &["evacuating", "installing"]);
}

#[test]
fn an_overlay_killed_midway_is_rolled_back_at_the_next_start() {
    killed_between_the_moves(false, &["overlaying"]);
}

#[test]
fn a_restore_that_does_not_fit_is_refused_with_507_and_mount_points_stay() {
    let f = Fixture::new(&["--throttle-backups", "0", "--compression", "none"]);
    let _tmpfs = Tmpfs::mount(&f.dir(), "8m");
    write(&f.dir(), "world.bin", &noise(5 << 20, 4));
    let b = f.backup();
    let before = snapshot(&f.dir());
    let r = f.start_restore(b["uuid"].as_str().unwrap(), "{}");
    r.assert_error(507, "InsufficientStorageException");
    assert_eq!(snapshot(&f.dir()), before);
    let server = f
        .api
        .get(&format!("/api/client/servers/{}", f.server))
        .json();
    assert!(server["attributes"]["status"].is_null());

    // With room, a restore onto a mount point works: staging lives inside it.
    std::fs::write(f.dir().join("world.bin"), noise(1 << 20, 5)).unwrap();
    let small = f.backup();
    write(&f.dir(), "world.bin", b"changed");
    let at = snapshot(&f.dir());
    assert_ne!(at, before);
    let outcome = f.restore(small["uuid"].as_str().unwrap(), true);
    assert_eq!(outcome["successful"], true, "{outcome}");
    assert_eq!(
        std::fs::read(f.dir().join("world.bin")).unwrap(),
        noise(1 << 20, 5)
    );
    // Inside the server directory, the work directory is gone before the server is
    // released, or the next backup would hold the replaced files.
    assert!(f.work_dirs().is_empty(), "{:?}", f.work_dirs());
}

#[test]
fn the_cli_downloads_with_verification_and_restores() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    populate(&f.dir());
    let at_backup = snapshot(&f.dir());
    let b = f.backup();
    let uuid = b["uuid"].as_str().unwrap();
    let out = f.top.path().join("copy.tar.zst");
    f.hoard.cli_ok(&[
        "backup",
        "download",
        &f.server,
        uuid,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(sha256_file(&out), b["sha256_hash"].as_str().unwrap());
    // A corrupt archive is not written out.
    let archive = f.archive_path(uuid);
    let good = std::fs::read(&archive).unwrap();
    let mut bad = good.clone();
    bad[10] ^= 1;
    std::fs::write(&archive, &bad).unwrap();
    let out2 = f.top.path().join("copy2.tar.zst");
    let r = f.hoard.cli(&[
        "backup",
        "download",
        &f.server,
        uuid,
        "-o",
        out2.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("SHA-256"));
    assert!(!out2.exists());
    std::fs::write(&archive, &good).unwrap();

    change(&f.dir());
    let r = f
        .hoard
        .cli_json(&["backup", "restore", &f.server, uuid, "--wait"]);
    assert_eq!(r["step"], "done", "{r}");
    assert_eq!(snapshot(&f.dir()), at_backup);
    write(&f.dir(), "later.txt", b"x");
    f.hoard.cli_ok(&[
        "backup",
        "restore",
        &f.server,
        uuid,
        "--no-truncate",
        "--wait",
    ]);
    assert!(f.dir().join("later.txt").exists());
}

#[test]
fn every_compression_restores() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    populate(&f.dir());
    write(&f.dir(), "big.bin", &noise(3 << 20, 11));
    write(
        &f.dir(),
        "text.log",
        "a compressible line of text\n".repeat(100_000).as_bytes(),
    );
    let at_backup = snapshot(&f.dir());
    for compression in ["gzip", "none", "zstd"] {
        f.hoard
            .cli_ok(&["server", "update", &f.server, "--compression", compression]);
        let b = f.backup();
        assert_eq!(b["compression"], compression);
        change(&f.dir());
        let outcome = f.restore(b["uuid"].as_str().unwrap(), true);
        assert_eq!(outcome["successful"], true, "{compression}: {outcome}");
        assert_eq!(snapshot(&f.dir()), at_backup, "{compression}");
    }
}

#[test]
fn replaced_files_left_by_a_stopped_hoard_are_removed_at_the_next_start() {
    let mut f = Fixture::new(&["--throttle-backups", "0"]);
    let at_backup = f.round_trip();
    assert!(f.work_dirs_left().is_empty(), "{:?}", f.work_dirs_left());
    // As if hoard had stopped while deleting the replaced files.
    let db = rusqlite::Connection::open(f.hoard.data.path().join("hoard.db")).unwrap();
    let staging: String = db
        .query_row(
            "SELECT staging_path FROM restores WHERE step = 'done'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let work = Path::new(&staging).parent().unwrap().to_path_buf();
    write(&work, "trash/world/level.dat", &noise(10_000, 9));
    assert_eq!(f.work_dirs().len(), 1);
    f.hoard.restart();
    assert!(f.work_dirs_left().is_empty(), "{:?}", f.work_dirs_left());
    assert_eq!(snapshot(&f.dir()), at_backup);
}

/// Large files are restored around the page cache where the filesystem takes direct I/O,
/// so a restore does not evict what the game beside it keeps cached; small files and the
/// last partial block of a large one go through the cache. Either way (and on a
/// filesystem without direct I/O) the files are exactly the backup's.
#[test]
fn large_files_are_restored_around_the_page_cache() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    // Around the edges of direct writes: below the size limit, whole blocks only, a
    // partial last block, and one byte past a full 1 MiB write.
    let small = ("small.dat", 200_000);
    let large = [
        ("world/aligned.mca", 4 << 20),
        ("world/ragged.mca", (3 << 20) + 1),
        ("plugins/odd.jar", 300_001),
    ];
    populate(&f.dir());
    for (seed, (name, size)) in std::iter::once(small).chain(large).enumerate() {
        write(&f.dir(), name, &noise(size, 40 + seed as u64));
    }
    let at_backup = snapshot(&f.dir());
    let b = f.backup();
    change(&f.dir());
    let outcome = f.restore(b["uuid"].as_str().unwrap(), true);
    assert_eq!(outcome["successful"], true, "{outcome}");
    // Before the files are read back, which caches them.
    if takes_direct_io(&f.dir()) {
        assert!(cached_bytes(&f.dir().join(small.0)) >= small.1 as u64);
        for (name, _) in large {
            let cached = cached_bytes(&f.dir().join(name));
            assert!(cached <= 4096, "{name}: {cached} bytes in the page cache");
        }
    }
    assert_eq!(snapshot(&f.dir()), at_backup);
}

/// Whether the filesystem holding `dir` opens files for direct I/O.
fn takes_direct_io(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join(".direct-probe");
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    opened.is_ok()
}

/// hoard runs for months: a restore's buffers (zstd's window among them, allocated on
/// threads that live for one job) must not stay behind after it.
#[test]
fn repeated_restores_do_not_grow_memory() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    write(&f.dir(), "world/region.mca", &noise(24 << 20, 3));
    let b = f.backup();
    let uuid = b["uuid"].as_str().unwrap();
    let mut resident = Vec::new();
    for _ in 0..8 {
        let outcome = f.restore(uuid, true);
        assert_eq!(outcome["successful"], true, "{outcome}");
        assert!(f.work_dirs_left().is_empty());
        resident.push(rss_kib(f.hoard.pid()));
    }
    // The first restores warm the allocators up; the later ones must reuse that memory.
    assert!(
        resident[7] < resident[2] + 4 * 1024,
        "resident KiB after each restore: {resident:?}"
    );
}

/// 1960-01-01, a time before the epoch.
const BEFORE_1970: i64 = -315_619_200;

/// A file dated before 1970 was archived as a time system tar refuses, and restoring it
/// crashed the job. Now the archive extracts with system tar and holds the epoch instead,
/// and an archive written the old way restores with the file's true time.
#[test]
fn files_dated_before_1970_back_up_and_restore() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    populate(&f.dir());
    write(&f.dir(), "old/ancient.txt", b"from 1960");
    let before_1970 = filetime::FileTime::from_unix_time(BEFORE_1970, 0);
    filetime::set_file_mtime(f.dir().join("old/ancient.txt"), before_1970).unwrap();
    filetime::set_file_mtime(f.dir().join("old"), before_1970).unwrap();
    let uuid = f.backup()["uuid"].as_str().unwrap().to_string();
    let listed = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | tar -tvf -",
            f.archive_path(&uuid).display()
        ))
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    change(&f.dir());
    let outcome = f.restore(&uuid, true);
    assert_eq!(outcome["successful"], true, "{outcome}");
    let mtime = |rel: &str| {
        let meta = std::fs::metadata(f.dir().join(rel)).unwrap();
        filetime::FileTime::from_last_modification_time(&meta).unix_seconds()
    };
    assert_eq!(mtime("old/ancient.txt"), 0);
    assert_eq!(mtime("old"), 0);
    assert_eq!(
        std::fs::read(f.dir().join("old/ancient.txt")).unwrap(),
        b"from 1960"
    );

    let mut old_style = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(9);
    header.set_mtime(BEFORE_1970 as u64);
    old_style
        .append_data(&mut header, "ancient.txt", &b"from 1960"[..])
        .unwrap();
    f.replace_archive(&uuid, &zstd(&old_style.into_inner().unwrap()), 1, 9);
    let outcome = f.restore(&uuid, true);
    assert_eq!(outcome["successful"], true, "{outcome}");
    assert_eq!(mtime("ancient.txt"), BEFORE_1970);
}

/// A server whose `world` is a mount point (which can be neither moved aside nor renamed
/// into), backed up, changed and restored over, so that the swap fails midway. Returns the
/// fixture, the mount (unmounted on drop), the files before the restore and its outcome.
fn restore_failing_midway(
    truncate: bool,
) -> (
    Fixture,
    Tmpfs,
    std::collections::BTreeMap<PathBuf, String>,
    Value,
) {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    std::fs::create_dir_all(f.dir().join("world")).unwrap();
    let world = Tmpfs::mount(&f.dir().join("world"), "8m");
    populate(&f.dir());
    let b = f.backup();
    change(&f.dir());
    let before = snapshot(&f.dir());
    let outcome = f.restore(b["uuid"].as_str().unwrap(), truncate);
    (f, world, before, outcome)
}

/// A swap that fails midway puts every file back at once, in both modes.
#[test]
fn a_swap_that_fails_midway_puts_every_file_back() {
    for truncate in [true, false] {
        let (f, _world, before, outcome) = restore_failing_midway(truncate);
        assert_put_back(&outcome, &format!("truncate {truncate}"));
        assert_eq!(snapshot(&f.dir()), before, "truncate {truncate}");
        assert!(f.work_dirs_left().is_empty(), "{:?}", f.work_dirs_left());
    }
}

/// A rollback renames its work directory away before deleting it; a hoard that stopped
/// during that delete finishes it at the next start and reports the restore as undone.
#[test]
fn a_rollback_stopped_while_clearing_up_is_finished_at_the_next_start() {
    let (mut f, _world, before, outcome) = restore_failing_midway(false);
    assert_eq!(outcome["successful"], false, "{outcome}");
    // Back to the moment the files were back but the renamed work directory not yet gone.
    let db = rusqlite::Connection::open(f.hoard.data.path().join("hoard.db")).unwrap();
    let staging: String = db
        .query_row("SELECT staging_path FROM restores", [], |r| r.get(0))
        .unwrap();
    let work = Path::new(&staging).parent().unwrap().to_path_buf();
    let mut discarded = work.file_name().unwrap().to_os_string();
    discarded.push("-discarded");
    let discarded = work.with_file_name(discarded);
    write(
        &discarded,
        "staging/server.properties",
        b"motd=from the backup\n",
    );
    db.execute(
        "UPDATE restores SET step = 'overlaying', finished_at = NULL, job_pid = NULL, heartbeat_at = 0",
        [],
    )
    .unwrap();
    db.execute("UPDATE servers SET status = 'restoring_backup'", [])
        .unwrap();
    f.restart();
    let outcome = wait_resolved(&f);
    assert_put_back(&outcome, "rollback finished at the next start");
    assert!(!discarded.exists(), "{}", discarded.display());
    assert!(!work.exists());
    assert_eq!(snapshot(&f.dir()), before);
}

/// A `truncate: true` restore keeps in place what the backup's own rules left out: the
/// patterns of the `.pteroignore` it was made with and the request's `ignored`, also deep
/// in the tree. Everything else is exactly the backup's.
#[test]
fn a_truncating_restore_keeps_what_the_backup_left_out() {
    let f = Fixture::new(&["--throttle-backups", "0"]);
    populate(&f.dir());
    write(&f.dir(), ".pteroignore", b"logs/\n*.tmp\n");
    write(&f.dir(), "logs/latest.log", b"old log\n");
    write(&f.dir(), "world/cache.tmp", b"old cache");
    write(&f.dir(), "plugins/dynmap/web/tile.png", b"old tile");
    write(&f.dir(), "plugins/dynmap/config.yml", b"dynmap: 1\n");
    let b = f
        .api
        .backup_and_wait(&f.server, r#"{"ignored":"plugins/dynmap/web/\n"}"#);
    assert_eq!(b["status"], "completed", "{b}");
    let mut expected = snapshot(&f.dir());
    change(&f.dir());
    write(&f.dir(), "logs/latest.log", b"the log of today\n");
    write(&f.dir(), "logs/2026-12-01.log.gz", b"yesterday");
    write(&f.dir(), "world/cache.tmp", b"new cache");
    write(&f.dir(), "world/region/deep.tmp", b"deep");
    write(&f.dir(), "plugins/dynmap/web/tile.png", b"new tile");
    write(&f.dir(), "plugins/dynmap/config.yml", b"dynmap: 2\n");
    let now = snapshot(&f.dir());
    for (rel, _) in now.iter() {
        let rel_str = rel.to_string_lossy();
        let kept = rel_str.starts_with("logs")
            || rel_str.ends_with(".tmp")
            || rel_str.starts_with("plugins/dynmap/web");
        if kept {
            expected.insert(rel.clone(), now[rel].clone());
        }
    }
    let outcome = f.restore(b["uuid"].as_str().unwrap(), true);
    assert_eq!(outcome["successful"], true, "{outcome}");
    assert_eq!(snapshot(&f.dir()), expected);
    assert_eq!(
        std::fs::read(f.dir().join("plugins/dynmap/config.yml")).unwrap(),
        b"dynmap: 1\n"
    );
    assert!(f.work_dirs_left().is_empty(), "{:?}", f.work_dirs_left());
}
