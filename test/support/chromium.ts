/**
 * Where the browser tests find a headless Chromium, in this order:
 *   1. `CHROMIUM_PATH`, when set (it must exist: a wrong path fails instead of skipping);
 *   2. Debian's `/usr/bin/chromium`;
 *   3. the Chromium build shipped inside the npm package `@sparticuz/chromium` (a devDependency, so
 *      `npm ci` brings it with no apt and no download outside the npm registry); it is unpacked to
 *      the system temp directory on first use, a few seconds.
 * Only when none of these is there do the browser tests skip, with the reason returned here.
 */
import { existsSync } from "node:fs";

export type ChromiumLookup = { executablePath: string; source: string } | { missing: string };

export async function findChromium(): Promise<ChromiumLookup> {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROMIUM_PATH=${fromEnv} does not exist`);
    return { executablePath: fromEnv, source: "CHROMIUM_PATH" };
  }
  if (existsSync("/usr/bin/chromium")) return { executablePath: "/usr/bin/chromium", source: "Debian chromium" };
  try {
    const bundled = (await import("@sparticuz/chromium")).default;
    return { executablePath: await bundled.executablePath(), source: "npm @sparticuz/chromium" };
  } catch (error) {
    return {
      missing: `no Chromium: CHROMIUM_PATH unset, /usr/bin/chromium absent, and @sparticuz/chromium could not be unpacked (${(error as Error).message})`,
    };
  }
}
