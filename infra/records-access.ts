import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { RECORDS_TABLE } from "../lambdas/contracts/records-table.js";

/** The item operations the DynamoDB adapters use (TransactWriteItems needs its parts: Update, ConditionCheck). */
const ITEM_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"];

/**
 * Least-privilege access to the records table for a Lambda: item reads and conditional writes on the
 * table, and Query on the table and on the `by-status` index by its exact name — no Scan, no table
 * administration, no wildcard; DeleteItem only with `deleteItems` (notify releases its conditional send claim).
 */
export const recordsReadWrite = (
  table: { readonly tableArn: string },
  options: { readonly deleteItems?: boolean } = {},
): PolicyStatement[] => [
  new PolicyStatement({
    sid: "RecordsItems",
    actions: options.deleteItems ? [...ITEM_ACTIONS, "dynamodb:DeleteItem"] : ITEM_ACTIONS,
    resources: [table.tableArn],
  }),
  new PolicyStatement({
    sid: "RecordsQuery",
    actions: ["dynamodb:Query"],
    resources: [table.tableArn, `${table.tableArn}/index/${RECORDS_TABLE.statusIndex.name}`],
  }),
];
