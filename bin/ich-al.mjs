#!/usr/bin/env node
// Entry point of the `ich-al` command: runs the TypeScript CLI through tsx (no build step).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../lambdas/cli/ich-al.ts");
process.exitCode = await main(process.argv.slice(2));
