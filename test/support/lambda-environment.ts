/**
 * Setup file (vitest.config.ts): every handler module builds its Lambda `handler` from `process.env` when it is
 * imported, as in Lambda, so each test file needs a valid environment for the handlers it imports. This gives all
 * of them one, with neutral values (no AWS call is made at import); tests that care about a value build their own
 * handler from their own dependencies or call `xDepsFromEnvironment` with their own environment.
 */
const TIME_MODEL_PRIOR = JSON.stringify({ alpha: 0.45, beta: 0.35, gamma: Math.log(45), residualSd: 0.6, strength: 4 });

export const LAMBDA_TEST_ENVIRONMENT: Readonly<Record<string, string>> = {
  AWS_REGION: process.env.AWS_REGION ?? "us-east-1",
  TABLE_NAME: "records",
  STUDIES_BUCKET: "studies",
  METRICS_NAMESPACE: "IchAl/test",
  SCORING_ENDPOINT_NAME: "scoring",
  MAX_RECEIVE_COUNT: "5",
  SCORING_TOP_K: "200",
  SCORING_THRESHOLDS: "0.3,0.5,0.7",
  TIME_MODEL_PRIOR,
  MAX_ACTIVE_SECONDS: "28800",
  CALIBRATION_BAND: "0.8,1.25",
  SCHEDULE_TIMEZONE: "UTC",
  WEEKLY_BUDGET_HOURS: "2",
  SENDER_ADDRESS: "ich-al@example.org",
  ANNOTATOR_EMAILS: "amy@example.org",
  ANNOTATOR_DIRECTORY: JSON.stringify([{ sub: "setup-sub", email: "amy@example.org" }]),
  WORKLIST_URL: "https://label.example.org/worklist",
  STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:weekly",
  INSTITUTION: "test-hospital",
  MIN_NEW_MASKS: "20",
  VALIDATION_SHARE: "0.2",
  PROMOTION_TOLERANCE: "0.05",
  MODEL_PACKAGE_GROUP: "ich-al-test-hospital-ensemble",
  MODEL_IMAGE: "123456789012.dkr.ecr.us-east-1.amazonaws.com/ich-al:1",
};

Object.assign(process.env, LAMBDA_TEST_ENVIRONMENT);
