/**
 * What the browser tests run against: moto server with the records table and studies bucket, the
 * worklist server (scripts/lib/worklist-server.ts) in front of the REAL complete handler, and headless
 * Chromium (test/support/chromium.ts), skipped with the reason printed only where none can be found.
 */
import "./handler-environment.js";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import { maskObjectsClient, S3MaskObjects, S3ViewerObjects } from "../../lambdas/adapters/s3-mask-objects.js";
import { S3OverlayObjects } from "../../lambdas/adapters/s3-overlay-objects.js";
import { createCompleteHandler } from "../../lambdas/handlers/complete-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { LOCAL_AWS, type MotoServer, startMotoServer } from "../../scripts/lib/moto-server.js";
import {
  type ProxyHandler,
  startWorklistServer,
  type WorklistServer,
  type WorklistServerOptions,
} from "../../scripts/lib/worklist-server.js";
import { findChromium } from "../support/chromium.js";
import { ANNOTATOR_DIRECTORY, ANNOTATORS_BY_SUB } from "../support/round-fixtures.js";

export const TABLE = "ich-al-records";
export const BUCKET = "studies";

const CHROMIUM = await findChromium();
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why `label`'s browser tests are skipped (printed once), or undefined where Chromium was found. */
export function chromiumMissing(label: string): string | undefined {
  const missing = "missing" in CHROMIUM ? CHROMIUM.missing : undefined;
  if (missing) console.warn(`${label} browser tests skipped: ${missing}`);
  return missing;
}

export interface LocalStack {
  readonly moto: MotoServer;
  readonly dynamo: DynamoDBClient;
  readonly s3: S3Client;
  readonly store: DynamoRecordStore;
  readonly server: WorklistServer;
  /** Undefined where no Chromium was found. */
  readonly browser: Browser | undefined;
}

export interface LocalStackOptions {
  /** Names the test file in the Chromium line printed. */
  readonly label: string;
  /** The handler also answers GET /overlays from the studies bucket. */
  readonly overlays?: boolean;
  readonly idleSeconds?: WorklistServerOptions["idleSeconds"];
  readonly tokenLifetimeSeconds?: WorklistServerOptions["tokenLifetimeSeconds"];
}

/** Starts moto, the worklist server with the complete handler on it, and Chromium; stops what started if one fails. */
async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const moto = await startMotoServer();
  let server: WorklistServer | undefined;
  try {
    const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: moto.endpoint });
    const s3 = new S3Client({ ...LOCAL_AWS, endpoint: moto.endpoint, forcePathStyle: true });
    const store = new DynamoRecordStore(dynamo, TABLE);
    const client = maskObjectsClient({ ...LOCAL_AWS, endpoint: moto.endpoint, forcePathStyle: true });
    const handler = createCompleteHandler({
      records: store,
      annotators: ANNOTATORS_BY_SUB,
      clock: () => new Date().toISOString(),
      timeZone: "UTC",
      log: lambdaLogger("complete", () => {}),
      ...(options.overlays ? { overlays: new S3OverlayObjects(s3, BUCKET) } : {}),
      masks: new S3MaskObjects(client, BUCKET),
      viewer: new S3ViewerObjects(client, BUCKET),
    });
    server = await startWorklistServer({
      handler: handler as unknown as ProxyHandler,
      annotators: ANNOTATOR_DIRECTORY,
      storageEndpoint: moto.endpoint,
      ...(options.idleSeconds !== undefined ? { idleSeconds: options.idleSeconds } : {}),
      ...(options.tokenLifetimeSeconds !== undefined ? { tokenLifetimeSeconds: options.tokenLifetimeSeconds } : {}),
    });
    let browser: Browser | undefined;
    if ("executablePath" in CHROMIUM) {
      browser = await chromium.launch({ executablePath: CHROMIUM.executablePath, args: CHROMIUM_ARGS, headless: true });
      console.info(`${options.label} browser tests: Chromium ${browser.version()} (${CHROMIUM.source})`);
    }
    return { moto, dynamo, s3, store, server, browser };
  } catch (error) {
    await server?.close();
    await moto.stop();
    throw error;
  }
}

/**
 * The local stack for the calling test file: started before its tests, stopped after them. The parts are
 * filled in once it started (in the file's own hooks and tests, not at import).
 */
export function useLocalStack(options: LocalStackOptions): LocalStack {
  const parts: Partial<LocalStack> = {};
  beforeAll(async () => {
    Object.assign(parts, await startLocalStack(options));
  });
  afterAll(() => stopLocalStack(parts));
  return parts as LocalStack;
}

/** Stops what started (any part may be missing after a failed start). */
async function stopLocalStack({ browser, server, moto }: Partial<LocalStack>): Promise<void> {
  await browser?.close();
  await server?.close();
  await moto?.stop();
}

/** An empty records table and studies bucket. */
export async function resetLocalStack({ moto, dynamo, s3 }: Pick<LocalStack, "moto" | "dynamo" | "s3">): Promise<void> {
  await moto.reset();
  await createRecordsTable(dynamo, TABLE);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
}

/**
 * Runs one of test/browser's Python scripts (which write the fixtures: volumes, overlays) with the model
 * container's environment and package; its output is discarded, its errors shown.
 */
export function runFixtureScript(script: string, args: string[], options: { cwd?: string } = {}): void {
  execFileSync(resolve("model-container/.venv/bin/python"), [resolve("test/browser", script), ...args], {
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: { ...process.env, PYTHONPATH: resolve("model-container") },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** The page's "Sign in" → the local authorization server's form → back on the page with a code (PKCE). */
export async function signInAs(page: Page, email: string): Promise<void> {
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/oauth2\/authorize\?/);
  await page.locator("#annotator").selectOption(email);
  await page.getByRole("button", { name: "Sign in" }).click();
}
