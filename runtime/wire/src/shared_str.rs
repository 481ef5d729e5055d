//! [`SharedStr`]: the Rust type of result members the spec marks with
//! `"x-rust-type": {"crate": "flynn-wire", "path": "flynn_wire::SharedStr", ...}` (typify's
//! extension; the spec's `x-decisions` entry `shared-result-strings` says which and why). On the
//! wire it is a plain JSON string; in Rust it is a string the gateway hands out without copying:
//! a `&'static str` (the gateway's version) or a reference-counted one it already holds (a
//! connection's id, its session), so building such a result allocates and frees nothing.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable string, static or shared. Compares, hashes and orders as its text.
#[derive(Clone)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl SharedStr {
    /// A static string: no allocation, and cloning it costs nothing.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Repr::Static(text))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(text) => text,
            Repr::Shared(text) => text,
        }
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(text: Arc<str>) -> Self {
        Self(Repr::Shared(text))
    }
}

impl From<&Arc<str>> for SharedStr {
    fn from(text: &Arc<str>) -> Self {
        Self(Repr::Shared(text.clone()))
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        Self(Repr::Shared(text.into()))
    }
}

/// Copies the text (use [`SharedStr::from_static`] for a literal that should not be copied).
impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        Self(Repr::Shared(text.into()))
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        text.as_str().to_owned()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_plain_json_string_both_ways() {
        let shared = SharedStr::from(Arc::<str>::from("ws:c0ffee"));
        assert_eq!(
            serde_json::to_string(&shared).ok().as_deref(),
            Some(r#""ws:c0ffee""#)
        );
        let back: SharedStr = serde_json::from_str(r#""a\"b""#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, "a\"b");
        assert_eq!(
            serde_json::to_string(&SharedStr::from_static("1.0"))
                .ok()
                .as_deref(),
            Some(r#""1.0""#)
        );
    }

    #[test]
    fn compares_by_text_whatever_it_holds() {
        let shared = SharedStr::from(Arc::<str>::from("x"));
        assert_eq!(shared, SharedStr::from_static("x"));
        assert_ne!(shared, SharedStr::from_static("y"));
        assert_eq!(shared.to_string(), "x");
        assert_eq!(format!("{shared:?}"), r#""x""#);
    }

    #[test]
    fn clones_share_the_text() {
        let text: Arc<str> = Arc::from("conn");
        let shared = SharedStr::from(&text);
        let clone = shared.clone();
        assert_eq!(Arc::strong_count(&text), 3);
        assert!(std::ptr::eq(clone.as_str(), &*text));
    }
}
