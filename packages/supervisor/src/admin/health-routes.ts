/** GET /healthz (the process is up) and GET /readyz (config loaded, every worker listening). */
import type { AdminServer } from './admin-server.js';

export function registerHealthRoutes(admin: AdminServer, readiness: () => { ready: boolean; reason?: string; workers: number; listening: number; cluster?: unknown }): void {
  admin.route('GET', '/healthz', () => ({ json: { status: 'ok', pid: process.pid } }));
  admin.route('GET', '/readyz', () => {
    const r = readiness();
    return { status: r.ready ? 200 : 503, json: { status: r.ready ? 'ready' : 'not ready', ...r } };
  });
}
