//! What the embedded model answers to a request: a pure function of the request, so tests can
//! predict every byte.

use std::collections::HashMap;
use std::time::Duration;

use super::directives::{Directive, parse};
use crate::error::ProviderError;
use crate::types::{ChatMessage, ChatRequest, Role, ToolCall, stop_reason};

/// A 1x1 transparent PNG.
pub const PNG_1X1_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// A 1x1 GIF.
pub const GIF_1X1_BASE64: &str = "R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==";

/// Words `[[long:N]]` cycles through.
const LONG_WORDS: [&str; 12] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
];

/// A file the model "produces".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedAttachment {
    pub mime_type: String,
    pub data_base64: String,
    pub filename: Option<String>,
}

/// The whole answer, before it is streamed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub text: String,
    pub attachments: Vec<PlannedAttachment>,
    pub tool_calls: Vec<ToolCall>,
    pub fail: Option<String>,
    pub delay: Duration,
    pub stop_reason: &'static str,
}

/// A small valid payload of the given type.
fn payload(mime_type: &str, filename: Option<&str>) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    match mime_type {
        "image/png" => PNG_1X1_BASE64.to_owned(),
        "image/gif" => GIF_1X1_BASE64.to_owned(),
        "application/json" => engine.encode(br#"{"embedded":true}"#),
        text if text.starts_with("text/") => engine.encode(format!(
            "Attachment {} from the Flynn embedded model.\n",
            filename.unwrap_or("file")
        )),
        _ => engine.encode(b"flynn embedded attachment"),
    }
}

fn long_text(words: u32) -> String {
    (0..words as usize)
        .map(|i| LONG_WORDS[i % LONG_WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The directives of the last user message, gathered by kind.
#[derive(Default)]
struct Gathered {
    fail: Option<String>,
    delay: Duration,
    tools: Vec<(String, serde_json::Value)>,
    attachments: Vec<PlannedAttachment>,
    long_words: u32,
    echo: bool,
}

impl Gathered {
    /// In message order: later `delay` and `fail` replace earlier ones, `long` words add up.
    fn from_directives(directives: Vec<Directive>) -> Self {
        let mut gathered = Self::default();
        for directive in directives {
            match directive {
                Directive::Tool { name, arguments } => gathered.tools.push((name, arguments)),
                Directive::Attach {
                    mime_type,
                    filename,
                } => gathered.attachments.push(PlannedAttachment {
                    data_base64: payload(&mime_type, filename.as_deref()),
                    mime_type,
                    filename,
                }),
                Directive::Long(words) => {
                    gathered.long_words = gathered.long_words.saturating_add(words)
                }
                Directive::Delay(wait) => gathered.delay = wait,
                Directive::Fail(message) => gathered.fail = Some(message),
                Directive::Echo => gathered.echo = true,
            }
        }
        gathered
    }
}

/// Works out the answer to `request` from the directives of its last user message.
pub(crate) fn plan(request: &ChatRequest) -> Result<Plan, ProviderError> {
    let Some(last_user) = request.messages.iter().rposition(|m| m.role == Role::User) else {
        return Ok(Plan {
            text: "Hello! I am the Flynn embedded model. Send me a message.".to_owned(),
            attachments: Vec::new(),
            tool_calls: Vec::new(),
            fail: None,
            delay: Duration::ZERO,
            stop_reason: stop_reason::END_TURN,
        });
    };
    let user = &request.messages[last_user];
    let parsed = parse(&user.content).map_err(|message| ProviderError::BadRequest {
        status: 400,
        message: format!("embedded model: {message}"),
    })?;
    let results = tool_results(&request.messages[last_user + 1..]);
    let mut sentences: Vec<String> = images_sentence(user).into_iter().collect();
    let gathered = Gathered::from_directives(parsed.directives);

    // A tool turn: the model asks for the tools and waits for their results.
    if results.is_empty() && !gathered.tools.is_empty() {
        return Ok(tool_turn(request, sentences, gathered));
    }

    sentences.extend(results.iter().map(|r| {
        if r.ends_with('.') {
            r.clone()
        } else {
            format!("{r}.")
        }
    }));
    let content_directives =
        !gathered.tools.is_empty() || !gathered.attachments.is_empty() || gathered.long_words > 0;
    if gathered.echo || (!content_directives && results.is_empty()) {
        if parsed.text.is_empty() {
            sentences.push("You said nothing.".to_owned());
        } else {
            sentences.push(format!("You said: {}", parsed.text));
        }
    }
    if gathered.long_words > 0 {
        sentences.push(long_text(gathered.long_words));
    }
    for attachment in &gathered.attachments {
        sentences.push(format!(
            "Attached {} ({}).",
            attachment.filename.as_deref().unwrap_or("a file"),
            attachment.mime_type
        ));
    }
    Ok(Plan {
        text: sentences.join(" "),
        attachments: gathered.attachments,
        tool_calls: Vec::new(),
        fail: gathered.fail,
        delay: gathered.delay,
        stop_reason: stop_reason::END_TURN,
    })
}

/// `Tool NAME returned: CONTENT` for each tool result after the last user message.
fn tool_results(later: &[ChatMessage]) -> Vec<String> {
    let names: HashMap<&str, &str> = later
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .map(|call| (call.id.as_str(), call.name.as_str()))
        .collect();
    later
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| {
            let id = m.tool_call_id.as_deref().unwrap_or_default();
            let name = names.get(id).copied().unwrap_or("tool");
            format!("Tool {name} returned: {}", m.content.trim())
        })
        .collect()
}

/// `I received N image(s) (TYPES).` when the message has images.
fn images_sentence(user: &ChatMessage) -> Option<String> {
    if user.images.is_empty() {
        return None;
    }
    let count = user.images.len();
    let kinds: Vec<&str> = user.images.iter().map(|i| i.mime_type.as_str()).collect();
    let noun = if count == 1 { "image" } else { "images" };
    Some(format!("I received {count} {noun} ({}).", kinds.join(", ")))
}

/// The plan that calls the `[[tool:...]]` tools; ids count the request's user messages.
fn tool_turn(request: &ChatRequest, sentences: Vec<String>, gathered: Gathered) -> Plan {
    let turn = request
        .messages
        .iter()
        .filter(|m| m.role == Role::User)
        .count();
    let tool_calls = gathered
        .tools
        .into_iter()
        .enumerate()
        .map(|(i, (name, arguments))| ToolCall {
            id: format!("call_emb_{turn}_{i}"),
            name,
            arguments,
        })
        .collect();
    Plan {
        text: sentences.join(" "),
        attachments: Vec::new(),
        tool_calls,
        fail: gathered.fail,
        delay: gathered.delay,
        stop_reason: stop_reason::TOOL_USE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn png_payload_is_a_valid_one_pixel_png() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(PNG_1X1_BASE64)
            .unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 1);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 1);
        assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND");
        let gif = base64::engine::general_purpose::STANDARD
            .decode(GIF_1X1_BASE64)
            .unwrap();
        assert!(gif.starts_with(b"GIF89a"));
    }

    #[test]
    fn long_text_has_exactly_n_words() {
        assert_eq!(long_text(0), "");
        assert_eq!(long_text(30).split_whitespace().count(), 30);
    }
}
