//! Nothing lost, ever: a backup is complete or says it is not, a crash leaves no orphan
//! archive, a zombie is dead, and an archive that is gone or damaged shows and is refused.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn setup(hoard: &Hoard, files: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, String, Api) {
    let dir = tempfile::tempdir().unwrap();
    for (rel, data) in files {
        write(dir.path(), rel, data);
    }
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    (dir, server, api)
}

fn server_uuid(api: &Api, server: &str) -> String {
    api.get(&format!("/api/client/servers/{server}")).json()["attributes"]["uuid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The files of one backup in the storage directory.
fn files_of(data: &Path, backup: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for server in std::fs::read_dir(data.join("backups")).unwrap() {
        for file in std::fs::read_dir(server.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().contains(backup) {
                found.push(path);
            }
        }
    }
    found
}

/// `hoard` on a data directory, as the tests' CLI calls run it.
fn hoard_command(data: &Path) -> Command {
    let mut command = Command::new(bin());
    command
        .arg("--data-dir")
        .arg(data)
        .env("HOARD_ADMIN_PASSWORD", ADMIN_PASSWORD);
    command
}

/// Runs a command without the capabilities that let root read any file, so that file
/// modes apply to it as to anyone else.
fn without_dac_override(command: &mut Command) -> &mut Command {
    // From linux/capability.h.
    const CAP_DAC_OVERRIDE: libc::c_ulong = 1;
    const CAP_DAC_READ_SEARCH: libc::c_ulong = 2;
    // SAFETY: prctl is async-signal-safe and changes only the child's bounding set, which
    // its exec then applies.
    unsafe {
        command.pre_exec(|| {
            for cap in [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH] {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    }
}

fn wait_for_file(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the backup ended ({status}) before its archive was published");
        }
        assert!(Instant::now() < deadline, "the backup never published");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls a backup until `done` holds for it.
fn wait_backup_until(api: &Api, server: &str, uuid: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b = api
            .get(&format!("/api/client/servers/{server}/backups/{uuid}"))
            .json()["attributes"]
            .clone();
        if done(&b) {
            return b;
        }
        assert!(Instant::now() < deadline, "backup {uuid}: {b}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Names archived in a backup, from the system's tar.
fn archived_names(hoard: &Hoard, api: &Api, server: &str, backup: &Value) -> Vec<String> {
    let uuid = backup["uuid"].as_str().unwrap();
    let archive = hoard
        .data
        .path()
        .join("backups")
        .join(server_uuid(api, server))
        .join(format!("{uuid}.tar.zst"));
    let out = Command::new("tar")
        .arg("--zstd")
        .arg("-tf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

/// A chain of directories deeper than the descriptors hoard may open, a file in each.
fn deep_tree(levels: usize) -> Vec<(String, Vec<u8>)> {
    (1..=levels)
        .map(|depth| (format!("{}file", "d/".repeat(depth)), vec![b'x'; 10]))
        .collect()
}

#[test]
fn descriptors_running_out_during_a_backup_fail_it_unless_the_server_skips_what_it_cannot_read() {
    let levels = 120;
    let hoard = Hoard::start_with_nofile(&[], 64);
    let files = deep_tree(levels);
    let borrowed: Vec<(&str, Vec<u8>)> =
        files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let (dir, server, api) = setup(&hoard, &borrowed);

    let failed = api.backup_and_wait(&server, "{}");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["is_successful"], false);
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("Too many open files"), "{error}");
    assert!(
        error.contains(&format!("{}/d/d/", dir.path().display())),
        "the reason names the path: {error}"
    );
    assert!(files_of(hoard.data.path(), failed["uuid"].as_str().unwrap()).is_empty());

    let r = api.patch(
        &format!("/api/application/servers/{server}"),
        r#"{"skip_unreadable": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["attributes"]["skip_unreadable"], true);
    let partial = api.backup_and_wait(&server, "{}");
    assert_eq!(partial["status"], "completed_with_warnings", "{partial}");
    assert_eq!(partial["is_successful"], true);
    let warnings = partial["warnings"].to_string();
    assert!(warnings.contains("Too many open files"), "{warnings}");
    let names = archived_names(&hoard, &api, &server, &partial);
    let deepest = format!("{}file", "d/".repeat(levels));
    assert!(names.contains(&"d/file".to_string()), "{names:?}");
    assert!(
        !names.contains(&deepest),
        "the limit was never reached: the test proves nothing"
    );
}

#[test]
fn an_unreadable_directory_fails_the_backup_unless_the_server_skips_what_it_cannot_read() {
    use std::os::unix::fs::PermissionsExt;
    let hoard = Hoard::start(&[]);
    let (dir, server, _) = setup(
        &hoard,
        &[
            ("world/level.dat", b"level".to_vec()),
            ("locked/secret.dat", b"secret".to_vec()),
        ],
    );
    let locked = dir.path().join("locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let backup = |expect_success: bool| -> Value {
        let out = without_dac_override(&mut hoard_command(hoard.data.path()))
            .args(["--json", "backup", "create", &server, "--wait"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            expect_success,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["attributes"].clone()
    };

    let failed = backup(false);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("Permission denied") && error.contains(&locked.display().to_string()),
        "{error}"
    );

    hoard.cli_ok(&["server", "update", &server, "--skip-unreadable", "true"]);
    let partial = backup(true);
    assert_eq!(partial["status"], "completed_with_warnings", "{partial}");
    assert!(
        partial["warnings"]
            .to_string()
            .contains("locked: could not be read"),
        "{partial}"
    );
}

#[test]
fn a_backup_killed_between_publishing_and_recording_its_archive_leaves_none_behind() {
    let mut hoard = Hoard::start(&[]);
    let (_dir, server, _) = setup(&hoard, &[("world/region.mca", noise(200_000, 1))]);
    hoard.kill();
    let flag = hoard.data.path().join("published");
    let mut cli = hoard_command(hoard.data.path())
        .args(["backup", "create", &server, "--wait"])
        .env("HOARD_TEST_PAUSE_AFTER_PUBLISH", &flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_file(&flag, &mut cli);
    let archive = std::fs::read_dir(
        hoard
            .data
            .path()
            .join("backups")
            .join(server_uuid_of(&hoard, &server)),
    )
    .unwrap()
    .map(|e| e.unwrap().path())
    .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
    .expect("the archive is published");
    let uuid = archive
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.zst")
        .to_string();
    assert_eq!(
        files_of(hoard.data.path(), &uuid).len(),
        2,
        "archive and manifest"
    );
    cli.kill().unwrap();
    cli.wait().unwrap();

    hoard.restart();
    let api = hoard.api(&hoard.key("admin"));
    let b = wait_backup_until(&api, &server, &uuid, |b| b["status"] != "creating");
    assert_eq!(b["status"], "failed", "{b}");
    assert!(b["error"].as_str().unwrap().contains("interrupted"), "{b}");
    assert!(
        files_of(hoard.data.path(), &uuid).is_empty(),
        "{:?}",
        files_of(hoard.data.path(), &uuid)
    );
}

/// The server's uuid from the catalogue (for when hoard is not running).
fn server_uuid_of(hoard: &Hoard, server: &str) -> String {
    hoard.cli_json(&["server", "show", server])["attributes"]["uuid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_crashed_hoard_left_a_zombie_is_recovered_at_the_next_start_without_waiting() {
    let mut hoard = Hoard::start(&[]);
    let (_dir, server, _) = setup(&hoard, &[("world/region.mca", noise(100_000, 2))]);
    hoard.kill();
    let flag = hoard.data.path().join("published");
    // A parent that never reaps: `sh` starts hoard and becomes `sleep`.
    let mut parent = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" --data-dir "$1" backup create "$2" --wait >/dev/null 2>&1 & exec sleep 600"#)
        .arg(bin())
        .arg(hoard.data.path())
        .arg(&server)
        .env("HOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HOARD_TEST_PAUSE_AFTER_PUBLISH", &flag)
        .spawn()
        .unwrap();
    wait_for_file(&flag, &mut parent);
    let db = rusqlite::Connection::open(hoard.data.path().join("hoard.db")).unwrap();
    let (uuid, pid): (String, i32) = db
        .query_row(
            "SELECT uuid, job_pid FROM backups WHERE status = 'creating'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(db);
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stat().contains(") Z") {
        assert!(Instant::now() < deadline, "not a zombie: {}", stat());
        std::thread::sleep(Duration::from_millis(20));
    }

    let started = Instant::now();
    hoard.restart();
    let api = hoard.api(&hoard.key("admin"));
    let b = wait_backup_until(&api, &server, &uuid, |b| b["status"] != "creating");
    let took = started.elapsed();
    assert_eq!(b["status"], "failed", "{b}");
    assert!(
        stat().contains(") Z"),
        "still a zombie while it was recovered"
    );
    // The heartbeat timeout is a minute: recovery did not wait for it.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(files_of(hoard.data.path(), &uuid).is_empty());
    parent.kill().unwrap();
    parent.wait().unwrap();
}

#[test]
fn a_deleted_archive_shows_missing_and_is_neither_downloaded_nor_restored() {
    let hoard = Hoard::start(&[]);
    let (_dir, server, api) = setup(&hoard, &[("world/level.dat", noise(50_000, 3))]);
    let b = api.backup_and_wait(&server, "{}");
    assert_eq!(b["status"], "completed");
    let uuid = b["uuid"].as_str().unwrap();
    let archive = files_of(hoard.data.path(), uuid)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .unwrap();
    std::fs::remove_file(&archive).unwrap();

    let base = format!("/api/client/servers/{server}/backups/{uuid}");
    let shown = api.get(&base).json();
    assert_eq!(shown["attributes"]["status"], "missing", "{shown}");
    let listed = api
        .get(&format!("/api/client/servers/{server}/backups"))
        .json();
    assert_eq!(listed["data"][0]["attributes"]["status"], "missing");
    let download = api.get(&format!("{base}/download"));
    download.assert_error(400, "BackupFailedException");
    assert!(download.detail().contains("missing"), "{}", download.text());
    let restore = api.post(&format!("{base}/restore"), "{}");
    restore.assert_error(400, "BackupFailedException");
    assert!(restore.detail().contains("missing"), "{}", restore.text());
    assert_eq!(
        api.get(&format!("/api/client/servers/{server}")).json()["attributes"]["status"],
        Value::Null,
        "no restore started"
    );

    // A truncated archive is missing as well.
    let b = api.backup_and_wait(&server, "{}");
    let uuid = b["uuid"].as_str().unwrap();
    let archive = files_of(hoard.data.path(), uuid)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&archive)
        .unwrap();
    file.set_len(b["bytes"].as_u64().unwrap() / 2).unwrap();
    let download = api.get(&format!(
        "/api/client/servers/{server}/backups/{uuid}/download"
    ));
    download.assert_error(400, "BackupFailedException");
}

#[test]
fn verify_finds_a_flipped_byte_and_a_corrupt_backup_is_not_restored() {
    let hoard = Hoard::start(&[]);
    let (dir, server, api) = setup(&hoard, &[("world/level.dat", noise(300_000, 4))]);
    let good = api.backup_and_wait(&server, "{}");
    let bad = api.backup_and_wait(&server, "{}");
    let uuid = bad["uuid"].as_str().unwrap();
    let base = format!("/api/client/servers/{server}/backups/{uuid}");

    // A subuser who may only read backups may verify them.
    hoard.add_user("reader", false);
    hoard.add_subuser(&server, "reader", "backup.read,backup.restore");
    let reader = hoard.api(&hoard.key("reader"));
    let verify_good = |api: &Api| {
        let r = api.post(
            &format!(
                "/api/client/servers/{server}/backups/{}/verify",
                good["uuid"].as_str().unwrap()
            ),
            "{}",
        );
        assert_eq!(r.status, 202, "{}", r.text());
        wait_backup_until(api, &server, good["uuid"].as_str().unwrap(), |b| {
            b["verification"].is_null()
        })
    };
    let checked = verify_good(&reader);
    assert_eq!(checked["status"], "completed", "{checked}");

    let archive = files_of(hoard.data.path(), uuid)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .unwrap();
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, &bytes).unwrap();
    assert_eq!(
        api.get(&base).json()["attributes"]["status"],
        "completed",
        "same size"
    );

    let r = reader.post(&format!("{base}/verify"), "{}");
    assert_eq!(r.status, 202, "{}", r.text());
    let found = wait_backup_until(&api, &server, uuid, |b| b["verification"].is_null());
    assert_eq!(found["status"], "corrupt", "{found}");
    assert_eq!(hoard.activity_count("server:backup.verify"), 2);

    let refused = api.post(&format!("{base}/restore"), "{}");
    refused.assert_error(400, "BackupFailedException");
    assert!(refused.detail().contains("corrupt"), "{}", refused.text());
    reader
        .post(&format!("{base}/restore"), r#"{"allow_corrupt": true}"#)
        .assert_error(403, "InsufficientPermissionsException");

    // The command line finds the same, and says so in its exit status.
    let out = hoard.cli(&["backup", "verify", &server, uuid]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corrupt"),
        "{out:?}"
    );
    hoard.cli_ok(&["backup", "verify", &server, good["uuid"].as_str().unwrap()]);

    // The owner may still try to restore it on purpose, but a zstd frame that fails its
    // checksum cannot be decoded (tests/corrupt_restore.rs restores one that can).
    let before = snapshot(dir.path());
    let r = api.post(&format!("{base}/restore"), r#"{"allow_corrupt": true}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let server_after = api.wait_restore(&server);
    let last = &server_after["attributes"]["last_restore"];
    assert_eq!(last["successful"], false, "undecodable: {last}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the server's files are untouched"
    );
}

#[test]
fn archives_unchecked_for_the_verification_interval_are_verified_on_schedule() {
    let mut hoard = Hoard::start(&["--throttle-backups", "0"]);
    let (_dir, server, api) = setup(&hoard, &[("world/level.dat", noise(200_000, 5))]);
    let due = api.backup_and_wait(&server, "{}");
    let recent = api.backup_and_wait(&server, "{}");
    for b in [&due, &recent] {
        let uuid = b["uuid"].as_str().unwrap();
        let archive = files_of(hoard.data.path(), uuid)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
            .unwrap();
        let mut bytes = std::fs::read(&archive).unwrap();
        bytes[100] ^= 0x80;
        std::fs::write(&archive, &bytes).unwrap();
    }
    hoard.kill();
    let db = rusqlite::Connection::open(hoard.data.path().join("hoard.db")).unwrap();
    db.execute(
        "UPDATE backups SET verified_at = verified_at - 8 * 86400 WHERE uuid = ?1",
        [due["uuid"].as_str().unwrap()],
    )
    .unwrap();
    drop(db);

    hoard.restart();
    let api = hoard.api(&hoard.key("admin"));
    let found = wait_backup_until(&api, &server, due["uuid"].as_str().unwrap(), |b| {
        b["status"] != "completed"
    });
    assert_eq!(found["status"], "corrupt", "{found}");
    let untouched = api
        .get(&format!(
            "/api/client/servers/{server}/backups/{}",
            recent["uuid"].as_str().unwrap()
        ))
        .json();
    assert_eq!(
        untouched["attributes"]["status"], "completed",
        "checked within the week: not due yet"
    );
}

/// A `truncate: true` restore of a backup that could not read some entries keeps the
/// server's own copies of them (the backup holds none, or an incomplete one); everything
/// else is exactly the backup's.
#[test]
fn a_truncating_restore_keeps_what_the_backup_could_not_read() {
    use std::os::unix::fs::PermissionsExt;
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let (dir, server, api) = setup(
        &hoard,
        &[
            ("world/level.dat", b"level at backup".to_vec()),
            ("locked/secret.dat", b"secret at backup".to_vec()),
        ],
    );
    let locked = dir.path().join("locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    hoard.cli_ok(&["server", "update", &server, "--skip-unreadable", "true"]);
    let out = without_dac_override(&mut hoard_command(hoard.data.path()))
        .args(["--json", "backup", "create", &server, "--wait"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = serde_json::from_slice::<Value>(&out.stdout).unwrap()["attributes"].clone();
    assert_eq!(backup["status"], "completed_with_warnings", "{backup}");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut expected = snapshot(dir.path());

    write(dir.path(), "world/level.dat", b"level of today");
    write(dir.path(), "world/new.dat", b"new");
    write(dir.path(), "locked/secret.dat", b"secret of today");
    write(dir.path(), "locked/more.dat", b"more of today");
    let now = snapshot(dir.path());
    for (rel, desc) in &now {
        if rel.starts_with("locked") {
            expected.insert(rel.clone(), desc.clone());
        }
    }
    let r = api.post(
        &format!(
            "/api/client/servers/{server}/backups/{}/restore",
            backup["uuid"].as_str().unwrap()
        ),
        r#"{"truncate":true}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let outcome = api.wait_restore(&server)["attributes"]["last_restore"].clone();
    assert_eq!(outcome["successful"], true, "{outcome}");
    assert_eq!(snapshot(dir.path()), expected);
    assert_eq!(
        std::fs::read(dir.path().join("locked/secret.dat")).unwrap(),
        b"secret of today"
    );
}
