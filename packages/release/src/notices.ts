/**
 * THIRD-PARTY-NOTICES.txt: every package bundled under node_modules with its
 * version and licence. Their licence texts ship inside node_modules.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface Pkg {
  name: string;
  version: string;
  license?: string | { type?: string };
}

/** pnpm's virtual store holds each package once, at .pnpm/<id>/node_modules/<name>. */
export function bundledPackages(nodeModules: string): Pkg[] {
  const store = path.join(nodeModules, '.pnpm');
  const found = new Map<string, Pkg>();
  for (const id of readdirSync(store, { withFileTypes: true })) {
    if (!id.isDirectory() || id.name === 'node_modules') continue;
    const nm = path.join(store, id.name, 'node_modules');
    const dirs: string[] = [];
    for (const e of readdirSync(nm, { withFileTypes: true })) {
      if (e.name.startsWith('@') && e.isDirectory()) {
        for (const s of readdirSync(path.join(nm, e.name), { withFileTypes: true })) if (s.isDirectory()) dirs.push(path.join(nm, e.name, s.name));
      } else if (e.isDirectory()) dirs.push(path.join(nm, e.name));
    }
    for (const dir of dirs) {
      const file = path.join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as Pkg;
      found.set(`${pkg.name}@${pkg.version}`, pkg);
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function writeNotices(nodeModules: string, file: string): void {
  const lines = bundledPackages(nodeModules)
    .filter((p) => !p.name.startsWith('@flexilib/'))
    .map((p) => {
      const lic = typeof p.license === 'string' ? p.license : p.license?.type ?? 'see the package';
      return `${`${p.name}@${p.version}`.padEnd(48)} ${lic}`;
    });
  writeFileSync(
    file,
    `flexilib bundles these packages under node_modules/, each with its licence text in its folder.\n\n${lines.join('\n')}\n`,
  );
}
