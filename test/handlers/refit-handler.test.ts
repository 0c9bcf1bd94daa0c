import { describe, expect, it, vi } from "vitest";

vi.hoisted(() => {
  // The module-scope composition root parses these at import (no AWS call is made).
  Object.assign(process.env, { TABLE_NAME: "records", AWS_REGION: process.env.AWS_REGION ?? "us-east-1" });
});

import { DynamoTimeModelStore } from "../../lambdas/adapters/dynamo-time-model-store.js";
import { EnvironmentError } from "../../lambdas/contracts/env.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import type { TimeModel } from "../../lambdas/domain/labeling-time-model.js";
import type { TimeModelRegistry, VersionedTimeModel } from "../../lambdas/domain/time-model-store.js";
import { createRefitHandler, InvalidRefitInputError, refitDepsFromEnvironment } from "../../lambdas/handlers/refit-handler.js";
import { jsonLogger } from "../../lambdas/handlers/shared/logger.js";
import { InMemoryRecordStore, lambdaContext } from "./ingest-fakes.js";

const NOW = "2026-11-30T06:00:00Z";
const TRUTH = { alpha: 0.7, beta: 0.5, gamma: Math.log(50) };

class InMemoryTimeModels implements TimeModelRegistry {
  readonly versions = new Map<number, TimeModel>();
  async latest(): Promise<VersionedTimeModel | undefined> {
    const top = Math.max(-1, ...this.versions.keys());
    const model = this.versions.get(top);
    return model ? { version: top, model: structuredClone(model) } : undefined;
  }
  async put(entry: VersionedTimeModel): Promise<boolean> {
    if (this.versions.has(entry.version)) return false;
    this.versions.set(entry.version, structuredClone(entry.model));
    return true;
  }
}

function stack(i: number, status: "labeled" | "pending"): StackRecord {
  const boundaryLength = i % 5 === 0 ? 0 : 30 * i + ((i * 17) % 11) * 40;
  const components = i % 5 === 0 ? 0 : 1 + ((i * 3) % 7);
  const seconds = Math.exp(TRUTH.alpha * Math.log1p(boundaryLength) + TRUTH.beta * Math.log1p(components) + TRUTH.gamma);
  const at = "2026-11-20T10:00:00.000Z";
  return {
    stackId: `${status}-${i}`,
    kind: "stack",
    status,
    source: { bucket: "studies", key: `uploads/secret-name-${i}.zip`, versionId: "v1" },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: 0.2, topK: 8, boundaryLength, components, stackScore: 0.5, modelVersion: "m1" },
    prediction: { predictedSeconds: 500, medianSeconds: 450, low: 100, high: 900, level: 0.9, timeModelVersion: 0 },
    ...(status === "labeled"
      ? {
          selectedBy: "select-2026-W48",
          completion: { activeSeconds: seconds, annotator: "a@x.org", labelLocation: `s3://labels/secret-${i}`, completedAt: at },
        }
      : {}),
  };
}

async function setup(labeled: number, pending: number) {
  const records = new InMemoryRecordStore();
  const timeModels = new InMemoryTimeModels();
  for (let i = 1; i <= labeled; i++) await records.createStack(stack(i, "labeled"));
  for (let i = 1; i <= pending; i++) await records.createStack(stack(100 + i, "pending"));
  const lines: string[] = [];
  const handler = createRefitHandler({ records, timeModels, log: jsonLogger({ lambda: "refit" }, (line) => lines.push(line)) });
  return { records, timeModels, lines, handler };
}

describe("refit handler", () => {
  it("fits, stores a version, re-predicts the pool and reports the last round", async () => {
    const { records, timeModels, lines, handler } = await setup(24, 3);
    const out = await handler({ now: NOW }, lambdaContext);
    expect(out).toMatchObject({ version: 1, fitted: true, n: 24, repredicted: 3, residualSd: expect.closeTo(0, 8) });
    expect(out.alpha).toBeCloseTo(TRUTH.alpha, 8);
    expect(out.beta).toBeCloseTo(TRUTH.beta, 8);
    expect(out.gamma).toBeCloseTo(TRUTH.gamma, 8);
    expect(out.lastRound).toMatchObject({ roundId: "select-2026-W48", stacks: 24, predictedSeconds: 24 * 500 });
    const actual = [...records.items.values()].reduce((s, r) => s + (r.completion?.activeSeconds ?? 0), 0);
    expect(out.lastRound?.actualSeconds).toBeCloseTo(actual, 6);
    expect(out.lastRound?.ratio).toBeCloseTo(actual / (24 * 500), 12);
    expect(timeModels.versions.get(1)?.n).toBe(24);
    for (const r of await records.listByStatus("pending")) expect(r.prediction?.timeModelVersion).toBe(1);
    // JSON-serialisable for Step Functions, and logs carry ids and counts only.
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
    const log = lines.join("\n");
    expect(log).not.toContain("secret");
    expect(log).not.toContain("a@x.org");
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ level: "INFO", message: "refit done", version: 1, repredicted: 3 });

    expect(await handler({ now: NOW }, lambdaContext)).toMatchObject({ version: 1, fitted: false, repredicted: 0 });
  });

  it.each([{}, { now: "last monday" }, null, { now: 17 }, "2026-11-30T06:00:00Z"])(
    "rejects input %j with InvalidRefitInputError",
    async (input) => {
      const { handler, timeModels } = await setup(24, 1);
      await expect(handler(input, lambdaContext)).rejects.toThrow(InvalidRefitInputError);
      expect(timeModels.versions.size).toBe(0);
    },
  );

  it("logs the error's name and rethrows it for the state machine's Retry / Catch", async () => {
    const { records, lines } = await setup(24, 1);
    const failing: TimeModelRegistry = {
      latest: async () => {
        const error = new Error("Throughput exceeds the current capacity");
        error.name = "ProvisionedThroughputExceededException";
        throw error;
      },
      put: async () => true,
    };
    const handler = createRefitHandler({ records, timeModels: failing, log: jsonLogger({}, (line) => lines.push(line)) });
    await expect(handler({ now: NOW }, lambdaContext)).rejects.toThrow(/capacity/);
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ level: "ERROR", code: "ProvisionedThroughputExceededException" });
  });

  it("parses the environment at cold start and names bad variables", () => {
    const deps = refitDepsFromEnvironment({ TABLE_NAME: "t", AWS_ENDPOINT_URL: "http://127.0.0.1:5000" });
    expect(deps.timeModels).toBeInstanceOf(DynamoTimeModelStore);
    expect(() => refitDepsFromEnvironment({})).toThrow(EnvironmentError);
    expect(() => refitDepsFromEnvironment({ TABLE_NAME: "t", AWS_ENDPOINT_URL: "not a url" })).toThrow(/AWS_ENDPOINT_URL/);
  });
});
