//! `hoard schedule` and `hoard retention` against a real hoard: the presets' cron fields,
//! the backup task a new schedule gets, partial edits, clear errors for bad times, running
//! a schedule now, and retention policies and previews.

mod common;

use common::*;
use serde_json::{Value, json};

/// A running hoard (not limiting how often backups start) with one server holding a small
/// file; returns the server's short id and an API client of the admin.
fn setup() -> (Hoard, tempfile::TempDir, String, Api) {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "world/level.dat", b"spawn chunks");
    let server = hoard.add_server("mc", dir.path(), "admin", &[]);
    let api = hoard.api(&hoard.key("admin"));
    (hoard, dir, server, api)
}

/// Adds a schedule through the CLI; returns its attributes.
fn add(hoard: &Hoard, server: &str, name: &str, when: &[&str], extra: &[&str]) -> Value {
    let mut args = vec!["schedule", "add", server, "--name", name];
    args.extend_from_slice(when);
    args.extend_from_slice(extra);
    hoard.cli_json(&args)["attributes"].clone()
}

fn cron(minute: &str, hour: &str, dom: &str, month: &str, dow: &str) -> Value {
    json!({"minute": minute, "hour": hour, "day_of_month": dom, "month": month, "day_of_week": dow})
}

/// The schedule with this name in a list body.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["attributes"])
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no schedule {name} in {list}"))
}

/// The command's exit status and what it printed on stderr.
fn failure(hoard: &Hoard, args: &[&str]) -> (Option<i32>, String) {
    let out = hoard.cli(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn presets_give_their_cron_fields_and_one_backup_task() {
    let (hoard, _dir, server, api) = setup();
    let ignore = ["--ignore", "*.log", "--ignore", "cache/"];
    add(&hoard, &server, "hourly", &["--hourly"], &ignore);
    let daily = add(&hoard, &server, "daily", &["--daily", "04:00"], &ignore);
    add(
        &hoard,
        &server,
        "weekly",
        &["--weekly", "sun", "04:00"],
        &ignore,
    );
    add(
        &hoard,
        &server,
        "long day",
        &["--weekly", "Monday", "23:30"],
        &[],
    );
    add(&hoard, &server, "seventh", &["--weekly", "7", "4:05"], &[]);
    add(
        &hoard,
        &server,
        "weekdays",
        &["--cron", "30 3 * * 1-5"],
        &ignore,
    );
    assert_eq!(daily["description"], "At 04:00.");
    assert_eq!(daily["is_active"], true);
    assert_eq!(daily["next_runs"].as_array().unwrap().len(), 5);

    let expected = [
        ("hourly", cron("0", "*", "*", "*", "*")),
        ("daily", cron("0", "4", "*", "*", "*")),
        ("weekly", cron("0", "4", "*", "*", "0")),
        ("long day", cron("30", "23", "*", "*", "1")),
        ("seventh", cron("5", "4", "*", "*", "0")),
        ("weekdays", cron("30", "3", "*", "*", "1-5")),
    ];
    let listed = hoard.cli_json(&["schedule", "list", &server]);
    assert!(listed["meta"]["timezone"].is_string(), "{listed}");
    let from_api = api
        .get(&format!("/api/client/servers/{server}/schedules"))
        .json();
    for list in [&listed, &from_api] {
        assert_eq!(list["data"].as_array().unwrap().len(), expected.len());
        for (name, cron) in &expected {
            let schedule = named(list, name);
            assert_eq!(&schedule["cron"], cron, "{name}");
            let tasks = schedule["relationships"]["tasks"]["data"]
                .as_array()
                .unwrap();
            assert_eq!(tasks.len(), 1, "{name}: {schedule}");
            let task = &tasks[0]["attributes"];
            assert_eq!(task["action"], "backup");
            assert_eq!(task["time_offset"], 0);
            let payload = if ["long day", "seventh"].contains(name) {
                ""
            } else {
                "*.log\ncache/"
            };
            assert_eq!(task["payload"], payload, "{name}");
        }
    }

    let table = hoard.cli_ok(&["schedule", "list", &server]);
    let header = table.lines().next().unwrap();
    for column in ["ID", "NAME", "WHEN", "NEXT RUN", "LAST RUN", "ACTIVE"] {
        assert!(header.contains(column), "{table}");
    }
    assert!(table.contains("At 04:00."), "{table}");
    assert_eq!(table.lines().count(), expected.len() + 1, "{table}");
}

#[test]
fn inactive_and_only_if_changed_are_set_on_add() {
    let (hoard, _dir, server, _api) = setup();
    let schedule = add(
        &hoard,
        &server,
        "quiet",
        &["--daily", "05:00"],
        &["--inactive", "--only-if-changed"],
    );
    assert_eq!(schedule["is_active"], false);
    assert_eq!(schedule["only_if_changed"], true);
    assert_eq!(schedule["next_run_at"], Value::Null);
}

#[test]
fn edit_changes_only_what_is_given() {
    let (hoard, _dir, server, api) = setup();
    let created = add(
        &hoard,
        &server,
        "nightly",
        &["--daily", "04:00"],
        &["--ignore", "*.log"],
    );
    let id = created["id"].to_string();
    let edit = |args: &[&str]| {
        let mut all = vec!["schedule", "edit", &server, &id];
        all.extend_from_slice(args);
        hoard.cli_json(&all)["attributes"].clone()
    };

    let renamed = edit(&["--name", "night owl"]);
    assert_eq!(renamed["name"], "night owl");
    for field in ["cron", "is_active", "only_if_changed", "relationships"] {
        assert_eq!(renamed[field], created[field], "{field}");
    }

    let moved = edit(&["--weekly", "fri", "22:15"]);
    assert_eq!(moved["cron"], cron("15", "22", "*", "*", "5"));
    assert_eq!(moved["name"], "night owl");
    assert_eq!(moved["is_active"], true);

    let paused = edit(&["--inactive", "--only-if-changed", "true"]);
    assert_eq!(paused["is_active"], false);
    assert_eq!(paused["only_if_changed"], true);
    assert_eq!(paused["next_run_at"], Value::Null);
    assert_eq!(paused["cron"], moved["cron"]);
    assert_eq!(paused["name"], "night owl");

    let resumed = edit(&["--active", "--cron", "0 */6 * * *"]);
    assert_eq!(resumed["is_active"], true);
    assert_eq!(resumed["only_if_changed"], true);
    assert_eq!(resumed["cron"], cron("0", "*/6", "*", "*", "*"));
    let task = &resumed["relationships"]["tasks"]["data"][0]["attributes"];
    assert_eq!(task["payload"], "*.log");

    let shown = api
        .get(&format!("/api/client/servers/{server}/schedules/{id}"))
        .json();
    assert_eq!(shown["attributes"]["cron"], resumed["cron"]);

    let (code, stderr) = failure(&hoard, &["schedule", "edit", &server, &id]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("nothing to change"), "{stderr}");

    hoard.cli_ok(&["schedule", "rm", &server, &id]);
    let listed = hoard.cli_json(&["schedule", "list", &server]);
    assert_eq!(listed["data"], json!([]));
    let (code, stderr) = failure(&hoard, &["schedule", "rm", &server, &id]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("schedule"), "{stderr}");
}

#[test]
fn bad_times_and_cron_expressions_fail_naming_the_problem() {
    let (hoard, _dir, server, _api) = setup();
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--daily", "25:00"], &["25:00", "hour"]),
        (&["--daily", "04:60"], &["04:60", "minute"]),
        (&["--daily", "4am"], &["4am", "HH:MM"]),
        (
            &["--weekly", "someday", "04:00"],
            &["someday", "mon", "0 to 7"],
        ),
        (&["--cron", "0 4 * *"], &["five"]),
        (&["--cron", "0 25 * * *"], &["hour", "25"]),
    ];
    for (when, words) in cases {
        let mut args = vec!["schedule", "add", &server, "--name", "bad"];
        args.extend_from_slice(when);
        let (code, stderr) = failure(&hoard, &args);
        assert_eq!(code, Some(1), "{when:?}: {stderr}");
        for word in words {
            assert!(stderr.contains(word), "{when:?}: {stderr}");
        }
    }
    let listed = hoard.cli_json(&["schedule", "list", &server]);
    assert_eq!(listed["data"], json!([]), "a bad schedule is not saved");
}

#[test]
fn a_schedule_whose_task_is_refused_is_not_kept() {
    let (hoard, _dir, server, _api) = setup();
    hoard.cli_ok(&["server", "update", &server, "--backup-limit", "0"]);
    let (code, stderr) = failure(
        &hoard,
        &[
            "schedule", "add", &server, "--name", "never", "--daily", "04:00",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("backup limit"), "{stderr}");
    let listed = hoard.cli_json(&["schedule", "list", &server]);
    assert_eq!(
        listed["data"],
        json!([]),
        "no schedule without its backup task"
    );
}

#[test]
fn run_makes_a_scheduled_backup_and_prints_it() {
    let (hoard, _dir, server, api) = setup();
    let id = add(&hoard, &server, "nightly", &["--daily", "04:00"], &[])["id"].to_string();

    let printed = hoard.cli_ok(&["schedule", "run", &server, &id]);
    let uuid = printed
        .trim()
        .strip_prefix("Completed: backup ")
        .unwrap_or_else(|| panic!("{printed}"))
        .to_string();

    let backups = hoard.cli_json(&["backup", "list", &server]);
    let backup = &backups["data"][0]["attributes"];
    assert_eq!(backup["uuid"], uuid.as_str());
    assert_eq!(backup["is_scheduled"], true);
    assert_eq!(backup["status"], "completed");
    let from_api = api
        .get(&format!("/api/client/servers/{server}/backups/{uuid}"))
        .json();
    assert_eq!(from_api["attributes"]["is_scheduled"], true);

    let schedule = named(&hoard.cli_json(&["schedule", "list", &server]), "nightly").clone();
    assert_eq!(schedule["last_run"]["outcome"], "completed");
    assert_eq!(schedule["last_run"]["backup"], uuid.as_str());
    assert_eq!(schedule["is_processing"], false);
    let table = hoard.cli_ok(&["schedule", "list", &server]);
    assert!(table.contains("completed"), "{table}");

    let ran = hoard.cli_json(&["schedule", "run", &server, &id]);
    assert_eq!(ran["attributes"]["last_run"]["outcome"], "completed");
    assert_ne!(ran["attributes"]["last_run"]["backup"], uuid.as_str());
}

#[test]
fn a_failed_run_exits_1_with_its_reason() {
    let (hoard, _dir, server, _api) = setup();
    hoard.cli_ok(&[
        "server",
        "update",
        &server,
        "--pre-backup",
        "echo broken >&2; exit 1",
    ]);
    let id = add(&hoard, &server, "nightly", &["--hourly"], &[])["id"].to_string();
    let (code, stderr) = failure(&hoard, &["schedule", "run", &server, &id]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("failed"), "{stderr}");
    let schedule = named(&hoard.cli_json(&["schedule", "list", &server]), "nightly").clone();
    assert_eq!(schedule["last_run"]["outcome"], "failed");
}

#[test]
fn retention_set_show_and_clear() {
    let (hoard, _dir, server, api) = setup();
    let empty = hoard.cli_json(&["retention", "show", &server]);
    assert_eq!(empty["object"], "retention_policy");
    assert_eq!(empty["attributes"]["is_set"], false);

    let set = hoard.cli_json(&[
        "retention",
        "set",
        &server,
        "--keep-last",
        "3",
        "--keep-daily",
        "7",
        "--keep-within",
        "30d",
    ]);
    let shown = hoard.cli_json(&["retention", "show", &server]);
    assert_eq!(set, shown);
    let policy = &shown["attributes"];
    assert_eq!(policy["is_set"], true);
    assert_eq!(policy["keep_last"], 3);
    assert_eq!(policy["keep_daily"], 7);
    assert_eq!(policy["keep_within"], "30d");
    for unset in ["keep_hourly", "keep_weekly", "keep_monthly", "keep_yearly"] {
        assert_eq!(policy[unset], Value::Null, "{unset}");
    }
    let from_api = api
        .get(&format!("/api/client/servers/{server}/retention"))
        .json();
    assert_eq!(from_api, shown);

    // `set` replaces the whole policy.
    let replaced = hoard.cli_json(&["retention", "set", &server, "--keep-weekly", "4"]);
    assert_eq!(replaced["attributes"]["keep_weekly"], 4);
    assert_eq!(replaced["attributes"]["keep_last"], Value::Null);
    assert_eq!(replaced["attributes"]["keep_within"], Value::Null);
    let text = hoard.cli_ok(&["retention", "show", &server]);
    assert!(text.contains("--keep-weekly 4"), "{text}");

    let cleared = hoard.cli_json(&["retention", "set", &server, "--clear"]);
    assert_eq!(cleared["attributes"]["is_set"], false);
    let shown = hoard.cli_json(&["retention", "show", &server]);
    assert_eq!(shown["attributes"]["is_set"], false);

    let (code, stderr) = failure(&hoard, &["retention", "set", &server]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--clear"), "{stderr}");
    let (code, stderr) = failure(
        &hoard,
        &["retention", "set", &server, "--keep-within", "soon"],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("soon"), "{stderr}");
}

#[test]
fn retention_preview_lists_every_backup() {
    let (hoard, _dir, server, api) = setup();
    for _ in 0..3 {
        assert_eq!(api.backup_and_wait(&server, "{}")["status"], "completed");
    }
    hoard.cli_ok(&["retention", "set", &server, "--keep-last", "1"]);

    for rules in [&[][..], &["--keep-daily", "2", "--keep-within", "1d"][..]] {
        let mut args = vec!["retention", "preview", &server];
        args.extend_from_slice(rules);
        let preview = hoard.cli_json(&args);
        let verdicts = preview["data"].as_array().unwrap();
        assert_eq!(verdicts.len(), 3, "{preview}");
        for verdict in verdicts {
            assert_eq!(verdict["object"], "retention_verdict");
            assert!(verdict["attributes"]["keep"].is_boolean(), "{verdict}");
            assert!(verdict["attributes"]["reasons"].is_array(), "{verdict}");
        }
        let (keep, delete) = (&preview["meta"]["keep"], &preview["meta"]["delete"]);
        assert_eq!(keep.as_u64().unwrap() + delete.as_u64().unwrap(), 3);

        let text = hoard.cli_ok(&args);
        let rows = text
            .lines()
            .filter(|l| l.starts_with("KEEP") || l.starts_with("DELETE"))
            .count();
        assert_eq!(rows, 3, "{text}");
        let summary = text.lines().last().unwrap();
        let counts: Vec<u64> = summary
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), 3, "{summary}");
        assert!(
            summary.contains("kept") && summary.contains("deleted"),
            "{summary}"
        );
    }
    assert_eq!(
        hoard.cli_json(&["backup", "list", &server])["data"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "a preview deletes nothing"
    );
}
