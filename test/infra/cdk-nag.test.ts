import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { annotatorKey } from "../../infra/completion-api.js";
import { InstitutionStack } from "../../infra/institution-stack.js";
import type { InstitutionConfigInput } from "../../lambdas/contracts/institution-config.js";
import { MODEL_ARTIFACT } from "./stack-fixture.js";
import { minimalConfigInput, testConfig } from "./test-config.js";

interface ValidationReport {
  pluginReports: { pluginName: string; violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
}

/**
 * Builds the institution app with the three packs; returns whether synth threw and the validation report.
 * With a model artefact (the default here) every construct exists, the scoring endpoint included.
 * Bundling is skipped: the packs inspect resources, not code.
 */
const synthWithNag = (overrides: Partial<InstitutionConfigInput> = { scoring: { modelArtifact: MODEL_ARTIFACT } }) => {
  const outdir = mkdtempSync(join(tmpdir(), "cdk-nag-"));
  const app = new App({ outdir, context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new InstitutionStack(app, "Nag", { config: testConfig(overrides) });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app), new NIST80053R5Checks(app));
  let error: unknown;
  try {
    app.synth();
  } catch (e) {
    error = e;
  }
  const report = JSON.parse(readFileSync(join(outdir, "validation-report.json"), "utf8")) as ValidationReport;
  rmSync(outdir, { recursive: true, force: true }); // ~23 MB of synthesized assets per call
  const findings = report.pluginReports.flatMap((plugin) =>
    plugin.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} @ ${c.constructPath}`)),
  );
  return { app, stack, error, findings: findings.sort() };
};

/**
 * Every acknowledgement in the tree as `rule @ construct path` with its reason, except aws-cdk-lib's own for
 * its CloudFormation validator (not run here), e.g. on VPC flow logs and the stack's literal AZs.
 */
const acknowledgements = (root: IConstruct) =>
  root.node
    .findAll()
    .flatMap((c) =>
      c.node.metadata
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ id, at: c.node.path, reason }))),
    )
    .filter((ack) => !ack.id.startsWith("CloudFormation-Validate::"));

/** Lambda functions (construct paths): none is in a VPC; all but start-round are invoked synchronously. */
const FUNCTIONS = [
  "Scoring/Ingest",
  "Scoring/RecordScore",
  "Scoring/Rescore",
  "Refit",
  "Select",
  "Notify",
  "RoundFailure",
  "Complete",
  "WeeklyWorkflow/StartRound",
  ...["PrepareTraining", "JudgeCandidate", "DeployCandidate", "PutInService", "TrainingFailure"].map((f) => `Learning/${f}`),
];
const SYNCHRONOUS = FUNCTIONS.filter((f) => f !== "WeeklyWorkflow/StartRound");
const STUDIES_ARN = "<Studies79019107.Arn>";
/** CDK's BucketDeployment handler: a singleton at the stack root, named by CDK's fixed UUID and the memory limit. */
const DEPLOYMENT_HANDLER = "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C256MiB";
/** CDK's AwsCustomResource handler: a singleton at the stack root, named by CDK's fixed UUID. */
const AWS_CUSTOM_RESOURCE_HANDLER = "AWS679f53fac002430cb0da5b7982bd2287";
const iam5 = (resource: string, at: string) => `AwsSolutions-IAM5[Resource::${resource}] @ Nag/${at}`;

/** The reviewed acknowledgements: rule id (with the managed policy or resource where the id carries it) @ the construct it is on. */
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
  // LambdaFunction: no VPC (all dependencies are AWS APIs over TLS + IAM); synchronous callers own failures (no Lambda DLQ).
  ...FUNCTIONS.flatMap((f) => [`HIPAA.Security-LambdaInsideVPC @ Nag/${f}`, `NIST.800.53.R5-LambdaInsideVPC @ Nag/${f}`]),
  ...SYNCHRONOUS.flatMap((f) => [`HIPAA.Security-LambdaDLQ @ Nag/${f}`, `NIST.800.53.R5-LambdaDLQ @ Nag/${f}`]),
  // Object prefixes of the studies bucket whose keys are per study.
  ...["uploads/", "quarantine/", "scoring-requests/"].map((p) => iam5(`${STUDIES_ARN}/${p}*`, "Scoring/Ingest/Role")),
  ...["scoring-results/", "scoring-failures/", "uploads/", "quarantine/"].map((p) =>
    iam5(`${STUDIES_ARN}/${p}*`, "Scoring/RecordScore/Role"),
  ),
  // The quarantine operator role: read-only under quarantine/.
  iam5(`${STUDIES_ARN}/quarantine/*`, "Studies/QuarantineOperator"),
  ...["uploads/", "scoring-requests/", "overlays/", "scoring-results/", "scoring-failures/"].map((p) =>
    iam5(`${STUDIES_ARN}/${p}*`, "ScoringEndpoint/ExecutionRole"),
  ),
  iam5(`${STUDIES_ARN}/overlays/*`, "Complete/Role"),
  iam5(`${STUDIES_ARN}/scoring-requests/rescore/*`, "Scoring/Rescore/Role"),
  iam5(`${STUDIES_ARN}/label-uploads/*`, "Complete/Role"),
  iam5(`${STUDIES_ARN}/labels/*`, "Complete/Role"),
  // ecr:GetAuthorizationToken, cloudwatch:PutMetricData (namespace-conditioned), ec2:Describe*: no resource-level permissions.
  iam5("*", "ScoringEndpoint/ExecutionRole"),
  // Network interfaces SageMaker creates in the sealed subnets (ids made at deploy; ec2:Subnet-conditioned).
  iam5("arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*", "ScoringEndpoint/ExecutionRole"),
  // Sealed network: CDK's AwsCustomResource that looks up the S3 prefix list (singleton Lambda and its inline policy).
  `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole] @ Nag/${AWS_CUSTOM_RESOURCE_HANDLER}`,
  ...["HIPAA.Security", "NIST.800.53.R5"].flatMap((pack) => [
    ...["LambdaInsideVPC", "LambdaDLQ", "LambdaConcurrency"].map((rule) => `${pack}-${rule} @ Nag/${AWS_CUSTOM_RESOURCE_HANDLER}`),
    `${pack}-IAMNoInlinePolicy @ Nag/Network/S3PrefixList/CustomResourcePolicy`,
  ]),
  iam5("*", "Network/S3PrefixList/CustomResourcePolicy"),
  // ml.g5 (local NVMe): SageMaker rejects an endpoint-config KmsKeyId.
  "HIPAA.Security-SageMakerEndpointConfigurationKMSKeyConfigured @ Nag/ScoringEndpoint/Config",
  "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured @ Nag/ScoringEndpoint/Config",
  // Step Functions: X-Ray and vended log delivery (no resource-level permissions); LambdaInvoke's `<fn>:*` versions.
  iam5("*", "WeeklyWorkflow/Role"),
  ...["RefitFunctionAE6229A2", "SelectFunctionDD02D912", "NotifyFunction3392CA4F", "RoundFailureFunction1A67F2CD"].map((fn) =>
    iam5(`<${fn}.Arn>:*`, "WeeklyWorkflow/Role"),
  ),
  // The learning loop: per-job prefixes and names, the registry's versions, the training job's network and logs.
  ...["uploads/", "labels/", "training-channels/"].map((p) => iam5(`${STUDIES_ARN}/${p}*`, "Learning/PrepareTraining/Role")),
  ...["training-output/", "model-evaluations/"].map((p) => iam5(`${STUDIES_ARN}/${p}*`, "Learning/JudgeCandidate/Role")),
  ...["training-channels/", "training-output/"].map((p) => iam5(`${STUDIES_ARN}/${p}*`, "Learning/Workflow/TrainingRole")),
  iam5(`${STUDIES_ARN}/training-output/*`, "ScoringEndpoint/ExecutionRole"),
  ...["JudgeCandidate", "TrainingFailure"].map((f) =>
    iam5(
      "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/ich-al-test-hospital-ensemble/*",
      `Learning/${f}/Role`,
    ),
  ),
  ...["model", "endpoint-config"].map((kind) =>
    iam5(`arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:${kind}/ich-al-test-hospital-*`, "Learning/DeployCandidate/Role"),
  ),
  iam5("arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/ich-al-test-hospital-*", "Learning/Workflow/Role"),
  iam5("*", "Learning/Workflow/Role"),
  ...["LearningDeployCandidateFunction1DA62C6F", "LearningJudgeCandidateFunction4A7DE373", "LearningPrepareTrainingFunction50A090B2"]
    .concat(["LearningPutInServiceFunctionD5AF5229", "LearningTrainingFailureFunctionF0A222A5", "ScoringRescoreFunction1EF74A8A"])
    .map((fn) => iam5(`<${fn}.Arn>:*`, "Learning/Workflow/Role")),
  iam5("*", "Learning/Workflow/TrainingRole"),
  iam5("arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*", "Learning/Workflow/TrainingRole"),
  iam5(
    "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:log-stream:ich-al-test-hospital-*",
    "Learning/Workflow/TrainingRole",
  ),
  // API Gateway's account-wide CloudWatch Logs role.
  iam5("arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*", "CompletionApi/AccountLogsRole"),
  // Completion API: per-user responses (no cache), Lambda proxy (no client certificate), WAF.
  "HIPAA.Security-APIGWCacheEnabledAndEncrypted @ Nag/CompletionApi/Api",
  "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted @ Nag/CompletionApi/Api",
  "HIPAA.Security-APIGWSSLEnabled @ Nag/CompletionApi/Api",
  "NIST.800.53.R5-APIGWSSLEnabled @ Nag/CompletionApi/Api",
  "AwsSolutions-APIG3 @ Nag/CompletionApi/Api",
  // The lookup of each annotator's Cognito sub: CDK's AwsCustomResource inline policy (cognito-idp:ListUsers on the pool).
  ...["HIPAA.Security", "NIST.800.53.R5"].map(
    (pack) =>
      `${pack}-IAMNoInlinePolicy @ Nag/CompletionApi/AnnotatorSub${annotatorKey(minimalConfigInput.annotatorEmails[0] as string)}/CustomResourcePolicy`,
  ),
  "NIST.800.53.R5-APIGWAssociatedWithWAF @ Nag/CompletionApi/Api",
  // Worklist site: SSE-S3 buckets (public page files; log delivery), not replicated.
  ...["Logs", "Site"].flatMap((b) =>
    ["S3DefaultEncryptionKMS", "S3BucketReplicationEnabled"].flatMap((rule) => [
      `HIPAA.Security-${rule} @ Nag/WorklistSite/${b}`,
      `NIST.800.53.R5-${rule} @ Nag/WorklistSite/${b}`,
    ]),
  ),
  // CloudFront: no geo restriction, no WAF, default *.cloudfront.net certificate (TLSv1 policy) without a custom domain.
  ...["CFR1", "CFR2", "CFR4"].map((rule) => `AwsSolutions-${rule} @ Nag/WorklistSite/Distribution`),
  // CDK's BucketDeployment handler (stack-level singleton) and the wildcards it grants the role given to it.
  ...["HIPAA.Security", "NIST.800.53.R5"].flatMap((pack) =>
    ["LambdaInsideVPC", "LambdaDLQ", "LambdaConcurrency"].map((rule) => `${pack}-${rule} @ Nag/${DEPLOYMENT_HANDLER}`),
  ),
  `AwsSolutions-L1 @ Nag/${DEPLOYMENT_HANDLER}`,
  ...[
    "Action::s3:GetObject*",
    "Action::s3:GetBucket*",
    "Action::s3:List*",
    "Action::s3:DeleteObject*",
    "Action::s3:Abort*",
    "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
    "Resource::<WorklistSite194B1F42.Arn>/*",
    "Resource::*",
  ].map((finding) => `AwsSolutions-IAM5[${finding}] @ Nag/WorklistSite/DeploymentRole`),
].sort();

describe("cdk-nag: AwsSolutions, HIPAA Security, NIST 800-53 rev 5", () => {
  afterEach(() => vi.restoreAllMocks());

  it("synthesizes with zero unacknowledged findings", () => {
    const { error, findings } = synthWithNag();
    expect(findings).toEqual([]);
    expect(error).toBeUndefined();
  });

  it("also has zero unacknowledged findings without a model artefact (no endpoint yet)", () => {
    const { error, findings } = synthWithNag({});
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
