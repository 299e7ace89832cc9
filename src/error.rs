//! `ApiError`: the one error type of the HTTP layer and the JSON envelope it renders.
//!
//! Every layer ends here: handlers return `Result<_, ApiError>`, the request middleware
//! re-renders anything else (unmatched routes, panics, actix's own errors) through
//! `ApiError::from_status`, so no response can leave in plain text or HTML.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
/// The `type` of an error envelope; each maps to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidRequest,
    AuthenticationFailed,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Gone,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    RateLimited,
    Internal,
    ServiceUnavailable,
    InsufficientStorage,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::AuthenticationFailed => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Gone => StatusCode::GONE,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

/// An error as the client sees it: kind, message, optional `param` and extra fields.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: Cow<'static, str>,
    pub param: Option<String>,
    /// Extra members of the `error` object (e.g. the existing `ticket_id` of a conflict).
    pub details: Map<String, Value>,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
    /// Methods for the `Allow` header (405).
    pub allow: Option<Cow<'static, str>>,
}

impl ApiError {
    /// An error of `kind` with a message for the client.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            param: None,
            details: Map::new(),
            retry_after: None,
            allow: None,
        }
    }

    /// 400 naming the offending field.
    pub fn invalid(param: impl Into<String>, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorKind::InvalidRequest, message).with_param(param)
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorKind::AuthenticationFailed, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorKind::PermissionDenied, message)
    }

    /// 404 for a resource that does not exist for this caller.
    pub fn not_found(param: &str, what: &str) -> ApiError {
        ApiError::new(ErrorKind::NotFound, format!("{what} not found")).with_param(param)
    }

    /// 409: well formed, but the resource's state does not allow it.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, message)
    }

    /// 422.
    pub fn unprocessable(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorKind::Unprocessable, message)
    }

    /// 405 with the `Allow` header.
    pub fn method_not_allowed(allow: impl Into<Cow<'static, str>>) -> ApiError {
        let allow = allow.into();
        let mut error = ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!("method not allowed; this resource allows {allow}"),
        );
        error.allow = Some(allow);
        error
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(message: impl Into<Cow<'static, str>>, retry_after: u64) -> ApiError {
        let mut error = ApiError::new(ErrorKind::ServiceUnavailable, message);
        error.retry_after = Some(retry_after.max(1));
        error
    }

    /// 507 with `Retry-After`: the disk is full; nothing was written.
    pub fn out_of_space(retry_after: u64) -> ApiError {
        let mut error = ApiError::new(
            ErrorKind::InsufficientStorage,
            "the server is out of disk space; nothing was written; retry later",
        );
        error.retry_after = Some(retry_after.max(1));
        error
    }

    /// 408: the request body stopped arriving; the connection is closed.
    pub fn body_timeout(timeout_ms: u64) -> ApiError {
        ApiError::new(
            ErrorKind::RequestTimeout,
            format!("the request body did not arrive within {timeout_ms} ms"),
        )
    }

    /// 429 with `Retry-After` and a message saying which limit was reached.
    pub fn too_many(message: impl Into<Cow<'static, str>>, retry_after: u64) -> ApiError {
        let mut error = ApiError::new(ErrorKind::RateLimited, message);
        error.retry_after = Some(retry_after.max(1));
        error
    }

    /// 429 with `Retry-After`: the API key's rate limit.
    pub fn rate_limited(retry_after: u64) -> ApiError {
        let mut error = ApiError::new(
            ErrorKind::RateLimited,
            format!("rate limit exceeded for this API key; retry in {retry_after} s"),
        );
        error.retry_after = Some(retry_after.max(1));
        error
    }

    /// 500 whose cause is logged here and never sent.
    pub fn internal(cause: impl fmt::Display) -> ApiError {
        log::error!("internal error: {cause}");
        ApiError::new(ErrorKind::Internal, "internal server error")
    }

    /// Names the offending field.
    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    /// Adds a member to the `error` object.
    pub fn with_detail(mut self, name: &str, value: impl Into<Value>) -> ApiError {
        self.details.insert(name.to_string(), value.into());
        self
    }

    /// The envelope for a status produced outside our handlers (router, actix, panics).
    pub fn from_status(status: StatusCode) -> ApiError {
        match status.as_u16() {
            401 => ApiError::unauthenticated("authentication required"),
            403 => ApiError::forbidden("forbidden"),
            404 => ApiError::new(ErrorKind::NotFound, "no such route"),
            405 => ApiError::new(ErrorKind::MethodNotAllowed, "method not allowed"),
            408 => ApiError::new(
                ErrorKind::RequestTimeout,
                "the request did not arrive in time",
            ),
            409 => ApiError::conflict("conflict"),
            410 => ApiError::new(ErrorKind::Gone, "gone"),
            413 => ApiError::new(ErrorKind::PayloadTooLarge, "request body is too large"),
            415 => ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "unsupported media type; send application/json",
            ),
            422 => ApiError::unprocessable("the request cannot be processed"),
            429 => ApiError::rate_limited(1),
            503 => ApiError::unavailable("service unavailable", 1),
            507 => ApiError::out_of_space(30),
            400..=499 => ApiError::new(ErrorKind::InvalidRequest, "the request is malformed"),
            _ => ApiError::new(ErrorKind::Internal, "internal server error"),
        }
    }

    /// The JSON envelope, with the request id when known.
    pub fn envelope(&self, request_id: Option<&str>) -> Value {
        let mut error = Map::with_capacity(6 + self.details.len());
        error.insert(
            "type".into(),
            serde_json::to_value(self.kind).unwrap_or_default(),
        );
        error.insert("message".into(), Value::String(self.message.to_string()));
        error.insert("code".into(), self.kind.status().as_u16().into());
        if let Some(param) = &self.param {
            error.insert("param".into(), Value::String(param.clone()));
        }
        for (name, value) in &self.details {
            error.insert(name.clone(), value.clone());
        }
        if let Some(id) = request_id {
            error.insert("request_id".into(), Value::String(id.to_string()));
        }
        let mut body = Map::with_capacity(1);
        body.insert("error".into(), Value::Object(error));
        Value::Object(body)
    }

    /// The full response: status, envelope, `Retry-After` and `Allow` where they apply.
    pub fn to_response(&self, request_id: Option<&str>) -> HttpResponse {
        let mut response = HttpResponse::build(self.kind.status());
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(allow) = &self.allow
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.insert_header((header::ALLOW, value));
        }
        if self.kind == ErrorKind::RequestTimeout {
            // The rest of a late body may still come: the connection cannot be reused.
            response.force_close();
        }
        response
            .content_type("application/json")
            .body(self.envelope(request_id).to_string())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_type_message_code_and_param() {
        let error = ApiError::invalid("contact.email", "bad email");
        let body = error.envelope(Some("req-1"));
        assert_eq!(body["error"]["type"], "invalid_request");
        assert_eq!(body["error"]["code"], 400);
        assert_eq!(body["error"]["param"], "contact.email");
        assert_eq!(body["error"]["request_id"], "req-1");
    }

    #[test]
    fn every_kind_maps_to_its_status() {
        for status in [
            400u16, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 429, 500, 503, 507,
        ] {
            let code = StatusCode::from_u16(status).unwrap();
            let error = ApiError::from_status(code);
            assert_eq!(error.kind.status(), code);
        }
    }
}
