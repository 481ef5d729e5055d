// Makes sure the daemon the tests run is current: `cargo build -p flynn-gateway` (a no-op when it
// is up to date, and it builds it when target/debug/flynn-gateway is missing), unless
// FLYNN_GATEWAY_BIN names a binary to use as is.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { gatewayBinary, REPO_ROOT } from "../test/support/paths.mjs";

const binary = gatewayBinary();
if (process.env.FLYNN_GATEWAY_BIN) {
  if (!existsSync(binary)) {
    console.error(`FLYNN_GATEWAY_BIN=${binary} does not exist; unset it to build the daemon with cargo`);
    process.exit(1);
  }
} else {
  console.log(existsSync(binary) ? "checking that the gateway binary is current: cargo build -p flynn-gateway" : `${binary} is missing: cargo build -p flynn-gateway`);
  execFileSync("cargo", ["build", "-q", "-p", "flynn-gateway"], { cwd: REPO_ROOT, stdio: "inherit" });
  if (!existsSync(binary)) {
    console.error(`cargo build finished but ${binary} is still missing; set FLYNN_GATEWAY_BIN to the daemon's path`);
    process.exit(1);
  }
}
console.log(`gateway binary: ${binary}`);
