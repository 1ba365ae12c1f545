// RAPL meter over a fake powercap tree (the real one is root-only on most machines).
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { discoverRaplZones, openRaplMeter, raplDeltaUj } from '../../src/measure/rapl.ts';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function tree(zones: Record<string, { name: string; energyUj: number; maxUj: number }>): string {
  const root = mkdtempSync(join(tmpdir(), 'llem-rapl-'));
  roots.push(root);
  for (const [id, z] of Object.entries(zones)) {
    mkdirSync(join(root, id), { recursive: true });
    writeFileSync(join(root, id, 'name'), `${z.name}\n`);
    writeFileSync(join(root, id, 'energy_uj'), `${z.energyUj}\n`);
    writeFileSync(join(root, id, 'max_energy_range_uj'), `${z.maxUj}\n`);
  }
  return root;
}
const setEnergy = (root: string, id: string, uj: number) => writeFileSync(join(root, id, 'energy_uj'), `${uj}\n`);

test('package and DRAM energy over a window, reported separately', async () => {
  const root = tree({
    'intel-rapl:0': { name: 'package-0', energyUj: 1_000_000, maxUj: 262_143_328_850 },
    'intel-rapl:0:0': { name: 'core', energyUj: 500, maxUj: 262_143_328_850 },
    'intel-rapl:0:1': { name: 'dram', energyUj: 2_000_000, maxUj: 65_712_999_613 },
    'intel-rapl:1': { name: 'package-1', energyUj: 10, maxUj: 262_143_328_850 },
  });
  const meter = await openRaplMeter({ root });
  assert.equal(meter.unavailableReason, null);
  assert.deepEqual(meter.zones.map((z) => z.kind), ['package', 'other', 'dram', 'package']);
  await meter.start();
  setEnergy(root, 'intel-rapl:0', 31_000_000);
  setEnergy(root, 'intel-rapl:0:1', 7_000_000);
  setEnergy(root, 'intel-rapl:1', 20_000_010);
  const w = await meter.stop();
  meter.close();
  assert.equal(w.cpu_energy_j, 50);
  assert.equal(w.dram_energy_j, 5);
  assert.equal(w.wraps, 0);
  assert.equal(w.unavailable_reason, null);
});

test('wraparound through max_energy_range_uj is resolved, at the edge and between polls', async () => {
  const max = 1_000_000;
  const root = tree({ 'intel-rapl:0': { name: 'package-0', energyUj: 900_000, maxUj: max } });
  const meter = await openRaplMeter({ root, pollMs: 20 });
  await meter.start();
  setEnergy(root, 'intel-rapl:0', 100_000); // +200 000 µJ through the wrap
  await new Promise((r) => setTimeout(r, 200)); // polled
  setEnergy(root, 'intel-rapl:0', 950_000); // +850 000
  await new Promise((r) => setTimeout(r, 200));
  setEnergy(root, 'intel-rapl:0', 50_000); // +100 000 through a second wrap
  const w = await meter.stop();
  meter.close();
  assert.equal(w.wraps, 2);
  assert.ok(Math.abs(w.cpu_energy_j! - 1.15) < 1e-9, `${w.cpu_energy_j}`);
  assert.deepEqual(raplDeltaUj(10, 5, 100), { deltaUj: 95, wrapped: true });
  assert.deepEqual(raplDeltaUj(5, 10, 100), { deltaUj: 5, wrapped: false });
});

test('no powercap, no zones, unreadable counters: null with the reason, never 0', async () => {
  const none = await openRaplMeter({ root: join(tmpdir(), 'llem-no-such-powercap') });
  assert.match(none.unavailableReason ?? '', /no powercap interface/);
  await none.start();
  const w = await none.stop();
  assert.equal(w.cpu_energy_j, null);
  assert.equal(w.unavailable_reason, none.unavailableReason);

  const empty = tree({});
  assert.match((await discoverRaplZones(empty)).reason ?? '', /no RAPL zones/);

  const locked = tree({ 'intel-rapl:0': { name: 'package-0', energyUj: 1, maxUj: 10 } });
  chmodSync(join(locked, 'intel-rapl:0', 'energy_uj'), 0o000);
  const d = await discoverRaplZones(locked);
  if (process.getuid?.() === 0) {
    // root reads through mode 000: the zone is usable
    assert.equal(d.reason, null);
  } else {
    assert.match(d.reason ?? '', /EACCES.*root-only/);
  }
});
