/**
 * Starts the scoring container's HTTP server (`python -m ichal serve`) on 127.0.0.1, waits until
 * GET /ping answers 200, and stops it — for integration tests and the local default. The SDK's
 * SageMaker runtime client talks to it with `endpoint` set to the returned URL. It reads studies from
 * (and writes asynchronous results to) S3 at `s3Endpoint`, the local emulator, with dummy credentials.
 * Python comes from the project's environment (created by scripts/bootstrap.sh).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { terminate } from "./child-process.js";
import { LOCAL_AWS, PROJECT_ROOT } from "./moto-server.js";

/** SIGTERM lets the server finish queued asynchronous invocations; SIGKILL after 5 s. */
const STOP_GRACE_MS = 5000;

export const MODEL_CONTAINER_DIR = resolve(PROJECT_ROOT, "model-container");
export const MODEL_PYTHON = process.env.ICHAL_PYTHON ?? resolve(MODEL_CONTAINER_DIR, ".venv/bin/python");

export interface ModelServerOptions {
  /** Folder with the ensemble's `model_<i>.pt` and `manifest.json` (what SageMaker unpacks into /opt/ml/model). */
  modelDir: string;
  /** S3 endpoint the container reads studies from, e.g. the moto server's URL. */
  s3Endpoint: string;
  /** s3:// prefix for asynchronous results (`<id>.out` / `<id>.error`); without it async invocations answer 501. */
  asyncOutput?: string;
  /**
   * SNS topic ARNs the server announces asynchronous results on, as SageMaker does for an endpoint
   * config's AsyncInferenceConfig NotificationConfig (success / error topic); published through
   * `snsEndpoint` (default: `s3Endpoint`, the local emulator).
   */
  successTopic?: string;
  errorTopic?: string;
  snsEndpoint?: string;
  /** `cpu` or `cuda`; default: the container's choice (cuda when available). */
  device?: string;
  /**
   * CPU threads for PyTorch (OMP_NUM_THREADS / MKL_NUM_THREADS); default 1. On a shared 2-core machine
   * with other CPU work running, OpenMP's spinning threads made the tiny model's forward pass 13–20 s
   * instead of 0.12 s with one thread. Without this option, an OMP_NUM_THREADS in the environment is used.
   */
  cpuThreads?: number;
  /**
   * The container's environment as SageMaker sets it from the Model's PrimaryContainer.Environment
   * (e.g. ICHAL_CONCURRENT_REQUESTS: requests worked on at once); added to the server's environment.
   */
  environment?: Record<string, string>;
  /** How long to wait for the model to load and /ping to answer; default 60 s. */
  timeoutMs?: number;
}

export interface ModelServer {
  /** e.g. http://127.0.0.1:39113 — use as the SageMakerRuntimeClient's `endpoint`. */
  readonly endpoint: string;
  /** The last few kilobytes the server wrote to stderr (request log lines carry no identifiers). */
  log(): string;
  stop(): Promise<void>;
}

export async function startModelServer(options: ModelServerOptions): Promise<ModelServer> {
  if (!existsSync(MODEL_PYTHON)) {
    throw new Error(`Python not found at ${MODEL_PYTHON}: run scripts/bootstrap.sh (npm test does) first`);
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  // Port 0 + --ready-file: the server binds a free port itself and reports it, so no port race.
  const scratch = await mkdtemp(join(tmpdir(), "ichal-serve-"));
  const readyFile = join(scratch, "port");
  const args = ["-m", "ichal", "serve", "--model-dir", resolve(options.modelDir), "--host", "127.0.0.1", "--port", "0"];
  args.push("--s3-endpoint", options.s3Endpoint, "--ready-file", readyFile);
  if (options.asyncOutput) args.push("--async-output", options.asyncOutput);
  if (options.successTopic) args.push("--success-topic", options.successTopic);
  if (options.errorTopic) args.push("--error-topic", options.errorTopic);
  if (options.snsEndpoint) args.push("--sns-endpoint", options.snsEndpoint);
  if (options.device) args.push("--device", options.device);
  const threads = String(options.cpuThreads ?? process.env.OMP_NUM_THREADS ?? 1);
  const { AWS_PROFILE: _profile, AWS_SESSION_TOKEN: _token, ...inherited } = process.env;
  const child = spawn(MODEL_PYTHON, args, {
    cwd: MODEL_CONTAINER_DIR,
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      ...inherited,
      ...options.environment,
      AWS_ACCESS_KEY_ID: LOCAL_AWS.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_AWS.credentials.secretAccessKey,
      AWS_DEFAULT_REGION: LOCAL_AWS.region,
      OMP_NUM_THREADS: threads,
      MKL_NUM_THREADS: threads,
      PYTHONUNBUFFERED: "1",
    },
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  const onExit = () => child.kill("SIGKILL");
  process.once("exit", onExit);
  try {
    const port = await waitForPort(readyFile, child, timeoutMs, () => stderr);
    const endpoint = `http://127.0.0.1:${port}`;
    await waitForPing(endpoint, child, timeoutMs, () => stderr);
    return {
      endpoint,
      log: () => stderr,
      async stop() {
        process.off("exit", onExit);
        await terminate(child, STOP_GRACE_MS);
        await rm(scratch, { recursive: true, force: true });
      },
    };
  } catch (error) {
    process.off("exit", onExit);
    await terminate(child, STOP_GRACE_MS);
    await rm(scratch, { recursive: true, force: true });
    throw error;
  }
}

async function waitForPort(readyFile: string, child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`model server exited with ${child.exitCode}: ${stderr()}`);
    const text = await readFile(readyFile, "utf8").catch(() => "");
    const port = Number.parseInt(text, 10);
    if (port > 0) return port;
    await sleep(100);
  }
  throw new Error(`model server did not start within ${timeoutMs} ms: ${stderr()}`);
}

async function waitForPing(endpoint: string, child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`model server exited with ${child.exitCode}: ${stderr()}`);
    try {
      const res = await fetch(`${endpoint}/ping`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`model server on ${endpoint} did not answer GET /ping 200 within ${timeoutMs} ms: ${stderr()}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
