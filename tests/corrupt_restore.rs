//! Restoring a backup whose archive no longer matches its SHA-256: refused unless the
//! server's owner (or an administrator) asks for it; then the archive is restored as it is,
//! and the restore says that it did not match. An archive that cannot be decoded is still
//! not restored, asked or not.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LEVEL: &str = "world/level.dat";
/// Where in `world/level.dat` the archive's copy gets a flipped bit.
const FLIPPED_AT: usize = 100_000;

struct Fixture {
    hoard: Hoard,
    dir: tempfile::TempDir,
    server: String,
    api: Api,
    backup: Value,
    /// `world/level.dat` as the server had it when backed up.
    level: Vec<u8>,
}

impl Fixture {
    /// A server with uncompressed archives (so a flipped byte in a file's data still
    /// extracts), backed up once, then changed.
    fn new() -> Fixture {
        let hoard = Hoard::start(&[]);
        let dir = tempfile::tempdir().unwrap();
        let level = noise(300_000, 11);
        write(dir.path(), LEVEL, &level);
        write(dir.path(), "server.properties", b"motd=backed up\n");
        let server = hoard.add_server("mc", dir.path(), "admin", &["--compression", "none"]);
        let api = hoard.api(&hoard.key("admin"));
        let backup = api.backup_and_wait(&server, "{}");
        assert_eq!(backup["status"], "completed", "{backup}");
        assert_eq!(backup["compression"], "none");
        write(dir.path(), "server.properties", b"motd=changed since\n");
        write(dir.path(), "plugins/new.jar", &noise(5_000, 12));
        Fixture {
            hoard,
            dir,
            server,
            api,
            backup,
            level,
        }
    }

    fn uuid(&self) -> &str {
        self.backup["uuid"].as_str().unwrap()
    }

    fn base(&self) -> String {
        format!(
            "/api/client/servers/{}/backups/{}",
            self.server,
            self.uuid()
        )
    }

    fn archive(&self) -> PathBuf {
        let server_uuid = self
            .api
            .get(&format!("/api/client/servers/{}", self.server))
            .json()["attributes"]["uuid"]
            .as_str()
            .unwrap()
            .to_string();
        let path = self
            .hoard
            .data
            .path()
            .join("backups")
            .join(server_uuid)
            .join(format!("{}.tar", self.uuid()));
        assert!(path.is_file(), "{} is not there", path.display());
        path
    }

    /// Flips one bit of the archive at the first place `pattern` occurs (which must occur
    /// exactly once), keeping its size.
    fn flip_in_archive(&self, pattern: &[u8], offset: usize) {
        let archive = self.archive();
        let mut bytes = std::fs::read(&archive).unwrap();
        let found: Vec<usize> = bytes
            .windows(pattern.len())
            .enumerate()
            .filter(|(_, w)| *w == pattern)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found.len(), 1, "the pattern must locate one place");
        bytes[found[0] + offset] ^= 0x01;
        std::fs::write(&archive, &bytes).unwrap();
        assert_eq!(
            self.api.get(&self.base()).json()["attributes"]["status"],
            "completed",
            "same size: only verification can tell"
        );
    }

    /// Verifies the backup through the API and returns its attributes afterwards.
    fn verify(&self) -> Value {
        let r = self.api.post(&format!("{}/verify", self.base()), "{}");
        assert_eq!(r.status, 202, "{}", r.text());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let b = self.api.get(&self.base()).json()["attributes"].clone();
            if b["verification"].is_null() {
                return b;
            }
            assert!(Instant::now() < deadline, "verification did not end: {b}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn restore(&self, api: &Api, body: &str) -> Reply {
        api.post(&format!("{}/restore", self.base()), body)
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.hoard.data.path().join("hoard.db")).unwrap()
    }

    fn restore_rows(&self) -> Vec<(bool, Option<String>, String)> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT allow_corrupt, warning, step FROM restores ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The properties of the newest activity entry named `event`.
    fn last_activity(&self, event: &str) -> Value {
        let text: String = self
            .db()
            .query_row(
                "SELECT properties FROM activity_log WHERE event = ?1 ORDER BY id DESC LIMIT 1",
                [event],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Checks that the server's files are the archive's: the backed-up tree, with the
    /// flipped bit in `world/level.dat`.
    fn assert_restored_with_flipped_bit(&self) {
        let mut level = self.level.clone();
        level[FLIPPED_AT] ^= 0x01;
        assert_eq!(
            names(self.dir.path()),
            ["server.properties", "world", "world/level.dat"],
            "exactly the backup's entries"
        );
        assert!(
            std::fs::read(self.dir.path().join(LEVEL)).unwrap() == level,
            "world/level.dat is the archive's, flipped bit included"
        );
        assert_eq!(
            std::fs::read(self.dir.path().join("server.properties")).unwrap(),
            b"motd=backed up\n"
        );
    }
}

/// Every path under `root`, relative, sorted.
fn names(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = snapshot(root)
        .into_keys()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn a_corrupt_backup_is_restored_only_for_its_owner_on_request_and_the_restore_says_it_did_not_match()
 {
    let f = Fixture::new();
    let expected_hash = f.backup["sha256_hash"].as_str().unwrap().to_string();
    let window = &f.level[FLIPPED_AT..FLIPPED_AT + 64];
    f.flip_in_archive(window, 0);
    let found_hash = sha256_file(&f.archive());
    assert_ne!(found_hash, expected_hash);

    let verified = f.verify();
    assert_eq!(verified["status"], "corrupt", "{verified}");

    // Without the override: refused, nothing started, nothing changed.
    let before = snapshot(f.dir.path());
    let refused = f.restore(&f.api, "{}");
    refused.assert_error(400, "BackupFailedException");
    assert!(refused.detail().contains("corrupt"), "{}", refused.text());

    // A subuser who may restore may not override.
    f.hoard.add_user("helper", false);
    f.hoard
        .add_subuser(&f.server, "helper", "backup.read,backup.restore");
    let helper = f.hoard.api(&f.hoard.key("helper"));
    f.restore(&helper, r#"{"allow_corrupt": true}"#)
        .assert_error(403, "InsufficientPermissionsException");
    assert_eq!(
        snapshot(f.dir.path()),
        before,
        "the server's files are untouched"
    );
    assert!(f.restore_rows().is_empty(), "no restore was started");

    // The owner may.
    let r = f.restore(&f.api, r#"{"allow_corrupt": true}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let server = f.api.wait_restore(&f.server);
    let last = &server["attributes"]["last_restore"];
    assert_eq!(last["successful"], true, "{last}");
    assert_eq!(last["error"], Value::Null, "{last}");
    let warning = last["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("did not match its SHA-256")
            && warning.contains(&expected_hash)
            && warning.contains(&found_hash),
        "the outcome says the archive did not match: {last}"
    );
    f.assert_restored_with_flipped_bit();

    // The journal and the activity log record the override and what came of it.
    let rows = f.restore_rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0], (true, Some(warning.to_string()), "done".into()));
    let asked = f.last_activity("server:backup.restore");
    assert_eq!(asked["allow_corrupt"], true, "{asked}");
    let done = f.last_activity("server:backup.restore-complete");
    assert_eq!(done["warning"], warning, "{done}");

    // The backup stays corrupt: restoring it once on purpose does not vouch for it.
    let after = f.api.get(&f.base()).json();
    assert_eq!(after["attributes"]["status"], "corrupt", "{after}");
    f.restore(&f.api, "{}")
        .assert_error(400, "BackupFailedException");
}

#[test]
fn the_command_line_restores_a_corrupt_backup_with_allow_corrupt() {
    let f = Fixture::new();
    f.flip_in_archive(&f.level[FLIPPED_AT..FLIPPED_AT + 64], 0);
    assert_eq!(f.verify()["status"], "corrupt");
    let before = snapshot(f.dir.path());

    let out = f
        .hoard
        .cli(&["backup", "restore", &f.server, f.uuid(), "--wait"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corrupt"),
        "{out:?}"
    );
    assert_eq!(
        snapshot(f.dir.path()),
        before,
        "the server's files are untouched"
    );

    let done = f.hoard.cli_json(&[
        "backup",
        "restore",
        &f.server,
        f.uuid(),
        "--allow-corrupt",
        "--wait",
    ]);
    assert_eq!(done["step"], "done", "{done}");
    assert_eq!(done["error"], Value::Null, "{done}");
    assert!(
        done["warning"]
            .as_str()
            .is_some_and(|w| w.contains("did not match its SHA-256")),
        "{done}"
    );
    f.assert_restored_with_flipped_bit();
    assert_eq!(
        f.restore_rows(),
        [(
            true,
            done["warning"].as_str().map(String::from),
            "done".to_string()
        )],
        "the journal records the override and the warning; the refused attempt left no row"
    );
}

#[test]
fn an_archive_that_cannot_be_decoded_is_not_restored_even_on_request() {
    let f = Fixture::new();
    // A bit of the entry's name in its tar header: the header's checksum no longer holds.
    f.flip_in_archive(format!("{LEVEL}\0").as_bytes(), 1);
    assert_eq!(f.verify()["status"], "corrupt");
    let before = snapshot(f.dir.path());

    let r = f.restore(&f.api, r#"{"allow_corrupt": true}"#);
    assert_eq!(r.status, 202, "{}", r.text());
    let server = f.api.wait_restore(&f.server);
    let last = &server["attributes"]["last_restore"];
    assert_eq!(last["successful"], false, "{last}");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("corrupt or unreadable")),
        "{last}"
    );
    assert_eq!(last["warning"], Value::Null, "{last}");
    assert_eq!(
        snapshot(f.dir.path()),
        before,
        "the server's files are exactly what they were"
    );
    assert_eq!(
        f.restore_rows(),
        [(true, None, "failed".to_string())],
        "the journal records the override and the failure"
    );
}

#[test]
fn a_restore_that_finds_a_mismatch_fails_without_the_override_and_marks_the_backup_corrupt() {
    let f = Fixture::new();
    f.flip_in_archive(&f.level[FLIPPED_AT..FLIPPED_AT + 64], 0);
    let before = snapshot(f.dir.path());

    // Not verified since: the restore is the first to read the archive.
    let r = f.restore(&f.api, "{}");
    assert_eq!(r.status, 202, "{}", r.text());
    let server = f.api.wait_restore(&f.server);
    let last = &server["attributes"]["last_restore"];
    assert_eq!(last["successful"], false, "{last}");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not match its SHA-256")),
        "{last}"
    );
    assert_eq!(
        snapshot(f.dir.path()),
        before,
        "the server's files are untouched"
    );
    let after = f.api.get(&f.base()).json();
    assert_eq!(after["attributes"]["status"], "corrupt", "{after}");
    f.restore(&f.api, "{}")
        .assert_error(400, "BackupFailedException");
}
