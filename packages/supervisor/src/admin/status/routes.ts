/**
 * GET / (the status page) and GET /status (its JSON) on the admin listener.
 * Both only read, like /metrics: no token is asked for, so the page works
 * wherever the listener is reachable; the token rule still guards every
 * mutating endpoint (admin-server.ts).
 */
import type { AdminServer } from '../admin-server.js';
import type { StatusCollector } from './collector.js';
import { STATUS_PAGE } from './page.js';

export function registerStatusRoutes(admin: AdminServer, status: StatusCollector): void {
  admin.route('GET', '/', () => ({ text: STATUS_PAGE.html, contentType: 'text/html; charset=utf-8', headers: STATUS_PAGE.headers }));
  admin.route('GET', '/status', () => ({ json: status.snapshot(), headers: { 'cache-control': 'no-store' } }));
}
