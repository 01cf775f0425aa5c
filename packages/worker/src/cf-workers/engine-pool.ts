/**
 * A Worker's workerd processes in this flexilib worker: up to `instances`,
 * each serving one request at a time; requests beyond wait in order. A
 * process idle for `idle` stops (scale to zero) and the next request starts
 * one (the cold start) — unless `spare` processes are kept started, which the
 * idle rule never goes below once the Worker has had a request (a standby
 * flexilib worker, or a route never called, starts none). A change to any of the Worker's own source files
 * (debounced) bundles a new generation: new requests go to its processes, and
 * the old ones stop as soon as they are not serving — no request fails.
 */
import { mkdirSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CfWorkerSpec } from '@flexilib/contract';
import { bundleWorker } from './bundle.js';
import { capnpConfig, MODULE_FILE } from './capnp-config.js';
import { Engine } from './engine.js';
import { workerdBinary } from './workerd-binary.js';

const RELOAD_DEBOUNCE_MS = 100;

interface Generation {
  n: number;
  dir: string;
  configFile: string;
}

export type EngineWaiter = (engine: Engine | Error) => void;

export class EnginePool {
  readonly label: string;
  private readonly engines = new Set<Engine>();
  private readonly idle: Engine[] = [];
  private readonly waiters: EngineWaiter[] = [];
  private starting = 0;
  private generation: Promise<Generation>;
  private current: Generation | undefined;
  private seq = 0;
  private watchers: FSWatcher[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Has had a request: from then on `spare` processes are kept. */
  private used = false;

  constructor(
    readonly spec: CfWorkerSpec,
    private readonly baseDir: string,
    private readonly log: Logger,
  ) {
    this.label = `worker "${spec.name}"`;
    this.generation = this.prepare();
    this.generation.catch(() => {});
  }

  /** Hand an engine to `waiter` now or when one frees (or the error why none can start). */
  acquire(waiter: EngineWaiter): void {
    this.used = true;
    const e = this.idle.pop();
    if (e !== undefined) {
      e.busy = true;
      waiter(e);
      return;
    }
    this.waiters.push(waiter);
    this.grow();
  }

  /** The request is done with `e`; `recycle` stops it (a limit was exceeded). */
  release(e: Engine, recycle = false): void {
    e.busy = false;
    e.lastUsed = performance.now();
    if (recycle || e.ended !== undefined || this.closed || e.generation !== this.current?.n) {
      if (e.ended === undefined) e.stop('stopped');
      this.forget(e);
      this.grow();
      return;
    }
    const w = this.waiters.shift();
    if (w !== undefined) {
      e.busy = true;
      w(e);
      return;
    }
    this.idle.push(e);
    this.armIdle();
  }

  /** Processes running, for tests and the log. */
  get size(): number {
    return this.engines.size;
  }

  /** Stop; requests still waiting go to `successor` (the Worker's changed section), else fail. */
  close(successor?: EnginePool): void {
    this.closed = true;
    clearTimeout(this.reloadTimer);
    clearTimeout(this.idleTimer);
    for (const w of this.watchers) w.close();
    for (const e of this.engines) if (!e.busy) e.stop('stopped');
    this.idle.length = 0;
    for (const w of this.waiters.splice(0)) {
      if (successor) successor.acquire(w);
      else w(new Error(`${this.label} was removed from the config`));
    }
  }

  /** Start engines while requests wait and there is room, or fewer than `spare` run. */
  private grow(): void {
    while (
      !this.closed &&
      (this.waiters.length > this.starting || (this.used && this.engines.size + this.starting < this.spec.spare)) &&
      this.engines.size + this.starting < this.spec.instances
    ) {
      this.starting++;
      this.generation
        .then((g) => Engine.start(workerdBinary(), g.configFile, g.dir, g.n, this.label, this.log, (e) => this.died(e)))
        .then(
          (e) => {
            this.starting--;
            this.engines.add(e);
            e.busy = true;
            this.release(e);
          },
          (err: Error) => {
            this.starting--;
            this.log.error({ worker: this.spec.name, code: (err as { code?: string }).code, err: err.message }, 'a workerd process could not start');
            // Every request waiting beyond what the remaining starts will serve gets the error.
            while (this.waiters.length > this.starting + this.engines.size) this.waiters.pop()!(err);
            return; // No retry loop for spares: the next request tries again.
          },
        );
    }
  }

  private died(e: Engine): void {
    if (e.ended === 'crash' || e.ended === 'memory') this.log.warn({ worker: this.spec.name, pid: e.pid, why: e.ended, lastWords: e.lastWords }, 'a workerd process died');
    this.forget(e);
    this.grow();
  }

  private forget(e: Engine): void {
    this.engines.delete(e);
    const i = this.idle.indexOf(e);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** One timer for the pool: stops the processes idle past `idle`, down to `spare`. */
  private armIdle(): void {
    if (this.idleTimer !== undefined || this.idle.length === 0 || this.engines.size <= this.spec.spare) return;
    const oldest = Math.min(...this.idle.map((e) => e.lastUsed));
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const now = performance.now();
      for (const e of [...this.idle].sort((a, b) => a.lastUsed - b.lastUsed)) {
        if (this.engines.size <= this.spec.spare) break;
        if (now - e.lastUsed >= this.spec.idleMs - 1) {
          e.stop('stopped');
          this.forget(e);
          this.log.debug({ worker: this.spec.name, pid: e.pid }, 'idle workerd process stopped');
        }
      }
      this.armIdle();
    }, Math.max(1, oldest + this.spec.idleMs - performance.now()));
    this.idleTimer.unref();
  }

  /** Bundle the source and write the config of a new generation. */
  private async prepare(): Promise<Generation> {
    const n = ++this.seq;
    let bundle;
    try {
      bundle = await bundleWorker(this.spec.module, this.label);
    } catch (err) {
      // Never bundled yet: watch the entry, so fixing it is a reload.
      if (this.watchers.length === 0) this.watch([this.spec.module]);
      throw err;
    }
    const dir = path.join(this.baseDir, `${this.spec.name}-${process.pid}-g${n}`);
    mkdirSync(dir, { recursive: true });
    if (Object.keys(this.spec.kv).length > 0) mkdirSync(path.join(this.spec.stateDir, 'kv'), { recursive: true });
    writeFileSync(path.join(dir, MODULE_FILE), bundle.code);
    const configFile = path.join(dir, 'config.capnp');
    writeFileSync(configFile, capnpConfig(this.spec, bundle.serviceWorker));
    if (this.current !== undefined) rmSync(this.current.dir, { recursive: true, force: true });
    const g = { n, dir, configFile };
    this.current = g;
    this.watch(bundle.inputs);
    return g;
  }

  /**
   * Watch the folders of the source files, not the files: an editor that saves
   * by renaming a new file over the old one leaves a file watcher on the old inode.
   */
  private watch(files: string[]): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    const byDir = new Map<string, Set<string>>();
    for (const f of files) {
      const names = byDir.get(path.dirname(f)) ?? new Set<string>();
      names.add(path.basename(f));
      byDir.set(path.dirname(f), names);
    }
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, (_event, name) => {
          if (name === null || names.has(String(name))) this.changed();
        });
        w.on('error', () => {});
        this.watchers.push(w);
      } catch {
        // Gone already: the next reload reports it.
      }
    }
  }

  private changed(): void {
    if (this.closed) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => {
      if (this.closed) return;
      const next = this.prepare();
      next.then(
        (g) => {
          this.generation = next;
          // Idle engines of the old generation go now; busy ones when they finish.
          for (const e of this.idle.splice(0)) {
            e.stop('stopped');
            this.engines.delete(e);
          }
          this.grow();
          this.log.info({ worker: this.spec.name, generation: g.n }, `${this.label} reloaded`);
        },
        (err: Error) => this.log.error({ worker: this.spec.name, code: 'FLX_CFW_BUNDLE', err: err.message }, `${this.label}: the changed source does not bundle; the previous version keeps serving`),
      );
    }, RELOAD_DEBOUNCE_MS);
  }
}
