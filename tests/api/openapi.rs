//! The OpenAPI document and the router agree: every documented path and method is
//! routed, every public route is documented, and other methods answer 405.

use std::collections::BTreeSet;

use serde_json::Value;
use threada::routes::PUBLIC_API;

use crate::helpers::{ALL_SCOPES, TestApp};

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn document() -> Value {
    serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap()
}

/// (path, METHOD) pairs the document declares.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                pairs.insert((path.clone(), method.to_ascii_uppercase()));
            }
        }
    }
    pairs
}

fn registered() -> BTreeSet<(String, String)> {
    PUBLIC_API
        .iter()
        .flat_map(|(path, allow)| {
            allow
                .split(", ")
                .map(move |method| (path.to_string(), method.to_string()))
        })
        .collect()
}

#[test]
fn the_server_serves_the_document_from_the_repository() {
    let app = TestApp::spawn();
    let reply = app.send("GET", "/api/v1/public/openapi.json", &[], None);
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(reply.json(), document());
    assert_eq!(reply.json()["openapi"], "3.1.0");
}

#[test]
fn every_documented_operation_is_a_public_route_and_back() {
    assert_eq!(documented(&document()), registered());
}

#[test]
fn every_route_answers_its_methods_and_405_for_the_others() {
    let app = TestApp::spawn();
    let tenant = app.tenant(ALL_SCOPES);
    let id = "tkt_0000000000000000000000000000";
    for (path, allow) in PUBLIC_API {
        let concrete = path
            .replace("{ticket_id}", id)
            .replace("{action_id}", "act_0000000000000000000000000000");
        let allow = threada::routes::allow_header(allow);
        for method in METHODS {
            let reply = app.send(method, &concrete, &[("X-Api-Key", &tenant.key)], None);
            if allow.split(", ").any(|m| m == method) {
                assert_ne!(reply.status, 405, "{method} {path}");
                let no_route = reply.status == 404 && reply.text.contains("no such route");
                assert!(!no_route, "{method} {path} is not routed");
            } else {
                assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text);
                assert_eq!(
                    reply.header("allow"),
                    Some(allow.as_str()),
                    "{method} {path}"
                );
            }
        }
    }
}

#[test]
fn the_document_carries_the_seed_examples() {
    let doc = document();
    let tickets = &doc["paths"]["/api/v1/public/tickets"];
    let create =
        &tickets["post"]["requestBody"]["content"]["application/json"]["examples"]["seed"]["value"];
    assert_eq!(
        create["initial_message"]["external_message_id"],
        "EXT_MSG_ID"
    );
    let list = &tickets["get"]["responses"]["200"]["content"]["application/json"]["examples"]["seed"]
        ["value"];
    assert_eq!(
        list["items"][0]["tags"],
        serde_json::json!(["vip", "returns"])
    );
    let action = &doc["paths"]["/api/v1/public/tickets/{ticket_id}/actions"]["post"]["requestBody"]
        ["content"]["application/json"]["examples"]["seed"]["value"];
    assert_eq!(action["payload"]["url"], "/hooks/zapier");
    assert_eq!(
        doc["components"]["securitySchemes"]["ApiKey"]["name"],
        "X-Api-Key"
    );
}
