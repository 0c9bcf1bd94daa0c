/**
 * For integration tests: a tiny untrained ensemble and small phantom DICOM studies, written by the
 * Python package (`python -m ichal.testing.tiny_model`). Untrained: checks contracts, not accuracy.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { MODEL_CONTAINER_DIR, MODEL_PYTHON } from "../../scripts/lib/model-server.js";

const run = promisify(execFile);

async function tinyModel(args: string[]): Promise<void> {
  await run(MODEL_PYTHON, ["-m", "ichal.testing.tiny_model", ...args], { cwd: MODEL_CONTAINER_DIR, timeout: 60_000 });
}

/** Writes the tiny ensemble (2 models, width 0.125, 64² grid, K = 20) into `dir`. */
export function writeTinyModel(dir: string): Promise<void> {
  return tinyModel(["--out", dir]);
}

/** Writes a 24-frame 64² phantom as a DICOM zip; `patientName` plants PHI the container must refuse. */
export function writePhantomStudy(file: string, options: { seed: number; patientName?: string }): Promise<void> {
  const args = ["--study", file, "--seed", String(options.seed)];
  if (options.patientName) args.push("--patient-name", options.patientName);
  return tinyModel(args);
}
