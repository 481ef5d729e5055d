// The negative type tests fail for the reason they claim: test/types/wrong-calls.ts is compiled
// again without its `@ts-expect-error` lines, and each marked call must produce exactly the TS
// error code its comment names, with no error anywhere else. (`tsc -p tsconfig.types.json`, run by
// `npm test`, already fails when a marked line stops erroring.)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { it } from "node:test";
import { PACKAGE_ROOT } from "./support/paths.mjs";

const require = createRequire(import.meta.url);
const ts = require("typescript");

function compile(fileName, text) {
  const configPath = join(PACKAGE_ROOT, "tsconfig.types.json");
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  const host = ts.createCompilerHost(config.options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, ...rest) =>
    name === fileName ? ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, true) : read(name, ...rest);
  const program = ts.createProgram([fileName], config.options, host);
  return ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === fileName);
}

it("every marked wrong call fails with the TS error code it names, and nothing else fails", () => {
  const fileName = join(PACKAGE_ROOT, "test", "types", "wrong-calls.ts");
  const lines = readFileSync(fileName, "utf8").split("\n");
  const expected = new Map(); // line index in the stripped file -> { code, why }
  const kept = [];
  for (const line of lines) {
    const marker = /\/\/ @ts-expect-error TS(\d+): (.*)$/.exec(line);
    if (marker) {
      expected.set(kept.length, { code: Number(marker[1]), why: marker[2] });
      kept.push(""); // keep line numbers stable: the call lands on the next line
      continue;
    }
    kept.push(line);
  }
  assert.ok(expected.size >= 15, `found ${expected.size} marked calls`);
  const diagnostics = compile(fileName, kept.join("\n"));
  const byLine = new Map();
  for (const d of diagnostics) {
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    byLine.set(line, [...(byLine.get(line) ?? []), d.code]);
  }
  for (const [markerLine, { code, why }] of expected) {
    const codes = byLine.get(markerLine + 1) ?? [];
    assert.ok(codes.includes(code), `line ${markerLine + 2} (${why}): expected TS${code}, got ${codes.map((c) => `TS${c}`).join(", ") || "no error"}`);
    byLine.delete(markerLine + 1);
  }
  assert.deepEqual([...byLine.entries()], [], "errors on lines that are not marked");
});
