// `execution.parallel: per_gpu`: one slot per visible GPU, each child pinned to its own GPU with
// CUDA_VISIBLE_DEVICES=<that GPU's UUID> (a UUID, not an index: NVML's and CUDA's index orders
// can differ, and the child measures exactly what CUDA_VISIBLE_DEVICES selects). The parent reads
// NVML only (no CUDA context), as for cooldown.
export interface GpuSlot {
  /** CUDA_VISIBLE_DEVICES for the child pinned to this slot. */
  cudaVisibleDevices: string;
  label: string;
}

export type GpuSlotsResult = { slots: GpuSlot[]; reason: string | null };

/**
 * The GPUs this process may use (its own CUDA_VISIBLE_DEVICES applied), one slot each.
 * Never throws: no NVML, no GPU or an unmatched CUDA_VISIBLE_DEVICES give no slots and a reason.
 */
export async function perGpuSlots(env: NodeJS.ProcessEnv = process.env): Promise<GpuSlotsResult> {
  try {
    const native = await import('../native/index.ts');
    const opened = await native.openNvmlAsync();
    if (opened.status === 'unavailable') return { slots: [], reason: opened.reason };
    try {
      const resolved = native.resolveVisibleDevices(opened.session, env.CUDA_VISIBLE_DEVICES ?? null, env);
      if (resolved.status === 'unavailable') return { slots: [], reason: resolved.reason };
      // MIG slices share one GPU's energy counter: per-GPU isolation is impossible there
      const whole = resolved.devices.filter((d) => !d.viaMig);
      return {
        slots: whole.map((d) => ({ cudaVisibleDevices: d.uuid, label: `GPU ${d.index} (${d.name})` })),
        reason: whole.length < resolved.devices.length ? 'MIG slices are not separate slots (their energy is the whole GPU\'s)' : null,
      };
    } finally {
      opened.session.close();
    }
  } catch (err) {
    return { slots: [], reason: `NVML not readable: ${(err as Error).message}` };
  }
}
