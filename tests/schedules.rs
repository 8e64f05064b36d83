//! Schedules and retention through the API, against a real hoard: Pterodactyl's shapes and
//! permissions, runs made by the real scheduler (its clock moved with the documented
//! `schedule_clock_offset_secs` setting, so no test waits for real minutes), catch-up,
//! skipping unchanged trees, pruning only after a success, and rotation at the limit.

mod common;

use common::{Api, Hoard};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A server owned by admin over a small tree, with an API key for admin.
fn setup(hoard: &Hoard, extra: &[&str]) -> (tempfile::TempDir, String, Api) {
    let dir = tempfile::tempdir().unwrap();
    common::write(dir.path(), "server.properties", b"motd=hello\n");
    common::write(dir.path(), "world/level.dat", &common::noise(4096, 1));
    let server = hoard.add_server("mc", dir.path(), "admin", extra);
    let api = hoard.api(&hoard.key("admin"));
    (dir, server, api)
}

fn put(api: &Api, path: &str, body: &str) -> common::Reply {
    api.request("PUT", path, Some(body), &[])
}

const DAILY_AT_4: &str = r#"{"name": "nightly", "minute": "0", "hour": "4", "day_of_month": "*", "month": "*", "day_of_week": "*"}"#;

/// Creates a schedule with one backup task; returns its id.
fn schedule_with_task(api: &Api, server: &str, body: &str) -> i64 {
    let r = api.post(&format!("/api/client/servers/{server}/schedules"), body);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["attributes"]["id"].as_i64().unwrap();
    let r = api.post(
        &format!("/api/client/servers/{server}/schedules/{id}/tasks"),
        r#"{"action": "backup", "payload": "", "time_offset": 0}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    id
}

fn schedule(api: &Api, server: &str, id: i64) -> Value {
    let r = api.get(&format!("/api/client/servers/{server}/schedules/{id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["attributes"].clone()
}

/// Waits until the schedule's first run (or missed time) is recorded and over.
fn wait_first_run(api: &Api, server: &str, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let s = schedule(api, server, id);
        if s["is_processing"] == false && !s["last_run"].is_null() {
            return s["last_run"].clone();
        }
        assert!(Instant::now() < deadline, "the run did not end: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the schedule now and waits for the run to end (its event is logged once it has);
/// returns its `last_run`.
fn execute(hoard: &Hoard, api: &Api, server: &str, id: i64) -> Value {
    let runs = hoard.activity_count("server:schedule.run");
    let r = api.post(
        &format!("/api/client/servers/{server}/schedules/{id}/execute"),
        "",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json(), json!([]));
    let deadline = Instant::now() + Duration::from_secs(90);
    while hoard.activity_count("server:schedule.run") == runs {
        assert!(Instant::now() < deadline, "the run did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = schedule(api, server, id);
    assert_eq!(s["is_processing"], false, "{s}");
    s["last_run"].clone()
}

fn backups(api: &Api, server: &str) -> Vec<Value> {
    let r = api.get(&format!(
        "/api/client/servers/{server}/backups?per_page=100"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["attributes"].clone())
        .collect()
}

fn uuids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|b| b["uuid"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn schedule_endpoints_answer_in_pterodactyls_shapes() {
    let hoard = Hoard::start(&["--timezone", "UTC"]);
    let (_dir, server, api) = setup(&hoard, &[]);
    let base = format!("/api/client/servers/{server}/schedules");

    let r = api.post(&base, DAILY_AT_4);
    assert_eq!(r.status, 200, "{}", r.text());
    let created = r.json();
    assert_eq!(created["object"], "server_schedule");
    let a = &created["attributes"];
    let id = a["id"].as_i64().unwrap();
    assert_eq!(a["name"], "nightly");
    assert_eq!(
        a["cron"],
        json!({"day_of_week": "*", "day_of_month": "*", "month": "*", "hour": "4", "minute": "0"})
    );
    assert_eq!(a["is_active"], true);
    assert_eq!(a["is_processing"], false);
    assert_eq!(a["only_when_online"], false);
    assert_eq!(a["last_run_at"], Value::Null);
    assert!(a["created_at"].as_str().unwrap().ends_with("+00:00"));
    assert!(a["updated_at"].is_string());
    let next = a["next_run_at"].as_str().unwrap();
    assert!(next.ends_with("T04:00:00+00:00"), "{next}");
    let runs: Vec<&str> = a["next_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 5);
    assert_eq!(runs[0], next);
    assert!(runs.iter().all(|t| t.ends_with("T04:00:00+00:00")));
    assert!(runs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(a["last_run"], Value::Null);
    assert_eq!(a["relationships"]["tasks"]["object"], "list");
    assert_eq!(a["relationships"]["tasks"]["data"], json!([]));

    // A schedule with no task has nothing to run.
    api.post(&format!("{base}/{id}/execute"), "")
        .assert_error(400, "BadRequestException");

    // Tasks: backup only; command and power are refused with the reason.
    let r = api.post(
        &format!("{base}/{id}/tasks"),
        r#"{"action": "command", "payload": "say hi", "time_offset": 0}"#,
    );
    r.assert_error(422, "ValidationException");
    assert_eq!(r.json()["errors"][0]["meta"]["source_field"], "action");
    assert!(r.detail().contains("no console"), "{}", r.detail());
    api.post(
        &format!("{base}/{id}/tasks"),
        r#"{"action": "power", "payload": "stop", "time_offset": 0}"#,
    )
    .assert_error(422, "ValidationException");
    api.post(
        &format!("{base}/{id}/tasks"),
        r#"{"action": "backup", "payload": "", "time_offset": 901}"#,
    )
    .assert_error(422, "ValidationException");
    let r = api.post(
        &format!("{base}/{id}/tasks"),
        r#"{"action": "backup", "payload": "*.log\ncache/", "time_offset": 0, "continue_on_failure": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let task = r.json();
    assert_eq!(task["object"], "schedule_task");
    let t = &task["attributes"];
    let task_id = t["id"].as_i64().unwrap();
    assert_eq!(t["sequence_id"], 1);
    assert_eq!(t["action"], "backup");
    assert_eq!(t["payload"], "*.log\ncache/");
    assert_eq!(t["time_offset"], 0);
    assert_eq!(t["is_queued"], false);
    assert_eq!(t["continue_on_failure"], true);
    let r = api.post(
        &format!("{base}/{id}/tasks/{task_id}"),
        r#"{"action": "backup", "payload": "*.log", "time_offset": 5}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["attributes"]["time_offset"], 5);

    // List and view include the tasks.
    let list = api.get(&base).json();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["object"], "server_schedule");
    let tasks = &list["data"][0]["attributes"]["relationships"]["tasks"]["data"];
    assert_eq!(tasks[0]["attributes"]["payload"], "*.log");
    assert_eq!(schedule(&api, &server, id)["name"], "nightly");

    // Update: what is given changes; a bad cron field is a 422 naming it.
    let r = api.post(
        &format!("{base}/{id}"),
        r#"{"name": "hourly", "minute": "15", "hour": "*", "is_active": false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let a = &r.json()["attributes"];
    assert_eq!(a["name"], "hourly");
    assert_eq!(a["cron"]["minute"], "15");
    assert_eq!(a["is_active"], false);
    assert_eq!(
        a["next_run_at"],
        Value::Null,
        "an inactive schedule has no next run"
    );
    for (field, value) in [
        ("minute", "61"),
        ("hour", "x"),
        ("day_of_month", "0"),
        ("month", "13"),
        ("day_of_week", "8-9"),
    ] {
        let r = api.post(&format!("{base}/{id}"), &json!({field: value}).to_string());
        r.assert_error(422, "ValidationException");
        assert_eq!(
            r.json()["errors"][0]["meta"]["source_field"],
            field,
            "{}",
            r.text()
        );
    }
    let r = api.post(
        &base,
        r#"{"name": "never", "minute": "0", "hour": "0", "day_of_month": "31", "month": "2", "day_of_week": "*"}"#,
    );
    r.assert_error(422, "ValidationException");
    api.post(&base, r#"{"minute": "0"}"#)
        .assert_error(422, "ValidationException");
    assert_eq!(schedule(&api, &server, id)["name"], "hourly", "unchanged");

    // The preview of fields not saved yet.
    let r = api.post(
        &format!("{base}/preview"),
        r#"{"minute": "30", "hour": "2", "day_of_month": "*", "month": "*", "day_of_week": "0"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let p = &r.json()["attributes"];
    assert_eq!(p["expression"], "30 2 * * 0");
    assert_eq!(p["next_runs"].as_array().unwrap().len(), 5);

    // Unknown ids are 404; delete is 204.
    api.get(&format!("{base}/9999"))
        .assert_error(404, "NotFoundHttpException");
    api.get(&format!("{base}/abc"))
        .assert_error(404, "NotFoundHttpException");
    assert_eq!(
        api.delete(&format!("{base}/{id}/tasks/{task_id}")).status,
        204
    );
    assert_eq!(api.delete(&format!("{base}/{id}")).status, 204);
    api.get(&format!("{base}/{id}"))
        .assert_error(404, "NotFoundHttpException");
    assert!(hoard.activity_count("server:schedule.create") == 1);
    assert!(hoard.activity_count("server:schedule.delete") == 1);
}

#[test]
fn subusers_need_the_schedule_permissions() {
    let hoard = Hoard::start(&[]);
    let (_dir, server, api) = setup(&hoard, &[]);
    let base = format!("/api/client/servers/{server}/schedules");
    let id = schedule_with_task(&api, &server, DAILY_AT_4);
    hoard.add_user("helper", false);
    hoard.add_subuser(&server, "helper", "backup.read");
    let sub = hoard.api(&hoard.key("helper"));
    sub.get(&base)
        .assert_error(403, "InsufficientPermissionsException");
    sub.get(&format!("{base}/{id}"))
        .assert_error(403, "InsufficientPermissionsException");
    sub.post(&base, DAILY_AT_4)
        .assert_error(403, "InsufficientPermissionsException");

    hoard.add_subuser(&server, "helper", "backup.read,schedule.read");
    assert_eq!(sub.get(&base).status, 200);
    sub.post(&base, DAILY_AT_4)
        .assert_error(403, "InsufficientPermissionsException");
    sub.post(&format!("{base}/{id}"), r#"{"name": "x"}"#)
        .assert_error(403, "InsufficientPermissionsException");
    sub.post(&format!("{base}/{id}/execute"), "")
        .assert_error(403, "InsufficientPermissionsException");
    sub.post(
        &format!("{base}/{id}/tasks"),
        r#"{"action": "backup", "time_offset": 0}"#,
    )
    .assert_error(403, "InsufficientPermissionsException");
    sub.delete(&format!("{base}/{id}"))
        .assert_error(403, "InsufficientPermissionsException");

    hoard.add_subuser(
        &server,
        "helper",
        "backup.read,schedule.read,schedule.create,schedule.update",
    );
    assert_eq!(sub.post(&base, DAILY_AT_4).status, 200);
    assert_eq!(
        sub.post(&format!("{base}/{id}"), r#"{"name": "renamed"}"#)
            .status,
        200
    );
    sub.delete(&format!("{base}/{id}"))
        .assert_error(403, "InsufficientPermissionsException");
    hoard.add_subuser(&server, "helper", "schedule.delete");
    assert_eq!(sub.delete(&format!("{base}/{id}")).status, 204);

    // Retention: backup.read to see and preview, backup.delete to change.
    let retention = format!("/api/client/servers/{server}/retention");
    hoard.add_subuser(&server, "helper", "backup.read");
    assert_eq!(sub.get(&retention).status, 200);
    assert_eq!(
        sub.post(&format!("{retention}/preview"), r#"{"keep_last": 1}"#)
            .status,
        200
    );
    put(&sub, &retention, r#"{"keep_last": 1}"#)
        .assert_error(403, "InsufficientPermissionsException");
    hoard.add_subuser(&server, "helper", "backup.read,backup.delete");
    assert_eq!(put(&sub, &retention, r#"{"keep_last": 1}"#).status, 200);

    // Another user's server is not found at all.
    hoard.add_user("stranger", false);
    let stranger = hoard.api(&hoard.key("stranger"));
    stranger
        .get(&base)
        .assert_error(404, "NotFoundHttpException");
}

/// A clock offset that puts the schedules' clock `before` seconds ahead of a minute's start.
fn offset_to_just_before_a_minute(before: i64) -> i64 {
    let now = now();
    (60 - before - now.rem_euclid(60)).rem_euclid(60)
}

#[test]
fn a_schedule_due_every_minute_makes_a_scheduled_backup_when_its_time_comes() {
    // The schedules' clock stands 12 s before a minute starts: the scheduler, not a request,
    // starts the run when it does.
    let offset = offset_to_just_before_a_minute(12).to_string();
    let hoard = Hoard::start(&["--schedule-clock-offset-secs", &offset]);
    let (_dir, server, api) = setup(&hoard, &[]);
    let started = now();
    let id = schedule_with_task(
        &api,
        &server,
        r#"{"name": "every minute", "minute": "*", "hour": "*", "day_of_month": "*", "month": "*", "day_of_week": "*"}"#,
    );
    let due = schedule(&api, &server, id)["next_run_at"]
        .as_str()
        .unwrap()
        .to_string();
    let run = wait_first_run(&api, &server, id);
    assert!(
        now() - started < 80,
        "the run came when the schedule was due"
    );
    assert_eq!(run["outcome"], "completed", "{run}");
    assert_eq!(run["catch_up"], false);
    let list = backups(&api, &server);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["is_scheduled"], true);
    assert_eq!(list[0]["status"], "completed");
    assert_eq!(run["backup"], list[0]["uuid"]);
    // A backup asked for by hand is not scheduled.
    let manual = api.backup_and_wait(&server, "{}");
    assert_eq!(manual["is_scheduled"], false);
    let s = schedule(&api, &server, id);
    assert!(
        s["next_run_at"].as_str().unwrap() > due.as_str(),
        "the next run moved on: {s}"
    );
    assert_eq!(hoard.activity_count("server:schedule.run"), 1);
}

/// Moves a stopped hoard's data directory into a new hoard started with `args`.
fn restart_with(mut hoard: Hoard, args: &[&str]) -> Hoard {
    hoard.kill();
    let data = std::mem::replace(&mut hoard.data, tempfile::tempdir().unwrap());
    drop(hoard);
    Hoard::start_in(data, args)
}

/// The offset that puts the schedules' clock on `hh:mm:ss` UTC, `days` after today.
fn offset_to(days: i64, hh: i64, mm: i64, ss: i64) -> i64 {
    let now = now();
    let midnight = now - now.rem_euclid(86_400);
    midnight + days * 86_400 + hh * 3600 + mm * 60 + ss - now
}

fn catch_up_after_two_missed_days(catch_up: bool) {
    // Today 03:00 UTC by the schedules' clock: the nightly run is due at 04:00.
    let before = offset_to(0, 3, 0, 0).to_string();
    let hoard = Hoard::start(&["--timezone", "UTC", "--schedule-clock-offset-secs", &before]);
    let (_dir, server, api) = setup(&hoard, &[]);
    let id = schedule_with_task(&api, &server, DAILY_AT_4);
    assert!(
        schedule(&api, &server, id)["next_run_at"]
            .as_str()
            .unwrap()
            .ends_with("T04:00:00+00:00")
    );
    // hoard is down across today's and tomorrow's 04:00, and comes back the day after at
    // 05:00.
    let after = offset_to(2, 5, 0, 0).to_string();
    let catch_up_flag = catch_up.to_string();
    let hoard = restart_with(
        hoard,
        &[
            "--timezone",
            "UTC",
            "--schedule-clock-offset-secs",
            &after,
            "--schedule-catch-up",
            &catch_up_flag,
        ],
    );
    let api = Api::new(&hoard.base, api.token.clone());
    let run = wait_first_run(&api, &server, id);
    let s = schedule(&api, &server, id);
    assert!(
        s["next_run_at"]
            .as_str()
            .unwrap()
            .ends_with("T04:00:00+00:00"),
        "the next run is the coming night's: {s}"
    );
    // Give a second run every chance to show up: none may.
    std::thread::sleep(Duration::from_secs(3));
    let list = backups(&api, &server);
    if catch_up {
        assert_eq!(run["outcome"], "completed", "{run}");
        assert_eq!(run["catch_up"], true);
        assert_eq!(list.len(), 1, "one catch-up run, not one per missed night");
        assert_eq!(list[0]["is_scheduled"], true);
    } else {
        assert_eq!(run["outcome"], "missed", "{run}");
        assert!(run["reason"].as_str().unwrap().contains("not running"));
        assert!(list.is_empty(), "no backup without catch-up: {list:?}");
    }
    assert_eq!(hoard.activity_count("server:schedule.run"), 1);
}

#[test]
fn a_schedule_missed_while_hoard_was_down_runs_once_at_start() {
    catch_up_after_two_missed_days(true);
}

#[test]
fn with_catch_up_off_a_missed_schedule_is_recorded_as_missed() {
    catch_up_after_two_missed_days(false);
}

#[test]
fn a_run_with_nothing_changed_is_skipped_and_a_change_makes_a_backup() {
    let hoard = Hoard::start(&["--throttle-backups", "1"]);
    let (dir, server, api) = setup(&hoard, &[]);
    let id = schedule_with_task(
        &api,
        &server,
        r#"{"name": "if changed", "minute": "0", "hour": "4", "day_of_month": "*", "month": "*", "day_of_week": "*", "only_if_changed": true}"#,
    );
    assert_eq!(schedule(&api, &server, id)["only_if_changed"], true);
    let first = execute(&hoard, &api, &server, id);
    assert_eq!(first["outcome"], "completed", "{first}");
    let second = execute(&hoard, &api, &server, id);
    assert_eq!(second["outcome"], "skipped", "{second}");
    assert_eq!(
        second["reason"],
        "nothing changed since the last successful backup"
    );
    assert_eq!(
        backups(&api, &server).len(),
        1,
        "a skipped run makes no backup"
    );

    // Touching a file (same content, new mtime) is a change.
    let level = dir.path().join("world/level.dat");
    let later = filetime::FileTime::from_unix_time(now() + 3600, 0);
    filetime::set_file_mtime(&level, later).unwrap();
    let third = execute(&hoard, &api, &server, id);
    assert_eq!(third["outcome"], "completed", "{third}");
    assert_eq!(backups(&api, &server).len(), 2);
    // So is a mode change, and a new file.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&level, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(execute(&hoard, &api, &server, id)["outcome"], "completed");
    assert_eq!(execute(&hoard, &api, &server, id)["outcome"], "skipped");
    common::write(dir.path(), "world/new.dat", b"x");
    assert_eq!(execute(&hoard, &api, &server, id)["outcome"], "completed");
    let list = backups(&api, &server);
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|b| b["is_scheduled"] == true));
    // Four scheduled backups within the window, and the throttle of one still lets a
    // backup asked for by hand through: schedules do not count against it.
    assert_eq!(api.backup_and_wait(&server, "{}")["status"], "completed");
}

fn set_pre_backup(hoard: &Hoard, server: &str, flag: &Path) {
    let hook = format!("test ! -e {}", flag.display());
    hoard.cli_ok(&["server", "update", server, "--pre-backup", &hook]);
}

#[test]
fn failing_scheduled_runs_delete_nothing_and_the_next_success_prunes() {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let (dir, server, api) = setup(&hoard, &["--backup-limit", "20"]);
    let flag_dir = tempfile::tempdir().unwrap();
    let flag = flag_dir.path().join("fail");
    set_pre_backup(&hoard, &server, &flag);
    let good: Vec<String> = (0..3)
        .map(|i| {
            common::write(dir.path(), "counter", i.to_string().as_bytes());
            let b = api.backup_and_wait(&server, "{}");
            assert_eq!(b["status"], "completed");
            b["uuid"].as_str().unwrap().to_string()
        })
        .collect();
    let r = put(
        &api,
        &format!("/api/client/servers/{server}/retention"),
        r#"{"keep_last": 1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["attributes"]["keep_last"], 1);
    assert_eq!(
        backups(&api, &server).len(),
        3,
        "setting a policy deletes nothing by itself"
    );

    let id = schedule_with_task(&api, &server, DAILY_AT_4);
    std::fs::write(&flag, b"").unwrap();
    for _ in 0..5 {
        let run = execute(&hoard, &api, &server, id);
        assert_eq!(run["outcome"], "failed", "{run}");
        assert!(
            run["reason"].as_str().unwrap().contains("pre_backup"),
            "{run}"
        );
    }
    let list = backups(&api, &server);
    let completed: Vec<Value> = list
        .iter()
        .filter(|b| b["status"] == "completed")
        .cloned()
        .collect();
    assert_eq!(uuids(&completed).len(), 3);
    for uuid in &good {
        assert!(uuids(&completed).contains(uuid), "{uuid} was kept");
    }
    assert_eq!(list.len(), 8, "three good and five failed");
    assert_eq!(hoard.activity_count("server:backup.prune"), 0);

    std::fs::remove_file(&flag).unwrap();
    let run = execute(&hoard, &api, &server, id);
    assert_eq!(run["outcome"], "completed", "{run}");
    let list = backups(&api, &server);
    assert_eq!(
        uuids(&list),
        vec![run["backup"].as_str().unwrap().to_string()],
        "keep_last 1 keeps the new backup; the old ones and the failed ones went: {list:?}"
    );
    assert_eq!(hoard.activity_count("server:backup.prune"), 8);
}

#[test]
fn at_the_limit_a_scheduled_run_rotates_out_the_oldest_backup_after_succeeding() {
    let hoard = Hoard::start(&["--throttle-backups", "0"]);
    let (dir, server, api) = setup(&hoard, &["--backup-limit", "2"]);
    let retention = format!("/api/client/servers/{server}/retention");
    let flag_dir = tempfile::tempdir().unwrap();
    let flag = flag_dir.path().join("fail");
    set_pre_backup(&hoard, &server, &flag);
    let oldest = api.backup_and_wait(&server, "{}")["uuid"].clone();
    common::write(dir.path(), "counter", b"1");
    let newer = api.backup_and_wait(&server, "{}")["uuid"].clone();

    // Without a policy, a create at the limit is refused as always.
    api.post(&format!("/api/client/servers/{server}/backups"), "{}")
        .assert_error(400, "TooManyBackupsException");

    // A policy that keeps more than the limit: the limit wins, the oldest goes.
    assert_eq!(put(&api, &retention, r#"{"keep_last": 5}"#).status, 200);
    let id = schedule_with_task(&api, &server, DAILY_AT_4);

    // A failing run at the limit deletes nothing.
    std::fs::write(&flag, b"").unwrap();
    assert_eq!(execute(&hoard, &api, &server, id)["outcome"], "failed");
    let list = backups(&api, &server);
    assert_eq!(
        list.iter().filter(|b| b["status"] == "completed").count(),
        2
    );
    std::fs::remove_file(&flag).unwrap();

    let run = execute(&hoard, &api, &server, id);
    assert_eq!(run["outcome"], "completed", "{run}");
    let completed: Vec<Value> = backups(&api, &server)
        .into_iter()
        .filter(|b| b["status"] == "completed")
        .collect();
    let kept = uuids(&completed);
    assert_eq!(kept.len(), 2, "the limit holds: {kept:?}");
    assert!(kept.contains(&run["backup"].as_str().unwrap().to_string()));
    assert!(kept.contains(&newer.as_str().unwrap().to_string()));
    assert!(!kept.contains(&oldest.as_str().unwrap().to_string()));
    let r = api.get(&format!("/api/client/servers/{server}/backups"));
    assert_eq!(r.json()["meta"]["backup_count"], 2);

    // With a policy, a create by hand at the limit rotates as well.
    let manual = api.backup_and_wait(&server, "{}");
    assert_eq!(manual["status"], "completed");
    assert_eq!(
        backups(&api, &server)
            .iter()
            .filter(|b| b["status"] == "completed")
            .count(),
        2
    );

    // Locked backups are never rotated out: when every backup is locked, nothing can
    // make room and the create is refused.
    for b in backups(&api, &server)
        .iter()
        .filter(|b| b["status"] == "completed")
    {
        let uuid = b["uuid"].as_str().unwrap();
        let r = api.post(
            &format!("/api/client/servers/{server}/backups/{uuid}/lock"),
            "",
        );
        assert!(r.status < 300, "{}", r.text());
    }
    let r = api.post(&format!("/api/client/servers/{server}/backups"), "{}");
    r.assert_error(400, "TooManyBackupsException");
    assert!(r.detail().contains("locked"), "{}", r.detail());
    let run = execute(&hoard, &api, &server, id);
    assert_eq!(run["outcome"], "skipped", "{run}");
    assert!(run["reason"].as_str().unwrap().contains("locked"), "{run}");
}

#[test]
fn retention_policies_round_trip_and_the_preview_changes_nothing() {
    let hoard = Hoard::start(&["--throttle-backups", "0", "--timezone", "UTC"]);
    let (dir, server, api) = setup(&hoard, &[]);
    let retention = format!("/api/client/servers/{server}/retention");
    let empty = api.get(&retention).json();
    assert_eq!(empty["object"], "retention_policy");
    assert_eq!(empty["attributes"]["is_set"], false);
    assert_eq!(empty["attributes"]["keep_daily"], Value::Null);
    assert_eq!(empty["attributes"]["timezone"], "UTC");

    for i in 0..3 {
        common::write(dir.path(), "counter", i.to_string().as_bytes());
        api.backup_and_wait(&server, "{}");
    }
    let locked = backups(&api, &server)[2]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    api.post(
        &format!("/api/client/servers/{server}/backups/{locked}/lock"),
        "",
    );

    let r = api.post(&format!("{retention}/preview"), r#"{"keep_last": 1}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let preview = r.json();
    assert_eq!(preview["object"], "list");
    let verdicts: Vec<&Value> = preview["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["attributes"])
        .collect();
    assert_eq!(verdicts.len(), 3);
    assert_eq!(verdicts[0]["keep"], true);
    let reasons = |v: &Value| -> Vec<String> {
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    assert!(reasons(verdicts[0]).contains(&"newest successful".to_string()));
    assert_eq!(verdicts[1]["keep"], false);
    assert_eq!(verdicts[2]["backup"], locked.as_str());
    assert_eq!(verdicts[2]["keep"], true);
    assert_eq!(reasons(verdicts[2]), vec!["locked"]);
    assert_eq!(preview["meta"], json!({"keep": 2, "delete": 1}));
    assert_eq!(backups(&api, &server).len(), 3, "a preview deletes nothing");
    assert_eq!(api.get(&retention).json()["attributes"]["is_set"], false);

    let policy = r#"{"keep_last": 2, "keep_hourly": 0, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6, "keep_yearly": null, "keep_within": "1y2m"}"#;
    let r = put(&api, &retention, policy);
    assert_eq!(r.status, 200, "{}", r.text());
    let a = &api.get(&retention).json()["attributes"];
    assert_eq!(a["is_set"], true);
    assert_eq!(a["keep_last"], 2);
    assert_eq!(a["keep_daily"], 7);
    assert_eq!(a["keep_weekly"], 4);
    assert_eq!(a["keep_monthly"], 6);
    assert_eq!(a["keep_yearly"], Value::Null);
    assert_eq!(a["keep_within"], "1y2m");

    for body in [
        r#"{"keep_daily": -1}"#,
        r#"{"keep_daily": "seven"}"#,
        r#"{"keep_within": "two weeks"}"#,
    ] {
        put(&api, &retention, body).assert_error(422, "ValidationException");
    }
    assert_eq!(
        api.get(&retention).json()["attributes"]["keep_daily"],
        7,
        "a refused change changes nothing"
    );
    // All rules unset removes the policy.
    assert_eq!(put(&api, &retention, "{}").status, 200);
    assert_eq!(api.get(&retention).json()["attributes"]["is_set"], false);
}
