//! AFL target: a signed-in session fed arbitrary frames. `cargo xtask fuzz --target session`.
fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::session(data));
}
