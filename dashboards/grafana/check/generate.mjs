// Turns every dashboard of ../dashboards into a TypeScript module that `tsc` checks against
// @grafana/schema: the dashboard against `Dashboard`, each panel against `Panel` with the
// options and field config of its panel plugin. Object literals get TypeScript's excess
// property checks, so a misspelt or unknown key is an error, not silently ignored.
//
// Grafana's generated types use enums where the JSON has strings; `Json<T>` turns each enum
// into the union of its values, which is what a JSON file can hold.
import { readdirSync, readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { join, basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dashboards = join(here, "..", "dashboards");
const out = join(here, "generated");

// Panel plugin -> the module with its Options and FieldConfig types.
const plugins = {
  timeseries: "timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen",
  stat: "stat/panelcfg/x/StatPanelCfg_types.gen",
  table: "table/panelcfg/x/TablePanelCfg_types.gen",
  bargauge: "bargauge/panelcfg/x/BarGaugePanelCfg_types.gen",
  gauge: "gauge/panelcfg/x/GaugePanelCfg_types.gen",
  heatmap: "heatmap/panelcfg/x/HeatmapPanelCfg_types.gen",
  text: "text/panelcfg/x/TextPanelCfg_types.gen",
};
const moduleName = (t) => `P_${t}`;

rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const problems = [];
const files = readdirSync(dashboards).filter((f) => f.endsWith(".json")).sort();
if (files.length < 2) problems.push(`expected at least two dashboards in ${dashboards}`);

for (const file of files) {
  const d = JSON.parse(readFileSync(join(dashboards, file), "utf8"));
  const where = (what) => `${file}: ${what}`;
  // Importable anywhere: a Prometheus datasource input that every query uses.
  const inputs = d.__inputs ?? [];
  if (!inputs.some((i) => i.name === "DS_PROMETHEUS" && i.type === "datasource" && i.pluginId === "prometheus")) {
    problems.push(where("no __inputs entry DS_PROMETHEUS (datasource, prometheus)"));
  }
  const { __inputs, __requires, __elements, panels = [], ...rest } = d;
  const flat = [];
  for (const p of panels) {
    flat.push(p);
    if (p.type === "row") for (const q of p.panels ?? []) flat.push(q);
  }
  const ids = new Set();
  const lines = [
    `import type { Dashboard, Panel, RowPanel } from "@grafana/schema";`,
    `import type { Json } from "../json";`,
  ];
  const used = new Set(flat.filter((p) => p.type !== "row").map((p) => p.type));
  for (const t of used) {
    if (!plugins[t]) {
      problems.push(where(`panel type ${t} has no type mapping in generate.mjs`));
      continue;
    }
    lines.push(`import type * as ${moduleName(t)} from "@grafana/schema/dist/esm/raw/composable/${plugins[t]}";`);
  }
  lines.push(`export const dashboard = ${JSON.stringify({ ...rest, panels: [] }, null, 2)} satisfies Json<Dashboard>;`);
  flat.forEach((p, i) => {
    if (ids.has(p.id)) problems.push(where(`panel id ${p.id} is used twice`));
    ids.add(p.id);
    if (p.type === "row") {
      lines.push(`export const panel${i} = ${JSON.stringify({ ...p, panels: [] }, null, 2)} satisfies Json<RowPanel>;`);
      return;
    }
    if (p.datasource?.uid !== "${DS_PROMETHEUS}") problems.push(where(`panel ${p.title} does not use \${DS_PROMETHEUS}`));
    for (const t of p.targets ?? []) {
      if (t.datasource?.uid !== "${DS_PROMETHEUS}") problems.push(where(`a query of ${p.title} does not use \${DS_PROMETHEUS}`));
      if (!t.expr) problems.push(where(`a query of ${p.title} has no expr`));
    }
    if (!plugins[p.type]) return;
    const m = moduleName(p.type);
    const fc = p.type === "stat" || p.type === "bargauge" || p.type === "gauge" || p.type === "text" ? "{}" : `${m}.FieldConfig`;
    lines.push(
      `export const panel${i} = ${JSON.stringify(p, null, 2)} satisfies Json<Omit<Panel<${m}.Options, ${fc}>, "options"> & { options: ${m}.Options }>;`,
    );
  });
  writeFileSync(join(out, basename(file, ".json") + ".ts"), lines.join("\n") + "\n");
}

if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`generated ${files.length} dashboards for tsc`);
