/**
 * `flexilib invoke` run to completion: the plugin called once, without a
 * server. The one helper behind the tests' invoke() (test-support passes this
 * checkout's bin/flexilib).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export interface Invoked {
  /** The exit status. */
  code: number;
  /** Byte for byte (invoke prints the plugin's answer). */
  stdout: Buffer;
  stderr: string;
}

const execFileAsync = promisify(execFile);

/**
 * Run `node bin invoke ...args` (asynchronously, so several can run at once;
 * at most `timeoutMs`, default 20 s). Rejects only when it could not run or
 * did not exit.
 */
export async function invokeFlexilib(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Invoked> {
  try {
    const r = await execFileAsync(process.execPath, [bin, 'invoke', ...args], { encoding: 'buffer', env: { ...process.env, ...opts.env }, maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 20_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
  } catch (err) {
    const e = err as { code?: unknown; stdout: Buffer; stderr: Buffer };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr.toString() };
  }
}
