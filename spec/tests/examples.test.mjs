// Every example of the spec validates against its schema, and the document's
// cross references hold.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  spec,
  specText,
  makeAjv,
  validator,
  paramsSchema,
  pascal,
  walk,
  duplicateKeys,
  FORMATS,
} from "./helpers.mjs";
import Ajv from "ajv";

const ajv = makeAjv();
const schemas = spec.components.schemas;
const eventsByName = new Map(spec["x-events"].map((e) => [e.name, e]));

test("every method has at least one example", () => {
  const missing = spec.methods.filter((m) => !Array.isArray(m.examples) || m.examples.length === 0).map((m) => m.name);
  assert.deepEqual(missing, [], `methods without examples: ${missing.join(", ")}`);
});

test("every method example: params validate against the params object schema", () => {
  const failures = [];
  for (const m of spec.methods) {
    const check = validator(ajv, paramsSchema(m));
    for (const ex of m.examples) {
      const names = ex.params.map((p) => p.name);
      if (new Set(names).size !== names.length) failures.push(`${m.name} / ${ex.name}: duplicate param names`);
      const params = Object.fromEntries(ex.params.map((p) => [p.name, p.value]));
      const err = check(params);
      if (err) failures.push(`${m.name} / ${ex.name}: params\n${err}`);
    }
  }
  assert.equal(failures.length, 0, failures.join("\n"));
});

test("every method example: result validates against the result schema", () => {
  const failures = [];
  for (const m of spec.methods) {
    const check = validator(ajv, m.result.schema);
    for (const ex of m.examples) {
      if (!ex.result || !("value" in ex.result)) {
        failures.push(`${m.name} / ${ex.name}: no result value`);
        continue;
      }
      if (ex.result.name !== m.result.name) failures.push(`${m.name} / ${ex.name}: result name ${ex.result.name} != ${m.result.name}`);
      const err = check(ex.result.value);
      if (err) failures.push(`${m.name} / ${ex.name}: result\n${err}`);
    }
  }
  assert.equal(failures.length, 0, failures.join("\n"));
});

test("every method example has an integer x-request-id and a known summary", () => {
  const bad = [];
  for (const m of spec.methods)
    for (const ex of m.examples) {
      if (!Number.isInteger(ex["x-request-id"])) bad.push(`${m.name} / ${ex.name}: x-request-id`);
      if (!["From the protocol document", "Written for the spec"].includes(ex.summary)) bad.push(`${m.name} / ${ex.name}: summary`);
    }
  assert.deepEqual(bad, []);
});

test("every event example validates against its data schema", () => {
  const failures = [];
  for (const ev of spec["x-events"]) {
    assert.ok(ev.examples?.length > 0, `event ${ev.name} has no example`);
    const check = validator(ajv, ev.data);
    for (const ex of ev.examples) {
      const err = check(ex.value);
      if (err) failures.push(`event ${ev.name} / ${ex.name}\n${err}`);
    }
  }
  assert.equal(failures.length, 0, failures.join("\n"));
});

test("every x-wire example validates against its frame schema (and error data against the error's data schema)", () => {
  const wire = spec["x-wire"];
  const wireAjv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true, formats: FORMATS });
  wireAjv.addKeyword({ keyword: "x-codifies" });
  const frames = Object.fromEntries(Object.entries(wire.schemas).map(([k, s]) => [k, wireAjv.compile(s)]));
  const errorsByCode = new Map(Object.entries(spec.components.errors).map(([k, e]) => [e.code, { name: k, ...e }]));
  const failures = [];
  for (const ex of wire.examples) {
    const fn = frames[ex.frame];
    if (!fn) {
      failures.push(`${ex.name}: unknown frame ${ex.frame}`);
      continue;
    }
    if (!fn(ex.value)) failures.push(`${ex.name} (${ex.frame})\n${JSON.stringify(fn.errors)}`);
    if (ex.frame === "ErrorFrame") {
      const def = errorsByCode.get(ex.value.error.code);
      if (!def) failures.push(`${ex.name}: code ${ex.value.error.code} is not a components.errors code`);
      else if ("data" in ex.value.error) {
        if (!def.data) failures.push(`${ex.name}: ${def.name} declares no data`);
        else {
          const err = validator(ajv, def.data)(ex.value.error.data);
          if (err) failures.push(`${ex.name}: error.data\n${err}`);
        }
      }
    }
    if (ex.frame === "EventFrame") {
      const ev = eventsByName.get(ex.value.event);
      if (!ev) failures.push(`${ex.name}: unknown event ${ex.value.event}`);
      else {
        const err = validator(ajv, ev.data)(ex.value.data);
        if (err) failures.push(`${ex.name}: event data\n${err}`);
      }
    }
    if (ex.frame === "RequestFrame") {
      const m = spec.methods.find((mm) => mm.name === ex.value.method);
      if (!m) failures.push(`${ex.name}: unknown method ${ex.value.method}`);
      else {
        const err = validator(ajv, paramsSchema(m))(ex.value.params ?? {});
        if (err) failures.push(`${ex.name}: params\n${err}`);
      }
    }
  }
  assert.equal(failures.length, 0, failures.join("\n"));
  // the four Message Format frames are present
  for (const f of ["RequestFrame", "ResponseFrame", "ErrorFrame", "EventFrame"])
    assert.ok(
      wire.examples.some((e) => e.frame === f && e.summary === "From the protocol document"),
      `x-wire has no document example of ${f}`,
    );
});

test("error examples in events use declared codes", () => {
  const codes = new Set(Object.values(spec.components.errors).map((e) => e.code));
  for (const ex of eventsByName.get("error").examples) assert.ok(codes.has(ex.value.code), `error event code ${ex.value.code}`);
});

test("every x-events name on a method exists in root x-events", () => {
  const missing = [];
  for (const m of spec.methods) {
    assert.ok(Array.isArray(m["x-events"]), `${m.name} has no x-events list`);
    for (const e of m["x-events"]) if (!eventsByName.has(e)) missing.push(`${m.name}: ${e}`);
  }
  assert.deepEqual(missing, []);
});

test("every event is emitted by some method", () => {
  const emitted = new Set(spec.methods.flatMap((m) => m["x-events"]));
  for (const e of eventsByName.keys()) assert.ok(emitted.has(e), `event ${e} is emitted by no method`);
});

test("every $ref resolves", () => {
  const unresolved = [];
  walk(spec, (v, path) => {
    if (v && typeof v === "object" && !Array.isArray(v) && typeof v.$ref === "string") {
      const ref = v.$ref;
      const m = /^#\/components\/(schemas|errors)\/([^/]+)$/.exec(ref);
      if (!m) unresolved.push(`${path}: ${ref} (only #/components/schemas|errors/Name refs are allowed)`);
      else if (!(m[2] in spec.components[m[1]])) unresolved.push(`${path}: ${ref}`);
    }
  });
  assert.deepEqual(unresolved, []);
});

test("every component schema is referenced", () => {
  const used = new Set();
  walk(spec, (v) => {
    if (v && typeof v === "object" && typeof v.$ref === "string") used.add(v.$ref.split("/").pop());
  });
  const unused = Object.keys(schemas).filter((n) => !used.has(n));
  assert.deepEqual(unused, []);
});

test("schema, method, event and error names are unique", () => {
  const dups = duplicateKeys(specText);
  assert.deepEqual(dups, [], "duplicate keys in flynn.openrpc.json");
  const lower = new Map();
  for (const n of Object.keys(schemas)) {
    const k = n.toLowerCase();
    assert.ok(!lower.has(k), `schema names ${n} and ${lower.get(k)} differ only in case`);
    lower.set(k, n);
  }
  const methodNames = spec.methods.map((m) => m.name);
  assert.equal(new Set(methodNames).size, methodNames.length, "duplicate method names");
  const eventNames = spec["x-events"].map((e) => e.name);
  assert.equal(new Set(eventNames).size, eventNames.length, "duplicate event names");
  const codes = Object.values(spec.components.errors).map((e) => e.code);
  assert.equal(new Set(codes).size, codes.length, "duplicate error codes");
  // generated names must not collide with synthesized ones
  for (const m of spec.methods) {
    assert.ok(!(`${pascal(m.name)}Params` in schemas), `${pascal(m.name)}Params must not be a component schema`);
  }
});

test("every method example name is unique within its method", () => {
  for (const m of spec.methods) {
    const names = m.examples.map((e) => e.name);
    assert.equal(new Set(names).size, names.length, `${m.name}: duplicate example names`);
  }
});

// The HTTP surface is held to its schemas too: every x-http endpoint has a response example
// that validates against the response schema (JSON bodies and text bodies alike).
test("every x-http endpoint: the response example validates against its schema", () => {
  const failures = [];
  for (const e of spec["x-http"].endpoints) {
    const r = e.response;
    if (!r || !r.schema || !("example" in r)) {
      failures.push(`${e.method} ${e.path}: no response schema and example`);
      continue;
    }
    const err = validator(ajv, r.schema)(r.example);
    if (err) failures.push(`${e.method} ${e.path}: response\n${err}`);
    // Endpoints that answer several statuses list each with its own schema and example.
    for (const other of e.responses ?? []) {
      if (!other.schema || !("example" in other)) {
        failures.push(`${e.method} ${e.path}: ${other.status}: no schema and example`);
        continue;
      }
      const otherErr = validator(ajv, other.schema)(other.example);
      if (otherErr) failures.push(`${e.method} ${e.path}: ${other.status}\n${otherErr}`);
    }
    const q = e.request;
    if (q?.headers && q.example?.headers) {
      const headerErr = validator(ajv, q.headers)(q.example.headers);
      if (headerErr) failures.push(`${e.method} ${e.path}: request headers\n${headerErr}`);
    }
  }
  assert.equal(failures.length, 0, failures.join("\n"));
});

// Request bodies and every other documented status (errors included) carry an example too.
test("every x-http request example and other-status example validates against its schema", () => {
  const failures = [];
  for (const e of spec["x-http"].endpoints) {
    const bodies = [];
    if (e.request) bodies.push(["request", e.request]);
    for (const r of e.responses ?? []) bodies.push([`response ${r.status}`, r]);
    for (const [what, b] of bodies) {
      if (!b.schema || !("example" in b)) {
        failures.push(`${e.method} ${e.path}: ${what} has no schema and example`);
        continue;
      }
      const err = validator(ajv, b.schema)(b.example);
      if (err) failures.push(`${e.method} ${e.path}: ${what}\n${err}`);
    }
  }
  assert.equal(failures.length, 0, failures.join("\n"));
});

// Endpoints that take a body (the chat channel callbacks) have a request example that validates
// against the request schema, and an example for every error status, valid against the shared
// error body schema.
test("every x-http request and error example validates against its schema", () => {
  const failures = [];
  const errorBody = validator(ajv, spec["x-http"].channelErrorBody);
  for (const e of spec["x-http"].endpoints) {
    if (e.request) {
      const err = validator(ajv, e.request.schema)(e.request.example);
      if (err) failures.push(`${e.method} ${e.path}: request\n${err}`);
    }
    for (const x of e.errors ?? []) {
      const err = errorBody(x.example);
      if (err) failures.push(`${e.method} ${e.path}: ${x.status}\n${err}`);
    }
  }
  assert.equal(failures.length, 0, failures.join("\n"));
});
