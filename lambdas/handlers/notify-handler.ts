/**
 * Notify Lambda, `NotifyAnnotators` in the weekly workflow: input `{ now, roundId }` (contracts/weekly-workflow.ts);
 * the round's stacks shared among the annotators, one e-mail each per round (domain/notify.ts argues the
 * at-most-once window). Logs carry round ids and counts, never addresses.
 * Environment: contracts/env.ts NotifyEnvSchema.
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
import { type LineSink, type Logger, lambdaHandler, lambdaLogger } from "./shared/lambda-handler.js";

export type NotifyHandlerDeps = Omit<NotifyDeps, "log"> & { readonly log: Logger };

export function createNotifyHandler(deps: NotifyHandlerDeps) {
  return lambdaHandler(
    { ...deps, name: "notify", input: NotifyInputSchema },
    (input): Promise<NotifyOutput> =>
      notifyAnnotators(input.roundId, { ...deps, log: (level, message, fields) => deps.log[level](message, fields) }),
  );
}

/** Composition root: environment parsed and clients created once per execution environment. */
export function notifyDepsFromEnvironment(env: Record<string, string | undefined>, sink?: LineSink): NotifyHandlerDeps {
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
    log: lambdaLogger("notify", sink),
  };
}

export const handler = createNotifyHandler(notifyDepsFromEnvironment(process.env));
