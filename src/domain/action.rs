//! `POST /tickets/{id}/actions`, parsed: a `custom_http` call the tenant may make.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::{Host, Url};

use super::network::is_blocked;
use super::tenant::ActionSettings;
use super::{present, required};
use crate::error::ApiError;

/// Most headers an action may set.
pub const MAX_HEADERS: usize = 20;
/// Longest action URL.
pub const MAX_URL_CHARS: usize = 2048;
const MAX_HEADER_NAME_CHARS: usize = 128;
const MAX_HEADER_VALUE_CHARS: usize = 4096;
/// What a credential-like header value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Headers the caller may not set: hop-by-hop headers, and those threada sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "content-type",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

/// HTTP methods an action may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn parse(text: &str) -> Result<Method, ApiError> {
        match text {
            "GET" => Ok(Method::Get),
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "PATCH" => Ok(Method::Patch),
            "DELETE" => Ok(Method::Delete),
            _ => Err(ApiError::invalid(
                "payload.method",
                "payload.method must be one of: GET, POST, PUT, PATCH, DELETE",
            )),
        }
    }
}

/// `POST /tickets/{id}/actions` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    #[serde(default, deserialize_with = "present")]
    pub payload: Option<PayloadBody>,
}

/// The `payload` object as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadBody {
    #[serde(rename = "type", default, deserialize_with = "present")]
    pub action_type: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    pub body_json: Option<String>,
}

/// A validated `custom_http` action.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub method: Method,
    /// The URL as the client wrote it (stored and echoed).
    pub url: String,
    /// Where the call goes: `url` joined to the base URL, or `url` itself.
    pub target: Url,
    pub headers: Vec<(String, String)>,
    pub body_json: Option<String>,
}

impl ActionRequest {
    /// Checks a payload against the tenant's settings. `allow_private` is
    /// `actions.allow_private_networks`: when false, a URL that names a blocked IP
    /// address is refused here (a host name is checked when it resolves).
    pub fn parse(
        body: ActionBody,
        settings: &ActionSettings,
        allow_private: bool,
    ) -> Result<ActionRequest, ApiError> {
        let payload = required(body.payload, "payload")?;
        let action_type = required(payload.action_type, "payload.type")?;
        if action_type != "custom_http" {
            return Err(ApiError::invalid(
                "payload.type",
                "payload.type must be custom_http",
            ));
        }
        let method = match payload.method {
            Some(m) => Method::parse(&m)?,
            None => Method::Post,
        };
        let url = required(payload.url, "payload.url")?;
        let target = resolve_url(&url, settings, allow_private)?;
        let headers = parse_headers(payload.headers.unwrap_or_default())?;
        if let Some(body) = &payload.body_json {
            // Syntax only: numbers are not converted, so any valid JSON passes.
            serde_json::from_str::<serde::de::IgnoredAny>(body).map_err(|e| {
                ApiError::invalid(
                    "payload.body_json",
                    format!("payload.body_json must be a string holding valid JSON ({e})"),
                )
            })?;
        }
        Ok(ActionRequest {
            method,
            url,
            target,
            headers,
            body_json: payload.body_json,
        })
    }

    /// The payload as stored and returned: credential-like header values redacted.
    pub fn redacted_payload(&self) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if is_credential_header(name) {
                    REDACTED
                } else {
                    value
                };
                (name.clone(), Value::String(shown.to_string()))
            })
            .collect();
        serde_json::json!({
            "type": "custom_http",
            "method": self.method.as_str(),
            "url": self.url,
            "headers": headers,
            "body_json": self.body_json,
        })
    }
}

/// Whether a header's value is a credential that must never be stored or shown.
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "x-api-key"
    ) || [
        "token", "secret", "password", "api-key", "apikey", "api_key",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// Joins a path to the base URL, or checks an absolute URL's origin.
fn resolve_url(raw: &str, settings: &ActionSettings, allow_private: bool) -> Result<Url, ApiError> {
    const PARAM: &str = "payload.url";
    let invalid = |why: &str| ApiError::invalid(PARAM, format!("payload.url {why}"));
    if raw.is_empty() || raw.len() > MAX_URL_CHARS {
        return Err(invalid(&format!("must be 1-{MAX_URL_CHARS} characters")));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("must not contain spaces or control characters"));
    }
    let url = if raw.starts_with('/') {
        if !is_action_path(raw) {
            return Err(invalid(
                "must be a path of segments of A-Za-z0-9 and ._~!$&'()*+,;=:@- (no '//' at the start, no '.' or '..' segments), with an optional query",
            ));
        }
        let base = settings.action_base_url.as_deref().ok_or_else(|| {
            invalid("is a path, but this tenant has no action_base_url to join it to")
        })?;
        Url::parse(&format!("{base}{raw}"))
            .map_err(|e| invalid(&format!("cannot be joined to the base URL ({e})")))?
    } else {
        let url = Url::parse(raw)
            .map_err(|_| invalid("must be a path starting with / or an absolute http(s) URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must use http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not contain a user name or password"));
        }
        let origin = url.origin().ascii_serialization();
        let base_origin = settings
            .action_base_url
            .as_deref()
            .and_then(|b| Url::parse(b).ok())
            .map(|b| b.origin().ascii_serialization());
        let allowed = base_origin.as_deref() == Some(origin.as_str())
            || settings.allowed_origins.contains(&origin);
        if !allowed {
            return Err(invalid(&format!(
                "has origin {origin}, which is neither the tenant's action_base_url origin nor one of its allowed_origins"
            )));
        }
        url
    };
    if !allow_private {
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| is_blocked(*ip)) {
            return Err(invalid(&format!(
                "names {ip}, a loopback, private, link-local or otherwise non-public address"
            )));
        }
    }
    let mut url = url;
    url.set_fragment(None);
    Ok(url)
}

/// A relative action URL, exactly as the OpenAPI pattern says:
/// `^/(?:SEG(?:/(?:SEG)?)*)?(?:\?QUERY*)?$`, where a segment `SEG` is at most two dots
/// then a character of `A-Za-z0-9_~!$&'()*+,;=:@-`, then any of those or dots, and
/// `QUERY` is any of `A-Za-z0-9._~!$&'()*+,;=:@/?%-`. So no `//` at the start (that
/// would name another host), and no `.` or `..` segment (that would climb out of
/// the base path).
fn is_action_path(raw: &str) -> bool {
    let segment_char = |b: u8| b.is_ascii_alphanumeric() || b"_~!$&'()*+,;=:@-".contains(&b);
    let query_char = |b: u8| b.is_ascii_alphanumeric() || b"._~!$&'()*+,;=:@/?%-".contains(&b);
    let valid_segment = |segment: &str| {
        let dots = segment.bytes().take_while(|b| *b == b'.').count();
        dots <= 2 && segment.len() > dots && segment.bytes().all(|b| b == b'.' || segment_char(b))
    };
    let Some(rest) = raw.strip_prefix('/') else {
        return false;
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if query.is_some_and(|q| !q.bytes().all(query_char)) {
        return false;
    }
    if path.is_empty() {
        return true;
    }
    let mut segments = path.split('/');
    segments.next().is_some_and(valid_segment) && segments.all(|s| s.is_empty() || valid_segment(s))
}

fn parse_headers(raw: BTreeMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    const PARAM: &str = "payload.headers";
    if raw.len() > MAX_HEADERS {
        return Err(ApiError::invalid(
            PARAM,
            format!("payload.headers may hold at most {MAX_HEADERS} headers"),
        ));
    }
    let mut headers = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let shown: String = name.chars().take(64).collect();
        let valid_name = !name.is_empty()
            && name.len() <= MAX_HEADER_NAME_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(ApiError::invalid(
                PARAM,
                format!("payload.headers: {shown:?} is not a valid header name"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-threada-") {
            return Err(ApiError::invalid(
                PARAM,
                format!(
                    "payload.headers: {name} is set by threada or is hop-by-hop and cannot be sent"
                ),
            ));
        }
        let valid_value = value.len() <= MAX_HEADER_VALUE_CHARS
            && value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
        if !valid_value {
            return Err(ApiError::invalid(
                PARAM,
                format!(
                    "payload.headers: the value of {name} must be printable ASCII without line breaks, at most {MAX_HEADER_VALUE_CHARS} characters"
                ),
            ));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ActionSettings {
        ActionSettings {
            action_base_url: Some("https://hooks.example.com/base".into()),
            allowed_origins: vec!["https://other.example.org".into()],
            signing_secret: "whsec_x".into(),
        }
    }

    fn body(payload: Value) -> ActionBody {
        serde_json::from_value(serde_json::json!({ "payload": payload })).unwrap()
    }

    fn parse(payload: Value) -> Result<ActionRequest, ApiError> {
        ActionRequest::parse(body(payload), &settings(), false)
    }

    fn param(payload: Value) -> String {
        parse(payload).unwrap_err().param.unwrap_or_default()
    }

    #[test]
    fn the_seed_payload_parses() {
        let action = parse(serde_json::json!({
            "type": "custom_http", "method": "POST", "url": "/hooks/zapier",
            "headers": {"X-Source": "threada"}, "body_json": "{\"event\":\"ticket_updated\"}"
        }))
        .unwrap();
        assert_eq!(
            action.target.as_str(),
            "https://hooks.example.com/base/hooks/zapier"
        );
        assert_eq!(action.redacted_payload()["headers"]["X-Source"], "threada");
    }

    #[test]
    fn urls() {
        let ok = |url: &str| parse(serde_json::json!({"type": "custom_http", "url": url})).is_ok();
        assert!(ok("https://hooks.example.com/elsewhere"));
        for path in [
            "/",
            "/a//b/",
            "/..a/b.c",
            "/x?y=1&z=%20",
            "/a;b=c:d@e/f(g)'h'",
        ] {
            assert!(ok(path), "{path}");
        }
        assert!(ok("https://other.example.org/x?y=1"));
        for bad in [
            "https://evil.example.net/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "//evil.example.net/x",
            "/../escape",
            "/a/%2e%2e/b",
            "hooks/zapier",
            "file:///etc/passwd",
            "/with space",
            "/...",
            "/a/.",
            "/x?q=a b",
        ] {
            assert_eq!(
                param(serde_json::json!({"type": "custom_http", "url": bad})),
                "payload.url",
                "{bad}"
            );
        }
        let no_base = ActionSettings {
            action_base_url: None,
            ..settings()
        };
        let relative = body(serde_json::json!({"type": "custom_http", "url": "/x"}));
        assert!(ActionRequest::parse(relative, &no_base, false).is_err());
    }

    #[test]
    fn ip_literals_are_refused_unless_private_networks_are_allowed() {
        let mut open = settings();
        open.allowed_origins = vec![
            "http://127.0.0.1:9".into(),
            "http://[::ffff:a9fe:a9fe]".into(),
            "http://127.0.0.1".into(),
        ];
        for url in [
            "http://127.0.0.1:9/",
            "http://[::ffff:169.254.169.254]/",
            "http://2130706433/",
            "http://127.1/",
        ] {
            let request = body(serde_json::json!({"type": "custom_http", "url": url}));
            let err = ActionRequest::parse(request, &open, false).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("payload.url"), "{url}");
            let request = body(serde_json::json!({"type": "custom_http", "url": url}));
            assert!(ActionRequest::parse(request, &open, true).is_ok(), "{url}");
        }
    }

    #[test]
    fn headers_and_bodies() {
        let with = |headers: Value| {
            param(serde_json::json!({"type": "custom_http", "url": "/x", "headers": headers}))
        };
        assert_eq!(with(serde_json::json!({"Host": "x"})), "payload.headers");
        assert_eq!(
            with(serde_json::json!({"Transfer-Encoding": "chunked"})),
            "payload.headers"
        );
        assert_eq!(
            with(serde_json::json!({"X-A": "a\r\nInjected: 1"})),
            "payload.headers"
        );
        assert_eq!(
            with(serde_json::json!({"Bad Name": "x"})),
            "payload.headers"
        );
        // Repeated names are sent as repeated header lines.
        let twice = serde_json::json!({"type": "custom_http", "url": "/x", "headers": {"X-A": "1", "x-a": "2"}});
        assert_eq!(parse(twice).unwrap().headers.len(), 2);
        let many: Map<String, Value> = (0..21)
            .map(|i| (format!("X-{i}"), Value::from("v")))
            .collect();
        assert_eq!(with(Value::Object(many)), "payload.headers");
        assert_eq!(
            param(serde_json::json!({"type": "custom_http", "url": "/x", "body_json": "{nope"})),
            "payload.body_json"
        );
        assert_eq!(
            param(serde_json::json!({"type": "webhook", "url": "/x"})),
            "payload.type"
        );
        assert_eq!(
            param(serde_json::json!({"type": "custom_http", "url": "/x", "method": "TRACE"})),
            "payload.method"
        );
    }

    #[test]
    fn credentials_are_redacted() {
        let action = parse(serde_json::json!({
            "type": "custom_http", "url": "/x",
            "headers": {"Authorization": "Bearer s3cr3t", "X-Auth-Token": "t0k3n", "X-Source": "threada"}
        }))
        .unwrap();
        let payload = action.redacted_payload();
        assert_eq!(payload["headers"]["Authorization"], REDACTED);
        assert_eq!(payload["headers"]["X-Auth-Token"], REDACTED);
        assert_eq!(payload["headers"]["X-Source"], "threada");
        assert!(!payload.to_string().contains("s3cr3t"));
    }
}
