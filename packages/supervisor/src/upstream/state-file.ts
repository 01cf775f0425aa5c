/**
 * The upstream state file: what the management API changed, kept beside the
 * config (`proxy.ini` -> `proxy.ini.upstreams.json`) so that changes survive a
 * restart and a config reload.
 *
 * It holds differences from the config, per pool, not a full server list:
 *
 *   {"version": 1, "pools": {"api": {"added": ["http://10.0.0.7:80"], "removed": ["http://10.0.0.5:80"]}}}
 *
 * so an operator's later edit of `servers =` still takes effect for every
 * origin the API did not touch. Writes are atomic: a temporary file in the same
 * folder, flushed, then renamed over the old one; a crash leaves either the
 * old or the new file, never half of one.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parseOrigin, POOL_NAME } from '@flexilib/contract';
import { FlexiError } from '@flexilib/contract';

export interface PoolOverlay {
  added: string[];
  removed: string[];
}

/** Pool name -> API changes. Pools the config no longer has are kept (they may come back), but unused. */
export type Overlay = Record<string, PoolOverlay>;

export const STATE_FILE_VERSION = 1;

export function stateFileFor(configFile: string): string {
  return `${path.resolve(configFile)}.upstreams.json`;
}

/** Read the state file; a missing file is an empty overlay. Throws FLX_UPSTREAM_STATE naming the file and the problem. */
export function readStateFile(file: string): Overlay {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new FlexiError('FLX_UPSTREAM_STATE', `cannot read upstream state file ${file}: ${(err as Error).message}`);
  }
  const bad = (why: string) => new FlexiError('FLX_UPSTREAM_STATE', `upstream state file ${file}: ${why} (fix or delete it; it only holds changes made through the management API)`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`malformed JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || (doc as { version?: unknown }).version !== STATE_FILE_VERSION) throw bad(`expected {"version": ${STATE_FILE_VERSION}, "pools": {...}}`);
  const pools = (doc as { pools?: unknown }).pools;
  if (typeof pools !== 'object' || pools === null || Array.isArray(pools)) throw bad('"pools" must be an object');
  const out: Overlay = {};
  for (const [name, value] of Object.entries(pools)) {
    if (!POOL_NAME.test(name)) throw bad(`pool name "${name}" is invalid`);
    const v = value as { added?: unknown; removed?: unknown };
    const list = (key: 'added' | 'removed'): string[] => {
      const l = v?.[key] ?? [];
      if (!Array.isArray(l)) throw bad(`pools.${name}.${key} must be an array of URLs`);
      return l.map((u) => {
        const o = typeof u === 'string' ? parseOrigin(u) : { error: `${JSON.stringify(u)} is not a string` };
        if ('error' in o) throw bad(`pools.${name}.${key}: ${o.error}`);
        return o.url;
      });
    };
    out[name] = { added: list('added'), removed: list('removed') };
  }
  return out;
}

/** Write the overlay atomically (temp file + fsync + rename). */
export function writeStateFile(file: string, overlay: Overlay): void {
  const pools: Overlay = {};
  for (const [name, o] of Object.entries(overlay)) if (o.added.length || o.removed.length) pools[name] = o;
  const text = JSON.stringify({ version: STATE_FILE_VERSION, pools }, null, 2) + '\n';
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new FlexiError('FLX_UPSTREAM_STATE', `cannot write upstream state file ${file}: ${(err as Error).message}`);
  }
}
