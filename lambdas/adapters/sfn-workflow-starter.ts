/** Starts the weekly workflow with Step Functions StartExecution (port: domain/workflow-starter.ts). */
import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import type { WeeklyExecutionInput } from "../contracts/weekly-workflow.js";
import type { WorkflowStart, WorkflowStarter } from "../domain/workflow-starter.js";

export class SfnWorkflowStarter implements WorkflowStarter {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  /**
   * StartExecution with the given name. Step Functions refuses a second execution of a name
   * (ExecutionAlreadyExists), which maps to `started: false`. One exception, by AWS design: the same
   * name and the same input while that execution still runs is idempotent and returns the running
   * execution — reported `started: true` again, yet still one execution.
   */
  async start(executionName: string, input: WeeklyExecutionInput): Promise<WorkflowStart> {
    try {
      const out = await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: executionName, input: JSON.stringify(input) }),
      );
      return { executionName, started: true, ...(out.executionArn ? { executionArn: out.executionArn } : {}) };
    } catch (error) {
      if (error instanceof ExecutionAlreadyExists) return { executionName, started: false };
      throw error;
    }
  }
}
