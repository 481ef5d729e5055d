// Where things are: the package, the repository, the gateway binary.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const REPO_ROOT = resolve(PACKAGE_ROOT, "..", "..");
export const TEST_OUTPUT = join(PACKAGE_ROOT, "test-output");
export const BUNDLE = join(PACKAGE_ROOT, "dist", "browser", "flynn-gateway-client.min.js");

/** The daemon binary: $FLYNN_GATEWAY_BIN, else target/debug/flynn-gateway (honouring $CARGO_TARGET_DIR). */
export function gatewayBinary() {
  if (process.env.FLYNN_GATEWAY_BIN) return process.env.FLYNN_GATEWAY_BIN;
  const target = process.env.CARGO_TARGET_DIR ? resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR) : join(REPO_ROOT, "target");
  return join(target, "debug", "flynn-gateway");
}
