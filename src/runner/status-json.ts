// `llem status --json`: a stable interface for scripts. Add fields; never rename or remove them.
import type { Manifest } from './manifest.ts';
import type { ErrorType } from './protocol.ts';
import type { RunStatus, StatusCounts, StudyStatus } from './events.ts';

export interface StatusJson {
  status: StudyStatus;
  counts: StatusCounts;
  runs: Array<{
    index: number;
    config_hash: string;
    cycle: number;
    status: RunStatus;
    error_type: ErrorType | null;
    attempts: number;
    result: string | null;
  }>;
}

export function statusJson(m: Manifest): StatusJson {
  return {
    status: m.status,
    counts: { ...m.counts },
    runs: m.runs.map((r) => ({
      index: r.index,
      config_hash: r.config_hash,
      cycle: r.cycle,
      status: r.status,
      error_type: r.error_type,
      attempts: r.attempts.length,
      result: r.result,
    })),
  };
}
