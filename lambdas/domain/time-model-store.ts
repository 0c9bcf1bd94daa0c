/**
 * Ports for the labeling-time model versions in the records table (`TIMEMODEL` / `V#<version>`). The
 * DynamoDB adapter implements them; unit-test fakes implement the same interfaces.
 */
import type { TimeModel } from "./labeling-time-model.js";

/** A stored model and its version number (fitted versions count up from 1; 0 is the built-in prior). */
export interface VersionedTimeModel {
  version: number;
  model: TimeModel;
}

/** Read side: what scoring needs to predict labeling time. */
export interface TimeModelStore {
  /** The highest stored version, or undefined when none has been fitted yet. */
  latest(): Promise<VersionedTimeModel | undefined>;
}

/** Read and write side: what the refit needs. */
export interface TimeModelRegistry extends TimeModelStore {
  /**
   * Stores `entry` as version `entry.version` (≥ 1) unless that version exists. Returns false (and
   * changes nothing) if it does, so two concurrent refits can never both write version k.
   */
  put(entry: VersionedTimeModel, createdAt: string): Promise<boolean>;
}
