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
    "proxy-authorization",
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
    /// `null` is no body, like an absent field (answers show `null` there).
    #[serde(default)]
    pub body_json: Option<String>,
}

/// The server-wide rules an action is checked against.
#[derive(Debug, Clone, Default)]
pub struct ActionPolicy {
    /// `actions.allow_private_networks`: any tenant may reach private networks.
    pub allow_private_networks: bool,
    /// The demo's own hook receiver (`http://<listen address>`): the one private
    /// origin a demo tenant may reach.
    pub demo_origin: Option<String>,
    /// `actions.max_body_json_bytes`.
    pub max_body_json_bytes: usize,
}

impl ActionPolicy {
    /// Whether a call of a tenant with `settings` to `target` may reach a private
    /// address.
    pub fn allows_private(&self, settings: &ActionSettings, target: &Url) -> bool {
        self.allow_private_networks
            || (settings.demo
                && self.demo_origin.as_deref() == Some(&target.origin().ascii_serialization()))
    }
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
    /// Whether this call may connect to a private address (see `ActionPolicy`).
    pub allow_private: bool,
}

impl ActionRequest {
    /// Checks a payload against the tenant's settings and the server's policy. Unless
    /// the policy lets this call reach private networks, a URL that names a blocked IP
    /// address is refused here (a host name is checked when it resolves).
    pub fn parse(
        body: ActionBody,
        settings: &ActionSettings,
        policy: &ActionPolicy,
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
        let target = resolve_url(&url, settings, "payload.url")?;
        let allow_private = policy.allows_private(settings, &target);
        if !allow_private {
            refuse_blocked_literal(&target, "payload.url")?;
        }
        let headers = parse_headers(payload.headers.unwrap_or_default())?;
        if let Some(body) = &payload.body_json {
            if body.len() > policy.max_body_json_bytes {
                return Err(ApiError::invalid(
                    "payload.body_json",
                    format!(
                        "payload.body_json must be at most {} bytes",
                        policy.max_body_json_bytes
                    ),
                ));
            }
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
            allow_private,
        })
    }

    /// The payload as stored and returned: credential-like header values and query
    /// parameters redacted.
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
            "url": redact_query(&self.url),
            "headers": headers,
            "body_json": self.body_json,
        })
    }
}

/// Whether a header's value is a credential that must never be stored or shown: its
/// name is `Cookie` or contains `auth`, `key`, `token`, `secret`, `password`,
/// `signature` or `session`.
pub fn is_credential_header(name: &str) -> bool {
    const WORDS: [&str; 7] = [
        "auth",
        "key",
        "token",
        "secret",
        "password",
        "signature",
        "session",
    ];
    let name = name.to_ascii_lowercase();
    name == "cookie" || WORDS.iter().any(|word| name.contains(word))
}

/// Query parameters whose values are credentials.
const CREDENTIAL_PARAMS: [&str; 6] = [
    "api_key",
    "access_token",
    "token",
    "key",
    "sig",
    "signature",
];

/// `url` with the values of credential-like query parameters replaced by `[redacted]`.
pub fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if CREDENTIAL_PARAMS.contains(&name.to_ascii_lowercase().as_str()) => {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    let mut redacted = format!("{base}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        redacted.push('#');
        redacted.push_str(fragment);
    }
    redacted
}

/// 400 (naming `param`) when the URL names a loopback, private or otherwise non-public
/// IP address.
pub fn refuse_blocked_literal(url: &Url, param: &str) -> Result<(), ApiError> {
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match literal.filter(|ip| is_blocked(*ip)) {
        Some(ip) => Err(ApiError::invalid(
            param,
            format!(
                "{param} names {ip}, a loopback, private, link-local or otherwise non-public address"
            ),
        )),
        None => Ok(()),
    }
}

/// Joins a path to the base URL, or checks an absolute URL's origin.
pub fn resolve_url(raw: &str, settings: &ActionSettings, param: &str) -> Result<Url, ApiError> {
    let invalid = |why: &str| ApiError::invalid(param, format!("{param} {why}"));
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
            demo: false,
        }
    }

    fn policy(allow_private_networks: bool) -> ActionPolicy {
        ActionPolicy {
            allow_private_networks,
            demo_origin: None,
            max_body_json_bytes: 65_536,
        }
    }

    fn body(payload: Value) -> ActionBody {
        serde_json::from_value(serde_json::json!({ "payload": payload })).unwrap()
    }

    fn parse(payload: Value) -> Result<ActionRequest, ApiError> {
        ActionRequest::parse(body(payload), &settings(), &policy(false))
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
        assert!(ActionRequest::parse(relative, &no_base, &policy(false)).is_err());
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
            let err = ActionRequest::parse(request, &open, &policy(false)).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("payload.url"), "{url}");
            let request = body(serde_json::json!({"type": "custom_http", "url": url}));
            assert!(
                ActionRequest::parse(request, &open, &policy(true)).is_ok(),
                "{url}"
            );
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

    #[test]
    fn more_credentials_are_redacted() {
        for name in [
            "X-Custom-Auth",
            "X-Api-Key",
            "Proxy-Key",
            "X-Hub-Signature",
            "X-Session-Id",
            "Cookie",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        assert!(!is_credential_header("X-Source"));
        assert_eq!(
            redact_query("/hook?a=1&token=abc&Sig=x&api_key=k#f"),
            "/hook?a=1&token=[redacted]&Sig=[redacted]&api_key=[redacted]#f"
        );
        assert_eq!(redact_query("/hook"), "/hook");
        let action =
            parse(serde_json::json!({"type": "custom_http", "url": "/x?access_token=t0k3n&b=2"}))
                .unwrap();
        let payload = action.redacted_payload();
        assert_eq!(payload["url"], "/x?access_token=[redacted]&b=2");
        assert_eq!(action.target.query(), Some("access_token=t0k3n&b=2"));
    }

    #[test]
    fn proxy_authorization_is_refused_and_body_json_is_bounded() {
        let with = |headers: Value| {
            param(serde_json::json!({"type": "custom_http", "url": "/x", "headers": headers}))
        };
        assert_eq!(
            with(serde_json::json!({"Proxy-Authorization": "Basic eA=="})),
            "payload.headers"
        );
        let big = format!("\"{}\"", "x".repeat(65_536));
        assert_eq!(
            param(serde_json::json!({"type": "custom_http", "url": "/x", "body_json": big})),
            "payload.body_json"
        );
    }

    #[test]
    fn the_demo_exception_covers_the_demo_tenants_receiver_only() {
        let demo = ActionPolicy {
            demo_origin: Some("http://127.0.0.1:8080".into()),
            ..policy(false)
        };
        let mut tenant = settings();
        tenant.action_base_url = Some("http://127.0.0.1:8080/demo".into());
        tenant.allowed_origins = vec!["http://127.0.0.2:8080".into()];
        let request = |url: &str| body(serde_json::json!({"type": "custom_http", "url": url}));
        // Not a demo tenant: refused.
        assert!(ActionRequest::parse(request("/hooks/x"), &tenant, &demo).is_err());
        tenant.demo = true;
        let allowed = ActionRequest::parse(request("/hooks/x"), &tenant, &demo).unwrap();
        assert!(allowed.allow_private);
        // Another private origin, even for the demo tenant: refused.
        assert!(ActionRequest::parse(request("http://127.0.0.2:8080/x"), &tenant, &demo).is_err());
    }
}
