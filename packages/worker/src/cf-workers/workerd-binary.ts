/**
 * Where the workerd binary is: the npm package `workerd` ships it in a
 * per-platform package (@cloudflare/workerd-linux-64, ...). We run that binary
 * directly rather than the package's `bin/workerd` script, which would add a
 * node start to every cold start.
 */
import { createRequire } from 'node:module';
import { FlexiError } from '@flexilib/contract';

let found: string | undefined;

export function workerdBinary(): string {
  if (found !== undefined) return found;
  const arch = process.arch === 'x64' ? '64' : process.arch;
  const pkg = `@cloudflare/workerd-${process.platform}-${arch}`;
  try {
    const fromWorkerd = createRequire(createRequire(import.meta.url).resolve('workerd/package.json'));
    found = fromWorkerd.resolve(`${pkg}/bin/workerd`);
    return found;
  } catch (err) {
    throw new FlexiError('FLX_WORKERD_MISSING', `the workerd binary is missing: install the npm package "workerd" (it brings ${pkg}): ${(err as Error).message}`, { cause: err });
  }
}
