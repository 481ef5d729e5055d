//! The configuration as `config.get` shows it: every secret replaced by `***`.

use super::file::Config;

impl Config {
    /// The configuration as JSON with every secret replaced by `***` (for `config.get`).
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        redact(&mut value);
        value
    }
}

/// Whether a config key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['_', '-'], "");
    [
        "token",
        "secret",
        "password",
        "apikey",
        "privatekey",
        "accesskey",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                // Lists and tables under a secret-sounding key (`server.tokens`) are walked: their
                // members say which parts are secret.
                if is_secret_key(key) && (v.is_string() || v.is_number()) {
                    *v = serde_json::Value::String("***".into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}
