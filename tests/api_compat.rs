//! Compatibility with clients written against Pterodactyl and Pelican: request bodies as
//! Laravel reads them (loose booleans, form-encoded bodies), the create throttle after a
//! delete, Pelican's rename, the permission list, and `api_compat = "pterodactyl"`.

mod common;

use common::*;
use serde_json::Value;

fn setup(args: &[&str], files: &[(&str, Vec<u8>)]) -> (Hoard, tempfile::TempDir, String, Api) {
    let hoard = Hoard::start(args);
    let dir = tempfile::tempdir().unwrap();
    for (rel, data) in files {
        write(dir.path(), rel, data);
    }
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    (hoard, dir, server, api)
}

fn backups(server: &str) -> String {
    format!("/api/client/servers/{server}/backups")
}

/// Sends a form-encoded body; returns the status and the JSON body.
fn send_form(hoard: &Hoard, token: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = raw_request(&hoard.base, request.as_bytes());
    let (_, json) = text.split_once("\r\n\r\n").expect("a response with a body");
    (status, serde_json::from_str(json).expect("a JSON body"))
}

#[test]
fn booleans_in_bodies_are_read_as_laravel_reads_them() {
    let (_hoard, _dir, server, api) =
        setup(&["--throttle-backups", "0"], &[("a.txt", b"a".to_vec())]);
    for (given, locked) in [
        ("1", true),
        ("\"1\"", true),
        ("\"true\"", true),
        ("\"0\"", false),
        ("0", false),
    ] {
        let r = api.post(&backups(&server), &format!(r#"{{"is_locked": {given}}}"#));
        assert_eq!(r.status, 200, "{given}: {}", r.text());
        assert_eq!(r.json()["attributes"]["is_locked"], locked, "{given}");
        let uuid = r.json()["attributes"]["uuid"].as_str().unwrap().to_string();
        assert_eq!(api.wait_backup(&server, &uuid)["status"], "completed");
    }
    let done = api.backup_and_wait(&server, "{}");
    let uuid = done["uuid"].as_str().unwrap();
    let r = api.post(
        &format!("{}/{uuid}/restore", backups(&server)),
        r#"{"truncate": "0"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    api.wait_restore(&server);

    let r = api.post(&backups(&server), r#"{"is_locked": "yes"}"#);
    r.assert_error(422, "ValidationException");
    assert_eq!(r.json()["errors"][0]["meta"]["source_field"], "is_locked");
    api.post(&backups(&server), r#"{"is_locked": 2}"#)
        .assert_error(422, "ValidationException");
}

#[test]
fn a_form_encoded_body_is_read_like_a_json_one() {
    let (hoard, _dir, server, api) = setup(
        &["--throttle-backups", "0"],
        &[("a.txt", b"a".to_vec()), ("b.log", b"b".to_vec())],
    );
    let token = api.token.clone().unwrap();
    let (status, body) = send_form(
        &hoard,
        &token,
        "POST",
        &backups(&server),
        "name=From+a+form&is_locked=1&ignored=*.log%0Acache",
    );
    assert_eq!(status, 200, "{body}");
    let b = &body["attributes"];
    assert_eq!(b["name"], "From a form");
    assert_eq!(b["is_locked"], true);
    assert_eq!(b["ignored_files"], serde_json::json!(["*.log", "cache"]));
    api.wait_backup(&server, b["uuid"].as_str().unwrap());

    // Integers come as numeric strings in a form.
    let (status, body) = send_form(
        &hoard,
        &token,
        "PATCH",
        &format!("/api/application/servers/{server}"),
        "backup_limit=5",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attributes"]["backup_limit"], 5);
    let (status, body) = send_form(
        &hoard,
        &token,
        "PATCH",
        &format!("/api/application/servers/{server}"),
        "backup_limit=five",
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["meta"]["source_field"], "backup_limit");
}

#[test]
fn the_throttle_counts_backups_deleted_since_they_started() {
    let (_hoard, _dir, server, api) = setup(
        &["--throttle-backups", "2", "--throttle-window-secs", "600"],
        &[("a.txt", b"a".to_vec())],
    );
    let first = api.backup_and_wait(&server, "{}");
    api.backup_and_wait(&server, "{}");
    let r = api.delete(&format!(
        "{}/{}",
        backups(&server),
        first["uuid"].as_str().unwrap()
    ));
    assert_eq!(r.status, 204, "{}", r.text());
    let r = api.post(&backups(&server), "{}");
    r.assert_error(429, "TooManyRequestsException");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((590..=600).contains(&retry), "Retry-After {retry}");
}

#[test]
fn a_failed_backup_does_not_count_against_the_throttle_even_once_deleted() {
    let (hoard, _dir, server, api) = setup(
        &["--throttle-backups", "1", "--throttle-window-secs", "600"],
        &[("a.txt", b"a".to_vec())],
    );
    hoard.cli_ok(&["server", "update", &server, "--pre-backup", "exit 1"]);
    let failed = api.backup_and_wait(&server, "{}");
    assert_eq!(failed["status"], "failed");
    let r = api.delete(&format!(
        "{}/{}",
        backups(&server),
        failed["uuid"].as_str().unwrap()
    ));
    assert_eq!(r.status, 204, "{}", r.text());
    hoard.cli_ok(&["server", "update", &server, "--pre-backup", ""]);
    assert_eq!(api.backup_and_wait(&server, "{}")["status"], "completed");
    api.post(&backups(&server), "{}")
        .assert_error(429, "TooManyRequestsException");
}

#[test]
fn rename_changes_the_name_locked_or_not_and_its_manifest() {
    let (hoard, _dir, server, api) =
        setup(&["--throttle-backups", "0"], &[("a.txt", b"a".to_vec())]);
    let b = api.backup_and_wait(&server, r#"{"name": "before", "is_locked": true}"#);
    let uuid = b["uuid"].as_str().unwrap();
    let path = format!("{}/{uuid}/rename", backups(&server));
    let r = api.request("PUT", &path, Some(r#"{"name": "  after  "}"#), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "backup");
    assert_eq!(r.json()["attributes"]["name"], "after");
    assert_eq!(r.json()["attributes"]["is_locked"], true);
    let shown = api.get(&format!("{}/{uuid}", backups(&server))).json();
    assert_eq!(shown["attributes"]["name"], "after");

    let server_uuid =
        api.get(&format!("/api/client/servers/{server}")).json()["attributes"]["uuid"]
            .as_str()
            .unwrap()
            .to_string();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            hoard
                .data
                .path()
                .join("backups")
                .join(&server_uuid)
                .join(format!("{uuid}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["name"], "after");
    assert_eq!(hoard.activity_count("server:backup.rename"), 1);

    for body in [
        r#"{"name": "   "}"#,
        "{}",
        &format!(r#"{{"name": "{}"}}"#, "x".repeat(192)),
    ] {
        let r = api.request("PUT", &path, Some(body), &[]);
        r.assert_error(422, "ValidationException");
        assert_eq!(r.json()["errors"][0]["meta"]["source_field"], "name");
    }
    api.request("POST", &path, Some("{}"), &[])
        .assert_error(405, "MethodNotAllowedHttpException");

    // Renaming needs backup.delete.
    hoard.add_user("reader", false);
    hoard.add_subuser(&server, "reader", "backup.read");
    let reader = hoard.api(&hoard.key("reader"));
    reader
        .request("PUT", &path, Some(r#"{"name": "mine"}"#), &[])
        .assert_error(403, "InsufficientPermissionsException");
}

#[test]
fn the_permission_list_has_pterodactyls_shape() {
    let hoard = Hoard::start(&[]);
    hoard.add_user("olivia", false);
    let r = hoard
        .api(&hoard.key("olivia"))
        .get("/api/client/permissions");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["object"], "system_permissions");
    let groups = &body["attributes"]["permissions"];
    let keys = |group: &str| -> Vec<String> {
        let mut keys: Vec<String> = groups[group]["keys"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys("backup"),
        ["create", "delete", "download", "read", "restore"]
    );
    assert_eq!(keys("schedule"), ["create", "delete", "read", "update"]);
    for group in ["backup", "schedule"] {
        assert!(
            groups[group]["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        for (_, description) in groups[group]["keys"].as_object().unwrap() {
            assert!(description.as_str().is_some_and(|d| !d.is_empty()));
        }
    }
    hoard
        .anon()
        .get("/api/client/permissions")
        .assert_error(401, "InvalidCredentialsException");
}

/// A backup that fails: larger than the server's size limit.
fn failing_setup(args: &[&str]) -> (Hoard, tempfile::TempDir, String, Api) {
    let (hoard, dir, server, api) = setup(args, &[("big.bin", noise(2 << 20, 3))]);
    hoard.cli_ok(&["server", "update", &server, "--max-backup-bytes", "100000"]);
    (hoard, dir, server, api)
}

#[test]
fn api_compat_pterodactyl_answers_as_a_real_panel_does() {
    let (hoard, _dir, server, api) =
        failing_setup(&["--throttle-backups", "0", "--api-compat", "pterodactyl"]);

    // is_successful is false, not null, while creating; a failed backup has completed_at.
    let r = api.post(&backups(&server), "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["attributes"]["status"], "creating");
    assert_eq!(r.json()["attributes"]["is_successful"], false);
    let failed = api.wait_backup(&server, r.json()["attributes"]["uuid"].as_str().unwrap());
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["is_successful"], false);
    assert!(failed["completed_at"].is_string(), "{failed}");

    hoard.cli_ok(&[
        "server",
        "update",
        &server,
        "--max-backup-bytes",
        "100000000",
    ]);
    let done = api.backup_and_wait(&server, "{}");
    let uuid = done["uuid"].as_str().unwrap();

    // Lock answers 200 with the backup.
    let r = api.post(&format!("{}/{uuid}/lock", backups(&server)), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "backup");
    assert_eq!(r.json()["attributes"]["uuid"], uuid);
    assert_eq!(r.json()["attributes"]["is_locked"], true);
    let r = api.post(&format!("{}/{uuid}/lock", backups(&server)), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["attributes"]["is_locked"], false);

    // Restore answers 204.
    let r = api.post(&format!("{}/{uuid}/restore", backups(&server)), "{}");
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    api.wait_restore(&server);
}

#[test]
fn by_default_the_api_answers_as_the_reference_says() {
    let (hoard, _dir, server, api) = failing_setup(&["--throttle-backups", "0"]);
    let r = api.post(&backups(&server), "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["attributes"]["is_successful"].is_null());
    let failed = api.wait_backup(&server, r.json()["attributes"]["uuid"].as_str().unwrap());
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["is_successful"], false);
    assert!(failed["completed_at"].is_null(), "{failed}");

    hoard.cli_ok(&[
        "server",
        "update",
        &server,
        "--max-backup-bytes",
        "100000000",
    ]);
    let done = api.backup_and_wait(&server, "{}");
    let uuid = done["uuid"].as_str().unwrap();
    let r = api.post(&format!("{}/{uuid}/lock", backups(&server)), "");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = api.post(&format!("{}/{uuid}/restore", backups(&server)), "{}");
    assert_eq!(r.status, 202, "{}", r.text());
    api.wait_restore(&server);
}

#[test]
fn api_compat_is_read_from_the_environment_and_the_file() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("hoard.toml"),
        "api_compat = \"pterodactyl\"\n",
    )
    .unwrap();
    let hoard = Hoard::start_in(data, &["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", b"a");
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let r = api.post(&backups(&server), "{}");
    assert_eq!(r.json()["attributes"]["is_successful"], false);

    let out = std::process::Command::new(bin())
        .args(["serve", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .env("HOARD_API_COMPAT", "panel")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hoard") && stderr.contains("pterodactyl"),
        "{stderr}"
    );
}
