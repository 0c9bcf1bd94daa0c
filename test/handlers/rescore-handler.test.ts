import { describe, expect, it } from "vitest";
import { EnvironmentError } from "../../lambdas/contracts/env.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { rescoreRequestKey } from "../../lambdas/domain/rescore.js";
import { createRescoreHandler, rescoreDepsFromEnvironment } from "../../lambdas/handlers/rescore-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { CountingScoringEndpoint, InMemoryRecordStore, InMemoryStudyObjects, lambdaContext } from "../support/in-memory-ports.js";
import { PLANTED_KEY, pendingStack } from "../support/round-fixtures.js";

const STUDY = "c".repeat(32);

describe("rescore handler", () => {
  it("requests one re-score per study waiting for the model in service; logs counts, never keys", async () => {
    const records = new InMemoryRecordStore();
    const objects = new InMemoryStudyObjects();
    const scoring = new CountingScoringEndpoint();
    const stack: StackRecord = { ...pendingStack(1, 600), stackId: `${STUDY}-s0` };
    await records.createStack(stack);
    await records.claimModelInService({ modelVersion: "m-new", sequence: 2, since: "2026-12-01T00:00:00.000Z", source: "promotion" });
    const lines: string[] = [];
    const handler = createRescoreHandler({
      records,
      objects,
      scoring,
      config: { studiesBucket: "studies", topK: 200, thresholds: [0.3, 0.5, 0.7] },
      log: lambdaLogger("rescore", (line) => lines.push(line)),
    });
    expect(await handler({}, lambdaContext)).toEqual({ modelVersion: "m-new", studies: 1, stacks: 1 });
    expect(scoring.calls).toEqual([`s3://studies/${rescoreRequestKey(STUDY, "m-new")}`]);
    expect(lines.join("\n")).toContain('"stacks":1');
    expect(lines.join("\n")).not.toContain(PLANTED_KEY);
  });

  it("parses its environment at cold start and names what is missing", () => {
    const env = {
      TABLE_NAME: "t",
      METRICS_NAMESPACE: "IchAl/test",
      STUDIES_BUCKET: "s",
      SCORING_ENDPOINT_NAME: "e",
      SCORING_TOP_K: "200",
      SCORING_THRESHOLDS: "0.3,0.5,0.7",
    };
    expect(rescoreDepsFromEnvironment(env).config).toMatchObject({ studiesBucket: "s", topK: 200, thresholds: [0.3, 0.5, 0.7] });
    const { SCORING_ENDPOINT_NAME: _missing, ...without } = env;
    expect(() => rescoreDepsFromEnvironment(without)).toThrow(EnvironmentError);
    expect(() => rescoreDepsFromEnvironment(without)).toThrow(/SCORING_ENDPOINT_NAME/);
  });
});
