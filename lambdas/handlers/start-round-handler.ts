/**
 * Start-round Lambda: the weekly EventBridge Scheduler target that starts the selection workflow.
 *
 * Event: `{ "scheduledTime": "<ISO timestamp>" }` (the schedule's input passes
 * `<aws.scheduler.scheduled-time>`), parsed with zod (InvalidStartRoundEventError). It starts the state
 * machine (STATE_MACHINE_ARN) with execution name `select-<ISO week of scheduledTime>` — the week read in
 * the schedule's time zone (SCHEDULE_TIMEZONE), as the schedule itself is — and input
 * `{ now: scheduledTime }` (contracts/weekly-workflow.ts). A repeated trigger in the same ISO week finds
 * the name taken and is a no-op (`started: false`), not an error.
 * Output: `{ executionName, started, executionArn? }`.
 * Errors other than an existing execution propagate (the scheduler retries, then its DLQ); logs carry
 * the execution name only.
 * Environment: contracts/env.ts StartRoundEnvSchema, parsed at cold start (EnvironmentError).
 */
import { SFNClient } from "@aws-sdk/client-sfn";
import middy from "@middy/core";
import { z } from "zod";
import { SfnWorkflowStarter } from "../adapters/sfn-workflow-starter.js";
import { parseEnvironment, StartRoundEnvSchema } from "../contracts/env.js";
import { type WorkflowStart, type WorkflowStarter, weeklyExecution } from "../domain/workflow-starter.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

/** The scheduler's input: the invocation's scheduled time (`<aws.scheduler.scheduled-time>`). */
export const StartRoundEventSchema = z.object({ scheduledTime: z.iso.datetime({ offset: true }) });
export type StartRoundEvent = z.infer<typeof StartRoundEventSchema>;

/** The event is not `{ scheduledTime: ISO timestamp }`. */
export class InvalidStartRoundEventError extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`start-round: invalid event: ${detail}`, options);
    this.name = "InvalidStartRoundEventError";
  }
}

export interface StartRoundHandlerDeps {
  readonly workflow: WorkflowStarter;
  /** The schedule's IANA time zone: the execution is named after the ISO week of scheduledTime there. */
  readonly timeZone: string;
  readonly log: Logger;
}

export function createStartRoundHandler(deps: StartRoundHandlerDeps) {
  return middy<unknown, WorkflowStart>().handler(async (event) => {
    const parsed = StartRoundEventSchema.safeParse(event);
    if (!parsed.success) {
      throw new InvalidStartRoundEventError(parsed.error.issues.map((i) => `${i.path.join(".") || "(event)"}: ${i.message}`).join("; "), {
        cause: parsed.error,
      });
    }
    const { executionName, input } = weeklyExecution(parsed.data.scheduledTime, deps.timeZone);
    try {
      const result = await deps.workflow.start(executionName, input);
      if (result.started) deps.log.info("round started", { executionName });
      else deps.log.info("round already started this week; nothing to do", { executionName });
      return result;
    } catch (error) {
      deps.log.error("round start failed", { executionName, code: error instanceof Error ? error.name : "Error" });
      throw error;
    }
  });
}

/** Composition root: environment parsed and the client created once per execution environment. */
export function startRoundDepsFromEnvironment(env: Record<string, string | undefined>): StartRoundHandlerDeps {
  const config = parseEnvironment("start-round", StartRoundEnvSchema, env);
  const sfn = new SFNClient(config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {});
  return {
    workflow: new SfnWorkflowStarter(sfn, config.STATE_MACHINE_ARN),
    timeZone: config.SCHEDULE_TIMEZONE,
    log: jsonLogger({ lambda: "start-round" }),
  };
}

export const handler = createStartRoundHandler(startRoundDepsFromEnvironment(process.env));
