/**
 * Property tests use one fixed seed so CI is reproducible; set FC_SEED to explore other seeds
 * (a failure prints the seed and path to replay it).
 */
import fc from "fast-check";

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20_181_016) });
