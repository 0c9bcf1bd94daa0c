/**
 * The complete handler's environment for the browser tests. Imported before anything else: the handler
 * module builds its default instance from process.env when it is first imported.
 */
Object.assign(process.env, {
  TABLE_NAME: "ich-al-records",
  ANNOTATOR_DIRECTORY: JSON.stringify([{ sub: "hoisted-sub", email: "amy@example.org" }]),
  SCHEDULE_TIMEZONE: "UTC",
  STUDIES_BUCKET: "studies",
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "local",
  AWS_SECRET_ACCESS_KEY: "local",
});
