/**
 * A worker's handling of the supervisor's control messages (protocol.ts):
 * config switches, library reloads, quarantine, stop. Owns what a router is
 * built from (config, generation, quarantine set) and swaps the router; requests
 * in flight finish on the router and library versions they started with.
 */
import type { Config } from '@flexilib/contract';
import { buildRouter, type RouterDeps } from './routing/build-router.js';
import { kindsOf } from './routing/executor-kinds.js';
import type { ServerState } from './http/server-state.js';
import type { RequestMeter } from './observe/metrics/request-meter.js';
import type { LibraryRegistry } from './native/library.js';
import type { FromWorker, ListenHandle, QuarantineNotice, ToWorker, WasmServiceSpec, WorkerInit, WorkerReply } from '@flexilib/contract';
import type { Router } from './routing/router.js';

export class WorkerControl {
  private config: Config;
  private generation: number;
  private readonly quarantined = new Map<string, QuarantineNotice>();
  /** WASM services registered at run time, checked before the config's routes. */
  private services: WasmServiceSpec[];
  readonly state: ServerState;
  /** Messages wait here, in order, while executor kinds a new route table needs are loading. */
  private pending: Promise<void> | undefined;

  constructor(
    init: WorkerInit,
    private readonly deps: RouterDeps & { libraries: LibraryRegistry },
    private readonly send: (msg: FromWorker) => void,
    private readonly stop: (why: string) => void,
    private readonly listen: (socket: ListenHandle) => void,
    /** Opens the metrics file for a route table; null when metrics are off. */
    private readonly openMeter: (router: Router) => RequestMeter | null = () => null,
  ) {
    this.config = init.config;
    this.generation = init.generation ?? 0;
    this.services = init.services ?? [];
    for (const q of init.quarantined ?? []) this.quarantined.set(q.library, q);
    const router = this.build();
    this.state = { router, meter: openMeter(router) };
  }

  private build() {
    return buildRouter(this.config, this.deps, { generation: this.generation, quarantined: this.quarantined, services: this.services });
  }

  /** Swap in a router built from the current config and quarantine set, with a
   * metrics file of its own (requests in flight finish counting on the old one). */
  private rebuild(): void {
    const old = this.state.router;
    const oldMeter = this.state.meter;
    this.state.router = this.build();
    // A worker started with metrics off never counts (its server has no hook).
    if (oldMeter) this.state.meter = this.openMeter(this.state.router);
    oldMeter?.retire();
    old.close();
  }

  /**
   * `handle`: the IPC message's handle (the socket of a `listen`). A message
   * whose route table needs an executor kind not loaded yet (routing/executor-kinds.ts)
   * is applied once it is, and the messages after it wait their turn.
   */
  handle(msg: ToWorker, handle?: ListenHandle): void {
    const loading = this.pending ?? this.loadFor(msg);
    if (!loading) return this.apply(msg, handle);
    const next: Promise<void> = loading
      .then(() => this.loadFor(msg))
      .then(() => this.apply(msg, handle))
      // A throw from apply() ends the worker as it does when applied at once (an unhandled rejection).
      .finally(() => {
        if (this.pending === next) this.pending = undefined;
      });
    this.pending = next;
  }

  /** Loading the executor kinds `msg`'s route table needs; undefined when they are loaded. */
  private loadFor(msg: ToWorker): Promise<void> | undefined {
    if (msg.type === 'config') return this.deps.kinds.load(kindsOf(msg.config.routes));
    if (msg.type === 'wasm-services') return this.deps.kinds.load(kindsOf([], msg.services));
    return undefined;
  }

  private apply(msg: ToWorker, handle?: ListenHandle): void {
    const log = this.deps.log;
    switch (msg.type) {
      case 'config': {
        this.config = msg.config;
        this.generation = msg.generation;
        this.quarantined.clear();
        for (const q of msg.quarantined) this.quarantined.set(q.library, q);
        // A reload is also the operator's "try again": failed libraries skip their backoff.
        for (const lib of this.deps.libraries.all()) lib.fileChanged();
        this.rebuild();
        this.send({ type: 'config-applied', generation: msg.generation, requestId: msg.requestId });
        return;
      }
      case 'reload-library':
        this.send({ ...this.reloadLibrary(msg.file, msg.lift === true), requestId: msg.requestId });
        return;
      case 'quarantine':
        this.quarantined.set(msg.notice.library, msg.notice);
        log.warn({ library: msg.notice.library, reason: msg.notice.reason }, 'library quarantined: its routes answer 503');
        this.rebuild();
        return;
      case 'stop':
        this.stop('supervisor stop');
        return;
      case 'listen':
        if (handle) this.listen(handle);
        else log.error('listen message without its socket; not listening');
        return;
      case 'wasm-services':
        this.services = msg.services;
        this.rebuild();
        this.send({ type: 'wasm-services-applied', generation: msg.generation, requestId: msg.requestId });
        return;
      case 'upstream-state':
        this.deps.upstreams.apply(msg.state);
        return;
    }
  }

  private reloadLibrary(file: string, lift: boolean): Extract<WorkerReply, { type: 'library-reloaded' }> {
    const log = this.deps.log;
    if (this.deps.kinds.reloadWasm(file)) {
      log.info({ module: file }, 'WASM module changed: new instances run the new version');
      return { type: 'library-reloaded', file, ok: true, loaded: true };
    }
    const lib = this.deps.libraries.peek(file);
    let ok = true;
    let loaded = false;
    let error: string | undefined;
    // A library never loaded here (or whose last load failed) is loaded by its
    // next use; a failed one is tried again then, without waiting for its backoff.
    if (lib && !lib.current) lib.fileChanged();
    if (lib?.current) {
      try {
        lib.load();
        loaded = true;
        log.info({ library: file }, 'library reloaded: new requests use the new version');
      } catch (err) {
        ok = false;
        error = (err as Error).message;
        if (lift) {
          // The old version is the one that crashed: rather than serve it again,
          // drop it; requests retry loading the file (and answer why meanwhile).
          lib.close();
          log.error({ library: file, err: error }, 'library reload failed; the quarantined version is dropped and the next request retries the file');
        } else {
          log.error({ library: file, err: error }, 'library reload failed; the previous version keeps serving');
        }
      }
    }
    if (lift && this.quarantined.delete(file)) {
      log.info({ library: file }, 'library quarantine lifted: the file changed');
      this.rebuild();
    }
    return { type: 'library-reloaded', file, ok, loaded, ...(error !== undefined ? { error } : {}) };
  }
}
