/** The operators' CloudWatch dashboard in the synthesized template: every figure the operations section names. */
import { describe, expect, it } from "vitest";
import { INTAKE_METRICS, LEARNING_METRICS, REFIT_METRICS } from "../../lambdas/contracts/metrics.js";
import { buildStack, logicalId, MODEL_ARTIFACT } from "./stack-fixture.js";

/** The dashboard body as one string, references as `<LogicalId>` (it is an Fn::Join of JSON and tokens). */
function dashboardBody(t: ReturnType<typeof buildStack>["t"]): string {
  const dashboards = Object.values(t.findResources("AWS::CloudWatch::Dashboard"));
  expect(dashboards).toHaveLength(1);
  const body = (dashboards[0] as { Properties: { DashboardBody: unknown } }).Properties.DashboardBody as {
    "Fn::Join": [string, unknown[]];
  };
  return body["Fn::Join"][1]
    .map((part) => (typeof part === "string" ? part : `<${JSON.stringify(part).match(/"(?:Ref|Fn::GetAtt)":\[?"([A-Za-z0-9]+)"/)?.[1]}>`))
    .join("");
}

describe("operations dashboard", () => {
  const { stack, t } = buildStack({ scoring: { modelArtifact: MODEL_ARTIFACT } });
  const body = dashboardBody(t);
  const widgets = JSON.parse(body.replace(/<[A-Za-z0-9]+>/g, "X")).widgets as { properties: Record<string, unknown> }[];
  const titles = widgets.map((w) => w.properties.title).filter(Boolean);

  it("is named after the institution and named in the stack outputs", () => {
    t.hasResourceProperties("AWS::CloudWatch::Dashboard", { DashboardName: "ich-al-test-hospital" });
    expect(t.toJSON().Outputs.OperationsDashboardName.Value).toEqual({ Ref: logicalId(stack.dashboard.dashboard) });
  });

  it("shows intake: studies received, scored, stacks pooled and duplicate, and refused / failed studies by code", () => {
    for (const name of [
      INTAKE_METRICS.studiesReceived,
      INTAKE_METRICS.studiesScored,
      INTAKE_METRICS.stacksPooled,
      INTAKE_METRICS.stacksDuplicate,
    ]) {
      expect(body).toContain(`"IchAl/test-hospital","${name}","service","ich-al"`);
    }
    for (const name of ["StudiesRefused", "StudiesFailed"])
      expect(body).toContain(`SEARCH('{IchAl/test-hospital,service,Code} service=\\"ich-al\\" MetricName=\\"${name}\\"', 'Sum', 3600)`);
  });

  it("shows how long work waits: the oldest message of both queues, the oldest scoring request, the dead letters", () => {
    const ages = body.match(/"AWS\/SQS","ApproximateAgeOfOldestMessage","QueueName","<[A-Za-z0-9]+>"/g) ?? [];
    expect(ages.map((a) => a.match(/<([A-Za-z0-9]+)>/)?.[1]).sort()).toEqual(
      [logicalId(stack.studies.queue), logicalId(stack.scoring.scoreQueue)].sort(),
    );
    expect(body).toContain('"AWS/SageMaker","ApproximateAgeOfOldestRequest","EndpointName"');
    const dead = body.match(/"AWS\/SQS","ApproximateNumberOfMessagesVisible","QueueName","<[A-Za-z0-9]+>"/g) ?? [];
    expect(dead).toHaveLength(3);
  });

  it("shows the weekly rounds: executions, predicted against actual hours, the time model's calibration", () => {
    for (const name of Object.values(REFIT_METRICS)) {
      if (name === REFIT_METRICS.roundOutsideBand) continue; // an alarm, not a graph
      expect(body, name).toContain(`"IchAl/test-hospital","${name}","service","ich-al"`);
    }
    for (const metric of ["ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"])
      expect(body).toContain(`"AWS/States","${metric}"`);
    expect(titles).toContain("Last round: predicted vs actual labeling hours");
  });

  it("shows learning: runs started, skipped and failed, candidates promoted and rejected, models put in service, executions", () => {
    for (const name of Object.values(LEARNING_METRICS)) expect(body, name).toContain(`"IchAl/test-hospital","${name}","service","ich-al"`);
    const learning = logicalId(stack.learning?.workflow.stateMachine as never);
    expect(body).toContain(`"AWS/States","ExecutionsFailed","StateMachineArn","<${learning}>"`);
  });

  it("shows the errors of every Lambda of the stack", () => {
    const shown = (body.match(/"AWS\/Lambda","Errors","FunctionName","<[A-Za-z0-9]+>"/g) ?? []).map(
      (e) => e.match(/<([A-Za-z0-9]+)>/)?.[1],
    );
    // The stack's own Lambdas (infra/lambda-function.ts sets NODE_OPTIONS on each), not CDK's deploy-time helpers.
    const ours = Object.entries(t.findResources("AWS::Lambda::Function"))
      .filter(
        ([, fn]) =>
          (fn as { Properties: { Environment?: { Variables?: Record<string, unknown> } } }).Properties.Environment?.Variables?.NODE_OPTIONS,
      )
      .map(([id]) => id);
    expect(ours).toContain(logicalId(stack.complete.function));
    expect(shown.sort()).toEqual(ours.sort());
  });

  it("gives every Lambda of the stack the Powertools settings: INFO, sampled DEBUG, never the event", () => {
    const variables = Object.values(t.findResources("AWS::Lambda::Function"))
      .map((fn) => (fn as { Properties: { Environment?: { Variables?: Record<string, unknown> } } }).Properties.Environment?.Variables)
      .filter((v) => v?.NODE_OPTIONS);
    expect(variables.length).toBeGreaterThanOrEqual(14);
    for (const v of variables) {
      expect(v).toMatchObject({ POWERTOOLS_LOG_LEVEL: "INFO", POWERTOOLS_LOGGER_LOG_EVENT: "false" });
      const rate = Number(v?.POWERTOOLS_LOGGER_SAMPLE_RATE);
      expect(rate).toBeGreaterThan(0);
      expect(rate).toBeLessThanOrEqual(0.1);
    }
  });
});
