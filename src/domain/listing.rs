//! Query strings of list endpoints: limit, page_token, filters and sort.

use crate::clock::Timestamp;
use crate::domain::search::SearchQuery;
use crate::domain::ticket::{Channel, Priority, Status, Tag};
use crate::error::ApiError;

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 25;
/// Most items a page may hold.
pub const MAX_LIMIT: u32 = 100;
const MAX_TAG_FILTERS: usize = 10;

/// Where a keyset walk stopped: the last item's sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub id: String,
}

/// Decoded `name=value` pairs, checked against the names an endpoint accepts.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes a query string; a name not in `known` is a 400 naming it.
    pub fn parse(query: &str, known: &[&str]) -> Result<QueryParams, ApiError> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (name, _) in &pairs {
            if !known.contains(&name.as_str()) {
                let shown: String = name.chars().take(64).collect();
                return Err(ApiError::invalid(
                    shown.clone(),
                    format!(
                        "unknown query parameter {shown:?}; this endpoint accepts: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(QueryParams { pairs })
    }

    /// A parameter that may appear at most once.
    pub fn single(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.all(name)[..] {
            [] => Ok(None),
            [value] => Ok(Some(value)),
            _ => Err(ApiError::invalid(
                name,
                format!("{name} may be given only once"),
            )),
        }
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `limit` (1–100, default 25) and `page_token` of any list endpoint.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: u32,
    pub token: Option<String>,
}

impl Page {
    pub fn parse(params: &QueryParams) -> Result<Page, ApiError> {
        let limit = match params.single("limit")? {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let token = params.single("page_token")?.map(str::to_string);
        Ok(Page { limit, token })
    }
}

/// Orders of `GET /tickets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketSort {
    /// Most recent activity first (the default without `q`).
    LastMessageDesc,
    CreatedDesc,
    CreatedAsc,
    UpdatedAsc,
    /// Best match first (the default with `q`; only with `q`).
    Relevance,
}

impl TicketSort {
    /// The `sort` values and what they mean.
    pub const NAMES: [(&'static str, TicketSort); 5] = [
        ("-last_message_at", TicketSort::LastMessageDesc),
        ("-created_at", TicketSort::CreatedDesc),
        ("created_at", TicketSort::CreatedAsc),
        ("updated_at", TicketSort::UpdatedAsc),
        ("relevance", TicketSort::Relevance),
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("-last_message_at", |(n, _)| n)
    }

    /// Whether the walk goes from newest to oldest.
    pub fn descending(self) -> bool {
        matches!(self, TicketSort::LastMessageDesc | TicketSort::CreatedDesc)
    }
}

/// Filters of `GET /tickets`; empty lists mean "any".
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub statuses: Vec<Status>,
    pub channels: Vec<Channel>,
    pub priorities: Vec<Priority>,
    pub tags: Vec<Tag>,
    pub updated_since: Option<Timestamp>,
    /// `q`: full-text search over subjects and messages.
    pub search: Option<SearchQuery>,
}

/// `GET /tickets`, parsed.
#[derive(Debug, Clone)]
pub struct TicketQuery {
    pub filter: TicketFilter,
    pub sort: TicketSort,
    pub page: Page,
}

/// Every query parameter `GET /tickets` accepts.
pub const TICKET_QUERY_PARAMS: &[&str] = &[
    "limit",
    "page_token",
    "q",
    "status",
    "channel",
    "priority",
    "tag",
    "updated_since",
    "sort",
];

impl TicketQuery {
    pub fn parse(query: &str) -> Result<TicketQuery, ApiError> {
        let params = QueryParams::parse(query, TICKET_QUERY_PARAMS)?;
        let page = Page::parse(&params)?;
        let search = params.single("q")?.map(SearchQuery::parse).transpose()?;
        let sort = match (params.single("sort")?, &search) {
            (None, None) => TicketSort::LastMessageDesc,
            (None, Some(_)) => TicketSort::Relevance,
            (Some(raw), _) => TicketSort::NAMES
                .iter()
                .find(|(name, _)| *name == raw)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "sort",
                        "sort must be one of: -last_message_at, -created_at, created_at, \
                         updated_at, relevance",
                    )
                })?,
        };
        if sort == TicketSort::Relevance && search.is_none() {
            return Err(ApiError::invalid(
                "sort",
                "sort=relevance needs q: it orders search results by best match",
            ));
        }
        let given = params.all("tag");
        if given.len() > MAX_TAG_FILTERS {
            return Err(ApiError::invalid(
                "tag",
                format!("at most {MAX_TAG_FILTERS} tag filters"),
            ));
        }
        let mut tags: Vec<Tag> = Vec::new();
        for raw in given {
            let tag = Tag::parse(raw, "tag")?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        let updated_since = params
            .single("updated_since")?
            .map(|raw| {
                Timestamp::parse_rfc3339(raw).ok_or_else(|| {
                    ApiError::invalid(
                        "updated_since",
                        "updated_since must be an RFC 3339 timestamp such as 2026-02-04T18:32:11Z",
                    )
                })
            })
            .transpose()?;
        let filter = TicketFilter {
            statuses: parse_list(&params.all("status"), "status", Status::parse)?,
            channels: parse_list(&params.all("channel"), "channel", Channel::parse)?,
            priorities: parse_list(&params.all("priority"), "priority", Priority::parse)?,
            tags,
            updated_since,
            search,
        };
        Ok(TicketQuery { filter, sort, page })
    }

    /// Names the filters and sort, so that a page token only works with the same ones.
    pub fn binding(&self) -> String {
        let names = |items: Vec<&str>| {
            let mut items = items;
            items.sort_unstable();
            items.join(",")
        };
        let f = &self.filter;
        format!(
            "status={};channel={};priority={};tag={};updated_since={};sort={};q={}",
            names(f.statuses.iter().map(|s| s.as_str()).collect()),
            names(f.channels.iter().map(|c| c.as_str()).collect()),
            names(f.priorities.iter().map(|p| p.as_str()).collect()),
            names(f.tags.iter().map(|t| t.as_str()).collect()),
            f.updated_since.map_or(-1, |t| t.micros()),
            self.sort.as_str(),
            f.search
                .as_ref()
                .map(SearchQuery::binding)
                .unwrap_or_default()
        )
    }
}

/// The values of an enum filter, given comma-separated, repeated, or both;
/// de-duplicated.
fn parse_list<T: PartialEq>(
    raw: &[&str],
    param: &str,
    parse: fn(&str, &str) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    let mut values = Vec::new();
    for part in raw.iter().flat_map(|r| r.split(',')) {
        let value = parse(part, param)?;
        if !values.contains(&value) {
            values.push(value);
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(query: &str) -> String {
        TicketQuery::parse(query)
            .unwrap_err()
            .param
            .unwrap_or_default()
    }

    #[test]
    fn defaults() {
        let q = TicketQuery::parse("").unwrap();
        assert_eq!(q.page.limit, 25);
        assert_eq!(q.sort, TicketSort::LastMessageDesc);
    }

    #[test]
    fn filters_and_lists() {
        let q = TicketQuery::parse("status=open,pending&tag=VIP&tag=returns&limit=100").unwrap();
        assert_eq!(q.filter.statuses, vec![Status::Open, Status::Pending]);
        assert_eq!(q.filter.tags.len(), 2);
        assert_eq!(q.page.limit, 100);
        let a = TicketQuery::parse("status=pending,open").unwrap();
        let b = TicketQuery::parse("status=open,pending").unwrap();
        assert_eq!(a.binding(), b.binding());
    }

    #[test]
    fn bad_values_name_their_param() {
        for bad in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=abc",
            "limit=1&limit=2",
        ] {
            assert_eq!(param(bad), "limit", "{bad}");
        }
        assert_eq!(param("status=opened"), "status");
        assert_eq!(param("status="), "status");
        assert_eq!(param("sort=subject"), "sort");
        assert_eq!(param("updated_since=yesterday"), "updated_since");
        assert_eq!(param("tag=bad%20tag"), "tag");
        assert_eq!(param("colour=red"), "colour");
    }
}
