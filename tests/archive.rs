//! Archives extract with the system's tar and zstd to exactly the server's files, and the
//! exclusion patterns behave as documented.

mod common;

use common::*;
use hoard::archive::{self, Exclusions, Options, Progress};
use hoard::model::Compression;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

fn set_mtime(path: &Path, secs: i64) {
    filetime::set_symlink_file_times(
        path,
        filetime::FileTime::from_unix_time(secs, 0),
        filetime::FileTime::from_unix_time(secs, 0),
    )
    .unwrap();
}

/// Nested directories, an empty directory, a symlink, an executable, a non-UTF-8 name, an
/// empty file, a 100 MiB file, a long path, and files the patterns exclude.
fn generated_tree(root: &Path) {
    write(root, "server.properties", b"motd=A Minecraft Server\n");
    write(root, "world/region/r.0.0.mca", &noise(3 << 20, 7));
    write(root, "world/playerdata/abc.dat", &noise(5000, 8));
    write(root, "start.sh", b"#!/bin/sh\njava -jar server.jar\n");
    std::fs::set_permissions(
        root.join("start.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    write(root, "empty.txt", b"");
    std::fs::create_dir_all(root.join("plugins/empty-dir")).unwrap();
    std::os::unix::fs::symlink("world/region", root.join("region-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("outside-link")).unwrap();
    let odd = OsStr::from_bytes(b"caf\xe9-latin1.yml");
    std::fs::write(root.join(odd), b"not utf-8 name").unwrap();
    let long = format!("deep/{}/{}.txt", "d".repeat(120), "f".repeat(130));
    write(root, &long, b"long path");
    let mut big = noise(100 << 20, 9);
    big[..1 << 20].fill(b'a');
    write(root, "server.jar", &big);
    write(root, "logs/latest.log", b"[INFO] excluded\n");
    write(root, "cache/mojang.jar", &noise(1000, 10));
    std::fs::set_permissions(
        root.join("world/playerdata"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    // Fixed times, so extraction is compared on them too.
    for (i, rel) in [
        "server.properties",
        "start.sh",
        "empty.txt",
        "server.jar",
        "world/region/r.0.0.mca",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&root.join(rel), 1_600_000_000 + i as i64 * 1000);
    }
    set_mtime(&root.join("region-link"), 1_500_000_000);
    for dir in [
        "plugins/empty-dir",
        "world/region",
        "world/playerdata",
        "world",
    ] {
        set_mtime(&root.join(dir), 1_650_000_000);
    }
}

fn extract_with_system_tar(archive: &Path, compression: &str, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let script = match compression {
        "zstd" => format!(
            "zstd -dc '{}' | tar -xpf - -C '{}'",
            archive.display(),
            into.display()
        ),
        "gzip" => format!("tar -xzpf '{}' -C '{}'", archive.display(), into.display()),
        _ => format!("tar -xpf '{}' -C '{}'", archive.display(), into.display()),
    };
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn archives_extract_with_system_tools_to_the_source_minus_exclusions() {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let src = tempfile::tempdir().unwrap();
    generated_tree(src.path());
    let server = hoard.add_server("mc", src.path(), "admin", &[]);
    let key = hoard.key("admin");
    let api = hoard.api(&key);
    let mut expected = snapshot(src.path());
    expected.retain(|p, _| !p.starts_with("logs") && !p.starts_with("cache"));
    assert!(expected.len() >= 15);

    for compression in ["zstd", "gzip", "none"] {
        let r = api.patch(
            &format!("/api/application/servers/{server}"),
            &format!(r#"{{"compression":"{compression}"}}"#),
        );
        assert_eq!(r.status, 200);
        let b = api.backup_and_wait(&server, r#"{"ignored":"logs/\n/cache"}"#);
        assert_eq!(b["status"], "completed", "{b}");
        assert_eq!(b["compression"], compression);
        let uuid = b["uuid"].as_str().unwrap();
        let ext = match compression {
            "zstd" => "tar.zst",
            "gzip" => "tar.gz",
            _ => "tar",
        };
        let server_uuid =
            api.get(&format!("/api/client/servers/{server}")).json()["attributes"]["uuid"]
                .as_str()
                .unwrap()
                .to_string();
        let file = hoard
            .data
            .path()
            .join("backups")
            .join(&server_uuid)
            .join(format!("{uuid}.{ext}"));
        assert_eq!(
            sha256_file(&file),
            b["sha256_hash"].as_str().unwrap(),
            "{compression}: hash"
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            b["bytes"].as_u64().unwrap(),
            "{compression}: size"
        );
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(file.with_file_name(format!("{uuid}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["server_uuid"], server_uuid.as_str());
        assert_eq!(manifest["sha256_hash"], b["sha256_hash"]);

        let out = tempfile::tempdir().unwrap();
        extract_with_system_tar(&file, compression, out.path());
        let got = snapshot(out.path());
        let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{compression}: missing {missing:?}, extra {extra:?}"
        );
        for (path, desc) in &expected {
            assert_eq!(&got[path], desc, "{compression}: {}", path.display());
        }
    }
}

/// Options for a plain tar, written on one thread.
fn uncompressed() -> Options {
    Options {
        compression: Compression::None,
        zstd_level: 3,
        threads: 1,
        gzip_level: 6,
        read_limit_bytes_per_sec: 0,
        max_bytes: u64::MAX,
        skip_unreadable: false,
    }
}

/// The paths `archive::write` puts in an uncompressed archive of `root`.
fn archived_paths(root: &Path, patterns: &[&str]) -> Vec<String> {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("a.tar");
    let request: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
    let exclusions = Exclusions::new(root, &request);
    let options = uncompressed();
    archive::write(
        root,
        &exclusions,
        &dest,
        &options,
        &Progress::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let mut tar = tar::Archive::new(std::fs::File::open(&dest).unwrap());
    let mut paths: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    paths.sort();
    paths
}

fn exclusion_tree(root: &Path) {
    for rel in [
        "server.properties",
        "logs/latest.log",
        "logs/keep.log",
        "logs/old/2024.log",
        "debug.log",
        "cache/a.jar",
        "plugins/cache/b.jar",
        "plugins/x/cache/c.jar",
        "world/region/r.0.0.mca",
        "world/session.lock",
        "x",
        "sub/x",
        "dir/file.txt",
        "dir/keep.txt",
        ".hidden",
        "notes.txt",
    ] {
        write(root, rel, rel.as_bytes());
    }
    write(root, ".gitignore", b"*\n");
}

#[test]
fn exclusion_patterns_follow_gitignore_semantics() {
    struct Case {
        name: &'static str,
        pteroignore: Option<&'static str>,
        request: &'static [&'static str],
        absent: &'static [&'static str],
        present: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "glob",
            pteroignore: None,
            request: &["*.log"],
            absent: &["logs/latest.log", "logs/old/2024.log", "debug.log"],
            present: &["logs", "server.properties"],
        },
        Case {
            name: "re-include",
            pteroignore: None,
            request: &["*.log", "!keep.log"],
            absent: &["logs/latest.log", "debug.log"],
            present: &["logs/keep.log"],
        },
        Case {
            name: "anchored",
            pteroignore: None,
            request: &["/x"],
            absent: &["x"],
            present: &["sub/x"],
        },
        Case {
            name: "unanchored name",
            pteroignore: None,
            request: &["x"],
            absent: &["x", "sub/x"],
            present: &["sub"],
        },
        Case {
            name: "directory",
            pteroignore: None,
            request: &["dir/"],
            absent: &["dir", "dir/file.txt", "dir/keep.txt"],
            present: &["notes.txt"],
        },
        Case {
            name: "double star dir",
            pteroignore: None,
            request: &["**/cache"],
            absent: &["cache", "plugins/cache", "plugins/x/cache/c.jar"],
            present: &["plugins/x"],
        },
        Case {
            name: "dir at any depth",
            pteroignore: None,
            request: &["cache/"],
            absent: &["cache/a.jar", "plugins/cache/b.jar", "plugins/x/cache"],
            present: &["plugins"],
        },
        Case {
            name: "anchored dir",
            pteroignore: None,
            request: &["/cache"],
            absent: &["cache"],
            present: &["plugins/cache/b.jar", "plugins/x/cache/c.jar"],
        },
        Case {
            name: "single star stays in its directory",
            pteroignore: None,
            request: &["logs/*.log"],
            absent: &["logs/latest.log", "logs/keep.log"],
            present: &["logs/old/2024.log"],
        },
        Case {
            name: "double star inside",
            pteroignore: None,
            request: &["logs/**/*.log"],
            absent: &["logs/latest.log", "logs/old/2024.log"],
            present: &["logs/old", "debug.log"],
        },
        Case {
            name: "comment",
            pteroignore: None,
            request: &["# *.log"],
            absent: &[],
            present: &["debug.log", "logs/latest.log"],
        },
        Case {
            name: "blank lines and CRLF",
            pteroignore: None,
            request: &["*.log\r\n\r\n  \r\ncache/\r\n"],
            absent: &["debug.log", "cache"],
            present: &["world"],
        },
        Case {
            name: "no re-include below an excluded dir",
            pteroignore: None,
            request: &["dir/", "!dir/keep.txt"],
            absent: &["dir", "dir/keep.txt"],
            present: &["x"],
        },
        Case {
            name: "re-include below a dir glob",
            pteroignore: None,
            request: &["dir/*", "!dir/keep.txt"],
            absent: &["dir/file.txt"],
            present: &["dir", "dir/keep.txt"],
        },
        Case {
            name: "pteroignore",
            pteroignore: Some("world/\n"),
            request: &[],
            absent: &["world"],
            present: &["x", ".pteroignore"],
        },
        Case {
            name: "request overrides pteroignore",
            pteroignore: Some("*.log\n"),
            request: &["!debug.log"],
            absent: &["logs/latest.log"],
            present: &["debug.log"],
        },
        Case {
            name: "request re-includes a pteroignore dir",
            pteroignore: Some("world/\n"),
            request: &["!world/"],
            absent: &[],
            present: &["world/region/r.0.0.mca"],
        },
        Case {
            name: "gitignore and hidden files do not matter",
            pteroignore: None,
            request: &[],
            absent: &[],
            present: &[".hidden", ".gitignore", "notes.txt"],
        },
        Case {
            name: "contents but not the dir",
            pteroignore: None,
            request: &["world/**"],
            absent: &["world/region", "world/session.lock"],
            present: &["world"],
        },
        Case {
            name: "extension",
            pteroignore: None,
            request: &["*.mca"],
            absent: &["world/region/r.0.0.mca"],
            present: &["world/region"],
        },
        Case {
            name: "trailing spaces trimmed",
            pteroignore: None,
            request: &["notes.txt   "],
            absent: &["notes.txt"],
            present: &["x"],
        },
        Case {
            name: "question mark",
            pteroignore: None,
            request: &["?otes.txt"],
            absent: &["notes.txt"],
            present: &["debug.log"],
        },
        Case {
            name: "character class",
            pteroignore: None,
            request: &["[dn]*.txt"],
            absent: &["notes.txt"],
            present: &["dir/file.txt", "dir/keep.txt"],
        },
        Case {
            name: "pteroignore comments and blanks",
            pteroignore: Some("# comment\n\n*.jar\r\n"),
            request: &[],
            absent: &["cache/a.jar", "plugins/cache/b.jar"],
            present: &["cache", "debug.log"],
        },
    ];
    assert!(cases.len() >= 20);
    for case in &cases {
        let root = tempfile::tempdir().unwrap();
        exclusion_tree(root.path());
        if let Some(text) = case.pteroignore {
            std::fs::write(root.path().join(".pteroignore"), text).unwrap();
        }
        let paths = archived_paths(root.path(), case.request);
        for p in case.absent {
            assert!(
                !paths.iter().any(|x| x == p),
                "{}: {p} should be excluded; got {paths:?}",
                case.name
            );
        }
        for p in case.present {
            assert!(
                paths.iter().any(|x| x == p),
                "{}: {p} should be archived; got {paths:?}",
                case.name
            );
        }
    }
}

#[test]
fn a_symlinked_or_oversized_pteroignore_is_not_used() {
    let root = tempfile::tempdir().unwrap();
    exclusion_tree(root.path());
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("rules"), "*.log\n").unwrap();
    std::os::unix::fs::symlink(
        elsewhere.path().join("rules"),
        root.path().join(".pteroignore"),
    )
    .unwrap();
    let paths = archived_paths(root.path(), &[]);
    assert!(
        paths.iter().any(|p| p == "debug.log"),
        "a symlinked .pteroignore was followed"
    );

    std::fs::remove_file(root.path().join(".pteroignore")).unwrap();
    let mut big = "*.log\n".to_string();
    big.push_str(&"# padding\n".repeat(4000));
    std::fs::write(root.path().join(".pteroignore"), big).unwrap();
    let paths = archived_paths(root.path(), &[]);
    assert!(
        paths.iter().any(|p| p == "debug.log"),
        "an oversized .pteroignore was used"
    );
}

/// The scan sizes a backup before it starts (space checks, progress): on its threads it
/// must count exactly what the single-threaded archive walk then writes.
#[test]
fn the_scan_counts_exactly_what_the_archive_holds() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    generated_tree(root);
    for d in 0..60 {
        for f in 0..(d % 7) {
            write(
                root,
                &format!("wide/d{d:03}/sub{}/f{f}.dat", d % 3),
                &noise(100 + d * 37 + f, d as u64),
            );
        }
    }
    write(root, "cache/skipped.jar", &noise(50_000, 3));
    std::os::unix::fs::symlink("../wide", root.join("wide/d001/loop")).unwrap();
    let fifo = std::ffi::CString::new(root.join("wide/pipe").as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let exclusions = Exclusions::new(root, &["cache/".to_string(), "*.log".to_string()]);
    let out = tempfile::tempdir().unwrap();
    let options = uncompressed();
    let written = archive::write(
        root,
        &exclusions,
        &out.path().join("a.tar"),
        &options,
        &Progress::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let one_thread = archive::scan(root, &exclusions, 1);
    for threads in [1, 2, 4] {
        let scan = archive::scan(root, &exclusions, threads);
        assert_eq!(
            (scan.files, scan.bytes),
            (written.content.files, written.content.bytes),
            "{threads} threads"
        );
        // The fingerprint does not depend on which thread saw which entry.
        assert_eq!(
            scan.fingerprint, one_thread.fingerprint,
            "{threads} threads"
        );
    }
    assert!(written.content.files > 200, "{:?}", written.content);
    assert!(written.warnings.iter().any(|w| w.contains("a FIFO")));
}

/// Open descriptors of this process on `path` after it was deleted.
fn open_deleted(path: &Path) -> usize {
    let deleted = format!("{} (deleted)", path.display());
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.as_os_str() == OsStr::new(&deleted))
        .count()
}

/// A backup that fails midway (here: cancelled while megabytes wait to be compressed) has
/// stopped all its threads when `write` returns, so the space of its partial file is free
/// at once, not when a detached writer gets round to closing it.
#[test]
fn a_failed_archive_holds_nothing_open_once_it_returns() {
    let src = tempfile::tempdir().unwrap();
    for f in 0..24 {
        write(src.path(), &format!("region/r.{f}.mca"), &noise(1 << 20, f));
    }
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("partial.tar.zst");
    // Slow compression keeps the queue between reading and compressing full.
    let options = Options {
        compression: Compression::Zstd,
        zstd_level: 19,
        threads: 2,
        ..uncompressed()
    };
    let progress = Progress::default();
    let cancel = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            while progress.bytes.load(std::sync::atomic::Ordering::Relaxed) < 6 << 20 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        archive::write(
            src.path(),
            &Exclusions::new(src.path(), &[]),
            &dest,
            &options,
            &progress,
            &cancel,
        )
    });
    assert!(
        matches!(result, Err(archive::Error::Cancelled(_))),
        "{result:?}"
    );
    assert!(!dest.exists());
    assert_eq!(open_deleted(&dest), 0, "the partial archive is still open");
}

/// Blocks are compressed on several threads and finish out of order (a block of noise takes
/// far longer than one of repeated bytes), yet the archive holds the tar stream in order,
/// as one stream the system's tools read, hashed and counted as written.
#[test]
fn blocks_compressed_on_many_threads_are_written_in_order() {
    let src = tempfile::tempdir().unwrap();
    for f in 0..12u64 {
        let body = if f % 2 == 0 {
            noise(3 << 20, f)
        } else {
            vec![b'x'; 3 << 20]
        };
        write(src.path(), &format!("data/f{f:02}.bin"), &body);
    }
    let expected = snapshot(src.path());
    for (compression, name) in [
        (Compression::Zstd, "zstd"),
        (Compression::Gzip, "gzip"),
        (Compression::None, "none"),
    ] {
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("archive");
        let options = Options {
            compression,
            threads: 4,
            ..uncompressed()
        };
        let written = archive::write(
            src.path(),
            &Exclusions::new(src.path(), &[]),
            &dest,
            &options,
            &Progress::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(sha256_file(&dest), written.sha256, "{name}: hash");
        assert_eq!(
            std::fs::metadata(&dest).unwrap().len(),
            written.bytes,
            "{name}: size"
        );
        let into = out.path().join("extracted");
        extract_with_system_tar(&dest, name, &into);
        assert_eq!(snapshot(&into), expected, "{name}");
    }
}
