// `npm run bench`: every bench/*.bench.ts in turn. Figures and ratios, not pass/fail: these
// machines are shared and noisy. `npm run bench -- plan` runs the files whose name contains "plan".
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !filter || f.includes(filter))
  .sort();
for (const f of files) {
  console.log(`\n== ${f} ==`);
  const mod = (await import(new URL(f, import.meta.url).href)) as { default: () => Promise<void> };
  await mod.default();
}
