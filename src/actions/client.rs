//! The outbound HTTP client: one ureq agent, built once, with timeouts, no redirects,
//! no proxy, the guarded resolver, a capped response body, and signed requests.

use std::io::Read;
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::http::Request;
use ureq::unversioned::transport::DefaultConnector;

use super::guard::{self, GuardedResolver};
use crate::clock::Timestamp;
use crate::config::ActionsConfig;
use crate::crypto::signature_v1;
use crate::db::actions::{ActionFailure, ActionResult};
use crate::domain::action::ActionRequest;

/// What threada adds to a call: its own `X-Threada-*` headers (an action's or a
/// delivery's ids), and the tenant's secret that signs the body.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    pub headers: &'a [(&'static str, &'a str)],
    pub signing_secret: &'a str,
}

/// The shared outbound client: one agent behind the SSRF guard, and one without it
/// for the calls the `ActionPolicy` lets reach private networks.
#[derive(Debug, Clone)]
pub struct Outbound {
    guarded: Agent,
    open: Agent,
    max_response_bytes: usize,
    timeout: Duration,
}

impl Outbound {
    /// The agent, built once with timeouts, no redirects, no proxy and the guarded resolver.
    pub fn new(config: &ActionsConfig) -> Outbound {
        let connect = Duration::from_millis(config.connect_timeout_ms);
        let timeout = Duration::from_millis(config.timeout_ms);
        let agent_config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(timeout))
            .timeout_resolve(Some(connect))
            .timeout_connect(Some(connect))
            .user_agent(format!("threada/{}", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = |allow_private| {
            Agent::with_parts(
                agent_config.clone(),
                DefaultConnector::default(),
                GuardedResolver::new(allow_private),
            )
        };
        Outbound {
            guarded: agent(false),
            open: agent(true),
            max_response_bytes: config.max_response_bytes,
            timeout,
        }
    }

    /// Makes the call and describes what happened; never fails.
    pub fn call(&self, request: &ActionRequest, context: CallContext<'_>) -> ActionResult {
        let started = Instant::now();
        let body = request.body_json.as_deref().unwrap_or_default();
        let timestamp = Timestamp::now().unix_seconds();
        let signature = signature_v1(context.signing_secret, timestamp, body.as_bytes());
        let mut builder = Request::builder()
            .method(request.method.as_str())
            .uri(request.target.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in context.headers {
            builder = builder.header(*name, *value);
        }
        builder = builder.header(
            "X-Threada-Signature",
            format!("t={timestamp},v1={signature}"),
        );
        let agent = if request.allow_private {
            &self.open
        } else {
            &self.guarded
        };
        let sent = match &request.body_json {
            Some(json) => builder
                .header("Content-Type", "application/json")
                .body(json.clone().into_bytes())
                .map(|r| agent.run(r)),
            None => builder.body(()).map(|r| agent.run(r)),
        };
        let elapsed =
            |started: Instant| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut response = match sent {
            Err(e) => return failure(elapsed(started), None, "invalid_request", e.to_string()),
            Ok(Err(e)) => return self.describe_error(&e, request, elapsed(started)),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let mut kept = Vec::with_capacity(self.max_response_bytes.min(8192));
        let limit = self.max_response_bytes as u64 + 1;
        let read = response
            .body_mut()
            .as_reader()
            .take(limit)
            .read_to_end(&mut kept);
        let truncated = kept.len() > self.max_response_bytes;
        kept.truncate(self.max_response_bytes);
        let error = read.err().map(|e| {
            let code = if e.kind() == std::io::ErrorKind::TimedOut
                || e.to_string().to_ascii_lowercase().contains("timeout")
            {
                "timeout"
            } else {
                "connection_failed"
            };
            ActionFailure {
                code: code.into(),
                message: format!("reading the response failed: {e}"),
            }
        });
        ActionResult {
            http_status: Some(status),
            duration_ms: elapsed(started),
            response_body: Some(String::from_utf8_lossy(&kept).into_owned()),
            response_truncated: truncated,
            error,
        }
    }

    fn describe_error(
        &self,
        error: &ureq::Error,
        request: &ActionRequest,
        duration_ms: u64,
    ) -> ActionResult {
        let host = request.target.host_str().unwrap_or_default();
        // The address itself is not shown: it would map the tenant's internal network.
        if guard::blocked_address(error).is_some() {
            return failure(
                duration_ms,
                None,
                "destination_blocked",
                format!("{host} resolves to an address that is not public; no connection was made"),
            );
        }
        let (code, message) = match error {
            ureq::Error::Timeout(_) => (
                "timeout",
                format!("no complete answer within {} ms", self.timeout.as_millis()),
            ),
            ureq::Error::HostNotFound => ("connection_failed", format!("host {host} not found")),
            ureq::Error::Io(e) => (
                "connection_failed",
                format!("connection to {host} failed: {e}"),
            ),
            ureq::Error::ConnectionFailed => {
                ("connection_failed", format!("connection to {host} failed"))
            }
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => (
                "connection_failed",
                format!("TLS with {host} failed: {error}"),
            ),
            other => (
                "invalid_response",
                format!("the exchange with {host} failed: {other}"),
            ),
        };
        failure(duration_ms, None, code, message)
    }
}

fn failure(
    duration_ms: u64,
    http_status: Option<u16>,
    code: &str,
    message: String,
) -> ActionResult {
    ActionResult {
        http_status,
        duration_ms,
        response_body: None,
        response_truncated: false,
        error: Some(ActionFailure {
            code: code.into(),
            message,
        }),
    }
}
