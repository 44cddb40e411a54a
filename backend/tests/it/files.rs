//! Files and pictures (issue 13): uploads sent with messages, served to whoever may read
//! the conversation and to nobody else (a non-member of a private room, a third person of
//! a DM, anyone signed out, anyone once the message is deleted); images upright, without
//! their metadata, with a thumbnail; anything else a download; bad uploads refused with a
//! clear error and the server still there; avatars.

use image::{DynamicImage, ImageFormat};
use serde_json::{Value, json};

use crate::on_every_setup;
use crate::support::{Client, Setup, TestServer, eventually};

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    DynamicImage::new_rgb8(width, height).write_to(&mut bytes, ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A JPEG `width` × `height` as stored, with EXIF saying "turn 90° clockwise to show"
/// and a camera's text beside it.
fn sideways_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    DynamicImage::new_rgb8(width, height).write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
    let jpeg = bytes.into_inner();
    // TIFF header (little-endian), one IFD entry: Orientation (0x0112), SHORT, 1, value 6;
    // then the make of the camera as trailing text.
    let mut exif =
        b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
    exif.extend_from_slice(b"SecretCam GPS 52.37N 4.89E");
    let length = u16::try_from(exif.len() + 2).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

/// Uploads `bytes` as `user`, named `name`; the status and the answer.
async fn upload(server: &TestServer, user: &str, name: &str, bytes: &[u8]) -> (u16, Value) {
    let token = server.token(user).await;
    let path = format!("/api/files?name={}", encode(name));
    let (status, _, body) = server.binary("POST", &path, Some(&token), bytes).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Uploads and expects it taken; the file's id.
async fn uploaded(server: &TestServer, user: &str, name: &str, bytes: &[u8]) -> (String, Value) {
    let (status, file) = upload(server, user, name, bytes).await;
    assert_eq!(status, 201, "{name}: {file}");
    (file["id"].as_str().unwrap().to_owned(), file)
}

/// GETs a path as `user` (or signed out): status, head, bytes.
async fn fetch(server: &TestServer, user: Option<&str>, path: &str) -> (u16, String, Vec<u8>) {
    let token = match user {
        Some(user) => Some(server.token(user).await),
        None => None,
    };
    server.binary("GET", path, token.as_deref(), b"").await
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

async fn post(server: &TestServer, user: &str, path: &str, body: Value) -> (u16, Value) {
    let token = server.token(user).await;
    server.request("POST", path, Some(&token), Some(&body)).await
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

async fn files_reach_only_their_readers(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let ann = server.token("ann").await;
    let (status, _) = server
        .request("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "board", "private": true})))
        .await;
    assert_eq!(status, 201);
    server.token("bob").await;

    // An image: upright as its EXIF says, its metadata gone, a thumbnail made.
    let (photo, file) = uploaded(&server, "ann", "holiday.jpg", &sideways_jpeg(40, 20)).await;
    assert_eq!(file["image"], json!([20, 40]), "turned upright: {file}");
    assert_eq!(file["mime"], "image/jpeg");
    // Unsent, it is its uploader's alone.
    assert_eq!(fetch(&server, Some("bob"), &format!("/api/files/{photo}")).await.0, 404);
    let (status, _, bytes) = fetch(&server, Some("ann"), &format!("/api/files/{photo}")).await;
    assert_eq!(status, 200);
    assert!(!bytes.windows(9).any(|w| w == b"SecretCam"), "the EXIF text is stripped");
    assert!(!bytes.windows(4).any(|w| w == b"Exif"), "no EXIF segment is left");
    let shown = decode(&bytes);
    assert_eq!((shown.width(), shown.height()), (20, 40));

    // Someone else cannot send it; its owner sends it to the private room.
    let (status, refused) =
        post(&server, "bob", "/api/dms/ann/messages", json!({"text": "mine", "files": [photo]}))
            .await;
    assert_eq!(status, 404, "{refused}");
    let (status, message) =
        post(&server, "ann", "/api/rooms/board/messages", json!({"text": "", "files": [photo]}))
            .await;
    assert_eq!(status, 201, "a message may be only files: {message}");
    assert_eq!(message["files"][0]["id"], photo.as_str());
    assert_eq!(message["files"][0]["name"], "holiday.jpg");
    // Sent once, it cannot be sent again.
    let (status, _) = post(
        &server,
        "ann",
        "/api/rooms/board/messages",
        json!({"text": "again", "files": [photo]}),
    )
    .await;
    assert_eq!(status, 404);

    // The room's readers get it, inline, with its thumbnail; nobody else does.
    let (status, head, _) = fetch(&server, Some("ann"), &format!("/api/files/{photo}")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("image/jpeg"));
    assert!(header(&head, "content-disposition").unwrap().starts_with("inline;"), "{head}");
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    let (status, head, thumb) =
        fetch(&server, Some("ann"), &format!("/api/files/{photo}/thumb")).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some("image/jpeg"));
    assert_eq!(decode(&thumb).height(), 40, "a small image is its own thumbnail's size");
    for path in [format!("/api/files/{photo}"), format!("/api/files/{photo}/thumb")] {
        assert_eq!(fetch(&server, Some("bob"), &path).await.0, 404, "a non-member: {path}");
        assert_eq!(fetch(&server, None, &path).await.0, 401, "signed out: {path}");
    }
    let (_, page) = server.request("GET", "/api/rooms/board/messages", Some(&ann), None).await;
    let listed = page["messages"].as_array().unwrap().iter().find(|m| m["seq"] == message["seq"]);
    assert_eq!(listed.unwrap()["files"][0]["id"], photo.as_str(), "history carries the files");

    // A PDF in a DM: the two of them, as a download; a third person gets nothing.
    let (pdf, file) = uploaded(&server, "ann", "plan.pdf", b"%PDF-1.7\n1 0 obj\n").await;
    assert_eq!(file["mime"], "application/pdf");
    assert!(file.get("image").is_none());
    let (status, dm) =
        post(&server, "ann", "/api/dms/bob/messages", json!({"text": "the plan", "files": [pdf]}))
            .await;
    assert_eq!(status, 201, "{dm}");
    let (status, head, bytes) = fetch(&server, Some("bob"), &format!("/api/files/{pdf}")).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, b"%PDF-1.7\n1 0 obj\n");
    assert_eq!(
        header(&head, "content-disposition"),
        Some("attachment; filename=\"plan.pdf\"; filename*=UTF-8''plan.pdf")
    );
    assert_eq!(fetch(&server, Some("bob"), &format!("/api/files/{pdf}/thumb")).await.0, 404);
    assert_eq!(fetch(&server, Some("carol"), &format!("/api/files/{pdf}")).await.0, 404);

    // Deleted by its sender (over STOMP: a DM has no HTTP change), it is gone for both.
    let mut client = Client::connect(&server, "ann").await;
    let delete = json!({"type": "delete", "seq": dm["seq"]});
    client
        .send(&format!(
            "SEND\ndestination:/app/dm.bob\ncontent-type:application/json\nreceipt:d\n\n{delete}\0"
        ))
        .await;
    client.expect_receipt("d").await;
    for user in ["ann", "bob"] {
        let path = format!("/api/files/{pdf}");
        assert_eq!(fetch(&server, Some(user), &path).await.0, 404, "{user} after the deletion");
    }

    // A banned person loses the files of the room with the room.
    let (status, _) =
        server.request("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "dev"}))).await;
    assert_eq!(status, 201);
    let bob = server.token("bob").await;
    let (status, _) = server.request("POST", "/api/rooms/dev/join", Some(&bob), None).await;
    assert_eq!(status, 204);
    let (notes, _) = uploaded(&server, "ann", "notes.txt", b"standup notes").await;
    let (status, _) =
        post(&server, "ann", "/api/rooms/dev/messages", json!({"text": "notes", "files": [notes]}))
            .await;
    assert_eq!(status, 201);
    let path = format!("/api/files/{notes}");
    assert_eq!(fetch(&server, Some("bob"), &path).await.0, 200, "a member reads it");
    let (status, _) =
        post(&server, "ann", "/api/rooms/dev/changes", json!({"type": "banned", "user": "bob"}))
            .await;
    assert_eq!(status, 201);
    assert_eq!(fetch(&server, Some("bob"), &path).await.0, 404, "banned, he does not");

    // HTML and SVG are text to download, never a page.
    let (page_id, file) =
        uploaded(&server, "ann", "page.html", b"<html><script>alert(1)</script></html>").await;
    assert_eq!(file["mime"], "text/plain");
    let (status, _) =
        post(&server, "ann", "/api/dms/bob/messages", json!({"text": "see", "files": [page_id]}))
            .await;
    assert_eq!(status, 201);
    let (_, head, _) = fetch(&server, Some("bob"), &format!("/api/files/{page_id}")).await;
    assert!(header(&head, "content-disposition").unwrap().starts_with("attachment;"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("text/plain"));
    assert_eq!(header(&head, "content-security-policy"), Some("default-src 'none'; sandbox"));

    // Deleting the message deletes its files, for everyone.
    let (status, _) = post(
        &server,
        "ann",
        "/api/rooms/board/changes",
        json!({"type": "deleted", "seq": message["seq"]}),
    )
    .await;
    assert_eq!(status, 201);
    for path in [format!("/api/files/{photo}"), format!("/api/files/{photo}/thumb")] {
        assert_eq!(fetch(&server, Some("ann"), &path).await.0, 404, "deleted: {path}");
    }
    let (_, page) = server.request("GET", "/api/rooms/board/messages", Some(&ann), None).await;
    let listed = page["messages"].as_array().unwrap().iter().find(|m| m["seq"] == message["seq"]);
    assert!(listed.unwrap().get("files").is_none(), "a deleted message lists no files");
}
on_every_setup!(files_reach_only_their_readers);

async fn bad_uploads_get_clear_errors(setup: Setup) {
    let server = TestServer::start_on(setup, |config| config.max_upload_mb = 1).await;
    let cases: [(&str, Vec<u8>, u16, &str); 7] = [
        ("empty.txt", Vec::new(), 400, "empty"),
        ("big.bin", vec![7; 1_000_001], 413, "larger than 1.0 MB"),
        ("../../etc/passwd", b"x".to_vec(), 400, "cannot be a path"),
        ("a\\b.txt", b"x".to_vec(), 400, "cannot be a path"),
        ("bell\u{7}.txt", b"x".to_vec(), 400, "control"),
        (
            "cat.png",
            b"<html><script>alert(1)</script>".to_vec(),
            400,
            "is not the image its name says",
        ),
        ("bomb.png", bomb(), 413, "too large"),
    ];
    for (name, bytes, status, says) in cases {
        let (got, body) = upload(&server, "ann", name, &bytes).await;
        assert_eq!(got, status, "{name:?}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{name:?}: {error:?} should say {says:?}");
    }
    let token = server.token("ann").await;
    let (status, _, body) = server.binary("POST", "/api/files", Some(&token), b"x").await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = server.binary("POST", "/api/files?name=a.txt", None, b"x").await;
    assert_eq!(status, 401);
    // Not an id: 400; a path climbing out: no route at all.
    for (bad, expected) in
        [("nothex", 400), ("0123456789abcdef0123456789ABCDEF", 400), ("../../confab.db", 404)]
    {
        let (status, _, _) = fetch(&server, Some("ann"), &format!("/api/files/{bad}")).await;
        assert_eq!(status, expected, "{bad}");
    }
    let (status, _, _) =
        fetch(&server, Some("ann"), "/api/files/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, 404);
    let (status, message) = post(
        &server,
        "ann",
        "/api/rooms/lobby/messages",
        json!({"text": "x", "files": ["0123456789abcdef0123456789abcdef"]}),
    )
    .await;
    assert_eq!(status, 404, "{message}");
    let (status, message) =
        post(&server, "ann", "/api/rooms/lobby/messages", json!({"text": "x", "files": ["../x"]}))
            .await;
    assert_eq!(status, 400, "{message}");
    // Still up, still taking files.
    uploaded(&server, "ann", "fine.txt", b"all good").await;

    // Files waiting to be sent are bounded per person; sending some makes room.
    let mut waiting = Vec::new();
    for _ in 0..20 {
        waiting.push(uploaded(&server, "bob", "mine.txt", b"waiting").await.0);
    }
    let (status, body) = upload(&server, "bob", "one-more.txt", b"x").await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("20 files are waiting"), "{body}");
    assert_eq!(upload(&server, "ann", "hers.txt", b"x").await.0, 201, "others are not held up");
    let sent = json!({"text": "", "files": waiting[..10]});
    let (status, message) = post(&server, "bob", "/api/rooms/lobby/messages", sent).await;
    assert_eq!(status, 201, "{message}");
    assert_eq!(upload(&server, "bob", "one-more.txt", b"x").await.0, 201);
}
on_every_setup!(bad_uploads_get_clear_errors);

/// A real PNG whose header claims 100,000 × 100,000 pixels: 40 GB once decoded.
fn bomb() -> Vec<u8> {
    let mut bytes = png(1, 1);
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    // The header's checksum, so that it is refused for its size and not as damaged.
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Files never sent go, rows and bytes; so do the bytes of a deleted message's files.
#[tokio::test]
async fn files_never_sent_are_collected() {
    let server = TestServer::start_with(|config| config.unsent_files_minutes = 0).await;
    let on_disk = |id: &str| server.data_dir().join("files").join(id).exists();
    let (draft, _) = uploaded(&server, "ann", "draft.txt", b"never sent").await;
    let path = format!("/api/files/{draft}");
    eventually(|| async {
        (fetch(&server, Some("ann"), &path).await.0 == 404 && !on_disk(&draft)).then_some(())
    })
    .await;

    // Sent at once, kept; its message deleted, its bytes go too.
    let (photo, _) = uploaded(&server, "ann", "dot.png", &png(2, 2)).await;
    let (status, message) =
        post(&server, "ann", "/api/rooms/lobby/messages", json!({"text": "", "files": [photo]}))
            .await;
    assert_eq!(status, 201, "{message}");
    assert!(on_disk(&photo) && on_disk(&format!("{photo}.thumb")));
    let (status, _) = post(
        &server,
        "ann",
        "/api/rooms/lobby/changes",
        json!({"type": "deleted", "seq": message["seq"]}),
    )
    .await;
    assert_eq!(status, 201);
    eventually(|| async {
        (!on_disk(&photo) && !on_disk(&format!("{photo}.thumb"))).then_some(())
    })
    .await;
}

/// Uploads count against the sender's message rate: a burst beyond it gets 429.
#[tokio::test]
async fn uploads_are_rate_limited() {
    let server = TestServer::start_with(|config| {
        config.send_rate = 1.0;
        config.send_burst = 2.0;
    })
    .await;
    for _ in 0..2 {
        uploaded(&server, "ann", "a.txt", b"one of a burst").await;
    }
    let (status, head, body) = server
        .binary("POST", "/api/files?name=a.txt", Some(&server.token("ann").await), b"x")
        .await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert!(header(&head, "retry-after").is_some(), "{head}");
}

async fn avatars_are_squares_everyone_sees(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let ann = server.token("ann").await;
    let (status, _, body) =
        server.binary("PUT", "/api/me/avatar", Some(&ann), &png(300, 100)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let me: Value = serde_json::from_slice(&body).unwrap();
    let avatar = me["avatar"].as_str().unwrap().to_owned();
    let (status, head, bytes) = fetch(&server, Some("bob"), &format!("/api/files/{avatar}")).await;
    assert_eq!(status, 200, "{head}");
    let picture = decode(&bytes);
    assert_eq!((picture.width(), picture.height()), (128, 128));
    assert_eq!(fetch(&server, None, &format!("/api/files/{avatar}")).await.0, 401);
    let bob = server.token("bob").await;
    let (_, people) = server.request("GET", "/api/people", Some(&bob), None).await;
    let listed = people.as_array().unwrap().iter().find(|person| person["name"] == "ann");
    assert_eq!(listed.unwrap()["avatar"], avatar.as_str());
    // An avatar cannot be sent as a file.
    let (status, _) =
        post(&server, "ann", "/api/rooms/lobby/messages", json!({"text": "x", "files": [avatar]}))
            .await;
    assert_eq!(status, 404);

    // A new picture replaces the old, which is gone.
    let (status, _, body) = server.binary("PUT", "/api/me/avatar", Some(&ann), &png(50, 80)).await;
    assert_eq!(status, 200);
    let newer: Value = serde_json::from_slice(&body).unwrap();
    assert_ne!(newer["avatar"], me["avatar"]);
    assert_eq!(fetch(&server, Some("bob"), &format!("/api/files/{avatar}")).await.0, 404);

    // Not an image, signed out, empty: refused, the picture kept.
    let (status, _, body) = server.binary("PUT", "/api/me/avatar", Some(&ann), b"hello").await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("not an image"));
    assert_eq!(server.binary("PUT", "/api/me/avatar", None, &png(4, 4)).await.0, 401);
    assert_eq!(server.request("DELETE", "/api/me/avatar", None, None).await.0, 401);
    assert_eq!(server.binary("PUT", "/api/me/avatar", Some(&ann), b"").await.0, 400);
    assert_eq!(server.binary("PUT", "/api/me/avatar", Some(&ann), &bomb()).await.0, 413);
    let (_, me) = server.request("GET", "/api/me", Some(&ann), None).await;
    assert_eq!(me["avatar"], newer["avatar"]);

    // Taken away: initials again.
    let (status, _) = server.request("DELETE", "/api/me/avatar", Some(&ann), None).await;
    assert_eq!(status, 204);
    let (_, me) = server.request("GET", "/api/me", Some(&ann), None).await;
    assert!(me.get("avatar").is_none(), "{me}");
    let gone = newer["avatar"].as_str().unwrap();
    assert_eq!(fetch(&server, Some("ann"), &format!("/api/files/{gone}")).await.0, 404);
}
on_every_setup!(avatars_are_squares_everyone_sees);
