//! `hoard notify` against a real hoard binary and data directory: each kind of channel, URLs
//! masked and the webhook's secret shown only when it is made, partial edits, clear errors
//! for bad input, a test sent to a real HTTP receiver (and to a closed port), and deletion.

mod common;

use common::receiver::Receiver;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::TcpListener;
use std::process::Output;

/// A data directory with two servers, worked on by the CLI alone: channels need no
/// running `hoard serve`.
struct Data {
    dir: tempfile::TempDir,
    game: tempfile::TempDir,
    servers: [String; 2],
}

impl Data {
    fn new() -> Data {
        let dir = tempfile::tempdir().unwrap();
        let game = tempfile::tempdir().unwrap();
        let mut data = Data {
            dir,
            game,
            servers: Default::default(),
        };
        for (i, name) in ["Survival", "Creative"].into_iter().enumerate() {
            let root = data.game.path().join(name);
            common::write(&root, "server.properties", b"motd=hello\n");
            let path = root.to_str().unwrap();
            let added = data.json(&[
                "server", "add", "--name", name, "--path", path, "--owner", "admin",
            ]);
            data.servers[i] = added["attributes"]["identifier"]
                .as_str()
                .unwrap()
                .to_string();
        }
        data
    }

    fn cli(&self, args: &[&str]) -> Output {
        common::cli_in(self.dir.path(), args, None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "hoard {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Adds a channel; returns the whole body (attributes and meta).
    fn add(&self, kind: &str, url: &str, extra: &[&str]) -> Value {
        let mut args = vec!["notify", "add", "--kind", kind, "--url", url];
        args.extend_from_slice(extra);
        self.json(&args)
    }

    fn edit(&self, id: i64, flags: &[&str]) -> Value {
        let id = id.to_string();
        let mut args = vec!["notify", "edit", &id];
        args.extend_from_slice(flags);
        self.json(&args)["attributes"].clone()
    }

    fn list(&self) -> Vec<Value> {
        self.json(&["notify", "list"])["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["attributes"].clone())
            .collect()
    }

    /// A command that must fail: its exit status and stderr.
    fn failure(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.cli(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A URL nothing listens on.
fn closed_url() -> String {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}/x", closed.local_addr().unwrap().port())
}

fn id(channel: &Value) -> i64 {
    channel["attributes"]["id"].as_i64().unwrap()
}

#[test]
fn each_kind_is_added_with_failures_only_by_default() {
    let data = Data::new();
    let [survival, _] = &data.servers;
    let webhook = data.add(
        "webhook",
        "https://hooks.example.com/in/abcdef123456",
        &["--name", "ops", "--event", "backup_completed"],
    );
    let discord = data.add(
        "discord",
        "https://discord.com/api/webhooks/1/secrettoken",
        &["--server", survival],
    );
    let ntfy = data.add("ntfy", "https://ntfy.sh/my-topic", &["--disabled"]);
    let healthchecks = data.add("healthchecks", "https://hc-ping.com/0123-4567", &[]);

    let w = &webhook["attributes"];
    assert_eq!(w["kind"], "webhook");
    assert_eq!(w["name"], "ops");
    assert_eq!(w["events"], json!(["backup_completed"]));
    assert_eq!(w["has_secret"], true);
    assert_eq!(w["is_enabled"], true);
    let d = &discord["attributes"];
    assert_eq!(d["name"], "discord", "named after its kind");
    assert_eq!(d["events"], json!(["backup_failed", "restore_failed"]));
    assert_eq!(d["servers"], json!([survival]));
    assert_eq!(d["has_secret"], false);
    assert!(discord["meta"].is_null(), "only webhooks have a secret");
    assert_eq!(ntfy["attributes"]["is_enabled"], false);
    assert_eq!(ntfy["attributes"]["servers"], Value::Null, "every server");
    assert_eq!(healthchecks["attributes"]["kind"], "healthchecks");

    let list = data.list();
    let kinds: Vec<&str> = list.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["webhook", "discord", "ntfy", "healthchecks"]);
    assert_eq!(list[1]["id"], id(&discord));

    let table = data.ok(&["notify", "list"]);
    let header = table.lines().next().unwrap();
    for column in [
        "ID",
        "NAME",
        "KIND",
        "URL",
        "EVENTS",
        "SERVERS",
        "ENABLED",
        "LAST DELIVERY",
        "LAST ERROR",
        "PENDING",
    ] {
        assert!(header.contains(column), "{table}");
    }
    assert_eq!(table.lines().count(), 5, "{table}");
    let row = |kind: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} row in {table}"))
    };
    assert!(row("discord").contains(survival.as_str()), "{table}");
    assert!(row("webhook").contains(" all "), "{table}");
    assert!(row("ntfy").contains(" no "), "{table}");
    assert!(row("webhook").contains("never"), "{table}");
}

#[test]
fn urls_are_masked_and_the_secret_is_shown_only_when_made() {
    let data = Data::new();
    let added = data.add("webhook", "https://hooks.example.com/in/abcdef123456", &[]);
    let secret = added["meta"]["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32, "{added}");
    assert_eq!(
        added["attributes"]["url"],
        "https://hooks.example.com/…3456"
    );

    // Without --json the secret is printed too, with what it is for.
    let human = data.ok(&[
        "notify",
        "add",
        "--kind",
        "webhook",
        "--url",
        "https://hooks.example.com/other",
    ]);
    let line = human
        .lines()
        .find(|l| l.starts_with("Signing secret: "))
        .unwrap_or_else(|| panic!("no secret in {human}"));
    assert!(line.len() > "Signing secret: ".len() + 30, "{human}");
    assert!(human.contains("X-Hoard-Signature"), "{human}");

    data.add(
        "discord",
        "https://discord.com/api/webhooks/1/secrettoken",
        &[],
    );
    let listed = data.json(&["notify", "list"]);
    let text = listed.to_string();
    assert!(!text.contains(&secret), "{text}");
    assert!(!text.contains("secrettoken"), "{text}");
    assert!(!text.contains("abcdef123456"), "{text}");
    assert!(listed["data"][0]["meta"].is_null());
    assert_eq!(
        listed["data"][2]["attributes"]["url"],
        "https://discord.com/…oken"
    );
    assert!(!text.contains("\"secret\""), "{text}");
    assert_eq!(
        listed["meta"]["events"],
        json!([
            "backup_failed",
            "backup_completed",
            "restore_completed",
            "restore_failed",
            "schedule_skipped",
            "storage_low",
            "jobs_recovered"
        ])
    );
    let table = data.ok(&["notify", "list"]);
    assert!(!table.contains(&secret), "{table}");
    assert!(!table.contains("secrettoken"), "{table}");
    assert!(table.contains("https://discord.com/…oken"), "{table}");
}

#[test]
fn edit_changes_only_what_is_given() {
    let data = Data::new();
    let [survival, creative] = &data.servers;
    let added = data.add(
        "ntfy",
        "https://ntfy.sh/first-topic",
        &[
            "--name",
            "phone",
            "--event",
            "backup_failed",
            "--event",
            "storage_low",
            "--server",
            survival,
        ],
    );
    let id = id(&added);
    let before = added["attributes"].clone();

    let renamed = data.edit(id, &["--name", "pager"]);
    assert_eq!(renamed["name"], "pager");
    for field in [
        "kind",
        "url",
        "events",
        "servers",
        "is_enabled",
        "created_at",
    ] {
        assert_eq!(renamed[field], before[field], "{field} changed");
    }

    let events = data.edit(id, &["--event", "backup_completed"]);
    assert_eq!(events["events"], json!(["backup_completed"]), "replaced");
    assert_eq!(events["name"], "pager");

    let moved = data.edit(id, &["--url", "https://ntfy.example.org/second"]);
    assert_eq!(moved["url"], "https://ntfy.example.org/…cond");
    assert_eq!(moved["servers"], json!([survival]));

    let all = data.edit(id, &["--all-servers"]);
    assert_eq!(all["servers"], Value::Null);
    let both = data.edit(id, &["--server", creative, "--server", survival]);
    let mut servers: Vec<&str> = both["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    servers.sort();
    let mut expected = [survival.as_str(), creative.as_str()];
    expected.sort();
    assert_eq!(servers, expected);

    assert_eq!(data.edit(id, &["--disable"])["is_enabled"], false);
    let enabled = data.edit(id, &["--enable"]);
    assert_eq!(enabled["is_enabled"], true);
    assert_eq!(enabled["events"], json!(["backup_completed"]));
    assert_eq!(enabled["name"], "pager");

    let (code, stderr) = data.failure(&["notify", "edit", &id.to_string()]);
    assert_eq!(code, Some(1), "{stderr}");
    for flag in [
        "--name",
        "--url",
        "--event",
        "--server",
        "--all-servers",
        "--enable",
        "--disable",
        "--secret",
    ] {
        assert!(stderr.contains(flag), "{stderr}");
    }
    let out = data.cli(&[
        "notify",
        "edit",
        &id.to_string(),
        "--server",
        survival,
        "--all-servers",
    ]);
    assert!(!out.status.success(), "--server and --all-servers conflict");
    assert_eq!(data.list()[0], enabled, "a refused edit changes nothing");
}

#[test]
fn bad_input_exits_1_naming_the_problem_and_changes_nothing() {
    let data = Data::new();
    let add = |kind: &str, url: &str, extra: &[&str]| {
        let mut args = vec!["notify", "add", "--kind", kind, "--url", url];
        args.extend_from_slice(extra);
        data.failure(&args)
    };
    let cases = [
        (
            add("email", "https://x.example.com", &[]),
            "webhook, discord, ntfy or healthchecks",
        ),
        (
            add("ntfy", "ftp://x.example.com", &[]),
            "http:// or https://",
        ),
        (add("ntfy", "ntfy.sh/topic", &[]), "http:// or https://"),
        (
            add("ntfy", "https://ntfy.sh/t", &["--event", "everything"]),
            "'everything' is not an event: use backup_failed",
        ),
        (
            add("ntfy", "https://ntfy.sh/t", &["--server", "nope"]),
            "no server 'nope'",
        ),
        (
            add("discord", "https://discord.com/x", &["--secret", "s3cret"]),
            "--secret is for webhook channels only",
        ),
    ];
    for ((code, stderr), expected) in cases {
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(data.list().is_empty());

    let id = id(&data.add("ntfy", "https://ntfy.sh/t", &[])).to_string();
    let (code, stderr) = data.failure(&["notify", "edit", &id, "--url", "nonsense"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("http:// or https://"), "{stderr}");
    let (code, stderr) = data.failure(&["notify", "edit", &id, "--secret", "s3cret"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("webhook channels only"), "{stderr}");
    assert_eq!(data.list()[0]["url"], "https://ntfy.sh/t");

    for args in [
        &["notify", "edit", "99", "--name", "x"][..],
        &["notify", "rm", "99"],
        &["notify", "test", "99"],
    ] {
        let (code, stderr) = data.failure(args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("no notification channel 99") && stderr.contains("hoard notify list"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn help_lists_the_events_the_default_and_the_healthchecks_pings() {
    let data = Data::new();
    let help = data.ok(&["notify", "add", "--help"]);
    for event in [
        "backup_failed",
        "backup_completed",
        "restore_completed",
        "restore_failed",
        "schedule_skipped",
        "storage_low",
        "jobs_recovered",
    ] {
        assert!(help.contains(event), "{event}: {help}");
    }
    assert!(
        help.contains("Failures only (backup_failed, restore_failed)"),
        "{help}"
    );
    for ping in ["<url>/start", "<url> when it succeeds", "<url>/fail"] {
        assert!(help.contains(ping), "{ping}: {help}");
    }
}

#[test]
fn test_sends_now_and_a_failure_exits_1_with_the_reason() {
    let receiver = Receiver::start();
    let data = Data::new();
    let webhook = data.add(
        "webhook",
        &receiver.url("/hook/in"),
        &["--secret", "first-secret", "--disabled"],
    );
    let id = id(&webhook);
    let id_text = id.to_string();
    assert_eq!(webhook["meta"]["secret"], "first-secret");

    // A new secret signs from now on; a disabled channel can still be tested.
    data.edit(id, &["--secret", "second-secret"]);
    let out = data.ok(&["notify", "test", &id_text]);
    assert_eq!(out.trim(), "Delivered.");
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let request = &got[0];
    assert_eq!(request.path, "/hook/in");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["event"], "test");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"second-secret").unwrap();
    mac.update(&request.body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        request.header("x-hoard-signature"),
        Some(signature.as_str())
    );
    let listed = &data.list()[0];
    assert!(listed["last_delivery_at"].is_string(), "{listed}");
    assert_eq!(listed["last_error"], Value::Null);

    let tested = data.json(&["notify", "test", &id_text]);
    assert_eq!(tested["object"], "notification_test");
    assert_eq!(tested["attributes"]["delivered"], true);
    assert_eq!(receiver.got().len(), 2);

    let dead = closed_url();
    data.edit(id, &["--url", &dead]);
    let (code, stderr) = data.failure(&["notify", "test", &id_text]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("not delivered") && stderr.contains("cannot reach"),
        "{stderr}"
    );
    let out = data.cli(&["--json", "notify", "test", &id_text]);
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["attributes"]["delivered"], false);
    assert!(
        body["attributes"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach")
    );
    let listed = &data.list()[0];
    assert!(
        listed["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{listed}"
    );
    let table = data.ok(&["notify", "list"]);
    assert!(table.contains("cannot reach"), "{table}");
}

#[test]
fn rm_deletes_the_channel() {
    let data = Data::new();
    let keep = id(&data.add("ntfy", "https://ntfy.sh/keep", &[]));
    let gone = id(&data.add("ntfy", "https://ntfy.sh/gone", &[])).to_string();
    let out = data.ok(&["notify", "rm", &gone]);
    assert_eq!(out.trim(), format!("Deleted notification channel {gone}"));
    let list = data.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], keep);
    let (code, stderr) = data.failure(&["notify", "rm", &gone]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no notification channel"), "{stderr}");

    data.ok(&["notify", "rm", &keep.to_string()]);
    assert!(data.list().is_empty());
    let table = data.ok(&["notify", "list"]);
    assert!(table.contains("hoard notify add"), "{table}");
}
