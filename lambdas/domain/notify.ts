/**
 * The notify step of the weekly workflow: share the completed round's stacks among the
 * annotators and e-mail each one their worklist — one e-mail per annotator per round, even when the
 * step is re-run.
 *
 *  1. Load the round (it must be `completed`) and its selected stacks.
 *  2. Assignment: computed once (domain/assignment.ts, deterministic) and stored on the round
 *     conditionally (only if it has none); a re-run, or a concurrent run that lost, uses the stored one.
 *     Then each stack gets `assignedTo`, conditionally on being `selected` by this round and not
 *     assigned to anyone else (idempotent on a re-run).
 *  3. Per annotator (sorted): claim the notification mark `ROUND#<id>`/`NOTIFY#<annotator>`
 *     conditionally BEFORE sending. A mark that exists (`sent`, or `sending` by another or a crashed
 *     run) means "already notified": no second e-mail. Send; mark `sent` with the SES MessageId.
 *     On a send error the claim is deleted (so the retry sends) and, after the other annotators have
 *     been tried, the first error is rethrown for Step Functions' Retry / Catch.
 *
 * At most once per annotator: a crash between the claim and SendEmail (or between SendEmail and the
 * `sent` mark) leaves a `sending` mark, and no later run sends to that annotator for this round; the
 * worklist page (GET /worklist) still lists their stacks. An operator can delete the mark to re-send.
 */
import type { RoundAssignment, StackRecord } from "../contracts/records.js";
import { roundAssignment } from "./assignment.js";
import { DomainError } from "./errors.js";
import type { Mailer } from "./mailer.js";
import type { RecordStore } from "./record-store.js";
import { modelInEffect, type TimeModelStore } from "./time-model-store.js";
import { buildMimeMessage, type WorklistStack, worklistEmail } from "./worklist-email.js";

/** The round does not exist or is not `completed` (select has not finished it). */
export class RoundNotReadyError extends DomainError {}

export interface NotifySettings {
  /** The verified From address. */
  readonly sender: string;
  /** Who shares the round's stacks (used only when the round has no stored assignment yet). */
  readonly annotators: readonly string[];
  /** Q in seconds, shown as "predicted vs budget". */
  readonly budgetSeconds: number;
  readonly worklistUrl: string;
}

export interface NotifyDeps {
  readonly records: RecordStore;
  readonly mailer: Mailer;
  readonly settings: NotifySettings;
  /** The current time (ISO): claim and sent times, the Date header, assignment time. */
  readonly clock: () => string;
  /** A fresh claim token per notification mark. */
  readonly newToken: () => string;
  /** The time model in effect: its annotator speed factors weigh the assignment (all 1 without it). */
  readonly timeModels?: TimeModelStore;
  readonly log?: (level: "info" | "warn" | "error", message: string, fields: Record<string, unknown>) => void;
}

export interface NotifyOutput {
  readonly roundId: string;
  /** E-mails sent by this run. */
  readonly sent: number;
  /** Annotators skipped because a mark already existed (notified earlier, or claimed by another run). */
  readonly alreadyNotified: number;
  /** Annotators in the round's assignment. */
  readonly annotators: number;
}

/** Notifies the annotators of `roundId`; see the module comment. */
export async function notifyAnnotators(roundId: string, deps: NotifyDeps): Promise<NotifyOutput> {
  const { records, settings } = deps;
  const log = deps.log ?? (() => {});
  const round = await records.getRound(roundId);
  if (round?.status !== "completed") {
    throw new RoundNotReadyError(`round ${roundId} is ${round ? round.status : "missing"}; only a completed round is notified`);
  }
  const stacks = new Map<string, StackRecord>();
  for (const stackId of round.selected) {
    const record = await records.getStack(stackId);
    if (record) stacks.set(stackId, record);
    else log("warn", "selected stack record missing; left out", { roundId, stackId });
  }

  let assignment: RoundAssignment | undefined = round.assignment;
  if (!assignment) {
    const speeds = new Map(
      (deps.timeModels ? await modelInEffect(deps.timeModels) : undefined)?.model.annotatorSpeeds.map((s) => [s.annotator, s.factor]),
    );
    const candidate = roundAssignment(
      [...stacks.values()].map((s) => ({ stackId: s.stackId, predictedSeconds: s.prediction?.predictedSeconds ?? 0 })),
      settings.annotators,
      deps.clock(),
      speeds,
    );
    if (await records.assignRound(roundId, candidate)) assignment = candidate;
    else assignment = (await records.getRound(roundId))?.assignment;
    if (!assignment) throw new RoundNotReadyError(`round ${roundId}: the assignment could not be stored or read back`);
  }

  const worklists = new Map<string, WorklistStack[]>();
  for (const share of assignment.annotators) {
    const list: WorklistStack[] = [];
    for (const stackId of share.stackIds) {
      const record = stacks.get(stackId);
      if (!record) continue;
      if (!(await records.assignStack(stackId, roundId, share.annotator, deps.clock()))) {
        const current = await records.getStack(stackId);
        if (current?.assignedTo !== share.annotator) {
          log("warn", "stack could not be assigned (no longer selected by this round); left out", { roundId, stackId });
          continue;
        }
      }
      list.push({
        stackId,
        predictedSeconds: record.prediction?.predictedSeconds ?? 0,
        stackScore: record.scores?.stackScore ?? 0,
        stackUncertainty: record.scores?.stackUncertainty ?? 0,
        ...(record.geometry ? { frames: record.geometry.shape[0] } : {}),
      });
    }
    worklists.set(share.annotator, list);
  }

  let sent = 0;
  let alreadyNotified = 0;
  const failures: unknown[] = [];
  for (const share of assignment.annotators) {
    const annotator = share.annotator;
    const token = deps.newToken();
    if (!(await records.claimNotification({ roundId, annotator, status: "sending", token, claimedAt: deps.clock() }))) {
      alreadyNotified++;
      continue;
    }
    const email = worklistEmail({
      roundId,
      stacks: worklists.get(annotator) ?? [],
      roundPredictedSeconds: round.totalPredictedSeconds,
      budgetSeconds: settings.budgetSeconds,
      worklistUrl: settings.worklistUrl,
    });
    let messageId: string;
    try {
      const raw = buildMimeMessage({ from: settings.sender, to: annotator, ...email, date: deps.clock() });
      ({ messageId } = await deps.mailer.send({ from: settings.sender, to: annotator, raw }));
    } catch (error) {
      // If the release itself fails the mark stays `sending` (at most once: no e-mail this round).
      const released = await records.releaseNotification(roundId, annotator, token).catch(() => false);
      log("error", "worklist e-mail failed; claim released for the retry", {
        roundId,
        annotatorIndex: assignment.annotators.indexOf(share),
        error: error instanceof Error ? error.name : typeof error,
        released,
      });
      failures.push(error);
      continue;
    }
    if (!(await records.markNotificationSent(roundId, annotator, token, messageId, deps.clock()))) {
      log("warn", "e-mail sent but its mark was no longer held by this run", { roundId, messageId });
    }
    sent++;
  }
  log("info", "annotators notified", { roundId, sent, alreadyNotified, failed: failures.length, annotators: assignment.annotators.length });
  if (failures.length > 0) throw failures[0];
  return { roundId, sent, alreadyNotified, annotators: assignment.annotators.length };
}
