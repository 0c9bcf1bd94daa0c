/**
 * `ich-al`: the selection core from the command line, for people and scripted checks.
 *
 *   ich-al select --pool pool.json --budget-hours H [--resolution-seconds R] [--strategy knapsack|uniform|random] [--seed S]
 *   ich-al fit-time --timings timings.json [--prior prior.json] [--max-seconds S]
 *
 * fit-time prints {alpha, beta, gamma, n, r2, residualSd, excluded: [indices], posterior: {…}}: the
 * Bayesian fit of domain/labeling-time-model.ts (the weekly refit's estimator), the documented prior
 * unless --prior gives {alpha, beta, gamma, residualSd, strength}.
 *
 * Prints one JSON object on stdout. Bad input: exit code 1 (2 for usage) and one line on stderr
 * naming the problem.
 */
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { z } from "zod";
import { PoolFileSchema, PriorFileSchema, TimingsFileSchema } from "../contracts/cli-inputs.js";
import { DomainError } from "../domain/errors.js";
import { solveKnapsack } from "../domain/knapsack.js";
import { DEFAULT_MAX_ACTIVE_SECONDS, DEFAULT_TIME_PRIOR, fitTimeModel, MIN_ACTIVE_SECONDS } from "../domain/labeling-time-model.js";
import { STRATEGIES, type Strategy, selectStacks } from "../domain/selection-strategies.js";

const USAGE = `usage:
  ich-al select --pool pool.json --budget-hours H [--resolution-seconds R] [--strategy ${STRATEGIES.join("|")}] [--seed S]
  ich-al fit-time --timings timings.json [--prior prior.json] [--max-seconds S]`;

/** A problem with the command line or its input files: reported as one line. */
const HINT = " (ich-al --help shows usage)";

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export async function main(
  argv: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
  try {
    const [command, ...rest] = argv;
    switch (command) {
      case "select":
        out(JSON.stringify(await select(rest)));
        return 0;
      case "fit-time":
        out(JSON.stringify(await fitTime(rest)));
        return 0;
      case "--help":
      case "-h":
      case "help":
        out(USAGE);
        return 0;
      default:
        throw new CliError(
          `${command ? `unknown command ${JSON.stringify(command)}` : "missing command"}: expected select or fit-time${HINT}`,
          2,
        );
    }
  } catch (error) {
    if (error instanceof CliError) {
      err(`ich-al: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof DomainError) {
      err(`ich-al: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

async function select(args: string[]) {
  const { values } = parse(args, {
    pool: { type: "string" },
    "budget-hours": { type: "string" },
    "resolution-seconds": { type: "string" },
    strategy: { type: "string" },
    seed: { type: "string" },
  });
  const poolPath = required(values.pool, "--pool");
  const budgetHours = number(required(values["budget-hours"], "--budget-hours"), "--budget-hours", (v) => v >= 0, "≥ 0");
  const resolutionSeconds =
    values["resolution-seconds"] === undefined
      ? undefined
      : number(values["resolution-seconds"], "--resolution-seconds", (v) => v > 0, "> 0");
  const strategy = (values.strategy ?? "knapsack") as Strategy;
  if (!STRATEGIES.includes(strategy)) {
    throw new CliError(`--strategy must be one of ${STRATEGIES.join(", ")}, got ${JSON.stringify(values.strategy)}`, 2);
  }
  const seed = values.seed === undefined ? 0 : number(values.seed, "--seed", Number.isSafeInteger, "an integer");
  const pool = await readJson(poolPath, PoolFileSchema);
  const items = pool.map((e) => ({ id: e.id, value: e.uncertainty, seconds: e.predictedSeconds }));
  const options = { budgetSeconds: budgetHours * 3600, resolutionSeconds, seed };
  if (strategy === "knapsack") {
    const r = solveKnapsack(items, options);
    return {
      strategy,
      selected: r.selected,
      totalUncertainty: r.totalValue,
      totalSeconds: r.totalSeconds,
      budgetSeconds: r.budgetSeconds,
      optimal: r.optimal,
    };
  }
  const r = selectStacks(strategy, items, options);
  return { strategy, selected: r.selected, totalUncertainty: r.totalValue, totalSeconds: r.totalSeconds, budgetSeconds: r.budgetSeconds };
}

async function fitTime(args: string[]) {
  const { values } = parse(args, { timings: { type: "string" }, prior: { type: "string" }, "max-seconds": { type: "string" } });
  const timings = await readJson(required(values.timings, "--timings"), TimingsFileSchema);
  const prior = values.prior === undefined ? DEFAULT_TIME_PRIOR : await readJson(values.prior, PriorFileSchema);
  const maxSeconds =
    values["max-seconds"] === undefined
      ? DEFAULT_MAX_ACTIVE_SECONDS
      : number(values["max-seconds"], "--max-seconds", (v) => v >= MIN_ACTIVE_SECONDS, `≥ ${MIN_ACTIVE_SECONDS}`);
  const fit = fitTimeModel(timings, { prior, maxSeconds });
  const { alpha, beta, gamma, n, r2, residualSd } = fit;
  return {
    alpha,
    beta,
    gamma,
    n,
    r2,
    residualSd,
    excluded: fit.excluded.map((e) => e.index),
    posterior: { ...fit.posterior, atBound: fit.atBound, annotatorSpeeds: fit.annotatorSpeeds, exclusions: fit.excluded, prior: fit.prior },
  };
}

function parse<T extends Record<string, { type: "string" }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new CliError(`${(error as Error).message.split("\n")[0]}${HINT}`, 2);
  }
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined) throw new CliError(`${flag} is required${HINT}`, 2);
  return value;
}

function number(text: string, flag: string, ok: (v: number) => boolean, want: string): number {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || !ok(v))
    throw new CliError(`${flag} must be a number ${want}, got ${JSON.stringify(text)}`, 2);
  return v;
}

/** Reads and validates a JSON file; the error names the file, the entry (index and id) and the field. */
async function readJson<S extends z.ZodType>(path: string, schema: S): Promise<z.infer<S>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const [index, ...field] = issue?.path ?? [];
  const entry = Array.isArray(data) && typeof index === "number" ? (data[index] as { id?: unknown } | undefined) : undefined;
  const where =
    typeof index === "number"
      ? `entry ${index}${typeof entry?.id === "string" ? ` (id ${JSON.stringify(entry.id)})` : ""}${field.length ? `: ${field.join(".")}` : ""}`
      : index !== undefined
        ? [index, ...field].map(String).join(".")
        : "top level";
  throw new CliError(`${path}: ${where}: ${issue?.message ?? "invalid"}`);
}
