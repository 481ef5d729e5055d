#!/usr/bin/env bash
# Runs every test of the repository. Installs the npm packages the tests need (from the lock
# files); the browser tests need Debian's chromium at /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "formatting"
cargo fmt --all --check

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "npm packages (from the lock files)"
for dir in spec runtime/gateway/tests/node-example clients/typescript dashboard; do
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

step "build (the daemon binary is used by the Node and browser tests)"
cargo build --workspace --locked

step "Rust tests"
cargo test --workspace --locked

step "spec: OpenRPC meta-schema, examples, protocol document coverage"
(cd spec && npm test)

step "the protocol document's example client, unmodified, in Node"
(cd runtime/gateway/tests/node-example && npm test)

step "TypeScript client: types, Node and Chromium"
(cd clients/typescript && npm test)

step "Autobahn|Testsuite against the daemon (RFC 6455 closing behaviour; skipped without Python 2.7)"
FLYNN_GATEWAY_BIN=target/debug/flynn-gateway ./scripts/autobahn.sh

step "dashboard: the embedded build is fresh; every view in Chromium against the daemon, axe-core"
(cd dashboard && npm test)
