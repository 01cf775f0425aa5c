/**
 * pnpm soak [--seconds N] [--faults a,b,...] [--concurrency N] [--workers N] [--json FILE]
 *
 * Runs the fault suite (soak.ts) and prints its report; exits 1 when a goal is not met.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FAULT_KINDS } from './faults.js';
import { formatReport, runSoak } from './soak.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    faults: { type: 'string', default: FAULT_KINDS.join(',') },
    concurrency: { type: 'string', default: '4' },
    workers: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
});
const num = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} ${v}: expected a positive integer`);
    process.exit(2);
  }
  return n;
};
const report = await runSoak({
  seconds: num('seconds', values.seconds!),
  faults: values.faults!.split(',').filter(Boolean),
  concurrency: num('concurrency', values.concurrency!),
  workers: num('workers', values.workers!),
  log: (l) => console.error(`[soak] ${l}`),
});
console.log(formatReport(report));
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
process.exit(report.goals.every((g) => g.met) ? 0 : 1);
