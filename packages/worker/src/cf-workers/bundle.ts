/**
 * A Worker's source, bundled as wrangler does (esbuild, the `workerd`/`worker`/
 * `browser` export conditions): sibling modules and npm packages such as Hono
 * become one module, and `node:`/`cloudflare:` imports stay for workerd to
 * resolve. A script that exports nothing is a service-worker script
 * (`addEventListener('fetch', ...)`), which workerd runs as such.
 */
import path from 'node:path';
import { FlexiError } from '@flexilib/contract';

export interface WorkerBundle {
  code: string;
  /** True: no exports, run as a service-worker script with its bindings as globals. */
  serviceWorker: boolean;
  /** The project's own files that went in (not node_modules): a change to one is a reload. */
  inputs: string[];
}

export async function bundleWorker(entry: string, label: string): Promise<WorkerBundle> {
  // Loaded on first use: esbuild costs every worker ~12 MiB, and most configs have no Worker route.
  const { build } = await import('esbuild');
  try {
    const r = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      conditions: ['workerd', 'worker', 'browser'],
      external: ['node:*', 'cloudflare:*', 'workerd:*'],
      logLevel: 'silent',
      absWorkingDir: path.dirname(entry),
    });
    const out = Object.values(r.metafile.outputs)[0];
    const inputs = Object.keys(r.metafile.inputs)
      .filter((f) => !f.includes('node_modules'))
      .map((f) => path.resolve(path.dirname(entry), f));
    return { code: r.outputFiles[0].text, serviceWorker: out.exports.length === 0, inputs };
  } catch (err) {
    const e = err as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }>; message: string };
    const first = e.errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}: ` : '';
    throw new FlexiError('FLX_CFW_BUNDLE', `${label}: cannot bundle ${entry}: ${first ? where + first.text : e.message}`, { cause: err });
  }
}
