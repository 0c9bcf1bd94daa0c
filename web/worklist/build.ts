/**
 * Builds the worklist page's static assets: index.html and worklist.css as they are, and app.js
 * bundled from src/main.ts by esbuild (ES2022 module, no source maps, no external imports).
 *
 *   npx tsx web/worklist/build.ts <out-dir>    writes index.html, worklist.css, app.js (for static hosting)
 *
 * The local server (scripts/lib/worklist-server.ts) calls buildWorklistAssets() and serves from memory.
 * `config.json` is not built: whoever serves the page writes it (see src/api.ts PageConfig).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const WORKLIST_DIR = dirname(fileURLToPath(import.meta.url));

export interface WorklistAssets {
  /** File name → content, e.g. `index.html`, `worklist.css`, `app.js`. */
  readonly files: ReadonlyMap<string, string>;
}

export async function buildWorklistAssets(): Promise<WorklistAssets> {
  const bundle = await build({
    entryPoints: [join(WORKLIST_DIR, "src/main.ts")],
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    write: false,
    minify: false,
    legalComments: "none",
    logLevel: "silent",
  });
  const js = bundle.outputFiles[0]?.text;
  if (js === undefined) throw new Error("esbuild produced no app.js");
  return {
    files: new Map([
      ["index.html", readFileSync(join(WORKLIST_DIR, "index.html"), "utf8")],
      ["worklist.css", readFileSync(join(WORKLIST_DIR, "worklist.css"), "utf8")],
      ["app.js", js],
    ]),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: tsx web/worklist/build.ts <out-dir>");
    process.exit(2);
  }
  const assets = await buildWorklistAssets();
  mkdirSync(out, { recursive: true });
  for (const [name, content] of assets.files) writeFileSync(join(out, name), content);
  console.log(`worklist assets written to ${out}: ${[...assets.files.keys()].join(", ")}`);
}
