/**
 * Runs conformance cases against any server speaking HTTP — the executor
 * behind it (native library, WASM module, ...) does not matter — and reports
 * every mismatch per case.
 */
import { bodyBytes, type ConformanceCase } from './cases.js';
import { rawRequest, type RawRequest, type RawResponse } from './raw-http.js';

export interface CaseResult {
  name: string;
  /** One line per difference; empty when the case passed. */
  mismatches: string[];
  /** What the server answered (absent when the request failed). */
  response?: RawResponse;
}

export interface ServerAddress {
  host: string;
  port: number;
}

/** The request a case sends: its headers exactly, plus Content-Length for a body. */
export function requestOf(c: ConformanceCase): RawRequest {
  const body = c.request.body === undefined ? Buffer.alloc(0) : bodyBytes(c.request.body);
  const headers = [...(c.request.headers ?? [])];
  if (c.request.body !== undefined && !headers.some(([n]) => n.toLowerCase() === 'content-length' || n.toLowerCase() === 'transfer-encoding')) {
    headers.push(['Content-Length', String(body.length)]);
  }
  return { method: c.request.method ?? 'GET', target: c.request.target ?? '/', headers, body };
}

function preview(b: Buffer, at: number): string {
  return JSON.stringify(b.subarray(at, at + 40).toString('latin1'));
}

/** Send one case and compare. A transport failure is reported as a mismatch. */
export async function runCase(server: ServerAddress, c: ConformanceCase): Promise<CaseResult> {
  const mismatches: string[] = [];
  let res;
  try {
    res = await rawRequest(server.host, server.port, requestOf(c));
  } catch (err) {
    return { name: c.name, mismatches: [`request failed: ${(err as Error).message}`] };
  }
  if (res.status !== c.expect.status) mismatches.push(`status: expected ${c.expect.status}, got ${res.status}`);
  for (const [name, want] of Object.entries(c.expect.headers ?? {})) {
    const got = res.headers.get(name.toLowerCase());
    if (want === null) {
      if (got !== undefined) mismatches.push(`header ${name}: expected absent, got ${JSON.stringify(got)}`);
    } else if (got !== want) {
      mismatches.push(`header ${name}: expected ${JSON.stringify(want)}, got ${got === undefined ? 'absent' : JSON.stringify(got)}`);
    }
  }
  if (c.expect.body !== undefined) {
    const want = bodyBytes(c.expect.body);
    if (!want.equals(res.body)) {
      let at = 0;
      while (at < want.length && at < res.body.length && want[at] === res.body[at]) at++;
      mismatches.push(`body: expected ${want.length} bytes, got ${res.body.length}; first difference at byte ${at}: expected ${preview(want, at)}, got ${preview(res.body, at)}`);
    }
  }
  return { name: c.name, mismatches, response: res };
}

/** Run cases one after another (some plugins sleep; order keeps results readable). */
export async function runCases(server: ServerAddress, cases: ConformanceCase[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) results.push(await runCase(server, c));
  return results;
}
