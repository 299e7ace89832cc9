//! `/events`: the tenant's event feed, in commit order.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::access::read_as;
use super::json;
use crate::auth::Credentials;
use crate::db;
use crate::domain::event::EventQuery;
use crate::domain::listing::Cursor;
use crate::domain::scope::Scope;
use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;

/// One page of the feed. `next_page_token` is null at the feed's end, like every
/// list's; `poll_token` is given even there, to ask later for newer events only.
#[derive(Debug, Serialize)]
struct EventPage {
    items: Vec<db::events::Event>,
    next_page_token: Option<String>,
    poll_token: Option<String>,
}

/// `GET /events`: one page of the feed, oldest first; `type` filters. A page token
/// older than the feed's retention is a 410.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
) -> Result<HttpResponse, ApiError> {
    let query = EventQuery::parse(req.query_string());
    let page = read_as(
        &state,
        &req,
        credentials,
        &[Scope::Read],
        query,
        |cx, query| {
            let binding = format!("events|{}|{}", cx.tenant_id(), query.binding());
            let after = query
                .page
                .token
                .as_deref()
                .map(|token| cx.state.tokens.open(&binding, token))
                .transpose()?
                .map_or(0, |cursor| cursor.key);
            if after > 0 && after < db::events::horizon(cx.conn, cx.tenant_id())? {
                return Err(ApiError::new(
                    ErrorKind::Gone,
                    format!(
                        "this page token points before the oldest event kept (events are kept \
                     {} days); start again without page_token",
                        cx.state.config.events.retention_days
                    ),
                )
                .with_param("page_token"));
            }
            let (items, more) = db::events::list(
                cx.conn,
                cx.tenant_id(),
                &query.types,
                after,
                query.page.limit,
            )?;
            // The position after this page: the next page while more events follow,
            // and the place to poll from once the feed's end is reached.
            let position = match items.last() {
                Some(last) => Some(Cursor {
                    key: last.seq,
                    id: last.event_id.clone(),
                }),
                None if after > 0 => Some(Cursor {
                    key: after,
                    id: String::new(),
                }),
                None => None,
            };
            let poll_token = position.map(|cursor| cx.state.tokens.issue(&binding, &cursor));
            Ok(EventPage {
                next_page_token: poll_token.clone().filter(|_| more),
                poll_token,
                items,
            })
        },
    )
    .await?;
    json(StatusCode::OK, &page)
}
