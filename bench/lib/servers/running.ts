/**
 * A RunningServer over a spawned root process that forks its workers (a
 * node:cluster primary, the flexilib supervisor, an nginx master).
 */
import { childPids, stopTree, type Spawned } from '../proc.ts';
import type { RunningServer, ServerProcess } from '../scenario.ts';

export function runningServer(p: Spawned, port: number, config: string, stopSignal: NodeJS.Signals = 'SIGTERM'): RunningServer {
  // Every pid ever seen under the root, so that stop() can make sure all are gone.
  const seen = new Set<number>();
  return {
    port,
    config,
    processes(): ServerProcess[] {
      const workers = p.hasExited() ? [] : childPids(p.pid);
      for (const w of workers) seen.add(w);
      return [{ role: 'primary', pid: p.pid }, ...workers.map((pid) => ({ role: 'worker' as const, pid }))];
    },
    async stop(): Promise<void> {
      if (!p.hasExited()) for (const w of childPids(p.pid)) seen.add(w);
      await stopTree(p, [...seen], stopSignal);
    },
  };
}
