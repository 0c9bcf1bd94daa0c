import { type InstitutionConfigInput, parseInstitutionConfig } from "../../lambdas/contracts/institution-config.js";

/** A valid configuration with only the required fields; every test that needs a stack builds from it. */
export const minimalConfigInput: InstitutionConfigInput = {
  institution: "test-hospital",
  annotatorEmails: ["radiologist@example.org"],
  senderAddress: "ich-al@example.org",
  weeklyBudgetHours: 40,
};

export const testConfig = (overrides: Partial<InstitutionConfigInput> = {}) =>
  parseInstitutionConfig({ ...minimalConfigInput, ...overrides });
