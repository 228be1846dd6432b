// Let the official TypeScript SDK judge a schema document: does it fit the SDK's own
// `RawModuleDefV9` (or `RawModuleDefV10`) type?
//
// Usage: node schema_check.mjs < checks.json, where checks.json is a JSON array of
// {"label": "...", "version": "V9" | "V10", "schema": <the served document>}.
// Prints a JSON array, one entry per check, in order: {"label", "ok": true, "bytes": n} or
// {"label", "ok": false, "error": "schema.tables[0].indexes[0].algorithm.BTree: ..."}.
//
// The SDK's generated module-definition types (`src/lib/autogen/types.ts` of npm
// `spacetimedb`) are built into dist/index.mjs but not exported. We load that very file with
// one export line appended, so the types are the SDK's, not a copy. Then the JSON, which the
// server writes with SATS' serde mapping (products as objects keyed by field name, sums as
// one-key objects {"Variant": payload}, Option as {"some": x} / {"none": []}), is converted to
// the SDK's value shapes *guided only by the SDK's type*: a field, variant or payload that the
// SDK's type does not have is an error. The value is then written as BSATN with the SDK's
// serializer and read back with the SDK's deserializer, and must come back equal.
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "node_modules", "spacetimedb", "dist", "index.mjs");
const cacheDir = join(here, "node_modules", ".schema-check");
mkdirSync(cacheDir, { recursive: true });
const exposed = join(cacheDir, "sdk_with_module_def_types.mjs");
writeFileSync(
  exposed,
  readFileSync(dist, "utf8") +
    "\nexport { RawModuleDefV9 as __RawModuleDefV9, RawModuleDefV10 as __RawModuleDefV10 };\n",
);
const sdk = await import(pathToFileURL(exposed).href);
const { AlgebraicType, BinaryReader, BinaryWriter } = sdk;

const ROOTS = { V9: sdk.__RawModuleDefV9, V10: sdk.__RawModuleDefV10 };
if (!ROOTS.V9 || !ROOTS.V10) {
  console.error("the SDK build has no RawModuleDefV9/RawModuleDefV10 types");
  process.exit(2);
}

const camel = (name) => name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const describe = (value) => JSON.stringify(value)?.slice(0, 80);
const fail = (path, message) => {
  throw new Error(`${path}: ${message}`);
};

const BITS = { I8: 8, U8: 8, I16: 16, U16: 16, I32: 32, U32: 32, I64: 64, U64: 64, I128: 128, U128: 128, I256: 256, U256: 256 };

function integer(tag, json, path) {
  const isText = typeof json === "string" && /^-?\d+$/.test(json);
  if (!Number.isInteger(json) && !isText) fail(path, `expected ${tag}, got ${describe(json)}`);
  const bits = BigInt(BITS[tag]);
  const value = BigInt(json);
  const [min, max] = tag.startsWith("U") ? [0n, (1n << bits) - 1n] : [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n];
  if (value < min || value > max) fail(path, `${json} is out of range for ${tag}`);
  return BITS[tag] <= 32 ? Number(value) : value;
}

// JSON.parse would round integers past 2^53 (the i128 bounds of sequences); quote them first.
const parseExact = (text) => JSON.parse(text.replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));

function isOption(sum) {
  const v = sum.variants;
  return v.length === 2 && v[0].name === "some" && v[1].name === "none";
}

// SATS-JSON -> the SDK's value for `ty`, or an error naming the path.
function convert(ty, json, path) {
  switch (ty.tag) {
    case "Product": {
      const elements = ty.value.elements;
      if (elements.length === 0) {
        if (!Array.isArray(json) || json.length !== 0) fail(path, `expected [], got ${describe(json)}`);
        return {};
      }
      if (json === null || typeof json !== "object" || Array.isArray(json)) {
        fail(path, `expected an object, got ${describe(json)}`);
      }
      const byName = new Map(Object.keys(json).map((key) => [camel(key), key]));
      const result = {};
      for (const element of elements) {
        const key = byName.get(element.name);
        if (key === undefined) fail(path, `missing field ${element.name}`);
        byName.delete(element.name);
        result[element.name] = convert(element.algebraicType, json[key], `${path}.${key}`);
      }
      if (byName.size) fail(path, `unexpected field(s) ${[...byName.values()].join(", ")}`);
      return result;
    }
    case "Sum": {
      const sum = ty.value;
      if (json === null || typeof json !== "object" || Array.isArray(json)) {
        fail(path, `expected a {"Variant": payload} object, got ${describe(json)}`);
      }
      const keys = Object.keys(json);
      if (keys.length !== 1) fail(path, `expected one variant, got ${describe(json)}`);
      const variant = sum.variants.find((v) => v.name === keys[0]);
      if (!variant) {
        fail(path, `unknown variant ${keys[0]} (the SDK has ${sum.variants.map((v) => v.name)})`);
      }
      const payload = convert(variant.algebraicType, json[keys[0]], `${path}.${keys[0]}`);
      if (isOption(sum)) return keys[0] === "some" ? payload : undefined;
      return { tag: variant.name, value: payload };
    }
    case "Array": {
      if (ty.value.tag === "U8") {
        if (typeof json !== "string" || !/^([0-9a-fA-F]{2})*$/.test(json)) fail(path, `expected hex bytes, got ${describe(json)}`);
        return Uint8Array.from(json.match(/../g) ?? [], (h) => parseInt(h, 16));
      }
      if (!Array.isArray(json)) fail(path, `expected an array, got ${describe(json)}`);
      return json.map((item, i) => convert(ty.value, item, `${path}[${i}]`));
    }
    case "String":
      if (typeof json !== "string") fail(path, `expected a string, got ${describe(json)}`);
      return json;
    case "Bool":
      if (typeof json !== "boolean") fail(path, `expected true or false, got ${describe(json)}`);
      return json;
    default:
      if (ty.tag in BITS) return integer(ty.tag, json, path);
      fail(path, `type ${ty.tag} is not used in module definitions`);
  }
}

const stable = (value) =>
  JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? [...v] : v));

function check(root, document) {
  const value = convert(root.algebraicType, document, "schema");
  const writer = new BinaryWriter(1024);
  AlgebraicType.makeSerializer(root.algebraicType)(writer, value);
  const bytes = writer.getBuffer();
  const reader = new BinaryReader(bytes);
  const back = AlgebraicType.makeDeserializer(root.algebraicType)(reader);
  if (reader.offset !== bytes.length) fail("schema", `${bytes.length - reader.offset} bytes left over`);
  const [a, b] = [stable(back), stable(value)];
  if (a !== b) {
    let i = 0;
    while (a[i] === b[i]) i++;
    fail("schema", `the SDK read back a different value, from ...${b.slice(Math.max(0, i - 60), i + 40)} to ...${a.slice(Math.max(0, i - 60), i + 40)}`);
  }
  return bytes.length;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = parseExact(input).map(({ label, version, schema }) => {
  const root = ROOTS[version];
  if (!root) return { label, ok: false, error: `unknown version ${version}` };
  try {
    return { label, ok: true, bytes: check(root, schema) };
  } catch (error) {
    return { label, ok: false, error: String(error?.message ?? error) };
  }
});
console.log(JSON.stringify(results));
