/**
 * The Workers' engine pools of this flexilib worker. Routers are rebuilt on
 * every config change; a pool outlives them while its [worker.NAME] section
 * is unchanged, so warm isolates stay warm across a SIGHUP.
 */
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CfWorkerSpec } from '@flexilib/contract';
import { EnginePool } from './engine-pool.js';

export class CfWorkerRegistry {
  private readonly pools = new Map<string, { key: string; pool: EnginePool }>();
  private readonly dir: string;

  constructor(runDir: string | undefined, private readonly log: Logger) {
    this.dir = path.join(runDir ?? os.tmpdir(), 'cf-workers');
  }

  pool(spec: CfWorkerSpec): EnginePool {
    // Its line aside: an edit elsewhere in proxy.ini that moves the section keeps the Worker warm.
    const key = JSON.stringify({ ...spec, line: 0 });
    const had = this.pools.get(spec.name);
    if (had !== undefined && had.key === key) return had.pool;
    const pool = new EnginePool(spec, this.dir, this.log);
    had?.pool.close(pool);
    this.pools.set(spec.name, { key, pool });
    return pool;
  }

  /** Close the pools of Workers no longer configured. */
  retain(names: ReadonlySet<string>): void {
    for (const [name, { pool }] of this.pools) {
      if (names.has(name)) continue;
      pool.close();
      this.pools.delete(name);
    }
  }

  close(): void {
    this.retain(new Set());
  }
}
