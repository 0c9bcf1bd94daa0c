import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadInstitutionConfig } from "../../infra/load-config.js";
import { InstitutionConfigError, InstitutionConfigSchema, parseInstitutionConfig } from "../../lambdas/contracts/institution-config.js";
import { DEFAULT_TIME_PRIOR } from "../../lambdas/domain/labeling-time-model.js";
import { minimalConfigInput } from "./test-config.js";

describe("InstitutionConfigSchema", () => {
  it("fills every documented default from the required fields alone", () => {
    expect(parseInstitutionConfig(minimalConfigInput)).toEqual({
      ...minimalConfigInput,
      schedule: { expression: "cron(0 6 ? * MON *)", timezone: "UTC" },
      timeResolutionSeconds: 1,
      topK: 200,
      thresholds: [0.3, 0.5, 0.7],
      scoring: { instanceType: "ml.g5.xlarge", maxInstanceCount: 1 },
      timeModel: { prior: { ...DEFAULT_TIME_PRIOR }, maxActiveHours: 8, calibrationBand: [0.8, 1.25] },
      retention: { quarantineDays: 30, uploadsDays: 365, noncurrentDays: 7, scoringArtifactsDays: 30 },
      deidentification: { allowedPrivateCreators: [] },
      learning: {
        schedule: "cron(0 2 * * ? *)",
        minNewMasks: 20,
        validationShare: 0.2,
        tolerance: 0.05,
        instanceType: "ml.g5.xlarge",
        maxRuntimeHours: 8,
        volumeSizeGb: 100,
        hyperparameters: {},
      },
    });
  });

  it("documents the same prior the time model uses, and refuses a bad time-model section naming the field", () => {
    expect(parseInstitutionConfig(minimalConfigInput).timeModel.prior).toEqual(DEFAULT_TIME_PRIOR);
    expect(() => parseInstitutionConfig({ ...minimalConfigInput, timeModel: { prior: { ...DEFAULT_TIME_PRIOR, beta: -0.1 } } })).toThrow(
      /timeModel\.prior\.beta/,
    );
    expect(() => parseInstitutionConfig({ ...minimalConfigInput, timeModel: { prior: { ...DEFAULT_TIME_PRIOR, strength: 0 } } })).toThrow(
      /timeModel\.prior\.strength/,
    );
    expect(() => parseInstitutionConfig({ ...minimalConfigInput, timeModel: { calibrationBand: [1.1, 1.25] } })).toThrow(
      /timeModel\.calibrationBand/,
    );
    expect(() => parseInstitutionConfig({ ...minimalConfigInput, timeModel: { maxActiveHours: 30 } })).toThrow(/timeModel\.maxActiveHours/);
  });

  it("accepts a full configuration", () => {
    const full = {
      ...minimalConfigInput,
      annotatorEmails: ["a@example.org", "b@example.org"],
      schedule: { expression: "cron(30 7 ? * TUE *)", timezone: "Europe/Vienna" },
      timeResolutionSeconds: 5,
      topK: 100,
      thresholds: [0.5],
      scoring: { instanceType: "ml.g6.2xlarge", maxInstanceCount: 2, modelArtifact: "s3://ich-models/v1/model.tar.gz" },
      timeModel: {
        prior: { alpha: 0.5, beta: 0.3, gamma: 4.2, residualSd: 0.5, strength: 10 },
        maxActiveHours: 6,
        calibrationBand: [0.7, 1.3],
      },
      retention: { quarantineDays: 14, uploadsDays: 730, noncurrentDays: 3, scoringArtifactsDays: 60 },
      deidentification: { allowedPrivateCreators: ["GEMS_IDEN_01", "SIEMENS CSA HEADER"] },
      learning: {
        schedule: "cron(0 3 ? * SUN *)",
        minNewMasks: 10,
        validationShare: 0.15,
        tolerance: 0.02,
        instanceType: "ml.g6.xlarge",
        maxRuntimeHours: 4,
        volumeSizeGb: 60,
        hyperparameters: { iterations: 2000, amp: true },
      },
    };
    expect(InstitutionConfigSchema.parse(full)).toEqual(full);
  });

  it("fills the other retention periods when one is given", () => {
    expect(parseInstitutionConfig({ ...minimalConfigInput, retention: { quarantineDays: 7 } }).retention).toEqual({
      quarantineDays: 7,
      uploadsDays: 365,
      noncurrentDays: 7,
      scoringArtifactsDays: 30,
    });
  });

  it("fills the schedule's time zone when only the expression is given", () => {
    expect(parseInstitutionConfig({ ...minimalConfigInput, schedule: { expression: "cron(0 5 ? * FRI *)" } }).schedule).toEqual({
      expression: "cron(0 5 ? * FRI *)",
      timezone: "UTC",
    });
  });

  const bad: [field: string, patch: Record<string, unknown>][] = [
    ["learning.minNewMasks", { learning: { minNewMasks: 0 } }],
    ["learning.validationShare", { learning: { validationShare: 0.9 } }],
    ["learning.schedule", { learning: { schedule: "rate(1 day)" } }],
    ["institution", { institution: "St Elsewhere" }],
    ["annotatorEmails", { annotatorEmails: [] }],
    ["annotatorEmails.0", { annotatorEmails: ["not-an-address"] }],
    ["senderAddress", { senderAddress: "ich-al" }],
    ["weeklyBudgetHours", { weeklyBudgetHours: 0 }],
    ["schedule.expression", { schedule: { expression: "rate(7 days)" } }],
    ["schedule.expression", { schedule: { expression: "cron(0 6 * * MON *)" } }],
    ["schedule.timezone", { schedule: { timezone: "Europe/Atlantis" } }],
    ["timeResolutionSeconds", { timeResolutionSeconds: -1 }],
    ["topK", { topK: 2.5 }],
    ["thresholds", { thresholds: [0.7, 0.5] }],
    ["thresholds.0", { thresholds: [1.2] }],
    ["scoring.instanceType", { scoring: { instanceType: "g5.xlarge" } }],
    ["scoring.maxInstanceCount", { scoring: { maxInstanceCount: 0 } }],
    ["scoring.modelArtifact", { scoring: { modelArtifact: "https://example.org/model.tar.gz" } }],
    ["retention.quarantineDays", { retention: { quarantineDays: 0 } }],
    ["retention.quarantineDays", { retention: { quarantineDays: 2.5 } }],
    ["retention.uploadsDays", { retention: { uploadsDays: 10 } }],
    ["retention.noncurrentDays", { retention: { noncurrentDays: 0 } }],
    ["retention.scoringArtifactsDays", { retention: { scoringArtifactsDays: 7 } }],
    ["deidentification.allowedPrivateCreators", { deidentification: { allowedPrivateCreators: "GEMS_IDEN_01" } }],
    ["deidentification.allowedPrivateCreators.0", { deidentification: { allowedPrivateCreators: ["GEMS\\IDEN"] } }],
    ["deidentification.allowedPrivateCreators.0", { deidentification: { allowedPrivateCreators: [" "] } }],
    ["deidentification", { deidentification: { allowPrivateCreators: [] } }],
  ];
  it.each(bad)("names %s when it is wrong", (field, patch) => {
    expect(() => parseInstitutionConfig({ ...minimalConfigInput, ...patch })).toThrow(
      new RegExp(`— (.*; )?${field.replace(".", "\\.")}: `),
    );
  });

  it.each(["annotatorEmails", "senderAddress", "weeklyBudgetHours"])("names the required field %s when it is missing", (field) => {
    const input: Record<string, unknown> = { ...minimalConfigInput };
    delete input[field];
    expect(() => parseInstitutionConfig(input)).toThrow(new RegExp(`${field}: required \\(no default\\)`));
  });

  it("names an unknown (misspelt) key instead of ignoring it", () => {
    expect(() => parseInstitutionConfig({ ...minimalConfigInput, weeklyBudgetHour: 10 })).toThrow(/weeklyBudgetHour/);
    expect(() => parseInstitutionConfig({ ...minimalConfigInput, weeklyBudgetHour: 10 })).toThrow(InstitutionConfigError);
  });
});

describe("loadInstitutionConfig (the CDK app's -c institution / -c config)", () => {
  const dir = mkdtempSync(join(tmpdir(), "ich-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, body: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof body === "string" ? body : JSON.stringify(body));
    return path;
  };

  it("reads <configDir>/<institution>.json by default", () => {
    write("test-hospital.json", minimalConfigInput);
    expect(loadInstitutionConfig({ institution: "test-hospital" }, dir).weeklyBudgetHours).toBe(40);
  });

  it("reads -c config=path and takes the institution from -c institution when the file has none", () => {
    const { institution: _, ...rest } = minimalConfigInput;
    const path = write("no-id.json", rest);
    expect(loadInstitutionConfig({ institution: "other-hospital", config: path }, dir).institution).toBe("other-hospital");
  });

  it("refuses a file whose institution disagrees with -c institution", () => {
    const path = write("mismatch.json", minimalConfigInput);
    expect(() => loadInstitutionConfig({ institution: "elsewhere", config: path }, dir)).toThrow(/institution: .*make them agree/);
  });

  it("says which file is missing or not JSON, and names bad fields with the file", () => {
    expect(() => loadInstitutionConfig({ institution: "nowhere" }, dir)).toThrow(/nowhere\.json not found/);
    expect(() => loadInstitutionConfig({ config: write("broken.json", "{") }, dir)).toThrow(/broken\.json is not valid JSON/);
    const path = write("bad.json", { ...minimalConfigInput, weeklyBudgetHours: -3 });
    expect(() => loadInstitutionConfig({ config: path }, dir)).toThrow(/bad\.json is invalid — weeklyBudgetHours: /);
    expect(() => loadInstitutionConfig({}, dir)).toThrow(/pass -c institution=<id>/);
  });

  it("parses the shipped demo configuration", () => {
    expect(loadInstitutionConfig({ institution: "demo" }).schedule.timezone).toBe("Europe/Vienna");
  });
});
