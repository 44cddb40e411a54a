//! AFL target: the STOMP decoder. `cargo xtask fuzz --target decode`.
fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::decode(data));
}
