// Managed servers (vllm, sglang, trtllm, llama-server): started per run inside the child's process
// group on a free port, log to <run_dir>/server.log, readiness polled with a timeout (→
// PreflightError), driven by the shared streaming client, and killed on dispose or when the child
// exits. Startup happens in the load phase, so its energy is load energy, outside the window.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Backend } from '../types.ts';
import type { ExperimentConfig } from '../../study/types.ts';
import { preflightError } from '../errors.ts';
import { clientSession } from '../openai/index.ts';
import { serverArgs, serverPrefix } from './flags.ts';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function tail(path: string, bytes = 2000): string {
  try {
    const s = readFileSync(path, 'utf8');
    return s.slice(-bytes);
  } catch {
    return '';
  }
}

async function isReady(base: string): Promise<boolean> {
  for (const path of ['/health', '/v1/models']) {
    try {
      const res = await fetch(base + path, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
  }
  return false;
}

export interface ManagedServer {
  proc: ChildProcess;
  port: number;
  logPath: string;
  stop(): Promise<void>;
}

/** Starts the server and waits until it answers, or throws PreflightError (and kills it). */
export async function startManagedServer(
  name: string,
  config: ExperimentConfig,
  runDir: string,
  opts: { env?: NodeJS.ProcessEnv; startupTimeoutMs: number; pollMs?: number; signal?: AbortSignal; log?: (l: string) => void },
): Promise<ManagedServer> {
  const env = opts.env ?? process.env;
  const port = await freePort();
  const argv = [...serverPrefix(name, config.params, env), ...serverArgs(name, config, port)];
  const logPath = join(runDir, 'server.log');
  const fd = openSync(logPath, 'a');
  opts.log?.(`${name}: starting ${JSON.stringify(argv)} (log ${logPath})`);
  // Not detached: the server shares the child's process group, so killing the group (stall
  // timeout, orphan guard, Ctrl+C) ends it too.
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let spawnError: Error | null = null;
  proc.on('exit', (code, signal) => (exited = { code, signal }));
  proc.on('error', (err) => (spawnError = err));
  // The child may end in ways that skip dispose (crash): never leave the server behind.
  const onExit = (): void => {
    if (exited === null) {
      try {
        proc.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  };
  process.on('exit', onExit);
  const stop = async (): Promise<void> => {
    process.off('exit', onExit);
    if (exited !== null || proc.exitCode !== null) return;
    const gone = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  };
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + opts.startupTimeoutMs;
  for (;;) {
    if (spawnError) {
      await stop();
      throw preflightError(`${name}: cannot start ${argv[0]}: ${(spawnError as Error).message}`);
    }
    if (exited !== null) {
      const e = exited as { code: number | null; signal: NodeJS.Signals | null };
      process.off('exit', onExit);
      throw preflightError(`${name}: server exited during startup (code ${e.code}, signal ${e.signal}); end of ${logPath}:\n${tail(logPath)}`);
    }
    if (opts.signal?.aborted) {
      await stop();
      throw preflightError(`${name}: startup cancelled`);
    }
    if (await isReady(base)) break;
    if (Date.now() > deadline) {
      await stop();
      throw preflightError(`${name}: server not ready after ${opts.startupTimeoutMs / 1000} s (polled ${base}/health); end of ${logPath}:\n${tail(logPath)}`);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
  }
  return { proc, port, logPath, stop };
}

/** The child side of every backend whose spec has a `server` (started per run in the child's group). */
export function managedBackend(name: string): Backend {
  return {
    name,
    async load(config, ctx) {
      const p = config.params as Record<string, unknown>;
      const timeoutS = typeof p.startup_timeout_seconds === 'number' ? p.startup_timeout_seconds : 600;
      const server = await startManagedServer(name, config, ctx.runDir, {
        startupTimeoutMs: timeoutS * 1000,
        signal: ctx.signal,
        log: ctx.log,
      });
      const session = clientSession(
        {
          baseUrl: `http://127.0.0.1:${server.port}/v1`,
          endpoint: p.endpoint === 'completions' ? 'completions' : 'chat',
          model: config.model,
          apiKey: null,
          requestTimeoutMs: 600_000,
        },
        () => server.stop(),
      );
      return {
        session,
        info: {
          backend_version: null,
          model_path: name === 'llama-server' ? config.model : null,
          model_builtin: false,
          extra_versions: { [`${name}.pid`]: String(server.proc.pid ?? ''), [`${name}.log`]: server.logPath },
        },
      };
    },
  };
}
