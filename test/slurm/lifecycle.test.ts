// The run lifecycle with the slurm launcher, as a user types the commands, against the real
// single-node Slurm: a task runs under the timeout `llem plan` shows (model-aware) and records it;
// a timed-out run is retried with a longer timeout through `resume --launcher slurm`; a submission
// sbatch refuses leaves no study dir; a local resume of a former Slurm study takes its runs over,
// so a later `status` does not mark what it left pending as interrupted.
// (The local launcher's side of the same lifecycle: test/runner/lifecycle.test.ts.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { llemBin, waitFor } from '../runner/helpers.ts';
import { endSlurmStudy, llem, slurmDown, slurmFixtureWorker, slurmUp, waitForManifest } from './cluster-helpers.ts';

/** manifest.json and slurm.json as written (small studies: one file each). */
const manifestOf = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { runs: Array<Record<string, any>>; counts: Record<string, number> };

function setup(yaml: string) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'llem-slurm-life-'));
  const yamlPath = path.join(root, 'study.yaml');
  writeFileSync(yamlPath, yaml);
  const out = path.join(root, 'out');
  const env: NodeJS.ProcessEnv = { ...process.env, LLEM_WORKER_ENTRY: slurmFixtureWorker, LLEM_SLURM_POLL_MS: '1000' };
  delete env.FIXTURE_SLEEP_MS;
  delete env.FIXTURE_SLEEP_ATTEMPT1_MS;
  return { root, yamlPath, out, env, studyDir: () => path.join(out, readdirSync(out)[0]!) };
}

const settled = (m: { counts: { pending: number; running: number } }) => m.counts.pending + m.counts.running === 0;

describe('the run lifecycle with --launcher slurm', { concurrency: true, timeout: 900_000 }, () => {
  before(() => slurmUp());
  after(() => slurmDown());

  it('a task runs under the model-aware timeout plan shows, and a timed-out run is retried with --experiment-timeout', async () => {
    const s = setup('');
    let dir = '';
    try {
      const ckpt = path.join(s.root, 'ckpt');
      mkdirSync(ckpt);
      const fd = openSync(path.join(ckpt, 'model.safetensors'), 'w');
      ftruncateSync(fd, 40e9);
      closeSync(fd);
      writeFileSync(s.yamlPath, `name: slurm-timeouts\nbackend: vllm\nmodel: ${ckpt}\ndataset: builtin\nn: 1\nmax_new_tokens: 1\nsweep:\n  batch_size: [1, 2]\nexecution:\n  n_cycles: 1\n`);
      const plan = await llem(['plan', s.yamlPath, '--json'], s.env, 120_000);
      assert.equal(plan.code, 0, plan.stderr);
      const planned = new Map<string, number>(JSON.parse(plan.stdout).estimate.per_config.map((c: { config_hash: string; timeout_seconds: number }) => [c.config_hash, c.timeout_seconds]));
      assert.ok([...planned.values()].every((t) => t > 300), `40 GB of weights: beyond the floor (${[...planned.values()]})`);
      const ran = await llem(['run', s.yamlPath, '--launcher', 'slurm', '--out', s.out, '--no-tui', '--time', '10'], s.env);
      assert.equal(ran.code, 0, ran.stderr);
      dir = s.studyDir();
      for (const r of manifestOf(dir).runs) assert.equal(r.attempts[0].timeouts.timeout_seconds, planned.get(r.config_hash), `run ${r.index}`);

      // the same study with a 3 s timeout: every run sleeps 6 s, times out, then a retry with 60 s completes
      writeFileSync(s.yamlPath, `${readFileSync(s.yamlPath, 'utf8').replace('slurm-timeouts', 'slurm-retry')}  experiment_timeout_seconds: 3\n`);
      const env = { ...s.env, FIXTURE_SLEEP_MS: '6000' };
      const out2 = path.join(s.root, 'out2');
      const failed = await llem(['run', s.yamlPath, '--launcher', 'slurm', '--out', out2, '--no-tui', '--time', '10'], env);
      assert.equal(failed.code, 1, failed.stderr);
      dir = path.join(out2, readdirSync(out2)[0]!);
      assert.deepEqual(manifestOf(dir).runs.map((r) => r.error_type), ['TimeoutError', 'TimeoutError'], JSON.stringify(manifestOf(dir).runs.map((r) => (r.attempts as Array<{ message: string | null }>).map((a) => a.message)), null, 1));
      const retried = await llem(['resume', dir, '--launcher', 'slurm', '--retry-failed', '--experiment-timeout', '60', '--no-tui', '--time', '10'], env);
      assert.equal(retried.code, 0, retried.stderr);
      const m = await waitForManifest(dir, (x) => settled(x), 300_000, 'the retried runs');
      for (const r of m.runs) {
        assert.equal(r.status, 'completed');
        assert.deepEqual(r.attempts.map((a) => [a.status, a.timeouts?.timeout_seconds]), [['failed', 3], ['completed', 60]]);
      }
    } finally {
      await endSlurmStudy(dir, () => rmSync(s.root, { recursive: true, force: true }));
    }
  });

  it('a submission sbatch refuses leaves no study dir behind', async () => {
    const s = setup('name: slurm-refused\nbackend: llamacpp\nmodel: builtin:tiny-random\ndataset: builtin\nn: 1\nmax_new_tokens: 1\n');
    try {
      const r = await llem(['run', s.yamlPath, '--launcher', 'slurm', '--partition', 'no-such-partition', '--detach', '--out', s.out], s.env, 120_000);
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, /sbatch/);
      assert.deepEqual(readdirSync(s.out), [], 'no study dir left in --out');
    } finally {
      rmSync(s.root, { recursive: true, force: true });
    }
  });

  it('a local resume of a former Slurm study takes its runs over: a later status leaves what it left pending alone', async () => {
    const s = setup(
      'name: slurm-to-local\nbackend: llamacpp\nmodel: builtin:tiny-random\ndataset: builtin\nn: 1\nmax_new_tokens: 1\nsweep:\n  batch_size: [1, 2, 3]\nexecution:\n  n_cycles: 1\n  cycle_order: sequential\n  config_gap_seconds: 0\n  experiment_timeout_seconds: 600\n',
    );
    let dir = '';
    try {
      // sent to Slurm, every task running (so Slurm keeps a CANCELLED record of each), then cancelled
      const sub = await llem(['run', s.yamlPath, '--launcher', 'slurm', '--detach', '--out', s.out, '--max-concurrent', '3', '--time', '10'], { ...s.env, FIXTURE_SLEEP_MS: '60000' });
      assert.equal(sub.code, 0, sub.stderr);
      dir = s.studyDir();
      await waitForManifest(dir, (m) => m.runs.every((r) => r.status === 'running'), 300_000, 'every task to run');
      const cancel = await llem(['cancel', dir], s.env);
      assert.equal(cancel.code, 0, cancel.stderr);

      // resumed locally, and stopped (Ctrl+C) during its second run: one run left pending
      const local = spawn(process.execPath, [llemBin, 'resume', dir, '--no-tui'], { env: { ...s.env, FIXTURE_SLEEP_MS: '3000' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let localErr = '';
      local.stderr!.on('data', (d) => (localErr += d));
      const localDone = new Promise<number | null>((resolve) => local.on('close', resolve));
      await waitFor(() => { const m = manifestOf(dir); return m.counts.completed === 1 && m.counts.running === 1; }, 300_000, 'the local resume to run its second run');
      process.kill(local.pid!, 'SIGINT');
      assert.equal(await localDone, 130, localErr);
      const afterLocal = manifestOf(dir);
      assert.deepEqual(afterLocal.runs.map((r) => r.status), ['completed', 'interrupted', 'pending'], JSON.stringify(afterLocal.runs.map((r) => (r.attempts as Array<{ status: string; error_type: string | null; message: string | null }>).map((a) => [a.status, a.error_type, a.message?.slice(0, 300)])), null, 1));

      // a later status of this (now local) study asks Slurm nothing and changes nothing
      const before = readFileSync(path.join(dir, 'manifest.json'), 'utf8');
      const status = await llem(['status', dir, '--json'], s.env, 120_000);
      assert.equal(status.code, 0, status.stderr);
      const json = JSON.parse(status.stdout);
      assert.deepEqual(json.runs.map((r: { status: string }) => r.status), ['completed', 'interrupted', 'pending']);
      assert.equal(readFileSync(path.join(dir, 'manifest.json'), 'utf8'), before);
      assert.equal(json.runner.launcher, 'local');
      assert.match(localErr, /takes the study over from Slurm job/);
    } finally {
      await endSlurmStudy(dir, () => rmSync(s.root, { recursive: true, force: true }));
    }
  });
});
