/**
 * What wrk sends a target: the request, as bytes. The harness's conformance
 * probe sends exactly these bytes (bench/test/harness.test.ts captures what
 * wrk really sends and compares), so the answer checked is the answer measured.
 *
 *   get       GET /, Host only: the C example answers " 1" (its header count)
 *   post-1k   POST /echo with a 1 KiB body: the C example answers "POST /echo\n" and the body
 *   post-64k  the same with 64 KiB
 */

export type WorkloadId = 'get' | 'post-1k' | 'post-64k';

export interface Workload {
  id: WorkloadId;
  method: 'GET' | 'POST';
  path: string;
  /** Request body length; 0 for none (no Content-Length header either). */
  bodyBytes: number;
  /** For tables and the doc. */
  text: string;
}

export const WORKLOADS: Record<WorkloadId, Workload> = {
  get: { id: 'get', method: 'GET', path: '/', bodyBytes: 0, text: 'GET /' },
  'post-1k': { id: 'post-1k', method: 'POST', path: '/echo', bodyBytes: 1024, text: 'POST /echo, 1 KiB body' },
  'post-64k': { id: 'post-64k', method: 'POST', path: '/echo', bodyBytes: 64 * 1024, text: 'POST /echo, 64 KiB body' },
};

/** The body's pattern, repeated and cut to length; lib/wrk-report.lua builds the same. */
export const BODY_PATTERN = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_';

export function workloadBody(bytes: number): string {
  return BODY_PATTERN.repeat(Math.ceil(bytes / BODY_PATTERN.length)).slice(0, bytes);
}

/**
 * The bytes wrk sends for the workload: the request line and Host (wrk.lua's
 * wrk.format), and with a body Content-Length and the body (formatted by
 * wrk-report.lua in this order).
 */
export function wrkRequest(port: number, w: Workload = WORKLOADS.get): string {
  const head = `${w.method} ${w.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`;
  if (w.bodyBytes === 0) return `${head}\r\n`;
  return `${head}Content-Length: ${w.bodyBytes}\r\n\r\n${workloadBody(w.bodyBytes)}`;
}
