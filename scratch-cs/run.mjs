import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
const types = { ".html": "text/html", ".js": "text/javascript", ".gz": "application/gzip", ".wasm": "application/wasm" };
const server = createServer((req, res) => {
  const path = "/tmp/cs" + (req.url.split("?")[0] === "/" ? "/index.html" : req.url.split("?")[0]);
  try { const body = readFileSync(path); res.writeHead(200, { "content-type": types[path.slice(path.lastIndexOf("."))] ?? "application/octet-stream" }); res.end(body); }
  catch { res.writeHead(404); res.end(); }
}).listen(8765);
const browser = await chromium.launch({ executablePath: "/tmp/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
const page = await browser.newPage({ viewport: { width: 600, height: 600 } });
page.on("console", (m) => console.log("console:", m.text().slice(0, 300)));
page.on("pageerror", (e) => console.log("pageerror:", e.message.slice(0, 300)));
await page.goto("http://127.0.0.1:8765/");
await page.waitForFunction(() => window.done, null, { timeout: 60000 }).catch(() => {});
console.log(await page.evaluate(() => [window.status1, window.done]));
await page.waitForTimeout(1000);
await page.screenshot({ path: "/tmp/cs/shot.png" });
await browser.close(); server.close();
