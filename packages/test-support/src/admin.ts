/** JSON calls to flexilib's admin listener (the management API). */
import { request } from './http.js';

export interface AdminReply {
  status: number;
  /** The body parsed as JSON; the text itself when it is not JSON; undefined when empty. */
  json: any; // tests read whatever the API answered
}

/**
 * One call on a fresh connection. An object body is sent as JSON; a string
 * body is sent as it is (to test malformed JSON). `token` adds the bearer token.
 *
 * @example
 * const r = await admin(f.adminPort, 'POST', '/servers', { url, pool: 'api' }, token);
 * assert.equal(r.status, 201);
 */
export async function admin(adminPort: number, method: string, target: string, body?: unknown, token?: string): Promise<AdminReply> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  const r = await request(adminPort, target, { method, headers, body: payload });
  if (!r.body) return { status: r.status, json: undefined };
  try {
    return { status: r.status, json: JSON.parse(r.body) };
  } catch {
    return { status: r.status, json: r.body };
  }
}
