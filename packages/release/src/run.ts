/** Run a command to completion with its output captured; throw a FlexiError naming it on failure. */
import { spawnSync } from 'node:child_process';
import { FlexiError, type ErrorCode } from '@flexilib/contract';

export function run(code: ErrorCode, cmd: string, args: string[], cwd: string): string {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (res.error || res.status !== 0) {
    const why = res.error ? res.error.message : `exit code ${res.status}${res.signal ? ` (${res.signal})` : ''}`;
    const output = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new FlexiError(code, `${cmd} ${args.join(' ')} failed: ${why}${output ? `\n${output}` : ''}`);
  }
  return res.stdout;
}
