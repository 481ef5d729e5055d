//! `config.get` (every secret as `***`) and `config.reload` (a valid file is applied; a broken
//! or invalid one is refused as a whole with a clear error and the running config stays).

use crate::support;

use serde_json::{Value, json};
use support::{TestGateway, Ws};

const TOKEN: &str = "tok-SECRET-0123456789";
const API_KEY: &str = "sk-SECRET-abcdefghij";

async fn authed(gw: &TestGateway, token: &str) -> Ws {
    Ws::connect(&gw.url(), &[("Authorization", &format!("Bearer {token}"))])
        .await
        .expect("authenticated connection")
}

fn ttl(config: &Value) -> &Value {
    &config["result"]["pairing"]["ttl_seconds"]
}

#[tokio::test]
async fn config_get_masks_every_secret() {
    let extra = format!(
        "token = \"{TOKEN}\"\n\n[models.tiers.default]\nkind = \"embedded\"\n\n[models.tiers.smart]\nkind = \"openai\"\nmodel = \"some-model\"\n\
         base_url = \"http://127.0.0.1:9/v1\"\napi_key = \"{API_KEY}\"\n"
    );
    let gw = TestGateway::start(&extra).await;
    let mut ws = authed(&gw, TOKEN).await;
    let reply = ws.call("config.get", json!({})).await;
    let text = reply.to_string();
    assert!(reply["result"].is_object(), "{reply}");
    assert_eq!(reply["result"]["server"]["token"], "***", "{reply}");
    assert_eq!(
        reply["result"]["models"]["tiers"]["smart"]["api_key"], "***",
        "{reply}"
    );
    assert!(!text.contains(TOKEN), "the token leaks: {text}");
    assert!(!text.contains(API_KEY), "the API key leaks: {text}");
    assert!(!text.contains("SECRET"), "part of a secret leaks: {text}");
    // Non-secret values are shown as configured.
    assert_eq!(
        reply["result"]["models"]["tiers"]["smart"]["model"],
        "some-model"
    );
    assert_eq!(reply["result"]["server"]["tailscale_identity"], false);
}

#[tokio::test]
async fn config_get_without_secrets_shows_them_absent() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let reply = ws.call("config.get", json!({})).await;
    assert_eq!(reply["result"]["server"]["token"], Value::Null, "{reply}");
    assert_eq!(reply["result"]["pairing"]["ttl_seconds"], 300, "{reply}");
}

#[tokio::test]
async fn config_reload_applies_a_valid_change() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    assert_eq!(ttl(&ws.call("config.get", json!({})).await), 300);

    gw.write_config("\n[pairing]\nttl_seconds = 77\n");
    let reply = ws.call("config.reload", json!({})).await;
    assert_eq!(reply["result"], json!({ "success": true }), "{reply}");
    assert_eq!(ttl(&ws.call("config.get", json!({})).await), 77);

    // ... and used: a new pairing code lives 77 s.
    let code = ws
        .call("pairing.generate", json!({ "channel": "telegram" }))
        .await;
    let expires = chrono::DateTime::parse_from_rfc3339(
        code["result"]["expiresAt"].as_str().expect("expiresAt"),
    )
    .expect("ISO-8601");
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!(
        (70..=77).contains(&left),
        "expires in ~77 s, got {left} s: {code}"
    );
}

#[tokio::test]
async fn config_reload_refuses_a_broken_file_and_keeps_the_running_config() {
    let gw = TestGateway::start("\n[pairing]\nttl_seconds = 120\n").await;
    let mut ws = gw.client().await;
    let file_name = gw
        .config_path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("config file name")
        .to_owned();

    let broken: [(&str, String, &str); 4] = [
        (
            "not TOML",
            "this is [not toml\n= at all".to_owned(),
            file_name.as_str(),
        ),
        (
            "an unknown key",
            format!(
                "[storage]\ndata_dir = {:?}\n[server]\nport = 0\nprot = 5\n",
                gw.data_dir()
            ),
            "prot",
        ),
        (
            "a value of the wrong type",
            "[pairing]\nttl_seconds = \"soon\"\n".to_owned(),
            "ttl_seconds",
        ),
        (
            "a value that fails validation",
            format!(
                "[storage]\ndata_dir = {:?}\n[server]\nport = 0\nmax_frame_bytes = 10\n",
                gw.data_dir()
            ),
            "max_frame_bytes",
        ),
    ];
    for (what, text, named) in &broken {
        std::fs::write(&gw.config_path, text).expect("write config");
        let reply = ws.call("config.reload", json!({})).await;
        assert_eq!(reply["error"]["code"], 5, "{what}: {reply}");
        assert!(reply.get("result").is_none(), "{what}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(named),
            "{what}: the error names {named:?}: {message}"
        );
        assert!(
            message.contains("unchanged"),
            "{what}: the error says the running config is kept: {message}"
        );
        assert_eq!(
            ttl(&ws.call("config.get", json!({})).await),
            120,
            "{what}: old config kept"
        );
    }

    // A file that parses and validates but whose ops section cannot be built is refused with
    // that section named once (not reported as a models problem).
    std::fs::write(
        &gw.config_path,
        format!(
            "[storage]\ndata_dir = {:?}\n[server]\nport = 0\n[[ops.local_backends]]\nprovider = \"llamacpp\"\nmodels = [\"x\"]\n",
            gw.data_dir()
        ),
    )
    .expect("write config");
    let reply = ws.call("config.reload", json!({})).await;
    assert_eq!(reply["error"]["code"], 5, "bad ops section: {reply}");
    let message = reply["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("ollama") && !message.contains("models section"),
        "the error names the ops section's problem, not the models section: {message}"
    );
    assert_eq!(ttl(&ws.call("config.get", json!({})).await), 120);

    // A missing file is refused the same way.
    std::fs::remove_file(&gw.config_path).expect("remove config");
    let reply = ws.call("config.reload", json!({})).await;
    assert_eq!(reply["error"]["code"], 5, "missing file: {reply}");
    assert_eq!(ttl(&ws.call("config.get", json!({})).await), 120);

    // The gateway keeps working, and a fixed file is applied.
    gw.write_config("\n[pairing]\nttl_seconds = 130\n");
    let reply = ws.call("config.reload", json!({})).await;
    assert_eq!(reply["result"]["success"], true, "{reply}");
    assert_eq!(ttl(&ws.call("config.get", json!({})).await), 130);
}

#[tokio::test]
async fn config_reload_of_a_token_applies_to_new_connections() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    gw.write_config(&format!("token = \"{TOKEN}\"\n"));
    let reply = ws.call("config.reload", json!({})).await;
    assert_eq!(reply["result"]["success"], true, "{reply}");
    let config = ws.call("config.get", json!({})).await;
    assert_eq!(config["result"]["server"]["token"], "***", "{config}");
    assert!(!config.to_string().contains(TOKEN));

    // The open connection stays; new ones need the token.
    let info = ws.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
    let mut anonymous = gw.client().await;
    let frame = anonymous.next_frame().await.expect("an error frame");
    assert_eq!(frame["error"]["code"], -4, "{frame}");
    assert_eq!(anonymous.close_code().await, Some(1008));
    let mut with_token = authed(&gw, TOKEN).await;
    let info = with_token.call("system.info", json!({})).await;
    assert!(info["result"]["version"].is_string(), "{info}");
}
