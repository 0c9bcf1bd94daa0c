import { Duration } from "aws-cdk-lib";
import { Dashboard, GraphWidget, MathExpression, Metric, PeriodOverride, SingleValueWidget, TextWidget } from "aws-cdk-lib/aws-cloudwatch";
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
    const ours = (metricName: string, statistic: string, period: Duration, label?: string) =>
      new Metric({
        namespace: props.namespace,
        metricName,
        statistic,
        period,
        dimensionsMap: { service: METRICS_SERVICE },
        ...(label ? { label } : {}),
      });
    const hour = Duration.hours(1);
    const week = Duration.days(7);
    // One line per code that has occurred: a search over the Code dimension of the namespace.
    const byCode = (metricName: string, label: string) =>
      new MathExpression({
        expression: `SEARCH('{${props.namespace},service,${CODE_DIMENSION}} service="${METRICS_SERVICE}" MetricName="${metricName}"', 'Sum', 3600)`,
        label,
        period: hour,
        usingMetrics: {},
      });

    this.dashboard = new Dashboard(this, "Dashboard", {
      dashboardName: `ich-al-${props.institution}`,
      defaultInterval: Duration.days(14),
      periodOverride: PeriodOverride.INHERIT,
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          "## Intake\nStudies uploaded under `uploads/` → ingest → scoring → records. Refused studies are in `quarantine/<code>/` (operator role only); failed ones have `lastError` on their record and may need a DLQ re-drive.",
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Studies per hour",
        left: [
          ours(INTAKE_METRICS.studiesReceived, "Sum", hour, "received"),
          ours(INTAKE_METRICS.studiesScored, "Sum", hour, "scored"),
          ours(INTAKE_METRICS.stacksPooled, "Sum", hour, "stacks into the pool"),
          ours(INTAKE_METRICS.stacksDuplicate, "Sum", hour, "stacks found duplicate"),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: "Studies refused and failed, by code",
        left: [byCode(INTAKE_METRICS.studiesRefused, "refused"), byCode(INTAKE_METRICS.studiesFailed, "failed")],
        width: 12,
      }),
    );
    const ages = Object.entries(props.queues).map(([name, queue]) =>
      queue.metricApproximateAgeOfOldestMessage({ statistic: "Maximum", period: Duration.minutes(5), label: name }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "How long work waits (seconds)",
        left: [...ages, ...(props.scoringBacklogAge ? [props.scoringBacklogAge.with({ label: "oldest scoring request" })] : [])],
        width: 12,
      }),
      new SingleValueWidget({
        title: "Dead letters (waiting for an operator)",
        metrics: Object.entries(props.deadLetterQueues).map(([name, queue]) =>
          queue.metricApproximateNumberOfMessagesVisible({ statistic: "Maximum", period: Duration.minutes(5), label: name }),
        ),
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          "## Weekly rounds\nEach round: refit → select → notify. The refit compares the last round's predicted hours (when its stacks were selected) with the annotators' active hours.",
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Weekly workflow executions",
        left: [
          props.stateMachine.metricSucceeded({ statistic: "Sum", period: week, label: "succeeded" }),
          props.stateMachine.metricFailed({ statistic: "Sum", period: week, label: "failed" }),
          props.stateMachine.metricTimedOut({ statistic: "Sum", period: week, label: "timed out" }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Last round: predicted vs actual labeling hours",
        left: [
          ours(REFIT_METRICS.roundPredictedHours, "Maximum", week, "predicted"),
          ours(REFIT_METRICS.roundActualHours, "Maximum", week, "actual"),
        ],
        right: [ours(REFIT_METRICS.roundActualOverPredicted, "Maximum", week, "actual / predicted")],
        width: 8,
      }),
      new GraphWidget({
        title: "Time model",
        left: [
          ours(REFIT_METRICS.roundsInsideInterval, "Maximum", week, "rounds inside the 80 % interval (%)"),
          ours(REFIT_METRICS.excludedCompletions, "Maximum", week, "completions left out"),
        ],
        right: [ours(REFIT_METRICS.fitRefused, "Maximum", week, "fit refused")],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Re-scoring after a promotion: stacks requested, re-scored, stale results dropped",
        left: [
          ours(INTAKE_METRICS.stacksRescoreRequested, "Sum", hour, "requested"),
          ours(INTAKE_METRICS.stacksRescored, "Sum", hour, "re-scored"),
          ours(INTAKE_METRICS.rescoreResultsStale, "Sum", hour, "stale results dropped"),
        ],
        width: 24,
      }),
    );
    if (props.learningStateMachine) this.addLearning(props.learningStateMachine, ours);
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Lambda errors",
        left: Object.entries(props.functions).map(([name, fn]) => fn.metricErrors({ statistic: "Sum", period: hour, label: name })),
        width: 24,
      }),
    );
  }

  /** Learning: training runs started or skipped, candidates promoted or rejected, models put in service, failures. */
  private addLearning(stateMachine: IStateMachine, ours: (name: string, statistic: string, period: Duration, label?: string) => Metric) {
    const day = Duration.days(1);
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          "## Learning\nDaily: enough new masks → a training job → the candidate judged on held-out stacks → promoted (deployed, pending stacks re-scored) or rejected. Runs are in the records table under `TRAINING`; evaluations under `model-evaluations/`.",
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Training runs per day",
        left: [
          ours(LEARNING_METRICS.trainingJobsStarted, "Sum", day, "jobs started"),
          ours(LEARNING_METRICS.trainingSkipped, "Sum", day, "skipped (too few new masks)"),
          ours(LEARNING_METRICS.trainingRunsFailed, "Sum", day, "failed"),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Candidates judged",
        left: [
          ours(LEARNING_METRICS.candidatesPromoted, "Sum", day, "promoted"),
          ours(LEARNING_METRICS.candidatesRejected, "Sum", day, "rejected"),
          ours(LEARNING_METRICS.modelsPutInService, "Sum", day, "put in service"),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Learning workflow executions",
        left: [
          stateMachine.metricSucceeded({ statistic: "Sum", period: day, label: "succeeded" }),
          stateMachine.metricFailed({ statistic: "Sum", period: day, label: "failed" }),
          stateMachine.metricTimedOut({ statistic: "Sum", period: day, label: "timed out" }),
        ],
        width: 8,
      }),
    );
  }
}
