/** Time-model versions in memory with the conditional semantics of DynamoTimeModelStore.put (one fake for every test). */
import type { TimeModel } from "../../lambdas/domain/labeling-time-model.js";
import type { TimeModelRegistry, VersionedTimeModel } from "../../lambdas/domain/time-model-store.js";

export class InMemoryTimeModels implements TimeModelRegistry {
  readonly versions = new Map<number, { model: TimeModel; createdAt: string }>();
  puts = 0;

  async latest(): Promise<VersionedTimeModel | undefined> {
    return this.get(Math.max(-1, ...this.versions.keys()));
  }

  async get(version: number): Promise<VersionedTimeModel | undefined> {
    const entry = this.versions.get(version);
    return entry ? { version, model: structuredClone(entry.model) } : undefined;
  }

  async put(entry: VersionedTimeModel, createdAt: string): Promise<boolean> {
    this.puts++;
    if (this.versions.has(entry.version)) return false;
    this.versions.set(entry.version, { model: structuredClone(entry.model), createdAt });
    return true;
  }
}
