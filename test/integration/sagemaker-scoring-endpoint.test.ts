/**
 * SageMakerScoringEndpoint with the real @aws-sdk/client-sagemaker-runtime client against the real
 * scoring container (`python -m ichal serve`, tiny untrained ensemble, CPU), which reads studies from
 * and writes asynchronous results to moto server through the real S3 protocol. Checks the contract,
 * not accuracy. The last test emulates SageMaker's own wrapping of a container 4xx (ModelError, 424).
 */
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SageMakerScoringEndpoint } from "../../lambdas/adapters/sagemaker-scoring-endpoint.js";
import { ScoringFailureSchema, ScoringResultSchema } from "../../lambdas/contracts/scoring.js";
import { ScoringRejectedError } from "../../lambdas/domain/scoring-endpoint.js";
import { type ModelServer, startModelServer } from "../../scripts/lib/model-server.js";
import { LOCAL_AWS } from "../../scripts/lib/moto-server.js";
import { useLocalAws } from "../support/local-aws.js";
import { writePhantomStudy, writeTinyModel } from "../support/tiny-model.js";

const aws = useLocalAws();
const BUCKET = "studies";
const ENDPOINT_NAME = "ich-scoring";
const PLANTED_NAME = "Doe^Jane^Planted";

let scratch: string;
let server: ModelServer;
let s3: S3Client;
let endpoint: SageMakerScoringEndpoint;
const studies: Record<"clean" | "phi", Uint8Array> = { clean: new Uint8Array(), phi: new Uint8Array() };

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "scoring-endpoint-"));
  const modelDir = join(scratch, "model");
  await Promise.all([
    writeTinyModel(modelDir),
    writePhantomStudy(join(scratch, "clean.zip"), { seed: 5 }),
    writePhantomStudy(join(scratch, "phi.zip"), { seed: 6, patientName: PLANTED_NAME }),
  ]);
  studies.clean = await readFile(join(scratch, "clean.zip"));
  studies.phi = await readFile(join(scratch, "phi.zip"));
  server = await startModelServer({
    modelDir,
    s3Endpoint: inject("motoEndpoint"),
    asyncOutput: `s3://${BUCKET}/async-out/`,
    device: "cpu",
  });
  s3 = aws.s3();
  endpoint = new SageMakerScoringEndpoint(new SageMakerRuntimeClient({ ...LOCAL_AWS, endpoint: server.endpoint }), ENDPOINT_NAME);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  s3?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A fresh versioned bucket (moto is reset before each test) holding `body` at `key`; returns its version. */
async function upload(key: string, body: Uint8Array | string): Promise<string | undefined> {
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch((error: Error) => {
    if (error.name !== "BucketAlreadyOwnedByYou") throw error;
  });
  await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }));
  return (await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))).VersionId;
}

function splitUri(uri: string): { Bucket: string; Key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) throw new Error(`not an s3 URI: ${uri}`);
  return { Bucket: match[1], Key: match[2] };
}

/** Polls until the object exists and returns its JSON (the container writes asynchronous results later). */
async function waitForJson(uri: string, timeoutMs = 30_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const object = await s3.send(new GetObjectCommand(splitUri(uri)));
      return JSON.parse((await object.Body?.transformToString()) ?? "");
    } catch (error) {
      if ((error as Error).name !== "NoSuchKey" || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function rejection(promise: Promise<unknown>): Promise<ScoringRejectedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ScoringRejectedError);
  return error as ScoringRejectedError;
}

describe("SageMakerScoringEndpoint against the scoring container (real SDK v3, moto S3)", () => {
  it("scores a study synchronously: one stack, the request's version, overlays in S3", async () => {
    const versionId = await upload("uploads/study one.zip", studies.clean);
    const result = await endpoint.invoke({
      input: `s3://${BUCKET}/uploads/study one.zip`,
      versionId,
      overlayPrefix: `s3://${BUCKET}/overlays/s1/`,
    });
    expect(result.versionId).toBe(versionId);
    expect(result.stacks).toHaveLength(1);
    const [stack] = result.stacks;
    expect(stack).toMatchObject({ index: 0, frames: 24, topK: 20 });
    expect(stack?.stackUncertainty).toBeGreaterThanOrEqual(0);
    expect(stack?.stackUncertainty).toBeLessThanOrEqual(Math.LN2);
    expect(stack?.perThreshold.map((p) => p.threshold)).toEqual([0.3, 0.5, 0.7]);
    expect(stack?.frameScores).toHaveLength(24);
    expect(stack?.overlays).toBe(`s3://${BUCKET}/overlays/s1/stack-0.npz`);
    await s3.send(new HeadObjectCommand(splitUri(stack?.overlays ?? "")));
  });

  it("scores asynchronously: the request JSON in S3 → the result JSON at the output location", async () => {
    const versionId = await upload("uploads/a.zip", studies.clean);
    await upload("requests/a.json", JSON.stringify({ input: `s3://${BUCKET}/uploads/a.zip`, versionId }));
    const started = await endpoint.invokeAsync(`s3://${BUCKET}/requests/a.json`);
    expect(started.inferenceId).toMatch(/^[0-9a-f-]{36}$/);
    expect(started.outputLocation).toBe(`s3://${BUCKET}/async-out/${started.inferenceId}.out`);
    expect(started.failureLocation).toBe(`s3://${BUCKET}/async-out/${started.inferenceId}.error`);
    const result = ScoringResultSchema.parse(await waitForJson(started.outputLocation));
    expect(result.versionId).toBe(versionId);
    expect(result.stacks).toHaveLength(1);
  });

  it("an asynchronous refusal lands at the failure location as {status, code, reason}", async () => {
    await upload("uploads/phi.zip", studies.phi);
    await upload("requests/phi.json", JSON.stringify({ input: `s3://${BUCKET}/uploads/phi.zip` }));
    const started = await endpoint.invokeAsync(`s3://${BUCKET}/requests/phi.json`);
    const failure = ScoringFailureSchema.parse(await waitForJson(started.failureLocation ?? ""));
    expect(failure).toMatchObject({ status: 422, code: "PHI_PRESENT" });
    expect(JSON.stringify(failure)).not.toContain("Doe");
  });

  it("refuses a study that still carries PHI with PHI_PRESENT, without echoing the identifying value", async () => {
    await upload("uploads/phi.zip", studies.phi);
    const error = await rejection(endpoint.invoke({ input: `s3://${BUCKET}/uploads/phi.zip` }));
    expect(error).toMatchObject({ code: "PHI_PRESENT", status: 422, name: "ScoringRejectedError" });
    expect(error.reason).toContain("PatientName"); // the attribute's keyword, never its value
    for (const text of [error.message, error.reason, String(error), JSON.stringify(error)]) {
      expect(text).not.toContain("Doe");
      expect(text).not.toContain("Planted");
    }
  });

  it("refuses a missing study with INPUT_NOT_FOUND, and a missing version too", async () => {
    await upload("uploads/present.zip", studies.clean);
    const missing = await rejection(endpoint.invoke({ input: `s3://${BUCKET}/uploads/missing.zip` }));
    expect(missing).toMatchObject({ code: "INPUT_NOT_FOUND", status: 404 });
    const noVersion = await rejection(endpoint.invoke({ input: `s3://${BUCKET}/uploads/present.zip`, versionId: "no-such-version" }));
    expect(noVersion).toMatchObject({ code: "INPUT_NOT_FOUND", status: 404 });
  });

  it("keeps answering after refusals", async () => {
    await upload("uploads/phi.zip", studies.phi);
    await rejection(endpoint.invoke({ input: `s3://${BUCKET}/uploads/phi.zip` }));
    await rejection(endpoint.invoke({ input: `s3://${BUCKET}/uploads/gone.zip` }));
    const ping = await fetch(`${server.endpoint}/ping`);
    expect(ping.status).toBe(200);
    await ping.arrayBuffer();
    await upload("uploads/after.zip", studies.clean);
    const result = await endpoint.invoke({ input: `s3://${BUCKET}/uploads/after.zip` });
    expect(result.stacks).toHaveLength(1);
  });
});

describe("SageMakerScoringEndpoint with SageMaker's wrapping of container errors (emulated wire format)", () => {
  it("maps ModelError (424) with a 4xx OriginalStatusCode to the container's code; leaves 5xx faults alone", async () => {
    const answers = [
      { status: 422, body: { code: "WRONG_MODALITY", reason: "series modality is MR, expected CT" } },
      { status: 500, body: { code: "INTERNAL_ERROR", reason: "RuntimeError" } },
    ];
    // What SageMaker sends when the primary container answers non-2xx: 424, x-amzn-ErrorType ModelError,
    // the container's status and body in OriginalStatusCode / OriginalMessage.
    const fake = createServer((request, response) => {
      request.resume();
      const answer = answers.shift() ?? { status: 500, body: { code: "X", reason: "unexpected" } };
      const original = JSON.stringify(answer.body);
      response.writeHead(424, {
        "content-type": "application/json",
        "x-amzn-errortype": "ModelError:http://internal.amazon.com/coral/com.amazonaws.sagemaker/",
      });
      response.end(
        JSON.stringify({
          ErrorCode: answer.status < 500 ? "CLIENT_ERROR_FROM_MODEL" : "SERVER_ERROR_FROM_MODEL",
          LogStreamArn: `arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/${ENDPOINT_NAME}`,
          Message: `Received ${answer.status < 500 ? "client" : "server"} error (${answer.status}) from primary with message "${original}".`,
          OriginalMessage: original,
          OriginalStatusCode: answer.status,
        }),
      );
    });
    fake.listen(0, "127.0.0.1");
    await once(fake, "listening");
    try {
      const { port } = fake.address() as AddressInfo;
      const client = new SageMakerRuntimeClient({ ...LOCAL_AWS, endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 });
      const wrapped = new SageMakerScoringEndpoint(client, ENDPOINT_NAME);
      const refused = await rejection(wrapped.invoke({ input: "s3://studies/uploads/mr.zip" }));
      expect(refused).toMatchObject({ code: "WRONG_MODALITY", status: 422, reason: "series modality is MR, expected CT" });
      const fault = await wrapped.invoke({ input: "s3://studies/uploads/x.zip" }).catch((e: unknown) => e);
      expect(fault).not.toBeInstanceOf(ScoringRejectedError);
      expect(fault).toMatchObject({ name: "ModelError", OriginalStatusCode: 500 });
      client.destroy();
    } finally {
      fake.close();
    }
  });
});
