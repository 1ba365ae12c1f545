// `llem plan <study.yaml> [--json] [--no-order]`: what a study will run, without spawning anything.
// `llem run --dry-run` prints the same through planText / planJson.
import type { Command } from 'commander';
import { planStudy, type StudyPlan } from '../study/plan.ts';
import { planInputs } from './plan-inputs.ts';
import type { EstimateHistory } from '../study/estimate.ts';
import type { Machine } from '../history/machine.ts';
import { formatIssue } from '../study/errors.ts';
import { localInputIssues } from '../study/local-inputs.ts';
import { describeHalfWidth } from '../study/target.ts';
import { currentMachine, readHistory } from '../history/index.ts';

/** Up to this many configs the plan also checks the local files (dataset, model) they use. */
const LOCAL_INPUT_CHECK_MAX_CONFIGS = 20_000;

/** Above this many runs `order` is left out of --json (it would be megabytes). */
export const JSON_ORDER_MAX_RUNS = 100_000;

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${r}s`;
  return `${r}s`;
}

function formatBytes(b: number | null): string {
  if (b === null) return '?';
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(1)} GiB`;
  return `${(b / 2 ** 20).toFixed(0)} MiB`;
}

/** The run history and this machine, for the estimate (src/history): never required. */
export async function preflightHistory(): Promise<{ history: EstimateHistory; machine: Machine }> {
  const loaded = readHistory();
  return { history: { records: loaded.records, problems: loaded.problems }, machine: await currentMachine() };
}

/** The stable --json form (a script interface: add fields, never rename). */
export function planJson(plan: StudyPlan, opts: { order?: boolean } = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {
    study_name: plan.study_name,
    study_hash: plan.study_hash,
    source_path: plan.source_path,
    expansion: plan.expansion,
    configs: plan.config_count,
    cycles: plan.cycles,
    runs: plan.run_count,
    max_runs: plan.max_run_count,
    target: plan.execution.target ?? null,
    cycle_order: plan.execution.cycle_order,
    cycle_seed: plan.cycle_seed,
    by_backend: plan.by_backend,
    skipped: plan.skipped.map((s) => ({ label: s.label, config: s.config, reasons: s.reasons })),
    warnings: plan.warnings,
    needs_confirmation: plan.needs_confirmation,
    max_runs_without_confirmation: plan.execution.max_runs_without_confirmation,
    estimate: {
      total_seconds: plan.estimate.total_seconds,
      low_seconds: plan.estimate.low_seconds,
      high_seconds: plan.estimate.high_seconds,
      finish_at: plan.estimate.finish_at,
      source: plan.estimate.source,
      runs: plan.estimate.runs,
      notes: plan.estimate.notes,
      per_config: plan.estimate.per_config,
    },
  };
  if (opts.order !== false && plan.run_count <= JSON_ORDER_MAX_RUNS) {
    const order = new Array(plan.run_count);
    for (let k = 0; k < plan.run_count; k++) order[k] = plan.runAt(k);
    out.order = order;
  }
  return out;
}

const MEMORY_ROWS = 20;

/** The human form. */
export function planText(plan: StudyPlan, opts: { order?: boolean; now?: Date } = {}): string {
  const lines: string[] = [];
  const e = plan.estimate;
  lines.push(`Study ${plan.study_name}  (hash ${plan.study_hash})`);
  lines.push(`  from ${plan.source_path}`);
  lines.push(
    `  ${plan.config_count} config${plan.config_count === 1 ? '' : 's'} × ${plan.cycles} cycle${plan.cycles === 1 ? '' : 's'} = ${plan.run_count} run${plan.run_count === 1 ? '' : 's'}` +
      `  (order ${plan.execution.cycle_order}${plan.execution.cycle_order === 'shuffled' ? `, seed ${plan.cycle_seed}` : ''})`,
  );
  const target = plan.execution.target;
  if (target) {
    lines.push(
      `  n_cycles: auto — each config runs ${target.min_cycles}–${target.max_cycles} cycles, until the interval of ${target.metric} is within ${describeHalfWidth(target.ci_half_width)}` +
        `${target.decide ? ` or its rank is decided` : ''}: the plan starts with ${plan.cycles} cycles, at most ${plan.max_run_count} runs`,
    );
    for (const note of target.notes) lines.push(`    ${note}`);
  }
  if (plan.expansion === 'lazy') lines.push('  (counts are upper bounds: the grid is too large to check every config up front)');
  lines.push('');
  lines.push('By backend:');
  for (const b of plan.by_backend) lines.push(`  ${b.backend.padEnd(14)} ${String(b.configs).padStart(7)} config(s)   ${b.skipped} skipped`);

  if (plan.skipped.length) {
    lines.push('');
    lines.push(`Skipped (${plan.skipped.length}, invalid before anything runs):`);
    for (const s of plan.skipped) {
      lines.push(`  ${s.label}`);
      for (const r of s.reasons) lines.push(`    - ${r}`);
    }
  }

  lines.push('');
  const finish = new Date(e.finish_at);
  lines.push(
    `Estimate: ~${formatDuration(e.total_seconds)} (range ${formatDuration(e.low_seconds)} – ${formatDuration(e.high_seconds)}), ` +
      `finishing around ${finish.toLocaleString()} if started now` + (e.source ? `  [from ${e.source === 'mixed' ? 'history and heuristic' : e.source}]` : ''),
  );
  if (target && e.runs) lines.push(`  runs expected: ~${e.runs.expected} (range ${e.runs.low} – ${e.runs.high})`);
  for (const note of e.notes ?? []) lines.push(`  · ${note}`);

  if (e.per_config.length) {
    lines.push('');
    lines.push('Per config (one run: estimate, timeout; GPU memory):');
    const rows = e.per_config.slice(0, MEMORY_ROWS);
    for (let i = 0; i < rows.length; i++) {
      const c = rows[i]!;
      const label = plan.configAt(i).label;
      lines.push(
        `  ${c.config_hash}  ${label.padEnd(40)} ~${formatDuration(c.run_seconds).padEnd(8)} ${c.source === 'history' ? '(history)   ' : c.source ? '(heuristic) ' : ''}` +
          `${target && c.cycles ? `× ${c.cycles.expected} (${c.cycles.low}–${c.cycles.high}) ` : ''}` +
          `timeout ${c.timeout_seconds === undefined ? '?' : formatDuration(c.timeout_seconds)}`.padEnd(17) +
          `mem ${c.memory_fit.padEnd(8)} need ${formatBytes(c.memory_need_bytes)}, free ${formatBytes(c.memory_free_bytes)} — ${c.memory_reason}`,
      );
    }
    if (e.per_config.length > MEMORY_ROWS) lines.push(`  … and ${e.per_config.length - MEMORY_ROWS} more (--json lists all)`);
  }

  if (plan.warnings.length) {
    lines.push('');
    lines.push('Warnings:');
    for (const w of plan.warnings) lines.push(`  ! ${w}`);
  }

  lines.push('');
  const runs = target ? `up to ${plan.max_run_count}` : String(plan.run_count);
  if (plan.needs_confirmation) {
    lines.push(
      `Confirmation: ${runs} runs exceed execution.max_runs_without_confirmation (${plan.execution.max_runs_without_confirmation}); ` +
        '`llem run` will ask before starting, or pass --yes.',
    );
  } else {
    lines.push(`No confirmation needed (${runs} ≤ ${plan.execution.max_runs_without_confirmation} runs).`);
  }
  if (opts.order && plan.run_count <= 200) {
    lines.push('');
    lines.push('Order:');
    for (let k = 0; k < plan.run_count; k++) {
      const r = plan.runAt(k);
      lines.push(`  ${String(r.index).padStart(4, '0')}  ${r.config_hash}  cycle ${r.cycle}`);
    }
  }
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('plan')
    .description('Show what a study will run (configs, skipped with reasons, order, estimate) without running anything.')
    .argument('<study>', 'study YAML file')
    .option('--json', 'print the plan as JSON (a stable interface for scripts)')
    .option('--no-order', 'leave the run order out')
    .action((studyPath: string, opts: { json?: boolean; order: boolean }) => printPlan(studyPath, opts));
}

/** What `llem plan` prints (and `llem run --dry-run`). */
export async function printPlan(studyPath: string, opts: { json?: boolean; order?: boolean }): Promise<void> {
  const plan = await planStudy(studyPath, { ...(await planInputs()), ...(await preflightHistory()) });
  if (plan.expansion === 'full' && plan.config_count <= LOCAL_INPUT_CHECK_MAX_CONFIGS) {
    const configs = Array.from({ length: plan.config_count }, (_, i) => plan.configAt(i).config);
    // warnings, not errors: a study may be planned here for files that exist where it runs
    for (const issue of await localInputIssues(studyPath, configs)) plan.warnings.push(`${formatIssue(issue)} (\`llem run\` refuses this until it is fixed)`);
  }
  const text = opts.json ? JSON.stringify(planJson(plan, { order: opts.order }), null, 2) + '\n' : planText(plan, { order: false });
  await new Promise<void>((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}
