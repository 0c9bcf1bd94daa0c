/**
 * Notify Lambda: the `NotifyAnnotators` Task of the weekly workflow (LambdaInvoke, payloadResponseOnly).
 *
 * Input: `{ now, roundId }` (contracts/weekly-workflow.ts NotifyInputSchema; InvalidNotifyInputError).
 * Shares the completed round's stacks among ANNOTATOR_EMAILS (stored once on the round and on each
 * stack as `assignedTo`) and sends each annotator one worklist e-mail per round — also when the step
 * or the whole workflow is re-run: a per-annotator mark (`ROUND#<id>`/`NOTIFY#<annotator>`) is
 * claimed before sending (domain/notify.ts documents the at-most-once window).
 * Output: `{ roundId, sent, alreadyNotified, annotators }` (counts).
 * Errors: RoundNotReadyError (round missing / not completed), SES errors (claim released first) —
 * rethrown for Retry / Catch. Logs carry round ids and counts, never addresses or object keys.
 * Environment: contracts/env.ts NotifyEnvSchema, parsed at cold start (EnvironmentError).
 */
import { randomUUID } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SESv2Client } from "@aws-sdk/client-sesv2";
import { DynamoRecordStore } from "../adapters/dynamo-record-store.js";
import { DynamoTimeModelStore } from "../adapters/dynamo-time-model-store.js";
import { SesMailer } from "../adapters/ses-mailer.js";
import { NotifyEnvSchema, parseEnvironment } from "../contracts/env.js";
import { NotifyInputSchema } from "../contracts/weekly-workflow.js";
import { type NotifyDeps, type NotifyOutput, notifyAnnotators } from "../domain/notify.js";
import { jsonLogger, type Logger } from "./shared/logger.js";

/** The state input is not `{ now, roundId }`. */
export class InvalidNotifyInputError extends Error {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`notify: invalid input: ${detail}`, options);
    this.name = "InvalidNotifyInputError";
  }
}

export type NotifyHandlerDeps = Omit<NotifyDeps, "log"> & { readonly log: Logger };

export function createNotifyHandler(deps: NotifyHandlerDeps): (event: unknown) => Promise<NotifyOutput> {
  return async (event) => {
    const parsed = NotifyInputSchema.safeParse(event);
    if (!parsed.success) {
      throw new InvalidNotifyInputError(parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; "), {
        cause: parsed.error,
      });
    }
    try {
      return await notifyAnnotators(parsed.data.roundId, { ...deps, log: (level, message, fields) => deps.log[level](message, fields) });
    } catch (error) {
      deps.log.error("notify failed", { roundId: parsed.data.roundId, code: error instanceof Error ? error.name : "Error" });
      throw error;
    }
  };
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function notifyDepsFromEnvironment(env: Record<string, string | undefined>): NotifyHandlerDeps {
  const config = parseEnvironment("notify", NotifyEnvSchema, env);
  const endpoint = config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {};
  const dynamo = new DynamoDBClient(endpoint);
  return {
    records: new DynamoRecordStore(dynamo, config.TABLE_NAME),
    timeModels: new DynamoTimeModelStore(dynamo, config.TABLE_NAME),
    mailer: new SesMailer(new SESv2Client(endpoint)),
    settings: {
      sender: config.SENDER_ADDRESS,
      annotators: config.ANNOTATOR_EMAILS,
      budgetSeconds: config.WEEKLY_BUDGET_HOURS * 3600,
      worklistUrl: config.WORKLIST_URL,
    },
    clock: () => new Date().toISOString(),
    newToken: randomUUID,
    log: jsonLogger({ lambda: "notify" }),
  };
}

export const handler = createNotifyHandler(notifyDepsFromEnvironment(process.env));
