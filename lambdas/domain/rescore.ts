/**
 * Re-scoring after a promotion: every `pending` stack another model scored is scored again by the model
 * in service, so the next round can select it (domain/selection-round.ts never compares V of two models).
 *
 *   pending stacks ─ scored by another model ─ grouped by study ─→ one request per study at
 *   scoring-requests/rescore/<studyId>-<model tag>.json ─ invokeAsync ─→ … record-score: for each
 *   series of the result, rescoreStack (only while `pending`, once per model)
 *
 * Idempotent: the request key and the write are per study and model, a repeated request costs one more
 * scoring run and writes nothing twice; a result of a model that is no longer in service is dropped by
 * record-score. Stacks that are not re-scored (a failure) keep waiting and are counted by every round.
 */
import { createHash } from "node:crypto";
import { INTAKE_METRICS, type IntakeCounter } from "../contracts/metrics.js";
import type { StackRecord } from "../contracts/records.js";
import { type IngestConfig, SCORING_REQUESTS_PREFIX, type StudyObjects, scoringRequestFor } from "./ingest.js";
import type { RecordStore } from "./record-store.js";
import type { ScoringEndpoint } from "./scoring-endpoint.js";

export const RESCORE_REQUESTS_PREFIX = `${SCORING_REQUESTS_PREFIX}rescore/`;

/** 12 hex digits naming a model in request keys. */
export const modelTag = (modelVersion: string) => createHash("sha256").update(modelVersion).digest("hex").slice(0, 12);

/** The re-score request key of a study for a model. */
export const rescoreRequestKey = (studyId: string, modelVersion: string) =>
  `${RESCORE_REQUESTS_PREFIX}${studyId}-${modelTag(modelVersion)}.json`;

/** The study id of a re-score request key, or undefined for any other key. */
export function studyOfRescoreKey(key: string): string | undefined {
  const match = /^scoring-requests\/rescore\/([0-9a-f]{32})-[0-9a-f]{12}\.json$/.exec(key);
  return match?.[1];
}

export interface RescoreStudy {
  readonly studyId: string;
  /** The uploaded object (bucket, key, version) the study's stacks came from. */
  readonly object: { bucket: string; key: string; versionId: string };
  /** Its pending stacks that wait for the model. */
  readonly stackIds: string[];
}

/** Pure: the studies whose pending stacks another model than `modelVersion` scored, by study id. */
export function studiesToRescore(pending: readonly StackRecord[], modelVersion: string): RescoreStudy[] {
  const studies = new Map<string, RescoreStudy>();
  for (const record of pending) {
    if (record.status !== "pending" || record.kind === "study" || record.scores?.modelVersion === modelVersion) continue;
    const studyId = /^([0-9a-f]{32})-s\d+$/.exec(record.stackId)?.[1];
    if (!studyId) continue;
    const { bucket, key, versionId } = record.source;
    const study = studies.get(studyId) ?? { studyId, object: { bucket, key, versionId }, stackIds: [] };
    study.stackIds.push(record.stackId);
    studies.set(studyId, study);
  }
  return [...studies.values()].sort((a, b) => (a.studyId < b.studyId ? -1 : 1));
}

export interface RescoreDeps {
  readonly records: RecordStore;
  readonly objects: Pick<StudyObjects, "putJson">;
  readonly scoring: Pick<ScoringEndpoint, "invokeAsync">;
  readonly config: Pick<IngestConfig, "studiesBucket" | "topK" | "thresholds" | "allowedPrivateCreators">;
  readonly log?: (message: string, fields: Record<string, unknown>) => void;
  /** Counts the stacks whose re-score was requested (contracts/metrics.ts); none when absent. */
  readonly count?: IntakeCounter;
}

export interface RescoreOutput {
  /** The model in service the requests are for (undefined: nothing scored yet, nothing to do). */
  readonly modelVersion: string | undefined;
  readonly studies: number;
  readonly stacks: number;
}

/** Requests a re-score of every study with a pending stack the model in service has not scored. */
export async function requestRescoring(deps: RescoreDeps): Promise<RescoreOutput> {
  const log = deps.log ?? (() => {});
  const modelVersion = (await deps.records.getModelInService())?.modelVersion;
  if (!modelVersion) return { modelVersion, studies: 0, stacks: 0 };
  const studies = studiesToRescore(await deps.records.listByStatus("pending"), modelVersion);
  for (const study of studies) {
    const key = rescoreRequestKey(study.studyId, modelVersion);
    await deps.objects.putJson(deps.config.studiesBucket, key, scoringRequestFor(study.studyId, study.object, deps.config));
    const invocation = await deps.scoring.invokeAsync(`s3://${deps.config.studiesBucket}/${key}`);
    log("re-score requested", { studyId: study.studyId, stacks: study.stackIds.length, inferenceId: invocation.inferenceId });
  }
  const stacks = studies.reduce((n, s) => n + s.stackIds.length, 0);
  deps.count?.(INTAKE_METRICS.stacksRescoreRequested, stacks);
  return { modelVersion, studies: studies.length, stacks };
}
