/** Turn a parsed config (and the registered WASM services) into a Router of executors, one per route. */
import type { Logger } from 'pino';
import type { Config, RouteSpec } from './config.js';
import { DEFAULT_ROUTE_OPTIONS } from './config.js';
import { FlexiError } from './errors.js';
import type { Executor, RequestStats } from './executor.js';
import type { LibraryRegistry } from './native/library.js';
import { NativeExecutor } from './native/native-executor.js';
import type { Slot } from './native/slot.js';
import type { WorkerOptions } from './options.js';
import type { WasmServiceSpec } from './protocol.js';
import { sendError } from './respond.js';
import { Router } from './router.js';
import type { InstancePool } from './wasm/instance-pool.js';
import { resolveLimits } from './wasm/limits.js';
import { WasmExecutor } from './wasm/wasm-executor.js';
import type { WasmRuntime } from './wasm/wasm-runtime.js';

export interface RouterDeps {
  options: WorkerOptions;
  libraries: LibraryRegistry;
  inlineSlot: Slot;
  log: Logger;
  /** Absent: .wasm routes answer 501. */
  wasm?: WasmRuntime;
}

/** Stands in for an executor kind this build lacks, answering 501 with the reason. */
class UnsupportedExecutor implements Executor {
  readonly kind;
  private readonly error: FlexiError;
  constructor(readonly route: RouteSpec) {
    this.kind = route.target.kind;
    this.error = new FlexiError('FLX_EXECUTOR_UNSUPPORTED', `route "${route.key}": ${route.target.kind} executors are not available in this build`);
  }
  handle(_req: unknown, res: import('node:http').ServerResponse, _stats: RequestStats): void {
    sendError(res, 501, this.error.message);
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
export function buildRouter(config: Config, deps: RouterDeps, services: readonly WasmServiceSpec[] = []): Router {
  const pools = new Set<InstancePool>();
  const routes = [...services.map(serviceRoute), ...config.routes];
  const executors: Executor[] = routes.map((route) => {
    const t = route.target;
    if (t.kind === 'native') {
      return new NativeExecutor(route, {
        library: deps.libraries.get(t.library),
        inlineSlot: deps.inlineSlot,
        arenaBytes: deps.options.arenaBytes,
        maxHeaderBytes: deps.options.maxHeaderBytes,
        maxBodyBytes: deps.options.maxBodyBytes,
        log: deps.log,
      });
    }
    if (t.kind === 'wasm' && deps.wasm) {
      const label = route.segmentPrefix ? `service "${t.configured}"` : `WASM module ${t.module}`;
      const maxBody = route.options.maxBodyBytes ?? deps.options.maxBodyBytes;
      const pool = deps.wasm.pool(t.module, resolveLimits(route.options.wasm), label, maxBody);
      pools.add(pool);
      return new WasmExecutor(route, { pool, arenaBytes: deps.options.arenaBytes, maxBodyBytes: deps.options.maxBodyBytes, log: deps.log });
    }
    return new UnsupportedExecutor(route);
  });
  deps.libraries.retain(new Set(config.routes.flatMap((r) => (r.target.kind === 'native' ? [r.target.library] : []))));
  deps.wasm?.retain(pools);
  return new Router(executors);
}
