//! Who gets in and who runs the server (issue 11, items 1 and 2): the first account is the
//! admin; `--registration` with invitations; deactivation; password change and reset
//! links; session lists; display names; and who may call each admin endpoint, in the style
//! of the security review.

use std::time::Duration;

use serde_json::{Value, json};

use crate::on_every_setup;
use crate::support::{Client, PASSWORD, Setup, TestServer};

fn invite_only(config: &mut backend::Config) {
    config.registration = backend::config::RegistrationMode::Invite;
}

async fn register(server: &TestServer, name: &str, invite: Option<&str>) -> (u16, Value) {
    let mut body = json!({"username": name, "password": PASSWORD});
    if let Some(code) = invite {
        body["invite"] = json!(code);
    }
    server.request("POST", "/api/register", None, Some(&body)).await
}

/// The code of an invitation link's path (`/join/<code>`).
fn code(invitation: &Value) -> String {
    invitation["path"].as_str().unwrap().strip_prefix("/join/").unwrap().to_owned()
}

/// The first person is the admin; after them, only invitations let anyone in, each as
/// often as it says, until it expires or is revoked.
async fn invitations_let_people_in(setup: Setup) {
    let server = TestServer::start_on(setup, invite_only).await;
    let (_, info) = server.request("GET", "/api/server", None, None).await;
    assert_eq!(
        info,
        json!({"registration": "invite", "first_account": true, "max_upload_bytes": 25_000_000})
    );
    let (status, first) = register(&server, "ann", None).await;
    assert_eq!(status, 201, "{first}");
    let ann = first["token"].as_str().unwrap().to_owned();
    let (_, me) = server.request("GET", "/api/me", Some(&ann), None).await;
    assert_eq!(me["admin"], true, "the first account is the admin");
    let (_, info) = server.request("GET", "/api/server", None, None).await;
    assert_eq!(info["first_account"], false);

    let (status, body) = register(&server, "bob", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("this server signs people up by invitation: ask an admin for a link"))
    );
    let (status, invitation) = server
        .request(
            "POST",
            "/api/admin/invitations",
            Some(&ann),
            Some(&json!({"max_uses": 2, "expires_in_hours": 1})),
        )
        .await;
    assert_eq!(status, 201, "{invitation}");
    let first_code = code(&invitation);
    assert_eq!(register(&server, "bob", Some(&first_code)).await.0, 201);
    assert_eq!(register(&server, "carol", Some(&first_code)).await.0, 201);
    let (status, body) = register(&server, "dan", Some(&first_code)).await;
    assert_eq!(status, 403, "used up: {body}");
    assert!(body["error"].as_str().unwrap().contains("not valid"));
    let (_, me) =
        server.request("GET", "/api/me", Some(&server_token(&server, "bob").await), None).await;
    assert_eq!(me["admin"], false);
    // A revoked invitation, a made-up one, and bad ones.
    let (_, second) = server
        .request(
            "POST",
            "/api/admin/invitations",
            Some(&ann),
            Some(&json!({"max_uses": 5, "expires_in_hours": 1})),
        )
        .await;
    let id = second["id"].as_str().unwrap();
    assert_eq!(
        server.request("DELETE", &format!("/api/admin/invitations/{id}"), Some(&ann), None).await.0,
        204
    );
    assert_eq!(register(&server, "dan", Some(&code(&second))).await.0, 403, "revoked");
    assert_eq!(register(&server, "dan", Some("made-up-code")).await.0, 403);
    assert_eq!(register(&server, "dan", Some("")).await.0, 400);
    assert_eq!(register(&server, "dan", Some(&"x".repeat(129))).await.0, 400);
    let (_, list) = server.request("GET", "/api/admin/invitations", Some(&ann), None).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|invitation| invitation.get("path").is_none()), "codes are shown once");
    assert!(list.iter().any(|invitation| invitation["uses"] == 2 && invitation["max_uses"] == 2));
    for bad in [
        json!({"max_uses": 0, "expires_in_hours": 1}),
        json!({"max_uses": 1, "expires_in_hours": 721}),
        json!({}),
    ] {
        let (status, body) =
            server.request("POST", "/api/admin/invitations", Some(&ann), Some(&bad)).await;
        assert!(matches!(status, 400 | 422), "{bad}: {status} {body}");
    }
}
on_every_setup!(invitations_let_people_in);

/// Tokens are kept by name, for the people these tests sign up by hand.
async fn server_token(server: &TestServer, name: &str) -> String {
    let body = json!({"username": name, "password": PASSWORD});
    let (status, session) = server.request("POST", "/api/login", None, Some(&body)).await;
    assert_eq!(status, 200, "{session}");
    session["token"].as_str().unwrap().to_owned()
}

/// An invitation that has expired lets nobody in; a closed server takes nobody, with or
/// without one; an open one takes anyone.
#[tokio::test]
async fn expired_invitations_and_closed_servers_let_nobody_in() {
    let dir = tempfile::tempdir().unwrap();
    // An invitation made to have expired: written through a second handle on the store.
    let store = backend::store::sqlite::SqliteStore::open(dir.path(), Default::default()).unwrap();
    use backend::store::Store;
    store.create_user("ann", "hash", 1, &backend::store::Admission::OPEN).await.unwrap();
    let code = "an-expired-invitation-code";
    let link = backend::store::NewLink {
        kind: backend::store::LinkKind::Invite,
        id: "old".into(),
        code_hash: backend::auth::token_hash(code),
        user: None,
        created_by: "ann".into(),
        expires_at: 2,
        max_uses: 10,
    };
    store.create_link(link, 1).await.unwrap();
    drop(store);
    let data = dir.path().to_owned();
    let server = TestServer::start_with(move |config| {
        invite_only(config);
        config.data = data;
    })
    .await;
    let (status, body) = register(&server, "bob", Some(code)).await;
    assert_eq!(status, 403, "{body}");
    let closed = TestServer::start_with(|config| {
        config.registration = backend::config::RegistrationMode::Closed;
    })
    .await;
    assert_eq!(register(&closed, "ann", None).await.0, 201, "the first account is always made");
    let (status, body) = register(&closed, "bob", None).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("this server takes no new accounts")));
    assert_eq!(register(&closed, "bob", Some("any-code")).await.0, 403);
    let (_, info) = closed.request("GET", "/api/server", None, None).await;
    assert_eq!(info["registration"], "closed");
    drop(dir);
}

/// Deactivating someone ends their live sessions within a second and every token; they
/// cannot sign in; their messages stay; reactivated, they sign in again.
async fn deactivation_ends_every_session(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let ann = server.token("ann").await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("lobby", "l").await;
    bob.send("SEND\ndestination:/app/room.lobby\nreceipt:r\n\nbye\0").await;
    bob.drain_until_receipt("x").await;
    let old_token = server.token("bob").await;

    let started = std::time::Instant::now();
    let path = "/api/admin/users/bob/deactivate";
    assert_eq!(server.request("POST", path, Some(&ann), None).await.0, 204);
    bob.expect_error_and_close("signed out: this session has ended").await;
    assert!(started.elapsed() < Duration::from_secs(2), "closed within a second or so");
    assert_eq!(server.request("GET", "/api/rooms", Some(&old_token), None).await.0, 401);
    let mut again = Client::open(&server).await;
    again
        .send(&format!("CONNECT\naccept-version:1.2\nlogin:bob\npasscode:{old_token}\n\n\0"))
        .await;
    assert_eq!(again.expect_error().await, "authentication failed");
    let credentials = json!({"username": "bob", "password": PASSWORD});
    let (status, body) = server.request("POST", "/api/login", None, Some(&credentials)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("this account is deactivated: ask an admin to reactivate it"))
    );
    let (_, page) = server.request("GET", "/api/rooms/lobby/messages", Some(&ann), None).await;
    assert!(page.to_string().contains("bye"), "messages stay");
    let (_, people) = server.request("GET", "/api/people", Some(&ann), None).await;
    assert!(people.as_array().unwrap().iter().all(|p| p["name"] != "bob"));
    let (_, accounts) = server.request("GET", "/api/admin/users", Some(&ann), None).await;
    let bob_account =
        accounts.as_array().unwrap().iter().find(|a| a["name"] == "bob").unwrap().clone();
    assert_eq!(bob_account["deactivated"], true);
    // A DM to a deactivated account goes nowhere.
    let (status, _) = server
        .request("POST", "/api/dms/bob/messages", Some(&ann), Some(&json!({"text": "hi"})))
        .await;
    assert_eq!(status, 404);

    assert_eq!(
        server.request("POST", "/api/admin/users/bob/reactivate", Some(&ann), None).await.0,
        204
    );
    assert_eq!(server.request("POST", "/api/login", None, Some(&credentials)).await.0, 200);
}
on_every_setup!(deactivation_ends_every_session);

/// A reset link sets the password once and ends every session; changing one's own
/// password ends the other sessions only.
async fn passwords_change_and_reset(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let ann = server.token("ann").await;
    let bob = server.token("bob").await;
    let second = server_token(&server, "bob").await;
    let (status, link) =
        server.request("POST", "/api/admin/users/bob/reset-link", Some(&ann), None).await;
    assert_eq!(status, 201, "{link}");
    let code = link["path"].as_str().unwrap().strip_prefix("/reset/").unwrap().to_owned();
    let reset = json!({"code": code, "password": "a brand new secret"});
    let (status, session) = server.request("POST", "/api/password/reset", None, Some(&reset)).await;
    assert_eq!((status, session["username"].as_str()), (200, Some("bob")), "{session}");
    assert_eq!(server.request("GET", "/api/me", Some(&bob), None).await.0, 401, "old sessions end");
    assert_eq!(server.request("GET", "/api/me", Some(&second), None).await.0, 401);
    let (status, _) = server.request("POST", "/api/password/reset", None, Some(&reset)).await;
    assert_eq!(status, 403, "a link works once");
    let fresh = session["token"].as_str().unwrap().to_owned();
    let other = {
        let body = json!({"username": "bob", "password": "a brand new secret"});
        server.request("POST", "/api/login", None, Some(&body)).await.1["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Changing: the current password is needed; the session that changes it goes on.
    let wrong = json!({"current": "not it at all", "new": "another secret"});
    assert_eq!(server.request("POST", "/api/password", Some(&fresh), Some(&wrong)).await.0, 403);
    let short = json!({"current": "a brand new secret", "new": "short"});
    assert_eq!(server.request("POST", "/api/password", Some(&fresh), Some(&short)).await.0, 400);
    let right = json!({"current": "a brand new secret", "new": "another secret"});
    assert_eq!(server.request("POST", "/api/password", Some(&fresh), Some(&right)).await.0, 204);
    assert_eq!(server.request("GET", "/api/me", Some(&fresh), None).await.0, 200);
    assert_eq!(server.request("GET", "/api/me", Some(&other), None).await.0, 401);
    // Reset links: not for bots, nobody, or by a non-admin.
    assert_eq!(
        server.request("POST", "/api/admin/users/nobody/reset-link", Some(&ann), None).await.0,
        404
    );
    assert_eq!(
        server.request("POST", "/api/admin/users/ann/reset-link", Some(&fresh), None).await.0,
        403
    );
    let bad = json!({"code": "", "password": "whatever it is"});
    assert_eq!(server.request("POST", "/api/password/reset", None, Some(&bad)).await.0, 400);
}
on_every_setup!(passwords_change_and_reset);

/// A person sees their sessions with the client that made each, and ends any of them.
#[tokio::test]
async fn sessions_are_listed_and_ended() {
    let server = TestServer::start().await;
    let first = server.token("ann").await;
    let body = json!({"username": "ann", "password": PASSWORD}).to_string();
    let agent = [("User-Agent", "Firefox on a laptop")];
    let (_, _, session) = server
        .request_with_headers("POST", "/api/login", None, Some(&body), "application/json", &agent)
        .await;
    let laptop = session["token"].as_str().unwrap().to_owned();
    let (_, sessions) = server.request("GET", "/api/sessions", Some(&first), None).await;
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let on_laptop = sessions.iter().find(|s| s["device"] == "Firefox on a laptop").unwrap();
    let id = on_laptop["id"].as_str().unwrap();
    let mut live = Client::open(&server).await;
    live.send(&format!("CONNECT\naccept-version:1.2\nlogin:ann\npasscode:{laptop}\n\n\0")).await;
    assert_eq!(live.recv().await.command.as_str(), "CONNECTED");
    assert_eq!(
        server.request("DELETE", &format!("/api/sessions/{id}"), Some(&first), None).await.0,
        204
    );
    live.expect_error_and_close("signed out: this session has ended").await;
    assert_eq!(server.request("GET", "/api/me", Some(&laptop), None).await.0, 401);
    // Someone else's session, or no such session, or not an id.
    let bob = server.token("bob").await;
    let (_, bobs) = server.request("GET", "/api/sessions", Some(&bob), None).await;
    let bob_id = bobs[0]["id"].as_str().unwrap();
    assert_eq!(
        server.request("DELETE", &format!("/api/sessions/{bob_id}"), Some(&first), None).await.0,
        404
    );
    assert_eq!(
        server.request("DELETE", "/api/sessions/0123456789abcdef", Some(&first), None).await.0,
        404
    );
    assert_eq!(server.request("DELETE", "/api/sessions/nope", Some(&first), None).await.0, 400);
    assert_eq!(server.request("GET", "/api/sessions", None, None).await.0, 401);
}

/// Display names: set, shown to others, trimmed, removed, and checked.
#[tokio::test]
async fn display_names_are_set_and_checked() {
    let server = TestServer::start().await;
    let ann = server.token("ann").await;
    let (status, me) = server
        .request("PUT", "/api/me", Some(&ann), Some(&json!({"display_name": "  Ann Lee "})))
        .await;
    assert_eq!((status, me["display_name"].as_str()), (200, Some("Ann Lee")));
    let bob = server.token("bob").await;
    let (_, people) = server.request("GET", "/api/people", Some(&bob), None).await;
    assert!(
        people
            .as_array()
            .unwrap()
            .contains(&json!({"name": "ann", "display_name": "Ann Lee", "bot": false}))
    );
    for bad in ["x".repeat(65), "two\nlines".into(), "\u{202E}evil".into()] {
        let (status, _) =
            server.request("PUT", "/api/me", Some(&ann), Some(&json!({"display_name": bad}))).await;
        assert_eq!(status, 400);
    }
    let (_, me) =
        server.request("PUT", "/api/me", Some(&ann), Some(&json!({"display_name": null}))).await;
    assert!(me.get("display_name").is_none());
    assert_eq!(
        server.request("PUT", "/api/me", None, Some(&json!({"display_name": "x"}))).await.0,
        401
    );
}

/// Every admin endpoint: 401 signed out, 403 for a person who is not an admin; admins
/// cannot lock the server out of its last admin.
#[tokio::test]
async fn admin_endpoints_are_for_admins_only() {
    let server = TestServer::start().await;
    let ann = server.token("ann").await;
    let bob = server.token("bob").await;
    let calls = [
        ("GET", "/api/admin/users"),
        ("POST", "/api/admin/users/ann/demote"),
        ("POST", "/api/admin/users/ann/deactivate"),
        ("POST", "/api/admin/users/bob/promote"),
        ("POST", "/api/admin/users/ann/reset-link"),
        ("GET", "/api/admin/invitations"),
        ("POST", "/api/admin/invitations"),
        ("DELETE", "/api/admin/invitations/abc"),
        ("GET", "/api/admin/rooms"),
        ("GET", "/api/admin/stats"),
    ];
    for (method, path) in calls {
        let body = (method == "POST").then(|| json!({"max_uses": 1, "expires_in_hours": 1}));
        assert_eq!(server.request(method, path, None, body.as_ref()).await.0, 401, "{path}");
        let (status, answer) = server.request(method, path, Some(&bob), body.as_ref()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some("only server admins may do that")),
            "{path}"
        );
    }
    // The last admin stays; a second one may be made and unmade.
    let (status, body) =
        server.request("POST", "/api/admin/users/ann/demote", Some(&ann), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        server.request("POST", "/api/admin/users/ann/deactivate", Some(&ann), None).await.0,
        403
    );
    assert_eq!(
        server.request("POST", "/api/admin/users/bob/promote", Some(&ann), None).await.0,
        204
    );
    assert_eq!(server.request("GET", "/api/admin/stats", Some(&bob), None).await.0, 200);
    assert_eq!(
        server.request("POST", "/api/admin/users/bob/demote", Some(&ann), None).await.0,
        204
    );
    assert_eq!(
        server.request("POST", "/api/admin/users/bob/explode", Some(&ann), None).await.0,
        404
    );
    assert_eq!(
        server.request("POST", "/api/admin/users/Bad%20Name/promote", Some(&ann), None).await.0,
        400
    );
    assert_eq!(
        server.request("POST", "/api/admin/users/nobody/promote", Some(&ann), None).await.0,
        404
    );
    // Private rooms show in the admin's list of rooms, with nothing of their contents.
    let (_, _) = server
        .request(
            "POST",
            "/api/rooms",
            Some(&bob),
            Some(&json!({"name": "secret", "private": true})),
        )
        .await;
    let (_, rooms) = server.request("GET", "/api/admin/rooms", Some(&ann), None).await;
    assert!(
        rooms.as_array().unwrap().iter().any(|r| r["name"] == "secret" && r["private"] == true)
    );
    assert_eq!(server.request("GET", "/api/rooms/secret/messages", Some(&ann), None).await.0, 403);
    let (_, stats) = server.request("GET", "/api/admin/stats", Some(&ann), None).await;
    assert_eq!((stats["accounts"].as_u64(), stats["rooms"].as_u64()), (Some(2), Some(2)));
}

/// Reset codes cannot be guessed at speed: the endpoint shares sign-up's limit per client
/// address, and says when to try again.
#[tokio::test]
async fn reset_attempts_are_limited_per_address() {
    let server = TestServer::start().await;
    let guess = json!({"code": "a-guessed-code", "password": "a long new password"});
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let body = guess.to_string();
        let (status, head, _) = server
            .request_with_headers(
                "POST",
                "/api/password/reset",
                None,
                Some(&body),
                "application/json",
                &[],
            )
            .await;
        if status == 429 {
            assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
        }
        statuses.push(status);
    }
    assert!(statuses[..20].iter().all(|&status| status == 403), "{statuses:?}");
    assert_eq!(statuses[20..], [429; 5], "{statuses:?}");
}
