// Strict schema check of docs/openapi.json with Ajv (JSON Schema 2020-12, the dialect
// of OpenAPI 3.1) in its default, strict options: every schema of the document must
// compile, and every example it carries must validate against its schema.
//
// Usage: node clients/check-openapi.mjs [docs/openapi.json]   (NODE_PATH: target/tools/node_modules)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const require = createRequire(process.env.NODE_PATH ? `${resolve(process.env.NODE_PATH)}/` : import.meta.url);
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats");

const file = process.argv[2] ?? "docs/openapi.json";
const doc = JSON.parse(readFileSync(file, "utf8"));
const ajv = new Ajv2020({ allErrors: true });
addFormats(ajv);
// OpenAPI's own schema keywords and the vendor extensions generators read.
ajv.addVocabulary(["discriminator", "xml", "externalDocs", "example", "x-enum-varnames"]);
// The component schemas as one schema's $defs, so that references between them resolve.
const rewrite = (node) =>
  JSON.parse(JSON.stringify(node).replaceAll('"#/components/schemas/', '"openapi#/$defs/'));
ajv.addSchema({ $id: "openapi", $defs: rewrite(doc.components.schemas) });

const problems = [];
let schemas = 0;
let examples = 0;
const pointer = (path) => "#" + path.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

function compile(path) {
  schemas += 1;
  try {
    if (path[0] === "components" && path[1] === "schemas") {
      return ajv.getSchema(`openapi#/$defs/${path[2]}`);
    }
    const schema = path.reduce((node, key) => node[key], doc);
    return ajv.compile(rewrite(schema));
  } catch (error) {
    problems.push(`${pointer(path)}: ${error.message}`);
    return undefined;
  }
}

function check(validate, value, where) {
  if (!validate) return;
  examples += 1;
  if (!validate(value)) {
    problems.push(`${where}: example does not match its schema: ${ajv.errorsText(validate.errors)}`);
  }
}

// Every component schema.
for (const [name, schema] of Object.entries(doc.components.schemas)) {
  const validate = compile(["components", "schemas", name]);
  for (const [i, value] of (schema.examples ?? []).entries()) {
    check(validate, value, `#/components/schemas/${name}/examples/${i}`);
  }
}
// Every parameter, request body and response schema, with its examples.
function media(path, content) {
  for (const [type, item] of Object.entries(content ?? {})) {
    if (!item.schema) continue;
    const validate = compile([...path, "content", type, "schema"]);
    for (const [name, example] of Object.entries(item.examples ?? {})) {
      check(validate, example.value, `${pointer([...path, "content", type, "examples", name])}`);
    }
  }
}
function parameters(path, list) {
  for (const [i, parameter] of (list ?? []).entries()) {
    if (parameter.$ref || !parameter.schema) continue;
    const validate = compile([...path, i, "schema"]);
    for (const [name, example] of Object.entries(parameter.examples ?? {})) {
      check(validate, example.value, pointer([...path, i, "examples", name]));
    }
  }
}
for (const [name, parameter] of Object.entries(doc.components.parameters ?? {})) {
  const validate = compile(["components", "parameters", name, "schema"]);
  for (const [i, value] of (parameter.schema.examples ?? []).entries()) {
    check(validate, value, `#/components/parameters/${name}/schema/examples/${i}`);
  }
}
const operations = [
  ...Object.entries(doc.paths).map(([route, item]) => ["paths", route, item]),
  ...Object.entries(doc.webhooks ?? {}).map(([name, item]) => ["webhooks", name, item]),
];
for (const [section, route, item] of operations) {
  parameters([section, route, "parameters"], item.parameters);
  for (const [method, operation] of Object.entries(item)) {
    if (method === "parameters") continue;
    const base = [section, route, method];
    parameters([...base, "parameters"], operation.parameters);
    if (operation.requestBody?.content) media([...base, "requestBody"], operation.requestBody.content);
    for (const [status, response] of Object.entries(operation.responses)) {
      if (!response.$ref) media([...base, "responses", status], response.content);
    }
  }
}
for (const [name, response] of Object.entries(doc.components.responses ?? {})) {
  media(["components", "responses", name], response.content);
}

if (problems.length > 0) {
  console.error(problems.join("\n"));
  console.error(`Ajv: ${problems.length} problem(s) in ${file}`);
  process.exit(1);
}
console.log(`Ajv 2020 (strict): ${schemas} schemas compiled, ${examples} examples valid in ${file}`);
