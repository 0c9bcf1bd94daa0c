import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../lambdas/cli/ich-al.js";
import { solveKnapsack } from "../../lambdas/domain/knapsack.js";
import { makePool } from "../support/pools.js";

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, "../../bin/ich-al.mjs");
const dir = mkdtempSync(join(tmpdir(), "ich-al-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
};

async function call(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (l) => out.push(l),
    (l) => err.push(l),
  );
  return { code, out, err };
}

const pool = makePool("realistic", 200, 17).map((it) => ({ id: it.id, uncertainty: it.value, predictedSeconds: it.seconds }));

describe("ich-al (the installed bin, as a process)", () => {
  it("select prints one JSON object equal to the knapsack optimum", async () => {
    const poolPath = file("pool.json", pool);
    const { stdout } = await run(process.execPath, [BIN, "select", "--pool", poolPath, "--budget-hours", "5"]);
    const result = JSON.parse(stdout);
    const expected = solveKnapsack(
      pool.map((e) => ({ id: e.id, value: e.uncertainty, seconds: e.predictedSeconds })),
      { budgetSeconds: 5 * 3600 },
    );
    expect(result).toMatchObject({ strategy: "knapsack", selected: expected.selected, budgetSeconds: 18000 });
    expect(result.totalUncertainty).toBeCloseTo(expected.totalValue, 12);
    expect(result.totalSeconds).toBeLessThanOrEqual(18000);
  });

  it("bad input exits non-zero with one line naming the problem", async () => {
    const bad = file("bad.json", [{ id: "x", uncertainty: -1, predictedSeconds: 10 }]);
    const failure = await run(process.execPath, [BIN, "select", "--pool", bad, "--budget-hours", "1"]).catch((e) => e);
    expect(failure.code).toBe(1);
    expect(failure.stderr.trim().split("\n")).toHaveLength(1);
    expect(failure.stderr).toMatch(/entry 0 \(id "x"\): uncertainty: .*>=0/);
  });
});

describe("ich-al select", () => {
  const poolPath = file("pool2.json", pool);
  it.each(["knapsack", "uniform", "random"])("strategy %s respects the budget at a coarser resolution", async (strategy) => {
    const { code, out } = await call([
      "select",
      "--pool",
      poolPath,
      "--budget-hours",
      "3",
      "--strategy",
      strategy,
      "--resolution-seconds",
      "60",
      "--seed",
      "5",
    ]);
    expect(code).toBe(0);
    const result = JSON.parse(out[0] as string);
    expect(result.strategy).toBe(strategy);
    expect(result.totalSeconds).toBeLessThanOrEqual(3 * 3600);
    expect(Object.keys(result)).toEqual(
      expect.arrayContaining(["strategy", "selected", "totalUncertainty", "totalSeconds", "budgetSeconds"]),
    );
  });

  it.each([
    [["select", "--budget-hours", "1"], 2, /--pool is required/],
    [["select", "--pool", "p.json", "--budget-hours=-3"], 2, /--budget-hours must be a number ≥ 0, got "-3"/],
    [
      ["select", "--pool", "p.json", "--budget-hours", "1", "--strategy", "greedy"],
      2,
      /--strategy must be one of knapsack, uniform, random/,
    ],
    [["select", "--pool", "/nonexistent/p.json", "--budget-hours", "1"], 1, /cannot read \/nonexistent\/p.json: ENOENT/],
    [["select", "--pool", file("broken.json", "[{"), "--budget-hours", "1"], 1, /broken.json is not valid JSON/],
    [["select", "--pool", file("obj.json", { id: "a" }), "--budget-hours", "1"], 1, /obj.json: top level: .*expected array/],
    [["select", "--pool", file("dup.json", [pool[0], pool[0]]), "--budget-hours", "1"], 1, /item "stack-000000" \(index 1\): duplicate id/],
    [["select", "--pool", file("noid.json", [{ uncertainty: 1, predictedSeconds: 2 }]), "--budget-hours", "1"], 1, /entry 0: id: /],
    [
      ["select", "--pool", file("zero.json", [{ id: "z", uncertainty: 1, predictedSeconds: 0 }]), "--budget-hours", "1"],
      1,
      /entry 0 \(id "z"\): predictedSeconds/,
    ],
    [["frobnicate"], 2, /unknown command "frobnicate"/],
    [[], 2, /missing command/],
  ])("%j → exit %i", async (argv, exitCode, message) => {
    const { code, out, err } = await call(argv as string[]);
    expect(code).toBe(exitCode);
    expect(out).toEqual([]);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(message);
  });
});

describe("ich-al fit-time", () => {
  it("prints the fitted coefficients and statistics", async () => {
    const timings = Array.from({ length: 30 }, (_, i) => {
      const boundaryLength = 50 * (i + 1);
      const components = 1 + (i % 5);
      return { boundaryLength, components, seconds: Math.exp(0.5 * Math.log1p(boundaryLength) + 0.3 * Math.log1p(components) + 3) };
    });
    const { code, out } = await call(["fit-time", "--timings", file("t.json", timings)]);
    expect(code).toBe(0);
    const fit = JSON.parse(out[0] as string);
    expect(Object.keys(fit)).toEqual(["alpha", "beta", "gamma", "n", "r2", "residualSd"]);
    expect(fit.alpha).toBeCloseTo(0.5, 9);
    expect(fit.beta).toBeCloseTo(0.3, 9);
    expect(fit.gamma).toBeCloseTo(3, 8);
    expect(fit.n).toBe(30);
  });

  it("reports degenerate input in one line", async () => {
    const { code, err } = await call(["fit-time", "--timings", file("few.json", [{ boundaryLength: 1, components: 1, seconds: 5 }])]);
    expect(code).toBe(1);
    expect(err).toEqual(["ich-al: need at least 4 completed stacks to fit α, β, γ with a residual estimate, got 1"]);
  });
});
