/**
 * Port for the labeling-time model versions in the records table (`TIMEMODEL` / `V#<version>`). The
 * DynamoDB adapter implements it; unit-test fakes implement the same interface.
 */
import type { TimeModel } from "./labeling-time-model.js";

/** A stored model and its version number (fitted versions count up from 1; 0 is the built-in prior). */
export interface VersionedTimeModel {
  version: number;
  model: TimeModel;
}

export interface TimeModelStore {
  /** The highest stored version, or undefined when none has been fitted yet. */
  latest(): Promise<VersionedTimeModel | undefined>;
}
