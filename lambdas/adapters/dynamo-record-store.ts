import { type DynamoDBClient, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { z } from "zod";
import { type MaskRefusal, MaskRefusalSchema, StackGeometrySchema } from "../contracts/masks.js";
import {
  type Completion,
  CompletionSchema,
  type InvokeClaim,
  type LastError,
  LastErrorSchema,
  type ModelInService,
  ModelInServiceSchema,
  type NotificationMark,
  NotificationMarkSchema,
  type Prediction,
  PredictionSchema,
  type RoundAssignment,
  RoundAssignmentSchema,
  type RoundStatus,
  ScoresSchema,
  type ScoringInvocation,
  type SelectionRound,
  SelectionRoundSchema,
  type StackRecord,
  StackRecordSchema,
  type StackStatus,
} from "../contracts/records.js";
import { RECORDS_TABLE, recordKeys } from "../contracts/records-table.js";
import type { RecordStore, RoundFailureFields } from "../domain/record-store.js";
import { conditionally } from "./conditional-write.js";

/** Raised when the table holds a record that does not match its schema (a stack, round, mark or model record). */
export class CorruptRecordError extends Error {
  constructor(what: string, cause: unknown) {
    super(`the record of ${JSON.stringify(what)} does not match its schema`, { cause });
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
    return this.conditionalPut(stackItem(StackRecordSchema.parse(record)), "attribute_not_exists(#pk)", {
      "#pk": RECORDS_TABLE.partitionKey,
    });
  }

  async getStack(stackId: string): Promise<StackRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: recordKeys.stack(stackId), ConsistentRead: true }));
    return out.Item ? parseStack(stackId, out.Item) : undefined;
  }

  async listByStatus(status: StackStatus): Promise<StackRecord[]> {
    const { name, partitionKey } = RECORDS_TABLE.statusIndex;
    const items = await this.queryAll({
      IndexName: name,
      KeyConditionExpression: "#gpk = :gpk",
      ExpressionAttributeNames: { "#gpk": partitionKey },
      ExpressionAttributeValues: { ":gpk": `STATUS#${status}` },
    });
    return items.map((item) => parseStack(String(item.stackId), item));
  }

  async transition(
    stackId: string,
    from: StackStatus,
    to: StackStatus,
    fields: Partial<Omit<StackRecord, "stackId" | "status" | "source" | "receivedAt">>,
    now: string,
    guard: { readonly uninvoked?: boolean } = {},
  ): Promise<boolean> {
    const names: Record<string, string> = {
      "#status": "status",
      "#updatedAt": "updatedAt",
      "#gpk": RECORDS_TABLE.statusIndex.partitionKey,
      ...(guard.uninvoked ? { "#scoring": "scoring" } : {}),
    };
    const values: Record<string, unknown> = { ":from": from, ":to": to, ":now": now, ":gpk": `STATUS#${to}` };
    const sets = ["#status = :to", "#updatedAt = :now", "#gpk = :gpk"];
    Object.entries(fields).forEach(([field, value], i) => {
      if (value === undefined) return;
      names[`#f${i}`] = field;
      values[`:f${i}`] = value;
      sets.push(`#f${i} = :f${i}`);
    });
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: `SET ${sets.join(", ")}`,
      ConditionExpression: guard.uninvoked ? "#status = :from AND attribute_not_exists(#scoring)" : "#status = :from",
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  async repredict(stackId: string, prediction: Prediction, now: string): Promise<boolean> {
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: "SET #prediction = :prediction, #updatedAt = :now",
      ConditionExpression: "#status = :pending AND (attribute_not_exists(#prediction) OR #prediction.#version < :version)",
      ExpressionAttributeNames: {
        "#prediction": "prediction",
        "#updatedAt": "updatedAt",
        "#status": "status",
        "#version": "timeModelVersion",
      },
      ExpressionAttributeValues: {
        ":prediction": PredictionSchema.parse(prediction),
        ":now": now,
        ":pending": "pending",
        ":version": prediction.timeModelVersion,
      },
    });
  }

  async createStackWithContent(record: StackRecord & { contentSha256: string }, claimedAt: string): Promise<string> {
    const valid = StackRecordSchema.parse(record);
    const claimKey = recordKeys.content(record.contentSha256);
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: { ...claimKey, contentSha256: record.contentSha256, stackId: valid.stackId, claimedAt },
                ConditionExpression: "attribute_not_exists(#pk) OR #stackId = :stackId",
                ExpressionAttributeNames: { "#pk": RECORDS_TABLE.partitionKey, "#stackId": "stackId" },
                ExpressionAttributeValues: { ":stackId": valid.stackId },
              },
            },
            {
              Put: {
                TableName: this.tableName,
                Item: stackItem(valid),
                ConditionExpression: "attribute_not_exists(#pk)",
                ExpressionAttributeNames: { "#pk": RECORDS_TABLE.partitionKey },
              },
            },
          ],
        }),
      );
      return valid.stackId;
    } catch (error) {
      // Only failed conditions say something about the table; a conflict or throttle is retried by the caller's queue.
      const codes = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []).map((r) => r.Code ?? "None") : [];
      if (codes.length === 0 || codes.some((code) => code !== "None" && code !== "ConditionalCheckFailed")) throw error;
    }
    const claim = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: claimKey, ConsistentRead: true }));
    const holder = claim.Item?.stackId;
    if (typeof holder === "string" && holder !== "") return holder;
    // No claim: the stack record exists from before content keys (its own condition failed). It stays as it is.
    if (await this.getStack(valid.stackId)) return valid.stackId;
    throw new Error("content claim transaction cancelled, but neither the claim nor the stack exists");
  }

  async claimInvocation(stackId: string, claim: InvokeClaim, now: string): Promise<boolean> {
    // A `failed` record without `scoring` is one ingest gave up on (failInvocation): a re-drive may retry it,
    // and the claim puts it back to `received` (status and its by-status index key) while the retry runs.
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: "SET #claim = :claim, #updatedAt = :now, #status = :received, #gpk = :gpk",
      ConditionExpression:
        "(#status = :received OR #status = :failed) AND attribute_not_exists(#scoring) AND (attribute_not_exists(#claim) OR #claim.#expiresAt <= :now)",
      ExpressionAttributeNames: {
        "#claim": "invokeClaim",
        "#updatedAt": "updatedAt",
        "#status": "status",
        "#gpk": RECORDS_TABLE.statusIndex.partitionKey,
        "#scoring": "scoring",
        "#expiresAt": "expiresAt",
      },
      ExpressionAttributeValues: { ":claim": claim, ":now": now, ":received": "received", ":failed": "failed", ":gpk": "STATUS#received" },
    });
  }

  async completeInvocation(stackId: string, token: string, scoring: ScoringInvocation, now: string): Promise<boolean> {
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: "SET #scoring = :scoring, #updatedAt = :now REMOVE #claim, #lastError",
      ConditionExpression: "#claim.#token = :token AND attribute_not_exists(#scoring)",
      ExpressionAttributeNames: {
        "#scoring": "scoring",
        "#updatedAt": "updatedAt",
        "#claim": "invokeClaim",
        "#lastError": "lastError",
        "#token": "token",
      },
      ExpressionAttributeValues: { ":scoring": scoring, ":now": now, ":token": token },
    });
  }

  async releaseInvocation(stackId: string, token: string, error: LastError, now: string): Promise<boolean> {
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: "SET #lastError = :error, #updatedAt = :now REMOVE #claim",
      ConditionExpression: "#claim.#token = :token",
      ExpressionAttributeNames: { "#lastError": "lastError", "#updatedAt": "updatedAt", "#claim": "invokeClaim", "#token": "token" },
      ExpressionAttributeValues: { ":error": error, ":now": now, ":token": token },
    });
  }

  async failInvocation(stackId: string, token: string, error: LastError, now: string): Promise<boolean> {
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: "SET #status = :failed, #gpk = :gpk, #lastError = :error, #updatedAt = :now REMOVE #claim",
      ConditionExpression: "#status = :received AND #claim.#token = :token AND attribute_not_exists(#scoring)",
      ExpressionAttributeNames: {
        "#status": "status",
        "#gpk": RECORDS_TABLE.statusIndex.partitionKey,
        "#lastError": "lastError",
        "#updatedAt": "updatedAt",
        "#claim": "invokeClaim",
        "#token": "token",
        "#scoring": "scoring",
      },
      ExpressionAttributeValues: {
        ":failed": "failed",
        ":received": "received",
        ":gpk": "STATUS#failed",
        ":error": LastErrorSchema.parse(error),
        ":now": now,
        ":token": token,
      },
    });
  }

  async getModelInService(): Promise<ModelInService | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: recordKeys.modelInService(), ConsistentRead: true }));
    return out.Item ? parseItem(ModelInServiceSchema, "model in service", out.Item) : undefined;
  }

  async claimModelInService(model: ModelInService): Promise<ModelInService> {
    const valid = ModelInServiceSchema.parse(model);
    if (
      await this.conditionalPut({ ...valid, ...recordKeys.modelInService() }, "attribute_not_exists(#pk)", {
        "#pk": RECORDS_TABLE.partitionKey,
      })
    ) {
      return valid;
    }
    const holder = await this.getModelInService();
    if (!holder) throw new Error("the model-in-service claim failed, yet no model is in service");
    return holder;
  }

  async promoteModel(next: ModelInService, expectedSequence: number): Promise<boolean> {
    return this.conditionalPut(
      { ...ModelInServiceSchema.parse(next), ...recordKeys.modelInService() },
      "#sequence = :expected",
      { "#sequence": "sequence" },
      { ":expected": expectedSequence },
    );
  }

  async rescoreStack(stackId: string, fields: Pick<StackRecord, "scores" | "prediction" | "geometry">, now: string): Promise<boolean> {
    const scores = ScoresSchema.parse(fields.scores);
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: `SET #scores = :scores, #prediction = :prediction, #updatedAt = :now${fields.geometry ? ", #geometry = :geometry" : ""}`,
      ConditionExpression: "#status = :pending AND (attribute_not_exists(#scores) OR #scores.#modelVersion <> :modelVersion)",
      ExpressionAttributeNames: {
        "#scores": "scores",
        "#prediction": "prediction",
        "#updatedAt": "updatedAt",
        "#status": "status",
        "#modelVersion": "modelVersion",
        ...(fields.geometry ? { "#geometry": "geometry" } : {}),
      },
      ExpressionAttributeValues: {
        ":scores": scores,
        ":prediction": PredictionSchema.parse(fields.prediction),
        ":now": now,
        ":pending": "pending",
        ":modelVersion": scores.modelVersion,
        ...(fields.geometry ? { ":geometry": StackGeometrySchema.parse(fields.geometry) } : {}),
      },
    });
  }

  async createRound(round: SelectionRound): Promise<boolean> {
    const valid = SelectionRoundSchema.parse(round);
    return this.conditionalPut({ ...valid, ...recordKeys.round(valid.roundId) }, "attribute_not_exists(#pk)", {
      "#pk": RECORDS_TABLE.partitionKey,
    });
  }

  async getRound(roundId: string): Promise<SelectionRound | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: recordKeys.round(roundId), ConsistentRead: true }));
    return out.Item ? parseItem(SelectionRoundSchema, `round ${roundId}`, out.Item) : undefined;
  }

  async completeRound(round: SelectionRound): Promise<boolean> {
    const valid = SelectionRoundSchema.parse(round);
    return this.conditionalPut(
      { ...valid, ...recordKeys.round(valid.roundId) },
      "#status = :selecting",
      { "#status": "status" },
      {
        ":selecting": "selecting",
      },
    );
  }

  async reclaimRound(round: SelectionRound): Promise<boolean> {
    const valid = SelectionRoundSchema.parse(round);
    return this.conditionalPut(
      { ...valid, ...recordKeys.round(valid.roundId) },
      "#status = :failed",
      { "#status": "status" },
      { ":failed": "failed" },
    );
  }

  async recordRoundFailure(roundId: string, expected: RoundStatus, fields: RoundFailureFields): Promise<boolean> {
    const names: Record<string, string> = { "#status": "status", "#error": "error", "#failedAt": "failedAt" };
    const values: Record<string, unknown> = {
      ":expected": expected,
      ":status": fields.status,
      ":error": fields.error,
      ":at": fields.failedAt,
    };
    const sets = ["#status = :status", "#error = :error", "#failedAt = :at"];
    if (fields.restoredToPool !== undefined) {
      names["#restored"] = "restoredToPool";
      values[":restored"] = fields.restoredToPool;
      sets.push("#restored = :restored");
    }
    return this.conditionalUpdate({
      Key: recordKeys.round(roundId),
      UpdateExpression: `SET ${sets.join(", ")}`,
      ConditionExpression: "#status = :expected",
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  async releaseSelection(stackId: string, roundId: string, now: string): Promise<boolean> {
    try {
      await this.doc.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              ConditionCheck: {
                TableName: this.tableName,
                Key: recordKeys.round(roundId),
                ConditionExpression: "#status = :failed",
                ExpressionAttributeNames: { "#status": "status" },
                ExpressionAttributeValues: { ":failed": "failed" },
              },
            },
            {
              Update: {
                TableName: this.tableName,
                Key: recordKeys.stack(stackId),
                UpdateExpression: "SET #status = :pending, #gpk = :gpk, #updatedAt = :now REMOVE #selectedBy, #assignedTo",
                ConditionExpression: "#status = :selected AND #selectedBy = :round",
                ExpressionAttributeNames: {
                  "#status": "status",
                  "#gpk": RECORDS_TABLE.statusIndex.partitionKey,
                  "#updatedAt": "updatedAt",
                  "#selectedBy": "selectedBy",
                  "#assignedTo": "assignedTo",
                },
                ExpressionAttributeValues: {
                  ":pending": "pending",
                  ":selected": "selected",
                  ":gpk": "STATUS#pending",
                  ":now": now,
                  ":round": roundId,
                },
              },
            },
          ],
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof TransactionCanceledException) return false;
      throw error;
    }
  }

  async assignRound(roundId: string, assignment: RoundAssignment): Promise<boolean> {
    const valid = RoundAssignmentSchema.parse(assignment);
    return this.conditionalUpdate({
      Key: recordKeys.round(roundId),
      UpdateExpression: "SET #assignment = :assignment",
      ConditionExpression: "#status = :completed AND attribute_not_exists(#assignment)",
      ExpressionAttributeNames: { "#assignment": "assignment", "#status": "status" },
      ExpressionAttributeValues: { ":assignment": valid, ":completed": "completed" },
    });
  }

  async assignStack(stackId: string, roundId: string, annotator: string, now: string): Promise<boolean> {
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: "SET #assignedTo = :annotator, #updatedAt = :now",
      ConditionExpression:
        "#status = :selected AND #selectedBy = :round AND (attribute_not_exists(#assignedTo) OR #assignedTo = :annotator)",
      ExpressionAttributeNames: {
        "#assignedTo": "assignedTo",
        "#updatedAt": "updatedAt",
        "#status": "status",
        "#selectedBy": "selectedBy",
      },
      ExpressionAttributeValues: { ":annotator": annotator, ":now": now, ":selected": "selected", ":round": roundId },
    });
  }

  async completeStack(stackId: string, completion: Completion, now: string): Promise<boolean> {
    return this.conditionalUpdate({
      Key: recordKeys.stack(stackId),
      UpdateExpression: "SET #status = :labeled, #gpk = :gpk, #completion = :completion, #updatedAt = :now",
      ConditionExpression: "#status = :selected AND #assignedTo = :annotator",
      ExpressionAttributeNames: {
        "#status": "status",
        "#gpk": RECORDS_TABLE.statusIndex.partitionKey,
        "#completion": "completion",
        "#updatedAt": "updatedAt",
        "#assignedTo": "assignedTo",
      },
      ExpressionAttributeValues: {
        ":labeled": "labeled",
        ":gpk": "STATUS#labeled",
        ":completion": CompletionSchema.parse(completion),
        ":now": now,
        ":selected": "selected",
        ":annotator": completion.annotator,
      },
    });
  }

  async recordMaskRefusal(stackId: string, uploadId: string, refusal: MaskRefusal): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...MaskRefusalSchema.parse(refusal), ...recordKeys.maskRefusal(stackId, uploadId) },
      }),
    );
  }

  async listMaskRefusals(stackId: string): Promise<MaskRefusal[]> {
    const { pk, sk } = recordKeys.maskRefusal(stackId, "");
    const items = await this.queryAll({
      KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :sk)",
      ExpressionAttributeNames: { "#pk": RECORDS_TABLE.partitionKey, "#sk": RECORDS_TABLE.sortKey },
      ExpressionAttributeValues: { ":pk": pk, ":sk": sk },
      ConsistentRead: true,
    });
    return items.map((item) => MaskRefusalSchema.parse(item)).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  async claimNotification(mark: NotificationMark): Promise<boolean> {
    const valid = NotificationMarkSchema.parse(mark);
    return this.conditionalPut({ ...valid, ...recordKeys.notification(valid.roundId, valid.annotator) }, "attribute_not_exists(#pk)", {
      "#pk": RECORDS_TABLE.partitionKey,
    });
  }

  async markNotificationSent(roundId: string, annotator: string, token: string, messageId: string, sentAt: string): Promise<boolean> {
    return this.conditionalUpdate({
      Key: recordKeys.notification(roundId, annotator),
      UpdateExpression: "SET #status = :sent, #messageId = :messageId, #sentAt = :sentAt",
      ConditionExpression: "#status = :sending AND #token = :token",
      ExpressionAttributeNames: { "#status": "status", "#messageId": "messageId", "#sentAt": "sentAt", "#token": "token" },
      ExpressionAttributeValues: { ":sent": "sent", ":sending": "sending", ":messageId": messageId, ":sentAt": sentAt, ":token": token },
    });
  }

  async releaseNotification(roundId: string, annotator: string, token: string): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: recordKeys.notification(roundId, annotator),
          ConditionExpression: "#status = :sending AND #token = :token",
          ExpressionAttributeNames: { "#status": "status", "#token": "token" },
          ExpressionAttributeValues: { ":sending": "sending", ":token": token },
        }),
      ),
    );
  }

  async getNotification(roundId: string, annotator: string): Promise<NotificationMark | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: recordKeys.notification(roundId, annotator), ConsistentRead: true }),
    );
    return out.Item ? parseItem(NotificationMarkSchema, `notification ${roundId}/${annotator}`, out.Item) : undefined;
  }

  /** Every item a Query matches, page by page. */
  private async queryAll(input: Omit<ConstructorParameters<typeof QueryCommand>[0], "TableName" | "ExclusiveStartKey">) {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(new QueryCommand({ TableName: this.tableName, ...input, ExclusiveStartKey: startKey }));
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  /** Runs a conditional PutItem; false when its condition did not hold. */
  private async conditionalPut(
    item: Record<string, unknown>,
    condition: string,
    names: Record<string, string>,
    values?: Record<string, unknown>,
  ): Promise<boolean> {
    return conditionally(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: condition,
          ExpressionAttributeNames: names,
          ...(values ? { ExpressionAttributeValues: values } : {}),
        }),
      ),
    );
  }

  /** Runs a conditional UpdateItem; false when its condition did not hold. */
  private async conditionalUpdate(input: Omit<ConstructorParameters<typeof UpdateCommand>[0], "TableName">): Promise<boolean> {
    return conditionally(() => this.doc.send(new UpdateCommand({ TableName: this.tableName, ...input })));
  }
}

/** A stack record as stored: its fields, its keys and its by-status index keys. */
function stackItem(record: StackRecord): Record<string, unknown> {
  return { ...record, ...recordKeys.stack(record.stackId), ...recordKeys.statusIndex(record.status, record.receivedAt, record.stackId) };
}

function parseStack(stackId: string, item: Record<string, unknown>): StackRecord {
  return parseItem(StackRecordSchema, stackId, item);
}

/** A stored item without its key attributes, parsed; CorruptRecordError naming `what` when it does not parse. */
export function parseItem<T>(schema: z.ZodType<T>, what: string, item: Record<string, unknown>): T {
  const record: Record<string, unknown> = { ...item };
  for (const key of KEY_ATTRIBUTES) delete record[key];
  const parsed = schema.safeParse(record);
  if (!parsed.success) throw new CorruptRecordError(what, parsed.error);
  return parsed.data;
}
