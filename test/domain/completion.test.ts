import { describe, expect, it } from "vitest";
import type { CompletionRequest } from "../../lambdas/contracts/completion-api.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { completeStack, worklistOf } from "../../lambdas/domain/completion.js";
import { InMemoryRecordStore } from "../support/in-memory-ports.js";
import { pendingStack } from "../support/round-fixtures.js";

const ROUND = "select-2026-W48";
const AMY = "amy@x.org";
const ZED = "zed@x.org";
const AT = "2026-11-27T10:00:00.000Z";

function selected(i: number, assignedTo?: string): StackRecord {
  return { ...pendingStack(i, 600), status: "selected", selectedBy: ROUND, ...(assignedTo ? { assignedTo } : {}) };
}

const request = (stackId: string, extra: Partial<CompletionRequest> = {}): CompletionRequest => ({
  stackId,
  activeSeconds: 420,
  labelLocation: `s3://labels/${stackId}.nii.gz`,
  ...extra,
});

async function store(...stacks: StackRecord[]) {
  const records = new InMemoryRecordStore();
  for (const s of stacks) await records.createStack(s);
  return records;
}

describe("completeStack outcomes", () => {
  const labeled = (i: number, annotator: string, activeSeconds = 420): StackRecord => ({
    ...selected(i, annotator),
    status: "labeled",
    completion: { activeSeconds, annotator, labelLocation: `s3://labels/stack-${String(i).padStart(3, "0")}.nii.gz`, completedAt: AT },
  });
  const cases: { name: string; stack?: StackRecord; req: CompletionRequest; caller: string; kind: string; code?: string }[] = [
    { name: "assigned to the caller → completed", stack: selected(1, AMY), req: request("stack-001"), caller: AMY, kind: "completed" },
    {
      name: "caller e-mail case does not matter",
      stack: selected(1, AMY),
      req: request("stack-001"),
      caller: "Amy@X.org",
      kind: "completed",
    },
    {
      name: "assigned to someone else → NOT_ASSIGNED",
      stack: selected(1, ZED),
      req: request("stack-001"),
      caller: AMY,
      kind: "refused",
      code: "NOT_ASSIGNED",
    },
    {
      name: "not yet assigned → NOT_ASSIGNED",
      stack: selected(1),
      req: request("stack-001"),
      caller: AMY,
      kind: "refused",
      code: "NOT_ASSIGNED",
    },
    { name: "unknown stack → NOT_FOUND", req: request("stack-404"), caller: AMY, kind: "refused", code: "NOT_FOUND" },
    {
      name: "a study record → NOT_FOUND",
      stack: { ...pendingStack(1, 600), kind: "study", status: "scored" },
      req: request("stack-001"),
      caller: AMY,
      kind: "refused",
      code: "NOT_FOUND",
    },
    {
      name: "pending → NOT_SELECTED",
      stack: pendingStack(1, 600),
      req: request("stack-001"),
      caller: AMY,
      kind: "refused",
      code: "NOT_SELECTED",
    },
    { name: "identical replay → replayed", stack: labeled(1, AMY), req: request("stack-001"), caller: AMY, kind: "replayed" },
    {
      name: "labeled with other seconds → CONFLICT",
      stack: labeled(1, AMY, 999),
      req: request("stack-001"),
      caller: AMY,
      kind: "refused",
      code: "CONFLICT",
    },
    {
      name: "labeled by someone else → NOT_ASSIGNED",
      stack: labeled(1, ZED),
      req: request("stack-001"),
      caller: AMY,
      kind: "refused",
      code: "NOT_ASSIGNED",
    },
    {
      name: "body annotator differs from the caller → NOT_ASSIGNED",
      stack: selected(1, AMY),
      req: request("stack-001", { annotator: ZED }),
      caller: AMY,
      kind: "refused",
      code: "NOT_ASSIGNED",
    },
  ];

  it.each(cases)("$name", async ({ stack, req, caller, kind, code }) => {
    const records = stack ? await store(stack) : await store();
    const before = stack ? await records.getStack(stack.stackId) : undefined;
    const outcome = await completeStack(req, caller, { records, clock: () => AT });
    expect(outcome.kind).toBe(kind);
    if (outcome.kind === "refused") {
      expect(outcome.code).toBe(code);
      if (stack) expect(await records.getStack(stack.stackId)).toEqual(before);
    } else {
      expect(outcome.response).toEqual({
        stackId: req.stackId,
        status: "labeled",
        completion: { activeSeconds: 420, annotator: AMY, labelLocation: req.labelLocation, completedAt: AT },
      });
      expect(await records.getStack(req.stackId)).toMatchObject({ status: "labeled", completion: outcome.response.completion });
    }
  });

  it("concurrent identical posts write one completion; all answer the same", async () => {
    const records = await store(selected(1, AMY));
    let writes = 0;
    const complete = records.completeStack.bind(records);
    records.completeStack = async (...args) => {
      const ok = await complete(...args);
      if (ok) writes++;
      return ok;
    };
    let tick = 0;
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () =>
        completeStack(request("stack-001"), AMY, { records, clock: () => `2026-11-27T10:00:0${tick++}.000Z` }),
      ),
    );
    expect(writes).toBe(1);
    expect(outcomes.filter((o) => o.kind === "completed")).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === "replayed")).toHaveLength(4);
    const responses = outcomes.map((o) => (o.kind === "refused" ? undefined : o.response));
    for (const r of responses) expect(r).toEqual(responses[0]);
  });
});

describe("worklistOf", () => {
  it("finds the caller's stacks in the latest round that assigned them any, with completions", async () => {
    const records = await store(
      selected(1, AMY),
      {
        ...selected(2, AMY),
        status: "labeled",
        completion: { activeSeconds: 30, annotator: AMY, labelLocation: "s3://l/2", completedAt: AT },
      },
      selected(3, ZED),
    );
    await records.createRound({
      roundId: ROUND,
      strategy: "knapsack",
      budgetSeconds: 7200,
      resolutionSeconds: 1,
      poolSize: 3,
      selected: ["stack-001", "stack-002", "stack-003"],
      totalUncertainty: 1,
      totalPredictedSeconds: 1800,
      optimal: true,
      timeModelVersion: 0,
      createdAt: "2026-11-23T06:00:00.000Z",
      status: "completed",
      assignment: {
        annotators: [
          { annotator: AMY, stackIds: ["stack-001", "stack-002"], predictedSeconds: 1200 },
          { annotator: ZED, stackIds: ["stack-003"], predictedSeconds: 600 },
        ],
        assignedAt: AT,
      },
    });
    // Two weeks later: W49 and W50 have no round for Amy; the look-back finds W48.
    const list = await worklistOf("AMY@x.org", "2026-12-08T09:00:00.000Z", records, "UTC");
    expect(list).toMatchObject({
      annotator: AMY,
      roundId: ROUND,
      predictedSeconds: 1200,
      roundPredictedSeconds: 1800,
      budgetSeconds: 7200,
    });
    expect(list.stacks.map((s) => [s.stackId, s.status, s.completion?.activeSeconds])).toEqual([
      ["stack-001", "selected", undefined],
      ["stack-002", "labeled", 30],
    ]);
    expect(JSON.stringify(list)).not.toContain("uploads/");
    expect((await worklistOf("nobody@x.org", "2026-12-08T09:00:00.000Z", records, "UTC")).roundId).toBeNull();
    expect((await worklistOf(AMY, "2027-06-01T09:00:00.000Z", records, "UTC")).roundId).toBeNull();
  });

  it("looks back whole ISO weeks in the schedule's time zone, so a daylight-saving change skips no round", async () => {
    // Vienna's Monday 01:30 run of 2027-03-22 (CET) is select-2027-W12. The next Monday 00:30 (CEST,
    // 2027-03-28T22:30Z) is W13 there, with no round yet: the look-back must find W12 — stepping back
    // 7 × 24 h would land on Sunday 2027-03-21 23:30 (W11) and skip it.
    const roundId = "select-2027-W12";
    const records = await store({ ...pendingStack(1, 600), status: "selected", selectedBy: roundId, assignedTo: AMY });
    await records.createRound({
      roundId,
      strategy: "knapsack",
      budgetSeconds: 7200,
      resolutionSeconds: 1,
      poolSize: 1,
      selected: ["stack-001"],
      totalUncertainty: 1,
      totalPredictedSeconds: 600,
      optimal: true,
      timeModelVersion: 0,
      createdAt: "2027-03-22T00:30:00.000Z",
      status: "completed",
      assignment: {
        annotators: [{ annotator: AMY, stackIds: ["stack-001"], predictedSeconds: 600 }],
        assignedAt: "2027-03-22T00:31:00.000Z",
      },
    });
    const list = await worklistOf(AMY, "2027-03-28T22:30:00.000Z", records, "Europe/Vienna");
    expect(list.roundId).toBe(roundId);
    expect(list.stacks.map((s) => s.stackId)).toEqual(["stack-001"]);
    // The look-back reaches WORKLIST_LOOKBACK_WEEKS − 1 = 11 weeks back: from W23 it finds W12, from W24 not.
    expect((await worklistOf(AMY, "2027-06-07T09:00:00.000Z", records, "Europe/Vienna")).roundId).toBe(roundId);
    expect((await worklistOf(AMY, "2027-06-14T09:00:00.000Z", records, "Europe/Vienna")).roundId).toBeNull();
  });
});
