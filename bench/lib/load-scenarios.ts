/** Discover bench/scenarios/*.ts: every file is one target, its default export a Scenario. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { baselineOf, MAIN_BASELINE, type Role, type Scenario } from './scenario.ts';

export const SCENARIO_DIR = path.resolve(import.meta.dirname, '../scenarios');
const ROLE_ORDER: Record<Role, number> = { baseline: 0, subject: 1, ceiling: 2 };

/** Baselines first (MAIN_BASELINE, a prefix of the others, leads), then the subjects by id, the ceilings last. */
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
  checkBaselines(list);
  return sortScenarios(list);
}

/**
 * MAIN_BASELINE exists, baselines name no other, and every other scenario's
 * baseline is one that sends the same request at the same connections (else
 * its ratio would compare different work).
 */
export function checkBaselines(list: Scenario[]): void {
  const byId = new Map(list.map((s) => [s.id, s]));
  if (byId.get(MAIN_BASELINE)?.role !== 'baseline') throw new Error(`bench/scenarios: ${MAIN_BASELINE} must exist with role "baseline"`);
  for (const s of list) {
    if (s.role === 'baseline') {
      if (s.against) throw new Error(`bench/scenarios/${s.id}: a baseline is compared with nothing, but it names against: "${s.against}"`);
      continue;
    }
    const b = byId.get(baselineOf(s));
    if (b?.role !== 'baseline') throw new Error(`bench/scenarios/${s.id}: against "${baselineOf(s)}" is not a scenario with role "baseline"`);
    if ((b.workload ?? 'get') !== (s.workload ?? 'get') || b.connections !== s.connections) {
      throw new Error(`bench/scenarios/${s.id}: its baseline ${b.id} sends ${b.workload ?? 'get'} at ${b.connections ?? 'the plan\'s'} connections, it ${s.workload ?? 'get'} at ${s.connections ?? 'the plan\'s'}`);
    }
  }
}
