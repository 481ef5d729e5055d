// The whole spec validates against the OpenRPC 1.3.2 meta-schema
// (@open-rpc/meta-schema), whose JSON Schema part is the json-schema.tools
// meta-schema (@json-schema-tools/meta-schema). Draft-07 ajv.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import Ajv from "ajv";
import { spec, FORMATS, formatErrors, makeAjv } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const { openrpcDocument } = require("@open-rpc/meta-schema");
const jsonSchemaTools = require("@json-schema-tools/meta-schema/schema.json");

function metaValidator() {
  // The meta-schemas use annotation keywords ajv does not know (title on refs,
  // custom $schema URIs), so strict mode is off for them; formats are checked.
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, formats: FORMATS });
  ajv.addMetaSchema(jsonSchemaTools);
  // The OpenRPC meta-schema refers to "https://meta.json-schema.tools" without the trailing slash.
  if (!ajv.getSchema("https://meta.json-schema.tools")) ajv.addSchema(jsonSchemaTools, "https://meta.json-schema.tools");
  return ajv.compile(openrpcDocument);
}

const validate = metaValidator();

test("openrpc version is 1.3.2", () => {
  assert.equal(spec.openrpc, "1.3.2");
  assert.ok(openrpcDocument.properties.openrpc.enum.includes("1.3.2"), "meta-schema package knows 1.3.2");
});

test("the whole document validates against the OpenRPC meta-schema", () => {
  const ok = validate(spec);
  assert.ok(ok, `flynn.openrpc.json fails the OpenRPC meta-schema:\n${formatErrors(validate.errors)}`);
});

test("the meta-schema check is live (broken documents fail)", () => {
  const broken = structuredClone(spec);
  delete broken.methods[0].name;
  assert.equal(validate(broken), false, "a method without name must fail");

  const badSchema = structuredClone(spec);
  badSchema.components.schemas.QueueMode.enum = "followup";
  assert.equal(validate(badSchema), false, "an enum that is not an array must fail");

  const errExt = structuredClone(spec);
  errExt.components.errors.AgentBusy["x-name"] = "AgentBusy";
  assert.equal(validate(errExt), false, "OpenRPC error objects are closed (see decision error-metadata)");
});

test("every component schema compiles under strict draft-07 ajv", () => {
  const ajv = makeAjv();
  const failures = [];
  for (const name of Object.keys(spec.components.schemas)) {
    try {
      ajv.getSchema(`https://flynn.invalid/flynn.openrpc.json#/components/schemas/${name}`) ??
        failures.push(`${name}: not resolvable`);
    } catch (e) {
      failures.push(`${name}: ${e.message}`);
    }
  }
  assert.deepEqual(failures, []);
});

test("every frame schema in x-wire compiles", () => {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, formats: FORMATS });
  for (const [name, schema] of Object.entries(spec["x-wire"].schemas)) {
    assert.doesNotThrow(() => ajv.compile(schema), `x-wire schema ${name}`);
  }
});
