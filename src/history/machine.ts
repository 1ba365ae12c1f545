// Which machine a run's timings belong to: the GPU model(s) and driver, or "cpu" and the CPU model
// when no GPU was measured. Not the hostname: identical nodes of a cluster share what they learn.
import { cpus } from 'node:os';
import { z } from 'zod';
import type { EnvironmentSnapshot } from '../results/schema.ts';
import { openNvmlAsync, resolveVisibleDevices } from '../native/index.ts';

export const machineSchema = z.object({
  kind: z.enum(['gpu', 'cpu']),
  /** Distinct GPU model names of the selection, sorted, joined with " + "; null on a CPU machine. */
  gpu: z.string().nullable(),
  driver: z.string().nullable(),
  cpu: z.string().nullable(),
});
export type Machine = z.infer<typeof machineSchema>;

function gpuMachine(names: string[], driver: string | null, cpu: string | null): Machine {
  return { kind: 'gpu', gpu: [...new Set(names)].sort().join(' + '), driver, cpu };
}

function cpuMachine(cpu: string | null): Machine {
  return { kind: 'cpu', gpu: null, driver: null, cpu };
}

/** Exact identity: the same GPU model(s) and driver, or the same CPU model. */
export function machineKey(m: Machine): string {
  return m.kind === 'gpu' ? `gpu:${m.gpu}|driver:${m.driver ?? '?'}` : `cpu:${m.cpu ?? '?'}`;
}

/** The hardware without the driver: a driver update keeps this, with a wider range. */
export function hardwareKey(m: Machine): string {
  return m.kind === 'gpu' ? `gpu:${m.gpu}` : `cpu:${m.cpu ?? '?'}`;
}

export function describeMachine(m: Machine): string {
  return m.kind === 'gpu' ? `${m.gpu}, driver ${m.driver ?? 'unknown'}` : `CPU only (${m.cpu ?? 'unknown CPU'})`;
}

/** The machine a result.json was measured on (its environment snapshot). */
export function machineOfEnvironment(env: EnvironmentSnapshot): Machine {
  if (env.nvml.available && env.gpus.length > 0) return gpuMachine(env.gpus.map((g) => g.name), env.nvml.driver_version, env.cpu_model);
  return cpuMachine(env.cpu_model);
}

/** This machine as a run here would record it (same NVML selection as the worker). Never throws. */
export async function currentMachine(cudaVisibleDevices: string | null = process.env.CUDA_VISIBLE_DEVICES ?? null): Promise<Machine> {
  const cpu = cpus()[0]?.model ?? null;
  const opened = await openNvmlAsync();
  if (opened.status === 'unavailable') return cpuMachine(cpu);
  const { session } = opened;
  try {
    const resolved = resolveVisibleDevices(session, cudaVisibleDevices);
    if (resolved.status === 'unavailable' || resolved.devices.length === 0) return cpuMachine(cpu);
    return gpuMachine(resolved.devices.map((d) => d.name), session.info.driverVersion, cpu);
  } catch {
    return cpuMachine(cpu);
  } finally {
    session.close();
  }
}
