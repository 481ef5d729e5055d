// The conventions of flynn.openrpc.json that the Rust code generator (typify
// 0.8) and the TypeScript generator rely on. See spec/README.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spec, pascal, SPEC_DIR } from "./helpers.mjs";

const schemas = spec.components.schemas;
const REF = "#/components/schemas/";
const TAGS = new Set(["system", "insights", "operations", "nodes", "sessions", "agent", "canvas", "tools", "config", "pairing", "rpc"]);
const PRIMITIVES = new Set(["string", "integer", "number", "boolean"]);
const FORBIDDEN = ["allOf", "anyOf", "oneOf", "not", "if", "then", "else", "patternProperties", "dependencies", "const"];

/** Visit every schema node under `schema`, with a readable path. */
function eachSchema(schema, path, visit) {
  if (!schema || typeof schema !== "object") return;
  visit(schema, path);
  for (const [k, v] of Object.entries(schema.properties ?? {})) eachSchema(v, `${path}.${k}`, visit);
  if (schema.items) eachSchema(schema.items, `${path}[]`, visit);
  if (schema.additionalProperties && typeof schema.additionalProperties === "object")
    eachSchema(schema.additionalProperties, `${path}{}`, visit);
}

/** All (schema, path, isTopLevelComponent) triples of the typed part of the spec. */
function typedSchemas() {
  const out = [];
  for (const [name, s] of Object.entries(schemas)) eachSchema(s, `components.schemas.${name}`, (n, p) => out.push([n, p, n === s]));
  for (const m of spec.methods) {
    for (const p of m.params) eachSchema(p.schema, `${m.name}(${p.name})`, (n, pp) => out.push([n, pp, false]));
    eachSchema(m.result.schema, `${m.name} -> result`, (n, pp) => out.push([n, pp, false]));
  }
  for (const e of spec["x-events"]) eachSchema(e.data, `event ${e.name}`, (n, pp) => out.push([n, pp, false]));
  for (const [k, e] of Object.entries(spec.components.errors))
    if (e.data) eachSchema(e.data, `error ${k}.data`, (n, pp) => out.push([n, pp, false]));
  return out;
}

/** Names of component schemas reachable from `roots` (following $refs). */
function reachable(roots) {
  const seen = new Set();
  const stack = [...roots];
  while (stack.length) {
    const s = stack.pop();
    eachSchema(s, "", (n) => {
      if (n.$ref) {
        const name = n.$ref.slice(REF.length);
        if (!seen.has(name)) {
          seen.add(name);
          stack.push(schemas[name]);
        }
      }
    });
  }
  return seen;
}

/** The nullable primitive, the one union allowed: `{oneOf: [{type: P}, {type: "null"}]}` (+ description). */
function isNullablePrimitive(n) {
  const o = n.oneOf;
  return (
    Array.isArray(o) &&
    o.length === 2 &&
    o.every((b) => b && Object.keys(b).length === 1 && typeof b.type === "string") &&
    PRIMITIVES.has(o[0].type) &&
    o[1].type === "null" &&
    Object.keys(n).every((k) => ["oneOf", "description"].includes(k))
  );
}

test("typify subset: no combinators, no external refs, nullable only as oneOf [primitive, null]", () => {
  const bad = [];
  for (const [n, p] of typedSchemas()) {
    for (const k of FORBIDDEN) if (k in n && !(k === "oneOf" && isNullablePrimitive(n))) bad.push(`${p}: uses ${k}`);
    if (n.$ref && !n.$ref.startsWith(REF)) bad.push(`${p}: external or non-component $ref ${n.$ref}`);
    if (n.$ref && Object.keys(n).some((k) => !["$ref", "description"].includes(k))) bad.push(`${p}: $ref with siblings other than description`);
    if (Array.isArray(n.type)) bad.push(`${p}: type ${JSON.stringify(n.type)} (a type array)`);
    else if (!n.$ref && n.type === undefined && !isNullablePrimitive(n)) bad.push(`${p}: schema without type or $ref`);
    if (n.enum && (n.type !== "string" || !n.enum.every((v) => typeof v === "string"))) bad.push(`${p}: non-string enum`);
  }
  assert.deepEqual(bad, []);
});

// `"type": [T, "null"]` is valid JSON Schema, but @open-rpc/generator (through
// @json-schema-tools/transpiler) turns it into a reference to a type it never declares, so a
// client generated from the document does not compile. Nullable values are written
// `oneOf: [{type: T}, {type: "null"}]` instead. Checked over the whole document, x-wire and
// x-http included.
test("no schema uses a type array containing null", () => {
  const bad = [];
  const walk = (v, path) => {
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${path}[${i}]`));
    if (!v || typeof v !== "object") return;
    if (Array.isArray(v.type) && v.type.includes("null")) bad.push(`${path}: type ${JSON.stringify(v.type)}`);
    for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk(spec, "$");
  assert.deepEqual(bad, []);
});

test("every object schema with properties is a named component", () => {
  const bad = typedSchemas()
    .filter(([n, , top]) => n.properties && !top)
    .map(([, p]) => p);
  assert.deepEqual(bad, [], "inline object schemas with properties");
  for (const [name, s] of Object.entries(schemas)) {
    assert.match(name, /^[A-Z][A-Za-z0-9]*$/, `schema name ${name} is PascalCase`);
    assert.ok(s.description?.length > 0, `${name} has a description`);
    if (s.type === "object" && !s.properties)
      assert.ok(s.additionalProperties === undefined || typeof s.additionalProperties === "object", `${name}: free-form object`);
  }
});

test("every property and param has a description", () => {
  const bad = [];
  for (const [n, p] of typedSchemas())
    for (const [k, v] of Object.entries(n.properties ?? {})) if (!v.description) bad.push(`${p}.${k}`);
  for (const m of spec.methods) for (const p of m.params) if (!p.description) bad.push(`${m.name}(${p.name})`);
  assert.deepEqual(bad, []);
});

test("required names exist among properties", () => {
  const bad = [];
  for (const [n, p] of typedSchemas()) for (const r of n.required ?? []) if (!(r in (n.properties ?? {}))) bad.push(`${p}: ${r}`);
  assert.deepEqual(bad, []);
});

test("method shape: summary, description, tags, by-name params, named result, errors, x-events", () => {
  const bad = [];
  for (const m of spec.methods) {
    const want = `${pascal(m.name)}Result`;
    if (!m.summary || !m.description) bad.push(`${m.name}: summary/description`);
    if (m.tags?.length !== 1 || !TAGS.has(m.tags[0].name)) bad.push(`${m.name}: tags ${JSON.stringify(m.tags)}`);
    if (m.paramStructure !== "by-name") bad.push(`${m.name}: paramStructure`);
    if (m.result?.name !== want || m.result?.schema?.$ref !== REF + want || Object.keys(m.result.schema).length !== 1)
      bad.push(`${m.name}: result must be {name: ${want}, schema: {$ref: ${REF + want}}}`);
    if (!(want in schemas)) bad.push(`${m.name}: component ${want} missing`);
    if (`${pascal(m.name)}Params` in schemas) bad.push(`${m.name}: ${pascal(m.name)}Params must not exist`);
    if (!Array.isArray(m.errors) || !m.errors.every((e) => Object.keys(e).length === 1 && e.$ref?.startsWith("#/components/errors/")))
      bad.push(`${m.name}: errors must be component refs`);
    if (!m.errors.some((e) => e.$ref === "#/components/errors/InvalidRequest")) bad.push(`${m.name}: InvalidRequest missing`);
    for (const frameLevel of ["ParseError", "MethodNotFound", "AuthRequired", "AuthFailed"])
      if (m.errors.some((e) => e.$ref.endsWith(`/${frameLevel}`))) bad.push(`${m.name}: ${frameLevel} belongs to x-wire`);
    if (!Array.isArray(m["x-events"])) bad.push(`${m.name}: x-events`);
    const pn = m.params.map((p) => p.name);
    if (new Set(pn).size !== pn.length) bad.push(`${m.name}: duplicate params`);
    for (const p of m.params) {
      if (typeof p.required !== "boolean") bad.push(`${m.name}(${p.name}): required must be explicit`);
      if (p.schema.type === "object" && p.schema.properties) bad.push(`${m.name}(${p.name}): inline object param`);
    }
  }
  assert.deepEqual(bad, []);
});

// OpenRPC (Method Object, `params`): "All optional params (content descriptor objects with
// "required": false) MUST be positioned after all required params in the list."
test("optional params come after required ones", () => {
  const bad = [];
  for (const m of spec.methods) {
    const firstOptional = m.params.findIndex((p) => p.required !== true);
    if (firstOptional === -1) continue;
    const late = m.params.slice(firstOptional).filter((p) => p.required === true);
    if (late.length)
      bad.push(`${m.name}: required ${late.map((p) => p.name).join(", ")} after optional ${m.params[firstOptional].name}`);
  }
  assert.deepEqual(bad, []);
});

test("params side is closed, results and events are open", () => {
  const paramSide = reachable(spec.methods.flatMap((m) => m.params.map((p) => p.schema)));
  const serverSide = reachable([
    ...spec.methods.map((m) => m.result.schema),
    ...spec["x-events"].map((e) => e.data),
    ...Object.values(spec.components.errors).flatMap((e) => (e.data ? [e.data] : [])),
  ]);
  const bad = [];
  for (const name of paramSide) {
    const s = schemas[name];
    if (s.properties && s.additionalProperties !== false) bad.push(`${name}: used in params, must set additionalProperties: false`);
    if (s.properties && serverSide.has(name)) bad.push(`${name}: used in params and in results/events`);
  }
  for (const name of serverSide) {
    const s = schemas[name];
    if (s.properties && s.additionalProperties === false) bad.push(`${name}: server-to-client object must stay open`);
  }
  assert.deepEqual(bad, []);
  assert.ok(paramSide.has("Attachment"));
});

test("error components: code, message, optional data $ref (OpenRPC error objects are closed)", () => {
  for (const [k, e] of Object.entries(spec.components.errors)) {
    assert.ok(Number.isInteger(e.code), k);
    assert.ok(e.message.length > 0, k);
    assert.deepEqual(Object.keys(e).filter((x) => !["code", "message", "data"].includes(x)), [], `${k}: extra members`);
    if (e.data) assert.ok(e.data.$ref?.startsWith(REF), `${k}.data is a schema $ref`);
  }
});

test("tags: declared in components.tags with a description, each used by a method", () => {
  const declared = spec.components.tags ?? {};
  assert.deepEqual(new Set(Object.keys(declared)), TAGS, "components.tags declares exactly the method groups");
  for (const [key, tag] of Object.entries(declared)) {
    assert.equal(tag.name, key, `components.tags.${key}.name`);
    assert.match(key, /^[a-z]+$/, `tag ${key}: a lower-case word (it names a Rust trait and module)`);
    assert.ok(tag.description?.length > 20, `components.tags.${key} has a description`);
    assert.ok(spec.methods.some((m) => m.tags[0].name === key), `tag ${key} is used by no method`);
  }
});

test("root metadata: versions, decisions", () => {
  assert.equal(spec.info.title, "Flynn gateway protocol");
  assert.match(spec.info.version, /^\d+\.\d+\.\d+$/);
  assert.equal(spec["x-protocol-version"], 1);
  const ids = spec["x-decisions"].map((d) => d.id);
  assert.equal(new Set(ids).size, ids.length, "decision ids unique");
  for (const d of spec["x-decisions"]) {
    assert.match(d.id, /^[a-z0-9]+(-[a-z0-9]+)*$/, `decision id ${d.id}`);
    assert.ok(d.topic && d.decision, `decision ${d.id}`);
  }
  for (const id of [
    "session-alias",
    "agent-send-result",
    "agent-cancel-shape",
    "agent-busy-code",
    "timestamp-forms",
    "health-endpoints",
    "browser-auth",
    "request-ids",
    "closed-params",
    "event-seq",
    "tool-approval",
    "sessions-list-persisted",
    "pairing-codes",
    "info-capabilities-additions",
    "protocol-version",
    "method-tags",
  ])
    assert.ok(ids.includes(id), `decision ${id} present`);
});

test("agent.send keeps the deprecated session alias", () => {
  const send = spec.methods.find((m) => m.name === "agent.send");
  const alias = send.params.find((p) => p.name === "session");
  assert.ok(alias && alias.deprecated === true && alias.required === false);
  const sid = send.params.find((p) => p.name === "sessionId");
  assert.ok(sid && sid.required === false);
});

test("every method declares a scope from x-scopes", () => {
  const scopes = spec["x-scopes"].map((s) => s.name);
  assert.deepEqual(scopes, spec.components.schemas.Scope.enum, "x-scopes and the Scope schema list the same scopes");
  const missing = spec.methods.filter((m) => !scopes.includes(m["x-scope"])).map((m) => `${m.name}: ${m["x-scope"]}`);
  assert.deepEqual(missing, [], "methods without a known x-scope");
  const noError = spec.methods
    .filter((m) => !(m.errors ?? []).some((e) => e.$ref === "#/components/errors/ScopeRequired"))
    .map((m) => m.name);
  assert.deepEqual(noError, [], "every method may answer ScopeRequired");
});

test("README lists every decision and error", () => {
  const readme = readFileSync(join(SPEC_DIR, "README.md"), "utf8");
  for (const d of spec["x-decisions"]) {
    const row = readme.split("\n").find((l) => l.startsWith(`| \`${d.id}\` |`));
    assert.ok(row, `README decisions table lacks ${d.id}`);
    assert.ok(row.includes(d.topic.replace(/\|/g, "\\|")), `README row of ${d.id} has a stale topic`);
    assert.ok(row.includes(d.decision.replace(/\|/g, "\\|")), `README row of ${d.id} has a stale decision text`);
  }
  for (const [k, e] of Object.entries(spec.components.errors))
    assert.ok(readme.includes(`| ${e.code} | \`${k}\` |`), `README error table lacks ${k}`);
});
