/**
 * `pnpm run release` = `pnpm build` then this:
 *   node --import tsx packages/release/src/release.ts [--out-dir DIR] [--sign-key KEY]
 * Writes DIR/flexilib-<version>.tar.gz and DIR/SHA256SUMS (default DIR: dist/ at the
 * workspace root); with an SSH signing key (--sign-key or FLEXILIB_SIGNING_KEY) also
 * the detached signatures <tarball>.sig and SHA256SUMS.sig (signing.ts).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildRelease } from './build-release.js';
import { FlexiError } from '@flexilib/contract';
import { signFile, writeChecksums } from './signing.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

async function main(): Promise<void> {
  let outDir: string;
  let key: string | undefined;
  try {
    const { values } = parseArgs({ options: { 'out-dir': { type: 'string' }, 'sign-key': { type: 'string' } }, strict: true, allowPositionals: false });
    outDir = path.resolve(values['out-dir'] ?? path.join(root, 'dist'));
    const given = values['sign-key'] ?? (process.env.FLEXILIB_SIGNING_KEY || undefined);
    key = given === undefined ? undefined : path.resolve(given);
  } catch (err) {
    throw new FlexiError('FLX_RELEASE_USAGE', `${(err as Error).message} (usage: release.ts [--out-dir DIR] [--sign-key SSH-KEY])`);
  }
  // Before the build, so a wrong path does not cost a whole build.
  if (key && !existsSync(key)) throw new FlexiError('FLX_RELEASE_SIGN', `signing key ${key} does not exist (--sign-key / FLEXILIB_SIGNING_KEY)`);
  const log = (line: string) => process.stderr.write(`release: ${line}\n`);
  const release = await buildRelease({ root, outDir, log });
  const sums = writeChecksums(release.tarball);
  log(`wrote ${sums}`);
  if (key) {
    for (const file of [release.tarball, sums]) log(`signed: ${signFile(file, key)}`);
  } else {
    log('not signed (no --sign-key / FLEXILIB_SIGNING_KEY)');
  }
  process.stdout.write(`${release.tarball}\n`);
}

main().catch((err: unknown) => {
  const what = err instanceof FlexiError ? `${err.code}: ${err.message}` : (err as Error).stack ?? String(err);
  process.stderr.write(`release: ${what}\n`);
  process.exit(err instanceof FlexiError ? err.exitCode : 1);
});
