// The run path's side of the GPU settings a study sweeps (power limit, clock locks; the work is
// src/gpu-settings): one NVML handle per local runner or Slurm task, opened only when the study
// sets a gpu.* key or this node's record in gpu-state.json lists a change an earlier runner left.
//
//  - before each child starts (before its baseline): apply → verify on exactly the run's GPUs; a
//    GpuSettingsError fails the attempt (PreflightError, the reason) and no child is spawned;
//  - settings then stay for the gap: the next run's apply changes only what differs, so settings
//    change between runs only, never during a window;
//  - restore: at the runner's own ends (study end, q, Ctrl+C, SIGTERM, an error in the runner),
//    and as a last resort on the process's 'exit' (a forced second Ctrl+C, an uncaught error).
//    Everything is synchronous, so it runs there too. After a SIGKILL the next runner restores
//    first (`restoreLeftovers`), or `llem restore-gpu` does.
import { writeSync } from 'node:fs';
import {
  changedGpuSettings,
  checkGpuSettingsPrivilege,
  GpuSettingsError,
  GPU_STATE_FILE,
  openGpuControlAsync,
  resolveRunGpus,
  restoreGpuSettings,
  restoreReportLines,
  thisHost,
  unrestoredLines,
  applyGpuSettings,
  type GpuControl,
  type GpuDeviceSettings,
  type RestoreReport,
} from '../gpu-settings/index.ts';
import { gpuSettingsUsed, type GpuSettings } from '../study/gpu-settings.ts';
import type { PlanFile } from '../study/types.ts';
import { RunnerInputError } from './errors.ts';
import type { AttemptEnd } from './transitions.ts';

export interface RunGpuSettingsOptions {
  /** This node's key in gpu-state.json (a Slurm task: its node name); default thisHost(). */
  host?: string;
  /**
   * Dry-set the power limit once per GPU selection before the first change (a Slurm task: its
   * submitting node may have no GPU, so `llem run` could not check the privilege there).
   */
  checkPrivilege?: boolean;
}

export class RunGpuSettings {
  private readonly privilegeChecked = new Set<string>();
  private readonly onExit = (): void => this.restoreAtExit();
  private closed = false;

  private constructor(
    readonly studyDir: string,
    readonly host: string,
    private readonly control: GpuControl | null,
    /** Why NVML could not be opened when it was needed. */
    private readonly unavailable: string | null,
    private readonly checkPrivilege: boolean,
  ) {
    if (control) process.on('exit', this.onExit);
  }

  /**
   * Opens NVML if the study needs it. Errors: GpuSettingsError (state_file) when gpu-state.json
   * cannot be read: no run should start on a GPU in an unknown state.
   */
  static async open(studyDir: string, plan: PlanFile, options: RunGpuSettingsOptions = {}): Promise<RunGpuSettings> {
    const host = options.host ?? thisHost();
    const used = gpuSettingsUsed(plan.configs.map((c) => c.config)).length > 0;
    const leftovers = changedGpuSettings(studyDir, host).changed.length > 0;
    if (!used && !leftovers) return new RunGpuSettings(studyDir, host, null, null, false);
    const opened = await openGpuControlAsync();
    if (opened.status === 'unavailable') return new RunGpuSettings(studyDir, host, null, `NVML is unavailable (${opened.reason.split('\n')[0]})`, false);
    return new RunGpuSettings(studyDir, host, opened.control, null, options.checkPrivilege === true);
  }

  /** Whether this runner holds NVML for GPU settings. */
  get active(): boolean {
    return this.control !== null;
  }

  /**
   * Restores what an earlier runner of this study left changed on this node (it was killed), before
   * anything else runs. Returns the report (null: nothing was left). Errors: RunnerInputError when
   * something could not be restored (the resume is refused, exit 2, with the reason and the hint).
   */
  restoreLeftovers(): RestoreReport | null {
    const report = this.restore();
    if (report?.status === 'failed') {
      throw new RunnerInputError(
        `${this.studyDir}: the GPU settings a previous runner left changed could not be restored, so no run starts on a GPU in an unknown state:\n${restoreReportLines(this.studyDir, report).join('\n')}`,
      );
    }
    return report;
  }

  /**
   * Puts the run's GPUs (CUDA_VISIBLE_DEVICES `cvd`) at `settings` and verifies them; null when the
   * study changes nothing here (no NVML needed). Errors: GpuSettingsError — the attempt must fail
   * with it (gpuSettingsFailure) and not be measured.
   */
  apply(cvd: string | null, settings: GpuSettings | undefined): GpuDeviceSettings[] | null {
    const used = gpuSettingsUsed([{ gpu: settings }]);
    if (!this.control) {
      if (used.length === 0) return null;
      throw new GpuSettingsError('no_device', `the run sets ${used.map((k) => `gpu.${k}`).join(', ')}, but ${this.unavailable ?? 'NVML is not open'}`);
    }
    const key = cvd ?? '';
    if (this.checkPrivilege && used.length > 0 && !this.privilegeChecked.has(key)) {
      checkGpuSettingsPrivilege(this.control, { cudaVisibleDevices: cvd, used });
      this.privilegeChecked.add(key);
    }
    return applyGpuSettings({ studyDir: this.studyDir, control: this.control, host: this.host }, { cudaVisibleDevices: cvd, settings });
  }

  /**
   * Puts back what this node's record lists: everything, or only the GPUs CUDA_VISIBLE_DEVICES
   * selects (a Slurm task restores its own GPUs; other tasks of the node may be measuring on
   * theirs). Never throws: a failure is a report with status failed, and what it could not restore
   * stays listed (with why) in gpu-state.json. Null when nothing was listed.
   */
  restore(only?: { cudaVisibleDevices: string | null }): RestoreReport | null {
    if (this.closed) return null;
    const failed = (error: string): RestoreReport => ({ status: 'failed', host: this.host, devices: [{ uuid: '-', name: GPU_STATE_FILE, restored: [], error }], otherHosts: [] });
    try {
      if (!this.control) {
        const { changed } = changedGpuSettings(this.studyDir, this.host);
        if (changed.length === 0) return null;
        return {
          status: 'failed',
          host: this.host,
          devices: changed.map((d) => ({ uuid: d.uuid, name: d.name, restored: [], error: `cannot restore: ${this.unavailable ?? 'NVML is not open'}` })),
          otherHosts: [],
        };
      }
      const uuids = only ? resolveRunGpus(this.control, only.cudaVisibleDevices).map((d) => d.uuid) : undefined;
      const report = restoreGpuSettings({ studyDir: this.studyDir, control: this.control, host: this.host }, { uuids });
      return report.status === 'nothing_to_do' ? null : report;
    } catch (err) {
      return failed(err instanceof Error ? err.message : String(err));
    }
  }

  /** The last resort on process exit: restore, and say what happened on stderr (synchronously). */
  private restoreAtExit(): void {
    const report = this.restore();
    if (!report) return;
    try {
      writeSync(2, `llem: on exit: ${restoreReportLines(this.studyDir, report).join('\nllem: ')}\n`);
    } catch {
      // no terminal left: gpu-state.json keeps what was not restored
    }
  }

  /** Releases NVML (after the last restore). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    process.off('exit', this.onExit);
    this.control?.close();
  }
}

/**
 * A runner's GPU settings, with what an earlier (killed) runner left restored first. Errors:
 * RunnerInputError (exit 2) when gpu-state.json cannot be read or a leftover cannot be restored.
 */
export async function startRunGpuSettings(studyDir: string, plan: PlanFile, options: RunGpuSettingsOptions & { warn(message: string): void }): Promise<RunGpuSettings> {
  let gpu: RunGpuSettings;
  try {
    gpu = await RunGpuSettings.open(studyDir, plan, options);
  } catch (err) {
    if (err instanceof GpuSettingsError) throw new RunnerInputError(`${err.message}: fix or remove it (\`llem restore-gpu\` reads it too) before running the study`);
    throw err;
  }
  try {
    const left = gpu.restoreLeftovers();
    if (left) options.warn(`a previous runner left GPU settings changed: ${restoreSummary(studyDir, left)}`);
    // other nodes' GPUs (a study Slurm ran) can only be restored there
    for (const line of unrestoredLines(studyDir, gpu.host)) options.warn(line);
  } catch (err) {
    gpu.close();
    throw err;
  }
  return gpu;
}

/** An attempt's GPU settings: applied and verified (null: nothing to apply), or why it must fail unmeasured. */
export type AttemptGpuSettings = { settings: GpuDeviceSettings[] | null; failure: null } | { settings: null; failure: AttemptEnd };

/** `gpu.apply` for one attempt, a GpuSettingsError turned into the attempt's end. */
export function applyForAttempt(gpu: RunGpuSettings, cvd: string | null, settings: GpuSettings | undefined): AttemptGpuSettings {
  try {
    return { settings: gpu.apply(cvd, settings), failure: null };
  } catch (err) {
    if (err instanceof GpuSettingsError) return { settings: null, failure: gpuSettingsFailure(err) };
    throw err;
  }
}

/** The end of an attempt whose GPU settings could not be applied or verified: failed, never measured. */
export function gpuSettingsFailure(err: GpuSettingsError): AttemptEnd {
  return {
    status: 'failed',
    error_type: 'PreflightError',
    message: `GPU settings (${err.kind}): ${err.message}`,
    phase_reached: null,
    stderr_tail: null,
    tree_cleanup: null,
    result_path: null,
    result: null,
    validity: null,
  };
}

/** What a restore did, as one line for the journal (a warning when it failed). */
export function restoreSummary(studyDir: string, report: RestoreReport): string {
  return `${report.status === 'failed' ? 'GPU settings NOT fully restored' : 'GPU settings restored'} on ${report.host}: ${restoreReportLines(studyDir, report).join('; ')}`;
}
