/**
 * The learning workflow's synthesized definition (infra/learning-workflow.ts), executed by
 * aws-local-stepfunctions with every Lambda Task bound to its real handler on moto server (records
 * table, studies bucket, SageMaker model registry, models and endpoint configs), one test per
 * transition: too few masks, promoted, rejected, a failed job, a second trigger in the week, an endpoint
 * update rolled back.
 *
 * Stand-ins, and why: the training job itself (CreateTrainingJob goes to moto with the definition's
 * resolved parameters; moto completes it at once, so the container's output — evaluation.json in
 * output.tar.gz, written by Python's tarfile — is put where SageMaker puts it; the real `train` entry
 * that writes it is tested in model-container/tests/test_train_annotations.py); UpdateEndpoint and the
 * endpoint status after it (moto 5.2 does not implement UpdateEndpoint — the request is recorded and the
 * status answered from it); the scoring endpoint's InvokeEndpointAsync (recorded). Synthetic records only.
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  CreateModelPackageGroupCommand,
  CreateTrainingJobCommand,
  type CreateTrainingJobCommandInput,
  DescribeEndpointConfigCommand,
  DescribeModelCommand,
  DescribeModelPackageCommand,
  DescribeTrainingJobCommand,
  ListModelPackagesCommand,
  ListTrainingJobsCommand,
  SageMakerClient,
  UpdateEndpointCommand,
} from "@aws-sdk/client-sagemaker";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { DynamoTrainingLedger } from "../../lambdas/adapters/dynamo-training-ledger.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import { S3TrainingObjects } from "../../lambdas/adapters/s3-training-objects.js";
import { SageMakerModelRegistry } from "../../lambdas/adapters/sagemaker-learning.js";
import { LEARNING_WORKFLOW_STATES as S } from "../../lambdas/contracts/learning.js";
import type { StackRecord } from "../../lambdas/contracts/records.js";
import { createDeployCandidateHandler } from "../../lambdas/handlers/deploy-candidate-handler.js";
import { createJudgeCandidateHandler } from "../../lambdas/handlers/judge-candidate-handler.js";
import { createPrepareTrainingHandler } from "../../lambdas/handlers/prepare-training-handler.js";
import { createPutInServiceHandler } from "../../lambdas/handlers/put-in-service-handler.js";
import { createRescoreHandler } from "../../lambdas/handlers/rescore-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { createTrainingFailureHandler } from "../../lambdas/handlers/training-failure-handler.js";
import { LOCAL_AWS } from "../../scripts/lib/moto-server.js";
import { runWorkflow, type TaskBinding } from "../../scripts/lib/workflow-runner.js";
import { buildStack } from "../infra/stack-fixture.js";
import { useLocalAws } from "../support/local-aws.js";
import { pendingStack } from "../support/round-fixtures.js";

const aws = useLocalAws();
const BUCKET = "studies";
const TABLE = "records";
const ENDPOINT = "ich-al-test-hospital-scoring";
const GROUP = "ich-al-test-hospital-ensemble";
const NOW = "2026-12-07T02:00:00Z"; // ISO week 2026-W50
const JOB = "ich-al-test-hospital-2026-w50";
const MIN_MASKS = 6;

// moto 5.2 knows an older list of instance types: the test stack trains on one it accepts.
const { stack, t } = buildStack({
  scoring: { modelArtifact: "s3://ich-models/v1/model.tar.gz" },
  learning: { minNewMasks: MIN_MASKS, instanceType: "ml.p3.2xlarge", hyperparameters: { iterations: 300 } },
});
const machine = t.toJSON().Resources[stack.getLogicalId(stack.learning?.workflow.stateMachine.node.defaultChild as never)];
/** The definition with every intrinsic (ARNs, the image's Fn::Sub) rendered as a placeholder string. */
const definitionText = (machine.Properties.DefinitionString["Fn::Join"][1] as unknown[])
  .map((part) => (typeof part === "string" ? part : "x"))
  .join("");
const definition = JSON.parse(definitionText) as Record<string, unknown>;
const silent = lambdaLogger("test", () => {});
const fn = (name: string) => ({ name, arn: `arn:aws:lambda:us-east-1:123456789012:function:${name}`, timeoutSeconds: 60 });
const python = resolve("model-container/.venv/bin/python");

let s3: S3Client;
let sagemaker: SageMakerClient;
let records: DynamoRecordStore;
let ledger: DynamoTrainingLedger;

interface Scenario {
  /** The candidate's and the current model's pixel / stack AP the "container" reports. */
  candidate: [number, number];
  current: [number, number];
  trainingFails?: boolean;
  /** The endpoint rolls the update back (InService on the previous config). */
  rollBack?: boolean;
}

/** What the stand-ins saw. */
let seen: {
  jobs: CreateTrainingJobCommandInput[];
  updates: { EndpointName?: string; EndpointConfigName?: string; RetainAllVariantProperties?: boolean }[];
  invoked: string[];
};

beforeEach(async () => {
  const endpoint = aws.endpoint;
  s3 = aws.s3();
  sagemaker = new SageMakerClient({ ...LOCAL_AWS, endpoint });
  await createRecordsTable(aws.dynamo(), TABLE);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }));
  records = new DynamoRecordStore(aws.dynamo(), TABLE);
  ledger = new DynamoTrainingLedger(aws.dynamo(), TABLE);
  await records.claimModelInService({ modelVersion: "v1", sequence: 1, since: "2026-11-01T00:00:00Z", source: "first-score" });
  const role = "arn:aws:iam::123456789012:role/endpoint";
  await sagemaker.send(
    new CreateModelCommand({
      ModelName: "initial-model",
      ExecutionRoleArn: role,
      PrimaryContainer: { Image: "img:1", ModelDataUrl: "s3://ich-models/v1/model.tar.gz" },
    }),
  );
  await sagemaker.send(
    new CreateEndpointConfigCommand({
      EndpointConfigName: "initial-config",
      ProductionVariants: [
        { VariantName: "AllTraffic", ModelName: "initial-model", InstanceType: "ml.g4dn.xlarge", InitialInstanceCount: 1 },
      ],
      AsyncInferenceConfig: { OutputConfig: { S3OutputPath: `s3://${BUCKET}/scoring-results/` } },
    }),
  );
  await sagemaker.send(new CreateEndpointCommand({ EndpointName: ENDPOINT, EndpointConfigName: "initial-config" }));
  await sagemaker.send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: GROUP }));
  seen = { jobs: [], updates: [], invoked: [] };
});

/** `n` labeled stacks with accepted masks (completed before NOW) and 3 pending stacks scored by v1. */
async function seed(n: number): Promise<void> {
  for (let i = 0; i < n + 3; i++) {
    const studyId = (i + 1).toString(16).padStart(32, "0");
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `uploads/${studyId}.zip`, Body: `study ${i}` }));
    const base = pendingStack(i, 600);
    const stackId = `${studyId}-s0`;
    const record: StackRecord = {
      ...base,
      stackId,
      source: { bucket: BUCKET, key: `uploads/${studyId}.zip`, versionId: put.VersionId as string },
    };
    if (i < n) {
      const maskKey = `labels/${stackId}/m.nii.gz`;
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: maskKey, Body: `mask ${i}` }));
      Object.assign(record, {
        status: "labeled",
        assignedTo: "amy@x.org",
        completion: {
          activeSeconds: 300,
          annotator: "amy@x.org",
          completedAt: `2026-12-0${1 + (i % 5)}T10:00:00.000Z`,
          source: "page",
          mask: { key: maskKey, labeledVoxels: 10, values: [0, 1], reoriented: false },
        },
      });
    }
    expect(await records.createStack(record)).toBe(true);
  }
}

/** The job's output as SageMaker leaves it: output.tar.gz (evaluation.json inside, tarred by Python) and model.tar.gz. */
async function writeJobOutput(jobName: string, validation: string[], scenario: Scenario): Promise<void> {
  const row = (version: string, [pixel, stack]: [number, number]) => ({
    model_version: version,
    stack_ids: validation,
    metrics: { pixel_ap: pixel, frame_ap: pixel, stack_ap: stack },
  });
  const report = JSON.stringify({
    candidate: row(`v2-${jobName}`, scenario.candidate),
    current: row("v1", scenario.current),
    training_stacks: 4,
  });
  const script =
    "import io, sys, tarfile; data = sys.argv[1].encode(); buf = io.BytesIO()\n" +
    "with tarfile.open(fileobj=buf, mode='w:gz') as tar:\n" +
    "    info = tarfile.TarInfo('evaluation.json'); info.size = len(data); tar.addfile(info, io.BytesIO(data))\n" +
    "sys.stdout.buffer.write(buf.getvalue())";
  const archive = execFileSync(python, ["-c", script, report]);
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `training-output/${jobName}/output/output.tar.gz`, Body: archive }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `training-output/${jobName}/output/model.tar.gz`, Body: "weights" }));
}

function bindings(scenario: Scenario): Record<string, TaskBinding> {
  const objects = new S3TrainingObjects(s3, BUCKET);
  const registry = new SageMakerModelRegistry(sagemaker, GROUP, "img:1");
  // UpdateEndpoint is not in moto: recorded here; every other SageMaker call of deployCandidate goes to moto.
  const deployClient = new SageMakerClient({ ...LOCAL_AWS, endpoint: aws.endpoint });
  const send = deployClient.send.bind(deployClient);
  deployClient.send = (async (command: unknown) => {
    if (command instanceof UpdateEndpointCommand) {
      seen.updates.push(command.input);
      return { EndpointArn: `arn:aws:sagemaker:us-east-1:123456789012:endpoint/${ENDPOINT}` };
    }
    return send(command as never);
  }) as never;

  const failure = createTrainingFailureHandler({ ledger, registry, log: silent });
  return {
    [S.prepare]: {
      fn: fn("prepare"),
      handler: createPrepareTrainingHandler({
        records,
        ledger,
        objects,
        settings: {
          institution: "test-hospital",
          timeZone: "UTC",
          minNewMasks: MIN_MASKS,
          validationShare: 0.34,
          initialModelData: "s3://ich-models/v1/model.tar.gz",
        },
        log: silent,
      }) as never,
    },
    [S.train]: {
      fn: fn("sagemaker"),
      handler: (async (params: CreateTrainingJobCommandInput) => {
        seen.jobs.push(params);
        await sagemaker.send(new CreateTrainingJobCommand(params));
        if (scenario.trainingFails) throw Object.assign(new Error("AlgorithmError: training failed"), { name: "States.TaskFailed" });
        const run = await ledger.get(params.TrainingJobName as string);
        await writeJobOutput(params.TrainingJobName as string, run?.validationStacks ?? [], scenario);
        const job = await sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: params.TrainingJobName }));
        return {
          ...job,
          ModelArtifacts: { S3ModelArtifacts: `s3://${BUCKET}/training-output/${params.TrainingJobName}/output/model.tar.gz` },
          BillableTimeInSeconds: 60,
        };
      }) as never,
    },
    [S.judge]: {
      fn: fn("judge"),
      handler: createJudgeCandidateHandler({ records, ledger, objects, registry, settings: { tolerance: 0.05 }, log: silent }) as never,
    },
    [S.deploy]: {
      fn: fn("deploy"),
      handler: createDeployCandidateHandler({ sagemaker: deployClient, endpointName: ENDPOINT, log: silent }) as never,
    },
    [S.describe]: {
      fn: fn("sagemaker"),
      handler: (async () => ({
        EndpointStatus: "InService",
        EndpointConfigName: scenario.rollBack ? "initial-config" : (seen.updates.at(-1)?.EndpointConfigName ?? "initial-config"),
      })) as never,
    },
    [S.putInService]: { fn: fn("put-in-service"), handler: createPutInServiceHandler({ records, ledger, log: silent }) as never },
    [S.rescore]: {
      fn: fn("rescore"),
      handler: createRescoreHandler({
        records,
        objects: { putJson: async (key: string) => void seen.invoked.push(key) } as never,
        scoring: { invokeAsync: async () => ({ outputLocation: "s3://x/y", inferenceId: "i" }) } as never,
        config: { studiesBucket: BUCKET, topK: 200, thresholds: [0.3, 0.5, 0.7], allowedPrivateCreators: [] },
        log: silent,
      }) as never,
    },
    [S.recordFailure]: { fn: fn("failure"), handler: failure as never },
    RecordEndpointFailure: { fn: fn("failure"), handler: failure as never },
  };
}

const run = (scenario: Scenario, name = "learning-1") =>
  runWorkflow(definition, bindings(scenario), {
    name,
    now: NOW,
    stateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:learning",
    waitTimeOverrides: { [S.wait]: 0 },
  });

describe("learning workflow on moto (synthesized definition, real handlers)", () => {
  it("trains nothing while fewer than N masks are new", async () => {
    await seed(MIN_MASKS - 1);
    const execution = await run({ candidate: [0.5, 0.9], current: [0.4, 0.8] });
    expect(execution.status).toBe("SUCCEEDED");
    expect(execution.statesEntered).toEqual([S.prepare, S.enough, S.nothingToTrain]);
    expect(execution.output?.plan).toMatchObject({ train: false, newMasks: MIN_MASKS - 1, required: MIN_MASKS });
    expect((await sagemaker.send(new ListTrainingJobsCommand({}))).TrainingJobSummaries).toEqual([]);
  });

  it("promotes a better candidate: channels, job, Approved package, new Model and EndpointConfig, endpoint updated, in service, pool re-scored", async () => {
    await seed(MIN_MASKS + 2);
    const execution = await run({ candidate: [0.5, 0.9], current: [0.4, 0.8] });
    expect(execution.error).toBeUndefined();
    expect(execution.statesEntered).toEqual([
      S.prepare,
      S.enough,
      S.train,
      S.judge,
      S.promote,
      S.deploy,
      S.wait,
      S.describe,
      S.inService,
      S.putInService,
      S.rescore,
      S.done,
    ]);
    // The job: the week's name, three channels under this job's prefix, the warm start the model in service.
    const [job] = seen.jobs;
    expect(job?.TrainingJobName).toBe(JOB);
    expect(job?.InputDataConfig?.map((c) => [c.ChannelName, c.DataSource?.S3DataSource?.S3Uri])).toEqual([
      ["train", `s3://${BUCKET}/training-channels/${JOB}/train/`],
      ["validation", `s3://${BUCKET}/training-channels/${JOB}/validation/`],
      ["model", "s3://ich-models/v1/model.tar.gz"],
    ]);
    expect(job?.HyperParameters).toEqual({ iterations: "300" });
    expect((await sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: JOB }))).TrainingJobName).toBe(JOB);
    // Every labeled stack is in exactly one channel with its study version, mask and stack.json.
    const runRecord = await ledger.get(JOB);
    expect(runRecord?.status).toBe("promoted");
    const all = [...(runRecord?.trainStacks ?? []), ...(runRecord?.validationStacks ?? [])].sort();
    expect(all).toHaveLength(MIN_MASKS + 2);
    expect(runRecord?.validationStacks.length).toBeGreaterThan(0);
    for (const stackId of runRecord?.trainStacks ?? []) {
      const body = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `training-channels/${JOB}/train/${stackId}/stack.json` }));
      expect(JSON.parse(await (body.Body?.transformToString() ?? ""))).toEqual({ stackId, seriesIndex: 0 });
      await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `training-channels/${JOB}/train/${stackId}/study.zip` }));
      await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `training-channels/${JOB}/train/${stackId}/mask.nii.gz` }));
    }
    // Registry: one package, Approved, its metrics JSON beside it.
    const packages = (await sagemaker.send(new ListModelPackagesCommand({ ModelPackageGroupName: GROUP }))).ModelPackageSummaryList ?? [];
    expect(packages.map((p) => p.ModelApprovalStatus)).toEqual(["Approved"]);
    const described = await sagemaker.send(new DescribeModelPackageCommand({ ModelPackageName: packages[0]?.ModelPackageArn }));
    expect(described.ModelMetrics?.ModelQuality?.Statistics?.S3Uri).toBe(`s3://${BUCKET}/model-evaluations/${JOB}.json`);
    const evaluation = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `model-evaluations/${JOB}.json` }));
    expect(JSON.parse(await (evaluation.Body?.transformToString() ?? ""))).toMatchObject({
      promote: true,
      candidate: { pixelAp: 0.5 },
      current: { pixelAp: 0.4 },
    });
    // Deployment: copies of the endpoint's Model and EndpointConfig with the new weights, update retaining the instance count.
    const model = await sagemaker.send(new DescribeModelCommand({ ModelName: JOB }));
    expect(model.PrimaryContainer).toMatchObject({
      Image: "img:1",
      ModelDataUrl: `s3://${BUCKET}/training-output/${JOB}/output/model.tar.gz`,
    });
    const config = await sagemaker.send(new DescribeEndpointConfigCommand({ EndpointConfigName: JOB }));
    expect(config.ProductionVariants?.[0]).toMatchObject({ VariantName: "AllTraffic", ModelName: JOB, InstanceType: "ml.g4dn.xlarge" });
    expect(config.AsyncInferenceConfig?.OutputConfig?.S3OutputPath).toBe(`s3://${BUCKET}/scoring-results/`);
    expect(seen.updates).toEqual([{ EndpointName: ENDPOINT, EndpointConfigName: JOB, RetainAllVariantProperties: true }]);
    // In service, and every pending stack's study asked for again under the new version.
    expect(await records.getModelInService()).toMatchObject({
      modelVersion: `v2-${JOB}`,
      sequence: 2,
      source: "promotion",
      trainingJob: JOB,
    });
    expect(execution.output?.rescore).toMatchObject({ modelVersion: `v2-${JOB}`, studies: 3, stacks: 3 });
  });

  it("keeps the model in service when the candidate is worse by more than the tolerance, and registers it Rejected", async () => {
    await seed(MIN_MASKS);
    const execution = await run({ candidate: [0.2, 0.9], current: [0.4, 0.9] });
    expect(execution.statesEntered.slice(-2)).toEqual([S.promote, S.rejected]);
    const packages = (await sagemaker.send(new ListModelPackagesCommand({ ModelPackageGroupName: GROUP }))).ModelPackageSummaryList ?? [];
    expect(packages.map((p) => p.ModelApprovalStatus)).toEqual(["Rejected"]);
    expect(await ledger.get(JOB)).toMatchObject({ status: "rejected", candidate: { pixelAp: 0.2 }, current: { pixelAp: 0.4 } });
    expect((await ledger.get(JOB))?.reasons?.join(" ")).toMatch(/pixel AP 0\.200 is below the current 0\.400/);
    expect(await records.getModelInService()).toMatchObject({ modelVersion: "v1", sequence: 1 });
    expect(seen.updates).toEqual([]);
  });

  it("records a failed training job and leaves the model in service", async () => {
    await seed(MIN_MASKS);
    const execution = await run({ candidate: [0.5, 0.9], current: [0.4, 0.8], trainingFails: true });
    expect(execution.status).toBe("FAILED");
    expect(execution.statesEntered.slice(-2)).toEqual([S.recordFailure, S.failed]);
    expect(await ledger.get(JOB)).toMatchObject({ status: "failed", error: { Error: "States.TaskFailed" } });
    expect(execution.retries[S.recordFailure]).toBeUndefined();
    expect(await records.getModelInService()).toMatchObject({ modelVersion: "v1", sequence: 1 });
  });

  it("starts one job per week: a second trigger in the same week trains nothing", async () => {
    await seed(MIN_MASKS);
    await run({ candidate: [0.2, 0.9], current: [0.4, 0.9] }, "learning-1");
    const second = await run({ candidate: [0.5, 0.9], current: [0.4, 0.8] }, "learning-2");
    expect(second.statesEntered).toEqual([S.prepare, S.enough, S.nothingToTrain]);
    expect(String((second.output?.plan as { reason?: string } | undefined)?.reason)).toMatch(/started this week already/);
    expect((await sagemaker.send(new ListTrainingJobsCommand({}))).TrainingJobSummaries).toHaveLength(1);
  });

  it("rejects the approved package and keeps the model in service when the endpoint rolls the update back", async () => {
    await seed(MIN_MASKS);
    const execution = await run({ candidate: [0.5, 0.9], current: [0.4, 0.8], rollBack: true });
    expect(execution.status).toBe("FAILED");
    expect(execution.statesEntered.slice(-3)).toEqual([S.inService, "RecordEndpointFailure", "EndpointUpdateFailed"]);
    const packages = (await sagemaker.send(new ListModelPackagesCommand({ ModelPackageGroupName: GROUP }))).ModelPackageSummaryList ?? [];
    expect(packages.map((p) => p.ModelApprovalStatus)).toEqual(["Rejected"]);
    expect(await ledger.get(JOB)).toMatchObject({ status: "failed", error: { Error: "EndpointUpdateFailed" } });
    expect(await records.getModelInService()).toMatchObject({ modelVersion: "v1", sequence: 1 });
  });
});
