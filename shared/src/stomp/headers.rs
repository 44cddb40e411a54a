//! Ordered frame headers and the STOMP 1.2 header escaping rules.

use bytes::BufMut;

use super::error::FrameError;

/// Frame headers in wire order. Repeats are kept; lookups see the first.
///
/// "If a client or a server receives repeated frame header entries, only the first header
/// entry SHOULD be used as the value of header entry."
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// The value of the first header with this name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Appends a header, keeping any earlier one of the same name.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// Appends a header when `value` is present.
    pub fn push_opt(&mut self, name: &str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.push(name, value);
        }
    }

    /// Removes every header with this name and returns the first one's value.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let first = self.0.iter().position(|(key, _)| key == name)?;
        let (_, value) = self.0.remove(first);
        self.0.retain(|(key, _)| key != name);
        Some(value)
    }

    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// How many header lines there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends every header of `other`.
    pub fn extend(&mut self, other: Headers) {
        self.0.extend(other.0);
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Headers {
        Headers(iter.into_iter().map(|(key, value)| (key.into(), value.into())).collect())
    }
}

/// Writes `text` into `out` with the STOMP 1.2 escapes applied:
/// CR → `\r`, LF → `\n`, `:` → `\c`, `\` → `\\`.
pub fn escape_into(text: &str, out: &mut impl BufMut) {
    if !needs_escape(text) {
        out.put_slice(text.as_bytes());
        return;
    }
    for byte in text.bytes() {
        match byte {
            b'\r' => out.put_slice(b"\\r"),
            b'\n' => out.put_slice(b"\\n"),
            b':' => out.put_slice(b"\\c"),
            b'\\' => out.put_slice(b"\\\\"),
            other => out.put_u8(other),
        }
    }
}

/// Whether `text` contains an octet that [`escape_into`] would change.
pub(crate) fn needs_escape(text: &str) -> bool {
    text.bytes().any(|byte| matches!(byte, b'\r' | b'\n' | b':' | b'\\'))
}

/// Reverses [`escape_into`].
///
/// "Undefined escape sequences such as \t (octet 92 and 116) MUST be treated as a fatal
/// protocol error."
pub(crate) fn unescape(raw: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b'c') => out.push(b':'),
            Some(b'\\') => out.push(b'\\'),
            Some(&other) => {
                return Err(FrameError::InvalidEscape(
                    String::from_utf8_lossy(&[b'\\', other]).into_owned(),
                ));
            }
            None => return Err(FrameError::InvalidEscape("\\".to_owned())),
        }
    }
    Ok(out)
}
