//! `file.read`, `file.write`, `file.list` on real folders, including escape attempts.

use crate::common::Fixture;
use flynn_tools::{CancellationToken, ToolContext, ToolError, ToolsConfig};
use serde_json::json;

fn expect_denied(result: Result<flynn_tools::ToolOutput, ToolError>, what: &str) -> String {
    match result {
        Err(ToolError::Denied { reason, .. }) => reason,
        other => panic!("{what}: expected Denied, got {other:?}"),
    }
}

#[tokio::test]
async fn write_read_and_list_round_trip() {
    let fx = Fixture::default();
    let out = fx
        .run(
            "file.write",
            json!({"path": "notes/today.txt", "content": "hello"}),
        )
        .await
        .unwrap();
    assert_eq!(out.output, "wrote 5 bytes to notes/today.txt");
    let out = fx
        .run(
            "file.write",
            json!({"path": "notes/today.txt", "content": " world", "append": true}),
        )
        .await
        .unwrap();
    assert_eq!(out.output, "appended 6 bytes to notes/today.txt");
    assert_eq!(
        std::fs::read_to_string(fx.ws().join("notes/today.txt")).unwrap(),
        "hello world"
    );

    let out = fx
        .run("file.read", json!({"path": "./notes/../notes/today.txt"}))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"success": true, "output": "hello world"})
    );

    fx.run(
        "file.write",
        json!({"path": "notes/today.txt", "content": "replaced"}),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(fx.ws().join("notes/today.txt")).unwrap(),
        "replaced"
    );

    std::fs::create_dir(fx.ws().join("b-dir")).unwrap();
    std::os::unix::fs::symlink("notes/today.txt", fx.ws().join("c-link")).unwrap();
    let out = fx.run("file.list", json!({})).await.unwrap();
    assert_eq!(out.output, "b-dir/\nc-link@\nnotes/\n");
    let out = fx.run("file.list", json!({"path": "notes"})).await.unwrap();
    assert_eq!(out.output, "today.txt\t8\n");
    // A symlink that stays inside the workspace is followed.
    let out = fx
        .run("file.read", json!({"path": "c-link"}))
        .await
        .unwrap();
    assert_eq!(out.output, "replaced");
}

#[tokio::test]
async fn read_pages_with_offset_and_limits() {
    let mut config = ToolsConfig::default();
    config.files.max_read_bytes = 6;
    let fx = Fixture::new(config);
    std::fs::write(fx.ws().join("digits.txt"), "0123456789").unwrap();
    let page = |offset: u64, max: Option<u64>| {
        let mut args = json!({"path": "digits.txt", "offset": offset});
        if let Some(max) = max {
            args["maxBytes"] = json!(max);
        }
        fx.run("file.read", args)
    };
    let out = page(3, Some(4)).await.unwrap();
    assert_eq!((out.output.as_str(), out.truncated), ("3456", true));
    let out = page(0, None).await.unwrap();
    assert_eq!((out.output.as_str(), out.truncated), ("012345", true));
    let out = page(0, Some(100)).await.unwrap();
    assert_eq!(
        out.output, "012345",
        "maxBytes cannot exceed tools.files.max_read_bytes"
    );
    let out = page(6, None).await.unwrap();
    assert_eq!((out.output.as_str(), out.truncated), ("6789", false));
    let out = page(50, None).await.unwrap();
    assert_eq!(
        (out.output.as_str(), out.truncated, out.success),
        ("", false, true)
    );
}

#[tokio::test]
async fn missing_files_and_wrong_kinds_fail_with_a_hint() {
    let fx = Fixture::default();
    std::fs::create_dir(fx.ws().join("dir")).unwrap();
    std::fs::write(fx.ws().join("file.txt"), "x").unwrap();

    let out = fx
        .run("file.read", json!({"path": "nope.txt"}))
        .await
        .unwrap();
    assert!(!out.success);
    assert!(out.error.unwrap().contains("file.list shows what exists"));
    let out = fx.run("file.read", json!({"path": "dir"})).await.unwrap();
    assert!(out.error.unwrap().contains("is a folder; use file.list"));
    let out = fx
        .run("file.list", json!({"path": "file.txt"}))
        .await
        .unwrap();
    assert!(out.error.unwrap().contains("not a folder; use file.read"));
    let out = fx
        .run("file.write", json!({"path": ".", "content": "x"}))
        .await
        .unwrap();
    assert!(!out.success);
    let out = fx
        .run(
            "file.write",
            json!({"path": "file.txt/inner", "content": "x"}),
        )
        .await
        .unwrap();
    assert!(!out.success, "{out:?}");
}

#[tokio::test]
async fn dot_dot_escapes_are_denied() {
    let fx = Fixture::default();
    std::fs::write(fx.outside().join("secret.txt"), "secret").unwrap();
    std::fs::create_dir(fx.ws().join("sub")).unwrap();
    for path in [
        "../secret.txt",
        "sub/../../secret.txt",
        "./../ws/../secret.txt",
        "..",
    ] {
        let reason = expect_denied(fx.run("file.read", json!({ "path": path })).await, path);
        assert!(
            reason.contains("`..`") && reason.contains("relative to the workspace"),
            "{reason}"
        );
    }
    expect_denied(
        fx.run("file.write", json!({"path": "../x.txt", "content": "x"}))
            .await,
        "write ..",
    );
    expect_denied(
        fx.run("file.list", json!({"path": "sub/../.."})).await,
        "list ..",
    );
    assert!(!fx.outside().join("x.txt").exists());
    // `..` that stays inside is fine.
    std::fs::write(fx.ws().join("in.txt"), "in").unwrap();
    assert_eq!(
        fx.run("file.read", json!({"path": "sub/../in.txt"}))
            .await
            .unwrap()
            .output,
        "in"
    );
}

#[tokio::test]
async fn absolute_paths_are_denied_even_inside_the_workspace() {
    let fx = Fixture::default();
    std::fs::write(fx.ws().join("in.txt"), "in").unwrap();
    let inside = fx.ws().join("in.txt").display().to_string();
    for path in ["/etc/passwd", inside.as_str()] {
        let reason = expect_denied(fx.run("file.read", json!({ "path": path })).await, path);
        assert!(reason.contains("absolute path"), "{reason}");
    }
    expect_denied(
        fx.run(
            "file.write",
            json!({"path": "/tmp/flynn-x", "content": "x"}),
        )
        .await,
        "write",
    );
    expect_denied(fx.run("file.list", json!({"path": "/"})).await, "list");
}

#[tokio::test]
async fn symlinks_pointing_outside_are_denied() {
    let fx = Fixture::default();
    let outside = fx.outside();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::fs::create_dir(outside.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), fx.ws().join("file-link")).unwrap();
    std::os::unix::fs::symlink(outside.join("elsewhere"), fx.ws().join("dir-link")).unwrap();
    std::os::unix::fs::symlink(outside.join("not-yet"), fx.ws().join("dangling")).unwrap();

    let reason = expect_denied(
        fx.run("file.read", json!({"path": "file-link"})).await,
        "read",
    );
    assert!(reason.contains("outside the workspace"), "{reason}");
    expect_denied(
        fx.run(
            "file.write",
            json!({"path": "file-link", "content": "pwned"}),
        )
        .await,
        "write through file symlink",
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );

    expect_denied(
        fx.run(
            "file.write",
            json!({"path": "dir-link/new.txt", "content": "x"}),
        )
        .await,
        "write into dir symlink",
    );
    expect_denied(
        fx.run(
            "file.write",
            json!({"path": "dir-link/a/b/new.txt", "content": "x"}),
        )
        .await,
        "write below dir symlink",
    );
    assert!(
        std::fs::read_dir(outside.join("elsewhere"))
            .unwrap()
            .next()
            .is_none()
    );
    expect_denied(
        fx.run("file.list", json!({"path": "dir-link"})).await,
        "list dir symlink",
    );

    let reason = expect_denied(
        fx.run("file.write", json!({"path": "dangling", "content": "x"}))
            .await,
        "write through dangling symlink",
    );
    assert!(reason.contains("symlink"), "{reason}");
    assert!(!outside.join("not-yet").exists());
}

#[tokio::test]
async fn writes_over_the_limit_are_invalid_args() {
    let mut config = ToolsConfig::default();
    config.files.max_write_bytes = 4;
    let fx = Fixture::new(config);
    match fx
        .run("file.write", json!({"path": "big.txt", "content": "12345"}))
        .await
    {
        Err(ToolError::InvalidArgs { path, message, .. }) => {
            assert_eq!(path, "content");
            assert!(message.contains("append"), "{message}");
        }
        other => panic!("expected InvalidArgs, got {other:?}"),
    }
    assert!(!fx.ws().join("big.txt").exists());
}

#[tokio::test]
async fn list_is_capped() {
    let mut config = ToolsConfig::default();
    config.files.max_list_entries = 2;
    let fx = Fixture::new(config);
    for name in ["c", "a", "b"] {
        std::fs::write(fx.ws().join(name), "").unwrap();
    }
    let out = fx.run("file.list", json!({})).await.unwrap();
    assert_eq!(out.output, "a\t0\nb\t0\n");
    assert!(out.truncated);
}

#[tokio::test]
async fn the_workspace_is_created_when_missing() {
    let fx = Fixture::default();
    let ws = fx.outside().join("fresh/ws");
    let cx = ToolContext::new(&ws, "test:1", CancellationToken::new());
    let out = fx
        .registry
        .execute("file.list", json!({}), cx)
        .await
        .unwrap();
    assert_eq!((out.success, out.output.as_str()), (true, ""));
    assert!(ws.is_dir());
}
