//! Events of the feed and of webhooks, and webhook subscriptions as the admin API and
//! the CLI take them.

use serde::Deserialize;
use url::Url;

use super::action::{ActionPolicy, resolve_url};
use super::listing::{Page, QueryParams};
use super::tenant::ActionSettings;
use super::{named_enum, present, required};
use crate::error::ApiError;

named_enum!(
    /// What happened.
    EventType {
        TicketCreated => "ticket.created",
        TicketUpdated => "ticket.updated",
        MessageCreated => "message.created",
        ActionCompleted => "action.completed",
        TicketDeleted => "ticket.deleted",
    }
);

named_enum!(
    /// Whether a subscription's deliveries go out; `paused` after repeated failures
    /// or by hand, until resumed (events still queue up meanwhile).
    SubscriptionStatus { Active => "active", Paused => "paused" }
);

/// Most event types a subscription may list.
const MAX_TYPES: usize = 16;

/// Parses event type names (each once), naming `param` on error.
pub fn parse_types<'a>(
    names: impl IntoIterator<Item = &'a str>,
    param: &str,
) -> Result<Vec<EventType>, ApiError> {
    let mut types = Vec::new();
    for name in names.into_iter().flat_map(|n| n.split(',')) {
        let event_type = EventType::parse(name.trim(), param)?;
        if !types.contains(&event_type) {
            types.push(event_type);
        }
    }
    if types.len() > MAX_TYPES {
        return Err(ApiError::invalid(
            param,
            format!("{param} lists too many types"),
        ));
    }
    Ok(types)
}

/// `GET /events`, parsed: which types, which page.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub types: Vec<EventType>,
    pub page: Page,
}

impl EventQuery {
    /// Parses `limit`, `page_token` and `type` (repeatable or comma-separated).
    pub fn parse(query: &str) -> Result<EventQuery, ApiError> {
        let params = QueryParams::parse(query, &["limit", "page_token", "type"])?;
        Ok(EventQuery {
            types: parse_types(params.all("type"), "type")?,
            page: Page::parse(&params)?,
        })
    }

    /// Names the type filter, so that a page token only works with the same one.
    pub fn binding(&self) -> String {
        let mut names: Vec<&str> = self.types.iter().map(|t| t.as_str()).collect();
        names.sort_unstable();
        names.join(",")
    }
}

/// A webhook subscription's destination, checked like an action's URL: a path joined
/// to the tenant's base URL, or an absolute URL on one of its origins.
pub fn parse_webhook_url(
    raw: &str,
    settings: &ActionSettings,
    policy: &ActionPolicy,
    param: &str,
) -> Result<Url, ApiError> {
    let url = resolve_url(raw.trim(), settings, param)?;
    if !policy.allows_private(settings, &url) {
        super::action::refuse_blocked_literal(&url, param)?;
    }
    Ok(url)
}

/// A subscription as the admin API receives it (create and update).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    #[serde(default, deserialize_with = "present")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub status: Option<String>,
}

/// A new subscription or a change to one, parsed (the URL is checked against the
/// tenant when it is stored).
#[derive(Debug, Clone, Default)]
pub struct SubscriptionChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub status: Option<SubscriptionStatus>,
}

impl SubscriptionChange {
    /// A creation: `url` required; no `event_types` means every type.
    pub fn new_subscription(body: SubscriptionBody) -> Result<SubscriptionChange, ApiError> {
        let url = required(body.url, "url")?;
        let mut change = SubscriptionChange::try_from(SubscriptionBody {
            url: Some(url),
            ..body
        })?;
        change.event_types.get_or_insert_with(Vec::new);
        Ok(change)
    }
}

impl TryFrom<SubscriptionBody> for SubscriptionChange {
    type Error = ApiError;

    fn try_from(body: SubscriptionBody) -> Result<SubscriptionChange, ApiError> {
        let change = SubscriptionChange {
            url: body.url,
            event_types: body
                .event_types
                .map(|t| parse_types(t.iter().map(String::as_str), "event_types"))
                .transpose()?,
            status: body
                .status
                .map(|s| SubscriptionStatus::parse(&s, "status"))
                .transpose()?,
        };
        if change.url.is_none() && change.event_types.is_none() && change.status.is_none() {
            return Err(ApiError::invalid(
                "url",
                "the body changes nothing; send url, event_types or status",
            ));
        }
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_from_lists_and_commas() {
        let types =
            parse_types(["ticket.created,message.created", "ticket.created"], "type").unwrap();
        assert_eq!(
            types,
            vec![EventType::TicketCreated, EventType::MessageCreated]
        );
        assert_eq!(
            parse_types(["ticket.closed"], "type")
                .unwrap_err()
                .param
                .as_deref(),
            Some("type")
        );
    }
}
