//! A channel and a message from it, as every channel module sees them (the pairing gate and
//! the dedupe included). Its own module so that those do not reach back into `channels`, whose
//! entry point calls them. Re-exported from `channels`.

/// The channels, named as in session ids, presence and `pairing.generate {channel}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Teams,
    GoogleChat,
    BlueBubbles,
    Gmail,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Teams => "teams",
            Channel::GoogleChat => "googlechat",
            Channel::BlueBubbles => "bluebubbles",
            Channel::Gmail => "gmail",
        }
    }

    /// The `[channels.<key>]` table.
    pub fn config_key(self) -> &'static str {
        match self {
            Channel::Teams => "teams",
            Channel::GoogleChat => "google_chat",
            Channel::BlueBubbles => "bluebubbles",
            Channel::Gmail => "gmail",
        }
    }
}

/// A message from a platform, after authentication and parsing.
#[derive(Debug, Clone)]
pub struct ChannelMessage {
    pub channel: Channel,
    /// The platform's id of this delivery (message or activity id).
    pub delivery_id: String,
    /// Who sent it (the id pairing and allow-lists use).
    pub sender_id: String,
    pub sender_name: Option<String>,
    /// The conversation: the session is `<channel>:<conversation>`.
    pub conversation: String,
    pub text: String,
}

/// Whether `sender` is on an allow-list (case-insensitive: ids and addresses).
pub fn allowed(allow: &[String], sender: &str) -> bool {
    allow.iter().any(|a| a.trim().eq_ignore_ascii_case(sender))
}
