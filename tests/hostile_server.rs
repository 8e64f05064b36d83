//! Whoever owns a server directory races hoard: while restores run, a process running as
//! that (unprivileged) user renames every directory and file it can reach away, puts a
//! symlink to a directory it cannot write in its place, and plants more such links. hoard,
//! running as root, must never write, move, chmod or delete anything through them.
//!
//! Also here: a server directory replaced by a symlink to hoard's data directory.
//!
//! The attacker is this same executable, started again as another uid (the `ATTACK`
//! variable): the test runs without libtest's harness so that it can be its own helper.

mod common;

use common::{Hoard, Tmpfs, noise, sha256_file, write};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// The uid and gid that own the server directory; no account needs to exist for them.
const ATTACKER: u32 = 4242;
/// Restores per combination of mode and kind of server directory.
const RESTORES: usize = 25;

fn main() {
    if let Ok(spec) = std::env::var("ATTACK") {
        let parts: Vec<PathBuf> = spec.split('\n').map(PathBuf::from).collect();
        attack(&parts[0], &parts[1], &parts[2..]);
    }
    if unsafe { libc::geteuid() } != 0 {
        panic!("these tests race hoard as another user: run them as root");
    }
    for mount_point in [false, true] {
        for truncate in [true, false] {
            restores_hold_against_the_server_owner(mount_point, truncate);
        }
    }
    a_server_directory_replaced_by_a_symlink_is_not_followed();
    println!("hostile_server: all passed");
}

/// Every regular file, directory and link under `root`: its mode, owner and contents.
fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if meta.file_type().is_symlink() {
                format!("link to {}", std::fs::read_link(&path).unwrap().display())
            } else {
                sha256_file(&path)
            };
            let line = format!("{:o} {}:{} {what}", meta.mode(), meta.uid(), meta.gid());
            out.insert(path.strip_prefix(root).unwrap().to_path_buf(), line);
        }
    }
    let meta = std::fs::metadata(root).unwrap();
    out.insert(
        PathBuf::new(),
        format!("{:o} {}:{}", meta.mode(), meta.uid(), meta.gid()),
    );
    out
}

/// Places the attacker cannot write, which its links point at: one closed to it, one it
/// can read.
fn make_targets(top: &Path) -> Vec<PathBuf> {
    let sentinel = top.join("sentinel");
    write(&sentinel, "secret", b"root's secret\n");
    write(&sentinel, "inner/deeper.txt", b"deeper\n");
    std::fs::set_permissions(&sentinel, std::fs::Permissions::from_mode(0o700)).unwrap();
    let neighbour = top.join("neighbour");
    write(&neighbour, "other-server/world.dat", &noise(5000, 1));
    vec![sentinel, neighbour]
}

fn chown_tree(root: &Path) {
    chown(root, Some(ATTACKER), Some(ATTACKER)).unwrap();
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            chown_tree(&path);
        } else {
            std::os::unix::fs::lchown(&path, Some(ATTACKER), Some(ATTACKER)).unwrap();
        }
    }
}

fn populate(dir: &Path) {
    for i in 0..4 {
        write(dir, &format!("world/region/r.{i}.0.mca"), &noise(4096, i));
    }
    for i in 0..8 {
        write(
            dir,
            &format!("world/playerdata/{i}.dat"),
            &noise(300, 10 + i),
        );
    }
    write(dir, "world/level.dat", b"level");
    write(dir, "plugins/essentials/config.yml", b"motd: hi\n");
    write(dir, "plugins/essentials/userdata/a.yml", b"money: 1\n");
    write(dir, "server.properties", b"motd=hoard\n");
    write(dir, "logs/latest.log", b"log\n");
    chown_tree(dir);
}

/// The attacker's process, killed however the test ends: it never stops by itself.
struct Attacker(Child);

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the attacker as the server's owner.
fn start_attacker(server: &Path, holder: &Path, targets: &[PathBuf]) -> Attacker {
    let mut spec = vec![server.to_path_buf(), holder.to_path_buf()];
    spec.extend(targets.iter().cloned());
    let spec: Vec<String> = spec.iter().map(|p| p.display().to_string()).collect();
    Command::new(std::env::current_exe().unwrap())
        .env("ATTACK", spec.join("\n"))
        .uid(ATTACKER)
        .gid(ATTACKER)
        .spawn()
        .map(Attacker)
        .unwrap()
}

/// The attacker's loop: for every directory and file it can reach in the server
/// directory and in hoard's work directories, plant a link to a target, then rename the
/// entry away, put a link to a target in its place for a moment, and put it back.
fn attack(server: &Path, holder: &Path, targets: &[PathBuf]) -> ! {
    let mut n = 0usize;
    loop {
        let mut reachable = Vec::new();
        if let Ok(entries) = std::fs::read_dir(holder) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".hoard-restore") && !name.ends_with(".away") {
                    let work = entry.path();
                    reachable.push(work.join("staging"));
                    reachable.push(work.join("trash"));
                    reachable.push(work);
                }
            }
        }
        collect(server, 0, &mut reachable);
        for path in &reachable {
            n += 1;
            let target = &targets[n % targets.len()];
            let _ = symlink(target, path.join(format!("planted-{}", n % 3)));
            let mut away = path.as_os_str().to_os_string();
            away.push(".away");
            if std::fs::rename(path, &away).is_ok() {
                let _ = symlink(target, path);
                for _ in 0..200 {
                    std::thread::yield_now();
                }
                let _ = std::fs::remove_file(path);
                let _ = std::fs::rename(&away, path);
            }
        }
    }
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".hoard-restore") || name.ends_with(".away") {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() && depth < 4 {
            collect(&path, depth + 1, out);
        }
        if !meta.file_type().is_symlink() {
            out.push(path);
        }
    }
}

fn restores_hold_against_the_server_owner(mount_point: bool, truncate: bool) {
    let case = format!(
        "{} server directory, truncate {truncate}",
        if mount_point { "mount-point" } else { "plain" }
    );
    let top = tempfile::tempdir().unwrap();
    let targets = make_targets(top.path());
    // The server's owner owns its parent too (as with /home/<user>/server), so a work
    // directory made beside the server directory is within its reach as well.
    let home = top.path().join("home");
    let server_dir = home.join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    let _tmpfs = mount_point.then(|| Tmpfs::mount(&server_dir, "64m"));
    populate(&server_dir);
    chown(&home, Some(ATTACKER), Some(ATTACKER)).unwrap();
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let key = hoard.key("admin");
    let api = hoard.api(&key);
    let server = hoard.add_server("Hostile", &server_dir, "admin", &[]);
    let backup = api.backup_and_wait(&server, "{}");
    assert_eq!(backup["is_successful"], true, "{case}: {backup}");
    let uuid = backup["uuid"].as_str().unwrap().to_string();

    let before: Vec<_> = targets.iter().map(|t| listing(t)).collect();
    let holder = if mount_point { &server_dir } else { &home };
    let attacker = start_attacker(&server_dir, holder, &targets);
    let (mut completed, mut failed) = (0, 0);
    for i in 0..RESTORES {
        let body = format!(r#"{{"truncate":{truncate}}}"#);
        let r = api.post(
            &format!("/api/client/servers/{server}/backups/{uuid}/restore"),
            &body,
        );
        if r.status != 202 {
            // Refused before it started (the server directory was a link at that
            // moment): a clear error, and nothing ran.
            assert!(
                r.status == 409,
                "{case}, restore {i}: {} {}",
                r.status,
                r.text()
            );
            failed += 1;
            continue;
        }
        let outcome: Value = api.wait_restore(&server)["attributes"]["last_restore"].clone();
        match outcome["successful"].as_bool() {
            Some(true) => completed += 1,
            Some(false) => {
                let reason = outcome["error"].as_str().unwrap_or_default();
                assert!(
                    reason.len() > 10 && !reason.contains("internal error"),
                    "{case}, restore {i}: unreadable reason: {outcome}"
                );
                failed += 1;
            }
            None => panic!("{case}, restore {i}: no outcome: {outcome}"),
        }
    }
    drop(attacker);
    for (target, before) in targets.iter().zip(&before) {
        assert_eq!(
            &listing(target),
            before,
            "{case}: {} was changed through a link",
            target.display()
        );
    }
    println!("{case}: {completed} restores completed, {failed} failed, targets untouched");
    assert!(hoard.log().len() < 50 << 20);
    // hoard is still whole: a last restore without the attacker gives the backup's files.
    std::thread::sleep(Duration::from_millis(100));
    let r = api.post(
        &format!("/api/client/servers/{server}/backups/{uuid}/restore"),
        r#"{"truncate":true}"#,
    );
    assert_eq!(r.status, 202, "{case}: {}", r.text());
    let outcome = api.wait_restore(&server)["attributes"]["last_restore"].clone();
    assert_eq!(outcome["successful"], true, "{case}: {outcome}");
    assert_eq!(
        std::fs::read(server_dir.join("world/level.dat")).unwrap(),
        b"level",
        "{case}"
    );
}

fn a_server_directory_replaced_by_a_symlink_is_not_followed() {
    let top = tempfile::tempdir().unwrap();
    let server_dir = top.path().join("server");
    write(&server_dir, "world/level.dat", b"level");
    let mut hoard = Hoard::start(&["--throttle-backups", "0"]);
    let key = hoard.key("admin");
    let api = hoard.api(&key);
    let server = hoard.add_server("Swapped", &server_dir, "admin", &[]);
    let first = api.backup_and_wait(&server, "{}");
    assert_eq!(first["is_successful"], true, "{first}");

    std::fs::rename(&server_dir, top.path().join("server.old")).unwrap();
    symlink(hoard.data.path(), &server_dir).unwrap();
    let second = api.backup_and_wait(&server, "{}");
    assert_eq!(second["is_successful"], false, "{second}");
    let error = second["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&server_dir.display().to_string()),
        "the failure names the path: {error}"
    );
    // No archive holds anything of the data directory.
    let secret = std::fs::read(hoard.data.path().join("secret.key")).unwrap();
    let mut archives = 0;
    for entry in walk_files(&hoard.data.path().join("backups")) {
        if entry.extension().is_some_and(|e| e == "zst") {
            archives += 1;
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("zstd -dc '{}' | tar -t", entry.display()))
                .output()
                .unwrap();
            let names = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !names.contains("secret.key") && !names.contains("hoard.db"),
                "{names}"
            );
            let raw = Command::new("sh")
                .arg("-c")
                .arg(format!("zstd -dc '{}'", entry.display()))
                .output()
                .unwrap()
                .stdout;
            assert!(!raw.windows(secret.len()).any(|w| w == secret.as_slice()));
        }
    }
    assert_eq!(archives, 1, "only the first backup has an archive");

    // One database: what the API writes, the CLI sees, and the other way round.
    let r = api.post(
        "/api/application/users",
        r#"{"username":"after-swap","password":"after-swap-password-1"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let users = hoard.cli_json(&["user", "list"]).to_string();
    assert!(users.contains("after-swap"), "{users}");
    let other = top.path().join("other");
    write(&other, "a.txt", b"a");
    let added = hoard.add_server("Added by the CLI", &other, "admin", &[]);
    let r = api.get(&format!("/api/client/servers/{added}"));
    assert_eq!(r.status, 200, "{}", r.text());
    hoard.restart();
    let users = hoard.cli_json(&["user", "list"]).to_string();
    assert!(users.contains("after-swap"), "after a restart: {users}");
    println!("symlinked server root: backup refused, one database");
}

fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
