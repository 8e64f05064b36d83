//! Signed download links: reusable, resumable, refused when altered or stale, and streamed
//! with constant memory.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn link(api: &Api, server: &str, backup: &str) -> String {
    let r = api.get(&format!(
        "/api/client/servers/{server}/backups/{backup}/download"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["object"], "signed_url");
    body["attributes"]["url"].as_str().unwrap().to_string()
}

/// The link with one query parameter replaced.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|p| {
            if p.starts_with(&format!("{name}=")) {
                format!("{name}={value}")
            } else {
                p.to_string()
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn param<'a>(url: &'a str, name: &str) -> &'a str {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
}

#[test]
fn links_download_resume_and_describe_the_file() {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "world.bin", &noise(3 << 20, 1));
    let server = hoard.add_server("Survival World", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let b = api.backup_and_wait(&server, r#"{"name":"Before the 1.21 update!"}"#);
    let hash = b["sha256_hash"].as_str().unwrap();
    let size = b["bytes"].as_u64().unwrap();
    let url = link(&api, &server, b["uuid"].as_str().unwrap());
    assert!(url.starts_with(&hoard.base), "{url}");
    let anon = hoard.anon();
    // Every request makes a new link, even within the same second; each works.
    let again = link(&api, &server, b["uuid"].as_str().unwrap());
    assert_ne!(again, url);
    assert_eq!(anon.get(&again).status, 200);

    let first = anon.get(&url);
    let second = anon.get(&url);
    assert_eq!(first.status, 200);
    assert_eq!(first.body, second.body, "reusable until it expires");
    assert_eq!(sha256_hex(&first.body), hash);
    assert_eq!(first.body.len() as u64, size);
    assert_eq!(
        first.header("content-length"),
        Some(size.to_string().as_str())
    );
    assert_eq!(first.header("content-type"), Some("application/zstd"));
    assert_eq!(first.header("etag"), Some(format!("\"{hash}\"").as_str()));
    assert_eq!(first.header("accept-ranges"), Some("bytes"));
    assert_eq!(first.header("cache-control"), Some("private, no-store"));
    assert_eq!(first.header("referrer-policy"), Some("no-referrer"));
    let disposition = first.header("content-disposition").unwrap();
    let created = b["created_at"].as_str().unwrap().replace(['-', ':'], "");
    let stamp = format!("{}-{}", &created[..8], &created[9..15]);
    assert_eq!(
        disposition,
        format!("attachment; filename=\"{server}-before-the-1-21-update-{stamp}.tar.zst\"")
    );

    // A download cut at N and resumed from N reassembles the same file.
    let cut = 1_234_567usize;
    let rest = anon.request("GET", &url, None, &[("Range", &format!("bytes={cut}-"))]);
    assert_eq!(rest.status, 206);
    assert_eq!(
        rest.header("content-range"),
        Some(format!("bytes {cut}-{}/{size}", size - 1).as_str())
    );
    let mut joined = first.body[..cut].to_vec();
    joined.extend_from_slice(&rest.body);
    assert_eq!(sha256_hex(&joined), hash);
    let middle = anon.request("GET", &url, None, &[("Range", "bytes=10-19")]);
    assert_eq!(middle.status, 206);
    assert_eq!(middle.body, first.body[10..20]);
    let tail = anon.request("GET", &url, None, &[("Range", "bytes=-100")]);
    assert_eq!(tail.body, first.body[first.body.len() - 100..]);
    // If-Range with another file's tag gets the whole (current) file.
    let other = anon.request(
        "GET",
        &url,
        None,
        &[("Range", "bytes=0-9"), ("If-Range", "\"something-else\"")],
    );
    assert_eq!(other.status, 200);
    assert_eq!(other.body.len() as u64, size);
    let same = anon.request(
        "GET",
        &url,
        None,
        &[("Range", "bytes=0-9"), ("If-Range", &format!("\"{hash}\""))],
    );
    assert_eq!(same.status, 206);
    let past = anon.request("GET", &url, None, &[("Range", &format!("bytes={size}-"))]);
    past.assert_error(416, "RangeNotSatisfiableException");
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );

    let head = anon.request("HEAD", &url, None, &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(size.to_string().as_str())
    );
    assert_eq!(head.header("etag"), first.header("etag"));

    // The signature never reaches the log; each link asked for is in the activity log.
    assert!(!hoard.log().contains(param(&url, "signature")));
    assert_eq!(hoard.activity_count("server:backup.download"), 2);
}

#[test]
fn altered_expired_and_revoked_links_are_refused() {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", b"a");
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    hoard.add_user("sub", false);
    let grant = |permissions: &str| hoard.add_subuser(&server, "sub", permissions);
    grant("backup.read,backup.download");
    let admin = hoard.api(&hoard.key("admin"));
    let sub = hoard.api(&hoard.key("sub"));
    let b1 = admin.backup_and_wait(&server, "{}")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let b2 = admin.backup_and_wait(&server, "{}")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let url = link(&sub, &server, &b1);
    let anon = hoard.anon();
    assert_eq!(anon.get(&url).status, 200);

    let sig = param(&url, "signature");
    let flipped = format!(
        "{}{}",
        &sig[..sig.len() - 1],
        if sig.ends_with('0') { '1' } else { '0' }
    );
    let expires: i64 = param(&url, "expires").parse().unwrap();
    let admin_uuid = admin.get("/api/client/account").json()["attributes"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let altered = [
        with_param(&url, "signature", &flipped),
        with_param(&url, "expires", &(expires + 3600).to_string()),
        url.replace(&b1, &b2),
        with_param(&url, "user", &admin_uuid),
        with_param(&url, "signature", "zz"),
        with_param(&url, "nonce", "0123456789abcdef0123456789abcdef"),
        with_param(&url, "expires", "soon"),
        url.split('?').next().unwrap().to_string(),
    ];
    for bad in &altered {
        anon.get(bad).assert_error(403, "InvalidSignatureException");
    }
    // The subuser loses the permission: the link stops working.
    grant("backup.read");
    anon.get(&url)
        .assert_error(403, "InvalidSignatureException");
    grant("backup.read,backup.download");
    assert_eq!(anon.get(&url).status, 200);
    // A deleted backup is not found; a deleted user's links are refused.
    let url2 = link(&admin, &server, &b2);
    assert_eq!(
        admin
            .delete(&format!("/api/client/servers/{server}/backups/{b2}"))
            .status,
        204
    );
    anon.get(&url2).assert_error(404, "NotFoundHttpException");
    hoard.cli_ok(&["user", "remove", "sub"]);
    anon.get(&url)
        .assert_error(403, "InvalidSignatureException");
    // Downloads of unfinished or failed backups are refused when the link is asked for.
    hoard.cli_ok(&["server", "update", &server, "--pre-backup", "exit 3"]);
    let failed = admin.backup_and_wait(&server, "{}")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .get(&format!(
            "/api/client/servers/{server}/backups/{failed}/download"
        ))
        .assert_error(400, "BackupFailedException");
}

#[test]
fn links_expire() {
    let hoard = Hoard::start(&["--throttle-backups", "0", "--download-link-ttl-secs", "1"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", b"a");
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let b = api.backup_and_wait(&server, "{}")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let url = link(&api, &server, &b);
    std::thread::sleep(Duration::from_millis(2200));
    let r = hoard.anon().get(&url);
    r.assert_error(403, "InvalidSignatureException");
    assert!(r.detail().contains("expired"));
}

#[test]
fn a_one_gib_download_uses_constant_memory() {
    let hoard = Hoard::start(&["--throttle-backups", "0", "--compression", "none"]);
    let dir = tempfile::tempdir().unwrap();
    let big = std::fs::File::create(dir.path().join("world.bin")).unwrap();
    big.set_len(1 << 30).unwrap();
    drop(big);
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let b = api.backup_and_wait(&server, "{}");
    assert_eq!(b["status"], "completed");
    assert!(b["bytes"].as_u64().unwrap() > 1 << 30);
    let url = link(&api, &server, b["uuid"].as_str().unwrap());

    let pid = hoard.pid();
    let before = rss_kib(pid);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    // Stream the body through a hasher without holding it.
    let started = Instant::now();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("curl -sf '{url}' | sha256sum"))
        .output()
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak = watcher.join().unwrap();
    let digest = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        digest.split_whitespace().next(),
        b["sha256_hash"].as_str(),
        "after {:?}",
        started.elapsed()
    );
    let growth_mib = (peak.saturating_sub(before)) / 1024;
    assert!(
        growth_mib < 32,
        "resident memory grew by {growth_mib} MiB during a 1 GiB download"
    );
}
