/**
 * The workerd config (Cap'n Proto text) for one Worker generation: the user
 * Worker, its bindings, and — when it binds KV — workerd's own KV Worker
 * (`bundled = "/workerd/kv.js"`, SQLite-backed, on a writable disk folder
 * that every process and every restart shares).
 *
 * Requests reach the Worker on a loopback socket whose port workerd reports on
 * its control fd; `request.cf` arrives JSON-encoded in CF_HEADER, which workerd
 * strips. V8's old-space limit is the isolate's memory cap: past it workerd
 * aborts, which the pool reports as Cloudflare's error 1102.
 */
import type { CfWorkerSpec } from '@flexilib/contract';

/** Header carrying request.cf to workerd (cfBlobHeader): never seen by the Worker. */
export const CF_HEADER = 'x-flexilib-cf';
/** The bundled module's file name, beside the config. */
export const MODULE_FILE = 'worker.mjs';

/** A Cap'n Proto text literal (ini values hold no newlines; quotes and backslashes escaped). */
function text(v: string): string {
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\u0000-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}

export function capnpConfig(spec: CfWorkerSpec, serviceWorker: boolean): string {
  const bindings = [
    ...Object.entries(spec.vars).map(([name, value]) => `(name = ${text(name)}, text = ${text(value)})`),
    ...Object.entries(spec.kv).map(([name, ns]) => `(name = ${text(name)}, kvNamespace = (name = "kv", props = (json = ${text(JSON.stringify({ namespace: ns }))})))`),
  ];
  const source = serviceWorker
    ? `serviceWorkerScript = embed ${text(MODULE_FILE)}`
    : `modules = [(name = ${text(MODULE_FILE)}, esModule = embed ${text(MODULE_FILE)})]`;
  const flags = spec.compatibilityFlags.map(text).join(', ');
  const services = [
    `(name = "main", worker = (${source}, compatibilityDate = ${text(spec.compatibilityDate)}, compatibilityFlags = [${flags}], bindings = [${bindings.join(', ')}], globalOutbound = "outbound"))`,
    // Like wrangler dev: a Worker may fetch loopback and private addresses (local origins and services).
    `(name = "outbound", network = (allow = ["public", "private", "local"]))`,
  ];
  if (Object.keys(spec.kv).length > 0) {
    services.push(
      `(name = "kv", worker = (modules = [(name = "kv.js", bundled = "/workerd/kv.js")], compatibilityDate = "2024-04-03", ` +
        `durableObjectNamespaces = [(className = "KVNamespace", uniqueKey = "flexilib-kv", enableSql = true)], durableObjectStorage = (localDisk = "kv-disk"), ` +
        `bindings = [(name = "SHARD", durableObjectNamespace = "KVNamespace"), (name = "BLOBS", service = "kv-disk")]))`,
      `(name = "kv-disk", disk = (path = ${text(`${spec.stateDir}/kv`)}, writable = true))`,
    );
  }
  const heapMb = Math.max(16, Math.floor(spec.memoryBytes / (1024 * 1024)));
  return [
    'using Workerd = import "/workerd/workerd.capnp";',
    'const config :Workerd.Config = (',
    `  services = [\n    ${services.join(',\n    ')}\n  ],`,
    `  sockets = [(name = "http", address = "127.0.0.1:0", http = (cfBlobHeader = ${text(CF_HEADER)}), service = "main")],`,
    `  v8Flags = ["--max-old-space-size=${heapMb}"],`,
    ');',
    '',
  ].join('\n');
}
