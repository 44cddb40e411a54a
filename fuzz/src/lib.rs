//! The fuzz targets' bodies, shared by the AFL binaries (`src/bin/`) and by the test that
//! replays the committed corpus (so a crash once found stays fixed).
//!
//! - [`decode`]: arbitrary bytes, fed to the STOMP decoder in chunks whose size the input
//!   picks; every frame is also typed as a client and as a server frame.
//! - [`session`]: a signed-in session fed the frames arbitrary bytes decode to, on a real
//!   engine (embedded store, in-process bus); every ERROR it sends has a `message`.
//!
//! Either must never panic, whatever the input.

use std::sync::OnceLock;

use backend::bus::local::LocalBus;
use backend::delivery::Outgoing;
use backend::engine::{Engine, EngineConfig};
use backend::stomp::{Broker, BrokerConfig, SendRates};
use backend::store::sqlite::{SqliteOptions, SqliteStore};
use bytes::BytesMut;
use shared::stomp::{ClientFrame, Decoder, Frame, Limits, ServerFrame};

/// Small limits, so that the fuzzer meets them.
const LIMITS: Limits = Limits { max_frame_bytes: 4096, max_headers: 16, max_header_line: 512 };

/// Decodes `data` in chunks of the size its first byte picks.
pub fn decode(data: &[u8]) {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = Decoder::new(LIMITS);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let _ = ClientFrame::try_from(frame.clone());
                    let _ = ServerFrame::try_from(frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// The engine every session input runs on, made once per process.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    broker: Broker,
    connect: Frame,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (broker, token) = runtime.block_on(async {
            // Capped, so that millions of inputs cannot fill the disk.
            let options = SqliteOptions { max_bytes: Some(64 << 20) };
            let store = SqliteStore::open(dir.path(), options).expect("a store");
            let (_incoming, received) = tokio::sync::mpsc::unbounded_channel();
            let config = EngineConfig { session_lifetime: std::time::Duration::from_secs(3600) };
            let engine = Engine::new(
                std::sync::Arc::new(store),
                std::sync::Arc::new(LocalBus::default()),
                received,
                config,
            );
            let open = backend::store::Admission::OPEN;
            engine.create_user("fuzz", "no password", &open).await.expect("a user");
            engine.create_user("peer", "no password", &open).await.expect("a user");
            engine.store().create_room("den", "peer", 0, false).await.expect("a room");
            let token = "fuzz-token";
            let hash = backend::auth::token_hash(token);
            engine.store_token(&hash, "fuzz", "fuzz").await.expect("a token");
            let rates =
                SendRates { messages: backend::limits::Rate::UNLIMITED, ..SendRates::default() };
            let config = BrokerConfig { limits: LIMITS, rates, ..BrokerConfig::default() };
            (Broker::new(config, engine), token)
        });
        let connect = format!("CONNECT\naccept-version:1.2\nlogin:fuzz\npasscode:{token}\n\n\0");
        let connect = Decoder::new(LIMITS)
            .decode(&mut BytesMut::from(connect.as_bytes()))
            .expect("CONNECT decodes")
            .expect("a whole frame");
        Fixture { runtime, broker, connect, _dir: dir }
    })
}

/// Signs in, then hands the session every frame `data` decodes to.
pub fn session(data: &[u8]) {
    let fixture = fixture();
    fixture.runtime.block_on(async {
        let (mut session, mut outbox, _acks) = fixture.broker.open_session();
        session.handle(fixture.connect.clone()).await;
        let mut decoder = Decoder::new(LIMITS);
        let mut buf = BytesMut::from(data);
        loop {
            let flow = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => session.handle(frame).await,
                Ok(None) => break,
                Err(error) => session.malformed(error),
            };
            if flow == backend::stomp::Flow::Close {
                break;
            }
        }
        drop(session);
        // Let replays and the like run, then check what was queued.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        while let Some(item) = outbox.try_recv() {
            if let Outgoing::Frame { bytes, .. } = item {
                let mut buf = BytesMut::from(&bytes[..]);
                let frame = Decoder::default()
                    .decode(&mut buf)
                    .expect("the server's frames decode")
                    .expect("whole frames");
                if let Ok(ServerFrame::Error { message, .. }) = ServerFrame::try_from(frame) {
                    assert!(message.is_some(), "every ERROR says why");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input of the committed corpus (seeds, and crashes found and fixed) runs clean.
    #[test]
    fn the_corpus_runs_clean() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for (target, run) in [("decode", decode as fn(&[u8])), ("session", session)] {
            let dir = root.join(target);
            let mut n_inputs = 0;
            for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
                let input = std::fs::read(entry.expect("an entry").path()).expect("an input");
                run(&input);
                n_inputs += 1;
            }
            assert!(n_inputs > 0, "{} has no inputs", dir.display());
        }
    }
}
