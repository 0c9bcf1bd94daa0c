/** The record-score core's pure parts: notification parsing (SNS envelope → SageMaker event → study id) and the mapping to records. */
import { describe, expect, it } from "vitest";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import type { ScoredStack, ScoringResult } from "../../lambdas/contracts/scoring.js";
import { PRIOR_TIME_MODEL, predictLabelingSeconds } from "../../lambdas/domain/labeling-time-model.js";
import {
  failureOutcome,
  MalformedNotificationError,
  parseS3Uri,
  parseScoringNotification,
  stackRecordsFor,
} from "../../lambdas/domain/record-score.js";

const STUDY = "0123456789abcdef0123456789abcdef";
const REQUEST = `s3://studies/scoring-requests/${STUDY}.json`;

function snsBody(message: unknown): string {
  return JSON.stringify({
    Type: "Notification",
    MessageId: "11111111-2222-3333-4444-555555555555",
    TopicArn: "arn:aws:sns:us-east-1:123456789012:scoring-success",
    Message: typeof message === "string" ? message : JSON.stringify(message),
    Timestamp: "2026-11-26T12:00:00.000Z",
    SignatureVersion: "1",
    Signature: "EXAMPLE",
  });
}

const completed = {
  awsRegion: "us-east-1",
  eventTime: "2026-11-26T12:00:00.608Z",
  receivedTime: "2026-11-26T12:00:00.455Z",
  invocationStatus: "Completed",
  requestParameters: { contentType: "application/json", endpointName: "scoring", inputLocation: REQUEST },
  responseParameters: { contentType: "application/json", outputLocation: "s3://studies/async-out/abc.out" },
  inferenceId: "inf-1",
  eventVersion: "1.0",
  eventSource: "aws:sagemaker",
  eventName: "InferenceResult",
};

const failed = {
  ...completed,
  invocationStatus: "Failed",
  failureReason: "ClientError: Received client error (422) from model. See the SageMaker Endpoint logs.",
  responseParameters: { contentType: "application/json", failureLocation: "s3://studies/async-failures/abc-error.out" },
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof MalformedNotificationError ? error.code : `other: ${String(error)}`;
  }
  return undefined;
}

describe("parseScoringNotification", () => {
  it("reads a success notification and the study id from the request location", () => {
    expect(parseScoringNotification(snsBody(completed), "studies")).toEqual({
      kind: "completed",
      studyId: STUDY,
      inferenceId: "inf-1",
      outputLocation: "s3://studies/async-out/abc.out",
    });
  });

  it("reads an error notification with and without a failure location", () => {
    expect(parseScoringNotification(snsBody(failed), "studies")).toMatchObject({
      kind: "failed",
      studyId: STUDY,
      failureLocation: "s3://studies/async-failures/abc-error.out",
      failureReason: failed.failureReason,
    });
    const { responseParameters: _r, ...bare } = failed;
    expect(parseScoringNotification(snsBody(bare), "studies")).toMatchObject({ kind: "failed", failureLocation: undefined });
  });

  it.each([
    ["not json", "NOT_JSON"],
    [JSON.stringify({ Records: [] }), "NOT_SNS_NOTIFICATION"],
    [snsBody("{oops"), "NOT_JSON"],
    [snsBody({ hello: "world" }), "NOT_ASYNC_INFERENCE_EVENT"],
    [snsBody({ ...completed, invocationStatus: "Pending" }), "NOT_ASYNC_INFERENCE_EVENT"],
    [snsBody({ ...completed, responseParameters: {} }), "NOT_ASYNC_INFERENCE_EVENT"],
    [snsBody({ ...completed, requestParameters: { inputLocation: "s3://studies/uploads/x.zip" } }), "UNKNOWN_REQUEST_LOCATION"],
    [snsBody({ ...completed, requestParameters: { inputLocation: `s3://other/scoring-requests/${STUDY}.json` } }), "FOREIGN_BUCKET"],
  ])("names what is wrong with a malformed message (%#)", (body, code) => {
    expect(codeOf(() => parseScoringNotification(body, "studies"))).toBe(code);
  });

  it("splits s3 URIs", () => {
    expect(parseS3Uri("s3://b/a/b.json")).toEqual({ bucket: "b", key: "a/b.json" });
    expect(parseS3Uri("https://b/a")).toBeUndefined();
  });
});

function scoredStack(index: number, boundaryLength: number, components: number): ScoredStack {
  return {
    index,
    seriesUid: `1.2.3.${index}`,
    frames: 30,
    stackUncertainty: 0.1 * (index + 1),
    topK: 10,
    boundaryLength: boundaryLength,
    components,
    perThreshold: [{ threshold: 0.5, boundaryLength: boundaryLength, components: Math.round(components) }],
    stackScore: 0.7,
    frameScores: [0.1, 0.7],
    nRegions: 0,
    regions: [],
    timings: { total: 1 },
  };
}

describe("stackRecordsFor", () => {
  const study: StackRecord = {
    stackId: STUDY,
    kind: "study",
    status: "received",
    source: { bucket: "studies", key: "uploads/a.zip", versionId: "v1" },
    receivedAt: "2026-11-26T11:00:00.000Z",
    updatedAt: "2026-11-26T11:00:00.000Z",
  };
  const result: ScoringResult = {
    modelVersion: "drn_d_38-w1.0-x4-abc",
    input: "s3://studies/uploads/a.zip",
    versionId: "v1",
    stacks: [scoredStack(0, 0, 0), scoredStack(1, 500, 1.5)],
    timings: { total: 2 },
  };

  it("maps each scored stack to a pending stack record with the prior's prediction", () => {
    const records = stackRecordsFor(study, result, { version: 0, model: PRIOR_TIME_MODEL }, "2026-11-26T12:00:00.000Z");
    expect(records.map((r) => r.stackId)).toEqual([`${STUDY}-s0`, `${STUDY}-s1`]);
    const second = records[1];
    const expected = predictLabelingSeconds(PRIOR_TIME_MODEL, { boundaryLength: 500, components: 1.5 });
    expect(second).toMatchObject({
      kind: "stack",
      status: "pending",
      source: { bucket: "studies", key: "uploads/a.zip", versionId: "v1", seriesUid: "1.2.3.1" },
      receivedAt: study.receivedAt,
      scores: {
        stackUncertainty: 0.2,
        topK: 10,
        boundaryLength: 500,
        components: 1.5,
        stackScore: 0.7,
        modelVersion: "drn_d_38-w1.0-x4-abc",
      },
      prediction: {
        predictedSeconds: expected.seconds,
        medianSeconds: expected.medianSeconds,
        low: expected.low,
        high: expected.high,
        timeModelVersion: 0,
      },
    });
    // A negative stack: median the prior's e^γ = 45 s; the mean adds the predictive variance
    // v = s²·(1 + xᵀV₀x) with x = [0, 0, 1] (computed here from the prior's posterior parts).
    const { covariance, shape, scale } = PRIOR_TIME_MODEL.posterior;
    const v = (scale / (shape - 1)) * (1 + covariance[2][2]);
    expect(records[0]?.prediction?.medianSeconds).toBeCloseTo(45, 6);
    expect(records[0]?.prediction?.predictedSeconds).toBeCloseTo(45 * Math.exp(v / 2), 6);
  });

  it("records the stored time-model version it predicted with", () => {
    const model = { ...PRIOR_TIME_MODEL, source: "fit" as const, gamma: Math.log(60) };
    const [first] = stackRecordsFor(study, result, { version: 7, model }, "2026-11-26T12:00:00.000Z");
    expect(first?.prediction?.timeModelVersion).toBe(7);
    expect(first?.prediction?.medianSeconds).toBeCloseTo(60, 6);
  });
});

describe("failureOutcome", () => {
  const at = "2026-11-26T12:00:00.000Z";
  it("rejects a study the container refused with 4xx", () => {
    expect(failureOutcome({ status: 422, code: "PHI_PRESENT", reason: "PatientName present" }, undefined, at)).toEqual({
      status: "rejected",
      rejection: { code: "PHI_PRESENT", reason: "PatientName present" },
    });
  });
  it("fails it on 5xx, a failure without status, or no failure object", () => {
    expect(failureOutcome({ status: 500, code: "INTERNAL", reason: "boom" }, undefined, at)).toEqual({
      status: "failed",
      lastError: { code: "INTERNAL", message: "boom", at },
    });
    expect(failureOutcome({ code: "X", reason: "y" }, undefined, at).status).toBe("failed");
    expect(failureOutcome(undefined, "ClientError: Received server error (500)", at)).toEqual({
      status: "failed",
      lastError: { code: "ASYNC_INFERENCE_FAILED", message: "ClientError: Received server error (500)", at },
    });
  });
});
