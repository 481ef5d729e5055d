//! `config.get` (every secret as `***`) and `config.reload` (a valid file is applied; a broken
//! or invalid one is refused as a whole with a clear error and the running config stays).

use crate::support;

use flynn_protocol::types;
use flynn_protocol::ws_client::ConnectOptions;
use serde_json::Value;
use support::{TestClient, TestGateway, rpc_error};

const TOKEN: &str = "tok-SECRET-0123456789";
const API_KEY: &str = "sk-SECRET-abcdefghij";

async fn authed(gw: &TestGateway, token: &str) -> TestClient {
    let options = ConnectOptions {
        token: Some(token.to_owned()),
        ..Default::default()
    };
    TestClient::connect(&gw.url(), options)
        .await
        .expect("authenticated connection")
}

/// `config.get`'s result (a JSON object, the redacted configuration file).
async fn config(client: &TestClient) -> Value {
    let result = client
        .config_get(types::ConfigGetParams {})
        .await
        .expect("config.get");
    Value::Object(result.0)
}

async fn reload(
    client: &TestClient,
) -> Result<types::ConfigReloadResult, flynn_protocol::wire::ClientError> {
    client.config_reload(types::ConfigReloadParams {}).await
}

fn ttl(config: &Value) -> &Value {
    &config["pairing"]["ttl_seconds"]
}

#[tokio::test]
async fn config_get_masks_every_secret() {
    let extra = format!(
        "token = \"{TOKEN}\"\n\n[models.tiers.default]\nkind = \"embedded\"\n\n[models.tiers.smart]\nkind = \"openai\"\nmodel = \"some-model\"\n\
         base_url = \"http://127.0.0.1:9/v1\"\napi_key = \"{API_KEY}\"\n"
    );
    let gw = TestGateway::start(&extra).await;
    let client = authed(&gw, TOKEN).await;
    // An object: `config` decodes the result into the spec's type, a JSON object.
    let reply = config(&client).await;
    let text = reply.to_string();
    assert_eq!(reply["server"]["token"], "***", "{reply}");
    assert_eq!(
        reply["models"]["tiers"]["smart"]["api_key"], "***",
        "{reply}"
    );
    assert!(!text.contains(TOKEN), "the token leaks: {text}");
    assert!(!text.contains(API_KEY), "the API key leaks: {text}");
    assert!(!text.contains("SECRET"), "part of a secret leaks: {text}");
    // Non-secret values are shown as configured.
    assert_eq!(reply["models"]["tiers"]["smart"]["model"], "some-model");
    assert_eq!(reply["server"]["tailscale_identity"], false);
}

#[tokio::test]
async fn config_get_without_secrets_shows_them_absent() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    let reply = config(&client).await;
    assert_eq!(reply["server"]["token"], Value::Null, "{reply}");
    assert_eq!(reply["pairing"]["ttl_seconds"], 300, "{reply}");
}

#[tokio::test]
async fn config_reload_applies_a_valid_change() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    assert_eq!(ttl(&config(&client).await), 300);

    gw.write_config("\n[pairing]\nttl_seconds = 77\n");
    let reply = reload(&client).await.expect("config.reload");
    assert_eq!(reply, types::ConfigReloadResult { success: true });
    assert_eq!(ttl(&config(&client).await), 77);

    // ... and used: a new pairing code lives 77 s (`expiresAt` decoded as an ISO-8601 time).
    let code = client
        .pairing_generate(types::PairingGenerateParams {
            channel: "telegram".into(),
        })
        .await
        .expect("pairing.generate");
    let left = code
        .expires_at
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!(
        (70..=77).contains(&left),
        "expires in ~77 s, got {left} s: {code:?}"
    );
}

#[tokio::test]
async fn config_reload_refuses_a_broken_file_and_keeps_the_running_config() {
    let gw = TestGateway::start("\n[pairing]\nttl_seconds = 120\n").await;
    let client = gw.typed_client().await;
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
        // An error reply, not a result (`rpc_error` fails the test otherwise).
        let error = rpc_error(reload(&client).await);
        assert_eq!(error.code, 5, "{what}: {error:?}");
        let message = error.message.as_str();
        assert!(
            message.contains(named),
            "{what}: the error names {named:?}: {message}"
        );
        assert!(
            message.contains("unchanged"),
            "{what}: the error says the running config is kept: {message}"
        );
        assert_eq!(ttl(&config(&client).await), 120, "{what}: old config kept");
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
    let error = rpc_error(reload(&client).await);
    assert_eq!(error.code, 5, "bad ops section: {error:?}");
    let message = error.message.as_str();
    assert!(
        message.contains("ollama") && !message.contains("models section"),
        "the error names the ops section's problem, not the models section: {message}"
    );
    assert_eq!(ttl(&config(&client).await), 120);

    // A missing file is refused the same way.
    std::fs::remove_file(&gw.config_path).expect("remove config");
    let error = rpc_error(reload(&client).await);
    assert_eq!(error.code, 5, "missing file: {error:?}");
    assert_eq!(ttl(&config(&client).await), 120);

    // The gateway keeps working, and a fixed file is applied.
    gw.write_config("\n[pairing]\nttl_seconds = 130\n");
    let reply = reload(&client)
        .await
        .expect("config.reload of a fixed file");
    assert!(reply.success, "{reply:?}");
    assert_eq!(ttl(&config(&client).await), 130);
}

#[tokio::test]
async fn config_reload_of_a_token_applies_to_new_connections() {
    let gw = TestGateway::start("").await;
    let client = gw.typed_client().await;
    gw.write_config(&format!("token = \"{TOKEN}\"\n"));
    let reply = reload(&client).await.expect("config.reload");
    assert!(reply.success, "{reply:?}");
    let redacted = config(&client).await;
    assert_eq!(redacted["server"]["token"], "***", "{redacted}");
    assert!(!redacted.to_string().contains(TOKEN));

    // The open connection stays; new ones need the token (the refusal is the transport's: raw).
    let info = client
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info on the open connection");
    assert!(!info.version.is_empty(), "{info:?}");
    let mut anonymous = gw.client().await;
    let frame = anonymous.next_frame().await.expect("an error frame");
    assert_eq!(frame["error"]["code"], -4, "{frame}");
    assert_eq!(anonymous.close_code().await, Some(1008));
    let with_token = authed(&gw, TOKEN).await;
    let info = with_token
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info with the token");
    assert!(!info.version.is_empty(), "{info:?}");
}
