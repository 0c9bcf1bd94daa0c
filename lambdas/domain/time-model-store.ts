/**
 * Ports for the labeling-time model versions in the records table (`TIMEMODEL` / `V#<version>`). The
 * DynamoDB adapter implements them; unit-test fakes implement the same interfaces.
 */
import { DEFAULT_TIME_PRIOR, type TimeModel, type TimePrior, timeModelFromPrior } from "./labeling-time-model.js";

/** A stored model and its version number (fitted versions count up from 1; 0 is the built-in prior). */
export interface VersionedTimeModel {
  version: number;
  model: TimeModel;
}

/** Read side: what scoring needs to predict labeling time. */
export interface TimeModelStore {
  /** The highest stored version, or undefined when none has been fitted yet. */
  latest(): Promise<VersionedTimeModel | undefined>;
  /** Stored version `version` (≥ 1), or undefined when it does not exist. */
  get(version: number): Promise<VersionedTimeModel | undefined>;
}

/** Version 0: the institution's prior, in effect until the first fit is stored. */
export function priorVersion(prior: TimePrior = DEFAULT_TIME_PRIOR): VersionedTimeModel {
  return { version: 0, model: timeModelFromPrior(prior) };
}

/** The version in effect: the newest stored one, else the prior. */
export async function modelInEffect(store: TimeModelStore, prior: TimePrior = DEFAULT_TIME_PRIOR): Promise<VersionedTimeModel> {
  return (await store.latest()) ?? priorVersion(prior);
}

/** Version `version` as it was used: 0 is the prior, a missing stored version is undefined. */
export async function modelVersion(
  store: TimeModelStore,
  version: number,
  prior: TimePrior = DEFAULT_TIME_PRIOR,
): Promise<VersionedTimeModel | undefined> {
  return version === 0 ? priorVersion(prior) : store.get(version);
}

/** Read and write side: what the refit needs. */
export interface TimeModelRegistry extends TimeModelStore {
  /**
   * Stores `entry` as version `entry.version` (≥ 1) unless that version exists. Returns false (and
   * changes nothing) if it does, so two concurrent refits can never both write version k.
   */
  put(entry: VersionedTimeModel, createdAt: string): Promise<boolean>;
}
