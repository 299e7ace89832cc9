//! The admin console at `/admin`: server-rendered pages over the same services as the
//! CLI and the admin API (`accounts`, `tickets`, the `db` lists), for a person.
//!
//! Sign-in with the admin token starts a server-side session (`sessions`); every form
//! carries the session's CSRF token; every page is sent with a strict CSP, no framing,
//! no referrer and `Cache-Control: no-store` (pages show secrets once). Handlers read
//! as the API's do: session → parse → one call → page.

pub mod views;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Scope, web};
use maud::Markup;
use rusqlite::Connection;

use crate::accounts;
use crate::clock::Timestamp;
use crate::db;
use crate::domain::erasure::ContactSelector;
use crate::domain::event::{SubscriptionBody, SubscriptionChange, SubscriptionStatus};
use crate::domain::listing::{Cursor, QueryParams, TicketQuery, TicketSort};
use crate::domain::tenant::{
    NewKey, NewKeyBody, NewTenant, NewTenantBody, TenantPatch, parse_grace,
};
use crate::error::ApiError;
use crate::lifecycle;
use crate::routes::admin::client_address;
use crate::routes::extract::{path_param, read_body};
use crate::routes::{get, resource};
use crate::sessions::{COOKIE, Session, csrf_matches};
use crate::state::AppState;
use crate::tickets;
use crate::webhooks;
use views::{Chrome, TenantForm, TicketFilters};

/// Tickets per console page.
const PAGE_SIZE: u32 = 25;
/// Actions per console page.
const ACTIONS_PAGE_SIZE: u32 = 50;
/// Actions shown on a ticket's page.
const TICKET_ACTIONS: u32 = 100;
/// Audit records shown on a tenant's page.
const AUDIT_SHOWN: u32 = 20;

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");
const ICON: &str = include_str!("assets/favicon.svg");
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every console route, under `/admin`.
pub fn scope() -> Scope {
    web::scope("/admin")
        .service(resource("", "GET").route(get().to(overview)))
        .service(
            resource("/sign-in", "GET, POST")
                .route(get().to(sign_in_form))
                .route(web::post().to(sign_in)),
        )
        .service(resource("/sign-out", "POST").route(web::post().to(sign_out)))
        .service(
            resource("/tenants", "GET, POST")
                .route(get().to(tenants))
                .route(web::post().to(create_tenant)),
        )
        .service(
            resource("/tenants/{tenant_id}", "GET, POST")
                .route(get().to(tenant))
                .route(web::post().to(update_tenant)),
        )
        .service(
            resource("/tenants/{tenant_id}/rotate-signing-secret", "POST")
                .route(web::post().to(rotate_signing_secret)),
        )
        .service(resource("/tenants/{tenant_id}/keys", "POST").route(web::post().to(create_key)))
        .service(
            resource("/tenants/{tenant_id}/keys/{key_id}/rotate", "POST")
                .route(web::post().to(rotate_key)),
        )
        .service(
            resource("/tenants/{tenant_id}/keys/{key_id}/revoke", "POST")
                .route(web::post().to(ask_revoke)),
        )
        .service(
            resource("/tenants/{tenant_id}/keys/{key_id}/revoke/confirm", "POST")
                .route(web::post().to(revoke_key)),
        )
        .service(resource("/tenants/{tenant_id}/tickets", "GET").route(get().to(ticket_list)))
        .service(
            resource("/tenants/{tenant_id}/tickets/{ticket_id}", "GET").route(get().to(ticket)),
        )
        .service(resource("/tenants/{tenant_id}/actions", "GET").route(get().to(action_list)))
        .service(
            resource("/tenants/{tenant_id}/contacts/erase", "POST")
                .route(web::post().to(ask_erase)),
        )
        .service(
            resource("/tenants/{tenant_id}/contacts/erase/confirm", "POST")
                .route(web::post().to(erase_contact)),
        )
        .service(
            resource("/tenants/{tenant_id}/tickets/{ticket_id}/delete", "POST")
                .route(web::post().to(ask_delete_ticket)),
        )
        .service(
            resource(
                "/tenants/{tenant_id}/tickets/{ticket_id}/delete/confirm",
                "POST",
            )
            .route(web::post().to(delete_ticket)),
        )
        .service(
            resource("/tenants/{tenant_id}/webhooks", "POST").route(web::post().to(create_webhook)),
        )
        .service(
            resource("/tenants/{tenant_id}/webhooks/{subscription_id}", "GET")
                .route(get().to(webhook_deliveries)),
        )
        .service(
            resource(
                "/tenants/{tenant_id}/webhooks/{subscription_id}/{change}",
                "POST",
            )
            .route(web::post().to(change_webhook)),
        )
        .service(
            resource(
                "/tenants/{tenant_id}/deliveries/{delivery_id}/replay",
                "POST",
            )
            .route(web::post().to(replay_delivery)),
        )
        .service(resource("/static/console.css", "GET").route(get().to(stylesheet)))
        .service(resource("/static/console.js", "GET").route(get().to(script)))
        .service(resource("/static/favicon.svg", "GET").route(get().to(icon)))
}

// ---- responses ------------------------------------------------------------------

/// A page with the console's security headers.
fn html(status: StatusCode, markup: Markup) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    secure_headers(&mut response);
    response
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

fn secure_headers(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
}

/// 303 to `to` (after a form, so that reloading does not post it again).
fn see_other(to: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    secure_headers(&mut response);
    response.insert_header((header::LOCATION, to)).finish()
}

/// An error as a page, with the error's status.
fn failure(chrome: Option<Chrome<'_>>, error: &ApiError) -> HttpResponse {
    let title = match error.kind.status() {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        status if status.is_server_error() => "Unavailable",
        _ => "Cannot do that",
    };
    let mut response = html(
        error.kind.status(),
        views::message(title, chrome, &error.message),
    );
    if let Some(seconds) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The session cookie: `HttpOnly`, `SameSite=Strict`, scoped to `/admin`, `Secure`
/// over TLS or with `admin.secure_cookies`.
fn session_cookie(state: &AppState, req: &HttpRequest, id: &str, max_age: u64) -> String {
    let secure = state.config.admin.secure_cookies || req.connection_info().scheme() == "https";
    format!(
        "{COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

fn with_cookie(mut response: HttpResponse, cookie: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

// ---- sessions and forms ---------------------------------------------------------

/// The session id the browser sent.
fn cookie_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A page answered instead of the one asked for (sign-in redirect, refused form).
type Refused = Box<HttpResponse>;

/// The signed-in session of this request, or the redirect to the sign-in page.
fn signed_in(state: &AppState, req: &HttpRequest) -> Result<(String, Session), Refused> {
    cookie_id(req)
        .and_then(|id| state.console.get(&id).map(|session| (id, session)))
        .filter(|(_, session)| session.signed_in)
        .ok_or_else(|| Box::new(see_other("/admin/sign-in")))
}

/// A submitted form: `name=value` pairs.
#[derive(Debug, Default)]
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A form posted by a signed-in session, its CSRF token checked (403 page when it is
/// missing or wrong).
async fn posted(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(Session, Form), Refused> {
    let (_, session) = signed_in(state, req)?;
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let body = read_body(req, payload, state.config.server.max_body_bytes)
        .await
        .map_err(|e| Box::new(failure(Some(chrome), &e)))?;
    let form = Form::parse(&body);
    if !csrf_matches(&session, form.get("csrf")) {
        let error = ApiError::forbidden(
            "this form is missing its CSRF token or the token is wrong; reload the page and \
             try again",
        );
        return Err(Box::new(failure(Some(chrome), &error)));
    }
    Ok((session, form))
}

/// Runs `work` on a pooled read connection.
async fn read<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    state.db.read(work).await
}

/// Runs `work` as one job of the writer: the services' units of work.
async fn write<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    state.db.writer().run(work).await
}

// ---- sign-in --------------------------------------------------------------------

async fn sign_in_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if signed_in(&state, &req).is_ok() {
        return see_other("/admin");
    }
    let anonymous = cookie_id(&req).and_then(|id| state.console.get(&id).map(|s| (id, s)));
    let (id, session) = match anonymous {
        Some(found) => found,
        None => match state.console.start(false) {
            Ok(started) => started,
            Err(e) => return failure(None, &ApiError::internal(e)),
        },
    };
    let page = html(StatusCode::OK, views::sign_in(&session.csrf, None));
    with_cookie(page, &session_cookie(&state, &req, &id, 15 * 60))
}

async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let address = client_address(&req);
    if let Err(error) = state.refuse_if_throttled(&address) {
        return failure(None, &error);
    }
    let anonymous = cookie_id(&req).and_then(|id| state.console.get(&id).map(|s| (id, s)));
    let Some((old_id, anonymous)) = anonymous else {
        return see_other("/admin/sign-in");
    };
    let body = match read_body(&req, payload, 4096).await {
        Ok(body) => body,
        Err(e) => return failure(None, &e),
    };
    let form = Form::parse(&body);
    if !csrf_matches(&anonymous, form.get("csrf")) {
        let error = ApiError::forbidden("the sign-in form expired; reload the page");
        return failure(None, &error);
    }
    if let Err(error) = state.check_admin_token(form.get("token")) {
        if let Err(throttled) = state.count_failed_auth(&address) {
            return failure(None, &throttled);
        }
        let page = views::sign_in(&anonymous.csrf, Some(&error.message));
        return html(StatusCode::UNAUTHORIZED, page);
    }
    // A new id at sign-in: a session id set before it cannot be carried over.
    state.console.end(&old_id);
    match state.console.start(true) {
        Ok((id, _)) => {
            let lifetime = state.config.admin.session_max_hours * 3600;
            with_cookie(
                see_other("/admin"),
                &session_cookie(&state, &req, &id, lifetime),
            )
        }
        Err(e) => failure(None, &ApiError::internal(e)),
    }
}

async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    if let Err(page) = posted(&state, &req, payload).await {
        return *page;
    }
    if let Some(id) = cookie_id(&req) {
        state.console.end(&id);
    }
    with_cookie(
        see_other("/admin/sign-in"),
        &session_cookie(&state, &req, "", 0),
    )
}

// ---- overview and tenants ---------------------------------------------------------

async fn overview(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (_, session) = match signed_in(&state, &req) {
        Ok(found) => found,
        Err(redirect) => return *redirect,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let now = Timestamp::now();
    let loaded = read(&state, move |conn| {
        let mut tenants = Vec::new();
        for tenant in db::tenants::list(conn)? {
            let stats = db::stats::tenant(conn, &tenant.tenant_id, now)?;
            tenants.push((tenant, stats));
        }
        Ok(tenants)
    })
    .await;
    let backups = state.maintenance.backup_status();
    match loaded {
        Ok(tenants) => html(
            StatusCode::OK,
            views::overview(chrome, &tenants, &backups, now),
        ),
        Err(e) => failure(Some(chrome), &e),
    }
}

/// The tenants page, with `error` and the values to show again in its form.
async fn tenants_page(
    state: &AppState,
    chrome: Chrome<'_>,
    form: &TenantForm,
    error: Option<&ApiError>,
) -> HttpResponse {
    match read(state, |conn| Ok(db::tenants::list(conn)?)).await {
        Ok(list) => {
            let status = error.map_or(StatusCode::OK, |e| e.kind.status());
            let message = error.map(|e| e.message.as_ref());
            html(status, views::tenants(chrome, &list, form, message))
        }
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn tenants(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match signed_in(&state, &req) {
        Ok((_, session)) => {
            let chrome = Chrome {
                csrf: &session.csrf,
            };
            tenants_page(&state, chrome, &TenantForm::default(), None).await
        }
        Err(redirect) => *redirect,
    }
}

/// The tenant form's values, and the body the admin API would take for them.
fn tenant_body(form: &Form, clear_empty_url: bool) -> (TenantForm, NewTenantBody) {
    let shown = TenantForm {
        name: form.get("name").to_string(),
        action_base_url: form.get("action_base_url").trim().to_string(),
        allowed_origins: form.get("allowed_origins").to_string(),
    };
    let action_base_url = match shown.action_base_url.as_str() {
        "" if clear_empty_url => Some(None),
        "" => None,
        url => Some(Some(url.to_string())),
    };
    let body = NewTenantBody {
        name: Some(shown.name.clone()),
        action_base_url,
        allowed_origins: Some(
            shown
                .allowed_origins
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        ),
    };
    (shown, body)
}

async fn create_tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, form) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let (shown, body) = tenant_body(&form, false);
    let created = match NewTenant::try_from(body) {
        Ok(new) => write(&state, move |conn| accounts::create_tenant(conn, &new)).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(created) => {
            let back = format!("/admin/tenants/{}", created.tenant.tenant_id);
            let title = format!("Tenant {} created", created.tenant.name);
            let page = views::secret(
                chrome,
                &title,
                "signing secret",
                &created.signing_secret,
                &back,
            );
            html(StatusCode::CREATED, page)
        }
        Err(e) => tenants_page(&state, chrome, &shown, Some(&e)).await,
    }
}

/// One tenant's page, with `error` and the values to show again in its settings form.
async fn tenant_page(
    state: &AppState,
    chrome: Chrome<'_>,
    tenant_id: String,
    form: Option<TenantForm>,
    error: Option<&ApiError>,
) -> HttpResponse {
    let loaded = read(state, move |conn| {
        let tenant = accounts::get_tenant(conn, &tenant_id)?;
        let keys = accounts::list_keys(conn, &tenant_id)?;
        let hooks = db::webhooks::list(conn, &tenant_id)?;
        let audit = db::audit::recent(conn, &tenant_id, AUDIT_SHOWN)?;
        Ok((tenant, keys, hooks, audit))
    })
    .await;
    match loaded {
        Ok((tenant, keys, hooks, audit)) => {
            let form = form.unwrap_or_else(|| TenantForm {
                name: tenant.name.clone(),
                action_base_url: tenant.action_base_url.clone().unwrap_or_default(),
                allowed_origins: tenant.allowed_origins.join("\n"),
            });
            let status = error.map_or(StatusCode::OK, |e| e.kind.status());
            let message = error.map(|e| e.message.as_ref());
            let shown = views::TenantPage {
                tenant: &tenant,
                keys: &keys,
                hooks: &hooks,
                audit: &audit,
            };
            html(status, views::tenant(chrome, &shown, &form, message))
        }
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn tenant(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match signed_in(&state, &req) {
        Ok((_, session)) => {
            let chrome = Chrome {
                csrf: &session.csrf,
            };
            let tenant_id = path_param(&req, "tenant_id").to_string();
            tenant_page(&state, chrome, tenant_id, None, None).await
        }
        Err(redirect) => *redirect,
    }
}

async fn update_tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, form) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let (shown, body) = tenant_body(&form, true);
    let id = tenant_id.clone();
    let updated = match TenantPatch::try_from(body) {
        Ok(patch) => {
            write(&state, move |conn| {
                accounts::update_tenant(conn, &id, &patch)
            })
            .await
        }
        Err(e) => Err(e),
    };
    match updated {
        Ok(_) => see_other(&format!("/admin/tenants/{tenant_id}")),
        Err(e) => tenant_page(&state, chrome, tenant_id, Some(shown), Some(&e)).await,
    }
}

async fn rotate_signing_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, _) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = tenant_id.clone();
    match write(&state, move |conn| {
        accounts::rotate_signing_secret(conn, &id)
    })
    .await
    {
        Ok(rotated) => {
            let back = format!("/admin/tenants/{tenant_id}");
            let page = views::secret(
                chrome,
                "New signing secret",
                "signing secret",
                &rotated.signing_secret,
                &back,
            );
            html(StatusCode::OK, page)
        }
        Err(e) => failure(Some(chrome), &e),
    }
}

// ---- keys -----------------------------------------------------------------------

async fn create_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, form) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let expires_in = Some(form.get("expires_in").trim().to_string()).filter(|e| !e.is_empty());
    let body = NewKeyBody {
        name: Some(form.get("name").to_string()),
        scopes: Some(form.all("scopes")),
        expires_in,
    };
    let id = tenant_id.clone();
    let created = match NewKey::try_from(body) {
        Ok(new) => write(&state, move |conn| accounts::create_key(conn, &id, &new)).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(created) => {
            let back = format!("/admin/tenants/{tenant_id}");
            let title = format!("API key {} created", created.key.name);
            html(
                StatusCode::CREATED,
                views::secret(chrome, &title, "API key", &created.api_key, &back),
            )
        }
        Err(e) => tenant_page(&state, chrome, tenant_id, None, Some(&e)).await,
    }
}

async fn rotate_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, form) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let key_id = path_param(&req, "key_id").to_string();
    let (tenant, back) = (tenant_id.clone(), format!("/admin/tenants/{tenant_id}"));
    let rotated = match parse_grace(form.get("grace"), "grace") {
        Ok(grace) => {
            write(&state, move |conn| {
                accounts::rotate_key(conn, Some(&tenant), &key_id, grace)
            })
            .await
        }
        Err(e) => Err(e),
    };
    match rotated {
        Ok(rotated) => {
            let title = format!("API key {} rotated", rotated.key.name);
            html(
                StatusCode::OK,
                views::secret(chrome, &title, "new API key", &rotated.api_key, &back),
            )
        }
        Err(e) => tenant_page(&state, chrome, tenant_id, None, Some(&e)).await,
    }
}

async fn ask_revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, _) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let key_id = path_param(&req, "key_id").to_string();
    let loaded = read(&state, move |conn| {
        let tenant = accounts::get_tenant(conn, &tenant_id)?;
        let key = db::keys::get(conn, &tenant_id, &key_id)?
            .ok_or_else(|| ApiError::not_found("key_id", "API key"))?;
        Ok((tenant, key))
    })
    .await;
    match loaded {
        Ok((tenant, key)) => html(StatusCode::OK, views::confirm_revoke(chrome, &tenant, &key)),
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn revoke_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, _) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let key_id = path_param(&req, "key_id").to_string();
    let tenant = tenant_id.clone();
    match write(&state, move |conn| {
        accounts::revoke_key(conn, Some(&tenant), &key_id)
    })
    .await
    {
        Ok(_) => see_other(&format!("/admin/tenants/{tenant_id}")),
        Err(e) => failure(
            Some(Chrome {
                csrf: &session.csrf,
            }),
            &e,
        ),
    }
}

// ---- erasure --------------------------------------------------------------------

/// The contact a posted erase form names (`by` and `value`).
fn posted_selector(form: &Form) -> Result<ContactSelector, ApiError> {
    ContactSelector::parse(form.get("by"), form.get("value").trim())
}

async fn ask_erase(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, form) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = tenant_id.clone();
    let found = match posted_selector(&form) {
        Ok(selector) => {
            read(&state, move |conn| {
                let tenant = accounts::get_tenant(conn, &id)?;
                let (contact, tickets) = lifecycle::find_contact(conn, &id, &selector)?;
                Ok((tenant, contact, tickets))
            })
            .await
        }
        Err(e) => Err(e),
    };
    match found {
        Ok((tenant, contact, tickets)) => html(
            StatusCode::OK,
            views::confirm_erase(chrome, &tenant, &contact, tickets),
        ),
        Err(e) => tenant_page(&state, chrome, tenant_id, None, Some(&e)).await,
    }
}

async fn erase_contact(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, form) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let erased = match posted_selector(&form) {
        Ok(selector) => {
            write(&state, move |conn| {
                let erasure = lifecycle::erase_contact(
                    conn,
                    &tenant_id,
                    &selector,
                    lifecycle::actor::CONSOLE,
                )?;
                Ok((accounts::get_tenant(conn, &tenant_id)?, erasure))
            })
            .await
        }
        Err(e) => Err(e),
    };
    match erased {
        Ok((tenant, erasure)) => html(StatusCode::OK, views::erased(chrome, &tenant, &erasure)),
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn ask_delete_ticket(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, _) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let loaded = read(&state, move |conn| {
        let tenant = accounts::get_tenant(conn, &tenant_id)?;
        let view = tickets::view(conn, &tenant_id, &ticket_id)?;
        Ok((tenant, view))
    })
    .await;
    match loaded {
        Ok((tenant, view)) => html(
            StatusCode::OK,
            views::confirm_delete_ticket(chrome, &tenant, &view.summary),
        ),
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn delete_ticket(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, _) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let deleted = write(&state, move |conn| {
        let erasure =
            lifecycle::delete_ticket(conn, &tenant_id, &ticket_id, lifecycle::actor::CONSOLE)?;
        Ok((accounts::get_tenant(conn, &tenant_id)?, erasure))
    })
    .await;
    match deleted {
        Ok((tenant, erasure)) => html(StatusCode::OK, views::erased(chrome, &tenant, &erasure)),
        Err(e) => failure(Some(chrome), &e),
    }
}

// ---- tickets and actions --------------------------------------------------------

/// The ticket filters of a console query string, and the same as a public API query.
fn ticket_filters(query: &str) -> (TicketFilters, String, Option<String>, Option<String>) {
    let params = QueryParams::parse(
        query,
        &["status", "channel", "priority", "tag", "after", "before"],
    )
    .unwrap_or_default();
    let one = |name: &str| {
        params
            .all(name)
            .first()
            .map_or("", |v| v.trim())
            .to_string()
    };
    let filters = TicketFilters {
        status: one("status"),
        channel: one("channel"),
        priority: one("priority"),
        tag: one("tag"),
    };
    let mut api: Vec<String> = vec![format!("limit={PAGE_SIZE}")];
    for (name, value) in [
        ("status", &filters.status),
        ("channel", &filters.channel),
        ("priority", &filters.priority),
        ("tag", &filters.tag),
    ] {
        if !value.is_empty() {
            let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            api.push(format!("{name}={value}"));
        }
    }
    let token = |name: &str| Some(one(name)).filter(|t| !t.is_empty());
    (filters, api.join("&"), token("after"), token("before"))
}

/// A link to the ticket list with these filters and a page token.
fn page_link(base: &str, filters: &TicketFilters, way: &str, token: &str) -> String {
    let mut link = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("status", &filters.status),
        ("channel", &filters.channel),
        ("priority", &filters.priority),
        ("tag", &filters.tag),
    ] {
        if !value.is_empty() {
            link.append_pair(name, value);
        }
    }
    link.append_pair(way, token);
    format!("{base}?{}", link.finish())
}

async fn ticket_list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (_, session) = match signed_in(&state, &req) {
        Ok(found) => found,
        Err(redirect) => return *redirect,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let (filters, api_query, after, before) = ticket_filters(req.query_string());
    let query = match TicketQuery::parse(&api_query) {
        Ok(query) => query,
        Err(e) => return failure(Some(chrome), &e),
    };
    let shared = state.clone();
    let id = tenant_id.clone();
    let loaded = read(&state, move |conn| {
        let tenant = accounts::get_tenant(conn, &id)?;
        let binding = format!("console|tickets|{id}|{}", query.binding());
        let open = |token: &str| shared.tokens.open(&binding, token);
        let sort = TicketSort::LastMessageDesc;
        let (items, earlier, later) = match (&after, &before) {
            (_, Some(token)) => {
                let (items, more) = db::tickets::list_before(
                    conn,
                    &id,
                    &query.filter,
                    sort,
                    &open(token)?,
                    PAGE_SIZE,
                )?;
                (items, more, true)
            }
            (after, None) => {
                let cursor = after.as_deref().map(open).transpose()?;
                let (items, next) =
                    db::tickets::list(conn, &id, &query.filter, sort, cursor.as_ref(), PAGE_SIZE)?;
                (items, cursor.is_some(), next.is_some())
            }
        };
        let token = |cursor: Cursor| shared.tokens.issue(&binding, &cursor);
        let first = items
            .first()
            .filter(|_| earlier)
            .map(|t| token(db::tickets::cursor_of(t, sort)));
        let last = items
            .last()
            .filter(|_| later)
            .map(|t| token(db::tickets::cursor_of(t, sort)));
        Ok((tenant, items, first, last))
    })
    .await;
    match loaded {
        Ok((tenant, items, first, last)) => {
            let base = format!("/admin/tenants/{tenant_id}/tickets");
            let previous = first.map(|t| page_link(&base, &filters, "before", &t));
            let next = last.map(|t| page_link(&base, &filters, "after", &t));
            let page = views::tickets(
                chrome,
                &tenant,
                &items,
                &filters,
                previous.as_deref(),
                next.as_deref(),
            );
            html(StatusCode::OK, page)
        }
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn ticket(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (_, session) = match signed_in(&state, &req) {
        Ok(found) => found,
        Err(redirect) => return *redirect,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let ticket_id = path_param(&req, "ticket_id").to_string();
    let loaded = read(&state, move |conn| {
        let tenant = accounts::get_tenant(conn, &tenant_id)?;
        let view = tickets::view(conn, &tenant_id, &ticket_id)?;
        let (actions, _) = db::actions::list(conn, &tenant_id, &ticket_id, None, TICKET_ACTIONS)?;
        Ok((tenant, view, actions))
    })
    .await;
    match loaded {
        Ok((tenant, view, actions)) => html(
            StatusCode::OK,
            views::ticket(chrome, &tenant, &view, &actions),
        ),
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn action_list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (_, session) = match signed_in(&state, &req) {
        Ok(found) => found,
        Err(redirect) => return *redirect,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let after = QueryParams::parse(req.query_string(), &["after"])
        .ok()
        .and_then(|p| p.all("after").first().map(|t| t.to_string()));
    let shared = state.clone();
    let id = tenant_id.clone();
    let loaded = read(&state, move |conn| {
        let tenant = accounts::get_tenant(conn, &id)?;
        let binding = format!("console|actions|{id}");
        let cursor = after
            .as_deref()
            .map(|t| shared.tokens.open(&binding, t))
            .transpose()?;
        let (items, more) =
            db::actions::list_recent(conn, &id, cursor.as_ref(), ACTIONS_PAGE_SIZE)?;
        let next = items
            .last()
            .filter(|_| more)
            .map(|a| shared.tokens.issue(&binding, &db::actions::cursor_after(a)));
        Ok((tenant, items, next))
    })
    .await;
    match loaded {
        Ok((tenant, items, next)) => {
            let next = next.map(|t| {
                let token: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
                format!("/admin/tenants/{tenant_id}/actions?after={token}")
            });
            html(
                StatusCode::OK,
                views::actions(chrome, &tenant, &items, next.as_deref()),
            )
        }
        Err(e) => failure(Some(chrome), &e),
    }
}

// ---- webhooks -------------------------------------------------------------------

async fn create_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, form) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let body = SubscriptionBody {
        url: Some(form.get("url").to_string()),
        event_types: Some(form.all("event_types")),
        status: None,
    };
    let (id, policy) = (tenant_id.clone(), state.action_policy.clone());
    let created = match SubscriptionChange::new_subscription(body) {
        Ok(change) => {
            write(&state, move |conn| {
                webhooks::create(conn, &id, &change, &policy)
            })
            .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(_) => see_other(&format!("/admin/tenants/{tenant_id}")),
        Err(e) => tenant_page(&state, chrome, tenant_id, None, Some(&e)).await,
    }
}

/// Pause, resume or delete a subscription (`{change}` in the path).
async fn change_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, _) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = path_param(&req, "subscription_id").to_string();
    let (tenant, policy) = (tenant_id.clone(), state.action_policy.clone());
    let status = match path_param(&req, "change") {
        "pause" => Some(SubscriptionStatus::Paused),
        "resume" => Some(SubscriptionStatus::Active),
        "delete" => None,
        _ => return failure(Some(chrome), &ApiError::not_found("change", "page")),
    };
    let changed = write(&state, move |conn| match status {
        Some(status) => {
            let change = SubscriptionChange {
                status: Some(status),
                ..SubscriptionChange::default()
            };
            webhooks::update(conn, Some(&tenant), &id, &change, &policy).map(|_| ())
        }
        None => webhooks::delete(conn, Some(&tenant), &id),
    })
    .await;
    match changed {
        Ok(()) => see_other(&format!("/admin/tenants/{tenant_id}")),
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn webhook_deliveries(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (_, session) = match signed_in(&state, &req) {
        Ok(found) => found,
        Err(redirect) => return *redirect,
    };
    let chrome = Chrome {
        csrf: &session.csrf,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = path_param(&req, "subscription_id").to_string();
    let loaded = read(&state, move |conn| {
        let tenant = accounts::get_tenant(conn, &tenant_id)?;
        let hook = webhooks::get(conn, Some(&tenant_id), &id)?;
        let (items, _) = db::webhooks::deliveries(conn, &tenant_id, &id, None, 100)?;
        Ok((tenant, hook, items))
    })
    .await;
    match loaded {
        Ok((tenant, hook, items)) => html(
            StatusCode::OK,
            views::deliveries(chrome, &tenant, &hook, &items),
        ),
        Err(e) => failure(Some(chrome), &e),
    }
}

async fn replay_delivery(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (session, _) = match posted(&state, &req, payload).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let tenant_id = path_param(&req, "tenant_id").to_string();
    let id = path_param(&req, "delivery_id").to_string();
    let tenant = tenant_id.clone();
    match write(&state, move |conn| webhooks::replay(conn, &tenant, &id)).await {
        Ok(delivery) => see_other(&format!(
            "/admin/tenants/{tenant_id}/webhooks/{}",
            delivery.subscription_id
        )),
        Err(e) => failure(
            Some(Chrome {
                csrf: &session.csrf,
            }),
            &e,
        ),
    }
}

// ---- assets ---------------------------------------------------------------------

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn icon() -> HttpResponse {
    asset("image/svg+xml", ICON)
}
