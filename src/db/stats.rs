//! Counts for the console's overview.

use rusqlite::Connection;

use super::DbError;
use super::actions::ActionStatus;
use crate::clock::Timestamp;
use crate::crypto;
use crate::domain::ticket::{Channel, Status};

/// Days the overview's chart covers.
pub const CHART_DAYS: usize = 14;
const DAY_MICROS: i64 = 86_400_000_000;

/// One tenant at a glance.
#[derive(Debug, Clone, Default)]
pub struct TenantStats {
    pub by_status: Vec<(Status, u64)>,
    pub by_channel: Vec<(Channel, u64)>,
    /// Actions created in the last 24 hours, by outcome.
    pub actions_last_day: Vec<(ActionStatus, u64)>,
    /// Tickets created on each of the last 14 days (UTC), oldest first.
    pub created_per_day: [u64; CHART_DAYS],
}

impl TenantStats {
    /// Every ticket of the tenant.
    pub fn tickets(&self) -> u64 {
        self.by_status.iter().map(|(_, n)| n).sum()
    }
}

fn counts<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<(T, u64)>, DbError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let count: i64 = row.get(1)?;
        if let Some(value) = parse(&name) {
            found.push((value, u64::try_from(count).unwrap_or(0)));
        }
    }
    Ok(found)
}

/// Counts for one tenant. Ids start with their creation time, so "created since"
/// is a range on the id index.
pub fn tenant(conn: &Connection, tenant_id: &str, now: Timestamp) -> Result<TenantStats, DbError> {
    let by_status = counts(
        conn,
        "SELECT status, count(*) FROM tickets WHERE tenant_id = ?1 GROUP BY status",
        [tenant_id],
        Status::from_name,
    )?;
    let by_channel = counts(
        conn,
        "SELECT channel, count(*) FROM tickets WHERE tenant_id = ?1 GROUP BY channel",
        [tenant_id],
        Channel::from_name,
    )?;
    let day_ago = crypto::id_floor("act", now.minus(std::time::Duration::from_secs(86_400)));
    let actions_last_day = counts(
        conn,
        "SELECT status, count(*) FROM actions WHERE tenant_id = ?1 AND action_id >= ?2
         GROUP BY status",
        [tenant_id, day_ago.as_str()],
        ActionStatus::from_name,
    )?;
    let today = now.micros().div_euclid(DAY_MICROS);
    let first_day = today - (CHART_DAYS as i64 - 1);
    let since = crypto::id_floor("tkt", Timestamp::from_micros(first_day * DAY_MICROS));
    let mut statement = conn.prepare_cached(
        "SELECT created_at / ?3, count(*) FROM tickets
         WHERE tenant_id = ?1 AND ticket_id >= ?2 GROUP BY 1",
    )?;
    let mut rows = statement.query(rusqlite::params![tenant_id, since, DAY_MICROS])?;
    let mut created_per_day = [0u64; CHART_DAYS];
    while let Some(row) = rows.next()? {
        let day: i64 = row.get(0)?;
        let count: i64 = row.get(1)?;
        if let Some(slot) = usize::try_from(day - first_day)
            .ok()
            .and_then(|i| created_per_day.get_mut(i))
        {
            *slot = u64::try_from(count).unwrap_or(0);
        }
    }
    Ok(TenantStats {
        by_status,
        by_channel,
        actions_last_day,
        created_per_day,
    })
}
