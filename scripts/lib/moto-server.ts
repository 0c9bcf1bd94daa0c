/**
 * Starts moto server (the local AWS emulator) on 127.0.0.1 on a free port, waits until it answers,
 * and stops it — for the vitest global setup and the local default. The server comes from the
 * project's Python environment (created by scripts/bootstrap.sh).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { terminate } from "./child-process.js";

/** How long moto gets to exit after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 3000;

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const MOTO_SERVER_BIN = process.env.MOTO_SERVER_BIN ?? resolve(PROJECT_ROOT, "model-container/.venv/bin/moto_server");

export interface MotoServer {
  /** e.g. http://127.0.0.1:43121 — use as the SDK clients' `endpoint`. */
  readonly endpoint: string;
  /** Clears every service's state (POST /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Credentials and region for SDK clients pointed at the emulator. */
export const LOCAL_AWS = {
  region: "us-east-1",
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
} as const;

export interface MotoServerOptions {
  timeoutMs?: number;
  /**
   * S3 event notifications carry `versionId` and `sequencer` as AWS's do for a versioned bucket
   * (moto 5.2 omits them; scripts/lib/moto_server_local.py adds them). Default: false.
   */
  s3EventVersionIds?: boolean;
}

export async function startMotoServer(options: MotoServerOptions = {}): Promise<MotoServer> {
  if (!existsSync(MOTO_SERVER_BIN)) {
    throw new Error(`moto server not found at ${MOTO_SERVER_BIN}: run scripts/bootstrap.sh (npm test does) first`);
  }
  // Always through scripts/lib/moto_server_local.py: moto server with DynamoDB writes made atomic.
  const command = resolve(dirname(MOTO_SERVER_BIN), "python");
  const prefix = [resolve(PROJECT_ROOT, "scripts/lib/moto_server_local.py")];
  const timeoutMs = options.timeoutMs ?? 30_000;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(command, [...prefix, "-H", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...process.env,
        MOTO_ALLOW_NONEXISTENT_REGION: "true",
        ICH_AL_S3_EVENT_VERSION_IDS: options.s3EventVersionIds ? "1" : "0",
      },
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      await waitUntilAnswering(endpoint, child, timeoutMs, () => stderr);
      return motoHandle(endpoint, child);
    } catch (error) {
      lastError = error;
      await terminate(child, STOP_GRACE_MS);
    }
  }
  throw lastError;
}

function motoHandle(endpoint: string, child: ChildProcess): MotoServer {
  const onExit = () => child.kill("SIGKILL");
  process.once("exit", onExit);
  return {
    endpoint,
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: "POST" });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
    },
    async stop() {
      process.off("exit", onExit);
      await terminate(child, STOP_GRACE_MS);
    },
  };
}

async function waitUntilAnswering(endpoint: string, child: ChildProcess, timeoutMs: number, stderr: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto server exited with ${child.exitCode}: ${stderr()}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/data.json`);
      if (res.ok) {
        await res.arrayBuffer();
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto server did not answer on ${endpoint} within ${timeoutMs} ms: ${stderr()}`);
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}
