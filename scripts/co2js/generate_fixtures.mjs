// Runs the real npm @tgwf/co2 0.19.0 over a broad grid of cases and writes the answers as JSON
// fixtures. tests/exporters/test_network.py asserts that otel_downstream.exporters.engine.network.transfer returns
// bit-identical floats (==, not approx) for every case and every segment.
//
// Regenerate (from the repository root):
//   cd scripts/co2js && npm ci && node generate_fixtures.mjs
//
// Output: tests/exporters/fixtures/co2js_swd_v4.json, co2js_swd_v3.json, co2js_onebyte.json,
// co2js_ratings.json. JSON numbers are written by JSON.stringify (shortest round-trip form), so
// Python's json module reads back the very same doubles.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { co2 as CO2 } from "@tgwf/co2";

const here = path.dirname(fileURLToPath(import.meta.url));
// OUT_DIR lets the test suite regenerate into a scratch directory and compare.
const outDir = process.env.OUT_DIR
  ? path.resolve(process.env.OUT_DIR)
  : path.resolve(here, "..", "..", "tests", "exporters", "fixtures");
const co2jsVersion = JSON.parse(
  readFileSync(path.join(here, "node_modules", "@tgwf", "co2", "package.json"), "utf8"),
).version;
if (co2jsVersion !== "0.19.0") {
  throw new Error(`expected @tgwf/co2 0.19.0, found ${co2jsVersion}; run npm ci`);
}
// co2.js warns on every defaulted visit option; the fixtures record the values it settled on.
console.warn = () => {};

// Every byte count runs with the default options; each option variant runs over the short list.
const BYTES = [
  0, 0.25, 0.999, 1, 2, 1000, 1234.5678, 65536, 1e6, 2.2e6, 123456789.123, 1e9, 1e12, 7.5e13,
];
const BYTES_SHORT = [0.5, 1, 1234.5678, 2.2e6, 1e12];
const COUNTRIES = ["GBR", "fra", "usa", "CAF", "DEU", "IND", "EU", "world", "XXX"];

const MODELS = {
  "swd-v4": { model: "swd", version: 4 },
  "swd-v3": { model: "swd", version: 3 },
  onebyte: { model: "1byte" },
};

function gridCases() {
  const cases = [{}];
  for (const segment of ["device", "dataCenter", "network"]) {
    for (const value of [0, 100, 300.5, 1000]) cases.push({ gridIntensity: { [segment]: value } });
    for (const country of COUNTRIES) {
      cases.push({ gridIntensity: { [segment]: { country } } });
    }
  }
  cases.push({ gridIntensity: { device: 120.5, dataCenter: 43, network: 800 } });
  cases.push({
    gridIntensity: { device: { country: "GBR" }, dataCenter: 10, network: { country: "IND" } },
  });
  cases.push({
    gridIntensity: {
      device: { country: "NOR" },
      dataCenter: { country: "POL" },
      network: { country: "BRA" },
    },
  });
  return cases;
}

function optionCases(method, fn) {
  const cases = gridCases();
  if (method === "swd-v4") {
    for (const greenHostingFactor of [0, 0.25, 0.5, 0.9, 1]) {
      cases.push({ greenHostingFactor });
      cases.push({ greenHostingFactor, gridIntensity: { dataCenter: { country: "DEU" } } });
    }
  }
  if (fn === "perVisit") {
    const visits = [
      { firstVisitPercentage: 0.6, returnVisitPercentage: 0.4, dataReloadRatio: 0.1 },
      { firstVisitPercentage: 0, returnVisitPercentage: 1, dataReloadRatio: 0.02 },
      { firstVisitPercentage: 1, returnVisitPercentage: 0, dataReloadRatio: 0 },
      { firstVisitPercentage: 0.75 },
      { returnVisitPercentage: 0.3 },
      { dataReloadRatio: 0.5 },
      { firstVisitPercentage: 0.33, returnVisitPercentage: 0.67, dataReloadRatio: 0.15 },
    ];
    for (const v of visits) {
      cases.push(v);
      cases.push({ ...v, gridIntensity: { device: { country: "GBR" }, network: 250 } });
      if (method === "swd-v4") cases.push({ ...v, greenHostingFactor: 0.5 });
    }
  }
  return cases;
}

function withoutDescription(variables) {
  const copy = structuredClone(variables);
  delete copy.description;
  if (copy.gridIntensity) delete copy.gridIntensity.description;
  return copy;
}

function run(method) {
  const spec = MODELS[method];
  const rated = method !== "onebyte";
  const plain = new CO2(spec);
  const detailed = new CO2({ ...spec, results: "segment", ...(rated ? { rating: true } : {}) });
  const fns = method === "onebyte" ? ["perByte"] : ["perByte", "perVisit"];
  const cases = [];
  for (const fn of fns) {
    const traceFn = `${fn}Trace`;
    for (const options of method === "onebyte" ? [{}] : optionCases(method, fn)) {
      const byteCounts = Object.keys(options).length === 0 ? BYTES : BYTES_SHORT;
      for (const bytes of byteCounts) {
        for (const green of [false, true]) {
          const trace = detailed[traceFn](bytes, green, options);
          cases.push({
            method,
            fn,
            bytes,
            green,
            options,
            // perByte/perVisit without options: what most callers of co2.js see.
            plain: Object.keys(options).length === 0 ? plain[fn](bytes, green) : null,
            co2: trace.co2,
            variables: withoutDescription(trace.variables),
          });
        }
      }
    }
  }
  return cases;
}

function ratingCases() {
  const v3 = new CO2().SustainableWebDesignV3();
  const v4 = new CO2().SustainableWebDesignV4();
  const bounds = {
    3: [0.095, 0.186, 0.341, 0.493, 0.656, 0.846],
    4: [0.04, 0.079, 0.145, 0.209, 0.278, 0.359],
  };
  const cases = [];
  for (const [version, model] of [
    [3, v3],
    [4, v4],
  ]) {
    const values = [0, 1e-9, 0.01, 2, 100];
    for (const b of bounds[version]) values.push(b, b * (1 - 1e-15), b * (1 + 1e-15), b + 0.001);
    for (const co2e of values) cases.push({ version, co2e, rating: model.ratingScale(co2e) });
  }
  return cases;
}

function write(name, cases) {
  const doc = {
    generator: "scripts/co2js/generate_fixtures.mjs",
    co2js_version: co2jsVersion,
    node_version: process.version,
    cases,
  };
  // One case per line: compact, yet a regenerated fixture diffs case by case.
  const head = JSON.stringify({ ...doc, cases: [] }).slice(0, -3);
  const body = cases.map((c) => JSON.stringify(c)).join(",\n");
  writeFileSync(path.join(outDir, name), `${head}[\n${body}\n]}\n`);
  console.log(`${name}: ${cases.length} cases`);
}

write("co2js_swd_v4.json", run("swd-v4"));
write("co2js_swd_v3.json", run("swd-v3"));
write("co2js_onebyte.json", run("onebyte"));
write("co2js_ratings.json", ratingCases());
