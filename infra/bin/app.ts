/** CDK entry point: `cdk deploy -c institution=<id>` deploys one institution's pipeline. */
import { App } from "aws-cdk-lib";
import { InstitutionStack } from "../institution-stack.js";

const app = new App();
const institution = String(app.node.tryGetContext("institution") ?? "demo");
new InstitutionStack(app, `IchActiveLearning-${institution}`, {
  institution,
  description: "Cost-sensitive active learning for head-CT hemorrhage labeling (research use, not diagnosis)",
});
app.synth();
