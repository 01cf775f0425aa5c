/** Discover bench/scenarios/*.ts: every file is one target, its default export a Scenario. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Role, Scenario } from './scenario.ts';

export const SCENARIO_DIR = path.resolve(import.meta.dirname, '../scenarios');
const ROLE_ORDER: Record<Role, number> = { baseline: 0, subject: 1, ceiling: 2 };

/** Baseline first, then the subjects by id, the ceilings last. */
export function sortScenarios(list: Scenario[]): Scenario[] {
  return [...list].sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role] || a.id.localeCompare(b.id));
}

export async function loadScenarios(dir = SCENARIO_DIR): Promise<Scenario[]> {
  const files = readdirSync(dir).filter((f) => /\.(ts|mjs)$/.test(f) && !f.endsWith('.d.ts'));
  const list: Scenario[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as { default?: Scenario };
    const s = mod.default;
    const id = f.replace(/\.(ts|mjs)$/, '');
    if (!s || typeof s.start !== 'function') throw new Error(`bench/scenarios/${f}: the default export is not a scenario (use defineScenario)`);
    if (s.id !== id) throw new Error(`bench/scenarios/${f}: id "${s.id}" must equal the file name "${id}"`);
    list.push(s);
  }
  const baselines = list.filter((s) => s.role === 'baseline');
  if (baselines.length !== 1) throw new Error(`bench/scenarios: exactly one scenario must have role "baseline" (found ${baselines.length})`);
  return sortScenarios(list);
}
