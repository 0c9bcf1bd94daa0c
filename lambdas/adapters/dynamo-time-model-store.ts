/** Labeling-time model versions in the records table (layout: contracts/records-table.ts, `TIMEMODEL` / `V#<000007>`). */
import { ConditionalCheckFailedException, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { TimeModelVersionSchema } from "../contracts/records.js";
import { RECORDS_TABLE, recordKeys } from "../contracts/records-table.js";
import type { TimeModelRegistry, VersionedTimeModel } from "../domain/time-model-store.js";

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

export class DynamoTimeModelStore implements TimeModelRegistry {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client);
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
    if (!item) return undefined;
    const parsed = TimeModelVersionSchema.safeParse(item);
    if (!parsed.success) throw new CorruptTimeModelError(String(item[RECORDS_TABLE.sortKey]), parsed.error);
    const { version, createdAt: _createdAt, ...model } = parsed.data;
    return { version, model };
  }

  async put(entry: VersionedTimeModel, createdAt: string): Promise<boolean> {
    const parsed = TimeModelVersionSchema.safeParse({ ...entry.model, version: entry.version, createdAt });
    if (!parsed.success || entry.version < 1) throw new InvalidTimeModelError(entry.version, parsed.error);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...parsed.data, ...recordKeys.timeModel(parsed.data.version) },
          ConditionExpression: "attribute_not_exists(#pk)",
          ExpressionAttributeNames: { "#pk": RECORDS_TABLE.partitionKey },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
