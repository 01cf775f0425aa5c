/**
 * The example plugins that ship in the tarball: every shared library an
 * example builds into its build/ folder (examples/<name>/build/*.so), copied
 * flat into plugins/. And the check that the bundled proxy.ini, read by the
 * very parser that ships, names only libraries the tarball holds.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FlexiError } from '@flexilib/contract';

/** Copy examples' built libraries into `dest`; returns their file names. */
export function bundleExamplePlugins(root: string, dest: string): string[] {
  const examples = path.join(root, 'examples');
  const from = new Map<string, string>();
  for (const example of readdirSync(examples, { withFileTypes: true })) {
    if (!example.isDirectory()) continue;
    const build = path.join(examples, example.name, 'build');
    if (!existsSync(build)) continue;
    for (const file of readdirSync(build)) {
      if (!file.endsWith('.so')) continue;
      const src = path.join(build, file);
      const clash = from.get(file);
      if (clash) throw new FlexiError('FLX_RELEASE_PLUGIN_CLASH', `plugins/${file} would come from both ${clash} and ${src}: rename one`);
      from.set(file, src);
    }
  }
  if (from.size === 0) {
    throw new FlexiError('FLX_RELEASE_NOT_BUILT', `no example plugin under ${examples}/*/build/*.so: run pnpm build first`);
  }
  mkdirSync(dest, { recursive: true });
  for (const [file, src] of from) copyFileSync(src, path.join(dest, file));
  return [...from.keys()].sort();
}

interface ShippedConfig {
  routes: { key: string; line: number; target: { kind: string; library?: string } }[];
}

/** Parse `configFile` with the worker shipped in `stage` and check every native library is inside `stage`. */
export async function checkBundledConfig(stage: string, configFile: string): Promise<string[]> {
  const worker = path.join(stage, 'node_modules', '@flexilib', 'contract', 'dist', 'index.js');
  const { loadConfig } = (await import(pathToFileURL(worker).href)) as { loadConfig(file: string): ShippedConfig };
  let config: ShippedConfig;
  try {
    config = loadConfig(configFile);
  } catch (err) {
    throw new FlexiError('FLX_RELEASE_CONFIG', `bundled ${configFile}: ${(err as Error).message}`);
  }
  const libraries = new Set<string>();
  for (const route of config.routes) {
    const lib = route.target.library;
    if (route.target.kind !== 'native' || !lib) continue;
    const rel = path.relative(stage, lib);
    if (rel.startsWith('..') || path.isAbsolute(rel) || !existsSync(lib)) {
      throw new FlexiError('FLX_RELEASE_CONFIG', `bundled proxy.ini line ${route.line} (${route.key}): library ${lib} is not in the tarball`);
    }
    libraries.add(rel);
  }
  return [...libraries].sort();
}
