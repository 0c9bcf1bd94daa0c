import { describe, expect, it } from "vitest";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { scoringRequestFor } from "../../lambdas/domain/ingest.js";
import { requestRescoring, rescoreRequestKey, studiesToRescore, studyOfRescoreKey } from "../../lambdas/domain/rescore.js";
import { CountingScoringEndpoint, InMemoryRecordStore, InMemoryStudyObjects } from "../support/in-memory-ports.js";
import { pendingStack } from "../support/round-fixtures.js";

const A = "a".repeat(32);
const B = "b".repeat(32);
const CONFIG = { studiesBucket: "studies", topK: 200, thresholds: [0.3, 0.5, 0.7] };

function stackOf(studyId: string, index: number, modelVersion: string, status: StackRecord["status"] = "pending"): StackRecord {
  const base = pendingStack(index, 600);
  return {
    ...base,
    stackId: `${studyId}-s${index}`,
    status,
    source: { bucket: "studies", key: `uploads/${studyId}.zip`, versionId: `v-${studyId}`, seriesUid: `1.2.${index}` },
    scores: { ...(base.scores as NonNullable<StackRecord["scores"]>), modelVersion },
  };
}

describe("studiesToRescore", () => {
  it("groups the pending stacks another model scored by study; stacks of the model in service and selected ones stay", () => {
    const studies = studiesToRescore(
      [stackOf(B, 0, "m1"), stackOf(A, 1, "m1"), stackOf(A, 0, "m1"), stackOf(A, 2, "m2"), stackOf(B, 1, "m1", "selected")],
      "m2",
    );
    expect(studies).toEqual([
      { studyId: A, object: { bucket: "studies", key: `uploads/${A}.zip`, versionId: `v-${A}` }, stackIds: [`${A}-s1`, `${A}-s0`] },
      { studyId: B, object: { bucket: "studies", key: `uploads/${B}.zip`, versionId: `v-${B}` }, stackIds: [`${B}-s0`] },
    ]);
  });

  it("names each request by study and model, and reads the study back from the key", () => {
    const key = rescoreRequestKey(A, "drn_d_38-w1.0-x4-abc");
    expect(key).toMatch(new RegExp(`^scoring-requests/rescore/${A}-[0-9a-f]{12}\\.json$`));
    expect(rescoreRequestKey(A, "another")).not.toBe(key);
    expect(studyOfRescoreKey(key)).toBe(A);
    expect(studyOfRescoreKey(`scoring-requests/${A}.json`)).toBeUndefined();
  });
});

describe("requestRescoring", () => {
  it("writes one request per study (the study's own scoring request) and invokes it; nothing before any model is in service", async () => {
    const records = new InMemoryRecordStore();
    const objects = new InMemoryStudyObjects();
    const scoring = new CountingScoringEndpoint();
    for (const s of [stackOf(A, 0, "m1"), stackOf(A, 1, "m1"), stackOf(B, 0, "m2")]) await records.createStack(s);
    expect(await requestRescoring({ records, objects, scoring, config: CONFIG })).toEqual({
      modelVersion: undefined,
      studies: 0,
      stacks: 0,
    });
    await records.claimModelInService({ modelVersion: "m2", sequence: 2, since: "2026-12-01T00:00:00.000Z", source: "promotion" });
    const counted: [string, number | undefined][] = [];
    const count = (metric: string, value?: number) => void counted.push([metric, value]);
    expect(await requestRescoring({ records, objects, scoring, config: CONFIG, count })).toEqual({
      modelVersion: "m2",
      studies: 1,
      stacks: 2,
    });
    expect(counted).toEqual([["StacksRescoreRequested", 2]]);
    const key = rescoreRequestKey(A, "m2");
    expect(scoring.calls).toEqual([`s3://studies/${key}`]);
    expect(objects.json.get(`studies/${key}`)).toEqual(
      scoringRequestFor(A, { bucket: "studies", key: `uploads/${A}.zip`, versionId: `v-${A}` }, CONFIG),
    );
  });
});
