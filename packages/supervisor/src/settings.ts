/**
 * The flexilib command's settings, resolved from flags and environment
 * variables (settings/table.ts lists them) into what the supervisor and its
 * workers use. Every bad value is a FlexiError FLX_USAGE naming the flag or
 * variable (exit code 2).
 */
import type { WorkerOptions } from '@flexilib/contract';
import { isLoopback } from './admin/admin-server.js';
import type { ClusterSettings } from './cluster/options.js';
import { readSettings } from './settings/read.js';
import { nameOf, usage, type ValuesOf } from './settings/setting.js';
import { SETTINGS } from './settings/table.js';

export { HELP } from './settings/help.js';

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

type Values = ValuesOf<typeof SETTINGS>;

/** Resolve settings from argv (without node and script) and an environment. */
export function resolveSettings(argv: string[], env: NodeJS.ProcessEnv, isTTY = false): Settings {
  const v = readSettings(SETTINGS, argv, env);
  checkCombinations(v);
  const cluster = clusterOf(v);
  return {
    configFile: v.config,
    modulesDir: v.modulesDir,
    workers: v.workers,
    supervision: supervisionOf(v),
    admin: { host: v.adminHost, port: v.adminPort, token: v.adminToken },
    ...(cluster ? { cluster } : {}),
    worker: workerOptionsOf(v, isTTY),
    help: v.help,
    version: v.version,
  };
}

/** Rules between settings that each parse alone cannot see. */
function checkCombinations(v: Values): void {
  if (v.headersTimeoutMs > v.requestTimeoutMs && v.requestTimeoutMs !== 0) {
    throw usage(`${nameOf(SETTINGS.headersTimeoutMs)} (${v.headersTimeoutMs}) must not exceed ${nameOf(SETTINGS.requestTimeoutMs)} (${v.requestTimeoutMs})`);
  }
  if (!isLoopback(v.adminHost) && !v.adminToken) {
    throw usage(`${nameOf(SETTINGS.adminHost)} ${v.adminHost} is beyond loopback: set ADMIN_TOKEN so the management API is not open to anyone`);
  }
}

/** --cluster and its companions; undefined without --cluster (the companions alone are a usage error). */
function clusterOf(v: Values): ClusterSettings | undefined {
  const { cluster, clusterUser: user, clusterPassword: password, clusterCa: ca, clusterCert: cert, clusterKey: key } = v;
  if (!cluster) {
    const stray = [user, password, ca, cert, key].find(Boolean);
    if (stray) throw usage(`${stray.name} needs --cluster etcd://HOST:PORT/NAME [FLEXILIB_CLUSTER]`);
    return undefined;
  }
  if (Boolean(user) !== Boolean(password)) throw usage(`${(user ?? password)!.name}: give both --cluster-user and --cluster-password, or neither`);
  if (Boolean(cert) !== Boolean(key)) throw usage(`${(cert ?? key)!.name}: give both --cluster-cert and --cluster-key, or neither`);
  if (cert && !ca) throw usage(`${cert.name}: a client certificate needs --cluster-ca (TLS to etcd)`);
  return {
    ...cluster,
    ...(user && password ? { user: user.text, password: password.text } : {}),
    ...(ca ? { tls: { ca: ca.text, ...(cert && key ? { cert: cert.text, key: key.text } : {}) } } : {}),
  };
}

function supervisionOf(v: Values): SupervisionSettings {
  const { spareWorkers, drainTimeoutMs, quarantineCrashes, quarantineWindowS, hangTimeoutMs, reloadDebounceMs, watch } = v;
  return { spareWorkers, drainTimeoutMs, quarantineCrashes, quarantineWindowS, hangTimeoutMs, reloadDebounceMs, watch };
}

function workerOptionsOf(v: Values, isTTY: boolean): WorkerOptions {
  const { port, host, arenaBytes, maxBodyBytes, maxHeaderBytes, keepAliveTimeoutMs, headersTimeoutMs, requestTimeoutMs, sendTimeoutMs, accessLog, metrics, fastLane, logLevel } = v;
  return {
    port, host, arenaBytes, maxBodyBytes, maxHeaderBytes, keepAliveTimeoutMs, headersTimeoutMs, requestTimeoutMs, sendTimeoutMs,
    // Threaded calls without a route timeout end where an inline call would be called hung.
    callTimeoutMs: v.hangTimeoutMs,
    accessLog, metrics, fastLane, logLevel,
    logFormat: v.logFormat ?? (isTTY ? 'text' : 'json'),
  };
}
