/**
 * What makes a release verifiable: SHA256SUMS beside the tarball, and, given
 * an SSH signing key, detached signatures made with `ssh-keygen -Y sign` that
 * anyone checks with `ssh-keygen -Y verify` and the published public key
 * (docs/deployment.md, "Verifying a release"):
 *
 *   flexilib-<version>.tar.gz
 *   flexilib-<version>.tar.gz.sig   signature of the tarball itself
 *   SHA256SUMS                      "<sha256>  flexilib-<version>.tar.gz" (sha256sum -c)
 *   SHA256SUMS.sig                  signature of the sums file
 *
 * Both are signed in the namespace SIGNING_NAMESPACE, so a signature made for
 * another purpose with the same key (git commits, other files) never passes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FlexiError } from '@flexilib/contract';
import { run } from './run.js';

export const SIGNING_NAMESPACE = 'flexilib-release';

/** Write SHA256SUMS in the tarball's folder, for the tarball; returns its path. */
export function writeChecksums(tarball: string): string {
  const sum = createHash('sha256').update(readFileSync(tarball)).digest('hex');
  const file = path.join(path.dirname(tarball), 'SHA256SUMS');
  writeFileSync(file, `${sum}  ${path.basename(tarball)}\n`);
  return file;
}

/** Sign `file` with the SSH private key `key` (or a public key whose private half is in ssh-agent); returns FILE.sig. */
export function signFile(file: string, key: string): string {
  if (!existsSync(key)) throw new FlexiError('FLX_RELEASE_SIGN', `signing key ${key} does not exist (--sign-key / FLEXILIB_SIGNING_KEY)`);
  const sig = `${file}.sig`;
  rmSync(sig, { force: true }); // ssh-keygen refuses to overwrite
  try {
    run('FLX_RELEASE_SIGN', 'ssh-keygen', ['-q', '-Y', 'sign', '-f', key, '-n', SIGNING_NAMESPACE, file], path.dirname(file));
  } catch (err) {
    if (/ENOENT/.test((err as Error).message)) {
      throw new FlexiError('FLX_RELEASE_SIGN', 'ssh-keygen is missing: install Debian\'s "openssh-client" package to sign releases');
    }
    throw err;
  }
  return sig;
}
