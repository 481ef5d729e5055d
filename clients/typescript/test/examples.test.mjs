// The README's examples are real: the Node example runs against the daemon, and every README
// snippet marked `<!-- include: FILE -->` is that file, byte for byte. The README's bundle size
// matches the build.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { PACKAGE_ROOT } from "./support/paths.mjs";
import { removeDir, startGateway, TOKEN } from "./support/gateway.mjs";

const run = promisify(execFile);
const readme = readFileSync(join(PACKAGE_ROOT, "README.md"), "utf8");

/** `<!-- include: path -->` followed by a fenced block: returns [[path, block body]]. */
function includes(markdown) {
  const found = [];
  const pattern = /<!-- include: (\S+) -->\n```[a-z]*\n([\s\S]*?)```\n/g;
  for (const match of markdown.matchAll(pattern)) found.push([match[1], match[2]]);
  return found;
}

describe("README", () => {
  it("includes the examples verbatim", () => {
    const found = includes(readme);
    assert.deepEqual(
      found.map(([path]) => path).sort(),
      ["examples/browser/app.css", "examples/browser/app.js", "examples/browser/index.html", "examples/node.mjs"],
      "every example file is included",
    );
    for (const [path, body] of found) {
      assert.equal(body, readFileSync(join(PACKAGE_ROOT, path), "utf8"), `README copy of ${path} is out of date`);
    }
  });

  it("states the bundle size the build measured", () => {
    const size = JSON.parse(readFileSync(join(PACKAGE_ROOT, "dist", "browser", "size.json"), "utf8"));
    const match = /about ([\d.]+) KiB minified\+gzipped/.exec(readme);
    assert.ok(match, "the README states the minified+gzipped size as `about N KiB minified+gzipped`");
    const stated = Number(match[1]) * 1024;
    assert.ok(
      Math.abs(stated - size.gzipBytes) <= 0.1 * size.gzipBytes,
      `README says ${match[1]} KiB, the build measured ${(size.gzipBytes / 1024).toFixed(1)} KiB: update the README`,
    );
  });
});

describe("Node example", () => {
  let gateway;
  before(async () => {
    gateway = await startGateway();
  });
  after(async () => {
    await gateway.stop();
    removeDir(gateway.dir);
  });

  it("streams an answer from the daemon", async () => {
    const { stdout, stderr } = await run(process.execPath, ["examples/node.mjs", "Hello from the test"], {
      cwd: PACKAGE_ROOT,
      env: { ...process.env, FLYNN_URL: gateway.url, FLYNN_TOKEN: TOKEN },
      timeout: 30_000,
    });
    assert.match(stdout, /^connected to Flynn \d+\.\d+\.\d+$/m);
    assert.match(stdout, /^You said: Hello from the test$/m, "the streamed text");
    assert.match(stdout, /^answer: You said: Hello from the test$/m);
    assert.match(stdout, /^tokens: \d+ in, \d+ out$/m);
    assert.equal(stderr, "");
  });

  it("says so when the token is wrong, and exits 1", async () => {
    await assert.rejects(
      run(process.execPath, ["examples/node.mjs"], {
        cwd: PACKAGE_ROOT,
        env: { ...process.env, FLYNN_URL: gateway.url, FLYNN_TOKEN: "wrong" },
        timeout: 30_000,
      }),
      (error) => error.code === 1 && /rejected the token/.test(error.stderr),
    );
  });
});
