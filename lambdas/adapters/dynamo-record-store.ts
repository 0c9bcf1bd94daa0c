import { ConditionalCheckFailedException, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { type StackRecord, StackRecordSchema, type StackStatus } from "../contracts/records.js";
import { RECORDS_TABLE, recordKeys } from "../contracts/records-table.js";
import type { RecordStore } from "../domain/record-store.js";

/** Raised when the table holds something that is not a valid stack record. */
export class CorruptRecordError extends Error {
  constructor(stackId: string, cause: unknown) {
    super(`record for stack ${JSON.stringify(stackId)} does not match StackRecordSchema`, { cause });
    this.name = "CorruptRecordError";
  }
}

const KEY_ATTRIBUTES = [
  RECORDS_TABLE.partitionKey,
  RECORDS_TABLE.sortKey,
  RECORDS_TABLE.statusIndex.partitionKey,
  RECORDS_TABLE.statusIndex.sortKey,
] as const;

/** Stack records in the records table (layout: contracts/records-table.ts). */
export class DynamoRecordStore implements RecordStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async createStack(record: StackRecord): Promise<boolean> {
    const valid = StackRecordSchema.parse(record);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...valid,
            ...recordKeys.stack(valid.stackId),
            ...recordKeys.statusIndex(valid.status, valid.receivedAt, valid.stackId),
          },
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

  async getStack(stackId: string): Promise<StackRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: recordKeys.stack(stackId), ConsistentRead: true }));
    return out.Item ? parseStack(stackId, out.Item) : undefined;
  }

  async listByStatus(status: StackStatus): Promise<StackRecord[]> {
    const { name, partitionKey } = RECORDS_TABLE.statusIndex;
    const records: StackRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: name,
          KeyConditionExpression: "#gpk = :gpk",
          ExpressionAttributeNames: { "#gpk": partitionKey },
          ExpressionAttributeValues: { ":gpk": `STATUS#${status}` },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) records.push(parseStack(String(item.stackId), item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return records;
  }

  async transition(
    stackId: string,
    from: StackStatus,
    to: StackStatus,
    fields: Partial<Omit<StackRecord, "stackId" | "status" | "source" | "receivedAt">>,
    now: string,
  ): Promise<boolean> {
    const names: Record<string, string> = {
      "#status": "status",
      "#updatedAt": "updatedAt",
      "#gpk": RECORDS_TABLE.statusIndex.partitionKey,
    };
    const values: Record<string, unknown> = { ":from": from, ":to": to, ":now": now, ":gpk": `STATUS#${to}` };
    const sets = ["#status = :to", "#updatedAt = :now", "#gpk = :gpk"];
    Object.entries(fields).forEach(([field, value], i) => {
      if (value === undefined) return;
      names[`#f${i}`] = field;
      values[`:f${i}`] = value;
      sets.push(`#f${i} = :f${i}`);
    });
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: recordKeys.stack(stackId),
          UpdateExpression: `SET ${sets.join(", ")}`,
          ConditionExpression: "#status = :from",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}

function parseStack(stackId: string, item: Record<string, unknown>): StackRecord {
  const record: Record<string, unknown> = { ...item };
  for (const key of KEY_ATTRIBUTES) delete record[key];
  const parsed = StackRecordSchema.safeParse(record);
  if (!parsed.success) throw new CorruptRecordError(stackId, parsed.error);
  return parsed.data;
}
