//! JSON strings written by hand where serde_json's general path costs more than the frame
//! around them: a string that needs no escaping (looked for eight bytes at a time) is copied
//! between quotes, anything else goes through serde_json, so the text is exactly serde_json's.
//! (Integers already go through `itoa`, as serde_json's do.)

use crate::ids::RequestId;

/// Every byte repeated in each lane of a `u64`.
const fn lanes(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The top bit of each lane whose byte is below `n` (`n` at most 128), else nothing: the
/// classic "has less" test. Exact as a yes/no answer, which is all it is used for.
const fn has_less(x: u64, n: u8) -> u64 {
    x.wrapping_sub(lanes(n)) & !x & lanes(0x80)
}

/// Whether a lane of `x` holds `byte`.
const fn has_byte(x: u64, byte: u8) -> u64 {
    has_less(x ^ lanes(byte), 1)
}

/// Whether any byte of the eight in `x` is one serde_json escapes.
const fn special(x: u64) -> bool {
    has_less(x, 0x20) | has_byte(x, b'"') | has_byte(x, b'\\') != 0
}

/// Whether serde_json would escape any byte of `s`: a control character, `"` or `\` (it
/// writes everything else, non-ASCII included, as is). Eight bytes at a time; the last word
/// overlaps the one before it, and a string shorter than a word is padded with a byte that
/// needs no escaping, so no byte is looked at on its own.
pub(crate) fn needs_escape(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(last) = bytes.last_chunk::<8>() else {
        return needs_escape_short(bytes);
    };
    let (words, _) = bytes.as_chunks::<8>();
    words.iter().any(|word| special(u64::from_ne_bytes(*word)))
        || special(u64::from_ne_bytes(*last))
}

/// [`needs_escape`] of fewer than eight bytes (an event's name, a member's): four bytes or more
/// as two overlapping halves of one word, fewer padded. (Padding every short string through a
/// copy cost a `memcpy` call per name, two per streamed event.)
fn needs_escape_short(bytes: &[u8]) -> bool {
    let word = match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(head), Some(tail)) => {
            u64::from(u32::from_ne_bytes(*head)) | u64::from(u32::from_ne_bytes(*tail)) << 32
        }
        _ => {
            let mut word = [b'a'; 8];
            for (lane, byte) in word.iter_mut().zip(bytes) {
                *lane = *byte;
            }
            u64::from_ne_bytes(word)
        }
    };
    special(word)
}

/// A string as JSON text, its escaping (if any) worked out so its length is known before it
/// is written.
pub(crate) enum JsonStr<'a> {
    /// Written between quotes as is.
    Plain(&'a str),
    /// serde_json's text, quotes included.
    Escaped(String),
}

impl<'a> JsonStr<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        if needs_escape(s) {
            Self::Escaped(serde_json::to_string(s).unwrap_or_default())
        } else {
            Self::Plain(s)
        }
    }

    /// Bytes of JSON text.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Plain(s) => s.len() + 2,
            Self::Escaped(text) => text.len(),
        }
    }

    pub(crate) fn push_to(&self, out: &mut String) {
        match self {
            Self::Plain(s) => {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
            Self::Escaped(text) => out.push_str(text),
        }
    }
}

/// A request id as JSON text: its digits, or its string.
pub(crate) enum IdText<'a> {
    Number(&'a str),
    String(JsonStr<'a>),
}

impl<'a> IdText<'a> {
    /// `digits` holds a number's text.
    pub(crate) fn new(id: &'a RequestId, digits: &'a mut itoa::Buffer) -> Self {
        match id {
            RequestId::Number(n) => Self::Number(digits.format(*n)),
            RequestId::String(s) => Self::String(JsonStr::new(s)),
        }
    }

    /// Bytes of JSON text.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Number(digits) => digits.len(),
            Self::String(text) => text.len(),
        }
    }

    pub(crate) fn push_to(&self, out: &mut String) {
        match self {
            Self::Number(digits) => out.push_str(digits),
            Self::String(text) => text.push_to(out),
        }
    }
}

/// `{"jsonrpc":"2.0","id":<id>` (`jsonrpc` only when the request had it): how every frame
/// answering a request begins, its reply and its events alike, as serde_json wrote them.
pub(crate) struct FrameStart<'a> {
    pub(crate) jsonrpc: bool,
    pub(crate) id: IdText<'a>,
}

impl FrameStart<'_> {
    const JSONRPC: &'static str = r#""jsonrpc":"2.0","#;

    /// Bytes of JSON text.
    pub(crate) fn len(&self) -> usize {
        r#"{"id":"#.len() + if self.jsonrpc { Self::JSONRPC.len() } else { 0 } + self.id.len()
    }

    pub(crate) fn push_to(&self, out: &mut String) {
        out.push('{');
        if self.jsonrpc {
            out.push_str(Self::JSONRPC);
        }
        out.push_str(r#""id":"#);
        self.id.push_to(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_found_wherever_serde_json_escapes() {
        let mut text = String::new();
        for c in (0u32..0x300).filter_map(char::from_u32) {
            for (at, tail) in (0..17).flat_map(|at| [(at, ""), (at, "tail of the string")]) {
                text.clear();
                text.extend(std::iter::repeat_n('a', at));
                text.push(c);
                text.push_str(tail);
                let serde = serde_json::to_string(&text).unwrap_or_default();
                let escaped = serde != format!("\"{text}\"");
                assert_eq!(needs_escape(&text), escaped, "{c:?} at {at}");
                let json = JsonStr::new(&text);
                let mut out = String::new();
                json.push_to(&mut out);
                assert_eq!(out, serde);
                assert_eq!(json.len(), serde.len());
            }
        }
        assert!(!needs_escape(""));
        assert!(!needs_escape("run_0123456789abcdef0123456789abcdef"));
        assert!(!needs_escape("\u{7f}é ü €"));
    }
}
