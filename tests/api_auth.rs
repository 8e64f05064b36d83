//! Who may call what: the authorization matrix over every route, error bodies, and a
//! fuzz-style sweep of malformed input.

mod common;

use common::*;
use serde_json::Value;

struct World {
    hoard: Hoard,
    server: String,
    _dir: tempfile::TempDir,
    admin: String,
    owner: String,
    stranger: String,
    nobody: String,
    /// Subusers holding exactly one permission, by permission name.
    holders: Vec<(&'static str, String)>,
}

const PERMS: [&str; 5] = [
    "backup.read",
    "backup.create",
    "backup.download",
    "backup.delete",
    "backup.restore",
];

fn world() -> World {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "server.properties", b"motd=hi\n");
    write(dir.path(), "world/level.dat", &noise(2000, 1));
    for user in ["olivia", "mallory", "nobody"] {
        hoard.add_user(user, false);
    }
    let server = hoard.add_server("mc", dir.path(), "olivia", &["--backup-limit", "100"]);
    hoard.add_subuser(&server, "nobody", "");
    let mut holders = Vec::new();
    for perm in PERMS {
        let name = perm.replace('.', "-");
        hoard.add_user(&name, false);
        hoard.add_subuser(&server, &name, perm);
        holders.push((perm, hoard.key(&name)));
    }
    World {
        admin: hoard.key("admin"),
        owner: hoard.key("olivia"),
        stranger: hoard.key("mallory"),
        nobody: hoard.key("nobody"),
        server,
        holders,
        _dir: dir,
        hoard,
    }
}

impl World {
    fn holder(&self, perm: &str) -> &str {
        &self.holders.iter().find(|(p, _)| *p == perm).unwrap().1
    }

    fn backup(&self) -> String {
        let b = self
            .hoard
            .api(&self.admin)
            .backup_and_wait(&self.server, "{}");
        assert_eq!(b["status"], "completed", "{b}");
        b["uuid"].as_str().unwrap().to_string()
    }
}

fn call(w: &World, token: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Reply {
    let api = Api::new(&w.hoard.base, token.map(str::to_string));
    api.request(method, path, body, &[])
}

fn expect(r: &Reply, ok: bool, denied: (u16, &str), what: &str) {
    if ok {
        assert!(
            (200..300).contains(&r.status),
            "{what}: expected success, got {} {}",
            r.status,
            r.text()
        );
    } else {
        assert_eq!(r.status, denied.0, "{what}: {}", r.text());
        r.assert_error(denied.0, denied.1);
    }
}

#[test]
fn credentials_are_required_and_checked_on_every_route() {
    let w = world();
    let s = &w.server;
    let b = w.backup();
    let revoked = w.hoard.key("olivia");
    let identifier = &revoked[..16];
    w.hoard
        .cli_ok(&["key", "revoke", identifier, "--user", "olivia"]);
    let routes: Vec<(&str, String)> = vec![
        ("GET", "/api/client".into()),
        ("GET", "/api/client/account".into()),
        ("GET", "/api/client/account/api-keys".into()),
        ("POST", "/api/client/account/api-keys".into()),
        (
            "DELETE",
            "/api/client/account/api-keys/ptlc_AAAAAAAAAAA".into(),
        ),
        ("PUT", "/api/client/account/password".into()),
        ("GET", format!("/api/client/servers/{s}")),
        ("GET", format!("/api/client/servers/{s}/backups")),
        ("POST", format!("/api/client/servers/{s}/backups")),
        ("GET", format!("/api/client/servers/{s}/backups/{b}")),
        ("DELETE", format!("/api/client/servers/{s}/backups/{b}")),
        (
            "GET",
            format!("/api/client/servers/{s}/backups/{b}/download"),
        ),
        (
            "POST",
            format!("/api/client/servers/{s}/backups/{b}/restore"),
        ),
        ("POST", format!("/api/client/servers/{s}/backups/{b}/lock")),
        ("GET", format!("/api/client/servers/{s}/users")),
        ("POST", format!("/api/client/servers/{s}/users")),
        ("GET", "/api/application/servers".to_string()),
        ("POST", "/api/application/servers".to_string()),
        ("GET", format!("/api/application/servers/{s}")),
        ("PATCH", format!("/api/application/servers/{s}")),
        ("DELETE", format!("/api/application/servers/{s}")),
        ("GET", "/api/application/users".into()),
        ("POST", "/api/application/users".into()),
        ("POST", "/auth/logout".into()),
    ];
    let malformed = "ptlc_short";
    let unknown = format!("ptlc_{}", "A".repeat(43));
    for (method, path) in &routes {
        for token in [
            None,
            Some(malformed),
            Some(unknown.as_str()),
            Some(revoked.as_str()),
        ] {
            let r = call(&w, token, method, path, Some("{}"));
            r.assert_error(401, "InvalidCredentialsException");
        }
        let r = Api::new(&w.hoard.base, None).request(
            method,
            path,
            Some("{}"),
            &[("Authorization", "Basic YWRtaW46eA==")],
        );
        r.assert_error(401, "InvalidCredentialsException");
    }
    // Nothing was deleted or changed by any of those.
    assert_eq!(
        w.hoard
            .api(&w.admin)
            .get(&format!("/api/client/servers/{s}/backups/{b}"))
            .status,
        200
    );
}

#[test]
fn backup_routes_follow_the_permission_matrix() {
    let w = world();
    let s = w.server.clone();
    let api = |t: &str| w.hoard.api(t);
    let not_visible = (404, "NotFoundHttpException");
    let forbidden = (403, "InsufficientPermissionsException");

    // Server and backup reads.
    let b = w.backup();
    let reads = |who: &str, token: &str, sees_server: bool, reads_backups: bool, refused| {
        let server = api(token).get(&format!("/api/client/servers/{s}"));
        expect(&server, sees_server, not_visible, &format!("{who} server"));
        let list = api(token).get(&format!("/api/client/servers/{s}/backups"));
        expect(&list, reads_backups, refused, &format!("{who} list"));
        let show = api(token).get(&format!("/api/client/servers/{s}/backups/{b}"));
        expect(&show, reads_backups, refused, &format!("{who} show"));
    };
    reads("admin", &w.admin, true, true, forbidden);
    reads("owner", &w.owner, true, true, forbidden);
    reads("reader", w.holder("backup.read"), true, true, forbidden);
    reads("stranger", &w.stranger, false, false, not_visible);
    reads("nobody", &w.nobody, true, false, forbidden);
    // The stranger's list of servers does not include it.
    assert!(
        api(&w.stranger).get("/api/client").json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Create.
    let create = |t: &str| api(t).post(&format!("/api/client/servers/{s}/backups"), "{}");
    expect(&create(&w.stranger), false, not_visible, "stranger create");
    expect(&create(&w.nobody), false, forbidden, "nobody create");
    expect(
        &create(w.holder("backup.read")),
        false,
        forbidden,
        "reader create",
    );
    for (who, token) in [
        ("admin", &w.admin),
        ("owner", &w.owner),
        ("creator", &w.holder("backup.create").to_string()),
    ] {
        let r = create(token);
        expect(&r, true, forbidden, who);
        api(&w.admin).wait_backup(&s, r.json()["attributes"]["uuid"].as_str().unwrap());
    }
    // A locked backup needs backup.delete as well.
    let r = api(w.holder("backup.create")).post(
        &format!("/api/client/servers/{s}/backups"),
        r#"{"is_locked":true}"#,
    );
    r.assert_error(403, "InsufficientPermissionsException");

    // Download links.
    let link = |t: &str| api(t).get(&format!("/api/client/servers/{s}/backups/{b}/download"));
    expect(&link(&w.stranger), false, not_visible, "stranger download");
    expect(&link(&w.nobody), false, forbidden, "nobody download");
    expect(
        &link(w.holder("backup.read")),
        false,
        forbidden,
        "reader download",
    );
    for token in [&w.admin, &w.owner, &w.holder("backup.download").to_string()] {
        let r = link(token);
        expect(&r, true, forbidden, "download");
        assert_eq!(r.json()["object"], "signed_url");
    }

    // Lock (toggles; backup.delete).
    let lock = |t: &str| api(t).post(&format!("/api/client/servers/{s}/backups/{b}/lock"), "");
    expect(&lock(&w.stranger), false, not_visible, "stranger lock");
    expect(&lock(&w.nobody), false, forbidden, "nobody lock");
    expect(
        &lock(w.holder("backup.read")),
        false,
        forbidden,
        "reader lock",
    );
    for token in [&w.admin, &w.owner, &w.holder("backup.delete").to_string()] {
        assert_eq!(lock(token).status, 204);
    }
    // Three toggles: locked now; unlock for the rest.
    assert_eq!(
        api(&w.admin)
            .get(&format!("/api/client/servers/{s}/backups/{b}"))
            .json()["attributes"]["is_locked"],
        true
    );
    assert_eq!(lock(&w.admin).status, 204);

    // Restore (backup.restore).
    let restore = |t: &str| {
        api(t).post(
            &format!("/api/client/servers/{s}/backups/{b}/restore"),
            r#"{"truncate":true}"#,
        )
    };
    expect(
        &restore(&w.stranger),
        false,
        not_visible,
        "stranger restore",
    );
    expect(&restore(&w.nobody), false, forbidden, "nobody restore");
    expect(
        &restore(w.holder("backup.read")),
        false,
        forbidden,
        "reader restore",
    );
    for token in [&w.admin, &w.owner, &w.holder("backup.restore").to_string()] {
        let r = restore(token);
        assert_eq!(r.status, 202, "{}", r.text());
        assert!(r.body.is_empty());
        api(&w.admin).wait_restore(&s);
    }

    // Delete (backup.delete): one fresh backup per allowed caller.
    let delete = |t: &str, b: &str| api(t).delete(&format!("/api/client/servers/{s}/backups/{b}"));
    expect(
        &delete(&w.stranger, &b),
        false,
        not_visible,
        "stranger delete",
    );
    expect(&delete(&w.nobody, &b), false, forbidden, "nobody delete");
    expect(
        &delete(w.holder("backup.read"), &b),
        false,
        forbidden,
        "reader delete",
    );
    for token in [&w.admin, &w.owner, &w.holder("backup.delete").to_string()] {
        let fresh = w.backup();
        assert_eq!(delete(token, &fresh).status, 204);
        assert_eq!(
            api(&w.admin)
                .get(&format!("/api/client/servers/{s}/backups/{fresh}"))
                .status,
            404
        );
    }
    // A backup of another server is not found through this one.
    let other_dir = tempfile::tempdir().unwrap();
    write(other_dir.path(), "x", b"x");
    let other = w.hoard.add_server("other", other_dir.path(), "olivia", &[]);
    let r = api(&w.owner).get(&format!("/api/client/servers/{other}/backups/{b}"));
    r.assert_error(404, "NotFoundHttpException");
}

#[test]
fn subuser_and_admin_routes_need_ownership_or_admin() {
    let w = world();
    let s = &w.server;
    let api = |t: &str| w.hoard.api(t);
    let users = format!("/api/client/servers/{s}/users");
    api(&w.stranger)
        .get(&users)
        .assert_error(404, "NotFoundHttpException");
    api(w.holder("backup.read"))
        .get(&users)
        .assert_error(403, "InsufficientPermissionsException");
    api(w.holder("backup.read"))
        .post(
            &users,
            r#"{"username":"mallory","permissions":["backup.read"]}"#,
        )
        .assert_error(403, "InsufficientPermissionsException");
    for token in [&w.owner, &w.admin] {
        let r = api(token).get(&users);
        assert_eq!(r.status, 200);
        let listed = r.json();
        assert_eq!(listed["data"].as_array().unwrap().len(), 6);
        assert_eq!(listed["meta"]["pagination"]["total"], 6, "{listed}");
    }
    let added = api(&w.owner).post(
        &users,
        r#"{"username":"mallory","permissions":["backup.read"]}"#,
    );
    assert_eq!(added.status, 200, "{}", added.text());
    let mallory = added.json()["attributes"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(added.json()["object"], "server_subuser");
    assert_eq!(
        api(&w.stranger)
            .get(&format!("/api/client/servers/{s}/backups"))
            .status,
        200,
        "mallory can read now"
    );
    let one = format!("{users}/{mallory}");
    assert_eq!(
        api(&w.owner).get(&one).json()["attributes"]["permissions"],
        serde_json::json!(["backup.read"])
    );
    let updated = api(&w.admin).post(&one, r#"{"permissions":["backup.read","backup.download"]}"#);
    assert_eq!(updated.status, 200);
    assert_eq!(
        updated.json()["attributes"]["permissions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    api(w.holder("backup.read"))
        .delete(&one)
        .assert_error(403, "InsufficientPermissionsException");
    assert_eq!(api(&w.owner).delete(&one).status, 204);
    api(&w.stranger)
        .get(&format!("/api/client/servers/{s}"))
        .assert_error(404, "NotFoundHttpException");

    // Administration: admins only.
    for path in ["/api/application/servers", "/api/application/users"] {
        api(&w.owner)
            .get(path)
            .assert_error(403, "InsufficientPermissionsException");
        assert_eq!(api(&w.admin).get(path).status, 200);
    }
    api(&w.owner)
        .patch(
            &format!("/api/application/servers/{s}"),
            r#"{"backup_limit":1}"#,
        )
        .assert_error(403, "InsufficientPermissionsException");
    api(&w.owner)
        .delete(&format!("/api/application/servers/{s}"))
        .assert_error(403, "InsufficientPermissionsException");
    let patched = api(&w.admin).patch(
        &format!("/api/application/servers/{s}"),
        r#"{"backup_limit":7}"#,
    );
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["attributes"]["backup_limit"], 7);
}

fn login(w: &World, user: &str, password: &str) -> (String, String) {
    let r = w.hoard.anon().post(
        "/auth/login",
        &format!(r#"{{"username":"{user}","password":"{password}"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie_header = r.header("set-cookie").unwrap().to_string();
    assert!(
        cookie_header.contains("HttpOnly") && cookie_header.contains("SameSite=Strict"),
        "{cookie_header}"
    );
    let cookie = cookie_header.split(';').next().unwrap().to_string();
    (
        cookie,
        r.json()["meta"]["csrf_token"].as_str().unwrap().to_string(),
    )
}

#[test]
fn cookie_sessions_need_the_csrf_token_to_change_anything() {
    let w = world();
    let s = &w.server;
    let (cookie, csrf) = login(&w, "olivia", "olivia-password-1");
    let browser = Api::new(&w.hoard.base, None).with_header("Cookie", &cookie);
    // Reads work with the cookie alone, and the account shows the token.
    assert_eq!(
        browser
            .get(&format!("/api/client/servers/{s}/backups"))
            .status,
        200
    );
    assert_eq!(
        browser.get("/api/client/account").json()["meta"]["csrf_token"],
        csrf.as_str()
    );
    let b = w.backup();
    let mutations: Vec<(&str, String, &str)> = vec![
        ("POST", format!("/api/client/servers/{s}/backups"), "{}"),
        ("DELETE", format!("/api/client/servers/{s}/backups/{b}"), ""),
        (
            "POST",
            format!("/api/client/servers/{s}/backups/{b}/lock"),
            "",
        ),
        (
            "POST",
            format!("/api/client/servers/{s}/backups/{b}/restore"),
            "{}",
        ),
        ("POST", "/api/client/account/api-keys".into(), "{}"),
        ("PUT", "/api/client/account/password".into(), "{}"),
        ("POST", format!("/api/client/servers/{s}/users"), "{}"),
        ("POST", "/auth/logout".into(), ""),
    ];
    for (method, path, body) in &mutations {
        browser
            .request(method, path, Some(body), &[])
            .assert_error(403, "InsufficientPermissionsException");
        browser
            .request(
                method,
                path,
                Some(body),
                &[("X-CSRF-Token", "not-the-token")],
            )
            .assert_error(403, "InsufficientPermissionsException");
    }
    assert_eq!(
        browser
            .get(&format!("/api/client/servers/{s}/backups"))
            .json()["meta"]["backup_count"],
        1
    );
    // With the token, it works.
    let lock = browser.request(
        "POST",
        &format!("/api/client/servers/{s}/backups/{b}/lock"),
        Some(""),
        &[("X-CSRF-Token", &csrf)],
    );
    assert_eq!(lock.status, 204);
    let out = browser.request("POST", "/auth/logout", Some(""), &[("X-CSRF-Token", &csrf)]);
    assert_eq!(out.status, 204);
    browser
        .get("/api/client")
        .assert_error(401, "InvalidCredentialsException");
}

#[test]
fn failed_logins_are_throttled_per_username() {
    let w = world();
    let api = w.hoard.anon();
    for _ in 0..5 {
        api.post(
            "/auth/login",
            r#"{"username":"olivia","password":"wrong-wrong"}"#,
        )
        .assert_error(401, "InvalidCredentialsException");
    }
    let r = api.post(
        "/auth/login",
        r#"{"username":"olivia","password":"olivia-password-1"}"#,
    );
    r.assert_error(429, "TooManyRequestsException");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Another username is not affected.
    assert_eq!(
        api.post(
            "/auth/login",
            r#"{"username":"nobody","password":"nobody-password-1"}"#
        )
        .status,
        200
    );
}

/// A flood of made-up usernames cannot lift a lockout in force by filling the throttle.
#[test]
fn a_flood_of_made_up_usernames_does_not_lift_a_lockout() {
    let throttle = hoard::auth::LoginThrottle::default();
    for _ in 0..5 {
        throttle.record_failure("olivia", "192.0.2.1");
    }
    assert!(throttle.retry_after("olivia", "192.0.2.1").is_some());
    for i in 0..10_050 {
        throttle.record_failure(&format!("made-up-{i}"), &format!("192.0.2.{}", i % 200 + 2));
    }
    assert!(throttle.retry_after("olivia", "192.0.2.1").is_some());
}

/// A username no account can have is refused without a trace: a flood of long ones cannot
/// fill the activity log.
#[test]
fn impossible_usernames_are_refused_without_being_logged() {
    let w = world();
    let long = "x".repeat(60_000);
    w.hoard
        .anon()
        .post(
            "/auth/login",
            &format!(r#"{{"username":"{long}","password":"whatever-1"}}"#),
        )
        .assert_error(401, "InvalidCredentialsException");
    assert_eq!(w.hoard.activity_count("auth:fail"), 0);
}

#[test]
fn api_keys_are_created_listed_used_and_revoked() {
    let w = world();
    let api = w.hoard.api(&w.owner);
    let created = api.post(
        "/api/client/account/api-keys",
        r#"{"description":"backup script"}"#,
    );
    assert_eq!(created.status, 200);
    let body = created.json();
    // As in Pterodactyl: the secret alone, which a client appends to the identifier.
    let secret = body["meta"]["secret_token"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    let identifier = body["attributes"]["identifier"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        identifier.starts_with("ptlc_") && identifier.len() == 16,
        "{identifier}"
    );
    let token = format!("{identifier}{secret}");
    assert!(body["attributes"]["last_used_at"].is_null());
    assert_eq!(
        w.hoard.api(&token).get("/api/client/account").json()["attributes"]["username"],
        "olivia"
    );
    let listed = api.get("/api/client/account/api-keys").json();
    assert_eq!(listed["object"], "list");
    assert_eq!(
        listed["meta"]["pagination"]["total"].as_u64().unwrap() as usize,
        listed["data"].as_array().unwrap().len(),
        "{listed}"
    );
    let entry = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["attributes"]["identifier"] == identifier.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["attributes"]["description"], "backup script");
    assert!(
        entry["attributes"]["last_used_at"].is_string(),
        "last use recorded"
    );
    assert!(
        listed.to_string().find(&token[16..]).is_none(),
        "the secret is never listed"
    );
    // Someone else cannot revoke it.
    w.hoard
        .api(&w.stranger)
        .delete(&format!("/api/client/account/api-keys/{identifier}"))
        .assert_error(404, "NotFoundHttpException");
    assert_eq!(
        api.delete(&format!("/api/client/account/api-keys/{identifier}"))
            .status,
        204
    );
    w.hoard
        .api(&token)
        .get("/api/client")
        .assert_error(401, "InvalidCredentialsException");
}

#[test]
fn errors_have_the_contract_shape() {
    let w = world();
    let api = w.hoard.api(&w.admin);
    let s = &w.server;
    api.get("/api/client/nope")
        .assert_error(404, "NotFoundHttpException");
    api.get("/api/nope/at/all")
        .assert_error(404, "NotFoundHttpException");
    let r = api.request(
        "PUT",
        &format!("/api/client/servers/{s}/backups"),
        Some("{}"),
        &[],
    );
    r.assert_error(405, "MethodNotAllowedHttpException");
    assert!(r.header("allow").unwrap().contains("GET"));
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(70 * 1024));
    api.post(&format!("/api/client/servers/{s}/backups"), &big)
        .assert_error(413, "PayloadTooLargeException");
    api.post(&format!("/api/client/servers/{s}/backups"), "{not json")
        .assert_error(400, "BadRequestException");
    api.post(&format!("/api/client/servers/{s}/backups"), "[1,2]")
        .assert_error(400, "BadRequestException");
    let r = api.post(
        &format!("/api/client/servers/{s}/backups"),
        r#"{"name":5,"is_locked":"yes","ignored":[1]}"#,
    );
    r.assert_error(422, "ValidationException");
    let body = r.json();
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["meta"]["source_field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(fields, vec!["ignored", "is_locked", "name"]);
    let long = format!(r#"{{"name":"{}"}}"#, "n".repeat(192));
    let r = api.post(&format!("/api/client/servers/{s}/backups"), &long);
    r.assert_error(422, "ValidationException");
    assert_eq!(r.json()["errors"][0]["meta"]["rule"], "max:191");
    for q in ["per_page=0", "per_page=abc", "page=-1", "page=1.5"] {
        api.get(&format!("/api/client/servers/{s}/backups?{q}"))
            .assert_error(422, "ValidationException");
    }
    let capped = api
        .get(&format!("/api/client/servers/{s}/backups?per_page=1000"))
        .json();
    assert_eq!(capped["meta"]["pagination"]["per_page"], 100);
    api.post(
        &format!("/api/client/servers/{s}/backups/{}/restore", "0000"),
        r#"{"truncate":"no"}"#,
    )
    .assert_error(404, "NotFoundHttpException");
    let b = w.backup();
    api.post(
        &format!("/api/client/servers/{s}/backups/{b}/restore"),
        r#"{"truncate":"no"}"#,
    )
    .assert_error(422, "ValidationException");
    // Security headers are on every response, errors included.
    for r in [
        api.get("/api/client"),
        api.get("/api/nope"),
        w.hoard.anon().get("/api/client"),
    ] {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    }
    // Accept headers of Pterodactyl clients get JSON too.
    let r = api.request(
        "GET",
        "/api/client",
        None,
        &[("Accept", "Application/vnd.pterodactyl.v1+json")],
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn envelopes_and_attributes_match_the_contract() {
    let w = world();
    let api = w.hoard.api(&w.admin);
    let s = &w.server;
    let b = api.backup_and_wait(s, r#"{"name":"Nightly","ignored":"*.log\n\ncache/\r\n"}"#);
    let list = api.get(&format!("/api/client/servers/{s}/backups")).json();
    assert_eq!(list["object"], "list");
    let item = &list["data"][0];
    assert_eq!(item["object"], "backup");
    let a = &item["attributes"];
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "uuid",
        "name",
        "ignored_files",
        "sha256_hash",
        "checksum",
        "bytes",
        "created_at",
        "completed_at",
        "is_successful",
        "is_locked",
        "status",
        "progress",
        "compression",
        "error",
        "warnings",
    ] {
        assert!(keys.contains(&k), "{k} missing");
    }
    assert_eq!(a["ignored_files"], serde_json::json!(["*.log", "cache/"]));
    assert_eq!(a["name"], "Nightly");
    assert_eq!(a["uuid"], b["uuid"]);
    let hash = a["sha256_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert_eq!(a["checksum"], format!("sha256:{hash}"));
    assert_eq!(a["is_successful"], true);
    assert!(a["progress"].is_null());
    let ts = a["created_at"].as_str().unwrap();
    assert!(
        ts.len() == 25 && ts.ends_with("+00:00") && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
    let p = &list["meta"]["pagination"];
    for k in [
        "total",
        "count",
        "per_page",
        "current_page",
        "total_pages",
        "links",
    ] {
        assert!(!p[k].is_null(), "pagination.{k}");
    }
    assert_eq!(list["meta"]["backup_count"], 1);
    // Default name.
    let unnamed = api.backup_and_wait(s, r#"{"name":"   "}"#);
    let name = unnamed["name"].as_str().unwrap();
    assert!(
        name.starts_with("Backup at 20") && name.len() == "Backup at 2023-10-20 14:30:00".len(),
        "{name}"
    );
    // Pagination: newest first, links.
    let page = api
        .get(&format!(
            "/api/client/servers/{s}/backups?per_page=1&page=1"
        ))
        .json();
    assert_eq!(page["data"][0]["attributes"]["uuid"], unnamed["uuid"]);
    assert!(
        page["meta"]["pagination"]["links"]["next"]
            .as_str()
            .unwrap()
            .contains("page=2")
    );
    assert_eq!(page["meta"]["pagination"]["total_pages"], 2);
    // Servers.
    let index = api.get("/api/client").json();
    let server = &index["data"][0];
    assert_eq!(server["object"], "server");
    for k in [
        "identifier",
        "uuid",
        "name",
        "description",
        "status",
        "feature_limits",
    ] {
        assert!(server["attributes"].get(k).is_some(), "{k}");
    }
    assert_eq!(server["attributes"]["feature_limits"]["backups"], 100);
    let by_uuid = api.get(&format!(
        "/api/client/servers/{}",
        server["attributes"]["uuid"].as_str().unwrap()
    ));
    assert_eq!(by_uuid.status, 200);
    let meta: Value = by_uuid.json()["meta"].clone();
    // An admin holds every permission.
    assert_eq!(
        meta["user_permissions"],
        serde_json::json!(hoard::model::Permission::ALL.map(|p| p.as_str()))
    );
}

#[test]
fn malformed_requests_never_cause_a_server_error() {
    let w = world();
    let s = w.server.clone();
    let api = w.hoard.api(&w.admin);
    let segments = [
        "..",
        "%2e%2e",
        "%00",
        "a%00b",
        "%ff%fe",
        "%c3%28",
        &"x".repeat(5000),
        "%",
        "%zz",
        "ptlc_",
        "..%2f..%2fetc%2fpasswd",
        "-1",
        "0",
        "9999999999999999999999",
        "%F0%9F%98%80",
    ];
    let bodies = [
        "",
        "{",
        "}",
        "null",
        "[]",
        "\"str\"",
        "123",
        r#"{"name":null}"#,
        r#"{"name":{}}"#,
        r#"{"ignored":"\u0000"}"#,
        r#"{"is_locked":1}"#,
        r#"{"truncate":null}"#,
        r#"{"permissions":"backup.read"}"#,
        r#"{"username":["a"]}"#,
        r#"{"path":"/etc/../"}"#,
        r#"{"backup_limit":-5}"#,
        r#"{"backup_limit":1e400}"#,
        "\u{feff}{}",
        r#"{"name":"a\ud800"}"#,
        r#"{"hooks":[]}"#,
    ];
    let mut count = 0;
    let mut check = |r: Reply, what: &str| {
        count += 1;
        assert!(r.status < 500, "{what} gave {}: {}", r.status, r.text());
        if r.status >= 400 {
            assert!(
                r.json()["errors"][0]["code"].is_string(),
                "{what}: {}",
                r.text()
            );
        }
    };
    for seg in segments {
        for path in [
            format!("/api/client/servers/{seg}"),
            format!("/api/client/servers/{s}/backups/{seg}"),
            format!("/api/client/servers/{s}/backups/{seg}/download"),
            format!("/api/client/servers/{s}/users/{seg}"),
            format!("/api/application/servers/{seg}"),
            format!("/api/application/users/{seg}"),
        ] {
            check(api.get(&path), &path);
            check(api.request("DELETE", &path, None, &[]), &path);
        }
    }
    for body in bodies {
        for path in [
            format!("/api/client/servers/{s}/backups"),
            format!("/api/client/servers/{s}/users"),
            "/api/application/servers".to_string(),
            "/api/application/users".to_string(),
            "/api/client/account/api-keys".to_string(),
            "/auth/login".to_string(),
        ] {
            check(api.post(&path, body), &format!("{path} {body}"));
        }
        check(
            api.patch(&format!("/api/application/servers/{s}"), body),
            body,
        );
    }
    for q in [
        "page=%ff",
        "per_page=%00",
        "page=99999999999999999999",
        "page",
        "&&&",
        "per_page=1&per_page=2",
        "page=%",
    ] {
        check(api.get(&format!("/api/client/servers/{s}/backups?{q}")), q);
        check(api.get(&format!("/download/backups/x?{q}")), q);
    }
    assert!(count >= 200, "only {count} requests");
    // Raw requests no client would send. A request line that is not UTF-8 is dropped by the
    // HTTP parser without an answer; the others get a contract error.
    let raw_cases: [(Vec<u8>, &[u16]); 3] = [
        (b"GET /api/client/servers/%ff%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), &[404]),
        (b"GET /api/client/servers/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), &[0, 400]),
        (
            format!("POST /api/client/servers/{s}/backups HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n{{").into_bytes(),
            &[413],
        ),
    ];
    for (raw, allowed) in raw_cases {
        let (status, text) = raw_request(&w.hoard.base, &raw);
        assert!(allowed.contains(&status), "{status}: {text}");
    }
    assert_eq!(api.get("/api/client").status, 200, "still serving");
    assert!(!w.hoard.log().contains("panicked"), "a handler panicked");
    // Invalid requests changed nothing: the server and the users are as they were. (Empty
    // bodies are valid backup requests, so backups may have been made.)
    let server = api.get(&format!("/api/application/servers/{s}")).json();
    assert_eq!(server["attributes"]["name"], "mc");
    assert_eq!(server["attributes"]["backup_limit"], 100);
    assert_eq!(
        api.get("/api/application/servers").json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/api/application/users").json()["data"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
}

#[test]
fn changing_your_password_keeps_this_session_and_ends_the_others() {
    let w = world();
    let (mine, csrf) = login(&w, "olivia", "olivia-password-1");
    let (other, _) = login(&w, "olivia", "olivia-password-1");
    let me = Api::new(&w.hoard.base, None).with_header("Cookie", &mine);
    let elsewhere = Api::new(&w.hoard.base, None).with_header("Cookie", &other);
    let wrong = me.request(
        "PUT",
        "/api/client/account/password",
        Some(r#"{"current_password":"nope-nope-nope","password":"new-password-123"}"#),
        &[("X-CSRF-Token", &csrf)],
    );
    wrong.assert_error(422, "ValidationException");
    assert_eq!(
        wrong.json()["errors"][0]["meta"]["source_field"],
        "current_password"
    );
    let changed = me.request(
        "PUT",
        "/api/client/account/password",
        Some(r#"{"current_password":"olivia-password-1","password":"new-password-123","password_confirmation":"new-password-123"}"#),
        &[("X-CSRF-Token", &csrf)],
    );
    assert_eq!(changed.status, 204, "{}", changed.text());
    assert_eq!(
        me.get("/api/client/account").status,
        200,
        "this session stays"
    );
    elsewhere
        .get("/api/client/account")
        .assert_error(401, "InvalidCredentialsException");
    assert_eq!(
        w.hoard.api(&w.owner).get("/api/client/account").status,
        200,
        "API keys stay"
    );
    let anon = w.hoard.anon();
    anon.post(
        "/auth/login",
        r#"{"username":"olivia","password":"olivia-password-1"}"#,
    )
    .assert_error(401, "InvalidCredentialsException");
    assert_eq!(
        anon.post(
            "/auth/login",
            r#"{"username":"olivia","password":"new-password-123"}"#
        )
        .status,
        200
    );
}
