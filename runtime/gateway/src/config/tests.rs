//! Unit tests of the configuration: defaults, redaction, exposure, the JSON Schema, secret
//! variables, and the example file covering every key.

mod checks {
    use std::net::IpAddr;

    use crate::config::*;

    #[test]
    fn empty_file_is_the_default() {
        let c: Config = toml::from_str("").unwrap_or_default();
        assert_eq!(c.server.port, 18800);
        assert!(c.server.bind.is_loopback());
        assert_eq!(c.queue.default, QueuePolicy::default());
    }

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config::default();
        c.server.token = Some("supersecret-token".into());
        let v = c.redacted();
        assert_eq!(v["server"]["token"], "***");
        assert!(!v.to_string().contains("supersecret"));
        // A boolean switch named like a secret is not a secret.
        assert_eq!(v["server"]["tailscale_identity"], false);
    }

    #[test]
    fn non_loopback_without_token_is_refused() {
        let c = Config::default();
        assert!(
            c.check_exposure("0.0.0.0".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))
                .is_err()
        );
        assert!(c.check_exposure(IpAddr::from([127, 0, 0, 1])).is_ok());
    }

    #[test]
    fn json_schema_describes_the_file() {
        let schema = Config::json_schema();
        let text = schema.to_string();
        for key in [
            "server",
            "token",
            "tailscale_identity",
            "auth_http",
            "allowed_roles",
            "queue",
            "models",
            "tools",
            "ops",
        ] {
            assert!(
                text.contains(&format!("\"{key}\"")),
                "the config schema lacks `{key}`"
            );
        }
        // The documented example file validates against it; a misspelt key does not.
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
        let example: toml::Value = toml::from_str(include_str!("../../flynn.example.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let instance = serde_json::to_value(example).unwrap_or_default();
        if let Some(error) = validator.iter_errors(&instance).next() {
            panic!(
                "the example does not validate: {error} at {}",
                error.instance_path()
            );
        }
        let wrong = serde_json::json!({ "server": { "prot": 1 } });
        assert!(
            !validator.is_valid(&wrong),
            "a misspelt key must not validate"
        );
    }

    #[test]
    fn secret_env_names_are_the_token_the_tier_keys_and_hide_env() {
        let c: Config = toml::from_str(
            "[models.tiers.a]\nkind = \"openai\"\nmodel = \"m\"\napi_key_env = \"MY_KEY\"\n\
             [tools.shell]\nhide_env = [\"SECRET_*\"]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let present = [
            "FLYNN_SERVER_TOKEN",
            "MY_KEY",
            "ANTHROPIC_API_KEY",
            "SECRET_THING",
            "OPENAI_API_KEY",
            "PATH",
            "HOME",
        ];
        let names: Vec<String> = c.secret_env_names(present).into_iter().collect();
        assert_eq!(
            names,
            [
                "ANTHROPIC_API_KEY",
                "FLYNN_SERVER_TOKEN",
                "MY_KEY",
                "SECRET_THING"
            ]
        );
        // The default hide_env covers FLYNN_* and both providers' usual variables.
        let names = Config::default().secret_env_names(present);
        assert!(
            names.contains("OPENAI_API_KEY") && !names.contains("PATH"),
            "{names:?}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<Config>("[server]\nprot = 1").is_err());
    }
}

mod example_file {
    use crate::config::*;

    /// Paths (as segments) of every leaf key of a TOML table.
    fn leaf_keys(prefix: &[String], value: &toml::Value, out: &mut Vec<Vec<String>>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let mut path = prefix.to_vec();
                    path.push(k.clone());
                    leaf_keys(&path, v, out);
                }
            }
            _ => out.push(prefix.to_vec()),
        }
    }

    /// The example file parses, and documents every key the daemon has (so the README's
    /// configuration section cannot fall behind the code).
    #[test]
    fn example_file_parses_and_covers_every_key() {
        let text = include_str!("../../flynn.example.toml");
        let example: Config =
            toml::from_str(text).unwrap_or_else(|e| panic!("example does not parse: {e}"));
        example
            .validate()
            .unwrap_or_else(|e| panic!("example is invalid: {e}"));
        // Every key of the default configuration appears in the example (commented or not).
        let defaults = toml::Value::try_from(Config::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut keys = Vec::new();
        leaf_keys(&[], &defaults, &mut keys);
        for key in keys {
            let leaf = key.last().map(String::as_str).unwrap_or_default();
            let documented = text.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{leaf} =")) || l.starts_with(&format!("\"{leaf}\" ="))
            });
            assert!(
                documented,
                "flynn.example.toml does not document `{}`",
                key.join(".")
            );
        }
        // The README shows the same file, verbatim.
        let readme = include_str!("../../../../README.md");
        assert!(
            readme.contains(&format!("```toml\n{text}```")),
            "README.md's configuration section differs from runtime/gateway/flynn.example.toml; paste the file in"
        );
    }
}
