// Shared helpers for the spec tests (not a test file itself: node --test only
// runs *.test.mjs here).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import Ajv from "ajv";

export const SPEC_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SPEC_PATH = join(SPEC_DIR, "flynn.openrpc.json");
export const REFERENCE_PATH = join(SPEC_DIR, "reference", "PROTOCOL.md");

export const specText = readFileSync(SPEC_PATH, "utf8");
export const spec = JSON.parse(specText);
export const referenceText = readFileSync(REFERENCE_PATH, "utf8");

// Base URI under which components are registered with ajv, so that
// "#/components/schemas/X" refs of inline schemas can be resolved.
export const BASE = "https://flynn.invalid/flynn.openrpc.json";
const REF_PREFIX = "#/components/schemas/";

/** Formats used by the spec and the meta-schemas (ajv ships none by itself). */
export const FORMATS = {
  "date-time": {
    type: "string",
    validate: (s) =>
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s) && !Number.isNaN(Date.parse(s)),
  },
  regex: {
    type: "string",
    validate: (s) => {
      try {
        new RegExp(s, "u");
        return true;
      } catch {
        return false;
      }
    },
  },
  uri: { type: "string", validate: (s) => /^[a-z][a-z0-9+.-]*:/i.test(s) },
  "uri-reference": { type: "string", validate: (s) => !/\s/.test(s) },
};

/** Deep clone of `schema` with "#/components/schemas/X" refs made absolute. */
export function absolutize(schema) {
  if (Array.isArray(schema)) return schema.map(absolutize);
  if (schema && typeof schema === "object") {
    const out = {};
    for (const [k, v] of Object.entries(schema)) {
      if (k === "$ref" && typeof v === "string" && v.startsWith(REF_PREFIX)) out[k] = BASE + v;
      else out[k] = absolutize(v);
    }
    return out;
  }
  return schema;
}

/**
 * A strict draft-07 ajv with the spec's component schemas registered.
 * strict mode catches unknown keywords and typos inside the spec's schemas.
 */
export function makeAjv(doc = spec) {
  const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true, formats: FORMATS });
  ajv.addKeyword({ keyword: "components" });
  // A schema's constraints that codify a rule enforced before (decision session-id-rule).
  ajv.addKeyword({ keyword: "x-codifies" });
  // The Rust type of a member, for the Rust binding only (decision shared-result-strings).
  ajv.addKeyword({ keyword: "x-rust-type" });
  ajv.addSchema({ $id: BASE, components: { schemas: doc.components.schemas } });
  return ajv;
}

/** The params object schema, built exactly like the code generator does. */
export function paramsSchema(method) {
  const properties = {};
  const required = [];
  for (const p of method.params) {
    properties[p.name] = p.schema;
    if (p.required) required.push(p.name);
  }
  return { type: "object", properties, required, additionalProperties: false };
}

/** Readable ajv errors. */
export function formatErrors(errors) {
  return (errors ?? [])
    .map((e) => `  at ${e.instancePath || "(root)"} [${e.schemaPath}]: ${e.message}${e.params ? " " + JSON.stringify(e.params) : ""}`)
    .join("\n");
}

/** Compile `schema` (may contain component refs) and return a validate(value) -> string|null. */
export function validator(ajv, schema) {
  const fn = ajv.compile(absolutize(schema));
  return (value) => (fn(value) ? null : formatErrors(fn.errors));
}

/** Every ```json block of the reference document, parsed, with its line number. */
export function referenceJsonBlocks(text = referenceText) {
  const out = [];
  const re = /^```json\n([\s\S]*?)^```/gm;
  let m;
  while ((m = re.exec(text))) {
    const line = text.slice(0, m.index).split("\n").length;
    out.push({ line, value: JSON.parse(m[1]) });
  }
  return out;
}

/** Rebuild the request frame of a method example. */
export function requestFrame(method, example) {
  const frame = { id: example["x-request-id"], method: method.name };
  if (example.params.length > 0) {
    frame.params = Object.fromEntries(example.params.map((p) => [p.name, p.value]));
  }
  return frame;
}

/** Name -> PascalCase, splitting on "." and "_" and keeping camel humps. */
export function pascal(name) {
  return name
    .split(/[._]/)
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join("");
}

export function isDocumentMethod(m) {
  return m.name !== "rpc.discover" && m["x-extension"] !== true;
}

/** Walk every JSON value under `node`, calling visit(value, path). */
export function walk(node, visit, path = "") {
  visit(node, path);
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, visit, `${path}/${i}`));
  else if (node && typeof node === "object")
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${path}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`);
}

/**
 * Duplicate keys in the raw JSON text (JSON.parse silently keeps the last one).
 * Returns a list of "path: key" strings.
 */
export function duplicateKeys(text) {
  const dups = [];
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i])) i++;
  };
  const str = () => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const value = (path) => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const seen = new Set();
      ws();
      if (text[i] === "}") return i++;
      for (;;) {
        ws();
        const k = str();
        if (seen.has(k)) dups.push(`${path || "/"}: ${k}`);
        seen.add(k);
        ws();
        i++; // :
        value(`${path}/${k}`);
        ws();
        if (text[i++] === "}") return;
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return i++;
      for (let n = 0; ; n++) {
        value(`${path}/${n}`);
        ws();
        if (text[i++] === "]") return;
      }
    } else if (c === '"') {
      str();
    } else {
      while (i < text.length && !/[\s,\]}]/.test(text[i])) i++;
    }
  };
  value("");
  return dups;
}
