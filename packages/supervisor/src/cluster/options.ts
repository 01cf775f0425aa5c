/**
 * The cluster contract on the command line:
 *
 *   --cluster etcd://HOST:PORT[,HOST:PORT…]/NAME     [FLEXILIB_CLUSTER]
 *   --cluster-user USER --cluster-password PASS       [FLEXILIB_CLUSTER_USER, FLEXILIB_CLUSTER_PASSWORD]
 *   --cluster-ca FILE [--cluster-cert FILE --cluster-key FILE]   TLS to etcd (client certificate optional)
 *
 * NAME picks the key prefix /flexilib/NAME/v1/, so several clusters can share one etcd.
 * The flags are entries of settings/table.ts (--cluster parses with parseClusterSpec);
 * settings.ts holds the rules between them.
 */
import { FlexiError } from '@flexilib/contract';

export interface ClusterSettings {
  /** As given, for logs (no password in it). */
  spec: string;
  name: string;
  /** host:port of each etcd member. */
  endpoints: string[];
  user?: string;
  password?: string;
  tls?: { ca: string; cert?: string; key?: string };
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HOST_PORT_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Parse --cluster; `where` names the flag or variable it came from (FLX_USAGE errors name it). */
export function parseClusterSpec(where: string, spec: string): Pick<ClusterSettings, 'spec' | 'name' | 'endpoints'> {
  const bad = (why: string) => new FlexiError('FLX_USAGE', `${where}: "${spec}" ${why} (expected etcd://HOST:PORT[,HOST:PORT...]/NAME)`);
  const m = /^etcd:\/\/([^/]+)\/([^/]+)$/.exec(spec.trim());
  if (!m) throw bad('is not a cluster address');
  const endpoints = m[1].split(',').map((s) => s.trim());
  for (const e of endpoints) {
    const hp = HOST_PORT_RE.exec(e);
    if (!hp) throw bad(`has "${e}" where HOST:PORT belongs`);
    const port = Number(hp[2]);
    if (port < 1 || port > 65535) throw bad(`has port ${hp[2]}, not from 1 to 65535`);
  }
  if (!NAME_RE.test(m[2])) throw bad(`has cluster name "${m[2]}": use 1 to 63 letters, digits, ".", "_" or "-"`);
  return { spec: spec.trim(), name: m[2], endpoints };
}

/** The etcd key prefix of a cluster: everything flexilib writes lives under it. */
export function clusterPrefix(name: string): string {
  return `/flexilib/${name}/v1/`;
}
