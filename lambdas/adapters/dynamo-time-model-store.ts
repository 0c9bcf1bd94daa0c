/** Labeling-time model versions in the records table (layout: contracts/records-table.ts, `TIMEMODEL` / `V#<000007>`). */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { TimeModelVersionSchema } from "../contracts/records.js";
import { RECORDS_TABLE, recordKeys } from "../contracts/records-table.js";
import { MIN_PRIOR_STRENGTH, timeModelFromPrior } from "../domain/labeling-time-model.js";
import type { TimeModelRegistry, VersionedTimeModel } from "../domain/time-model-store.js";
import { conditionally } from "./conditional-write.js";

/** Raised when the newest TIMEMODEL item is not a valid TimeModelVersion. */
export class CorruptTimeModelError extends Error {
  constructor(sortKey: string, cause: unknown) {
    super(`time model ${JSON.stringify(sortKey)} does not match TimeModelVersionSchema`, { cause });
    this.name = "CorruptTimeModelError";
  }
}

/** Raised when asked to store something that is not a valid fitted TimeModelVersion (nothing is written). */
export class InvalidTimeModelError extends Error {
  constructor(version: number, cause: unknown) {
    super(`time model version ${version} does not match TimeModelVersionSchema or is not ≥ 1`, { cause });
    this.name = "InvalidTimeModelError";
  }
}

/** A version stored by the least-squares refit of before (coefficients, no posterior). */
const LegacyTimeModelVersionSchema = z.object({
  version: z.number().int().positive(),
  source: z.literal("fit"),
  alpha: z.number().finite(),
  beta: z.number().finite(),
  gamma: z.number().finite(),
  n: z.number().int().positive(),
  r2: z.number().finite().max(1).nullable(),
  residualSd: z.number().finite().nonnegative(),
  design: z.unknown(),
  posterior: z.never().optional(),
});

/**
 * Reads a least-squares version as a posterior centred on its coefficients (α, β clipped at 0) worth
 * its n completions. Its `prior` differs from any configured one, so the next refit stores a proper
 * posterior from all completions; until then scoring and assignment keep working.
 */
function upgradeLegacy(item: z.infer<typeof LegacyTimeModelVersionSchema>): VersionedTimeModel {
  const centre = {
    alpha: Math.max(0, item.alpha),
    beta: Math.max(0, item.beta),
    gamma: item.gamma,
    residualSd: Math.max(item.residualSd, 0.05),
    strength: Math.max(item.n, MIN_PRIOR_STRENGTH),
  };
  return { version: item.version, model: { ...timeModelFromPrior(centre), source: "fit", n: item.n, r2: item.r2 } };
}

export class DynamoTimeModelStore implements TimeModelRegistry {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
  }

  async get(version: number): Promise<VersionedTimeModel | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: recordKeys.timeModel(version), ConsistentRead: true }),
    );
    return out.Item ? this.parse(out.Item) : undefined;
  }

  async latest(): Promise<VersionedTimeModel | undefined> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: "#pk = :pk",
        ExpressionAttributeNames: { "#pk": RECORDS_TABLE.partitionKey },
        ExpressionAttributeValues: { ":pk": recordKeys.timeModel(0).pk },
        ScanIndexForward: false, // V#<zero-padded version>: the last sort key is the newest version
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? this.parse(item) : undefined;
  }

  private parse(item: Record<string, unknown>): VersionedTimeModel {
    const legacy = LegacyTimeModelVersionSchema.safeParse(item);
    if (legacy.success) return upgradeLegacy(legacy.data);
    const parsed = TimeModelVersionSchema.safeParse(item);
    if (!parsed.success) throw new CorruptTimeModelError(String(item[RECORDS_TABLE.sortKey]), parsed.error);
    const { version, createdAt: _createdAt, ...model } = parsed.data;
    return { version, model };
  }

  async put(entry: VersionedTimeModel, createdAt: string): Promise<boolean> {
    const parsed = TimeModelVersionSchema.safeParse({ ...entry.model, version: entry.version, createdAt });
    if (!parsed.success || entry.version < 1) throw new InvalidTimeModelError(entry.version, parsed.error);
    return conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...parsed.data, ...recordKeys.timeModel(parsed.data.version) },
          ConditionExpression: "attribute_not_exists(#pk)",
          ExpressionAttributeNames: { "#pk": RECORDS_TABLE.partitionKey },
        }),
      ),
    );
  }
}
