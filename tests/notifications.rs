//! Notifications against a real hoard and a real HTTP receiver started by the test: what
//! each kind of channel is sent, the webhook's signature, Healthchecks-style pings around
//! scheduled backups, and delivery that survives a receiver that is down and a restart.

mod common;

use common::receiver::Receiver;
use common::{Api, Hoard};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::TcpListener;
use std::time::{Duration, Instant};

const CHANNELS: &str = "/api/application/notifications";

fn add_channel(api: &Api, body: Value) -> Value {
    let r = api.post(CHANNELS, &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn setup(hoard: &Hoard) -> (tempfile::TempDir, String, Api) {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "server.properties", b"motd=hello\n");
    let server = hoard.add_server("Survival", dir.path(), "admin", &[]);
    (dir, server, hoard.api(&hoard.key("admin")))
}

fn fail_backups(hoard: &Hoard, server: &str, fail: bool) {
    let hook = if fail { "echo broken >&2; exit 1" } else { "" };
    hoard.cli_ok(&["server", "update", server, "--pre-backup", hook]);
}

#[test]
fn each_channel_gets_the_events_it_chose_in_its_format() {
    let receiver = Receiver::start();
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let (_dir, server, api) = setup(&hoard);
    let webhook = add_channel(
        &api,
        json!({"kind": "webhook", "name": "ops", "url": receiver.url("/webhook"),
               "events": ["backup_failed", "backup_completed"]}),
    );
    let secret = webhook["meta"]["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    let discord = add_channel(
        &api,
        json!({"kind": "discord", "url": receiver.url("/discord/123/token")}),
    );
    assert_eq!(
        discord["attributes"]["events"],
        json!(["backup_failed", "restore_failed"]),
        "failures only by default"
    );
    assert!(discord["meta"].is_null(), "only webhooks have a secret");
    add_channel(
        &api,
        json!({"kind": "ntfy", "url": receiver.url("/ntfy/topic"), "events": ["backup_completed"]}),
    );

    fail_backups(&hoard, &server, true);
    let failed = api.backup_and_wait(&server, "{}");
    assert_eq!(failed["status"], "failed");
    fail_backups(&hoard, &server, false);
    let completed = api.backup_and_wait(&server, "{}");
    assert_eq!(completed["status"], "completed");

    let hooks = receiver.wait_for("/webhook", 2);
    let events: Vec<String> = hooks
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["backup_failed", "backup_completed"]);
    for hook in &hooks {
        assert_eq!(hook.method, "POST");
        assert_eq!(hook.header("content-type"), Some("application/json"));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&hook.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(hook.header("x-hoard-signature"), Some(expected.as_str()));
        assert_eq!(hook.header("x-hoard-event"), hook.json()["event"].as_str());
    }
    let body = hooks[0].json();
    assert_eq!(body["server"]["identifier"], server.as_str());
    assert_eq!(body["server"]["name"], "Survival");
    assert_eq!(body["backup"]["uuid"], failed["uuid"]);
    assert_eq!(body["backup"]["status"], "failed");
    assert!(
        body["backup"]["error"]
            .as_str()
            .unwrap()
            .contains("pre_backup")
    );
    assert!(body["message"].as_str().unwrap().contains("failed"));
    assert_eq!(hooks[1].json()["backup"]["bytes"], completed["bytes"]);

    let discord_got = receiver.wait_for("/discord/", 1);
    let embed = &discord_got[0].json()["embeds"][0];
    assert_eq!(embed["title"], "Backup failed: Survival");
    assert_eq!(embed["color"], 0xE74C3C);
    let fields = embed["fields"].as_array().unwrap();
    assert!(fields.iter().any(|f| f["name"] == "Server"));
    assert!(
        fields
            .iter()
            .any(|f| f["name"] == "Error" && f["value"].as_str().unwrap().contains("pre_backup"))
    );
    assert!(fields.iter().any(|f| f["name"] == "Duration"));

    let ntfy = receiver.wait_for("/ntfy/", 1);
    assert_eq!(ntfy[0].header("title"), Some("Backup completed: Survival"));
    assert_eq!(ntfy[0].header("priority"), Some("default"));
    assert!(String::from_utf8_lossy(&ntfy[0].body).contains("completed"));

    // Give stray deliveries time to show: each channel got exactly what it chose.
    std::thread::sleep(Duration::from_secs(2));
    let got = receiver.got();
    assert_eq!(got.iter().filter(|r| r.path == "/webhook").count(), 2);
    assert_eq!(
        got.iter()
            .filter(|r| r.path.starts_with("/discord/"))
            .count(),
        1
    );
    assert_eq!(
        got.iter().filter(|r| r.path.starts_with("/ntfy/")).count(),
        1
    );

    // The channels show their last delivery, with the URL masked.
    let list = api.get(CHANNELS).json();
    for channel in list["data"].as_array().unwrap() {
        let a = &channel["attributes"];
        assert!(a["last_delivery_at"].is_string(), "{a}");
        assert_eq!(a["last_error"], Value::Null);
        assert_eq!(a["pending"], 0);
        assert!(!a["url"].as_str().unwrap().contains("token"), "{a}");
    }
}

#[test]
fn notifications_queued_while_the_receiver_is_down_arrive_after_a_restart() {
    // A port with nothing listening, for now.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut hoard = Hoard::start(&["--notify-retry-max-secs", "1"]);
    let (_dir, server, api) = setup(&hoard);
    let url = format!("http://127.0.0.1:{port}/hook");
    add_channel(
        &api,
        json!({"kind": "webhook", "url": url, "events": ["backup_completed"]}),
    );
    let backup = api.backup_and_wait(&server, "{}");
    assert_eq!(
        backup["status"], "completed",
        "the backup ends whatever becomes of its notification"
    );
    // Delivery fails, is recorded, and stays queued.
    let deadline = Instant::now() + Duration::from_secs(30);
    let channel = loop {
        let c = api.get(CHANNELS).json()["data"][0]["attributes"].clone();
        if c["last_error"].is_string() {
            break c;
        }
        assert!(Instant::now() < deadline, "no delivery was tried: {c}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(channel["pending"], 1, "{channel}");
    assert!(
        channel["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{channel}"
    );

    hoard.restart();
    let receiver = Receiver::on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let got = receiver.wait_for("/hook", 1);
    assert_eq!(got[0].json()["backup"]["uuid"], backup["uuid"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.got().len(), 1, "delivered once");
    let api = Api::new(&hoard.base, api.token.clone());
    let channel = api.get(CHANNELS).json()["data"][0]["attributes"].clone();
    assert_eq!(channel["pending"], 0, "{channel}");
    assert_eq!(channel["last_error"], Value::Null, "{channel}");
}

#[test]
fn healthchecks_is_pinged_around_scheduled_backups() {
    let receiver = Receiver::start();
    let hoard = Hoard::start(&[]);
    let (_dir, server, api) = setup(&hoard);
    add_channel(
        &api,
        json!({"kind": "healthchecks", "url": receiver.url("/ping/abc")}),
    );
    let r = api.post(
        &format!("/api/client/servers/{server}/schedules"),
        r#"{"name": "nightly", "minute": "0", "hour": "4", "day_of_month": "*", "month": "*", "day_of_week": "*"}"#,
    );
    let id = r.json()["attributes"]["id"].as_i64().unwrap();
    api.post(
        &format!("/api/client/servers/{server}/schedules/{id}/tasks"),
        r#"{"action": "backup", "time_offset": 0}"#,
    );
    let execute = || {
        let r = api.post(
            &format!("/api/client/servers/{server}/schedules/{id}/execute"),
            "",
        );
        assert_eq!(r.status, 202, "{}", r.text());
    };
    execute();
    let pings = receiver.wait_for("/ping/", 2);
    let paths: Vec<&str> = pings.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/ping/abc/start", "/ping/abc"]);

    fail_backups(&hoard, &server, true);
    execute();
    let pings = receiver.wait_for("/ping/", 4);
    let paths: Vec<&str> = pings[2..].iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/ping/abc/start", "/ping/abc/fail"]);
    assert!(String::from_utf8_lossy(&pings[3].body).contains("pre_backup"));

    // A backup asked for by hand is not the schedule's: no ping.
    fail_backups(&hoard, &server, false);
    api.backup_and_wait(&server, "{}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.got().len(), 4);
}

#[test]
fn channels_are_for_admins_masked_checked_and_testable() {
    let receiver = Receiver::start();
    let hoard = Hoard::start(&[]);
    let (_dir, server, api) = setup(&hoard);
    let created = add_channel(
        &api,
        json!({"kind": "discord", "name": "Discord", "url": receiver.url("/api/webhooks/1/secrettoken"),
               "events": ["backup_failed", "storage_low"], "servers": [server]}),
    );
    let a = &created["attributes"];
    let id = a["id"].as_i64().unwrap();
    assert_eq!(
        a["url"],
        format!("http://127.0.0.1:{}/…oken", receiver.port)
    );
    assert_eq!(a["servers"], json!([server]));
    assert_eq!(a["is_enabled"], true);
    assert_eq!(a["has_secret"], false);

    // Bad input is refused and changes nothing.
    for body in [
        json!({"kind": "email", "url": "https://x"}),
        json!({"kind": "ntfy", "url": "ftp://x"}),
        json!({"kind": "ntfy"}),
        json!({"kind": "ntfy", "url": "https://ntfy.sh/t", "events": ["everything"]}),
        json!({"kind": "ntfy", "url": "https://ntfy.sh/t", "servers": ["nope"]}),
        json!({"kind": "ntfy", "url": "https://ntfy.sh/t", "servers": []}),
        json!({"kind": "ntfy", "url": "https://ntfy.sh/t", "events": []}),
    ] {
        api.post(CHANNELS, &body.to_string())
            .assert_error(422, "ValidationException");
    }
    assert_eq!(
        api.get(CHANNELS).json()["data"].as_array().unwrap().len(),
        1
    );

    // Send test: delivered, then, pointed at nothing, the reason.
    let r = api.post(&format!("{CHANNELS}/{id}/test"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["attributes"]["delivered"], true);
    let test = receiver.wait_for("/api/webhooks/", 1);
    assert_eq!(test[0].json()["embeds"][0]["title"], "Test notification");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://127.0.0.1:{}/x", closed.local_addr().unwrap().port());
    drop(closed);
    // A blank URL keeps the saved one.
    let r = api.patch(&format!("{CHANNELS}/{id}"), r#"{"url": ""}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["attributes"]["url"], a["url"]);
    let r = api.patch(
        &format!("{CHANNELS}/{id}"),
        &json!({"url": dead, "is_enabled": false}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["attributes"]["name"], "Discord", "unchanged");
    assert_eq!(r.json()["attributes"]["is_enabled"], false);
    let r = api.post(&format!("{CHANNELS}/{id}/test"), "");
    assert_eq!(r.json()["attributes"]["delivered"], false);
    assert!(
        r.json()["attributes"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{}",
        r.text()
    );
    let shown = api.get(&format!("{CHANNELS}/{id}")).json();
    assert!(shown["attributes"]["last_error"].is_string());

    // Admins only.
    hoard.add_user("player", false);
    let player = hoard.api(&hoard.key("player"));
    player
        .get(CHANNELS)
        .assert_error(403, "InsufficientPermissionsException");
    player
        .post(CHANNELS, r#"{"kind": "ntfy", "url": "https://ntfy.sh/t"}"#)
        .assert_error(403, "InsufficientPermissionsException");

    assert_eq!(api.delete(&format!("{CHANNELS}/{id}")).status, 204);
    api.get(&format!("{CHANNELS}/{id}"))
        .assert_error(404, "NotFoundHttpException");
}

#[test]
fn a_notification_never_delivered_is_dropped_and_logged_in_the_servers_history() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let hoard = Hoard::start(&["--notify-retry-max-secs", "1", "--notify-give-up-secs", "2"]);
    let (_dir, server, api) = setup(&hoard);
    add_channel(
        &api,
        json!({"kind": "ntfy", "url": url, "events": ["backup_completed"]}),
    );
    api.backup_and_wait(&server, "{}");
    let history =
        format!("/api/client/servers/{server}/activity?filter[event]=notification:failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    let event = loop {
        let list = api.get(&history).json();
        if let Some(event) = list["data"].as_array().and_then(|d| d.first()) {
            break event["attributes"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no notification:failed event: {list}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(event["properties"]["event"], "backup_completed");
    assert!(
        event["properties"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{event}"
    );
    let channel = api.get(CHANNELS).json()["data"][0]["attributes"].clone();
    assert_eq!(channel["pending"], 0, "dropped: {channel}");
    assert!(
        channel["last_error"]
            .as_str()
            .unwrap()
            .starts_with("gave up"),
        "{channel}"
    );
}
