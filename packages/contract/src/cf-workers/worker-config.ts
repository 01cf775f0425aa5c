/**
 * `[worker.NAME]` sections of proxy.ini: a Cloudflare Worker that routes whose
 * value is `worker:NAME` run on workerd (the worker's cf-workers/ folder).
 *
 *   [worker.shop]
 *   module = workers/shop.mjs   ; the entry, relative to the config's folder; bundled as wrangler does
 *   vars.GREETING = hi          ; a text binding
 *   kv.CACHE = shop-cache       ; a KV namespace binding (the namespace's id), persisted under `state`
 *   cpu_ms = 50                 ; CPU time per request: beyond, Cloudflare's error 1102 and a recycled isolate
 *   memory = 128m               ; the isolate's JavaScript heap
 *   instances = 4               ; workerd processes per flexilib worker, one request at a time each
 *   idle = 60s                  ; an idle process stops (scale to zero)
 *   spare = 0                   ; processes kept started though idle, so a request after idle starts none
 *   compatibility_date = 2025-06-01
 *   compatibility_flags = nodejs_compat
 *   state = .flexilib/workers   ; where KV namespaces live (default: that folder beside the config)
 *
 * config.ts collects the section's lines; this file turns them into a
 * CfWorkerSpec, reporting each bad key or value with its line.
 */
import path from 'node:path';
import { sectionInteger } from '../section-integer.js';
import { parseSize } from '../size.js';
import { parseDuration } from '../duration.js';

export interface CfWorkerSpec {
  name: string;
  /** Line of the section header. */
  line: number;
  /** The entry module (or service-worker script), absolute. */
  module: string;
  vars: Record<string, string>;
  /** Binding name -> KV namespace id. */
  kv: Record<string, string>;
  cpuMs: number;
  memoryBytes: number;
  instances: number;
  idleMs: number;
  /** Processes kept started even when idle (0: true scale to zero). */
  spare: number;
  compatibilityDate: string;
  compatibilityFlags: string[];
  /** Folder of the persisted state (KV), absolute. */
  stateDir: string;
}

export interface CfWorkerSection {
  name: string;
  line: number;
  entries: Array<[string, string, number]>;
}

/**
 * Defaults: Cloudflare's standard CPU limit is 30 s, its isolate memory 128 MB.
 * The compatibility date is one the pinned workerd supports.
 */
export const DEFAULT_CF_WORKER = {
  cpuMs: 30_000,
  memoryBytes: 128 * 1024 * 1024,
  instances: 4,
  idleMs: 60_000,
  spare: 0,
  compatibilityDate: '2025-06-01',
} as const;

/** Worker names: what may follow `worker.` in a section and `worker:` in a route. */
export const CF_WORKER_NAME = /^[A-Za-z0-9_-]+$/;
/** Binding names are JavaScript identifiers. */
const BINDING = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const KEYS = ['module', 'vars.NAME', 'kv.NAME', 'cpu_ms', 'memory', 'instances', 'idle', 'spare', 'compatibility_date', 'compatibility_flags', 'state'];
const MAX_CPU_MS = 300_000;
const MAX_INSTANCES = 64;
const MAX_IDLE_MS = 86_400_000;

type ProblemSink = (line: number, message: string) => void;

export function parseCfWorkerSection(section: CfWorkerSection, baseDir: string, problem: ProblemSink): CfWorkerSpec | undefined {
  const where = `[worker.${section.name}]`;
  const spec: CfWorkerSpec = {
    name: section.name,
    line: section.line,
    module: '',
    vars: {},
    kv: {},
    cpuMs: DEFAULT_CF_WORKER.cpuMs,
    memoryBytes: DEFAULT_CF_WORKER.memoryBytes,
    instances: DEFAULT_CF_WORKER.instances,
    idleMs: DEFAULT_CF_WORKER.idleMs,
    spare: DEFAULT_CF_WORKER.spare,
    compatibilityDate: DEFAULT_CF_WORKER.compatibilityDate,
    compatibilityFlags: [],
    stateDir: path.join(baseDir, '.flexilib', 'workers'),
  };
  const bindings = new Map<string, number>();
  const binding = (kind: string, name: string, line: number): boolean => {
    if (!BINDING.test(name)) {
      problem(line, `${where} ${kind}.${name}: a binding name is a JavaScript identifier (letters, digits, "_", "$")`);
      return false;
    }
    const first = bindings.get(name);
    if (first !== undefined) {
      problem(line, `${where} binding "${name}" is defined twice (first at line ${first})`);
      return false;
    }
    bindings.set(name, line);
    return true;
  };
  const integer = (key: string, v: string, line: number, min: number, max: number) => sectionInteger(problem, where, key, v, line, min, max);

  for (const [key, v, line] of section.entries) {
    if (key.startsWith('vars.')) {
      if (binding('vars', key.slice(5), line)) spec.vars[key.slice(5)] = v;
      continue;
    }
    if (key.startsWith('kv.')) {
      if (!binding('kv', key.slice(3), line)) continue;
      if (v === '' || /[\s"\\]/.test(v)) problem(line, `${where} ${key} = "${v}": expected a namespace id (no spaces, quotes or backslashes)`);
      else spec.kv[key.slice(3)] = v;
      continue;
    }
    switch (key) {
      case 'module':
        if (v === '') problem(line, `${where} module is empty: expected the path of the Worker's entry file`);
        else spec.module = path.resolve(baseDir, v);
        break;
      case 'cpu_ms': {
        const n = integer(key, v, line, 1, MAX_CPU_MS);
        if (n !== undefined) spec.cpuMs = n;
        break;
      }
      case 'instances': {
        const n = integer(key, v, line, 1, MAX_INSTANCES);
        if (n !== undefined) spec.instances = n;
        break;
      }
      case 'spare': {
        const n = integer(key, v, line, 0, MAX_INSTANCES);
        if (n !== undefined) spec.spare = n;
        break;
      }
      case 'memory': {
        const n = parseSize(v);
        if (n === undefined || n < 16 * 1024 * 1024 || n > 4 * 1024 ** 3) problem(line, `${where} memory = "${v}": expected a size from 16m to 4g, such as 128m`);
        else spec.memoryBytes = n;
        break;
      }
      case 'idle': {
        const n = parseDuration(v);
        if (n === undefined || n < 1 || n > MAX_IDLE_MS) problem(line, `${where} idle = "${v}": expected a duration from 1ms to 24h, such as 500ms or 60s`);
        else spec.idleMs = n;
        break;
      }
      case 'compatibility_date':
        if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) problem(line, `${where} compatibility_date = "${v}": expected a date such as 2025-06-01`);
        else spec.compatibilityDate = v;
        break;
      case 'compatibility_flags': {
        const flags = v.split(',').map((x) => x.trim()).filter(Boolean);
        const bad = flags.find((f) => !/^[a-z0-9_]+$/.test(f));
        if (bad !== undefined) problem(line, `${where} compatibility_flags: "${bad}" is not a flag name (lower-case letters, digits and "_")`);
        else spec.compatibilityFlags = flags;
        break;
      }
      case 'state':
        if (v === '') problem(line, `${where} state is empty: expected a folder`);
        else spec.stateDir = path.resolve(baseDir, v);
        break;
      default:
        problem(line, `${where} unknown key "${key}" (known: ${KEYS.join(', ')})`);
    }
  }
  if (spec.spare > spec.instances) problem(section.line, `${where} spare = ${spec.spare} is more than instances = ${spec.instances}`);
  if (spec.module === '') {
    problem(section.line, `${where} has no module: add module = PATH (the Worker's entry file)`);
    return undefined;
  }
  return spec;
}
