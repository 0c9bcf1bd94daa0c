/**
 * Key layout of the records table, shared by the CDK construct, the DynamoDB adapter and the local
 * harness so that the three can never disagree.
 *
 *   pk                     sk        gsi1pk (sparse)      gsi1sk
 *   STACK#<stackId>        RECORD    STATUS#<status>      <receivedAt>#<stackId>
 *   ROUND#<roundId>        ROUND     —
 *   TIMEMODEL              V#<000007> —
 *
 * The `by-status` GSI lists stacks in one status (e.g. all `pending` stacks for the weekly
 * selection) oldest first.
 */
export const RECORDS_TABLE = {
  partitionKey: "pk",
  sortKey: "sk",
  statusIndex: { name: "by-status", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
} as const;

export const recordKeys = {
  stack: (stackId: string) => ({ pk: `STACK#${stackId}`, sk: "RECORD" }),
  round: (roundId: string) => ({ pk: `ROUND#${roundId}`, sk: "ROUND" }),
  timeModel: (version: number) => ({ pk: "TIMEMODEL", sk: `V#${String(version).padStart(6, "0")}` }),
  statusIndex: (status: string, receivedAt: string, stackId: string) => ({
    gsi1pk: `STATUS#${status}`,
    gsi1sk: `${receivedAt}#${stackId}`,
  }),
} as const;
