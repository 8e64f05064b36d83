//! What keeps pages current and honest, against a real hoard: conditional GETs (an
//! unchanged poll is answered 304 without its body, any change gives a new tag), storage at
//! a glance in a server's attributes, and errors about space and time in human units.

mod common;

use common::Hoard;
use serde_json::Value;

fn get_with(api: &common::Api, path: &str, tag: Option<&str>) -> common::Reply {
    let headers: Vec<(&str, &str)> = tag.map(|t| vec![("If-None-Match", t)]).unwrap_or_default();
    api.request("GET", path, None, &headers)
}

#[test]
fn an_unchanged_poll_is_answered_304_and_any_change_gives_a_new_tag() {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "a.txt", b"hello");
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let list = format!("/api/client/servers/{server}/backups");

    let first = get_with(&api, &list, None);
    assert_eq!(first.status, 200);
    let tag = first.header("etag").expect("an ETag").to_string();
    assert_eq!(first.header("cache-control"), Some("private, no-cache"));
    let again = get_with(&api, &list, Some(&tag));
    assert_eq!(again.status, 304, "{}", again.text());
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    // Another page, or the same one for another user, has its own tag.
    let page2 = get_with(&api, &format!("{list}?page=2"), Some(&tag));
    assert_eq!(page2.status, 200);
    hoard.add_user("friend", true);
    let friend = hoard.api(&hoard.key("friend"));
    assert_eq!(get_with(&friend, &list, Some(&tag)).status, 200);

    // A backup started elsewhere (the CLI) changes the list, and so do its end and a lock.
    let tag = get_with(&api, &list, None)
        .header("etag")
        .unwrap()
        .to_string();
    hoard.cli_ok(&["backup", "create", &server, "--wait"]);
    let changed = get_with(&api, &list, Some(&tag));
    assert_eq!(changed.status, 200);
    assert_eq!(changed.json()["data"].as_array().unwrap().len(), 1);
    let tag = changed.header("etag").unwrap().to_string();
    assert_eq!(get_with(&api, &list, Some(&tag)).status, 304);
    let uuid = changed.json()["data"][0]["attributes"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    api.post(&format!("{list}/{uuid}/lock"), "");
    let locked = get_with(&api, &list, Some(&tag));
    assert_eq!(locked.status, 200);
    assert_eq!(locked.json()["data"][0]["attributes"]["is_locked"], true);

    // The server and servers pages too; "*" matches any tag.
    for path in ["/api/client", &format!("/api/client/servers/{server}")] {
        let r = get_with(&api, path, None);
        let tag = r.header("etag").unwrap().to_string();
        assert_eq!(get_with(&api, path, Some(&tag)).status, 304, "{path}");
        assert_eq!(get_with(&api, path, Some("*")).status, 304, "{path}");
        assert_eq!(
            get_with(&api, path, Some("\"other\"")).status,
            200,
            "{path}"
        );
    }
    // A download link is made anew by each GET: never a 304.
    let link = format!("{list}/{uuid}/download");
    let r = get_with(&api, &link, None);
    assert_eq!(r.status, 200);
    assert!(r.header("etag").is_none());
    assert_eq!(get_with(&api, &link, Some("*")).status, 200);
    // Errors carry no tag.
    let missing = get_with(&api, &format!("{list}/nope"), None);
    assert_eq!(missing.status, 404);
    assert!(missing.header("etag").is_none());
}

fn storage(api: &common::Api, server: &str) -> Value {
    api.get(&format!("/api/client/servers/{server}")).json()["attributes"]["storage"].clone()
}

#[test]
fn servers_show_their_storage_with_a_warning_near_the_quota() {
    let hoard = Hoard::start(&["--throttle-backups", "0", "--compression", "none"]);
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "world.dat", &common::noise(200_000, 3));
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let empty = storage(&api, &server);
    assert_eq!(empty["used_bytes"], 0);
    assert_eq!(empty["quota_bytes"], Value::Null);
    assert!(empty["free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(empty["warning"], Value::Null);

    let backup = api.backup_and_wait(&server, "{}");
    let bytes = backup["bytes"].as_i64().unwrap();
    let s = storage(&api, &server);
    assert_eq!(s["used_bytes"], bytes);
    assert_eq!(s["warning"], Value::Null);

    // A quota the one backup nearly fills: warned, in human units.
    let quota = bytes * 100 / 95;
    hoard.cli_ok(&[
        "server",
        "update",
        &server,
        "--quota-bytes",
        &quota.to_string(),
    ]);
    let s = storage(&api, &server);
    assert_eq!(s["quota_bytes"], quota);
    let warning = s["warning"].as_str().unwrap();
    assert!(
        warning.contains("KiB") && warning.contains("quota"),
        "{warning}"
    );
    // The servers list says the same.
    let list = api.get("/api/client").json();
    assert_eq!(list["data"][0]["attributes"]["storage"]["warning"], warning);
    // A create that cannot fit says so in human units.
    let r = api.post(&format!("/api/client/servers/{server}/backups"), "{}");
    r.assert_error(507, "InsufficientStorageException");
    assert!(r.detail().contains("KiB needed"), "{}", r.detail());

    // A subuser without backup.read sees no storage.
    hoard.add_user("helper", false);
    hoard.add_subuser(&server, "helper", "backup.create");
    let helper = hoard.api(&hoard.key("helper"));
    assert_eq!(storage(&helper, &server), Value::Null);
}

#[test]
fn the_throttle_says_when_to_try_again_in_words() {
    let hoard = Hoard::start(&["--throttle-backups", "1", "--throttle-window-secs", "600"]);
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "a.txt", b"hello");
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    api.backup_and_wait(&server, "{}");
    let r = api.post(&format!("/api/client/servers/{server}/backups"), "{}");
    r.assert_error(429, "TooManyRequestsException");
    let detail = r.detail();
    assert!(detail.contains("every 10 minutes"), "{detail}");
    assert!(
        detail.contains("try again in 9 minutes") || detail.contains("try again in 10 minutes"),
        "{detail}"
    );
}

#[test]
fn servers_say_which_hooks_are_set_and_owners_get_username_suggestions() {
    let hoard = Hoard::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    hoard.add_user("owner", false);
    let server = hoard.add_server("mc", dir.path(), "owner", &[]);
    let owner = hoard.api(&hoard.key("owner"));
    let hooks = |api: &common::Api| {
        api.get(&format!("/api/client/servers/{server}")).json()["attributes"]["hooks"].clone()
    };
    assert_eq!(
        hooks(&owner),
        serde_json::json!({"pre_backup": false, "post_backup": false, "pre_restore": false, "post_restore": false})
    );
    hoard.cli_ok(&[
        "server",
        "update",
        &server,
        "--pre-restore",
        "systemctl stop mc",
    ]);
    assert_eq!(hooks(&owner)["pre_restore"], true);
    let text = owner.get(&format!("/api/client/servers/{server}")).text();
    assert!(!text.contains("systemctl"), "hook commands are not shown");

    for name in ["alice", "alicia", "bob"] {
        hoard.add_user(name, false);
    }
    let suggest = |api: &common::Api, q: &str| {
        api.get(&format!("/api/client/servers/{server}/users/suggest?q={q}"))
    };
    assert_eq!(
        suggest(&owner, "ali").json()["data"],
        serde_json::json!(["alice", "alicia"])
    );
    assert_eq!(
        suggest(&owner, "a").json()["data"],
        serde_json::json!([]),
        "two characters at least"
    );
    hoard.add_subuser(&server, "bob", "backup.read");
    let bob = hoard.api(&hoard.key("bob"));
    suggest(&bob, "ali").assert_error(403, "InsufficientPermissionsException");
}

#[test]
fn the_backup_list_can_bring_its_server_and_keys_and_history_change_the_tag() {
    let hoard = Hoard::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    let mut list = api
        .get(&format!(
            "/api/client/servers/{server}/backups?include=server"
        ))
        .json();
    let mut shown = api.get(&format!("/api/client/servers/{server}")).json();
    // Free space is read anew for each answer, and other tests write meanwhile.
    for body in [&mut list["meta"]["server"], &mut shown] {
        assert!(
            body["attributes"]["storage"]["free_bytes"]
                .as_u64()
                .is_some()
        );
        body["attributes"]["storage"]["free_bytes"] = Value::Null;
    }
    assert_eq!(
        list["meta"]["server"], shown,
        "the server as its own GET gives it"
    );
    assert!(list["meta"]["pagination"].is_object());
    let plain = api
        .get(&format!("/api/client/servers/{server}/backups"))
        .json();
    assert!(plain["meta"]["server"].is_null(), "only when asked for");

    // A new API key shows in the key list at once, though keys are not what most pages show.
    let keys = "/api/client/account/api-keys";
    let tag = get_with(&api, keys, None)
        .header("etag")
        .unwrap()
        .to_string();
    hoard.key("admin");
    let r = get_with(&api, keys, Some(&tag));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    // A key's use is not a change: polling with a key still gets 304.
    let tag = r.header("etag").unwrap().to_string();
    assert_eq!(get_with(&api, keys, Some(&tag)).status, 304);
    // An event in the history is.
    let history = format!("/api/client/servers/{server}/activity");
    let tag = get_with(&api, &history, None)
        .header("etag")
        .unwrap()
        .to_string();
    api.post(&format!("/api/client/servers/{server}/schedules"), r#"{"name": "n", "minute": "0", "hour": "4", "day_of_month": "*", "month": "*", "day_of_week": "*"}"#);
    assert_eq!(get_with(&api, &history, Some(&tag)).status, 200);
}
