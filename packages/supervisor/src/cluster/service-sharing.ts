/**
 * WASM services in the cluster. A registration writes the module's chunks
 * first (content-addressed: `modules/<sha256>/<nnnn>`, each its own request,
 * well under etcd's 1.5 MiB limit), then one transaction that names them:
 * it puts `state/services/<name>` and `state/prefixes/<prefix>` only if both
 * are free and every chunk exists. So no host ever sees a service whose
 * bytes are not there; a host that lacks the module fetches the chunks and
 * checks their sha256 before its workers get the service.
 */
import { createHash } from 'node:crypto';
import type { Namespace } from 'etcd3';
import { FlexiError } from '@flexilib/contract';
import type { StoredService } from '../wasm/service-store.js';
import type { ServiceSharing, WasmServices } from '../wasm/services-api.js';
import { CHUNK_BYTES, moduleChunkKey, prefixKey, serviceKey } from './keys.js';
import type { SharedStore } from './shared-store.js';
import { APPLY_TIMEOUT_MS, unreachable, writing } from './upstream-sharing.js';

/** A service as shared: the stored record plus how many chunks its module has. */
export type SharedService = StoredService & { chunks: number };

export class ServiceClusterSharing implements ServiceSharing {
  constructor(private readonly ns: Namespace, private readonly store: SharedStore, private readonly wasm: WasmServices) {}

  async register(service: StoredService, bytes: Uint8Array): Promise<void> {
    if (this.store.status !== 'ok') throw unreachable();
    const chunks = chunkCount(bytes);
    const shared: SharedService = { ...service, chunks };
    const revision = await writing(async () => {
      await putChunks(this.ns, service.sha256, bytes);
      const sKey = `state/${serviceKey(service.name)}`;
      const pKey = `state/${prefixKey(service.prefix)}`;
      let txn = this.ns.if(sKey, 'Create', '==', 0).and(pKey, 'Create', '==', 0);
      for (let i = 0; i < chunks; i++) txn = txn.and(moduleChunkKey(service.sha256, i), 'Version', '>', 0);
      const res = await txn
        .then(this.ns.put(sKey).value(JSON.stringify(shared)), this.ns.put(pKey).value(JSON.stringify({ service: service.name })))
        .else(this.ns.get(sKey), this.ns.get(pKey))
        .commit();
      if (!res.succeeded) {
        if (res.responses[0].response_range.kvs.length) throw new FlexiError('FLX_SERVICE_EXISTS', `a service named "${service.name}" is already registered in the cluster: DELETE /services/${service.name} first`, { field: 'name' });
        if (res.responses[1].response_range.kvs.length) throw new FlexiError('FLX_SERVICE_PREFIX_TAKEN', `prefix ${service.prefix} is already served by another service of the cluster`, { field: 'prefix' });
        throw new FlexiError('FLX_CLUSTER_CONFLICT', `the chunks of module ${service.sha256} were removed while registering "${service.name}": retry`, { field: 'module_base64' });
      }
      return Number(res.header.revision);
    });
    await this.store.waitApplied(revision, APPLY_TIMEOUT_MS);
  }

  async remove(name: string): Promise<void> {
    if (this.store.status !== 'ok') throw unreachable();
    const raw = this.store.get(serviceKey(name));
    if (!raw) throw new FlexiError('FLX_SERVICE_NOT_FOUND', `no service named "${name}" is registered in the cluster`, { field: 'name' });
    const s = JSON.parse(raw) as SharedService;
    const res = await writing(() =>
      this.ns.if(`state/${serviceKey(name)}`, 'Version', '>', 0).then(this.ns.delete().key(`state/${serviceKey(name)}`), this.ns.delete().key(`state/${prefixKey(s.prefix)}`)).commit(),
    );
    if (!res.succeeded) throw new FlexiError('FLX_SERVICE_NOT_FOUND', `no service named "${name}" is registered in the cluster`, { field: 'name' });
    await this.store.waitApplied(Number(res.header.revision), APPLY_TIMEOUT_MS);
    // Chunks no other service names go too (best effort: a later registration of the same bytes writes them again).
    if (!this.services().some((o) => o.sha256 === s.sha256)) await this.ns.delete().prefix(`modules/${s.sha256}/`).exec().catch(() => undefined);
  }

  services(): SharedService[] {
    return this.store.entries('services/').map(([, v]) => JSON.parse(v) as SharedService);
  }

  /** Apply the shared set on this host (fetching modules it lacks). */
  apply(): Promise<number> {
    return this.wasm.applyShared(this.services(), (s) => this.fetchModule(s as SharedService));
  }

  private fetchModule(s: SharedService): Promise<Uint8Array> {
    return fetchChunks(this.ns, s.sha256, s.chunks);
  }
}

/** How many chunks `bytes` take under modules/<sha256>/. */
export const chunkCount = (bytes: Uint8Array) => Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));

/** Write the chunks of content-addressed bytes (before the key that names them); a chunk already there is not sent again. */
export async function putChunks(ns: Namespace, sha256: string, bytes: Uint8Array): Promise<number> {
  const chunks = chunkCount(bytes);
  for (let i = 0; i < chunks; i++) {
    const key = moduleChunkKey(sha256, i);
    if ((await ns.get(key).exec()).kvs.length === 0) await ns.put(key).value(Buffer.from(bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES)));
  }
  return chunks;
}

/** Read content-addressed bytes back, checking their sha256. */
export async function fetchChunks(ns: Namespace, sha256: string, chunks: number): Promise<Uint8Array> {
  // One chunk per call: the whole could pass gRPC's 4 MiB message limit.
  const parts: Buffer[] = [];
  for (let i = 0; i < chunks; i++) {
    const chunk = await ns.get(moduleChunkKey(sha256, i)).buffer();
    if (!chunk) throw new Error(`content ${sha256}: chunk ${i} of ${chunks} is not in etcd`);
    parts.push(chunk);
  }
  const bytes = Buffer.concat(parts);
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== sha256) throw new Error(`chunks hash to ${sha}, not ${sha256}`);
  return bytes;
}
