/**
 * The executor kinds a worker loads only when its route table has them:
 * upstream, WASM, Lambda and Cloudflare Worker routes. A worker serving
 * native routes alone never loads their modules (nor what they pull in:
 * worker_threads, undici, esbuild, workerd), which keeps its memory close to a
 * bare node:http worker's (docs/memory.md). Native routes, every worker's
 * common case, stay statically imported.
 *
 * Loading is asynchronous (ES modules); the control (control.ts) loads what a
 * new route table needs before it builds the router, and once a kind is loaded
 * it stays loaded.
 */
import type { Logger } from 'pino';
import type { RouteSpec, WasmServiceSpec, WorkerOptions } from '@flexilib/contract';
import type { ProxyExecutor } from '../upstream/proxy-executor.js';
import type { WasmExecutor } from '../wasm/wasm-executor.js';
import type { WasmRuntime } from '../wasm/wasm-runtime.js';
import type { LambdaExecutor, LambdaHost } from '../lambda/lambda-executor.js';
import type { CfWorkerExecutor } from '../cf-workers/cf-worker-executor.js';
import type { CfWorkerRegistry } from '../cf-workers/registry.js';

/** The route target kinds loaded on demand (native is always loaded). */
export type LazyKind = 'upstream' | 'wasm' | 'lambda' | 'worker';

interface Loaded {
  upstream: { ProxyExecutor: typeof ProxyExecutor };
  wasm: { WasmExecutor: typeof WasmExecutor; runtime: WasmRuntime };
  lambda: { LambdaExecutor: typeof LambdaExecutor; host: LambdaHost | undefined };
  worker: { CfWorkerExecutor: typeof CfWorkerExecutor; registry: CfWorkerRegistry };
}

export interface KindContext {
  options: WorkerOptions;
  log: Logger;
  /** The run folder (Cloudflare Workers' files); absent: the system's temp folder. */
  runDir?: string;
  /** The supervisor's Lambda function host; absent: lambda routes answer 502. */
  lambdaPort?: number;
}

/** The lazy kinds `routes` (and the registered WASM services) use. */
export function kindsOf(routes: readonly RouteSpec[], services: readonly WasmServiceSpec[] = []): Set<LazyKind> {
  const kinds = new Set<LazyKind>();
  if (services.length > 0) kinds.add('wasm');
  for (const r of routes) if (r.target.kind !== 'native') kinds.add(r.target.kind);
  return kinds;
}

export class ExecutorKinds {
  private readonly loaded: Partial<Loaded> = {};
  /** Why a kind could not be loaded (its routes answer 501 saying so). */
  readonly failed = new Map<LazyKind, string>();

  constructor(private readonly ctx: KindContext) {}

  get<K extends LazyKind>(kind: K): Loaded[K] | undefined {
    return this.loaded[kind] as Loaded[K] | undefined;
  }

  /** Load the kinds not loaded yet; undefined when there is nothing to load. Never rejects: a failure is logged and kept in `failed`. */
  load(kinds: Iterable<LazyKind>): Promise<void> | undefined {
    const missing = [...kinds].filter((k) => this.loaded[k] === undefined);
    if (missing.length === 0) return undefined;
    return Promise.all(
      missing.map(async (kind) => {
        try {
          await this.loadKind(kind);
          this.failed.delete(kind);
        } catch (err) {
          const why = (err as Error).message;
          this.failed.set(kind, why);
          this.ctx.log.error({ kind, err: why }, `cannot load the ${kind} executor: its routes answer 501`);
        }
      }),
    ).then(() => {});
  }

  private async loadKind(kind: LazyKind): Promise<void> {
    const { options, log } = this.ctx;
    switch (kind) {
      case 'upstream': {
        const { ProxyExecutor } = await import('../upstream/proxy-executor.js');
        this.loaded.upstream = { ProxyExecutor };
        return;
      }
      case 'wasm': {
        const [{ WasmExecutor }, { WasmRuntime }] = await Promise.all([import('../wasm/wasm-executor.js'), import('../wasm/wasm-runtime.js')]);
        const runtime = new WasmRuntime({ arenaBytes: options.arenaBytes, maxBodyBytes: options.maxBodyBytes, maxHeaderBytes: options.maxHeaderBytes, log });
        this.loaded.wasm = { WasmExecutor, runtime };
        return;
      }
      case 'lambda': {
        const { LambdaExecutor, LambdaHost } = await import('../lambda/lambda-executor.js');
        this.loaded.lambda = { LambdaExecutor, host: this.ctx.lambdaPort ? new LambdaHost(this.ctx.lambdaPort) : undefined };
        return;
      }
      case 'worker': {
        const [{ CfWorkerExecutor }, { CfWorkerRegistry }] = await Promise.all([import('../cf-workers/cf-worker-executor.js'), import('../cf-workers/registry.js')]);
        this.loaded.worker = { CfWorkerExecutor, registry: new CfWorkerRegistry(this.ctx.runDir, log) };
        return;
      }
    }
  }

  /** The module file changed: true if a WASM route uses it (its instances were told). */
  reloadWasm(file: string): boolean {
    return this.loaded.wasm?.runtime.reload(file) ?? false;
  }

  /** Stop what the kinds run outside this process (workerd instances). */
  close(): void {
    this.loaded.worker?.registry.close();
  }
}
