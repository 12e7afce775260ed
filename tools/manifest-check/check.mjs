// Validates Kubernetes manifests against the real CRD schemas: the validators that @kubernetes-models
// generates from Istio's CRDs (istio 1.29), Envoy Gateway's API types and the Gateway API types, plus
// Kubernetes' own types (core, apps, networking, RBAC) from kubernetes-models, so a doc's Deployment or
// ConfigMap is checked too.
//
//   node check.mjs [--json SUMMARY.json] FILE...
//
// FILE is a .yaml/.yml file (every document in it is checked) or a .md file (every ```yaml block that
// holds a document with apiVersion and kind is checked; other YAML blocks are listed as skipped). A
// document whose apiVersion/kind has no schema here is an error, so nothing passes unchecked.
// Prints one line per document and exits 1 when any document fails.
//
// --json writes every document as parsed (YAML turned into JSON) with its result, so callers can check
// what the schema cannot: tests/envoy/manifests.rs parses each embedded filter configuration with the
// filter's own parser and cross-checks cluster names.
//
// What the schemas do not cover, as in the API server's OpenAPI validation: CEL rules
// (x-kubernetes-validations) are not evaluated, and unknown fields are not refused (the API server prunes
// them, and `kubectl apply` refuses them with its default --validate=strict).

import { readFileSync, writeFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import * as istioExtensionsV1alpha1 from "@kubernetes-models/istio/extensions.istio.io/v1alpha1";
import * as istioNetworkingV1 from "@kubernetes-models/istio/networking.istio.io/v1";
import * as istioNetworkingV1beta1 from "@kubernetes-models/istio/networking.istio.io/v1beta1";
import * as istioNetworkingV1alpha3 from "@kubernetes-models/istio/networking.istio.io/v1alpha3";
import * as istioSecurityV1 from "@kubernetes-models/istio/security.istio.io/v1";
import * as envoyGatewayV1alpha1 from "@kubernetes-models/envoy-gateway/gateway.envoyproxy.io/v1alpha1";
import * as gatewayApiV1 from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1";
import * as gatewayApiV1beta1 from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1";
import * as istioSecurityV1beta1 from "@kubernetes-models/istio/security.istio.io/v1beta1";
import * as coreV1 from "kubernetes-models/v1";
import * as appsV1 from "kubernetes-models/apps/v1";
import * as networkingV1 from "kubernetes-models/networking.k8s.io/v1";
import * as rbacV1 from "kubernetes-models/rbac.authorization.k8s.io/v1";

// "apiVersion kind" -> model class. Only top-level resources carry static apiVersion and kind.
const models = new Map();
for (const group of [
  istioExtensionsV1alpha1,
  istioNetworkingV1,
  istioNetworkingV1beta1,
  istioNetworkingV1alpha3,
  istioSecurityV1,
  istioSecurityV1beta1,
  envoyGatewayV1alpha1,
  gatewayApiV1,
  gatewayApiV1beta1,
  coreV1,
  appsV1,
  networkingV1,
  rbacV1,
]) {
  for (const model of Object.values(group)) {
    if (typeof model === "function" && model.apiVersion && model.kind) {
      models.set(`${model.apiVersion} ${model.kind}`, model);
    }
  }
}

// Envoy Gateway reads its own configuration (kind EnvoyGateway) from this ConfigMap key. EnvoyGateway is
// not a CRD, so there is no schema for it; it is parsed and handed on for the caller to inspect.
const ENVOY_GATEWAY_CONFIG_KEY = "envoy-gateway.yaml";

function yamlSources(file) {
  const text = readFileSync(file, "utf8");
  if (!file.endsWith(".md")) {
    return [{ source: file, text, line: 1 }];
  }
  const blocks = [];
  // A fence may be indented (inside a list item); its content is then indented as much.
  const fence = /^([ \t]*)```ya?ml[^\n]*\n([\s\S]*?)^\1```/gm;
  for (const match of text.matchAll(fence)) {
    const [, indent, body] = match;
    const line = text.slice(0, match.index).split("\n").length;
    const dedented = body
      .split("\n")
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      .join("\n");
    blocks.push({ source: `${file}:${line}`, text: dedented, line, markdown: true });
  }
  return blocks;
}

function validate(doc) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return { errors: ["not a mapping"] };
  }
  const model = models.get(`${doc.apiVersion} ${doc.kind}`);
  if (!model) {
    return { errors: [`no schema for apiVersion ${doc.apiVersion} kind ${doc.kind}`] };
  }
  try {
    new model(doc).validate();
  } catch (error) {
    return { errors: [String(error.message ?? error)] };
  }
  const result = { errors: [] };
  const embedded = doc.kind === "ConfigMap" ? doc.data?.[ENVOY_GATEWAY_CONFIG_KEY] : undefined;
  if (typeof embedded === "string") {
    const parsed = parseAllDocuments(embedded);
    const problems = parsed.flatMap((d) => d.errors.map((e) => e.message));
    if (problems.length) {
      result.errors.push(`data.${ENVOY_GATEWAY_CONFIG_KEY} is not YAML: ${problems.join("; ")}`);
    } else {
      result.embedded = parsed.map((d) => d.toJS());
      result.note = `data.${ENVOY_GATEWAY_CONFIG_KEY} parsed (EnvoyGateway is not a CRD: no schema)`;
    }
  }
  return result;
}

const args = process.argv.slice(2);
let summaryPath;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--json") {
    summaryPath = args[++i];
  } else {
    files.push(args[i]);
  }
}
if (files.length === 0) {
  console.error("usage: node check.mjs [--json SUMMARY.json] FILE...");
  process.exit(2);
}

const documents = [];
const skipped = [];
let failures = 0;
for (const file of files) {
  let sources;
  try {
    sources = yamlSources(file);
  } catch (error) {
    console.log(`FAIL ${file}: cannot read: ${error.message}`);
    failures++;
    continue;
  }
  for (const { source, text, markdown } of sources) {
    const parsed = parseAllDocuments(text);
    const docs = parsed.map((d) => ({ yamlErrors: d.errors.map((e) => e.message), value: d.toJS() }));
    // A Markdown YAML block is a Kubernetes manifest when one of its documents has apiVersion and kind;
    // other blocks (Helm values, Envoy snippets) are not this checker's business.
    if (markdown && !docs.some((d) => d.value && d.value.apiVersion && d.value.kind)) {
      skipped.push(source);
      console.log(`skip ${source}: not a Kubernetes manifest`);
      continue;
    }
    docs.forEach(({ yamlErrors, value }, index) => {
      if (value === null && yamlErrors.length === 0) {
        return; // an empty document, e.g. after a trailing "---"
      }
      const result = yamlErrors.length ? { errors: yamlErrors.map((e) => `YAML: ${e}`) } : validate(value);
      const name = `${value?.kind ?? "?"}/${value?.metadata?.name ?? "?"}`;
      const where = `${source}#${index}`;
      if (result.errors.length) {
        failures++;
        console.log(`FAIL ${where} ${name}: ${result.errors.join("; ")}`);
      } else {
        console.log(`ok   ${where} ${name}${result.note ? ` (${result.note})` : ""}`);
      }
      documents.push({
        source,
        index,
        ok: result.errors.length === 0,
        errors: result.errors,
        object: value,
        embedded: result.embedded,
      });
    });
  }
}

if (summaryPath) {
  writeFileSync(summaryPath, JSON.stringify({ documents, skipped }, null, 2));
}
console.log(`${documents.filter((d) => d.ok).length} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
