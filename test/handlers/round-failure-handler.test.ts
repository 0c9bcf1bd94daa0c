import { describe, expect, it } from "vitest";

import { EnvironmentError } from "../../lambdas/contracts/env.js";
import { createRoundFailureHandler, roundFailureDepsFromEnvironment } from "../../lambdas/handlers/round-failure-handler.js";
import { InvalidInputError, lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { InMemoryRecordStore } from "../support/in-memory-ports.js";

describe("round-failure handler", () => {
  it("records the failure of the week's round from the Catch output", async () => {
    const records = new InMemoryRecordStore();
    const lines: string[] = [];
    const handler = createRoundFailureHandler({
      records,
      clock: () => "2026-11-26T06:10:00.000Z",
      timeZone: "UTC",
      log: lambdaLogger("test", (l) => lines.push(l)),
    });
    const cause = JSON.stringify({
      errorType: "RoundStateError",
      errorMessage: "round select-2026-W48 could not be completed",
      trace: ["at /var/task"],
    });
    const out = await handler({ now: "2026-11-26T06:00:00Z", error: { Error: "RoundStateError", Cause: cause } });
    expect(out).toEqual({ roundId: "select-2026-W48", status: "failed", restoredToPool: 0 });
    expect(await records.getRound("select-2026-W48")).toMatchObject({
      status: "failed",
      error: "RoundStateError: round select-2026-W48 could not be completed",
      failedAt: "2026-11-26T06:10:00.000Z",
    });
    expect(lines.join("\n")).not.toContain("/var/task");
  });

  it.each([{}, { now: "2026-11-26T06:00:00Z" }, { now: "2026-11-26T06:00:00Z", error: { Cause: "x" } }, null])(
    "rejects input %j",
    async (input) => {
      const handler = createRoundFailureHandler({
        records: new InMemoryRecordStore(),
        clock: () => "",
        timeZone: "UTC",
        log: lambdaLogger("test", () => {}),
      });
      await expect(handler(input)).rejects.toThrow(InvalidInputError);
    },
  );

  it("parses the environment at cold start", () => {
    const deps = roundFailureDepsFromEnvironment({ TABLE_NAME: "t", SCHEDULE_TIMEZONE: "Pacific/Auckland" });
    expect(deps.records).toBeDefined();
    expect(deps.timeZone).toBe("Pacific/Auckland");
    expect(() => roundFailureDepsFromEnvironment({})).toThrow(EnvironmentError);
    expect(() => roundFailureDepsFromEnvironment({ TABLE_NAME: "t" })).toThrow(/SCHEDULE_TIMEZONE/);
  });
});
