/** The plan the harness tests run real servers with: one round, one second per run, no warm-up. */
import type { Plan } from '../lib/plan.ts';

export const TINY: Plan = {
  mode: 'custom',
  rounds: 1,
  workers: 2,
  warmupSeconds: 0,
  throughput: { connections: 32, threads: 2, seconds: 1, delayMs: 0 },
  latency: { connections: 32, threads: 2, seconds: 1, delayMs: 4 },
};
