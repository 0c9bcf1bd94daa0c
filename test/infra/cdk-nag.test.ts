import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { InstitutionStack } from "../../infra/institution-stack.js";
import { testConfig } from "./test-config.js";

interface ValidationReport {
  pluginReports: { pluginName: string; violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
}

/** Builds the institution app with the three packs; returns whether synth threw and the validation report. */
const synthWithNag = () => {
  const outdir = mkdtempSync(join(tmpdir(), "cdk-nag-"));
  const app = new App({ outdir });
  const stack = new InstitutionStack(app, "Nag", { config: testConfig() });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app), new NIST80053R5Checks(app));
  let error: unknown;
  try {
    app.synth();
  } catch (e) {
    error = e;
  }
  const report = JSON.parse(readFileSync(join(outdir, "validation-report.json"), "utf8")) as ValidationReport;
  const findings = report.pluginReports.flatMap((plugin) =>
    plugin.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} @ ${c.constructPath}`)),
  );
  return { app, stack, error, findings: findings.sort() };
};

/** Every acknowledgement in the tree as `rule @ construct path` with its reason. */
const acknowledgements = (root: IConstruct) =>
  root.node
    .findAll()
    .flatMap((c) =>
      c.node.metadata
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ id, at: c.node.path, reason }))),
    );

/** The reviewed acknowledgements: rule id (with the managed policy where the id carries it) @ the construct it is on. */
const EXPECTED_ACKNOWLEDGEMENTS = [
  "HIPAA.Security-S3DefaultEncryptionKMS @ Nag/Studies/AccessLogs",
  "NIST.800.53.R5-S3DefaultEncryptionKMS @ Nag/Studies/AccessLogs",
  "HIPAA.Security-S3BucketReplicationEnabled @ Nag/Studies/AccessLogs",
  "NIST.800.53.R5-S3BucketReplicationEnabled @ Nag/Studies/AccessLogs",
  "HIPAA.Security-S3BucketReplicationEnabled @ Nag/Studies/Studies",
  "NIST.800.53.R5-S3BucketReplicationEnabled @ Nag/Studies/Studies",
  "HIPAA.Security-IAMNoInlinePolicy @ Nag/Studies/Studies/Notifications",
  "NIST.800.53.R5-IAMNoInlinePolicy @ Nag/Studies/Studies/Notifications",
  "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole] @ Nag/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
  "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup] @ Nag/Records/BackupPlan/Table",
].sort();

describe("cdk-nag: AwsSolutions, HIPAA Security, NIST 800-53 rev 5", () => {
  afterEach(() => vi.restoreAllMocks());

  it("synthesizes with zero unacknowledged findings", () => {
    const { error, findings } = synthWithNag();
    expect(findings).toEqual([]);
    expect(error).toBeUndefined();
  });

  it("acknowledges only the reviewed findings, each with a specific reason", () => {
    const { stack } = synthWithNag();
    const acks = acknowledgements(stack);
    expect(acks.map((a) => `${a.id.replace(/^annotation::/i, "")} @ ${a.at}`).sort()).toEqual(EXPECTED_ACKNOWLEDGEMENTS);
    for (const ack of acks) expect(ack.reason.length, `${ack.id} @ ${ack.at}`).toBeGreaterThan(60);
  });

  it("needs every acknowledgement: without them, exactly those findings appear", () => {
    vi.spyOn(Validations.prototype, "acknowledge").mockImplementation(() => undefined);
    const { error, findings } = synthWithNag();
    expect(error).toBeDefined();
    const expected = EXPECTED_ACKNOWLEDGEMENTS.map((a) => {
      const [rule, path] = a.split(" @ ");
      return { rule, path };
    });
    // Each finding is on the acknowledged construct or one of its children (e.g. `…/Resource`, `…/Role/Resource`).
    for (const finding of findings) {
      const [rule, path] = finding.split(" @ ");
      expect(
        expected.some((e) => e.rule === rule && (path === e.path || path?.startsWith(`${e.path}/`))),
        finding,
      ).toBe(true);
    }
    for (const e of expected) {
      expect(
        findings.some((f) => f.startsWith(`${e.rule} @ ${e.path}`)),
        `${e.rule} @ ${e.path}`,
      ).toBe(true);
    }
  });
});
