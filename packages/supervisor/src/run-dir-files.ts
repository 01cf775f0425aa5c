/** The workers' files in the supervisor's run folder (metrics, upstream counters), by name pattern. */
import { readdirSync } from 'node:fs';

/** Every name in the run folder; none when it is absent or unreadable. */
export function runDirNames(runDir: string | undefined): string[] {
  if (!runDir) return [];
  try {
    return readdirSync(runDir);
  } catch {
    return [];
  }
}

/** The files matching `re`, whose first group is the worker id. */
export function workerFiles(runDir: string | undefined, re: RegExp): Array<{ name: string; workerId: number }> {
  const out: Array<{ name: string; workerId: number }> = [];
  for (const name of runDirNames(runDir)) {
    const m = re.exec(name);
    if (m) out.push({ name, workerId: Number(m[1]) });
  }
  return out;
}
