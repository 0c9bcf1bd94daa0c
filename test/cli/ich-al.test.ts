import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../lambdas/cli/ich-al.js";
import { solveKnapsack } from "../../lambdas/domain/knapsack.js";
import { DEFAULT_TIME_PRIOR, fitTimeModel } from "../../lambdas/domain/labeling-time-model.js";
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
  const LAW = { alpha: 0.5, beta: 0.3, gamma: 3 };
  const lawSeconds = (boundaryLength: number, components: number) =>
    Math.exp(LAW.alpha * Math.log1p(boundaryLength) + LAW.beta * Math.log1p(components) + LAW.gamma);
  const timings = Array.from({ length: 30 }, (_, i) => {
    const boundaryLength = 50 * (i + 1);
    const components = 1 + (i % 5);
    return { boundaryLength, components, seconds: lawSeconds(boundaryLength, components) };
  });
  const KEYS = ["alpha", "beta", "gamma", "n", "r2", "residualSd", "excluded", "posterior"];
  const PRIOR = { alpha: 0.2, beta: 0.8, gamma: 5, residualSd: 0.4, strength: 6 };
  const fitOf = async (argv: string[]) => {
    const { code, out, err } = await call(["fit-time", ...argv]);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    return JSON.parse(out[0] as string);
  };
  /** RMS of the log-time error against the law over the timings' features. */
  const rms = (m: { alpha: number; beta: number; gamma: number }) =>
    Math.sqrt(
      timings.reduce(
        (s, t) =>
          s +
          (m.alpha * Math.log1p(t.boundaryLength) +
            m.beta * Math.log1p(t.components) +
            m.gamma -
            Math.log(lawSeconds(t.boundaryLength, t.components))) **
            2,
        0,
      ) / timings.length,
    );

  it("prints the Bayesian fit: coefficients, statistics, exclusions and the posterior", async () => {
    const fit = await fitOf(["--timings", file("fit-t.json", timings)]);
    expect(Object.keys(fit)).toEqual(KEYS);
    expect(fit.n).toBe(30);
    expect(fit.excluded).toEqual([]);
    // Noise-free timings: the documented prior (worth 4 completions) still pulls a little, so the
    // coefficients are the domain's posterior, and its fitted times are far closer to the law than the prior's.
    const reference = fitTimeModel(timings);
    expect(fit.alpha).toBeCloseTo(reference.alpha, 12);
    expect(fit.beta).toBeCloseTo(reference.beta, 12);
    expect(fit.gamma).toBeCloseTo(reference.gamma, 12);
    expect(rms(fit)).toBeLessThan(rms(DEFAULT_TIME_PRIOR) / 3);
    expect(fit.alpha).toBeGreaterThanOrEqual(0);
    expect(fit.beta).toBeGreaterThanOrEqual(0);
    expect(fit.posterior).toMatchObject({ shape: 1 + DEFAULT_TIME_PRIOR.strength / 2 + 30 / 2, prior: DEFAULT_TIME_PRIOR });
    expect(fit.posterior.mean).toHaveLength(3);
    expect(fit.posterior.covariance).toHaveLength(3);
  });

  it("with no timings prints the prior itself: the documented one, or the --prior file's", async () => {
    const empty = file("fit-empty.json", []);
    const documented = await fitOf(["--timings", empty]);
    expect(Object.keys(documented)).toEqual(KEYS);
    expect(documented).toMatchObject({ n: 0, r2: null, excluded: [], residualSd: expect.closeTo(DEFAULT_TIME_PRIOR.residualSd, 12) });
    const own = await fitOf(["--timings", empty, "--prior", file("fit-prior.json", PRIOR)]);
    expect(own).toMatchObject({ n: 0, excluded: [], residualSd: expect.closeTo(PRIOR.residualSd, 12) });
    for (const [fit, prior] of [
      [documented, DEFAULT_TIME_PRIOR],
      [own, PRIOR],
    ] as const) {
      // The prior's centre, up to the rounding of P₀⁻¹(P₀m₀).
      expect(fit.alpha).toBeCloseTo(prior.alpha, 12);
      expect(fit.beta).toBeCloseTo(prior.beta, 12);
      expect(fit.gamma).toBeCloseTo(prior.gamma, 12);
    }
  });

  it.each([1, 2])("--prior changes the fit of %i timing(s), and each timing moves it", async (k) => {
    const few = file(`fit-few-${k}.json`, timings.slice(0, k));
    const documented = await fitOf(["--timings", few]);
    const own = await fitOf(["--timings", few, "--prior", file("fit-prior.json", PRIOR)]);
    expect(documented.n).toBe(k);
    expect(own.n).toBe(k);
    expect(Math.abs(own.gamma - documented.gamma)).toBeGreaterThan(0.01);
    expect(own.posterior.prior).toEqual(PRIOR);
    const none = await fitOf(["--timings", file("fit-empty.json", []), "--prior", file("fit-prior.json", PRIOR)]);
    expect([own.alpha, own.beta, own.gamma]).not.toEqual([none.alpha, none.beta, none.gamma]);
  });

  it("lists a 1 ms timing (and one beyond --max-seconds) in excluded by index", async () => {
    const withTiny = [timings[0], { boundaryLength: 100, components: 2, seconds: 0.001 }, ...timings.slice(1, 6)];
    const fit = await fitOf(["--timings", file("fit-tiny.json", withTiny)]);
    expect(fit.excluded).toEqual([1]);
    expect(fit.n).toBe(6);
    expect(fit.posterior.exclusions).toEqual([{ index: 1, reason: "out-of-range" }]);
    const capped = await fitOf(["--timings", file("fit-tiny.json", withTiny), "--max-seconds", "400"]);
    const over = withTiny.flatMap((t, i) => ((t as { seconds: number }).seconds > 400 || i === 1 ? [i] : []));
    expect(over.length).toBeGreaterThan(2);
    expect(over.length).toBeLessThan(withTiny.length);
    expect([...capped.excluded].sort((a: number, b: number) => a - b)).toEqual(over);
    expect(capped.n).toBe(withTiny.length - over.length);
  });

  it.each([
    [["--timings", file("fit-x.json", [{ boundaryLength: 1, components: 1, seconds: "x" }])], 1, /x\.json: entry 0: seconds: /],
    [["--timings", file("fit-neg.json", [timings[0], { boundaryLength: -1, components: 1, seconds: 5 }])], 1, /entry 1: boundaryLength: /],
    [["--timings", file("fit-empty.json", []), "--prior", file("fit-bad-prior.json", "{")], 1, /bad-prior\.json is not valid JSON/],
    [
      ["--timings", file("fit-empty.json", []), "--prior", file("fit-zero.json", { ...PRIOR, strength: 0 })],
      1,
      /zero\.json: strength: .*>=0\.1/,
    ],
    [["--timings", file("fit-empty.json", []), "--prior", file("fit-short.json", { alpha: 0.1, beta: 0.1, gamma: 3 })], 1, /short\.json: /],
    [["--timings", file("fit-empty.json", []), "--max-seconds", "eight"], 2, /--max-seconds must be a number/],
  ])("%j → exit %i with one line naming the entry and field", async (argv, exitCode, message) => {
    const { code, out, err } = await call(["fit-time", ...(argv as string[])]);
    expect(code).toBe(exitCode);
    expect(out).toEqual([]);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(message);
  });

  it("names the field of a malformed --prior file", async () => {
    const { err } = await call([
      "fit-time",
      "--timings",
      file("fit-empty.json", []),
      "--prior",
      file("fit-zero.json", { ...PRIOR, strength: 0 }),
    ]);
    expect(err[0]).toMatch(/strength/);
  });
});
