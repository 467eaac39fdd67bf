// Exports the average annual grid carbon intensities that @tgwf/co2 0.19.0 ships (Ember yearly data)
// into exporters/data/grid_intensity.csv, and the ISO 3166-1 country list into
// exporters/data/countries.csv, so the Python package reads the very numbers co2.js uses.
//
// Regenerate (from the repository root):
//   cd scripts/co2js && npm ci && node export_grid_data.mjs
//
// Inputs:
// - values: the installed package's `averageIntensity.data` (src/data/average-intensities.min.js), the
//   table co2.js looks countries up in. These are the numbers written to the CSV.
// - year and Ember name per row: co2js-v0.19.0-average-intensities.json, a verbatim copy of
//   data/output/average-intensities.json from github.com/thegreenwebfoundation/co2.js at tag v0.19.0
//   (commit 25f308c). The npm package does not ship the years. The script fails if any value there
//   differs from the installed package, so the two can never drift apart silently.
// - ISO 3166-1 alpha-2/alpha-3/names: Debian's iso-codes package (/usr/share/iso-codes/json/
//   iso_3166-1.json; `apt-get install iso-codes`), or the file named by ISO_CODES_JSON.
//
// Licence of the intensity data as co2.js 0.19.0 states it in its README: Ember's average carbon
// intensity data, Creative Commons Attribution-ShareAlike 4.0 (CC BY-SA 4.0).
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { averageIntensity } from "@tgwf/co2/data";

const here = path.dirname(fileURLToPath(import.meta.url));
// OUT_DIR lets the test suite regenerate into a scratch directory and compare.
const dataDir = process.env.OUT_DIR
  ? path.resolve(process.env.OUT_DIR)
  : path.resolve(here, "..", "..", "exporters", "data");
const co2jsVersion = JSON.parse(
  readFileSync(path.join(here, "node_modules", "@tgwf", "co2", "package.json"), "utf8"),
).version;
if (co2jsVersion !== "0.19.0") {
  throw new Error(`expected @tgwf/co2 0.19.0, found ${co2jsVersion}; run npm ci`);
}

const SOURCE =
  "Ember yearly electricity data as shipped by @tgwf/co2 0.19.0 (averageIntensity.data)";
const LICENCE = "CC-BY-SA-4.0";
const ISO_SOURCE = "ISO 3166-1 via Debian iso-codes";
const ISO_LICENCE = "LGPL-2.1-or-later";

const isoPath = process.env.ISO_CODES_JSON || "/usr/share/iso-codes/json/iso_3166-1.json";
const iso = JSON.parse(readFileSync(isoPath, "utf8"))["3166-1"];
const byAlpha3 = new Map(iso.map((c) => [c.alpha_3, c]));
// Kosovo has no ISO code; Ember and co2.js use the user-assigned XKX, and browsers/CDNs send XK.
const EXTRA = [{ alpha_2: "XK", alpha_3: "XKX", name: "Kosovo" }];
for (const c of EXTRA) byAlpha3.set(c.alpha_3, c);

const details = JSON.parse(
  readFileSync(path.join(here, "co2js-v0.19.0-average-intensities.json"), "utf8"),
);
const detailByKey = new Map(
  Object.entries(details).map(([key, row]) => [key.toUpperCase(), row]),
);

function csvField(value) {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csv(header, rows) {
  return [header, ...rows].map((r) => r.map(csvField).join(",")).join("\n") + "\n";
}

const rows = [];
for (const [key, value] of Object.entries(averageIntensity.data)) {
  const detail = detailByKey.get(key);
  if (!detail) throw new Error(`no year/name for co2.js key ${key}`);
  if (detail.emissions_intensity_gco2_per_kwh !== value) {
    throw new Error(
      `co2.js value for ${key} (${value}) differs from the v0.19.0 source JSON (${detail.emissions_intensity_gco2_per_kwh})`,
    );
  }
  let kind = "region";
  let alpha2 = "";
  let alpha3 = "";
  let name = detail.country_or_region;
  if (key === "WORLD") {
    kind = "world";
    alpha2 = "ZZ";
  } else if (detail.country_code) {
    const country = byAlpha3.get(key);
    if (!country) throw new Error(`co2.js key ${key} is not an ISO 3166-1 alpha-3 code`);
    kind = "country";
    alpha2 = country.alpha_2;
    alpha3 = country.alpha_3;
    name = country.name;
  }
  rows.push([key, kind, alpha2, alpha3, name, value, detail.year, SOURCE, LICENCE]);
}
writeFileSync(
  path.join(dataDir, "grid_intensity.csv"),
  csv(
    [
      "co2js_key",
      "kind",
      "country_alpha2",
      "country_alpha3",
      "country_name",
      "g_co2e_per_kwh",
      "year",
      "source",
      "licence",
    ],
    rows,
  ),
);

const countries = [...byAlpha3.values()]
  .sort((a, b) => a.alpha_2.localeCompare(b.alpha_2))
  .map((c) => [
    c.alpha_2,
    c.alpha_3,
    c.name,
    EXTRA.includes(c) ? "user-assigned code used by Ember and co2.js" : ISO_SOURCE,
    EXTRA.includes(c) ? "" : ISO_LICENCE,
  ]);
writeFileSync(
  path.join(dataDir, "countries.csv"),
  csv(["alpha2", "alpha3", "name", "source", "licence"], countries),
);
console.log(`wrote ${rows.length} intensity rows and ${countries.length} countries to ${dataDir}`);
