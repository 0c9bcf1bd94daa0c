import { describe, expect, it } from "vitest";

const PRIOR_JSON = '{"alpha":0.45,"beta":0.35,"gamma":3.8,"residualSd":0.6,"strength":4}';

import { EnvironmentError, SelectEnvSchema } from "../../lambdas/contracts/env.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { createSelectHandler, selectDepsFromEnvironment } from "../../lambdas/handlers/select-handler.js";
import { InvalidInputError, lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { InMemoryRecordStore } from "../support/in-memory-ports.js";

function pendingStack(i: number, value: number, seconds: number): StackRecord {
  const at = "2026-11-20T10:00:00.000Z";
  return {
    stackId: `stack-${String(i).padStart(3, "0")}`,
    kind: "stack",
    status: "pending",
    source: { bucket: "studies", key: `uploads/s${i}.zip`, versionId: "v1" },
    receivedAt: at,
    updatedAt: at,
    scores: { stackUncertainty: value, topK: 8, boundaryLength: 10, components: 2, stackScore: 0.5, modelVersion: "m1" },
    prediction: { predictedSeconds: seconds, medianSeconds: seconds, low: seconds / 2, high: seconds * 2, level: 0.9, timeModelVersion: 0 },
  };
}

function setup() {
  const records = new InMemoryRecordStore();
  const lines: string[] = [];
  const handler = createSelectHandler({
    records,
    settings: { budgetSeconds: 3600, resolutionSeconds: 1, timeZone: "UTC" },
    log: lambdaLogger("select", (line) => lines.push(line)),
  });
  return { records, lines, handler };
}

describe("select handler", () => {
  it("returns the round output for the next states", async () => {
    const { records, handler, lines } = setup();
    for (let i = 0; i < 5; i++) await records.createStack(pendingStack(i, 0.2 * (i + 1), 1000));
    const out = await handler({ now: "2026-11-26T09:00:00Z" });
    expect(out).toMatchObject({ roundId: "select-2026-W48", repeated: false, budgetSeconds: 3600, poolSize: 5 });
    expect(out.selected.map((s) => s.stackId)).toEqual(["stack-002", "stack-003", "stack-004"]);
    expect(out.selected[0]).toEqual({
      stackId: "stack-002",
      predictedSeconds: 1000,
      stackUncertainty: expect.closeTo(0.6, 12),
      stackScore: 0.5,
    });
    expect(out.totalPredictedSeconds).toBe(3000);
    expect(lines.join("\n")).not.toContain("uploads/");
    expect((await handler({ now: "2026-11-27T09:00:00Z" })).repeated).toBe(true);
  });

  it.each([{}, { now: "yesterday" }, null, { now: 5 }])("rejects input %j with InvalidInputError", async (input) => {
    const { handler } = setup();
    await expect(handler(input)).rejects.toThrow(InvalidInputError);
  });

  it("parses the environment at cold start and names bad variables", () => {
    const deps = selectDepsFromEnvironment({
      TABLE_NAME: "t",
      WEEKLY_BUDGET_HOURS: "2.5",
      RESOLUTION_SECONDS: "5",
      SCHEDULE_TIMEZONE: "America/New_York",
      TIME_MODEL_PRIOR: PRIOR_JSON,
    });
    expect(deps.settings).toEqual({ budgetSeconds: 9000, resolutionSeconds: 5, timeZone: "America/New_York" });
    expect(deps.timePrior).toEqual(JSON.parse(PRIOR_JSON));
    expect(
      SelectEnvSchema.parse({ TABLE_NAME: "t", WEEKLY_BUDGET_HOURS: "1", SCHEDULE_TIMEZONE: "UTC", TIME_MODEL_PRIOR: PRIOR_JSON })
        .RESOLUTION_SECONDS,
    ).toBe(1);
    expect(() =>
      selectDepsFromEnvironment({ TABLE_NAME: "t", WEEKLY_BUDGET_HOURS: "1", SCHEDULE_TIMEZONE: "UTC", TIME_MODEL_PRIOR: "{" }),
    ).toThrow(/TIME_MODEL_PRIOR: not valid JSON/);
    expect(() => selectDepsFromEnvironment({ TABLE_NAME: "t", WEEKLY_BUDGET_HOURS: "-1", SCHEDULE_TIMEZONE: "UTC" })).toThrow(
      EnvironmentError,
    );
    expect(() => selectDepsFromEnvironment({ TABLE_NAME: "t", WEEKLY_BUDGET_HOURS: "1" })).toThrow(/SCHEDULE_TIMEZONE/);
    expect(() => selectDepsFromEnvironment({ TABLE_NAME: "t", WEEKLY_BUDGET_HOURS: "1", SCHEDULE_TIMEZONE: "CET+1" })).toThrow(
      /SCHEDULE_TIMEZONE: an IANA time zone/,
    );
    expect(() => selectDepsFromEnvironment({ WEEKLY_BUDGET_HOURS: "x" })).toThrow(
      /TABLE_NAME.*WEEKLY_BUDGET_HOURS|WEEKLY_BUDGET_HOURS.*TABLE_NAME/,
    );
  });
});
