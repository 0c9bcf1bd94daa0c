/**
 * CDK entry point: `cdk deploy -c institution=<id> [-c config=path/to/config.json]` deploys one
 * institution's pipeline. The configuration (default `infra/config/<id>.json`) is parsed with
 * InstitutionConfigSchema before anything is built; a bad field stops synth with its name.
 */
import { App } from "aws-cdk-lib";
import { InstitutionConfigError } from "../../lambdas/contracts/institution-config.js";
import { InstitutionStack } from "../institution-stack.js";
import { loadInstitutionConfig } from "../load-config.js";

const app = new App();
let config: ReturnType<typeof loadInstitutionConfig>;
try {
  config = loadInstitutionConfig({ institution: app.node.tryGetContext("institution"), config: app.node.tryGetContext("config") });
} catch (error) {
  if (!(error instanceof InstitutionConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
new InstitutionStack(app, `IchActiveLearning-${config.institution}`, {
  config,
  description: "Cost-sensitive active learning for head-CT hemorrhage labeling (research use, not diagnosis)",
});
app.synth();
