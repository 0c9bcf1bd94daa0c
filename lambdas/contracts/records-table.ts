/**
 * Key layout of the records table, shared by the CDK construct, the DynamoDB adapter and the local
 * harness so that the three can never disagree.
 *
 *   pk                     sk        gsi1pk (sparse)      gsi1sk
 *   STACK#<stackId>        RECORD    STATUS#<status>      <receivedAt>#<stackId>
 *   ROUND#<roundId>        ROUND     —
 *   ROUND#<roundId>        NOTIFY#<annotator e-mail>  —   (one per annotator per round: NotificationMark)
 *   TIMEMODEL              V#<000007> —
 *   CONTENT#<sha256>       CONTENT   —                    (which stack first had these voxels: ContentClaim)
 *   MODEL                  IN_SERVICE —                   (the ensemble rounds select on: ModelInService)
 *   STACK#<stackId>        MASKREFUSAL#<uploadId>  —      (one per refused mask upload: contracts/masks.ts MaskRefusal)
 *
 * The `by-status` GSI lists stacks in one status (e.g. all `pending` stacks for the weekly
 * selection) oldest first. Notification marks live in the round's partition but carry no gsi1 keys,
 * so they never appear in the index; they are claimed with attribute_not_exists before the e-mail is
 * sent (at most one e-mail per annotator per round; see NotificationMarkSchema in records.ts).
 */
export const RECORDS_TABLE = {
  partitionKey: "pk",
  sortKey: "sk",
  statusIndex: { name: "by-status", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
} as const;

export const recordKeys = {
  stack: (stackId: string) => ({ pk: `STACK#${stackId}`, sk: "RECORD" }),
  round: (roundId: string) => ({ pk: `ROUND#${roundId}`, sk: "ROUND" }),
  notification: (roundId: string, annotator: string) => ({ pk: `ROUND#${roundId}`, sk: `NOTIFY#${annotator}` }),
  maskRefusal: (stackId: string, uploadId: string) => ({ pk: `STACK#${stackId}`, sk: `MASKREFUSAL#${uploadId}` }),
  modelInService: () => ({ pk: "MODEL", sk: "IN_SERVICE" }),
  trainingRun: (jobName: string) => ({ pk: "TRAINING", sk: `JOB#${jobName}` }),
  content: (contentSha256: string) => ({ pk: `CONTENT#${contentSha256}`, sk: "CONTENT" }),
  timeModel: (version: number) => ({ pk: "TIMEMODEL", sk: `V#${String(version).padStart(6, "0")}` }),
  statusIndex: (status: string, receivedAt: string, stackId: string) => ({
    gsi1pk: `STATUS#${status}`,
    gsi1sk: `${receivedAt}#${stackId}`,
  }),
} as const;
