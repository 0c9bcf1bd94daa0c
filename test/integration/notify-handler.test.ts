/**
 * The notify handler end to end against moto server with the real SDK v3 clients and adapters:
 * DynamoDB (round, stacks, notification marks) and SESv2 SendEmail with raw MIME, the sent mail read
 * back from moto's `GET /moto-api/data.json` (`ses.RawMessage[]`: `{ id, source, destinations, raw_data }`).
 */

import { CreateEmailIdentityCommand, SESv2Client } from "@aws-sdk/client-sesv2";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoRecordStore } from "../../lambdas/adapters/dynamo-record-store.js";
import { createRecordsTable } from "../../lambdas/adapters/records-table-setup.js";
import { SesMailer } from "../../lambdas/adapters/ses-mailer.js";
import { runSelectionRound } from "../../lambdas/domain/selection-round.js";
import { createNotifyHandler } from "../../lambdas/handlers/notify-handler.js";
import { lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { LOCAL_AWS } from "../../scripts/lib/moto-server.js";
import { useLocalAws } from "../support/local-aws.js";
import { PLANTED_KEY, PLANTED_SERIES, parseMime, pendingStack } from "../support/round-fixtures.js";

const aws = useLocalAws();
const TABLE = "ich-al-records";
const SENDER = "ich-al@example.org";
const ANNOTATORS = ["zed@example.org", "amy@example.org", "bob@example.org"];
const NOW = "2026-11-26T06:00:00.000Z";
const ROUND = "select-2026-W48";

interface SentMail {
  id: string;
  source: string;
  destinations: string[];
  raw_data: string;
}

let store: DynamoRecordStore;
let ses: SESv2Client;

async function sentMail(): Promise<SentMail[]> {
  const res = await fetch(`${aws.endpoint}/moto-api/data.json`);
  const data = (await res.json()) as { ses?: { RawMessage?: SentMail[] } };
  return data.ses?.RawMessage ?? [];
}

function notify(client: SESv2Client = ses) {
  let n = 0;
  return createNotifyHandler({
    records: store,
    mailer: new SesMailer(client),
    settings: { sender: SENDER, annotators: ANNOTATORS, budgetSeconds: 2 * 3600, worklistUrl: "https://label.example.org/worklist" },
    clock: () => new Date().toISOString(),
    newToken: () => `token-${Date.now()}-${n++}`,
    log: lambdaLogger("notify", () => {}),
  });
}

/** Recipients of the sent mail, one entry per message (moto lists To twice in `destinations`). */
function recipients(mail: SentMail[]): string[] {
  return mail.map((m) => parseMime(m.raw_data).headers.get("to") ?? "").sort();
}

beforeEach(async () => {
  const dynamo = aws.dynamo();
  await createRecordsTable(dynamo, TABLE);
  store = new DynamoRecordStore(dynamo, TABLE);
  ses = new SESv2Client({ ...LOCAL_AWS, endpoint: aws.endpoint });
  for (let i = 0; i < 12; i++) expect(await store.createStack(pendingStack(i, 300 + 97 * i))).toBe(true);
  const out = await runSelectionRound(NOW, {
    records: store,
    settings: { budgetSeconds: 2 * 3600, resolutionSeconds: 1, timeZone: "UTC" },
  });
  expect(out.selected.length).toBeGreaterThanOrEqual(3);
});

describe("notify handler on moto (DynamoDB + SESv2 raw)", () => {
  it("sends each annotator one multipart e-mail with their worklist; a second run sends nothing", async () => {
    await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: SENDER }));
    const out = await notify()({ now: NOW, roundId: ROUND });
    expect(out).toEqual({ roundId: ROUND, sent: 3, alreadyNotified: 0, annotators: 3 });
    const mail = await sentMail();
    expect(recipients(mail)).toEqual([...ANNOTATORS].sort());

    const round = await store.getRound(ROUND);
    const shares = round?.assignment?.annotators ?? [];
    expect(shares.flatMap((s) => s.stackIds).sort()).toEqual(round?.selected);
    for (const share of shares) {
      const message = mail.find((m) => parseMime(m.raw_data).headers.get("to") === share.annotator) as SentMail;
      expect(message.source).toBe(SENDER);
      const mime = parseMime(message.raw_data);
      expect(mime.parts.map((p) => p.headers.get("content-type"))).toEqual(["text/plain; charset=UTF-8", "text/html; charset=UTF-8"]);
      expect(mime.parts[0]?.body).toContain(`worklist?round=${ROUND}`);
      for (const id of share.stackIds) {
        expect(mime.parts[0]?.body).toContain(`(id ${id},`);
        expect(mime.parts[1]?.body).toContain(`(id ${id},`);
        expect((await store.getStack(id))?.assignedTo).toBe(share.annotator);
      }
      const mark = await store.getNotification(ROUND, share.annotator);
      expect(mark).toMatchObject({ status: "sent", messageId: message.id });
      const everything = message.raw_data + mime.parts.map((p) => p.body).join("");
      expect(everything).not.toContain(PLANTED_KEY);
      expect(everything).not.toContain("DOE");
      expect(everything).not.toContain(PLANTED_SERIES);
    }

    expect(await notify()({ now: NOW, roundId: ROUND })).toEqual({ roundId: ROUND, sent: 0, alreadyNotified: 3, annotators: 3 });
    expect(await sentMail()).toHaveLength(3);
  });

  it("concurrent runs: each annotator exactly one e-mail", async () => {
    await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: SENDER }));
    const outs = await Promise.all([1, 2, 3, 4].map(() => notify()({ now: NOW, roundId: ROUND })));
    expect(outs.reduce((t, o) => t + o.sent, 0)).toBe(3);
    expect(recipients(await sentMail())).toEqual([...ANNOTATORS].sort());
  });

  it("a send failing for one annotator: claim released, error rethrown; the re-run sends only to them", async () => {
    await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: SENDER }));
    const flaky = new SESv2Client({ ...LOCAL_AWS, endpoint: aws.endpoint, maxAttempts: 1 });
    let failBob = true;
    flaky.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Destination?: { ToAddresses?: string[] } };
        if (failBob && context.commandName === "SendEmailCommand" && input.Destination?.ToAddresses?.includes("bob@example.org")) {
          throw Object.assign(new Error("Maximum sending rate exceeded."), { name: "TooManyRequestsException" });
        }
        return next(args);
      },
      { step: "initialize", name: "failBob" },
    );
    await expect(notify(flaky)({ now: NOW, roundId: ROUND })).rejects.toMatchObject({ name: "TooManyRequestsException" });
    expect(recipients(await sentMail())).toEqual(["amy@example.org", "zed@example.org"]);
    expect(await store.getNotification(ROUND, "bob@example.org")).toBeUndefined();

    failBob = false;
    expect(await notify(flaky)({ now: NOW, roundId: ROUND })).toEqual({ roundId: ROUND, sent: 1, alreadyNotified: 2, annotators: 3 });
    expect(recipients(await sentMail())).toEqual([...ANNOTATORS].sort());
  });

  it("SES refusing the sender (not verified): every claim released; after verification each gets one e-mail", async () => {
    await expect(notify()({ now: NOW, roundId: ROUND })).rejects.toMatchObject({ name: "MessageRejected" });
    expect(await sentMail()).toHaveLength(0);
    for (const a of ANNOTATORS) expect(await store.getNotification(ROUND, a)).toBeUndefined();
    await ses.send(new CreateEmailIdentityCommand({ EmailIdentity: SENDER }));
    expect((await notify()({ now: NOW, roundId: ROUND })).sent).toBe(3);
    expect(recipients(await sentMail())).toEqual([...ANNOTATORS].sort());
  });
});
