/**
 * WASM services registered at run time (the /services API), on the admin
 * listener:
 *
 *   POST   /services        {"name","prefix","module_base64"} or {"name","prefix","path"},
 *                           optional "timeout", "memory", "instances", "idle", "run" -> 201
 *   GET    /services        the registered services                            -> 200
 *   GET    /services/:name  one service                                        -> 200 | 404
 *   DELETE /services/:name                                                     -> 200 | 404
 *
 * A module is tried before it is accepted (probeModule: compile, exports,
 * imports, memory cap, one instantiation with flexi_init) and refused with
 * 400 naming the field. A "path" is read only inside the modules folder
 * (module-path.ts). Accepted services are persisted (service-store.ts)
 * and the complete set is asked of every live worker, spares included
 * (WorkerPool.requestAll); the call answers once each applied it (or after
 * ACK_TIMEOUT_MS), so a client may send traffic to the service as soon as POST
 * returns. A worker forked later starts with the set in its WorkerInit.
 * Mutations run one at a time.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import {
  FlexiError,
  WASM_LIMIT_OPTIONS,
  parseWasmLimit,
  resolveLimits,
  type WasmLimits,
  type WasmServiceSpec,
} from '@flexilib/contract';
import { probeModule } from '@flexilib/worker';
import type { AdminServer } from '../admin/admin-server.js';
import { ServiceStore, type StoredService } from './service-store.js';
import { readModuleFile } from './module-path.js';
import type { WorkerPool } from '../worker-pool.js';

const ACK_TIMEOUT_MS = 5000;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const MAX_PREFIX = 256;

/**
 * Cluster mode (cluster/): registrations and deletions go to the shared state
 * and resolve once this host applied them (applyShared).
 */
export interface ServiceSharing {
  register(service: StoredService, bytes: Uint8Array): Promise<void>;
  remove(name: string): Promise<void>;
}

export interface WasmServicesOptions {
  /** The state folder (beside the config). */
  stateDir: string;
  /** "path" values resolve against this folder and must stay inside it (the config's, or --modules-dir). */
  modulesDir: string;
  arenaBytes: number;
  log: Logger;
  /** The workers told of every change. */
  pool: WorkerPool;
}

export class WasmServices {
  private services: StoredService[] = [];
  private readonly store: ServiceStore;
  private generation = 0;
  private lock: Promise<unknown> = Promise.resolve();
  private sharing: ServiceSharing | undefined;
  /** Workers that applied the last set (what a cluster-mode call reports). */
  private lastApplied = 0;

  constructor(admin: AdminServer, private readonly opts: WasmServicesOptions) {
    this.store = new ServiceStore(opts.stateDir);
    admin.route('GET', '/services', () => ({ json: { services: this.services.map((s) => this.view(s)) } }));
    admin.route('GET', '/services/:name', (req) => ({ json: { service: this.view(this.find(req.params.name)) } }));
    admin.route('POST', '/services', async (req) => {
      const body = await req.json();
      return this.exclusive(() => this.register(body));
    });
    admin.route('DELETE', '/services/:name', (req) => this.exclusive(() => this.remove(req.params.name)));
  }

  /** Load the persisted services (before the workers fork). Throws when the state is corrupt. */
  load(): void {
    const loaded = this.store.load();
    const present = loaded.filter((s) => existsSync(this.store.modulePath(s.module)));
    for (const s of loaded) {
      if (!present.includes(s)) this.opts.log.error({ service: s.name, module: this.store.modulePath(s.module) }, 'WASM service module file is missing; the service is not served');
    }
    this.services = present;
    if (present.length) this.opts.log.info({ services: present.map((s) => `${s.name} ${s.prefix}`) }, 'WASM services restored');
  }

  /** Cluster mode: changes go through `sharing`. Call before load(). */
  share(sharing: ServiceSharing): void {
    this.sharing = sharing;
  }

  /** Module bytes of a stored service are here already (cluster mode fetches the others). */
  hasModule(s: StoredService): boolean {
    return existsSync(this.store.modulePath(s.module));
  }

  /**
   * Cluster mode: the shared set, as applied from etcd. Modules missing here
   * are fetched first (`fetch`); a service whose module cannot be had is left
   * out, logged. Resolves with the workers that applied the set.
   */
  async applyShared(services: StoredService[], fetch: (s: StoredService) => Promise<Uint8Array>): Promise<number> {
    const usable: StoredService[] = [];
    for (const s of services) {
      if (!this.hasModule(s)) {
        try {
          this.store.putModule(await fetch(s));
        } catch (err) {
          this.opts.log.error({ code: 'FLX_CLUSTER_MODULE', service: s.name, sha256: s.sha256, err: (err as Error).message }, 'WASM service of the cluster not served here: its module cannot be fetched');
          continue;
        }
      }
      usable.push(s);
    }
    this.services = usable;
    this.store.save(usable);
    this.lastApplied = await this.broadcast();
    this.store.pruneModules(usable);
    return this.lastApplied;
  }

  /** The services as workers take them: most specific prefix first. */
  current(): WasmServiceSpec[] {
    return [...this.services]
      .sort((a, b) => b.prefix.length - a.prefix.length)
      .map((s) => ({ name: s.name, prefix: s.prefix, module: this.store.modulePath(s.module), sha256: s.sha256, limits: s.limits }));
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private find(name: string): StoredService {
    const s = this.services.find((x) => x.name === name);
    if (!s) throw new FlexiError('FLX_SERVICE_NOT_FOUND', `no service named "${name}" is registered`, { field: 'name' });
    return s;
  }

  private view(s: StoredService) {
    const l = resolveLimits(s.limits);
    return {
      name: s.name,
      prefix: s.prefix,
      sha256: s.sha256,
      module_bytes: s.bytes,
      limits: { timeout_ms: l.timeoutMs, memory_bytes: l.memoryBytes, instances: l.instances, idle_ms: l.idleMs, run: l.run },
      created_at: s.createdAt,
    };
  }

  private async register(body: unknown) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new FlexiError('FLX_SERVICE_INVALID', 'expected a JSON object: {"name", "prefix", "module_base64" or "path"}');
    }
    const b = body as Record<string, unknown>;
    const known = new Set(['name', 'prefix', 'module_base64', 'path', ...WASM_LIMIT_OPTIONS]);
    for (const k of Object.keys(b)) {
      if (!known.has(k)) throw new FlexiError('FLX_SERVICE_INVALID', `unknown field "${k}" (known: ${[...known].join(', ')})`, { field: k });
    }
    const name = b.name;
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new FlexiError('FLX_SERVICE_INVALID', 'name: expected 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit', { field: 'name' });
    }
    const prefix = normalizePrefix(b.prefix);
    if (this.services.some((s) => s.name === name)) {
      throw new FlexiError('FLX_SERVICE_EXISTS', `a service named "${name}" is already registered: DELETE /services/${name} first`, { field: 'name' });
    }
    const clash = this.services.find((s) => s.prefix === prefix);
    if (clash) throw new FlexiError('FLX_SERVICE_PREFIX_TAKEN', `prefix ${prefix} is already served by service "${clash.name}"`, { field: 'prefix' });

    const limits: Partial<WasmLimits> = {};
    for (const opt of WASM_LIMIT_OPTIONS) {
      const v = b[opt];
      if (v === undefined) continue;
      if (typeof v !== 'number' && typeof v !== 'string') throw new FlexiError('FLX_SERVICE_INVALID', `${opt}: expected a number or a string`, { field: opt });
      const r = parseWasmLimit(opt, v);
      if ('error' in r) throw new FlexiError('FLX_SERVICE_INVALID', r.error, { field: opt });
      Object.assign(limits, { [r.key]: r.value });
    }

    const { bytes, field } = await this.moduleBytes(b);
    try {
      await probeModule(bytes, resolveLimits(limits), `service "${name}"`, { arenaBytes: this.opts.arenaBytes, log: this.opts.log });
    } catch (err) {
      if (err instanceof FlexiError) throw new FlexiError('FLX_SERVICE_MODULE_INVALID', `${err.message} [${err.code}]`, { field: field });
      throw err;
    }

    const { module, sha256 } = this.store.putModule(bytes);
    const service: StoredService = { name, prefix, module, sha256, bytes: bytes.length, limits, createdAt: new Date().toISOString() };
    if (this.sharing) {
      await this.sharing.register(service, bytes);
      this.opts.log.info({ service: name, prefix, sha256, workers: this.lastApplied }, 'WASM service registered in the cluster');
      return { status: 201, json: { service: this.view(service), workers_applied: this.lastApplied } };
    }
    this.services = [...this.services, service];
    this.store.save(this.services);
    const applied = await this.broadcast();
    this.opts.log.info({ service: name, prefix, sha256, workers: applied }, 'WASM service registered');
    return { status: 201, json: { service: this.view(service), workers_applied: applied } };
  }

  private async moduleBytes(b: Record<string, unknown>): Promise<{ bytes: Uint8Array; field: string }> {
    const hasB64 = b.module_base64 !== undefined;
    const hasPath = b.path !== undefined;
    if (hasB64 === hasPath) {
      throw new FlexiError('FLX_SERVICE_INVALID', 'give the module as exactly one of "module_base64" (the .wasm bytes, base64) or "path" (a file on the server)', { field: hasB64 ? 'path' : 'module_base64' });
    }
    if (hasB64) {
      const text = b.module_base64;
      if (typeof text !== 'string' || text.length === 0 || !/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(text)) {
        throw new FlexiError('FLX_SERVICE_INVALID', 'module_base64: expected the module bytes in base64', { field: 'module_base64' });
      }
      return { bytes: Buffer.from(text, 'base64'), field: 'module_base64' };
    }
    return { bytes: readModuleFile(this.opts.modulesDir, b.path), field: 'path' };
  }

  private async remove(name: string) {
    const s = this.find(name);
    if (this.sharing) {
      await this.sharing.remove(s.name);
      this.opts.log.info({ service: name, workers: this.lastApplied }, 'WASM service deleted from the cluster');
      return { json: { deleted: name, workers_applied: this.lastApplied } };
    }
    this.services = this.services.filter((x) => x !== s);
    this.store.save(this.services);
    const applied = await this.broadcast();
    this.store.pruneModules(this.services);
    this.opts.log.info({ service: name, workers: applied }, 'WASM service deleted');
    return { json: { deleted: name, workers_applied: applied } };
  }

  /** Ask every live worker to take the set; resolve with how many applied it in time. */
  private async broadcast(): Promise<number> {
    const generation = ++this.generation;
    const { pool, log } = this.opts;
    const outcomes = await pool.requestAll(pool.all(), { type: 'wasm-services', services: this.current(), generation }, ACK_TIMEOUT_MS);
    if (outcomes.some((o) => o.error?.code === 'FLX_WORKER_NO_REPLY')) log.warn({ generation, code: 'FLX_WORKER_NO_REPLY' }, 'not every worker acknowledged the WASM services in time');
    return outcomes.filter((o) => o.reply).length;
  }
}

function normalizePrefix(value: unknown): string {
  const fail = (why: string) => new FlexiError('FLX_SERVICE_INVALID', `prefix: ${why}`, { field: 'prefix' });
  if (typeof value !== 'string') throw fail('expected a path such as "/svc"');
  let p = value.trim();
  if (!p.startsWith('/')) throw fail(`"${value}" must start with "/"`);
  if (p.length > MAX_PREFIX) throw fail(`longer than ${MAX_PREFIX} characters`);
  if (/[\s?#%]/.test(p) || p.includes('//') || p.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw fail(`"${value}" must be a plain path: no spaces, "?", "#", "%", "//", "." or ".." segments`);
  }
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p === '/') throw fail('"/" would take every request: use a path segment such as "/svc"');
  return p;
}
