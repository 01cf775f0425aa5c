/**
 * One workerd process serving one Worker generation: started with the
 * generated config, its port read from the control fd, reached over one
 * keep-alive loopback connection (undici), one request at a time — which is
 * what lets the CPU a request used be read from the process's own clock.
 *
 * CPU: workerd runs JavaScript on its main thread; that thread's run time
 * (/proc/PID/task/PID/schedstat, nanoseconds) read before and during a request
 * is the request's CPU. The file stays open and is re-read with pread.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Client } from 'undici';
import { undici } from '../undici.js';
import { FlexiError } from '@flexilib/contract';

const START_TIMEOUT_MS = 15_000;
/** stderr kept to explain a failed start or a death. */
const TAIL_BYTES = 4096;
/** util-linux's setpriv ties workerd's life to ours (parent-death signal): a flexilib worker killed outright leaves no orphans. */
const SETPRIV = existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;

export type EngineEnd = 'cpu' | 'memory' | 'crash' | 'stopped';

export class Engine {
  readonly client: Client;
  busy = false;
  /** When it last finished a request (ms, performance.now()). */
  lastUsed = 0;
  /** Why it ended, once it has. */
  ended: EngineEnd | undefined;
  private statFd = -1;
  private readonly buf = Buffer.alloc(128);
  private tail = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly generation: number,
    private readonly onExit: (e: Engine) => void,
  ) {
    this.client = new (undici().Client)(`http://127.0.0.1:${port}`, { pipelining: 1, keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 });
    try {
      this.statFd = openSync(`/proc/${child.pid}/task/${child.pid}/schedstat`, 'r');
    } catch {
      // No /proc (not Linux): cpu_ms is not enforced.
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Start workerd on `configFile`; resolves once it listens. */
  static start(bin: string, configFile: string, cwd: string, generation: number, label: string, log: Logger, onExit: (e: Engine) => void): Promise<Engine> {
    return new Promise((resolve, reject) => {
      const args = ['serve', '--experimental', '--control-fd=3', configFile, 'config'];
      const child = SETPRIV
        ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] })
        : spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
      let engine: Engine | undefined;
      let tail = '';
      const keep = (chunk: Buffer) => {
        tail = (tail + chunk.toString()).slice(-TAIL_BYTES);
        if (engine) engine.tail = tail;
      };
      child.stderr!.on('data', (chunk: Buffer) => {
        keep(chunk);
        log.warn({ worker: label, pid: child.pid }, chunk.toString().trimEnd());
      });
      // console.log of the Worker.
      child.stdout!.on('data', (chunk: Buffer) => log.info({ worker: label, pid: child.pid }, chunk.toString().trimEnd()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new FlexiError('FLX_CFW_START', `${label}: workerd did not listen within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      let control = '';
      child.stdio[3]!.on('data', (chunk: Buffer) => {
        if (engine) return;
        control += chunk.toString();
        const nl = control.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          const ev = JSON.parse(control.slice(0, nl)) as { event: string; port: number };
          engine = new Engine(child, ev.port, generation, onExit);
          engine.tail = tail;
          resolve(engine);
        } catch (err) {
          child.kill('SIGKILL');
          reject(new FlexiError('FLX_CFW_START', `${label}: workerd's control fd said ${JSON.stringify(control.slice(0, nl))}: ${(err as Error).message}`));
        }
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new FlexiError('FLX_CFW_START', `${label}: cannot run workerd (${bin}): ${err.message}`, { cause: err }));
      });
      // 'close', not 'exit': it comes after stderr is read to its end, which tells a heap overflow.
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (engine) engine.exited();
        else reject(new FlexiError('FLX_CFW_START', `${label}: workerd exited (${signal ?? `code ${code}`}) before listening: ${tail.trim().split('\n').slice(-3).join(' | ')}`));
      });
    });
  }

  /** CPU time of workerd's JavaScript thread, ns; 0 without /proc. */
  cpuNs(): number {
    if (this.statFd < 0) return 0;
    try {
      const n = readSync(this.statFd, this.buf, 0, this.buf.length, 0);
      let v = 0;
      for (let i = 0; i < n; i++) {
        const c = this.buf[i];
        if (c < 48 || c > 57) break;
        v = v * 10 + (c - 48);
      }
      return v;
    } catch {
      return 0;
    }
  }

  /** The V8 heap limit was hit (workerd aborts with this in its log). */
  get outOfMemory(): boolean {
    return this.tail.includes('heap out of memory') || this.tail.includes('Out of memory');
  }

  /** Why it died, for the log. */
  get lastWords(): string {
    return this.tail.trim().split('\n').slice(-2).join(' | ');
  }

  /** Stop it now (SIGKILL: an isolate past its limit gets no grace). */
  stop(why: EngineEnd): void {
    this.ended ??= why;
    this.child.kill('SIGKILL');
  }

  private exitWaiters: Array<() => void> = [];
  private gone = false;

  /** Resolves once the process has exited, or after `ms`: a cut connection comes before the exit. */
  whenExited(ms: number): Promise<void> {
    if (this.gone) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.exitWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private exited(): void {
    this.gone = true;
    this.ended ??= this.outOfMemory ? 'memory' : 'crash';
    for (const w of this.exitWaiters.splice(0)) w();
    if (this.statFd >= 0) closeSync(this.statFd);
    this.statFd = -1;
    void this.client.destroy().catch(() => {});
    this.onExit(this);
  }
}
