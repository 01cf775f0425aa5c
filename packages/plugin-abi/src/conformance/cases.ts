/**
 * A conformance case: one HTTP request and the response it must get. Cases
 * live in JSON files (one array of cases) so that a plugin author writing C,
 * Zig or Rust can keep a table beside their plugin; see docs/plugins.md.
 *
 *   {
 *     "name": "x-status sets the status",
 *     "request": { "method": "GET", "target": "/", "headers": [["Host", "localhost"], ["x-status", "404"]] },
 *     "expect": { "status": 404, "headers": { "x-custom-foo": "bar" }, "body": " 2" }
 *   }
 *
 * The request carries exactly the listed headers (plus Content-Length when
 * there is a body and none is listed), so header-counting plugins can be
 * tested. Bodies are a string, {"repeat": S, "count": N}, or an array of those
 * concatenated. Expected headers match names case-insensitively; null means
 * "must be absent".
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type BodySpec = string | { repeat: string; count: number } | BodySpec[];

export interface ConformanceCase {
  name: string;
  request: {
    method?: string;
    target?: string;
    headers?: Array<[string, string]>;
    body?: BodySpec;
  };
  expect: {
    status: number;
    headers?: Record<string, string | null>;
    body?: BodySpec;
  };
}

/** The table every example plugin (C, Zig, Rust) must pass. */
export const exampleCasesFile: string = fileURLToPath(new URL('../../conformance/example-cases.json', import.meta.url));

/** Build the bytes a BodySpec describes. */
export function bodyBytes(spec: BodySpec): Buffer {
  if (typeof spec === 'string') return Buffer.from(spec);
  if (Array.isArray(spec)) return Buffer.concat(spec.map(bodyBytes));
  return Buffer.from(spec.repeat.repeat(spec.count));
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function checkBody(spec: unknown, where: string): void {
  if (typeof spec === 'string') return;
  if (Array.isArray(spec)) {
    spec.forEach((s, i) => checkBody(s, `${where}[${i}]`));
    return;
  }
  const o = spec as { repeat?: unknown; count?: unknown } | null;
  if (o && typeof o === 'object' && typeof o.repeat === 'string' && Number.isInteger(o.count) && (o.count as number) >= 0) return;
  throw new Error(`${where}: expected a string, {"repeat": string, "count": integer} or an array of those`);
}

/** Check parsed JSON against the case schema; errors name the case and field. */
export function validateCases(data: unknown, source: string): ConformanceCase[] {
  if (!Array.isArray(data)) throw new Error(`${source}: expected a JSON array of cases`);
  const names = new Set<string>();
  data.forEach((c: ConformanceCase, i) => {
    const at = `${source}: case ${i}${c && typeof c.name === 'string' ? ` ("${c.name}")` : ''}`;
    if (!c || typeof c !== 'object') throw new Error(`${at}: expected an object`);
    if (typeof c.name !== 'string' || c.name === '') throw new Error(`${at}: "name" must be a non-empty string`);
    if (names.has(c.name)) throw new Error(`${at}: duplicate name`);
    names.add(c.name);
    const r = c.request;
    if (!r || typeof r !== 'object') throw new Error(`${at}: "request" must be an object`);
    if (r.method !== undefined && (typeof r.method !== 'string' || !TOKEN.test(r.method))) throw new Error(`${at}: request.method must be an HTTP method token`);
    if (r.target !== undefined && (typeof r.target !== 'string' || !r.target.startsWith('/') || /[\s\x00-\x1f]/.test(r.target))) {
      throw new Error(`${at}: request.target must start with "/" and hold no spaces`);
    }
    if (r.headers !== undefined) {
      if (!Array.isArray(r.headers)) throw new Error(`${at}: request.headers must be an array of [name, value]`);
      r.headers.forEach((h, j) => {
        if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || !TOKEN.test(h[0]) || typeof h[1] !== 'string' || /[\r\n]/.test(h[1])) {
          throw new Error(`${at}: request.headers[${j}] must be [name, value] with a valid header name and a one-line value`);
        }
      });
    }
    if (r.body !== undefined) checkBody(r.body, `${at}: request.body`);
    const e = c.expect;
    if (!e || typeof e !== 'object') throw new Error(`${at}: "expect" must be an object`);
    if (!Number.isInteger(e.status) || e.status < 100 || e.status > 999) throw new Error(`${at}: expect.status must be an HTTP status code`);
    if (e.headers !== undefined) {
      if (typeof e.headers !== 'object' || e.headers === null || Array.isArray(e.headers)) throw new Error(`${at}: expect.headers must be an object of name: value (or null)`);
      for (const [k, v] of Object.entries(e.headers)) {
        if (v !== null && typeof v !== 'string') throw new Error(`${at}: expect.headers["${k}"] must be a string or null`);
      }
    }
    if (e.body !== undefined) checkBody(e.body, `${at}: expect.body`);
  });
  return data as ConformanceCase[];
}

/** Read and validate a case table. */
export function loadCases(file: string): ConformanceCase[] {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read conformance cases ${file}: ${(err as Error).message}`);
  }
  return validateCases(data, file);
}
