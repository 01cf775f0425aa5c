/**
 * A worker process's WASM state: compiled modules and instance pools, kept
 * across router rebuilds (a config change or a service registered elsewhere
 * must not cold-start every module), dropped when no route uses them.
 */
import type { Logger } from 'pino';
import { InstancePool } from './instance-pool.js';
import type { WasmLimits } from '@flexilib/contract';
import { ModuleCache } from './module-cache.js';
import { SpareThreads } from './thread-handle.js';

export interface WasmRuntimeOptions {
  arenaBytes: number;
  maxBodyBytes: number;
  maxHeaderBytes: number;
  log: Logger;
}

/** Room in the request image beyond the body and header bytes: structs, a header array of node's maximum count. */
const REQUEST_OVERHEAD = 64 * 1024;

export class WasmRuntime {
  private readonly pools = new Map<string, InstancePool & { file: string }>();
  private readonly cache = new ModuleCache();
  /**
   * A spare thread only while some route whose calls run on threads has no
   * instance (the others' next start is a pool growing, or on the event loop).
   */
  private readonly threads = new SpareThreads(() => {
    for (const pool of this.pools.values()) if (pool.wantsThread) return true;
    return false;
  });

  constructor(private readonly opts: WasmRuntimeOptions) {}

  /** The pool for `file` with these limits (one per distinct pair), created on first use. */
  pool(file: string, limits: WasmLimits, label: string, maxBodyBytes = this.opts.maxBodyBytes): InstancePool {
    const key = poolKey(file, limits, label, maxBodyBytes);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = Object.assign(
        new InstancePool({
          limits,
          label,
          load: () => this.cache.get(file, limits.memoryBytes, label, limits.run),
          arenaBytes: this.opts.arenaBytes,
          maxRequestBytes: maxBodyBytes + this.opts.maxHeaderBytes + REQUEST_OVERHEAD,
          log: this.opts.log,
          threads: this.threads,
        }),
        { file },
      );
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** The module file changed: recompile at the next cold start, replace running instances. True if any route uses it. */
  reload(file: string): boolean {
    this.cache.invalidate(file);
    let used = false;
    for (const pool of this.pools.values()) {
      if (pool.file !== file) continue;
      pool.reload();
      used = true;
    }
    return used;
  }

  /** Close the pools no route uses any more. */
  retain(used: Set<InstancePool>): void {
    for (const [key, pool] of this.pools) {
      if (used.has(pool)) continue;
      pool.close();
      this.pools.delete(key);
    }
    this.cache.retain(new Set([...this.pools.values()].map((p) => p.file)));
    // A spare thread makes cold starts cheap while there is anything to start.
    this.threads.keep(this.pools.size > 0);
  }

  close(): void {
    this.retain(new Set());
  }
}

function poolKey(file: string, limits: WasmLimits, label: string, maxBodyBytes: number): string {
  return `${file}|${label}|${limits.timeoutMs}|${limits.memoryBytes}|${limits.instances}|${limits.idleMs}|${limits.run}|${maxBodyBytes}`;
}
