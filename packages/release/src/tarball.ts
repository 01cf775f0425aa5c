/**
 * The tarball itself, written with GNU tar: entries sorted and owned by
 * root:root, so two builds of the same files differ only in timestamps
 * (SOURCE_DATE_EPOCH pins those too). Symlinks inside node_modules stay
 * symlinks; they are all relative.
 */
import path from 'node:path';
import { run } from './run.js';

export function writeTarball(parentDir: string, name: string, outFile: string): void {
  const args = ['--sort=name', '--owner=0', '--group=0', '--numeric-owner'];
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch && /^\d+$/.test(epoch)) args.push(`--mtime=@${epoch}`, '--clamp-mtime');
  run('FLX_RELEASE_TAR', 'tar', [...args, '-czf', path.resolve(outFile), '-C', parentDir, name], parentDir);
}
