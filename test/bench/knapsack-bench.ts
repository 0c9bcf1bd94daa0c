/**
 * Knapsack benchmark (prints figures; not a test): time and peak memory of the exact solver on
 * realistic pools at 1 s resolution, with HiGHS (MIP, zero gap) beside where it finishes within
 * its time limit. Each case runs in a fresh Node process so memory figures do not mix.
 *
 *   npm run bench:knapsack [-- --highs-limit 60 --highs-max-n 20000]
 *
 * HiGHS is skipped above --highs-max-n stacks: the WebAssembly build spends minutes just reading a
 * 100,000-column model (seen: 533 s with a 60 s limit).
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { solveKnapsack } from "../../lambdas/domain/knapsack.js";
import { solveWithHighs } from "../support/highs-knapsack.js";
import { makePool, type PoolShape } from "../support/pools.js";

const CASES: Array<{ n: number; hours: number; shape: PoolShape }> = [
  { n: 2_400, hours: 100, shape: "realistic" },
  { n: 20_000, hours: 400, shape: "realistic" },
  { n: 100_000, hours: 1_000, shape: "realistic" },
];

interface CaseResult {
  n: number;
  hours: number;
  ms: number;
  peakRssMb: number;
  baseRssMb: number;
  selected: number;
  value: number;
  optimal: boolean;
  coreSize: number;
  peakStates: number;
  highs?: { status: string; seconds: number; objective: number };
}

async function runCase(n: number, hours: number, shape: PoolShape, highsLimit: number): Promise<CaseResult> {
  const items = makePool(shape, n, 2026);
  global.gc?.();
  const baseRssMb = process.memoryUsage().rss / 2 ** 20;
  const start = performance.now();
  const r = solveKnapsack(items, { budgetSeconds: hours * 3600 });
  const ms = performance.now() - start;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const result: CaseResult = {
    n,
    hours,
    ms,
    peakRssMb,
    baseRssMb,
    selected: r.selected.length,
    value: r.totalValue,
    optimal: r.optimal,
    coreSize: r.stats.coreSize,
    peakStates: r.stats.peakStates,
  };
  if (highsLimit > 0) {
    const h = await solveWithHighs(
      items.map((it) => it.value),
      items.map((it) => Math.ceil(it.seconds)),
      hours * 3600,
      highsLimit,
    );
    result.highs = { status: h.status, seconds: h.seconds, objective: h.objective };
  }
  return result;
}

async function main() {
  const { values } = parseArgs({
    options: { case: { type: "string" }, "highs-limit": { type: "string" }, "highs-max-n": { type: "string" } },
  });
  const highsLimit = Number(values["highs-limit"] ?? 60);
  const highsMaxN = Number(values["highs-max-n"] ?? 20_000);
  if (values.case !== undefined) {
    const c = CASES[Number(values.case)];
    if (!c) throw new Error(`no case ${values.case}`);
    process.stdout.write(JSON.stringify(await runCase(c.n, c.hours, c.shape, highsLimit)));
    return;
  }
  console.log(
    `exact knapsack, realistic pools (log-normal T, median 10 min), 1 s resolution; HiGHS limit ${highsLimit} s; node ${process.version}`,
  );
  console.log("stacks    budget   solver ms   peak RSS MB (base)   core   peak states   selected   ΣV            HiGHS");
  const self = fileURLToPath(import.meta.url);
  for (let i = 0; i < CASES.length; i++) {
    const limit = (CASES[i]?.n ?? 0) <= highsMaxN ? highsLimit : 0;
    const out = execFileSync(
      process.execPath,
      ["--expose-gc", "--import", "tsx", self, "--case", String(i), "--highs-limit", String(limit)],
      {
        encoding: "utf8",
        maxBuffer: 1 << 20,
      },
    );
    const r = JSON.parse(out) as CaseResult;
    let highs = "skipped";
    if (r.highs) {
      const same = Math.abs(r.highs.objective - r.value) <= 1e-6 * Math.max(1, r.value);
      const verdict =
        r.highs.status === "Optimal"
          ? same
            ? "same ΣV"
            : "ΣV DIFFERS"
          : same
            ? "incumbent = same ΣV"
            : `incumbent ΣV ${r.highs.objective.toFixed(4)}`;
      highs = `${r.highs.status} in ${r.highs.seconds.toFixed(1)} s, ${verdict}`;
    }
    console.log(
      `${String(r.n).padStart(7)} ${String(r.hours).padStart(7)} h ${r.ms.toFixed(0).padStart(10)} ${r.peakRssMb.toFixed(0).padStart(12)} (${r.baseRssMb.toFixed(0)})   ${String(r.coreSize).padStart(6)} ${String(r.peakStates).padStart(12)} ${String(r.selected).padStart(10)}   ${r.value.toFixed(4).padStart(11)}   ${highs}${r.optimal ? "" : "  [NOT PROVEN OPTIMAL]"}`,
    );
  }
}

await main();
