/**
 * Port for the scoring endpoint (the PatchFCN ensemble behind SageMaker). The SageMaker adapter
 * implements it against AWS and the local container; unit-test fakes implement the same interface.
 */
import type { ScoringRequest, ScoringResult } from "../contracts/scoring.js";
import { DomainError } from "./errors.js";

/** Where an asynchronous invocation will leave its answer. */
export interface AsyncInvocation {
  inferenceId: string;
  /** s3:// URI of the result JSON (a ScoringResult) once scoring succeeded. */
  outputLocation: string;
  /** s3:// URI of the failure JSON (a ScoringFailure); undefined when the endpoint has no failure path. */
  failureLocation: string | undefined;
}

export interface ScoringEndpoint {
  /**
   * Scores one study synchronously.
   * @throws ScoringRejectedError when the container refuses the request (4xx: PHI, wrong modality, missing input, …)
   * @throws ScoringResponseError when the endpoint answers something outside the contract
   */
  invoke(request: ScoringRequest): Promise<ScoringResult>;
  /**
   * Queues scoring of the request JSON stored at `inputLocation` (s3://…); the result or failure
   * appears later at the returned locations.
   */
  invokeAsync(inputLocation: string): Promise<AsyncInvocation>;
}

/** Base of the scoring endpoint's errors. */
export class ScoringError extends DomainError {}

/**
 * The container refused the study (HTTP 4xx from the container): not a fault, retrying gives the
 * same answer. `code` and `reason` are the container's; `reason` never carries values from the study.
 */
export class ScoringRejectedError extends ScoringError {
  constructor(
    /** Machine-readable, e.g. `PHI_PRESENT`, `INPUT_NOT_FOUND`, `WRONG_MODALITY`. */
    readonly code: string,
    /** One human-readable line. */
    readonly reason: string,
    /** The container's HTTP status (400, 404, 413, 422, …). */
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(`scoring refused (${status} ${code}): ${reason}`, options);
  }
}

/** The endpoint answered, but not with what the contract promises (body not JSON, schema mismatch, missing fields). */
export class ScoringResponseError extends ScoringError {}
