/**
 * Every flag and environment variable of the flexilib command, once: help,
 * parseArgs options, env reading, validation, docs/operations.md's table and
 * the bench's env scrub are generated from it. One entry per setting; append
 * new ones in their group. Flags override variables, which override defaults.
 */
import os from 'node:os';
import { DEFAULT_WORKER_OPTIONS as D } from '@flexilib/contract';
import { LOG_LEVELS } from '@flexilib/worker';
import { parseClusterSpec, type ClusterSettings } from '../cluster/options.js';
import { folder, int, kib, named, oneOf, onOff, size, text, type Named } from './parsers.js';
import { setting, type SettingTable } from './setting.js';

const HOUR_MS = 3_600_000;

/** A companion of --cluster: its text kept with the flag or variable it came from, for settings.ts's rules between them. */
function companion(flag: string, env: string, arg: string, help: string, shown = 'none') {
  return setting<Named | undefined>({ flag, env, arg, parse: named, default: undefined, shown, help: [help], group: 'cluster' });
}

export const SETTINGS = {
  config: setting({
    flag: 'config', short: 'c', env: 'FLEXILIB_CONFIG', arg: 'FILE', parse: text, default: 'proxy.ini', shown: './proxy.ini',
    help: ['route config'], group: 'server',
  }),
  modulesDir: setting<string | undefined>({
    flag: 'modules-dir', env: 'FLEXILIB_MODULES_DIR', arg: 'DIR', parse: folder, default: undefined, shown: "the config file's folder",
    help: ['folder POST /services may read "path"', 'modules from'], group: 'server',
  }),
  port: setting({
    flag: 'port', short: 'p', env: 'PORT', arg: 'N', parse: int(0, 65535), default: D.port, shown: String(D.port),
    help: ['traffic port (0 = any free port)'], group: 'server',
  }),
  host: setting({
    flag: 'host', env: 'HOST', arg: 'ADDR', parse: text, default: D.host, shown: D.host,
    help: ['bind address'], group: 'server',
  }),
  workers: setting({
    flag: 'workers', short: 'w', env: 'SERVER_THREAD_COUNT', arg: 'N', parse: int(1, 256), default: () => os.availableParallelism(), shown: 'CPU count',
    help: ['worker processes'], group: 'server',
  }),
  arenaBytes: setting({
    flag: 'prealloc-kb', env: 'RESPONSE_PREALLOCATION_KB', arg: 'N', parse: kib(1, 1024 * 1024), default: D.arenaBytes, shown: String(D.arenaBytes / 1024),
    help: ['arena per plugin call, KiB'],
    docs: 'arena per plugin call, KiB: responses up to it take no allocation (access log: `preAlloc`, `alloc`)', group: 'requests',
  }),
  maxBodyBytes: setting({
    flag: 'max-body', env: 'MAX_BODY_SIZE', arg: 'SIZE', parse: size, default: D.maxBodyBytes, shown: '1m',
    help: ['request body limit (413 beyond)'], group: 'requests',
  }),
  maxHeaderBytes: setting({
    flag: 'max-header-size', env: 'MAX_HEADER_SIZE', arg: 'N', parse: int(1024, 1024 * 1024), default: D.maxHeaderBytes, shown: String(D.maxHeaderBytes),
    help: ['request line + headers, bytes'], group: 'requests',
  }),
  keepAliveTimeoutMs: setting({
    flag: 'keep-alive-timeout', env: 'KEEP_ALIVE_TIMEOUT_MS', arg: 'MS', parse: int(0, HOUR_MS), default: D.keepAliveTimeoutMs, shown: String(D.keepAliveTimeoutMs),
    help: ['idle keep-alive connection timeout'], group: 'requests',
  }),
  headersTimeoutMs: setting({
    flag: 'headers-timeout', env: 'HEADERS_TIMEOUT_MS', arg: 'MS', parse: int(1, HOUR_MS), default: D.headersTimeoutMs, shown: String(D.headersTimeoutMs),
    help: ['time to receive request headers'], group: 'requests',
  }),
  requestTimeoutMs: setting({
    flag: 'request-timeout', env: 'REQUEST_TIMEOUT_MS', arg: 'MS', parse: int(0, HOUR_MS), default: D.requestTimeoutMs, shown: String(D.requestTimeoutMs),
    help: ['time to receive the whole request'], group: 'requests',
  }),
  sendTimeoutMs: setting({
    flag: 'send-timeout', env: 'SEND_TIMEOUT_MS', arg: 'MS', parse: int(0, HOUR_MS), default: D.sendTimeoutMs, shown: `${D.sendTimeoutMs}; 0 = never`,
    help: ['close a connection whose client reads none', 'of its answer this long'],
    docs: 'a client that takes none of its pending answer this long (it stopped reading) has its connection reset, and the worker frees the answer; a slow client that keeps reading is never cut',
    group: 'requests',
  }),
  fastLane: setting({
    flag: 'no-fast-lane', env: 'FAST_LANE', parse: onOff, given: false, default: D.fastLane, shown: 'on',
    help: ["every request through node:http's", 'request/response objects, none through the', 'fast lane (native, upstream and WASM routes)'], group: 'requests',
  }),
  adminHost: setting({
    flag: 'admin-host', env: 'ADMIN_HOST', arg: 'ADDR', parse: text, default: '127.0.0.1', shown: '127.0.0.1',
    help: ['admin listener address'], group: 'admin',
  }),
  adminPort: setting({
    flag: 'admin-port', env: 'ADMIN_PORT', arg: 'N', parse: int(0, 65535), default: 8687, shown: '8687',
    help: ['admin listener port (0 = any)'], group: 'admin',
  }),
  adminToken: setting<string | undefined>({
    env: 'ADMIN_TOKEN', parse: text, default: undefined, shown: 'none',
    help: ['mutating admin calls need Authorization:', 'Bearer $ADMIN_TOKEN when it is set; it must', 'be set when the admin listener is bound', 'beyond loopback'],
    group: 'admin',
  }),
  cluster: setting<Pick<ClusterSettings, 'spec' | 'name' | 'endpoints'> | undefined>({
    flag: 'cluster', env: 'FLEXILIB_CLUSTER', arg: 'etcd://HOST:PORT[,HOST:PORT...]/NAME', parse: (t, name) => parseClusterSpec(name, t),
    default: undefined, shown: 'one host',
    help: ['share pools, WASM services and health with', 'the other hosts of cluster NAME through etcd'],
    docs: 'share upstream pools, WASM services and health with the other hosts of cluster NAME through etcd (docs/cluster.md)', group: 'cluster',
  }),
  clusterUser: companion('cluster-user', 'FLEXILIB_CLUSTER_USER', 'USER', 'etcd user'),
  clusterPassword: companion('cluster-password', 'FLEXILIB_CLUSTER_PASSWORD', 'PW', 'etcd password'),
  clusterCa: companion('cluster-ca', 'FLEXILIB_CLUSTER_CA', 'FILE', 'talk TLS to etcd, trusting this CA', 'plain TCP'),
  clusterCert: companion('cluster-cert', 'FLEXILIB_CLUSTER_CERT', 'FILE', 'TLS client certificate for etcd'),
  clusterKey: companion('cluster-key', 'FLEXILIB_CLUSTER_KEY', 'FILE', '... and its private key'),
  spareWorkers: setting({
    flag: 'spare-workers', env: 'SPARE_WORKERS', arg: 'N', parse: int(0, 1), default: 1, shown: '1',
    help: ['idle workers that take over at once when one', 'dies (0 or 1)'],
    docs: 'an idle worker forked ahead to take over at once (0 or 1)', group: 'supervision',
  }),
  drainTimeoutMs: setting({
    flag: 'drain-timeout', env: 'DRAIN_TIMEOUT_MS', arg: 'MS', parse: int(0, HOUR_MS), default: 10_000, shown: '10000',
    help: ['graceful stop: time for requests in flight'],
    docs: 'graceful stop: time for requests in flight to finish', group: 'supervision',
  }),
  quarantineCrashes: setting({
    flag: 'quarantine-crashes', env: 'QUARANTINE_CRASHES', arg: 'N', parse: int(0, 1000), default: 3, shown: '3; 0 = never',
    help: ['quarantine a library after N crashes'],
    docs: 'crashes that quarantine a library', group: 'supervision',
  }),
  quarantineWindowS: setting({
    flag: 'quarantine-window', env: 'QUARANTINE_WINDOW_S', arg: 'S', parse: int(1, 86_400), default: 60, shown: '60',
    help: ['... within S seconds'],
    docs: '... within this many seconds; also the `Retry-After` of its 503s', group: 'supervision',
  }),
  hangTimeoutMs: setting({
    flag: 'hang-timeout', env: 'HANG_TIMEOUT_MS', arg: 'MS', parse: int(0, HOUR_MS), default: D.callTimeoutMs, shown: `${D.callTimeoutMs}; 0 = never`,
    help: ['kill a worker stuck in an inline plugin call', 'this long; also the default timeout of', 'threaded calls (504, then the worker is', 'replaced)'],
    docs: 'an inline plugin call running longer kills its worker; also the default `timeout` of threaded routes (504, the worker is replaced)',
    group: 'supervision',
  }),
  reloadDebounceMs: setting({
    flag: 'reload-debounce', env: 'RELOAD_DEBOUNCE_MS', arg: 'MS', parse: int(0, 60_000), default: 150, shown: '150',
    help: ['quiet time after a library file changes', 'before reloading it'],
    docs: "quiet time after a library file's last write before reloading it", group: 'supervision',
  }),
  watch: setting({
    flag: 'no-watch', env: 'WATCH_LIBRARIES', parse: onOff, given: false, default: true, shown: 'watching',
    help: ['do not watch library files for changes'], group: 'supervision',
  }),
  accessLog: setting({
    flag: 'no-access-log', env: 'ACCESS_LOG', parse: onOff, given: false, default: D.accessLog, shown: 'on',
    help: ['no per-request log line'], group: 'logs',
  }),
  metrics: setting({
    flag: 'no-metrics', env: 'METRICS', parse: onOff, given: false, default: D.metrics, shown: 'on',
    help: ['workers count no requests for /metrics'], group: 'logs',
  }),
  logLevel: setting({
    flag: 'log-level', env: 'LOG_LEVEL', arg: 'LEVEL', parse: oneOf(LOG_LEVELS), default: D.logLevel, shown: D.logLevel,
    help: [LOG_LEVELS.join('|')], group: 'logs',
  }),
  logFormat: setting<'json' | 'text' | undefined>({
    flag: 'log-format', env: 'LOG_FORMAT', arg: 'FORMAT', parse: oneOf(['json', 'text'] as const, 'json or text'), default: undefined, shown: 'json; text on a terminal',
    help: ['json|text'], group: 'logs',
  }),
  help: setting({
    flag: 'help', short: 'h', given: true, default: false, shown: '',
    help: ['show this help'], group: 'command',
  }),
  version: setting({
    flag: 'version', short: 'v', given: true, default: false, shown: '',
    help: ['show the version'], group: 'command',
  }),
} satisfies SettingTable;

/** Every environment variable flexilib reads for a setting (the bench drops them so only flags decide). */
export const SETTING_ENV_VARS: readonly string[] = Object.values(SETTINGS as SettingTable).flatMap((s) => (s.env ? [s.env] : []));
