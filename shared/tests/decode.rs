//! Decoder behaviour: the spec's examples, the stream's edge cases and every malformed input
//! with the specific error it must produce.

use bytes::BytesMut;
use shared::stomp::{Command, Decoder, Frame, FrameError, Headers, Limits};

/// Decodes all of `input` and renders each frame as `COMMAND name=value … |body|`, or the
/// error, so that tables read like the wire.
fn decode_all(input: &[u8], limits: Limits) -> Vec<String> {
    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => out.push(render(&frame)),
            Ok(None) => {
                if !buf.is_empty() {
                    out.push(format!("incomplete({})", buf.len()));
                }
                return out;
            }
            Err(error) => {
                out.push(format!("error: {error}"));
                return out;
            }
        }
    }
}

fn render(frame: &Frame) -> String {
    let mut text = frame.command.to_string();
    for (name, value) in frame.headers.iter() {
        text.push_str(&format!(" {name}={value}"));
    }
    text.push_str(&format!(" |{}|", String::from_utf8_lossy(&frame.body)));
    text
}

fn check(input: &[u8], expected: &[&str]) {
    check_with(input, Limits::default(), expected);
}

fn check_with(input: &[u8], limits: Limits, expected: &[&str]) {
    assert_eq!(decode_all(input, limits), expected, "input: {:?}", String::from_utf8_lossy(input));
}

#[test]
fn spec_examples() {
    check(
        b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0",
        &["CONNECT accept-version=1.2 host=stomp.github.org ||"],
    );
    check(
        b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0",
        &["SEND destination=/queue/a content-type=text/plain |hello queue a\n|"],
    );
    check(
        b"SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n\0",
        &["SUBSCRIBE id=0 destination=/queue/foo ack=client ||"],
    );
    check(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0", &["MESSAGE foo=World foo=Hello ||"]);
    check(b"ERROR\nversion:1.2,2.1\ncontent-type:text/plain\n\nSupported protocol versions are 1.2 2.1\0", &[
        "ERROR version=1.2,2.1 content-type=text/plain |Supported protocol versions are 1.2 2.1|",
    ]);
    check(b"DISCONNECT\nreceipt:77\n\n\0", &["DISCONNECT receipt=77 ||"]);
}

#[test]
fn stream_edges() {
    // Heart-beats before, between and after frames, LF and CR LF alike.
    check(
        b"\n\r\n\nSEND\ndestination:/a\n\nx\0\n\n\r\nSEND\ndestination:/b\n\ny\0\n",
        &["SEND destination=/a |x|", "SEND destination=/b |y|"],
    );
    // CR LF line ends everywhere.
    check(b"SEND\r\ndestination:/a\r\n\r\nbody\0", &["SEND destination=/a |body|"]);
    // A body with NUL octets, framed by content-length.
    check(
        b"SEND\ndestination:/a\ncontent-length:5\n\na\0b\0c\0",
        &["SEND destination=/a |a\0b\0c|"],
    );
    // content-length:0 on a frame that may not have a body (stompjs sends it everywhere).
    check(
        b"SUBSCRIBE\nid:1\ndestination:/a\ncontent-length:0\n\n\0",
        &["SUBSCRIBE id=1 destination=/a ||"],
    );
    // Escapes are applied to headers of ordinary frames.
    check(
        b"SEND\ndestination:/a\nk\\cey:a\\nb\\rc\\\\d\\ce\n\n\0",
        &["SEND destination=/a k:ey=a\nb\rc\\d:e ||"],
    );
    // ... and not in CONNECT: "The CONNECT and CONNECTED frames do not escape".
    check(b"CONNECT\nlogin:a\\nb\npasscode:x:y\n\n\0", &["CONNECT login=a\\nb passcode=x:y ||"]);
    // A value may be empty; values are never trimmed.
    check(b"SEND\ndestination: /a \nempty:\n\n\0", &["SEND destination= /a  empty= ||"]);
    // Only heart-beats: nothing to return, nothing left over.
    check(b"\n\n\r\n", &[]);
    // A half-received frame is kept for the next call.
    check(b"SEND\ndestination:/a\n\nhal", &["incomplete(24)"]);
    check(b"SEND\ndestination:/a\ncontent-length:4\n\nab\0", &["incomplete(41)"]);
}

#[test]
fn malformed_inputs() {
    let cases: &[(&[u8], &str)] = &[
        (b"HELLO\n\n\0", "unknown command \"HELLO\""),
        (b"send\ndestination:/a\n\n\0", "unknown command \"send\""),
        (b"SEND\ndestination\n\n\0", "malformed header line \"destination\""),
        (b"SEND\n:value\n\n\0", "malformed header line \":value\""),
        (b"SEND\ndestination:/a\\t\n\n\0", "undefined escape sequence \"\\\\t\" in header"),
        (b"SEND\ndestination:/a\\\n\n\0", "undefined escape sequence \"\\\\\" in header"),
        (b"SEND\ncontent-length:abc\n\n\0", "invalid content-length \"abc\""),
        (b"SEND\ncontent-length:-1\n\n\0", "invalid content-length \"-1\""),
        (b"SEND\ncontent-length:+1\n\nx\0", "invalid content-length \"+1\""),
        (b"SEND\ncontent-length:2\n\nabc\0", "frame body is not terminated by a null octet"),
        (b"SUBSCRIBE\nid:1\n\nbody\0", "SUBSCRIBE frames must not have a body"),
        (b"SEND\nname:\xff\n\n\0", "frame is not valid utf-8 in its headers"),
    ];
    for (input, error) in cases {
        check(input, &[&format!("error: {error}")]);
    }
}

#[test]
fn limits_are_enforced() {
    let limits = Limits { max_frame_bytes: 64, max_headers: 2, max_header_line: 20 };
    let big_body = [b"SEND\n\n".as_slice(), &[b'x'; 80], b"\0"].concat();
    check_with(&big_body, limits, &["error: frame exceeds the limit of 64 bytes"]);
    // A declared length over the limit fails at once, before the body arrives.
    check_with(
        b"SEND\ncontent-length:100\n\n",
        limits,
        &["error: frame exceeds the limit of 64 bytes"],
    );
    // A body without a NUL that outgrows the limit fails without waiting for the end.
    check_with(
        &[b"SEND\n\n".as_slice(), &[b'x'; 80]].concat(),
        limits,
        &["error: frame exceeds the limit of 64 bytes"],
    );
    // A length that would overflow the offset arithmetic is refused, not wrapped: here
    // 46 + N wraps to 7, where the header value holds a NUL (security review L1).
    check(
        b"SEND\nx:\0\ncontent-length:18446744073709551577\n\n",
        &["error: frame exceeds the limit of 65536 bytes"],
    );
    check(
        b"CONNECT\ncontent-length:18446744073709551615\n\n",
        &["error: frame exceeds the limit of 65536 bytes"],
    );
    check_with(b"SEND\na:1\nb:2\nc:3\n\n\0", limits, &["error: frame has more than 2 headers"]);
    check_with(b"SEND\na:1\nb:2\n\n\0", limits, &["SEND a=1 b=2 ||"]);
    check_with(
        b"SEND\nlong:0123456789abcdef\n\n\0",
        limits,
        &["error: header line exceeds the limit of 20 bytes"],
    );
    // An endless line without an EOL is refused too.
    check_with(
        &[b"SEND\n".as_slice(), &[b'a'; 40]].concat(),
        limits,
        &["error: header line exceeds the limit of 20 bytes"],
    );
}

#[test]
fn stomp_1_0_does_not_unescape() {
    let mut decoder = Decoder::default();
    decoder.set_version(shared::stomp::Version::V1_0);
    let mut buf = BytesMut::from(&b"SEND\ndestination:/a\\t\n\n\0"[..]);
    let frame = decoder.decode(&mut buf).unwrap().unwrap();
    let expected: Headers = [("destination", "/a\\t")].into_iter().collect();
    assert_eq!(frame.headers, expected);
    assert_eq!(frame.command, Command::Send);
}

#[test]
fn frames_split_at_every_byte_decode_the_same() {
    let stream: &[u8] =
        b"\nSEND\r\ndestination:/a\ncontent-length:3\n\na\0b\0\nSUBSCRIBE\nid:1\ndestination:/b\n\n\0\n";
    let whole = decode_all(stream, Limits::default());
    assert_eq!(whole.len(), 2);
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::new();
    let mut pieces = Vec::new();
    for &byte in stream {
        buf.extend_from_slice(&[byte]);
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            pieces.push(render(&frame));
        }
    }
    assert_eq!(pieces, whole);
    assert!(buf.is_empty());
}

#[test]
fn errors_name_the_missing_header() {
    let error = FrameError::MissingHeader { command: Command::Send, header: "destination" };
    assert_eq!(error.to_string(), "SEND frame is missing the required \"destination\" header");
}
