/**
 * What a scenario is: one file under bench/scenarios/ that starts one server
 * in fresh processes. The harness discovers the files, so adding a target to
 * the benchmark is adding one file.
 *
 * @example
 *   // bench/scenarios/flexilib-inline.ts
 *   import { defineScenario } from '../lib/scenario.ts';
 *   import { startFlexilib } from '../lib/servers/flexilib.ts';
 *   export default defineScenario({
 *     id: 'flexilib-inline',
 *     title: 'flexilib, native route inline',
 *     role: 'subject',
 *     conformance: 'identical',
 *     start: (ctx) => startFlexilib(ctx, { ini: '/ = LIB' }),
 *   });
 */

import type { WorkloadId } from './workload.ts';

/**
 * baseline: what ratios are taken against (bare node:http doing the same
 * work; one per kind of request and load, MAIN_BASELINE for GET at the plan's
 * connections); ceiling: a native server for scale.
 */
export type Role = 'baseline' | 'subject' | 'ceiling';

/** The baseline of every scenario that names no other. */
export const MAIN_BASELINE = 'baseline-node-http';

/**
 * How the scenario's answer to the benchmark request must compare with the
 * baseline's, checked before every measurement:
 * identical — the same bytes, the Date header's value aside;
 * same-content — same status, body, content-type and X-custom-foo (nginx
 *   frames its answers its own way).
 */
export type Conformance = 'identical' | 'same-content';

export interface ScenarioContext {
  /** Repository root (absolute). */
  root: string;
  /** A fresh temporary folder for this start, removed after it stops. */
  tmp: string;
  /** Worker processes every server runs. */
  workers: number;
  /** Extra environment for the server. */
  env: NodeJS.ProcessEnv;
  /** Extra flags for servers that are node processes (e.g. --cpu-prof, which NODE_OPTIONS
   * does not take); node:cluster passes the primary's flags on to its workers. */
  nodeArgs: string[];
  /** A command node servers run under, node and its arguments following (valgrind for
   * --instructions); none by default. */
  launcher?: string[];
  /** How long a server may take to start (default 20 s; longer under a launcher). */
  startTimeoutMs?: number;
}

/** A process of a running server, as reported in the results. */
export interface ServerProcess {
  role: 'primary' | 'worker';
  pid: number;
}

export interface RunningServer {
  port: number;
  /** What was started: command-line flags and config, as recorded in the results. */
  config: string;
  /** The root process and its workers, looked up now. */
  processes(): ServerProcess[];
  stop(): Promise<void>;
}

export interface Scenario {
  /** Equal to the file name without extension. */
  id: string;
  /** One line for tables and the chart. */
  title: string;
  role: Role;
  conformance: Conformance;
  /** The request wrk sends (default 'get'). */
  workload?: WorkloadId;
  /**
   * Subjects and ceilings: the baseline (id) whose answer this one's must
   * match and that its ratios are taken against, round by round (default
   * MAIN_BASELINE); it must send the same workload at the same connections.
   * Baselines name none.
   */
  against?: string;
  /**
   * Keep-alive connections of the throughput and paced runs, when not the
   * plan's. The paced run keeps the plan's offered rate: its pause grows
   * with the connections, and the connections' first pauses are staggered.
   */
  connections?: number;
  /**
   * Also measure throughput with plain wrk (no Lua script, GET only) after
   * the usual run: for the ceiling comparison, where wrk's own speed matters.
   */
  plainWrk?: boolean;
  /** Why this scenario cannot run on this machine (e.g. nginx not installed), or undefined. */
  unavailable?(root: string): string | undefined;
  /** A caveat about what this build lets the scenario measure, printed with the results. */
  note?(root: string): string | undefined;
  /** Start the server in fresh processes; resolves once it accepts requests. */
  start(ctx: ScenarioContext): Promise<RunningServer>;
}

export function defineScenario(s: Scenario): Scenario {
  return s;
}

/** The baseline `s` is compared with: its own id for a baseline. */
export function baselineOf(s: Pick<Scenario, 'id' | 'role' | 'against'>): string {
  return s.role === 'baseline' ? s.id : (s.against ?? MAIN_BASELINE);
}
