import { Duration } from "aws-cdk-lib";
import {
  Dashboard,
  GraphWidget,
  type IMetric,
  type IWidget,
  MathExpression,
  Metric,
  PeriodOverride,
  SingleValueWidget,
  TextWidget,
} from "aws-cdk-lib/aws-cloudwatch";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import type { IStateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import { CODE_DIMENSION, INTAKE_METRICS, LEARNING_METRICS, METRICS_SERVICE, REFIT_METRICS } from "../lambdas/contracts/metrics.js";

export interface OperationsDashboardProps {
  /** Institution id: names the dashboard `ich-al-<institution>`. */
  readonly institution: string;
  /** Namespace of the Lambdas' EMF metrics (contracts/metrics.ts metricsNamespace). */
  readonly namespace: string;
  /** The queues whose oldest message's age shows whether intake keeps up (name → queue). */
  readonly queues: Readonly<Record<string, IQueue>>;
  /** The dead-letter queues (name → queue): anything visible there waits for an operator. */
  readonly deadLetterQueues: Readonly<Record<string, IQueue>>;
  /** The scoring endpoint's oldest waiting request (absent until a model is deployed). */
  readonly scoringBacklogAge?: Metric;
  /** The weekly workflow. */
  readonly stateMachine: IStateMachine;
  /** The learning workflow (train, judge, deploy, re-score), when the stack has one. */
  readonly learningStateMachine?: IStateMachine;
  /** Every Lambda (name → function): their errors. */
  readonly functions: Readonly<Record<string, IFunction>>;
}

/**
 * What an operator at the hospital looks at (CloudWatch console → Dashboards → `ich-al-<institution>`; the stack
 * output `OperationsDashboardName`), top to bottom in the data's order:
 * intake (studies received, scored, refused and failed by code, stacks pooled and found duplicate), how long
 * work waits (oldest message of each queue, oldest scoring request, dead letters), the weekly rounds (workflow
 * outcomes, predicted against actual labeling hours of the last round, the calibration metrics of the time
 * model), re-scoring, learning (training runs, candidates promoted or rejected) and Lambda errors. The EMF metric names come from contracts/metrics.ts, where the Lambdas take them.
 */
export class OperationsDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const ours = (metricName: string, statistic: string, period: Duration, label: string) =>
      new Metric({ namespace: props.namespace, metricName, statistic, period, label, dimensionsMap: { service: METRICS_SERVICE } });
    const sum = (period: Duration) => (metricName: string, label: string) => ours(metricName, "Sum", period, label);
    const latest = (metricName: string, label: string) => ours(metricName, "Maximum", WEEK, label);
    // One line per code that has occurred: a search over the Code dimension of the namespace.
    const byCode = (metricName: string, label: string) =>
      new MathExpression({
        expression: `SEARCH('{${props.namespace},service,${CODE_DIMENSION}} service="${METRICS_SERVICE}" MetricName="${metricName}"', 'Sum', 3600)`,
        label,
        period: HOUR,
        usingMetrics: {},
      });
    const perHour = sum(HOUR);
    const perDay = sum(Duration.days(1));

    this.dashboard = new Dashboard(this, "Dashboard", {
      dashboardName: `ich-al-${props.institution}`,
      defaultInterval: Duration.days(14),
      periodOverride: PeriodOverride.INHERIT,
    });
    const row = (...widgets: IWidget[]) => this.dashboard.addWidgets(...widgets);

    row(
      heading(
        "## Intake\nStudies uploaded under `uploads/` → ingest → scoring → records. Refused studies are in `quarantine/<code>/` (operator role only); failed ones have `lastError` on their record and may need a DLQ re-drive.",
      ),
    );
    row(
      graph("Studies per hour", 12, [
        perHour(INTAKE_METRICS.studiesReceived, "received"),
        perHour(INTAKE_METRICS.studiesScored, "scored"),
        perHour(INTAKE_METRICS.stacksPooled, "stacks into the pool"),
        perHour(INTAKE_METRICS.stacksDuplicate, "stacks found duplicate"),
      ]),
      graph("Studies refused and failed, by code", 12, [
        byCode(INTAKE_METRICS.studiesRefused, "refused"),
        byCode(INTAKE_METRICS.studiesFailed, "failed"),
      ]),
    );
    const fiveMinutes = { statistic: "Maximum", period: Duration.minutes(5) };
    row(
      graph("How long work waits (seconds)", 12, [
        ...Object.entries(props.queues).map(([label, queue]) => queue.metricApproximateAgeOfOldestMessage({ ...fiveMinutes, label })),
        ...(props.scoringBacklogAge ? [props.scoringBacklogAge.with({ label: "oldest scoring request" })] : []),
      ]),
      new SingleValueWidget({
        title: "Dead letters (waiting for an operator)",
        metrics: Object.entries(props.deadLetterQueues).map(([label, queue]) =>
          queue.metricApproximateNumberOfMessagesVisible({ ...fiveMinutes, label }),
        ),
        width: 12,
      }),
    );
    row(
      heading(
        "## Weekly rounds\nEach round: refit → select → notify. The refit compares the last round's predicted hours (when its stacks were selected) with the annotators' active hours.",
      ),
    );
    row(
      graph("Weekly workflow executions", 8, executions(props.stateMachine, WEEK)),
      graph(
        "Last round: predicted vs actual labeling hours",
        8,
        [latest(REFIT_METRICS.roundPredictedHours, "predicted"), latest(REFIT_METRICS.roundActualHours, "actual")],
        [latest(REFIT_METRICS.roundActualOverPredicted, "actual / predicted")],
      ),
      graph(
        "Time model",
        8,
        [
          latest(REFIT_METRICS.roundsInsideInterval, "rounds inside the 80 % interval (%)"),
          latest(REFIT_METRICS.excludedCompletions, "completions left out"),
        ],
        [latest(REFIT_METRICS.fitRefused, "fit refused")],
      ),
    );
    row(
      graph("Re-scoring after a promotion: stacks requested, re-scored, stale results dropped", 24, [
        perHour(INTAKE_METRICS.stacksRescoreRequested, "requested"),
        perHour(INTAKE_METRICS.stacksRescored, "re-scored"),
        perHour(INTAKE_METRICS.rescoreResultsStale, "stale results dropped"),
      ]),
    );
    if (props.learningStateMachine) {
      row(
        heading(
          "## Learning\nDaily: enough new masks → a training job → the candidate judged on held-out stacks → promoted (deployed, pending stacks re-scored) or rejected. Runs are in the records table under `TRAINING`; evaluations under `model-evaluations/`.",
        ),
      );
      row(
        graph("Training runs per day", 8, [
          perDay(LEARNING_METRICS.trainingJobsStarted, "jobs started"),
          perDay(LEARNING_METRICS.trainingSkipped, "skipped (too few new masks)"),
          perDay(LEARNING_METRICS.trainingRunsFailed, "failed"),
        ]),
        graph("Candidates judged", 8, [
          perDay(LEARNING_METRICS.candidatesPromoted, "promoted"),
          perDay(LEARNING_METRICS.candidatesRejected, "rejected"),
          perDay(LEARNING_METRICS.modelsPutInService, "put in service"),
        ]),
        graph("Learning workflow executions", 8, executions(props.learningStateMachine, Duration.days(1))),
      );
    }
    row(
      graph(
        "Lambda errors",
        24,
        Object.entries(props.functions).map(([label, fn]) => fn.metricErrors({ statistic: "Sum", period: HOUR, label })),
      ),
    );
  }
}

const HOUR = Duration.hours(1);
const WEEK = Duration.days(7);

const heading = (markdown: string) => new TextWidget({ markdown, width: 24, height: 2 });

const graph = (title: string, width: number, left: IMetric[], right: IMetric[] = []) =>
  new GraphWidget({ title, width, left, ...(right.length > 0 ? { right } : {}) });

/** A workflow's executions that succeeded, failed and timed out per period. */
const executions = (stateMachine: IStateMachine, period: Duration): IMetric[] =>
  (
    [
      ["succeeded", stateMachine.metricSucceeded],
      ["failed", stateMachine.metricFailed],
      ["timed out", stateMachine.metricTimedOut],
    ] as const
  ).map(([label, metric]) => metric.call(stateMachine, { statistic: "Sum", period, label }));
