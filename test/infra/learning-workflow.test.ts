import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { LEARNING_WORKFLOW_STATES as S } from "../../lambdas/contracts/learning.js";
import { buildStack, expectMatch, joinIntrinsics, logicalId, MODEL_ARTIFACT, roleStatements } from "./stack-fixture.js";

const { stack, t } = buildStack({ scoring: { modelArtifact: MODEL_ARTIFACT }, learning: { maxRuntimeHours: 6 } });
const learning = stack.learning;
if (!learning) throw new Error("a deployed endpoint comes with the learning loop");
const resource = t.toJSON().Resources[logicalId(learning.workflow.stateMachine)];
const text = (resource.Properties.DefinitionString["Fn::Join"][1] as unknown[]).map((p) => (typeof p === "string" ? p : "<ref>")).join("");
const definition = JSON.parse(text) as { States: Record<string, Record<string, unknown>> };

describe("learning workflow (synthesized template)", () => {
  it("trains with createTrainingJob.sync: Retry on throttling, Catch to the failure record, a timeout, three channels", () => {
    expectMatch(
      Match.objectLike({
        Type: "Task",
        Resource: Match.stringLikeRegexp("^arn:.*:states:::sagemaker:createTrainingJob\\.sync$"),
        Parameters: Match.objectLike({
          "TrainingJobName.$": "$.plan.jobName",
          InputDataConfig: [
            Match.objectLike({ ChannelName: "train", DataSource: { S3DataSource: Match.objectLike({ "S3Uri.$": "$.plan.trainUri" }) } }),
            Match.objectLike({
              ChannelName: "validation",
              DataSource: { S3DataSource: Match.objectLike({ "S3Uri.$": "$.plan.validationUri" }) },
            }),
            Match.objectLike({ ChannelName: "model", DataSource: { S3DataSource: Match.objectLike({ "S3Uri.$": "$.plan.modelUri" }) } }),
          ],
          StoppingCondition: { MaxRuntimeInSeconds: 6 * 3600 },
          VpcConfig: Match.objectLike({ Subnets: Match.anyValue() }),
        }),
        TimeoutSeconds: 7 * 3600,
        Retry: [Match.objectLike({ ErrorEquals: Match.arrayWith(["SageMaker.AmazonSageMakerException"]), JitterStrategy: "FULL" })],
        Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: S.recordFailure }],
        Next: S.judge,
      }),
      definition.States[S.train],
    );
    // The training role may read only the channels and warm starts and write only the job output.
    const s3 = roleStatements(t, learning.workflow.trainingRole.policy).filter((s) => JSON.stringify(s.Action).includes("s3:"));
    const resources = s3.flatMap((s) => [s.Resource].flat().map((r) => (typeof r === "string" ? r : JSON.stringify(r))));
    for (const r of resources) expect(r).toMatch(/training-channels\/\*|training-output\/\*|ich-models\/v1\/model\.tar\.gz|Studies/);
  });

  it("registers candidates in one model package group and updates the endpoint only through the deploy function", () => {
    t.hasResourceProperties("AWS::SageMaker::ModelPackageGroup", { ModelPackageGroupName: "ich-al-test-hospital-ensemble" });
    const deploy = roleStatements(t, learning.functions.deploy.role.policy);
    const update = deploy.find((s) => JSON.stringify(s.Action).includes("sagemaker:UpdateEndpoint"));
    expect(update?.Resource).toEqual(expect.objectContaining({ "Fn::Join": expect.anything() }));
    expect(joinIntrinsics(update?.Resource)).toMatch(/:endpoint\/ich-al-test-hospital-scoring$/);
    expect(definition.States[S.deploy]).toMatchObject({ Next: S.wait });
    expect(definition.States[S.inService]).toMatchObject({ Type: "Choice", Default: "RecordEndpointFailure" });
    expect(definition.States[S.putInService]).toMatchObject({ Next: S.rescore });
    expect(definition.States[S.rescore]).toMatchObject({ Next: S.done });
    // Every Task's error ends in the failure record.
    for (const state of [S.prepare, S.judge, S.deploy, S.describe, S.putInService, S.rescore]) {
      expect(definition.States[state]?.Catch, state).toEqual([
        { ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: S.recordFailure },
      ]);
    }
  });

  it("is started by its own schedule with { now }, and exists only with a deployed endpoint", () => {
    t.hasResourceProperties("AWS::Scheduler::Schedule", {
      ScheduleExpression: "cron(0 2 * * ? *)",
      Target: Match.objectLike({
        Arn: { Ref: logicalId(learning.workflow.stateMachine) },
        Input: JSON.stringify({ now: "<aws.scheduler.scheduled-time>" }),
      }),
    });
    const { stack: bare, t: bareTemplate } = buildStack({});
    expect(bare.learning).toBeUndefined();
    bareTemplate.resourceCountIs("AWS::SageMaker::ModelPackageGroup", 0);
  });
});
