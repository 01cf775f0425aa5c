/**
 * undici, loaded on first use: it costs a worker ~4 MiB of heap and 11-16 MiB
 * of RSS, and only upstream, lambda and Cloudflare Worker routes need it (most
 * configs have none). Types come from `import type`, which costs nothing.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let loaded: typeof import('undici') | undefined;

export function undici(): typeof import('undici') {
  return (loaded ??= require('undici') as typeof import('undici'));
}
