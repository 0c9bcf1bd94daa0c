/** Stopping the local servers' child processes (moto, the model container). */
import type { ChildProcess } from "node:child_process";

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process exited (at once if it already had). */
export async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
