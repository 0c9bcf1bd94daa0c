/**
 * DeployCandidate: a promoted candidate onto the asynchronous endpoint as a new Model and EndpointConfig
 * (copies of the endpoint's with the new model data) and UpdateEndpoint with the variant's properties
 * retained (adapters/sagemaker-learning.ts deployCandidate). Input `{ jobName, modelData }`; output
 * Deployment. The workflow then waits until the endpoint is InService again.
 * Environment: contracts/env.ts DeployCandidateEnvSchema.
 */
import type { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { deployCandidate } from "../adapters/sagemaker-learning.js";
import { DeployCandidateEnvSchema, parseEnvironment } from "../contracts/env.js";
import { DeployInputSchema, type Deployment } from "../contracts/learning.js";
import { type LineSink, type Logger, lambdaHandler, lambdaLogger } from "./shared/lambda-handler.js";
import { sagemakerClient } from "./shared/learning-ports.js";

export function createDeployCandidateHandler(deps: { sagemaker: SageMakerClient; endpointName: string; log: Logger }) {
  return lambdaHandler({ ...deps, name: "deploy-candidate", input: DeployInputSchema }, async (input): Promise<Deployment> => {
    const deployment = await deployCandidate(deps.sagemaker, deps.endpointName, input);
    deps.log.info("endpoint update started", { ...deployment });
    return deployment;
  });
}

export function deployCandidateDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink) {
  const config = parseEnvironment("deploy-candidate", DeployCandidateEnvSchema, env);
  return {
    sagemaker: sagemakerClient(config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {}),
    endpointName: config.SCORING_ENDPOINT_NAME,
    log: lambdaLogger("deploy-candidate", sink),
  };
}

export const handler = createDeployCandidateHandler(deployCandidateDepsFromEnvironment(process.env));
