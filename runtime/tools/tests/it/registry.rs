//! The registry: listing, derived schemas, dispatch errors, config, custom tools.

use std::sync::Arc;

use crate::common::Fixture;
use flynn_tools::{ToolContext, ToolError, ToolOutput, ToolRegistry, ToolsConfig, TypedTool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

fn schema_of(registry: &ToolRegistry, name: &str) -> Value {
    registry
        .list()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap()
        .input_schema
}

fn validates(schema: &Value, instance: Value) -> bool {
    jsonschema::draft7::new(schema).unwrap().is_valid(&instance)
}

#[test]
fn lists_the_four_built_in_tools_sorted() {
    let registry = ToolRegistry::with_defaults(&ToolsConfig::default());
    let names: Vec<String> = registry.list().into_iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        ["file.list", "file.read", "file.write", "shell.exec"]
    );
    for descriptor in registry.list() {
        assert!(descriptor.description.len() > 40, "{}", descriptor.name);
    }
}

#[test]
fn shell_exec_schema_is_derived_from_its_input_type() {
    let registry = ToolRegistry::with_defaults(&ToolsConfig::default());
    let schema = schema_of(&registry, "shell.exec");
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["command"]));
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["command"]["type"], "string");
    assert!(
        schema["properties"]["command"]["description"]
            .as_str()
            .unwrap()
            .contains("sh -c")
    );
    assert!(schema["properties"]["cwd"].is_object());
    assert_eq!(schema["properties"]["timeoutMs"]["minimum"], 1);
    assert!(schema["properties"]["cwd"].get("default").is_none());
    assert!(schema.get("$schema").is_none());
    assert!(schema.get("definitions").is_none());
    assert!(validates(&schema, json!({"command": "echo 'Hello'"})));
    assert!(validates(
        &schema,
        json!({"command": "ls", "cwd": "sub", "timeoutMs": 5})
    ));
    assert!(!validates(
        &schema,
        json!({"command": "ls", "timeout_ms": 5})
    ));
    assert!(!validates(&schema, json!({"cwd": "sub"})));
    assert!(!validates(
        &schema,
        json!({"command": "ls", "timeoutMs": -1})
    ));
}

#[test]
fn file_tool_schemas_are_derived_from_their_input_types() {
    let registry = ToolRegistry::with_defaults(&ToolsConfig::default());
    let read = schema_of(&registry, "file.read");
    assert_eq!(read["required"], json!(["path"]));
    assert!(read["properties"]["offset"].is_object());
    assert!(read["properties"]["maxBytes"].is_object());
    assert!(validates(
        &read,
        json!({"path": "a.txt", "offset": 3, "maxBytes": 10})
    ));
    assert!(!validates(&read, json!({"path": "a.txt", "max_bytes": 10})));

    let write = schema_of(&registry, "file.write");
    let mut required: Vec<String> = serde_json::from_value(write["required"].clone()).unwrap();
    required.sort();
    assert_eq!(required, ["content", "path"]);
    assert!(write["properties"]["append"].is_object());
    assert!(!validates(&write, json!({"path": "a.txt"})));

    let list = schema_of(&registry, "file.list");
    assert!(
        list.get("required")
            .is_none_or(|r| r.as_array().unwrap().is_empty())
    );
    assert!(validates(&list, json!({})));
    assert!(validates(&list, json!({"path": "sub"})));
    assert!(!validates(&list, json!({"path": 3})));
}

#[tokio::test]
async fn unknown_tool_names_the_available_ones() {
    let fx = Fixture::default();
    let err = fx.run("web.search", json!({})).await.unwrap_err();
    match &err {
        ToolError::NotFound { name, available } => {
            assert_eq!(name, "web.search");
            assert_eq!(available, &fx.registry.names());
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("web.search") && text.contains("file.write, shell.exec"),
        "{text}"
    );
}

#[tokio::test]
async fn invalid_args_name_the_field_path() {
    let fx = Fixture::default();
    let cases = [
        (
            "shell.exec",
            json!({"command": 5}),
            "command",
            "invalid type",
        ),
        (
            "shell.exec",
            json!({"command": "ls", "timeoutMs": "soon"}),
            "timeoutMs",
            "invalid type",
        ),
        ("shell.exec", json!({}), ".", "missing field `command`"),
        (
            "shell.exec",
            json!({"comand": "ls"}),
            "comand",
            "unknown field `comand`",
        ),
        (
            "file.read",
            json!({"path": "a", "offset": -1}),
            "offset",
            "invalid value",
        ),
        (
            "file.write",
            json!({"path": "a", "content": "x", "append": "yes"}),
            "append",
            "invalid type",
        ),
        ("file.list", json!(["sub"]), ".", "expected an object"),
    ];
    for (tool, args, want_path, want_message) in cases {
        match fx.run(tool, args.clone()).await {
            Err(ToolError::InvalidArgs {
                tool: t,
                path,
                message,
            }) => {
                assert_eq!(t, tool);
                assert_eq!(path, want_path, "{tool} {args}");
                assert!(message.contains(want_message), "{tool} {args}: {message}");
            }
            other => panic!("{tool} {args}: expected InvalidArgs, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn file_list_without_args_is_accepted() {
    let fx = Fixture::default();
    let out = fx.run("file.list", Value::Null).await.unwrap();
    assert!(out.success);
}

#[tokio::test]
async fn disabled_tools_are_not_listed_and_say_how_to_enable_them() {
    let mut config = ToolsConfig::default();
    config.shell.enabled = false;
    config.files.enabled = false;
    let fx = Fixture::new(config);
    assert!(fx.registry.list().is_empty());
    match fx.run("shell.exec", json!({"command": "echo hi"})).await {
        Err(ToolError::Denied { tool, reason }) => {
            assert_eq!(tool, "shell.exec");
            assert!(reason.contains("tools.shell.enabled = true"), "{reason}");
        }
        other => panic!("expected Denied, got {other:?}"),
    }
    match fx.run("file.read", json!({"path": "x"})).await {
        Err(ToolError::Denied { reason, .. }) => assert!(reason.contains("tools.files.enabled")),
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[test]
fn output_serialises_like_the_protocol_example() {
    assert_eq!(
        serde_json::to_value(ToolOutput::ok("Hello\n")).unwrap(),
        json!({"success": true, "output": "Hello\n"})
    );
    let failed = ToolOutput {
        success: false,
        output: "x".into(),
        error: Some("exit code 1".into()),
        truncated: true,
    };
    assert_eq!(
        serde_json::to_value(&failed).unwrap(),
        json!({"success": false, "output": "x", "error": "exit code 1", "truncated": true})
    );
    assert_eq!(
        failed.model_text(),
        "x\n[output truncated]\n[error] exit code 1"
    );
    // The tool_end example carries `"error": null`; it must read back.
    let back: ToolOutput =
        serde_json::from_value(json!({"success": true, "output": "Hello\n", "error": null}))
            .unwrap();
    assert_eq!(back, ToolOutput::ok("Hello\n"));
}

#[test]
fn config_reads_from_toml_with_defaults_and_rejects_unknown_keys() {
    #[derive(Deserialize)]
    struct File {
        tools: ToolsConfig,
    }
    let file: File = toml::from_str(
        "[tools]\nworkspace = \"/srv/ws\"\n[tools.shell]\nallow = [\"git\", \"ls *\"]\nmax_timeout_ms = 5000\n",
    )
    .unwrap();
    let config = file.tools;
    assert_eq!(
        config.workspace.as_deref(),
        Some(std::path::Path::new("/srv/ws"))
    );
    assert_eq!(config.shell.allow, ["git", "ls *"]);
    assert_eq!(config.shell.max_timeout_ms, 5000);
    assert_eq!(config.shell.output_cap_bytes, 64 * 1024);
    assert!(config.files.enabled);
    assert!(toml::from_str::<File>("[tools.shell]\nalow = []\n").is_err());

    let data = std::path::Path::new("/data");
    assert_eq!(
        ToolsConfig::default().workspace_dir(data),
        data.join("workspace")
    );
    let relative = ToolsConfig {
        workspace: Some("mine".into()),
        ..ToolsConfig::default()
    };
    assert_eq!(relative.workspace_dir(data), data.join("mine"));
    assert_eq!(config.workspace_dir(data), std::path::Path::new("/srv/ws"));
}

#[test]
fn config_has_a_json_schema() {
    let schema = serde_json::to_value(schemars::schema_for!(ToolsConfig)).unwrap();
    let text = schema.to_string();
    for key in [
        "workspace",
        "shell",
        "files",
        "output_cap_bytes",
        "max_read_bytes",
        "hide_env",
    ] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
}

/// A tool defined outside the crate through `TypedTool`.
struct Add;

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddInput {
    left: i64,
    right: i64,
}

impl TypedTool for Add {
    type Input = AddInput;
    fn name(&self) -> &str {
        "math.add"
    }
    fn description(&self) -> String {
        "Adds two integers.".into()
    }
    async fn run(&self, input: AddInput, _cx: ToolContext) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::ok((input.left + input.right).to_string()))
    }
}

#[tokio::test]
async fn custom_tools_register_with_a_derived_schema() {
    let mut fx = Fixture::default();
    fx.registry.register(Arc::new(Add));
    let schema = schema_of(&fx.registry, "math.add");
    assert_eq!(schema["properties"]["left"]["type"], "integer");
    let out = fx
        .run("math.add", json!({"left": 2, "right": 40}))
        .await
        .unwrap();
    assert_eq!(out.output, "42");
    match fx.run("math.add", json!({"left": 2})).await {
        Err(ToolError::InvalidArgs { path, message, .. }) => {
            assert_eq!(path, ".");
            assert!(message.contains("right"));
        }
        other => panic!("expected InvalidArgs, got {other:?}"),
    }
}

#[tokio::test]
async fn an_already_cancelled_context_runs_nothing() {
    let fx = Fixture::default();
    let cx = fx.cx();
    cx.cancel.cancel();
    let err = fx
        .registry
        .execute("file.write", json!({"path": "x.txt", "content": "x"}), cx)
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Cancelled { .. }), "{err:?}");
    assert!(!fx.ws().join("x.txt").exists());
}

/// A tool that runs until its gate opens, to hold calls in progress. Each run adds a permit
/// to `entered` first, so the test can wait until its calls hold their slots.
struct Gate {
    open: Arc<tokio::sync::Notify>,
    entered: Arc<tokio::sync::Semaphore>,
}

impl Gate {
    fn new(open: &Arc<tokio::sync::Notify>, entered: &Arc<tokio::sync::Semaphore>) -> Arc<Self> {
        Arc::new(Self {
            open: open.clone(),
            entered: entered.clone(),
        })
    }
}

/// Waits until `n` more gated calls are running (each holds its slot by then).
async fn entered(gate: &tokio::sync::Semaphore, n: u32) {
    tokio::time::timeout(std::time::Duration::from_secs(60), gate.acquire_many(n))
        .await
        .expect("the gated calls start")
        .expect("the semaphore is never closed")
        .forget();
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GateInput {}

impl TypedTool for Gate {
    type Input = GateInput;
    fn name(&self) -> &str {
        "test.gate"
    }
    fn description(&self) -> String {
        "Waits until the test opens the gate.".into()
    }
    async fn run(&self, _: GateInput, _cx: ToolContext) -> Result<ToolOutput, ToolError> {
        // Created before the permit is given: it hears `notify_waiters` from then on.
        let open = self.open.notified();
        self.entered.add_permits(1);
        open.await;
        Ok(ToolOutput::ok("through"))
    }
}

/// Issue 11: a session's calls in progress are bounded; the refusal is immediate, names the
/// session, the limit and the key; other sessions and finished calls free nothing they should
/// not; a reconfigured registry keeps counting calls started under the old one.
#[tokio::test]
async fn calls_in_progress_are_bounded_per_session() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(tokio::sync::Semaphore::new(0));
    let fx = Fixture::default();
    let mut registry = ToolRegistry::with_defaults(&ToolsConfig {
        max_concurrent_runs_per_session: 2,
        ..ToolsConfig::default()
    });
    registry.register(Gate::new(&gate, &started));
    let registry = Arc::new(registry);
    let cx =
        |session: &str| ToolContext::new(fx.ws(), session, flynn_tools::CancellationToken::new());
    let spawn = |session: &str| {
        let (registry, cx) = (registry.clone(), cx(session));
        tokio::spawn(async move { registry.execute("test.gate", json!({}), cx).await })
    };
    let held = [spawn("s:a"), spawn("s:a")];
    entered(&started, 2).await;

    match registry.execute("test.gate", json!({}), cx("s:a")).await {
        Err(err @ ToolError::Busy { .. }) => {
            let text = err.to_string();
            assert!(
                text.contains("s:a")
                    && text.contains("limit is 2")
                    && text.contains("tools.max_concurrent_runs_per_session"),
                "{text}"
            );
            assert_eq!(err.tool(), "test.gate");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    // Every tool counts, not only shell.exec.
    let err = registry
        .execute("file.list", json!({}), cx("s:a"))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Busy { .. }), "{err:?}");
    // Another session is not affected.
    let out = registry
        .execute("file.list", json!({}), cx("s:b"))
        .await
        .unwrap();
    assert!(out.success);

    // A reload to a limit of 3 while two run: one more fits, not three.
    let reloaded = Arc::new({
        let mut r = registry.reconfigured(&ToolsConfig {
            max_concurrent_runs_per_session: 3,
            ..ToolsConfig::default()
        });
        r.register(Gate::new(&gate, &started));
        r
    });
    let third = {
        let (registry, cx) = (reloaded.clone(), cx("s:a"));
        tokio::spawn(async move { registry.execute("test.gate", json!({}), cx).await })
    };
    entered(&started, 1).await;
    let err = reloaded
        .execute("file.list", json!({}), cx("s:a"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ToolError::Busy {
                running: 3,
                limit: 3,
                ..
            }
        ),
        "{err:?}"
    );

    gate.notify_waiters();
    for handle in held.into_iter().chain([third]) {
        assert_eq!(handle.await.unwrap().unwrap().output, "through");
    }
    // Slots are released when calls end.
    assert!(
        registry
            .execute("file.list", json!({}), cx("s:a"))
            .await
            .is_ok()
    );

    // A dropped call releases its slot too.
    let one = ToolRegistry::with_defaults(&ToolsConfig {
        max_concurrent_runs_per_session: 1,
        ..ToolsConfig::default()
    });
    let mut one = one;
    one.register(Gate::new(&gate, &started));
    let pending = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        one.execute("test.gate", json!({}), cx("s:c")),
    )
    .await;
    assert!(pending.is_err(), "the gate held the call");
    assert!(one.execute("file.list", json!({}), cx("s:c")).await.is_ok());
}

#[test]
fn a_limit_of_zero_runs_is_not_a_valid_configuration() {
    let config = ToolsConfig {
        max_concurrent_runs_per_session: 0,
        ..ToolsConfig::default()
    };
    let err = config.validate().unwrap_err();
    assert!(
        err.contains("tools.max_concurrent_runs_per_session"),
        "{err}"
    );
    assert!(ToolsConfig::default().validate().is_ok());
    assert_eq!(ToolsConfig::default().max_concurrent_runs_per_session, 4);
}
