/** File formats accepted by the `ich-al` command. */
import { z } from "zod";

export { TimePriorSchema as PriorFileSchema } from "./records.js";

/** pool.json: one entry per pending stack. */
export const PoolEntrySchema = z.object({
  id: z.string().min(1),
  /** V: stack uncertainty. */
  uncertainty: z.number().nonnegative(),
  /** T: predicted labeling seconds. */
  predictedSeconds: z.number().positive(),
});
export const PoolFileSchema = z.array(PoolEntrySchema);
export type PoolEntry = z.infer<typeof PoolEntrySchema>;

/** timings.json: one entry per completed stack. */
export const TimingEntrySchema = z.object({
  boundaryLength: z.number().nonnegative(),
  components: z.number().nonnegative(),
  seconds: z.number().positive(),
  /** Who labeled it: completions of one annotator share a speed factor. */
  annotator: z.string().min(1).optional(),
});
export const TimingsFileSchema = z.array(TimingEntrySchema);
