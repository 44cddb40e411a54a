//! Typed frames: required headers, header values and version negotiation.

use bytes::Bytes;
use shared::stomp::{
    AckMode, ClientFrame, Command, Frame, FrameError, HeartBeat, ServerFrame, Version,
};

fn frame(command: Command, headers: &[(&str, &str)]) -> Frame {
    Frame { command, headers: headers.iter().copied().collect(), body: Bytes::new() }
}

fn check_client(
    command: Command,
    headers: &[(&str, &str)],
    expected: Result<ClientFrame, FrameError>,
) {
    assert_eq!(ClientFrame::try_from(frame(command, headers)), expected, "{command} {headers:?}");
}

#[test]
fn required_headers_are_checked() {
    let missing = |command, header| Err(FrameError::MissingHeader { command, header });
    check_client(Command::Send, &[], missing(Command::Send, "destination"));
    check_client(Command::Subscribe, &[("id", "1")], missing(Command::Subscribe, "destination"));
    check_client(Command::Subscribe, &[("destination", "/a")], missing(Command::Subscribe, "id"));
    check_client(Command::Unsubscribe, &[], missing(Command::Unsubscribe, "id"));
    check_client(Command::Ack, &[], missing(Command::Ack, "id"));
    check_client(Command::Nack, &[], missing(Command::Nack, "id"));
    check_client(Command::Begin, &[], missing(Command::Begin, "transaction"));
    check_client(Command::Commit, &[], missing(Command::Commit, "transaction"));
    check_client(Command::Abort, &[], missing(Command::Abort, "transaction"));
    check_client(
        Command::Message,
        &[],
        Err(FrameError::WrongDirection(Command::Message, "client")),
    );
}

#[test]
fn first_repeated_header_wins_and_the_rest_are_dropped() {
    check_client(
        Command::Subscribe,
        &[
            ("destination", "/a"),
            ("id", "1"),
            ("id", "2"),
            ("ack", "client-individual"),
            ("x", "y"),
        ],
        Ok(ClientFrame::Subscribe {
            destination: "/a".into(),
            id: "1".into(),
            ack: AckMode::ClientIndividual,
            receipt: None,
            headers: [("x", "y")].into_iter().collect(),
        }),
    );
}

#[test]
fn header_values_are_checked() {
    check_client(
        Command::Subscribe,
        &[("destination", "/a"), ("id", "1"), ("ack", "sometimes")],
        Err(FrameError::InvalidHeader {
            header: "ack",
            value: "sometimes".into(),
            reason: "expected auto, client or client-individual",
        }),
    );
    assert!(matches!(HeartBeat::parse("10"), Err(FrameError::InvalidHeader { .. })));
    assert!(matches!(HeartBeat::parse("a,1"), Err(FrameError::InvalidHeader { .. })));
    assert_eq!(HeartBeat::parse("10,20"), Ok(HeartBeat { can_send_ms: 10, want_receive_ms: 20 }));
}

#[test]
fn heart_beat_interval_follows_the_spec() {
    assert_eq!(HeartBeat::interval(0, 100), None);
    assert_eq!(HeartBeat::interval(100, 0), None);
    assert_eq!(HeartBeat::interval(100, 250), Some(250));
    assert_eq!(HeartBeat::interval(300, 250), Some(300));
}

#[test]
fn version_negotiation_picks_the_highest_common() {
    assert_eq!(Version::negotiate(None), Some(Version::V1_0));
    assert_eq!(Version::negotiate(Some("1.0,1.1,2.0")), Some(Version::V1_1));
    assert_eq!(Version::negotiate(Some("1.2")), Some(Version::V1_2));
    assert_eq!(Version::negotiate(Some("1.1,1.2")), Some(Version::V1_2));
    assert_eq!(Version::negotiate(Some("2.0,2.1")), None);
    assert_eq!(Version::from_subprotocol("v11.stomp"), Some(Version::V1_1));
    assert_eq!(Version::from_subprotocol("v13.stomp"), None);
}

#[test]
fn server_frames_put_required_headers_first() {
    let message = ServerFrame::Message {
        destination: "/topic/a".into(),
        message_id: "7".into(),
        subscription: "sub-0".into(),
        ack: Some("7".into()),
        headers: [("content-type", "text/plain")].into_iter().collect(),
        body: Bytes::from_static(b"hi"),
    };
    let wire = shared::stomp::encode_to_bytes(&message.into_frame());
    assert_eq!(
        &wire[..],
        b"MESSAGE\nsubscription:sub-0\nmessage-id:7\ndestination:/topic/a\nack:7\ncontent-type:text/plain\ncontent-length:2\n\nhi\0"
    );
    let error = ServerFrame::error("boom", Some("r1".into()));
    let wire = shared::stomp::encode_to_bytes(&error.into_frame());
    assert_eq!(&wire[..], b"ERROR\nmessage:boom\nreceipt-id:r1\ncontent-length:0\n\n\0");
}
