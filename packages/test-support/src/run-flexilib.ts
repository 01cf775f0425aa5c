/** The flexilib command run to completion: usage errors, config errors, --help, `flexilib invoke`. */
import { spawnSync } from 'node:child_process';
import { invokeFlexilib, type Invoked } from '@flexilib/plugin-abi/conformance';
import { flexilibBin, repoRoot } from './paths.js';

export interface Completed {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `flexilib ...args` (cwd: the repository root; `env` over the test's own
 * environment) and wait for it to exit, at most `timeoutMs` (default 15 s).
 *
 * @example
 * const r = runFlexilib(['--port', '99999']);
 * assert.equal(r.status, 2);
 */
export function runFlexilib(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Completed {
  const res = spawnSync(process.execPath, [flexilibBin, ...args], { cwd: opts.cwd ?? repoRoot, env: { ...process.env, ...opts.env }, encoding: 'utf8', timeout: opts.timeoutMs ?? 15_000 });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

export type { Invoked } from '@flexilib/plugin-abi/conformance';

/**
 * `flexilib invoke ...args` of this checkout, run to completion (see
 * invokeFlexilib in @flexilib/plugin-abi/conformance).
 *
 * @example
 * const r = await invoke([lib, '-H', 'x-status: 404']);
 * assert.equal(r.code, 0);
 * assert.match(r.stdout.toString(), /^HTTP\/1.1 404/);
 */
export function invoke(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Invoked> {
  return invokeFlexilib(flexilibBin, args, opts);
}
