//! The middleware every request passes through: request id, the
//! error envelope for anything that is not already one, `RateLimit-*` headers, and
//! the access log line (method, path, status, latency, request id, key id; never a
//! secret, never a query string).

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_rt::time::{Sleep, sleep};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::web::Bytes;
use futures_util::Stream;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use futures_util::FutureExt;

use crate::auth::CallerInfo;
use crate::crypto;
use crate::error::ApiError;
use crate::state::AppState;

/// The request id header, read and echoed.
pub const REQUEST_ID: &str = "x-request-id";

/// A client's request id is kept when it is 1–128 characters of `[A-Za-z0-9._:-]`.
fn sane_request_id(value: &HeaderValue) -> Option<&str> {
    let id = value.to_str().ok()?;
    let sane = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    sane.then_some(id)
}

/// Request id, envelope for every error, `RateLimit-*` headers and the access log.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(sane_request_id)
        .map_or_else(|| crypto::new_id("req"), str::to_string);

    let mut req = req;
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let has_body = match &state {
        Some(state) => limit_body_time(&mut req, state.config.server.request_body_timeout_ms),
        None => false,
    };
    let address = req.peer_addr().map(|a| a.ip().to_string());
    let response = next.call(req).await?;
    let replacement = match response.response().error() {
        Some(error) => Some(match error.as_error::<ApiError>() {
            Some(api_error) => api_error.to_response(Some(&request_id)),
            None => ApiError::from_status(error.as_response_error().status_code())
                .to_response(Some(&request_id)),
        }),
        // The console answers its errors with pages of its own.
        None if response.status().as_u16() >= 400 && !is_json(&response) && !is_html(&response) => {
            Some(ApiError::from_status(response.status()).to_response(Some(&request_id)))
        }
        None => None,
    };
    let replacement = match (response.status().as_u16(), &state, &address) {
        (401, Some(state), Some(address)) if !is_html(&response) => throttled(state, address)
            .map(|error| error.to_response(Some(&request_id)))
            .or(replacement),
        _ => replacement,
    };
    let mut response = match replacement {
        Some(replacement) => response.into_response(replacement),
        None => response.map_into_boxed_body(),
    };
    if has_body && response.status().as_u16() >= 400 {
        // The body may not have been read to its end: do not wait for the rest of it
        // on this connection.
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }

    let caller = response.request().extensions().get::<CallerInfo>().cloned();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID), value);
    }
    if let Some(caller) = &caller {
        let rate = &caller.rate;
        for (name, value) in [
            ("ratelimit-limit", u64::from(rate.limit)),
            ("ratelimit-remaining", u64::from(rate.remaining)),
            ("ratelimit-reset", rate.reset_secs),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(state) = &state
        && state.metrics.enabled()
    {
        let request = response.request();
        let route = request.match_pattern();
        state.metrics.request(
            request.method().as_str(),
            route.as_deref().unwrap_or("unmatched"),
            response.status().as_u16(),
            elapsed,
        );
    }
    if log::log_enabled!(target: "threada::access", log::Level::Info) {
        let request = response.request();
        let (method, path, status) = (
            request.method().as_str(),
            request.path(),
            response.status().as_u16(),
        );
        let duration_ms = (elapsed * 10_000.0).round() / 10.0;
        let key_id = caller.as_ref().map_or("-", |c| c.key_id.as_str());
        log::info!(
            target: "threada::access",
            method, path, status, duration_ms, request_id = request_id.as_str(), key_id;
            "{method} {path} {status} {duration_ms:.1}ms"
        );
    }
    Ok(response)
}

/// Puts a deadline on the request body: past `timeout_ms` after the head, reading it
/// fails with a `TimedOut` error (`extract::read_body` answers 408). False when the
/// request has no body.
fn limit_body_time(req: &mut ServiceRequest, timeout_ms: u64) -> bool {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return false;
    }
    let timed = TimedPayload {
        inner: payload,
        deadline: Box::pin(sleep(Duration::from_millis(timeout_ms))),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(timed),
    });
    true
}

/// A request body that fails once its deadline has passed.
struct TimedPayload {
    inner: Payload,
    deadline: Pin<Box<Sleep>>,
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            let late = io::Error::new(io::ErrorKind::TimedOut, "request body deadline");
            return Poll::Ready(Some(Err(PayloadError::Io(late))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Counts a failed authentication against the client's address; past the address's
/// burst (`rate_limit.unauthenticated_*`) the answer becomes a 429.
fn throttled(state: &AppState, address: &str) -> Option<ApiError> {
    let rate = state.auth_failures.check(address);
    rate.retry_after.map(|seconds| {
        ApiError::too_many(
            format!("too many failed authentications from this address; retry in {seconds} s"),
            seconds,
        )
    })
}

/// Turns a panicking handler into a 500 (the cause stays in the log). Wraps each
/// resource rather than the app: the request can only be kept for the error response
/// once routing is done.
pub async fn catch_panic(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request = req.request().clone();
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(result) => result.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            log::error!(
                "handler panicked on {} {}",
                request.method(),
                request.path()
            );
            let error = ApiError::new(crate::error::ErrorKind::Internal, "internal server error");
            Ok(ServiceResponse::new(
                request,
                HttpResponse::from_error(error),
            ))
        }
    }
}

fn is_html<B>(response: &ServiceResponse<B>) -> bool {
    response
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

fn is_json<B>(response: &ServiceResponse<B>) -> bool {
    response
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
