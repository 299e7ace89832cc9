//! `/events`: the tenant's event feed, in commit order.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::access::read_as;
use super::{ListPage, json};
use crate::auth::Credentials;
use crate::db;
use crate::domain::event::EventQuery;
use crate::domain::listing::Cursor;
use crate::domain::scope::Scope;
use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;

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
            let next_page_token = match items.last() {
                Some(last) if more => {
                    let cursor = Cursor {
                        key: last.seq,
                        id: last.event_id.clone(),
                    };
                    Some(cx.state.tokens.issue(&binding, &cursor))
                }
                _ => None,
            };
            Ok(ListPage {
                items,
                next_page_token,
            })
        },
    )
    .await?;
    json(StatusCode::OK, &page)
}
