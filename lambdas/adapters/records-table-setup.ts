import { CreateTableCommand, type DynamoDBClient, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { RECORDS_TABLE } from "../contracts/records-table.js";

/**
 * Creates the records table with its `by-status` GSI, as the CDK construct defines it. Used only
 * where CloudFormation is not: the local emulator (local default, integration tests).
 */
export async function createRecordsTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const { partitionKey, sortKey, statusIndex } = RECORDS_TABLE;
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: partitionKey, AttributeType: "S" },
        { AttributeName: sortKey, AttributeType: "S" },
        { AttributeName: statusIndex.partitionKey, AttributeType: "S" },
        { AttributeName: statusIndex.sortKey, AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: partitionKey, KeyType: "HASH" },
        { AttributeName: sortKey, KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: statusIndex.name,
          KeySchema: [
            { AttributeName: statusIndex.partitionKey, KeyType: "HASH" },
            { AttributeName: statusIndex.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: tableName });
}
