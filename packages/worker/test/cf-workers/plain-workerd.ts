/**
 * The reference: a Worker run by plain workerd, started here with a config of
 * the test's own (not flexilib's generator), on 127.0.0.1 and a port workerd
 * picks and reports on its control fd. The source is bundled with esbuild as
 * wrangler does, so npm packages (Hono) resolve.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { workerdBinary } from '@flexilib/worker';

export interface PlainWorkerd {
  port: number;
  stop(): Promise<void>;
}

/** The workerd binary, or a failure naming the npm package that ships it. */
export function requireWorkerd(): string {
  try {
    return workerdBinary();
  } catch (err) {
    throw new Error(`these tests need workerd: install the npm package "workerd" (pnpm install in packages/worker): ${(err as Error).message}`);
  }
}

export async function startPlainWorkerd(entry: string, dir: string, vars: Record<string, string>): Promise<PlainWorkerd> {
  mkdirSync(dir, { recursive: true });
  const out = await build({ entryPoints: [entry], bundle: true, write: false, metafile: true, format: 'esm', platform: 'browser', conditions: ['workerd', 'worker', 'browser'], logLevel: 'silent' });
  writeFileSync(path.join(dir, 'w.mjs'), out.outputFiles[0].text);
  const serviceWorker = Object.values(out.metafile.outputs)[0].exports.length === 0;
  const bindings = Object.entries(vars).map(([k, v]) => `(name = ${JSON.stringify(k)}, text = ${JSON.stringify(v)})`).join(', ');
  const source = serviceWorker ? 'serviceWorkerScript = embed "w.mjs"' : 'modules = [(name = "w.mjs", esModule = embed "w.mjs")]';
  writeFileSync(
    path.join(dir, 'plain.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = (${source}, compatibilityDate = "2025-06-01", bindings = [${bindings}], globalOutbound = "net")),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
`,
  );
  const child: ChildProcess = spawn(requireWorkerd(), ['serve', '--experimental', '--control-fd=3', 'plain.capnp', 'config'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`plain workerd did not listen: ${err}`)), 15_000);
    child.stdio[3]!.once('data', (d: Buffer) => {
      clearTimeout(t);
      resolve((JSON.parse(String(d).split('\n')[0]) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`plain workerd exited (${code}): ${err}`)));
  });
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    },
  };
}
