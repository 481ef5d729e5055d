//! JSON paths as reports show them: dotted from the frame root, like the protocol's
//! `error.data.path` (`result.sessions[0].id`; keys that are not plain names are quoted:
//! `result.featureGates["ui.canvas"]`).

use std::fmt;

/// A path from a frame's root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(String);

fn plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !key.starts_with(|c: char| c.is_ascii_digit())
}

impl JsonPath {
    pub fn root() -> Self {
        Self(String::new())
    }

    /// The path of member `key`.
    pub fn key(&self, key: &str) -> Self {
        if plain(key) {
            if self.0.is_empty() {
                Self(key.to_owned())
            } else {
                Self(format!("{}.{key}", self.0))
            }
        } else {
            let quoted = serde_json::Value::String(key.to_owned()).to_string();
            Self(format!("{}[{quoted}]", self.0))
        }
    }

    /// The path of element `i`.
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// The path of any element (`$each`).
    pub fn index_any(&self) -> Self {
        Self(format!("{}[*]", self.0))
    }

    /// Converts a JSON Pointer (`/result/sessions/0`) below this path.
    pub fn join_pointer(&self, pointer: &str) -> Self {
        let mut path = self.clone();
        for raw in pointer.split('/').skip(1) {
            let segment = raw.replace("~1", "/").replace("~0", "~");
            path = match segment.parse::<usize>() {
                Ok(i) => path.index(i),
                Err(_) => path.key(&segment),
            };
        }
        path
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or below it.
    pub fn starts_with(&self, other: &str) -> bool {
        other.is_empty()
            || self.0 == other
            || (self.0.starts_with(other)
                && matches!(self.0.as_bytes().get(other.len()), Some(b'.') | Some(b'[')))
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_the_protocol() {
        let p = JsonPath::root()
            .key("result")
            .key("sessions")
            .index(0)
            .key("id");
        assert_eq!(p.to_string(), "result.sessions[0].id");
        assert_eq!(
            JsonPath::root().key("result").key("ui.canvas").to_string(),
            "result[\"ui.canvas\"]"
        );
        assert_eq!(
            JsonPath::root()
                .key("params")
                .join_pointer("/attachments/0/data")
                .to_string(),
            "params.attachments[0].data"
        );
        assert!(p.starts_with("result.sessions"));
        assert!(!p.starts_with("result.sess"));
        assert!(p.starts_with(""));
    }
}
