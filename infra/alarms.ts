import { Duration } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";

export interface AlarmsProps {
  /** Customer-managed key that encrypts the alarm topic; CloudWatch is allowed to use it to publish. */
  readonly encryptionKey: IKey;
  /** Operators subscribed to the alarm topic by e-mail (each confirms once). Default: none (subscribe later). */
  readonly operatorEmails?: readonly string[];
}

export interface MetricAlarmOptions {
  /** The metric (with its statistic and period). */
  readonly metric: IMetric;
  /** The alarm fires when the metric is above this value. */
  readonly threshold: number;
  /** What it means and what the operator does (the alarm description). */
  readonly description: string;
  /** Consecutive periods above the threshold before it fires. Default: 1. */
  readonly evaluationPeriods?: number;
}

/**
 * Operations: one KMS-encrypted, TLS-only SNS topic that every alarm notifies (alarm and OK), and
 * `alarmOnDeadLetters(queue)` — an alarm as soon as any message sits in a dead-letter queue
 * (ApproximateNumberOfMessagesVisible > 0 over one minute), which means a study was not ingested
 * and needs a re-drive after the cause is fixed. `alarmAbove(metric)` covers the rest (failed or
 * timed-out weekly rounds, endpoint faults, a scoring backlog that does not drain). Missing data
 * never alarms: an idle pipeline publishes no metrics.
 */
export class Alarms extends Construct {
  /** The topic every alarm notifies. */
  readonly topic: Topic;
  /** The alarms created so far. */
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    for (const email of props.operatorEmails ?? []) {
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
        throw new Error(`operatorEmails must be e-mail addresses, got ${JSON.stringify(email)}`);
      }
    }
    this.topic = new Topic(this, "Topic", {
      masterKey: props.encryptionKey,
      enforceSSL: true,
    });
    // CloudWatch publishes to an encrypted topic only if the key lets it create data keys.
    props.encryptionKey.addToResourcePolicy(
      new PolicyStatement({
        sid: "AllowCloudWatchAlarmsToPublishToEncryptedTopic",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
      }),
    );
    for (const email of props.operatorEmails ?? []) this.topic.addSubscription(new EmailSubscription(email));
  }

  /** Alarms (to the topic) when `queue` holds any visible message for one minute. */
  alarmOnDeadLetters(id: string, queue: IQueue): Alarm {
    return this.alarmAbove(id, {
      description: `Messages in dead-letter queue ${queue.node.path}: they failed every retry; fix the cause, then re-drive them`,
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: "Maximum" }),
      threshold: 0,
    });
  }

  /** Alarms (to the topic, on alarm and on recovery) when `metric` is above `threshold`. */
  alarmAbove(id: string, options: MetricAlarmOptions): Alarm {
    const evaluationPeriods = options.evaluationPeriods ?? 1;
    if (!Number.isInteger(evaluationPeriods) || evaluationPeriods < 1) {
      throw new Error(`Alarms.${id}: evaluationPeriods must be a positive integer, got ${evaluationPeriods}`);
    }
    const alarm = new Alarm(this, id, {
      alarmDescription: options.description,
      metric: options.metric,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      threshold: options.threshold,
      evaluationPeriods,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      actionsEnabled: true,
    });
    const action = new SnsAction(this.topic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarms.push(alarm);
    return alarm;
  }
}
