//! The parts of the page, one component per file.

pub mod chat;
pub mod composer;
pub mod members;
pub mod message_list;
pub mod name_prompt;
pub mod status;

/// `HH:MM` in the browser's time zone.
pub fn clock(millis: shared::chat::Millis) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// A stable colour for a user's avatar, picked from the name.
pub fn avatar_hue(name: &str) -> u32 {
    name.bytes().fold(7u32, |hash, byte| hash.wrapping_mul(31).wrapping_add(u32::from(byte))) % 360
}
