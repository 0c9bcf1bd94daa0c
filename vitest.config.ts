import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          setupFiles: ["test/support/fast-check-seed.ts", "test/support/lambda-environment.ts"],
          include: ["test/**/*.test.ts"],
          exclude: ["test/integration/**", "test/e2e/**", "test/browser/**", "node_modules/**"],
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          setupFiles: ["test/support/lambda-environment.ts"],
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/support/moto-global-setup.ts"],
          // One moto server is shared and reset before each test, so files must not run concurrently.
          fileParallelism: false,
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          setupFiles: ["test/support/lambda-environment.ts"],
          include: ["test/e2e/**/*.test.ts"],
          // Starts its own moto server and model server; one file at a time keeps the CPU for them.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 600_000,
        },
      },
      {
        extends: true,
        test: {
          name: "browser",
          setupFiles: ["test/support/fast-check-seed.ts"],
          include: ["test/browser/**/*.test.ts"],
          // Starts its own moto server, the worklist server and headless Chromium: one file at a time.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
