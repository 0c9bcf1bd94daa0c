/**
 * For integration tests: real SDK v3 clients pointed at the run's moto server, with all emulator
 * state reset before each test (integration files run one at a time, see vitest.config.ts).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { beforeEach, inject } from "vitest";
import { LOCAL_AWS } from "../../scripts/lib/moto-server.js";

export function useLocalAws() {
  const endpoint = inject("motoEndpoint");
  beforeEach(async () => {
    const res = await fetch(`${endpoint}/moto-api/reset`, { method: "POST" });
    if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
  });
  return {
    endpoint,
    dynamo: () => new DynamoDBClient({ ...LOCAL_AWS, endpoint }),
    /** Path-style addressing: moto serves buckets under the endpoint's path. */
    s3: () => new S3Client({ ...LOCAL_AWS, endpoint, forcePathStyle: true }),
  };
}
