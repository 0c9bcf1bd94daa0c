/** vitest global setup of the `integration` project: one moto server for the run, stopped afterwards. */
import type { TestProject } from "vitest/node";
import { startMotoServer } from "../../scripts/lib/moto-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    motoEndpoint: string;
  }
}

export default async function setup(project: TestProject) {
  const moto = await startMotoServer();
  project.provide("motoEndpoint", moto.endpoint);
  return async () => {
    await moto.stop();
  };
}
