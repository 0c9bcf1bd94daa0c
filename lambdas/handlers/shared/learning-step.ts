/**
 * One Task of the learning workflow (contracts/learning.ts) as a Lambda handler: the state's payload
 * parsed with its zod schema (InvalidLearningInputError naming each bad field), the step run, its
 * failure logged by error name only and rethrown so that the state machine's Retry / Catch see it.
 */
import type { z } from "zod";
import type { Logger } from "./logger.js";

export class InvalidLearningInputError extends Error {
  constructor(step: string, detail: string, options?: { cause?: unknown }) {
    super(`${step}: invalid input: ${detail}`, options);
    this.name = "InvalidLearningInputError";
  }
}

export function learningStep<S extends z.ZodType, O>(
  step: string,
  schema: S,
  log: Logger,
  run: (input: z.infer<S>) => Promise<O>,
): (event: unknown) => Promise<O> {
  return async (event) => {
    const parsed = schema.safeParse(event);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; ");
      throw new InvalidLearningInputError(step, detail, { cause: parsed.error });
    }
    try {
      return await run(parsed.data);
    } catch (error) {
      log.error(`${step} failed`, { code: error instanceof Error ? error.name : "Error" });
      throw error;
    }
  };
}
