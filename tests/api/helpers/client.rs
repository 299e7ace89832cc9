//! `Client`: real HTTP to a server, with helpers named after the API they call.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use serde_json::Value;

/// The public API's base path.
pub const PUBLIC: &str = "/api/v1/public";

/// An HTTP answer as a test sees it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Asserts the error envelope: status, type, `code` equal to the status.
    pub fn assert_error(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["type"], kind, "body: {}", self.text);
        assert_eq!(body["error"]["code"], status, "body: {}", self.text);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{:?}",
            self.headers
        );
        assert!(self.header("x-request-id").is_some());
        body["error"].clone()
    }

    /// Asserts a 400 naming `param`.
    pub fn assert_invalid(&self, param: &str) {
        let error = self.assert_error(400, "invalid_request");
        assert_eq!(error["param"], param, "body: {}", self.text);
    }
}

/// A tiny blocking HTTP client over ureq (the project's one HTTP client).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
}

impl Client {
    pub fn new(base: impl Into<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Client {
            agent,
            base: base.into(),
        }
    }

    /// Any request: `headers` as pairs, `body` sent as given (no content type added).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let result = match body {
            Some(body) => self
                .agent
                .run(builder.body(body.as_bytes().to_vec()).unwrap()),
            None => self.agent.run(builder.body(()).unwrap()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut text = String::new();
        response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .reader()
            .read_to_string(&mut text)
            .unwrap();
        Reply {
            status,
            headers,
            text,
        }
    }
}

/// Calls as a key holder makes them. Paths are relative to the public API; `query` is
/// a query string without `?` (empty for none).
impl Client {
    pub fn get(&self, path: &str, key: &str) -> Reply {
        self.send("GET", path, &[("X-Api-Key", key)], None)
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn send_json(&self, method: &str, path: &str, key: &str, body: &Value) -> Reply {
        self.send(
            method,
            path,
            &[("X-Api-Key", key), ("Content-Type", "application/json")],
            Some(&body.to_string()),
        )
    }

    pub fn post(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.send_json("POST", path, key, body)
    }

    /// A POST with an `Idempotency-Key`.
    pub fn post_keyed(&self, path: &str, key: &str, idempotency_key: &str, body: &Value) -> Reply {
        self.send(
            "POST",
            path,
            &[
                ("X-Api-Key", key),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", idempotency_key),
            ],
            Some(&body.to_string()),
        )
    }

    pub fn list_tickets(&self, key: &str, query: &str) -> Reply {
        self.get(&with_query(&format!("{PUBLIC}/tickets"), query), key)
    }

    pub fn create_ticket(&self, key: &str, body: &Value) -> Reply {
        self.post(&format!("{PUBLIC}/tickets"), key, body)
    }

    /// `POST /tickets`, asserting 201; returns the ticket id.
    pub fn new_ticket(&self, key: &str, body: &Value) -> String {
        let reply = self.create_ticket(key, body);
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.json()["ticket"]["summary"]["ticket_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn get_ticket(&self, key: &str, ticket_id: &str) -> Reply {
        self.get(&format!("{PUBLIC}/tickets/{ticket_id}"), key)
    }

    pub fn update_ticket(&self, key: &str, ticket_id: &str, body: &Value) -> Reply {
        self.send_json("PATCH", &format!("{PUBLIC}/tickets/{ticket_id}"), key, body)
    }

    pub fn list_messages(&self, key: &str, ticket_id: &str, query: &str) -> Reply {
        self.get(&with_query(&self.messages_path(ticket_id), query), key)
    }

    pub fn add_message(&self, key: &str, ticket_id: &str, body: &Value) -> Reply {
        self.post(&self.messages_path(ticket_id), key, body)
    }

    /// `/tickets/{ticket_id}/actions`.
    pub fn actions_path(&self, ticket_id: &str) -> String {
        format!("{PUBLIC}/tickets/{ticket_id}/actions")
    }

    /// `/tickets/{ticket_id}/messages`.
    pub fn messages_path(&self, ticket_id: &str) -> String {
        format!("{PUBLIC}/tickets/{ticket_id}/messages")
    }

    pub fn run_action(&self, key: &str, ticket_id: &str, body: &Value) -> Reply {
        self.post(&self.actions_path(ticket_id), key, body)
    }

    pub fn list_actions(&self, key: &str, ticket_id: &str, query: &str) -> Reply {
        self.get(&with_query(&self.actions_path(ticket_id), query), key)
    }

    /// Every item of a list, following `next_page_token` from `path?query`.
    pub fn walk(&self, key: &str, path: &str, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = with_query(path, query);
        loop {
            let reply = self.get(&next, key);
            assert_eq!(reply.status, 200, "{}", reply.text);
            let page = reply.json();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_page_token"].as_str() {
                Some(token) => next = with_query(path, &format!("{query}&page_token={token}")),
                None => return items,
            }
        }
    }

    pub fn get_action(&self, key: &str, ticket_id: &str, action_id: &str) -> Reply {
        self.get(
            &format!("{PUBLIC}/tickets/{ticket_id}/actions/{action_id}"),
            key,
        )
    }

    /// A call to the admin API with `Authorization: Bearer <token>`.
    pub fn admin(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let text = body.map(Value::to_string);
        self.send(
            method,
            &format!("/api/v1/admin{path}"),
            &headers,
            text.as_deref(),
        )
    }
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}
