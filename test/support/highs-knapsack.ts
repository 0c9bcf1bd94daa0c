/**
 * An independent optimum for knapsack tests and benchmarks: the 0/1 knapsack written as a MIP in
 * CPLEX LP format and solved by HiGHS (WebAssembly build, npm `highs`) with zero optimality gap.
 */
import * as highsModule from "highs";

/** The part of the one-shot HiGHS API used here (CommonJS module: its default export is the loader). */
interface Solver {
  solve(
    lp: string,
    options: Record<string, unknown>,
  ): { Status: string; ObjectiveValue: number; Columns: Record<string, { Primal: number }> };
}
const highsLoader = ((highsModule as unknown as { default?: unknown }).default ?? highsModule) as () => Promise<Solver>;
let solver: Promise<Solver> | undefined;

export interface HighsKnapsackResult {
  readonly status: string;
  readonly objective: number;
  readonly chosen: number[];
  readonly seconds: number;
}

/** Maximise Σ values[i]·x[i] s.t. Σ weights[i]·x[i] ≤ capacity, x binary. */
export async function solveWithHighs(
  values: ArrayLike<number>,
  weights: ArrayLike<number>,
  capacity: number,
  timeLimitSeconds = 120,
): Promise<HighsKnapsackResult> {
  solver ??= highsLoader();
  const highs = await solver;
  const n = values.length;
  const terms = (coef: ArrayLike<number>) => {
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(`${formatCoef(coef[i] as number)} x${i}`);
    return parts.join(" + ") || "0 x0";
  };
  const binaries = Array.from({ length: Math.max(n, 1) }, (_, i) => `x${i}`).join(" ");
  const lp = `Maximize\n obj: ${terms(values)}\nSubject To\n budget: ${terms(weights)} <= ${capacity}\nBinary\n ${binaries}\nEnd\n`;
  const start = performance.now();
  const result = highs.solve(lp, {
    mip_rel_gap: 0,
    mip_abs_gap: 0,
    time_limit: timeLimitSeconds,
    output_flag: false,
  });
  const seconds = (performance.now() - start) / 1000;
  const chosen: number[] = [];
  for (let i = 0; i < n; i++) {
    const column = result.Columns[`x${i}`];
    if (column && column.Primal > 0.5) chosen.push(i);
  }
  return { status: String(result.Status), objective: result.ObjectiveValue, chosen, seconds };
}

function formatCoef(v: number): string {
  // LP format needs plain decimal numbers; 17 significant digits round-trip a double.
  return Number.isInteger(v) ? String(v) : v.toPrecision(17).replace(/\.?0+$/, "");
}
