/**
 * Training runs in the records table (`pk TRAINING`, `sk JOB#<jobName>`; implements domain/learning.ts
 * TrainingLedger). The execution that created a run is kept beside it, so that a retry of the same
 * execution may go on while any other trigger in the same week is turned away.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { type TrainingRun, TrainingRunSchema } from "../contracts/learning.js";
import { RECORDS_TABLE, recordKeys } from "../contracts/records-table.js";
import type { TrainingLedger } from "../domain/learning.js";
import { conditionally } from "./conditional-write.js";
import { parseItem } from "./dynamo-record-store.js";

const { partitionKey, sortKey } = RECORDS_TABLE;

export class DynamoTrainingLedger implements TrainingLedger {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async list(): Promise<TrainingRun[]> {
    const runs: TrainingRun[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :sk)",
          ExpressionAttributeNames: { "#pk": partitionKey, "#sk": sortKey },
          ExpressionAttributeValues: { ":pk": "TRAINING", ":sk": "JOB#" },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) runs.push(this.parse(item));
      start = out.LastEvaluatedKey;
    } while (start);
    return runs;
  }

  async get(jobName: string): Promise<TrainingRun | undefined> {
    const item = await this.item(jobName);
    return item ? this.parse(item) : undefined;
  }

  async executionOf(jobName: string): Promise<string | undefined> {
    const item = await this.item(jobName);
    return typeof item?.execution === "string" ? item.execution : undefined;
  }

  create(run: TrainingRun & { execution: string }): Promise<boolean> {
    const { execution, ...fields } = run;
    const item = { ...TrainingRunSchema.parse(fields), execution, ...recordKeys.trainingRun(run.jobName) };
    return conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: "attribute_not_exists(#pk)",
          ExpressionAttributeNames: { "#pk": partitionKey },
        }),
      ),
    );
  }

  update(jobName: string, fields: Partial<TrainingRun>, expected: readonly TrainingRun["status"][]): Promise<boolean> {
    const valid = TrainingRunSchema.partial().parse(fields);
    const entries = Object.entries(valid).filter(([name, value]) => value !== undefined && name !== "jobName");
    if (entries.length === 0) throw new Error("update: no fields");
    const names: Record<string, string> = { "#pk": partitionKey, "#status": "status" };
    const values: Record<string, unknown> = {};
    entries.forEach(([name, value], i) => {
      names[`#f${i}`] = name;
      values[`:f${i}`] = value;
    });
    expected.forEach((status, i) => {
      values[`:s${i}`] = status;
    });
    return conditionally(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: recordKeys.trainingRun(jobName),
          UpdateExpression: `SET ${entries.map((_, i) => `#f${i} = :f${i}`).join(", ")}`,
          ConditionExpression: `attribute_exists(#pk) AND #status IN (${expected.map((_, i) => `:s${i}`).join(", ")})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }

  private async item(jobName: string): Promise<Record<string, unknown> | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: recordKeys.trainingRun(jobName), ConsistentRead: true }),
    );
    return out.Item;
  }

  private parse(item: Record<string, unknown>): TrainingRun {
    const { execution: _execution, ...rest } = item;
    return parseItem(TrainingRunSchema, `training run ${String(item.jobName)}`, rest);
  }
}
