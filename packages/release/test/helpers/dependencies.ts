/**
 * Dependency closures as installed in the workspace, found with Node's own
 * lookup (node_modules folders upward from each package's real location), so
 * they follow pnpm's layout and include only the optional packages this
 * machine installed (koffi's platform package, for one).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export function manifest(dir: string): Manifest {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;
}

function locate(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return realpathSync(candidate);
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * Names of every package reachable from `names` (looked up from `fromDir`)
 * through dependencies and installed optionalDependencies.
 */
export function closure(names: string[], fromDir: string): Set<string> {
  const seen = new Set<string>();
  const visitedDirs = new Set<string>();
  const queue: [string, string][] = names.map((n) => [n, fromDir]);
  while (queue.length) {
    const [name, from] = queue.shift()!;
    const dir = locate(name, from);
    if (!dir) continue; // an optional dependency for another platform
    seen.add(name);
    if (visitedDirs.has(dir)) continue;
    visitedDirs.add(dir);
    const m = manifest(dir);
    for (const dep of Object.keys({ ...m.dependencies, ...m.optionalDependencies })) queue.push([dep, dir]);
  }
  return seen;
}
