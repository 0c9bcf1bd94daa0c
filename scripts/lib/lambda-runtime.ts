/**
 * What the Lambda service provides around a handler, for handlers run in-process by the local run:
 * the context object and the function timeout. Nothing about the handler itself is imitated.
 */
import { randomUUID } from "node:crypto";

/** A Lambda handler as the runtime calls it. */
export type LambdaHandler = (event: unknown, context: LambdaContext) => Promise<unknown>;

export interface LambdaContext {
  callbackWaitsForEmptyEventLoop: boolean;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  getRemainingTimeInMillis(): number;
  done(): void;
  fail(): void;
  succeed(): void;
}

/** The invoked function: its name, ARN and timeout (from the template). */
export interface FunctionIdentity {
  name: string;
  arn: string;
  timeoutSeconds: number;
}

export class LambdaTimeoutError extends Error {
  override readonly name = "Sandbox.Timedout";
}

/** Invokes `handler` as Lambda would: a fresh context, and the invocation fails after the function's timeout. */
export async function invokeLambda(handler: LambdaHandler, event: unknown, fn: FunctionIdentity): Promise<unknown> {
  const deadline = Date.now() + fn.timeoutSeconds * 1000;
  const context: LambdaContext = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.name,
    functionVersion: "$LATEST",
    invokedFunctionArn: fn.arn,
    memoryLimitInMB: "1024",
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn.name}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LambdaTimeoutError(`Task timed out after ${fn.timeoutSeconds} seconds`)), fn.timeoutSeconds * 1000);
  });
  try {
    return await Promise.race([handler(event, context), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
