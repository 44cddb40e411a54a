//! `/api/openapi.json` against the real routes: every documented operation is routed (not
//! the API's 404, not 405), every route in `http/mod.rs` is documented, and real answers
//! carry the fields their schemas require.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::TestServer;

/// Every `(METHOD, path)` the router serves, read from the source that builds it: routes
/// inside the `/api` nest get its prefix. Pages, WebSockets and `/metrics` (on its own
/// listener) are not part of the HTTP API.
fn routed() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/http/mod.rs");
    let api_start = source.find("let api = Router::new()").unwrap();
    let api_end = api_start + source[api_start..].find(".fallback(api::not_found);").unwrap();
    let mut routes = BTreeSet::new();
    let mut rest = source;
    let mut offset = 0;
    while let Some(at) = rest.find(".route(") {
        let start = offset + at;
        let chunk = &source[start + ".route(".len()..];
        offset = start + ".route(".len();
        rest = &source[offset..];
        // `.route(json_path, ...)`: the original design's WebSocket, not the HTTP API.
        if !chunk.trim_start().starts_with('"') {
            continue;
        }
        let path = chunk.split('"').nth(1).unwrap().to_owned();
        let end = [".route(", ".fallback", ".nest(", ".layer(", ".with_state("]
            .iter()
            .filter_map(|next| chunk.find(next))
            .min()
            .unwrap_or(chunk.len());
        let handlers = &chunk[..end];
        let prefix = if (api_start..api_end).contains(&start) { "/api" } else { "" };
        for method in ["get", "post", "delete", "put", "patch"] {
            let called = handlers.match_indices(&format!("{method}(")).any(|(index, _)| {
                index == 0
                    || !handlers.as_bytes()[index - 1].is_ascii_alphanumeric()
                        && handlers.as_bytes()[index - 1] != b'_'
            });
            if called {
                routes.insert((method.to_uppercase(), format!("{prefix}{path}")));
            }
        }
    }
    let not_api = ["/", "/index.html", "/ws", "/metrics"];
    routes.retain(|(_, path)| !not_api.contains(&path.as_str()));
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

/// The schema a `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks that `value` has what `schema` requires, recursively through arrays and objects.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    match schema["type"].as_str() {
        Some("array") => {
            for (index, item) in value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array: {value}"))
                .iter()
                .enumerate()
            {
                conforms(doc, &schema["items"], item, &format!("{at}[{index}]"));
            }
        }
        Some("object") => {
            let object =
                value.as_object().unwrap_or_else(|| panic!("{at}: not an object: {value}"));
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap();
                assert!(
                    object.contains_key(name),
                    "{at}: {name} is required by the description: {value}"
                );
            }
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                if let Some(field) = object.get(name) {
                    conforms(doc, property, field, &format!("{at}.{name}"));
                }
            }
            for name in object.keys() {
                assert!(
                    schema["properties"].get(name).is_some(),
                    "{at}: {name} is answered but not described: {value}"
                );
            }
        }
        Some("integer") => assert!(value.is_i64() || value.is_u64(), "{at}: {value}"),
        Some("string") => assert!(value.is_string(), "{at}: {value}"),
        Some("boolean") => assert!(value.is_boolean(), "{at}: {value}"),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_description_matches_the_routes_both_ways() {
    let server = TestServer::start().await;
    let (status, doc) = server.request("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(documented(&doc), routed(), "documented operations (left) and routes (right)");

    // Each documented operation reaches a handler: anything but the API's own 404 and 405.
    let token = server.token("ann").await;
    for (method, path) in documented(&doc) {
        let concrete = path
            .replace("{room}", "lobby")
            .replace("{peer}", "ann")
            .replace("{id}", "no-such-webhook")
            .replace("{secret}", "no-such-secret")
            .replace("{name}", "ann")
            .replace("{action}", "promote");
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        let (status, answer) =
            server.request(&method, &concrete, Some(&token), body.as_ref()).await;
        assert_ne!(status, 405, "{method} {path}: {answer}");
        assert!(
            !(status == 404 && answer["error"] == "no such API endpoint"),
            "{method} {path} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn real_answers_match_their_schemas() {
    let server = TestServer::start().await;
    let (_, doc) = server.request("GET", "/api/openapi.json", None, None).await;
    server.create_room("ann", "dev").await;
    let ann = server.token("ann").await;
    let bob = server.token("bob").await;
    let say = json!({"text": "hello"});
    let mut answers = Vec::new();
    answers.push((
        "/api/rooms/{room}/messages",
        "post",
        "201",
        server.request("POST", "/api/rooms/dev/messages", Some(&ann), Some(&say)).await,
    ));
    answers.push((
        "/api/dms/{peer}/messages",
        "post",
        "201",
        server.request("POST", "/api/dms/bob/messages", Some(&ann), Some(&say)).await,
    ));
    answers.push((
        "/api/rooms",
        "get",
        "200",
        server.request("GET", "/api/rooms", Some(&ann), None).await,
    ));
    answers.push((
        "/api/rooms/{room}/messages",
        "get",
        "200",
        server.request("GET", "/api/rooms/dev/messages", Some(&ann), None).await,
    ));
    answers.push((
        "/api/dms",
        "get",
        "200",
        server.request("GET", "/api/dms", Some(&bob), None).await,
    ));
    answers.push((
        "/api/dms/{peer}/messages",
        "get",
        "200",
        server.request("GET", "/api/dms/ann/messages", Some(&bob), None).await,
    ));
    answers.push((
        "/api/inbox",
        "get",
        "200",
        server.request("GET", "/api/inbox?after=0", Some(&bob), None).await,
    ));
    answers.push((
        "/api/rooms/{room}/webhooks",
        "post",
        "201",
        server
            .request(
                "POST",
                "/api/rooms/dev/webhooks",
                Some(&ann),
                Some(&json!({"name": "ci-bot"})),
            )
            .await,
    ));
    answers.push((
        "/api/rooms/{room}/webhooks",
        "get",
        "200",
        server.request("GET", "/api/rooms/dev/webhooks", Some(&ann), None).await,
    ));
    answers.push(("/healthz", "get", "200", server.request("GET", "/healthz", None, None).await));
    answers.push((
        "/api/rooms",
        "post",
        "201",
        server.request("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "ops"}))).await,
    ));
    answers.push((
        "/api/rooms/{room}/join",
        "post",
        "404",
        server.request("POST", "/api/rooms/nowhere/join", Some(&ann), None).await,
    ));
    answers.push((
        "/api/logout",
        "post",
        "401",
        server.request("POST", "/api/logout", None, None).await,
    ));
    // Accounts and administration (ann, the first account, is the admin).
    for (path, token) in [
        ("/api/server", None),
        ("/api/me", Some(&ann)),
        ("/api/people", Some(&ann)),
        ("/api/sessions", Some(&ann)),
        ("/api/admin/users", Some(&ann)),
        ("/api/admin/rooms", Some(&ann)),
        ("/api/admin/stats", Some(&ann)),
        ("/api/rooms/{room}/members", Some(&ann)),
    ] {
        let concrete = path.replace("{room}", "dev");
        answers.push((
            path,
            "get",
            "200",
            server.request("GET", &concrete, token.map(String::as_str), None).await,
        ));
    }
    let invite = json!({"max_uses": 2, "expires_in_hours": 24});
    answers.push((
        "/api/admin/invitations",
        "post",
        "201",
        server.request("POST", "/api/admin/invitations", Some(&ann), Some(&invite)).await,
    ));
    answers.push((
        "/api/admin/invitations",
        "get",
        "200",
        server.request("GET", "/api/admin/invitations", Some(&ann), None).await,
    ));
    answers.push((
        "/api/admin/users/{name}/reset-link",
        "post",
        "201",
        server.request("POST", "/api/admin/users/bob/reset-link", Some(&ann), None).await,
    ));
    answers.push((
        "/api/rooms/{room}/changes",
        "post",
        "201",
        server
            .request(
                "POST",
                "/api/rooms/dev/changes",
                Some(&ann),
                Some(&json!({"type": "topic", "topic": "Builds"})),
            )
            .await,
    ));
    answers.push((
        "/api/me",
        "put",
        "200",
        server
            .request("PUT", "/api/me", Some(&ann), Some(&json!({"display_name": "Ann Lee"})))
            .await,
    ));
    answers.push((
        "/api/admin/users",
        "get",
        "403",
        server.request("GET", "/api/admin/users", Some(&bob), None).await,
    ));
    for (path, method, status, (got, body)) in answers {
        assert_eq!(got.to_string(), status, "{method} {path}: {body}");
        let described = &doc["paths"][path][method]["responses"][status];
        assert!(described.is_object(), "{method} {path} does not describe {status}");
        let schema = &described["content"]["application/json"]["schema"];
        conforms(&doc, schema, &body, &format!("{method} {path} {status}"));
    }
    server.stop().await;
}
