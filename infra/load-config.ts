import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type InstitutionConfig, InstitutionConfigError, parseInstitutionConfig } from "../lambdas/contracts/institution-config.js";

/** The CDK context the app reads: `-c institution=<id>` and optionally `-c config=path/to/config.json`. */
export interface ConfigContext {
  /** `-c institution=<id>`; must match the file's `institution` when the file names one. */
  readonly institution?: unknown;
  /** `-c config=path`; default: `infra/config/<institution>.json` under `configDir`. */
  readonly config?: unknown;
}

/**
 * Reads and parses the institution's configuration. The file is `-c config=path` or, by default,
 * `<configDir>/<institution>.json`; `-c institution` fills in or must equal the file's `institution`.
 * Throws `InstitutionConfigError` naming the field (or the file) and what to do.
 */
export const loadInstitutionConfig = (context: ConfigContext, configDir = join("infra", "config")): InstitutionConfig => {
  const institution = context.institution === undefined ? undefined : String(context.institution);
  const path = context.config !== undefined ? String(context.config) : institution ? join(configDir, `${institution}.json`) : undefined;
  if (!path) {
    throw new InstitutionConfigError("no institution: pass -c institution=<id> (and optionally -c config=path/to/config.json)");
  }
  if (!existsSync(path)) {
    throw new InstitutionConfigError(
      `config file ${path} not found: create it (see infra/config/demo.json) or pass -c config=path/to/config.json`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new InstitutionConfigError(`config file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InstitutionConfigError(`config file ${path} must hold one JSON object`);
  }
  const fileInstitution = (raw as Record<string, unknown>).institution;
  if (institution !== undefined && fileInstitution !== undefined && fileInstitution !== institution) {
    throw new InstitutionConfigError(
      `institution: -c institution=${institution} but ${path} says ${JSON.stringify(fileInstitution)}; make them agree`,
    );
  }
  return parseInstitutionConfig({ ...raw, institution: fileInstitution ?? institution }, `config file ${path}`);
};
