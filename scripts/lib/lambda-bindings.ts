/**
 * The real handlers, created in-process from their own composition roots (`xDepsFromEnvironment`)
 * with the environment the synthesized template gives their Lambda function, plus AWS_ENDPOINT_URL
 * pointing every SDK client at the local emulator, and the run's log file as the sink of their Powertools
 * log and metric lines (stdout in Lambda). One dependency is swapped, for a real one: ingest's and
 * rescore's SageMaker runtime client talks to the local model container instead of the emulator (moto's
 * SageMaker runtime only returns canned answers). No handler logic is repeated here.
 *
 * A handler module builds `handler` from `process.env` when imported (as in Lambda), so each module is
 * imported with its function's environment in place; the runner then creates its own instance with
 * `createXHandler(xDepsFromEnvironment(env, sink))`.
 */
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { SageMakerScoringEndpoint } from "../../lambdas/adapters/sagemaker-scoring-endpoint.js";
import type { LambdaHandler } from "./lambda-runtime.js";
import { LOCAL_AWS } from "./moto-server.js";

/** Handler modules under lambdas/handlers/, with their factory and composition-root exports. */
export const HANDLER_MODULES = {
  ingest: { file: "ingest-handler.js", create: "createIngestHandler", deps: "ingestDepsFromEnvironment" },
  recordScore: { file: "record-score-handler.js", create: "createRecordScoreHandler", deps: "recordScoreDepsFromEnvironment" },
  refit: { file: "refit-handler.js", create: "createRefitHandler", deps: "refitDepsFromEnvironment" },
  select: { file: "select-handler.js", create: "createSelectHandler", deps: "selectDepsFromEnvironment" },
  notify: { file: "notify-handler.js", create: "createNotifyHandler", deps: "notifyDepsFromEnvironment" },
  complete: { file: "complete-handler.js", create: "createCompleteHandler", deps: "completeDepsFromEnvironment" },
  roundFailure: { file: "round-failure-handler.js", create: "createRoundFailureHandler", deps: "roundFailureDepsFromEnvironment" },
  rescore: { file: "rescore-handler.js", create: "createRescoreHandler", deps: "rescoreDepsFromEnvironment" },
} as const;
export type HandlerKind = keyof typeof HANDLER_MODULES;

/** The handler module is missing or does not export what the composition pattern promises. */
export class HandlerBindingError extends Error {
  override readonly name = "HandlerBindingError";
}

export interface BindingOptions {
  /** The emulator endpoint (AWS_ENDPOINT_URL of every handler). */
  awsEndpoint: string;
  /** Where handler log lines go (one JSON line each). */
  writeLog: (line: string) => void;
  /** The model server endpoint for ingest's SageMaker runtime client. */
  modelServerEndpoint?: string;
}

/** Sets what every handler needs from the Lambda runtime environment (region, credentials) in this process. */
export function setLambdaRuntimeEnvironment(): void {
  Object.assign(process.env, {
    AWS_REGION: LOCAL_AWS.region,
    AWS_DEFAULT_REGION: LOCAL_AWS.region,
    AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  });
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

/** Imports the handler module of `kind` with `environment` and creates the handler from its composition root. */
export async function bindHandler(kind: HandlerKind, environment: Record<string, string>, options: BindingOptions): Promise<LambdaHandler> {
  const spec = HANDLER_MODULES[kind];
  const env: Record<string, string> = { ...environment, AWS_ENDPOINT_URL: options.awsEndpoint };
  const saved = { ...process.env };
  Object.assign(process.env, env);
  let module: Record<string, unknown>;
  try {
    module = (await import(new URL(`../../lambdas/handlers/${spec.file}`, import.meta.url).href)) as Record<string, unknown>;
  } catch (error) {
    throw new HandlerBindingError(`lambdas/handlers/${spec.file} could not be loaded: ${(error as Error).message}`, { cause: error });
  } finally {
    for (const key of Object.keys(env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
  const create = module[spec.create];
  const depsFromEnvironment = module[spec.deps];
  if (typeof create !== "function" || typeof depsFromEnvironment !== "function") {
    throw new HandlerBindingError(`lambdas/handlers/${spec.file} must export ${spec.create} and ${spec.deps}`);
  }
  // The handler's own Powertools log and metric lines go to the run's log file (in AWS: the function's log group).
  const deps = { ...(depsFromEnvironment(env, options.writeLog) as Record<string, unknown>) };
  if (kind === "ingest" || kind === "rescore") {
    if (!options.modelServerEndpoint) throw new HandlerBindingError(`${kind} needs the model server endpoint`);
    const endpointName = env.SCORING_ENDPOINT_NAME;
    if (!endpointName) throw new HandlerBindingError(`the ${kind} function's environment has no SCORING_ENDPOINT_NAME`);
    deps.scoring = new SageMakerScoringEndpoint(
      new SageMakerRuntimeClient({ ...LOCAL_AWS, endpoint: options.modelServerEndpoint }),
      endpointName,
    );
  }
  const handler = (create as (deps: unknown) => (event: unknown, context: unknown) => Promise<unknown>)(deps);
  return (event, context) => handler(event, context);
}
