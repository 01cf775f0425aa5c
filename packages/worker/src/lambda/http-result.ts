/**
 * A Lambda function's result as the HTTP answer API Gateway makes of it.
 *
 * - An object with `statusCode`: that status, `headers` (and v1's
 *   `multiValueHeaders`), v2's `cookies` as set-cookie headers, `body`
 *   decoded from base64 when `isBase64Encoded`.
 * - v2, anything else that is valid JSON: 200 application/json with the
 *   payload as the body (AWS's "JSON without statusCode" rule).
 * - v1 without statusCode: API Gateway's 502 "Malformed Lambda proxy response".
 * - raw: 200 with the payload and the content type the runtime posted.
 */
import type { LambdaEvent } from '@flexilib/contract';

export interface HttpAnswer {
  status: number;
  /** Flat [name, value, ...]. */
  headers: string[];
  body: Buffer;
}

/** The result cannot be mapped: the reason, for the log and the 502. */
export class BadResult extends Error {}

const JSON_TYPE = 'application/json';

export function httpAnswer(event: LambdaEvent, payload: Buffer, contentType: string): HttpAnswer {
  if (event === 'raw') return { status: 200, headers: ['content-type', contentType], body: payload };
  let result: unknown;
  try {
    result = JSON.parse(payload.toString('utf8'));
  } catch {
    if (event === 'v1') throw new BadResult('the function returned a payload that is not JSON');
    return { status: 200, headers: ['content-type', contentType || JSON_TYPE], body: payload };
  }
  if (typeof result !== 'object' || result === null || Array.isArray(result) || !('statusCode' in result)) {
    if (event === 'v1') throw new BadResult('Malformed Lambda proxy response: the result has no statusCode');
    return { status: 200, headers: ['content-type', JSON_TYPE], body: payload };
  }
  const r = result as { statusCode: unknown; headers?: unknown; multiValueHeaders?: unknown; cookies?: unknown; body?: unknown; isBase64Encoded?: unknown };
  const status = Number(r.statusCode);
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new BadResult(`statusCode ${JSON.stringify(r.statusCode)} is not an HTTP status`);
  const headers: string[] = [];
  const seen = new Set<string>();
  if (r.multiValueHeaders && typeof r.multiValueHeaders === 'object') {
    for (const [name, values] of Object.entries(r.multiValueHeaders as Record<string, unknown>)) {
      if (!Array.isArray(values)) continue;
      seen.add(name.toLowerCase());
      for (const v of values) headers.push(name, String(v));
    }
  }
  if (r.headers && typeof r.headers === 'object') {
    for (const [name, v] of Object.entries(r.headers as Record<string, unknown>)) {
      if (!seen.has(name.toLowerCase()) && v !== undefined && v !== null) headers.push(name, String(v));
    }
  }
  if (event === 'v2' && Array.isArray(r.cookies)) for (const c of r.cookies) headers.push('set-cookie', String(c));
  let body: Buffer;
  if (r.body === undefined || r.body === null) body = Buffer.alloc(0);
  else if (typeof r.body !== 'string') throw new BadResult('body must be a string');
  else body = r.isBase64Encoded === true ? Buffer.from(r.body, 'base64') : Buffer.from(r.body, 'utf8');
  if (event === 'v2' && !headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-type') && body.length) headers.push('content-type', JSON_TYPE);
  return { status, headers, body };
}
