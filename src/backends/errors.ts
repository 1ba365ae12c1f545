// A failure that already knows how the runner should classify it (protocol ERROR_TYPES).
// Anything else thrown inside the child is reported as BackendError.
import type { ErrorType } from '../runner/protocol.ts';

export class ClassifiedError extends Error {
  readonly errorType: ErrorType;
  constructor(errorType: ErrorType, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = errorType;
    this.errorType = errorType;
  }
}

export const preflightError = (message: string): ClassifiedError => new ClassifiedError('PreflightError', message);
export const invalidResult = (message: string): ClassifiedError => new ClassifiedError('InvalidResult', message);
export const backendError = (message: string, cause?: unknown): ClassifiedError =>
  new ClassifiedError('BackendError', message, { cause });
