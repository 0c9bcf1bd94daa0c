/**
 * DeployCandidate: a promoted candidate onto the asynchronous endpoint as a new Model and EndpointConfig
 * (copies of the endpoint's with the new model data) and UpdateEndpoint with the variant's properties
 * retained (adapters/sagemaker-learning.ts deployCandidate). Input `{ jobName, modelData }`; output
 * Deployment. The workflow then waits until the endpoint is InService again.
 * Environment: contracts/env.ts DeployCandidateEnvSchema.
 */
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { deployCandidate } from "../adapters/sagemaker-learning.js";
import { DeployCandidateEnvSchema, parseEnvironment } from "../contracts/env.js";
import { DeployInputSchema, type Deployment } from "../contracts/learning.js";
import { learningStep } from "./shared/learning-step.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

export function createDeployCandidateHandler(deps: { sagemaker: SageMakerClient; endpointName: string; log: Logger }) {
  return learningStep("deploy-candidate", DeployInputSchema, deps.log, async (input): Promise<Deployment> => {
    const deployment = await deployCandidate(deps.sagemaker, deps.endpointName, input);
    deps.log.info("endpoint update started", { ...deployment });
    return deployment;
  });
}

export function deployCandidateDepsFromEnvironment(env: Record<string, string | undefined>) {
  const config = parseEnvironment("deploy-candidate", DeployCandidateEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  return {
    sagemaker: new SageMakerClient(endpoint),
    endpointName: config.SCORING_ENDPOINT_NAME,
    log: jsonLogger({ lambda: "deploy-candidate" }),
  };
}

export const handler = createDeployCandidateHandler(deployCandidateDepsFromEnvironment(process.env));
