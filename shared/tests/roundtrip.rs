//! Properties: `decode(encode(frame)) == frame` for arbitrary frames, any split of a byte
//! stream decodes to the same frames, and typed frames survive the trip through the wire.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use shared::stomp::{
    ClientFrame, Command, Decoder, Frame, Headers, Limits, ServerFrame, encode, encode_to_bytes,
};

fn command() -> impl Strategy<Value = Command> {
    proptest::sample::select(Command::ALL.to_vec())
}

/// Header text for frames that escape: anything, the delimiters included.
fn escaped_text() -> impl Strategy<Value = String> {
    "[a-z:\\\\\r\n é-]{0,12}"
}

/// Header text for CONNECT/CONNECTED, which cannot carry CR or LF.
fn raw_text() -> impl Strategy<Value = String> {
    "[a-z:\\\\ é-]{0,12}"
}

fn frame() -> impl Strategy<Value = Frame> {
    command().prop_flat_map(|command| {
        let header = if command.escapes_headers() {
            (escaped_text().prop_filter("name", |n| !n.is_empty()), escaped_text()).boxed()
        } else {
            ("[a-z-]{1,12}", raw_text()).boxed()
        };
        let headers = proptest::collection::vec(
            header.prop_filter("content-length is framing", |(n, _)| n != "content-length"),
            0..6,
        );
        let body = if command.allows_body() {
            proptest::collection::vec(any::<u8>(), 0..64).boxed()
        } else {
            Just(Vec::new()).boxed()
        };
        (headers, body).prop_map(move |(headers, body)| Frame {
            command,
            headers: headers.into_iter().collect(),
            body: Bytes::from(body),
        })
    })
}

fn decode_stream(chunks: &[&[u8]]) -> Vec<Frame> {
    let mut decoder = Decoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(frame) = decoder.decode(&mut buf).expect("encoded frames decode") {
            frames.push(frame);
        }
    }
    assert!(buf.is_empty(), "bytes left over: {buf:?}");
    frames
}

/// Frames built from a small pool of names, so that typed conversions meet their own
/// headers (with valid and invalid values) as often as strangers.
fn typed_candidate() -> impl Strategy<Value = Frame> {
    let name = proptest::sample::select(vec![
        "destination",
        "id",
        "receipt",
        "transaction",
        "ack",
        "login",
        "passcode",
        "host",
        "accept-version",
        "heart-beat",
        "version",
        "subscription",
        "message-id",
        "receipt-id",
        "message",
        "session",
        "server",
        "x-user",
    ]);
    let value = proptest::sample::select(vec![
        "1",
        "/topic/a",
        "client",
        "auto",
        "client-individual",
        "1.2",
        "10,20",
        "0,0",
        "a:b",
    ]);
    let headers = proptest::collection::vec((name, value), 0..8);
    (command(), headers, "[a-z]{0,8}").prop_map(|(command, headers, body)| Frame {
        command,
        headers: headers.into_iter().collect::<Headers>(),
        body: if command.allows_body() { Bytes::from(body) } else { Bytes::new() },
    })
}

proptest! {
    #[test]
    fn decode_inverts_encode(frame in frame()) {
        let bytes = encode_to_bytes(&frame);
        prop_assert_eq!(decode_stream(&[&bytes]), vec![frame]);
    }

    #[test]
    fn every_split_decodes_the_same(
        frames in proptest::collection::vec(frame(), 1..5),
        heart_beats in proptest::collection::vec(0usize..3, 5),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut stream = BytesMut::new();
        for (frame, n_eols) in frames.iter().zip(heart_beats.iter().cycle()) {
            for _ in 0..*n_eols {
                stream.extend_from_slice(b"\n");
            }
            encode(frame, &mut stream);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            chunks.push(&stream[start..cut]);
            start = cut;
        }
        prop_assert_eq!(decode_stream(&chunks), frames);
    }

    #[test]
    fn typed_frames_survive_the_wire(frame in typed_candidate()) {
        if let Ok(typed) = ClientFrame::try_from(frame.clone()) {
            let wire = encode_to_bytes(&typed.clone().into_frame());
            let back = decode_stream(&[&wire]).remove(0);
            prop_assert_eq!(ClientFrame::try_from(back), Ok(typed));
        }
        if let Ok(typed) = ServerFrame::try_from(frame) {
            let wire = encode_to_bytes(&typed.clone().into_frame());
            let back = decode_stream(&[&wire]).remove(0);
            prop_assert_eq!(ServerFrame::try_from(back), Ok(typed));
        }
    }
}
