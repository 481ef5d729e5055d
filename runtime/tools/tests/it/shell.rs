//! `shell.exec` against real processes.

use std::time::{Duration, Instant};

use crate::common::{
    Fixture, LIVENESS, exited, gone, is_dead, make_fifo, read_fifo, two_pids, watch_exit,
};
use flynn_tools::{CancellationToken, ToolContext, ToolError, ToolsConfig};
use serde_json::json;

fn config(edit: impl FnOnce(&mut ToolsConfig)) -> ToolsConfig {
    let mut config = ToolsConfig::default();
    edit(&mut config);
    config
}

#[tokio::test]
async fn echo_gives_exactly_the_protocol_example() {
    let fx = Fixture::default();
    let out = fx
        .run("shell.exec", json!({"command": "echo 'Hello'"}))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"success": true, "output": "Hello\n"})
    );
}

#[tokio::test]
async fn stdout_and_stderr_arrive_combined_in_order() {
    let fx = Fixture::default();
    let out = fx
        .run(
            "shell.exec",
            json!({"command": "echo one; echo two >&2; echo three"}),
        )
        .await
        .unwrap();
    assert_eq!(out.output, "one\ntwo\nthree\n");
    assert!(out.success);
}

#[tokio::test]
async fn non_zero_exit_is_reported_with_its_output() {
    let fx = Fixture::default();
    let out = fx
        .run("shell.exec", json!({"command": "echo partial; exit 3"}))
        .await
        .unwrap();
    assert!(!out.success);
    assert_eq!(out.output, "partial\n");
    assert_eq!(out.error.as_deref(), Some("exit code 3"));

    let out = fx
        .run("shell.exec", json!({"command": "kill -TERM $$"}))
        .await
        .unwrap();
    assert!(!out.success);
    assert_eq!(out.error.as_deref(), Some("killed by signal SIGTERM (15)"));
}

#[tokio::test]
async fn runs_in_the_workspace_with_empty_stdin() {
    let fx = Fixture::default();
    let out = fx
        .run("shell.exec", json!({"command": "pwd; cat; echo end"}))
        .await
        .unwrap();
    let ws = std::fs::canonicalize(fx.ws()).unwrap();
    assert_eq!(out.output, format!("{}\nend\n", ws.display()));
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let fx = Fixture::default();
    let fifo = fx.ws().join("pids");
    make_fifo(&fifo);
    let started = Instant::now();
    // Ten minutes unless the timeout kills the group: ending within the liveness bound is the
    // timeout's doing, and it cannot come before its 300 ms.
    let run = fx.run(
        "shell.exec",
        json!({"command": "sleep 600 & echo \"$$ $!\" > pids; echo waiting; wait", "timeoutMs": 300}),
    );
    let run = async {
        tokio::time::timeout(LIVENESS, run)
            .await
            .expect("the timed-out call did not end")
    };
    let (out, line) = tokio::join!(run, read_fifo(&fifo));
    let out = out.unwrap();
    let (shell, background) = two_pids(&line);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "ended before its timeout: {:?}",
        started.elapsed()
    );
    assert!(!out.success);
    assert_eq!(out.output, "waiting\n");
    let error = out.error.unwrap();
    assert!(error.contains("timed out after 300 ms"), "{error}");
    assert!(gone(shell).await, "shell {shell} still running");
    assert!(
        gone(background).await,
        "background {background} still running"
    );
}

#[tokio::test]
async fn cancel_mid_run_kills_the_shell_and_its_grandchild() {
    let fx = Fixture::default();
    let fifo = fx.ws().join("pids");
    make_fifo(&fifo);
    let token = CancellationToken::new();
    let cx = ToolContext::new(fx.ws(), "test:cancel", token.clone());
    let registry = fx.registry.clone();
    let task = tokio::spawn(async move {
        registry
            .execute(
                "shell.exec",
                json!({"command": "sleep 600 & echo \"$$ $!\" > pids; wait"}),
                cx,
            )
            .await
    });
    let (shell, background) = two_pids(&read_fifo(&fifo).await);
    assert!(
        !is_dead(shell) && !is_dead(background),
        "both run before the cancel"
    );

    // Ten minutes unless the cancel kills the group: a liveness bound, not a speed test.
    token.cancel();
    let result = tokio::time::timeout(LIVENESS, task)
        .await
        .expect("cancel did not end the call")
        .unwrap();
    match result {
        Err(ToolError::Cancelled { tool }) => assert_eq!(tool, "shell.exec"),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(gone(shell).await, "shell {shell} survived the cancel");
    assert!(
        gone(background).await,
        "grandchild {background} survived the cancel"
    );
}

#[tokio::test]
async fn dropping_the_call_kills_the_process_group() {
    let fx = Fixture::default();
    let fifo = fx.ws().join("pids");
    make_fifo(&fifo);
    let registry = fx.registry.clone();
    let cx = fx.cx();
    let task = tokio::spawn(async move {
        registry
            .execute(
                "shell.exec",
                json!({"command": "sleep 600 & echo \"$$ $!\" > pids; wait"}),
                cx,
            )
            .await
    });
    let (shell, background) = two_pids(&read_fifo(&fifo).await);
    let (shell_watch, background_watch) = (watch_exit(shell), watch_exit(background));
    assert!(shell_watch.is_some() && background_watch.is_some());
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(exited(shell_watch).await, "shell {shell} survived the drop");
    assert!(
        exited(background_watch).await,
        "background {background} survived the drop"
    );
}

#[tokio::test]
async fn background_jobs_are_killed_when_the_shell_exits() {
    let fx = Fixture::default();
    let fifo = fx.ws().join("bg.pid");
    make_fifo(&fifo);
    // The background job would hold the output pipe for ten minutes: the call ending within
    // the liveness bound shows it did not wait for it.
    let run = fx.run(
        "shell.exec",
        json!({"command": "sleep 600 & echo \"$$ $!\" > bg.pid; echo started"}),
    );
    let run = async {
        tokio::time::timeout(LIVENESS, run)
            .await
            .expect("the call waited for its background job")
    };
    let (out, line) = tokio::join!(run, read_fifo(&fifo));
    let out = out.unwrap();
    assert!(out.success);
    assert_eq!(out.output, "started\n");
    let (_, background) = two_pids(&line);
    assert!(
        gone(background).await,
        "background job {background} outlived the call"
    );
}

#[tokio::test]
async fn background_jobs_can_be_kept_by_configuration() {
    let fx = Fixture::new(config(|c| c.shell.kill_background_on_exit = false));
    let out = fx
        .run(
            "shell.exec",
            json!({"command": "sleep 600 >/dev/null 2>&1 & echo $! > bg.pid"}),
        )
        .await
        .unwrap();
    assert!(out.success);
    let pid: i32 = std::fs::read_to_string(fx.ws().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = !is_dead(pid);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    assert!(
        alive,
        "background job {pid} was killed although configured to be kept"
    );
}

#[tokio::test]
async fn output_cap_truncates_without_blocking_the_child() {
    let fx = Fixture::new(config(|c| c.shell.output_cap_bytes = 1000));
    let started = Instant::now();
    let out = tokio::time::timeout(
        // A liveness bound: a child blocked on a full pipe would hang the call forever.
        Duration::from_secs(120),
        fx.run(
            "shell.exec",
            json!({"command": "head -c 8000000 /dev/zero | tr '\\0' x; echo; echo finished >&2"}),
        ),
    )
    .await
    .expect("a large output hung the call")
    .unwrap();
    assert!(out.success, "{out:?}");
    assert!(out.truncated);
    assert_eq!(out.output, "x".repeat(1000));
    eprintln!("8 MB of output drained in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_run_concurrently_without_mixing_output() {
    // One session, so its limit of calls in progress must let all 16 through.
    let fx = Fixture::new(config(|c| c.max_concurrent_runs_per_session = 16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (registry, cx) = (fx.registry.clone(), fx.cx());
        tasks.push(tokio::spawn(async move {
            registry
                .execute(
                    "shell.exec",
                    json!({"command": format!("echo call-{i}")}),
                    cx,
                )
                .await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap().output, format!("call-{i}\n"));
    }
}

#[tokio::test]
async fn deny_wins_over_allow_and_denied_commands_do_not_run() {
    let fx = Fixture::new(config(|c| {
        c.shell.allow = vec!["echo".into(), "touch allowed.txt".into()];
        c.shell.deny = vec!["echo secret".into()];
    }));
    let out = fx
        .run(
            "shell.exec",
            json!({"command": "echo hi && touch allowed.txt"}),
        )
        .await
        .unwrap();
    assert_eq!(out.output, "hi\n");
    assert!(fx.ws().join("allowed.txt").exists());

    for command in [
        "echo secret",
        "touch marker",
        "echo ok; touch marker",
        "echo $(touch marker)",
        "echo ok | sh -c 'touch marker'",
    ] {
        match fx.run("shell.exec", json!({ "command": command })).await {
            Err(ToolError::Denied { tool, reason }) => {
                assert_eq!(tool, "shell.exec");
                assert!(reason.contains("tools.shell."), "{reason}");
            }
            other => panic!("`{command}`: expected Denied, got {other:?}"),
        }
    }
    assert!(!fx.ws().join("marker").exists(), "a denied command ran");
}

#[tokio::test]
async fn cwd_is_confined_to_the_workspace() {
    let fx = Fixture::default();
    std::fs::create_dir(fx.ws().join("sub")).unwrap();
    std::os::unix::fs::symlink(fx.outside(), fx.ws().join("out")).unwrap();
    let out = fx
        .run("shell.exec", json!({"command": "pwd", "cwd": "sub"}))
        .await
        .unwrap();
    let sub = std::fs::canonicalize(fx.ws().join("sub")).unwrap();
    assert_eq!(out.output, format!("{}\n", sub.display()));

    for cwd in ["..", "sub/../..", "/tmp", "out"] {
        match fx
            .run("shell.exec", json!({"command": "pwd", "cwd": cwd}))
            .await
        {
            Err(ToolError::Denied { reason, .. }) => assert!(reason.contains("`cwd`"), "{reason}"),
            other => panic!("cwd {cwd}: expected Denied, got {other:?}"),
        }
    }
    match fx
        .run("shell.exec", json!({"command": "pwd", "cwd": "missing"}))
        .await
    {
        Err(ToolError::InvalidArgs { path, .. }) => assert_eq!(path, "cwd"),
        other => panic!("expected InvalidArgs, got {other:?}"),
    }
}

#[tokio::test]
async fn timeout_arguments_are_checked_against_the_limits() {
    let fx = Fixture::new(config(|c| c.shell.max_timeout_ms = 1000));
    for timeout in [0, 1001] {
        match fx
            .run(
                "shell.exec",
                json!({"command": "true", "timeoutMs": timeout}),
            )
            .await
        {
            Err(ToolError::InvalidArgs { path, .. }) => assert_eq!(path, "timeoutMs"),
            other => panic!("timeoutMs {timeout}: expected InvalidArgs, got {other:?}"),
        }
    }
    assert!(
        fx.run("shell.exec", json!({"command": "true", "timeoutMs": 1000}))
            .await
            .unwrap()
            .success
    );
}

#[tokio::test]
async fn commands_get_only_the_pass_env_variables_minus_hide_env() {
    // cargo sets CARGO_PKG_NAME for the test process; commands start from an empty environment
    // and get only what pass_env names (PATH, HOME, the locale, ...).
    let command = json!({"command": "echo \"${CARGO_PKG_NAME:-unset}\"; echo \"${PATH:+path-set}\"; env | sed 's/=.*//' | sort | tr '\\n' ' '"});
    let fx = Fixture::default();
    let out = fx.run("shell.exec", command.clone()).await.unwrap();
    let mut lines = out.output.lines();
    assert_eq!(lines.next(), Some("unset"), "{}", out.output);
    assert_eq!(lines.next(), Some("path-set"), "{}", out.output);
    let defaults = ToolsConfig::default();
    for name in lines.next().unwrap_or_default().split_whitespace() {
        assert!(
            name == "PWD" || name == "SHLVL" || name == "_" || defaults.shell.passes_env(name),
            "`{name}` reached the command without being in pass_env: {}",
            out.output
        );
    }

    let fx = Fixture::new(config(|c| c.shell.pass_env.push("CARGO_PKG_*".into())));
    let out = fx.run("shell.exec", command.clone()).await.unwrap();
    assert!(out.output.starts_with("flynn-tools\n"), "{}", out.output);
    // hide_env wins over pass_env.
    let fx = Fixture::new(config(|c| {
        c.shell.pass_env.push("CARGO_PKG_*".into());
        c.shell.hide_env = vec!["CARGO_PKG_NA?E".into()];
    }));
    let out = fx.run("shell.exec", command).await.unwrap();
    assert!(out.output.starts_with("unset\n"), "{}", out.output);
}

#[test]
fn pass_env_defaults_and_hide_env_on_top() {
    let shell = ToolsConfig::default().shell;
    for name in [
        "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "SHELL",
        "TMPDIR",
    ] {
        assert!(shell.passes_env(name), "{name}");
    }
    for name in [
        "FLYNN_SERVER_TOKEN",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "CARGO_PKG_NAME",
        "LD_PRELOAD",
    ] {
        assert!(!shell.passes_env(name), "{name}");
    }
    let mut shell = shell;
    shell.pass_env.push("FLYNN_*".into());
    assert!(!shell.passes_env("FLYNN_SERVER_TOKEN"), "hide_env wins");
    assert!(shell.hides_env("FLYNN_SERVER_TOKEN"));
}

#[tokio::test]
async fn a_missing_shell_is_a_clear_failure() {
    let fx = Fixture::new(config(|c| c.shell.shell = "/nonexistent/sh".into()));
    match fx.run("shell.exec", json!({"command": "echo hi"})).await {
        Err(ToolError::Failed { message, .. }) => {
            assert!(
                message.contains("/nonexistent/sh") && message.contains("tools.shell.shell"),
                "{message}"
            )
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn the_workspace_is_created_when_missing() {
    let fx = Fixture::default();
    let cx = ToolContext::new(
        fx.ws().join("new/deeper"),
        "test:1",
        CancellationToken::new(),
    );
    let out = fx
        .registry
        .execute("shell.exec", json!({"command": "pwd"}), cx)
        .await
        .unwrap();
    assert!(
        out.output.trim_end().ends_with("new/deeper"),
        "{}",
        out.output
    );
}
