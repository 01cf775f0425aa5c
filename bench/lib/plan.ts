/**
 * How long and how hard each target is driven, and in which order.
 *
 * Every target runs in every round, each time in fresh processes, in the order
 * of the round: forward in odd rounds, backward in even ones (A B C, C B A,
 * A B C ...), so that slow drift of the machine (another job starting, thermal
 * limits) lands on every target alike rather than on whichever runs last. The
 * figures reported are medians over the rounds.
 */
import os from 'node:os';

export interface LoadShape {
  /** Open keep-alive connections. */
  connections: number;
  /** wrk threads. */
  threads: number;
  seconds: number;
  /** Pause per connection between a response and its next request; 0 = closed loop at full speed. */
  delayMs: number;
  /** Stagger the connections' first pauses (paced runs with many connections; see wrk-report.lua). */
  stagger?: boolean;
}

export interface Plan {
  mode: 'full' | 'quick' | 'custom';
  rounds: number;
  workers: number;
  /** A short load before measuring, so V8 has compiled the hot path (results discarded). */
  warmupSeconds: number;
  /** Requests/s and saturated latency. */
  throughput: LoadShape;
  /** p50/p99 at a fixed moderate offered rate. */
  latency: LoadShape;
  /** CPUs wrk is pinned to with taskset, or undefined for none (see performance.template.md). */
  wrkCpus?: string;
}

/** 2 wrk threads x 16 connections each: the 32 keep-alive connections. */
const THROUGHPUT: Omit<LoadShape, 'seconds'> = { connections: 32, threads: 2, delayMs: 0 };
/**
 * 32 connections, each pausing 4 ms after every response: an offered rate of
 * at most 32 * 1000 / 4 = 8,000 requests/s, about a tenth of what the baseline
 * sustains on two cores — moderate, and the same for every target.
 */
const LATENCY: Omit<LoadShape, 'seconds'> = { connections: 32, threads: 2, delayMs: 4 };

const workers = Math.max(1, Math.min(os.availableParallelism(), 64));

/**
 * pnpm bench: about thirteen minutes with seventeen targets. Two seconds of warm-up:
 * V8 optimises on background threads, which on a busy machine finish late.
 */
export const FULL: Plan = {
  mode: 'full',
  rounds: 3,
  workers,
  warmupSeconds: 2,
  throughput: { ...THROUGHPUT, seconds: 6 },
  latency: { ...LATENCY, seconds: 3 },
};

/** pnpm bench --quick: one round, about two minutes with seventeen targets. */
export const QUICK: Plan = {
  mode: 'quick',
  rounds: 1,
  workers,
  warmupSeconds: 1,
  throughput: { ...THROUGHPUT, seconds: 2 },
  latency: { ...LATENCY, seconds: 1 },
};

/**
 * A scenario's throughput and paced shapes at `connections` (default: the
 * plan's). The paced run offers the plan's rate whatever the connections:
 * 1,000 connections pause 4 × 1000 / 32 = 125 ms each, and their first
 * pauses are staggered, or all would send at the same instant and go on
 * doing so every pause (a herd, not a load).
 */
export function shapesFor(plan: Plan, connections?: number): { throughput: LoadShape; latency: LoadShape } {
  if (connections === undefined || connections === plan.throughput.connections) return { throughput: plan.throughput, latency: plan.latency };
  const delayMs = Math.round((plan.latency.delayMs * connections) / plan.latency.connections);
  return {
    throughput: { ...plan.throughput, connections },
    latency: { ...plan.latency, connections, delayMs, stagger: true },
  };
}

/** The order of targets in each round (indices into `count` targets). */
export function roundOrder(count: number, round: number): number[] {
  const forward = Array.from({ length: count }, (_, i) => i);
  return round % 2 === 1 ? forward.reverse() : forward;
}

/** Rough seconds a plan takes for `targets` targets, `plain` of them also run with plain wrk (start-up and checks included). */
export function estimateSeconds(plan: Plan, targets: number, plain = 0): number {
  const perRun = plan.warmupSeconds + plan.throughput.seconds + plan.latency.seconds + 2.5;
  // Plus the check of every target before the rounds (a start and a stop each).
  return Math.round(plan.rounds * (targets * perRun + plain * plan.throughput.seconds) + (plan.rounds > 1 ? targets * 1.5 : 0));
}
