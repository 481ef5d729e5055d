// Every JSON example of the protocol document (spec/reference/PROTOCOL.md) is
// represented, value for value, in the spec; every method and event the
// document names is in the spec; the error table matches components.errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { spec, referenceText, referenceJsonBlocks, requestFrame, isDocumentMethod } from "./helpers.mjs";

const blocks = referenceJsonBlocks();
const methodsByName = new Map(spec.methods.map((m) => [m.name, m]));
const eventsByName = new Map(spec["x-events"].map((e) => [e.name, e]));
const wireExamples = spec["x-wire"].examples;

/** Section text between a heading and the next heading of the same or higher level. */
function section(heading) {
  const start = referenceText.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `heading ${heading} not found in the reference document`);
  const level = heading.match(/^#+/)[0].length;
  const rest = referenceText.slice(start + heading.length + 2);
  const next = rest.search(new RegExp(`^#{1,${level}} `, "m"));
  return next < 0 ? rest : rest.slice(0, next);
}

const docMethodNames = [...section("## Methods").matchAll(/^#### `([^`]+)`/gm)].map((m) => m[1]);
const docEventNames = [...section("### Event Types").matchAll(/^#### `([^`]+)`/gm)].map((m) => m[1]);

/** Find where a document block lives in the spec; returns a description or null. */
function locate(block, previous) {
  const v = block.value;
  if ("method" in v) {
    const m = methodsByName.get(v.method);
    if (!m) return null;
    const ex = m.examples.find((e) => isDeepStrictEqual(requestFrame(m, e), v));
    return ex ? `${m.name} example "${ex.name}" (request)` : null;
  }
  if ("result" in v) {
    const req = previous?.value;
    if (req && "method" in req && req.id === v.id) {
      const m = methodsByName.get(req.method);
      const ex = m?.examples.find(
        (e) => e["x-request-id"] === v.id && isDeepStrictEqual(requestFrame(m, e), req) && isDeepStrictEqual(e.result?.value, v.result),
      );
      if (ex) return `${m.name} example "${ex.name}" (result)`;
    }
    const w = wireExamples.find((e) => e.frame === "ResponseFrame" && isDeepStrictEqual(e.value, v));
    return w ? `x-wire example "${w.name}"` : null;
  }
  if ("event" in v) {
    const ev = eventsByName.get(v.event);
    const ex = ev?.examples.find((e) => isDeepStrictEqual(e.value, v.data));
    return ex ? `event ${ev.name} example "${ex.name}"` : null;
  }
  if ("error" in v) {
    const w = wireExamples.find((e) => e.frame === "ErrorFrame" && isDeepStrictEqual(e.value, v));
    return w ? `x-wire example "${w.name}"` : null;
  }
  return null;
}

test("the reference document has the expected shape", () => {
  assert.equal(blocks.length, 74, "number of ```json blocks in spec/reference/PROTOCOL.md");
  assert.equal(docMethodNames.length, 39, "methods named in the document");
  assert.equal(new Set(docMethodNames).size, 39);
  assert.equal(docEventNames.length, 7, "event types named in the document");
});

test("every ```json block of the document is represented in the spec", () => {
  const missing = [];
  blocks.forEach((block, i) => {
    const where = locate(block, blocks[i - 1]);
    if (!where) missing.push(`PROTOCOL.md line ${block.line}: ${JSON.stringify(block.value)}`);
  });
  assert.equal(missing.length, 0, `document examples missing from the spec:\n${missing.join("\n")}`);
});

test("the x-wire examples include the four Message Format frames verbatim", () => {
  const mf = blocks.slice(0, 4).map((b) => b.value);
  const frames = ["RequestFrame", "ResponseFrame", "ErrorFrame", "EventFrame"];
  mf.forEach((v, i) =>
    assert.ok(
      wireExamples.some((e) => e.frame === frames[i] && isDeepStrictEqual(e.value, v)),
      `Message Format ${frames[i]} missing from x-wire examples`,
    ),
  );
});

test("examples marked 'From the protocol document' really come from it", () => {
  const docValues = blocks.map((b) => b.value);
  const bad = [];
  for (const m of spec.methods)
    for (const ex of m.examples.filter((e) => e.summary === "From the protocol document"))
      if (!docValues.some((v) => isDeepStrictEqual(v, requestFrame(m, ex)))) bad.push(`${m.name} / ${ex.name}`);
  for (const ev of spec["x-events"])
    for (const ex of ev.examples.filter((e) => e.summary === "From the protocol document"))
      if (!docValues.some((v) => v.event === ev.name && isDeepStrictEqual(v.data, ex.value))) bad.push(`event ${ev.name} / ${ex.name}`);
  for (const ex of wireExamples.filter((e) => e.summary === "From the protocol document"))
    if (!docValues.some((v) => isDeepStrictEqual(v, ex.value))) bad.push(`x-wire / ${ex.name}`);
  assert.deepEqual(bad, []);
});

test("every method and event of the document is in the spec, and nothing else without x-extension", () => {
  const specDoc = spec.methods.filter(isDocumentMethod).map((m) => m.name);
  assert.deepEqual([...specDoc].sort(), [...docMethodNames].sort(), "document methods vs spec methods");
  const extra = spec.methods.filter((m) => !isDocumentMethod(m)).map((m) => m.name).sort();
  assert.deepEqual(extra, ["agent.approveTool", "agent.attach", "rpc.discover"]);
  const specEvents = spec["x-events"].filter((e) => e["x-extension"] !== true).map((e) => e.name);
  assert.deepEqual([...specEvents].sort(), [...docEventNames].sort(), "document events vs spec events");
  assert.deepEqual(spec["x-events"].filter((e) => e["x-extension"] === true).map((e) => e.name), ["tool_approval"]);
});

test("components.errors match the document's error table", () => {
  const rows = [...section("## Error Codes").matchAll(/^\|\s*(-?\d+)\s*\|\s*`(\w+)`\s*\|/gm)].map((m) => [m[2], Number(m[1])]);
  assert.equal(rows.length, 10, "rows of the error table");
  const isExtension = (k) => spec["x-errors"][k]?.["x-extension"] === true;
  const spc = Object.entries(spec.components.errors).filter(([k]) => !isExtension(k)).map(([k, e]) => [k, e.code]);
  assert.deepEqual(spc.sort(), rows.sort());
  // Additions of this gateway are marked, and listed here so a new one is a visible change.
  assert.deepEqual(Object.keys(spec.components.errors).filter(isExtension), ["ScopeRequired"]);
  assert.equal(spec.components.errors.RequestCancelled.message, "Request cancelled by client");
  const meta = spec["x-errors"];
  assert.deepEqual(Object.keys(meta).sort(), Object.keys(spec.components.errors).sort(), "x-errors keys");
  for (const [k, e] of Object.entries(meta)) {
    assert.equal(e["x-name"], k);
    assert.equal(e.code, spec.components.errors[k].code, `x-errors.${k}.code`);
    assert.ok(e["x-description"]?.length > 0, `x-errors.${k}.x-description`);
  }
});

test("summary", () => {
  const docMethods = spec.methods.filter(isDocumentMethod).length;
  const discover = spec.methods.filter((m) => m.name === "rpc.discover").length;
  const ext = spec.methods.filter((m) => m["x-extension"] === true).length;
  const docEvents = spec["x-events"].filter((e) => e["x-extension"] !== true).length;
  const extEvents = spec["x-events"].length - docEvents;
  const mex = spec.methods.flatMap((m) => m.examples);
  const mexDoc = mex.filter((e) => e.summary === "From the protocol document").length;
  const eex = spec["x-events"].flatMap((e) => e.examples);
  const eexDoc = eex.filter((e) => e.summary === "From the protocol document").length;
  const wex = wireExamples.length;
  const wexDoc = wireExamples.filter((e) => e.summary === "From the protocol document").length;
  console.log(
    `spec summary: methods ${spec.methods.length} (document ${docMethods} / rpc.discover ${discover} / extensions ${ext}); ` +
      `events ${spec["x-events"].length} (document ${docEvents} / extensions ${extEvents}); ` +
      `examples: methods ${mex.length} (document ${mexDoc} / written ${mex.length - mexDoc}), ` +
      `events ${eex.length} (document ${eexDoc} / written ${eex.length - eexDoc}), ` +
      `wire ${wex} (document ${wexDoc} / written ${wex - wexDoc}); ` +
      `schemas ${Object.keys(spec.components.schemas).length}; document json blocks ${blocks.length}`,
  );
  assert.equal(docMethods, 39);
  assert.equal(discover, 1);
  assert.equal(docEvents, 7);
});
