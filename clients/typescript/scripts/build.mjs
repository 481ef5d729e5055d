// Builds the package: `tsc` (ESM + declarations) into dist/, then the single-file browser bundle
// (esbuild, minified ESM) into dist/browser/, and prints the bundle's minified and gzipped sizes.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
export const BUNDLE = join(root, "dist", "browser", "flynn-gateway-client.min.js");

rmSync(join(root, "dist"), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", join(root, "tsconfig.json")], {
  stdio: "inherit",
});

mkdirSync(dirname(BUNDLE), { recursive: true });
await build({
  entryPoints: [join(root, "src", "index.ts")],
  outfile: BUNDLE,
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  legalComments: "none",
  logLevel: "warning",
});

const bytes = readFileSync(BUNDLE);
const gzip = gzipSync(bytes, { level: 9 }).length;
const kib = (n) => (n / 1024).toFixed(1);
writeFileSync(
  join(dirname(BUNDLE), "size.json"),
  JSON.stringify({ file: "flynn-gateway-client.min.js", minifiedBytes: bytes.length, gzipBytes: gzip }, null, 2) + "\n",
);
console.log(
  `browser bundle: dist/browser/flynn-gateway-client.min.js ${kib(bytes.length)} KiB minified, ${kib(gzip)} KiB minified+gzipped (${gzip} bytes)`,
);
