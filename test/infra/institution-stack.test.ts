import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { InstitutionStack } from "../../infra/institution-stack.js";
import { RECORDS_TABLE } from "../../lambdas/contracts/records-table.js";

const template = () => Template.fromStack(new InstitutionStack(new App(), "Test", { institution: "test-hospital" }));

describe("InstitutionStack", () => {
  it("creates the records table with the key layout and GSI the adapters use", () => {
    template().hasResourceProperties("AWS::DynamoDB::Table", {
      KeySchema: [
        { AttributeName: RECORDS_TABLE.partitionKey, KeyType: "HASH" },
        { AttributeName: RECORDS_TABLE.sortKey, KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: RECORDS_TABLE.statusIndex.name,
          KeySchema: [
            { AttributeName: RECORDS_TABLE.statusIndex.partitionKey, KeyType: "HASH" },
            { AttributeName: RECORDS_TABLE.statusIndex.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        }),
      ],
      BillingMode: "PAY_PER_REQUEST",
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: "KMS", KMSMasterKeyId: Match.anyValue() }),
    });
  });

  it("retains the table and rotates its customer-managed key", () => {
    const t = template();
    t.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    t.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
  });

  it("rejects an institution id that cannot name resources, saying what to use", () => {
    expect(() => new InstitutionStack(new App(), "Bad", { institution: "St Elsewhere" })).toThrow(/lower-case letters, digits or hyphens/);
  });
});
