/**
 * The etcd client of cluster mode (the etcd3 package), set up for fast
 * recovery rather than patience: a call that fails on one member is retried on
 * another (three attempts), no member is shunned for seconds after a failure
 * (a circuit breaker would delay the resync once etcd is back), and a broken
 * watch stream reconnects every half second.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Etcd3, Namespace } from 'etcd3';
import { FlexiError } from '@flexilib/contract';
import { clusterPrefix, type ClusterSettings } from './options.js';

/** Deadline of one unary call: past it, etcd counts as unreachable for that call. */
export const CALL_TIMEOUT_MS = 2000;

/** etcd3 (gRPC, protobufjs) costs the supervisor ~23 MiB, and its retry policies (cockatiel) ~1 MiB of heap: loaded only when --cluster is given. */
function loadEtcd3(): typeof import('etcd3') {
  return createRequire(import.meta.url)('etcd3') as typeof import('etcd3');
}
function loadCockatiel(): typeof import('cockatiel') {
  return createRequire(import.meta.url)('cockatiel') as typeof import('cockatiel');
}

export function connectEtcd(s: ClusterSettings): { client: Etcd3; ns: Namespace } {
  const { Etcd3, isRecoverableError } = loadEtcd3();
  const { ConstantBackoff, handleWhen, noop, retry } = loadCockatiel();
  const scheme = s.tls ? 'https' : 'http';
  let credentials;
  if (s.tls) {
    const read = (what: string, file: string) => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw new FlexiError('FLX_USAGE', `cluster ${what} ${file}: ${(err as Error).message}`);
      }
    };
    credentials = {
      rootCertificate: read('CA', s.tls.ca),
      ...(s.tls.cert && s.tls.key ? { certChain: read('certificate', s.tls.cert), privateKey: read('key', s.tls.key) } : {}),
    };
  }
  const client = new Etcd3({
    hosts: s.endpoints.map((e) => `${scheme}://${e}`),
    ...(credentials ? { credentials } : {}),
    ...(s.user && s.password ? { auth: { username: s.user, password: s.password, callOptions: { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) } } } : {}),
    dialTimeout: CALL_TIMEOUT_MS,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }),
    faultHandling: {
      host: () => noop,
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }),
      watchBackoff: new ConstantBackoff(500).next(),
    },
  });
  return { client, ns: client.namespace(clusterPrefix(s.name)) };
}

/** etcd's answer to a wrong user or password, or to a user without rights on the prefix. */
export function isAuthError(err: unknown): boolean {
  const name = (err as Error)?.name ?? '';
  const msg = (err as Error)?.message ?? '';
  return /Authentication|PermissionDenied|permission denied|invalid user ID or password|user name is empty/i.test(`${name} ${msg}`);
}
