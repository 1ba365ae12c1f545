// Each managed server's argv: its program (the spec's, a study param's, or an environment
// override) and the flags its spec makes from the universal fields and its scoped params
// (src/backends/specs/<name>.ts `server`). Never through a shell.
import type { ExperimentConfig } from '../../study/types.ts';
import { getBackendSpec } from '../registry.ts';
import type { ManagedServerSpec } from '../types.ts';

export function managedServerSpec(name: string): ManagedServerSpec {
  const server = getBackendSpec(name)?.server;
  if (!server) throw new Error(`backend ${name} starts no server`);
  return server;
}

/** `LLEM_VLLM_COMMAND`, `LLEM_LLAMA_SERVER_COMMAND` …: a JSON argv array replacing the program. */
export function overrideEnvName(name: string): string {
  return `LLEM_${name.toUpperCase().replace(/-/g, '_')}_COMMAND`;
}

/** The program (and subcommand) the server is started with. Errors: a malformed override. */
export function serverPrefix(name: string, params: Record<string, unknown>, env: NodeJS.ProcessEnv): string[] {
  const override = env[overrideEnvName(name)];
  if (override) {
    const parsed = JSON.parse(override) as unknown;
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((x) => typeof x === 'string')) {
      throw new Error(`${overrideEnvName(name)} must be a JSON array of strings (argv prefix)`);
    }
    return parsed as string[];
  }
  const server = managedServerSpec(name);
  return server.programFromParams?.(params) ?? [...server.program];
}

/** Flags after the program; the model, host and port included. */
export function serverArgs(name: string, config: ExperimentConfig, port: number): string[] {
  return managedServerSpec(name).args(config, port);
}
