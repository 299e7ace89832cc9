//! What the server is doing, for Prometheus: `GET /metrics` (with `metrics.enabled`)
//! in the OpenMetrics text format, written by the `prometheus-client` crate.
//!
//! One `Metrics` per server, handed to the layers that record (the request middleware,
//! the writer, the action pool, the maintenance thread). Off, it is empty and every
//! call returns at once, so a server without metrics pays nothing for them.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route template (`/api/v1/public/tickets/{ticket_id}`), never a raw path.
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// Values read when scraped rather than recorded as they happen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub database_bytes: u64,
    pub wal_bytes: u64,
    pub actions_running: u64,
    pub actions_queued: u64,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    writer_queue: Gauge,
    group_size: Histogram,
    commit_seconds: Histogram,
    actions: Family<OutcomeLabels, Counter>,
    actions_running: Gauge,
    actions_queued: Gauge,
    rate_limited: Family<RouteLabels, Counter>,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    backups: Family<OutcomeLabels, Counter>,
    backup_last_success: Gauge,
    database_bytes: Gauge,
    wal_bytes: Gauge,
}

/// The server's metrics; cheap to clone; empty when `metrics.enabled` is off.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Option<Arc<Inner>>);

fn seconds_histogram() -> Histogram {
    // 100 µs to about 13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Metrics {
    /// Metrics that record, or (`enabled` false) that ignore everything.
    pub fn new(enabled: bool) -> Metrics {
        if !enabled {
            return Metrics(None);
        }
        let mut registry = Registry::with_prefix("threada");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register_with_unit(
            "http_request_duration",
            "Time from the request's head to its answer, by route template",
            Unit::Seconds,
            request_seconds.clone(),
        );
        let writer_queue = Gauge::default();
        registry.register(
            "writer_queue_depth",
            "Write jobs waiting for the writer thread",
            writer_queue.clone(),
        );
        let group_size = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "writer_group_size",
            "Write jobs committed together in one transaction",
            group_size.clone(),
        );
        let commit_seconds = seconds_histogram();
        registry.register_with_unit(
            "writer_commit_duration",
            "Time to run and commit one group of write jobs",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        let actions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "actions",
            "Actions completed, by outcome (succeeded, failed)",
            actions.clone(),
        );
        let actions_running = Gauge::default();
        registry.register(
            "action_pool_running",
            "Actions running on the action pool",
            actions_running.clone(),
        );
        let actions_queued = Gauge::default();
        registry.register(
            "action_pool_queued",
            "Actions and webhook deliveries waiting for an action thread",
            actions_queued.clone(),
        );
        let rate_limited = Family::<RouteLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests answered 429 (a key's rate, an address's failed authentications, a \
             tenant's share of the action pool), by route template",
            rate_limited.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered, failed)",
            webhook_attempts.clone(),
        );
        let backups = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "scheduled_backups",
            "Scheduled backups, by outcome (written, failed)",
            backups.clone(),
        );
        let backup_last_success = Gauge::default();
        registry.register(
            "scheduled_backup_last_success_timestamp_seconds",
            "Unix time of the last scheduled backup written (0: none yet)",
            backup_last_success.clone(),
        );
        let database_bytes = Gauge::default();
        registry.register_with_unit(
            "database_size",
            "Size of the database file",
            Unit::Bytes,
            database_bytes.clone(),
        );
        let wal_bytes = Gauge::default();
        registry.register_with_unit(
            "wal_size",
            "Size of the database's write-ahead log",
            Unit::Bytes,
            wal_bytes.clone(),
        );
        Metrics(Some(Arc::new(Inner {
            registry,
            requests,
            request_seconds,
            writer_queue,
            group_size,
            commit_seconds,
            actions,
            actions_running,
            actions_queued,
            rate_limited,
            webhook_attempts,
            backups,
            backup_last_success,
            database_bytes,
            wal_bytes,
        })))
    }

    /// Whether these metrics record.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// One request answered (a 429 is also counted as rate-limited). Methods outside
    /// HTTP's usual ones count as `OTHER`, so that no client can add label values.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Some(m) = &self.0 else { return };
        const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        let method = KNOWN
            .iter()
            .find(|k| **k == method)
            .copied()
            .unwrap_or("OTHER");
        m.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        let labels = RouteLabels {
            method: method.to_string(),
            route: route.to_string(),
        };
        m.request_seconds.get_or_create(&labels).observe(seconds);
        if status == 429 {
            m.rate_limited.get_or_create(&labels).inc();
        }
    }

    /// A write job queued (`+1`) or taken by the writer (`-1`).
    pub fn writer_queue(&self, change: i64) {
        if let Some(m) = &self.0 {
            m.writer_queue.inc_by(change);
        }
    }

    /// One group of `jobs` committed (or rolled back) in `seconds`.
    pub fn commit(&self, jobs: usize, seconds: f64) {
        if let Some(m) = &self.0 {
            m.group_size.observe(jobs as f64);
            m.commit_seconds.observe(seconds);
        }
    }

    /// One action completed: `succeeded` or `failed`.
    pub fn action(&self, outcome: &str) {
        self.count(|m| &m.actions, outcome);
    }

    /// One webhook delivery attempt: `delivered` or `failed`.
    pub fn webhook_attempt(&self, outcome: &str) {
        self.count(|m| &m.webhook_attempts, outcome);
    }

    /// One scheduled backup: written (at `unix_seconds`) or failed.
    pub fn backup(&self, written_at: Option<i64>) {
        self.count(
            |m| &m.backups,
            if written_at.is_some() {
                "written"
            } else {
                "failed"
            },
        );
        if let (Some(m), Some(at)) = (&self.0, written_at) {
            m.backup_last_success.set(at);
        }
    }

    fn count(&self, family: impl Fn(&Inner) -> &Family<OutcomeLabels, Counter>, outcome: &str) {
        if let Some(m) = &self.0 {
            family(m)
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.to_string(),
                })
                .inc();
        }
    }

    /// The exposition, with the scrape-time values of `now`; `None` when off.
    pub fn render(&self, now: Snapshot) -> Option<String> {
        let m = self.0.as_ref()?;
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        m.database_bytes.set(as_i64(now.database_bytes));
        m.wal_bytes.set(as_i64(now.wal_bytes));
        m.actions_running.set(as_i64(now.actions_running));
        m.actions_queued.set(as_i64(now.actions_queued));
        let mut text = String::with_capacity(16 * 1024);
        encode(&mut text, &m.registry).ok()?;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_records_nothing_and_renders_nothing() {
        let metrics = Metrics::new(false);
        metrics.request("GET", "/healthz", 200, 0.001);
        assert!(metrics.render(Snapshot::default()).is_none());
    }

    #[test]
    fn on_renders_what_was_recorded() {
        let metrics = Metrics::new(true);
        metrics.request("GET", "/api/v1/public/tickets/{ticket_id}", 404, 0.002);
        metrics.commit(3, 0.004);
        metrics.action("failed");
        let text = metrics
            .render(Snapshot {
                database_bytes: 4096,
                ..Snapshot::default()
            })
            .unwrap();
        assert!(text.contains(
            "threada_http_requests_total{method=\"GET\",route=\"/api/v1/public/tickets/{ticket_id}\",status=\"404\"} 1"
        ), "{text}");
        assert!(text.contains("threada_database_size_bytes 4096"), "{text}");
        assert!(
            text.contains("threada_actions_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
