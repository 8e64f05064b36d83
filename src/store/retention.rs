//! Per-server retention policies.

use super::Result;
use crate::model::Timestamp;
use crate::retention::{Policy, Within};
use rusqlite::{Connection, OptionalExtension, params};

pub fn get(c: &Connection, server_id: i64) -> Result<Option<Policy>> {
    Ok(c.prepare_cached(
        "SELECT keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly,
             keep_within
         FROM retention_policies WHERE server_id = ?1",
    )?
    .query_row([server_id], |r| {
        let within: Option<String> = r.get(6)?;
        Ok(Policy {
            keep_last: r.get(0)?,
            keep_hourly: r.get(1)?,
            keep_daily: r.get(2)?,
            keep_weekly: r.get(3)?,
            keep_monthly: r.get(4)?,
            keep_yearly: r.get(5)?,
            // Written from a parsed value, so it parses.
            keep_within: within.and_then(|w| w.parse::<Within>().ok()),
        })
    })
    .optional()?)
}

/// Sets the server's policy; an empty one removes it (hoard then never prunes).
pub fn set(c: &Connection, server_id: i64, policy: &Policy, now: Timestamp) -> Result<()> {
    if policy.is_empty() {
        c.execute(
            "DELETE FROM retention_policies WHERE server_id = ?1",
            [server_id],
        )?;
        return Ok(());
    }
    c.execute(
        "INSERT INTO retention_policies (server_id, keep_last, keep_hourly, keep_daily,
             keep_weekly, keep_monthly, keep_yearly, keep_within, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (server_id) DO UPDATE SET keep_last = excluded.keep_last,
             keep_hourly = excluded.keep_hourly, keep_daily = excluded.keep_daily,
             keep_weekly = excluded.keep_weekly, keep_monthly = excluded.keep_monthly,
             keep_yearly = excluded.keep_yearly, keep_within = excluded.keep_within,
             updated_at = excluded.updated_at",
        params![
            server_id,
            policy.keep_last,
            policy.keep_hourly,
            policy.keep_daily,
            policy.keep_weekly,
            policy.keep_monthly,
            policy.keep_yearly,
            policy.keep_within.map(|w| w.to_string()),
            now
        ],
    )?;
    Ok(())
}
