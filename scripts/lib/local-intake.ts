/**
 * Ingest and scoring in the local run: the phantom pool uploaded to the studies bucket, the ingest and
 * score queues drained into the real handlers as Lambda's event source mappings do (sqs-event-source.ts),
 * and each upload's outcome read back once every upload settled. The stages are listed in local-pipeline.ts.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { studyIdOf } from "../../lambdas/domain/ingest.js";
import { bindHandler } from "./lambda-bindings.js";
import { identity, type RunContext } from "./local-run-context.js";
import type { PhantomEntry } from "./python-jobs.js";
import { versionsOfKey } from "./s3-object-scan.js";
import { SqsEventSource } from "./sqs-event-source.js";

export interface UploadOutcome {
  phantomIndex: number;
  key: string;
  studyId: string;
  /** `repeat`: the first good study's bytes uploaded again under another key (recorded once: its stack is a duplicate). */
  kind: "study" | "corrupt" | "identifier" | "repeat";
  status: string;
  rejectionCode: string | undefined;
  rejectionReason: string | undefined;
  stackIds: string[];
  deadLettered: boolean;
  /** Where a refused study was moved (the record's `rejection.quarantineKey`). */
  quarantineKey: string | undefined;
  /** Versions and delete markers of the upload's key left in the bucket once every upload settled. */
  versionsLeft: number;
  /** Versions under `quarantineKey` (0 when the study was not moved). */
  quarantinedVersions: number;
  /** This study's stacks recorded `duplicate`, with the stack recorded first with the same voxels. */
  duplicates: { stackId: string; duplicateOf: string }[];
}

/** The phantom pool with its two bad studies: one cut off halfway, one carrying a patient name. */
export interface PhantomPool {
  readonly phantoms: PhantomEntry[];
  readonly dir: string;
  /** A name no phantom, header or log could carry by chance; searched for in everything the run leaves. */
  readonly plantedName: string;
  readonly plantIndex: number;
  readonly corruptIndex: number;
}

/** Uploads the pool and feeds the handlers until every upload settled: each upload's outcome, and the dead letters by queue. */
export async function ingestAndScore(run: RunContext, pool: PhantomPool) {
  const intake = await startIntake(run);
  const uploads = await uploadPool(run, pool);
  const deadLetters = await awaitSettled(run, uploads, intake);
  await readUploadOutcomes(run, uploads);
  return { uploads, deadLetters };
}

/** The ingest and score queues drained into the real handlers, as Lambda's event source mappings do. */
export interface Intake {
  readonly sources: SqsEventSource[];
  readonly invocationErrors: string[];
}

export async function startIntake(run: RunContext): Promise<Intake> {
  const sources: SqsEventSource[] = [];
  const invocationErrors: string[] = [];
  for (const [kind, role] of [
    ["ingest", run.roles.ingest],
    ["recordScore", run.roles.recordScore],
  ] as const) {
    const handler = await bindHandler(kind, role.fn.environment, run.bindingOptions);
    const queue = run.wiring.queues.find((q) => q.arn === role.mapping.queueArn);
    if (!queue) throw new Error(`event source ${role.mapping.logicalId}: its queue is not in the template`);
    const source = new SqsEventSource({
      sqs: run.sqs,
      queueUrl: queue.url,
      queueArn: queue.arn,
      batchSize: role.mapping.batchSize,
      maximumBatchingWindowSeconds: role.mapping.maximumBatchingWindowSeconds,
      reportBatchItemFailures: role.mapping.reportBatchItemFailures,
      concurrency: Math.min(2, role.mapping.maximumConcurrency ?? 2),
      fn: identity(role.fn),
      handler,
      retryDelaySeconds: 2,
      onInvocationError: (error) => invocationErrors.push(`${kind}: ${(error as Error).name}: ${(error as Error).message}`),
    });
    source.start();
    sources.push(source);
    // Stopped on every path: a run that fails before the uploads settle must not leave pollers behind.
    run.cleanups.push(() => source.stop());
  }
  return { sources, invocationErrors };
}

/** Uploads every phantom (the corrupt one cut off halfway), then the first good one again under another key. */
async function uploadPool(run: RunContext, pool: PhantomPool): Promise<UploadOutcome[]> {
  const { roles, report } = run;
  const bucket = roles.studiesBucket;
  report(
    `3/8 uploading ${pool.phantoms.length} phantom studies to s3://${bucket}/${roles.uploadsPrefix} ` +
      `(${pool.phantoms.filter((p) => p.negative).length} negative, 1 corrupt, 1 with a patient name, 1 uploaded twice)…`,
  );
  const uploads: UploadOutcome[] = [];
  const batch = `run-${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, "")
    .slice(0, 14)}`;
  const repeated = pool.phantoms.find((p) => p.index !== pool.corruptIndex && p.index !== pool.plantIndex);
  if (!repeated) throw new Error("the pool has no good study to upload twice");
  for (const [phantom, again] of [...pool.phantoms.map((p) => [p, false] as const), [repeated, true] as const]) {
    const file = phantom.files.dicom;
    if (!file) throw new Error(`phantom ${phantom.index} has no DICOM file`);
    let body: Uint8Array = await readFile(join(pool.dir, file));
    const kind = again
      ? "repeat"
      : phantom.index === pool.corruptIndex
        ? "corrupt"
        : phantom.index === pool.plantIndex
          ? "identifier"
          : "study";
    if (kind === "corrupt") body = body.subarray(0, Math.floor(body.length / 2)); // a transfer cut off halfway
    const key = `${roles.uploadsPrefix}${batch}/study-${String(phantom.index).padStart(3, "0")}${again ? "-again" : ""}.zip`;
    const put = await run.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/zip" }));
    if (!put.VersionId) throw new Error("the studies bucket returned no versionId: it must be versioned");
    uploads.push({
      phantomIndex: phantom.index,
      key,
      studyId: studyIdOf({ bucket, key, versionId: put.VersionId }),
      kind,
      status: "uploaded",
      rejectionCode: undefined,
      rejectionReason: undefined,
      stackIds: [],
      deadLettered: false,
      quarantineKey: undefined,
      versionsLeft: 1,
      quarantinedVersions: 0,
      duplicates: [],
    });
  }
  return uploads;
}

const SETTLED_STATUSES = new Set(["scored", "rejected", "failed"]);

/** Waits until every upload is settled (or dead-lettered), reporting progress; stops the event sources; the dead letters by queue. */
async function awaitSettled(run: RunContext, uploads: UploadOutcome[], intake: Intake): Promise<Record<string, number>> {
  run.report("4/8 ingest queue → ingest λ → model container (async) → SNS → score queue → record-score λ…");
  const deadLetterQueues = run.wiring.queues.filter((q) => run.wiring.queues.some((o) => o.redrive?.deadLetterTargetArn === q.arn));
  const deadline = Date.now() + (120 + 15 * uploads.length) * 1000;
  let lastLine = "";
  for (;;) {
    for (const upload of uploads) {
      if (SETTLED_STATUSES.has(upload.status)) continue;
      const record = await run.records.getStack(upload.studyId);
      if (record) upload.status = record.status;
    }
    const settled = uploads.filter((u) => SETTLED_STATUSES.has(u.status)).length;
    const dead = await countMessages(
      run.sqs,
      deadLetterQueues.map((q) => q.url),
    );
    const line = `      settled ${settled}/${uploads.length} (scored ${uploads.filter((u) => u.status === "scored").length}, dead letters ${dead})`;
    if (line !== lastLine) run.report(line);
    lastLine = line;
    if (settled === uploads.length) break;
    if (dead > 0 && settled + dead >= uploads.length && !intake.sources.some((s) => s.busy)) break;
    if (Date.now() > deadline) {
      throw new Error(
        `uploads not settled in time: ${uploads.filter((u) => !SETTLED_STATUSES.has(u.status)).length} left; ` +
          `invocation errors: ${intake.invocationErrors.slice(-3).join(" | ") || "none"}`,
      );
    }
    await sleep(1000);
  }
  for (const source of intake.sources) await source.stop();
  const deadLetters: Record<string, number> = {};
  for (const q of deadLetterQueues) deadLetters[q.name] = await countMessages(run.sqs, [q.url]);
  return deadLetters;
}

/** Fills in each upload's record: status, rejection and quarantine, its stacks and duplicates, versions left. */
async function readUploadOutcomes(run: RunContext, uploads: UploadOutcome[]): Promise<void> {
  const bucket = run.roles.studiesBucket;
  for (const upload of uploads) {
    const record = await run.records.getStack(upload.studyId);
    upload.status = record?.status ?? "missing";
    upload.rejectionCode = record?.rejection?.code;
    upload.rejectionReason = record?.rejection?.reason;
    upload.stackIds = record?.stackIds ?? [];
    upload.deadLettered = !record || !SETTLED_STATUSES.has(record.status);
    upload.quarantineKey = record?.rejection?.quarantineKey;
    upload.versionsLeft = (await versionsOfKey(run.s3, bucket, upload.key)).length;
    upload.quarantinedVersions = upload.quarantineKey ? (await versionsOfKey(run.s3, bucket, upload.quarantineKey)).length : 0;
    for (const stackId of upload.stackIds) {
      const stack = await run.records.getStack(stackId);
      if (stack?.status === "duplicate" && stack.duplicateOf) upload.duplicates.push({ stackId, duplicateOf: stack.duplicateOf });
    }
  }
}

async function countMessages(sqs: SQSClient, urls: string[]): Promise<number> {
  let total = 0;
  for (const url of urls) {
    const r = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    total += Number(r.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(r.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  }
  return total;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
