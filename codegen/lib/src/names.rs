//! How wire names become identifiers: `node.push_token.set` is `NodePushTokenSet` as a type,
//! `node_push_token_set` as a Rust function and `NODE_PUSH_TOKEN_SET` as a constant.

use heck::{ToPascalCase, ToShoutySnakeCase, ToSnakeCase};

/// `system.sessionAnalytics` -> `SystemSessionAnalytics`.
pub fn pascal(wire: &str) -> String {
    wire.split(['.', '_'])
        .map(|part| part.to_pascal_case())
        .collect()
}

/// `system.sessionAnalytics` -> `system_session_analytics`.
pub fn snake(wire: &str) -> String {
    wire.split(['.', '_'])
        .map(|part| part.to_snake_case())
        .collect::<Vec<_>>()
        .join("_")
}

/// `system.sessionAnalytics` -> `SYSTEM_SESSION_ANALYTICS`.
pub fn shouty(wire: &str) -> String {
    wire.split(['.', '_'])
        .map(|part| part.to_shouty_snake_case())
        .collect::<Vec<_>>()
        .join("_")
}

pub fn is_pascal(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Whether `name` can be written bare as a TypeScript property key.
pub fn is_ts_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_become_identifiers() {
        assert_eq!(pascal("node.push_token.set"), "NodePushTokenSet");
        assert_eq!(pascal("system.sessionAnalytics"), "SystemSessionAnalytics");
        assert_eq!(snake("system.sessionAnalytics"), "system_session_analytics");
        assert_eq!(snake("node.capabilities.get"), "node_capabilities_get");
        assert_eq!(
            shouty("agent.setToolUseCallback"),
            "AGENT_SET_TOOL_USE_CALLBACK"
        );
        assert_eq!(shouty("tool_start"), "TOOL_START");
        assert!(is_ts_identifier("push_token"));
        assert!(!is_ts_identifier("a-b"));
    }
}
