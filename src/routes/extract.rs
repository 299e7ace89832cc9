//! Reading requests: JSON bodies (content type, size, syntax, types, unknown fields,
//! each error with its `param`), `Idempotency-Key`, and path segments.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use actix_web::error::PayloadError;

use crate::domain::listing::QueryParams;
use crate::error::{ApiError, ErrorKind};
use crate::idempotency::{HEADER, Idempotency, MAX_KEY_CHARS};
use crate::state::AppState;

/// Longest serde message echoed back (they can quote the offending value).
const MAX_MESSAGE_CHARS: usize = 300;

/// A request body read and parsed into `T`, with its canonical form when asked for
/// (the idempotency fingerprint needs it).
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    pub canonical: Option<Vec<u8>>,
}

/// Reads a JSON body of at most `limit` bytes and parses it into `T`.
///
/// 415 unless `Content-Type` is `application/json`; 413 past the limit; 408 when the
/// body stops arriving (`server.request_body_timeout_ms`); 400 for invalid JSON, a
/// wrong type, an unknown field (naming it in `param`).
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    canonical: bool,
) -> Result<JsonBody<T>, ApiError> {
    // Endpoints that take a JSON body take no query parameters.
    no_query(req)?;
    require_json_content_type(req)?;
    let bytes = read_body(req, payload, limit).await?;
    parse_json(&bytes, canonical)
}

/// Reads a whole body of at most `limit` bytes: 413 past it, 408 when it stops
/// arriving, 400 when the connection breaks.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut bytes = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| match error {
            PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let timeout = req
                    .app_data::<web::Data<AppState>>()
                    .map_or(0, |s| s.config.server.request_body_timeout_ms);
                ApiError::body_timeout(timeout)
            }
            _ => ApiError::new(
                ErrorKind::InvalidRequest,
                "the request body could not be read",
            ),
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}

/// 400 naming the first query parameter, for endpoints that take none.
pub fn no_query(req: &HttpRequest) -> Result<(), ApiError> {
    QueryParams::parse(req.query_string(), &[]).map(|_| ())
}

/// Parses a complete body (see `read_json`).
pub fn parse_json<T: DeserializeOwned>(
    bytes: &[u8],
    canonical: bool,
) -> Result<JsonBody<T>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "the request body is empty; send a JSON object",
        ));
    }
    // Always from the bytes, so that a body is judged the same way with or without an
    // Idempotency-Key (a repeated field is a 400 either way).
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(body_error)?;
    deserializer.end().map_err(syntax_error)?;
    let canonical = if canonical {
        let tree: serde_json::Value = serde_json::from_slice(bytes).map_err(syntax_error)?;
        // serde_json's map is ordered by key, so equal bodies give equal bytes.
        Some(serde_json::to_vec(&tree).map_err(ApiError::internal)?)
    } else {
        None
    };
    Ok(JsonBody { value, canonical })
}

/// 415 unless the request says its body is `application/json`.
pub fn require_json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let message = if content_type.is_empty() {
        "missing Content-Type header; send the body as application/json".to_string()
    } else {
        format!(
            "unsupported Content-Type {:?}; send the body as application/json",
            clip(content_type, 100)
        )
    };
    Err(ApiError::new(ErrorKind::UnsupportedMediaType, message))
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(max).collect();
    clipped.push('…');
    clipped
}

fn syntax_error(error: serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorKind::InvalidRequest,
        format!(
            "the request body is not valid JSON: {}",
            clip(&error.to_string(), MAX_MESSAGE_CHARS)
        ),
    )
}

/// Maps a deserialisation error to a 400 naming the field: its dotted path, array
/// indices left out (`contact.email`, `tags`).
fn body_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let mut param: Vec<String> = error
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Seq { .. } | Segment::Unknown => None,
        })
        .collect();
    let inner = error.into_inner();
    if !inner.is_data() {
        return syntax_error(inner);
    }
    let text = inner.to_string();
    let text = text
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .to_string();
    if let Some(field) = text
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.split('`').next())
    {
        param.push(field.to_string());
        let param = param.join(".");
        let message = format!("{} is given more than once", clip(&param, 100));
        return ApiError::invalid(param, message);
    }
    if let Some(field) = text
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        // The path usually ends with the unknown key already; make sure it names it.
        if param.last().map(String::as_str) != Some(field) {
            param.push(field.to_string());
        }
        let param = param.join(".");
        let message = if param == "tenant_id" {
            "tenant_id cannot be sent: the API key decides the tenant".to_string()
        } else {
            format!("unknown field {:?}", clip(&param, 100))
        };
        return ApiError::invalid(param, message);
    }
    if param.is_empty() {
        return ApiError::new(
            ErrorKind::InvalidRequest,
            format!(
                "the request body must be a JSON object ({})",
                clip(&text, MAX_MESSAGE_CHARS)
            ),
        );
    }
    let param = param.join(".");
    let message = format!("{param}: {}", clip(&text, MAX_MESSAGE_CHARS));
    ApiError::invalid(param, message)
}

/// The `Idempotency-Key` header, checked: 1–255 visible ASCII characters.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    let valid =
        !key.is_empty() && key.len() <= MAX_KEY_CHARS && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::invalid(
            HEADER,
            format!("{HEADER} must be 1-{MAX_KEY_CHARS} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// Reads a POST's JSON body and its optional `Idempotency-Key`, bound to the method,
/// path and canonical body.
pub async fn read_keyed<B: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(B, Option<Idempotency>), ApiError> {
    let key = idempotency_key(req)?;
    let body = read_json::<B>(req, payload, limit, key.is_some()).await?;
    let key = key.map(|key| {
        let canonical = body.canonical.as_deref().unwrap_or_default();
        Idempotency::new(key, req.method().as_str(), req.path(), canonical)
    });
    Ok((body.value, key))
}

/// A path segment such as `{ticket_id}`.
pub fn path_param<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.match_info().get(name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ticket::NewTicketBody;

    fn error(body: &str) -> ApiError {
        parse_json::<NewTicketBody>(body.as_bytes(), false).unwrap_err()
    }

    #[test]
    fn unknown_fields_are_named() {
        assert_eq!(error(r#"{"colour": 1}"#).param.as_deref(), Some("colour"));
        assert_eq!(
            error(r#"{"contact": {"email": "a@b.co", "age": 3}}"#)
                .param
                .as_deref(),
            Some("contact.age")
        );
        let tenant = error(r#"{"tenant_id": "ten_x"}"#);
        assert_eq!(tenant.param.as_deref(), Some("tenant_id"));
    }

    #[test]
    fn wrong_types_are_named() {
        assert_eq!(error(r#"{"subject": 5}"#).param.as_deref(), Some("subject"));
        assert_eq!(
            error(r#"{"subject": null}"#).param.as_deref(),
            Some("subject")
        );
        assert_eq!(
            error(r#"{"tags": ["a", 2]}"#).param.as_deref(),
            Some("tags")
        );
        assert_eq!(
            error(r#"{"contact": {"email": true}}"#).param.as_deref(),
            Some("contact.email")
        );
    }

    #[test]
    fn syntax_errors_have_no_param() {
        for body in [
            "{",
            "[1,2]",
            "\"text\"",
            "{\"subject\": \"a\"} trailing",
            "",
            "  ",
        ] {
            let err = error(body);
            assert_eq!(err.kind, ErrorKind::InvalidRequest, "{body}");
        }
    }

    #[test]
    fn canonical_form_ignores_key_order_and_spacing() {
        let a: JsonBody<serde_json::Value> =
            parse_json(br#"{"b": 1, "a": {"y": 2, "x": 1}}"#, true).unwrap();
        let b: JsonBody<serde_json::Value> =
            parse_json(br#"{"a":{"x":1,"y":2},"b":1}"#, true).unwrap();
        assert_eq!(a.canonical, b.canonical);
    }
}
