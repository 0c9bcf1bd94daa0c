/**
 * The annotators' week in the local run: simulated annotators read their worklists and complete every
 * selected stack through the real completion API handler, with times drawn from the true time law
 * (simulated-annotators.ts). The stages are listed in local-pipeline.ts.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { AnnotatorDirectorySchema, COMPLETION_API_PATHS, MaskUploadResponseSchema } from "../../lambdas/contracts/completion-api.js";
import { bindHandler } from "./lambda-bindings.js";
import { invokeLambda } from "./lambda-runtime.js";
import type { UploadOutcome } from "./local-intake.js";
import { identity, type LocalRunOptions, type RunContext } from "./local-run-context.js";
import type { PhantomEntry } from "./python-jobs.js";
import { SIMULATED_SPEEDS, simulatedActiveSeconds } from "./simulated-annotators.js";

export interface CompletionOutcome {
  stackId: string;
  annotator: string;
  activeSeconds: number;
  predictedSeconds: number;
  /** B̂, M̂: what the model measured on its heatmap (the features the refit regresses on). */
  boundaryLength: number;
  components: number;
  /** B, M of the phantom's exact mask (what the simulated time was drawn from). */
  trueBoundaryLength: number;
  trueComponents: number;
  /** Voxels of the phantom's exact mask (what the uploaded label map holds); 0 for a negative phantom. */
  trueMaskVoxels: number;
  /** Finished with "no hemorrhage" (a negative phantom) rather than a mask upload. */
  noHemorrhage: boolean;
  statusCode: number;
}

export function simulatedSpeedOf(options: LocalRunOptions, annotator: string): number {
  return SIMULATED_SPEEDS[options.annotators.indexOf(annotator) % SIMULATED_SPEEDS.length] ?? 1;
}

/**
 * The simulated annotators read their worklists and complete every selected stack through the real completion API,
 * each with an active time drawn from the true time law on the phantom's exact B and M and their own speed.
 */
export async function annotate(
  run: RunContext,
  uploads: readonly UploadOutcome[],
  pool: { readonly phantoms: readonly PhantomEntry[]; readonly dir: string },
  recordsAfterSelection: readonly Record<string, unknown>[],
): Promise<CompletionOutcome[]> {
  const { options } = run;
  const api = await completionApi(run);
  const phantomByStudy = new Map(uploads.map((u) => [u.studyId, pool.phantoms[u.phantomIndex] as PhantomEntry]));
  const phantomOf = (stackId: string) => phantomByStudy.get(studyOfStack(stackId));
  const work = await selectedWork(api, options.annotators, uploads);
  const features = work.map(({ stackId }) => {
    const phantom = phantomOf(stackId);
    if (!phantom) throw new Error(`stack ${stackId} does not come from an uploaded phantom`);
    return { boundaryLength: phantom.true_boundary_length, components: phantom.true_components };
  });
  const seconds = simulatedActiveSeconds(
    features,
    options.seed * 7919 + 17,
    work.map((w) => simulatedSpeedOf(options, w.annotator)),
  );
  run.report(
    `7/8 ${work.length} selected stacks completed by ${options.annotators.length} simulated annotators through the completion API…`,
  );
  const recordById = new Map(recordsAfterSelection.map((r) => [String(r.stackId), r]));
  const completions: CompletionOutcome[] = [];
  for (const [i, item] of work.entries()) {
    const activeSeconds = seconds[i] as number;
    const phantom = phantomOf(item.stackId) as PhantomEntry;
    const statusCode = await completeStack(api, item, activeSeconds, phantom, pool.dir);
    const record = recordById.get(item.stackId);
    completions.push({
      stackId: item.stackId,
      annotator: item.annotator,
      activeSeconds,
      predictedSeconds: (record?.prediction as { predictedSeconds?: number } | undefined)?.predictedSeconds ?? 0,
      boundaryLength: (record?.scores as { boundaryLength?: number } | undefined)?.boundaryLength ?? 0,
      components: (record?.scores as { components?: number } | undefined)?.components ?? 0,
      trueBoundaryLength: (features[i] as { boundaryLength: number }).boundaryLength,
      trueComponents: (features[i] as { components: number }).components,
      trueMaskVoxels: phantom.mask_voxels,
      noHemorrhage: phantom.negative,
      statusCode,
    });
  }
  return completions;
}

interface WorkItem {
  annotator: string;
  stackId: string;
}

/** The completion API handler, called as each annotator through the Cognito authorizer's event. */
async function completionApi(run: RunContext): Promise<AnnotatorApi> {
  const complete = run.roles.complete;
  const completeHandler = await bindHandler("complete", complete.environment, run.bindingOptions);
  // The subs the template gives the annotators (locally, placeholders for what Cognito assigns at creation).
  const directory = AnnotatorDirectorySchema.parse(JSON.parse(complete.environment.ANNOTATOR_DIRECTORY ?? "[]"));
  const subOf = (annotator: string) => {
    const entry = directory.find((a) => a.email.toLowerCase() === annotator.toLowerCase());
    if (!entry) throw new Error(`annotator ${annotator} is not in the complete function's ANNOTATOR_DIRECTORY`);
    return entry.sub;
  };
  return (annotator, method, resource, body, pathParameters) =>
    invokeLambda(
      completeHandler,
      apiGatewayEvent(annotator, subOf(annotator), method, resource, body, pathParameters ?? null),
      identity(complete),
    ) as Promise<{ statusCode: number; body: string }>;
}

/** The selected stacks on every annotator's worklist, in phantom order. */
async function selectedWork(api: AnnotatorApi, annotators: readonly string[], uploads: readonly UploadOutcome[]): Promise<WorkItem[]> {
  const work: WorkItem[] = [];
  for (const annotator of annotators) {
    const response = await api(annotator, "GET", COMPLETION_API_PATHS.worklist);
    if (response.statusCode !== 200) throw new Error(`GET /worklist for an annotator answered ${response.statusCode}: ${response.body}`);
    const worklist = JSON.parse(response.body) as { stacks: { stackId: string; status: string }[] };
    for (const s of worklist.stacks) if (s.status === "selected") work.push({ annotator, stackId: s.stackId });
  }
  // Study ids hash the upload's S3 versionId, which the emulator draws at random: draw the simulated
  // times in phantom order, so the same seed gives every stack the same time on every run.
  const phantomIndexOf = (stackId: string) => uploads.find((u) => u.studyId === studyOfStack(stackId))?.phantomIndex ?? -1;
  return work.sort((a, b) => phantomIndexOf(a.stackId) - phantomIndexOf(b.stackId) || a.stackId.localeCompare(b.stackId));
}

/**
 * One completion: a negative phantom finishes with "no hemorrhage"; the others upload their exact label map as the
 * viewer would (presigned PUT, then the completion naming the upload). The API's status code.
 */
async function completeStack(
  api: AnnotatorApi,
  item: WorkItem,
  activeSeconds: number,
  phantom: PhantomEntry,
  dir: string,
): Promise<number> {
  const finish = phantom.negative
    ? { noHemorrhage: true as const }
    : { maskUploadKey: await uploadMask(api, item, join(dir, phantom.files.mask ?? "")), source: "page" as const };
  const response = await api(item.annotator, "POST", COMPLETION_API_PATHS.completions, {
    stackId: item.stackId,
    activeSeconds,
    annotator: item.annotator,
    ...finish,
  });
  return response.statusCode;
}

type AnnotatorApi = (
  annotator: string,
  method: "GET" | "POST",
  resource: string,
  body?: unknown,
  pathParameters?: Record<string, string>,
) => Promise<{ statusCode: number; body: string }>;

/** A simulated annotator's mask upload: a presigned PUT from the API, the file PUT to the emulator; the upload key. */
async function uploadMask(api: AnnotatorApi, item: WorkItem, path: string): Promise<string> {
  const bytes = await readFile(path);
  const issued = await api(
    item.annotator,
    "POST",
    COMPLETION_API_PATHS.maskUploads,
    { bytes: bytes.byteLength, gzip: true },
    { stackId: item.stackId },
  );
  if (issued.statusCode !== 200) throw new Error(`POST mask-uploads for ${item.stackId} answered ${issued.statusCode}: ${issued.body}`);
  const upload = MaskUploadResponseSchema.parse(JSON.parse(issued.body));
  const put = await fetch(upload.url, { method: upload.method, headers: upload.headers, body: bytes });
  if (!put.ok) throw new Error(`the mask PUT for ${item.stackId} answered HTTP ${put.status}`);
  return upload.uploadKey;
}

/** An API Gateway REST proxy event (payload 1.0) as the Cognito user-pool authorizer passes it. */
function apiGatewayEvent(
  email: string,
  sub: string,
  method: string,
  resource: string,
  body?: unknown,
  pathParameters: Record<string, string> | null = null,
) {
  const requestId = randomUUID();
  const path = resource.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(pathParameters?.[name] ?? ""));
  return {
    resource,
    path,
    httpMethod: method,
    headers: { "content-type": "application/json", host: "local.execute-api" },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters,
    stageVariables: null,
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {
      requestId,
      resourcePath: resource,
      httpMethod: method,
      path: `/local${path}`,
      stage: "local",
      accountId: "123456789012",
      identity: { sourceIp: "127.0.0.1" },
      authorizer: { claims: { email, sub, "cognito:username": sub, token_use: "id" } },
    },
  };
}

function studyOfStack(stackId: string): string {
  return stackId.replace(/-s\d+$/, "");
}
