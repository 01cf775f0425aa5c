/** Turn a parsed config (and the registered WASM services) into a Router of executors, one per route. */
import type { Logger } from 'pino';
import type { Config, RouteSpec } from '@flexilib/contract';
import { DEFAULT_ROUTE_OPTIONS } from '@flexilib/contract';
import { FlexiError } from '@flexilib/contract';
import type { Executor, RequestStats } from '../executor.js';
import { markWord } from '@flexilib/contract';
import type { CallMarker } from '../native/call-marker.js';
import type { LibraryRegistry } from '../native/library.js';
import { NativeExecutor } from '../native/native-executor.js';
import type { StuckCalls } from '../native/stuck-calls.js';
import type { Slot } from '../native/slot.js';
import type { WorkerOptions } from '@flexilib/contract';
import type { QuarantineNotice, WasmServiceSpec } from '@flexilib/contract';
import { QuarantinedExecutor } from './quarantined-executor.js';
import { sendError } from '../http/respond.js';
import { Router } from './router.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import type { InstancePool } from '../wasm/instance-pool.js';
import { resolveLimits } from '@flexilib/contract';
import type { ExecutorKinds } from './executor-kinds.js';

export interface RouterDeps {
  options: WorkerOptions;
  libraries: LibraryRegistry;
  inlineSlot: Slot;
  /** Where calls in progress are recorded for crash attribution. */
  marker: CallMarker;
  log: Logger;
  /** Upstream pools; they outlive routers (see upstream/registry.ts). */
  upstreams: UpstreamRegistry;
  /** Threaded calls past their timeout (native/stuck-calls.ts). */
  stuck: StuckCalls;
  /** The executor kinds loaded on demand (upstream, WASM, Lambda, Cloudflare Worker); a kind not loaded answers 501. */
  kinds: ExecutorKinds;
}

/** What a router is built for besides the config: its generation and the libraries quarantined. */
export interface RouterState {
  generation: number;
  quarantined: ReadonlyMap<string, QuarantineNotice>;
  /** WASM services registered at run time (checked before proxy.ini's routes). */
  services?: readonly WasmServiceSpec[];
}

/** Stands in for an executor kind this build lacks (or could not load), answering 501 with the reason. */
class UnsupportedExecutor implements Executor {
  readonly kind;
  private readonly error: FlexiError;
  constructor(readonly route: RouteSpec, why?: string) {
    this.kind = route.target.kind;
    const reason = why === undefined ? 'are not available in this build' : `could not be loaded: ${why}`;
    this.error = new FlexiError('FLX_EXECUTOR_UNSUPPORTED', `route "${route.key}": ${route.target.kind} executors ${reason}`);
  }
  handle(_req: unknown, res: import('node:http').ServerResponse, _stats: RequestStats): void {
    sendError(res, this.error.code as 'FLX_EXECUTOR_UNSUPPORTED', this.error.message);
  }
  close(): void {}
}

/** The route a registered service takes: its prefix on whole path segments. */
export function serviceRoute(s: WasmServiceSpec): RouteSpec {
  return {
    key: `service:${s.name}`,
    line: 0,
    pathPrefix: s.prefix,
    segmentPrefix: true,
    target: { kind: 'wasm', module: s.module, configured: s.name },
    options: { ...DEFAULT_ROUTE_OPTIONS, wasm: s.limits },
  };
}

/**
 * Services are checked before proxy.ini's routes: each names an explicit
 * prefix and was registered on purpose, so it wins over a catch-all like "/".
 */
export function buildRouter(config: Config, deps: RouterDeps, state: RouterState = { generation: 0, quarantined: new Map() }): Router {
  const pools = new Set<InstancePool>();
  const services = state.services ?? [];
  const routes = [...services.map(serviceRoute), ...config.routes];
  const executors: Executor[] = routes.map((route, i) => {
    // The call marker records the route's index in config.routes.
    const index = i - services.length;
    const t = route.target;
    if (t.kind === 'native') {
      const notice = state.quarantined.get(t.library);
      if (notice) return new QuarantinedExecutor(route, notice);
      return new NativeExecutor(route, {
        library: deps.libraries.get(t.library, route.options.abi),
        inlineSlot: deps.inlineSlot,
        arenaBytes: deps.options.arenaBytes,
        maxHeaderBytes: deps.options.maxHeaderBytes,
        maxBodyBytes: deps.options.maxBodyBytes,
        marker: deps.marker,
        markWord: markWord(state.generation, index),
        log: deps.log,
        stuck: deps.stuck,
        timeoutMs: route.options.timeoutMs ?? deps.options.callTimeoutMs,
      });
    }
    const upstream = deps.kinds.get('upstream');
    if (t.kind === 'upstream' && upstream) return new upstream.ProxyExecutor(route, deps.upstreams.pool(t.pool), deps.upstreams, deps.log);
    const wasm = deps.kinds.get('wasm');
    if (t.kind === 'wasm' && wasm) {
      const label = route.segmentPrefix ? `service "${t.configured}"` : `WASM module ${t.module}`;
      const maxBody = route.options.maxBodyBytes ?? deps.options.maxBodyBytes;
      const pool = wasm.runtime.pool(t.module, resolveLimits(route.options.wasm), label, maxBody);
      pools.add(pool);
      return new wasm.WasmExecutor(route, { pool, arenaBytes: deps.options.arenaBytes, maxBodyBytes: deps.options.maxBodyBytes, log: deps.log });
    }
    const lambda = deps.kinds.get('lambda');
    if (t.kind === 'lambda' && lambda) {
      const fn = config.lambdas?.find((l) => l.name === t.function);
      if (fn) return new lambda.LambdaExecutor(route, fn, lambda.host, deps.options.maxBodyBytes, deps.log);
    }
    const worker = deps.kinds.get('worker');
    if (t.kind === 'worker' && worker) {
      const spec = (config.workers ?? []).find((w) => w.name === t.worker);
      if (spec) return new worker.CfWorkerExecutor(route, spec, worker.registry.pool(spec), deps.log);
    }
    return new UnsupportedExecutor(route, deps.kinds.failed.get(t.kind));
  });
  deps.kinds.get('worker')?.registry.retain(new Set((config.workers ?? []).map((w) => w.name)));
  deps.libraries.retain(new Set(config.routes.flatMap((r) => (r.target.kind === 'native' ? [r.target.library] : []))));
  deps.kinds.get('wasm')?.runtime.retain(pools);
  return new Router(executors);
}
