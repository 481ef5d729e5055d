//! The parts of a transcript: its header and its steps. Their own module so that the parser
//! ([`super::parse`]) builds them without reaching back into the loader ([`super`]).

use serde_json::Value;

use crate::http_step::HttpStep;
use crate::pattern::Pattern;

/// The connection steps use when they name none.
pub const DEFAULT_CONN: &str = "main";

/// What the gateway must allow for the transcript to make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthNeed {
    /// Works with or without a token (the runner sends `--token` when given).
    #[default]
    Any,
    /// The gateway must not require a token.
    None,
    /// The gateway must require a token (the transcript shows token paths).
    Token,
}

impl AuthNeed {
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::None => "none",
            Self::Token => "token",
        }
    }
}

/// The header's `gateway` object.
#[derive(Debug, Clone, Default)]
pub struct GatewayNeeds {
    pub auth: AuthNeed,
    /// Extra TOML for the Flynn daemon (`conformance/gateway.toml` holds the union).
    pub toml: Option<String>,
    /// The queue policy the transcript puts its session in (documentation and coverage).
    pub queue: Option<Value>,
    /// The transcript turns tool approval on.
    pub tool_approval: bool,
    /// The model the transcript's agent runs rely on (`embedded`: the directive-driven default).
    pub model: Option<String>,
}

/// The first line.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub description: String,
    pub gateway: GatewayNeeds,
    /// Feature tags this transcript demonstrates (`auth:header`, `queue:collect`, ...).
    pub covers: Vec<String>,
}

/// A frame a `send` step puts on the wire.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A JSON frame; may hold `$ref`s.
    Frame { pattern: Box<Pattern>, raw: Value },
    /// Text sent as is (malformed frames).
    Raw(String),
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Opens the connection with these headers and subprotocols (`${TOKEN}` and
    /// `${TOKEN_B64URL}` are replaced by the token). `status` expects the HTTP handshake to fail
    /// with that status instead.
    Connect {
        headers: Vec<(String, String)>,
        subprotocols: Option<Vec<String>>,
        path: Option<String>,
        status: Option<u16>,
    },
    Send {
        frame: Outgoing,
        /// The frame breaks the spec on purpose (`validate` checks that it really does).
        malformed: bool,
    },
    Expect {
        pattern: Pattern,
        raw: Value,
    },
    /// No frame arrives for `ms` (on `conn`, or on every connection when none is named).
    ExpectSilence {
        ms: u64,
    },
    /// The server closes the connection (with `code`, when given).
    ExpectClose {
        code: Option<u16>,
    },
    /// The client closes the connection.
    Close {
        code: u16,
    },
    /// An HTTP request to the gateway's port and the answer expected (`crate::http_step`).
    /// It belongs to no connection.
    Http(Box<HttpStep>),
    /// A note for readers; ignored.
    Comment,
}

/// One line after the header.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: usize,
    /// `None` only for `expect-silence` on every connection.
    pub conn: Option<String>,
    pub kind: StepKind,
}

impl Step {
    /// The connection name (`main` when the line names none).
    pub fn conn_name(&self) -> &str {
        self.conn.as_deref().unwrap_or(DEFAULT_CONN)
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            StepKind::Connect { .. } => "connect",
            StepKind::Send { .. } => "send",
            StepKind::Expect { .. } => "expect",
            StepKind::ExpectSilence { .. } => "expect-silence",
            StepKind::ExpectClose { .. } => "expect-close",
            StepKind::Close { .. } => "close",
            StepKind::Http(_) => "http",
            StepKind::Comment => "comment",
        }
    }
}
