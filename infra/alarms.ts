import { Duration } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
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

/**
 * Operations: one KMS-encrypted, TLS-only SNS topic that every alarm notifies (alarm and OK), and
 * `alarmOnDeadLetters(queue)` — an alarm as soon as any message sits in a dead-letter queue
 * (ApproximateNumberOfMessagesVisible > 0 over one minute), which means a study was not ingested
 * and needs a re-drive after the cause is fixed.
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
    const alarm = new Alarm(this, id, {
      alarmDescription: `Messages in dead-letter queue ${queue.node.path}: they failed every retry; fix the cause, then re-drive them`,
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: "Maximum" }),
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      threshold: 0,
      evaluationPeriods: 1,
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
