/**
 * The studies bucket's retention and quarantine access (README "Data retention"): lifecycle rules per prefix
 * from the institution config's `retention`, the quarantine operator role as the only reader of `quarantine/`
 * (a bucket-policy Deny for everyone else), and the Lambdas' least-privilege rights for quarantine moves.
 */
import { App, Stack } from "aws-cdk-lib";
import { Match } from "aws-cdk-lib/assertions";
import { Key } from "aws-cdk-lib/aws-kms";
import { describe, expect, it } from "vitest";
import { StudiesIngest } from "../../infra/studies-ingest.js";
import { allStatements, arn, buildStack, joinIntrinsics, logicalId, ref, roleStatements } from "./stack-fixture.js";

const { stack, t } = buildStack();
const bucket = stack.studies.bucket;
const objects = (prefix: string) => ({ "Fn::Join": ["", [arn(bucket), `/${prefix}*`]] });
const rules = () => t.toJSON().Resources[logicalId(bucket)].Properties.LifecycleConfiguration.Rules as Record<string, unknown>[];
const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

describe("studies bucket lifecycle", () => {
  it("expires quarantine/ after 30 days by default, its noncurrent versions a day later", () => {
    expect(rules()).toContainEqual({
      Id: "QuarantineExpires",
      Prefix: "quarantine/",
      ExpirationInDays: 30,
      NoncurrentVersionExpiration: { NoncurrentDays: 1 },
      Status: "Enabled",
    });
  });

  it("keeps what the viewer needs (uploads/, overlays/) 365 days, replaced versions 7; scoring artefacts 30 days", () => {
    for (const prefix of ["uploads/", "overlays/"]) {
      expect(rules()).toContainEqual(
        expect.objectContaining({
          Prefix: prefix,
          ExpirationInDays: 365,
          NoncurrentVersionExpiration: { NoncurrentDays: 7 },
          Status: "Enabled",
        }),
      );
    }
    for (const prefix of ["scoring-requests/", "scoring-results/", "scoring-failures/"]) {
      expect(rules()).toContainEqual(
        expect.objectContaining({
          Prefix: prefix,
          ExpirationInDays: 30,
          NoncurrentVersionExpiration: { NoncurrentDays: 1 },
          Status: "Enabled",
        }),
      );
    }
  });

  it("removes expired delete markers and incomplete multipart uploads bucket-wide, and never expires labels/ or anything unnamed", () => {
    expect(rules()).toContainEqual({ Id: "ExpiredDeleteMarkers", ExpiredObjectDeleteMarker: true, Status: "Enabled" });
    expect(rules()).toContainEqual({
      Id: "IncompleteMultipartUploads",
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
      Status: "Enabled",
    });
    // Every rule that deletes versions names its prefix: accepted masks under labels/ keep every version.
    for (const rule of rules()) {
      if ("ExpirationInDays" in rule || "NoncurrentVersionExpiration" in rule)
        expect(rule.Prefix, JSON.stringify(rule)).toMatch(/^[a-z-]+\/$/);
      expect(rule.Prefix ?? "").not.toMatch(/^labels/);
      expect(rule.Filter).toBeUndefined();
    }
  });

  it("expires mask uploads (label-uploads/, accepted or refused) after 7 days; accepted masks live on, normalised, under labels/", () => {
    expect(rules()).toContainEqual({
      Id: "LabelUploadsExpire",
      Prefix: "label-uploads/",
      ExpirationInDays: 7,
      NoncurrentVersionExpiration: { NoncurrentDays: 1 },
      Status: "Enabled",
    });
  });

  it("takes its periods from the institution config's retention", () => {
    const custom = buildStack({ retention: { quarantineDays: 7, uploadsDays: 90, noncurrentDays: 2, scoringArtifactsDays: 21 } });
    const customRules = custom.t.toJSON().Resources[logicalId(custom.stack.studies.bucket)].Properties.LifecycleConfiguration.Rules;
    expect(customRules).toContainEqual(expect.objectContaining({ Prefix: "quarantine/", ExpirationInDays: 7 }));
    expect(customRules).toContainEqual(
      expect.objectContaining({ Prefix: "uploads/", ExpirationInDays: 90, NoncurrentVersionExpiration: { NoncurrentDays: 2 } }),
    );
    expect(customRules).toContainEqual(expect.objectContaining({ Prefix: "scoring-results/", ExpirationInDays: 21 }));
    expect(custom.stack.studies.retention).toEqual({ quarantineDays: 7, uploadsDays: 90, noncurrentDays: 2, scoringArtifactsDays: 21 });
  });

  it("refuses a retention S3 or the queues cannot honour, naming the field and the defaults", () => {
    const scope = new Stack(new App(), "Props");
    const encryptionKey = new Key(scope, "K", { enableKeyRotation: true });
    const retention = { quarantineDays: 30, uploadsDays: 365, noncurrentDays: 7, scoringArtifactsDays: 30 };
    expect(() => new StudiesIngest(scope, "A", { encryptionKey, retention: { ...retention, quarantineDays: 0 } })).toThrow(
      /invalid retention.*quarantineDays.*defaults are/,
    );
    expect(() => new StudiesIngest(scope, "B", { encryptionKey, retention: { ...retention, uploadsDays: 10 } })).toThrow(
      /uploadsDays: at least 18 days/,
    );
  });
});

describe("mask uploads from the worklist page", () => {
  it("lets pages on CloudFront PUT masks and GET viewer volumes (presigned), with a content type, nothing else", () => {
    expect(t.toJSON().Resources[logicalId(bucket)].Properties.CorsConfiguration).toEqual({
      CorsRules: [
        { AllowedMethods: ["PUT", "GET"], AllowedOrigins: ["https://*.cloudfront.net"], AllowedHeaders: ["content-type"], MaxAge: 3600 },
      ],
    });
  });

  it("the complete Lambda may PUT, read and list label-uploads/ (presigning acts as it) and PUT labels/, nothing more in the bucket", () => {
    const statements = roleStatements(t, stack.complete.role.policy).filter((s) =>
      JSON.stringify(s.Resource ?? "").includes(logicalId(bucket)),
    );
    const grants = statements.map((s) => [asList(s.Action).sort(), asList(s.Resource).map((r) => JSON.stringify(r))]);
    expect(grants).toEqual(
      expect.arrayContaining([
        [["s3:GetObject", "s3:PutObject"], [JSON.stringify(objects("label-uploads/"))]],
        [["s3:PutObject"], [JSON.stringify(objects("labels/"))]],
        [["s3:GetObject"], [JSON.stringify(objects("overlays/"))]],
      ]),
    );
    // Listing (so that a missing upload is a 404, not a 403) only under label-uploads/.
    const list = statements.find((s) => asList(s.Action).includes("s3:ListBucket"));
    expect(list).toMatchObject({ Resource: arn(bucket), Condition: { StringLike: { "s3:prefix": ["label-uploads/*"] } } });
    expect(grants).toHaveLength(4);
  });
});

describe("quarantine/ readable only by the operator role", () => {
  const policy = () => {
    const policies = t.findResources("AWS::S3::BucketPolicy", { Properties: { Bucket: ref(bucket) } });
    return Object.values(policies)[0]?.Properties.PolicyDocument.Statement as Record<string, unknown>[];
  };

  it("denies s3:GetObject* under quarantine/ to every principal but the operator role and the account root", () => {
    const deny = policy().find((s) => s.Sid === "QuarantineReadableByOperatorOnly");
    expect(deny).toEqual({
      Sid: "QuarantineReadableByOperatorOnly",
      Effect: "Deny",
      Principal: { AWS: "*" },
      Action: "s3:GetObject*",
      Resource: objects("quarantine/"),
      Condition: { ArnNotEquals: { "aws:PrincipalArn": [arn(stack.studies.quarantineOperatorRole), expect.anything()] } },
    });
    const principals = (deny as { Condition: { ArnNotEquals: { "aws:PrincipalArn": unknown[] } } }).Condition.ArnNotEquals[
      "aws:PrincipalArn"
    ];
    const root = principals[1];
    // joinIntrinsics renders each Ref as `${Name}`.
    const refOf = (name: string) => `\${${name}}`;
    expect(joinIntrinsics(root)).toBe(`arn:${refOf("AWS::Partition")}:iam::${refOf("AWS::AccountId")}:root`);
  });

  it("denies nothing else: the Lambdas' writes to quarantine/ and every other prefix are untouched", () => {
    const denies = policy().filter((s) => s.Effect === "Deny");
    for (const statement of denies) {
      const tlsOnly = (statement.Condition as { Bool?: Record<string, string> } | undefined)?.Bool?.["aws:SecureTransport"] === "false";
      if (tlsOnly) continue;
      expect(asList(statement.Action)).toEqual(["s3:GetObject*"]);
      expect(asList(statement.Resource)).toEqual([objects("quarantine/")]);
    }
    expect(denies.filter((s) => s.Sid === "QuarantineReadableByOperatorOnly")).toHaveLength(1);
  });

  it("the operator role is assumable from the account, and may only list, read and decrypt quarantine/", () => {
    const role = stack.studies.quarantineOperatorRole;
    t.hasResourceProperties("AWS::IAM::Role", {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Action: "sts:AssumeRole", Effect: "Allow", Principal: { AWS: Match.anyValue() } })],
      },
      ManagedPolicyArns: [ref(role.policy)],
    });
    const statements = roleStatements(t, role.policy);
    expect(statements).toEqual([
      { Sid: "ReadQuarantine", Effect: "Allow", Action: ["s3:GetObject", "s3:GetObjectVersion"], Resource: objects("quarantine/") },
      {
        Sid: "ListQuarantine",
        Effect: "Allow",
        Action: ["s3:ListBucket", "s3:ListBucketVersions"],
        Resource: arn(bucket),
        Condition: { StringLike: { "s3:prefix": ["quarantine/", "quarantine/*"] } },
      },
      { Effect: "Allow", Action: "kms:Decrypt", Resource: arn(stack.dataKey.key) },
    ]);
    const outputs = t.findOutputs("QuarantineOperatorRoleArn");
    expect(Object.values(outputs)[0]?.Value).toEqual(arn(role));
  });

  it("grants no other role a read of quarantine/", () => {
    const operatorPolicy = logicalId(stack.studies.quarantineOperatorRole.policy);
    const policies = { ...t.findResources("AWS::IAM::ManagedPolicy"), ...t.findResources("AWS::IAM::Policy") };
    for (const [id, resource] of Object.entries(policies)) {
      if (id === operatorPolicy) continue;
      for (const statement of resource.Properties.PolicyDocument.Statement as Record<string, unknown>[]) {
        const reads = asList(statement.Action).some((a) => typeof a === "string" && /^s3:(GetObject|\*)/.test(a));
        const inQuarantine = asList(statement.Resource).some((r) => JSON.stringify(r).includes("/quarantine/"));
        expect(reads && inQuarantine, `${id}: ${JSON.stringify(statement)}`).toBe(false);
      }
    }
  });
});

describe("quarantine moves: least privilege", () => {
  it("ingest and record-score may delete upload versions by id, and nothing else anywhere", () => {
    for (const fn of [stack.scoring.ingest, stack.scoring.recordScore]) {
      const statements = roleStatements(t, fn.role.policy);
      const deletes = statements.filter((s) => asList(s.Action).some((a) => String(a).startsWith("s3:Delete")));
      expect(deletes).toHaveLength(1);
      expect(asList(deletes[0]?.Action).filter((a) => String(a).startsWith("s3:Delete"))).toEqual(["s3:DeleteObjectVersion"]);
      expect(asList(deletes[0]?.Resource)).toEqual([objects("uploads/")]);
    }
    // No other policy in the stack deletes objects of the studies bucket.
    const studiesDeletes = allStatements(t).filter(
      (s) =>
        asList(s.Action).some((a) => String(a).startsWith("s3:Delete")) &&
        asList(s.Resource).some((r) => JSON.stringify(r).includes(logicalId(bucket))),
    );
    expect(studiesDeletes).toHaveLength(2);
  });

  it("record-score may copy a refused upload's version (with its tags) into quarantine/ and tell a gone version from a forbidden one", () => {
    const statements = roleStatements(t, stack.scoring.recordScore.role.policy);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Sid: "MoveRefusedUploads",
        Action: ["s3:GetObjectVersion", "s3:GetObjectVersionTagging", "s3:DeleteObjectVersion"],
        Resource: objects("uploads/"),
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Sid: "WriteQuarantine",
        Action: ["s3:PutObject", "s3:PutObjectTagging"],
        Resource: objects("quarantine/"),
      }),
    );
    expect(statements).toContainEqual(expect.objectContaining({ Action: "s3:ListBucket", Resource: arn(bucket) }));
  });

  it("ingest may delete upload versions beside its copy into quarantine/", () => {
    const statements = roleStatements(t, stack.scoring.ingest.role.policy);
    expect(statements).toContainEqual(
      expect.objectContaining({ Sid: "DeleteQuarantinedUploadVersions", Action: "s3:DeleteObjectVersion", Resource: objects("uploads/") }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ["s3:PutObject", "s3:PutObjectTagging"],
        Resource: expect.arrayContaining([objects("quarantine/")]),
      }),
    );
  });
});
