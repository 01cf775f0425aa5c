/**
 * Start a real flexilib server as a child process on a free port, for
 * `flexilib conformance` and for tests: write the config to a temp folder, run
 * the flexilib command with `--port 0 --admin-port 0`, and wait for its
 * "flexilib listening" log line, which carries the port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SpawnedServer {
  host: string;
  port: number;
  child: ChildProcess;
  /** Everything the server logged so far (JSON lines). */
  log(): string;
  /** SIGTERM, wait for exit (SIGKILL after 5 s), remove the temp folder. */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** proxy.ini text; relative library paths resolve against `baseDir`. */
  config: string;
  baseDir?: string;
  workers?: number;
  /** Extra flexilib flags. */
  args?: string[];
  /** The flexilib entry script (default: this package's dist/cli.js). */
  cli?: string;
  timeoutMs?: number;
}

export function spawnServer(opts: SpawnOptions): Promise<SpawnedServer> {
  const dir = mkdtempSync(path.join(opts.baseDir ?? os.tmpdir(), '.flexilib-run-'));
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, opts.config);
  const cli = opts.cli ?? fileURLToPath(new URL('./cli.js', import.meta.url));
  const host = '127.0.0.1';
  const child = spawn(process.execPath, [
    cli, '--config', config, '--host', host, '--port', '0', '--admin-port', '0',
    '--workers', String(opts.workers ?? 1), '--log-format', 'json', ...(opts.args ?? []),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    cleanup();
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop().then(() => reject(new Error(`flexilib did not report listening within ${opts.timeoutMs ?? 20_000} ms\n${err}${out}`)));
    }, opts.timeoutMs ?? 20_000);
    let pending = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      pending += d;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!line.includes('"flexilib listening"')) continue;
        try {
          const port = (JSON.parse(line) as { port: number }).port;
          clearTimeout(timer);
          resolve({ host, port, child, log: () => out + err, stop });
        } catch { /* not JSON: keep waiting */ }
      }
    });
    child.stderr!.on('data', (d: Buffer) => { err += d; });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      cleanup();
      reject(new Error(`flexilib exited (${signal ?? `code ${code}`}) before listening:\n${err}${out}`));
    });
  });
}
