//! The HTTP surface: one file per resource. Each handler reads the same way:
//! extract → parse → one call as the caller (`access`) → response.

pub mod access;
pub mod actions;
pub mod admin;
pub mod demo;
pub mod events;
pub mod extract;
pub mod health;
pub mod messages;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod tickets;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, Resource, guard, web};
use serde::Serialize;

use actix_web::HttpRequest;
use rusqlite::Connection;

use crate::auth::{Credentials, Needs};
use crate::db::DbError;
use crate::domain::listing::{Cursor, Page, QueryParams};
use crate::error::{ApiError, ErrorKind};
use crate::idempotency::{Outcome, REPLAYED_HEADER};
use crate::state::AppState;
use access::read_as;
use extract::path_param;
use middleware::catch_panic;

/// Marks the connections of the `admin.bind` listener (a connection extension).
#[derive(Debug, Clone, Copy)]
pub struct AdminListener;

/// Whether a request came in on the `admin.bind` listener.
pub fn on_admin_listener(req: &HttpRequest) -> bool {
    req.conn_data::<AdminListener>().is_some()
}

/// The admin API's base path.
pub const ADMIN: &str = "/api/v1/admin";

/// Every route of the public API with the methods it answers: the registry that the
/// OpenAPI document is checked against (tests/api/openapi.rs). `api()` refuses to
/// build a resource missing from it, so a route cannot be added without an entry.
pub const PUBLIC_API: &[(&str, &str)] = &[
    ("/healthz", "GET"),
    ("/readyz", "GET"),
    ("/api/v1/public/openapi.json", "GET"),
    ("/api/v1/public/tickets", "GET, POST"),
    ("/api/v1/public/events", "GET"),
    ("/api/v1/public/tickets/{ticket_id}", "GET, PATCH, DELETE"),
    ("/api/v1/public/tickets/{ticket_id}/messages", "GET, POST"),
    ("/api/v1/public/tickets/{ticket_id}/actions", "GET, POST"),
    (
        "/api/v1/public/tickets/{ticket_id}/actions/{action_id}",
        "GET",
    ),
];

/// Every route of the server.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(api("/healthz").route(get().to(health::healthz)))
        .service(api("/readyz").route(get().to(health::readyz)))
        .service(api("/api/v1/public/openapi.json").route(get().to(openapi::document)))
        .service(
            api("/api/v1/public/tickets")
                .route(get().to(tickets::list))
                .route(web::post().to(tickets::create)),
        )
        .service(api("/api/v1/public/events").route(get().to(events::list)))
        .service(
            api("/api/v1/public/tickets/{ticket_id}")
                .route(get().to(tickets::get))
                .route(web::patch().to(tickets::update))
                .route(web::delete().to(tickets::delete)),
        )
        .service(
            api("/api/v1/public/tickets/{ticket_id}/messages")
                .route(get().to(messages::list))
                .route(web::post().to(messages::create)),
        )
        .service(
            api("/api/v1/public/tickets/{ticket_id}/actions")
                .route(get().to(actions::list))
                .route(web::post().to(actions::create)),
        )
        .service(
            api("/api/v1/public/tickets/{ticket_id}/actions/{action_id}")
                .route(get().to(actions::get)),
        )
        .service(admin::scope())
        .service(resource("/metrics", "GET").route(get().to(metrics::metrics)));
}

/// A route for `GET` and `HEAD` alike (HTTP sends a `HEAD` answer without its body).
pub fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The `Allow` header of a resource: its methods, with `HEAD` wherever `GET` is.
pub fn allow_header(methods: &str) -> String {
    methods
        .split(", ")
        .flat_map(|method| match method {
            "GET" => vec!["GET", "HEAD"],
            other => vec![other],
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A public API resource, with its methods from `PUBLIC_API`.
fn api(
    path: &'static str,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let allow = PUBLIC_API
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, allow)| *allow)
        .unwrap_or_else(|| panic!("{path} is missing from routes::PUBLIC_API"));
    resource(path, allow)
}

/// A resource whose other methods answer 405 with an `Allow` header, and whose
/// handler panics answer 500.
pub fn resource(
    path: &str,
    methods: &str,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let allow = allow_header(methods);
    web::resource(path)
        .default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, ApiError>(ApiError::method_not_allowed(allow)) }
        }))
        .wrap(from_fn(catch_panic))
}

/// The answer for paths no route matches.
pub async fn no_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorKind::NotFound,
        "no such route; the public API lives under /api/v1/public",
    ))
}

/// One page of a list endpoint.
#[derive(Debug, Serialize)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// Writes `{"items": [...], "next_page_token": ...}` item by item, for lists whose
/// items are serialised straight from borrowed rows.
#[derive(Debug)]
pub struct PageWriter {
    body: Vec<u8>,
    empty: bool,
}

impl PageWriter {
    pub fn new() -> PageWriter {
        let mut body = Vec::with_capacity(8192);
        body.extend_from_slice(b"{\"items\":[");
        PageWriter { body, empty: true }
    }

    /// Appends one item.
    pub fn push<T: Serialize>(&mut self, item: &T) -> Result<(), crate::db::DbError> {
        if !self.empty {
            self.body.push(b',');
        }
        self.empty = false;
        serde_json::to_writer(&mut self.body, item)
            .map_err(|e| crate::db::DbError::Corrupt(e.to_string()))
    }

    /// Closes the list and adds `next_page_token`.
    pub fn finish(mut self, next_page_token: Option<String>) -> Result<Vec<u8>, ApiError> {
        self.body.extend_from_slice(b"],\"next_page_token\":");
        serde_json::to_writer(&mut self.body, &next_page_token).map_err(ApiError::internal)?;
        self.body.push(b'}');
        Ok(self.body)
    }
}

impl Default for PageWriter {
    fn default() -> PageWriter {
        PageWriter::new()
    }
}

/// What lists a ticket's messages or actions from the database.
pub type ListFn<T> =
    fn(&Connection, &str, &str, Option<&Cursor>, u32) -> Result<(Vec<T>, bool), DbError>;

/// `GET /tickets/{ticket_id}/<kind>`: one keyset page of a ticket's messages or
/// actions, with `limit` and `page_token` as every list takes them.
pub async fn ticket_children<T: Serialize + Send + 'static>(
    state: web::Data<AppState>,
    req: HttpRequest,
    credentials: Credentials,
    needs: Needs,
    kind: &'static str,
    list: ListFn<T>,
    cursor_after: fn(&T) -> Cursor,
) -> Result<HttpResponse, ApiError> {
    let page = QueryParams::parse(req.query_string(), &["limit", "page_token"])
        .and_then(|p| Page::parse(&p));
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let list = read_as(&state, &req, credentials, needs, page, move |cx, page| {
        let binding = format!("{kind}|{}|{ticket_id}", cx.tenant_id());
        let after = page
            .token
            .as_deref()
            .map(|token| cx.state.tokens.open(&binding, token))
            .transpose()?;
        if !crate::db::tickets::exists(cx.conn, cx.tenant_id(), &ticket_id)? {
            return Err(ApiError::not_found("ticket_id", "ticket"));
        }
        let (items, more) = list(
            cx.conn,
            cx.tenant_id(),
            &ticket_id,
            after.as_ref(),
            page.limit,
        )?;
        let next_page_token = match items.last() {
            Some(last) if more => Some(cx.state.tokens.issue(&binding, &cursor_after(last))),
            _ => None,
        };
        Ok(ListPage {
            items,
            next_page_token,
        })
    })
    .await?;
    json(StatusCode::OK, &list)
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .body(body))
}

/// The response for a POST's outcome: fresh, or stored (and maybe replayed, marked
/// `Idempotent-Replayed: true`).
pub fn respond<T: Serialize>(
    outcome: Outcome<T>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    match outcome {
        Outcome::Fresh(value) => json(status, &value),
        Outcome::Stored {
            status,
            body,
            replayed,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = HttpResponse::build(status);
            if replayed {
                response.insert_header((REPLAYED_HEADER, "true"));
            }
            Ok(response.content_type("application/json").body(body))
        }
    }
}
