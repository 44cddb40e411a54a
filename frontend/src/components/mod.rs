//! The parts of the chat screen, one component per file.

pub mod admin;
pub mod attachments;
pub mod composer;
pub mod conversation;
pub mod message_list;
pub mod notifications;
pub mod profile;
pub mod rich_text;
pub mod room_settings;
pub mod search;
pub mod sidebar;
pub mod status;

/// `HH:MM` in the browser's time zone.
pub fn clock(millis: shared::chat::Millis) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// "Today", "Yesterday", or a date like "Monday 3 March 2025", in the browser's time zone.
pub fn day_label(millis: shared::chat::Millis) -> String {
    let today = crate::model::local_day(js_sys::Date::now() as i64);
    let day = crate::model::local_day(millis);
    match today - day {
        0 => "Today".to_owned(),
        1 => "Yesterday".to_owned(),
        _ => {
            let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
            let options = js_sys::Object::new();
            for (key, value) in
                [("weekday", "long"), ("day", "numeric"), ("month", "long"), ("year", "numeric")]
            {
                let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
            }
            date.to_locale_date_string("en-GB", &options).into()
        }
    }
}

/// A stable colour for a user's avatar, picked from the name: one of twelve hues, as a
/// class (`hue-0` … `hue-11` in `style.css`). A class, not a `style` attribute: the page's
/// Content-Security-Policy allows no inline styles.
pub fn avatar_class(name: &str) -> String {
    let hash =
        name.bytes().fold(7u32, |hash, byte| hash.wrapping_mul(31).wrapping_add(u32::from(byte)));
    format!("hue-{}", hash % 12)
}

/// A padlock, for private rooms: drawn, not an emoji, so it shows on machines without an
/// emoji font.
pub fn lock_icon() -> impl leptos::IntoView {
    use leptos::prelude::*;
    view! {
        <svg class="lock" viewBox="0 0 16 16" role="img" aria-label="private">
            <path d="M4.5 7V5a3.5 3.5 0 0 1 7 0v2h.5A1 1 0 0 1 13 8v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1zm1.5 0h4V5a2 2 0 0 0-4 0z" />
        </svg>
    }
}

/// The first letter of a name, capitalised, for avatars.
pub fn initial(name: &str) -> String {
    name.chars().next().map(|c| c.to_uppercase().to_string()).unwrap_or_default()
}
