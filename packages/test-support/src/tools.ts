/**
 * External programs the tests drive. A test whose tool is missing fails and
 * names it (never passes or skips silently); .ci/run installs every one.
 */
import { spawnSync } from 'node:child_process';

/** Where `command` is on PATH; throws naming it and the Debian package that provides it. */
export function requireTool(command: string, debianPackage: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const found = r.status === 0 ? r.stdout.trim() : '';
  if (!found) throw new Error(`${command} is missing: install Debian's "${debianPackage}" package (apt-get install -y ${debianPackage}; .ci/run does)`);
  return found;
}
