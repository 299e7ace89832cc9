//! The console's pages, as maud templates compiled into the binary. maud escapes
//! every value it renders, so tenant data (subjects, messages, names) always shows as
//! text. No inline script or style: the pages work under a strict CSP and with
//! JavaScript off (the one script adds copy buttons).

use maud::{DOCTYPE, Markup, html};

use crate::clock::Timestamp;
use crate::db::actions::{Action, ActionStatus};
use crate::db::audit::Record as AuditRecord;
use crate::db::contacts::Contact;
use crate::db::keys::ApiKey;
use crate::db::stats::{CHART_DAYS, TenantStats};
use crate::db::tenants::Tenant;
use crate::db::tickets::{TicketSummary, TicketView};
use crate::db::webhooks::{Delivery, Subscription};
use crate::domain::event::{EventType, SubscriptionStatus};
use crate::domain::scope::Scope;
use crate::domain::ticket::{Channel, Priority, Role, Status};
use crate::lifecycle::Erasure;
use crate::maintenance::BackupStatus;

/// What every signed-in page needs: the session's CSRF token, for its forms.
#[derive(Debug, Clone, Copy)]
pub struct Chrome<'a> {
    pub csrf: &'a str,
}

/// The page frame: header with navigation and sign-out, then `body`.
pub fn page(title: &str, chrome: Option<Chrome<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · threada console" }
                link rel="icon" type="image/svg+xml" href="/admin/static/favicon.svg";
                link rel="stylesheet" href="/admin/static/console.css";
                script src="/admin/static/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/admin" { "threada" }
                    @if let Some(chrome) = chrome {
                        nav {
                            a href="/admin" { "Overview" }
                            a href="/admin/tenants" { "Tenants" }
                        }
                        form.sign-out method="post" action="/admin/sign-out" {
                            (csrf_field(chrome.csrf))
                            button type="submit" data-testid="sign-out" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

fn error_box(error: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = error {
            p.error role="alert" data-testid="error" { (message) }
        }
    }
}

/// A timestamp to the minute, UTC; the exact one in its `datetime` and tooltip.
fn time(at: Option<Timestamp>) -> Markup {
    html! {
        @match at {
            Some(at) => {
                @let full = at.to_string();
                time datetime=(full) title=(full) { (full[..16].replace('T', " ")) }
            },
            None => span.muted { "—" },
        }
    }
}

/// The sign-in form.
pub fn sign_in(csrf: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            (error_box(error))
            form.card method="post" action="/admin/sign-in" {
                (csrf_field(csrf))
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required;
                button type="submit" data-testid="sign-in" { "Sign in" }
            }
            p.muted { "The admin token is the value of the server's admin.token_env variable "
                "(THREADA_ADMIN_TOKEN by default); threada demo prints one." }
        },
    )
}

/// A message page for errors: refused CSRF, unknown ids, throttling.
pub fn message(title: &str, chrome: Option<Chrome<'_>>, text: &str) -> Markup {
    page(
        title,
        chrome,
        html! {
            h1 { (title) }
            p.error role="alert" data-testid="error" { (text) }
            p { a href="/admin" { "Back to the console" } }
        },
    )
}

/// Tickets created per day over the last 14 days, as a bar chart.
fn chart(stats: &TenantStats, today: Timestamp) -> Markup {
    const WIDTH: u64 = 280;
    const HEIGHT: u64 = 72;
    let bar = WIDTH / CHART_DAYS as u64;
    let max = stats
        .created_per_day
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let total: u64 = stats.created_per_day.iter().sum();
    let day_micros = 86_400_000_000i64;
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + 14)) role="img"
            aria-label=(format!("Tickets created per day over the last {CHART_DAYS} days: {total} in all")) {
            @for (i, count) in stats.created_per_day.iter().enumerate() {
                @let height = (count * HEIGHT / max).max(u64::from(*count > 0));
                @let day = Timestamp::from_micros(today.micros() - (CHART_DAYS - 1 - i) as i64 * day_micros);
                rect x=(i as u64 * bar + 2) y=(HEIGHT - height) width=(bar - 4) height=(height) fill="#4f6bed" {
                    title { (day.to_string()[..10]) ": " (count) }
                }
                @if i % 2 == (CHART_DAYS - 1) % 2 {
                    text x=(i as u64 * bar + bar / 2) y=(HEIGHT + 12) text-anchor="middle" font-size="9" fill="#667" {
                        (day.to_string()[8..10])
                    }
                }
            }
        }
    }
}

fn counts<T: Copy>(items: &[(T, u64)], name: fn(T) -> &'static str) -> Markup {
    html! {
        @if items.is_empty() {
            span.muted { "none" }
        } @else {
            ul.counts {
                @for (item, count) in items {
                    li { span.label { (name(*item)) } " " strong { (count) } }
                }
            }
        }
    }
}

/// The overview: every tenant at a glance.
pub fn overview(
    chrome: Chrome<'_>,
    tenants: &[(Tenant, TenantStats)],
    backups: &BackupStatus,
    now: Timestamp,
) -> Markup {
    page(
        "Overview",
        Some(chrome),
        html! {
            h1 { "Overview" }
            (backup_card(backups))
            @if tenants.is_empty() {
                p { "No tenant yet. " a href="/admin/tenants" { "Create one" } "." }
            }
            @for (tenant, stats) in tenants {
                section.card data-tenant-id=(tenant.tenant_id) {
                    h2 { a href=(format!("/admin/tenants/{}", tenant.tenant_id)) { (tenant.name) } }
                    p.muted { (stats.tickets()) " tickets · "
                        a href=(format!("/admin/tenants/{}/tickets", tenant.tenant_id)) { "tickets" } " · "
                        a href=(format!("/admin/tenants/{}/actions", tenant.tenant_id)) { "actions" } }
                    div.grid {
                        div { h3 { "By status" } (counts(&stats.by_status, Status::as_str)) }
                        div { h3 { "By channel" } (counts(&stats.by_channel, Channel::as_str)) }
                        div { h3 { "Actions, last 24 h" } (counts(&stats.actions_last_day, ActionStatus::as_str)) }
                        div { h3 { "Created per day, 14 days" } (chart(stats, now)) }
                    }
                }
            }
        },
    )
}

/// Values a tenant form shows again after an error.
#[derive(Debug, Clone, Default)]
pub struct TenantForm {
    pub name: String,
    pub action_base_url: String,
    pub allowed_origins: String,
}

fn tenant_fields(form: &TenantForm) -> Markup {
    html! {
        label for="name" { "Name" }
        input #name type="text" name="name" value=(form.name) required maxlength="200";
        label for="action_base_url" { "Action base URL" }
        input #action_base_url type="url" name="action_base_url" value=(form.action_base_url)
            placeholder="https://hooks.example.com";
        label for="allowed_origins" { "Allowed origins (one per line)" }
        textarea #allowed_origins name="allowed_origins" rows="2" { (form.allowed_origins) }
    }
}

/// Tenants: the list and the create form.
pub fn tenants(
    chrome: Chrome<'_>,
    tenants: &[Tenant],
    form: &TenantForm,
    error: Option<&str>,
) -> Markup {
    page(
        "Tenants",
        Some(chrome),
        html! {
            h1 { "Tenants" }
            table {
                thead { tr { th { "Name" } th { "Tenant id" } th { "Action base URL" } th { "Created" } } }
                tbody {
                    @for tenant in tenants {
                        tr data-tenant-id=(tenant.tenant_id) {
                            td { a href=(format!("/admin/tenants/{}", tenant.tenant_id)) { (tenant.name) } }
                            td { code { (tenant.tenant_id) } }
                            td { (tenant.action_base_url.as_deref().unwrap_or("—")) }
                            td { (time(Some(tenant.created_at))) }
                        }
                    }
                }
            }
            h2 { "New tenant" }
            (error_box(error))
            form.card method="post" action="/admin/tenants" {
                (csrf_field(chrome.csrf))
                (tenant_fields(form))
                button type="submit" data-testid="create-tenant" { "Create tenant" }
            }
        },
    )
}

/// A secret shown once, with a copy button and a warning.
pub fn secret(chrome: Chrome<'_>, title: &str, what: &str, secret: &str, back: &str) -> Markup {
    page(
        title,
        Some(chrome),
        html! {
            h1 { (title) }
            p.warning role="alert" { "Copy the " (what) " now: it will not be shown again." }
            div.secret {
                code #secret data-testid="secret" { (secret) }
                button type="button" data-copy="secret" hidden { "Copy" }
            }
            p { a href=(back) { "Done" } }
        },
    )
}

fn scope_boxes() -> Markup {
    html! {
        fieldset {
            legend { "Scopes" }
            @for scope in Scope::ALL {
                label.check {
                    input type="checkbox" name="scopes" value=(scope.as_str()) checked[scope == Scope::Read];
                    (scope.as_str())
                }
            }
        }
    }
}

/// One tenant: its settings, its signing secret rotation, its API keys and webhooks.
/// What a tenant's page shows besides its settings form.
#[derive(Debug)]
pub struct TenantPage<'a> {
    pub tenant: &'a Tenant,
    pub keys: &'a [ApiKey],
    pub hooks: &'a [Subscription],
    pub audit: &'a [AuditRecord],
}

pub fn tenant(
    chrome: Chrome<'_>,
    shown: &TenantPage<'_>,
    form: &TenantForm,
    error: Option<&str>,
) -> Markup {
    let TenantPage {
        tenant,
        keys,
        hooks,
        audit,
    } = *shown;
    let base = format!("/admin/tenants/{}", tenant.tenant_id);
    page(
        &tenant.name,
        Some(chrome),
        html! {
            h1 { (tenant.name) }
            p.muted { code { (tenant.tenant_id) } " · "
                a href=(format!("{base}/tickets")) { "tickets" } " · "
                a href=(format!("{base}/actions")) { "actions" } }
            (error_box(error))
            h2 { "API keys" }
            table {
                thead { tr { th { "Name" } th { "Key id" } th { "Scopes" } th { "Status" }
                    th { "Created" } th { "Last used" } th { "Expires" } th { "" } } }
                tbody {
                    @for key in keys {
                        tr data-key-id=(key.key_id) {
                            td { (key.name) }
                            td { code { (key.key_id) } }
                            td { (key.scopes.to_stored().replace(',', ", ")) }
                            td data-testid="key-status" { (key.status) }
                            td { (time(Some(key.created_at))) }
                            td { (time(key.last_used_at)) }
                            td { (time(key.expires_at)) }
                            td.actions {
                                @if !key.is_revoked() {
                                    form.inline method="post" action=(format!("{base}/keys/{}/rotate", key.key_id)) {
                                        (csrf_field(chrome.csrf))
                                        select name="grace" aria-label="Grace period" {
                                            option value="0s" { "no grace" }
                                            option value="1h" { "1 h grace" }
                                            option value="24h" selected { "24 h grace" }
                                        }
                                        button type="submit" data-testid="rotate-key" { "Rotate" }
                                    }
                                    form.inline method="post" action=(format!("{base}/keys/{}/revoke", key.key_id)) {
                                        (csrf_field(chrome.csrf))
                                        button.danger type="submit" data-testid="revoke-key" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "New key" }
            form.card method="post" action=(format!("{base}/keys")) {
                (csrf_field(chrome.csrf))
                label for="key-name" { "Name (one key per integration)" }
                input #key-name type="text" name="name" required maxlength="200" placeholder="zapier";
                (scope_boxes())
                label for="expires_in" { "Expires in (optional, e.g. 90d)" }
                input #expires_in type="text" name="expires_in" placeholder="never";
                button type="submit" data-testid="create-key" { "Create key" }
            }
            h2 { "Event webhooks" }
            (webhooks(chrome, tenant, hooks))
            h2 { "Personal data" }
            (erase_form(chrome, &base))
            @if !audit.is_empty() { (audit_rows(audit)) }
            h2 { "Settings" }
            form.card method="post" action=(base) {
                (csrf_field(chrome.csrf))
                (tenant_fields(form))
                button type="submit" data-testid="update-tenant" { "Save" }
            }
            form.card method="post" action=(format!("{base}/rotate-signing-secret")) {
                (csrf_field(chrome.csrf))
                p { "The signing secret signs every action call (X-Threada-Signature). A new one "
                    "replaces it at once: hooks must verify with the new one." }
                button type="submit" data-testid="rotate-signing-secret" { "Rotate signing secret" }
            }
        },
    )
}

fn webhooks(chrome: Chrome<'_>, tenant: &Tenant, hooks: &[Subscription]) -> Markup {
    let base = format!("/admin/tenants/{}/webhooks", tenant.tenant_id);
    html! {
        @if !hooks.is_empty() {
            table {
                thead { tr { th { "URL" } th { "Events" } th { "Status" } th { "Failures in a row" } th { "" } } }
                tbody {
                    @for hook in hooks {
                        tr data-subscription-id=(hook.subscription_id) {
                            td { a href=(format!("{base}/{}", hook.subscription_id)) { (hook.url) } }
                            td { @if hook.event_types.is_empty() { "all" } @else {
                                (hook.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) } }
                            td data-testid="subscription-status" {
                                span class=(format!("badge {}", hook.status.as_str())) { (hook.status.as_str()) }
                                @if let Some(reason) = &hook.paused_reason { br; span.muted { (reason) } }
                            }
                            td { (hook.consecutive_failures) }
                            td.actions {
                                @let action = if hook.status == SubscriptionStatus::Paused { "resume" } else { "pause" };
                                form.inline method="post" action=(format!("{base}/{}/{action}", hook.subscription_id)) {
                                    (csrf_field(chrome.csrf))
                                    button type="submit" data-testid=(format!("{action}-webhook")) { (action) }
                                }
                                form.inline method="post" action=(format!("{base}/{}/delete", hook.subscription_id)) {
                                    (csrf_field(chrome.csrf))
                                    button.danger type="submit" data-testid="delete-webhook" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.card method="post" action=(base) {
            (csrf_field(chrome.csrf))
            label for="hook-url" { "URL (a path on the action base URL, or a URL on an allowed origin)" }
            input #hook-url type="text" name="url" required placeholder="/hooks/events";
            fieldset {
                legend { "Events (none checked: all)" }
                @for event_type in EventType::ALL {
                    label.check { input type="checkbox" name="event_types" value=(event_type.as_str()); (event_type.as_str()) }
                }
            }
            button type="submit" data-testid="create-webhook" { "Add webhook" }
        }
    }
}

/// A subscription's deliveries, newest first, with every attempt and a replay button.
pub fn deliveries(
    chrome: Chrome<'_>,
    tenant: &Tenant,
    hook: &Subscription,
    items: &[Delivery],
) -> Markup {
    page(
        "Deliveries",
        Some(chrome),
        html! {
            p.muted { a href=(format!("/admin/tenants/{}", tenant.tenant_id)) { "← " (tenant.name) } }
            h1 { "Deliveries to " (hook.url) }
            p { span class=(format!("badge {}", hook.status.as_str())) { (hook.status.as_str()) }
                @if let Some(reason) = &hook.paused_reason { " " (reason) } }
            table {
                thead { tr { th { "Delivery" } th { "Event" } th { "Status" } th { "Attempts" } th { "Next try" } th { "" } } }
                tbody {
                    @for delivery in items {
                        tr data-delivery-id=(delivery.delivery_id) class=(format!("status-{}", delivery.status.as_str())) {
                            td { code { (delivery.delivery_id) } br; span.muted { (time(Some(delivery.created_at))) } }
                            td { (delivery.event_type.map_or("expired", |t| t.as_str())) br;
                                 code.muted { (delivery.event_id.as_deref().unwrap_or("—")) } }
                            td data-testid="delivery-status" { span class=(format!("badge {}", delivery.status.as_str())) { (delivery.status.as_str()) } }
                            td {
                                @for attempt in &delivery.history {
                                    div { "#" (attempt.attempt) " " (time(Some(attempt.started_at))) " · "
                                        @if let Some(status) = attempt.http_status { "HTTP " (status) } @else { "no answer" }
                                        " · " (attempt.duration_ms) " ms"
                                        @if let Some(code) = &attempt.error_code { " · " strong { (code) } } }
                                }
                            }
                            td { (time(delivery.next_attempt_at)) }
                            td {
                                form.inline method="post" action=(format!("/admin/tenants/{}/deliveries/{}/replay", tenant.tenant_id, delivery.delivery_id)) {
                                    (csrf_field(chrome.csrf))
                                    button type="submit" data-testid="replay-delivery" { "Replay" }
                                }
                            }
                        }
                    }
                }
            }
            @if items.is_empty() { p.muted { "No delivery yet." } }
        },
    )
}

/// The form that starts a contact's erasure (a confirmation step follows).
fn erase_form(chrome: Chrome<'_>, base: &str) -> Markup {
    html! {
        form.card method="post" action=(format!("{base}/contacts/erase")) {
            (csrf_field(chrome.csrf))
            p { "Erase a customer (a GDPR erasure request): their contact, every ticket, message and "
                "action of theirs, and every copy (search index, event data, stored answers). "
                "You will see what it removes before anything is erased." }
            label for="erase-by" { "Find the contact by" }
            select #erase-by name="by" {
                option value="email" { "email" }
                option value="phone" { "phone" }
                option value="external_id" { "external id" }
                option value="contact_id" { "contact id" }
            }
            label for="erase-value" { "Value" }
            input #erase-value type="text" name="value" required placeholder="customer@example.com";
            button.danger type="submit" data-testid="erase-contact" { "Find and erase…" }
        }
    }
}

/// The audit log: who erased what, when, how much.
fn audit_rows(records: &[AuditRecord]) -> Markup {
    html! {
        h3 { "Erasures" }
        table {
            thead { tr { th { "When" } th { "What" } th { "Who" } th { "Removed" } } }
            tbody {
                @for record in records {
                    tr data-audit-id=(record.audit_id) {
                        td { (time(Some(record.created_at))) }
                        td { (record.action) @if let Some(id) = &record.subject_id { " " code { (id) } } }
                        td { (record.actor) }
                        td.muted { (describe_counts(&record.counts)) }
                    }
                }
            }
        }
    }
}

/// `{"tickets": 2, "messages": 5, …}` as "2 tickets, 5 messages, …" (zeros left out).
fn describe_counts(counts: &serde_json::Value) -> String {
    let Some(map) = counts.as_object() else {
        return String::new();
    };
    map.iter()
        .filter_map(|(name, n)| {
            n.as_u64()
                .filter(|n| *n > 0)
                .map(|n| format!("{n} {}", name.replace('_', " ")))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The step before a contact's erasure: who it is, what goes.
pub fn confirm_erase(
    chrome: Chrome<'_>,
    tenant: &Tenant,
    contact: &Contact,
    tickets: usize,
) -> Markup {
    let base = format!("/admin/tenants/{}", tenant.tenant_id);
    page(
        "Erase contact",
        Some(chrome),
        html! {
            h1 { "Erase this contact?" }
            dl.card {
                dt { "Contact" } dd { code { (contact.contact_id) } }
                dt { "Name" } dd { (contact.name.as_deref().unwrap_or("—")) }
                dt { "Email" } dd { (contact.email.as_deref().unwrap_or("—")) }
                dt { "Phone" } dd { (contact.phone.as_deref().unwrap_or("—")) }
                dt { "External id" } dd { (contact.external_id.as_deref().unwrap_or("—")) }
                dt { "Tickets" } dd data-testid="erase-tickets" { (tickets) }
            }
            p.warning { "The contact, its " (tickets) " ticket(s) with all their messages and actions, "
                "and every copy of them are removed from " (tenant.name) " at once. Their events stay in "
                "the feed without their data. This cannot be undone." }
            form.card method="post" action=(format!("{base}/contacts/erase/confirm")) {
                (csrf_field(chrome.csrf))
                input type="hidden" name="by" value="contact_id";
                input type="hidden" name="value" value=(contact.contact_id);
                button.danger type="submit" data-testid="confirm-erase" { "Erase contact and tickets" }
                " "
                a href=(base) { "Cancel" }
            }
        },
    )
}

/// What an erasure or deletion removed.
pub fn erased(chrome: Chrome<'_>, tenant: &Tenant, erasure: &Erasure) -> Markup {
    let removed = &erasure.removed;
    page(
        "Erased",
        Some(chrome),
        html! {
            h1 { @if erasure.contact_id.is_some() { "Contact erased" } @else { "Ticket deleted" } }
            table data-testid="erasure-counts" {
                tbody {
                    tr { th { "Contacts" } td { (removed.contacts) } }
                    tr { th { "Tickets" } td data-testid="erased-tickets" { (removed.tickets) } }
                    tr { th { "Messages" } td { (removed.messages) } }
                    tr { th { "Actions" } td { (removed.actions) } }
                    tr { th { "Search documents" } td { (removed.search_documents) } }
                    tr { th { "Events emptied" } td { (removed.events_cleared) } }
                    tr { th { "Stored idempotent answers" } td { (removed.idempotency_answers) } }
                }
            }
            p.muted { "Audit record " code { (erasure.audit_id) } "." }
            p { a href=(format!("/admin/tenants/{}", tenant.tenant_id)) { "Back to " (tenant.name) } }
        },
    )
}

/// The step before a ticket's deletion.
pub fn confirm_delete_ticket(
    chrome: Chrome<'_>,
    tenant: &Tenant,
    ticket: &TicketSummary,
) -> Markup {
    let base = format!(
        "/admin/tenants/{}/tickets/{}",
        tenant.tenant_id, ticket.ticket_id
    );
    page(
        "Delete ticket",
        Some(chrome),
        html! {
            h1 { "Delete this ticket?" }
            p { strong { (ticket.subject) } " (" code { (ticket.ticket_id) } ") with all its messages and "
                "actions is removed, with every copy; its contact too if no other ticket refers to it. "
                "This cannot be undone." }
            form.card method="post" action=(format!("{base}/delete/confirm")) {
                (csrf_field(chrome.csrf))
                button.danger type="submit" data-testid="confirm-delete-ticket" { "Delete ticket" }
                " "
                a href=(base) { "Cancel" }
            }
        },
    )
}

/// Scheduled backups on the overview: last success, last error.
fn backup_card(status: &BackupStatus) -> Markup {
    html! {
        section.card data-testid="backups" {
            h2 { "Scheduled backups" }
            @if !status.enabled {
                p.muted { "Off (set backup.schedule, e.g. \"6h\")." }
            } @else {
                dl {
                    dt { "Directory" } dd { code { (status.dir.as_deref().unwrap_or("—")) } }
                    dt { "Last backup" } dd data-testid="backup-last-success" {
                        (time(status.last_success_at))
                        @if let Some(file) = &status.last_file { " " code { (file) } }
                        @if let Some(bytes) = status.last_bytes { " (" (bytes / 1024) " KiB)" } }
                    dt { "Last error" } dd data-testid="backup-last-error" {
                        @match &status.last_error {
                            Some(error) => { (time(status.last_error_at)) " " strong.failed { (error) } },
                            None => span.muted { "none" },
                        } }
                    dt { "Since start" } dd { (status.successes) " written, " (status.failures) " failed" }
                }
            }
        }
    }
}

/// The step before a revocation.
pub fn confirm_revoke(chrome: Chrome<'_>, tenant: &Tenant, key: &ApiKey) -> Markup {
    let base = format!("/admin/tenants/{}", tenant.tenant_id);
    page(
        "Revoke key",
        Some(chrome),
        html! {
            h1 { "Revoke " (key.name) "?" }
            p { "Key " code { (key.key_id) } " of " (tenant.name)
                " stops working on its next request. This cannot be undone." }
            form.card method="post" action=(format!("{base}/keys/{}/revoke/confirm", key.key_id)) {
                (csrf_field(chrome.csrf))
                button.danger type="submit" data-testid="confirm-revoke" { "Revoke key" }
                " "
                a href=(base) { "Cancel" }
            }
        },
    )
}

/// The filters a ticket list shows, as submitted.
#[derive(Debug, Clone, Default)]
pub struct TicketFilters {
    pub status: String,
    pub channel: String,
    pub priority: String,
    pub tag: String,
}

fn choice(name: &str, label: &str, current: &str, options: &[&'static str]) -> Markup {
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) {
            option value="" selected[current.is_empty()] { "any" }
            @for option in options {
                option value=(option) selected[current == *option] { (option) }
            }
        }
    }
}

/// A tenant's tickets, newest activity first, with filters and keyset paging.
pub fn tickets(
    chrome: Chrome<'_>,
    tenant: &Tenant,
    items: &[TicketSummary],
    filters: &TicketFilters,
    previous: Option<&str>,
    next: Option<&str>,
) -> Markup {
    let base = format!("/admin/tenants/{}/tickets", tenant.tenant_id);
    let names = |all: &'static [Status]| all.iter().map(|s| s.as_str()).collect::<Vec<_>>();
    page(
        "Tickets",
        Some(chrome),
        html! {
            h1 { "Tickets of " a href=(format!("/admin/tenants/{}", tenant.tenant_id)) { (tenant.name) } }
            form.filters method="get" action=(base) {
                (choice("status", "Status", &filters.status, &names(Status::ALL)))
                (choice("channel", "Channel", &filters.channel,
                    &Channel::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()))
                (choice("priority", "Priority", &filters.priority,
                    &Priority::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>()))
                label for="tag" { "Tag" }
                input #tag type="text" name="tag" value=(filters.tag);
                button type="submit" data-testid="filter" { "Filter" }
            }
            table {
                thead { tr { th { "Subject" } th { "Status" } th { "Priority" } th { "Channel" }
                    th { "Tags" } th { "Last activity" } } }
                tbody {
                    @for ticket in items {
                        tr data-ticket-id=(ticket.ticket_id) {
                            td { a href=(format!("{base}/{}", ticket.ticket_id)) { (ticket.subject) } }
                            td { span class=(format!("badge {}", ticket.status.as_str())) { (ticket.status.as_str()) } }
                            td { (ticket.priority.as_str()) }
                            td { (ticket.channel.as_str()) }
                            td { (ticket.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) }
                            td { (time(Some(ticket.last_message_at))) }
                        }
                    }
                }
            }
            @if items.is_empty() { p.muted { "No ticket matches." } }
            nav.pager {
                @if let Some(link) = previous { a href=(link) rel="prev" data-testid="previous" { "← Previous" } }
                @if let Some(link) = next { a href=(link) rel="next" data-testid="next" { "Next →" } }
            }
        },
    )
}

fn role_class(role: Role) -> &'static str {
    match role {
        Role::Note => "message note",
        Role::User => "message user",
        _ => "message",
    }
}

fn action_rows(tenant: &Tenant, actions: &[Action], with_ticket: bool) -> Markup {
    html! {
        table {
            thead { tr { th { "Action" } @if with_ticket { th { "Ticket" } } th { "Status" }
                th { "HTTP" } th { "Duration" } th { "Error" } th { "Created" } } }
            tbody {
                @for action in actions {
                    @let result = action.result.as_ref();
                    tr data-action-id=(action.action_id) class=(format!("status-{}", action.status.as_str())) {
                        td { code { (action.action_id) } br; span.muted {
                            (action.payload["method"].as_str().unwrap_or("")) " "
                            (action.payload["url"].as_str().unwrap_or("")) } }
                        @if with_ticket {
                            td { a href=(format!("/admin/tenants/{}/tickets/{}", tenant.tenant_id, action.ticket_id)) {
                                code { (action.ticket_id) } } }
                        }
                        td { span class=(format!("badge {}", action.status.as_str())) { (action.status.as_str()) } }
                        td { @if let Some(status) = result.and_then(|r| r.http_status) { (status) } @else { "—" } }
                        td { @if let Some(r) = result { (r.duration_ms) " ms" } @else { "—" } }
                        td { @if let Some(error) = result.and_then(|r| r.error.as_ref()) {
                                strong { (error.code) } ": " (error.message) } }
                        td { (time(Some(action.created_at))) }
                    }
                }
            }
        }
    }
}

/// One ticket: contact, messages oldest first (internal notes marked), actions.
pub fn ticket(
    chrome: Chrome<'_>,
    tenant: &Tenant,
    view: &TicketView,
    actions: &[Action],
) -> Markup {
    let summary = &view.summary;
    page(
        &summary.subject,
        Some(chrome),
        html! {
            p.muted { a href=(format!("/admin/tenants/{}/tickets", tenant.tenant_id)) { "← " (tenant.name) " tickets" } }
            h1 data-testid="subject" { (summary.subject) }
            p { span class=(format!("badge {}", summary.status.as_str())) { (summary.status.as_str()) }
                " " (summary.priority.as_str()) " priority · " (summary.channel.as_str())
                " · opened " (time(Some(summary.created_at)))
                @if !summary.tags.is_empty() { " · tags: " (summary.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) } }
            section.card {
                h2 { "Contact" }
                @match &view.contact {
                    Some(contact) => dl {
                        dt { "Name" } dd { (contact.name.as_deref().unwrap_or("—")) }
                        dt { "Email" } dd { (contact.email.as_deref().unwrap_or("—")) }
                        dt { "Phone" } dd { (contact.phone.as_deref().unwrap_or("—")) }
                        dt { "External id" } dd { (contact.external_id.as_deref().unwrap_or("—")) }
                    },
                    None => p.muted { "No contact." },
                }
                @if let Some(contact) = &view.contact {
                    form.inline method="post" action=(format!("/admin/tenants/{}/contacts/erase", tenant.tenant_id)) {
                        (csrf_field(chrome.csrf))
                        input type="hidden" name="by" value="contact_id";
                        input type="hidden" name="value" value=(contact.contact_id);
                        button.danger type="submit" data-testid="erase-contact" { "Erase this contact…" }
                    }
                }
                form.inline method="post" action=(format!("/admin/tenants/{}/tickets/{}/delete", tenant.tenant_id, summary.ticket_id)) {
                    (csrf_field(chrome.csrf))
                    button.danger type="submit" data-testid="delete-ticket" { "Delete this ticket…" }
                }
            }
            h2 { "Messages" }
            @for message in &view.messages {
                article class=(role_class(message.role)) data-message-id=(message.message_id) {
                    header { strong { (message.role.as_str()) }
                        @if message.role == Role::Note { " " span.badge.note { "internal note" } }
                        " · " (message.channel.as_str()) " · " (time(Some(message.created_at))) }
                    pre.content { (message.content) }
                }
            }
            @if view.has_more_messages { p.muted { "Only the first 100 messages are shown." } }
            h2 { "Actions" }
            @if actions.is_empty() { p.muted { "No action." } } @else { (action_rows(tenant, actions, false)) }
        },
    )
}

/// A tenant's recent actions across tickets, failed ones marked.
pub fn actions(
    chrome: Chrome<'_>,
    tenant: &Tenant,
    items: &[Action],
    next: Option<&str>,
) -> Markup {
    let failed = items
        .iter()
        .filter(|a| a.status == ActionStatus::Failed)
        .count();
    page(
        "Actions",
        Some(chrome),
        html! {
            h1 { "Actions of " a href=(format!("/admin/tenants/{}", tenant.tenant_id)) { (tenant.name) } }
            p { (items.len()) " shown, " strong.failed { (failed) " failed" } }
            (action_rows(tenant, items, true))
            nav.pager { @if let Some(link) = next { a href=(link) rel="next" data-testid="next" { "Older →" } } }
        },
    )
}
