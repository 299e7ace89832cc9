//! Log output: env_logger with the filter of `log.level` (or `RUST_LOG`), in one of
//! two formats (`log.format`): `text`, one readable line per record, or `json`, one
//! JSON object per line (time, level, target, message, and the record's key-value
//! fields, such as the request log's method, path, status, duration_ms, request_id
//! and key_id) for a log shipper.
//!
//! Whatever the filter says, the HTTP client's own records below `warn` are dropped:
//! at debug and trace it prints whole outbound requests, credentials included.

use std::io::Write;

use log::kv::{Key, Value, VisitSource};
use serde_json::{Map, Number, Value as Json};

use crate::config::LogFormat;

/// Targets whose records below `warn` never reach the log.
const QUIET_TARGETS: [&str; 3] = ["ureq", "ureq_proto", "rustls"];
/// Fields the request log's text line already says in its message.
const IN_MESSAGE: [&str; 4] = ["method", "path", "status", "duration_ms"];

/// Starts logging with `filter` (an env_logger filter) in `format`.
pub fn init(filter: &str, format: LogFormat) {
    let quiet: Vec<String> = QUIET_TARGETS.iter().map(|t| format!("{t}=warn")).collect();
    // Last, so that a plain level cannot lift them; the format below drops what a
    // more specific directive (`ureq::run=trace`) would still let through.
    let filter = format!("{filter},{}", quiet.join(","));
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .write_style(env_logger::WriteStyle::Never)
        .format(move |out, record| {
            if is_quiet(record) {
                return Ok(());
            }
            match format {
                LogFormat::Text => write_text(out, record),
                LogFormat::Json => write_json(out, record),
            }
        })
        .try_init();
}

fn is_quiet(record: &log::Record<'_>) -> bool {
    record.level() > log::Level::Warn
        && QUIET_TARGETS.iter().any(|quiet| {
            let target = record.target();
            target == *quiet
                || target
                    .strip_prefix(quiet)
                    .is_some_and(|r| r.starts_with("::"))
        })
}

fn write_text(
    out: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    write!(
        out,
        "[{} {:<5} {}] {}",
        out.timestamp_millis(),
        record.level(),
        record.target(),
        record.args()
    )?;
    let mut fields = Fields::default();
    let _ = record.key_values().visit(&mut fields);
    for (key, value) in fields.0 {
        if !IN_MESSAGE.contains(&key.as_str()) {
            let text = match value {
                Json::String(s) => s,
                other => other.to_string(),
            };
            write!(out, " {key}={text}")?;
        }
    }
    writeln!(out)
}

fn write_json(
    out: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    let mut line = Map::new();
    line.insert(
        "time".into(),
        Json::String(out.timestamp_millis().to_string()),
    );
    line.insert("level".into(), Json::String(record.level().to_string()));
    line.insert("target".into(), Json::String(record.target().to_string()));
    line.insert("message".into(), Json::String(record.args().to_string()));
    let mut fields = Fields::default();
    let _ = record.key_values().visit(&mut fields);
    for (key, value) in fields.0 {
        line.insert(key, value);
    }
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)
}

/// A record's key-value fields, as JSON values (numbers stay numbers).
#[derive(Default)]
struct Fields(Vec<(String, Json)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            Json::Number(n.into())
        } else if let Some(n) = value.to_i64() {
            Json::Number(n.into())
        } else if let Some(n) = value.to_f64().and_then(Number::from_f64) {
            Json::Number(n)
        } else if let Some(b) = value.to_bool() {
            Json::Bool(b)
        } else {
            Json::String(value.to_string())
        };
        self.0.push((key.as_str().to_string(), json));
        Ok(())
    }
}
