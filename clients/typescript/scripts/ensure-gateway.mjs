// Builds the gateway daemon the tests run (`cargo build -p flynn-gateway`) when its binary is missing.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { gatewayBinary, REPO_ROOT } from "../test/support/paths.mjs";

const binary = gatewayBinary();
if (existsSync(binary)) {
  console.log(`gateway binary: ${binary}`);
} else {
  console.log(`gateway binary ${binary} is missing: running cargo build -p flynn-gateway`);
  execFileSync("cargo", ["build", "-p", "flynn-gateway"], { cwd: REPO_ROOT, stdio: "inherit" });
  if (!existsSync(binary)) {
    console.error(`cargo build finished but ${binary} is still missing; set FLYNN_GATEWAY_BIN to the daemon's path`);
    process.exit(1);
  }
}
