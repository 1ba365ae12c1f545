// The run lifecycle as a user meets it, through the real CLI with real children (the fixture
// worker stands in for the measuring one through LLEM_WORKER_ENTRY): model-aware timeouts shown
// by `plan` and used by the runner, a timed-out run retried with a longer timeout, the gap a resume
// owes, `status` after the runner was SIGKILLed, resume right after that, and a study another
// runner holds.
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fixtureWorkerPath, spawnLlem, waitFor } from './helpers.ts';

const llem = spawnLlem;

const run = (args: string[], env: NodeJS.ProcessEnv) => llem(args, env).done;

/** manifest.json as written (these studies are small: one file). */
function readManifest(studyDir: string): { runs: Array<Record<string, any>>; timeout_override?: Record<string, any> } {
  return JSON.parse(readFileSync(path.join(studyDir, 'manifest.json'), 'utf8'));
}

function journal(studyDir: string): Array<Record<string, any>> {
  try {
    return readFileSync(path.join(studyDir, 'events.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

function studyYaml(execution: Record<string, unknown>, extra = ''): string {
  const exec = Object.entries({ n_cycles: 1, cycle_order: 'sequential', config_gap_seconds: 0, cycle_gap_seconds: 0, stall_timeout_seconds: 30, ...execution })
    .map(([k, v]) => `  ${k}: ${v}`)
    .join('\n');
  return `name: lifecycle\nbackend: llamacpp\nmodel: builtin:tiny-random\ndataset: builtin\nn: 1\nmax_new_tokens: 1\n${extra}execution:\n${exec}\n`;
}

function setup(yaml: string) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'llem-lifecycle-'));
  const yamlPath = path.join(root, 'study.yaml');
  writeFileSync(yamlPath, yaml);
  const out = path.join(root, 'out');
  const env: NodeJS.ProcessEnv = { ...process.env, LLEM_WORKER_ENTRY: fixtureWorkerPath };
  delete env.FIXTURE_SLEEP_MS;
  delete env.FIXTURE_MODE;
  return {
    root,
    yamlPath,
    out,
    env,
    studyDir: () => path.join(out, readdirSync(out)[0]!),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** SIGKILL a whole process group, ignoring one already gone. */
function killGroup(pid: number | null | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Starts `llem run` and SIGKILLs it (the runner only) once its first run measures; returns the study dir and the worker's pid. */
async function runnerKilledMidRun(s: ReturnType<typeof setup>, env: NodeJS.ProcessEnv): Promise<{ studyDir: string; runnerPid: number; workerPid: number }> {
  const first = llem(['run', s.yamlPath, '--out', s.out, '--no-tui', '--yes'], { ...env, FIXTURE_SLEEP_MS: '120000' });
  let studyDir = '';
  await waitFor(() => existsSync(s.out) && readdirSync(s.out).length > 0 && journal((studyDir = s.studyDir())).some((e) => e.type === 'phase' && e.phase === 'measure'), 120_000, 'the first run to measure');
  const runnerPid = first.proc.pid!;
  process.kill(runnerPid, 'SIGKILL');
  await first.done;
  const workerPid = readManifest(studyDir).runs[0]!.attempts.at(-1)!.pid!;
  return { studyDir, runnerPid, workerPid };
}

describe('the run lifecycle through the CLI', { concurrency: 2, timeout: 600_000 }, () => {
  it('plan shows the timeout a run gets, model-aware for folders of weights and hub ids, and the runner uses that figure', async () => {
    const s = setup('');
    try {
      // a checkpoint folder: 2 × 35 GB of (sparse) safetensors, and a .bin copy that must not count twice
      const big = path.join(s.root, 'big-ckpt');
      const small = path.join(s.root, 'small-ckpt');
      const sparse = (file: string, bytes: number) => {
        const fd = openSync(file, 'w');
        ftruncateSync(fd, bytes);
        closeSync(fd);
      };
      for (const [dir, each] of [[big, 35e9], [small, 0.5e9]] as const) {
        mkdirSync(dir);
        sparse(path.join(dir, 'model-00001-of-00002.safetensors'), each);
        sparse(path.join(dir, 'model-00002-of-00002.safetensors'), each);
        sparse(path.join(dir, 'pytorch_model.bin'), 2 * each);
        writeFileSync(path.join(dir, 'config.json'), '{}');
      }
      // a hub cache holding only the config.json of a model whose name says nothing of its size
      const hub = path.join(s.root, 'hub');
      const snap = path.join(hub, 'models--acme--mystery-model', 'snapshots', 'abc123');
      mkdirSync(snap, { recursive: true });
      mkdirSync(path.join(hub, 'models--acme--mystery-model', 'refs'));
      writeFileSync(path.join(hub, 'models--acme--mystery-model', 'refs', 'main'), 'abc123');
      writeFileSync(path.join(snap, 'config.json'), JSON.stringify({ hidden_size: 4096, num_hidden_layers: 32, intermediate_size: 11008, vocab_size: 32000, num_attention_heads: 32 }));
      writeFileSync(
        s.yamlPath,
        `name: sizes\nbackend: vllm\ndataset: builtin\nn: 1\nmax_new_tokens: 1\nsweep:\n  model: [${big}, ${small}, meta-llama/Llama-3-70B, Qwen/Qwen2.5-0.5B, acme/mystery-model, acme/tiny-thing]\n`,
      );
      const env = { ...s.env, HF_HUB_CACHE: hub };
      const plan = await run(['plan', s.yamlPath, '--json'], env);
      assert.equal(plan.code, 0, plan.stderr);
      const json = JSON.parse(plan.stdout);
      // per_config follows the sweep's order of models
      const timeouts: number[] = json.estimate.per_config.map((c: { timeout_seconds: number }) => c.timeout_seconds);
      assert.equal(timeouts.length, 6);
      for (const t of timeouts) assert.ok(Number.isInteger(t) && t >= 300, `a timeout of at least the 5 min floor: ${t}`);
      const [bigT, smallT, hub70T, hub05T, mysteryT, unknownT] = timeouts as [number, number, number, number, number, number];
      assert.ok(bigT > smallT, `70 GB of weights (${bigT} s) get longer than 1 GB (${smallT} s)`);
      assert.ok(bigT > 600, `70 GB at ~1 GB/s of load alone is beyond the floor: ${bigT} s`);
      assert.ok(hub70T > hub05T, `a 70B hub id (${hub70T} s) gets longer than a 0.5B one (${hub05T} s)`);
      assert.ok(mysteryT > hub05T && mysteryT < hub70T, `~6.7B from a cached config.json: ${mysteryT} s`);
      assert.ok(unknownT > 0);
      const human = await run(['plan', s.yamlPath], env);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, new RegExp(`timeout ${Math.floor(bigT / 60)}m`));

      // the runner gives a run the timeout the plan showed, and records it in the attempt
      writeFileSync(s.yamlPath, `name: sizes-run\nbackend: vllm\ndataset: builtin\nn: 1\nmax_new_tokens: 1\nmodel: ${big}\n`);
      const planned = JSON.parse((await run(['plan', s.yamlPath, '--json'], env)).stdout).estimate.per_config[0].timeout_seconds;
      const ran = await run(['run', s.yamlPath, '--out', s.out, '--no-tui', '--yes'], env);
      assert.equal(ran.code, 0, ran.stderr);
      const attempt = readManifest(s.studyDir()).runs[0]!.attempts[0]!;
      assert.deepEqual(attempt.timeouts, { timeout_seconds: planned, stall_timeout_seconds: 120 });
      const spec = JSON.parse(readFileSync(path.join(s.studyDir(), attempt.run_dir, 'run.json'), 'utf8'));
      assert.equal(spec.heartbeat_ms, 5000, 'heartbeat from the stall timeout (a quarter, at most 5 s)');
    } finally {
      s.cleanup();
    }
  });

  it('a timed-out run is retried with a longer timeout: resume --retry-failed --experiment-timeout, recorded per attempt', async () => {
    const s = setup(studyYaml({ experiment_timeout_seconds: 3 }));
    const env = { ...s.env, FIXTURE_SLEEP_MS: '6000' };
    try {
      const first = await run(['run', s.yamlPath, '--out', s.out, '--no-tui', '--yes'], env);
      assert.equal(first.code, 1, first.stderr);
      const dir = s.studyDir();
      assert.equal(readManifest(dir).runs[0]!.error_type, 'TimeoutError');

      const bad = await run(['resume', dir, '--retry-failed', '--experiment-timeout', 'soon', '--no-tui'], env);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--experiment-timeout: expected a number of seconds > 0, got "soon"/);

      const again = await run(['resume', dir, '--retry-failed', '--experiment-timeout', '60', '--stall-timeout', '45', '--no-tui'], env);
      assert.equal(again.code, 0, again.stderr);
      const m = readManifest(dir);
      const [a1, a2] = m.runs[0]!.attempts;
      assert.equal(m.runs[0]!.status, 'completed');
      assert.deepEqual([a1!.status, a1!.error_type, a1!.timeouts], ['failed', 'TimeoutError', { timeout_seconds: 3, stall_timeout_seconds: 30 }]);
      assert.deepEqual([a2!.status, a2!.timeouts], ['completed', { timeout_seconds: 60, stall_timeout_seconds: 45 }]);
      assert.equal(m.timeout_override?.experiment_timeout_seconds, 60);
    } finally {
      s.cleanup();
    }
  });

  it('resume owes the config gap (less the idle time) and the cooldown before its first run', async () => {
    const s = setup(studyYaml({ config_gap_seconds: 25, cooldown: '{ target_temp_c: 60, max_wait_seconds: 5 }' }, 'sweep:\n  batch_size: [1, 2]\n'));
    try {
      const first = llem(['run', s.yamlPath, '--out', s.out, '--no-tui', '--yes'], s.env);
      // stop during the gap after the first run: the second is left pending
      await waitFor(() => existsSync(s.out) && readdirSync(s.out).length > 0 && journal(s.studyDir()).some((e) => e.type === 'gap'), 120_000, 'the first gap');
      process.kill(first.proc.pid!, 'SIGINT');
      const stopped = await first.done;
      assert.equal(stopped.code, 130, stopped.stderr);
      const dir = s.studyDir();
      assert.deepEqual(readManifest(dir).runs.map((r) => r.status), ['completed', 'pending']);
      const before = journal(dir).length;

      const resumed = await run(['resume', dir, '--no-tui'], s.env);
      assert.equal(resumed.code, 0, resumed.stderr);
      const events = journal(dir).slice(before);
      const gapAt = events.findIndex((e) => e.type === 'gap');
      const runAt = events.findIndex((e) => e.type === 'run_status' && e.run.index === 1 && e.run.status === 'running');
      assert.ok(gapAt >= 0 && gapAt < runAt, `a gap before the resumed run: ${JSON.stringify(events.map((e) => e.type))}`);
      assert.equal(events[gapAt]!.kind, 'config');
      assert.ok(events[gapAt]!.total_seconds > 0 && events[gapAt]!.total_seconds <= 25, `the gap less the idle time: ${events[gapAt]!.total_seconds}`);
      assert.match(resumed.stderr, /config gap/);
      // the resume's only run is its first: the cooldown step ran before it (no NVML here: it says it could not read the temperature)
      assert.match(resumed.stderr, /cooldown skipped: GPU temperature unavailable/);
    } finally {
      s.cleanup();
    }
  });

  it('status after the runner was SIGKILLed: stopped, its runner dead, and how to resume', async () => {
    const s = setup(studyYaml({ experiment_timeout_seconds: 600 }));
    let workerPid: number | null = null;
    try {
      const killed = await runnerKilledMidRun(s, s.env);
      workerPid = killed.workerPid;
      const json = await run(['status', killed.studyDir, '--json'], s.env);
      assert.equal(json.code, 0, json.stderr);
      const status = JSON.parse(json.stdout);
      assert.equal(status.status, 'stopped');
      assert.deepEqual(status.runner, { launcher: 'local', pid: killed.runnerPid, host: os.hostname(), alive: false, since: status.runner.since, slurm_jobs: [] });
      const text = await run(['status', killed.studyDir], s.env);
      assert.match(text.stdout, /lifecycle: stopped — 0\/1 completed/);
      assert.match(text.stdout, new RegExp(`pid ${killed.runnerPid} .*is gone.*continue with llem resume ${killed.studyDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    } finally {
      killGroup(workerPid);
      s.cleanup();
    }
  });

  it('resume right after a SIGKILL of the runner waits for the orphaned worker to end its group, then runs', async () => {
    // a worker whose orphan guard takes 15 s to end its group (the resume starts well within that)
    const s = setup(studyYaml({ experiment_timeout_seconds: 600 }));
    const env = { ...s.env, FIXTURE_ORPHAN_GRACE_MS: '15000' };
    let workerPid: number | null = null;
    try {
      const killed = await runnerKilledMidRun(s, env);
      workerPid = killed.workerPid;
      const resumed = await run(['resume', killed.studyDir, '--no-tui'], { ...env, FIXTURE_SLEEP_MS: '0' });
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr, new RegExp(`its worker \\(pid ${killed.workerPid}\\) of a runner that was killed is still ending; waiting up to \\d+ s`));
      const r = readManifest(killed.studyDir).runs[0]!;
      assert.equal(r.status, 'completed');
      assert.deepEqual(r.attempts.map((a: { status: string }) => a.status), ['interrupted', 'completed']);
      assert.ok(Date.parse(r.attempts[1]!.started_at) >= Date.parse(r.attempts[0]!.ended_at!), 'the new attempt started after the old one ended');
    } finally {
      killGroup(workerPid);
      s.cleanup();
    }
  });

  it('a study another runner holds is refused as bad input (exit 2), naming the holder', async () => {
    const s = setup(studyYaml({ experiment_timeout_seconds: 600 }));
    const first = llem(['run', s.yamlPath, '--out', s.out, '--no-tui', '--yes'], { ...s.env, FIXTURE_SLEEP_MS: '120000' });
    try {
      await waitFor(() => existsSync(s.out) && readdirSync(s.out).length > 0 && journal(s.studyDir()).some((e) => e.type === 'study_started'), 120_000, 'the runner to start');
      const second = await run(['resume', s.studyDir(), '--no-tui'], s.env);
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, new RegExp(`study is being run by pid ${first.proc.pid} since`));
      process.kill(first.proc.pid!, 'SIGINT');
      assert.equal((await first.done).code, 130);
    } finally {
      killGroup(first.proc.pid);
      s.cleanup();
    }
  });
});
