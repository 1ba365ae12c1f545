// The backend contract. Two halves, kept apart so the grammar can validate a study without
// loading any inference engine:
//  - BackendSpec (registered in src/backends/registry.ts): the scoped parameter schema, valid
//    combinations and estimate heuristics. Pure; the grammar consults only this.
//  - Backend (child side, src/backends/<name>/): load → session → run → dispose.
import type { z } from 'zod';
import type { ExperimentConfig } from '../study/types.ts';
import type { WorkloadArrival } from '../arrival.ts';

export interface BackendSpec {
  name: string;
  /** One line for `llem doctor` and docs. */
  description: string;
  /** zod schema of the backend's YAML section (`vllm:`), with defaults; strict (unknown keys rejected). */
  params: z.ZodTypeAny;
  /** Precisions this backend accepts. */
  precisions: readonly string[];
  /**
   * All reasons this effective config cannot run (empty = valid). Called after params defaults
   * are applied. Reasons are full sentences naming the fields involved.
   */
  invalidReasons(config: ExperimentConfig): string[];
  /**
   * The backend drives requests through the OpenAI-compatible client, so it can honour a study's
   * `request_rate` (open-loop arrivals). Absent: a config with a rate is skipped, naming the backend.
   */
  acceptsRequestRate?: true;
  /** Rough throughput for the pre-flight estimate (conservative), output tokens per second. */
  estimateTokensPerSecond(config: ExperimentConfig): number;
  /** Seconds to load the model, given its size in bytes when known. */
  estimateLoadSeconds(config: ExperimentConfig, modelBytes: number | null): number;
}

/** One request's timeline. All timestamps are monotonic milliseconds (performance.now() scale). */
export interface RequestRecord {
  prompt_index: number;
  input_tokens: number;
  output_tokens: number;
  start_ms: number;
  /** First token of any kind (reasoning included). null if no token arrived. */
  first_token_ms: number | null;
  /** First content token (differs from first_token_ms for reasoning models). */
  first_content_token_ms: number | null;
  /** Arrival time of each token or chunk after the first (for ITL). */
  token_times_ms: number[];
  end_ms: number;
  error: string | null;
  /** Open-loop workloads: when the arrival process scheduled this request (sent at start_ms, at
   * the earliest moment an in-flight slot was free). */
  scheduled_ms?: number;
  /** Generated text, when the backend has it (determinism checks, audits). */
  output_text?: string;
}

export interface Prompt {
  index: number;
  text: string;
  /** Chat messages form, for chat endpoints and chat templates. */
  messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>;
}

export interface Workload {
  prompts: Prompt[];
  max_new_tokens: number;
  /** Requests in flight at once (the cap, also for open-loop arrivals). */
  concurrency: number;
  /** Open-loop arrivals (request_rate set): absent = closed loop, `concurrency` lanes back to back. */
  arrival?: WorkloadArrival;
  seed: number;
  greedy: boolean;
}

export interface BackendSession {
  /**
   * true when the backend warms up on its own (a `command` program runs its whole loop per call):
   * the worker then skips its warmup phase and records warmup as not run by llem.
   */
  handlesWarmup?: boolean;
  /** Run the workload; onRequest fires as each request completes (for progress/heartbeats). */
  run(workload: Workload, onRequest?: (r: RequestRecord) => void, signal?: AbortSignal): Promise<RequestRecord[]>;
  dispose(): Promise<void>;
  /**
   * Optional measurement-window edges, for backends whose device work is asynchronous (pytorch:
   * `torch.cuda.synchronize`). The worker calls beginWindow() right before the energy window opens
   * (after warmup) and endWindow() right after the measured workload, before the window closes.
   * endWindow returns the backend's own peak device memory over the window (torch's
   * max_memory_allocated after a reset at beginWindow), or null when it has none.
   */
  beginWindow?(): Promise<void>;
  endWindow?(): Promise<{ memory_peak_bytes: number | null }>;
}

export interface LoadInfo {
  backend_version: string | null;
  model_path: string | null;
  model_builtin: boolean;
  /** Extra versions for the environment snapshot. */
  extra_versions?: Record<string, string | null>;
}

export interface Backend {
  name: string;
  load(
    config: ExperimentConfig,
    ctx: { runDir: string; signal: AbortSignal; log: (line: string) => void },
  ): Promise<{ session: BackendSession; info: LoadInfo }>;
}
