//! Event webhooks: subscriptions (managed by the admin API, the CLI and the console)
//! and the dispatcher that delivers their events.
//!
//! Every event queues one delivery per subscription that wants it, in the same
//! transaction as the event (`db::events::append`), so delivery is at least once across
//! restarts and `kill -9`. The dispatcher thread takes due deliveries tenant by tenant
//! and sends them on the action pool, so webhooks share the actions' threads and
//! per-tenant fairness, and go out through the same SSRF guard and signing: a POST of
//! the event as JSON, signed `X-Threada-Signature: t=…,v1=…` with the tenant's signing
//! secret, carrying `X-Threada-Event-Id` (receivers de-duplicate on it),
//! `X-Threada-Event-Type`, `X-Threada-Delivery-Id` and `X-Threada-Attempt`.
//!
//! A failed attempt is retried after `webhooks.retry_base_ms`, then twice as long each
//! time (±25 % jitter, at most `retry_max_ms`), until `retry_for_hours` after the event;
//! then the delivery is `failed`. After `pause_after_failures` failed attempts in a row
//! the subscription is paused: its deliveries wait (nothing is dropped) until resumed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::RngExt;
use rusqlite::Connection;

use crate::actions::{ActionRunner, CallContext};
use crate::clock::Timestamp;
use crate::config::{ActionsConfig, WebhooksConfig};
use crate::db::webhooks::{self, DeliveryStatus, Due, Outcome, Subscription};
use crate::db::{self, Db, events};
use crate::domain::action::{ActionPolicy, ActionRequest, Method};
use crate::domain::event::{SubscriptionChange, SubscriptionStatus, parse_webhook_url};
use crate::error::ApiError;

/// How often the dispatcher looks for due deliveries.
const TICK: Duration = Duration::from_millis(200);
/// Deliveries one tenant may take per tick.
const BATCH: u32 = 32;

fn subscription_not_found() -> ApiError {
    ApiError::not_found("subscription_id", "webhook subscription")
}

/// A new subscription; its URL must be one the tenant's actions may call.
pub fn create(
    conn: &Connection,
    tenant_id: &str,
    change: &SubscriptionChange,
    policy: &ActionPolicy,
) -> Result<Subscription, ApiError> {
    let settings = db::tenants::action_settings(conn, tenant_id)?
        .ok_or_else(|| ApiError::not_found("tenant_id", "tenant"))?;
    let url = change.url.as_deref().unwrap_or_default();
    let url = parse_webhook_url(url, &settings, policy, "url")?;
    let types = change.event_types.clone().unwrap_or_default();
    let mut subscription =
        webhooks::insert(conn, tenant_id, url.as_str(), &types, Timestamp::now())?;
    if change.status == Some(SubscriptionStatus::Paused) {
        subscription.status = SubscriptionStatus::Paused;
        subscription.paused_reason = Some("paused by hand".into());
        webhooks::save(conn, &subscription)?;
    }
    Ok(subscription)
}

/// A subscription, within one tenant when `tenant_id` is given.
pub fn get(
    conn: &Connection,
    tenant_id: Option<&str>,
    subscription_id: &str,
) -> Result<Subscription, ApiError> {
    let found = match tenant_id {
        Some(tenant_id) => webhooks::get(conn, tenant_id, subscription_id)?,
        None => webhooks::find(conn, subscription_id)?,
    };
    found.ok_or_else(subscription_not_found)
}

/// Changes a subscription's URL, event types or status. Resuming clears the failure
/// count and makes its waiting deliveries due at once.
pub fn update(
    conn: &Connection,
    tenant_id: Option<&str>,
    subscription_id: &str,
    change: &SubscriptionChange,
    policy: &ActionPolicy,
) -> Result<Subscription, ApiError> {
    let mut subscription = get(conn, tenant_id, subscription_id)?;
    let now = Timestamp::now();
    if let Some(url) = &change.url {
        let settings = db::tenants::action_settings(conn, &subscription.tenant_id)?
            .ok_or_else(|| ApiError::not_found("tenant_id", "tenant"))?;
        subscription.url = parse_webhook_url(url, &settings, policy, "url")?.to_string();
    }
    if let Some(types) = &change.event_types {
        subscription.event_types = types.clone();
    }
    match change.status {
        Some(SubscriptionStatus::Active) if subscription.status == SubscriptionStatus::Paused => {
            subscription.status = SubscriptionStatus::Active;
            subscription.paused_reason = None;
            subscription.consecutive_failures = 0;
            webhooks::due_now(conn, &subscription.tenant_id, subscription_id, now)?;
        }
        Some(SubscriptionStatus::Paused) if subscription.status == SubscriptionStatus::Active => {
            subscription.status = SubscriptionStatus::Paused;
            subscription.paused_reason = Some("paused by hand".into());
        }
        _ => {}
    }
    subscription.updated_at = now;
    webhooks::save(conn, &subscription)?;
    Ok(subscription)
}

/// Deletes a subscription and its deliveries.
pub fn delete(
    conn: &Connection,
    tenant_id: Option<&str>,
    subscription_id: &str,
) -> Result<(), ApiError> {
    let subscription = get(conn, tenant_id, subscription_id)?;
    webhooks::delete(conn, &subscription.tenant_id, subscription_id)?;
    Ok(())
}

/// Sends a delivery again (same event, same event id), now.
pub fn replay(
    conn: &Connection,
    tenant_id: &str,
    delivery_id: &str,
) -> Result<webhooks::Delivery, ApiError> {
    if !webhooks::replay(conn, tenant_id, delivery_id, Timestamp::now())? {
        return Err(ApiError::not_found("delivery_id", "delivery"));
    }
    webhooks::delivery(conn, tenant_id, delivery_id)?
        .ok_or_else(|| ApiError::not_found("delivery_id", "delivery"))
}

/// The delay before retry number `attempts` (1 = the first retry), with jitter.
pub fn backoff(config: &WebhooksConfig, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = config.retry_base_ms.saturating_mul(1u64 << doublings);
    let capped = base.min(config.retry_max_ms) as f64;
    let jitter: f64 = rand::rng().random_range(0.75..1.25);
    Duration::from_millis((capped * jitter) as u64)
}

/// The dispatcher thread; stops when dropped (or `stop`ped).
pub struct Dispatcher {
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What the dispatcher works with.
struct Parts {
    db: Arc<Db>,
    runner: Arc<ActionRunner>,
    policy: ActionPolicy,
    config: WebhooksConfig,
    lease: Duration,
}

impl Dispatcher {
    /// Starts the thread.
    pub fn start(
        db: Arc<Db>,
        runner: Arc<ActionRunner>,
        policy: ActionPolicy,
        config: WebhooksConfig,
        actions: &ActionsConfig,
    ) -> Dispatcher {
        let stopping = Arc::new(AtomicBool::new(false));
        let parts = Parts {
            db,
            runner,
            policy,
            config,
            // Longer than any call: a delivery whose sender died is due again after it.
            lease: Duration::from_millis(actions.timeout_ms + 5000),
        };
        let flag = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("threada-webhooks".into())
            .spawn(move || {
                let mut turn = 0usize;
                while !flag.load(Ordering::Acquire) {
                    if let Err(e) = round(&parts, turn) {
                        log::warn!("webhook dispatch: {e}");
                    }
                    turn = turn.wrapping_add(1);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| log::error!("cannot start the webhook dispatcher: {e}"))
            .ok();
        Dispatcher { stopping, thread }
    }

    /// Stops taking deliveries (those in flight finish on the action pool).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the webhook dispatcher panicked");
        }
    }
}

/// One round: every tenant's due deliveries, as far as the webhooks' part of its share
/// of the pool allows; the tenant served first changes from round to round.
fn round(parts: &Parts, turn: usize) -> Result<(), ApiError> {
    let mut tenants = parts
        .db
        .read_blocking(|conn| Ok::<_, ApiError>(webhooks::tenants_with_pending(conn)?))?;
    if !tenants.is_empty() {
        let start = turn % tenants.len();
        tenants.rotate_left(start);
    }
    for tenant_id in tenants {
        let now = Timestamp::now();
        let due = parts.db.read_blocking(|conn| {
            Ok::<_, ApiError>(webhooks::due(conn, &tenant_id, now, BATCH)?)
        })?;
        for delivery in due {
            let Ok(permit) = parts.runner.try_reserve_webhook(&tenant_id) else {
                break; // the tenant's share (or the pool) is full: next round
            };
            let until = now.plus(parts.lease);
            let (tenant, id) = (tenant_id.clone(), delivery.delivery_id.clone());
            let leased = parts
                .db
                .writer()
                .run_blocking(move |conn| webhooks::lease(conn, &tenant, &id, now, until))?;
            if !leased {
                continue;
            }
            let (db, runner) = (Arc::clone(&parts.db), Arc::clone(&parts.runner));
            let (policy, config, lease) = (parts.policy.clone(), parts.config.clone(), parts.lease);
            parts.runner.submit(permit, move || {
                if let Err(e) = deliver(&db, &runner, &policy, (&config, lease), &delivery) {
                    log::warn!("webhook delivery {}: {e}", delivery.delivery_id);
                }
            });
        }
    }
    Ok(())
}

/// Sends one delivery and records the attempt and what follows from it.
fn deliver(
    db: &Db,
    runner: &ActionRunner,
    policy: &ActionPolicy,
    (config, lease): (&WebhooksConfig, Duration),
    due: &Due,
) -> Result<(), ApiError> {
    // It may have waited for a thread past its first lease: take it again, or leave
    // it to whoever took it meanwhile.
    let renewed = {
        let (due, until) = (due.clone(), Timestamp::now().plus(lease));
        db.writer().run_blocking(move |conn| {
            Ok::<_, ApiError>(webhooks::renew_lease(conn, &due, until)?)
        })?
    };
    if !renewed {
        return Ok(());
    }
    let started = Timestamp::now();
    let (event, settings) = db.read_blocking(|conn| {
        let event = events::get(conn, &due.tenant_id, due.event_seq)?;
        let settings = db::tenants::action_settings(conn, &due.tenant_id)?;
        Ok::<_, ApiError>((event, settings))
    })?;
    let (outcome, succeeded) = match (event, settings) {
        (Some(event), Some(settings)) => {
            match parse_webhook_url(&due.url, &settings, policy, "url") {
                Ok(target) => {
                    let body = serde_json::to_string(&event).map_err(ApiError::internal)?;
                    let request = ActionRequest {
                        method: Method::Post,
                        url: due.url.clone(),
                        allow_private: policy.allows_private(&settings, &target),
                        target,
                        headers: Vec::new(),
                        body_json: Some(body),
                    };
                    let attempt = (due.attempts + 1).to_string();
                    let context = CallContext {
                        headers: &[
                            ("X-Threada-Event-Id", &event.event_id),
                            ("X-Threada-Event-Type", event.event_type.as_str()),
                            ("X-Threada-Delivery-Id", &due.delivery_id),
                            ("X-Threada-Attempt", &attempt),
                        ],
                        signing_secret: &settings.signing_secret,
                    };
                    let result = runner.outbound().call(&request, context);
                    let outcome = Outcome {
                        started_at: started,
                        duration_ms: i64::try_from(result.duration_ms).unwrap_or(i64::MAX),
                        http_status: result.http_status.map(i64::from),
                        error_code: result.error.as_ref().map(|e| e.code.clone()),
                        error_message: result.error.as_ref().map(|e| e.message.clone()),
                    };
                    (outcome, result.succeeded())
                }
                Err(refused) => (
                    failed(started, "destination_not_allowed", &refused.message),
                    false,
                ),
            }
        }
        _ => (
            failed(started, "event_expired", "the event is no longer kept"),
            false,
        ),
    };
    runner
        .metrics()
        .webhook_attempt(if succeeded { "delivered" } else { "failed" });
    let expired = outcome.error_code.as_deref() == Some("event_expired");
    let config = config.clone();
    let due = due.clone();
    db.writer().run_blocking(move |conn| {
        let now = Timestamp::now();
        let window = Duration::from_secs(config.retry_for_hours * 3600);
        let (status, next) = if succeeded {
            (DeliveryStatus::Delivered, None)
        } else if expired || now.micros() >= due.retry_from.plus(window).micros() {
            (DeliveryStatus::Failed, None)
        } else {
            let wait = backoff(&config, due.attempts + 1);
            (DeliveryStatus::Pending, Some(now.plus(wait)))
        };
        if !webhooks::record(conn, &due, &outcome, status, next, now)? {
            return Ok(());
        }
        count_failure(conn, &due, succeeded, &config, now)
    })
}

/// An attempt that made no call.
fn failed(started: Timestamp, code: &str, message: &str) -> Outcome {
    Outcome {
        started_at: started,
        duration_ms: 0,
        http_status: None,
        error_code: Some(code.to_string()),
        error_message: Some(message.to_string()),
    }
}

/// Keeps the subscription's run of failures; pauses it past `pause_after_failures`.
fn count_failure(
    conn: &Connection,
    due: &Due,
    succeeded: bool,
    config: &WebhooksConfig,
    now: Timestamp,
) -> Result<(), ApiError> {
    let Some(mut subscription) = webhooks::get(conn, &due.tenant_id, &due.subscription_id)? else {
        return Ok(());
    };
    subscription.consecutive_failures = if succeeded {
        0
    } else {
        subscription.consecutive_failures + 1
    };
    let limit = i64::try_from(config.pause_after_failures).unwrap_or(i64::MAX);
    if subscription.consecutive_failures >= limit
        && subscription.status == SubscriptionStatus::Active
    {
        subscription.status = SubscriptionStatus::Paused;
        subscription.paused_reason = Some(format!(
            "paused after {} failed attempts in a row",
            subscription.consecutive_failures
        ));
        log::warn!(
            "webhook subscription {} paused after {} failed attempts in a row",
            subscription.subscription_id,
            subscription.consecutive_failures
        );
    }
    subscription.updated_at = now;
    webhooks::save(conn, &subscription)?;
    Ok(())
}
