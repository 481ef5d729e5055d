//! The message a delivery becomes, and the session it goes to.
//!
//! A template is text with placeholders in double braces: `{{payload}}` (the payload as pretty
//! JSON), `{{hook}}` (the hook's name) and `{{/json/pointer}}` (RFC 6901: strings as they are,
//! other values as JSON, missing ones empty). Each substituted value is cut at
//! [`MAX_VALUE_BYTES`] and the whole message at [`MAX_MESSAGE_BYTES`], so a large payload cannot
//! fill the model's context.

use serde_json::Value;

/// Most bytes one placeholder expands to (16 KiB).
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Most bytes of a rendered message (64 KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest payload value taken into a session id (the session id rules bound the whole too).
pub const MAX_SESSION_VALUE_CHARS: usize = 128;

/// The template used when a hook configures none.
pub const DEFAULT_TEMPLATE: &str =
    "Webhook `{{hook}}` received a delivery. Its payload:\n\n```json\n{{payload}}\n```";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Payload,
    Hook,
    Pointer(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; `Err` says which placeholder is wrong and what is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                "a `{{` is not closed by `}}`; placeholders are {{payload}}, {{hook}} and {{/json/pointer}}"
                    .to_owned()
            })?;
            let name = after[..close].trim();
            parts.push(match name {
                "payload" => Part::Payload,
                "hook" => Part::Hook,
                pointer if is_json_pointer(pointer) && !pointer.is_empty() => {
                    Part::Pointer(pointer.to_owned())
                }
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{{{other}}}}}`; use {{{{payload}}}}, {{{{hook}}}} or a JSON pointer such as {{{{/pull_request/title}}}}"
                    ));
                }
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The message for a delivery of `hook` carrying `payload`.
    pub fn render(&self, hook: &str, payload: &Value) -> String {
        let mut message = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => message.push_str(text),
                Part::Hook => message.push_str(hook),
                Part::Payload => {
                    let pretty = serde_json::to_string_pretty(payload).unwrap_or_default();
                    message.push_str(&truncate(&pretty, MAX_VALUE_BYTES));
                }
                Part::Pointer(pointer) => match payload.pointer(pointer) {
                    None => {}
                    Some(Value::String(text)) => message.push_str(&truncate(text, MAX_VALUE_BYTES)),
                    Some(value) => message.push_str(&truncate(&value.to_string(), MAX_VALUE_BYTES)),
                },
            }
        }
        truncate(&message, MAX_MESSAGE_BYTES)
    }
}

/// Whether `pointer` is an RFC 6901 JSON pointer: empty, or `/`-separated tokens in which `~`
/// is only ever followed by `0` or `1`.
pub fn is_json_pointer(pointer: &str) -> bool {
    if pointer.is_empty() {
        return true;
    }
    if !pointer.starts_with('/') {
        return false;
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// Why a payload gives no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The pointer names nothing, or something that is not a string or an integer.
    Missing,
    /// The value makes no valid session id (empty, too long, whitespace or control characters).
    Invalid,
}

/// The session of a delivery: `base`, or `base:<value>` with the value `pointer` names.
pub fn session_for(
    base: &str,
    pointer: Option<&str>,
    payload: &Value,
) -> Result<String, SessionError> {
    let Some(pointer) = pointer else {
        return Ok(base.to_owned());
    };
    let value = match payload.pointer(pointer) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return Err(SessionError::Missing),
    };
    if value.is_empty()
        || value.chars().count() > MAX_SESSION_VALUE_CHARS
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(SessionError::Invalid);
    }
    let session = format!("{base}:{value}");
    crate::session_id::validate_session_id(&session, "sessionId")
        .map_err(|_| SessionError::Invalid)?;
    Ok(session)
}

/// `text` cut to at most `max` bytes at a character boundary, saying so when it was cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut: {} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_filled_from_the_payload() {
        let t = Template::parse("[{{hook}}] {{ /pull_request/title }} #{{/number}}{{/nope}}")
            .unwrap_or_else(|e| panic!("{e}"));
        let payload = json!({ "pull_request": { "title": "Fix it" }, "number": 7 });
        assert_eq!(t.render("gh", &payload), "[gh] Fix it #7");
        let whole = Template::parse("{{payload}}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(whole.render("gh", &json!({"a": 1})), "{\n  \"a\": 1\n}");
    }

    #[test]
    fn bad_templates_say_what_is_allowed() {
        let unknown = Template::parse("{{body}}").unwrap_err();
        assert!(
            unknown.contains("{{body}}") && unknown.contains("{{payload}}"),
            "{unknown}"
        );
        assert!(Template::parse("{{/a~3}}").is_err());
        assert!(Template::parse("open {{payload").is_err());
        assert!(Template::parse("no placeholders").is_ok());
    }

    #[test]
    fn large_values_are_cut_at_a_bound() {
        let t = Template::parse("{{/text}}").unwrap_or_else(|e| panic!("{e}"));
        let long = "é".repeat(MAX_VALUE_BYTES);
        let out = t.render("h", &json!({ "text": long }));
        assert!(out.len() < MAX_VALUE_BYTES + 64, "{}", out.len());
        assert!(out.contains("(cut: "));
    }

    #[test]
    fn the_session_comes_from_the_pointer() {
        let payload = json!({ "repository": { "name": "flynn", "id": 42, "bad": "a b" } });
        let at = |p: &str| session_for("webhook:gh", Some(p), &payload);
        assert_eq!(at("/repository/name"), Ok("webhook:gh:flynn".to_owned()));
        assert_eq!(at("/repository/id"), Ok("webhook:gh:42".to_owned()));
        assert_eq!(at("/repository/none"), Err(SessionError::Missing));
        assert_eq!(at("/repository"), Err(SessionError::Missing));
        assert_eq!(at("/repository/bad"), Err(SessionError::Invalid));
        assert_eq!(
            session_for("webhook:gh", None, &payload),
            Ok("webhook:gh".to_owned())
        );
    }
}
