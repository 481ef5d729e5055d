//! The `[ops]` config section: TOML shape, defaults, validation and JSON Schema.

use std::path::PathBuf;

use flynn_ops::{BackendProvider, LogBuffer, Ops, OpsConfig};
use serde::{Deserialize, Serialize};

/// How the gateway embeds the section.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct GatewayConfig {
    ops: OpsConfig,
}

#[test]
fn an_empty_section_is_all_defaults() {
    let parsed: GatewayConfig = toml::from_str("").unwrap();
    assert_eq!(parsed.ops, OpsConfig::default());
    let parsed: GatewayConfig = toml::from_str("[ops]\n").unwrap();
    let ops = parsed.ops;
    assert!(ops.local_backends.is_empty());
    assert_eq!(ops.docker.compose_file, None);
    assert_eq!(ops.docker.self_service, "flynn");
    assert_eq!(ops.binaries.systemctl, PathBuf::from("systemctl"));
    assert_eq!(ops.binaries.journalctl, PathBuf::from("journalctl"));
    assert_eq!(ops.binaries.docker, PathBuf::from("docker"));
    assert_eq!(ops.binaries.ollama, PathBuf::from("ollama"));
    assert_eq!(ops.command_timeout_secs, 15);
    assert_eq!(ops.update_timeout_secs, 1800);
    assert_eq!(ops.log_buffer_lines, 2000);
    assert_eq!(ops.sampler_interval_secs, 30);
    assert_eq!(ops.ring_capacity, 2880);
    assert!(ops.sample_error_counts);
    ops.validate().unwrap();
}

#[test]
fn a_full_section_parses_and_round_trips() {
    let text = r#"
[ops]
command_timeout_secs = 5
ring_capacity = 100

[[ops.local_backends]]
provider = "ollama"
models = ["llama3.2:3b", "nomic-embed-text"]
ollama_host = "127.0.0.1:11434"

[[ops.local_backends]]
id = "llama-big"
provider = "llamacpp"
name = "llama.cpp (70B)"
unit = "llama-server@70b.service"

[ops.docker]
compose_file = "/srv/flynn/docker-compose.yml"
project_name = "flynn"

[ops.binaries]
docker = "/usr/local/bin/docker"
"#;
    let parsed: GatewayConfig = toml::from_str(text).unwrap();
    let ops = &parsed.ops;
    ops.validate().unwrap();
    assert_eq!(ops.command_timeout_secs, 5);
    assert_eq!(ops.local_backends.len(), 2);
    let ollama = &ops.local_backends[0];
    assert_eq!(
        (ollama.id(), ollama.name(), ollama.unit()),
        ("ollama", "Ollama", "ollama.service")
    );
    assert_eq!(ollama.models, ["llama3.2:3b", "nomic-embed-text"]);
    let llama = &ops.local_backends[1];
    assert_eq!(llama.provider, BackendProvider::Llamacpp);
    assert_eq!(
        (llama.id(), llama.name(), llama.unit()),
        ("llama-big", "llama.cpp (70B)", "llama-server@70b.service")
    );
    assert_eq!(
        ops.docker.compose_file.as_deref(),
        Some(std::path::Path::new("/srv/flynn/docker-compose.yml"))
    );
    assert_eq!(ops.binaries.docker, PathBuf::from("/usr/local/bin/docker"));
    assert_eq!(ops.binaries.systemctl, PathBuf::from("systemctl"));

    let again: GatewayConfig = toml::from_str(&toml::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(again.ops, parsed.ops);
}

#[test]
fn unknown_keys_and_providers_are_rejected() {
    let err = toml::from_str::<GatewayConfig>("[ops]\ncommand_timeout = 5\n").unwrap_err();
    assert!(err.to_string().contains("command_timeout"), "{err}");
    let err = toml::from_str::<GatewayConfig>("[[ops.local_backends]]\nprovider = \"vllm\"\n")
        .unwrap_err();
    assert!(err.to_string().contains("vllm"), "{err}");
}

#[test]
fn validation_explains_what_to_fix() {
    let cases = [
        (
            "[[ops.local_backends]]\nprovider = \"ollama\"\n[[ops.local_backends]]\nprovider = \"ollama\"\n",
            "local backend id `ollama` is used twice",
        ),
        (
            "[[ops.local_backends]]\nid = \"flynn\"\nprovider = \"ollama\"\n",
            "reserved for the daemon",
        ),
        (
            "[[ops.local_backends]]\nprovider = \"ollama\"\nunit = \"--host=evil\"\n",
            "must be a unit name",
        ),
        (
            "[[ops.local_backends]]\nprovider = \"ollama\"\nmodels = [\"-rf\"]\n",
            "must be a model name",
        ),
        (
            "[[ops.local_backends]]\nprovider = \"llamacpp\"\nmodels = [\"x\"]\n",
            "apply to provider \"ollama\" only",
        ),
        (
            "[[ops.local_backends]]\nid = \"a b\"\nprovider = \"ollama\"\n",
            "local backend id `a b`",
        ),
        (
            "[ops]\nring_capacity = 0\n",
            "ring_capacity must be at least 1",
        ),
        (
            "[ops]\ncommand_timeout_secs = 0\n",
            "command_timeout_secs must be at least 1",
        ),
        ("[ops.docker]\nproject_name = \"-p\"\n", "project_name `-p`"),
    ];
    for (text, message) in cases {
        let parsed: GatewayConfig = toml::from_str(text).unwrap();
        let err = parsed.ops.validate().unwrap_err();
        assert!(err.to_string().contains(message), "{text}: {err}");
        let err = Ops::new(parsed.ops, LogBuffer::new(10)).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid [ops] configuration: "),
            "{err}"
        );
    }
}

#[test]
fn the_json_schema_describes_the_section() {
    let schema = serde_json::to_value(schemars::schema_for!(OpsConfig)).unwrap();
    let properties = schema["properties"].as_object().unwrap();
    for key in [
        "local_backends",
        "docker",
        "binaries",
        "command_timeout_secs",
        "update_timeout_secs",
        "log_buffer_lines",
        "max_log_line_chars",
        "sampler_interval_secs",
        "ring_capacity",
        "sample_error_counts",
    ] {
        assert!(properties.contains_key(key), "missing {key}");
    }
    let text = schema.to_string();
    assert!(text.contains("\"llamacpp\""), "{text}");
    assert!(text.contains("self_service"), "{text}");
}
