/**
 * Every Lambda goes through the handler bundle (lambdas/handlers/shared/lambda-handler.ts): each handler file,
 * built from its own composition root, writes Powertools' log fields to stdout as in Lambda, names a bad event
 * with InvalidInputError, and never writes the event's values. Plus the bundle's parts on their own: the failure
 * answer, metrics flushed once per invocation, and SQS partial failures through Powertools' batch processor.
 */
import { readdirSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  InvalidInputError,
  lambdaHandler,
  lambdaLogger,
  lambdaMetrics,
  metricsWriter,
  sqsBatchHandler,
} from "../../lambdas/handlers/shared/lambda-handler.js";
import { LAMBDA_TEST_ENVIRONMENT } from "../support/lambda-environment.js";

const HANDLERS = readdirSync(new URL("../../lambdas/handlers/", import.meta.url))
  .filter((file) => file.endsWith("-handler.ts"))
  .map((file) => file.replace(/-handler\.ts$/, ""));

const pascal = (name: string) => name.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function context(name: string) {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: `ich-al-test-${name}`,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:ich-al-test-${name}`,
    memoryLimitInMB: "512",
    awsRequestId: `request-${name}`,
    logGroupName: `/aws/lambda/ich-al-test-${name}`,
    logStreamName: "stream",
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** JSON lines written to stdout and stderr (Powertools writes errors there; Lambda keeps both) while `run` runs. */
async function stdoutLines(run: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const written: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, "write").mockImplementation(capture),
    vi.spyOn(process.stderr, "write").mockImplementation(capture),
  ];
  try {
    await run().catch(() => undefined);
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return written
    .join("")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

afterEach(() => vi.restoreAllMocks());

describe("every handler file goes through the bundle", () => {
  it("finds the handler files", () => {
    expect(HANDLERS.length).toBeGreaterThanOrEqual(14);
  });

  // Nothing listens on port 9: a handler that reaches AWS fails fast instead of calling the real one.
  const env = { ...LAMBDA_TEST_ENVIRONMENT, AWS_ENDPOINT_URL: "http://127.0.0.1:9", AWS_MAX_ATTEMPTS: "1" };
  const event = { patientName: "DOE^JANE", Records: "DOE^JANE" };

  it.each(HANDLERS)("%s: its failure line carries Powertools' fields and none of the event", async (name) => {
    const module = (await import(/* @vite-ignore */ new URL(`../../lambdas/handlers/${name}-handler.ts`, import.meta.url).href)) as Record<
      string,
      (arg: unknown) => unknown
    >;
    const create = module[`create${pascal(name)}Handler`];
    const depsFromEnvironment = module[`${camel(name)}DepsFromEnvironment`];
    expect(typeof create, `create${pascal(name)}Handler`).toBe("function");
    expect(typeof depsFromEnvironment, `${camel(name)}DepsFromEnvironment`).toBe("function");
    const handler = create?.(depsFromEnvironment?.(env)) as (event: unknown, context: unknown) => Promise<unknown>;
    let thrown: unknown;
    const lines = await stdoutLines(() =>
      handler(event, context(name)).catch((error: unknown) => {
        thrown = error;
      }),
    );
    const failure = lines.find((line) => line.message === `${name} failed`);
    expect(failure, JSON.stringify(lines)).toBeDefined();
    expect(failure).toMatchObject({
      level: "ERROR",
      service: "ich-al",
      lambda: name,
      cold_start: expect.any(Boolean),
      function_name: `ich-al-test-${name}`,
      function_request_id: `request-${name}`,
      function_arn: expect.stringContaining(name),
      function_memory_size: expect.anything(),
      timestamp: expect.any(String),
      sampling_rate: expect.any(Number),
    });
    // rescore takes any event (it reads nothing from it) and fails on the unreachable endpoint instead.
    if (name !== "rescore") expect(failure?.code).toBe("InvalidInputError");
    // The API answers 500 instead of throwing.
    if (name === "complete") expect(thrown).toBeUndefined();
    else expect(thrown).toBeInstanceOf(Error);
    expect(JSON.stringify(lines)).not.toContain("DOE^JANE");
  });
});

describe("the bundle", () => {
  const schema = (z: typeof import("zod").z) => z.object({ now: z.iso.datetime(), count: z.number().int() });

  it("names each bad field, not its value, and the log line only the error's name", async () => {
    const { z } = await import("zod");
    const lines: string[] = [];
    const handler = lambdaHandler(
      { name: "step", input: schema(z), log: lambdaLogger("step", (l) => lines.push(l)) },
      async (input) => input,
    );
    const error = await handler({ now: "yesterday", count: "DOE^JANE" }, context("step")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toMatch(/^step: invalid input: now: .+; count: .+/);
    expect((error as Error).message).not.toContain("DOE^JANE");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: "ERROR", message: "step failed", code: "InvalidInputError" });
    await expect(handler({ now: "2026-12-08T00:00:00Z", count: 3 }, context("step"))).resolves.toEqual({
      now: "2026-12-08T00:00:00Z",
      count: 3,
    });
  });

  it("answers a failure when asked to, after logging it", async () => {
    const lines: string[] = [];
    const handler = lambdaHandler(
      { name: "api", log: lambdaLogger("api", (l) => lines.push(l)), answerFailure: () => ({ statusCode: 500 }) },
      async () => {
        throw new RangeError("boom DOE^JANE");
      },
    );
    await expect(handler({}, context("api"))).resolves.toEqual({ statusCode: 500 });
    expect(lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ message: "api failed", code: "RangeError" })]);
    expect(lines.join("")).not.toContain("DOE^JANE");
  });

  it("writes the invocation's metrics as one EMF line at its end, failed invocations too, none when there are none", async () => {
    const emf: string[] = [];
    const metrics = lambdaMetrics("IchAl/test", (l) => emf.push(l));
    const write = metricsWriter(metrics);
    const log = lambdaLogger("m", () => {});
    let fail = false;
    const handler = lambdaHandler({ name: "m", log, metrics }, async () => {
      write({ A: { value: 1, unit: "Count" }, B: { value: Number.NaN, unit: "Count" } });
      write({ A: { value: 2, unit: "Count" } });
      if (fail) throw new Error("x");
      return "ok";
    });
    await handler({}, context("m"));
    expect(emf).toHaveLength(1);
    const line = JSON.parse(emf[0] as string);
    expect(line.A).toEqual([1, 2]);
    expect(line).not.toHaveProperty("B");
    expect(line._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: "IchAl/test", Dimensions: [["service"]] });
    fail = true;
    await handler({}, context("m")).catch(() => undefined);
    expect(emf).toHaveLength(2);
    const idle = lambdaHandler({ name: "m", log, metrics }, async () => "nothing counted");
    await idle({}, context("m"));
    expect(emf).toHaveLength(2);
  });

  it("reports exactly the SQS messages that failed, logs permanent ones as warnings, and refuses a non-SQS event", async () => {
    const lines: string[] = [];
    const log = lambdaLogger("batch", (l) => lines.push(l));
    class Malformed extends Error {}
    const handler = sqsBatchHandler({ name: "batch", log, permanent: (e) => e instanceof Malformed }, async (message) => {
      if (message.body === "bad") throw new Malformed("cannot parse");
      if (message.body === "later") throw new Error("throttled");
      return message.body;
    });
    const records = ["ok", "bad", "later", "ok"].map((body, i) => ({
      messageId: `m${i}`,
      body,
      attributes: { ApproximateReceiveCount: "1" },
    }));
    const answer = await handler({ Records: records }, context("batch"));
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: "m1" }, { itemIdentifier: "m2" }] });
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.filter((l) => l.level === "WARN").map((l) => l.messageId)).toEqual(["m1"]);
    expect(parsed.filter((l) => l.level === "ERROR").map((l) => l.messageId)).toEqual(["m2"]);
    expect(parsed.at(-1)).toMatchObject({ message: "batch done", messages: 4, failed: 2 });
    // Every message failing is still a partial-failure answer (each goes back to SQS), not a thrown batch.
    const all = await handler({ Records: records.filter((r) => r.body !== "ok") }, context("batch"));
    expect(all.batchItemFailures).toHaveLength(2);
    await expect(handler({ detail: "not sqs" }, context("batch"))).rejects.toBeInstanceOf(InvalidInputError);
  });
});
