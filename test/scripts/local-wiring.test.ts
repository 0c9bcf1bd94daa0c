/**
 * The local run's scoring endpoint comes from the synthesized template, not from a hand-written copy:
 * the async output path, the notification topics and the container environment SageMaker would set.
 */
import { describe, expect, it } from "vitest";
import { deriveWiring } from "../../scripts/lib/local-wiring.js";
import { LocalTemplate, synthesizeInstitutionTemplate } from "../../scripts/lib/synthesized-stack.js";

describe("local wiring of the scoring endpoint", () => {
  it("carries the endpoint config's async output and topics and the model's container environment", () => {
    const { template } = synthesizeInstitutionTemplate({
      institution: "wiring",
      annotatorEmails: ["a@example.org"],
      senderAddress: "ich-al@example.org",
      weeklyBudgetHours: 4,
      scoring: { modelArtifact: "s3://models/ensemble/model.tar.gz" },
    });
    const endpoint = deriveWiring(new LocalTemplate(template, "http://127.0.0.1:1")).scoringEndpoint;
    type AsyncConfig = { AsyncInferenceConfig?: { ClientConfig?: { MaxConcurrentInvocationsPerInstance?: number } } };
    const config = Object.values(template.Resources).find((r) => r.Type === "AWS::SageMaker::EndpointConfig");
    const perInstance = (config?.Properties as AsyncConfig | undefined)?.AsyncInferenceConfig?.ClientConfig
      ?.MaxConcurrentInvocationsPerInstance;

    expect(endpoint?.asyncOutput).toMatch(/^s3:\/\/[^/]+\/.+/);
    expect(endpoint?.successTopicArn).toMatch(/^arn:aws:sns:/);
    expect(endpoint?.errorTopicArn).toMatch(/^arn:aws:sns:/);
    // The container works on as many requests at once as SageMaker sends it (model-container serve --concurrency).
    expect(endpoint?.environment).toEqual({ ICHAL_CONCURRENT_REQUESTS: String(perInstance) });
    expect(perInstance).toBe(2);
  });
});
