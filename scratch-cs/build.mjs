import { build } from "esbuild";
const r = await build({ entryPoints: ["main.ts"], bundle: true, format: "esm", target: "es2022", platform: "browser", outfile: "/tmp/cs/app.js", logLevel: "warning", loader: { ".wasm": "file" } });
console.log("built", r.errors.length);
