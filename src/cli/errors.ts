// Errors that carry their own exit code. Anything with `exitCode` thrown out of a command is
// printed as its message alone (no stack) and exits with that code.
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad input from the user (file, flag, YAML): exit 2. */
export class InputError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'InputError';
  }
}

export function exitCodeOf(err: unknown): number | null {
  if (err && typeof err === 'object' && 'exitCode' in err && typeof (err as { exitCode: unknown }).exitCode === 'number') {
    return (err as { exitCode: number }).exitCode;
  }
  return null;
}
