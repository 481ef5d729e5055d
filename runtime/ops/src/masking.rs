//! Secret masking for log lines returned by `system.serviceLogs`.
//!
//! Heuristics, applied in this order to every line; each secret becomes `***`:
//!
//! 1. credentials in URLs: `scheme://user:SECRET@host`;
//! 2. `Authorization:` / `Proxy-Authorization:` headers (also `authorization="..."`): the whole
//!    value, scheme included;
//! 3. `Bearer TOKEN` anywhere (the token must look like one: at least 8 characters with a digit,
//!    mixed case or a symbol, so prose such as "bearer authentication" stays);
//! 4. `key=value`, `key: value` and JSON `"key":"value"` where the key ends in `token`,
//!    `secret`, `password`, `passwd`, `passphrase`, `api_key`/`apikey`/`api-key`,
//!    `access_key`, `private_key`, `secret_key`, `client_secret` (any case, any prefix such as
//!    `GITHUB_TOKEN` or `x-api-key`). Keys that merely contain the word (`max_tokens`,
//!    `token_count`) are left alone, and so are values that cannot be secrets: empty, `null`,
//!    `true`/`false`, an already masked value, or a number of at most six digits (llama.cpp
//!    prints `EOS token = 2`);
//! 5. well-known token shapes: `sk-…` (OpenAI, Anthropic), `sk_live_…`/`rk_live_…` (Stripe),
//!    `ghp_…`/`gho_…`/`ghu_…`/`ghs_…`/`ghr_…`/`github_pat_…` (GitHub), `xoxb-…`/`xoxp-…` and the
//!    other Slack `xox?-` forms, `AKIA…`/`ASIA…` (AWS access key ids), `AIza…` (Google API
//!    keys) and JWTs (`eyJ….….…`).
//!
//! A line counts as redacted when the result differs from the input.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What a secret is replaced with.
pub const MASK: &str = "***";

// The patterns below are constants: compiling them cannot fail at run time for any input, and
// `masking_rules_compile` in the tests forces every one of them.

static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]+:)([^\s@/]+)@").expect("constant regex")
});

static AUTH_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b((?:proxy-)?authorization['"]?\s*[:=]\s*['"]?)((?:(?:bearer|basic|token|digest|apikey|negotiate)\s+)?[^\s"',;]+)"#,
    )
    .expect("constant regex")
});

static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]*[A-Za-z0-9\-_~+/]=*)")
        .expect("constant regex")
});

static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)([A-Za-z0-9_.\-]*(?:token|secret|password|passwd|passphrase|api[_\-]?key|apikey|(?:access|private|secret|signing|encryption|master|client)[_\-]?key|client[_\-]?secret))(['"]?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&"'}\])]+)"#,
    )
    .expect("constant regex")
});

static TOKEN_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:",
        r"sk-[A-Za-z0-9_\-]{16,}",
        r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        r"|gh[pousr]_[A-Za-z0-9]{20,}",
        r"|github_pat_[A-Za-z0-9_]{20,}",
        r"|xox[abposr]-[A-Za-z0-9\-]{10,}",
        r"|(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"|AIza[0-9A-Za-z_\-]{35}",
        r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
        r")"
    ))
    .expect("constant regex")
});

/// Forces every pattern to compile (used by the tests).
pub fn masking_rules_compile() -> bool {
    [
        &*URL_CREDENTIALS,
        &*AUTH_HEADER,
        &*BEARER,
        &*KEY_VALUE,
        &*TOKEN_SHAPES,
    ]
    .iter()
    .all(|re| !re.as_str().is_empty())
}

/// Masks the secrets of one line. Returns the masked line and whether anything was masked.
pub fn mask_secrets(line: &str) -> (String, bool) {
    let mut text: Cow<'_, str> = Cow::Borrowed(line);
    text = replace(text, &URL_CREDENTIALS, |caps| {
        format!("{}{MASK}@", &caps[1])
    });
    text = replace(text, &AUTH_HEADER, |caps| {
        if is_secret_value(&caps[2]) {
            format!("{}{MASK}", &caps[1])
        } else {
            caps[0].to_owned()
        }
    });
    text = replace(text, &BEARER, |caps| {
        if looks_like_token(&caps[2]) {
            format!("{}{MASK}", &caps[1])
        } else {
            caps[0].to_owned()
        }
    });
    text = replace(text, &KEY_VALUE, |caps| {
        let value = &caps[3];
        let (open, inner, close) = split_quotes(value);
        if is_secret_value(inner) {
            format!("{}{}{open}{MASK}{close}", &caps[1], &caps[2])
        } else {
            caps[0].to_owned()
        }
    });
    text = replace(text, &TOKEN_SHAPES, |_| MASK.to_owned());
    let redacted = text != line;
    (text.into_owned(), redacted)
}

fn replace<'a>(
    text: Cow<'a, str>,
    regex: &Regex,
    replacement: impl FnMut(&Captures<'_>) -> String,
) -> Cow<'a, str> {
    match regex.replace_all(&text, replacement) {
        Cow::Borrowed(_) => text,
        Cow::Owned(replaced) => Cow::Owned(replaced),
    }
}

fn split_quotes(value: &str) -> (&str, &str, &str) {
    for quote in ["\"", "'"] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return (quote, &value[1..value.len() - 1], quote);
        }
    }
    ("", value, "")
}

/// Values that are not secrets even under a secret-looking key.
fn is_secret_value(value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() || value.contains(MASK) {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true"
            | "false"
            | "null"
            | "none"
            | "nil"
            | "undefined"
            | "redacted"
            | "<redacted>"
            | "[redacted]"
            | "(redacted)"
            | "required"
            | "missing"
            | "unset"
            | "empty"
    ) {
        return false;
    }
    !(value.len() <= 6 && value.bytes().all(|b| b.is_ascii_digit()))
}

/// A bearer credential has some entropy: a digit, mixed case or a symbol, and some length.
fn looks_like_token(candidate: &str) -> bool {
    if candidate.len() < 8 || candidate.contains(MASK) {
        return false;
    }
    let digit = candidate.bytes().any(|b| b.is_ascii_digit());
    let upper = candidate.bytes().any(|b| b.is_ascii_uppercase());
    let lower = candidate.bytes().any(|b| b.is_ascii_lowercase());
    let symbol = candidate.bytes().any(|b| !b.is_ascii_alphanumeric());
    digit || (upper && lower) || symbol
}
