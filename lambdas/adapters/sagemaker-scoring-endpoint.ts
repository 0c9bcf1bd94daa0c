/**
 * The scoring endpoint through `@aws-sdk/client-sagemaker-runtime`: against SageMaker in AWS, and,
 * with the client's `endpoint` set to the container's URL, against the container itself (it answers
 * the SDK's paths `/endpoints/{name}/invocations` and `/async-invocations`).
 *
 * How a refusal (container HTTP 4xx with body `{code, reason}`) reaches the SDK — both are handled:
 * - SageMaker in AWS wraps it: the SDK throws `ModelError` (HTTP 424) whose `OriginalStatusCode` is the
 *   container's status and `OriginalMessage` the container's body as a string.
 * - Straight from the container (local): the restJson1 deserializer takes the error code from the body's
 *   `code` field. It names no modeled error, so the SDK throws the base `SageMakerRuntimeServiceException`
 *   with `name` = the code, `$fault: "client"`, `$metadata.httpStatusCode` = the container's status,
 *   `message: "UnknownError"`, and the body's fields copied onto the exception (`code`, `reason`).
 *   `$response.body` is the already-consumed stream, so the copied fields are the only place the body is.
 * Anything else (5xx faults, throttling, AWS `ValidationError`, network) is rethrown unchanged.
 */
import {
  InvokeEndpointAsyncCommand,
  InvokeEndpointCommand,
  ModelError,
  type SageMakerRuntimeClient,
  SageMakerRuntimeServiceException,
} from "@aws-sdk/client-sagemaker-runtime";
import { z } from "zod";
import {
  type ScoringFailure,
  ScoringFailureSchema,
  type ScoringRequest,
  type ScoringResult,
  ScoringResultSchema,
} from "../contracts/scoring.js";
import { type AsyncInvocation, type ScoringEndpoint, ScoringRejectedError, ScoringResponseError } from "../domain/scoring-endpoint.js";

const JSON_TYPE = "application/json";

export class SageMakerScoringEndpoint implements ScoringEndpoint {
  constructor(
    private readonly client: SageMakerRuntimeClient,
    private readonly endpointName: string,
  ) {}

  async invoke(request: ScoringRequest): Promise<ScoringResult> {
    const response = await this.client
      .send(
        new InvokeEndpointCommand({
          EndpointName: this.endpointName,
          ContentType: JSON_TYPE,
          Accept: JSON_TYPE,
          Body: new TextEncoder().encode(JSON.stringify(request)),
        }),
      )
      .catch(rethrowRefusal);
    const text = response.Body?.transformToString() ?? "";
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new ScoringResponseError(`endpoint ${this.endpointName} answered a body that is not JSON (${text.length} bytes)`, {
        cause: error,
      });
    }
    const parsed = ScoringResultSchema.safeParse(body);
    if (!parsed.success) {
      throw new ScoringResponseError(
        `endpoint ${this.endpointName} answered outside the scoring contract: ${z.prettifyError(parsed.error)}`,
        {
          cause: parsed.error,
        },
      );
    }
    return parsed.data;
  }

  async invokeAsync(inputLocation: string): Promise<AsyncInvocation> {
    const response = await this.client
      .send(
        new InvokeEndpointAsyncCommand({
          EndpointName: this.endpointName,
          InputLocation: inputLocation,
          ContentType: JSON_TYPE,
          Accept: JSON_TYPE,
        }),
      )
      .catch(rethrowRefusal);
    if (!response.InferenceId || !response.OutputLocation) {
      throw new ScoringResponseError(
        `endpoint ${this.endpointName} accepted an asynchronous invocation without InferenceId or OutputLocation`,
      );
    }
    return { inferenceId: response.InferenceId, outputLocation: response.OutputLocation, failureLocation: response.FailureLocation };
  }
}

function rethrowRefusal(error: unknown): never {
  throw refusalFrom(error) ?? error;
}

/** The container's refusal carried by an SDK error (see the header), or undefined if it is no refusal. */
function refusalFrom(error: unknown): ScoringRejectedError | ScoringResponseError | undefined {
  if (error instanceof ModelError) {
    const status = error.OriginalStatusCode;
    if (status === undefined || status < 400 || status >= 500) return undefined;
    const failure = parseFailure(error.OriginalMessage);
    return failure
      ? new ScoringRejectedError(failure.code, failure.reason, status, { cause: error })
      : new ScoringResponseError(`the model container refused the request (${status}) without a {code, reason} body`, { cause: error });
  }
  if (error instanceof SageMakerRuntimeServiceException && error.$fault === "client") {
    const status = error.$metadata.httpStatusCode;
    if (status === undefined || status < 400 || status >= 500) return undefined;
    const fields = error as unknown as Record<string, unknown>;
    const failure = ScoringFailureSchema.safeParse({ code: fields.code, reason: fields.reason });
    if (failure.success) return new ScoringRejectedError(failure.data.code, failure.data.reason, status, { cause: error });
  }
  return undefined;
}

function parseFailure(text: string | undefined): ScoringFailure | undefined {
  if (!text) return undefined;
  try {
    const parsed = ScoringFailureSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined; // not JSON: not the container's refusal format
  }
}
