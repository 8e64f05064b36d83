//! The activity log through the API, against a real hoard: Pterodactyl's shape, every action
//! with its actor (a user, an API key, a schedule, hoard itself), the `activity.read`
//! permission, filtering by event and pagination.

mod common;

use common::{Api, Hoard};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A server owned by admin over a small tree, with an API key for admin.
fn setup(hoard: &Hoard) -> (tempfile::TempDir, String, Api) {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "server.properties", b"motd=hello\n");
    common::write(dir.path(), "world/level.dat", &common::noise(4096, 1));
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    (dir, server, api)
}

/// The items of an activity listing (all of them, up to 100), newest first.
fn activity(api: &Api, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = api.get(&format!("{path}{sep}per_page=100"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].as_array().unwrap().clone()
}

fn server_activity(api: &Api, server: &str) -> Vec<Value> {
    activity(api, &format!("/api/client/servers/{server}/activity"))
}

/// The newest item of `event`, as attributes.
fn newest(items: &[Value], event: &str) -> Value {
    items
        .iter()
        .map(|i| &i["attributes"])
        .find(|a| a["event"] == event)
        .unwrap_or_else(|| panic!("no {event} in {items:#?}"))
        .clone()
}

fn events(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["attributes"]["event"].as_str().unwrap().to_string())
        .collect()
}

fn actor_name(a: &Value) -> &str {
    a["relationships"]["actor"]["attributes"]["username"]
        .as_str()
        .unwrap_or_else(|| panic!("no user actor: {a:#}"))
}

/// Waits until `event` is in the server's activity log `count` times.
fn wait_for_event(hoard: &Hoard, event: &str, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while hoard.activity_count(event) < count {
        assert!(Instant::now() < deadline, "{event} was not logged");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn activity_answers_in_pterodactyls_shape() {
    let hoard = Hoard::start(&[]);
    let (_dir, server, api) = setup(&hoard);
    let backup = api.backup_and_wait(&server, r#"{"name": "first"}"#);

    let r = api.get(&format!("/api/client/servers/{server}/activity"));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["object"], "list");
    let pagination = &body["meta"]["pagination"];
    assert_eq!(pagination["total"], 2);
    assert_eq!(pagination["count"], 2);
    assert_eq!(pagination["per_page"], 25);
    assert_eq!(pagination["current_page"], 1);
    assert_eq!(pagination["total_pages"], 1);

    let items = body["data"].as_array().unwrap();
    assert_eq!(
        events(items),
        ["server:backup.complete", "server:backup.start"],
        "newest first"
    );
    assert_eq!(items[1]["object"], "activity_log");
    let start = &items[1]["attributes"];
    assert!(start["id"].is_i64());
    assert_eq!(start["batch"], Value::Null);
    assert_eq!(start["is_api"], true);
    assert_eq!(start["actor_kind"], "api_key");
    assert_eq!(start["actor_schedule"], Value::Null);
    assert_eq!(start["ip"], "127.0.0.1", "the actor sees the address");
    assert_eq!(start["description"], Value::Null);
    assert_eq!(start["properties"]["backup"], backup["uuid"]);
    assert_eq!(start["properties"]["name"], "first");
    assert_eq!(start["has_additional_metadata"], true);
    assert!(
        start["timestamp"].as_str().unwrap().ends_with("+00:00"),
        "{start}"
    );
    let actor = &start["relationships"]["actor"];
    assert_eq!(actor["object"], "user");
    assert_eq!(actor["attributes"]["username"], "admin");
    assert!(actor["attributes"]["uuid"].is_string());

    // The job's outcome is the user's who asked for it, made by no request.
    let complete = &items[0]["attributes"];
    assert_eq!(complete["actor_kind"], "user");
    assert_eq!(complete["is_api"], false);
    assert_eq!(complete["ip"], Value::Null);
    assert_eq!(actor_name(complete), "admin");
    assert!(complete["properties"]["bytes"].as_i64().unwrap() > 0);

    // An unknown server is 404, whoever asks.
    api.get("/api/client/servers/ffffffff/activity")
        .assert_error(404, "NotFoundHttpException");
    assert_eq!(
        api.post(&format!("/api/client/servers/{server}/activity"), "")
            .status,
        405
    );
}

#[test]
fn every_action_is_an_event_with_its_actor() {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let (_dir, server, api) = setup(&hoard);
    hoard.add_user("alice", false);
    let base = format!("/api/client/servers/{server}");

    // Backup, lock, unlock, download link, restore, delete: by the API key.
    let b = api.backup_and_wait(&server, r#"{"name": "one"}"#);
    let uuid = b["uuid"].as_str().unwrap();
    assert_eq!(
        api.post(&format!("{base}/backups/{uuid}/lock"), "").status,
        204
    );
    assert_eq!(
        api.post(&format!("{base}/backups/{uuid}/lock"), "").status,
        204
    );
    assert_eq!(
        api.get(&format!("{base}/backups/{uuid}/download")).status,
        200
    );
    let r = api.post(&format!("{base}/backups/{uuid}/restore"), "{}");
    assert_eq!(r.status, 202, "{}", r.text());
    api.wait_restore(&server);
    assert_eq!(api.delete(&format!("{base}/backups/{uuid}")).status, 204);

    // Subusers: added, changed, removed.
    let r = api.post(
        &format!("{base}/users"),
        r#"{"username": "alice", "permissions": ["backup.read"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let alice = r.json()["attributes"]["uuid"].as_str().unwrap().to_string();
    let r = api.post(
        &format!("{base}/users/{alice}"),
        r#"{"permissions": ["backup.read", "activity.read"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(api.delete(&format!("{base}/users/{alice}")).status, 204);

    // A schedule's run and its backup, then a retention prune after it.
    let r = api.post(
        &format!("{base}/schedules"),
        r#"{"name": "nightly", "minute": "0", "hour": "4", "day_of_month": "*", "month": "*", "day_of_week": "*"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let schedule = r.json()["attributes"]["id"].as_i64().unwrap();
    let r = api.post(
        &format!("{base}/schedules/{schedule}/tasks"),
        r#"{"action": "backup", "payload": "", "time_offset": 0}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    api.backup_and_wait(&server, r#"{"name": "two"}"#);
    let r = api.request(
        "PUT",
        &format!("{base}/retention"),
        Some(r#"{"keep_last": 1}"#),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api.post(&format!("{base}/schedules/{schedule}/execute"), "");
    assert_eq!(r.status, 202, "{}", r.text());
    wait_for_event(&hoard, "server:schedule.run", 1);

    let items = server_activity(&api, &server);
    let first_start = items
        .iter()
        .rev()
        .map(|i| &i["attributes"])
        .find(|a| a["event"] == "server:backup.start")
        .unwrap();
    assert_eq!(first_start["actor_kind"], "api_key", "{first_start:#}");
    let by_key = [
        "server:backup.lock",
        "server:backup.unlock",
        "server:backup.download",
        "server:backup.restore",
        "server:backup.delete",
        "server:subuser.create",
        "server:subuser.update",
        "server:subuser.delete",
        "server:schedule.create",
        "server:task.create",
        "server:retention.update",
        "server:schedule.execute",
    ];
    for event in by_key {
        let a = newest(&items, event);
        assert_eq!(a["actor_kind"], "api_key", "{event}: {a:#}");
        assert_eq!(a["is_api"], true, "{event}");
        assert_eq!(actor_name(&a), "admin", "{event}");
    }
    let lock = newest(&items, "server:backup.lock");
    assert_eq!(lock["properties"]["backup"], uuid);
    let update = newest(&items, "server:subuser.update");
    assert_eq!(update["properties"]["username"], "alice");
    assert_eq!(
        update["properties"]["permissions"],
        serde_json::json!(["backup.read", "activity.read"])
    );

    // The restore's outcome, with its duration, for the user who asked for it.
    let done = newest(&items, "server:backup.restore-complete");
    assert_eq!(done["actor_kind"], "user");
    assert_eq!(actor_name(&done), "admin");
    assert_eq!(done["properties"]["outcome"], "completed");
    assert_eq!(done["properties"]["backup"], uuid);
    assert!(done["properties"]["duration_secs"].as_i64().unwrap() >= 0);

    // The schedule acted: no user, its name instead.
    for event in [
        "server:schedule.run",
        "server:backup.start",
        "server:backup.complete",
    ] {
        let a = newest(&items, event);
        assert_eq!(a["actor_kind"], "schedule", "{event}: {a:#}");
        assert_eq!(a["relationships"]["actor"], Value::Null, "{event}");
        assert_eq!(a["is_api"], false);
        assert_eq!(a["actor_schedule"]["id"], schedule);
        assert_eq!(a["actor_schedule"]["name"], "nightly");
    }
    let run = newest(&items, "server:schedule.run");
    assert_eq!(run["properties"]["outcome"], "completed", "{run:#}");
    assert_eq!(
        newest(&items, "server:backup.start")["properties"]["is_scheduled"],
        true
    );

    // Retention pruned "two" after the scheduled backup: hoard itself did.
    let prune = newest(&items, "server:backup.prune");
    assert_eq!(prune["actor_kind"], "system", "{prune:#}");
    assert_eq!(prune["relationships"]["actor"], Value::Null);
    assert_eq!(prune["properties"]["name"], "two");
    assert!(prune["properties"]["reason"].is_string());

    // Once the schedule is gone, its events still say a schedule acted.
    assert_eq!(
        api.delete(&format!("{base}/schedules/{schedule}")).status,
        204
    );
    let run = newest(&server_activity(&api, &server), "server:schedule.run");
    assert_eq!(run["actor_kind"], "schedule");
    assert_eq!(run["actor_schedule"], Value::Null);
}

#[test]
fn a_failed_restore_records_its_outcome_and_duration() {
    let hoard = Hoard::start(&[]);
    let (dir, server, api) = setup(&hoard);
    let b = api.backup_and_wait(&server, "{}");
    let uuid = b["uuid"].as_str().unwrap();
    // A pre-restore hook that fails stops the restore before it changes anything.
    hoard.cli_ok(&["server", "update", &server, "--pre-restore", "exit 3"]);
    let r = api.post(
        &format!("/api/client/servers/{server}/backups/{uuid}/restore"),
        "{}",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    api.wait_restore(&server);
    let failed = newest(
        &server_activity(&api, &server),
        "server:backup.restore-failed",
    );
    assert_eq!(failed["properties"]["outcome"], "failed", "{failed:#}");
    assert!(failed["properties"]["error"].is_string());
    assert!(failed["properties"]["duration_secs"].as_i64().unwrap() >= 0);
    assert_eq!(actor_name(&failed), "admin");
    drop(dir);
}

#[test]
fn a_subuser_without_activity_read_gets_403() {
    let hoard = Hoard::start(&[]);
    let (_dir, server, api) = setup(&hoard);
    api.backup_and_wait(&server, "{}");
    for name in ["reader", "watcher", "stranger"] {
        hoard.add_user(name, false);
    }
    hoard.add_subuser(&server, "reader", "backup.read,backup.create");
    hoard.add_subuser(&server, "watcher", "activity.read");
    let path = format!("/api/client/servers/{server}/activity");

    hoard
        .api(&hoard.key("reader"))
        .get(&path)
        .assert_error(403, "InsufficientPermissionsException");
    hoard
        .api(&hoard.key("stranger"))
        .get(&path)
        .assert_error(404, "NotFoundHttpException");

    let watcher = hoard.api(&hoard.key("watcher"));
    let items = activity(&watcher, &path);
    let start = newest(&items, "server:backup.start");
    assert_eq!(actor_name(&start), "admin");
    assert_eq!(start["ip"], Value::Null, "only the actor and admins see it");
    assert!(
        events(&items).contains(&"server:subuser.create".to_string()),
        "{items:#?}"
    );

    // The permission is listed, and granted like any other.
    let r = watcher.get(&format!("/api/client/servers/{server}"));
    assert_eq!(
        r.json()["meta"]["user_permissions"],
        serde_json::json!(["activity.read"])
    );
}

#[test]
fn filtering_and_pagination_work() {
    let hoard = Hoard::start(&[]);
    let (_dir, server, api) = setup(&hoard);
    let b = api.backup_and_wait(&server, "{}");
    let lock = format!(
        "/api/client/servers/{server}/backups/{}/lock",
        b["uuid"].as_str().unwrap()
    );
    for _ in 0..7 {
        assert_eq!(api.post(&lock, "").status, 204);
    }
    let path = format!("/api/client/servers/{server}/activity");

    // 9 events: start, complete, 4 locks, 3 unlocks; pages of 4.
    let r = api.get(&format!("{path}?per_page=4&page=2"));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    let p = &body["meta"]["pagination"];
    assert_eq!(p["total"], 9);
    assert_eq!(p["count"], 4);
    assert_eq!(p["total_pages"], 3);
    assert_eq!(p["current_page"], 2);
    assert!(p["links"]["next"].as_str().unwrap().ends_with(&format!(
        "/api/client/servers/{server}/activity?page=3&per_page=4"
    )));
    let all = activity(&api, &path);
    assert_eq!(all.len(), 9);
    assert_eq!(body["data"].as_array().unwrap()[..], all[4..8]);
    let ids: Vec<i64> = all
        .iter()
        .map(|i| i["attributes"]["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let last = api.get(&format!("{path}?per_page=4&page=3")).json();
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    assert_eq!(last["data"][0], all[8]);

    // An exact event name; the links keep the filter.
    let r = api.get(&format!(
        "{path}?filter[event]=server:backup.lock&per_page=3"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["meta"]["pagination"]["total"], 4);
    assert!(
        events(body["data"].as_array().unwrap())
            .iter()
            .all(|e| e == "server:backup.lock")
    );
    let next = body["meta"]["pagination"]["links"]["next"]
        .as_str()
        .unwrap();
    assert!(
        next.ends_with("/activity?filter%5Bevent%5D=server%3Abackup%2Elock&page=2&per_page=3"),
        "{next}"
    );
    let path_of_next = &next[next.find("/api/").unwrap()..];
    let second = api.get(path_of_next).json();
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        second["data"][0]["attributes"]["event"],
        "server:backup.lock"
    );
    // Encoded brackets are the same parameter.
    let r = api.get(&format!("{path}?filter%5Bevent%5D=server%3Abackup.unlock"));
    assert_eq!(r.json()["meta"]["pagination"]["total"], 3);
    // Exact, as Pterodactyl matches: no prefixes.
    let r = api.get(&format!("{path}?filter[event]=server:backup"));
    assert_eq!(r.json()["meta"]["pagination"]["total"], 0);
    assert_eq!(r.json()["data"], serde_json::json!([]));

    // The backup list's rules for paging parameters.
    api.get(&format!("{path}?per_page=0"))
        .assert_error(422, "ValidationException");
    api.get(&format!("{path}?page=x"))
        .assert_error(422, "ValidationException");
    let r = api.get(&format!("{path}?per_page=1000"));
    assert_eq!(r.json()["meta"]["pagination"]["per_page"], 100);
}

#[test]
fn account_activity_lists_the_callers_own_events() {
    let hoard = Hoard::start(&[]);
    let (_dir, server, api) = setup(&hoard);
    hoard.add_user("bob", false);
    let bob_dir = tempfile::tempdir().unwrap();
    common::write(bob_dir.path(), "a.txt", b"bob's");
    let bobs = hoard.add_server("bobs", bob_dir.path(), "bob", &[]);
    hoard.add_subuser(&server, "bob", "backup.read,backup.create");

    api.backup_and_wait(&server, "{}");
    let bob = hoard.api(&hoard.key("bob"));
    bob.backup_and_wait(&bobs, "{}");
    let r = bob.post(
        "/api/client/account/api-keys",
        r#"{"description": "laptop"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = hoard.anon().post(
        "/auth/login",
        r#"{"username": "bob", "password": "bob-password-1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let items = activity(&bob, "/api/client/account/activity");
    assert_eq!(
        events(&items),
        [
            "auth:success",
            "user:api-key.create",
            "server:backup.complete",
            "server:backup.start",
            "user:api-key.create",
        ],
        "bob's own, newest first (the first key, made on the command line, too): not \
         admin's backup on the server he shares"
    );
    for item in &items {
        assert_eq!(actor_name(&item["attributes"]), "bob");
    }
    let key = newest(&items, "user:api-key.create");
    assert_eq!(key["is_api"], true);
    assert_eq!(key["ip"], "127.0.0.1");
    assert_eq!(newest(&items, "auth:success")["actor_kind"], "user");

    let filtered = activity(
        &bob,
        "/api/client/account/activity?filter[event]=server:backup.start",
    );
    assert_eq!(events(&filtered), ["server:backup.start"]);

    // Admin's account holds admin's events only.
    let admins = activity(&api, "/api/client/account/activity");
    assert!(
        admins
            .iter()
            .all(|i| actor_name(&i["attributes"]) == "admin")
    );
    assert!(events(&admins).contains(&"server:backup.start".to_string()));
    hoard
        .anon()
        .get("/api/client/account/activity")
        .assert_error(401, "InvalidCredentialsException");
}

#[test]
fn events_logged_before_the_upgrade_get_their_actor_kind() {
    use hoard::model::ActorKind;
    use hoard::store::{self, Db, activity::Scope};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoard.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        store::apply_migrations(&mut conn, 7).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, uuid, username, password_hash, created_at, updated_at)
                 VALUES (1, 'u-1', 'old', 'x', 0, 0);
             INSERT INTO api_keys (id, user_id, identifier, secret_hash, description, created_at)
                 VALUES (1, 1, 'ptlc_aaaaaaaaaaa', x'00', '', 0);
             INSERT INTO servers (id, uuid, short_id, name, path, created_at, updated_at)
                 VALUES (1, 's-1', 's1', 'mc', '/srv/mc', 0, 0);
             INSERT INTO schedules (id, server_id, name, cron_minute, cron_hour,
                 cron_day_of_month, cron_month, cron_day_of_week, created_at, updated_at)
                 VALUES (4, 1, 'nightly', '0', '4', '*', '*', '*', 0, 0);
             INSERT INTO activity_log (event, user_id, api_key_id, server_id, properties, created_at)
             VALUES ('server:backup.start', 1, NULL, 1, '{}', 1),
                    ('server:backup.lock', 1, 1, 1, '{}', 2),
                    ('server:backup.prune', NULL, NULL, 1, '{}', 3),
                    ('server:schedule.run', NULL, NULL, 1, '{\"schedule\": 4}', 4),
                    ('auth:fail', NULL, NULL, NULL, '{}', 5);",
        )
        .unwrap();
    }
    let db = Db::open(&path).unwrap();
    let conn = db.conn().unwrap();
    let (total, entries) = store::activity::page(&conn, Scope::Server(1), None, 10, 0).unwrap();
    assert_eq!(total, 4);
    let kinds: Vec<ActorKind> = entries.iter().map(|e| e.actor_kind).collect();
    assert_eq!(
        kinds,
        [
            ActorKind::Schedule,
            ActorKind::System,
            ActorKind::ApiKey,
            ActorKind::User
        ]
    );
    assert_eq!(entries[0].schedule, Some((4, "nightly".to_string())));
    let failed: String = conn
        .query_row(
            "SELECT actor_kind FROM activity_log WHERE event = 'auth:fail'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, "anonymous");
}
