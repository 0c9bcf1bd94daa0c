/**
 * SageMaker for the learning loop through `@aws-sdk/client-sagemaker`: the model registry (domain/learning.ts
 * ModelRegistry) and the deployment of a promoted candidate onto the asynchronous endpoint.
 *
 * Deployment follows "Update endpoints that use auto scaling" (SageMaker developer guide): the endpoint's
 * current Model and EndpointConfig are described and copied with only the model data changed — same
 * image, role, network, variant name, instance type, async output and KMS key — and the endpoint is
 * updated with RetainAllVariantProperties, so the instance count autoscaling set (zero when idle) is kept.
 * Changing only a variant's model is the one update SageMaker allows while the variant is a scalable
 * target, so the scale-to-zero policy stays registered. Names are the job's; a repeat finds them and
 * goes on (idempotent).
 */
import {
  CreateEndpointConfigCommand,
  CreateModelCommand,
  CreateModelPackageCommand,
  DescribeEndpointCommand,
  DescribeEndpointConfigCommand,
  DescribeModelCommand,
  type SageMakerClient,
  UpdateEndpointCommand,
  UpdateModelPackageCommand,
} from "@aws-sdk/client-sagemaker";
import type { Deployment } from "../contracts/learning.js";
import type { ModelRegistry } from "../domain/learning.js";

const alreadyExists = (error: unknown) =>
  error instanceof Error &&
  /already exist/i.test(error.message) &&
  (error.name === "ValidationException" || error.name === "ResourceInUse");

export class SageMakerModelRegistry implements ModelRegistry {
  constructor(
    private readonly sagemaker: SageMakerClient,
    private readonly groupName: string,
    /** The model container image the packages name (the endpoint's). */
    private readonly image: string,
  ) {}

  async register(candidate: Parameters<ModelRegistry["register"]>[0]): Promise<string> {
    const out = await this.sagemaker.send(
      new CreateModelPackageCommand({
        ModelPackageGroupName: this.groupName,
        ModelPackageDescription: candidate.description,
        ModelApprovalStatus: candidate.approved ? "Approved" : "Rejected",
        InferenceSpecification: {
          Containers: [{ Image: this.image, ModelDataUrl: candidate.modelData }],
          SupportedContentTypes: ["application/json"],
          SupportedResponseMIMETypes: ["application/json"],
        },
        ModelMetrics: { ModelQuality: { Statistics: { ContentType: "application/json", S3Uri: candidate.evaluationUri } } },
        CustomerMetadataProperties: { modelVersion: candidate.modelVersion, trainingJob: candidate.jobName },
        ClientToken: candidate.jobName,
      }),
    );
    if (!out.ModelPackageArn) throw new Error(`CreateModelPackage for ${candidate.jobName} returned no ARN`);
    return out.ModelPackageArn;
  }

  reject(modelPackageArn: string, reason: string): Promise<void> {
    return rejectModelPackage(this.sagemaker, modelPackageArn, reason);
  }
}

/** Sets a model package to Rejected with the reason (any group: the ARN names it). */
export async function rejectModelPackage(sagemaker: SageMakerClient, modelPackageArn: string, reason: string): Promise<void> {
  await sagemaker.send(
    new UpdateModelPackageCommand({
      ModelPackageArn: modelPackageArn,
      ModelApprovalStatus: "Rejected",
      ApprovalDescription: reason.slice(0, 1000),
    }),
  );
}

/** Puts `modelData` on the endpoint as a new Model + EndpointConfig (copies of the current ones) and updates it. */
export async function deployCandidate(
  sagemaker: SageMakerClient,
  endpointName: string,
  candidate: { jobName: string; modelData: string },
): Promise<Deployment> {
  const endpoint = await sagemaker.send(new DescribeEndpointCommand({ EndpointName: endpointName }));
  const previous = endpoint.EndpointConfigName;
  if (!previous) throw new Error(`endpoint ${endpointName} has no endpoint config`);
  const name = candidate.jobName;
  if (previous === name) return { modelName: name, endpointConfigName: name, previousEndpointConfigName: previous };
  const config = await sagemaker.send(new DescribeEndpointConfigCommand({ EndpointConfigName: previous }));
  const variants = config.ProductionVariants ?? [];
  if (variants.length !== 1 || !variants[0]?.ModelName) {
    throw new Error(`endpoint config ${previous} has ${variants.length} variants; the learning loop deploys onto exactly one`);
  }
  const variant = variants[0];
  const model = await sagemaker.send(new DescribeModelCommand({ ModelName: variant.ModelName }));
  if (!model.PrimaryContainer?.Image) throw new Error(`model ${variant.ModelName} has no primary container image`);
  await ignoreExisting(() =>
    sagemaker.send(
      new CreateModelCommand({
        ModelName: name,
        ExecutionRoleArn: model.ExecutionRoleArn,
        PrimaryContainer: {
          Image: model.PrimaryContainer?.Image,
          ModelDataUrl: candidate.modelData,
          ...(model.PrimaryContainer?.Environment ? { Environment: model.PrimaryContainer.Environment } : {}),
        },
        ...(model.VpcConfig ? { VpcConfig: model.VpcConfig } : {}),
        ...(model.EnableNetworkIsolation !== undefined ? { EnableNetworkIsolation: model.EnableNetworkIsolation } : {}),
      }),
    ),
  );
  await ignoreExisting(() =>
    sagemaker.send(
      new CreateEndpointConfigCommand({
        EndpointConfigName: name,
        ProductionVariants: [{ ...variant, ModelName: name }],
        ...(config.AsyncInferenceConfig ? { AsyncInferenceConfig: config.AsyncInferenceConfig } : {}),
        ...(config.KmsKeyId ? { KmsKeyId: config.KmsKeyId } : {}),
        ...(config.DataCaptureConfig?.DestinationS3Uri ? { DataCaptureConfig: config.DataCaptureConfig } : {}),
      }),
    ),
  );
  await sagemaker.send(
    new UpdateEndpointCommand({ EndpointName: endpointName, EndpointConfigName: name, RetainAllVariantProperties: true }),
  );
  return { modelName: name, endpointConfigName: name, previousEndpointConfigName: previous };
}

async function ignoreExisting(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (error) {
    if (!alreadyExists(error)) throw error;
  }
}
