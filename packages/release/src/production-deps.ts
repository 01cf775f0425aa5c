/**
 * The compiled supervisor with its production dependencies — and theirs,
 * workspace packages included — in a self-contained node_modules, made by
 * `pnpm deploy --prod`. The dependency set is whatever the packages'
 * package.json files say, so a dependency added later ships without a change
 * here; platform packages that pnpm installed for this machine (koffi's
 * @koromix/koffi-linux-x64) come along.
 *
 * `--legacy`: pnpm 10's default deploy needs inject-workspace-packages=true
 * for the whole workspace, which would copy workspace packages into each
 * other's node_modules during development. The legacy implementation deploys
 * from the shared lockfile without that.
 */
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { run } from './run.js';

/** How to call pnpm: the one running `pnpm run release` if any, else `pnpm` from PATH. */
function pnpmCommand(): [string, string[]] {
  const exec = process.env.npm_execpath;
  if (exec && /pnpm/.test(path.basename(exec))) {
    return /\.[cm]?js$/.test(exec) ? [process.execPath, [exec]] : [exec, []];
  }
  return ['pnpm', []];
}

export function deployProduction(root: string, target: string): void {
  const [cmd, pre] = pnpmCommand();
  // Copies, not hard links into the store: a link made meanwhile by another deploy changes a
  // shared file's ctime, and tar fails on "file changed as we read it" (workerd's binary is large
  // enough to be read while that happens).
  run('FLX_RELEASE_DEPLOY', cmd, [...pre, '--filter', '@flexilib/supervisor', '--prod', '--config.package-import-method=copy', 'deploy', '--legacy', target], root);
  pruneInstallMetadata(path.join(target, 'node_modules'));
}

/**
 * Drop what only pnpm's own bookkeeping uses and what records the build
 * machine's absolute paths: .modules.yaml, the virtual store's lock.yaml, and
 * every node_modules/.bin (shims with absolute NODE_PATHs; nothing at run time
 * calls them).
 */
function pruneInstallMetadata(nodeModules: string): void {
  rmSync(path.join(nodeModules, '.modules.yaml'), { force: true });
  rmSync(path.join(nodeModules, '.pnpm', 'lock.yaml'), { force: true });
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue; // symlinks are not followed
      const p = path.join(dir, entry.name);
      if (entry.name === '.bin' && path.basename(dir) === 'node_modules') rmSync(p, { recursive: true, force: true });
      else walk(p);
    }
  };
  walk(nodeModules);
}
