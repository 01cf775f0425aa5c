/** The flexilib command run to completion: usage errors, config errors, --help, `flexilib invoke`. */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
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

export interface Invoked {
  /** The exit status. */
  code: number;
  /** Byte for byte (invoke prints the plugin's answer). */
  stdout: Buffer;
  stderr: string;
}

const execFileAsync = promisify(execFile);

/**
 * `flexilib invoke ...args`: the plugin called once without a server, run to
 * completion (asynchronously, so several can run at once; at most `timeoutMs`,
 * default 20 s). Rejects only when it could not run or did not exit.
 *
 * @example
 * const r = await invoke([lib, '-H', 'x-status: 404']);
 * assert.equal(r.code, 0);
 * assert.match(r.stdout.toString(), /^HTTP\/1.1 404/);
 */
export async function invoke(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Invoked> {
  try {
    const r = await execFileAsync(process.execPath, [flexilibBin, 'invoke', ...args], { encoding: 'buffer', env: { ...process.env, ...opts.env }, maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 20_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
  } catch (err) {
    const e = err as { code?: unknown; stdout: Buffer; stderr: Buffer };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr.toString() };
  }
}
