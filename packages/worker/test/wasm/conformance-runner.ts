/**
 * Runs a conformance table (the JSON case format of
 * packages/plugin-abi/conformance/*.json) against a running server, so the
 * same cases judge every executor kind: the .so and the .wasm built from one
 * C source must answer each case identically.
 *
 *   { "name": "...",
 *     "request": { "method"?, "target"?, "headers": [[name, value], ...], "body"?: BODY },
 *     "expect":  { "status", "headers"?: { lower-case name: value }, "body"?: BODY } }
 *   BODY := "text" | { "repeat": "text", "count": N } | [BODY, ...]
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rawRequest, type RawResponse } from '@flexilib/test-support';

type BodySpec = string | { repeat: string; count: number } | BodySpec[];

export interface ConformanceCase {
  name: string;
  request: { method?: string; target?: string; headers?: Array<[string, string]>; body?: BodySpec };
  expect: { status: number; headers?: Record<string, string>; body?: BodySpec };
}

export function loadCases(file: string): ConformanceCase[] {
  const cases = JSON.parse(readFileSync(file, 'utf8')) as ConformanceCase[];
  assert.ok(Array.isArray(cases) && cases.length > 0, `${file}: expected a non-empty array of cases`);
  return cases;
}

export function bodyOf(spec: BodySpec): Buffer {
  if (typeof spec === 'string') return Buffer.from(spec, 'latin1');
  if (Array.isArray(spec)) return Buffer.concat(spec.map(bodyOf));
  return Buffer.from(spec.repeat.repeat(spec.count), 'latin1');
}

/** Send one case; `prefix` is prepended to its target (a service mounted at a prefix). */
export async function runCase(port: number, c: ConformanceCase, prefix = ''): Promise<RawResponse> {
  const res = await rawRequest(port, {
    method: c.request.method,
    target: prefix + (c.request.target ?? '/'),
    headers: c.request.headers,
    body: c.request.body === undefined ? undefined : bodyOf(c.request.body),
  });
  assert.equal(res.status, c.expect.status, `${c.name}: status (body: ${res.body.toString('latin1').slice(0, 200)})`);
  for (const [k, v] of Object.entries(c.expect.headers ?? {})) {
    assert.equal(res.headers[k.toLowerCase()], v, `${c.name}: header ${k}`);
  }
  if (c.expect.body !== undefined) {
    const want = bodyOf(c.expect.body);
    assert.ok(res.body.equals(want), `${c.name}: body ${JSON.stringify(res.body.toString('latin1').slice(0, 120))} (${res.body.length} bytes), expected ${JSON.stringify(want.toString('latin1').slice(0, 120))} (${want.length} bytes)`);
  }
  return res;
}
