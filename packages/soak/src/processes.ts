/** RSS and open fds of the supervisor and every process under it, from /proc. */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessSample {
  pid: number;
  role: 'supervisor' | 'worker' | 'other';
  rssKb: number;
  fds: number;
}

function parentOf(pid: number): number | undefined {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function sample(pid: number, role: ProcessSample['role']): ProcessSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { pid, role, rssKb, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined; // exited meanwhile
  }
}

/** The supervisor and its descendants (workers are node:cluster children running worker-main). */
export function sampleTree(root: number): ProcessSample[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = parentOf(Number(name));
    if (ppid !== undefined) (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(Number(name));
  }
  const out: ProcessSample[] = [];
  const rootSample = sample(root, 'supervisor');
  if (rootSample) out.push(rootSample);
  const queue = [...(children.get(root) ?? [])];
  while (queue.length) {
    const pid = queue.shift()!;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const s = sample(pid, cmd.includes('node') ? 'worker' : 'other');
    if (s) out.push(s);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}
