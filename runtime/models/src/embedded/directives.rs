//! Parsing the `[[...]]` directives that drive the embedded model from a user message.

use std::time::Duration;

use serde_json::Value;

/// Most words `[[long:N]]` produces (keeps a typo from allocating gigabytes).
pub const MAX_LONG_WORDS: u32 = 200_000;
/// Longest wait `[[delay:MS]]` accepts.
pub const MAX_DELAY_MS: u64 = 60_000;

/// One directive found in the last user message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Directive {
    /// `[[tool:NAME {json}]]`
    Tool { name: String, arguments: Value },
    /// `[[attach:MIME filename]]`
    Attach {
        mime_type: String,
        filename: Option<String>,
    },
    /// `[[long:N]]`
    Long(u32),
    /// `[[delay:MS]]`
    Delay(Duration),
    /// `[[fail:MESSAGE]]`
    Fail(String),
    /// `[[echo]]`
    Echo,
}

/// The directives of a message and its text with the directives removed.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Parsed {
    pub directives: Vec<Directive>,
    pub text: String,
}

const NAMES: [&str; 6] = ["tool", "attach", "long", "delay", "fail", "echo"];

/// Parses every known directive; `[[` followed by an unknown name is ordinary text. A known
/// directive with a bad argument is an error whose message shows the right form.
pub(crate) fn parse(content: &str) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut text = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find("[[") {
        let after_open = &rest[start + 2..];
        let name_len = after_open
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(after_open.len());
        let name = &after_open[..name_len];
        if !NAMES.contains(&name) {
            text.push_str(&rest[..start + 2]);
            rest = after_open;
            continue;
        }
        text.push_str(&rest[..start]);
        let after_name = &after_open[name_len..];
        let (directive, consumed) = parse_one(name, after_name)?;
        parsed.directives.push(directive);
        rest = &after_name[consumed..];
    }
    text.push_str(rest);
    parsed.text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(parsed)
}

/// Parses the part after the directive name; returns the directive and the bytes consumed
/// (through the closing `]]`).
fn parse_one(name: &str, input: &str) -> Result<(Directive, usize), String> {
    if name == "tool" {
        return parse_tool(input);
    }
    let (argument, consumed) = if let Some(stripped) = input.strip_prefix(':') {
        let end = stripped
            .find("]]")
            .ok_or_else(|| format!("[[{name}: is not closed; end it with ]]"))?;
        (Some(stripped[..end].trim()), 1 + end + 2)
    } else if input.starts_with("]]") {
        (None, 2)
    } else {
        return Err(format!("[[{name} is not closed; end it with ]]"));
    };
    let directive = match (name, argument) {
        ("echo", None) => Directive::Echo,
        ("long", Some(arg)) => {
            let words: u32 = arg.parse().map_err(|_| {
                format!("[[long:{arg}]] needs a number of words, e.g. [[long:200]]")
            })?;
            if words > MAX_LONG_WORDS {
                return Err(format!(
                    "[[long:{words}]] asks for more than {MAX_LONG_WORDS} words"
                ));
            }
            Directive::Long(words)
        }
        ("delay", Some(arg)) => {
            let ms: u64 = arg
                .parse()
                .map_err(|_| format!("[[delay:{arg}]] needs milliseconds, e.g. [[delay:200]]"))?;
            if ms > MAX_DELAY_MS {
                return Err(format!("[[delay:{ms}]] is longer than {MAX_DELAY_MS} ms"));
            }
            Directive::Delay(Duration::from_millis(ms))
        }
        ("fail", Some(arg)) => Directive::Fail(if arg.is_empty() {
            "embedded model failure".to_owned()
        } else {
            arg.to_owned()
        }),
        ("attach", Some(arg)) => {
            let mut parts = arg.split_whitespace();
            let mime_type = parts.next().unwrap_or_default();
            let valid_mime = mime_type
                .split_once('/')
                .is_some_and(|(kind, sub)| !kind.is_empty() && !sub.is_empty());
            if !valid_mime {
                return Err(format!(
                    "[[attach:{arg}]] needs a MIME type and an optional file name, e.g. \
                     [[attach:image/png dot.png]]"
                ));
            }
            Directive::Attach {
                mime_type: mime_type.to_owned(),
                filename: parts.next().map(str::to_owned),
            }
        }
        ("echo", Some(_)) => return Err("[[echo]] takes no argument".to_owned()),
        (_, None) => {
            return Err(format!(
                "[[{name}]] needs an argument: [[{name}:...]] (see the embedded model's directives)"
            ));
        }
        _ => return Err(format!("unknown directive [[{name}]]")),
    };
    Ok((directive, consumed))
}

/// `:NAME]]` or `:NAME {json}]]`; the JSON may itself contain `]]`.
fn parse_tool(input: &str) -> Result<(Directive, usize), String> {
    const FORM: &str = "write it as [[tool:NAME]] or [[tool:NAME {\"arg\": 1}]]";
    let body = input
        .strip_prefix(':')
        .ok_or_else(|| format!("[[tool needs a tool name; {FORM}"))?;
    let name_len = body
        .find(|c: char| c.is_whitespace() || c == ']')
        .unwrap_or(body.len());
    let name = &body[..name_len];
    if name.is_empty() {
        return Err(format!("[[tool: needs a tool name; {FORM}"));
    }
    let after_name = &body[name_len..];
    let trimmed = after_name.trim_start();
    let mut offset = 1 + name_len + (after_name.len() - trimmed.len());
    let arguments = if trimmed.starts_with("]]") {
        Value::Object(serde_json::Map::new())
    } else {
        let mut values = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
        let value = match values.next() {
            Some(Ok(value)) => value,
            Some(Err(error)) => {
                return Err(format!(
                    "the arguments of [[tool:{name} ...]] are not JSON ({error}); {FORM}"
                ));
            }
            None => return Err(format!("[[tool:{name} is not closed; {FORM}")),
        };
        let json_len = values.byte_offset();
        let after_json = &trimmed[json_len..];
        let closing = after_json.trim_start();
        if !closing.starts_with("]]") {
            return Err(format!(
                "[[tool:{name} ...]] is not closed after its JSON; {FORM}"
            ));
        }
        offset += json_len + (after_json.len() - closing.len());
        value
    };
    Ok((
        Directive::Tool {
            name: name.to_owned(),
            arguments,
        },
        offset + 2,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_directive_and_strips_them() {
        let parsed = parse(
            "hi [[tool:read {\"path\": \"[[x]]\"}]] [[tool:ls]] [[attach:image/png dot.png]] \
             [[long:5]] [[delay:20]] [[fail:boom now]] [[echo]] there",
        )
        .unwrap();
        assert_eq!(
            parsed.directives,
            vec![
                Directive::Tool {
                    name: "read".into(),
                    arguments: json!({"path": "[[x]]"})
                },
                Directive::Tool {
                    name: "ls".into(),
                    arguments: json!({})
                },
                Directive::Attach {
                    mime_type: "image/png".into(),
                    filename: Some("dot.png".into())
                },
                Directive::Long(5),
                Directive::Delay(Duration::from_millis(20)),
                Directive::Fail("boom now".into()),
                Directive::Echo,
            ]
        );
        assert_eq!(parsed.text, "hi there");
    }

    #[test]
    fn unknown_brackets_are_text() {
        let parsed = parse("see [[wiki link]] and [[").unwrap();
        assert!(parsed.directives.is_empty());
        assert_eq!(parsed.text, "see [[wiki link]] and [[");
    }

    #[test]
    fn bad_arguments_say_the_right_form() {
        assert!(parse("[[long:abc]]").unwrap_err().contains("[[long:200]]"));
        assert!(parse("[[delay:999999]]").unwrap_err().contains("longer"));
        assert!(parse("[[tool:x {oops]]").unwrap_err().contains("not JSON"));
        assert!(
            parse("[[tool:x {} trailing]]")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(parse("[[attach:png]]").unwrap_err().contains("MIME"));
        assert!(parse("[[long:5").unwrap_err().contains("not closed"));
        assert!(parse("[[long]]").unwrap_err().contains("needs an argument"));
    }
}
