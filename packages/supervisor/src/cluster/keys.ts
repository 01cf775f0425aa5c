/**
 * The key layout under /flexilib/NAME/v1/ (every value JSON, but module chunks):
 *
 *   state/servers/<pool>/<url>   {"pool","url","state":"added"|"removed"}   pool changes of POST/DELETE /servers
 *   state/health/<pool>/<url>    {"healthy","detail","at","by"}             verdicts of the elected checker
 *   state/services/<name>        a WASM service (StoredService + "chunks")  POST /services
 *   state/prefixes/<prefix>      {"service"}                                one service per prefix
 *   state/functions/<name>       a Lambda function (StoredFunction + "chunks")  CreateFunction, UpdateFunctionCode
 *   modules/<sha256>/<nnnn>      module or function zip bytes, 1 MiB chunks, content-addressed
 *   members/<id>                 one host, under its lease                  GET /cluster
 *   election/health/<lease>      the health checker's election (etcd's election recipe)
 *
 * `state/` is what every host lists, watches and applies; keys carry URL-encoded parts.
 */
export const enc = encodeURIComponent;

export const serverKey = (pool: string, url: string) => `servers/${pool}/${enc(url)}`;
export const healthKey = (pool: string, url: string) => `health/${pool}/${enc(url)}`;
export const serviceKey = (name: string) => `services/${name}`;
export const functionKey = (name: string) => `functions/${name}`;
export const prefixKey = (prefix: string) => `prefixes/${enc(prefix)}`;
export const moduleChunkKey = (sha256: string, i: number) => `modules/${sha256}/${String(i).padStart(4, '0')}`;
export const memberKey = (id: string) => `members/${enc(id)}`;

/** Chunks stay well under etcd's default request limit of 1.5 MiB. */
export const CHUNK_BYTES = 1024 * 1024;
