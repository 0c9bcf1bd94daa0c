import { describe, expect, it } from "vitest";

import {
  ApiErrorBodySchema,
  CompletionResponseSchema,
  MaskUploadResponseSchema,
  WorklistResponseSchema,
} from "../../lambdas/contracts/completion-api.js";
import { EnvironmentError } from "../../lambdas/contracts/env.js";
import { storedMaskKey } from "../../lambdas/contracts/masks.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { completeDepsFromEnvironment, createCompleteHandler } from "../../lambdas/handlers/complete-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { InMemoryMaskObjects, InMemoryRecordStore, lambdaContext } from "../support/in-memory-ports.js";
import {
  AMY,
  ANNOTATOR_DIRECTORY,
  ANNOTATORS_BY_SUB,
  apiEvent,
  fixtureUploadKey,
  PLANTED_KEY,
  pendingStack,
  subOf,
  ZED,
} from "../support/round-fixtures.js";

const AT = "2026-11-27T10:00:00.000Z";

async function setup() {
  const records = new InMemoryRecordStore();
  const stack: StackRecord = { ...pendingStack(1, 600), status: "selected", selectedBy: "select-2026-W48", assignedTo: AMY };
  await records.createStack(stack);
  await records.createStack({ ...pendingStack(2, 600), status: "selected", selectedBy: "select-2026-W48", assignedTo: ZED });
  const lines: string[] = [];
  const masks = InMemoryMaskObjects.holdingUploads("stack-001", "stack-002", "stack-003");
  const handler = createCompleteHandler({
    records,
    annotators: ANNOTATORS_BY_SUB,
    clock: () => AT,
    timeZone: "UTC",
    log: lambdaLogger("complete", (l) => lines.push(l)),
    masks,
    newId: () => "00000000-0000-4000-8000-00000000abcd",
  });
  const call = async (event: unknown) => {
    const res = await handler(event, lambdaContext);
    return { ...res, json: JSON.parse(res.body) as unknown };
  };
  return { records, call, lines, masks };
}

const body = { stackId: "stack-001", activeSeconds: 420, maskUploadKey: fixtureUploadKey("stack-001") };

describe("complete handler (POST /completions)", () => {
  it("completes the caller's stack; an identical replay gets the same 200 and no second write", async () => {
    const { records, call, lines } = await setup();
    const first = await call(apiEvent("POST", "/completions", body));
    expect(first.statusCode).toBe(200);
    expect(first.headers["content-type"]).toBe("application/json");
    expect(CompletionResponseSchema.parse(first.json)).toEqual({
      stackId: "stack-001",
      status: "labeled",
      completion: {
        activeSeconds: 420,
        annotator: AMY,
        source: "page",
        mask: {
          key: storedMaskKey("stack-001", "00000000-0000-4000-8000-000000000001"),
          uploadKey: body.maskUploadKey,
          labeledVoxels: 6,
          values: [0, 3],
          reoriented: false,
        },
        completedAt: AT,
      },
    });
    const stored = await records.getStack("stack-001");
    const replay = await call(apiEvent("POST", "/completions", body, AMY, true));
    expect(replay.statusCode).toBe(200);
    expect(replay.body).toBe(first.body);
    expect(await records.getStack("stack-001")).toEqual(stored);
    expect(lines.join("\n")).not.toMatch(/amy@|labels\/|uploads\//);
  });

  it.each([
    ["no authorizer", apiEvent("POST", "/completions", body, null), 401, "UNAUTHENTICATED"],
    ["empty sub claim", apiEvent("POST", "/completions", body, ""), 401, "UNAUTHENTICATED"],
    ["a user who is no annotator", apiEvent("POST", "/completions", body, "eve@example.org"), 403, "NOT_ANNOTATOR"],
    ["someone else's stack", apiEvent("POST", "/completions", { ...body, stackId: "stack-002" }), 403, "NOT_ASSIGNED"],
    ["body annotator differs", apiEvent("POST", "/completions", { ...body, annotator: "zed@example.org" }), 403, "NOT_ASSIGNED"],
    ["unknown stack", apiEvent("POST", "/completions", { ...body, stackId: "nope" }), 404, "NOT_FOUND"],
    ["unknown route", apiEvent("DELETE", "/completions", body), 404, "NOT_FOUND"],
  ])("%s → %s %s, nothing written", async (_name, event, status, code) => {
    const { records, call } = await setup();
    const before = structuredClone([...records.items.entries()]);
    const res = await call(event);
    expect(res.statusCode).toBe(status);
    expect(ApiErrorBodySchema.parse(res.json).code).toBe(code);
    expect([...records.items.entries()]).toEqual(before);
  });

  it("identifies the caller by the immutable sub: an e-mail claim changed to someone else's address changes nothing", async () => {
    const { records, call } = await setup();
    const withClaims = (event: ReturnType<typeof apiEvent>, claims: Record<string, unknown>) => ({
      ...event,
      requestContext: { ...event.requestContext, authorizer: { claims } },
    });
    // Zed's token, with the e-mail claim rewritten to Amy's address: still Zed, so Amy's stack is refused.
    const spoof = withClaims(apiEvent("POST", "/completions", body), { sub: subOf(ZED), email: AMY, "cognito:username": subOf(ZED) });
    const refused = await call(spoof);
    expect(refused.statusCode).toBe(403);
    expect(refused.json).toMatchObject({ code: "NOT_ASSIGNED" });
    expect((await records.getStack("stack-001"))?.status).toBe("selected");
    // Amy's token with an e-mail claim that is no longer hers: still Amy (her configured address is recorded).
    const renamed = withClaims(apiEvent("POST", "/completions", body), { sub: subOf(AMY), email: "amy.new@example.com" });
    const done = await call(renamed);
    expect(done.statusCode).toBe(200);
    expect(CompletionResponseSchema.parse(done.json).completion.annotator).toBe(AMY);
    // Without a sub, an e-mail claim alone is nobody.
    const emailOnly = withClaims(apiEvent("GET", "/worklist", undefined), { email: AMY });
    expect((await call(emailOnly)).statusCode).toBe(401);
  });

  it.each([
    ["missing body", null, "body: required"],
    ["not JSON", "{", "body: not valid JSON"],
    ["missing stackId", { activeSeconds: 1, maskUploadKey: "x" }, "stackId"],
    ["neither a mask nor noHemorrhage", { stackId: "stack-001", activeSeconds: 1 }, "maskUploadKey: exactly one"],
    ["both a mask and noHemorrhage", { ...body, noHemorrhage: true }, "maskUploadKey: exactly one"],
    ["the old free-text label location", { stackId: "stack-001", activeSeconds: 1, labelLocation: "s3://x" }, "labelLocation"],
    ["negative seconds", { ...body, activeSeconds: -1 }, "activeSeconds"],
    ["over a day", { ...body, activeSeconds: 90_000 }, "activeSeconds"],
    ["bad annotator", { ...body, annotator: "not-an-email" }, "annotator"],
    ["unknown field", { ...body, patientName: "DOE^JOHN" }, "patientName"],
  ])("400 BAD_REQUEST naming the field: %s", async (_name, payload, field) => {
    const { call } = await setup();
    const res = await call(apiEvent("POST", "/completions", payload === null ? undefined : payload));
    expect(res.statusCode).toBe(400);
    const error = ApiErrorBodySchema.parse(res.json);
    expect(error.code).toBe("BAD_REQUEST");
    expect(error.message).toContain(field);
    expect(error.message).not.toContain("DOE^JOHN");
  });

  it("409 NOT_SELECTED for a pending stack, 409 CONFLICT for different values after completion", async () => {
    const { records, call } = await setup();
    await records.createStack({ ...pendingStack(3, 600), assignedTo: AMY });
    expect((await call(apiEvent("POST", "/completions", { ...body, stackId: "stack-003" }))).json).toMatchObject({ code: "NOT_SELECTED" });
    await call(apiEvent("POST", "/completions", body));
    const conflict = await call(apiEvent("POST", "/completions", { ...body, activeSeconds: 421 }));
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json).toMatchObject({ code: "CONFLICT" });
  });

  it("a malformed event or a store fault is a 500 INTERNAL without detail", async () => {
    const { records, call, lines } = await setup();
    expect((await call({ not: "an api event" })).statusCode).toBe(500);
    records.getStack = async () => {
      throw Object.assign(new Error(`boom ${PLANTED_KEY}`), { name: "ProvisionedThroughputExceededException" });
    };
    const res = await call(apiEvent("POST", "/completions", body));
    expect(res.statusCode).toBe(500);
    expect(res.json).toEqual({ code: "INTERNAL", message: "internal error" });
    expect(lines.join("\n")).toContain("ProvisionedThroughputExceededException");
    expect(lines.join("\n")).not.toContain("DOE");
  });
});

describe("complete handler: masks", () => {
  it("POST /stacks/{stackId}/mask-uploads presigns one upload key of the caller's selected stack, type and size signed", async () => {
    const { call, masks } = await setup();
    const res = await call(
      apiEvent("POST", "/stacks/{stackId}/mask-uploads", { bytes: 1234, gzip: true }, AMY, false, { stackId: "stack-001" }),
    );
    expect(res.statusCode).toBe(200);
    const upload = MaskUploadResponseSchema.parse(res.json);
    expect(upload).toMatchObject({
      stackId: "stack-001",
      uploadKey: "label-uploads/stack-001/00000000-0000-4000-8000-00000000abcd.nii.gz",
      method: "PUT",
      headers: { "content-type": "application/gzip" },
      expiresAt: "2026-11-27T10:15:00.000Z",
    });
    expect(masks.presigned).toEqual([{ key: upload.uploadKey, contentType: "application/gzip", bytes: 1234, expiresInSeconds: 900 }]);
  });

  it.each([
    ["someone else's stack", { stackId: "stack-002" }, { bytes: 10, gzip: true }, 403, "NOT_ASSIGNED"],
    ["an unknown stack", { stackId: "nope" }, { bytes: 10, gzip: true }, 404, "NOT_FOUND"],
    ["zero bytes", { stackId: "stack-001" }, { bytes: 0, gzip: true }, 400, "BAD_REQUEST"],
    ["over the size limit", { stackId: "stack-001" }, { bytes: 64 * 1024 * 1024 + 1, gzip: true }, 400, "BAD_REQUEST"],
    ["an unknown field", { stackId: "stack-001" }, { bytes: 10, gzip: true, key: "labels/x" }, 400, "BAD_REQUEST"],
  ])("mask upload for %s → %s", async (_name, path, payload, status, code) => {
    const { call, masks } = await setup();
    const res = await call(apiEvent("POST", "/stacks/{stackId}/mask-uploads", payload, AMY, false, path));
    expect(res.statusCode).toBe(status);
    expect(ApiErrorBodySchema.parse(res.json).code).toBe(code);
    expect(masks.presigned).toEqual([]);
  });

  it("a refused mask answers 422 MASK_REFUSED with its code and reason; the stack stays selected", async () => {
    const { call, records, masks, lines } = await setup();
    masks.objects.set(fixtureUploadKey("stack-001"), new TextEncoder().encode("not a mask"));
    const res = await call(apiEvent("POST", "/completions", body));
    expect(res.statusCode).toBe(422);
    expect(ApiErrorBodySchema.parse(res.json)).toMatchObject({ code: "MASK_REFUSED", maskCode: "NOT_NIFTI" });
    expect((await records.getStack("stack-001"))?.status).toBe("selected");
    expect(lines.join("\n")).toContain('"maskCode":"NOT_NIFTI"');
  });
});

describe("complete handler (GET /worklist)", () => {
  it("answers the caller's worklist (empty when no round assigned them anything)", async () => {
    const { call } = await setup();
    const res = await call(apiEvent("GET", "/worklist", undefined));
    expect(res.statusCode).toBe(200);
    expect(WorklistResponseSchema.parse(res.json)).toMatchObject({ annotator: AMY, roundId: null, stacks: [] });
    expect((await call(apiEvent("GET", "/worklist", undefined, null))).statusCode).toBe(401);
  });

  it("parses the environment at cold start", () => {
    const directory = JSON.stringify(ANNOTATOR_DIRECTORY);
    const deps = completeDepsFromEnvironment({
      TABLE_NAME: "t",
      SCHEDULE_TIMEZONE: "Europe/Vienna",
      ANNOTATOR_DIRECTORY: directory,
      STUDIES_BUCKET: "studies",
    });
    expect(deps.records).toBeDefined();
    expect(deps.timeZone).toBe("Europe/Vienna");
    expect(deps.annotators.get(subOf(ZED))).toBe(ZED);
    expect(() => completeDepsFromEnvironment({})).toThrow(EnvironmentError);
    expect(() => completeDepsFromEnvironment({ TABLE_NAME: "t", ANNOTATOR_DIRECTORY: directory, STUDIES_BUCKET: "s" })).toThrow(
      /SCHEDULE_TIMEZONE/,
    );
    expect(() => completeDepsFromEnvironment({ TABLE_NAME: "t", ANNOTATOR_DIRECTORY: directory, SCHEDULE_TIMEZONE: "UTC" })).toThrow(
      /STUDIES_BUCKET/,
    );
    const env = { TABLE_NAME: "t", SCHEDULE_TIMEZONE: "UTC", STUDIES_BUCKET: "studies" };
    expect(() => completeDepsFromEnvironment(env)).toThrow(/ANNOTATOR_DIRECTORY/);
    for (const bad of [
      "not json",
      "[]",
      JSON.stringify([
        { sub: "a", email: AMY },
        { sub: "a", email: ZED },
      ]),
      JSON.stringify([
        { sub: "a", email: AMY },
        { sub: "b", email: AMY.toUpperCase() },
      ]),
      JSON.stringify([{ sub: "", email: AMY }]),
    ]) {
      expect(() => completeDepsFromEnvironment({ ...env, ANNOTATOR_DIRECTORY: bad }), bad).toThrow(/ANNOTATOR_DIRECTORY/);
    }
  });
});

describe("complete handler: activeSeconds outside [1 s, maxActiveSeconds]", () => {
  const raw = (seconds: string) => `{"stackId":"stack-001","activeSeconds":${seconds},"maskUploadKey":"${fixtureUploadKey("stack-001")}"}`;

  it.each([
    ["1 ms", "0.001"],
    ["1e-100 s", "1e-100"],
    ["the smallest subnormal", "5e-324"],
    ["zero", "0"],
    ["8 h + 1 s", "28801"],
  ])("%s (%s) → 400 BAD_REQUEST naming activeSeconds; nothing is written", async (_name, seconds) => {
    const { records, call, lines } = await setup();
    const before = structuredClone([...records.items.entries()]);
    const res = await call(apiEvent("POST", "/completions", raw(seconds)));
    expect(res.statusCode).toBe(400);
    const error = ApiErrorBodySchema.parse(res.json);
    expect(error.code).toBe("BAD_REQUEST");
    expect(error.message).toContain("activeSeconds");
    expect([...records.items.entries()]).toEqual(before);
    expect((await records.getStack("stack-001"))?.status).toBe("selected");
    expect(lines.join("\n")).not.toMatch(/amy@|s3:\/\/labels/);
  });

  it.each([1, 8 * 3600])("exactly %i s is accepted", async (seconds) => {
    const { records, call } = await setup();
    const res = await call(apiEvent("POST", "/completions", raw(String(seconds))));
    expect(res.statusCode).toBe(200);
    expect(CompletionResponseSchema.parse(res.json).completion.activeSeconds).toBe(seconds);
    expect(await records.getStack("stack-001")).toMatchObject({ status: "labeled", completion: { activeSeconds: seconds } });
  });

  it("honours the configured maxActiveSeconds", async () => {
    const records = new InMemoryRecordStore();
    await records.createStack({ ...pendingStack(1, 600), status: "selected", selectedBy: "select-2026-W48", assignedTo: AMY });
    const handler = createCompleteHandler({
      records,
      annotators: ANNOTATORS_BY_SUB,
      clock: () => AT,
      timeZone: "UTC",
      maxActiveSeconds: 3600,
      log: lambdaLogger("test", () => {}),
      masks: InMemoryMaskObjects.holdingUploads("stack-001"),
    });
    const over = await handler(apiEvent("POST", "/completions", raw("3601")), lambdaContext);
    expect(over.statusCode).toBe(400);
    expect(JSON.parse(over.body)).toMatchObject({ code: "BAD_REQUEST", message: expect.stringContaining("activeSeconds") });
    expect((await records.getStack("stack-001"))?.status).toBe("selected");
    expect((await handler(apiEvent("POST", "/completions", raw("3600")), lambdaContext)).statusCode).toBe(200);
  });

  it("parses MAX_ACTIVE_SECONDS at cold start (default 8 h) and names it when malformed or out of range", () => {
    const env = {
      TABLE_NAME: "t",
      SCHEDULE_TIMEZONE: "UTC",
      STUDIES_BUCKET: "studies",
      ANNOTATOR_DIRECTORY: JSON.stringify(ANNOTATOR_DIRECTORY),
    };
    expect(completeDepsFromEnvironment({ ...env, MAX_ACTIVE_SECONDS: "14400" }).maxActiveSeconds).toBe(14_400);
    expect(completeDepsFromEnvironment(env).maxActiveSeconds).toBe(8 * 3600);
    for (const bad of ["eight hours", "", "30", "90000"]) {
      expect(() => completeDepsFromEnvironment({ ...env, MAX_ACTIVE_SECONDS: bad })).toThrow(EnvironmentError);
      expect(() => completeDepsFromEnvironment({ ...env, MAX_ACTIVE_SECONDS: bad })).toThrow(/MAX_ACTIVE_SECONDS/);
    }
  });
});
