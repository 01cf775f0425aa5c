/**
 * The shape check at both ends of the supervisor<->worker channel: every
 * message kind of protocol.ts, field by field, before a handler trusts it. A
 * message that fails is logged by the receiver (with the problem this returns)
 * and dropped. Checked once per control message; nothing crosses per request.
 */
import type { FromWorker, ToWorker } from './protocol.js';

/** Returns what is wrong with `v` (naming the field under `at`), or undefined. */
type Check = (v: unknown, at: string) => string | undefined;

const str: Check = (v, at) => (typeof v === 'string' ? undefined : `${at} must be a string`);
const bool: Check = (v, at) => (typeof v === 'boolean' ? undefined : `${at} must be a boolean`);
const num: Check = (v, at) => (typeof v === 'number' && Number.isFinite(v) ? undefined : `${at} must be a finite number`);
const optional = (check: Check): Check => (v, at) => (v === undefined ? undefined : check(v, at));
const oneOf = (...values: string[]): Check => (v, at) =>
  values.includes(v as string) ? undefined : `${at} must be one of ${values.join(', ')}`;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const object = (fields: Record<string, Check>): Check => (v, at) => {
  if (!isObject(v)) return `${at} must be an object`;
  for (const [name, check] of Object.entries(fields)) {
    const problem = check(v[name], `${at}.${name}`);
    if (problem) return problem;
  }
  return undefined;
};

const arrayOf = (item: Check): Check => (v, at) => {
  if (!Array.isArray(v)) return `${at} must be an array`;
  for (let i = 0; i < v.length; i++) {
    const problem = item(v[i], `${at}[${i}]`);
    if (problem) return problem;
  }
  return undefined;
};

const anyObject: Check = (v, at) => (isObject(v) ? undefined : `${at} must be an object`);

/** A WASM route's or service's limits (contract/wasm/limits.ts): the ones set. */
const wasmLimits = object({ timeoutMs: optional(num), memoryBytes: optional(num), instances: optional(num), idleMs: optional(num), run: optional(oneOf('auto', 'loop', 'thread')) });
const quarantineNotice = object({ library: str, reason: str, retryAfterS: num });
const route = object({
  key: str,
  line: num,
  pathPrefix: str,
  header: optional(object({ name: str, valuePrefix: str })),
  segmentPrefix: optional(bool),
  target: object({ kind: oneOf('native', 'upstream', 'wasm', 'lambda', 'worker'), configured: str }),
  options: object({ mode: oneOf('inline', 'threaded'), threads: num, maxBodyBytes: optional(num), timeoutMs: optional(num), abi: optional(oneOf('v1', 'flexilib')), wasm: optional(wasmLimits) }),
});
const config = object({ file: str, routes: arrayOf(route), upstreams: arrayOf(object({ name: str })), lambdas: optional(arrayOf(object({ name: str, event: oneOf('v2', 'v1', 'raw') }))) });
const upstreamState = object({
  pools: arrayOf(object({ name: str, slot: num, settings: anyObject, origins: arrayOf(object({ url: str, healthy: bool, epoch: num, slot: num })) })),
});
const wasmService = object({ name: str, prefix: str, module: str, sha256: str, limits: wasmLimits });

const TO_WORKER: Record<ToWorker['type'], Record<string, Check>> = {
  config: { config, generation: num, quarantined: arrayOf(quarantineNotice), requestId: num },
  'reload-library': { file: str, lift: optional(bool), requestId: num },
  quarantine: { notice: quarantineNotice },
  listen: {},
  stop: {},
  'upstream-state': { state: upstreamState },
  'wasm-services': { services: arrayOf(wasmService), generation: num, requestId: num },
};

const FROM_WORKER: Record<FromWorker['type'], Record<string, Check>> = {
  hello: {},
  standby: {},
  listening: { port: num, address: str },
  'config-applied': { generation: num, requestId: num },
  'library-reloaded': { file: str, ok: bool, loaded: bool, error: optional(str), requestId: num },
  'upstream-failure': { pool: str, origin: str, epoch: num, code: str, message: str },
  'wasm-services-applied': { generation: num, requestId: num },
  retire: { reason: str },
};

function problemOf(kinds: Record<string, Record<string, Check>>, msg: unknown): string | undefined {
  if (!isObject(msg)) return 'the message is not an object';
  const type = msg.type;
  if (typeof type !== 'string') return 'the message has no string "type"';
  const fields = Object.hasOwn(kinds, type) ? kinds[type] : undefined;
  if (!fields) return `unknown message type "${type}"`;
  return object(fields)(msg, type);
}

/** What is wrong with a message a worker sent (e.g. `listening.port must be a finite number`), or undefined. */
export function fromWorkerProblem(msg: unknown): string | undefined {
  return problemOf(FROM_WORKER, msg);
}

/** What is wrong with a message the supervisor sent, or undefined. */
export function toWorkerProblem(msg: unknown): string | undefined {
  return problemOf(TO_WORKER, msg);
}

export function isFromWorker(msg: unknown): msg is FromWorker {
  return fromWorkerProblem(msg) === undefined;
}

export function isToWorker(msg: unknown): msg is ToWorker {
  return toWorkerProblem(msg) === undefined;
}
