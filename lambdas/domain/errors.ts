/**
 * Errors raised by the pure selection core. Every error names the offending input so that a
 * caller (CLI, Lambda, test) can report it in one line without re-deriving context.
 */
export class DomainError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A selection item (stack) is malformed: duplicate id, NaN, negative or infinite number. */
export class InvalidItemError extends DomainError {
  constructor(
    readonly itemId: string,
    readonly index: number,
    detail: string,
  ) {
    super(`item ${JSON.stringify(itemId)} (index ${index}): ${detail}`);
  }
}

/** The budget or the time resolution is not a usable number. */
export class InvalidBudgetError extends DomainError {}

/** A labeling-time observation is malformed (negative length, zero seconds, NaN, ...). */
export class InvalidTimingError extends DomainError {
  constructor(
    readonly index: number,
    detail: string,
  ) {
    super(`timing ${index}: ${detail}`);
  }
}

/** The labeling-time regression cannot be fitted on these observations (too few, no spread, collinear). */
export class DegenerateFitError extends DomainError {}
