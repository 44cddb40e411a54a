//! Chat payloads and destinations: the JSON shape other clients rely on, and the name rules.

use shared::chat::{
    ChatMessage, ClientEvent, Destination, DestinationError, DirectoryEvent, NameError, Notice,
    RoomEvent, TextError, validate_name, validate_text, validate_username,
};

#[test]
fn room_events_are_tagged_json() {
    let message = RoomEvent::Message(ChatMessage {
        seq: 7,
        room: "lobby".into(),
        sender: "alice".into(),
        text: "hi".into(),
        sent_at: 1_700_000_000_000,
        ..ChatMessage::default()
    });
    assert_eq!(
        serde_json::to_string(&message).unwrap(),
        r#"{"type":"message","seq":7,"room":"lobby","sender":"alice","text":"hi","sent_at":1700000000000}"#
    );
    // A bot's message says so; a person's says nothing, and older payloads still read.
    let RoomEvent::Message(mut from_bot) = message else { unreachable!() };
    from_bot.bot = true;
    let json = serde_json::to_string(&RoomEvent::Message(from_bot.clone())).unwrap();
    assert!(json.ends_with(r#""sent_at":1700000000000,"bot":true}"#), "{json}");
    assert_eq!(serde_json::from_str::<RoomEvent>(&json).unwrap(), RoomEvent::Message(from_bot));
    let joined = RoomEvent::Joined { user: "bob".into(), at: 5 };
    assert_eq!(serde_json::to_string(&joined).unwrap(), r#"{"type":"joined","user":"bob","at":5}"#);
    let left: RoomEvent = serde_json::from_str(r#"{"type":"left","user":"bob","at":6}"#).unwrap();
    assert_eq!(left, RoomEvent::Left { user: "bob".into(), at: 6 });
    let input: ClientEvent = serde_json::from_str(r#"{"type":"message","text":"yo"}"#).unwrap();
    assert_eq!(
        input,
        ClientEvent::Message { text: "yo".into(), reply_to: None, files: Vec::new() }
    );
    let typing: ClientEvent = serde_json::from_str(r#"{"type":"typing"}"#).unwrap();
    assert_eq!(typing, ClientEvent::Typing);
    let created = DirectoryEvent::Created { room: "design".into(), by: "erin".into() };
    assert_eq!(
        serde_json::to_string(&created).unwrap(),
        r#"{"type":"created","room":"design","by":"erin"}"#
    );
    let notice = Notice::UserOffline { user: "bob".into() };
    assert_eq!(serde_json::to_string(&notice).unwrap(), r#"{"type":"user_offline","user":"bob"}"#);
}

#[test]
fn destinations_parse() {
    let cases: &[(&str, Result<Destination, DestinationError>)] = &[
        ("/topic/room.lobby", Ok(Destination::Room("lobby".into()))),
        ("/app/room.dev-ops_2", Ok(Destination::AppRoom("dev-ops_2".into()))),
        ("/topic/prices", Ok(Destination::Topic("prices".into()))),
        ("/app/dm.bob", Ok(Destination::AppDm("bob".into()))),
        ("/user/queue/dm", Ok(Destination::UserDm)),
        ("/user/queue/notices", Ok(Destination::UserNotices)),
        ("/topic/rooms", Ok(Destination::Rooms)),
        ("/topic/rooms.x", Ok(Destination::Topic("rooms.x".into()))),
        ("/user/bob/queue/dm", Err(DestinationError::OtherUser("/user/bob/queue/dm".into()))),
        ("/topic/", Err(DestinationError::Unknown("/topic/".into()))),
        ("/queue/a", Err(DestinationError::Unknown("/queue/a".into()))),
        ("/app/room.", Err(DestinationError::InvalidName("".into(), NameError::Length))),
        (
            "/topic/room.Lobby",
            Err(DestinationError::InvalidName("Lobby".into(), NameError::Characters)),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(&Destination::parse(text), expected, "{text}");
        if let Ok(destination) = expected {
            assert_eq!(&destination.to_string(), text);
        }
    }
}

#[test]
fn names_and_texts_are_validated() {
    assert_eq!(validate_name("lobby"), Ok(()));
    assert_eq!(validate_name(&"a".repeat(33)), Err(NameError::Length));
    assert_eq!(validate_name("a b"), Err(NameError::Characters));
    assert_eq!(validate_name("x"), Ok(()));
    assert_eq!(validate_username("xy"), Err(NameError::TooShort));
    assert_eq!(validate_username("xyz"), Ok(()));
    assert_eq!(validate_text("hello"), Ok(()));
    assert_eq!(validate_text("  \n"), Err(TextError::Empty));
    assert_eq!(validate_text(&"é".repeat(4000)), Ok(()));
    assert_eq!(validate_text(&"é".repeat(4001)), Err(TextError::TooLong));
}

#[test]
fn texts_without_controls_or_direction_overrides() {
    let cases: &[(&str, Result<(), TextError>)] = &[
        ("two\nlines\tand a tab\r\n", Ok(())),
        ("emoji 👋 and עברית with marks \u{200F}", Ok(())),
        ("\u{1}", Err(TextError::Control(0x01))),
        ("bell\u{7}", Err(TextError::Control(0x07))),
        ("del\u{7f}", Err(TextError::Control(0x7f))),
        ("c1\u{85}", Err(TextError::Control(0x85))),
        ("gnp.exe\u{202E}", Err(TextError::Control(0x202E))),
        ("isolate \u{2067}x", Err(TextError::Control(0x2067))),
        ("\u{200B}\u{200B}", Err(TextError::Empty)),
        (" \u{FEFF} \u{2060}", Err(TextError::Empty)),
        ("\u{200B}a", Ok(())),
    ];
    for (text, expected) in cases {
        assert_eq!(&validate_text(text), expected, "{text:?}");
    }
    assert_eq!(
        serde_json::to_string(&Notice::RateLimited { receipt: None, retry_after_ms: 250 }).unwrap(),
        r#"{"type":"rate_limited","receipt":null,"retry_after_ms":250}"#
    );
}
