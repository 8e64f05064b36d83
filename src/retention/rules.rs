//! Retention policies with the semantics of `restic forget`, so that whoever knows restic's
//! `--keep-*` options gets exactly the backups they expect, plus hoard's own guarantees on
//! top of them (locks, the newest good backup, unfinished and broken backups).
//!
//! [`apply`] is pure: it decides, it never deletes. The policy part mirrors restic's
//! `ApplyPolicy` (internal/restic/snapshot_policy.go, as released in restic 0.14) and is
//! checked against real restic by `tests/retention.rs`.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// A retention policy: restic's `--keep-*` options.
///
/// Unknown fields are refused rather than ignored: a misspelt rule would otherwise silently
/// turn into a policy that deletes more than its author meant.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<Within>,
}

impl Policy {
    /// Whether the policy keeps nothing on its own, in which case hoard keeps everything
    /// instead of pruning: a zero count or a zero duration is as good as unset, as in restic.
    pub fn is_empty(&self) -> bool {
        Rule::ALL.iter().all(|rule| rule.count(self) == 0) && self.within().is_none()
    }

    fn within(&self) -> Option<Within> {
        self.keep_within.filter(|within| !within.is_zero())
    }
}

/// restic's duration syntax for `--keep-within`: `1y2m3d4h`, any non-empty subset of the
/// parts, in that order ("30d", "36h", "1y6m").
///
/// The parts are kept apart rather than turned into seconds because restic subtracts them
/// on the calendar: a month back from 31 March is not a fixed number of hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Within {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl Within {
    fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// A `--keep-within` duration that does not follow restic's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a keep-within duration: write whole numbers of years, months, days and \
     hours in that order, each followed by its unit, such as \"1y2m3d4h\", \"30d\" or \"36h\"."
)]
pub struct WithinError {
    input: String,
}

impl FromStr for Within {
    type Err = WithinError;

    /// Stricter than restic, which also takes signs, spaces and repeated or reordered
    /// units: a policy is written once and read many times, so only the canonical form is
    /// accepted.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || WithinError {
            input: input.to_owned(),
        };
        if input.is_empty() {
            return Err(error());
        }
        let mut within = Within::default();
        // Each unit is looked for only after the previous one, which enforces the order.
        let mut fields = [
            ('y', &mut within.years),
            ('m', &mut within.months),
            ('d', &mut within.days),
            ('h', &mut within.hours),
        ]
        .into_iter();
        let mut rest = input;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?;
            let number: u32 = rest[..digits].parse().map_err(|_| error())?;
            let unit = rest[digits..].chars().next().ok_or_else(error)?;
            let (_, field) = fields.find(|(name, _)| *name == unit).ok_or_else(error)?;
            *field = number;
            rest = &rest[digits + unit.len_utf8()..];
        }
        // The iterator still borrows the fields of `within`.
        drop(fields);
        Ok(within)
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0h");
        }
        let parts = [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ];
        for (number, unit) in parts {
            if number != 0 {
                write!(f, "{number}{unit}")?;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Within {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Within {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What became of a backup, as far as retention is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Successful,
    Failed,
    InProgress,
    /// Recorded as successful, but its archive is gone.
    Missing,
    /// Its archive is there but failed verification.
    Corrupt,
}

/// One backup to decide about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    pub kind: Kind,
    pub locked: bool,
}

/// Why a backup is kept or deleted; a kept backup may have several reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The policy is empty, and hoard never prunes without one.
    NoPolicy,
    Locked,
    NewestSuccessful,
    InProgress,
    /// Among the newest `count` successful backups.
    Last {
        count: u32,
    },
    /// The newest backup of that hour.
    Hourly(DateTime),
    Daily(Date),
    /// The newest backup of that ISO week.
    Weekly {
        year: i16,
        week: i8,
    },
    Monthly {
        year: i16,
        month: i8,
    },
    Yearly(i16),
    /// Made within this long before the newest successful, unlocked backup.
    Within(Within),
    /// Kept because there is no successful backup at all, so nothing would replace it.
    NoSuccessful,
    FailedNewer,
    MissingNewer,
    /// Corrupt backups are kept for inspection but fill no slot of the policy.
    Corrupt,
    NotKept,
    FailedOlder,
    MissingOlder,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoPolicy => f.write_str("no retention policy"),
            Reason::Locked => f.write_str("locked"),
            Reason::NewestSuccessful => f.write_str("newest successful"),
            Reason::InProgress => f.write_str("in progress"),
            Reason::Last { count } => write!(f, "last {count}"),
            Reason::Hourly(hour) => write!(f, "hourly {} {:02}:00", hour.date(), hour.hour()),
            Reason::Daily(date) => write!(f, "daily {date}"),
            Reason::Weekly { year, week } => write!(f, "weekly {year:04}-W{week:02}"),
            Reason::Monthly { year, month } => write!(f, "monthly {year:04}-{month:02}"),
            Reason::Yearly(year) => write!(f, "yearly {year:04}"),
            Reason::Within(within) => write!(f, "within {within}"),
            Reason::NoSuccessful => f.write_str("no successful backup yet"),
            Reason::FailedNewer => f.write_str("failed, newer than the newest successful backup"),
            Reason::MissingNewer => {
                f.write_str("archive missing, newer than the newest successful backup")
            }
            Reason::Corrupt => f.write_str("corrupt: not counted by the policy"),
            Reason::NotKept => f.write_str("not kept by the policy"),
            Reason::FailedOlder => f.write_str("failed, older than the newest successful backup"),
            Reason::MissingOlder => {
                f.write_str("archive missing, older than the newest successful backup")
            }
        }
    }
}

/// The decision about one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub id: i64,
    pub keep: bool,
    pub reasons: Vec<Reason>,
}

/// Every candidate's verdict, newest first (created_at desc, then id desc). Buckets are
/// computed in `tz`.
///
/// Only successful, unlocked backups are what restic would call snapshots: a lock must not
/// take a slot from the policy (or unlocking one would delete another), and a failed or
/// broken backup must not push a good one out.
pub fn apply(policy: &Policy, candidates: &[Candidate], tz: &TimeZone) -> Vec<Verdict> {
    let mut order: Vec<&Candidate> = candidates.iter().collect();
    order.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));

    let newest_successful = order.iter().position(|c| c.kind == Kind::Successful);
    let snapshots: Vec<i64> = order
        .iter()
        .filter(|c| c.kind == Kind::Successful && !c.locked)
        .map(|c| c.created_at)
        .collect();
    let mut policy_reasons = restic_policy(policy, &snapshots, tz).into_iter();

    order
        .iter()
        .enumerate()
        .map(|(position, candidate)| {
            let mut reasons = Vec::new();
            if candidate.locked {
                reasons.push(Reason::Locked);
            }
            let keep = match candidate.kind {
                Kind::Successful => {
                    if newest_successful == Some(position) {
                        reasons.push(Reason::NewestSuccessful);
                    }
                    if !candidate.locked {
                        // Fed in the same order, so the next answer is this candidate's.
                        reasons.extend(policy_reasons.next().expect("one answer per snapshot"));
                    }
                    let keep = !reasons.is_empty();
                    if !keep {
                        reasons.push(Reason::NotKept);
                    }
                    keep
                }
                Kind::InProgress => {
                    reasons.push(Reason::InProgress);
                    true
                }
                Kind::Corrupt => {
                    reasons.push(Reason::Corrupt);
                    true
                }
                Kind::Failed | Kind::Missing => {
                    let (newer, older) = if candidate.kind == Kind::Failed {
                        (Reason::FailedNewer, Reason::FailedOlder)
                    } else {
                        (Reason::MissingNewer, Reason::MissingOlder)
                    };
                    let (reason, keep) = match newest_successful {
                        None => (Some(Reason::NoSuccessful), true),
                        Some(newest) if position < newest => (Some(newer), true),
                        Some(_) if candidate.locked => (None, true),
                        Some(_) if policy.is_empty() => (Some(Reason::NoPolicy), true),
                        Some(_) => (Some(older), false),
                    };
                    reasons.extend(reason);
                    keep
                }
            };
            Verdict {
                id: candidate.id,
                keep,
                reasons,
            }
        })
        .collect()
}

/// restic's count rules, in the order restic evaluates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Rule {
    const ALL: [Rule; 6] = [
        Rule::Last,
        Rule::Hourly,
        Rule::Daily,
        Rule::Weekly,
        Rule::Monthly,
        Rule::Yearly,
    ];

    fn count(self, policy: &Policy) -> u32 {
        let count = match self {
            Rule::Last => policy.keep_last,
            Rule::Hourly => policy.keep_hourly,
            Rule::Daily => policy.keep_daily,
            Rule::Weekly => policy.keep_weekly,
            Rule::Monthly => policy.keep_monthly,
            Rule::Yearly => policy.keep_yearly,
        };
        count.unwrap_or(0)
    }

    /// The bucket a snapshot made at `at` falls in, named as the reason to keep it. `Last`
    /// has no bucket of its own: every snapshot is a new one.
    fn bucket(self, policy: &Policy, at: DateTime) -> Reason {
        match self {
            Rule::Last => Reason::Last {
                count: self.count(policy),
            },
            Rule::Hourly => {
                Reason::Hourly(at.date().to_datetime(jiff::civil::time(at.hour(), 0, 0, 0)))
            }
            Rule::Daily => Reason::Daily(at.date()),
            Rule::Weekly => {
                let week = at.date().iso_week_date();
                Reason::Weekly {
                    year: week.year(),
                    week: week.week(),
                }
            }
            Rule::Monthly => Reason::Monthly {
                year: at.year(),
                month: at.month(),
            },
            Rule::Yearly => Reason::Yearly(at.year()),
        }
    }
}

/// restic's `ApplyPolicy` over `snapshots` (unix seconds, newest first): the reasons to
/// keep each one, empty for those it would remove.
fn restic_policy(policy: &Policy, snapshots: &[i64], tz: &TimeZone) -> Vec<Vec<Reason>> {
    if policy.is_empty() {
        return vec![vec![Reason::NoPolicy]; snapshots.len()];
    }
    let Some(&latest) = snapshots.first() else {
        return Vec::new();
    };
    let within = policy
        .within()
        .map(|within| (within, within_cutoff(latest, within, tz)));
    let mut left = Rule::ALL.map(|rule| rule.count(policy));
    let mut previous: [Option<Reason>; 6] = Default::default();

    snapshots
        .iter()
        .map(|&created_at| {
            let mut reasons = Vec::new();
            if let Some((within, cutoff)) = within
                && created_at > cutoff
            {
                reasons.push(Reason::Within(within));
            }
            let at = to_timestamp(created_at).to_zoned(tz.clone()).datetime();
            for (i, rule) in Rule::ALL.into_iter().enumerate() {
                if left[i] == 0 {
                    continue;
                }
                let bucket = rule.bucket(policy, at);
                if rule == Rule::Last || previous[i].as_ref() != Some(&bucket) {
                    left[i] -= 1;
                    previous[i] = Some(bucket.clone());
                    reasons.push(bucket);
                }
            }
            reasons
        })
        .collect()
}

/// Candidates carry plain seconds; one outside jiff's range (beyond the years ±9999) cannot
/// come from a real clock, and is pinned to the nearest end so `apply` stays total.
fn to_timestamp(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap_or(if second < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// The instant `within` before `latest`, the way restic computes it with Go's
/// `latest.AddDate(-years, -months, -days).Add(-hours)`: snapshots strictly after it are
/// kept. A duration reaching beyond jiff's range keeps everything.
fn within_cutoff(latest: i64, within: Within, tz: &TimeZone) -> i64 {
    let back = go_add_date(
        latest,
        -i64::from(within.years),
        -i64::from(within.months),
        -i64::from(within.days),
        tz,
    );
    back.map_or(i64::MIN, |second| second - i64::from(within.hours) * 3600)
}

/// Go's `time.AddDate` in `tz`, to the second. Go does not clamp to the end of the month
/// as jiff does: it normalises the overflow, so 31 March minus one month is 31 February,
/// that is 3 March. A wall time the shift lands in a DST gap or fold resolves as Go's
/// `time.Date` does: with the offset found at the wall time read as UTC, corrected once if
/// that offset is not in force at the result.
fn go_add_date(second: i64, years: i64, months: i64, days: i64, tz: &TimeZone) -> Option<i64> {
    let wall = to_timestamp(second).to_zoned(tz.clone()).datetime();
    let month_index = (i64::from(wall.year()) + years) * 12 + i64::from(wall.month()) - 1 + months;
    let year = i16::try_from(month_index.div_euclid(12)).ok()?;
    let month = i8::try_from(month_index.rem_euclid(12) + 1).ok()?;
    let date = Date::new(year, month, 1)
        .ok()?
        .checked_add(
            jiff::Span::new()
                .try_days(i64::from(wall.day()) - 1 + days)
                .ok()?,
        )
        .ok()?;
    let wall_as_utc = date
        .to_datetime(wall.time())
        .to_zoned(TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_second();
    let guess = tz.to_offset(to_timestamp(wall_as_utc)).seconds();
    if guess == 0 {
        return Some(wall_as_utc);
    }
    let offset = tz
        .to_offset(to_timestamp(wall_as_utc - i64::from(guess)))
        .seconds();
    Some(wall_as_utc - i64::from(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_second()
    }

    fn ok(id: i64, created_at: &str) -> Candidate {
        Candidate {
            id,
            created_at: at(created_at),
            kind: Kind::Successful,
            locked: false,
        }
    }

    fn with(kind: Kind, candidate: Candidate) -> Candidate {
        Candidate { kind, ..candidate }
    }

    fn locked(candidate: Candidate) -> Candidate {
        Candidate {
            locked: true,
            ..candidate
        }
    }

    fn kept(verdicts: &[Verdict]) -> Vec<i64> {
        verdicts.iter().filter(|v| v.keep).map(|v| v.id).collect()
    }

    fn reasons(verdicts: &[Verdict], id: i64) -> Vec<String> {
        let verdict = verdicts.iter().find(|v| v.id == id).unwrap();
        verdict.reasons.iter().map(ToString::to_string).collect()
    }

    fn within(text: &str) -> Within {
        text.parse().unwrap()
    }

    #[test]
    fn within_parses_and_prints_restic_syntax() {
        let cases = [
            ("30d", (0, 0, 30, 0), "30d"),
            ("36h", (0, 0, 0, 36), "36h"),
            ("1y6m", (1, 6, 0, 0), "1y6m"),
            ("1y2m3d4h", (1, 2, 3, 4), "1y2m3d4h"),
            ("2y0m", (2, 0, 0, 0), "2y"),
            ("0h", (0, 0, 0, 0), "0h"),
            ("0y0d", (0, 0, 0, 0), "0h"),
        ];
        for (text, (years, months, days, hours), shown) in cases {
            let parsed = within(text);
            assert_eq!(
                parsed,
                Within {
                    years,
                    months,
                    days,
                    hours
                },
                "{text}"
            );
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(within(shown), parsed);
        }
    }

    #[test]
    fn within_refuses_anything_else() {
        for text in [
            "",
            "30",
            "d",
            "3x",
            "1d2y",
            "1d1d",
            "3dd",
            "-1d",
            " 30d",
            "30d ",
            "1.5d",
            "30D",
            "4294967296h",
            "1w",
            "3é",
        ] {
            let error = text.parse::<Within>().unwrap_err().to_string();
            assert!(error.starts_with(&format!("{text:?} is not")), "{error}");
            assert!(
                error.contains("1y2m3d4h") && error.ends_with('.'),
                "{error}"
            );
        }
    }

    #[test]
    fn policy_reads_and_writes_within_as_text() {
        let policy: Policy =
            serde_json::from_str(r#"{"keep_daily": 7, "keep_within": "1y2m"}"#).unwrap();
        assert_eq!(policy.keep_daily, Some(7));
        assert_eq!(policy.keep_within, Some(within("1y2m")));
        let json = serde_json::to_string(&policy).unwrap();
        assert!(json.contains(r#""keep_within":"1y2m""#), "{json}");
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);

        let error = serde_json::from_str::<Policy>(r#"{"keep_within": "30x"}"#).unwrap_err();
        assert!(error.to_string().contains("\"30x\" is not"), "{error}");
        assert!(serde_json::from_str::<Policy>(r#"{"keep_dialy": 7}"#).is_err());
    }

    #[test]
    fn zero_rules_make_an_empty_policy() {
        assert!(Policy::default().is_empty());
        let zeros = Policy {
            keep_last: Some(0),
            keep_within: Some(Within::default()),
            ..Policy::default()
        };
        assert!(zeros.is_empty());
        let hourly = Policy {
            keep_within: Some(within("1h")),
            ..Policy::default()
        };
        assert!(!hourly.is_empty());
    }

    #[test]
    fn an_empty_policy_deletes_nothing() {
        let candidates = [
            ok(1, "2026-01-01T00:00:00Z"),
            with(Kind::Failed, ok(2, "2026-01-01T01:00:00Z")),
            ok(3, "2026-01-02T00:00:00Z"),
        ];
        let verdicts = apply(&Policy::default(), &candidates, &TimeZone::UTC);
        assert_eq!(kept(&verdicts), [3, 2, 1]);
        assert_eq!(reasons(&verdicts, 1), ["no retention policy"]);
        assert_eq!(reasons(&verdicts, 2), ["no retention policy"]);
        assert_eq!(
            reasons(&verdicts, 3),
            ["newest successful", "no retention policy"]
        );
    }

    #[test]
    fn verdicts_come_newest_first() {
        let candidates = [
            ok(5, "2026-01-01T00:00:00Z"),
            ok(9, "2026-01-03T00:00:00Z"),
            ok(7, "2026-01-01T00:00:00Z"),
        ];
        let policy = Policy {
            keep_last: Some(1),
            ..Policy::default()
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        let ids: Vec<i64> = verdicts.iter().map(|v| v.id).collect();
        assert_eq!(ids, [9, 7, 5]);
        assert_eq!(reasons(&verdicts, 9), ["newest successful", "last 1"]);
        assert_eq!(reasons(&verdicts, 5), ["not kept by the policy"]);
    }

    #[test]
    fn locked_backups_are_kept_and_take_no_slot() {
        let candidates = [
            ok(1, "2026-01-01T00:00:00Z"),
            locked(ok(2, "2026-01-02T00:00:00Z")),
            ok(3, "2026-01-03T00:00:00Z"),
            locked(ok(4, "2026-01-04T00:00:00Z")),
        ];
        let policy = Policy {
            keep_last: Some(1),
            ..Policy::default()
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        assert_eq!(kept(&verdicts), [4, 3, 2]);
        assert_eq!(reasons(&verdicts, 4), ["locked", "newest successful"]);
        assert_eq!(reasons(&verdicts, 3), ["last 1"]);
        assert_eq!(reasons(&verdicts, 2), ["locked"]);
        assert_eq!(reasons(&verdicts, 1), ["not kept by the policy"]);
    }

    #[test]
    fn failed_and_missing_go_once_a_newer_backup_succeeded() {
        let candidates = [
            with(Kind::Failed, ok(1, "2026-01-01T00:00:00Z")),
            with(Kind::Missing, ok(2, "2026-01-01T01:00:00Z")),
            locked(with(Kind::Failed, ok(3, "2026-01-01T02:00:00Z"))),
            ok(4, "2026-01-02T00:00:00Z"),
            with(Kind::Failed, ok(5, "2026-01-03T00:00:00Z")),
            with(Kind::Missing, ok(6, "2026-01-03T01:00:00Z")),
        ];
        let policy = Policy {
            keep_daily: Some(30),
            ..Policy::default()
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        assert_eq!(kept(&verdicts), [6, 5, 4, 3]);
        assert_eq!(
            reasons(&verdicts, 1),
            ["failed, older than the newest successful backup"]
        );
        assert_eq!(
            reasons(&verdicts, 2),
            ["archive missing, older than the newest successful backup"]
        );
        assert_eq!(reasons(&verdicts, 3), ["locked"]);
        assert_eq!(
            reasons(&verdicts, 4),
            ["newest successful", "daily 2026-01-02"]
        );
        assert_eq!(
            reasons(&verdicts, 5),
            ["failed, newer than the newest successful backup"]
        );
        assert_eq!(
            reasons(&verdicts, 6),
            ["archive missing, newer than the newest successful backup"]
        );
    }

    #[test]
    fn unfinished_and_corrupt_backups_are_kept_outside_the_policy() {
        let candidates = [
            ok(1, "2026-01-01T00:00:00Z"),
            with(Kind::Corrupt, ok(2, "2026-01-02T00:00:00Z")),
            ok(3, "2026-01-03T00:00:00Z"),
            with(Kind::InProgress, ok(4, "2026-01-04T00:00:00Z")),
        ];
        let policy = Policy {
            keep_last: Some(2),
            ..Policy::default()
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        assert_eq!(kept(&verdicts), [4, 3, 2, 1]);
        assert_eq!(reasons(&verdicts, 4), ["in progress"]);
        assert_eq!(
            reasons(&verdicts, 2),
            ["corrupt: not counted by the policy"]
        );
        assert_eq!(reasons(&verdicts, 1), ["last 2"]);
    }

    #[test]
    fn without_a_successful_backup_nothing_is_deleted() {
        let candidates = [
            with(Kind::Failed, ok(1, "2026-01-01T00:00:00Z")),
            with(Kind::Missing, ok(2, "2026-01-02T00:00:00Z")),
            with(Kind::Corrupt, ok(3, "2026-01-03T00:00:00Z")),
        ];
        let policy = Policy {
            keep_last: Some(1),
            ..Policy::default()
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        assert_eq!(kept(&verdicts), [3, 2, 1]);
        assert_eq!(reasons(&verdicts, 1), ["no successful backup yet"]);
        assert_eq!(reasons(&verdicts, 2), ["no successful backup yet"]);
    }

    #[test]
    fn the_newest_successful_says_so() {
        let candidates = [ok(1, "2026-01-01T00:00:00Z"), ok(2, "2026-01-02T00:00:00Z")];
        let policy = Policy {
            keep_yearly: Some(1),
            ..Policy::default()
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        assert_eq!(kept(&verdicts), [2]);
        assert_eq!(reasons(&verdicts, 2), ["newest successful", "yearly 2026"]);
    }

    #[test]
    fn each_rule_names_its_bucket() {
        let candidates = [ok(1, "2026-11-30T04:10:00Z")];
        let policy = Policy {
            keep_last: Some(3),
            keep_hourly: Some(1),
            keep_daily: Some(1),
            keep_weekly: Some(1),
            keep_monthly: Some(1),
            keep_yearly: Some(1),
            keep_within: Some(within("30d")),
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        assert_eq!(
            reasons(&verdicts, 1),
            [
                "newest successful",
                "within 30d",
                "last 3",
                "hourly 2026-11-30 04:00",
                "daily 2026-11-30",
                "weekly 2026-W49",
                "monthly 2026-11",
                "yearly 2026",
            ]
        );
    }

    #[test]
    fn within_subtracts_months_the_way_go_does() {
        // Go's AddDate: 2026-03-31 minus one month is "2026-02-31", that is 2026-03-03,
        // where jiff would clamp to 2026-02-28.
        let candidates = [
            ok(1, "2026-03-02T13:00:00Z"),
            ok(2, "2026-03-03T12:00:00Z"),
            ok(3, "2026-03-03T12:00:01Z"),
            ok(4, "2026-03-31T12:00:00Z"),
        ];
        let policy = Policy {
            keep_within: Some(within("1m")),
            ..Policy::default()
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        assert_eq!(kept(&verdicts), [4, 3]);
        assert_eq!(reasons(&verdicts, 3), ["within 1m"]);
    }

    #[test]
    fn within_resolves_a_dst_fold_the_way_go_does() {
        let berlin = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        // One day before 2026-10-26 02:30 CET is 02:30 on the day clocks went back, which
        // happened twice; Go takes the second (CET, 01:30 UTC), not the first.
        let candidates = [
            ok(1, "2026-10-25T01:00:00Z"),
            ok(2, "2026-10-25T01:30:01Z"),
            ok(3, "2026-10-26T01:30:00Z"),
        ];
        let policy = Policy {
            keep_within: Some(within("1d")),
            ..Policy::default()
        };
        assert_eq!(kept(&apply(&policy, &candidates, &berlin)), [3, 2]);
    }

    #[test]
    fn buckets_follow_the_time_zone() {
        let berlin = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        // One UTC day, but 23:30 and 00:30 in Berlin.
        let candidates = [ok(1, "2026-06-01T21:30:00Z"), ok(2, "2026-06-01T22:30:00Z")];
        let policy = Policy {
            keep_daily: Some(2),
            ..Policy::default()
        };
        assert_eq!(kept(&apply(&policy, &candidates, &TimeZone::UTC)), [2]);
        let verdicts = apply(&policy, &candidates, &berlin);
        assert_eq!(kept(&verdicts), [2, 1]);
        assert_eq!(reasons(&verdicts, 1), ["daily 2026-06-01"]);
    }

    #[test]
    fn weeks_are_iso_weeks_across_the_year_end() {
        let candidates = [
            ok(1, "2026-12-27T12:00:00Z"),
            ok(2, "2026-12-31T12:00:00Z"),
            ok(3, "2027-01-01T12:00:00Z"),
        ];
        let policy = Policy {
            keep_weekly: Some(2),
            ..Policy::default()
        };
        let verdicts = apply(&policy, &candidates, &TimeZone::UTC);
        assert_eq!(kept(&verdicts), [3, 1]);
        assert_eq!(
            reasons(&verdicts, 3),
            ["newest successful", "weekly 2026-W53"]
        );
        assert_eq!(reasons(&verdicts, 2), ["not kept by the policy"]);
        assert_eq!(reasons(&verdicts, 1), ["weekly 2026-W52"]);
    }
}
