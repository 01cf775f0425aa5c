/** The child processes of a process, read from /proc (Linux): pid, state and command name. */
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  /** One letter, as in ps: R, S, D, Z (zombie: exited, not reaped by its parent) ... */
  state: string;
  comm: string;
}

/** Every live or zombie child of `parent` now. Throws when /proc cannot be read (not Linux). */
export function childProcesses(parent: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(')');
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === parent) out.push({ pid: Number(name), state, comm: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return out;
}
