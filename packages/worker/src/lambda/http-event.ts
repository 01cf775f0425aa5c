/**
 * An HTTP request as the event API Gateway hands a Lambda function:
 *
 * - v2: HTTP API / Function URL payload 2.0 — rawPath, rawQueryString,
 *   lower-cased headers with repeated ones comma-joined, `cookies` (and no
 *   cookie header), queryStringParameters comma-joined, requestContext.http;
 * - v1: REST API payload 1.0 — `headers` (last value) and `multiValueHeaders`,
 *   the same for the query, identity.sourceIp, body null when empty;
 * - raw: the request body itself (no event).
 *
 * Bodies are text when their content type is textual and they decode as
 * UTF-8; anything else is base64 with isBase64Encoded, as API Gateway does.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RouteSpec } from '@flexilib/contract';

const ACCOUNT = '123456789012';
const API_ID = 'flexilib';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const TEXTUAL = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql)|[^;]*\+(json|xml))/i;

/** API Gateway's requestTime: 05/Dec/2026:15:26:19 +0000. */
function clf(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function sourceIp(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '127.0.0.1';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function encodeBody(req: IncomingMessage, body: Buffer): { body: string; isBase64Encoded: boolean } {
  const type = req.headers['content-type'] ?? '';
  if (TEXTUAL.test(type)) {
    const text = body.toString('utf8');
    // A lossy decode (invalid UTF-8) would change the bytes: send those as base64.
    if (!text.includes('\uFFFD') || Buffer.byteLength(text) === body.length) return { body: text, isBase64Encoded: false };
  }
  return { body: body.toString('base64'), isBase64Encoded: true };
}

function splitQuery(raw: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (raw === '') return out;
  for (const [k, v] of new URLSearchParams(raw)) {
    const list = out.get(k);
    if (list) list.push(v);
    else out.set(k, [v]);
  }
  return out;
}

export function eventV2(req: IncomingMessage, body: Buffer, _route: RouteSpec): object {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQueryString = q < 0 ? '' : url.slice(q + 1);
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === 'cookie') {
      (cookies ??= []).push(...raw[i + 1].split(/;\s*/).filter(Boolean));
      continue;
    }
    headers[name] = headers[name] === undefined ? raw[i + 1] : `${headers[name]},${raw[i + 1]}`;
  }
  const now = new Date();
  const event: Record<string, unknown> = {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    ...(cookies ? { cookies } : {}),
    headers,
    requestContext: {
      accountId: ACCOUNT,
      apiId: API_ID,
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0],
      http: { method: req.method ?? 'GET', path: rawPath, protocol: `HTTP/${req.httpVersion}`, sourceIp: sourceIp(req), userAgent: headers['user-agent'] ?? '' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: clf(now),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
  const query = splitQuery(rawQueryString);
  if (query.size) event.queryStringParameters = Object.fromEntries([...query].map(([k, v]) => [k, v.join(',')]));
  if (body.length) Object.assign(event, encodeBody(req, body));
  return event;
}

export function eventV1(req: IncomingMessage, body: Buffer, route: RouteSpec): object {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const pathname = q < 0 ? url : url.slice(0, q);
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    headers[raw[i]] = raw[i + 1];
    (multiValueHeaders[raw[i]] ??= []).push(raw[i + 1]);
  }
  const query = splitQuery(q < 0 ? '' : url.slice(q + 1));
  const now = new Date();
  const method = req.method ?? 'GET';
  const resource = `${route.pathPrefix.replace(/\/$/, '')}/{proxy+}`;
  const requestContext = {
    accountId: ACCOUNT,
    apiId: API_ID,
    domainName: req.headers.host ?? 'localhost',
    domainPrefix: (req.headers.host ?? 'localhost').split('.')[0],
    extendedRequestId: randomUUID(),
    httpMethod: method,
    identity: { sourceIp: sourceIp(req), userAgent: req.headers['user-agent'] ?? null, accessKey: null, accountId: null, caller: null, user: null, userArn: null, cognitoIdentityId: null, cognitoIdentityPoolId: null, cognitoAuthenticationType: null, cognitoAuthenticationProvider: null },
    path: pathname,
    protocol: `HTTP/${req.httpVersion}`,
    requestId: randomUUID(),
    requestTime: clf(now),
    requestTimeEpoch: now.getTime(),
    resourceId: 'flexilib',
    resourcePath: resource,
    stage: '$default',
  };
  const proxy = pathname.startsWith(route.pathPrefix) ? pathname.slice(route.pathPrefix.length).replace(/^\//, '') : pathname;
  const encoded = body.length ? encodeBody(req, body) : { body: null, isBase64Encoded: false };
  return {
    version: '1.0',
    resource,
    path: pathname,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: query.size ? Object.fromEntries([...query].map(([k, v]) => [k, v[v.length - 1]])) : null,
    multiValueQueryStringParameters: query.size ? Object.fromEntries(query) : null,
    requestContext,
    pathParameters: { proxy },
    stageVariables: null,
    ...encoded,
  };
}
