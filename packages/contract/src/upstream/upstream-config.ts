/**
 * `[upstream.NAME]` sections of proxy.ini: a pool of origin servers that routes
 * whose value is `upstream:NAME` proxy to.
 *
 *   [upstream.api]
 *   servers = http://127.0.0.1:9001, http://127.0.0.1:9002
 *   balance = round-robin        ; or least-conn
 *   health_path = /health        ; Weldr's defaults: /, every 30 s,
 *   health_interval = 30s        ; 3 failures down, 2 successes up
 *   fall = 3
 *   rise = 2
 *
 * config.ts collects the section's lines; this file turns them into an
 * UpstreamSpec, reporting each bad value or unknown key with its line.
 * The origin-URL and duration parsers are shared with the supervisor's
 * management API, so both accept exactly the same inputs.
 */

import { sectionInteger } from '../section-integer.js';
import { parseDuration } from '../duration.js';

export type Balance = 'round-robin' | 'least-conn';

/** How a pool balances, checks and times out; everything of a pool but its servers. */
export interface UpstreamSettings {
  balance: Balance;
  /** Path (and query) of the active health check; a 2xx answer counts as a success. */
  healthPath: string;
  healthIntervalMs: number;
  /** How long one health check may take before it counts as a failure. */
  healthTimeoutMs: number;
  /** Consecutive failures (active checks and passive connection errors) that mark an origin down. */
  fall: number;
  /** Consecutive successful checks that bring a down origin back. */
  rise: number;
  /** Time to establish a TCP (and TLS) connection to an origin; 504 beyond it. */
  connectTimeoutMs: number;
  /** Time from sending the request to receiving the complete response headers; 504 beyond it. */
  headerTimeoutMs: number;
  /** Longest silence between two chunks of the response body; the response is cut beyond it. */
  idleTimeoutMs: number;
  /** Other origins an idempotent request (GET/HEAD without body) may be retried on after a connection failure. */
  retries: number;
  /** Connections per origin per worker; 0 = no limit (requests never wait for a free connection). */
  maxConnections: number;
}

export interface UpstreamSpec {
  name: string;
  /** Line of the section header. */
  line: number;
  /** Origins from `servers`, normalised by parseOrigin (scheme://host:port). */
  servers: string[];
  settings: UpstreamSettings;
}

export const DEFAULT_UPSTREAM_SETTINGS: UpstreamSettings = {
  balance: 'round-robin',
  healthPath: '/',
  healthIntervalMs: 30_000,
  healthTimeoutMs: 5_000,
  fall: 3,
  rise: 2,
  connectTimeoutMs: 5_000,
  headerTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  retries: 2,
  maxConnections: 0,
};

export const UPSTREAM_KEYS = [
  'servers', 'balance', 'health_path', 'health_interval', 'health_timeout', 'fall', 'rise',
  'connect_timeout', 'header_timeout', 'idle_timeout', 'retries', 'max_connections',
] as const;

/** Pool names: what may follow `upstream.` in a section and `upstream:` in a route. */
export const POOL_NAME = /^[A-Za-z0-9_-]+$/;

/** An origin server, parsed. `url` is the canonical form used as its identity everywhere. */
export interface OriginAddress {
  /** scheme://host:port, the port always explicit. */
  url: string;
  protocol: 'http:' | 'https:';
  /** Host name or IP as written, without IPv6 brackets. */
  host: string;
  port: number;
}

/**
 * Parse an origin such as `http://127.0.0.1:9001` (a trailing `/` is fine).
 * Returns a one-line reason instead when it is not an http(s) origin.
 */
export function parseOrigin(text: string): OriginAddress | { error: string } {
  // The text is echoed in errors: cut, so a huge value does not make a huge answer.
  const shown = text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}...` : text;
  if (text.length > MAX_ORIGIN_TEXT) return { error: `"${shown}" is ${text.length} characters long: an origin is at most ${MAX_ORIGIN_TEXT}` };
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    return { error: `"${shown}" is not a URL: expected http://host:port` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: `"${shown}" is not an http(s) URL: expected http://host:port or https://host:port` };
  if (u.username || u.password) return { error: `"${shown}" carries credentials: expected http://host:port` };
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) return { error: `"${shown}" has a path, query or fragment: an origin is only scheme://host:port` };
  if (u.hostname === '') return { error: `"${shown}" has no host` };
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  // DNS: a name is at most 253 characters, each label at most 63.
  if (host.length > 253 || (!host.includes(':') && host.split('.').some((label) => label.length > 63))) {
    return { error: `"${shown}": the host name is longer than DNS allows (253 characters, 63 per label)` };
  }
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  if (port === 0) return { error: `"${shown}": port 0 is not a port an origin listens on (expected 1 to 65535)` };
  return { url: `${u.protocol}//${u.hostname}:${port}`, protocol: u.protocol, host, port };
}

const MAX_SHOWN = 100;
const MAX_ORIGIN_TEXT = 512;

export type ProblemSink = (line: number, message: string) => void;

/** The lines of one `[upstream.NAME]` section, as config.ts collected them. */
export interface UpstreamSection {
  name: string;
  line: number;
  entries: Array<[key: string, value: string, line: number]>;
}

const MAX_DURATION_MS = 3_600_000;

/** Turn one section into a spec; every problem goes to `problem` with its line. */
export function parseUpstreamSection(section: UpstreamSection, problem: ProblemSink): UpstreamSpec {
  const s: UpstreamSettings = { ...DEFAULT_UPSTREAM_SETTINGS };
  const servers: string[] = [];
  const seen = new Map<string, number>();
  let healthTimeoutSet = false;
  const where = `[upstream.${section.name}]`;

  const duration = (key: string, v: string, line: number, min: number): number | undefined => {
    const n = parseDuration(v, 's');
    if (n === undefined || n < min || n > MAX_DURATION_MS) {
      problem(line, `${where} ${key} = "${v}": expected a duration from ${min}ms to 1h such as 500ms, 5s or 2m`);
      return undefined;
    }
    return n;
  };
  const integer = (key: string, v: string, line: number, min: number, max: number) => sectionInteger(problem, where, key, v, line, min, max);

  for (const [key, value, line] of section.entries) {
    switch (key) {
      case 'servers': {
        for (const item of value.split(',').map((x) => x.trim()).filter(Boolean)) {
          const o = parseOrigin(item);
          if ('error' in o) {
            problem(line, `${where} servers: ${o.error}`);
            continue;
          }
          const first = seen.get(o.url);
          if (first !== undefined) {
            problem(line, `${where} servers: ${o.url} is listed twice (first at line ${first})`);
            continue;
          }
          seen.set(o.url, line);
          servers.push(o.url);
        }
        break;
      }
      case 'balance':
        if (value !== 'round-robin' && value !== 'least-conn') problem(line, `${where} balance = "${value}": expected round-robin or least-conn`);
        else s.balance = value;
        break;
      case 'health_path':
        if (!value.startsWith('/') || /\s/.test(value)) problem(line, `${where} health_path = "${value}": expected a path starting with "/"`);
        else s.healthPath = value;
        break;
      case 'health_interval':
        s.healthIntervalMs = duration(key, value, line, 50) ?? s.healthIntervalMs;
        break;
      case 'health_timeout':
        s.healthTimeoutMs = duration(key, value, line, 10) ?? s.healthTimeoutMs;
        healthTimeoutSet = true;
        break;
      case 'fall':
        s.fall = integer(key, value, line, 1, 100) ?? s.fall;
        break;
      case 'rise':
        s.rise = integer(key, value, line, 1, 100) ?? s.rise;
        break;
      case 'connect_timeout':
        s.connectTimeoutMs = duration(key, value, line, 10) ?? s.connectTimeoutMs;
        break;
      case 'header_timeout':
        s.headerTimeoutMs = duration(key, value, line, 10) ?? s.headerTimeoutMs;
        break;
      case 'idle_timeout':
        s.idleTimeoutMs = duration(key, value, line, 10) ?? s.idleTimeoutMs;
        break;
      case 'retries':
        s.retries = integer(key, value, line, 0, 10) ?? s.retries;
        break;
      case 'max_connections':
        s.maxConnections = integer(key, value, line, 0, 100_000) ?? s.maxConnections;
        break;
      default:
        problem(line, `${where}: unknown key "${key}" (known: ${UPSTREAM_KEYS.join(', ')})`);
    }
  }
  // A check slower than the interval would overlap the next one: cap the default.
  if (!healthTimeoutSet) s.healthTimeoutMs = Math.min(s.healthTimeoutMs, s.healthIntervalMs);
  return { name: section.name, line: section.line, servers, settings: s };
}
