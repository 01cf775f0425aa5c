/**
 * Functions created through the Lambda API, in the cluster. Create and
 * UpdateFunctionCode write the zip's chunks first (content-addressed under
 * `modules/<sha256>/`, as WASM modules are), then one transaction that names
 * them in `state/functions/<name>` (Create: only if the name is free, else
 * ResourceConflictException; Update: only if it still exists). Every host,
 * the writer included, applies the set from the watch: a host that lacks a
 * package fetches its chunks and checks their sha256 before serving it.
 */
import type { Namespace } from 'etcd3';
import { AwsError, type FunctionSharing, type LambdaApi } from '../lambda/lambda-api.js';
import type { StoredFunction } from '../lambda/function-store.js';
import { functionKey, moduleChunkKey } from './keys.js';
import { chunkCount, fetchChunks, putChunks } from './service-sharing.js';
import type { SharedStore } from './shared-store.js';
import { APPLY_TIMEOUT_MS, writing } from './upstream-sharing.js';

/** A function as shared: the stored record plus how many chunks its zip has. */
export type SharedFunction = StoredFunction & { chunks: number };

function unreachable(): AwsError {
  return new AwsError(503, 'ServiceException', 'etcd is unreachable: functions of the cluster cannot change now (invocations keep the last state); retry later', { 'retry-after': '5' });
}

const notFound = (name: string) => new AwsError(404, 'ResourceNotFoundException', `Function not found: ${name}`);

export class FunctionClusterSharing implements FunctionSharing {
  constructor(private readonly ns: Namespace, private readonly store: SharedStore, private readonly api: LambdaApi) {}

  async put(f: StoredFunction, zip: Uint8Array, mode: 'create' | 'update'): Promise<void> {
    const old = this.sharedSha(f.FunctionName);
    await this.mutate(async () => {
      const chunks = await putChunks(this.ns, f.sha256, zip);
      const key = `state/${functionKey(f.FunctionName)}`;
      let txn = mode === 'create' ? this.ns.if(key, 'Create', '==', 0) : this.ns.if(key, 'Version', '>', 0);
      for (let i = 0; i < chunks; i++) txn = txn.and(moduleChunkKey(f.sha256, i), 'Version', '>', 0);
      const res = await txn.then(this.ns.put(key).value(JSON.stringify({ ...f, chunks } satisfies SharedFunction))).else(this.ns.get(key)).commit();
      if (!res.succeeded) {
        const exists = res.responses[0].response_range.kvs.length > 0;
        if (mode === 'create' && exists) throw new AwsError(409, 'ResourceConflictException', `Function already exist: ${f.FunctionName}`);
        if (mode === 'update' && !exists) throw notFound(f.FunctionName);
        throw new AwsError(409, 'ResourceConflictException', `the code chunks of ${f.FunctionName} (${f.sha256}) were removed meanwhile: retry`);
      }
      return Number(res.header.revision);
    });
    if (old && old !== f.sha256) await this.dropUnused(old);
  }

  async remove(name: string): Promise<void> {
    const old = this.sharedSha(name);
    await this.mutate(async () => {
      const key = `state/${functionKey(name)}`;
      const res = await this.ns.if(key, 'Version', '>', 0).then(this.ns.delete().key(key)).commit();
      if (!res.succeeded) throw notFound(name);
      return Number(res.header.revision);
    });
    if (old) await this.dropUnused(old);
  }

  private sharedSha(name: string): string | undefined {
    const raw = this.store.get(functionKey(name));
    return raw ? (JSON.parse(raw) as SharedFunction).sha256 : undefined;
  }

  functions(): SharedFunction[] {
    return this.store.entries('functions/').map(([, v]) => JSON.parse(v) as SharedFunction);
  }

  /** Apply the shared set on this host (fetching packages it lacks); chunks no function names any more go. */
  async apply(): Promise<void> {
    const shared = this.functions();
    await this.api.applyShared(shared, (f) => fetchChunks(this.ns, f.sha256, (f as SharedFunction).chunks));
  }

  /** Drop the chunks of a package no shared function names (best effort: a later Create of the same zip writes them again). */
  private async dropUnused(sha256: string): Promise<void> {
    if (!this.functions().some((f) => f.sha256 === sha256)) await this.ns.delete().prefix(`modules/${sha256}/`).exec().catch(() => undefined);
  }

  private async mutate(write: () => Promise<number>): Promise<void> {
    if (this.store.status !== 'ok') throw unreachable();
    const revision = await writing(write, unreachable, (err) => err instanceof AwsError);
    await this.store.waitApplied(revision, APPLY_TIMEOUT_MS);
  }
}
