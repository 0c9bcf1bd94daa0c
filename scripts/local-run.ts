/**
 * The local default (README, first command). For now it runs the selection core through the real
 * records table on the local AWS emulator; it grows into the whole pipeline as the scoring engine
 * and the handlers land.
 *
 *   1. start moto server and create the records table (same key layout as the CDK construct);
 *   2. generate a synthetic pool: per stack a boundary length B, component count M, stack
 *      uncertainty V, and a "true" labeling time drawn from a documented log-normal model;
 *   3. fit the labeling-time model on simulated completions (the paper fitted on 61);
 *   4. write every stack as `pending` with its predicted time T, read them back through the GSI;
 *   5. select with the exact knapsack and, for comparison, uniform-cost and random;
 *   6. mark the knapsack's choice `selected` with conditional writes (a second attempt selects nothing);
 *   7. print a summary, stop the emulator.
 *
 * Options: --pool-size N (default 2400) --budget-hours H (default 100) --seed S (default 1)
 */
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoRecordStore } from "../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../lambdas/adapters/records-table-setup.js";
import type { StackRecord } from "../lambdas/contracts/records.js";
import { fitTimeModel, predictLabelingSeconds, type TimingObservation } from "../lambdas/domain/labeling-time-model.js";
import { normalDraw, seededRandom } from "../lambdas/domain/seeded-random.js";
import { STRATEGIES, selectStacks } from "../lambdas/domain/selection-strategies.js";
import { LOCAL_AWS, startMotoServer } from "./lib/moto-server.js";

/** The simulated annotators' true time model (an assumption for the demo, see README). */
const TRUE_TIME = { alpha: 0.55, beta: 0.4, gamma: Math.log(40), sd: 0.45 };

interface SyntheticStack {
  id: string;
  boundaryLength: number;
  components: number;
  uncertainty: number;
  trueSeconds: number;
}

function syntheticStacks(n: number, seed: number): SyntheticStack[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, (_, i) => {
    const negative = random() < 0.35;
    const components = negative ? 0 : 1 + Math.floor(-Math.log(1 - random()) * 2.5);
    const boundaryLength = negative ? 0 : components * Math.exp(4.5 + 1.2 * normalDraw(random));
    // Uncertain stacks: small or faint lesions more than large obvious ones, plus noise.
    const lesionScale = Math.log1p(boundaryLength) / 10;
    const uncertainty = Math.max(
      0.001,
      0.08 + (negative ? 0.02 : 0.12 * Math.exp(-((lesionScale - 0.55) ** 2) / 0.05)) + 0.04 * normalDraw(random),
    );
    const mu = TRUE_TIME.alpha * Math.log1p(boundaryLength) + TRUE_TIME.beta * Math.log1p(components) + TRUE_TIME.gamma;
    return {
      id: `stack-${String(i).padStart(5, "0")}`,
      boundaryLength,
      components,
      uncertainty,
      trueSeconds: Math.exp(mu + TRUE_TIME.sd * normalDraw(random)),
    };
  });
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function main() {
  const { values } = parseArgs({
    options: { "pool-size": { type: "string" }, "budget-hours": { type: "string" }, seed: { type: "string" } },
  });
  const poolSize = Number(values["pool-size"] ?? 2400);
  const budgetHours = Number(values["budget-hours"] ?? 100);
  const seed = Number(values.seed ?? 1);
  if (!Number.isSafeInteger(poolSize) || poolSize < 1)
    throw new Error(`--pool-size must be a positive integer, got ${values["pool-size"]}`);
  if (!(budgetHours >= 0)) throw new Error(`--budget-hours must be a number ≥ 0, got ${values["budget-hours"]}`);
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);

  console.log("1/6 starting moto server (local AWS)…");
  const moto = await startMotoServer();
  const stopOnSignal = () => {
    void moto.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  try {
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: moto.endpoint });
    const tableName = "ich-al-local-records";
    await createRecordsTable(client, tableName);
    const store = new DynamoRecordStore(client, tableName);

    console.log(`2/6 generating ${poolSize} synthetic stacks + 61 completed ones (seed ${seed})…`);
    const pool = syntheticStacks(poolSize, seed);
    const completed: TimingObservation[] = syntheticStacks(61, seed + 1_000_003).map((s) => ({
      boundaryLength: s.boundaryLength,
      components: s.components,
      seconds: s.trueSeconds,
    }));

    console.log("3/6 fitting the labeling-time model log t = α log(1+B) + β log(1+M) + γ…");
    const model = fitTimeModel(completed);

    console.log("4/6 writing pending records and listing them through the by-status GSI…");
    const now = new Date().toISOString();
    const trueSeconds = new Map(pool.map((s) => [s.id, s.trueSeconds]));
    await forEachLimit(pool, 16, async (s) => {
      const p = predictLabelingSeconds(model, s);
      const record: StackRecord = {
        stackId: s.id,
        status: "pending",
        source: { bucket: "local-studies", key: `uploads/${s.id}.zip`, versionId: "1" },
        receivedAt: now,
        updatedAt: now,
        scores: {
          stackUncertainty: s.uncertainty,
          topK: 200,
          boundaryLength: s.boundaryLength,
          components: s.components,
          stackScore: s.components > 0 ? 0.9 : 0.1,
          modelVersion: "synthetic",
        },
        prediction: {
          predictedSeconds: p.seconds,
          medianSeconds: p.medianSeconds,
          low: p.low,
          high: p.high,
          level: p.level,
          timeModelVersion: 1,
        },
      };
      await store.createStack(record);
    });
    const pending = await store.listByStatus("pending");
    const items = pending.map((r) => ({
      id: r.stackId,
      value: r.scores?.stackUncertainty ?? 0,
      seconds: r.prediction?.predictedSeconds ?? 1,
    }));

    console.log(`5/6 selecting within ${budgetHours} h…`);
    const budgetSeconds = budgetHours * 3600;
    const rows = STRATEGIES.map((strategy) => {
      const start = performance.now();
      const r = selectStacks(strategy, items, { budgetSeconds, seed });
      const ms = performance.now() - start;
      const actual = r.selected.reduce((sum, id) => sum + (trueSeconds.get(id) ?? 0), 0);
      return { strategy, r, ms, actual };
    });

    console.log("6/6 marking the knapsack's selection (conditional writes)…");
    const knapsack = rows[0]?.r;
    if (!knapsack) throw new Error("no knapsack result");
    const roundId = "select-local-demo";
    let marked = 0;
    await forEachLimit(knapsack.selected, 16, async (id) => {
      if (await store.transition(id, "pending", "selected", { selectedBy: roundId }, now)) marked++;
    });
    let markedAgain = 0;
    await forEachLimit(knapsack.selected, 16, async (id) => {
      if (await store.transition(id, "pending", "selected", { selectedBy: `${roundId}-repeat` }, now)) markedAgain++;
    });

    const h = (s: number) => (s / 3600).toFixed(1);
    console.log("\n== Summary (synthetic data: not clinical results)");
    console.log(`pool: ${pending.length} pending stacks, budget ${budgetHours} h`);
    console.log(
      `time model fitted on ${model.n} completions: α=${model.alpha.toFixed(3)} β=${model.beta.toFixed(3)} γ=${model.gamma.toFixed(3)} ` +
        `R²=${model.r2?.toFixed(3)} residual SD=${model.residualSd.toFixed(3)}  (truth α=${TRUE_TIME.alpha} β=${TRUE_TIME.beta} γ=${TRUE_TIME.gamma.toFixed(3)})`,
    );
    console.log("strategy   stacks   ΣV (uncertainty)   predicted h   simulated actual h   time");
    for (const { strategy, r, ms, actual } of rows) {
      console.log(
        `${strategy.padEnd(9)} ${String(r.selected.length).padStart(7)}   ${r.totalValue.toFixed(3).padStart(16)}   ${h(r.totalSeconds).padStart(11)}   ${h(actual).padStart(18)}   ${ms.toFixed(0)} ms`,
      );
    }
    console.log(`marked selected: ${marked}; a repeated round marked ${markedAgain} (conditional writes)`);
    console.log(`pending after selection: ${(await store.listByStatus("pending")).length}`);
  } finally {
    await moto.stop();
  }
}

main().catch((error) => {
  console.error(`local run failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
