/**
 * The Python side of the local run, through the scoring package's own commands (`python -m ichal …`):
 * a small ensemble trained on phantoms (cached), and a pool of phantom studies with the ground truth
 * of their masks. Child processes are tracked so that Ctrl-C or a failure leaves none behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MODEL_CONTAINER_DIR, MODEL_PYTHON } from "./model-server.js";

const live = new Set<ChildProcess>();

/** Kills every Python job still running (signal handlers and failure paths call this). */
export function killPythonJobs(): void {
  for (const child of live) child.kill("SIGKILL");
  live.clear();
}

/** Runs `python -m ichal <args>` in model-container/; each stdout/stderr line goes to `onLine`. */
export function runIchal(args: string[], options: { onLine?: (line: string) => void; threads?: number } = {}): Promise<void> {
  const threads = String(options.threads ?? 1);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(MODEL_PYTHON, ["-m", "ichal", ...args], {
      cwd: MODEL_CONTAINER_DIR,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, OMP_NUM_THREADS: threads, MKL_NUM_THREADS: threads, PYTHONUNBUFFERED: "1" },
    });
    live.add(child);
    let tail = "";
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      for (const line of text.split("\n")) if (line.trim()) options.onLine?.(line.trim());
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", (error) => {
      live.delete(child);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      live.delete(child);
      if (code === 0) resolvePromise();
      else reject(new Error(`python -m ichal ${args[0]} exited with ${code ?? signal}: ${tail.slice(-1500)}`));
    });
  });
}

/** Training settings of the local ensemble (ichal.train hyperparameters), small enough for a laptop CPU. */
export interface EnsembleSettings {
  ensembleSize: number;
  width: number;
  gridSize: number;
  crop: number;
  stride: number;
  iterations: number;
  trainingStacks: number;
  trainingSizes: number[];
  hemorrhageWeight: number;
  learningRate: number;
  topK: number;
  seed: number;
}

/** The default of `npm start`: 2 × DRN-D-38 at width 0.25 on a 96² grid (about a minute or two on 2 cores). */
export const LOCAL_ENSEMBLE: EnsembleSettings = {
  ensembleSize: 2,
  width: 0.25,
  gridSize: 96,
  crop: 48,
  stride: 24,
  iterations: 500,
  trainingStacks: 24,
  trainingSizes: [96, 128],
  hemorrhageWeight: 4,
  learningRate: 0.003,
  topK: 50,
  seed: 0,
};

/**
 * The trained ensemble for `settings` under `cacheDir` (trained first if not cached). The cache key is
 * a hash of the settings and of the package's training code version, so a change retrains.
 */
export async function ensureEnsemble(
  cacheDir: string,
  settings: EnsembleSettings,
  onProgress: (fraction: number, line: string) => void,
  threads = 1,
): Promise<{ modelDir: string; cached: boolean }> {
  const version = await readFile(join(MODEL_CONTAINER_DIR, "ichal/__init__.py"), "utf8");
  const key = createHash("sha256").update(JSON.stringify(settings)).update(version).digest("hex").slice(0, 12);
  const modelDir = join(cacheDir, `ensemble-${key}`);
  if (existsSync(join(modelDir, "manifest.json"))) return { modelDir, cached: true };
  const work = `${modelDir}.partial`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const trainDir = join(work, "train");
  onProgress(0, "generating labeled training phantoms");
  await runIchal(
    ["phantoms", "--out", trainDir, "--count", String(settings.trainingStacks), "--seed", String(1000 + settings.seed)].concat([
      "--sizes",
      ...settings.trainingSizes.map(String),
      "--format",
      "npz",
      "--labeled",
    ]),
    { threads },
  );
  const set = (k: string, v: number) => ["--set", `${k}=${v}`];
  const total = settings.ensembleSize * settings.iterations;
  await runIchal(
    ["train", "--train-dir", trainDir, "--model-dir", join(work, "model"), "--device", "cpu", "--hyperparameters", join(work, "none.json")]
      .concat(set("ensemble_size", settings.ensembleSize), set("width", settings.width), set("grid_size", settings.gridSize))
      .concat(set("crop", settings.crop), set("stride", settings.stride), set("iterations", settings.iterations))
      .concat(set("batch_size", 16), set("learning_rate", settings.learningRate), set("hemorrhage_weight", settings.hemorrhageWeight))
      .concat(
        set("top_k", settings.topK),
        set("seed", settings.seed),
        set("log_every", Math.max(10, Math.round(settings.iterations / 10))),
      ),
    {
      threads,
      onLine: (line) => {
        const match = /model (\d+)\/(\d+)\s+step (\d+)\/(\d+)/.exec(line);
        if (match) {
          const [, model, , step] = match.map(Number) as number[];
          onProgress((((model as number) - 1) * settings.iterations + (step as number)) / total, line);
        }
      },
    },
  );
  await rm(modelDir, { recursive: true, force: true });
  await rename(join(work, "model"), modelDir);
  await rm(work, { recursive: true, force: true });
  onProgress(1, "trained");
  return { modelDir, cached: false };
}

/** One phantom study of the pool, as `python -m ichal phantoms` describes it in manifest.json. */
export interface PhantomEntry {
  index: number;
  seed: number;
  negative: boolean;
  /** `mask`: the exact label map as an annotator's NIfTI mask on the stack's grid (`--masks`). */
  files: { dicom?: string; mask?: string };
  frames: number;
  shape: number[];
  mask_voxels: number;
  identifier_planted: boolean;
  /** B of the exact mask on the model grid (ichal.features.morphology, as the container measures). */
  true_boundary_length: number;
  /** M of the exact mask on the model grid. */
  true_components: number;
}

/**
 * Writes `count` phantom DICOM studies of mixed sizes (about 30 % negative) into `outDir` with the
 * ground-truth B and M of each mask on the model's grid and each exact label map as the NIfTI mask a
 * simulated annotator uploads; `plantName` is written as PatientName into
 * the study `plantIndex` (never into the manifest). A pool already in `outDir` with the same
 * parameters is reused.
 */
export async function generatePhantomPool(options: {
  outDir: string;
  count: number;
  seed: number;
  sizes: number[];
  gridSize: number;
  plantName: string;
  plantIndex: number;
  threads?: number;
}): Promise<PhantomEntry[]> {
  const manifestPath = join(options.outDir, "manifest.json");
  const { threads: _threads, outDir: _outDir, ...parameters } = options;
  // The format of what is written is part of the key: a pool from before masks were written is made again.
  const key = JSON.stringify({ ...parameters, masks: true });
  const keyPath = join(options.outDir, "parameters.json");
  if (existsSync(manifestPath) && existsSync(keyPath) && (await readFile(keyPath, "utf8")) === key) {
    return (JSON.parse(await readFile(manifestPath, "utf8")) as { stacks: PhantomEntry[] }).stacks;
  }
  await rm(options.outDir, { recursive: true, force: true });
  await runIchal(
    ["phantoms", "--out", options.outDir, "--count", String(options.count), "--seed", String(options.seed), "--format", "dicom"]
      .concat(["--sizes", ...options.sizes.map(String), "--true-features-grid", String(options.gridSize), "--masks"])
      .concat(["--patient-name", options.plantName, "--patient-name-index", String(options.plantIndex)]),
    { threads: options.threads ?? 1 },
  );
  const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as { stacks: PhantomEntry[] };
  await writeFile(keyPath, key);
  return manifest.stacks;
}
