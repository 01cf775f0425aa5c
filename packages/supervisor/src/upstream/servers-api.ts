/**
 * The management API of upstream pools, in Weldr's shape, on the admin listener:
 *
 *   POST   /servers             {"url": "http://host:port", "pool": "api"}   add an origin
 *   DELETE /servers/:ip/:port   [?pool=api]                                  remove it (in-flight requests finish)
 *   GET    /servers                                                          pools, origins, health
 *   GET    /stats                                                            client and server success/failure counts
 *   GET    /stats/detail                                                     the same per origin
 *
 * Mutations persist to the state file before they take effect, and reach every
 * worker at once. Bad input answers 400 with a code, a reason and the field.
 */
import { FlexiError, parseOrigin, type CountPair } from '@flexilib/contract';
import type { AdminServer } from '../admin/admin-server.js';
import type { OriginRecord } from './pool-registry.js';
import type { UpstreamService } from './upstream-service.js';

const POST_FIELDS = ['url', 'pool'];

function serverJson(o: OriginRecord) {
  return {
    id: `${o.pool}/${o.host}:${o.port}`,
    pool: o.pool,
    url: o.url,
    ip: o.host,
    port: o.port,
    healthy: o.healthy,
    source: o.source,
    consecutiveFailures: o.failures,
    consecutiveSuccesses: o.successes,
    lastCheck: o.lastCheck ?? null,
    lastChange: o.lastChange,
  };
}

export function registerServersApi(admin: AdminServer, svc: UpstreamService): void {
  const pools = () => svc.registry.all();

  admin.route('GET', '/servers', () => ({
    json: {
      pools: pools().map((p) => ({
        name: p.name,
        balance: p.settings.balance,
        health: { path: p.settings.healthPath, intervalMs: p.settings.healthIntervalMs, timeoutMs: p.settings.healthTimeoutMs, fall: p.settings.fall, rise: p.settings.rise },
        servers: [...p.origins.values()].map(serverJson),
      })),
    },
  }));

  admin.route(
    'POST',
    '/servers',
    async (req) => {
      const body = await req.json();
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new FlexiError('FLX_UPSTREAM_BAD_REQUEST', 'expected a JSON object such as {"url": "http://127.0.0.1:9001", "pool": "api"}', { field: 'body' });
      }
      const b = body as Record<string, unknown>;
      for (const k of Object.keys(b)) {
        if (!POST_FIELDS.includes(k)) throw new FlexiError('FLX_UPSTREAM_BAD_REQUEST', `unknown field "${k}" (known: ${POST_FIELDS.join(', ')})`, { field: k });
      }
      if (typeof b.url !== 'string' || b.url === '') throw new FlexiError('FLX_UPSTREAM_BAD_URL', '"url" is required: a string such as "http://127.0.0.1:9001"', { field: 'url' });
      const origin = parseOrigin(b.url);
      if ('error' in origin) throw new FlexiError('FLX_UPSTREAM_BAD_URL', origin.error, { field: 'url' });
      let poolName: string;
      if (b.pool === undefined) {
        const all = pools();
        if (all.length !== 1) {
          throw new FlexiError('FLX_UPSTREAM_UNKNOWN_POOL', `"pool" is required when the config has ${all.length === 0 ? 'no' : all.length} pools (${all.map((p) => p.name).join(', ') || 'none'})`, { field: 'pool' });
        }
        poolName = all[0].name;
      } else if (typeof b.pool !== 'string') {
        throw new FlexiError('FLX_UPSTREAM_UNKNOWN_POOL', '"pool" must be a string naming an [upstream.NAME] section', { field: 'pool' });
      } else {
        poolName = b.pool;
      }
      const pool = svc.registry.get(poolName);
      if (!pool) {
        throw new FlexiError('FLX_UPSTREAM_UNKNOWN_POOL', `unknown pool "${poolName}" (configured: ${pools().map((p) => p.name).join(', ') || 'none'})`, { field: 'pool' });
      }
      const { created, origin: rec } = await svc.addServer(pool, origin.url); // FLX_UPSTREAM_STATE (500) when the state file cannot be written: nothing changed
      return { status: created ? 201 : 200, json: { created, server: serverJson(rec) } };
    },
    { mutating: true },
  );

  admin.route(
    'DELETE',
    '/servers/:ip/:port',
    async (req) => {
      const port = Number(req.params.port);
      if (!/^\d+$/.test(req.params.port) || port < 1 || port > 65535) {
        throw new FlexiError('FLX_UPSTREAM_BAD_REQUEST', `port "${req.params.port}" is not an integer from 1 to 65535`, { field: 'port' });
      }
      const poolName = req.query.get('pool') ?? undefined;
      if (poolName !== undefined && !svc.registry.get(poolName)) {
        throw new FlexiError('FLX_UPSTREAM_UNKNOWN_POOL', `unknown pool "${poolName}"`, { field: 'pool' });
      }
      const ip = req.params.ip.replace(/^\[|\]$/g, '').toLowerCase();
      const removed = await svc.removeServers(ip, port, poolName);
      if (removed.length === 0) {
        throw new FlexiError('FLX_UPSTREAM_NOT_FOUND', `no origin ${ip}:${port} in ${poolName ? `pool "${poolName}"` : 'any pool'}`, { field: 'ip' });
      }
      return { json: { removed: removed.map((o) => ({ pool: o.pool, url: o.url })) } };
    },
    { mutating: true },
  );

  admin.route('GET', '/stats', () => {
    const totals = svc.stats.totals();
    const client: CountPair = { success: 0, failed: 0 };
    const server: CountPair = { success: 0, failed: 0 };
    const perPool: Record<string, { client: CountPair; server: CountPair }> = {};
    for (const p of pools()) {
      const t = totals[p.name];
      const pc = { success: t?.client.success ?? 0, failed: t?.client.failed ?? 0 };
      // Origins removed since still count in their pool's totals.
      const ps: CountPair = { success: t?.removed.success ?? 0, failed: t?.removed.failed ?? 0 };
      for (const c of Object.values(t?.origins ?? {})) {
        ps.success += c.success;
        ps.failed += c.failed;
      }
      perPool[p.name] = { client: pc, server: ps };
      client.success += pc.success;
      client.failed += pc.failed;
      server.success += ps.success;
      server.failed += ps.failed;
    }
    return { json: { client, server, pools: perPool } };
  });

  admin.route('GET', '/stats/detail', () => {
    const totals = svc.stats.totals();
    const out = [];
    for (const p of pools()) {
      for (const o of p.origins.values()) {
        const c = totals[p.name]?.origins[o.url] ?? { success: 0, failed: 0 };
        out.push({
          id: `${p.name}/${o.host}:${o.port}`,
          pool: p.name,
          url: o.url,
          ip: o.host,
          port: o.port,
          healthy: o.healthy,
          success: c.success,
          failed: c.failed,
          checks: { success: o.totals.checksOk, failed: o.totals.checksFailed },
          passiveFailures: o.totals.passiveFailures,
        });
      }
    }
    return { json: out };
  });
}
