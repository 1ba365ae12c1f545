// `llem repair-manifest`: rebuild manifest.json from plan.json, the journal and the run dirs.
// The journal's last run_status per run wins; a run dir holding a result.json the journal never
// recorded (the runner died between ack and checkpoint) is adopted as the runner would have: judged
// by the validity gate under the plan's policy, it makes its run completed, or invalid (back to
// pending when a re-measurement is due).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { JOURNAL_FILE, MANIFEST_FILE, RESULT_FILE, RUNS_DIR, STUDY_YAML_FILE } from '../study-dir/files.ts';
import { checkResult, readPlan } from '../study-dir/read.ts';
import type { RunRecord, RunSnapshot } from '../study-dir/schema.ts';
import { validityPolicyOf } from '../measure/validity.ts';
import { runnerEventSchema } from './events.ts';
import { acquireStudyLock } from './lock.ts';
import { ManifestStore } from './manifest.ts';
import { initialManifest, sha256File } from './study-dir.ts';
import { adoptResult, requeueInvalid, roundsOpen } from './transitions.ts';

export interface RepairReport {
  manifestPath: string;
  runs: number;
  fromJournal: number;
  fromRunDirs: number;
  badJournalLines: number;
}

export async function repairManifest(studyDir: string): Promise<RepairReport> {
  const dir = path.resolve(studyDir);
  const lock = await acquireStudyLock(dir, { onCompromised: () => {} });
  try {
    const plan = readPlan(dir);
    const manifest = initialManifest(plan, sha256File(path.join(dir, STUDY_YAML_FILE)));
    manifest.created_at = plan.created_at ?? manifest.created_at;
    const runs: RunRecord[] = manifest.runs;
    const byIndex = new Map(runs.map((r) => [r.index, r]));
    let badJournalLines = 0;
    let fromJournal = 0;
    const journalPath = path.join(dir, JOURNAL_FILE);
    // journal lines are checked against the event schema below, run records included
    const replace = (snap: RunSnapshot) => {
      const old = byIndex.get(snap.index);
      if (!old || old.config_hash !== snap.config_hash) return false;
      Object.assign(old, snap);
      return true;
    };
    if (existsSync(journalPath)) {
      const touched = new Set<number>();
      for (const line of readFileSync(journalPath, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        let raw: unknown;
        try {
          raw = JSON.parse(line);
        } catch {
          badJournalLines++;
          continue;
        }
        const parsed = runnerEventSchema.safeParse(raw);
        if (!parsed.success) {
          badJournalLines++;
          continue;
        }
        const e = parsed.data;
        if (e.type === 'run_status' && replace(e.run)) touched.add(e.run.index);
        if (e.type === 'study_started') for (const r of e.snapshot.runs) if (replace(r)) touched.add(r.index);
        if (e.type === 'study_started') manifest.started_at = e.at;
        if (e.type === 'stopping' && e.round !== null && manifest.rounds) {
          // n_cycles: auto: the stops each round decided (the first stop of a config is the recorded one)
          const stops = manifest.rounds.stops;
          for (const c of e.configs) {
            if (c.status !== 'stopped' || c.reason === null || stops.some((x) => x.config_hash === c.config_hash)) continue;
            const { status: _status, ...progress } = c;
            stops.push({ ...progress, reason: c.reason, round: e.round, at: e.at });
          }
          manifest.rounds.decided = Math.max(manifest.rounds.decided, e.round);
        }
      }
      fromJournal = touched.size;
    }
    let fromRunDirs = 0;
    const store = new ManifestStore(dir, manifest);
    const policy = validityPolicyOf(plan.execution);
    const runsDir = path.join(dir, RUNS_DIR);
    // attempt order (a dir without -aN is attempt 1), so a later attempt's result is adopted last
    const dirs = (existsSync(runsDir) ? readdirSync(runsDir) : [])
      .map((name) => ({ name, m: /^(\d{4,})-([0-9a-f]+)-c(\d+)(?:-a(\d+))?$/.exec(name) }))
      .filter((d): d is { name: string; m: RegExpExecArray } => d.m !== null)
      .sort((a, b) => Number(a.m[1]) - Number(b.m[1]) || Number(a.m[4] ?? 1) - Number(b.m[4] ?? 1));
    for (const { name, m } of dirs) {
      const rec = byIndex.get(Number(m[1]));
      if (!rec || !rec.config_hash.startsWith(m[2]!) || rec.cycle !== Number(m[3]) || rec.status === 'completed') continue;
      const attemptNo = m[4] ? Number(m[4]) : 1;
      // an attempt the journal recorded as judged (valid or invalid) keeps that record
      const known = rec.attempts.find((a) => a.attempt === attemptNo);
      if (known && (known.status === 'completed' || known.status === 'invalid')) continue;
      const runDir = path.join(runsDir, name);
      const checked = checkResult(path.join(runDir, RESULT_FILE));
      if (!checked.ok) continue;
      adoptResult(store, dir, rec.index, { attempt: attemptNo, runDir, result: checked.result }, policy);
      requeueInvalid(store, rec.index, policy);
      fromRunDirs++;
    }
    const allDone = runs.every((r) => r.status === 'completed');
    const anyFailed = runs.some((r) => r.status === 'failed' || r.status === 'invalid');
    const open = roundsOpen(runs, manifest.rounds);
    manifest.status = allDone && !open ? 'completed' : anyFailed && !open && runs.every((r) => r.status !== 'pending' && r.status !== 'running') ? 'failed' : 'interrupted';
    store.commit();
    store.close();
    return { manifestPath: path.join(dir, MANIFEST_FILE), runs: runs.length, fromJournal, fromRunDirs, badJournalLines };
  } finally {
    await lock.release();
  }
}
