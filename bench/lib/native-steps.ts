/**
 * The native route's steps timed one by one (bench/micro/native-path.ts), in
 * a process of their own, for the "where the time goes" part of the doc.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export interface NativeSteps {
  calls: number;
  repeats: number;
  /** CPU time per call of each step, least over the repeats. */
  steps: Array<{ step: string; ns: number }>;
}

/** `calls` overrides the number of calls per repeat (the test uses few). */
export function measureNativeSteps(root: string, quick: boolean, calls?: number): NativeSteps {
  const args = ['--json', ...(quick ? ['--quick'] : []), ...(calls ? ['--calls', String(calls)] : [])];
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench/micro/native-path.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as NativeSteps;
}
