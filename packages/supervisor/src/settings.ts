/**
 * Flags and environment variables of the flexilib command. Flags override
 * environment variables, which override defaults. Every bad value is a
 * FlexiError FLX_USAGE naming the flag or variable (exit code 2).
 */
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_WORKER_OPTIONS, parseSize, type WorkerOptions } from '@flexilib/contract';
import { LOG_LEVELS } from '@flexilib/worker';
import { isLoopback } from './admin/admin-server.js';
import { FlexiError } from '@flexilib/contract';
import { parseClusterSpec, type ClusterSettings } from './cluster/options.js';

/** How the supervisor supervises: restarts, quarantine, reloads, stop. */
export interface SupervisionSettings {
  /** Workers forked ahead, idle, to take over at once when a worker dies. */
  spareWorkers: number;
  /** Graceful stop: time for requests in flight to finish before workers are killed. */
  drainTimeoutMs: number;
  /** A library that crashes workers this many times within the window is quarantined (0: never). */
  quarantineCrashes: number;
  quarantineWindowS: number;
  /** An inline plugin call running longer than this kills its worker (0: never). */
  hangTimeoutMs: number;
  /** Quiet time after a library file's last change before it is reloaded. */
  reloadDebounceMs: number;
  /** Watch library files and reload them when they change. */
  watch: boolean;
}

export interface Settings {
  configFile: string;
  /** Where POST /services may read a module "path" from (undefined: the config file's folder). */
  modulesDir?: string;
  workers: number;
  supervision: SupervisionSettings;
  admin: { host: string; port: number; token?: string };
  /** Cluster mode (--cluster): pools, services and health shared through etcd. Absent: one host, state files. */
  cluster?: ClusterSettings;
  worker: WorkerOptions;
  help: boolean;
  version: boolean;
}

export const HELP = `Usage: flexilib [options]
       flexilib invoke LIB [options]       call a plugin once, no server (flexilib invoke --help)
       flexilib conformance LIB [options]  run a request/response table against a plugin (--help)

Serves HTTP by calling native plugins (.so) chosen by proxy.ini.

Options (flags override environment variables):
  -c, --config FILE          route config                       [FLEXILIB_CONFIG, default ./proxy.ini]
      --modules-dir DIR      folder POST /services may read "path" modules from [FLEXILIB_MODULES_DIR,
                             default the config file's folder]
  -p, --port N               traffic port (0 = any free port)   [PORT, default 8069]
      --host ADDR            bind address                       [HOST, default 0.0.0.0]
  -w, --workers N            worker processes                   [SERVER_THREAD_COUNT, default CPU count]
      --prealloc-kb N        arena per plugin call, KiB         [RESPONSE_PREALLOCATION_KB, default 8]
      --max-body SIZE        request body limit (413 beyond)    [MAX_BODY_SIZE, default 1m]
      --max-header-size N    request line + headers, bytes      [MAX_HEADER_SIZE, default 16384]
      --keep-alive-timeout MS idle keep-alive connection timeout [KEEP_ALIVE_TIMEOUT_MS, default 5000]
      --headers-timeout MS   time to receive request headers    [HEADERS_TIMEOUT_MS, default 20000]
      --request-timeout MS   time to receive the whole request  [REQUEST_TIMEOUT_MS, default 60000]
      --send-timeout MS      close a connection whose client reads none of its answer this long
                                                                [SEND_TIMEOUT_MS, default 60000; 0 = never]
      --admin-host ADDR      admin listener address             [ADMIN_HOST, default 127.0.0.1]
      --admin-port N         admin listener port (0 = any)      [ADMIN_PORT, default 8687]
                             mutating admin calls need Authorization: Bearer $ADMIN_TOKEN when it is set;
                             it must be set when the admin listener is bound beyond loopback
      --cluster etcd://HOST:PORT[,HOST:PORT...]/NAME
                             share pools, WASM services and health with the other hosts of cluster NAME
                             through etcd (docs/cluster.md)      [FLEXILIB_CLUSTER, default: one host]
      --cluster-user USER    etcd user                          [FLEXILIB_CLUSTER_USER]
      --cluster-password PW  etcd password                      [FLEXILIB_CLUSTER_PASSWORD]
      --cluster-ca FILE      talk TLS to etcd, trusting this CA [FLEXILIB_CLUSTER_CA]
      --cluster-cert FILE    TLS client certificate for etcd   [FLEXILIB_CLUSTER_CERT]
      --cluster-key FILE     ... and its private key           [FLEXILIB_CLUSTER_KEY]
      --spare-workers N      idle workers that take over at once when one dies [SPARE_WORKERS, 0 or 1, default 1]
      --drain-timeout MS     graceful stop: time for requests in flight [DRAIN_TIMEOUT_MS, default 10000]
      --quarantine-crashes N quarantine a library after N crashes  [QUARANTINE_CRASHES, default 3; 0 = never]
      --quarantine-window S  ... within S seconds                [QUARANTINE_WINDOW_S, default 60]
      --hang-timeout MS      kill a worker stuck in an inline plugin call this long; also the default
                             timeout of threaded calls (504, then the worker is replaced)
                                                                [HANG_TIMEOUT_MS, default 30000; 0 = never]
      --reload-debounce MS   quiet time after a library file changes before reloading it [RELOAD_DEBOUNCE_MS, default 150]
      --no-watch             do not watch library files for changes [WATCH_LIBRARIES=0]
      --no-access-log        no per-request log line            [ACCESS_LOG=0]
      --no-metrics           workers count no requests for /metrics [METRICS=0]
      --no-fast-lane         every request through node:http's request/response objects,
                             none through the fast lane for inline native routes [FAST_LANE=0]
      --log-level LEVEL      fatal|error|warn|info|debug|trace|silent [LOG_LEVEL, default info]
      --log-format FORMAT    json|text                          [LOG_FORMAT, default json; text on a terminal]
  -h, --help                 show this help
  -v, --version              show the version

Signals: SIGHUP re-reads the config (an invalid one is logged and the old one keeps serving) and lifts
quarantines; SIGTERM/SIGINT stop gracefully (a second one stops at once). Library files are watched and
reloaded when they change. systemd Type=notify: READY, RELOADING, STOPPING and WATCHDOG (WATCHDOG_USEC)
are sent to $NOTIFY_SOCKET when it is set.
`;

function int(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new FlexiError('FLX_USAGE', `${name}: "${text}" is not an integer from ${min} to ${max}`);
  }
  return n;
}

/** Resolve settings from argv (without node and script) and an environment. */
export function resolveSettings(argv: string[], env: NodeJS.ProcessEnv, isTTY = false): Settings {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string', short: 'c' },
        'modules-dir': { type: 'string' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        workers: { type: 'string', short: 'w' },
        'prealloc-kb': { type: 'string' },
        'max-body': { type: 'string' },
        'max-header-size': { type: 'string' },
        'keep-alive-timeout': { type: 'string' },
        'headers-timeout': { type: 'string' },
        'request-timeout': { type: 'string' },
        'send-timeout': { type: 'string' },
        'no-access-log': { type: 'boolean' },
        'no-metrics': { type: 'boolean' },
        'no-fast-lane': { type: 'boolean' },
        'drain-timeout': { type: 'string' },
        'spare-workers': { type: 'string' },
        'quarantine-crashes': { type: 'string' },
        'quarantine-window': { type: 'string' },
        'hang-timeout': { type: 'string' },
        'reload-debounce': { type: 'string' },
        'no-watch': { type: 'boolean' },
        'admin-host': { type: 'string' },
        'admin-port': { type: 'string' },
        cluster: { type: 'string' },
        'cluster-user': { type: 'string' },
        'cluster-password': { type: 'string' },
        'cluster-ca': { type: 'string' },
        'cluster-cert': { type: 'string' },
        'cluster-key': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new FlexiError('FLX_USAGE', `${(err as Error).message} (see flexilib --help)`);
  }
  const v = parsed.values;
  const pick = (flag: string | undefined, envName: string): [string, string] | undefined => {
    if (flag !== undefined) return [`--${flagNameOf(envName)}`, flag];
    const e = env[envName];
    return e !== undefined && e !== '' ? [envName, e] : undefined;
  };
  const d = DEFAULT_WORKER_OPTIONS;
  const num = (flag: string | undefined, envName: string, def: number, min: number, max: number): number => {
    const p = pick(flag, envName);
    return p ? int(p[0], p[1], min, max) : def;
  };

  const port = num(v.port, 'PORT', d.port, 0, 65535);
  const host = pick(v.host, 'HOST')?.[1] ?? d.host;
  const workers = num(v.workers, 'SERVER_THREAD_COUNT', os.availableParallelism(), 1, 256);
  const preallocKb = num(v['prealloc-kb'], 'RESPONSE_PREALLOCATION_KB', d.arenaBytes / 1024, 1, 1024 * 1024);
  let maxBodyBytes = d.maxBodyBytes;
  const mb = pick(v['max-body'], 'MAX_BODY_SIZE');
  if (mb) {
    const n = parseSize(mb[1]);
    if (n === undefined) throw new FlexiError('FLX_USAGE', `${mb[0]}: "${mb[1]}" is not a size such as 1048576, 512k or 4m`);
    maxBodyBytes = n;
  }
  const maxHeaderBytes = num(v['max-header-size'], 'MAX_HEADER_SIZE', d.maxHeaderBytes, 1024, 1024 * 1024);
  const keepAliveTimeoutMs = num(v['keep-alive-timeout'], 'KEEP_ALIVE_TIMEOUT_MS', d.keepAliveTimeoutMs, 0, 3_600_000);
  const headersTimeoutMs = num(v['headers-timeout'], 'HEADERS_TIMEOUT_MS', d.headersTimeoutMs, 1, 3_600_000);
  const requestTimeoutMs = num(v['request-timeout'], 'REQUEST_TIMEOUT_MS', d.requestTimeoutMs, 0, 3_600_000);
  const sendTimeoutMs = num(v['send-timeout'], 'SEND_TIMEOUT_MS', d.sendTimeoutMs, 0, 3_600_000);

  const onOff = (off: boolean | undefined, envName: string, def: boolean): boolean => {
    if (off) return false;
    const e = env[envName];
    if (e === undefined || e === '') return def;
    if (!['0', '1', 'true', 'false'].includes(e)) throw new FlexiError('FLX_USAGE', `${envName}: "${e}" is not one of 0, 1, true, false`);
    return e === '1' || e === 'true';
  };
  const accessLog = onOff(v['no-access-log'], 'ACCESS_LOG', d.accessLog);
  const metrics = onOff(v['no-metrics'], 'METRICS', d.metrics);
  const fastLane = onOff(v['no-fast-lane'], 'FAST_LANE', d.fastLane);
  const lvl = pick(v['log-level'], 'LOG_LEVEL');
  if (lvl && !(LOG_LEVELS as readonly string[]).includes(lvl[1])) {
    throw new FlexiError('FLX_USAGE', `${lvl[0]}: "${lvl[1]}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const fmt = pick(v['log-format'], 'LOG_FORMAT');
  if (fmt && fmt[1] !== 'json' && fmt[1] !== 'text') throw new FlexiError('FLX_USAGE', `${fmt[0]}: "${fmt[1]}" is not json or text`);
  const logFormat = (fmt?.[1] as 'json' | 'text' | undefined) ?? (isTTY ? 'text' : 'json');
  if (headersTimeoutMs > requestTimeoutMs && requestTimeoutMs !== 0) {
    throw new FlexiError('FLX_USAGE', `--headers-timeout (${headersTimeoutMs}) must not exceed --request-timeout (${requestTimeoutMs})`);
  }

  const spareWorkers = num(v['spare-workers'], 'SPARE_WORKERS', 1, 0, 1);
  const drainTimeoutMs = num(v['drain-timeout'], 'DRAIN_TIMEOUT_MS', 10_000, 0, 3_600_000);
  const quarantineCrashes = num(v['quarantine-crashes'], 'QUARANTINE_CRASHES', 3, 0, 1000);
  const quarantineWindowS = num(v['quarantine-window'], 'QUARANTINE_WINDOW_S', 60, 1, 86_400);
  const hangTimeoutMs = num(v['hang-timeout'], 'HANG_TIMEOUT_MS', 30_000, 0, 3_600_000);
  const reloadDebounceMs = num(v['reload-debounce'], 'RELOAD_DEBOUNCE_MS', 150, 0, 60_000);
  let watch = true;
  if (v['no-watch']) watch = false;
  else if (env.WATCH_LIBRARIES !== undefined && env.WATCH_LIBRARIES !== '') {
    if (!['0', '1', 'true', 'false'].includes(env.WATCH_LIBRARIES)) throw new FlexiError('FLX_USAGE', `WATCH_LIBRARIES: "${env.WATCH_LIBRARIES}" is not one of 0, 1, true, false`);
    watch = env.WATCH_LIBRARIES === '1' || env.WATCH_LIBRARIES === 'true';
  }

  const adminHost = pick(v['admin-host'], 'ADMIN_HOST')?.[1] ?? '127.0.0.1';
  const adminPort = num(v['admin-port'], 'ADMIN_PORT', 8687, 0, 65535);
  const adminToken = env.ADMIN_TOKEN || undefined;
  if (!isLoopback(adminHost) && !adminToken) {
    throw new FlexiError('FLX_USAGE', `--admin-host ${adminHost} is beyond loopback: set ADMIN_TOKEN so the management API is not open to anyone`);
  }

  const md = pick(v['modules-dir'], 'FLEXILIB_MODULES_DIR');
  let modulesDir: string | undefined;
  if (md) {
    modulesDir = path.resolve(md[1]);
    let isDir = false;
    try {
      isDir = statSync(modulesDir).isDirectory();
    } catch {
      /* reported below */
    }
    if (!isDir) throw new FlexiError('FLX_USAGE', `${md[0]}: "${md[1]}" is not a folder`);
  }
  const cluster = clusterSettings(pick, v);

  return {
    modulesDir,
    admin: { host: adminHost, port: adminPort, token: adminToken },
    ...(cluster ? { cluster } : {}),
    configFile: pick(v.config, 'FLEXILIB_CONFIG')?.[1] ?? 'proxy.ini',
    workers,
    supervision: { spareWorkers, drainTimeoutMs, quarantineCrashes, quarantineWindowS, hangTimeoutMs, reloadDebounceMs, watch },
    help: v.help ?? false,
    version: v.version ?? false,
    worker: {
      port,
      host,
      arenaBytes: preallocKb * 1024,
      maxBodyBytes,
      maxHeaderBytes,
      keepAliveTimeoutMs,
      headersTimeoutMs,
      requestTimeoutMs,
      sendTimeoutMs,
      callTimeoutMs: hangTimeoutMs,
      accessLog,
      metrics,
      fastLane,
      logLevel: lvl?.[1] ?? d.logLevel,
      logFormat,
    },
  };
}

const FLAG_OF_ENV: Record<string, string> = {
  PORT: 'port', HOST: 'host', SERVER_THREAD_COUNT: 'workers', RESPONSE_PREALLOCATION_KB: 'prealloc-kb',
  MAX_BODY_SIZE: 'max-body', MAX_HEADER_SIZE: 'max-header-size', KEEP_ALIVE_TIMEOUT_MS: 'keep-alive-timeout',
  HEADERS_TIMEOUT_MS: 'headers-timeout', REQUEST_TIMEOUT_MS: 'request-timeout', SEND_TIMEOUT_MS: 'send-timeout', LOG_LEVEL: 'log-level',
  LOG_FORMAT: 'log-format', FLEXILIB_CONFIG: 'config', FLEXILIB_MODULES_DIR: 'modules-dir', ADMIN_HOST: 'admin-host', ADMIN_PORT: 'admin-port',
  SPARE_WORKERS: 'spare-workers', DRAIN_TIMEOUT_MS: 'drain-timeout', QUARANTINE_CRASHES: 'quarantine-crashes', QUARANTINE_WINDOW_S: 'quarantine-window',
  HANG_TIMEOUT_MS: 'hang-timeout', RELOAD_DEBOUNCE_MS: 'reload-debounce',
  FLEXILIB_CLUSTER: 'cluster', FLEXILIB_CLUSTER_USER: 'cluster-user', FLEXILIB_CLUSTER_PASSWORD: 'cluster-password',
  FLEXILIB_CLUSTER_CA: 'cluster-ca', FLEXILIB_CLUSTER_CERT: 'cluster-cert', FLEXILIB_CLUSTER_KEY: 'cluster-key',
};
function flagNameOf(envName: string): string {
  return FLAG_OF_ENV[envName] ?? envName.toLowerCase();
}

type Pick = (flag: string | undefined, envName: string) => [string, string] | undefined;

/** --cluster and its companions; undefined without --cluster (the companions alone are a usage error). */
function clusterSettings(pick: Pick, v: Record<string, string | boolean | undefined>): ClusterSettings | undefined {
  const str = (k: string) => v[k] as string | undefined;
  const spec = pick(str('cluster'), 'FLEXILIB_CLUSTER');
  const user = pick(str('cluster-user'), 'FLEXILIB_CLUSTER_USER');
  const password = pick(str('cluster-password'), 'FLEXILIB_CLUSTER_PASSWORD');
  const ca = pick(str('cluster-ca'), 'FLEXILIB_CLUSTER_CA');
  const cert = pick(str('cluster-cert'), 'FLEXILIB_CLUSTER_CERT');
  const key = pick(str('cluster-key'), 'FLEXILIB_CLUSTER_KEY');
  if (!spec) {
    const stray = [user, password, ca, cert, key].find(Boolean);
    if (stray) throw new FlexiError('FLX_USAGE', `${stray[0]} needs --cluster etcd://HOST:PORT/NAME [FLEXILIB_CLUSTER]`);
    return undefined;
  }
  if (Boolean(user) !== Boolean(password)) throw new FlexiError('FLX_USAGE', `${(user ?? password)![0]}: give both --cluster-user and --cluster-password, or neither`);
  if (Boolean(cert) !== Boolean(key)) throw new FlexiError('FLX_USAGE', `${(cert ?? key)![0]}: give both --cluster-cert and --cluster-key, or neither`);
  if (cert && !ca) throw new FlexiError('FLX_USAGE', `${cert[0]}: a client certificate needs --cluster-ca (TLS to etcd)`);
  return {
    ...parseClusterSpec(spec[0], spec[1]),
    ...(user && password ? { user: user[1], password: password[1] } : {}),
    ...(ca ? { tls: { ca: ca[1], ...(cert && key ? { cert: cert[1], key: key[1] } : {}) } } : {}),
  };
}
