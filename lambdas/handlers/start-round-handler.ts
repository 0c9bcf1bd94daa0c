/**
 * Start-round Lambda, the weekly EventBridge Scheduler target: `{ scheduledTime }` → the weekly workflow started
 * once per ISO week (domain/workflow-starter.ts names the execution; a repeat is a no-op).
 * Environment: contracts/env.ts StartRoundEnvSchema.
 */
import { SFNClient } from "@aws-sdk/client-sfn";
import { z } from "zod";
import { SfnWorkflowStarter } from "../adapters/sfn-workflow-starter.js";
import { parseEnvironment, StartRoundEnvSchema } from "../contracts/env.js";
import { type WorkflowStart, type WorkflowStarter, weeklyExecution } from "../domain/workflow-starter.js";
import { type LineSink, type Logger, lambdaHandler, lambdaLogger } from "./shared/lambda-handler.js";

/** The scheduler's input: the invocation's scheduled time (`<aws.scheduler.scheduled-time>`). */
export const StartRoundEventSchema = z.object({ scheduledTime: z.iso.datetime({ offset: true }) });
export type StartRoundEvent = z.infer<typeof StartRoundEventSchema>;

export interface StartRoundHandlerDeps {
  readonly workflow: WorkflowStarter;
  /** The schedule's IANA time zone: the execution is named after the ISO week of scheduledTime there. */
  readonly timeZone: string;
  readonly log: Logger;
}

export function createStartRoundHandler(deps: StartRoundHandlerDeps) {
  return lambdaHandler({ ...deps, name: "start-round", input: StartRoundEventSchema }, async (event): Promise<WorkflowStart> => {
    const { executionName, input } = weeklyExecution(event.scheduledTime, deps.timeZone);
    deps.log.appendKeys?.({ executionName }); // on every later line of this invocation, the failure's too
    const result = await deps.workflow.start(executionName, input);
    if (result.started) deps.log.info("round started", { executionName });
    else deps.log.info("round already started this week; nothing to do", { executionName });
    return result;
  });
}

/** Composition root: environment parsed and the client created once per execution environment. */
export function startRoundDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): StartRoundHandlerDeps {
  const config = parseEnvironment("start-round", StartRoundEnvSchema, env);
  const sfn = new SFNClient(config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {});
  return {
    workflow: new SfnWorkflowStarter(sfn, config.STATE_MACHINE_ARN),
    timeZone: config.SCHEDULE_TIMEZONE,
    log: lambdaLogger("start-round", sink),
  };
}

export const handler = createStartRoundHandler(startRoundDepsFromEnvironment(process.env));
