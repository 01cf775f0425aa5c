/**
 * `pnpm run release` = `pnpm build` then this:
 *   node --import tsx packages/release/src/release.ts [--out-dir DIR]
 * Writes DIR/flexilib-<version>.tar.gz (default DIR: dist/ at the workspace root).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildRelease } from './build-release.js';
import { ReleaseError } from './errors.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

async function main(): Promise<void> {
  let outDir: string;
  try {
    const { values } = parseArgs({ options: { 'out-dir': { type: 'string' } }, strict: true, allowPositionals: false });
    outDir = path.resolve(values['out-dir'] ?? path.join(root, 'dist'));
  } catch (err) {
    throw new ReleaseError('FLX_RELEASE_USAGE', `${(err as Error).message} (usage: release.ts [--out-dir DIR])`);
  }
  const release = await buildRelease({ root, outDir, log: (line) => process.stderr.write(`release: ${line}\n`) });
  process.stdout.write(`${release.tarball}\n`);
}

main().catch((err: unknown) => {
  const what = err instanceof ReleaseError ? `${err.code}: ${err.message}` : (err as Error).stack ?? String(err);
  process.stderr.write(`release: ${what}\n`);
  process.exit(err instanceof ReleaseError && err.code === 'FLX_RELEASE_USAGE' ? 2 : 1);
});
