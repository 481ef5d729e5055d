//! Issue 11: the daemon's secrets stay out of reach of the commands it runs. The daemon binary
//! is started as a process with FLYNN_SERVER_TOKEN and model API keys in its environment; a
//! `shell.exec` reading `env`, `/proc/$PPID/environ` (its parent is the daemon) and the daemon's
//! memory must not see them, while the token still authenticates and `config.reload` still
//! builds the tier whose key came from the environment.
//!
//! `hide_env` alone was bypassed by `cat /proc/$PPID/environ`.

use crate::support;

use crate::support::process;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::json;
use support::Ws;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const TOKEN: &str = "flynn-token-e8a1c0ffee5ecret";
const OPENAI_KEY: &str = "sk-fake-openai-7d2f9b1c4a";
const CUSTOM_KEY: &str = "sk-fake-custom-tier-51e0a";
/// Not a secret and not in `tools.shell.pass_env`: commands must not get it either.
const UNLISTED: (&str, &str) = ("SOME_UNLISTED_SETTING", "unlisted-value-93b2");

/// A config with an OpenAI-compatible tier keyed by OPENAI_API_KEY and another keyed by a
/// variable of the operator's choosing (neither is called: the embedded tier is the default).
const CONFIG: &str = r#"
[models]
default_tier = "default"

[models.tiers.default]
kind = "embedded"

[models.tiers.remote]
kind = "openai"
model = "gpt-4o-mini"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "OPENAI_API_KEY"

[models.tiers.custom]
kind = "openai"
model = "other"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "MY_CUSTOM_MODEL_KEY"
"#;

/// The daemon as a process, optionally as another user; killed when dropped.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    async fn spawn(dir: &Path, uid: Option<u32>) -> Daemon {
        let config = dir.join("flynn.toml");
        std::fs::write(&config, CONFIG).expect("write config");
        let mut command = Command::new(process::binary());
        command
            .arg("--port")
            .arg("0")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--config")
            .arg(&config)
            .env_remove("FLYNN_CONFIG")
            .env_remove("FLYNN_PORT")
            .env_remove("FLYNN_BIND")
            .env_remove("FLYNN_DATA_DIR")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("FLYNN_SERVER_TOKEN", TOKEN)
            .env("OPENAI_API_KEY", OPENAI_KEY)
            .env("MY_CUSTOM_MODEL_KEY", CUSTOM_KEY)
            .env(UNLISTED.0, UNLISTED.1)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        let mut child = command.spawn().expect("spawn flynn-gateway");
        let pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let collected = stderr.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = process::listening_addr(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
                if let Ok(mut text) = collected.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        let addr = match tokio::time::timeout(process::START_TIMEOUT, rx).await {
            Ok(Ok(addr)) => addr,
            _ => panic!(
                "flynn-gateway did not start; stderr:\n{}",
                stderr.lock().map(|s| s.clone()).unwrap_or_default()
            ),
        };
        Daemon {
            child,
            addr,
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    async fn client(&self) -> Ws {
        Ws::connect(
            &format!("ws://{}/", self.addr),
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the token from the environment authenticates: {e}; stderr:\n{}",
                self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
            )
        })
    }
}

async fn shell(ws: &mut Ws, command: &str) -> String {
    let reply = ws
        .call(
            "tools.execute",
            json!({"tool": "shell.exec", "sessionId": "ws:secrets",
                   "args": {"command": command}}),
        )
        .await;
    reply["result"]["output"]
        .as_str()
        .unwrap_or_else(|| panic!("tools.execute {command}: {reply}"))
        .to_owned()
}

fn assert_no_secret(text: &str, what: &str) {
    for secret in [TOKEN, OPENAI_KEY, CUSTOM_KEY] {
        assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
    }
}

#[tokio::test]
async fn tools_cannot_read_the_daemons_secrets_and_the_token_still_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::spawn(dir.path(), None).await;
    let pid = daemon.pid();

    // The token from the environment is in force: none is refused, the right one passes.
    let mut anonymous = Ws::connect(&format!("ws://{}/", daemon.addr), &[])
        .await
        .expect("upgrade");
    let frame = anonymous.next_frame().await.expect("error frame");
    assert_eq!(frame["error"]["code"], -4, "{frame}");
    let mut ws = daemon.client().await;

    let out = shell(
        &mut ws,
        &format!(
            "echo \"parent=$PPID\"; tr '\\0' '\\n' < /proc/$PPID/environ; echo ---; env; echo ---; \
             tr '\\0' '\\n' < /proc/{pid}/environ"
        ),
    )
    .await;
    assert!(
        out.contains(&format!("parent={pid}")),
        "the shell's parent is the daemon: {out}"
    );
    assert_no_secret(&out, "a tool reading env and the daemon's /proc environ");
    // The command's own environment is the allow-list: not even a harmless variable the
    // daemon has but pass_env does not name reaches it (the daemon's environ may still show
    // that one to a root tool; the secrets are gone from it).
    let own_env = out.split("---\n").nth(1).unwrap_or_default();
    assert!(
        !own_env.contains(UNLISTED.1),
        "a variable pass_env does not name: {own_env}"
    );
    assert!(
        own_env.contains("LANG=C.UTF-8") && own_env.contains("PATH="),
        "pass_env lets LANG and PATH through: {own_env}"
    );

    // Nor does the daemon's environ show them to anyone else (empty or unreadable is fine).
    let direct = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    assert_no_secret(
        &String::from_utf8_lossy(&direct),
        "/proc/<daemon>/environ read by the test",
    );

    // config.reload builds the tiers again, the keyed ones from the copy kept in memory.
    let reloaded = ws.call("config.reload", json!({})).await;
    assert_eq!(
        reloaded["result"]["success"],
        json!(true),
        "reload needs the keys the daemon removed from its environment: {reloaded}"
    );
    // The token still works after the reload, and config.get shows no secret.
    let mut again = daemon.client().await;
    let config = again.call("config.get", json!({})).await;
    assert!(config.get("result").is_some(), "{config}");
    assert_no_secret(&config.to_string(), "config.get");
    let reply = again
        .call(
            "agent.send",
            json!({"sessionId": "ws:secrets", "message": "hello"}),
        )
        .await;
    assert!(reply["result"]["content"].is_string(), "{reply}");
    drop((ws, again, anonymous));
}

/// The daemon is not dumpable, so a process of the same user (every tool it runs) can read
/// neither its `/proc/<pid>/environ` nor its memory. Started as an unprivileged user when the
/// test runs as root (root may read any process).
#[tokio::test]
async fn the_daemon_is_not_dumpable_for_processes_of_its_user() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = current_uid() == 0;
    let uid = root.then_some(65_534);
    if let Some(uid) = uid {
        chown_tree(dir.path(), uid);
    }
    let daemon = Daemon::spawn(dir.path(), uid).await;
    let mut ws = daemon.client().await;
    let out = shell(
        &mut ws,
        "id -u; \
         if cat /proc/$PPID/environ >/dev/null 2>&1; then echo environ-readable; else echo environ-denied; fi; \
         if (exec 3</proc/$PPID/mem) 2>/dev/null; then echo mem-readable; else echo mem-denied; fi",
    )
    .await;
    let mut lines = out.lines();
    let tool_uid: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("id -u: {out}"));
    assert_ne!(tool_uid, 0, "the check needs an unprivileged tool: {out}");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest, ["environ-denied", "mem-denied"], "{out}");
    drop(ws);
}

/// The test's real uid, from /proc/self/status.
fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .expect("Uid in /proc/self/status")
}

fn chown_tree(dir: &Path, uid: u32) {
    std::os::unix::fs::chown(dir, Some(uid), Some(uid)).expect("chown the test directory");
}
