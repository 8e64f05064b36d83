//! hoard's retention rules against real restic: tests/fixtures/retention/restic.json holds
//! what `restic forget --dry-run` kept of a synthetic two-year history under each policy
//! (made by generate.sh beside it), so restic itself is not needed here.

use std::collections::BTreeSet;

use hoard::retention::{Candidate, Kind, Policy, Reason, Verdict, apply};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    generated_by: String,
    /// Backup times, oldest first.
    history: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    restic_flags: String,
    policy: Policy,
    /// The times restic kept.
    kept: Vec<String>,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/retention/restic.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn second(text: &str) -> i64 {
    text.parse::<Timestamp>()
        .unwrap_or_else(|e| panic!("{text:?} in the fixture: {e}"))
        .as_second()
}

/// The history as successful, unlocked backups; a backup's id is its place in the history.
fn successful(history: &[String]) -> Vec<Candidate> {
    history
        .iter()
        .zip(0..)
        .map(|(time, id)| Candidate {
            id,
            created_at: second(time),
            kind: Kind::Successful,
            locked: false,
        })
        .collect()
}

fn kept_ids(verdicts: &[Verdict]) -> BTreeSet<i64> {
    verdicts.iter().filter(|v| v.keep).map(|v| v.id).collect()
}

fn verdict(verdicts: &[Verdict], id: i64) -> &Verdict {
    verdicts
        .iter()
        .find(|v| v.id == id)
        .unwrap_or_else(|| panic!("no verdict for backup {id}"))
}

#[test]
fn the_fixture_is_the_history_it_claims() {
    let fixture = fixture();
    assert!(fixture.generated_by.starts_with("restic "));
    assert!(fixture.history.len() >= 400, "{}", fixture.history.len());
    assert!(fixture.cases.len() >= 12, "{}", fixture.cases.len());
    let times: Vec<i64> = fixture.history.iter().map(|t| second(t)).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "the history is not in order or repeats a time"
    );
    let two_years = 2 * 365 * 86_400;
    assert!(times[times.len() - 1] - times[0] >= two_years);
}

#[test]
fn keeps_what_restic_keeps() {
    let fixture = fixture();
    let candidates = successful(&fixture.history);
    let mut failures = Vec::new();
    for case in &fixture.cases {
        let ours = kept_ids(&apply(&case.policy, &candidates, &TimeZone::UTC));
        let restic: BTreeSet<i64> = case
            .kept
            .iter()
            .map(|time| {
                let position = fixture.history.iter().position(|t| t == time);
                position.unwrap_or_else(|| panic!("{}: {time} is not in the history", case.name))
            })
            .map(|position| i64::try_from(position).unwrap())
            .collect();
        if ours != restic {
            let times = |ids: BTreeSet<&i64>| {
                ids.into_iter()
                    .map(|&id| fixture.history[usize::try_from(id).unwrap()].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            failures.push(format!(
                "{} (restic {}): hoard keeps {}, restic {}\n  only hoard keeps: [{}]\n  only restic keeps: [{}]",
                case.name,
                case.restic_flags,
                ours.len(),
                restic.len(),
                times(ours.difference(&restic).collect()),
                times(restic.difference(&ours).collect()),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} policies differ from {}:\n{}",
        failures.len(),
        fixture.cases.len(),
        fixture.generated_by,
        failures.join("\n")
    );
}

#[test]
fn locks_take_no_slot() {
    let fixture = fixture();
    let newest = successful(&fixture.history).len() - 1;
    // Every third backup, counting back from the one before the newest, so the newest
    // successful is unlocked in both runs and their reasons can be compared as they are.
    let candidates: Vec<Candidate> = successful(&fixture.history)
        .into_iter()
        .enumerate()
        .map(|(i, c)| Candidate {
            locked: (newest - i) % 3 == 1,
            ..c
        })
        .collect();
    let unlocked: Vec<Candidate> = candidates.iter().copied().filter(|c| !c.locked).collect();
    assert!(candidates.len() - unlocked.len() >= candidates.len() / 3);
    for case in &fixture.cases {
        let all = apply(&case.policy, &candidates, &TimeZone::UTC);
        for c in candidates.iter().filter(|c| c.locked) {
            let v = verdict(&all, c.id);
            assert!(
                v.keep && v.reasons == [Reason::Locked],
                "{}: {v:?}",
                case.name
            );
        }
        let alone = apply(&case.policy, &unlocked, &TimeZone::UTC);
        let all_unlocked: Vec<&Verdict> = all
            .iter()
            .filter(|v| unlocked.iter().any(|c| c.id == v.id))
            .collect();
        assert_eq!(
            all_unlocked,
            alone.iter().collect::<Vec<_>>(),
            "{}",
            case.name
        );
    }
}

#[test]
fn failed_backups_change_nothing_for_successful_ones() {
    let fixture = fixture();
    let successes = successful(&fixture.history);
    let newest = successes[successes.len() - 1];
    // A failure a minute after every fourth success, and one after the newest success.
    let failures: Vec<Candidate> = successes
        .iter()
        .filter(|c| c.id % 4 == 0 || c.id == newest.id)
        .map(|c| Candidate {
            id: 1_000_000 + c.id,
            created_at: c.created_at + 60,
            kind: Kind::Failed,
            locked: false,
        })
        .collect();
    let mixed: Vec<Candidate> = successes.iter().chain(&failures).copied().collect();
    for case in &fixture.cases {
        let alone = apply(&case.policy, &successes, &TimeZone::UTC);
        let together = apply(&case.policy, &mixed, &TimeZone::UTC);
        for v in &alone {
            assert_eq!(verdict(&together, v.id), v, "{}", case.name);
        }
        for failure in &failures {
            let v = verdict(&together, failure.id);
            let newer = failure.created_at > newest.created_at;
            let expected = if newer {
                Reason::FailedNewer
            } else {
                Reason::FailedOlder
            };
            assert_eq!(v.keep, newer, "{}: {v:?}", case.name);
            assert_eq!(v.reasons, [expected], "{}", case.name);
        }
    }
}

#[test]
fn the_newest_successful_is_always_kept() {
    let fixture = fixture();
    let mut candidates = successful(&fixture.history);
    let newest = candidates.len() - 1;
    for locked in [false, true] {
        candidates[newest].locked = locked;
        let policies = fixture.cases.iter().map(|case| &case.policy);
        for policy in policies.chain([&Policy::default()]) {
            let verdicts = apply(policy, &candidates, &TimeZone::UTC);
            let v = &verdicts[0];
            assert_eq!(v.id, candidates[newest].id);
            assert!(
                v.keep && v.reasons.contains(&Reason::NewestSuccessful),
                "{policy:?}: {v:?}"
            );
        }
    }
}
