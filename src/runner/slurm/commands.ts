// The only place llem talks to Slurm: its own commands (`sbatch --parsable`, `squeue`,
// `scontrol show job`, `scancel`), never its REST API or libslurm. Each wrapper runs one command
// with a timeout and parses its output with a pure function that the unit tests call directly.
import { execa } from 'execa';

/** A Slurm command that failed (missing binary, non-zero exit, timeout); carries its stderr. */
export class SlurmCommandError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'SlurmCommandError';
  }
}

export interface SlurmCommandOptions {
  /** Environment for the command (SLURM_CONF in tests); defaults to this process's. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

async function runSlurm(command: string, args: string[], options: SlurmCommandOptions = {}): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  try {
    const r = await execa(command, args, {
      env: options.env,
      extendEnv: options.env === undefined,
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      reject: false,
      stdin: 'ignore',
      all: false,
    });
    if (r.failed && r.exitCode === undefined) {
      // not started (ENOENT) or killed by our timeout
      const why = r.timedOut ? `timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` : r.shortMessage;
      throw new SlurmCommandError(`${command}: ${why}`, command, String(r.stderr ?? ''));
    }
    return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? 1 };
  } catch (err) {
    if (err instanceof SlurmCommandError) throw err;
    throw new SlurmCommandError(`${command}: ${(err as Error).message}`, command, '');
  }
}

// ---------------------------------------------------------------- sbatch

/** `sbatch --parsable` prints `jobid` or `jobid;cluster`. */
export function parseSbatchParsable(stdout: string): string {
  const line = stdout.trim().split('\n').pop() ?? '';
  const id = line.split(';')[0]!.trim();
  if (!/^\d+$/.test(id)) throw new Error(`sbatch --parsable printed no job id: ${JSON.stringify(stdout.slice(0, 200))}`);
  return id;
}

/** Submits a batch script; returns the job id (for an array, the array job id). */
export async function sbatch(scriptPath: string, args: string[], options: SlurmCommandOptions = {}): Promise<string> {
  const r = await runSlurm('sbatch', ['--parsable', ...args, scriptPath], options);
  if (r.exitCode !== 0) {
    throw new SlurmCommandError(`sbatch failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`, 'sbatch', r.stderr);
  }
  return parseSbatchParsable(r.stdout);
}

// ---------------------------------------------------------------- squeue

export interface QueuedTask {
  /** The array job id (the id sbatch printed). */
  jobId: string;
  /** The array task id, null for a job that is not an array. */
  taskId: number | null;
  state: string;
  reason: string;
}

const SQUEUE_FORMAT = '%F|%K|%T|%r';

/**
 * Parses `squeue -h -r -o '%F|%K|%T|%r'`. With `-r` every array task is on its own line, pending
 * ones included; a non-array job has `N/A` as its task id.
 */
export function parseSqueue(stdout: string): QueuedTask[] {
  const out: QueuedTask[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const [jobId, task, state, ...reason] = line.split('|');
    if (!jobId || !state) continue;
    const taskId = task && /^\d+$/.test(task) ? Number(task) : null;
    out.push({ jobId, taskId, state, reason: reason.join('|') });
  }
  return out;
}

/**
 * One `squeue` call for all the given jobs. Jobs Slurm no longer knows are simply absent (squeue
 * exits non-zero with "Invalid job id" when none of them is known; that is an empty queue here).
 */
export async function squeue(jobIds: string[], options: SlurmCommandOptions = {}): Promise<QueuedTask[]> {
  if (jobIds.length === 0) return [];
  const r = await runSlurm('squeue', ['-h', '-r', '-j', jobIds.join(','), '-o', SQUEUE_FORMAT], options);
  if (r.exitCode !== 0) {
    if (/invalid job id/i.test(r.stderr)) return [];
    throw new SlurmCommandError(`squeue failed (exit ${r.exitCode}): ${r.stderr.trim()}`, 'squeue', r.stderr);
  }
  return parseSqueue(r.stdout);
}

// ---------------------------------------------------------------- scontrol show job

export interface JobRecord {
  jobId: string;
  arrayJobId: string | null;
  /** One task id, or null for the meta record of tasks not started yet (`ArrayTaskId=3-5%2`). */
  arrayTaskId: number | null;
  /** The raw ArrayTaskId field (a range for the pending remainder of an array). */
  arrayTaskIdRaw: string | null;
  state: string;
  reason: string;
  /** `ExitCode=<code>:<signal>` of the batch script. */
  exitCode: number | null;
  exitSignal: number | null;
  timeLimit: string | null;
  runTime: string | null;
  fields: Record<string, string>;
}

/**
 * Parses `scontrol show job -o` (one job record a line, `Key=Value` pairs). Values may hold
 * spaces (`Command=`, `WorkDir=`, `Reason=`), so a value runs until the next ` Key=`.
 */
export function parseScontrolShowJob(stdout: string): JobRecord[] {
  const records: JobRecord[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('JobId=')) continue;
    const fields: Record<string, string> = {};
    const re = /(?:^|\s)([A-Za-z][\w:/]*)=(.*?)(?=\s[A-Za-z][\w:/]*=|\s*$)/g;
    for (let m = re.exec(line); m; m = re.exec(line)) fields[m[1]!] = m[2]!;
    const taskRaw = fields.ArrayTaskId ?? null;
    const [codeStr, sigStr] = (fields.ExitCode ?? '').split(':');
    records.push({
      jobId: fields.JobId ?? '',
      arrayJobId: fields.ArrayJobId ?? null,
      arrayTaskId: taskRaw !== null && /^\d+$/.test(taskRaw) ? Number(taskRaw) : null,
      arrayTaskIdRaw: taskRaw,
      state: (fields.JobState ?? 'UNKNOWN').split(/\s/)[0]!,
      reason: fields.Reason ?? '',
      exitCode: codeStr && /^\d+$/.test(codeStr) ? Number(codeStr) : null,
      exitSignal: sigStr && /^\d+$/.test(sigStr) ? Number(sigStr) : null,
      timeLimit: fields.TimeLimit ?? null,
      runTime: fields.RunTime ?? null,
      fields,
    });
  }
  return records;
}

/**
 * `scontrol show job -o <id>`: every record of a job (for an array job id, every task Slurm still
 * remembers). A job Slurm has forgotten (older than MinJobAge) gives an empty list.
 */
export async function scontrolShowJob(jobId: string, options: SlurmCommandOptions = {}): Promise<JobRecord[]> {
  const r = await runSlurm('scontrol', ['show', 'job', '-o', jobId], options);
  if (r.exitCode !== 0) {
    if (/invalid job id/i.test(r.stderr)) return [];
    throw new SlurmCommandError(`scontrol show job ${jobId} failed (exit ${r.exitCode}): ${r.stderr.trim()}`, 'scontrol', r.stderr);
  }
  return parseScontrolShowJob(r.stdout);
}

// ---------------------------------------------------------------- scancel

/** `scancel` of whole jobs (`123`) or single array tasks (`123_4`). Unknown ids are not an error. */
export async function scancel(ids: string[], options: SlurmCommandOptions & { signal?: string } = {}): Promise<void> {
  if (ids.length === 0) return;
  const args = options.signal ? [`--signal=${options.signal}`, ...ids] : ids;
  const r = await runSlurm('scancel', args, options);
  if (r.exitCode !== 0 && !/invalid job id|already completing|completed/i.test(r.stderr)) {
    throw new SlurmCommandError(`scancel ${ids.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim()}`, 'scancel', r.stderr);
  }
}
