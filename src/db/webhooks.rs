//! Webhook subscriptions, their deliveries (one per event and subscription) and every
//! attempt of each delivery.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::DbError;
use crate::clock::Timestamp;
use crate::crypto;
use crate::domain::event::{EventType, SubscriptionStatus};
use crate::domain::listing::Cursor;
use crate::domain::named_enum;

named_enum!(
    /// Where a delivery stands: `pending` until the receiver answers 2xx
    /// (`delivered`) or the retry window ends (`failed`).
    DeliveryStatus { Pending => "pending", Delivered => "delivered", Failed => "failed" }
);

/// A webhook subscription.
#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    pub subscription_id: String,
    pub tenant_id: String,
    pub url: String,
    /// Empty: every type.
    pub event_types: Vec<EventType>,
    pub status: SubscriptionStatus,
    pub paused_reason: Option<String>,
    pub consecutive_failures: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const SUBSCRIPTION_COLUMNS: &str = "subscription_id, tenant_id, url, event_types, status, \
                                    paused_reason, consecutive_failures, created_at, updated_at";

fn subscription_from_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let types: String = row.get(3)?;
    let names: Vec<String> = serde_json::from_str(&types).unwrap_or_default();
    Ok(Subscription {
        subscription_id: row.get(0)?,
        tenant_id: row.get(1)?,
        url: row.get(2)?,
        event_types: names
            .iter()
            .filter_map(|n| EventType::from_name(n))
            .collect(),
        status: row.get(4)?,
        paused_reason: row.get(5)?,
        consecutive_failures: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

fn types_json(types: &[EventType]) -> String {
    let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

/// Stores a new subscription.
pub fn insert(
    conn: &Connection,
    tenant_id: &str,
    url: &str,
    event_types: &[EventType],
    now: Timestamp,
) -> Result<Subscription, DbError> {
    let subscription = Subscription {
        subscription_id: crypto::id_at("whk", now),
        tenant_id: tenant_id.to_string(),
        url: url.to_string(),
        event_types: event_types.to_vec(),
        status: SubscriptionStatus::Active,
        paused_reason: None,
        consecutive_failures: 0,
        created_at: now,
        updated_at: now,
    };
    conn.prepare_cached(
        "INSERT INTO webhook_subscriptions (tenant_id, subscription_id, url, event_types, status,
                                            created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?5)",
    )?
    .execute(params![
        tenant_id,
        subscription.subscription_id,
        url,
        types_json(event_types),
        now
    ])?;
    Ok(subscription)
}

pub fn get(
    conn: &Connection,
    tenant_id: &str,
    subscription_id: &str,
) -> Result<Option<Subscription>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
             WHERE tenant_id = ?1 AND subscription_id = ?2"
        ))?
        .query_row([tenant_id, subscription_id], subscription_from_row)
        .optional()?)
}

/// A subscription by id alone (ids are unique across tenants; the CLI's way).
pub fn find(conn: &Connection, subscription_id: &str) -> Result<Option<Subscription>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE subscription_id = ?1"
        ))?
        .query_row([subscription_id], subscription_from_row)
        .optional()?)
}

pub fn list(conn: &Connection, tenant_id: &str) -> Result<Vec<Subscription>, DbError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
         WHERE tenant_id = ?1 ORDER BY subscription_id"
    ))?;
    let items = statement
        .query_map([tenant_id], subscription_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(items)
}

/// Writes a subscription's url, types and status (the caller changed them).
pub fn save(conn: &Connection, subscription: &Subscription) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE webhook_subscriptions
         SET url = ?3, event_types = ?4, status = ?5, paused_reason = ?6,
             consecutive_failures = ?7, updated_at = ?8
         WHERE tenant_id = ?1 AND subscription_id = ?2",
    )?
    .execute(params![
        subscription.tenant_id,
        subscription.subscription_id,
        subscription.url,
        types_json(&subscription.event_types),
        subscription.status,
        subscription.paused_reason,
        subscription.consecutive_failures,
        subscription.updated_at
    ])?;
    Ok(())
}

/// Deletes a subscription, its deliveries and their attempts.
pub fn delete(conn: &Connection, tenant_id: &str, subscription_id: &str) -> Result<(), DbError> {
    conn.prepare_cached(
        "DELETE FROM webhook_attempts WHERE tenant_id = ?1 AND delivery_id IN
           (SELECT delivery_id FROM webhook_deliveries WHERE tenant_id = ?1 AND subscription_id = ?2)",
    )?
    .execute([tenant_id, subscription_id])?;
    conn.prepare_cached(
        "DELETE FROM webhook_deliveries WHERE tenant_id = ?1 AND subscription_id = ?2",
    )?
    .execute([tenant_id, subscription_id])?;
    conn.prepare_cached(
        "DELETE FROM webhook_subscriptions WHERE tenant_id = ?1 AND subscription_id = ?2",
    )?
    .execute([tenant_id, subscription_id])?;
    Ok(())
}

/// Queues a delivery of the event at `seq` for every subscription of the tenant that
/// wants its type (paused ones too: their deliveries wait for the resume).
pub fn queue(
    conn: &Connection,
    tenant_id: &str,
    event_type: EventType,
    seq: i64,
    now: Timestamp,
) -> Result<(), DbError> {
    let mut statement = conn.prepare_cached(
        "SELECT subscription_id, event_types FROM webhook_subscriptions WHERE tenant_id = ?1",
    )?;
    let wanted: Vec<String> = statement
        .query_map([tenant_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .filter_map(Result::ok)
        .filter(|(_, types)| {
            let names: Vec<String> = serde_json::from_str(types).unwrap_or_default();
            names.is_empty() || names.iter().any(|n| n == event_type.as_str())
        })
        .map(|(id, _)| id)
        .collect();
    for subscription_id in wanted {
        conn.prepare_cached(
            "INSERT INTO webhook_deliveries (tenant_id, delivery_id, subscription_id, event_seq,
                                             status, attempts, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
        )?
        .execute(params![
            tenant_id,
            crypto::id_at("dlv", now),
            subscription_id,
            seq,
            now
        ])?;
    }
    Ok(())
}

/// A delivery and its attempts, as listings show them.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub delivery_id: String,
    pub subscription_id: String,
    pub event_id: Option<String>,
    pub event_type: Option<EventType>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub history: Vec<Attempt>,
    #[serde(skip)]
    pub event_seq: i64,
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub attempt: i64,
    pub started_at: Timestamp,
    pub duration_ms: i64,
    pub http_status: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

const DELIVERY_COLUMNS: &str = "d.delivery_id, d.subscription_id, e.event_id, e.type, d.status, \
                                d.attempts, d.next_attempt_at, d.created_at, d.completed_at, d.event_seq";

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let status: DeliveryStatus = row.get(4)?;
    Ok(Delivery {
        delivery_id: row.get(0)?,
        subscription_id: row.get(1)?,
        event_id: row.get(2)?,
        event_type: row.get(3)?,
        status,
        attempts: row.get(5)?,
        next_attempt_at: if status == DeliveryStatus::Pending {
            row.get(6)?
        } else {
            None
        },
        created_at: row.get(7)?,
        completed_at: row.get(8)?,
        history: Vec::new(),
        event_seq: row.get(9)?,
    })
}

fn attempts(
    conn: &Connection,
    tenant_id: &str,
    delivery_id: &str,
) -> Result<Vec<Attempt>, DbError> {
    let mut statement = conn.prepare_cached(
        "SELECT attempt, started_at, duration_ms, http_status, error_code, error_message
         FROM webhook_attempts WHERE tenant_id = ?1 AND delivery_id = ?2 ORDER BY attempt",
    )?;
    let items = statement
        .query_map([tenant_id, delivery_id], |row| {
            Ok(Attempt {
                attempt: row.get(0)?,
                started_at: row.get(1)?,
                duration_ms: row.get(2)?,
                http_status: row.get(3)?,
                error_code: row.get(4)?,
                error_message: row.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(items)
}

/// Up to `limit` deliveries of a subscription after `after`, newest first, with their
/// attempts, plus whether more follow.
pub fn deliveries(
    conn: &Connection,
    tenant_id: &str,
    subscription_id: &str,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<(Vec<Delivery>, bool), DbError> {
    let id = after.map_or("\u{10FFFF}", |c| c.id.as_str());
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
         LEFT JOIN events e ON e.tenant_id = d.tenant_id AND e.seq = d.event_seq
         WHERE d.tenant_id = ?1 AND d.subscription_id = ?2 AND d.delivery_id < ?3
         ORDER BY d.delivery_id DESC LIMIT {}",
        limit + 1
    ))?;
    let mut items = statement
        .query_map(params![tenant_id, subscription_id, id], delivery_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    for item in &mut items {
        item.history = attempts(conn, tenant_id, &item.delivery_id)?;
    }
    Ok((items, more))
}

/// One delivery with its attempts.
pub fn delivery(
    conn: &Connection,
    tenant_id: &str,
    delivery_id: &str,
) -> Result<Option<Delivery>, DbError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
             LEFT JOIN events e ON e.tenant_id = d.tenant_id AND e.seq = d.event_seq
             WHERE d.tenant_id = ?1 AND d.delivery_id = ?2"
        ))?
        .query_row([tenant_id, delivery_id], delivery_from_row)
        .optional()?;
    let Some(mut delivery) = found else {
        return Ok(None);
    };
    delivery.history = attempts(conn, tenant_id, delivery_id)?;
    Ok(Some(delivery))
}

/// A delivery due now, with what sending it needs.
#[derive(Debug, Clone)]
pub struct Due {
    pub tenant_id: String,
    pub delivery_id: String,
    pub subscription_id: String,
    pub url: String,
    pub event_seq: i64,
    pub attempts: i64,
    /// Retries end `webhooks.retry_for_hours` after this: the event, or the replay.
    pub retry_from: Timestamp,
}

/// Up to `limit` of the tenant's pending deliveries due at `now`, for active
/// subscriptions, oldest due first.
pub fn due(
    conn: &Connection,
    tenant_id: &str,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<Due>, DbError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT d.delivery_id, d.subscription_id, s.url, d.event_seq, d.attempts,
                coalesce(d.retry_from, d.created_at)
         FROM webhook_deliveries d
         JOIN webhook_subscriptions s
           ON s.tenant_id = d.tenant_id AND s.subscription_id = d.subscription_id
         WHERE d.tenant_id = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
           AND s.status = 'active'
         ORDER BY d.next_attempt_at LIMIT {limit}"
    ))?;
    let items = statement
        .query_map(params![tenant_id, now], |row| {
            Ok(Due {
                tenant_id: tenant_id.to_string(),
                delivery_id: row.get(0)?,
                subscription_id: row.get(1)?,
                url: row.get(2)?,
                event_seq: row.get(3)?,
                attempts: row.get(4)?,
                retry_from: row.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(items)
}

/// Removes up to `batch` of the tenant's finished (delivered or failed) deliveries
/// created before `cutoff`, with their attempts; returns how many.
pub fn purge_finished(
    conn: &Connection,
    tenant_id: &str,
    cutoff: Timestamp,
    batch: u32,
) -> Result<usize, DbError> {
    let floor = crypto::id_floor("dlv", cutoff);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT delivery_id FROM webhook_deliveries
         WHERE tenant_id = ?1 AND delivery_id < ?2 AND status <> 'pending' LIMIT {batch}"
    ))?;
    let ids = statement
        .query_map([tenant_id, floor.as_str()], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    for id in &ids {
        conn.prepare_cached(
            "DELETE FROM webhook_attempts WHERE tenant_id = ?1 AND delivery_id = ?2",
        )?
        .execute([tenant_id, id])?;
        conn.prepare_cached(
            "DELETE FROM webhook_deliveries WHERE tenant_id = ?1 AND delivery_id = ?2",
        )?
        .execute([tenant_id, id])?;
    }
    Ok(ids.len())
}

/// Tenants with pending deliveries (the dispatcher's round).
pub fn tenants_with_pending(conn: &Connection) -> Result<Vec<String>, DbError> {
    let mut statement = conn.prepare_cached(
        "SELECT tenant_id FROM tenants t WHERE EXISTS
           (SELECT 1 FROM webhook_deliveries d WHERE d.tenant_id = t.tenant_id AND d.status = 'pending')",
    )?;
    let items = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(items)
}

/// Takes a due delivery for sending: pushes its due time to `until`, so that another
/// round (or a restart after a crash) sends it again only if this one never finishes.
/// False when it was no longer due (someone else took it).
pub fn lease(
    conn: &Connection,
    tenant_id: &str,
    delivery_id: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, DbError> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_at = ?4
             WHERE tenant_id = ?1 AND delivery_id = ?2 AND status = 'pending' AND next_attempt_at <= ?3",
        )?
        .execute(params![tenant_id, delivery_id, now, until])?;
    Ok(changed == 1)
}

/// Renews the lease of a delivery about to be sent (it may have waited for a thread):
/// false when it is no longer pending with `attempts` attempts (another sender, a
/// replay that was sent, a delete), and then it must not be sent.
pub fn renew_lease(conn: &Connection, due: &Due, until: Timestamp) -> Result<bool, DbError> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_at = ?4
             WHERE tenant_id = ?1 AND delivery_id = ?2 AND status = 'pending' AND attempts = ?3",
        )?
        .execute(params![due.tenant_id, due.delivery_id, due.attempts, until])?;
    Ok(changed == 1)
}

/// What one attempt gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub started_at: Timestamp,
    pub duration_ms: i64,
    pub http_status: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Records an attempt and what follows from it: `next` is `None` for delivered or
/// failed for good, else when to try again. Only the sender of attempt
/// `due.attempts + 1` of a still-pending delivery records it; false otherwise.
pub fn record(
    conn: &Connection,
    due: &Due,
    outcome: &Outcome,
    status: DeliveryStatus,
    next: Option<Timestamp>,
    now: Timestamp,
) -> Result<bool, DbError> {
    let attempt = due.attempts + 1;
    let completed = (status != DeliveryStatus::Pending).then_some(now);
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = ?3, attempts = ?4, next_attempt_at = ?5,
                                           completed_at = ?6
             WHERE tenant_id = ?1 AND delivery_id = ?2 AND status = 'pending' AND attempts = ?7",
        )?
        .execute(params![
            due.tenant_id,
            due.delivery_id,
            status,
            attempt,
            next,
            completed,
            due.attempts
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (tenant_id, delivery_id, attempt, started_at,
                                       duration_ms, http_status, error_code, error_message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        due.tenant_id,
        due.delivery_id,
        attempt,
        outcome.started_at,
        outcome.duration_ms,
        outcome.http_status,
        outcome.error_code,
        outcome.error_message
    ])?;
    Ok(true)
}

/// Sends a delivery again: pending and due now, whatever it was.
pub fn replay(
    conn: &Connection,
    tenant_id: &str,
    delivery_id: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?3,
                                           completed_at = NULL, retry_from = ?3
             WHERE tenant_id = ?1 AND delivery_id = ?2",
        )?
        .execute(params![tenant_id, delivery_id, now])?;
    Ok(changed == 1)
}

/// Makes a subscription's pending deliveries due now (on resume).
pub fn due_now(
    conn: &Connection,
    tenant_id: &str,
    subscription_id: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET next_attempt_at = ?3
         WHERE tenant_id = ?1 AND subscription_id = ?2 AND status = 'pending'",
    )?
    .execute(params![tenant_id, subscription_id, now])?;
    Ok(())
}
