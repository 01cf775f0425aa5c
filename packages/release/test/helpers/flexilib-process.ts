/**
 * A flexilib started from a command (the release's bin/flexilib), waited on
 * until it logs "flexilib listening", and stopped with a signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';

export interface Running {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  /** The config file the supervisor reports it loaded. */
  config: string;
  output(): string;
  /** Send `signal` and wait for the exit; resolves the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startFlexilib(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Running> {
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const [code] = await exited;
    return code;
  };
  const ready = new Promise<{ port: number; adminPort: number; config: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`flexilib did not log "flexilib listening" within ${opts.timeoutMs ?? 15_000} ms:\n${out}`)), opts.timeoutMs ?? 15_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"flexilib listening"')) continue;
        const rec = JSON.parse(line) as { port: number; adminPort: number; config: string };
        clearTimeout(timer);
        resolve(rec);
        return;
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then(([code, sig]) => {
      clearTimeout(timer);
      reject(new Error(`flexilib exited (${code ?? sig}) before listening:\n${out}`));
    });
  });
  try {
    const r = await ready;
    return { proc, ...r, output: () => out, stop };
  } catch (err) {
    await stop('SIGKILL');
    throw err;
  }
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request to 127.0.0.1 on a fresh connection. */
export function request(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers, agent: false, timeout: 5_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port} within 5 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
