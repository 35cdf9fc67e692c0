// Generates tests/signals/vectors/gpp_sections.json with the official IAB GPP library.
//
//   tmp=$(mktemp -d) && (cd "$tmp" && npm init -y >/dev/null && npm install @iabgpp/cmpapi@3.2.0)
//   NODE_PATH="$tmp/node_modules" node tools/gpp-vectors/generate.mjs > tests/signals/vectors/gpp_sections.json
//
// Every vector is a string the library encoded from field values chosen here (seeded random
// values, edge values, several sections combined, sub-sections on and off), with every field
// the library reads back from that string (`getSection`). The run is deterministic: the same
// seed and library version give the same file.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url + "/../../");
const lib = require("@iabgpp/cmpapi");
const { GppModel, Sections, FixedIntegerRangeEncoder, FibonacciIntegerRangeEncoder } = lib;
const VERSION = JSON.parse(
  readFileSync(join(dirname(require.resolve("@iabgpp/cmpapi")), "..", "..", "package.json"), "utf8"),
).version;
const SEED = 20261201;
const RANDOM_PER_SECTION = 20;
const COMBINED = 40;

// mulberry32: a small seeded generator, so the file is reproducible.
let state = SEED;
function random() {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
const pick = (items) => items[int(0, items.length - 1)];
const bools = (n, p = 0.5) => Array.from({ length: n }, () => random() < p);
const letters = () => String.fromCharCode(int(65, 90), int(65, 90));

// A run of n ids from 1 whose range coding is exactly as long as its bitfield: the tie the
// library gives to the range.
function tie(encode) {
  for (let n = 1; n < 400; n++) {
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    if (encode(ids).length === n) return ids;
  }
  throw new Error("no tie found");
}
const FIXED_TIE = tie((ids) => FixedIntegerRangeEncoder.encode(ids));
const FIB_TIE = tie((ids) => FibonacciIntegerRangeEncoder.encode(ids));

function vendorIds(fibonacci) {
  const mode = int(0, 5);
  if (mode === 0) return [];
  if (mode === 1) return fibonacci ? FIB_TIE : FIXED_TIE;
  if (mode === 2) return [int(1, 65535)];
  const ids = new Set();
  if (mode === 3) for (let i = int(1, 30); i > 0; i--) ids.add(int(1, 3000)); // sparse: ranges
  if (mode === 4) for (let i = 1; i <= int(10, 200); i++) if (random() < 0.6) ids.add(i); // dense
  if (mode === 5) {
    for (let r = int(1, 6); r > 0; r--) {
      const start = int(1, 1500);
      for (let i = start; i < start + int(1, 60); i++) ids.add(i);
    }
  }
  return [...ids].sort((a, b) => a - b);
}

function restrictions(liForbidden) {
  const keys = new Set();
  for (let i = int(0, 4); i > 0; i--) keys.add(int(1, 24));
  return [...keys].sort((a, b) => a - b).map((key) => {
    const types = liForbidden.has(key) ? [0, 1] : [0, 1, 2];
    return new lib.RangeEntry(key, pick(types), vendorIds(false).slice(0, 40));
  });
}

// The decisecond-resolution dates the TCF sections carry.
const date = () => new Date(int(1_600_000_000, 1_900_000_000) * 1000 + int(0, 9) * 100);

// ---------------------------------------------------------------- field values per section

const LI_FORBIDDEN = new Set([1, 3, 4, 5, 6]);

function tcfeuv2(edge) {
  const custom = edge === "max" ? 63 : edge === "min" ? 0 : int(0, 12);
  const li = bools(24);
  for (const p of LI_FORBIDDEN) li[p - 1] = false;
  return {
    CmpId: edge === "max" ? 4095 : int(2, 4095),
    CmpVersion: edge === "max" ? 4095 : int(0, 4095),
    ConsentScreen: edge === "max" ? 63 : int(0, 63),
    ConsentLanguage: edge ? "EN" : letters(),
    VendorListVersion: edge === "max" ? 4095 : int(1, 4095),
    PolicyVersion: pick([4, 5]),
    IsServiceSpecific: true,
    UseNonStandardStacks: edge === "max" || (!edge && random() < 0.5),
    SpecialFeatureOptins: edge === "max" ? bools(12, 1) : edge === "min" ? bools(12, 0) : bools(12),
    PurposeConsents: edge === "max" ? bools(24, 1) : edge === "min" ? bools(24, 0) : bools(24),
    PurposeLegitimateInterests: edge === "min" ? bools(24, 0) : li,
    PurposeOneTreatment: edge === "max" || (!edge && random() < 0.3),
    PublisherCountryCode: edge ? "ZZ" : letters(),
    VendorConsents: edge === "min" ? [] : edge === "max" ? [1, 65535] : vendorIds(false),
    VendorLegitimateInterests: edge === "max" ? FIXED_TIE : edge === "min" ? [] : vendorIds(false),
    PublisherRestrictions: edge === "min" ? [] : restrictions(LI_FORBIDDEN),
    VendorsDisclosed: edge === "min" ? [] : vendorIds(false),
    PublisherConsents: edge === "max" ? bools(24, 1) : bools(24, edge === "min" ? 0 : 0.5),
    PublisherLegitimateInterests: edge === "max" ? bools(24, 1) : bools(24, edge === "min" ? 0 : 0.5),
    NumCustomPurposes: custom,
    PublisherCustomConsents: bools(custom, edge === "max" ? 1 : 0.5),
    PublisherCustomLegitimateInterests: bools(custom, edge === "max" ? 1 : 0.5),
  };
}

function tcfcav1(edge) {
  const custom = edge === "max" ? 63 : edge === "min" ? 0 : int(0, 12);
  return {
    CmpId: edge === "max" ? 4095 : int(2, 4095),
    CmpVersion: edge === "max" ? 4095 : int(0, 4095),
    ConsentScreen: edge === "max" ? 63 : int(0, 63),
    ConsentLanguage: edge ? "FR" : letters(),
    VendorListVersion: edge === "max" ? 4095 : int(1, 4095),
    TcfPolicyVersion: edge === "max" ? 63 : int(1, 4),
    UseNonStandardStacks: edge === "max" || (!edge && random() < 0.5),
    SpecialFeatureExpressConsent: bools(12, edge === "max" ? 1 : edge === "min" ? 0 : 0.5),
    PurposesExpressConsent: bools(24, edge === "max" ? 1 : edge === "min" ? 0 : 0.5),
    PurposesImpliedConsent: bools(24, edge === "max" ? 1 : edge === "min" ? 0 : 0.5),
    VendorExpressConsent: edge === "min" ? [] : edge === "max" ? FIB_TIE : vendorIds(true),
    VendorImpliedConsent: edge === "min" ? [] : edge === "max" ? [1, 65535] : vendorIds(true),
    PubRestrictions: edge === "min" ? [] : restrictions(new Set()).map(
      (r) => new lib.RangeEntry(r.getKey(), int(0, 3), vendorIds(true).slice(0, 40)),
    ),
    PubPurposesExpressConsent: bools(24, edge === "max" ? 1 : edge === "min" ? 0 : 0.5),
    PubPurposesImpliedConsent: bools(24, edge === "max" ? 1 : edge === "min" ? 0 : 0.5),
    NumCustomPurposes: custom,
    CustomPurposesExpressConsent: bools(custom, edge === "max" ? 1 : 0.5),
    CustomPurposesImpliedConsent: bools(custom, edge === "max" ? 1 : 0.5),
    DisclosedVendors: edge === "min" ? [] : vendorIds(true),
  };
}

// US sections: every field from the library's own defaults, so the table cannot drift.
function usFields(name, edge, version) {
  const section = new GppModel();
  section.setFieldValue(name, "MspaCoveredTransaction", 1);
  const defaults = section.getSection(name);
  const out = {};
  for (const [field, value] of Object.entries(defaults)) {
    if (field === "Version" || field === "MspaVersion" || field === "GpcSegmentType") continue;
    const two = () => (edge === "max" ? 2 : edge === "min" ? 0 : int(0, 2));
    if (field === "MspaCoveredTransaction") out[field] = edge === "max" ? 2 : edge === "min" ? 1 : int(1, 2);
    else if (field === "Gpc") out[field] = edge === "max" || (!edge && random() < 0.5);
    else if (Array.isArray(value)) out[field] = value.map(two);
    else out[field] = two();
  }
  if ("Gpc" in defaults) out.GpcSegmentIncluded = edge === "nosub" ? false : edge === "max" || random() < 0.8;
  if (!out.GpcSegmentIncluded && "Gpc" in out) out.Gpc = false;
  if (name === "usin" || name === "usky" || name === "usri") {
    out.SensitiveDataConsentSegmentIncluded = edge !== "nosub" && (edge === "max" || random() < 0.8);
    if (!out.SensitiveDataConsentSegmentIncluded) out.SensitiveDataProcessing = out.SensitiveDataProcessing.map(() => 0);
  }
  if (version === 1) {
    out.Version = 1;
    out.SensitiveDataProcessing = out.SensitiveDataProcessing.slice(0, 12);
    out.KnownChildSensitiveDataConsents = out.KnownChildSensitiveDataConsents.slice(0, 2);
  }
  return out;
}

function uspv1(index) {
  const flags = ["Y", "N", "-"];
  return {
    Notice: flags[index % 3],
    OptOutSale: flags[Math.floor(index / 3) % 3],
    LspaCovered: flags[Math.floor(index / 9) % 3],
  };
}

// ---------------------------------------------------------------- building vectors

const DATED = new Set(["tcfeuv2", "tcfcav1"]);

function build(description, chosen) {
  const model = new GppModel();
  for (const [name, fields] of Object.entries(chosen)) {
    for (const [field, value] of Object.entries(fields)) model.setFieldValue(name, field, value);
    if (DATED.has(name)) {
      // The TCF sections stamp today's date on every change: set the date last.
      const when = date();
      model.setFieldValue(name, "Created", when);
      model.setFieldValue(name, "LastUpdated", when);
      fields.Created = when.toISOString();
      fields.LastUpdated = when.toISOString();
    }
  }
  const gppString = model.encode();
  const decoded = new GppModel(gppString);
  const sections = {};
  for (const name of Object.keys(chosen)) {
    sections[name] = JSON.parse(JSON.stringify(decoded.getSection(name)));
    for (const [field, value] of Object.entries(chosen[name])) {
      if (field.endsWith("Included")) sections[name][field] = decoded.getFieldValue(name, field);
      const got = JSON.stringify(sections[name][field]);
      if (got !== JSON.stringify(value)) {
        throw new Error(`${description}: ${name}.${field} set ${JSON.stringify(value)} read ${got}`);
      }
    }
  }
  return { description, gpp_string: gppString, section_ids: decoded.getSectionIds(), sections };
}

const vectors = [];
const fieldsFor = {
  tcfeuv2: (edge) => tcfeuv2(edge),
  tcfcav1: (edge) => tcfcav1(edge),
};
const names = Sections.SECTION_ORDER;
for (const name of names) {
  if (name === "uspv1") {
    for (let i = 0; i < 27; i++) vectors.push(build(`uspv1 #${i}`, { uspv1: uspv1(i) }));
    continue;
  }
  const make = fieldsFor[name] ?? ((edge) => usFields(name, edge));
  for (const edge of ["min", "max", "nosub"]) {
    if (edge === "nosub" && DATED.has(name)) continue;
    vectors.push(build(`${name} ${edge}`, { [name]: make(edge) }));
  }
  for (let i = 0; i < RANDOM_PER_SECTION; i++) vectors.push(build(`${name} random #${i}`, { [name]: make(null) }));
}
for (let i = 0; i < 10; i++) {
  vectors.push(build(`usnat version 1 #${i}`, { usnat: usFields("usnat", i === 0 ? "max" : null, 1) }));
}
for (let i = 0; i < COMBINED; i++) {
  const chosen = {};
  for (let n = int(2, 5); n > 0; n--) {
    const name = pick(names);
    chosen[name] = name === "uspv1" ? uspv1(int(0, 26)) : (fieldsFor[name] ?? ((e) => usFields(name, e)))(null);
  }
  vectors.push(build(`combined #${i}: ${Object.keys(chosen).join(" ")}`, chosen));
}

const out = {
  generator: "tools/gpp-vectors/generate.mjs",
  library: "@iabgpp/cmpapi",
  library_version: VERSION,
  license: "Apache-2.0 (github.com/IABTechLab/iabgpp-es); strings produced by the library",
  seed: SEED,
  vectors,
};
process.stdout.write("{\n" + Object.entries(out).map(([k, v]) => k === "vectors"
  ? ` "vectors": [\n${v.map((x) => "  " + JSON.stringify(x)).join(",\n")}\n ]`
  : ` ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(",\n") + "\n}\n");
