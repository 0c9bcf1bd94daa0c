import { describe, expect, it } from "vitest";
import type { CompletionRequest } from "../../lambdas/contracts/completion-api.js";
import { maskUploadKey, storedMaskKey } from "../../lambdas/contracts/masks.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { completeStack, worklistOf } from "../../lambdas/domain/completion.js";
import { checkMask, encodeMask } from "../../lambdas/domain/nifti-mask.js";
import { InMemoryMaskObjects, InMemoryRecordStore } from "../support/in-memory-ports.js";
import {
  FIXTURE_GEOMETRY,
  fixtureLabels,
  fixtureMaskBytes,
  fixtureUploadKey,
  PLANTED_KEY,
  pendingStack,
} from "../support/round-fixtures.js";

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
  maskUploadKey: fixtureUploadKey(stackId),
  ...extra,
});

const uploaded = (...stackIds: string[]) => InMemoryMaskObjects.holdingUploads(...stackIds);

/** The mask a completion of fixture upload `n` of `stackId` records. */
const acceptedMask = (stackId: string, n = 1) => ({
  key: storedMaskKey(stackId, `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`),
  uploadKey: fixtureUploadKey(stackId, n),
  labeledVoxels: 6,
  values: [0, 3],
  reoriented: false,
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
    completion: { activeSeconds, annotator, source: "page", mask: acceptedMask(`stack-${String(i).padStart(3, "0")}`), completedAt: AT },
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
    const outcome = await completeStack(req, caller, { records, masks: uploaded(req.stackId), clock: () => AT });
    expect(outcome.kind).toBe(kind);
    if (outcome.kind === "refused") {
      expect(outcome.code).toBe(code);
      if (stack) expect(await records.getStack(stack.stackId)).toEqual(before);
    } else {
      expect(outcome.response).toEqual({
        stackId: req.stackId,
        status: "labeled",
        completion: { activeSeconds: 420, annotator: AMY, source: "page", mask: acceptedMask(req.stackId), completedAt: AT },
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
    const masks = uploaded("stack-001");
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () =>
        completeStack(request("stack-001"), AMY, { records, masks, clock: () => `2026-11-27T10:00:0${tick++}.000Z` }),
      ),
    );
    expect(writes).toBe(1);
    expect(outcomes.filter((o) => o.kind === "completed")).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === "replayed")).toHaveLength(4);
    const responses = outcomes.map((o) => (o.kind === "refused" ? undefined : o.response));
    for (const r of responses) expect(r).toEqual(responses[0]);
  });
});

describe("completeStack checks and keeps the mask", () => {
  it("stores the accepted mask normalised under labels/: it decodes to the uploaded labels", async () => {
    const records = await store(selected(1, AMY));
    const masks = uploaded("stack-001");
    const outcome = await completeStack(request("stack-001"), AMY, { records, masks, clock: () => AT });
    expect(outcome.kind).toBe("completed");
    const stored = masks.objects.get(acceptedMask("stack-001").key);
    const decoded = stored && checkMask(stored, FIXTURE_GEOMETRY);
    expect(decoded?.ok && Buffer.from(decoded.labels).equals(Buffer.from(fixtureLabels()))).toBe(true);
  });

  it("refuses a mask with the wrong frame count: MASK_REFUSED with the reason, recorded, nothing completed; a fixed mask then completes", async () => {
    const records = await store(selected(1, AMY));
    const masks = new InMemoryMaskObjects();
    const short = { ...FIXTURE_GEOMETRY, shape: [3, 6, 8] as [number, number, number] };
    masks.objects.set(fixtureUploadKey("stack-001"), encodeMask(new Uint8Array(3 * 6 * 8), short));
    const before = await records.getStack("stack-001");
    const outcome = await completeStack(request("stack-001"), AMY, { records, masks, clock: () => AT });
    expect(outcome).toMatchObject({ kind: "refused", code: "MASK_REFUSED", maskCode: "GEOMETRY_MISMATCH" });
    expect(outcome.kind === "refused" && outcome.message).toMatch(/8×6×3 voxels.*8×6×4/);
    expect(await records.getStack("stack-001")).toEqual(before);
    expect([...masks.objects.keys()].filter((k) => k.startsWith("labels/"))).toEqual([]);
    expect(await records.listMaskRefusals("stack-001")).toEqual([
      {
        code: "GEOMETRY_MISMATCH",
        reason: expect.stringMatching(/frames/),
        uploadKey: fixtureUploadKey("stack-001"),
        annotator: AMY,
        at: AT,
      },
    ]);
    masks.objects.set(fixtureUploadKey("stack-001", 2), fixtureMaskBytes());
    const again = await completeStack(request("stack-001", { maskUploadKey: fixtureUploadKey("stack-001", 2) }), AMY, {
      records,
      masks,
      clock: () => AT,
    });
    expect(again.kind).toBe("completed");
    expect(again.kind === "completed" && again.response.completion.mask).toEqual(acceptedMask("stack-001", 2));
  });

  it.each([
    ["no object at the key", "NOT_UPLOADED", (m: InMemoryMaskObjects) => m.objects.clear()],
    ["not a NIfTI", "NOT_NIFTI", (m: InMemoryMaskObjects) => m.objects.set(fixtureUploadKey("stack-001"), new Uint8Array(500).fill(7))],
  ] as const)("%s → MASK_REFUSED %s", async (_name, maskCode, spoil) => {
    const records = await store(selected(1, AMY));
    const masks = uploaded("stack-001");
    spoil(masks);
    const outcome = await completeStack(request("stack-001"), AMY, { records, masks, clock: () => AT });
    expect(outcome).toMatchObject({ kind: "refused", code: "MASK_REFUSED", maskCode });
    expect((await records.getStack("stack-001"))?.status).toBe("selected");
    expect((await records.listMaskRefusals("stack-001")).map((r) => r.code)).toEqual([maskCode]);
  });

  it("an upload key of another stack, or not an upload key, is a bad request (nothing recorded)", async () => {
    const records = await store(selected(1, AMY), selected(2, AMY));
    const masks = uploaded("stack-001", "stack-002");
    for (const key of [fixtureUploadKey("stack-002"), "labels/stack-001/x.nii.gz", maskUploadKey("stack-001", "not-a-uuid", true)]) {
      const outcome = await completeStack(request("stack-001", { maskUploadKey: key }), AMY, { records, masks, clock: () => AT });
      expect(outcome).toMatchObject({ kind: "refused", code: "BAD_REQUEST" });
    }
    expect(await records.listMaskRefusals("stack-001")).toEqual([]);
  });

  it("a stack scored without a grid cannot take a mask (NO_GEOMETRY)", async () => {
    const { geometry: _geometry, ...withoutGrid } = selected(1, AMY);
    const records = await store(withoutGrid);
    const outcome = await completeStack(request("stack-001"), AMY, { records, masks: uploaded("stack-001"), clock: () => AT });
    expect(outcome).toMatchObject({ kind: "refused", code: "MASK_REFUSED", maskCode: "NO_GEOMETRY" });
  });

  it("'no hemorrhage' stores an all-background mask on the stack's grid; external completions are flagged", async () => {
    const records = await store(selected(1, AMY), selected(2, AMY));
    const masks = uploaded("stack-002");
    const negative = await completeStack({ stackId: "stack-001", activeSeconds: 60, noHemorrhage: true }, AMY, {
      records,
      masks,
      clock: () => AT,
    });
    expect(negative.kind === "completed" && negative.response.completion).toMatchObject({
      noHemorrhage: true,
      source: "page",
      mask: { key: storedMaskKey("stack-001", "no-hemorrhage"), labeledVoxels: 0, values: [0] },
    });
    const stored = masks.objects.get(storedMaskKey("stack-001", "no-hemorrhage"));
    const decoded = stored && checkMask(stored, FIXTURE_GEOMETRY);
    expect(decoded?.ok && decoded.labeledVoxels === 0 && decoded.labels.length === 4 * 6 * 8).toBe(true);
    const external = await completeStack(request("stack-002", { source: "external" }), AMY, { records, masks, clock: () => AT });
    expect(external.kind === "completed" && external.response.completion.source).toBe("external");
  });
});

describe("worklistOf", () => {
  it("finds the caller's stacks in the latest round that assigned them any, with completions", async () => {
    const records = await store(
      selected(1, AMY),
      {
        ...selected(2, AMY),
        status: "labeled",
        completion: { activeSeconds: 30, annotator: AMY, source: "page", mask: acceptedMask("stack-002"), completedAt: AT },
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
    expect(JSON.stringify(list)).not.toContain(PLANTED_KEY);
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
