import { describe, expect, it } from "vitest";

import { EnvironmentError } from "../../lambdas/contracts/env.js";
import { assignStacks } from "../../lambdas/domain/assignment.js";
import { PRIOR_TIME_MODEL } from "../../lambdas/domain/labeling-time-model.js";
import { RoundNotReadyError } from "../../lambdas/domain/notify.js";
import { runSelectionRound } from "../../lambdas/domain/selection-round.js";
import { createNotifyHandler, notifyDepsFromEnvironment } from "../../lambdas/handlers/notify-handler.js";
import { InvalidInputError, lambdaLogger } from "../../lambdas/handlers/shared/lambda-handler.js";
import { InMemoryRecordStore, RecordingMailer } from "../support/in-memory-ports.js";
import { InMemoryTimeModels } from "../support/in-memory-time-models.js";
import { PLANTED_KEY, PLANTED_SERIES, parseMime, pendingStack } from "../support/round-fixtures.js";

const NOW = "2026-11-26T06:00:00.000Z";
const ROUND = "select-2026-W48";
const ANNOTATORS = ["zed@example.org", "amy@example.org", "bob@example.org"];

async function setup(stacks = 6, annotators = ANNOTATORS) {
  const records = new InMemoryRecordStore();
  for (let i = 0; i < stacks; i++) await records.createStack(pendingStack(i, 600 + 60 * i));
  await runSelectionRound(NOW, { records, settings: { budgetSeconds: 2 * 3600, resolutionSeconds: 1, timeZone: "UTC" } });
  const mailer = new RecordingMailer();
  const lines: string[] = [];
  let token = 0;
  const handler = createNotifyHandler({
    records,
    mailer,
    settings: { sender: "ich-al@example.org", annotators, budgetSeconds: 2 * 3600, worklistUrl: "https://label.example.org/worklist" },
    clock: () => "2026-11-26T06:01:00.000Z",
    newToken: () => `token-${token++}`,
    log: lambdaLogger("notify", (line) => lines.push(line)),
  });
  return { records, mailer, handler, lines };
}

describe("notify handler", () => {
  it("shares the round's stacks, e-mails each annotator once, stores the assignment on round and stacks", async () => {
    const { records, mailer, handler, lines } = await setup();
    const round = await records.getRound(ROUND);
    expect(round?.selected.length).toBeGreaterThanOrEqual(3);
    const out = await handler({ now: NOW, roundId: ROUND });
    expect(out).toEqual({ roundId: ROUND, sent: 3, alreadyNotified: 0, annotators: 3 });
    expect(mailer.sent.map((m) => m.to)).toEqual(["amy@example.org", "bob@example.org", "zed@example.org"]);

    const assignment = (await records.getRound(ROUND))?.assignment;
    expect(assignment?.annotators.map((a) => a.annotator)).toEqual(["amy@example.org", "bob@example.org", "zed@example.org"]);
    expect(assignment?.annotators.flatMap((a) => a.stackIds).sort()).toEqual(round?.selected);
    for (const share of assignment?.annotators ?? []) {
      for (const id of share.stackIds) expect((await records.getStack(id))?.assignedTo).toBe(share.annotator);
      const mail = mailer.sent.find((m) => m.to === share.annotator);
      const text = parseMime(mail?.raw ?? "").parts[0]?.body ?? "";
      expect(text).toContain(`Open your worklist: https://label.example.org/worklist?round=${ROUND}`);
      share.stackIds.forEach((id, i) => {
        expect(text).toContain(`Stack ${i + 1} of ${share.stackIds.length} · `);
        expect(text).toContain(`(id ${id},`);
      });
      expect((await records.getNotification(ROUND, share.annotator))?.status).toBe("sent");
    }
    for (const m of mailer.sent) {
      expect(m.from).toBe("ich-al@example.org");
      const decoded = parseMime(m.raw)
        .parts.map((p) => p.body)
        .join("\n");
      expect(decoded).not.toContain(PLANTED_KEY);
      expect(decoded).not.toContain("DOE");
      expect(decoded).not.toContain(PLANTED_SERIES);
    }
    expect(lines.join("\n")).not.toMatch(/DOE|@example\.org/);
  });

  it("a re-run sends nothing more: each annotator exactly one e-mail per round", async () => {
    const { mailer, handler } = await setup();
    await handler({ now: NOW, roundId: ROUND });
    expect(await handler({ now: NOW, roundId: ROUND })).toEqual({ roundId: ROUND, sent: 0, alreadyNotified: 3, annotators: 3 });
    expect(mailer.sent).toHaveLength(3);
  });

  it("concurrent runs send each annotator one e-mail", async () => {
    const { mailer, handler } = await setup();
    const outs = await Promise.all([1, 2, 3].map(() => handler({ now: NOW, roundId: ROUND })));
    expect(outs.reduce((t, o) => t + o.sent, 0)).toBe(3);
    expect(mailer.sent.map((m) => m.to).sort()).toEqual([...ANNOTATORS].sort());
  });

  it("a send failing for one annotator: the others are sent, the error is rethrown, the re-run sends only to them", async () => {
    const { records, mailer, handler } = await setup();
    mailer.failFor.add("bob@example.org");
    await expect(handler({ now: NOW, roundId: ROUND })).rejects.toMatchObject({ name: "TooManyRequestsException" });
    expect(mailer.sent.map((m) => m.to)).toEqual(["amy@example.org", "zed@example.org"]);
    expect(await records.getNotification(ROUND, "bob@example.org")).toBeUndefined(); // claim released
    mailer.failFor.clear();
    expect(await handler({ now: NOW, roundId: ROUND })).toEqual({ roundId: ROUND, sent: 1, alreadyNotified: 2, annotators: 3 });
    expect(mailer.sent.map((m) => m.to)).toEqual(["amy@example.org", "zed@example.org", "bob@example.org"]);
  });

  it("a send error whose claim release also fails: the send error is rethrown, the mark stays (no second e-mail)", async () => {
    const { records, mailer, handler } = await setup();
    mailer.failFor.add("bob@example.org");
    records.releaseNotification = async () => {
      throw Object.assign(new Error("table unavailable"), { name: "InternalServerError" });
    };
    await expect(handler({ now: NOW, roundId: ROUND })).rejects.toMatchObject({ name: "TooManyRequestsException" });
    expect((await records.getNotification(ROUND, "bob@example.org"))?.status).toBe("sending");
    mailer.failFor.clear();
    expect(await handler({ now: NOW, roundId: ROUND })).toMatchObject({ sent: 0, alreadyNotified: 3 });
    expect(mailer.sent.map((m) => m.to)).not.toContain("bob@example.org");
  });

  it("a crash between claim and send leaves a `sending` mark: that annotator is not e-mailed again (at most once)", async () => {
    const { records, mailer, handler } = await setup();
    expect(
      await records.claimNotification({
        roundId: ROUND,
        annotator: "amy@example.org",
        status: "sending",
        token: "crashed",
        claimedAt: NOW,
      }),
    ).toBe(true);
    expect(await handler({ now: NOW, roundId: ROUND })).toMatchObject({ sent: 2, alreadyNotified: 1 });
    expect(mailer.sent.map((m) => m.to)).not.toContain("amy@example.org");
  });

  it("keeps the stored assignment even when ANNOTATOR_EMAILS changes between runs", async () => {
    const { records, handler } = await setup();
    await handler({ now: NOW, roundId: ROUND });
    const stored = (await records.getRound(ROUND))?.assignment;
    const mailer = new RecordingMailer();
    const other = createNotifyHandler({
      records,
      mailer,
      settings: { sender: "ich-al@example.org", annotators: ["new@example.org"], budgetSeconds: 7200, worklistUrl: "https://x.org/w" },
      clock: () => NOW,
      newToken: () => "t",
      log: lambdaLogger("test", () => {}),
    });
    expect(await other({ now: NOW, roundId: ROUND })).toMatchObject({ sent: 0, alreadyNotified: 3 });
    expect((await records.getRound(ROUND))?.assignment).toEqual(stored);
  });

  it("more annotators than stacks: the one without stacks gets the nothing-for-you e-mail", async () => {
    const { mailer, handler } = await setup(1, ["amy@example.org", "bob@example.org"]);
    await handler({ now: NOW, roundId: ROUND });
    const bob = mailer.sent.find((m) => m.to === "bob@example.org");
    expect(parseMime(bob?.raw ?? "").headers.get("subject")).toBe("Labeling 2026-W48: nothing for you this week");
  });

  it("refuses a round that is missing or not completed, and bad input", async () => {
    const { handler } = await setup();
    await expect(handler({ now: NOW, roundId: "select-2026-W40" })).rejects.toThrow(RoundNotReadyError);
    await expect(handler({ now: NOW })).rejects.toThrow(InvalidInputError);
    await expect(handler({ now: "x", roundId: ROUND })).rejects.toThrow(InvalidInputError);
  });

  it("parses the environment at cold start", () => {
    const deps = notifyDepsFromEnvironment({
      TABLE_NAME: "t",
      SENDER_ADDRESS: "a@x.org",
      ANNOTATOR_EMAILS: "b@x.org, c@x.org",
      WEEKLY_BUDGET_HOURS: "1.5",
      WORKLIST_URL: "https://x.org/w",
    });
    expect(deps.settings).toEqual({
      sender: "a@x.org",
      annotators: ["b@x.org", "c@x.org"],
      budgetSeconds: 5400,
      worklistUrl: "https://x.org/w",
    });
    expect(() => notifyDepsFromEnvironment({ TABLE_NAME: "t" })).toThrow(EnvironmentError);
  });
});

describe("notify handler with the time model's annotator speeds", () => {
  it("weighs the split by the speed factors of the version in effect: Σ T·s_a per share", async () => {
    const { records } = await setup(12);
    const timeModels = new InMemoryTimeModels();
    const speeds = [
      { annotator: "amy@example.org", factor: 3, completions: 6 },
      { annotator: "bob@example.org", factor: 0.5, completions: 6 },
    ];
    await timeModels.put({ version: 1, model: { ...PRIOR_TIME_MODEL, source: "fit", n: 12, annotatorSpeeds: speeds } }, NOW);
    const handler = createNotifyHandler({
      records,
      mailer: new RecordingMailer(),
      timeModels,
      settings: { sender: "ich-al@example.org", annotators: ANNOTATORS, budgetSeconds: 2 * 3600, worklistUrl: "https://x.org/w" },
      clock: () => NOW,
      newToken: () => "t",
      log: lambdaLogger("test", () => {}),
    });
    expect(await handler({ now: NOW, roundId: ROUND })).toMatchObject({ sent: 3 });
    const round = await records.getRound(ROUND);
    const stacks = await Promise.all((round?.selected ?? []).map((id) => records.getStack(id)));
    const seconds = new Map(stacks.map((s) => [s?.stackId as string, s?.prediction?.predictedSeconds as number]));
    const factor = new Map([...speeds.map((s) => [s.annotator, s.factor] as const), ["zed@example.org", 1]]);
    const shares = round?.assignment?.annotators ?? [];
    expect(shares.map((s) => s.annotator)).toEqual(["amy@example.org", "bob@example.org", "zed@example.org"]);
    for (const share of shares) {
      const load = share.stackIds.reduce((t, id) => t + (seconds.get(id) as number) * (factor.get(share.annotator) as number), 0);
      expect(share.predictedSeconds).toBeCloseTo(load, 6);
    }
    // The fast annotator (s = 0.5) gets more stacks than the slow one (s = 3).
    const count = (a: string) => shares.find((s) => s.annotator === a)?.stackIds.length ?? 0;
    expect(count("bob@example.org")).toBeGreaterThan(count("amy@example.org"));
    expect(round?.assignment?.annotators).toEqual(
      assignStacks(
        stacks.map((s) => ({ stackId: s?.stackId as string, predictedSeconds: s?.prediction?.predictedSeconds as number })),
        ANNOTATORS,
        new Map(speeds.map((s) => [s.annotator, s.factor])),
      ),
    );
  });
});
