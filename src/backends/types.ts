// The backend contract. Two halves, kept apart so the grammar can validate a study without
// loading any inference engine:
//  - BackendSpec (registered in src/backends/registry.ts): everything the parent knows of a
//    backend — the scoped parameter schema, valid combinations, estimate heuristics, how its model
//    is named and sized, its GPU memory, what `llem doctor` checks, a managed server's argv, and
//    where its child side lives. Pure: no process, no file I/O of its own.
//  - Backend (child side, src/backends/<name>/): load → session → run → dispose.
// A new backend is one spec file (src/backends/specs/) plus one line in src/backends/specs/index.ts,
// and its child side.
import type { z } from 'zod';
import type { ExperimentConfig } from '../study/types.ts';
import type { WorkloadArrival } from '../arrival.ts';

/** How a run's GPU memory is planned (src/study/estimate.ts memoryEstimate). */
export type MemoryPlan =
  /** Weights + KV cache + runtime; `note` is added to the reason (a server preallocates …). */
  | { kind: 'weights'; note?: string }
  /** Not planned here, and why (the endpoint runs elsewhere, the command manages its own). */
  | { kind: 'unplanned'; reason: string };

export type BackendCheckStatus = 'ok' | 'warn' | 'missing';

/** What `llem doctor` says of a backend on this machine. */
export interface BackendCheck {
  name: string;
  status: BackendCheckStatus;
  detail: string;
}

/** The machine, as `llem doctor` lets a spec look at it (the I/O is the doctor's). */
export interface DoctorProbe {
  /** For each Python a backend would try (python3 on PATH, then /usr/bin/python3), which of `modules` import-resolve. */
  pythonModules(modules: string[]): Promise<Array<{ python: string; found: Record<string, boolean> }>>;
  /** Absolute path of a command on PATH (or of a path given), null when absent. */
  onPath(command: string): string | null;
  /** Whether a Node package resolves from llem's install. */
  nodePackage(name: string): boolean;
}

/** A server started per run inside the child's process group (vllm, sglang, trtllm, llama-server). */
export interface ManagedServerSpec {
  /** The program (and subcommand) it is started with, e.g. ['vllm', 'serve']. */
  program: readonly string[];
  /** A program the study's params name instead (llama-server.binary), or null. */
  programFromParams?(params: Record<string, unknown>): string[] | null;
  /** Flags after the program: the model, host and port included. */
  args(config: ExperimentConfig, port: number): string[];
}

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
  /**
   * `model` names a model on a server someone else runs (openai): there is no local file to check,
   * no size and no GPU memory to plan here.
   */
  remoteModel?: boolean;
  /** Sizes in bytes of the builtin models this backend ships, by model name (src/backends/model-size.ts). */
  builtinModelBytes?: Readonly<Record<string, number>>;
  /** How this run's GPU memory is planned. */
  memory(config: ExperimentConfig): MemoryPlan;
  /** What `llem doctor` reports for this backend. */
  doctor(probe: DoctorProbe): Promise<BackendCheck>;
  /** Present for a backend that starts a server per run (src/backends/managed/). */
  server?: ManagedServerSpec;
  /** The child side, imported only in the worker that runs this backend. */
  loadBackend(): Promise<Backend>;
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
