// Errors of the runner that are the user's to fix (exit 2): a refused resume, a live orphan.
export class RunnerInputError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'RunnerInputError';
  }
}
