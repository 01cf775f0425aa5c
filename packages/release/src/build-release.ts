/**
 * Builds dist/flexilib-<version>.tar.gz from an already built workspace
 * (`pnpm run release` runs `pnpm build` first). The tarball unpacks to:
 *
 *   flexilib-<version>/
 *     bin/flexilib                 launcher: runs from any cwd, default config ../proxy.ini
 *     dist/                        the supervisor's compiled JS
 *     node_modules/                production dependencies only (workers, koffi + its
 *                                  platform package, pino, ...), from `pnpm deploy --prod`
 *     package.json                 name, version, "type": "module"
 *     proxy.ini                    routes to plugins/
 *     plugins/*.so                 the example plugins, compiled
 *     include/flexilib.h           the plugin ABI header, for building your own plugins
 *     deploy/flexilib.service      the systemd unit; deploy/env.example for /etc/flexilib/env
 *     README.md, THIRD-PARTY-NOTICES.txt
 *
 * Native code in it (koffi's platform package, the example plugins) is for the
 * machine that built it: build on linux-x64 for linux-x64.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlexiError } from '@flexilib/contract';
import { writeNotices } from './notices.js';
import { bundleExamplePlugins, checkBundledConfig } from './plugins.js';
import { deployProduction } from './production-deps.js';
import { writeTarball } from './tarball.js';

/** This package's files/ folder: the launcher, the bundled proxy.ini and README. */
const FILES = fileURLToPath(new URL('../files/', import.meta.url));

export interface ReleaseOptions {
  /** The workspace root. */
  root: string;
  /** Where the tarball goes (created if absent). */
  outDir: string;
  log?: (line: string) => void;
}

export interface Release {
  name: string;
  version: string;
  tarball: string;
  plugins: string[];
}

export function releaseVersion(root: string): string {
  const pkg = JSON.parse(readFileSync(path.join(root, 'packages', 'supervisor', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

function requireBuilt(root: string): void {
  for (const rel of ['packages/supervisor/dist/cli.js', 'packages/worker/dist/worker-main.js', 'packages/contract/dist/index.js', 'packages/plugin-abi/dist/index.js']) {
    if (!existsSync(path.join(root, rel))) {
      throw new FlexiError('FLX_RELEASE_NOT_BUILT', `${rel} is missing: run pnpm build first (pnpm run release does)`);
    }
  }
}

export async function buildRelease(opts: ReleaseOptions): Promise<Release> {
  const log = opts.log ?? (() => {});
  const { root } = opts;
  requireBuilt(root);
  const version = releaseVersion(root);
  const name = `flexilib-${version}`;
  const work = mkdtempSync(path.join(os.tmpdir(), 'flexilib-release-'));
  try {
    const stage = path.join(work, name);
    log(`deploying production dependencies into ${name}/`);
    deployProduction(root, stage);

    writeFileSync(
      path.join(stage, 'package.json'),
      `${JSON.stringify({
        name: 'flexilib',
        version,
        private: true,
        description: 'flexilib: a web server that answers HTTP requests by calling native plugins (.so), chosen by proxy.ini.',
        type: 'module',
        bin: { flexilib: 'bin/flexilib' },
        engines: { node: '>=20' },
      }, null, 2)}\n`,
    );
    copyFileSync(path.join(FILES, 'bin', 'flexilib'), path.join(stage, 'bin', 'flexilib'));
    chmodSync(path.join(stage, 'bin', 'flexilib'), 0o755);
    copyFileSync(path.join(FILES, 'proxy.ini'), path.join(stage, 'proxy.ini'));
    copyFileSync(path.join(FILES, 'README.md'), path.join(stage, 'README.md'));
    mkdirSync(path.join(stage, 'include'));
    copyFileSync(path.join(root, 'packages', 'plugin-abi', 'include', 'flexilib.h'), path.join(stage, 'include', 'flexilib.h'));
    mkdirSync(path.join(stage, 'deploy'));
    copyFileSync(path.join(root, 'deploy', 'flexilib.service'), path.join(stage, 'deploy', 'flexilib.service'));
    copyFileSync(path.join(root, 'deploy', 'env.example'), path.join(stage, 'deploy', 'env.example'));

    const plugins = bundleExamplePlugins(root, path.join(stage, 'plugins'));
    log(`plugins: ${plugins.join(', ')}`);
    const used = await checkBundledConfig(stage, path.join(stage, 'proxy.ini'));
    log(`proxy.ini routes to ${used.join(', ')}`);
    writeNotices(path.join(stage, 'node_modules'), path.join(stage, 'THIRD-PARTY-NOTICES.txt'));

    mkdirSync(opts.outDir, { recursive: true });
    const tarball = path.join(opts.outDir, `${name}.tar.gz`);
    writeTarball(work, name, tarball);
    log(`wrote ${tarball}`);
    return { name, version, tarball, plugins };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
